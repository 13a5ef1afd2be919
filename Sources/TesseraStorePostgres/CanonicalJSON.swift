import Foundation
import TesseraStore

/// The text of a JSON column that holds a whole value (`users.identity`, `sessions.identity`,
/// `oidc_providers.config`): keys sorted, so one value is always stored as one text, the same
/// text the SQLite backend stores. TEXT, not JSONB, which would not keep that text.
enum CanonicalJSON {
    static func encode(_ value: some Encodable, _ what: String) throws(StoreError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw StoreError.conflict("\(what) cannot be encoded as JSON")
        }
    }

    /// Nil when the text is not a `T`: the caller reports the row as unreadable.
    static func decode<T: Decodable>(_ type: T.Type, from text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
