import TesseraCore
import TesseraJOSE
import TesseraPolicy
import XCTest

final class ExchangePolicyEvaluatorTests: XCTestCase {
    static let rules = """
        {"exchange": [
          {"id": "no-prod", "effect": "deny", "clients": ["*"], "subject_token_types": ["jwt"], "subjects": ["repo:acme/prod-*"]},
          {"id": "sync", "effect": "allow", "clients": ["cl_sync"], "subject_token_types": ["access_token", "jwt"],
           "audiences": ["crm"], "resources": ["https://crm.example.com/api"],
           "scopes": "crm:contacts.read crm:contacts.write:ids=1,2", "actor": "optional", "max_lifetime": 300,
           "dpop": "required", "refresh_tokens": true, "refresh_lifetime": 7200},
          {"id": "delegated", "effect": "allow", "clients": ["cl_agent"], "subject_token_types": ["access_token"],
           "scopes": "mail:messages.read", "actors": ["cl_agent", "cl_helper"], "dpop": "optional"}
        ]}
        """

    func evaluator() throws -> ExchangePolicyEvaluator {
        ExchangePolicyEvaluator(document: try PolicyDocument(parsing: Array(Self.rules.utf8)), version: 7)
    }

    func facts(
        client: String = "cl_sync", type: TokenTypeIdentifier = .accessToken, subject: String = "svc", actor: String? = nil,
        audiences: [String] = [], resources: [String] = [], scope: String? = "crm:contacts.read", held: String = "crm:contacts.read",
        dpop: Bool = true
    ) throws -> ExchangeFacts {
        ExchangeFacts(
            clientID: client, subjectTokenType: type, subjectIssuer: "https://issuer.test", subject: subject, actor: actor,
            audiences: audiences, resources: resources, requestedScopes: try scope.map { try ScopeSet(parsing: $0) },
            defaultScopes: try ScopeSet(parsing: held), dpop: dpop)
    }

    func testAllowRuleGrantsTheRequestWithItsCeilingsAndExplainsWhy() throws {
        let decision = try evaluator().decide(try facts())
        let grant = try XCTUnwrap(decision.grant)
        XCTAssertEqual(grant.ruleID, "sync")
        XCTAssertEqual(grant.scopes.description, "crm:contacts.read")
        XCTAssertEqual(grant.audience, ["crm"])
        XCTAssertEqual(grant.maxLifetime, 300)
        XCTAssertEqual(grant.refreshLifetime, 7200)
        XCTAssertEqual(decision.explanation["outcome"], "allow")
        XCTAssertEqual(decision.explanation["policy_version"], 7)
        XCTAssertEqual(decision.explanation["rule"], "sync")
        let rules = try XCTUnwrap(decision.explanation["rules"]?.arrayValue)
        XCTAssertEqual(rules.map { $0["id"] }, ["no-prod", "sync", "delegated"], "every rule, in order of evaluation")
        XCTAssertEqual(rules.map { $0["evaluated"] }, [true, true, false], "rules after the deciding one are not evaluated")
    }

    func testDenyRuleWinsOverAnAllowRuleThatWouldMatch() throws {
        let decision = try evaluator().decide(try facts(type: .jwt, subject: "repo:acme/prod-api"))
        XCTAssertNil(decision.grant)
        XCTAssertEqual(decision.refusal, .request)
        XCTAssertTrue(decision.reason.contains("no-prod"))
        XCTAssertEqual(decision.explanation["rule"], "no-prod", "the deciding deny rule is named")
    }

    func testADenyRuleOnAnAudienceHoldsForTheDefaultAudienceToo() throws {
        let document = try PolicyDocument(
            parsing: Array(
                #"{"exchange": [{"id": "no-crm", "effect": "deny", "clients": ["*"], "subject_token_types": ["access_token"], "audiences": ["crm"]}, {"id": "all", "effect": "allow", "clients": ["*"], "subject_token_types": ["access_token"], "scopes": "crm:contacts.read", "actor": "optional", "dpop": "optional"}]}"#
                    .utf8))
        let evaluator = ExchangePolicyEvaluator(document: document, version: 1)
        XCTAssertNil(evaluator.decide(try facts()).grant, "no audience asked: the default audience crm is denied")
        XCTAssertNil(evaluator.decide(try facts(audiences: ["crm"])).grant)
    }

    func testNoRuleForTheClientIsDeniedAsARequestError() throws {
        let decision = try evaluator().decide(try facts(client: "cl_other"))
        XCTAssertNil(decision.grant)
        XCTAssertEqual(decision.refusal, .request)
    }

    func testEmptyPolicyDeniesEverything() throws {
        let decision = ExchangePolicyEvaluator(document: .empty, version: nil).decide(try facts())
        XCTAssertNil(decision.grant)
        XCTAssertEqual(decision.reason, "the tenant has no exchange policy")
    }

    func testScopeBeyondTheRuleIsAScopeRefusal() throws {
        for scope in ["crm:contacts.delete", "crm:contacts.write", "crm:contacts.write:ids=1,3"] {
            let decision = try evaluator().decide(try facts(scope: scope))
            XCTAssertEqual(decision.refusal, .scope, scope)
        }
        XCTAssertNotNil(try evaluator().decide(try facts(scope: "crm:contacts.write:ids=2")).grant, "narrower parameters are fine")
    }

    func testAudienceOrResourceNotListedIsATargetRefusal() throws {
        XCTAssertEqual(try evaluator().decide(try facts(audiences: ["mail"])).refusal, .target)
        XCTAssertEqual(try evaluator().decide(try facts(resources: ["https://evil.example.com/"])).refusal, .target)
        let both = try evaluator().decide(try facts(audiences: ["crm"], resources: ["https://crm.example.com/api"]))
        XCTAssertEqual(both.grant?.audience, ["crm", "https://crm.example.com/api"])
    }

    func testMissingProofIsADPoPRefusalWhenTheRuleRequiresIt() throws {
        XCTAssertEqual(try evaluator().decide(try facts(dpop: false)).refusal, .dpop)
    }

    func testActorsDefaultToTheRequestingClientAndListedPatternsOtherwise() throws {
        let sync = try evaluator()
        XCTAssertNotNil(sync.decide(try facts(actor: "cl_sync")).grant)
        XCTAssertEqual(sync.decide(try facts(actor: "cl_someone")).refusal, .request)
        let agent = try facts(client: "cl_agent", actor: nil, scope: "mail:messages.read", held: "mail:messages.read")
        XCTAssertEqual(sync.decide(agent).refusal, .request, "actor required by default: no impersonation")
        let helper = try facts(client: "cl_agent", actor: "cl_helper", scope: "mail:messages.read", held: "mail:messages.read")
        XCTAssertNotNil(sync.decide(helper).grant)
    }

    func testDefaultScopesAreTheHeldOnesWithinTheRule() throws {
        let decision = try evaluator().decide(try facts(scope: nil, held: "crm:contacts.read crm:deals.read"))
        XCTAssertEqual(decision.grant?.scopes.description, "crm:contacts.read")
    }

    func testSameFactsGiveTheSameExplanation() throws {
        let first = try evaluator().decide(try facts(audiences: ["mail"]))
        let second = try evaluator().decide(try facts(audiences: ["mail"]))
        XCTAssertEqual(first.explanationText, second.explanationText)
    }

    func testFactsRoundTripThroughJSON() throws {
        let original = try facts(actor: "cl_sync", audiences: ["crm"])
        let read = ExchangeFacts(json: original.json, defaultScopes: original.defaultScopes)
        XCTAssertEqual(read, original)
    }
}

final class PolicyDocumentParsingTests: XCTestCase {
    func rule(_ members: String) -> String {
        #"{"exchange": [{"id": "r", "effect": "allow", "clients": ["c"], "subject_token_types": ["jwt"], "scopes": "crm:contacts.read""#
            + members + "}]}"
    }

    func testEachMalformedDocumentIsRefusedWithItsReason() {
        let cases: [(String, String)] = [
            ("not json", "not valid JSON"),
            ("[]", "must be a JSON object"),
            (#"{"exchange": [], "extra": 1}"#, "unknown member 'extra'"),
            (rule(#", "colour": "red""#), "unknown member 'colour'"),
            (rule(#", "max_lifetime": 901"#), "max_lifetime"),
            (rule(#", "max_lifetime": 1.5"#), "max_lifetime"),
            (rule(#", "dpop": "sometimes""#), "dpop"),
            (rule(#", "actor": "maybe""#), "actor"),
            (rule(#", "refresh_lifetime": 600"#), "refresh_lifetime needs"),
            (rule(#", "resources": ["https://crm.example.com/#frag"]"#), "resources"),
            (rule(#", "audiences": []"#), "non-empty"),
            (#"{"exchange": [{"id": "r", "effect": "allow", "clients": ["c"], "subject_token_types": ["jwt"]}]}"#, "scopes is required"),
            (
                #"{"exchange": [{"id": "r", "effect": "allow", "clients": ["c"], "subject_token_types": ["cookie"], "scopes": "a:b.c"}]}"#,
                "unknown token type"
            ),
            (
                #"{"exchange": [{"id": "r", "effect": "allow", "clients": ["c"], "subject_token_types": ["jwt"], "scopes": "a:b.c:ids=*"}]}"#,
                "wildcard"
            ),
            (
                #"{"exchange": [{"id": "a b", "effect": "allow", "clients": ["c"], "subject_token_types": ["jwt"], "scopes": "a:b.c"}]}"#,
                "id must match"
            ),
            (
                #"{"exchange": [{"id": "r", "effect": "deny", "clients": ["c"], "subject_token_types": ["jwt"], "max_lifetime": 5}]}"#,
                "only apply to allow"
            ),
            (#"{"exchange": [{"id": "r", "id": "s", "effect": "allow"}]}"#, "not valid JSON"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try PolicyDocument(parsing: Array(text.utf8)), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
        let twice =
            #"{"exchange": [{"id": "r", "effect": "deny", "clients": ["c"], "subject_token_types": ["jwt"]}, {"id": "r", "effect": "deny", "clients": ["c"], "subject_token_types": ["jwt"]}]}"#
        XCTAssertThrowsError(try PolicyDocument(parsing: Array(twice.utf8))) { XCTAssertTrue("\($0)".contains("duplicate rule id")) }
    }

    func testCanonicalFormParsesBackToTheSameDocument() throws {
        let document = try PolicyDocument(parsing: Array(ExchangePolicyEvaluatorTests.rules.utf8))
        let again = try PolicyDocument(parsing: Array(document.canonicalJSON.utf8))
        XCTAssertEqual(document, again)
        XCTAssertEqual(document.canonicalJSON, again.canonicalJSON)
    }
}

final class GlobTests: XCTestCase {
    func testStarMatchesAnyRunAndNothingElseIsSpecial() {
        let cases: [(String, String, Bool)] = [
            ("repo:acme/*", "repo:acme/api", true), ("repo:acme/*", "repo:acme/", true), ("repo:acme/*", "repo:acmex/api", false),
            ("*:ref:refs/heads/main", "repo:a:ref:refs/heads/main", true), ("a*b*c", "abc", true), ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false), ("exact", "exact", true), ("exact", "exactly", false), ("a?c", "abc", false), ("*", "", true),
            ("ab*ba", "aba", false),
        ]
        for (pattern, text, expected) in cases {
            XCTAssertEqual(Glob(pattern)?.matches(text), expected, "\(pattern) ~ \(text)")
        }
        XCTAssertNil(Glob(""))
    }
}
