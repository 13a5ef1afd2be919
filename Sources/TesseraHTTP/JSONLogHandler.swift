import Foundation
public import Logging
import TesseraCore

/// swift-log handler writing one JSON object per line to standard error: `ts`, `level`, `msg`,
/// `label`, then the metadata sorted by key. Callers never log tokens or secrets; values are
/// escaped, so a hostile value cannot break the line or forge another.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.field("ts", RFC3339.format(Date()))
        json.field("level", event.level.rawValue)
        json.field("msg", "\(event.message)")
        json.field("label", label)
        let merged = event.metadata.map { metadata.merging($0, uniquingKeysWith: { $1 }) } ?? metadata
        for key in merged.keys.sorted() where !["ts", "level", "msg", "label"].contains(key) {
            json.field(key, Self.text(merged[key]!))
        }
        json.endObject()
        var line = json.bytes
        line.append(0x0A)
        line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }

    private static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        default: value.description
        }
    }
}
