public import Foundation
public import Logging
import TesseraCore

/// swift-log handler writing one JSON object per line to standard error: `ts`, `level`, `label`,
/// `msg` and the metadata. Values are whatever callers log; callers never log tokens or secrets.
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
        var fields: [String: String] = [
            "ts": RFC3339.format(Date()),
            "level": event.level.rawValue, "label": label, "msg": "\(event.message)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key] = "\(value)"
        }
        var line = "{"
        line += fields.keys.sorted().map { key in "\(JSONText.quote(key)):\(JSONText.quote(fields[key]!))" }.joined(separator: ",")
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
