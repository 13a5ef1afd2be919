import ArgumentParser
import Foundation
import TesseraCore
import TesseraJOSE
import TesseraPolicy
import TesseraStore

struct Policies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A tenant's policy document (token-exchange rules; see docs/token-exchange.md).",
        subcommands: [Put.self, Get.self, Explain.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a policy document and store it as the tenant's next version.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "The policy document (JSON).") var file: String

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            let document = try PolicyFile.read(file)
            let stored = try await global.withStore { store in
                do {
                    return try await store.policies.put(
                        tenant: tenantID, document: document.canonicalJSON, at: Date(),
                        audit: AuditEvent(
                            ts: Date(), tenant: tenant, actor: Output.operatorActor, action: "policy.changed", outcome: .success,
                            reason: "exchange rules: \(document.exchange.map(\.id).joined(separator: ","))"))
                } catch StoreError.notFound {
                    throw ValidationError("tenant \(tenant) does not exist")
                }
            }
            Output.emit(
                json: global.json, object: ["tenant": tenant, "version": stored.version],
                text: "stored policy version \(stored.version) for \(tenant)")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the tenant's current policy document.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            let stored = try await global.withStore { try await $0.policies.current(tenant: tenantID) }
            guard let stored else {
                Output.emit(
                    json: global.json, object: ["tenant": tenant, "version": NSNull(), "document": NSNull()],
                    text: "\(tenant) has no policy: every exchange is denied")
                return
            }
            let document = try JSONSerialization.jsonObject(with: Data(stored.document.utf8))
            Output.emit(
                json: global.json, object: ["tenant": tenant, "version": stored.version, "document": document],
                text: "version \(stored.version)\n\(stored.document)")
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dry run: decide a hypothetical exchange request and explain the decision; mints nothing.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(
            help:
                "The request facts (JSON): client_id, subject_token_type, subject_issuer, subject, actor, audience, resource, scope, dpop.")
        var request: String
        @Option(help: "Decide with this policy document instead of the stored one.") var policy: String?

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            guard let data = FileManager.default.contents(atPath: request), data.count <= 64 * 1024 else {
                throw ValidationError("cannot read \(request) (at most 64 KiB)")
            }
            let json: JSONValue
            do { json = try StrictJSON.parse(Array(data)) } catch { throw ValidationError("the request is not valid JSON: \(error)") }
            let facts = try RequestFacts.parse(json)
            let evaluator: ExchangePolicyEvaluator
            if let policy {
                evaluator = ExchangePolicyEvaluator(document: try PolicyFile.read(policy), version: nil)
            } else {
                let stored = try await global.withStore { try await $0.policies.current(tenant: tenantID) }
                if let stored {
                    evaluator = ExchangePolicyEvaluator(
                        document: try PolicyDocument(parsing: Array(stored.document.utf8)), version: stored.version)
                } else {
                    evaluator = ExchangePolicyEvaluator(document: .empty, version: nil)
                }
            }
            let decision = evaluator.decide(facts)
            if global.json {
                print(decision.explanationText)
            } else {
                print("\(decision.isAllowed ? "ALLOW" : "DENY"): \(decision.reason)")
                for rule in decision.explanation["rules"]?.arrayValue ?? [] {
                    let id = rule["id"]?.stringValue ?? "?"
                    let matched = rule["matched"]?.boolValue == true
                    print("  \(matched ? "matched" : "skipped") \(id)\(rule["failed"]?.stringValue.map { ": \($0)" } ?? "")")
                }
                if let grant = decision.grant {
                    print("  grants: \(grant.scopes) for \(grant.audience.joined(separator: " "))")
                }
            }
        }
    }
}

enum TenantArgument {
    static func parse(_ text: String) throws -> TenantID {
        guard let id = TenantID(text) else { throw ValidationError("invalid tenant id") }
        return id
    }
}

enum PolicyFile {
    static func read(_ path: String) throws -> PolicyDocument {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        do {
            return try PolicyDocument(parsing: Array(data))
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// The facts file of `policies explain`, strictly: the same members the audit record shows.
enum RequestFacts {
    static let members: Set<String> = [
        "client_id", "subject_token_type", "subject_issuer", "subject", "actor", "audience", "resource", "scope", "dpop",
    ]

    static func parse(_ json: JSONValue) throws -> ExchangeFacts {
        guard let object = json.objectValue else { throw ValidationError("the request must be a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !members.contains($0) }) {
            throw ValidationError("unknown member '\(unknown)' in the request")
        }
        guard let clientID = object["client_id"]?.stringValue else { throw ValidationError("client_id is required") }
        guard let type = object["subject_token_type"]?.stringValue.flatMap(TokenTypeIdentifier.init(naming:)) else {
            throw ValidationError("subject_token_type is required (access_token, jwt, id_token, saml2)")
        }
        let strings = { (name: String) throws -> [String] in
            guard let value = object[name] else { return [] }
            guard let items = value.arrayValue?.compactMap(\.stringValue), items.count == value.arrayValue?.count else {
                throw ValidationError("\(name) must be an array of strings")
            }
            return items
        }
        var scopes: ScopeSet?
        if let text = object["scope"]?.stringValue {
            do { scopes = try ScopeSet(parsing: text) } catch { throw ValidationError(error.description) }
        }
        return ExchangeFacts(
            clientID: clientID, subjectTokenType: type, subjectIssuer: object["subject_issuer"]?.stringValue ?? "",
            subject: object["subject"]?.stringValue ?? "", actor: object["actor"]?.stringValue, audiences: try strings("audience"),
            resources: try strings("resource"), requestedScopes: scopes, defaultScopes: scopes ?? ScopeSet([]),
            dpop: object["dpop"]?.boolValue ?? true)
    }
}
