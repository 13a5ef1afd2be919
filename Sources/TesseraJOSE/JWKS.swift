/// A JWK Set (RFC 7517 §5) of public keys.
public struct JWKS: Sendable, Hashable {
    public var keys: [JWK]

    public init(keys: [JWK]) {
        self.keys = keys
    }

    /// Parses a JWK Set.
    ///
    /// Keys of a type or curve this module does not implement are skipped, as RFC 7517 §5
    /// asks ("implementations SHOULD ignore JWKs within a JWK Set that use kty values that are not
    /// understood"); keys shorter than 2048-bit RSA are skipped the same way. A set that carries
    /// private or symmetric material, or a malformed key of a known type, is refused whole: it
    /// is a misconfigured or hostile document, and the other keys in it are not to be trusted.
    public init(json: JSONValue) throws(JOSEError) {
        guard case .array(let entries)? = json["keys"] else { throw .malformed("JWK set has no keys array") }
        var keys: [JWK] = []
        keys.reserveCapacity(entries.count)
        for entry in entries {
            do {
                keys.append(try JWK(json: entry))
            } catch {
                if case .unsupportedAlgorithm = error { continue }
                throw error
            }
        }
        self.keys = keys
    }

    public var json: JSONValue {
        .object(["keys": .array(keys.map(\.json))])
    }
}
