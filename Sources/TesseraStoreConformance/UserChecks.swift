import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// The first sign-in creates the user, a later one updates its identity and last sign-in under
    /// the same id and creation date; each writes one audit record, and `get` reads back what
    /// `upsert` returned.
    public func userUpsertCreatesThenUpdates() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let first = Fixtures.identity("alice", tenant: Fixtures.acme)
            let created = Fixtures.event("user.signed_in", tenant: Fixtures.acme, at: Fixtures.at(10))
            let user = try await probe.expectAudited(created, "first upsert") {
                try await probe.store.users.upsert(first, at: Fixtures.at(10), audit: created)
            }
            try probe.expect(!user.id.isEmpty, "the new user has an empty id")
            try probe.expectEqual(user.identity, first, "identity of the new user")
            try probe.expectEqual(user.disabledAt, nil, "disabledAt of the new user")
            try probe.expectEqual(user.createdAt, Fixtures.at(10), "createdAt of the new user")
            try probe.expectEqual(user.lastSignInAt, Fixtures.at(10), "lastSignInAt of the new user")
            try probe.expectEqual(try await probe.store.users.get(tenant: Fixtures.acme, subject: first.subject), user, "get the new user")

            let second = NormalizedIdentity(
                tenantID: Fixtures.acme, subject: first.subject, email: "alice.smith@acme.example", emailVerified: false, name: nil,
                groups: ["erp-readers"], roles: [], idpID: first.idpID)
            let updated = Fixtures.event("user.signed_in", tenant: Fixtures.acme, at: Fixtures.at(3600))
            let again = try await probe.expectAudited(updated, "second upsert") {
                try await probe.store.users.upsert(second, at: Fixtures.at(3600), audit: updated)
            }
            let expected = User(id: user.id, identity: second, disabledAt: nil, createdAt: Fixtures.at(10), lastSignInAt: Fixtures.at(3600))
            try probe.expectEqual(again, expected, "the updated user")
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: first.subject), expected, "get the updated user")
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: "oidc|idp-entra|nobody"), nil, "get an unknown user")
        }
    }

    /// The same subject in two tenants is two users, each with its own id and identity.
    public func userUpsertIsTenantScoped() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let inAcme = Fixtures.identity("alice", tenant: Fixtures.acme)
            let inGlobex = NormalizedIdentity(
                tenantID: Fixtures.globex, subject: inAcme.subject, email: "alice@globex.example", emailVerified: true, name: "Alice G",
                groups: ["globex-staff"], roles: ["viewer"], idpID: inAcme.idpID)
            let acmeUser = try await probe.signIn(inAcme, at: Fixtures.at(1))
            let globexUser = try await probe.signIn(inGlobex, at: Fixtures.at(2))
            try probe.expect(acmeUser.id != globexUser.id, "both tenants' users got the id \(acmeUser.id)")
            try probe.expectEqual(try await probe.store.users.get(tenant: Fixtures.acme, subject: inAcme.subject), acmeUser, "acme's alice")
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.globex, subject: inAcme.subject), globexUser, "globex's alice")
            try await probe.store.users.disable(
                tenant: Fixtures.globex, subject: inAcme.subject, at: Fixtures.at(3),
                audit: Fixtures.event("user.disabled", tenant: Fixtures.globex))
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: inAcme.subject)?.disabledAt, nil,
                "acme's alice after disabling globex's")
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.tenantID("initech"), subject: inAcme.subject), nil,
                "alice in a tenant she never signed in to")
        }
    }

    /// Signing in to a tenant that does not exist is `notFound` and writes nothing.
    public func userUpsertOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let ghost = Fixtures.identity("alice", tenant: Fixtures.globex)
            try await probe.expectNotAudited("upsert in an unknown tenant") {
                try await probe.expectError(.notFound, "upsert in an unknown tenant") {
                    try await probe.store.users.upsert(
                        ghost, at: Fixtures.epoch, audit: Fixtures.event("user.signed_in", tenant: Fixtures.globex))
                }
            }
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.globex, subject: ghost.subject), nil, "the user is not stored")
        }
    }

    /// Signing in as a disabled user returns it as stored, still disabled, and writes nothing:
    /// neither the new identity, nor the sign-in date, nor an audit record.
    public func userUpsertOfDisabledUserWritesNothing() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let identity = Fixtures.identity("alice", tenant: Fixtures.acme)
            let user = try await probe.signIn(identity, at: Fixtures.at(10))
            try await probe.store.users.disable(
                tenant: Fixtures.acme, subject: identity.subject, at: Fixtures.at(20),
                audit: Fixtures.event("user.disabled", tenant: Fixtures.acme))
            let disabled = User(
                id: user.id, identity: identity, disabledAt: Fixtures.at(20), createdAt: Fixtures.at(10), lastSignInAt: Fixtures.at(10))
            let changed = Fixtures.identity("alice", tenant: Fixtures.acme, groups: ["crm-admins", "erp-admins"])
            var answer: User?
            try await probe.expectNotAudited("upsert of a disabled user") {
                answer = try await probe.store.users.upsert(
                    changed, at: Fixtures.at(30), audit: Fixtures.event("user.signed_in", tenant: Fixtures.acme))
            }
            try probe.expectEqual(answer, disabled, "upsert's answer for a disabled user")
            try probe.expect(answer?.isDisabled == true, "upsert returned a disabled user as enabled")
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: identity.subject), disabled, "the stored user")
        }
    }

    /// Disabling records the date and one audit record; disabling again keeps the first date and,
    /// since nothing changes, writes no record.
    public func userDisableKeepsFirstDate() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let identity = Fixtures.identity("alice", tenant: Fixtures.acme)
            let user = try await probe.signIn(identity, at: Fixtures.at(10))
            let first = Fixtures.event("user.disabled", tenant: Fixtures.acme, at: Fixtures.at(60))
            try await probe.expectAudited(first, "disable") {
                try await probe.store.users.disable(tenant: Fixtures.acme, subject: identity.subject, at: Fixtures.at(60), audit: first)
            }
            let disabled = User(
                id: user.id, identity: identity, disabledAt: Fixtures.at(60), createdAt: Fixtures.at(10), lastSignInAt: Fixtures.at(10))
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: identity.subject), disabled, "the disabled user")
            try await probe.expectNotAudited("disable again") {
                try await probe.store.users.disable(
                    tenant: Fixtures.acme, subject: identity.subject, at: Fixtures.at(120),
                    audit: Fixtures.event("user.disabled", tenant: Fixtures.acme, at: Fixtures.at(120)))
            }
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: identity.subject), disabled,
                "the user after disabling twice")
        }
    }

    /// Disabling a user that does not exist, also one that exists only in another tenant, is
    /// `notFound` and audits nothing.
    public func userDisableUnknownIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let alice = Fixtures.identity("alice", tenant: Fixtures.acme)
            try await probe.signIn(alice)
            let cases: [(String, TenantID, String)] = [
                ("an unknown subject", Fixtures.acme, "oidc|idp-entra|nobody"),
                ("a subject of another tenant", Fixtures.globex, alice.subject),
                ("a subject in an unknown tenant", Fixtures.tenantID("initech"), alice.subject),
            ]
            for (what, tenant, subject) in cases {
                try await probe.expectNotAudited("disable \(what)") {
                    try await probe.expectError(.notFound, "disable \(what)") {
                        try await probe.store.users.disable(
                            tenant: tenant, subject: subject, at: Fixtures.epoch, audit: Fixtures.event("user.disabled", tenant: tenant))
                    }
                }
            }
            try probe.expectEqual(
                try await probe.store.users.get(tenant: Fixtures.acme, subject: alice.subject)?.disabledAt, nil,
                "acme's alice stays enabled")
        }
    }

    /// Disabling a user kills their live sessions, also one created afterwards (a sign-in racing
    /// the disabling), and spares other users' sessions.
    public func userDisableKillsTheirSessions() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            let bob = try await probe.signIn(Fixtures.identity("bob", tenant: Fixtures.acme))
            for session in [
                Fixtures.session("alice-laptop", of: alice), Fixtures.session("alice-phone", of: alice), Fixtures.session("bob", of: bob),
            ] {
                try await probe.createSession(session)
            }
            for label in ["alice-laptop", "bob"] {
                let live = try await probe.store.sessions.touch(hash: Fixtures.sessionHash(label), now: Fixtures.at(60), idleTimeout: 3600)
                try probe.expect(live != nil, "\(label)'s session is not live before disabling")
            }
            try await probe.store.users.disable(
                tenant: Fixtures.acme, subject: alice.identity.subject, at: Fixtures.at(120),
                audit: Fixtures.event("user.disabled", tenant: Fixtures.acme))
            try await probe.createSession(Fixtures.session("alice-late", of: alice, createdAt: Fixtures.at(121)))
            for label in ["alice-laptop", "alice-phone", "alice-late"] {
                try probe.expectEqual(
                    try await probe.store.sessions.touch(hash: Fixtures.sessionHash(label), now: Fixtures.at(180), idleTimeout: 3600), nil,
                    "touch \(label)'s session after disabling her")
            }
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("bob"), now: Fixtures.at(180), idleTimeout: 3600)?
                    .lastSeenAt,
                Fixtures.at(180), "bob's session after disabling alice")
        }
    }
}
