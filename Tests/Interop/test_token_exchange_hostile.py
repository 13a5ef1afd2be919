"""RFC 8693 token exchange under attack: one request per way to get more than allowed, each
answered with the exact RFC error code and status of docs/token-exchange.md (subject and actor
token problems and policy refusals `invalid_request`, targets `invalid_target`, scopes
`invalid_scope`, a DPoP requirement `invalid_dpop_proof`), as RFC 6749 §5.2 JSON
`{error, error_description}` with `Cache-Control: no-store`, never echoing the tokens it was given.

Where a refusal could be mistaken for another one, the same request with the one thing fixed is
sent too and must succeed: the refusal was about that thing. The parties and acme's policy are
those of `support.build_exchange_world` (one rule per kind of exchange, each for its own client).
"""

from __future__ import annotations

import time
from typing import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from support import (CI_ISSUER, CRM_API, DPoPKey, add_client_with_grants, assert_oauth_error, build_exchange_world,
                     describe, exchange, exchange_form, hmac_jwt, post_token_form, put_policy, sign_jwt, unsigned_jwt,
                     unverified_claims, verify_access_token)


@pytest.fixture(scope="module")
def world(broker, tmp_path_factory):
    return build_exchange_world(broker, tmp_path_factory.mktemp("exchange-hostile"))


def granted(response) -> dict:
    assert response.status_code == 200, describe(response)
    return response.json()


def delegation(broker, world, subject: str, **kwargs):
    """`delegate` exchanges `subject` with its own client_credentials token as actor (rule delegation)."""
    kwargs.setdefault("actor_token", broker.token(world.deleg))
    return exchange(broker, world.deleg, subject, **kwargs)


# ----------------------------------------------------------------------------------------------
# Scopes: narrowing only


def test_scope_the_subject_does_not_hold_is_invalid_scope(broker, world):
    subject = broker.token(world.up, scope="crm:contacts.read")
    # The client's registration and the rule both cover crm:contacts.write; the subject does not.
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.write"), "invalid_scope",
                       never_echo=[subject])
    granted(delegation(broker, world, subject, scope="crm:contacts.read"))


@pytest.mark.parametrize("scope", ["crm:contacts.write", "crm:contacts.write:ids=1,2"],
                         ids=["parameter-dropped", "values-widened"])
def test_scope_widening_a_held_parameter_is_invalid_scope(broker, world, scope):
    subject = broker.token(world.up, scope="crm:contacts.write:ids=1")
    assert_oauth_error(delegation(broker, world, subject, scope=scope), "invalid_scope", never_echo=[subject])
    body = granted(delegation(broker, world, subject, scope="crm:contacts.write:ids=1"))
    assert body["scope"] == "crm:contacts.write:ids=1"


def test_scope_beyond_the_workload_issuers_scopes_is_invalid_scope(broker, world):
    subject = world.ci.token()
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt", scope="crm:contacts.delete", dpop=DPoPKey()),
                       "invalid_scope", never_echo=[subject])


def test_wildcard_scope_without_a_rule_allowing_wildcards_is_refused(broker, world):
    subject = broker.token(world.up)  # holds crm:contacts.write, all ids
    # `wildcards` is false by default: a rule condition (invalid_request) or a scope refusal (invalid_scope).
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.write:ids=*"),
                       ("invalid_scope", "invalid_request"), never_echo=[subject])


# ----------------------------------------------------------------------------------------------
# Targets (RFC 8707, RFC 8693 §2.2.2)


@pytest.mark.parametrize("target", [
    {"audience": ["billing"]},
    {"audience": ["crm", "erp"]},
    {"resource": ["https://evil.example/api"]},
    {"resource": [CRM_API + "#contacts"]},
    {"resource": ["/api"]},
], ids=["audience-not-listed", "one-audience-not-listed", "resource-not-listed", "resource-with-fragment",
        "resource-not-absolute"])
def test_target_not_allowed_is_invalid_target(broker, world, target):
    subject = broker.token(world.up)
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.read", **target), "invalid_target",
                       never_echo=[subject])


def test_listed_targets_are_granted(broker, world):
    subject = broker.token(world.up)
    granted(delegation(broker, world, subject, scope="crm:contacts.read", audience=["crm"]))
    granted(delegation(broker, world, subject, scope="crm:contacts.read", resource=[CRM_API]))


# ----------------------------------------------------------------------------------------------
# Tenants


def test_subject_token_of_another_tenant_is_invalid_request(broker, world):
    subject = broker.token(world.globex)
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.read"), "invalid_request",
                       never_echo=[subject])


def test_actor_token_of_another_tenant_is_invalid_request(broker, world):
    subject, actor = broker.token(world.up), broker.token(world.globex)
    assert_oauth_error(delegation(broker, world, subject, actor_token=actor, scope="crm:contacts.read"),
                       "invalid_request", never_echo=[subject, actor])


def test_workload_jwt_of_an_issuer_trusted_by_another_tenant_is_invalid_request(broker, world):
    subject = world.globex_ci.token()
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt", dpop=DPoPKey()), "invalid_request",
                       never_echo=[subject])


def test_tenant_without_policy_exchanges_nothing(broker, world):
    subject, actor = broker.token(world.initech), broker.token(world.initech)
    assert_oauth_error(exchange(broker, world.initech, subject, actor_token=actor, scope="crm:contacts.read"),
                       "invalid_request", never_echo=[subject, actor])


# ----------------------------------------------------------------------------------------------
# Workload JWTs (subject_token_type jwt)


def _other_ec_key():
    return ec.generate_private_key(ec.SECP256R1())


BAD_WORKLOAD_JWTS: dict[str, Callable] = {
    "alg-none": lambda ci: unsigned_jwt({"alg": "none", "typ": "JWT", "kid": ci.ec.kid}, ci.claims()),
    "hs256-keyed-with-jwks-public-key": lambda ci: hmac_jwt({"alg": "HS256", "typ": "JWT", "kid": ci.rsa.kid},
                                                            ci.claims(), ci.rsa.public_pem),
    "hs256-keyed-with-jwks-json": lambda ci: hmac_jwt({"alg": "HS256", "typ": "JWT", "kid": ci.ec.kid},
                                                      ci.claims(), ci.jwks_path.read_bytes()),
    "wrong-aud": lambda ci: ci.token(aud="someone-else"),
    "expired": lambda ci: ci.token(lifetime=-120, iat=int(time.time()) - 420, nbf=int(time.time()) - 420),
    "without-exp": lambda ci: ci.token(exp=None),
    "nbf-in-the-future": lambda ci: ci.token(nbf=int(time.time()) + 600, lifetime=900),
    "iat-in-the-future": lambda ci: ci.token(iat=int(time.time()) + 600, lifetime=900),
    "iss-not-trusted": lambda ci: ci.token(iss="https://ci.evil.test"),
    "iss-with-trailing-slash": lambda ci: ci.token(iss=CI_ISSUER + "/"),
    "sub-not-matching-glob": lambda ci: ci.token(sub="repo:evil/widgets:ref:refs/heads/main"),
    "claim-condition-not-met": lambda ci: ci.token(ref="refs/heads/feature"),
    "claim-missing": lambda ci: ci.token(ref=None),
    "unknown-kid": lambda ci: ci.sign(ci.claims(), kid="ci-unknown"),
    "signed-by-a-key-not-in-jwks": lambda ci: sign_jwt(ci.claims(), _other_ec_key(), "ES256", ci.ec.kid),
    "rsa-signature-under-ec-kid": lambda ci: sign_jwt(ci.claims(), ci.rsa.private_key, "RS256", ci.ec.kid),
    "not-a-jws": lambda ci: "not.a.jwt.at.all",
}


@pytest.mark.parametrize("case", list(BAD_WORKLOAD_JWTS))
def test_bad_workload_jwt_is_invalid_request(broker, world, case):
    subject = BAD_WORKLOAD_JWTS[case](world.ci)
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt", dpop=DPoPKey()), "invalid_request",
                       never_echo=[subject])


def test_good_workload_jwt_control(broker, world):
    """The control of the table above: the same exchange with a good JWT is granted."""
    granted(exchange(broker, world.wl, world.ci.token(), "jwt", dpop=DPoPKey()))


# ----------------------------------------------------------------------------------------------
# Delegation: may_act, act chains, actors


def test_actor_not_named_by_the_subjects_may_act_is_invalid_request(broker, world):
    dpop = DPoPKey()
    actor = broker.token(world.wl)
    subject = world.ci.token(may_act={"sub": "tcl_someone-else"})
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt", actor_token=actor, dpop=dpop), "invalid_request",
                       never_echo=[subject, actor])
    wrong_iss = world.ci.token(may_act={"sub": world.wl.client_id, "iss": "https://elsewhere.example"})
    assert_oauth_error(exchange(broker, world.wl, wrong_iss, "jwt", actor_token=actor, dpop=dpop), "invalid_request",
                       never_echo=[wrong_iss, actor])
    # Control: may_act naming this actor (sub and iss) is honoured.
    named = world.ci.token(may_act={"sub": world.wl.client_id, "iss": broker.issuer})
    body = granted(exchange(broker, world.wl, named, "jwt", actor_token=actor, dpop=dpop))
    assert verify_access_token(broker, body["access_token"])["act"]["sub"] == world.wl.client_id


def test_subject_with_may_act_exchanged_without_actor_is_invalid_request(broker, world):
    """RFC 8693 §4.4: may_act names who may act for the subject. Without an actor token the
    requesting client acts as the subject (impersonation), and it is not the party named, so the
    doc's "a subject's may_act, when present, must name the actor" refuses it."""
    subject = world.ci.token(may_act={"sub": "tcl_someone-else"})
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt", dpop=DPoPKey()), "invalid_request",
                       never_echo=[subject])


def test_subject_carrying_act_exchanged_without_actor_is_invalid_request(broker, world):
    with_act = granted(delegation(broker, world, broker.token(world.up), scope="crm:contacts.read"))["access_token"]
    assert "act" in unverified_claims(with_act)
    # `impersonator`'s rule allows exchanges without an actor: only the chain stops this one.
    assert_oauth_error(exchange(broker, world.imp, with_act, scope="crm:contacts.read"), "invalid_request",
                       never_echo=[with_act])
    body = granted(exchange(broker, world.imp, broker.token(world.up), scope="crm:contacts.read"))
    assert "act" not in unverified_claims(body["access_token"])


def test_bad_workload_jwt_as_actor_token_is_invalid_request(broker, world):
    subject = broker.token(world.up)
    for actor in (sign_jwt(world.ci.claims(sub="repo:acme/deployer"), _other_ec_key(), "ES256", world.ci.ec.kid),
                  world.ci.token(sub="repo:acme/deployer", aud="someone-else")):
        assert_oauth_error(exchange(broker, world.imp, subject, scope="crm:contacts.read", actor_token=actor,
                                    actor_token_type="jwt"), "invalid_request", never_echo=[subject, actor])
    good = world.ci.token(sub="repo:acme/deployer")
    granted(exchange(broker, world.imp, subject, scope="crm:contacts.read", actor_token=good, actor_token_type="jwt"))


def test_actor_not_allowed_by_the_rule_is_invalid_request(broker, world):
    # The delegation rule names no `actors`: only the requesting client itself may act.
    subject, other = broker.token(world.up), broker.token(world.chain)
    assert_oauth_error(delegation(broker, world, subject, actor_token=other, scope="crm:contacts.read"),
                       "invalid_request", never_echo=[subject, other])


def test_rule_requiring_an_actor_without_actor_token_is_invalid_request(broker, world):
    subject = broker.token(world.up)
    assert_oauth_error(exchange(broker, world.deleg, subject, scope="crm:contacts.read"), "invalid_request",
                       never_echo=[subject])


def test_deny_rule_wins_over_an_allow_rule(broker, world):
    subject = broker.token(world.up)
    assert_oauth_error(exchange(broker, world.imp, subject, scope="crm:contacts.write"), "invalid_request",
                       never_echo=[subject])
    granted(exchange(broker, world.imp, subject, scope="crm:contacts.read"))


def test_default_scope_does_not_bypass_a_deny_rule(broker, world):
    subject = broker.token(world.up)  # holds crm:contacts.read and crm:contacts.write
    response = exchange(broker, world.imp, subject)  # no scope: the default
    if response.status_code == 200:
        assert "crm:contacts.write" not in response.json()["scope"].split(), "the deny rule on writes was bypassed"
    else:
        assert_oauth_error(response, "invalid_request", never_echo=[subject])


# ----------------------------------------------------------------------------------------------
# DPoP


def bound_subject(broker, world, key: DPoPKey) -> str:
    """upstream's client_credentials token bound to `key` (RFC 9449)."""
    body = granted(post_token_form(broker, world.up, [("grant_type", "client_credentials")], key))
    assert body["token_type"] == "DPoP"
    assert unverified_claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint}
    return body["access_token"]


def test_dpop_bound_subject_with_proof_of_another_key_is_invalid_request(broker, world):
    holder = DPoPKey()
    subject = bound_subject(broker, world, holder)
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.read", dpop=DPoPKey()),
                       "invalid_request", never_echo=[subject])
    body = granted(delegation(broker, world, subject, scope="crm:contacts.read", dpop=holder))
    assert unverified_claims(body["access_token"])["cnf"] == {"jkt": holder.thumbprint}


def test_dpop_bound_actor_token_with_proof_of_another_key_is_invalid_request(broker, world):
    holder = DPoPKey()
    body = granted(post_token_form(broker, world.deleg, [("grant_type", "client_credentials")], holder))
    actor, subject = body["access_token"], broker.token(world.up)
    assert_oauth_error(delegation(broker, world, subject, actor_token=actor, scope="crm:contacts.read",
                                  dpop=DPoPKey()), "invalid_request", never_echo=[subject, actor])
    granted(delegation(broker, world, subject, actor_token=actor, scope="crm:contacts.read", dpop=holder))


def test_dpop_bound_subject_without_proof_is_refused(broker, world):
    subject = bound_subject(broker, world, DPoPKey())
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.read"),
                       ("invalid_request", "invalid_dpop_proof"), never_echo=[subject])


def test_rule_requiring_dpop_without_proof_is_invalid_dpop_proof(broker, world):
    subject = world.ci.token()
    assert_oauth_error(exchange(broker, world.wl, subject, "jwt"), "invalid_dpop_proof", never_echo=[subject])


# ----------------------------------------------------------------------------------------------
# Lifetime


def test_lifetime_is_never_extended_past_the_subject_token(broker, world):
    claims = world.ci.claims(lifetime=60)
    subject = world.ci.sign(claims)
    body = granted(exchange(broker, world.wl, subject, "jwt", dpop=DPoPKey()))
    assert body["expires_in"] <= 60, f"expires_in {body['expires_in']} for a subject with 60 s left"
    issued = verify_access_token(broker, body["access_token"])
    assert issued["exp"] <= claims["exp"]


# ----------------------------------------------------------------------------------------------
# Malformed requests


@pytest.mark.parametrize("size", [40_000, 100_000], ids=["40KB", "100KB"])
def test_oversized_subject_token_is_400_invalid_request(broker, world, size):
    genuine = world.ci.token()
    head, body, signature = genuine.split(".")
    subject = f"{head}.{body}{'A' * (size - len(genuine))}.{signature}"
    response = exchange(broker, world.wl, subject, "jwt", dpop=DPoPKey())
    assert response.status_code < 500, describe(response)
    assert_oauth_error(response, "invalid_request", never_echo=[subject])


def test_actor_token_without_actor_token_type_is_invalid_request(broker, world):
    subject, actor = broker.token(world.up), broker.token(world.deleg)
    assert_oauth_error(delegation(broker, world, subject, actor_token=actor, actor_token_type=""), "invalid_request",
                       never_echo=[subject, actor])


def test_actor_token_type_without_actor_token_is_invalid_request(broker, world):
    subject = broker.token(world.up)
    assert_oauth_error(exchange(broker, world.imp, subject, scope="crm:contacts.read", actor_token_type="access_token"),
                       "invalid_request", never_echo=[subject])


@pytest.mark.parametrize("requested", ["refresh_token", "id_token", "urn:example:token-type:unknown"])
def test_requested_token_type_other_than_access_token_is_invalid_request(broker, world, requested):
    subject = broker.token(world.up)
    assert_oauth_error(delegation(broker, world, subject, scope="crm:contacts.read", requested_token_type=requested),
                       "invalid_request", never_echo=[subject])


def test_requested_token_type_access_token_is_granted(broker, world):
    body = granted(delegation(broker, world, broker.token(world.up), scope="crm:contacts.read",
                              requested_token_type="access_token"))
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"


@pytest.mark.parametrize("case", ["no-subject-token", "no-subject-token-type", "type-refresh_token", "type-id_token",
                                  "type-saml2", "type-unknown-urn", "access-token-declared-jwt",
                                  "workload-jwt-declared-access-token", "garbage", "forged-signature"])
def test_malformed_or_mistyped_subject_is_invalid_request(broker, world, case):
    token = broker.token(world.up)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:10]}{'A' if signature[10] != 'A' else 'B'}{signature[11:]}"
    subject, kind = {
        "no-subject-token": (None, "access_token"),
        "no-subject-token-type": (token, None),
        "type-refresh_token": (token, "refresh_token"),
        "type-id_token": (token, "id_token"),
        "type-saml2": (token, "saml2"),
        "type-unknown-urn": (token, "urn:example:token-type:unknown"),
        "access-token-declared-jwt": (token, "jwt"),
        "workload-jwt-declared-access-token": (world.ci.token(), "access_token"),
        "garbage": ("garbage", "access_token"),
        "forged-signature": (forged, "access_token"),
    }[case]
    response = delegation(broker, world, subject, subject_token_type=kind, scope="crm:contacts.read")
    assert_oauth_error(response, "invalid_request", never_echo=[s for s in (subject, token) if s])


def test_client_not_registered_for_token_exchange_is_unauthorized_client(broker, world):
    subject = broker.token(world.up)
    response = exchange(broker, world.plain, subject, actor_token=broker.token(world.plain),
                        scope="crm:contacts.read")
    assert_oauth_error(response, "unauthorized_client", never_echo=[subject])


def test_repeated_subject_token_parameter_is_invalid_request(broker, world):
    subject, other = broker.token(world.up), broker.token(world.up)
    form = exchange_form(subject, actor_token=broker.token(world.deleg), scope="crm:contacts.read")
    form.append(("subject_token", other))
    assert_oauth_error(post_token_form(broker, world.deleg, form), "invalid_request", never_echo=[subject, other])


def test_expired_access_token_subject_is_invalid_request(make_broker, tmp_path):
    broker = make_broker(env={"TESSERA_ACCESS_TOKEN_LIFETIME": "2"}).start()
    broker.add_tenant("acme")
    source = add_client_with_grants(broker, "acme", "source", "crm:contacts.read", grants="client_credentials")
    requester = add_client_with_grants(broker, "acme", "requester", "crm:contacts.read")
    put_policy(broker, "acme", {"exchange": [
        {"id": "any", "effect": "allow", "clients": [requester.client_id], "subject_token_types": ["access_token"],
         "scopes": "crm:contacts.read", "actor": "optional", "dpop": "optional"}]}, tmp_path / "policy.json")
    subject = broker.token(source)
    granted(exchange(broker, requester, broker.token(source)))  # the control, while live
    time.sleep(3.2)
    assert_oauth_error(exchange(broker, requester, subject), "invalid_request", never_echo=[subject])
