public import Foundation
public import TesseraCore

/// RFC 6749 §4.4: a client obtains a token for itself.
///
/// The requested scopes must each be covered by a scope the client is registered for; without a
/// `scope` parameter the client gets all its registered scopes (RFC 6749 §3.3 lets the server
/// choose a default). The audience is the set of systems the granted scopes address
/// (`crm` for `crm:contacts.read`), so a resource server can check `aud` against its own name.
public struct ClientCredentialsGrant: GrantHandler {
    public let grantType = GrantType.clientCredentials

    public init() {}

    public func decide(_ context: GrantContext) async throws(OAuthError) -> GrantDecision {
        let form = context.request.form
        guard form.all("resource").isEmpty, form.all("audience").isEmpty else {
            throw OAuthError(
                .invalidTarget, "resource and audience are not available for this grant",
                reason: "client_credentials does not take resource/audience; the audience follows the scopes")
        }
        let registered = context.client.scopes
        let granted: ScopeSet
        if let text = form["scope"] {
            let requested: ScopeSet
            do {
                requested = try ScopeSet(parsing: text)
            } catch {
                throw .invalidScope(reason: error.description)
            }
            if let wildcard = requested.scopes.first(where: \.hasWildcard) {
                throw .invalidScope(reason: "wildcard scope \(wildcard) requested; wildcards need a policy that names them")
            }
            let uncovered = registered.uncovered(requested)
            guard uncovered.isEmpty else {
                throw .invalidScope(reason: "not covered by the client's registration: \(ScopeSet(uncovered))")
            }
            granted = requested
        } else {
            granted = registered
        }
        guard !granted.isEmpty else { throw .invalidScope(reason: "no scope to grant") }
        let audience = Array(Set(granted.scopes.map { String($0.base.prefix { $0 != ":" }) })).sorted()
        return GrantDecision(
            subject: context.client.clientID, subjectType: .service, scopes: granted, audience: audience,
            lifetime: context.settings.accessTokenLifetime)
    }
}
