import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TesseraCore
import TesseraHTTP
import TesseraJOSE
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

/// Runs `body` against a real server on a loopback port, over HTTP/1.1.
func withLiveBroker<T: Sendable>(
    throttle: AuthFailureThrottle = AuthFailureThrottle(), dpopNonces: Bool = false,
    _ body: @Sendable (BrokerFixture, any TestClientProtocol) async throws -> T
) async throws -> T {
    let fixture = try await BrokerFixture.make(throttle: throttle, dpopNonces: dpopNonces)
    var logger = Logger(label: "tessera-http-test")
    logger.logLevel = .critical
    let app = buildApplication(broker: fixture.broker, host: "127.0.0.1", port: 0, logger: logger)
    do {
        let result = try await app.test(.live) { client in try await body(fixture, client) }
        await fixture.tearDown()
        return result
    } catch {
        await fixture.tearDown()
        throw error
    }
}

extension TestClientProtocol {
    /// POSTs a form, with Basic credentials when given.
    func postForm(
        _ path: String, _ form: [(String, String)], basic: (String, String)? = nil, headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let (id, secret) = basic {
            headers[.authorization] = "Basic " + Data("\(formEncode(id)):\(formEncode(secret))".utf8).base64EncodedString()
        }
        for field in extra { headers.append(field) }
        let body = form.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }
}

func formEncode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed)!
}

extension TestResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
    var errorCode: String? { json["error"] as? String }
}

/// Asserts an RFC 6749 §5.2 error: status, code, JSON body with no-store, and no leak of `secrets`.
func assertOAuthError(
    _ response: TestResponse, status: Int, code: String, secrets: [String] = [], file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(response.status.code, status, "status", file: file, line: line)
    XCTAssertEqual(response.errorCode, code, "error code", file: file, line: line)
    XCTAssertEqual(response.headers[.contentType], "application/json", file: file, line: line)
    XCTAssertEqual(response.headers[.cacheControl], "no-store", file: file, line: line)
    if status == 401 {
        XCTAssertNotNil(response.headers[.wwwAuthenticate], "401 needs WWW-Authenticate", file: file, line: line)
    }
    let text = String(buffer: response.body)
    for secret in secrets { XCTAssertFalse(text.contains(secret), "response leaks a secret", file: file, line: line) }
}

func decodeClaims(_ token: String) throws -> [String: JSONValue] {
    let jws = try CompactJWS(parsing: token)
    guard case .object(let claims) = try StrictJSON.parse(jws.payload) else { throw JOSEError.malformed("claims") }
    return claims
}

/// Every audit record the store holds, decoded.
func auditEvents(_ fixture: BrokerFixture) async throws -> [AuditEvent] {
    try await fixture.store.audit.records(after: 0, limit: 10_000).map { try AuditChain.decode($0.body) }
}
