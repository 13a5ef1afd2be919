"""Introspection (RFC 7662) and revocation (RFC 7009) through plain `requests`."""

from __future__ import annotations

from types import SimpleNamespace

import time

import pytest

from support import describe, unverified_claims

SCOPE = "crm:contacts.read"


@pytest.fixture(scope="module")
def parties(broker):
    broker.add_tenant("acme")
    broker.add_tenant("globex")
    return SimpleNamespace(
        # acme's resource server, allowed to introspect
        acme_rs=broker.add_client("acme", "acme-rs", SCOPE, introspect=True),
        # acme's workload, which gets and revokes its own tokens
        acme_svc=broker.add_client("acme", "acme-svc", SCOPE),
        acme_other=broker.add_client("acme", "acme-other", SCOPE),
        # a client without the introspect right (client_secret_post, for variety)
        acme_plain=broker.add_client("acme", "acme-plain", SCOPE, auth="client_secret_post"),
        globex_svc=broker.add_client("globex", "globex-svc", SCOPE),
        globex_rs=broker.add_client("globex", "globex-rs", SCOPE, introspect=True),
    )


def introspection(broker, caller, token) -> dict:
    response = broker.introspect(caller, token)
    assert response.status_code == 200, describe(response)
    assert response.headers.get("Content-Type", "").startswith("application/json")
    assert "no-store" in response.headers.get("Cache-Control", "")
    return response.json()


def test_introspection_of_active_token_returns_its_claims(broker, parties):
    token = broker.token(parties.acme_svc)
    answer = introspection(broker, parties.acme_rs, token)
    claims = unverified_claims(token)
    assert answer["active"] is True
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "tid", "sub_type"):
        assert answer.get(name) == claims[name], f"introspection member {name}"
    assert answer["client_id"] == parties.acme_svc.client_id
    assert answer["scope"] == SCOPE and answer["aud"] == "crm" and answer["tid"] == "acme"
    assert answer["token_type"] == "Bearer"


def test_revoked_token_introspects_as_exactly_active_false(broker, parties):
    token = broker.token(parties.acme_svc)
    assert introspection(broker, parties.acme_rs, token)["active"] is True
    response = broker.revoke(parties.acme_svc, token)
    assert response.status_code == 200, describe(response)
    assert introspection(broker, parties.acme_rs, token) == {"active": False}
    # Revoking again is still 200 (RFC 7009 §2.2) and changes nothing.
    assert broker.revoke(parties.acme_svc, token).status_code == 200
    assert introspection(broker, parties.acme_rs, token) == {"active": False}


def test_revocation_by_another_client_is_refused_and_token_stays_active(broker, parties):
    token = broker.token(parties.acme_svc)
    response = broker.revoke(parties.acme_other, token)
    assert response.status_code in (400, 401, 403), describe(response)
    assert introspection(broker, parties.acme_rs, token)["active"] is True


def test_revocation_of_garbage_token_is_200(broker, parties):
    response = broker.revoke(parties.acme_svc, "not-a-token")
    assert response.status_code == 200, describe(response)


def test_unknown_or_malformed_token_introspects_as_exactly_active_false(broker, parties):
    assert introspection(broker, parties.acme_rs, "not-a-token") == {"active": False}
    forged = broker.token(parties.acme_svc)
    head, payload, signature = forged.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert introspection(broker, parties.acme_rs, f"{head}.{payload}.{flipped}") == {"active": False}


def test_client_without_introspect_right_gets_401_invalid_client(broker, parties):
    token = broker.token(parties.acme_svc)
    response = broker.introspect(parties.acme_plain, token)
    assert response.status_code == 401, describe(response)
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


def test_token_of_tenant_b_introspected_by_tenant_a_client_is_exactly_active_false(broker, parties):
    token = broker.token(parties.globex_svc)
    assert introspection(broker, parties.globex_rs, token)["active"] is True
    assert introspection(broker, parties.acme_rs, token) == {"active": False}


def test_clients_disable_makes_that_clients_live_tokens_inactive(broker, parties):
    victim = broker.add_client("acme", "acme-to-disable", SCOPE)
    token = broker.token(victim)
    bystander = broker.token(parties.acme_svc)
    assert introspection(broker, parties.acme_rs, token)["active"] is True

    out = broker.cli("clients", "disable", victim.client_id).json
    assert out["disabled"] is True
    listed = {c["client_id"]: c for c in broker.cli("clients", "list", "--tenant", "acme").json}
    assert listed[victim.client_id]["disabled"] is True

    # The CLI is another process: the server sees the disable on its revocation log, which it reads
    # at least every 500 ms (README, "Revocation is a bus"). Poll, bounded well above that.
    deadline = time.monotonic() + 5
    while introspection(broker, parties.acme_rs, token) != {"active": False}:
        assert time.monotonic() < deadline, "the disabled client's token is still active after 5 s"
        time.sleep(0.05)
    refused = broker.post_token(victim)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", describe(refused)
    # Other clients' tokens are untouched.
    assert introspection(broker, parties.acme_rs, bystander)["active"] is True


def test_expired_token_introspects_as_exactly_active_false(make_broker):
    broker = make_broker(env={"TESSERA_ACCESS_TOKEN_LIFETIME": "1"}).start()
    broker.add_tenant("acme")
    svc = broker.add_client("acme", "svc", SCOPE)
    rs = broker.add_client("acme", "rs", SCOPE, introspect=True)
    response = broker.post_token(svc)
    assert response.status_code == 200, describe(response)
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]
    time.sleep(2.2)
    assert introspection(broker, rs, token) == {"active": False}
