"""The test OpenID Provider (oidc_provider.py) on its own, before it judges the broker: discovery,
JWKS, the code flow with PKCE through Authlib's own client, the three client authentications,
userinfo, and each fault of its control surface, checked by an independent strict verifier
(PyJWT plus the OIDC Core §3.1.3.7 checks written out here). No broker is involved.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never a token, code or secret compared in it.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt as authlib_jwt
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken

from oidc_provider import ID_TOKEN_FAULTS, OpenIDProvider, Redacted, new_nonce, pkce_pair
from support import HTTP_TIMEOUT, b64url, b64url_decode, unverified_claims, unverified_header

REDIRECT = "http://127.0.0.1:9/cb"


# Every test starts with the provider's controls reset (conftest.py: `op`, `fresh_op`).
pytestmark = pytest.mark.usefixtures("fresh_op")


@pytest.fixture(scope="module")
def basic_client(op):
    secret = Redacted(op.new_secret())
    op.register_client("rp-basic", REDIRECT, "client_secret_basic", secret=secret)
    return "rp-basic", secret


@pytest.fixture(scope="module")
def post_client(op):
    secret = Redacted(op.new_secret())
    op.register_client("rp-post", REDIRECT, "client_secret_post", secret=secret)
    return "rp-post", secret


@pytest.fixture(scope="module")
def jwt_client(op):
    key = JsonWebKey.generate_key("EC", "P-256", {"kid": "rp-key-1", "alg": "ES256"}, is_private=True)
    op.register_client("rp-jwt", REDIRECT, "private_key_jwt", jwks={"keys": [key.as_dict(is_private=False)]})
    return "rp-jwt", key


def authorize(op, client_id: str, *, challenge: str | None, method: str | None = "S256", nonce: str | None = None,
              state: str = "st-1", scope: str = "openid email profile groups") -> dict:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
              "state": state}
    if nonce is not None:
        params["nonce"] = nonce
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    response = requests.get(op.authorization_endpoint, params=params, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert response.status_code == 302, f"HTTP {response.status_code}"
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), "the provider redirected elsewhere than the redirect_uri"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def redeem_basic(op, client, code: str, verifier: str | None) -> requests.Response:
    __tracebackhide__ = True  # its arguments are a code and a verifier
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    return requests.post(op.token_endpoint, data=data, auth=client, timeout=HTTP_TIMEOUT)


def sign_in_basic(op, client) -> tuple[dict, str]:
    verifier, challenge = pkce_pair()
    nonce = new_nonce()
    answer = authorize(op, client[0], challenge=challenge, nonce=nonce)
    response = redeem_basic(op, client, answer["code"], verifier)
    assert response.status_code == 200, f"HTTP {response.status_code}: {op.token_errors[-1:]}"
    return response.json(), nonce


def strict_check(op, id_token: str, client_id: str, nonce: str, access_token: str) -> dict:
    """An independent relying party's checks (OIDC Core §3.1.3.7 and §3.2.2.9): raises on failure."""
    __tracebackhide__ = True  # its arguments are tokens
    header = unverified_header(id_token)
    if header.get("alg") not in ("RS256", "ES256"):
        raise ValueError(f"alg {header.get('alg')} not accepted")
    keys = {k["kid"]: k for k in requests.get(op.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]}
    if header.get("kid") not in keys:
        raise ValueError("unknown kid")
    key = pyjwt.PyJWK(keys[header["kid"]])
    claims = pyjwt.decode(id_token, key.key, algorithms=[header["alg"]], audience=client_id, issuer=op.issuer,
                          options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_iat": False}, leeway=0)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise ValueError("azp")
    if claims["iat"] > time.time() + 60:
        raise ValueError("iat in the future")
    if claims.get("nonce") != nonce:
        raise ValueError("nonce")
    if "at_hash" in claims:
        digest = hashlib.sha256(access_token.encode()).digest()
        if claims["at_hash"] != b64url(digest[:16]):
            raise ValueError("at_hash")
    return claims


# ----------------------------------------------------------------------------------------------


def test_discovery_names_the_endpoints_and_the_issuer(op):
    document = requests.get(op.issuer + "/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
    assert document["issuer"] == op.issuer
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert document[name].startswith(op.issuer + "/")
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"}


def test_jwks_publishes_public_rsa_and_ec_keys_only(op):
    keys = requests.get(op.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]
    assert {(k["kty"], k["kid"], k["alg"]) for k in keys} == {("RSA", "op-rsa-1", "RS256"), ("EC", "op-ec-1", "ES256")}
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private key material in the JWKS"


def test_authlib_client_signs_in_with_pkce_and_the_id_token_validates(op, basic_client):
    """Authlib's own relying party (OAuth2Session, CodeIDToken) against the provider."""
    client_id, secret = basic_client
    verifier, _ = pkce_pair()
    nonce = new_nonce()
    session = OAuth2Session(client_id, secret, scope="openid email profile groups", redirect_uri=REDIRECT,
                            code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    url, state = session.create_authorization_url(op.authorization_endpoint, code_verifier=verifier, nonce=nonce)
    response = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert response.status_code == 302
    token = session.fetch_token(op.token_endpoint, authorization_response=response.headers["Location"],
                                code_verifier=verifier, state=state)
    assert op.token_requests[-1]["basic"] is True
    claims = authlib_jwt.decode(token["id_token"], JsonWebKey.import_key_set(op.public_jwks()), claims_cls=CodeIDToken,
                                claims_options={"iss": {"essential": True, "value": op.issuer}},
                                claims_params={"nonce": nonce, "client_id": client_id,
                                               "access_token": token["access_token"]})
    claims.validate(leeway=0)
    assert claims["sub"] == "user-0001" and claims["email"] == "ada@example.com"
    assert "at_hash" in claims and unverified_header(token["id_token"])["kid"] == "op-rsa-1"
    userinfo = session.get(op.userinfo_endpoint, timeout=HTTP_TIMEOUT)
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == "user-0001"


def test_client_secret_post_client_authenticates_in_the_form_and_not_with_basic(op, post_client):
    client_id, secret = post_client
    verifier, challenge = pkce_pair()
    code = authorize(op, client_id, challenge=challenge, nonce=new_nonce())["code"]
    refused = redeem_basic(op, post_client, code, verifier)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
            "client_id": client_id, "client_secret": secret}
    response = requests.post(op.token_endpoint, data=data, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, op.token_errors[-1:]
    assert "id_token" in response.json()


def test_private_key_jwt_client_authenticates_with_an_assertion_used_once(op, jwt_client):
    client_id, key = jwt_client
    verifier, challenge = pkce_pair()
    nonce = new_nonce()
    session = OAuth2Session(client_id, key.as_dict(is_private=True), scope="openid email", redirect_uri=REDIRECT,
                            code_challenge_method="S256",
                            token_endpoint_auth_method=PrivateKeyJWT(op.token_endpoint, alg="ES256"))
    url, state = session.create_authorization_url(op.authorization_endpoint, code_verifier=verifier, nonce=nonce)
    location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
    token = session.fetch_token(op.token_endpoint, authorization_response=location, code_verifier=verifier, state=state)
    assert "id_token" in token
    assert op.assertions[-1]["claims"]["iss"] == client_id
    # A secret is not accepted for this client.
    code = authorize(op, client_id, challenge=challenge, nonce=new_nonce())["code"]
    refused = redeem_basic(op, (client_id, "not-a-secret-of-this-client"), code, verifier)
    assert refused.status_code == 401


def test_replayed_assertion_is_refused(op, jwt_client):
    client_id, key = jwt_client
    now = int(time.time())
    assertion = authlib_jwt.encode({"alg": "ES256", "kid": "rp-key-1"},
                                   {"iss": client_id, "sub": client_id, "aud": op.token_endpoint, "iat": now,
                                    "exp": now + 60, "jti": new_nonce()}, key.as_dict(is_private=True)).decode()
    for attempt in range(2):
        verifier, challenge = pkce_pair()
        code = authorize(op, client_id, challenge=challenge, nonce=new_nonce())["code"]
        response = requests.post(op.token_endpoint, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
            "client_id": client_id, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, timeout=HTTP_TIMEOUT)
        if attempt == 0:
            assert response.status_code == 200, op.token_errors[-1:]
        else:  # Authlib answers 400 invalid_client when the assertion itself is refused
            assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
            assert op.token_errors[-1]["error_description"] == "Invalid claim 'jti'"


def test_pkce_is_required_s256_only_and_a_wrong_verifier_is_invalid_grant(op, basic_client):
    client_id = basic_client[0]
    # authorize without a challenge, or with `plain`: an error back at the redirect_uri
    assert authorize(op, client_id, challenge=None, method=None, nonce=new_nonce())["error"] == "invalid_request"
    verifier, challenge = pkce_pair()
    assert authorize(op, client_id, challenge=verifier, method="plain", nonce=new_nonce())["error"] == "invalid_request"
    # token without a verifier
    code = authorize(op, client_id, challenge=challenge, nonce=new_nonce())["code"]
    response = redeem_basic(op, basic_client, code, None)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    # a wrong verifier (the verifier of another login)
    other_verifier, _ = pkce_pair()
    code = authorize(op, client_id, challenge=challenge, nonce=new_nonce())["code"]
    response = redeem_basic(op, basic_client, code, other_verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert op.token_errors[-1]["error_description"] == "Code challenge failed."


def test_nonce_is_required(op, basic_client):
    _, challenge = pkce_pair()
    assert authorize(op, basic_client[0], challenge=challenge, nonce=None)["error"] == "invalid_request"


def test_code_is_redeemed_once(op, basic_client):
    verifier, challenge = pkce_pair()
    code = authorize(op, basic_client[0], challenge=challenge, nonce=new_nonce())["code"]
    assert redeem_basic(op, basic_client, code, verifier).status_code == 200
    again = redeem_basic(op, basic_client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_authorize_access_denied_comes_back_with_the_state(op, basic_client):
    op.fail_next_authorize("access_denied")
    answer = authorize(op, basic_client[0], challenge=pkce_pair()[1], nonce=new_nonce(), state="st-denied")
    assert answer["error"] == "access_denied" and answer["state"] == "st-denied" and "code" not in answer
    # one-shot
    assert "code" in authorize(op, basic_client[0], challenge=pkce_pair()[1], nonce=new_nonce())


def test_token_refusal_is_one_shot(op, basic_client):
    op.fail_next_token(400, "invalid_grant")
    verifier, challenge = pkce_pair()
    code = authorize(op, basic_client[0], challenge=challenge, nonce=new_nonce())["code"]
    refused = redeem_basic(op, basic_client, code, verifier)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert redeem_basic(op, basic_client, code, verifier).status_code == 200


def test_userinfo_override_changes_the_sub_once(op, basic_client):
    token, _ = sign_in_basic(op, basic_client)
    op.next_userinfo(sub="someone-else")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(op.userinfo_endpoint, headers=headers, timeout=HTTP_TIMEOUT).json()["sub"] == "someone-else"
    assert requests.get(op.userinfo_endpoint, headers=headers, timeout=HTTP_TIMEOUT).json()["sub"] == "user-0001"
    assert requests.get(op.userinfo_endpoint, timeout=HTTP_TIMEOUT).status_code == 401


def test_discovery_override_and_jwks_failure_modes(op):
    op.discovery_overrides = {"issuer": "http://127.0.0.1:1/else", "jwks_uri": None}
    document = requests.get(op.issuer + "/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
    assert document["issuer"] == "http://127.0.0.1:1/else" and "jwks_uri" not in document
    op.jwks_status = 500
    assert requests.get(op.jwks_uri, timeout=HTTP_TIMEOUT).status_code == 500
    op.reset()
    assert requests.get(op.jwks_uri, timeout=HTTP_TIMEOUT).status_code == 200


def test_separate_jwks_listener_can_refuse_connections_and_come_back():
    with OpenIDProvider(separate=("jwks", "token")) as provider:
        assert provider.jwks_uri != provider.issuer + "/jwks"
        assert requests.get(provider.jwks_uri, timeout=HTTP_TIMEOUT).status_code == 200
        provider.take_down("jwks")
        with pytest.raises(requests.ConnectionError):
            requests.get(provider.jwks_uri, timeout=HTTP_TIMEOUT)
        provider.bring_up("jwks")
        assert requests.get(provider.jwks_uri, timeout=HTTP_TIMEOUT).status_code == 200


def test_user_claims_are_configurable_per_client(op, basic_client):
    op.set_user({"sub": "pairwise-1", "oid": "oid-1", "tid": "tid-1", "roles": ["r1"], "hd": "example.com",
                 "email": "x@example.com", "email_verified": False, "name": "X", "groups": ["g"]},
                client_id=basic_client[0])
    try:
        token, _ = sign_in_basic(op, basic_client)
        claims = unverified_claims(token["id_token"])
        assert (claims["sub"], claims["oid"], claims["tid"], claims["hd"], claims["roles"]) == (
            "pairwise-1", "oid-1", "tid-1", "example.com", ["r1"])
    finally:
        op.users.pop(basic_client[0], None)


def test_claims_left_out_of_the_id_token_are_in_userinfo(op, basic_client):
    op.exclude_from_id_token(basic_client[0], "groups", "name")
    try:
        token, _ = sign_in_basic(op, basic_client)
        claims = unverified_claims(token["id_token"])
        assert "groups" not in claims and "name" not in claims
        info = requests.get(op.userinfo_endpoint, headers={"Authorization": f"Bearer {token['access_token']}"},
                            timeout=HTTP_TIMEOUT).json()
        assert info["groups"] == ["engineering"] and info["name"] == "Ada Lovelace"
    finally:
        op.id_token_excluded.pop(basic_client[0], None)


VALID_FAULTS = {"multi_aud_with_azp", "iat_slightly_future", "no_at_hash", "es256"}


@pytest.mark.parametrize("fault", sorted(ID_TOKEN_FAULTS))
def test_each_id_token_fault_is_caught_by_a_strict_verifier_and_only_the_valid_ones_pass(op, basic_client, fault):
    token, nonce = sign_in_basic(op, basic_client)
    strict_check(op, token["id_token"], basic_client[0], nonce, token["access_token"])  # the genuine one passes
    op.tamper_next_id_token(fault)
    token, nonce = sign_in_basic(op, basic_client)
    if fault == "absent":
        assert "id_token" not in token, "the ID token was not left out"
        sign_in_basic(op, basic_client)
        return
    assert token["id_token"] == op.issued["id_token"][-1]
    if fault in VALID_FAULTS:
        strict_check(op, token["id_token"], basic_client[0], nonce, token["access_token"])
    else:
        with pytest.raises((ValueError, pyjwt.PyJWTError, KeyError)):
            strict_check(op, token["id_token"], basic_client[0], nonce, token["access_token"])
    # one-shot: the next ID token is genuine again
    token, nonce = sign_in_basic(op, basic_client)
    strict_check(op, token["id_token"], basic_client[0], nonce, token["access_token"])


def test_hs256_forgery_verifies_with_the_public_key_as_hmac_secret(op, basic_client):
    """The forgery is the real attack: HMAC over the token with the PEM public key checks out."""
    import hmac as hmac_module

    from cryptography.hazmat.primitives import serialization

    op.tamper_next_id_token("hs256_public_key")
    token, _ = sign_in_basic(op, basic_client)
    head, body, signature = token["id_token"].split(".")
    pem = op.rsa_keys[-1].get_public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = hmac_module.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert b64url_decode(signature) == expected
    assert unverified_header(token["id_token"]) == {"alg": "HS256", "typ": "JWT", "kid": "op-rsa-1"}


def test_key_rotation_publishes_and_uses_a_new_kid():
    with OpenIDProvider() as provider:
        secret = Redacted(provider.new_secret())
        provider.register_client("rp", REDIRECT, secret=secret)
        kid = provider.rotate_signing_key()
        token, nonce = sign_in_basic(provider, ("rp", secret))
        assert unverified_header(token["id_token"])["kid"] == kid
        strict_check(provider, token["id_token"], "rp", nonce, token["access_token"])
