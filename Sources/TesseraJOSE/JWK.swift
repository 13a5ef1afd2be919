import Crypto

/// A public JSON Web Key (RFC 7517 §4) for one of the signature algorithms of ``JWSAlgorithm``.
///
/// Only the members that describe a public signature key are kept; others (`x5c`, `key_ops`,
/// vendor extensions) are dropped. Private and symmetric keys are refused outright, so a value
/// of this type can be logged, published or stored without leaking a secret.
public struct JWK: Sendable, Hashable {
    public var kty: String
    public var crv: String?
    public var x: String?
    public var y: String?
    public var n: String?
    public var e: String?
    public var kid: String?
    public var use: String?
    public var alg: String?

    /// Members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4;
    /// RFC 8037 §2).
    static let privateMemberNames = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]

    /// RSA moduli above this are refused: verification cost grows with the cube of the size,
    /// and no issuer needs more.
    static let maxRSAModulusBits = 8192

    /// Parses and checks a public JWK.
    ///
    /// - Throws: ``JOSEError/privateKeyMaterial`` when any private member is present or `kty` is
    ///   `oct`; ``JOSEError/unsupportedAlgorithm(_:)`` for a key type or curve this module does not
    ///   implement, or an RSA modulus shorter than 2048 bits; ``JOSEError/malformed(_:)`` when a
    ///   member required for the key type is missing, not a string, not canonical base64url, of
    ///   the wrong length, or (RFC 7518 §6.3.1) an RSA integer with leading zero octets.
    public init(json: JSONValue) throws(JOSEError) {
        guard case .object(let members) = json else { throw .malformed("JWK is not an object") }
        // Checked before anything else, so that even an unusable key type carrying a secret is
        // reported as the leak it is rather than skipped.
        for name in Self.privateMemberNames where members[name] != nil {
            throw .privateKeyMaterial
        }
        func string(_ name: String) throws(JOSEError) -> String? {
            guard let value = members[name] else { return nil }
            guard case .string(let string) = value else { throw .malformed("JWK member is not a string") }
            return string
        }
        guard let kty = try string("kty") else { throw .malformed("JWK has no kty") }
        self.kty = kty
        self.kid = try string("kid")
        self.use = try string("use")
        self.alg = try string("alg")
        switch kty {
        case "EC":
            self.crv = try string("crv")
            self.x = try string("x")
            self.y = try string("y")
        case "OKP":
            self.crv = try string("crv")
            self.x = try string("x")
        case "RSA":
            self.n = try string("n")
            self.e = try string("e")
        case "oct":
            // A symmetric key is a secret whatever members it carries.
            throw .privateKeyMaterial
        default:
            throw .unsupportedAlgorithm("unsupported key type")
        }
        _ = try material()
    }

    /// The public members, plus `kid`, `use` and `alg` when set.
    public var json: JSONValue {
        var members: [String: JSONValue] = ["kty": .string(kty)]
        for (name, value) in [
            ("crv", crv), ("x", x), ("y", y), ("n", n), ("e", e),
            ("kid", kid), ("use", use), ("alg", alg),
        ] {
            if let value { members[name] = .string(value) }
        }
        return .object(members)
    }

    /// The RFC 7638 §3 thumbprint with SHA-256, base64url-encoded: the hash of the required
    /// members only (RFC 7638 §3.2; for OKP, RFC 8037 §2), in lexicographic order, no whitespace.
    public func thumbprint() -> String {
        var required: [String: JSONValue] = ["kty": .string(kty)]
        let names: [(String, String?)] =
            switch kty {
            case "EC": [("crv", crv), ("x", x), ("y", y)]
            case "OKP": [("crv", crv), ("x", x)]
            case "RSA": [("e", e), ("n", n)]
            default: []
            }
        for (name, value) in names {
            if let value { required[name] = .string(value) }
        }
        // StrictJSON.serialize sorts members and adds no whitespace; the values are base64url
        // and curve names, which need no escaping, so this is exactly the RFC 7638 form.
        return Base64URL.encode(SHA256.hash(data: StrictJSON.serialize(.object(required))))
    }

    /// Whether this key may verify signatures made with `alg`.
    ///
    /// The key type and curve must match the algorithm (RFC 7518 §3.1 and RFC 8037 §3.1), an
    /// `alg` member must equal it (RFC 7517 §4.4), and a `use` member must be `sig`
    /// (RFC 7517 §4.2) — an encryption key must not be accepted as a signature key.
    public func canVerify(_ alg: JWSAlgorithm) -> Bool {
        if let use, use != "sig" { return false }
        if let declared = self.alg, declared != alg.rawValue { return false }
        switch kty {
        case "EC":
            return (crv == "P-256" && alg == .ES256) || (crv == "P-384" && alg == .ES384)
        case "OKP":
            return crv == "Ed25519" && alg == .EdDSA
        case "RSA":
            return alg.isRSA
        default:
            return false
        }
    }
}

// MARK: - Key material

extension JWK {
    enum Curve: Sendable {
        case p256, p384

        var coordinateByteCount: Int {
            switch self {
            case .p256: 32
            case .p384: 48
            }
        }
    }

    /// The decoded public key, after every structural check. `JWSVerificationKey` calls this
    /// again rather than trusting that a JWK came through `init(json:)`, since its members are
    /// mutable.
    enum Material {
        case ec(Curve, x: [UInt8], y: [UInt8])
        case ed25519(x: [UInt8])
        case rsa(n: [UInt8], e: [UInt8])
    }

    func material() throws(JOSEError) -> Material {
        switch kty {
        case "EC":
            let curve: Curve
            switch crv {
            case "P-256": curve = .p256
            case "P-384": curve = .p384
            case nil: throw .malformed("EC JWK has no crv")
            default: throw .unsupportedAlgorithm("unsupported curve")
            }
            // RFC 7518 §6.2.1.2: coordinates are the full size of the field, never shortened.
            guard let x, let y, let xBytes = Base64URL.decode(x), let yBytes = Base64URL.decode(y),
                xBytes.count == curve.coordinateByteCount, yBytes.count == curve.coordinateByteCount
            else { throw .malformed("EC JWK coordinates missing or of the wrong size") }
            return .ec(curve, x: xBytes, y: yBytes)
        case "OKP":
            switch crv {
            case "Ed25519": break
            case nil: throw .malformed("OKP JWK has no crv")
            default: throw .unsupportedAlgorithm("unsupported curve")
            }
            guard let x, let xBytes = Base64URL.decode(x), xBytes.count == 32 else {
                throw .malformed("OKP JWK public key missing or of the wrong size")
            }
            return .ed25519(x: xBytes)
        case "RSA":
            guard let n, let e, let nBytes = Base64URL.decode(n), let eBytes = Base64URL.decode(e) else {
                throw .malformed("RSA JWK modulus or exponent missing")
            }
            // RFC 7518 §6.3.1.1–2: the minimum number of octets. A leading zero would also give
            // the same key two different RFC 7638 thumbprints.
            guard let nFirst = nBytes.first, nFirst != 0, let eFirst = eBytes.first, eFirst != 0 else {
                throw .malformed("RSA JWK integer not minimally encoded")
            }
            let modulusBits = nBytes.count * 8 - nFirst.leadingZeroBitCount
            guard modulusBits >= 2048 else { throw .unsupportedAlgorithm("RSA modulus shorter than 2048 bits") }
            guard modulusBits <= Self.maxRSAModulusBits else {
                throw .unsupportedAlgorithm("RSA modulus too long")
            }
            // An even, tiny or huge exponent is never legitimate (RFC 8017 §3.1).
            guard eBytes.count <= 4, let eLast = eBytes.last, eLast & 1 == 1, eBytes != [1] else {
                throw .malformed("RSA JWK exponent invalid")
            }
            return .rsa(n: nBytes, e: eBytes)
        case "oct":
            throw .privateKeyMaterial
        default:
            throw .unsupportedAlgorithm("unsupported key type")
        }
    }
}
