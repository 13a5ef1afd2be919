/// The RSAPrivateKey structure of RFC 8017 Appendix A.1.2 in DER, which is how swift-crypto
/// imports and exports an RSA private key with all its CRT members. Only two-prime keys
/// (version 0) are handled; JWKs with `oth` are refused before reaching here.
struct PKCS1RSAPrivateKey: Equatable {
    /// Unsigned big-endian integers without leading zero octets, as JWK wants them
    /// (RFC 7518 §2, "Base64urlUInt").
    var n, e, d, p, q, dp, dq, qi: [UInt8]

    var derRepresentation: [UInt8] {
        var content: [UInt8] = [0x02, 0x01, 0x00]  // version 0 (two-prime)
        for value in [n, e, d, p, q, dp, dq, qi] {
            content += Self.derInteger(value)
        }
        return [0x30] + Self.derLength(content.count) + content
    }

    init(n: [UInt8], e: [UInt8], d: [UInt8], p: [UInt8], q: [UInt8], dp: [UInt8], dq: [UInt8], qi: [UInt8]) {
        (self.n, self.e, self.d, self.p, self.q, self.dp, self.dq, self.qi) = (n, e, d, p, q, dp, dq, qi)
    }

    /// Parses DER produced by swift-crypto; `nil` on anything else.
    init?(der: some Collection<UInt8>) {
        var reader = DERReader(bytes: Array(der))
        guard var sequence = reader.readSequence(), reader.isAtEnd,
            let version = sequence.readInteger(), version == [0x00]
        else { return nil }
        var integers: [[UInt8]] = []
        for _ in 0..<8 {
            guard let integer = sequence.readInteger(), let unsigned = Self.unsigned(integer) else { return nil }
            integers.append(unsigned)
        }
        guard sequence.isAtEnd else { return nil }
        self.init(
            n: integers[0], e: integers[1], d: integers[2], p: integers[3], q: integers[4],
            dp: integers[5], dq: integers[6], qi: integers[7])
    }

    /// A DER INTEGER's content as an unsigned minimal octet string; `nil` if negative or zero.
    private static func unsigned(_ content: [UInt8]) -> [UInt8]? {
        guard let first = content.first, first & 0x80 == 0 else { return nil }
        let trimmed = Array(content.drop(while: { $0 == 0 }))
        return trimmed.isEmpty ? nil : trimmed
    }

    private static func derInteger(_ unsigned: [UInt8]) -> [UInt8] {
        var content = Array(unsigned.drop(while: { $0 == 0 }))
        // DER integers are two's complement: a set top bit needs a zero octet to stay positive.
        if content.isEmpty || content[0] & 0x80 != 0 { content.insert(0, at: 0) }
        return [0x02] + derLength(content.count) + content
    }

    private static func derLength(_ length: Int) -> [UInt8] {
        guard length >= 0x80 else { return [UInt8(length)] }
        var octets: [UInt8] = []
        var remaining = length
        while remaining > 0 {
            octets.insert(UInt8(truncatingIfNeeded: remaining), at: 0)
            remaining >>= 8
        }
        return [0x80 | UInt8(octets.count)] + octets
    }
}

/// A minimal reader of definite-length DER TLVs.
private struct DERReader {
    let bytes: [UInt8]
    var index = 0

    var isAtEnd: Bool { index == bytes.count }

    /// Reads a SEQUENCE and returns a reader over its content.
    mutating func readSequence() -> DERReader? {
        readContent(tag: 0x30).map { DERReader(bytes: $0) }
    }

    /// Reads an INTEGER and returns its content octets.
    mutating func readInteger() -> [UInt8]? {
        readContent(tag: 0x02)
    }

    private mutating func readContent(tag: UInt8) -> [UInt8]? {
        guard bytes.count - index >= 2, bytes[index] == tag else { return nil }
        var position = index + 1
        var length = Int(bytes[position])
        position += 1
        if length & 0x80 != 0 {
            let lengthOctets = length & 0x7F
            guard lengthOctets >= 1, lengthOctets <= 3, bytes.count - position >= lengthOctets else { return nil }
            length = 0
            for _ in 0..<lengthOctets {
                length = length << 8 | Int(bytes[position])
                position += 1
            }
        }
        guard bytes.count - position >= length else { return nil }
        index = position + length
        return Array(bytes[position..<(position + length)])
    }
}
