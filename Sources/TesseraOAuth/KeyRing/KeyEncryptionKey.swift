import Crypto
public import Foundation

/// Seals private keys at rest with AES-256-GCM under a key derived from `TESSERA_KEK`.
///
/// The KEK may be any high-entropy string (e.g. 32 random bytes in base64); HKDF-SHA256 turns it
/// into the sealing key, so its format does not matter. The key id is bound as associated data so
/// a sealed blob cannot be swapped between key files.
public struct KeyEncryptionKey: Sendable {
    private let key: SymmetricKey

    public init?(secret: String) {
        guard secret.utf8.count >= 16 else { return nil }
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.utf8)), salt: Array("tessera-kek-v1".utf8),
            info: Array("signing-keys".utf8), outputByteCount: 32)
    }

    func seal(_ plaintext: [UInt8], kid: String) throws -> String {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(kid.utf8))
        guard let combined = box.combined else { throw KeyRingError.sealing("cannot encode sealed box") }
        return combined.base64EncodedString()
    }

    func open(_ sealed: String, kid: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: sealed) else { throw KeyRingError.sealing("sealed key is not base64") }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(kid.utf8)))
        } catch {
            throw KeyRingError.sealing("cannot unseal key \(kid): wrong TESSERA_KEK or damaged file")
        }
    }
}

public enum KeyRingError: Error, CustomStringConvertible {
    case sealing(String)
    case storage(String)
    case noActiveKey

    public var description: String {
        switch self {
        case .sealing(let why): "key sealing: \(why)"
        case .storage(let why): "key storage: \(why)"
        case .noActiveKey: "the key ring has no active signing key"
        }
    }
}
