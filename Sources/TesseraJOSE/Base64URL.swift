/// Base64url without padding, as JOSE uses it (RFC 7515 §2, RFC 4648 §5).
///
/// Decoding is strict so that each byte string has exactly one accepted text: padding, the
/// standard alphabet (`+`, `/`), whitespace and non-zero trailing bits (RFC 4648 §3.5) are all
/// refused. Otherwise one signature or thumbprint could be spelled several ways, and anything
/// that compares or caches the text (replay stores, `jkt` bindings) could be bypassed.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let invalid: UInt8 = 0xFF

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, symbol) in alphabet.enumerated() {
            table[Int(symbol)] = UInt8(value)
        }
        return table
    }()

    /// Encodes without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        let outputCount = (input.count / 3) * 4 + [0, 2, 3][input.count % 3]
        return String(unsafeUninitializedCapacity: outputCount) { output in
            var out = 0
            var position = 0
            while position + 3 <= input.count {
                let chunk =
                    UInt32(input[position]) << 16 | UInt32(input[position + 1]) << 8 | UInt32(input[position + 2])
                output[out] = alphabet[Int(chunk >> 18 & 0x3F)]
                output[out + 1] = alphabet[Int(chunk >> 12 & 0x3F)]
                output[out + 2] = alphabet[Int(chunk >> 6 & 0x3F)]
                output[out + 3] = alphabet[Int(chunk & 0x3F)]
                out += 4
                position += 3
            }
            switch input.count - position {
            case 1:
                let chunk = UInt32(input[position]) << 16
                output[out] = alphabet[Int(chunk >> 18 & 0x3F)]
                output[out + 1] = alphabet[Int(chunk >> 12 & 0x3F)]
                out += 2
            case 2:
                let chunk = UInt32(input[position]) << 16 | UInt32(input[position + 1]) << 8
                output[out] = alphabet[Int(chunk >> 18 & 0x3F)]
                output[out + 1] = alphabet[Int(chunk >> 12 & 0x3F)]
                output[out + 2] = alphabet[Int(chunk >> 6 & 0x3F)]
                out += 3
            default:
                break
            }
            return out
        }
    }

    /// Decodes unpadded base64url; `nil` for anything that is not the canonical encoding of
    /// some byte string.
    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        let utf8 = s.utf8
        if let result = utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) {
            return result
        }
        return Array(utf8).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let remainder = input.count % 4
        // One leftover symbol carries only 6 bits, less than a byte: no encoder produces it.
        guard remainder != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3 + 2)
        let table = decodeTable
        var position = 0
        while position + 4 <= input.count {
            let a = table[Int(input[position])]
            let b = table[Int(input[position + 1])]
            let c = table[Int(input[position + 2])]
            let d = table[Int(input[position + 3])]
            // Valid symbols are below 64 and `invalid` has the top bits set, so one test suffices.
            guard (a | b | c | d) & 0xC0 == 0 else { return nil }
            let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
            output.append(UInt8(truncatingIfNeeded: chunk >> 16))
            output.append(UInt8(truncatingIfNeeded: chunk >> 8))
            output.append(UInt8(truncatingIfNeeded: chunk))
            position += 4
        }
        switch remainder {
        case 2:
            let a = table[Int(input[position])]
            let b = table[Int(input[position + 1])]
            // The low 4 bits of the second symbol are padding and must be zero (RFC 4648 §3.5).
            guard a != invalid, b != invalid, b & 0x0F == 0 else { return nil }
            output.append(a << 2 | b >> 4)
        case 3:
            let a = table[Int(input[position])]
            let b = table[Int(input[position + 1])]
            let c = table[Int(input[position + 2])]
            guard a != invalid, b != invalid, c != invalid, c & 0x03 == 0 else { return nil }
            output.append(a << 2 | b >> 4)
            output.append((b & 0x0F) << 4 | c >> 2)
        default:
            break
        }
        return output
    }
}
