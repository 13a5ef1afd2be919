import TesseraCore
import TesseraStore

/// `AuditChain.hash(prev:body:)`, computed without its per-byte `String(format:)`.
///
/// The chain hash runs on the single writer thread, once per audit record, so its cost caps every
/// write. `Secrets.sha256Hex` formats each byte with `String(format: "%02x")`: 60–100 µs per hash in
/// a release build on Linux, about 20 times the SHA-256 itself. This computes the same value (the
/// same SHA-256 over the same bytes, the same lower-case hex) and, in debug builds, checks that it
/// does on every record. Delete it once `Secrets.sha256Hex` is fast.
enum AuditHashing {
    static func hash(prev: String, body: [UInt8]) -> String {
        var input = Array(prev.utf8)
        input.append(0x0A)
        input.append(contentsOf: body)
        // `Secrets.sha256` takes a String; for valid UTF-8 (canonical JSON always is) its bytes are
        // exactly the input. Anything else takes the reference path.
        guard let text = String(validating: input, as: UTF8.self) else {
            return AuditChain.hash(prev: prev, body: body)
        }
        let value = hex(Secrets.sha256(text))
        assert(value == AuditChain.hash(prev: prev, body: body), "AuditHashing diverged from AuditChain.hash")
        return value
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = digits[Int(byte >> 4)]
                buffer[2 * index + 1] = digits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }
}
