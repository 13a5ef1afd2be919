public import Foundation

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-22T08:15:03.123Z`), formatted by hand:
/// Foundation's format styles cost microseconds, and every audit record and log line has one.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        let millisecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(millisecondsSinceEpoch >= 0 ? millisecondsSinceEpoch / 1000 : (millisecondsSinceEpoch - 999) / 1000)
        let milliseconds = Int(millisecondsSinceEpoch - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var bytes = [UInt8]()
        bytes.reserveCapacity(24)
        func append(_ value: Int, width: Int) {
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            var rest = value
            for position in stride(from: width - 1, through: 0, by: -1) {
                digits[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            bytes.append(contentsOf: digits)
        }
        append(Int(parts.tm_year) + 1900, width: 4)
        bytes.append(UInt8(ascii: "-"))
        append(Int(parts.tm_mon) + 1, width: 2)
        bytes.append(UInt8(ascii: "-"))
        append(Int(parts.tm_mday), width: 2)
        bytes.append(UInt8(ascii: "T"))
        append(Int(parts.tm_hour), width: 2)
        bytes.append(UInt8(ascii: ":"))
        append(Int(parts.tm_min), width: 2)
        bytes.append(UInt8(ascii: ":"))
        append(Int(parts.tm_sec), width: 2)
        bytes.append(UInt8(ascii: "."))
        append(milliseconds, width: 3)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
