import ArgumentParser
import Foundation
import TesseraCore
import TesseraOAuth
import TesseraStore

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Signing keys.", subcommands: [List.self, Rotate.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List signing keys and their state (never private material).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let config = try ResolvedConfiguration.resolve(global)
            let keys = try config.keyDirectory.load()
            Output.emit(
                json: global.json,
                object: keys.map { key -> [String: Any] in
                    var object: [String: Any] = [
                        "kid": key.kid, "alg": key.alg.rawValue, "state": key.state.rawValue, "sealed": key.isSealed,
                        "created_at": Timestamps.format(key.createdAt),
                    ]
                    if let date = key.activatedAt { object["activated_at"] = Timestamps.format(date) }
                    if let date = key.retiredAt { object["retired_at"] = Timestamps.format(date) }
                    if let date = key.publishUntil { object["published_until"] = Timestamps.format(date) }
                    return object
                },
                text: keys.map { "\($0.kid)\t\($0.alg.rawValue)\t\($0.state.rawValue)\t\($0.isSealed ? "sealed" : "unsealed")" }
                    .joined(separator: "\n"))
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Activate the pre-published next key, retire the active one (published until its tokens expire), publish a new next key.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            let now = Date()
            let rotation: KeyDirectory.Rotation
            do {
                rotation = try config.keyDirectory.rotate(algorithm: config.settings.signingAlgorithm, now: now)
            } catch {
                try? await store.audit.append(
                    AuditEvent(
                        ts: now, tenant: nil, actor: Output.operatorActor, action: "key.rotated", outcome: .failure, reason: "\(error)"))
                await store.close()
                throw error
            }
            try await store.audit.append(
                AuditEvent(
                    ts: now, tenant: nil, actor: Output.operatorActor, action: "key.rotated", outcome: .success,
                    reason:
                        "active=\(rotation.activated) retired=\(rotation.retired ?? "-") next=\(rotation.published) deleted=\(rotation.deleted.count)"
                ))
            await store.close()
            Output.emit(
                json: global.json,
                object: [
                    "active": rotation.activated, "retired": rotation.retired as Any, "next": rotation.published,
                    "deleted": rotation.deleted,
                ],
                text: "active: \(rotation.activated)\nretired: \(rotation.retired ?? "-")\nnext (published): \(rotation.published)")
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The hash-chained audit log.", subcommands: [Verify.self, Export.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check every link of the chain; exit 1 naming the first bad record.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            let finding = try await AuditChain.verify(store.audit)
            await store.close()
            switch finding {
            case .intact(let count):
                Output.emit(json: global.json, object: ["intact": true, "records": count], text: finding.description)
            case .broken(let seq, let reason):
                Output.emit(
                    json: global.json, object: ["intact": false, "first_bad_record": seq, "reason": reason], text: finding.description)
                throw ExitCode(1)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stream records as JSON lines.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this tenant's records.") var tenant: String?
        @Option(help: "Only records at or after this RFC 3339 time.") var since: String?
        @Option(help: "jsonl (the only format).") var format: String = "jsonl"

        func run() async throws {
            guard format == "jsonl" else { throw ValidationError("--format must be jsonl") }
            let sinceDate = try since.map { text in
                guard let date = try? Date(text, strategy: .iso8601) else { throw ValidationError("--since must be an RFC 3339 time") }
                return date
            }
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            var after: Int64 = 0
            let output = FileHandle.standardOutput
            while true {
                let page = try await store.audit.records(after: after, limit: 1000)
                if page.isEmpty { break }
                var chunk = ""
                for record in page {
                    after = record.seq
                    if tenant != nil || sinceDate != nil {
                        guard let event = try? AuditChain.decode(record.body) else { continue }
                        if let tenant, event.tenant != tenant { continue }
                        if let sinceDate, event.ts < sinceDate { continue }
                    }
                    chunk += record.jsonLine + "\n"
                }
                output.write(Data(chunk.utf8))
            }
            await store.close()
        }
    }
}
