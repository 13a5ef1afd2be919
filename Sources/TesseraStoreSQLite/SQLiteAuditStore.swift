import TesseraCore
import TesseraStore

struct SQLiteAuditStore: AuditStore {
    let store: SQLiteStore

    @discardableResult
    func append(_ event: AuditEvent) async throws -> AuditRecord {
        // Encoding does not depend on the chain, so it happens here, off the writer thread.
        let body = AuditChain.encode(event)
        return try await store.write("audit.append") { transaction in
            try transaction.appendAudit(body: body)
        }
    }

    func records(after seq: Int64, limit: Int) async throws -> [AuditRecord] {
        guard limit > 0 else { return [] }
        return try store.read { connection in
            try connection.query(
                "SELECT seq, body, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                [.integer(seq), .integer(Int64(limit))]
            ) { row in
                AuditRecord(seq: row.int64(0), body: row.blob(1), prevHash: row.text(2), hash: row.text(3))
            }
        }
    }

    func head() async throws -> AuditHead? {
        try store.read { connection in
            try connection.queryOne("SELECT seq, hash FROM audit_head WHERE id = 1") { row in
                AuditHead(seq: row.int64(0), hash: row.text(1))
            }
        }
    }
}
