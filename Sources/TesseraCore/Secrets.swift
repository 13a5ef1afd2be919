import Crypto
public import Foundation

/// Random secrets and their comparison. Client secrets are 256-bit random values, so a single
/// SHA-256 is the right hash: there is nothing to brute-force, and a password hash would cost
/// milliseconds on every grant.
public enum Secrets {
    /// `count` bytes from the system CSPRNG (getrandom on Linux).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        // Eight bytes per draw: one system call per word, not per byte.
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = generator.next()
            for _ in 0..<min(8, count - index) {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }

    /// 256 bits, base64url without padding.
    public static func randomToken(prefix: String = "") -> String {
        prefix + base64URL(randomBytes(32))
    }

    /// 128 bits, base64url: 48 bits of milliseconds since 1970 then 80 random bits. Ids made this
    /// way sort by creation, so a store indexing them appends instead of touching a random page
    /// per insert; 80 random bits keep them unguessable and unique.
    public static func timeOrderedID(now: Date) -> String {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - $0))) }
        bytes += randomBytes(10)
        return base64URL(bytes)
    }

    public static func sha256(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    public static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
        hex(Array(SHA256.hash(data: Array(bytes))))
    }

    /// Lower-case hex. By table: `String(format:)` costs tens of microseconds per call on Linux,
    /// and the audit chain hashes every record on the writer thread.
    public static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = hexDigits[Int(byte >> 4)]
                buffer[2 * index + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Compares without an early exit, so timing does not tell how many leading bytes matched.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// RFC 4648 §5 without padding. Written out because Foundation's string replacement costs
    /// more than the rest of a request on the hot path.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 2 < bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            if rest == 2 { output.append(alphabet[Int(chunk >> 6 & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
}
