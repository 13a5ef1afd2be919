"""DPoP (RFC 9449) at the token endpoint, client_credentials grant, with the client side done by
independent libraries: proofs are built with jwcrypto (EC P-256, RSA, Ed25519) and with PyJWT
(ES256, a `cryptography` key); the bound token is checked with jwcrypto's RFC 7638 thumbprint,
verified by PyJWT against the live `jwks_uri`, and introspected.

Server nonces are on by default: every proof is first sent without a nonce and must be answered
400 use_dpop_nonce with a `DPoP-Nonce` header, then sent again (a new proof) with that nonce.
"""

from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace
from typing import Callable

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from support import HTTP_TIMEOUT, Client, describe, unverified_claims, unverified_header

SCOPE = "crm:contacts.read"

# A function that makes a signed DPoP proof: (htu, nonce, **overrides) -> compact JWS.
ProofMaker = Callable[..., str]


# ----------------------------------------------------------------------------------------------
# Proofs made by the libraries


def proof_claims(htu: str, nonce: str | None, *, htm: str = "POST", iat: int | None = None) -> dict:
    claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time()) if iat is None else iat}
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def jwcrypto_prover(key: jwcrypto_jwk.JWK, alg: str) -> ProofMaker:
    """Proofs signed by jwcrypto; the header `jwk` is the public key only, unless `header_jwk`
    says otherwise."""

    def make(htu: str, nonce: str | None = None, *, header_jwk: dict | None = None, **claim_overrides) -> str:
        header = {"typ": "dpop+jwt", "alg": alg, "jwk": header_jwk or key.export_public(as_dict=True)}
        token = jwcrypto_jwt.JWT(header=header, claims=proof_claims(htu, nonce, **claim_overrides))
        token.make_signed_token(key)
        return token.serialize()

    return make


def pyjwt_prover(private_key: ec.EllipticCurvePrivateKey) -> tuple[ProofMaker, dict]:
    """Proofs signed by PyJWT with ES256 and a `cryptography` key. Returns the maker and the
    public JWK PyJWT puts in the header."""
    public_jwk = pyjwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    assert "d" not in public_jwk

    def make(htu: str, nonce: str | None = None, **claim_overrides) -> str:
        headers = {"typ": "dpop+jwt", "jwk": public_jwk}
        return pyjwt.encode(proof_claims(htu, nonce, **claim_overrides), private_key, algorithm="ES256", headers=headers)

    return make, public_jwk


def jwcrypto_thumbprint(public_jwk: dict) -> str:
    """RFC 7638 SHA-256 thumbprint, computed by jwcrypto."""
    return jwcrypto_jwk.JWK(**public_jwk).thumbprint()


# ----------------------------------------------------------------------------------------------
# HTTP


def post_token(broker, client: Client, proof: str | None, scope: str | None = SCOPE) -> requests.Response:
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    headers = {"DPoP": proof} if proof is not None else {}
    return requests.post(broker.token_endpoint, data=data, auth=(client.client_id, client.secret),
                         headers=headers, timeout=HTTP_TIMEOUT)


def oauth_error(response: requests.Response) -> str | None:
    try:
        return response.json().get("error")
    except ValueError:
        return None


def assert_refused(response: requests.Response, error: str) -> None:
    assert response.status_code == 400, describe(response)
    assert oauth_error(response) == error, describe(response)
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)


def fetch_nonce(broker, client: Client, make: ProofMaker) -> str:
    """A valid proof without a nonce: the broker must ask for one (RFC 9449 §8) and give it."""
    response = post_token(broker, client, make(broker.token_endpoint))
    assert_refused(response, "use_dpop_nonce")
    nonce = response.headers.get("DPoP-Nonce")
    assert nonce, "400 use_dpop_nonce without a DPoP-Nonce header"
    return nonce


def dpop_token_with_nonce_round_trip(broker, client: Client, make: ProofMaker) -> requests.Response:
    """The full exchange: use_dpop_nonce, then a new proof carrying the nonce -> 200."""
    nonce = fetch_nonce(broker, client, make)
    response = post_token(broker, client, make(broker.token_endpoint, nonce))
    assert response.status_code == 200, describe(response)
    assert response.headers.get("DPoP-Nonce"), "a successful token response under nonces has no DPoP-Nonce header"
    return response


def verify_with_pyjwt(broker, token: str) -> dict:
    """PyJWT, keys from the live `jwks_uri`, no caching."""
    metadata = broker.metadata()
    jwks_client = pyjwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False, cache_keys=False, timeout=HTTP_TIMEOUT)
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    assert unverified_header(token)["typ"] == "at+jwt"
    return pyjwt.decode(token, signing_key.key, algorithms=["ES256"], audience="crm", issuer=metadata["issuer"],
                        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})


def check_bound_token(broker, parties, response: requests.Response, public_jwk: dict) -> None:
    """token_type DPoP, cnf.jkt = jwcrypto's thumbprint of the proof key, the token verifies with
    PyJWT, and introspection reports the same binding."""
    body = response.json()
    assert body["token_type"] == "DPoP", f"token_type {body.get('token_type')!r}"
    assert "no-store" in response.headers.get("Cache-Control", "")
    token = body["access_token"]
    expected_jkt = jwcrypto_thumbprint(public_jwk)

    claims = verify_with_pyjwt(broker, token)
    assert claims["client_id"] == parties.svc.client_id
    assert claims.get("cnf") == {"jkt": expected_jkt}, f"cnf {claims.get('cnf')!r}"

    answer = broker.introspect(parties.rs, token)
    assert answer.status_code == 200, describe(answer)
    answer = answer.json()
    assert answer["active"] is True
    assert answer.get("cnf") == {"jkt": expected_jkt}, f"introspection cnf {answer.get('cnf')!r}"
    assert answer.get("token_type") == "DPoP", f"introspection token_type {answer.get('token_type')!r}"


# ----------------------------------------------------------------------------------------------
# Fixtures


def add_client(broker, name: str, *extra: str) -> Client:
    out = broker.cli("clients", "add", "--tenant", "acme", "--name", name, "--scopes", SCOPE, *extra).json
    assert out["client_id"] and out.get("client_secret")
    return Client(out["client_id"], out["client_secret"], "client_secret_basic", "acme")


@pytest.fixture(scope="module")
def parties(broker):
    broker.add_tenant("acme")
    return SimpleNamespace(
        svc=add_client(broker, "svc"),                                # DPoP optional (the default)
        strict=add_client(broker, "strict", "--dpop", "required"),    # DPoP required
        rs=add_client(broker, "rs", "--introspect"),                  # resource server, introspects
    )


@pytest.fixture(scope="module")
def ec_key() -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256")


# ----------------------------------------------------------------------------------------------
# Bound tokens


JWCRYPTO_KEYS = {
    "ES256": lambda: jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256"),
    "PS256": lambda: jwcrypto_jwk.JWK.generate(kty="RSA", size=2048),
    "RS256": lambda: jwcrypto_jwk.JWK.generate(kty="RSA", size=2048),
    "EdDSA": lambda: jwcrypto_jwk.JWK.generate(kty="OKP", crv="Ed25519"),
}


@pytest.mark.parametrize("alg", list(JWCRYPTO_KEYS))
def test_jwcrypto_proof_after_nonce_round_trip_binds_token_to_jwk_thumbprint(broker, parties, alg):
    key = JWCRYPTO_KEYS[alg]()
    make = jwcrypto_prover(key, alg)
    assert "d" not in unverified_header(make(broker.token_endpoint))["jwk"]
    response = dpop_token_with_nonce_round_trip(broker, parties.svc, make)
    check_bound_token(broker, parties, response, key.export_public(as_dict=True))


def test_pyjwt_es256_proof_after_nonce_round_trip_binds_token_to_jwk_thumbprint(broker, parties):
    make, public_jwk = pyjwt_prover(ec.generate_private_key(ec.SECP256R1()))
    header = unverified_header(make(broker.token_endpoint))
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256" and header["jwk"] == public_jwk
    response = dpop_token_with_nonce_round_trip(broker, parties.svc, make)
    check_bound_token(broker, parties, response, public_jwk)


def test_nonce_from_a_successful_response_is_accepted_by_the_next_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    first = dpop_token_with_nonce_round_trip(broker, parties.svc, make)
    second = post_token(broker, parties.svc, make(broker.token_endpoint, first.headers["DPoP-Nonce"]))
    assert second.status_code == 200, describe(second)
    assert second.json()["token_type"] == "DPoP"
    assert unverified_claims(second.json()["access_token"])["cnf"] == {"jkt": ec_key.thumbprint()}


def test_token_without_proof_for_optional_client_is_plain_bearer(broker, parties):
    response = post_token(broker, parties.svc, None)
    assert response.status_code == 200, describe(response)
    assert response.json()["token_type"] == "Bearer"
    assert "cnf" not in unverified_claims(response.json()["access_token"])


# ----------------------------------------------------------------------------------------------
# Refused proofs


def test_replayed_proof_with_valid_nonce_is_invalid_dpop_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    nonce = fetch_nonce(broker, parties.svc, make)
    proof = make(broker.token_endpoint, nonce)
    first = post_token(broker, parties.svc, proof)
    assert first.status_code == 200, describe(first)
    assert_refused(post_token(broker, parties.svc, proof), "invalid_dpop_proof")


def test_proof_for_introspection_endpoint_htu_is_invalid_dpop_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    nonce = fetch_nonce(broker, parties.svc, make)
    htu = broker.metadata()["introspection_endpoint"]
    assert htu != broker.token_endpoint
    assert_refused(post_token(broker, parties.svc, make(htu, nonce)), "invalid_dpop_proof")


def test_proof_for_get_method_is_invalid_dpop_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    nonce = fetch_nonce(broker, parties.svc, make)
    assert_refused(post_token(broker, parties.svc, make(broker.token_endpoint, nonce, htm="GET")),
                   "invalid_dpop_proof")


def test_proof_issued_ten_minutes_ago_is_invalid_dpop_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    nonce = fetch_nonce(broker, parties.svc, make)
    stale = int(time.time()) - 600
    assert_refused(post_token(broker, parties.svc, make(broker.token_endpoint, nonce, iat=stale)),
                   "invalid_dpop_proof")


def test_proof_with_private_d_member_in_header_jwk_is_invalid_dpop_proof(broker, parties, ec_key):
    make = jwcrypto_prover(ec_key, "ES256")
    nonce = fetch_nonce(broker, parties.svc, make)
    private_jwk = json.loads(ec_key.export_private())
    assert "d" in private_jwk
    proof = make(broker.token_endpoint, nonce, header_jwk=private_jwk)
    assert "d" in unverified_header(proof)["jwk"]
    assert_refused(post_token(broker, parties.svc, proof), "invalid_dpop_proof")


def test_dpop_required_client_without_proof_is_invalid_dpop_proof(broker, parties, ec_key):
    assert_refused(post_token(broker, parties.strict, None), "invalid_dpop_proof")
    # ... and the same client with a proof gets a bound token: the refusal was about the proof.
    response = dpop_token_with_nonce_round_trip(broker, parties.strict, jwcrypto_prover(ec_key, "ES256"))
    assert response.json()["token_type"] == "DPoP"
    assert unverified_claims(response.json()["access_token"])["cnf"] == {"jkt": ec_key.thumbprint()}


# ----------------------------------------------------------------------------------------------
# Nonces off


def test_nonces_disabled_by_env_proof_without_nonce_gets_bound_token_directly(make_broker):
    broker = make_broker(env={"TESSERA_DPOP_NONCE": "false"}).start()
    broker.add_tenant("acme")
    client = add_client(broker, "svc")
    key = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256")
    make = jwcrypto_prover(key, "ES256")
    response = post_token(broker, client, make(broker.token_endpoint))
    assert response.status_code == 200, describe(response)
    assert response.json()["token_type"] == "DPoP"
    claims = verify_with_pyjwt(broker, response.json()["access_token"])
    assert claims["cnf"] == {"jkt": key.thumbprint()}
