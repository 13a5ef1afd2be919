import CXMLSec

/// A public key from one IdP certificate, read once (copying a key out of a certificate costs
/// ~100 µs with OpenSSL 3) and copied cheaply — only its value, never the certificate — into each
/// verification. Immutable after init; copies up-reference the OpenSSL key, which is thread-safe.
final class TrustedKey: @unchecked Sendable {
    let certificate: [UInt8]
    private let key: xmlSecKeyPtr

    init?(certificate der: [UInt8]) {
        guard (try? XMLSecurity.ready()) != nil, !der.isEmpty, der.count < 64 * 1024 else { return nil }
        guard let loaded = der.withUnsafeBufferPointer({ tessera_key_from_certificate_der($0.baseAddress, Int32($0.count)) }) else {
            return nil
        }
        defer { xmlSecKeyDestroy(loaded) }
        guard let value = tessera_key_value_copy(loaded) else { return nil }
        certificate = der
        key = value
    }

    /// A private key from PEM (the SP's decryption key).
    init?(privatePEM pem: [UInt8]) {
        guard (try? XMLSecurity.ready()) != nil, !pem.isEmpty else { return nil }
        guard let loaded = pem.withUnsafeBufferPointer({ tessera_key_from_private_pem($0.baseAddress, Int32($0.count)) }) else {
            return nil
        }
        defer { xmlSecKeyDestroy(loaded) }
        guard let value = tessera_key_value_copy(loaded) else { return nil }
        certificate = []
        key = value
    }

    deinit { xmlSecKeyDestroy(key) }

    /// A fresh key for one xmlsec context, which takes ownership of it.
    func copy() -> xmlSecKeyPtr? { tessera_key_value_copy(key) }
}
