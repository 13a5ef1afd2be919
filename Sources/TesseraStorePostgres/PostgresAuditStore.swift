import TesseraCore
import TesseraStore

struct PostgresAuditStore: AuditStore {
    let store: PostgresStore

    @discardableResult
    func append(_ event: AuditEvent) async throws -> AuditRecord {
        // Encoding does not depend on the chain, so it happens before the head is locked.
        let body = AuditChain.encode(event)
        return try await store.write("audit.append") { transaction in
            try await transaction.appendAudit(body: body)
        }
    }

    func records(after seq: Int64, limit: Int) async throws -> [AuditRecord] {
        guard limit > 0 else { return [] }
        return try await store.statement(
            "audit.records",
            SQL(
                "SELECT seq, body, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                [.integer(seq), .integer(Int64(limit))])
        ) { row in
            AuditRecord(seq: try row.int64(0), body: try row.bytes(1), prevHash: try row.text(2), hash: try row.text(3))
        }
    }

    /// Nil for an empty log: the head row exists from the start, at seq 0.
    func head() async throws -> AuditHead? {
        let heads = try await store.statement("audit.head", SQL("SELECT seq, hash FROM audit_head WHERE id = 1")) { row in
            AuditHead(seq: try row.int64(0), hash: try row.text(1))
        }
        guard let head = heads.first, head.seq > 0 else { return nil }
        return head
    }
}
