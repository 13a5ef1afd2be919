"""Workload identity federation with the issuer's published keys (issue 5, DESIGN.md's
`idps add-workload ... [--jwks FILE|URL]`): the trust rule names a `jwks_uri`, given or found by
OpenID discovery at the issuer (as GitHub Actions and Kubernetes publish theirs), and the broker
fetches the JWKS, caches it, fetches again for a key it has not seen (the issuer rotated), and
keeps the last good set while the issuer is down.

The issuer is a small HTTP server on loopback serving its discovery document and JWKS; tokens are
signed with PyJWT (support.WorkloadIssuerSim).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from keys import ec_p256_key
from support import (READ_WRITE, WorkloadIssuerSim, add_client_with_grants, assert_oauth_error, describe, exchange,
                     put_policy, unverified_claims)


REFETCH_INTERVAL = 10  # RemoteJWKS.refetchInterval


class PublishingIssuer:
    """An OIDC-style issuer on 127.0.0.1 publishing /.well-known/openid-configuration and /jwks.
    `up` False answers 503 to everything; `hits` counts JWKS fetches."""

    def __init__(self, directory) -> None:
        self.up = True
        self.hits = 0
        self.extra_keys: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if not owner.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": owner.issuer, "jwks_uri": owner.issuer + "/jwks",
                            "id_token_signing_alg_values_supported": ["ES256", "RS256"]}
                elif self.path == "/jwks":
                    owner.hits += 1
                    body = {"keys": [owner.sim.ec.public_jwk, owner.sim.rsa.public_jwk, *owner.extra_keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.sim = WorkloadIssuerSim(self.issuer, directory, name="published")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def world(broker, tmp_path_factory):
    directory = tmp_path_factory.mktemp("remote-jwks")
    issuer = PublishingIssuer(directory)
    by_url = PublishingIssuer(directory)
    try:
        broker.add_tenant("acme")
        added = broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", issuer.issuer, "--audience", "tessera",
                           "--subject", "repo:acme/*", "--scopes", READ_WRITE).json
        assert added["kind"] == "workload", added
        broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", by_url.issuer, "--jwks", by_url.issuer + "/jwks",
                   "--audience", "tessera", "--scopes", READ_WRITE)
        client = add_client_with_grants(broker, "acme", "ci-connector", READ_WRITE)
        put_policy(broker, "acme", {"exchange": [
            {"id": "ci", "effect": "allow", "clients": [client.client_id], "subject_token_types": ["jwt"],
             "scopes": "crm:contacts.read", "actor": "optional", "dpop": "optional"},
        ]}, directory / "policy.json")
        yield SimpleNamespace(issuer=issuer, by_url=by_url, client=client)
    finally:
        issuer.stop()
        by_url.stop()


def test_keys_found_by_discovery_verify_the_issuers_tokens(broker, world):
    response = exchange(broker, world.client, world.issuer.sim.token(), "jwt")
    assert response.status_code == 200, describe(response)
    claims = unverified_claims(response.json()["access_token"])
    assert claims["sub"] == "repo:acme/widgets:ref:refs/heads/main" and claims["sub_type"] == "service"


def test_a_jwks_url_given_explicitly_is_used(broker, world):
    response = exchange(broker, world.client, world.by_url.sim.token(key="rsa"), "jwt")
    assert response.status_code == 200, describe(response)


def test_a_key_the_issuer_adds_later_is_fetched_when_a_token_names_it(broker, world):
    from support import sign_jwt

    rotated = ec_p256_key("published-ec-2")
    world.issuer.extra_keys = [rotated.public_jwk]
    # The broker fetches a JWKS at most once per 10 s per URL; the first test fetched it just now.
    time.sleep(REFETCH_INTERVAL + 0.5)
    before = world.issuer.hits
    token = sign_jwt(world.issuer.sim.claims(), rotated.private_key, "ES256", rotated.kid)
    response = exchange(broker, world.client, token, "jwt")
    assert response.status_code == 200, describe(response)
    assert world.issuer.hits == before + 1, "the new kid did not cause one fetch"


def test_a_token_signed_by_a_key_the_issuer_does_not_publish_is_refused(broker, world):
    from support import sign_jwt

    stranger = ec_p256_key("published-ec")  # the published kid, another key
    token = sign_jwt(world.issuer.sim.claims(), stranger.private_key, "ES256", stranger.kid)
    assert_oauth_error(exchange(broker, world.client, token, "jwt"), "invalid_request")


def test_unknown_kids_do_not_make_the_broker_hammer_the_issuer(broker, world):
    from support import sign_jwt

    before = world.issuer.hits
    for index in range(8):
        made_up = ec_p256_key(f"made-up-{index}")
        token = sign_jwt(world.issuer.sim.claims(), made_up.private_key, "ES256", made_up.kid)
        assert_oauth_error(exchange(broker, world.client, token, "jwt"), "invalid_request")
    assert world.issuer.hits - before <= 1, f"{world.issuer.hits - before} JWKS fetches for 8 unknown kids"


def test_the_last_good_keys_serve_while_the_issuer_is_down(broker, world):
    world.issuer.up = False
    try:
        response = exchange(broker, world.client, world.issuer.sim.token(), "jwt")
        assert response.status_code == 200, describe(response)
    finally:
        world.issuer.up = True


def test_adding_an_issuer_whose_keys_cannot_be_found_fails_and_stores_nothing(broker, world, tmp_path):
    down = PublishingIssuer(tmp_path)
    down.up = False
    try:
        result = broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", down.issuer, "--audience", "tessera",
                            "--scopes", READ_WRITE, check=False)
        assert result.returncode != 0, "add-workload succeeded without keys"
        refused = broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", "http://ci.example.test",
                             "--jwks", "http://ci.example.test/jwks", "--audience", "tessera", "--scopes", READ_WRITE,
                             check=False)
        assert refused.returncode != 0, "a plain-http JWKS URL off loopback was accepted"
    finally:
        down.stop()
    listed = broker.cli("idps", "list", "--tenant", "acme").json
    issuers = {item.get("issuer") for item in (listed if isinstance(listed, list) else listed.get("idps", []))}
    assert down.issuer not in issuers, issuers
