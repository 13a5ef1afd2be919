"""No secret and no token ends up in the server log or the audit trail.

Traffic covers every place a credential travels: Basic header, form secret, client assertion,
tokens posted to introspection and revocation, failed attempts with near-miss secrets. Then the
server is stopped (SIGTERM, exit 0) and its whole stderr log and `audit export` are searched.
Failure messages name what leaked, never the value.
"""

from __future__ import annotations

import base64
import dataclasses
import time
import uuid

import jwt as pyjwt
import requests

from keys import ec_p256_key
from support import HTTP_TIMEOUT

SCOPE = "crm:contacts.read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_server_log_and_audit_export_contain_no_client_secret_or_access_token(make_broker, tmp_path):
    broker = make_broker(env={"TESSERA_LOG_LEVEL": "trace"}).start()
    broker.add_tenant("acme")
    basic = broker.add_client("acme", "basic", SCOPE, introspect=True)
    post = broker.add_client("acme", "post", SCOPE, auth="client_secret_post")
    key = ec_p256_key("hygiene")
    pkjwt = broker.add_client("acme", "pkjwt", SCOPE, auth="private_key_jwt", jwks=key.write_jwks(tmp_path / "jwks.json"))

    secrets: dict[str, str] = {}
    for name, client in (("basic", basic), ("post", post)):
        secrets[f"{name} client secret"] = client.secret
        secrets[f"{name} client secret without prefix"] = client.secret.split("_", 1)[-1]
    secrets["Basic header value"] = base64.b64encode(f"{basic.client_id}:{basic.secret}".encode()).decode()

    tokens: list[str] = []
    tokens.append(broker.token(basic))
    tokens.append(broker.token(post))
    for i in range(2):
        now = int(time.time())
        assertion = pyjwt.encode(
            {"iss": pkjwt.client_id, "sub": pkjwt.client_id, "aud": broker.token_endpoint, "iat": now, "exp": now + 60,
             "jti": uuid.uuid4().hex}, key.private_key, algorithm="ES256", headers={"kid": key.kid})
        secrets[f"client assertion {i}"] = assertion
        data = {"grant_type": "client_credentials", "client_id": pkjwt.client_id, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion}
        first = requests.post(broker.token_endpoint, data=data, timeout=HTTP_TIMEOUT)
        assert first.status_code == 200, f"HTTP {first.status_code}"
        tokens.append(first.json()["access_token"])
        replay = requests.post(broker.token_endpoint, data=data, timeout=HTTP_TIMEOUT)
        assert replay.status_code == 401

    # Near misses: a wrong secret that shares all but its last character with the right one.
    near_miss = basic.secret[:-1] + ("A" if basic.secret[-1] != "A" else "B")
    secrets["near-miss secret"] = near_miss
    wrong = requests.post(broker.token_endpoint, data={"grant_type": "client_credentials"}, auth=(basic.client_id, near_miss),
                          timeout=HTTP_TIMEOUT)
    assert wrong.status_code == 401
    wrong_post = requests.post(broker.token_endpoint, timeout=HTTP_TIMEOUT, data={
        "grant_type": "client_credentials", "client_id": post.client_id, "client_secret": post.secret + "x"})
    assert wrong_post.status_code == 401
    # A secret sent where it does not belong (in the form of a Basic-registered client).
    misplaced = requests.post(broker.token_endpoint, timeout=HTTP_TIMEOUT, data={
        "grant_type": "client_credentials", "client_id": basic.client_id, "client_secret": basic.secret})
    assert misplaced.status_code == 401

    for token in list(tokens):
        assert broker.introspect(basic, token).status_code == 200
    assert broker.revoke(basic, tokens[0]).status_code == 200
    assert broker.introspect(basic, tokens[0]).json() == {"active": False}
    # A token where a secret is expected.
    assert broker.introspect(dataclasses.replace(basic, secret=tokens[1]), tokens[1]).status_code == 401

    for i, token in enumerate(tokens):
        secrets[f"access token {i}"] = token
        secrets[f"access token {i} signature"] = token.rsplit(".", 1)[1]

    assert broker.stop() == 0
    log = broker.log_text()
    audit = broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout
    assert "token.issued" in audit and "token.introspected" in audit and "request" in log

    leaks = [f"{name} in {where}" for name, value in secrets.items()
             for where, text in (("server log", log), ("audit export", audit)) if value in text]
    assert not leaks, f"secrets or tokens leaked: {leaks}"
