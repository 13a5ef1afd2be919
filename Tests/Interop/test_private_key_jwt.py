"""private_key_jwt client authentication (RFC 7523 §2.2, §3) with an independent OAuth client
(Authlib) and with hand-made assertions the broker must refuse."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import jwt as pyjwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from keys import ClientKey, ec_p256_key, rsa_key
from support import HTTP_TIMEOUT, b64url, describe, unverified_claims, unverified_header

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "crm:contacts.read"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's PrivateKeyJWT with `exp` two minutes ahead.

    Authlib signs assertions valid for one hour by default, longer than the broker accepts (5 min),
    and writes the `jti` it generates into the `claims` dict it is given, so a fixed dict would
    reuse one `jti`; a fresh dict per assertion avoids both. Everything else is Authlib's own.
    """

    @property
    def claims(self):
        return {"exp": int(time.time()) + 120}

    @claims.setter
    def claims(self, value):
        pass


@pytest.fixture(scope="module")
def tenant(broker):
    broker.add_tenant("acme")
    return "acme"


def register(broker, tenant, key: ClientKey, name: str, tmp_path_factory):
    jwks = key.write_jwks(tmp_path_factory.mktemp("jwks") / f"{name}.jwks.json")
    return broker.add_client(tenant, name, SCOPE, auth="private_key_jwt", jwks=jwks)


def authlib_fetch(broker, client, key: ClientKey, send_kid: bool) -> dict:
    auth = ShortLivedPrivateKeyJWT(broker.token_endpoint, alg=key.alg, headers={"kid": key.kid} if send_kid else None)
    with OAuth2Session(client.client_id, key.private_pem.decode(), token_endpoint_auth_method=auth, scope=SCOPE) as session:
        return session.fetch_token(broker.token_endpoint, grant_type="client_credentials", timeout=HTTP_TIMEOUT)


def check_issued(broker, token: dict, client) -> None:
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == SCOPE
    assert 0 < token["expires_in"] <= 900
    header = unverified_header(token["access_token"])
    claims = unverified_claims(token["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    assert claims["client_id"] == client.client_id and claims["sub"] == client.client_id
    assert claims["iss"] == broker.issuer and claims["aud"] == "crm"


def test_authlib_private_key_jwt_with_ec_p256_key_es256_gets_token(broker, tenant, tmp_path_factory):
    key = ec_p256_key("ec-" + uuid.uuid4().hex[:8])
    client = register(broker, tenant, key, "authlib-es256", tmp_path_factory)
    token = authlib_fetch(broker, client, key, send_kid=True)
    check_issued(broker, token, client)


def test_authlib_private_key_jwt_with_rsa_key_ps256_gets_token(broker, tenant, tmp_path_factory):
    key = rsa_key("rsa-" + uuid.uuid4().hex[:8], alg="PS256")
    client = register(broker, tenant, key, "authlib-ps256", tmp_path_factory)
    # No kid in the header: the broker picks the only registered key that fits PS256.
    token = authlib_fetch(broker, client, key, send_kid=False)
    check_issued(broker, token, client)


def test_authlib_private_key_jwt_with_rsa_key_rs256_gets_token(broker, tenant, tmp_path_factory):
    key = rsa_key("rsa-" + uuid.uuid4().hex[:8], alg="RS256")
    client = register(broker, tenant, key, "authlib-rs256", tmp_path_factory)
    token = authlib_fetch(broker, client, key, send_kid=True)
    check_issued(broker, token, client)


# ----------------------------------------------------------------------------------------------
# Assertions the broker must refuse. Each is one defect away from the good assertion of
# `good_claims`, which the replay test shows is accepted the first time.


@pytest.fixture
def victim(broker, tenant, tmp_path_factory):
    """A fresh client per test, so that failed attempts never reach the per-client throttle."""
    key = ec_p256_key("victim-key")
    client = register(broker, tenant, key, "victim", tmp_path_factory)
    return client, key


def good_claims(broker, client_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": broker.token_endpoint, "iat": now, "exp": now + 120,
              "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return claims


def sign_es256(key: ClientKey, claims: dict, kid: str | None = None) -> str:
    return pyjwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": kid or key.kid})


def unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(signature)


def post_assertion(broker, client_id: str, assertion: str) -> requests.Response:
    return requests.post(
        broker.token_endpoint,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": assertion, "scope": SCOPE},
        timeout=HTTP_TIMEOUT)


def assert_invalid_client(response: requests.Response) -> None:
    assert response.status_code == 401, describe(response)
    assert response.json()["error"] == "invalid_client", describe(response)
    assert "access_token" not in response.text


def test_replayed_client_assertion_gets_401_invalid_client_with_www_authenticate(broker, victim):
    client, key = victim
    assertion = sign_es256(key, good_claims(broker, client.client_id))
    first = post_assertion(broker, client.client_id, assertion)
    assert first.status_code == 200, describe(first)
    second = post_assertion(broker, client.client_id, assertion)
    assert_invalid_client(second)
    assert second.headers.get("WWW-Authenticate"), "401 without WWW-Authenticate"


@pytest.mark.parametrize("audience", ["token_endpoint", "issuer", "list_with_token_endpoint"])
def test_assertion_with_audience_token_endpoint_or_issuer_is_accepted(broker, victim, audience):
    client, key = victim
    aud = {"token_endpoint": broker.token_endpoint, "issuer": broker.issuer,
           "list_with_token_endpoint": ["https://other-server.example", broker.token_endpoint]}[audience]
    response = post_assertion(broker, client.client_id, sign_es256(key, good_claims(broker, client.client_id, aud=aud)))
    assert response.status_code == 200, describe(response)


def test_assertion_valid_for_more_than_5_minutes_gets_401_invalid_client(broker, victim):
    client, key = victim
    now = int(time.time())
    claims = good_claims(broker, client.client_id, iat=now, exp=now + 3600)
    assert_invalid_client(post_assertion(broker, client.client_id, sign_es256(key, claims)))


def test_assertion_with_iss_or_sub_not_the_client_id_gets_401_invalid_client(broker, victim, tenant, tmp_path_factory):
    client, key = victim
    other = register(broker, tenant, ec_p256_key("other-key"), "other", tmp_path_factory)
    for claims in (good_claims(broker, client.client_id, sub=other.client_id),
                   good_claims(broker, client.client_id, iss=other.client_id)):
        assert_invalid_client(post_assertion(broker, client.client_id, sign_es256(key, claims)))


def test_assertion_with_audience_of_another_server_gets_401_invalid_client(broker, victim):
    client, key = victim
    other = "https://other-server.example/oauth2/token"
    assert_invalid_client(post_assertion(broker, client.client_id, sign_es256(key, good_claims(broker, client.client_id, aud=other))))


def test_expired_assertion_gets_401_invalid_client(broker, victim):
    client, key = victim
    now = int(time.time())
    claims = good_claims(broker, client.client_id, iat=now - 400, exp=now - 200)
    assert_invalid_client(post_assertion(broker, client.client_id, sign_es256(key, claims)))


@pytest.mark.parametrize("same_kid", [True, False], ids=["registered_kid", "unknown_kid"])
def test_assertion_signed_by_key_not_in_registered_jwks_gets_401_invalid_client(broker, victim, same_kid):
    client, key = victim
    intruder = ec_p256_key("intruder-key")
    assertion = sign_es256(intruder, good_claims(broker, client.client_id), kid=key.kid if same_kid else intruder.kid)
    assert_invalid_client(post_assertion(broker, client.client_id, assertion))


def test_assertion_with_alg_none_gets_401_invalid_client(broker, victim):
    client, key = victim
    assertion = unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, good_claims(broker, client.client_id))
    assert_invalid_client(post_assertion(broker, client.client_id, assertion))


def test_assertion_hs256_maced_with_public_key_bytes_gets_401_invalid_client(broker, victim):
    client, key = victim
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    claims = good_claims(broker, client.client_id)
    signing_input = unsigned(header, claims).rstrip(".")
    for secret in (key.public_pem, json.dumps(key.public_jwk).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert_invalid_client(post_assertion(broker, client.client_id, signing_input + "." + b64url(mac)))
