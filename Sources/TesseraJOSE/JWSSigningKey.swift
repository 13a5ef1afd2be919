import Crypto
import Foundation
import _CryptoExtras

/// A private key that signs JWSs with one algorithm (RFC 7515 §5.1).
///
/// This is the only type that reads private JWK members, and only in
/// ``init(privateJWK:)``, to restore a key from sealed storage.
public struct JWSSigningKey: Sendable {
    public let algorithm: JWSAlgorithm
    public let kid: String
    private let backing: Backing
    private let publicKey: JWK
    private let privateMembers: [String: JSONValue]

    private enum Backing: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    /// Generates a fresh key: P-256 for ES256, P-384 for ES384, Ed25519 for EdDSA, 3072-bit
    /// RSA for RS*/PS* (NIST SP 800-57 pt. 1 §5.6.1: 128-bit strength, like P-256).
    ///
    /// - Parameter kid: defaults to the RFC 7638 thumbprint of the public key, so that a
    ///   key's id is stable and derivable from the key alone.
    public static func generate(_ alg: JWSAlgorithm, kid: String? = nil) throws -> JWSSigningKey {
        let backing: Backing =
            switch alg {
            case .ES256: .p256(P256.Signing.PrivateKey())
            case .ES384: .p384(P384.Signing.PrivateKey())
            case .EdDSA: .ed25519(Curve25519.Signing.PrivateKey())
            case .RS256, .RS384, .RS512, .PS256, .PS384, .PS512:
                .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072))
            }
        return try JWSSigningKey(algorithm: alg, backing: backing, kid: kid)
    }

    /// Restores a key from the JWK that ``privateJWK`` produced (or any equivalent one).
    ///
    /// The algorithm follows from the curve for EC and OKP; RSA keys must carry `alg`, since
    /// nothing else tells RS256 from PS256. Every member the key type defines must be present
    /// (RFC 7518 §6.2.2, §6.3.2: all CRT members, no `oth`) and must agree with the others — the
    /// public members are recomputed from the private ones and compared, so a JWK whose `x`
    /// belongs to another key is refused with ``JOSEError/keyMismatch(_:)``.
    public init(privateJWK: JSONValue) throws(JOSEError) {
        guard case .object(let members) = privateJWK else { throw .malformed("JWK is not an object") }
        func string(_ name: String) throws(JOSEError) -> String? {
            guard let value = members[name] else { return nil }
            guard case .string(let string) = value else { throw .malformed("JWK member is not a string") }
            return string
        }
        func bytes(_ name: String) throws(JOSEError) -> [UInt8] {
            guard let text = try string(name), let decoded = Base64URL.decode(text), !decoded.isEmpty else {
                throw .malformed("private JWK member missing or not base64url")
            }
            return decoded
        }
        guard let kty = try string("kty") else { throw .malformed("JWK has no kty") }
        let declaredAlg = try string("alg")
        if let use = try string("use"), use != "sig" { throw .keyMismatch("key is not a signature key") }

        let algorithm: JWSAlgorithm
        let backing: Backing
        do {
            switch (kty, try string("crv")) {
            case ("EC", "P-256"):
                algorithm = .ES256
                let key = try P256.Signing.PrivateKey(rawRepresentation: bytes("d"))
                guard key.publicKey.rawRepresentation == Data(try bytes("x") + bytes("y")) else {
                    throw JOSEError.keyMismatch("public members do not match the private key")
                }
                backing = .p256(key)
            case ("EC", "P-384"):
                algorithm = .ES384
                let key = try P384.Signing.PrivateKey(rawRepresentation: bytes("d"))
                guard key.publicKey.rawRepresentation == Data(try bytes("x") + bytes("y")) else {
                    throw JOSEError.keyMismatch("public members do not match the private key")
                }
                backing = .p384(key)
            case ("OKP", "Ed25519"):
                algorithm = .EdDSA
                let key = try Curve25519.Signing.PrivateKey(rawRepresentation: bytes("d"))
                guard key.publicKey.rawRepresentation == Data(try bytes("x")) else {
                    throw JOSEError.keyMismatch("public members do not match the private key")
                }
                backing = .ed25519(key)
            case ("RSA", _):
                guard let declaredAlg, let rsaAlg = JWSAlgorithm(rawValue: declaredAlg), rsaAlg.isRSA else {
                    throw JOSEError.unsupportedAlgorithm("RSA JWK without an RSA alg")
                }
                guard members["oth"] == nil else { throw JOSEError.unsupportedAlgorithm("multi-prime RSA") }
                algorithm = rsaAlg
                let components = PKCS1RSAPrivateKey(
                    n: try bytes("n"), e: try bytes("e"), d: try bytes("d"), p: try bytes("p"),
                    q: try bytes("q"), dp: try bytes("dp"), dq: try bytes("dq"), qi: try bytes("qi"))
                // BoringSSL checks the whole key (RSA_check_key) when parsing RSAPrivateKey, so
                // inconsistent CRT members are refused rather than producing bad signatures.
                let key = try _RSA.Signing.PrivateKey(derRepresentation: components.derRepresentation)
                backing = .rsa(key)
            case ("EC", _), ("OKP", _):
                throw JOSEError.unsupportedAlgorithm("unsupported curve")
            default:
                throw JOSEError.unsupportedAlgorithm("unsupported key type")
            }
        } catch let error as JOSEError {
            throw error
        } catch {
            throw .malformed("private JWK is not a valid key")
        }
        if let declaredAlg, declaredAlg != algorithm.rawValue {
            throw .keyMismatch("alg does not match the key")
        }
        do {
            try self.init(algorithm: algorithm, backing: backing, kid: try string("kid"))
        } catch let error as JOSEError {
            throw error
        } catch {
            throw .malformed("private JWK is not a valid key")
        }
    }

    private init(algorithm: JWSAlgorithm, backing: Backing, kid: String?) throws {
        var publicMembers: [String: JSONValue]
        var privateMembers: [String: JSONValue]
        switch backing {
        case .p256(let key):
            (publicMembers, privateMembers) = Self.ecMembers(
                curve: "P-256", publicRaw: key.publicKey.rawRepresentation, d: key.rawRepresentation)
        case .p384(let key):
            (publicMembers, privateMembers) = Self.ecMembers(
                curve: "P-384", publicRaw: key.publicKey.rawRepresentation, d: key.rawRepresentation)
        case .ed25519(let key):
            publicMembers = [
                "kty": "OKP", "crv": "Ed25519", "x": .string(Base64URL.encode(key.publicKey.rawRepresentation)),
            ]
            privateMembers = ["d": .string(Base64URL.encode(key.rawRepresentation))]
        case .rsa(let key):
            guard let components = PKCS1RSAPrivateKey(der: key.derRepresentation) else {
                throw JOSEError.malformed("RSA key could not be exported")
            }
            publicMembers = [
                "kty": "RSA", "n": .string(Base64URL.encode(components.n)),
                "e": .string(Base64URL.encode(components.e)),
            ]
            privateMembers = [:]
            for (name, value) in [
                ("d", components.d), ("p", components.p), ("q", components.q),
                ("dp", components.dp), ("dq", components.dq), ("qi", components.qi),
            ] {
                privateMembers[name] = .string(Base64URL.encode(value))
            }
        }
        // Through JWK(json:) so that the published key passes the same checks as a received one.
        let thumbprint = try JWK(json: .object(publicMembers)).thumbprint()
        let kid = kid ?? thumbprint
        publicMembers["kid"] = .string(kid)
        publicMembers["use"] = "sig"
        publicMembers["alg"] = .string(algorithm.rawValue)
        self.algorithm = algorithm
        self.kid = kid
        self.backing = backing
        self.publicKey = try JWK(json: .object(publicMembers))
        self.privateMembers = privateMembers
    }

    private static func ecMembers(
        curve: String, publicRaw: Data, d: Data
    )
        -> (public: [String: JSONValue], private: [String: JSONValue])
    {
        let half = publicRaw.count / 2
        let x = publicRaw.prefix(half)
        let y = publicRaw.suffix(from: publicRaw.startIndex + half)
        return (
            ["kty": "EC", "crv": .string(curve), "x": .string(Base64URL.encode(x)), "y": .string(Base64URL.encode(y))],
            ["d": .string(Base64URL.encode(d))]
        )
    }

    /// The full private JWK, with `kid`, `use` and `alg`. For sealed storage only: it is the
    /// key itself.
    public var privateJWK: JSONValue {
        guard case .object(var members) = publicKey.json else { return .null }
        members.merge(privateMembers) { _, secret in secret }
        return .object(members)
    }

    /// The public JWK to publish, with `kid`, `use` "sig" and `alg`.
    public var publicJWK: JWK { publicKey }

    /// Signs `data` (RFC 7515 §5.1 step 5). ECDSA signatures are the fixed-length `r || s` of
    /// RFC 7518 §3.4, not DER.
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        switch backing {
        case .p256(let key):
            return Array(try key.signature(for: data).rawRepresentation)
        case .p384(let key):
            return Array(try key.signature(for: data).rawRepresentation)
        case .ed25519(let key):
            return Array(try key.signature(for: data))
        case .rsa(let key):
            let signature: _RSA.Signing.RSASignature
            switch algorithm {
            case .RS256: signature = try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .RS384: signature = try key.signature(for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
            case .RS512: signature = try key.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            case .PS256: signature = try key.signature(for: SHA256.hash(data: data), padding: .PSS)
            case .PS384: signature = try key.signature(for: SHA384.hash(data: data), padding: .PSS)
            case .PS512: signature = try key.signature(for: SHA512.hash(data: data), padding: .PSS)
            case .ES256, .ES384, .EdDSA: throw JOSEError.keyMismatch("RSA key with a non-RSA alg")
            }
            return Array(signature.rawRepresentation)
        }
    }

    /// Header members `signCompact` sets itself, or must not be set because this module does
    /// not implement them (RFC 7797 `b64`).
    private static let reservedHeaderNames: Set<String> = ["alg", "kid", "typ", "b64"]

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) whose header is `alg`, `kid`, `typ` (when
    /// given) and `extraHeader`; the payload is ``StrictJSON/serialize(_:)`` of the claims.
    ///
    /// - Throws: ``JOSEError/malformed(_:)`` if `extraHeader` tries to set `alg`, `kid`, `typ`
    ///   or `b64`, and whatever ``JWK/init(json:)`` throws for an `extraHeader` `jwk` member —
    ///   in particular ``JOSEError/privateKeyMaterial``, so a private key can never be sent in a
    ///   header by mistake (RFC 9449 §4.2).
    public func signCompact(
        claims: [String: JSONValue], typ: String?, extraHeader: [String: JSONValue] = [:]
    ) throws
        -> String
    {
        var header = extraHeader
        guard Self.reservedHeaderNames.isDisjoint(with: header.keys) else {
            throw JOSEError.malformed("extra header sets a reserved member")
        }
        if let jwk = header["jwk"] { _ = try JWK(json: jwk) }
        header["alg"] = .string(algorithm.rawValue)
        header["kid"] = .string(kid)
        if let typ { header["typ"] = .string(typ) }

        var token = Base64URL.encode(StrictJSON.serialize(.object(header)))
        token.append(".")
        token.append(Base64URL.encode(StrictJSON.serialize(.object(claims))))
        let signature = try sign(Array(token.utf8))
        token.append(".")
        token.append(Base64URL.encode(signature))
        return token
    }
}
