"""Issued access tokens (RFC 9068) verified by two independent JOSE libraries, PyJWT and
jwcrypto, through the live metadata document and JWKS; and signing-key rotation with
pre-publication as a relying party sees it."""

from __future__ import annotations

import json
import time

import jwt as pyjwt
import pytest
import requests
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from support import HTTP_TIMEOUT, unverified_header

SCOPES = "crm:contacts.read crm:contacts.write:ids=1,2"


def setup_client(broker):
    broker.add_tenant("acme")
    return broker.add_client("acme", "svc", SCOPES)


@pytest.fixture(scope="module")
def client(broker):
    return setup_client(broker)


def verify_with_pyjwt(broker, token: str) -> dict:
    """PyJWT, keys from the `jwks_uri` of the metadata document, no caching."""
    metadata = requests.get(broker.url("/.well-known/oauth-authorization-server"), timeout=HTTP_TIMEOUT).json()
    jwks_client = pyjwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False, cache_keys=False, timeout=HTTP_TIMEOUT)
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt", f"header {header}"
    return pyjwt.decode(
        token, signing_key.key, algorithms=["ES256"], audience="crm", issuer=metadata["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})


def verify_with_jwcrypto(broker, token: str, jwks_text: str | None = None) -> dict:
    """jwcrypto, with a JWKS fetched now (or the one given), alg restricted to ES256."""
    metadata = requests.get(broker.url("/.well-known/openid-configuration"), timeout=HTTP_TIMEOUT).json()
    if jwks_text is None:
        jwks_text = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).text
    keyset = jwcrypto_jwk.JWKSet.from_json(jwks_text)
    verified = jwcrypto_jwt.JWT(
        jwt=token, key=keyset, algs=["ES256"],
        check_claims={"iss": metadata["issuer"], "aud": "crm", "exp": None, "iat": None, "jti": None, "sub": None})
    header = verified.token.jose_header
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt", f"header {header}"
    return json.loads(verified.claims)


def check_claims(broker, claims: dict, client) -> None:
    assert claims["iss"] == broker.issuer
    assert claims["aud"] == "crm"
    assert claims["client_id"] == client.client_id
    assert claims["sub"] == client.client_id
    assert claims["sub_type"] == "service"
    assert claims["tid"] == "acme"
    assert claims["scope"] == SCOPES
    assert claims["iat"] <= time.time() + 5 < claims["exp"] <= claims["iat"] + 900


def test_pyjwt_verifies_issued_token_es256_at_jwt_issuer_audience_crm(broker, client):
    token = broker.token(client)
    check_claims(broker, verify_with_pyjwt(broker, token), client)


def test_jwcrypto_verifies_issued_token_es256_at_jwt_issuer_audience_crm(broker, client):
    token = broker.token(client)
    check_claims(broker, verify_with_jwcrypto(broker, token), client)


def test_token_response_is_rfc6749_json_with_no_store(broker, client):
    response = broker.post_token(client, scope="crm:contacts.read")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert "no-store" in response.headers.get("Cache-Control", "")
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "crm:contacts.read"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 900
    assert "refresh_token" not in body


def test_libraries_refuse_issued_token_for_another_audience(broker, client):
    """The library checks above are real checks: the same token for audience "billing" is refused."""
    token = broker.token(client)
    metadata = broker.metadata()
    jwks_client = pyjwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False, cache_keys=False, timeout=HTTP_TIMEOUT)
    key = jwks_client.get_signing_key_from_jwt(token).key
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt.decode(token, key, algorithms=["ES256"], audience="billing", issuer=metadata["issuer"])
    keyset = jwcrypto_jwk.JWKSet.from_json(json.dumps(broker.jwks()))
    with pytest.raises(jwcrypto_jwt.JWTInvalidClaimValue):
        jwcrypto_jwt.JWT(jwt=token, key=keyset, algs=["ES256"], check_claims={"aud": "billing"})


def kids(jwks: dict) -> list[str]:
    return [key["kid"] for key in jwks["keys"]]


def test_key_rotation_prepublished_key_signs_and_retired_key_still_verifies(make_broker):
    broker = make_broker().start()
    client = setup_client(broker)

    before_token = broker.token(client)
    old_kid = unverified_header(before_token)["kid"]
    jwks_before = broker.jwks()
    kids_before = kids(jwks_before)
    assert old_kid in kids_before
    assert len(kids_before) >= 2, "no pre-published next key in JWKS before the rotation"
    states = {key["kid"]: key["state"] for key in broker.cli("keys", "list").json}
    assert states[old_kid] == "active"

    rotation = broker.cli("keys", "rotate").json
    assert rotation["retired"] == old_kid
    assert rotation["active"] != old_kid
    assert rotation["active"] in kids_before, "the newly active key was not published before the rotation"

    # A running server picks the rotation up on its own: poll JWKS, bounded.
    deadline = time.monotonic() + 10
    jwks_after = broker.jwks()
    while kids(jwks_after) == kids_before and time.monotonic() < deadline:
        time.sleep(0.2)
        jwks_after = broker.jwks()
    assert kids(jwks_after) != kids_before, "JWKS did not change within 10 s of `tessera keys rotate`"
    assert old_kid in kids(jwks_after), "the retired key is no longer published"
    assert rotation["next"] in kids(jwks_after), "the new next key is not published"

    # The token issued before the rotation still verifies against the new JWKS.
    claims_before = verify_with_pyjwt(broker, before_token)
    check_claims(broker, claims_before, client)
    check_claims(broker, verify_with_jwcrypto(broker, before_token, json.dumps(jwks_after)), client)

    # A token issued now is signed with the new key, which was in the JWKS fetched before rotating.
    after_token = broker.token(client)
    new_kid = unverified_header(after_token)["kid"]
    assert new_kid == rotation["active"]
    assert new_kid != old_kid
    assert new_kid in kids_before, "new tokens are signed by a key relying parties could not have cached"
    check_claims(broker, verify_with_pyjwt(broker, after_token), client)
    check_claims(broker, verify_with_jwcrypto(broker, after_token), client)
    # ... and verifies even with the JWKS a relying party cached before the rotation.
    check_claims(broker, verify_with_jwcrypto(broker, after_token, json.dumps(jwks_before)), client)


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256", "PS256"])
def test_configured_signing_algorithm_signs_tokens_that_pyjwt_and_jwcrypto_verify(make_broker, algorithm):
    broker = make_broker(env={"TESSERA_SIGNING_ALG": algorithm}).start()
    client = setup_client(broker)
    token = broker.token(client)
    assert unverified_header(token)["alg"] == algorithm
    metadata = broker.metadata()
    signing_key = pyjwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False, timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(token)
    claims = pyjwt.decode(token, signing_key.key, algorithms=[algorithm], audience="crm", issuer=metadata["issuer"])
    assert claims["client_id"] == client.client_id
    keyset = jwcrypto_jwk.JWKSet.from_json(requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).text)
    jwcrypto_jwt.JWT(jwt=token, key=keyset, algs=[algorithm], check_claims={"iss": metadata["issuer"], "aud": "crm"})


def test_unknown_signing_algorithm_is_refused_at_start(make_broker):
    broker = make_broker(env={"TESSERA_SIGNING_ALG": "HS256"})
    proc = broker.spawn()
    assert broker.wait_exit() != 0
    assert "signing_alg" in broker.log_text()
