public import Foundation
public import TesseraCore

/// A stored audit record: the event's canonical JSON exactly as it was hashed, and the chain links.
public struct AuditRecord: Sendable, Hashable {
    public let seq: Int64
    /// Canonical JSON of the event (sorted keys). Hashed as stored, byte for byte.
    public let body: [UInt8]
    public let prevHash: String
    public let hash: String

    public init(seq: Int64, body: [UInt8], prevHash: String, hash: String) {
        self.seq = seq
        self.body = body
        self.prevHash = prevHash
        self.hash = hash
    }

    /// One JSON line for export: the event's fields plus `seq`, `prev_hash` and `hash`.
    public var jsonLine: String {
        var text = String(decoding: body.dropLast(), as: UTF8.self)
        text += ",\"seq\":\(seq),\"prev_hash\":\"\(prevHash)\",\"hash\":\"\(hash)\"}"
        return text
    }
}

public struct AuditHead: Sendable, Hashable {
    public let seq: Int64
    public let hash: String
    public init(seq: Int64, hash: String) {
        self.seq = seq
        self.hash = hash
    }
}

/// The hash chain: `hash = SHA-256(prev_hash ‖ "\n" ‖ body)`, the first record chained to
/// `genesis`. Changing, removing or reordering any record breaks a link.
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    /// The canonical body of an event: JSON with keys in sorted order at every level and absent
    /// fields omitted, decodable as `AuditEvent`. Hand-written because it runs for every record.
    public static func encode(_ event: AuditEvent) -> [UInt8] {
        var json = JSONWriter(capacity: 384)
        json.beginObject()
        json.field("action", event.action)
        json.key("actor")
        json.beginObject()
        json.field("id", event.actor.id)
        json.field("type", event.actor.type.rawValue)
        json.endObject()
        json.field("client_id", event.clientID)
        json.field("decision", event.decision)
        json.field("id", event.id)
        json.field("jti", event.jti)
        json.field("outcome", event.outcome.rawValue)
        json.field("reason", event.reason)
        json.field("resource", event.resource)
        if let scopes = event.scopes {
            json.key("scopes")
            json.beginObject()
            json.key("granted")
            json.strings(scopes.granted)
            json.key("requested")
            json.strings(scopes.requested)
            json.endObject()
        }
        json.field("tenant", event.tenant)
        json.field("trace_id", event.traceID)
        json.field("ts", RFC3339.format(event.ts))
        json.endObject()
        return json.bytes
    }

    /// Reads a stored body back as an event (the inverse of `encode`).
    public static func decode(_ body: [UInt8]) throws -> AuditEvent {
        try decoder.decode(AuditEvent.self, from: Data(body))
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time"))
            }
            return date
        }
        return decoder
    }()

    public static func hash(prev: String, body: [UInt8]) -> String {
        Secrets.sha256Hex(Array(prev.utf8) + [0x0A] + body)
    }

    public enum Finding: Sendable, Equatable, CustomStringConvertible {
        case intact(count: Int64)
        /// The first record that does not hold, and why.
        case broken(seq: Int64, reason: String)

        public var description: String {
            switch self {
            case .intact(let count): "audit chain intact: \(count) records"
            case .broken(let seq, let reason): "audit chain broken at record \(seq): \(reason)"
            }
        }
    }

    /// Walks the log in pages up to the head it read first, checking each link, the sequence,
    /// and that the records reach the remembered head. Reading the head first means records
    /// appended by a live server during the walk are simply not examined, never a false alarm.
    public static func verify(_ store: any AuditStore, pageSize: Int = 1000) async throws -> Finding {
        guard let head = try await store.head() else {
            let stray = try await store.records(after: 0, limit: 1)
            return stray.isEmpty ? .intact(count: 0) : .broken(seq: stray[0].seq, reason: "records exist but the head is missing")
        }
        var previousHash = genesis
        var previousSeq: Int64 = 0
        walk: while previousSeq < head.seq {
            let page = try await store.records(after: previousSeq, limit: pageSize)
            if page.isEmpty { break }
            for record in page {
                if record.seq > head.seq { break walk }
                if record.seq != previousSeq + 1 {
                    return .broken(seq: record.seq, reason: "sequence gap after \(previousSeq): a record was removed")
                }
                if record.prevHash != previousHash {
                    return .broken(seq: record.seq, reason: "prev_hash does not match the previous record")
                }
                if hash(prev: record.prevHash, body: record.body) != record.hash {
                    return .broken(seq: record.seq, reason: "content does not match its hash: the record was changed")
                }
                previousHash = record.hash
                previousSeq = record.seq
            }
        }
        guard previousSeq == head.seq else {
            return .broken(
                seq: previousSeq + 1,
                reason: "the log ends at \(previousSeq) but its head says \(head.seq): records were removed from the end")
        }
        guard previousHash == head.hash else {
            return .broken(seq: head.seq, reason: "the last record's hash does not match the head")
        }
        return .intact(count: head.seq)
    }

}

/// RFC 3339 timestamps with milliseconds, UTC.
public enum Timestamps {
    public static func format(_ date: Date) -> String {
        RFC3339.format(date)
    }
}
