import Crypto
public import Foundation
public import TesseraCore
public import TesseraJOSE

/// Short-lived browser state (a pending sign-in) kept in a cookie the browser cannot read or
/// alter: AES-256-GCM under a key of the keys folder, the cookie name as associated data, so a
/// value sealed for one cookie is refused as another.
public struct CookieSealer: Sendable {
    private let key: SymmetricKey

    /// - Precondition: 32 bytes; configuration, not input.
    public init(key: [UInt8]) {
        precondition(key.count == 32, "the cookie key must be 32 bytes")
        self.key = SymmetricKey(data: key)
    }

    public func seal(_ value: JSONValue, cookie name: String) -> String {
        let box = try! AES.GCM.seal(StrictJSON.serialize(value), using: key, authenticating: Array(name.utf8))
        return Base64URL.encode(Array(box.combined!))
    }

    /// Nil for anything not sealed by this key for this cookie.
    public func open(_ text: String, cookie name: String) -> JSONValue? {
        guard text.utf8.count <= 4096, let bytes = Base64URL.decode(text),
            let box = try? AES.GCM.SealedBox(combined: bytes),
            let plain = try? AES.GCM.open(box, using: key, authenticating: Array(name.utf8))
        else { return nil }
        return try? StrictJSON.parse(Array(plain))
    }
}

/// A sign-in in progress, bound to one browser by the sealed login cookie.
public struct PendingSignIn: Sendable, Equatable {
    public static let lifetime: TimeInterval = 600

    public let tenantID: TenantID
    public let state: String
    public let nonce: String
    public let codeVerifier: String
    public let returnTo: ReturnTo
    public let expiresAt: Date

    public init(tenantID: TenantID, state: String, nonce: String, codeVerifier: String, returnTo: ReturnTo, expiresAt: Date) {
        self.tenantID = tenantID
        self.state = state
        self.nonce = nonce
        self.codeVerifier = codeVerifier
        self.returnTo = returnTo
        self.expiresAt = expiresAt
    }

    var json: JSONValue {
        [
            "t": .string(tenantID.rawValue), "s": .string(state), "n": .string(nonce), "v": .string(codeVerifier),
            "r": .string(returnTo.path), "e": .number(expiresAt.timeIntervalSince1970.rounded(.down)),
        ]
    }

    init?(json: JSONValue) {
        guard let tenant = json["t"]?.stringValue.flatMap(TenantID.init), let state = json["s"]?.stringValue,
            let nonce = json["n"]?.stringValue, let verifier = json["v"]?.stringValue,
            let returnTo = json["r"]?.stringValue.flatMap(ReturnTo.init), let expiry = json["e"]?.doubleValue
        else { return nil }
        self.init(
            tenantID: tenant, state: state, nonce: nonce, codeVerifier: verifier, returnTo: returnTo,
            expiresAt: Date(timeIntervalSince1970: expiry))
    }
}
