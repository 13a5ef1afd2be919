/// The protected header of a compact JWS (RFC 7515 §4), after the checks of
/// ``CompactJWS/init(parsing:maxLength:understoodCritical:)``.
public struct JWSHeader: Sendable {
    public let alg: JWSAlgorithm
    public let kid: String?
    public let typ: String?
    /// RFC 7515 §4.1.3; always a public key, private material having been refused.
    public let jwk: JWK?
    /// Every header member, including those above, for extensions the caller understands.
    public let raw: [String: JSONValue]

    /// Header names registered by RFC 7515 §4.1 and RFC 7518 §4.1; RFC 7515 §4.1.11 forbids
    /// listing them in `crit`.
    static let registeredNames: Set<String> = [
        "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
        "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
    ]

    init(raw: [String: JSONValue], understoodCritical: Set<String>) throws(JOSEError) {
        func string(_ name: String) throws(JOSEError) -> String? {
            guard let value = raw[name] else { return nil }
            guard case .string(let string) = value else { throw .malformed("JWS header member has the wrong type") }
            return string
        }

        guard let algName = try string("alg") else { throw .malformed("JWS header has no alg") }
        guard let alg = JWSAlgorithm(rawValue: algName) else { throw .unsupportedAlgorithm("unsupported alg") }

        // RFC 7515 §4.1.11: every name in `crit` must be understood, or the JWS is invalid.
        if let crit = raw["crit"] {
            guard case .array(let entries) = crit, !entries.isEmpty else {
                throw .malformed("JWS crit is not a non-empty array")
            }
            var seen = Set<String>()
            for entry in entries {
                guard case .string(let name) = entry, seen.insert(name).inserted else {
                    throw .malformed("JWS crit entry invalid")
                }
                guard !Self.registeredNames.contains(name) else {
                    throw .malformed("JWS crit lists a registered header")
                }
                guard understoodCritical.contains(name) else {
                    throw .unknownCriticalHeader("unknown critical header")
                }
                guard raw[name] != nil else { throw .malformed("JWS crit lists an absent header") }
            }
        }

        // RFC 7797: with `b64` false the payload is not base64url-encoded and the signing input
        // differs. Not implemented, so refused even if a caller lists it as understood.
        if let b64 = raw["b64"] {
            guard case .bool(let encoded) = b64 else { throw .malformed("JWS b64 is not a boolean") }
            guard encoded else { throw .malformed("unencoded JWS payload not supported") }
        }

        if let jwk = raw["jwk"] {
            self.jwk = try JWK(json: jwk)
        } else {
            self.jwk = nil
        }
        self.alg = alg
        self.kid = try string("kid")
        self.typ = try string("typ")
        self.raw = raw
    }
}

/// A parsed, not yet verified, JWS in the compact serialisation (RFC 7515 §7.1).
///
/// Nothing in it is to be trusted until ``verify(with:allowed:)`` has returned; the header is
/// exposed only so the caller can choose the key (by `kid`, or `jwk` for DPoP).
public struct CompactJWS: Sendable {
    public let header: JWSHeader
    /// The decoded payload, unverified.
    public let payload: [UInt8]
    /// ASCII(BASE64URL(header) || "." || BASE64URL(payload)), RFC 7515 §5.1 step 5.
    public let signingInput: [UInt8]
    public let signature: [UInt8]

    /// Parses a compact JWS, refusing anything RFC 7515 §5.2 would reject and more:
    ///
    /// 1. more than `maxLength` bytes (checked first, before any decoding work);
    /// 2. anything but exactly three segments — a five-segment JWE or a two-segment fragment;
    /// 3. a segment that is not canonical, unpadded base64url (``Base64URL``);
    /// 4. a header that is not a JSON object under ``StrictJSON`` (duplicate members included);
    /// 5. an `alg` outside ``JWSAlgorithm`` (so `none` and HS* fail here);
    /// 6. a `crit` name not in `understoodCritical` (RFC 7515 §4.1.11), `b64` false (RFC 7797);
    /// 7. a `jwk` header that is not a valid public JWK;
    /// 8. an empty signature.
    public init(
        parsing token: some StringProtocol, maxLength: Int = 16_384, understoodCritical: Set<String> = []
    )
        throws(JOSEError)
    {
        let utf8 = token.utf8
        guard utf8.count <= maxLength else { throw .malformed("JWS too large") }
        let bytes = Array(utf8)
        let dot = UInt8(ascii: ".")
        guard let firstDot = bytes.firstIndex(of: dot),
            let secondDot = bytes[(firstDot + 1)...].firstIndex(of: dot),
            !bytes[(secondDot + 1)...].contains(dot)
        else { throw .malformed("JWS does not have three segments") }

        guard let headerBytes = Self.decode(bytes[..<firstDot]),
            let payload = Self.decode(bytes[(firstDot + 1)..<secondDot]),
            let signature = Self.decode(bytes[(secondDot + 1)...])
        else { throw .malformed("JWS segment is not base64url") }

        guard case .object(let rawHeader) = try StrictJSON.parse(headerBytes) else {
            throw .malformed("JWS header is not a JSON object")
        }
        let header = try JWSHeader(raw: rawHeader, understoodCritical: understoodCritical)
        guard !signature.isEmpty else { throw .malformed("JWS signature is empty") }

        self.header = header
        self.payload = payload
        self.signingInput = Array(bytes[..<secondDot])
        self.signature = signature
    }

    private static func decode(_ segment: ArraySlice<UInt8>) -> [UInt8]? {
        segment.withUnsafeBufferPointer { Base64URL.decode(bytes: $0) }
    }

    /// Verifies the signature (RFC 7515 §5.2 step 8) and returns the payload as JWT claims
    /// (RFC 7519 §7.2 step 10), checking in this order:
    ///
    /// 1. the header `alg` is in `allowed` — the caller's policy, never the token's choice
    ///    (RFC 8725 §3.1) — else ``JOSEError/algorithmNotAllowed(_:)``;
    /// 2. the key can verify that `alg` (``JWK/canVerify(_:)``) — else
    ///    ``JOSEError/keyMismatch(_:)``;
    /// 3. the signature is valid — else ``JOSEError/badSignature``;
    /// 4. the payload is a JSON object under ``StrictJSON`` — else the parse error.
    ///
    /// Claims such as `exp`, `aud` and `iss` are not checked here; that is the caller's policy.
    public func verify(
        with key: JWSVerificationKey, allowed: Set<JWSAlgorithm>
    ) throws(JOSEError) -> [String:
        JSONValue]
    {
        guard allowed.contains(header.alg) else { throw .algorithmNotAllowed("alg not allowed") }
        guard key.jwk.canVerify(header.alg) else { throw .keyMismatch("key cannot verify this alg") }
        guard key.isValidSignature(signature, for: signingInput, alg: header.alg) else { throw .badSignature }
        guard case .object(let claims) = try StrictJSON.parse(payload) else {
            throw .malformed("JWS payload is not a JSON object")
        }
        return claims
    }
}
