"""RFC 8693 token exchange, workload federation, exchange policy and refresh tokens: the happy
paths, against docs/token-exchange.md, with the client side done by independent libraries.

A simulated workload issuer (a CI OIDC issuer) has an EC P-256 and an RSA key made with
`cryptography`; its JWTs are signed with PyJWT or jwcrypto. DPoP proofs are made with jwcrypto;
issued tokens are verified with PyJWT against the live `jwks_uri`. Server nonces are on (the
default): every DPoP exchange goes through the `use_dpop_nonce` round trip.

The parties and acme's policy (one rule per kind of exchange, each for its own client) are built
through the CLI by `support.build_exchange_world`. Hostile requests: test_token_exchange_hostile.py;
the randomized narrowing test: test_token_exchange_random.py.
"""

from __future__ import annotations

import json

import pytest

from support import (ACCESS_TOKEN_URN, CI_ISSUER, CRM_API, READ_WRITE, TOKEN_EXCHANGE_GRANT, DPoPKey,
                     add_client_with_grants, assert_oauth_error, audit_export, audit_export_text, build_exchange_world,
                     describe, exchange, get_policy, introspection_of, put_policy, refresh, revoke_with_hint,
                     unverified_claims, verify_access_token)

WORKLOAD_SUB = "repo:acme/widgets:ref:refs/heads/main"


@pytest.fixture(scope="module")
def world(broker, tmp_path_factory):
    return build_exchange_world(broker, tmp_path_factory.mktemp("exchange"))


def ok(response) -> dict:
    """A successful RFC 8693 §2.2.1 answer: 200, JSON, no-store. Returns the body."""
    assert response.status_code == 200, describe(response)
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
    assert "no-store" in response.headers.get("Cache-Control", ""), "token response without Cache-Control: no-store"
    body = response.json()
    assert isinstance(body.get("access_token"), str) and isinstance(body.get("expires_in"), int), sorted(body)
    return body


def delegated(broker, world, dpop: DPoPKey | None, scope: str | None = "crm:contacts.read"):
    """upstream's client_credentials token (the root), exchanged by `delegate` with its own token
    as actor. Returns (root token, exchanged token, its claims)."""
    root = broker.token(world.up)
    actor = broker.token(world.deleg)
    body = ok(exchange(broker, world.deleg, root, actor_token=actor, scope=scope, dpop=dpop))
    return root, body["access_token"], verify_access_token(broker, body["access_token"])


# ----------------------------------------------------------------------------------------------
# Discovery


def test_metadata_lists_token_exchange_and_refresh_token_grants(broker, world):
    grants = broker.metadata().get("grant_types_supported", [])
    assert TOKEN_EXCHANGE_GRANT in grants and "refresh_token" in grants, grants


def test_idps_list_shows_the_workload_issuer(broker, world):
    listed = broker.cli("idps", "list", "--tenant", "acme").json
    assert CI_ISSUER in json.dumps(listed), "idps list does not name the workload issuer"
    assert CI_ISSUER not in json.dumps(broker.cli("idps", "list", "--tenant", "initech").json)


# ----------------------------------------------------------------------------------------------
# (a) a workload JWT exchanged with a DPoP proof


@pytest.mark.parametrize("library,key", [("pyjwt", "ec"), ("pyjwt", "rsa"), ("jwcrypto", "ec")],
                         ids=["pyjwt-ES256", "pyjwt-RS256", "jwcrypto-ES256"])
def test_workload_jwt_with_dpop_proof_gets_narrowed_bound_token(broker, world, library, key):
    dpop = DPoPKey()
    subject_claims = world.ci.claims(sub=WORKLOAD_SUB)
    subject = world.ci.sign(subject_claims, key=key, library=library)
    response = exchange(broker, world.wl, subject, "jwt", scope="crm:contacts.read", dpop=dpop,
                        expect_nonce_challenge=True)
    body = ok(response)
    assert body["token_type"] == "DPoP", body.get("token_type")
    assert body["issued_token_type"] == ACCESS_TOKEN_URN, body.get("issued_token_type")
    assert body.get("scope") == "crm:contacts.read"
    assert 0 < body["expires_in"] <= 300, body["expires_in"]
    assert "refresh_token" not in body, "the workload-dpop rule does not allow refresh tokens"

    claims = verify_access_token(broker, body["access_token"], audience="crm")
    assert claims["iss"] == broker.issuer
    assert claims["aud"] in ("crm", ["crm"]), claims["aud"]
    assert claims["exp"] - claims["iat"] <= 300, "lifetime beyond the rule's max_lifetime"
    assert claims["exp"] <= subject_claims["exp"], "lifetime beyond the subject token's"
    assert claims["sub"] == WORKLOAD_SUB
    assert claims["sub_type"] == "service"
    assert claims["client_id"] == world.wl.client_id
    assert claims["tid"] == "acme"
    assert claims["scope"] == "crm:contacts.read"
    assert claims.get("cnf") == {"jkt": dpop.thumbprint}, claims.get("cnf")
    assert "act" not in claims, "no actor token, yet an act claim"

    answer = introspection_of(broker, world.rs, body["access_token"])
    assert answer["active"] is True
    assert answer.get("cnf") == {"jkt": dpop.thumbprint}
    assert answer.get("sub") == WORKLOAD_SUB and answer.get("client_id") == world.wl.client_id
    assert answer.get("token_type") == "DPoP"


def test_workload_jwt_with_aud_list_containing_the_audience_gets_the_default_scopes(broker, world):
    dpop = DPoPKey()
    subject = world.ci.token(aud=["https://other.example", "tessera"])
    body = ok(exchange(broker, world.wl, subject, "jwt", dpop=dpop))
    # Default: every scope the subject holds (the issuer's --scopes) that registration and rule cover.
    assert set(body["scope"].split()) == set(READ_WRITE.split()), body["scope"]
    claims = verify_access_token(broker, body["access_token"])
    assert set(claims["scope"].split()) == set(READ_WRITE.split())
    assert claims["cnf"] == {"jkt": dpop.thumbprint}


# ----------------------------------------------------------------------------------------------
# (b) delegation, (c) chains


def test_access_token_with_actor_token_carries_act_and_introspection_reports_it(broker, world):
    dpop = DPoPKey()
    root, token, claims = delegated(broker, world, dpop)
    root_claims = unverified_claims(root)
    assert claims["sub"] == world.up.client_id == root_claims["sub"]
    assert claims["sub_type"] == "service"
    assert claims["client_id"] == world.deleg.client_id
    assert claims["tid"] == "acme"
    assert claims["scope"] == "crm:contacts.read"
    assert claims["act"]["sub"] == world.deleg.client_id, claims["act"]
    assert "act" not in claims["act"], "the subject had no act, yet the result's act is nested"
    assert claims["cnf"] == {"jkt": dpop.thumbprint}
    assert claims["exp"] - claims["iat"] <= 400 and claims["exp"] <= root_claims["exp"]

    answer = introspection_of(broker, world.rs, token)
    assert answer["active"] is True
    assert answer.get("act") == claims["act"], f"introspection act {answer.get('act')!r} != JWT act {claims['act']!r}"
    assert answer.get("cnf") == {"jkt": dpop.thumbprint}
    assert answer.get("sub") == world.up.client_id and answer.get("client_id") == world.deleg.client_id


def test_re_exchange_with_another_actor_nests_act_outermost_current(broker, world):
    dpop = DPoPKey()
    _, first, first_claims = delegated(broker, world, dpop)
    # The first result is bound to `dpop`: the chained exchange proves possession of the same key.
    body = ok(exchange(broker, world.chain, first, actor_token=broker.token(world.chain), dpop=dpop))
    assert body["token_type"] == "DPoP"
    claims = verify_access_token(broker, body["access_token"])
    assert claims["act"]["sub"] == world.chain.client_id, claims["act"]
    assert claims["act"].get("act") == first_claims["act"], f"nested act {claims['act']!r}"
    assert claims["act"]["act"]["sub"] == world.deleg.client_id
    assert claims["sub"] == world.up.client_id
    assert claims["client_id"] == world.chain.client_id
    assert claims["scope"] == "crm:contacts.read", "the default scope widened past the subject's"
    assert claims["exp"] <= first_claims["exp"]
    assert claims["cnf"] == {"jkt": dpop.thumbprint}
    answer = introspection_of(broker, world.rs, body["access_token"])
    assert answer["active"] is True and answer.get("act") == claims["act"]


def test_exchange_for_listed_resource_is_granted_within_allowed_targets(broker, world):
    body = ok(exchange(broker, world.deleg, broker.token(world.up), actor_token=broker.token(world.deleg),
                       scope="crm:contacts.read", resource=[CRM_API]))
    assert body["token_type"] == "Bearer"
    claims = verify_access_token(broker, body["access_token"], audience=None)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert audiences and set(audiences) <= {"crm", CRM_API}, audiences


def test_workload_jwt_as_actor_token_bounds_the_lifetime_and_names_the_actor(broker, world):
    actor_claims = world.ci.claims(sub="repo:acme/deployer:ref:refs/heads/main", lifetime=45)
    actor = world.ci.sign(actor_claims)
    body = ok(exchange(broker, world.imp, broker.token(world.up), scope="crm:contacts.read", actor_token=actor,
                       actor_token_type="jwt"))
    assert body["expires_in"] <= 45, f"expires_in {body['expires_in']} with an actor token 45 s from expiry"
    claims = verify_access_token(broker, body["access_token"])
    assert claims["exp"] <= actor_claims["exp"]
    assert claims["act"]["sub"] == actor_claims["sub"], claims["act"]
    assert claims["sub"] == world.up.client_id


def test_wildcard_scope_is_granted_only_by_a_rule_naming_wildcards(broker, world):
    subject = broker.token(world.up)  # holds crm:contacts.read, every id
    body = ok(exchange(broker, world.imp, subject, scope="crm:contacts.read:ids=*"))  # rule imp-wildcards
    assert body["scope"] == "crm:contacts.read:ids=*"
    assert verify_access_token(broker, body["access_token"])["scope"] == "crm:contacts.read:ids=*"


def test_rule_for_every_client_of_the_tenant(broker, world, tmp_path):
    broker.add_tenant("wayne")
    source = add_client_with_grants(broker, "wayne", "source", READ_WRITE, grants="client_credentials")
    anyone = add_client_with_grants(broker, "wayne", "anyone", READ_WRITE)
    put_policy(broker, "wayne", {"exchange": [
        {"id": "everyone", "effect": "allow", "clients": ["*"], "subject_token_types": ["access_token"],
         "scopes": "crm:contacts.read", "actor": "optional", "dpop": "optional"}]}, tmp_path / "wayne.json")
    body = ok(exchange(broker, anyone, broker.token(source)))
    assert body["scope"] == "crm:contacts.read"
    # ... but not for another tenant's clients.
    assert_oauth_error(exchange(broker, world.imp, broker.token(source), scope="crm:contacts.read"),
                       "invalid_request")


# ----------------------------------------------------------------------------------------------
# (d) lineage: revoking a token makes every token derived from it inactive


def test_revoking_the_root_token_makes_every_descendant_inactive(broker, world):
    root, first, _ = delegated(broker, world, None)
    second = ok(exchange(broker, world.chain, first, actor_token=broker.token(world.chain)))["access_token"]
    sibling = ok(exchange(broker, world.imp, root, scope="crm:contacts.read"))["access_token"]
    bystander = broker.token(world.up)
    for token in (root, first, second, sibling, bystander):
        assert introspection_of(broker, world.rs, token)["active"] is True

    response = broker.revoke(world.up, root)
    assert response.status_code == 200, describe(response)

    for name, token in (("root", root), ("exchanged", first), ("re-exchanged", second), ("sibling", sibling)):
        assert introspection_of(broker, world.rs, token) == {"active": False}, f"{name} still active"
    assert introspection_of(broker, world.rs, bystander)["active"] is True, "an unrelated token was revoked"
    # Nothing can be exchanged from the revoked line any more.
    assert_oauth_error(exchange(broker, world.imp, root, scope="crm:contacts.read"), "invalid_request",
                       never_echo=[root])
    assert_oauth_error(exchange(broker, world.chain, first, actor_token=broker.token(world.chain)),
                       "invalid_request", never_echo=[first])


def test_revoking_a_middle_token_cuts_off_its_descendants_only(broker, world):
    root, first, _ = delegated(broker, world, None)
    second = ok(exchange(broker, world.chain, first, actor_token=broker.token(world.chain)))["access_token"]
    response = broker.revoke(world.deleg, first)  # `first` was issued to delegate
    assert response.status_code == 200, describe(response)
    assert introspection_of(broker, world.rs, first) == {"active": False}
    assert introspection_of(broker, world.rs, second) == {"active": False}
    assert introspection_of(broker, world.rs, root)["active"] is True, "revoking a child revoked its parent"


# ----------------------------------------------------------------------------------------------
# (e) refresh tokens


def refreshable(broker, world, dpop: DPoPKey, scope: str = READ_WRITE) -> dict:
    """A workload JWT exchanged by `refresher` (rule refreshable: refresh_tokens true)."""
    body = ok(exchange(broker, world.rf, world.ci.token(), "jwt", scope=scope, dpop=dpop))
    assert isinstance(body.get("refresh_token"), str), "the refreshable rule issued no refresh_token"
    assert body["token_type"] == "DPoP"
    assert body["expires_in"] <= 120
    return body


def test_refresh_token_rotates_and_reuse_revokes_the_family(broker, world):
    dpop = DPoPKey()
    first = refreshable(broker, world, dpop)
    rt1, at1 = first["refresh_token"], first["access_token"]
    assert rt1.count(".") < 2 and len(rt1) >= 43, "a refresh token is opaque and carries 256 bits"
    assert rt1 != at1

    second = ok(refresh(broker, world.rf, rt1, dpop))
    rt2, at2 = second.get("refresh_token"), second["access_token"]
    assert isinstance(rt2, str) and rt2 != rt1, "the refresh token was not rotated"
    assert at2 != at1
    assert second["token_type"] == "DPoP" and second["expires_in"] <= 120
    claims = verify_access_token(broker, at2)
    assert claims["cnf"] == {"jkt": dpop.thumbprint}
    assert claims["sub"] == WORKLOAD_SUB and claims["sub_type"] == "service"
    assert claims["client_id"] == world.rf.client_id and claims["tid"] == "acme"
    assert set(claims["scope"].split()) == set(READ_WRITE.split())
    for token in (at1, at2):
        assert introspection_of(broker, world.rs, token)["active"] is True

    # The rotated one presented again: refused, and the whole family is gone.
    assert_oauth_error(refresh(broker, world.rf, rt1, dpop), "invalid_grant", never_echo=[rt1])
    assert_oauth_error(refresh(broker, world.rf, rt2, dpop), "invalid_grant", never_echo=[rt2])
    assert introspection_of(broker, world.rs, at1) == {"active": False}, "first access token of the family still active"
    assert introspection_of(broker, world.rs, at2) == {"active": False}, "refreshed access token still active"
    actions = [record["action"] for record in audit_export(broker, "--tenant", "acme")]
    assert "token.refreshed" in actions and "token.refresh_reused" in actions


def test_refresh_with_proof_from_another_key_without_proof_or_by_another_client_is_refused(broker, world):
    dpop = DPoPKey()
    rt = refreshable(broker, world, dpop)["refresh_token"]
    assert_oauth_error(refresh(broker, world.rf, rt, DPoPKey()), ("invalid_grant", "invalid_dpop_proof"),
                       never_echo=[rt])
    assert_oauth_error(refresh(broker, world.rf, rt, None), ("invalid_grant", "invalid_dpop_proof"), never_echo=[rt])
    # RFC 6749 §6: a refresh token is bound to the client it was issued to.
    assert_oauth_error(refresh(broker, world.deleg, rt, dpop), "invalid_grant", never_echo=[rt])


def test_refresh_may_narrow_the_scope_never_widen_it(broker, world):
    dpop, dpop2 = DPoPKey(), DPoPKey()
    narrow = refreshable(broker, world, dpop, scope="crm:contacts.read")
    assert_oauth_error(refresh(broker, world.rf, narrow["refresh_token"], dpop, scope=READ_WRITE), "invalid_scope")

    wide = refreshable(broker, world, dpop2)
    body = ok(refresh(broker, world.rf, wide["refresh_token"], dpop2, scope="crm:contacts.read"))
    assert body["scope"] == "crm:contacts.read"
    assert verify_access_token(broker, body["access_token"])["scope"] == "crm:contacts.read"


def test_revoking_a_refresh_token_revokes_its_family(broker, world):
    dpop = DPoPKey()
    body = refreshable(broker, world, dpop)
    response = revoke_with_hint(broker, world.rf, body["refresh_token"], "refresh_token")
    assert response.status_code == 200, describe(response)
    assert_oauth_error(refresh(broker, world.rf, body["refresh_token"], dpop), "invalid_grant")
    assert introspection_of(broker, world.rs, body["access_token"]) == {"active": False}


def test_revoking_the_subject_token_cuts_off_the_refresh_family(broker, world):
    root = broker.token(world.up)
    body = ok(exchange(broker, world.rf, root, scope="crm:contacts.read"))
    assert isinstance(body.get("refresh_token"), str), "the refreshable-access-token rule issued no refresh_token"
    assert body["token_type"] == "Bearer"
    assert broker.revoke(world.up, root).status_code == 200
    assert introspection_of(broker, world.rs, body["access_token"]) == {"active": False}
    assert_oauth_error(refresh(broker, world.rf, body["refresh_token"]), "invalid_grant")


def test_refresh_is_decided_again_by_the_current_policy(broker, world, tmp_path):
    """A tenant of its own whose policy is withdrawn between the exchange and the refresh."""
    broker.add_tenant("hooli")
    client = add_client_with_grants(broker, "hooli", "refresher", READ_WRITE)
    source = add_client_with_grants(broker, "hooli", "source", READ_WRITE, grants="client_credentials")
    rule = {"id": "refresh", "effect": "allow", "clients": [client.client_id], "subject_token_types": ["access_token"],
            "scopes": READ_WRITE, "actor": "optional", "dpop": "optional", "refresh_tokens": True}
    put_policy(broker, "hooli", {"exchange": [rule]}, tmp_path / "v1.json")
    body = ok(exchange(broker, client, broker.token(source), scope="crm:contacts.read"))
    second = ok(refresh(broker, client, body["refresh_token"]))
    put_policy(broker, "hooli", {"exchange": []}, tmp_path / "v2.json")
    assert_oauth_error(refresh(broker, client, second["refresh_token"]), ("invalid_request", "invalid_grant"),
                       never_echo=[second["refresh_token"]])


def test_refreshed_token_keeps_the_delegation_chain(broker, world):
    body = ok(exchange(broker, world.rf, broker.token(world.up), scope="crm:contacts.read",
                       actor_token=broker.token(world.rf)))
    act = verify_access_token(broker, body["access_token"])["act"]
    assert act["sub"] == world.rf.client_id
    refreshed = ok(refresh(broker, world.rf, body["refresh_token"]))
    claims = verify_access_token(broker, refreshed["access_token"])
    assert claims.get("act") == act, f"refresh dropped or changed the act chain: {claims.get('act')!r}"
    assert claims["sub"] == world.up.client_id


def test_another_client_cannot_revoke_a_refresh_token(broker, world):
    dpop = DPoPKey()
    body = refreshable(broker, world, dpop)
    response = revoke_with_hint(broker, world.deleg, body["refresh_token"], "refresh_token")
    assert response.status_code in (200, 400), describe(response)
    assert "refresh_token" not in response.text
    assert introspection_of(broker, world.rs, body["access_token"])["active"] is True
    ok(refresh(broker, world.rf, body["refresh_token"], dpop))


def test_concurrent_refreshes_with_one_token_rotate_it_at_most_once(broker, world):
    from concurrent.futures import ThreadPoolExecutor

    body = ok(exchange(broker, world.rf, broker.token(world.up), scope="crm:contacts.read"))  # unbound family
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: refresh(broker, world.rf, body["refresh_token"]), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) <= 1, f"one refresh token was rotated {statuses.count(200)} times: {statuses}"
    for response in responses:
        if response.status_code != 200:
            assert_oauth_error(response, "invalid_grant", never_echo=[body["refresh_token"]])


def test_rule_without_refresh_tokens_issues_none(broker, world):
    body = ok(exchange(broker, world.imp, broker.token(world.up), scope="crm:contacts.read"))
    assert "refresh_token" not in body


# ----------------------------------------------------------------------------------------------
# (f) policies explain: the dry run


def explanation_rules(out: dict) -> dict[str, dict]:
    rules = out.get("rules")
    assert isinstance(rules, list) and rules, f"no per-rule entries in the explanation (members: {sorted(out)})"
    by_id = {}
    for entry in rules:
        rule_id = entry.get("id") or entry.get("rule")
        assert rule_id and isinstance(entry.get("matched"), bool), f"rule entry without id/matched: {entry}"
        by_id[rule_id] = entry
    return by_id


def decided_by(out: dict) -> str | None:
    """The rule that decided: the one rule entry that matched (the contract names no member for
    it; an allow is also named by the top-level `rule` member, which must then agree)."""
    matched = [entry.get("id") for entry in out.get("rules", []) if entry.get("matched") is True]
    assert len(matched) <= 1, f"more than one rule matched: {matched}"
    if out.get("rule") is not None:
        assert [out["rule"]] == matched, f"rule {out['rule']!r} but matched entries {matched}"
    return matched[0] if matched else None


def values_named(value, names: tuple[str, ...]) -> list:
    """Every value of a member with one of `names`, at any depth."""
    found = []
    if isinstance(value, dict):
        for key, member in value.items():
            if key in names:
                found.append(member)
            found += values_named(member, names)
    elif isinstance(value, list):
        for member in value:
            found += values_named(member, names)
    return found


def explain(broker, tmp_path, request: dict, policy: dict | None = None) -> dict:
    request_path = tmp_path / "request.json"
    request_path.write_text(json.dumps(request))
    args = ["policies", "explain", "--tenant", "acme", "--request", str(request_path)]
    if policy is not None:
        policy_path = tmp_path / "unsaved-policy.json"
        policy_path.write_text(json.dumps(policy))
        args += ["--policy", str(policy_path)]
    return broker.cli(*args).json


def workload_request(world, **overrides) -> dict:
    request = {"client_id": world.wl.client_id, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
               "subject_issuer": CI_ISSUER, "subject": WORKLOAD_SUB, "audience": [], "resource": [],
               "scope": "crm:contacts.read", "dpop": True}
    request.update(overrides)
    return request


def minted_count(broker) -> int:
    return sum(record["action"] in ("token.exchanged", "token.refreshed", "token.issued")
               for record in audit_export(broker))


def test_policies_explain_allow_names_the_rule_and_mints_nothing(broker, world, tmp_path):
    before = minted_count(broker)
    out = explain(broker, tmp_path, workload_request(world))
    assert out.get("outcome") == "allow", out
    assert decided_by(out) == "workload-dpop", out
    rules = explanation_rules(out)
    assert rules["workload-dpop"]["matched"] is True
    assert rules["imp-no-writes"]["matched"] is False, "the deny rule is evaluated first and does not apply"
    assert world.policy_version in values_named(out, ("version", "policy_version")), \
        f"the explanation names no policy version: {out}"
    assert minted_count(broker) == before, "explain minted a token"


def test_policies_explain_lists_every_rule_of_the_policy(broker, world, tmp_path):
    """docs/token-exchange.md: the explanation has "every rule with whether it matched and the
    first condition that failed", also the rules after the one that decided."""
    out = explain(broker, tmp_path, workload_request(world))
    assert out.get("outcome") == "allow", out
    listed = [entry.get("id") for entry in out.get("rules", [])]
    expected = [rule["id"] for rule in world.policy["exchange"]]
    assert sorted(listed) == sorted(expected), f"explanation lists rules {listed}, the policy has {expected}"
    assert explanation_rules(out)["delegation"]["matched"] is False


@pytest.mark.parametrize("overrides", [{"subject": "repo:evil/widgets"}, {"dpop": False},
                                       {"scope": "crm:contacts.delete"}, {"audience": ["billing"]}],
                         ids=["subject-glob", "dpop-required", "scope-ceiling", "audience"])
def test_policies_explain_deny_shows_each_rule_failing(broker, world, tmp_path, overrides):
    before = minted_count(broker)
    out = explain(broker, tmp_path, workload_request(world, **overrides))
    assert out.get("outcome") == "deny", out
    rules = explanation_rules(out)
    assert not any(entry["matched"] for rule_id, entry in rules.items() if rule_id != "imp-no-writes"), rules
    entry = rules["workload-dpop"]
    assert any(value for key, value in entry.items() if key not in ("id", "rule", "matched")), \
        f"the failing rule entry names no failed condition: {entry}"
    assert minted_count(broker) == before


@pytest.mark.parametrize("audience", [[], ["crm"]], ids=["default-audience", "explicit-audience"])
def test_deny_rule_on_an_audience_applies_to_the_default_audience_too(broker, world, tmp_path, audience):
    """A deny rule's `audiences` condition, as the doc states it: "without them [an explicit
    audience], only the default (scope systems) audience is allowed, and it must be listed". A
    token that would be for crm matches a deny rule listing crm, asked for explicitly or not."""
    unsaved = {"exchange": [
        {"id": "deny-crm", "effect": "deny", "clients": [world.wl.client_id], "subject_token_types": ["jwt"],
         "audiences": ["crm"]},
        *world.policy["exchange"],
    ]}
    out = explain(broker, tmp_path, workload_request(world, audience=audience), policy=unsaved)
    assert out.get("outcome") == "deny", f"a token for crm escaped the deny rule on crm: {out.get('reason')}"
    assert decided_by(out) == "deny-crm"


def test_policies_explain_with_unsaved_policy_uses_it_and_stores_nothing(broker, world, tmp_path):
    unsaved = {"exchange": [
        {"id": "deny-wl-reads", "effect": "deny", "clients": [world.wl.client_id], "subject_token_types": ["jwt"],
         "scopes": "crm:contacts.read"},
        *world.policy["exchange"],
    ]}
    out = explain(broker, tmp_path, workload_request(world), policy=unsaved)
    assert out.get("outcome") == "deny", out
    assert decided_by(out) == "deny-wl-reads", out
    assert explanation_rules(out)["deny-wl-reads"]["matched"] is True
    assert get_policy(broker, "acme")["version"] == world.policy_version, "explain --policy stored the policy"
    # ... and the stored policy still allows the same request.
    assert explain(broker, tmp_path, workload_request(world)).get("outcome") == "allow"


# ----------------------------------------------------------------------------------------------
# (g) policies put / get


def test_policies_get_returns_the_stored_version_and_rules(broker, world):
    out = get_policy(broker, "acme")
    assert out["tenant"] == "acme" and out["version"] == world.policy_version
    assert [rule["id"] for rule in out["document"]["exchange"]] == [rule["id"] for rule in world.policy["exchange"]]


UMBRELLA_CLIENT = "@UMBRELLA_CLIENT@"  # replaced by the id of a client registered in the umbrella tenant
VALID_RULE = {"id": "reads", "effect": "allow", "clients": [UMBRELLA_CLIENT], "subject_token_types": ["access_token"],
              "scopes": "crm:contacts.read", "actor": "optional", "max_lifetime": 300}


def with_rule(**changes) -> dict:
    rule = {**VALID_RULE, **changes}
    return {"exchange": [{k: v for k, v in rule.items() if v is not None}]}


INVALID_DOCUMENTS = {
    "unknown-top-level-member": {"exchange": [VALID_RULE], "comment": "hello"},
    "unknown-rule-member": with_rule(colour="blue"),
    "duplicate-rule-id": {"exchange": [VALID_RULE, {**VALID_RULE, "scopes": "crm:contacts.write"}]},
    "max-lifetime-901": with_rule(max_lifetime=901),
    "max-lifetime-0": with_rule(max_lifetime=0),
    "refresh-lifetime-59": with_rule(refresh_tokens=True, refresh_lifetime=59),
    "refresh-lifetime-86401": with_rule(refresh_tokens=True, refresh_lifetime=86401),
    "max-lifetime-as-string": with_rule(max_lifetime="300"),
    "effect-maybe": with_rule(effect="maybe"),
    "actor-sometimes": with_rule(actor="sometimes"),
    "dpop-never": with_rule(dpop="never"),
    "allow-without-scopes": with_rule(scopes=None),
    "without-clients": with_rule(clients=None),
    "unknown-token-type": with_rule(subject_token_types=["password"]),
    "bad-rule-id": with_rule(id="no spaces allowed"),
    "rule-id-65-chars": with_rule(id="r" * 65),
    "bad-scope": with_rule(scopes="CRM contacts"),
    "duplicate-json-member": '{"exchange": [], "exchange": ' + json.dumps([VALID_RULE]) + "}",
    "not-json": '{"exchange": [',
}


@pytest.fixture(scope="module")
def umbrella(broker, world, tmp_path_factory):
    """A tenant of its own, with a client and one valid stored policy version."""
    from types import SimpleNamespace

    broker.add_tenant("umbrella")
    client = add_client_with_grants(broker, "umbrella", "connector", "crm:contacts.read crm:contacts.write")
    directory = tmp_path_factory.mktemp("umbrella")
    parties = SimpleNamespace(directory=directory, client_id=client.client_id)
    out = put_umbrella(broker, parties, {"exchange": [VALID_RULE]}, "v1")
    assert out.returncode == 0, out.stderr[-500:]
    assert out.json == {"tenant": "umbrella", "version": out.json["version"]}, out.json
    assert isinstance(out.json["version"], int)
    return parties


def put_umbrella(broker, umbrella, document, name: str):
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    return put_policy(broker, "umbrella", text.replace(UMBRELLA_CLIENT, umbrella.client_id),
                      umbrella.directory / f"{name}.json", check=False)


@pytest.mark.parametrize("name", list(INVALID_DOCUMENTS))
def test_policies_put_refuses_invalid_document_and_stores_nothing(broker, umbrella, name):
    before = get_policy(broker, "umbrella")
    result = put_umbrella(broker, umbrella, INVALID_DOCUMENTS[name], name)
    assert result.returncode != 0, f"policies put accepted the {name} document"
    assert result.stderr.strip(), "refused without saying why"
    after = get_policy(broker, "umbrella")
    assert after == before, f"a refused put changed the stored policy: {before['version']} -> {after['version']}"


def test_policies_put_for_an_unknown_tenant_is_refused(broker, umbrella):
    result = put_policy(broker, "no-such-tenant", {"exchange": []}, umbrella.directory / "unknown-tenant.json",
                        check=False)
    assert result.returncode != 0 and result.stderr.strip()


def test_policies_put_adds_a_version_each_time(broker, umbrella):
    before = get_policy(broker, "umbrella")["version"]
    document = {"exchange": [VALID_RULE, {**VALID_RULE, "id": "writes", "scopes": "crm:contacts.write"}]}
    out = put_umbrella(broker, umbrella, document, "next")
    assert out.returncode == 0, out.stderr[-500:]
    assert out.json["version"] == before + 1, out.json
    stored = get_policy(broker, "umbrella")
    assert stored["version"] == before + 1
    assert [rule["id"] for rule in stored["document"]["exchange"]] == ["reads", "writes"]
    assert stored["document"]["exchange"][0]["clients"] == [umbrella.client_id]
    actions = [record["action"] for record in audit_export(broker, "--tenant", "umbrella")]
    assert actions.count("policy.changed") >= 2, actions


# ----------------------------------------------------------------------------------------------
# Audit


def test_exchanges_and_refusals_are_audited_with_the_decision_and_never_a_token(broker, world):
    dpop = DPoPKey()
    subject = world.ci.token()
    issued = ok(exchange(broker, world.wl, subject, "jwt", dpop=dpop, scope="crm:contacts.read"))["access_token"]
    # A policy refusal (the deny rule) and a subject refusal (sub outside the issuer's --subject globs).
    denied_subject = broker.token(world.up)
    assert_oauth_error(exchange(broker, world.imp, denied_subject, scope="crm:contacts.write"), "invalid_request",
                       never_echo=[denied_subject])
    refused_subject = world.ci.token(sub="repo:evil/widgets")
    assert_oauth_error(exchange(broker, world.wl, refused_subject, "jwt", dpop=dpop), "invalid_request",
                       never_echo=[refused_subject])

    records = audit_export(broker, "--tenant", "acme")
    actions = [record["action"] for record in records]
    for action in ("idp.added", "policy.changed", "token.exchanged", "token.denied"):
        assert action in actions, f"no {action} record"
    exchanged = [r for r in records if r["action"] == "token.exchanged"][-1]
    assert exchanged.get("jti") == unverified_claims(issued)["jti"], "the last token.exchanged record is not this one"
    assert "workload-dpop" in json.dumps(exchanged.get("decision")), "token.exchanged without the deciding rule"
    decision = exchanged["decision"] if isinstance(exchanged["decision"], dict) else json.loads(exchanged["decision"])
    assert world.policy_version in values_named(decision, ("version", "policy_version")), \
        "token.exchanged does not name the policy version that decided"
    denied = [r for r in records if r["action"] == "token.denied"]
    assert [r for r in denied if r.get("client_id") == world.wl.client_id], "the refused workload JWT is not audited"
    by_policy = [r for r in denied if r.get("client_id") == world.imp.client_id][-1]
    assert "imp-no-writes" in json.dumps(by_policy.get("decision")), \
        f"token.denied by a deny rule without the policy decision: {sorted(by_policy)}"

    text = audit_export_text(broker)
    for name, token in (("subject token", subject), ("denied subject token", denied_subject),
                        ("refused subject token", refused_subject), ("issued token", issued)):
        for fragment in token.split("."):
            if len(fragment) >= 16:
                assert fragment not in text, f"the audit export contains the {name}"
    verify = broker.cli("audit", "verify", check=False)
    assert verify.returncode == 0 and verify.json["intact"] is True, verify.json
