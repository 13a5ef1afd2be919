"""A real OpenID Provider for the interop tests of the broker's OIDC sign-in (docs/sso-oidc.md).

Built on Authlib's server components: `AuthorizationServer` (Flask integration), the
authorization code grant with the `OpenIDCode` extension (ID tokens, nonce), `CodeChallenge`
(PKCE, here made mandatory and S256 only), the `UserInfoEndpoint` behind a bearer-token
`ResourceProtector`, and client authentication by `client_secret_basic`, `client_secret_post` or
`private_key_jwt` (Authlib's `JWTBearerClientAssertion`, RFC 7523). Served by Werkzeug in threads
of the test process on 127.0.0.1, plain http (the broker accepts http on loopback).

There is no login page: `/authorize` signs in the configured test user at once and redirects back
with `code` and `state`, as a browser that already has a session at the provider would be.

Control surface for the negative tests (direct Python calls, the provider runs in-process):

    op.tamper_next_id_token("wrong_iss")        one of ID_TOKEN_FAULTS, for the NEXT ID token only
    op.fail_next_authorize("access_denied")      the next /authorize redirects back with an error
    op.fail_next_token(400, "invalid_grant")     the next /token is refused
    op.next_userinfo(sub="someone-else")         the next /userinfo answers these claims on top
    op.discovery_overrides = {"issuer": ...}     members replaced (None: left out) in discovery
    op.jwks_status = 500                         /jwks answers this status until reset
    op.take_down("jwks") / op.bring_up("jwks")   with a separate listener: connection refused
    op.set_user(claims, client_id=None)          the signed-in user (per client, or the default)
    op.rotate_signing_key()                      a new RSA key (new kid), published and used
    op.signing_alg = "ES256"                     sign ID tokens with the EC key instead
    op.reset()                                   back to the defaults (keys stay)

Everything the provider issues (codes, access tokens, ID tokens) is recorded in `op.issued`, so
the tests can check that none of it is ever echoed or logged by the broker. Nothing here prints a
token or a secret (secrets are `Redacted` strings, whose repr hides them).

The last part drives the broker (test_oidc_*.py): `add_oidc_idp` (`tessera idps add-oidc` and the
same client registered here), `Browser` (a `requests.Session` following redirects by hand),
`sign_in` (the whole flow with every documented check of the happy path) and `leaks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from authlib.oidc.core.util import create_half_hash
from cryptography.hazmat.primitives import serialization
from flask import Flask, Response, jsonify, request
import requests
from werkzeug.serving import make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)

DEFAULT_SCOPES = "openid email profile groups"
ASYMMETRIC_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

# The ways the next ID token can be made wrong (tamper_next_id_token). The ones marked "valid"
# make an ID token that a correct relying party accepts: they test that it is not too strict.
ID_TOKEN_FAULTS = {
    "other_key_same_kid": "signed by another RSA key, with the provider's kid",
    "unknown_kid": "signed by a key whose kid is not in the JWKS",
    "no_kid": "no kid in the header, signed by another key",
    "alg_none": "alg none, no signature",
    "alg_None": "alg None (case variant), no signature",
    "hs256_public_key": "HS256, HMAC keyed with the provider's public key (PEM bytes)",
    "hs256_public_jwk": "HS256, HMAC keyed with the provider's public JWK (JSON bytes)",
    "bad_signature": "the provider's signature with one byte flipped",
    "wrong_iss": "iss of another issuer",
    "iss_trailing_slash": "iss with a trailing slash added",
    "wrong_aud": "aud another client id",
    "multi_aud_no_azp": "aud [client id, another], no azp",
    "multi_aud_wrong_azp": "aud [client id, another], azp another",
    "multi_aud_with_azp": "valid: aud [client id, another], azp the client id",
    "single_aud_wrong_azp": "aud the client id, azp another",
    "no_nonce": "no nonce",
    "wrong_nonce": "nonce of another login",
    "expired": "exp 5 minutes ago",
    "expired_30s": "exp 30 s ago (within a clock-skew allowance some relying parties give)",
    "expired_90s": "exp 90 s ago (beyond a 60 s allowance)",
    "no_exp": "no exp",
    "iat_future": "iat 5 minutes in the future",
    "iat_slightly_future": "valid: iat 20 s in the future (within the 60 s allowance)",
    "wrong_at_hash": "at_hash of another access token",
    "no_at_hash": "valid: no at_hash (it is optional in the code flow)",
    "not_jws": "not a compact JWS at all",
    "es256": "valid: signed by the provider's EC key (ES256)",
    "no_sub": "no sub",
    "absent": "no id_token in the token response at all",
}


class Redacted(str):
    """A secret or token: compares and searches as a str, never shows itself in a repr (pytest
    prints the arguments of the frames of a failure)."""

    def __repr__(self) -> str:
        return f"<redacted {len(self)} characters>"


def redact(text: str, *values: str | None) -> str:
    for value in values:
        if value:
            text = text.replace(value, "<redacted>")
    return text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(value: dict) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _hand_made_jws(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{_json_segment(header)}.{_json_segment(claims)}.{_b64url(signature)}"


def _hs256_jws(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


# ----------------------------------------------------------------------------------------------
# Models (in memory)


@dataclass
class OPClient(ClientMixin):
    client_id: str
    redirect_uris: list[str]
    auth_method: str = "client_secret_basic"
    secret: str | None = None
    jwks: dict | None = None
    scope: str = DEFAULT_SCOPES
    client_metadata: dict = field(default_factory=dict)
    id_token_signed_response_alg: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Exactly the registered method: a client registered for client_secret_post cannot use
        # Basic, and so on (the tests prove the broker uses the configured one).
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class OPUser:
    claims: dict

    def get_user_id(self) -> str:
        return self.claims["sub"]


@dataclass
class OPAuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: OPUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


@dataclass
class OPToken(TokenMixin):
    access_token: str
    client: OPClient
    user: OPUser
    scope: str
    issued_at: int
    expires_in: int

    def check_client(self, client) -> bool:
        return client.get_client_id() == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> OPUser:
        return self.user

    def get_client(self) -> OPClient:
        return self.client


# ----------------------------------------------------------------------------------------------
# Authlib pieces


class StrictS256CodeChallenge(CodeChallenge):
    """PKCE required of every client (not only public ones), S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __init__(self, op: "OpenIDProvider") -> None:
        super().__init__(required=True)
        self.op = op

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256", redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.code_challenge_method


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):
    """`private_key_jwt` (OIDC Core §9, RFC 7523 §2.2): the assertion's aud may be the token
    endpoint or the issuer; jti used once; asymmetric algorithms only; keys from the client's
    registered JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, op: "OpenIDProvider") -> None:
        super().__init__(token_url=None, validate_jti=True, leeway=60)
        self.op = op

    def create_claims_options(self):
        options = super().create_claims_options()
        options["aud"] = {"essential": True, "values": [self.op.token_endpoint, self.op.issuer]}
        options["iat"] = {"essential": False}
        return options

    def validate_jti(self, claims, jti):
        key = f"{claims['sub']}:{jti}"
        with self.op.lock:
            if key in self.op.seen_jtis:
                return False
            self.op.seen_jtis.add(key)
            return True

    def resolve_client_public_key(self, client, headers):
        alg = headers.get("alg")
        if alg not in ASYMMETRIC_ALGS:
            raise InvalidClientError(description="assertion algorithm not accepted")
        if not client.jwks:
            raise InvalidClientError(description="no JWKS registered for this client")
        with self.op.lock:
            self.op.assertions.append({"header": dict(headers)})
        key_set = JsonWebKey.import_key_set(client.jwks)
        kid = headers.get("kid")
        if kid is None and len(key_set.keys) == 1:
            return key_set.keys[0]
        try:
            return key_set.find_by_kid(kid)
        except ValueError:
            raise InvalidClientError(description="no key of this client has the assertion's kid") from None

    def process_assertion_claims(self, assertion, resolve_key):
        claims = super().process_assertion_claims(assertion, resolve_key)
        with self.op.lock:
            if self.op.assertions:
                self.op.assertions[-1]["claims"] = dict(claims)
        return claims


class OPAuthorizationCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    op: "OpenIDProvider"  # set on the subclass made per provider

    def save_authorization_code(self, code, request):
        data = request.payload.data
        item = OPAuthorizationCode(
            code=code, client_id=request.client.client_id, redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope, user=request.user, nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
            auth_time=int(time.time()))
        with self.op.lock:
            self.op.codes[code] = item
            self.op.issued["code"].append(code)
            if item.nonce:
                self.op.nonces.add(item.nonce)
        return item

    def query_authorization_code(self, code, client):
        with self.op.lock:
            item = self.op.codes.get(code)
        if item is not None and item.client_id == client.client_id:
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        with self.op.lock:
            self.op.codes.pop(authorization_code.code, None)
            self.op.redeemed_codes.add(authorization_code.code)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class OPOpenIDCode(OpenIDCode):
    def __init__(self, op: "OpenIDProvider") -> None:
        super().__init__(require_nonce=True)
        self.op = op

    def exists_nonce(self, nonce, request):
        with self.op.lock:
            return nonce in self.op.nonces

    def get_jwt_config(self, grant):
        key = self.op.current_signing_key()
        return {"key": key.as_dict(is_private=True), "alg": self.op.current_alg(), "iss": self.op.issuer,
                "exp": 3600, "kid": key.as_dict()["kid"]}

    def generate_user_info(self, user, scope):
        client_id = self.op.current_client_id
        excluded = self.op.id_token_excluded.get(client_id, set())
        return UserInfo({k: v for k, v in user.claims.items() if k not in excluded})

    def process_token(self, grant, response):
        self.op.current_client_id = grant.request.client.client_id
        token = super().process_token(grant, response)
        fault = self.op._take_id_token_fault()
        if fault == "absent":
            token.pop("id_token", None)
        elif fault is not None and "id_token" in token:
            token["id_token"] = self.op._forge_id_token(token["id_token"], token, fault)
        with self.op.lock:
            if "id_token" in token:
                self.op.issued["id_token"].append(token["id_token"])
        return token


class OPUserInfoEndpoint(UserInfoEndpoint):
    op: "OpenIDProvider"

    def generate_user_info(self, user, scope):
        claims = dict(user.claims)
        with self.op.lock:
            extra, self.op._next_userinfo = self.op._next_userinfo, None
        if extra:
            claims.update(extra)
        return UserInfo(claims)

    def get_issuer(self):
        return self.op.issuer


class OPBearerTokenValidator(BearerTokenValidator):
    def __init__(self, op: "OpenIDProvider") -> None:
        super().__init__()
        self.op = op

    def authenticate_token(self, token_string):
        with self.op.lock:
            return self.op.tokens.get(token_string)


# ----------------------------------------------------------------------------------------------
# The provider


class _Listener:
    def __init__(self, app: Flask, port: int = 0) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class OpenIDProvider:
    """One OpenID Provider on 127.0.0.1. `separate` names endpoints ("token", "jwks", "userinfo")
    served on listeners of their own, which `take_down` can close (connection refused)."""

    def __init__(self, separate: tuple[str, ...] = ()) -> None:
        self.lock = threading.RLock()
        self.rsa_keys = [JsonWebKey.generate_key("RSA", 2048, {"kid": "op-rsa-1", "use": "sig", "alg": "RS256"},
                                                 is_private=True)]
        self.ec_key = JsonWebKey.generate_key("EC", "P-256", {"kid": "op-ec-1", "use": "sig", "alg": "ES256"},
                                              is_private=True)
        self.clients: dict[str, OPClient] = {}
        self.codes: dict[str, OPAuthorizationCode] = {}
        self.redeemed_codes: set[str] = set()
        self.tokens: dict[str, OPToken] = {}
        self.nonces: set[str] = set()
        self.seen_jtis: set[str] = set()
        self.assertions: list[dict] = []
        self.issued: dict[str, list[str]] = {"code": [], "access_token": [], "id_token": []}
        self.hits: Counter = Counter()
        self.last_hit: dict[str, float] = {}
        self.token_errors: list[dict] = []
        self.authorize_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.current_client_id: str | None = None
        self.default_user = OPUser(self.default_claims())
        self.users: dict[str, OPUser] = {}
        self.id_token_excluded: dict[str, set[str]] = {}
        self.separate = tuple(separate)
        self.listeners: dict[str, _Listener] = {}
        self._reset_controls()
        self.app = self._make_app()

    # -- defaults and controls

    @staticmethod
    def default_claims() -> dict:
        return {"sub": "user-0001", "email": "ada@example.com", "email_verified": True, "name": "Ada Lovelace",
                "groups": ["engineering"]}

    def _reset_controls(self) -> None:
        with self.lock:
            self._id_token_faults: list[str] = []
            self._authorize_errors: list[str] = []
            self._token_failures: list[tuple[int, str | None]] = []
            self._next_userinfo: dict | None = None
            self.discovery_overrides: dict[str, Any] = {}
            self.jwks_status: int | None = None
            self.signing_alg = "RS256"

    def reset(self) -> None:
        """Drops pending faults and overrides; users, clients and keys stay."""
        self._reset_controls()
        for name in self.separate:
            if name not in self.listeners:
                self.bring_up(name)

    def tamper_next_id_token(self, fault: str) -> None:
        assert fault in ID_TOKEN_FAULTS, f"unknown ID token fault {fault!r}"
        with self.lock:
            self._id_token_faults.append(fault)

    def fail_next_authorize(self, error: str = "access_denied") -> None:
        with self.lock:
            self._authorize_errors.append(error)

    def fail_next_token(self, status: int = 400, error: str | None = "invalid_grant") -> None:
        with self.lock:
            self._token_failures.append((status, error))

    def next_userinfo(self, **claims: Any) -> None:
        with self.lock:
            self._next_userinfo = claims

    def set_user(self, claims: dict, client_id: str | None = None) -> None:
        with self.lock:
            if client_id is None:
                self.default_user = OPUser(dict(claims))
            else:
                self.users[client_id] = OPUser(dict(claims))

    def user_for(self, client_id: str) -> OPUser:
        with self.lock:
            return self.users.get(client_id, self.default_user)

    def exclude_from_id_token(self, client_id: str, *claims: str) -> None:
        """These claims are in /userinfo only, not in the ID token (as many providers do)."""
        with self.lock:
            self.id_token_excluded[client_id] = set(claims)

    def rotate_signing_key(self) -> str:
        """A new RSA signing key with a new kid, published in the JWKS and used from now on."""
        with self.lock:
            kid = f"op-rsa-{len(self.rsa_keys) + 1}"
            self.rsa_keys.append(JsonWebKey.generate_key("RSA", 2048, {"kid": kid, "use": "sig", "alg": "RS256"},
                                                         is_private=True))
            return kid

    def wait_since_last_hit(self, path: str, seconds: float) -> None:
        """Sleeps until `path` has not been requested for `seconds` (bounded by `seconds`)."""
        with self.lock:
            last = self.last_hit.get(path)
        if last is not None:
            remaining = last + seconds - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)

    def current_signing_key(self):
        with self.lock:
            return self.ec_key if self.signing_alg == "ES256" else self.rsa_keys[-1]

    def current_alg(self) -> str:
        return "ES256" if self.signing_alg == "ES256" else "RS256"

    def register_client(self, client_id: str, redirect_uri: str, auth_method: str = "client_secret_basic",
                        secret: str | None = None, jwks: dict | None = None, scope: str = DEFAULT_SCOPES) -> OPClient:
        assert auth_method in ("client_secret_basic", "client_secret_post", "private_key_jwt")
        if auth_method == "private_key_jwt":
            assert jwks and jwks.get("keys"), "a private_key_jwt client needs a JWKS"
        else:
            assert secret, "a client_secret_* client needs a secret"
        client = OPClient(client_id, [redirect_uri], auth_method, secret, jwks, scope)
        with self.lock:
            self.clients[client_id] = client
        return client

    def new_secret(self) -> str:
        return Redacted(secrets.token_urlsafe(32))

    # -- listeners

    def start(self) -> "OpenIDProvider":
        self.listeners["main"] = _Listener(self.app)
        self.port = self.listeners["main"].port
        self.ports: dict[str, int] = {}
        for name in self.separate:
            listener = _Listener(self.app)
            self.listeners[name] = listener
            self.ports[name] = listener.port
        return self

    def stop(self) -> None:
        for listener in list(self.listeners.values()):
            listener.close()
        self.listeners.clear()

    def take_down(self, name: str) -> None:
        """Closes the separate listener of `name`: its endpoint now refuses connections."""
        assert name in self.separate, f"{name} has no listener of its own"
        listener = self.listeners.pop(name, None)
        if listener is not None:
            listener.close()

    def bring_up(self, name: str) -> None:
        assert name in self.separate
        if name not in self.listeners:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.listeners[name] = _Listener(self.app, self.ports[name])
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def __enter__(self) -> "OpenIDProvider":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- locations

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _endpoint(self, name: str, path: str) -> str:
        port = self.ports.get(name, self.port) if name in self.separate else self.port
        return f"http://127.0.0.1:{port}{path}"

    @property
    def authorization_endpoint(self) -> str:
        return self._endpoint("authorize", "/authorize")

    @property
    def token_endpoint(self) -> str:
        return self._endpoint("token", "/token")

    @property
    def jwks_uri(self) -> str:
        return self._endpoint("jwks", "/jwks")

    @property
    def userinfo_endpoint(self) -> str:
        return self._endpoint("userinfo", "/userinfo")

    def public_jwks(self) -> dict:
        with self.lock:
            keys = [*self.rsa_keys, self.ec_key]
        return {"keys": [k.as_dict(is_private=False, alg=k.tokens["alg"], use="sig") for k in keys]}

    def discovery(self) -> dict:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": DEFAULT_SCOPES.split(),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified", "name",
                                 "groups", "hd", "oid", "tid", "roles", "preferred_username"],
        }
        with self.lock:
            for name, value in self.discovery_overrides.items():
                if value is None:
                    document.pop(name, None)
                else:
                    document[name] = value
        return document

    # -- ID token forgery

    def _take_id_token_fault(self) -> str | None:
        with self.lock:
            return self._id_token_faults.pop(0) if self._id_token_faults else None

    def _forge_id_token(self, genuine: str, token: dict, fault: str) -> str:
        header = json.loads(_b64url_decode(genuine.split(".")[0]))
        claims = json.loads(_b64url_decode(genuine.split(".")[1]))
        client_id = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
        now = int(time.time())
        rsa = self.rsa_keys[-1]
        kid = rsa.as_dict()["kid"]

        def sign(claims_: dict, key=rsa, alg="RS256", kid_: str | None = kid) -> str:
            head = {"alg": alg, "typ": "JWT"}
            if kid_ is not None:
                head["kid"] = kid_
            return jwt.encode(head, claims_, key.as_dict(is_private=True)).decode("ascii")

        if fault == "other_key_same_kid":
            return sign(claims, key=JsonWebKey.generate_key("RSA", 2048, is_private=True))
        if fault == "unknown_kid":
            return sign(claims, key=JsonWebKey.generate_key("RSA", 2048, is_private=True), kid_="op-rsa-unknown")
        if fault == "no_kid":
            return sign(claims, key=JsonWebKey.generate_key("RSA", 2048, is_private=True), kid_=None)
        if fault in ("alg_none", "alg_None"):
            return _hand_made_jws({"alg": "none" if fault == "alg_none" else "None", "typ": "JWT", "kid": kid}, claims)
        if fault == "hs256_public_key":
            pem = rsa.get_public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
            return _hs256_jws({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, pem)
        if fault == "hs256_public_jwk":
            return _hs256_jws({"alg": "HS256", "typ": "JWT", "kid": kid}, claims,
                              json.dumps(rsa.as_dict(is_private=False)).encode())
        if fault == "bad_signature":
            head, body, signature = genuine.split(".")
            raw = bytearray(_b64url_decode(signature))
            raw[len(raw) // 2] ^= 0x01
            return f"{head}.{body}.{_b64url(bytes(raw))}"
        if fault == "not_jws":
            return "this-is-not-a-jws"
        if fault == "es256":
            return sign({**claims, "at_hash": create_half_hash(token["access_token"], "ES256").decode()},
                        key=self.ec_key, alg="ES256", kid_=self.ec_key.as_dict()["kid"])

        forged = dict(claims)
        if fault == "wrong_iss":
            forged["iss"] = "http://127.0.0.1:1/another-issuer"
        elif fault == "iss_trailing_slash":
            forged["iss"] = claims["iss"] + "/"
        elif fault == "wrong_aud":
            forged["aud"] = ["another-client"]
        elif fault == "multi_aud_no_azp":
            forged["aud"] = [client_id, "another-client"]
            forged.pop("azp", None)
        elif fault == "multi_aud_wrong_azp":
            forged["aud"] = [client_id, "another-client"]
            forged["azp"] = "another-client"
        elif fault == "multi_aud_with_azp":
            forged["aud"] = [client_id, "another-client"]
            forged["azp"] = client_id
        elif fault == "single_aud_wrong_azp":
            forged["aud"] = client_id
            forged["azp"] = "another-client"
        elif fault == "no_nonce":
            forged.pop("nonce", None)
        elif fault == "wrong_nonce":
            forged["nonce"] = secrets.token_urlsafe(24)
        elif fault == "expired":
            forged["iat"], forged["exp"], forged["auth_time"] = now - 900, now - 300, now - 900
        elif fault == "expired_30s":
            forged["exp"] = now - 30
        elif fault == "expired_90s":
            forged["exp"] = now - 90
        elif fault == "no_exp":
            forged.pop("exp", None)
        elif fault == "iat_future":
            forged["iat"], forged["exp"] = now + 300, now + 3900
        elif fault == "iat_slightly_future":
            forged["iat"], forged["exp"] = now + 20, now + 3620
        elif fault == "wrong_at_hash":
            forged["at_hash"] = create_half_hash(generate_token(42), "RS256").decode()
        elif fault == "no_at_hash":
            forged.pop("at_hash", None)
        elif fault == "no_sub":
            forged.pop("sub", None)
        else:
            raise AssertionError(f"fault {fault} not implemented")
        assert header.get("kid") == kid
        return sign(forged)

    # -- the Flask application

    def _make_app(self) -> Flask:
        op = self
        app = Flask(f"oidc-provider-{id(self)}")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 3600}

        def query_client(client_id):
            with op.lock:
                return op.clients.get(client_id)

        def save_token(token, req):
            item = OPToken(token["access_token"], req.client, req.user, token.get("scope", ""), int(time.time()),
                           int(token.get("expires_in", 3600)))
            with op.lock:
                op.tokens[item.access_token] = item
                op.issued["access_token"].append(item.access_token)

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        grant_cls = type("Grant", (OPAuthorizationCodeGrant,), {"op": self})
        server.register_grant(grant_cls, [OPOpenIDCode(self), StrictS256CodeChallenge(self)])
        server.register_client_auth_method("private_key_jwt", PrivateKeyJWTAuthentication(self))
        protector = ResourceProtector()
        protector.register_token_validator(OPBearerTokenValidator(self))
        userinfo_cls = type("UserInfo", (OPUserInfoEndpoint,), {"op": self})
        server.register_endpoint(userinfo_cls(resource_protector=protector))
        self.server = server

        @app.before_request
        def count():
            with op.lock:
                op.hits[request.path] += 1
                op.last_hit[request.path] = time.monotonic()

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(op.discovery())

        @app.get("/jwks")
        def jwks():
            with op.lock:
                status = op.jwks_status
            if status is not None:
                return Response("the key service is unavailable", status=status, mimetype="text/plain")
            return jsonify(op.public_jwks())

        @app.get("/authorize")
        def authorize():
            with op.lock:
                op.authorize_requests.append(request.args.to_dict(flat=True))
                error = op._authorize_errors.pop(0) if op._authorize_errors else None
            client_id = request.args.get("client_id", "")
            user = op.user_for(client_id)
            try:
                grant = server.get_consent_grant(end_user=user)
            except Exception as exc:  # an Authlib OAuth2Error (redirect or not)
                return server.handle_error_response(None, exc) if hasattr(exc, "get_body") else (str(exc), 400)
            if error == "access_denied":
                # Authlib's own refusal: 302 back with error=access_denied and the state.
                return server.create_authorization_response(grant=grant, grant_user=None)
            if error is not None:
                from authlib.common.urls import add_params_to_uri

                params = [("error", error), ("error_description", "refused by the test provider <marker-51f3>")]
                if request.args.get("state"):
                    params.append(("state", request.args["state"]))
                return Response(status=302, headers={"Location": add_params_to_uri(grant.redirect_uri, params)})
            return server.create_authorization_response(grant=grant, grant_user=user)

        @app.post("/token")
        def token():
            form = request.form.to_dict(flat=True)
            with op.lock:
                op.token_requests.append({
                    "form_keys": sorted(form), "basic": request.authorization is not None,
                    "grant_type": form.get("grant_type"), "client_id": form.get("client_id"),
                    "redirect_uri": form.get("redirect_uri"), "has_code_verifier": bool(form.get("code_verifier")),
                    "client_assertion_type": form.get("client_assertion_type")})
                failure = op._token_failures.pop(0) if op._token_failures else None
            if failure is not None:
                status, error = failure
                if error is None:
                    return Response("internal error", status=status, mimetype="text/plain")
                return Response(json.dumps({"error": error, "error_description": "refused by the test provider"}),
                                status=status, headers={"Content-Type": "application/json", "Cache-Control": "no-store"})
            response = server.create_token_response()
            if response.status_code != 200:
                try:
                    body = json.loads(response.get_data(as_text=True))
                except ValueError:
                    body = {"error": "?"}
                with op.lock:
                    op.token_errors.append({"status": response.status_code, "error": body.get("error"),
                                            "error_description": body.get("error_description")})
            return response

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            return server.create_endpoint_response("userinfo")

        return app


# ----------------------------------------------------------------------------------------------
# A minimal relying party for testing the provider on its own (PKCE S256, plain requests)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def new_nonce() -> str:
    return uuid.uuid4().hex


# ----------------------------------------------------------------------------------------------
# The broker side: registering the provider with `tessera idps add-oidc`, and a browser (a
# `requests.Session` following redirects by hand) going through the broker's sign-in.

HTTP_TIMEOUT = 10
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON_ACCEPT = "application/json"
LOGIN_COOKIE = "tessera_oidc_login"
SESSION_COOKIE = "tessera_session"
SESSION_MEMBERS = {"tenant", "subject", "email", "email_verified", "name", "groups", "roles", "idp", "expires_at"}

# Values the broker must never echo, log or audit, per broker port: client secrets, session
# cookies (the provider's codes and tokens are in `op.issued`).
BROKER_SECRETS: dict[int, list[str]] = {}


def write_secret_file(path: Path, secret: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return path


def set_cookies(response: requests.Response) -> dict[str, dict]:
    """The Set-Cookie headers of one response: name -> {"value", and each attribute lower-cased:
    its value, or True for a flag}."""
    cookies = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in header.split(";")]
        name, _, value = parts[0].partition("=")
        attributes: dict[str, Any] = {"value": value}
        for part in parts[1:]:
            key, eq, val = part.partition("=")
            attributes[key.strip().lower()] = val.strip() if eq else True
        cookies[name.strip()] = attributes
    return cookies


def is_cleared(cookie: dict) -> bool:
    """A Set-Cookie that deletes the cookie: empty value, Max-Age <= 0 or an Expires in the past."""
    if cookie.get("max-age") is not None:
        try:
            if int(cookie["max-age"]) <= 0:
                return True
        except ValueError:
            pass
    expires = cookie.get("expires")
    if isinstance(expires, str):
        from email.utils import parsedate_to_datetime

        try:
            if parsedate_to_datetime(expires).timestamp() < time.time():
                return True
        except (TypeError, ValueError):
            pass
    return cookie.get("value", "") in ("", '""')


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def with_query(url: str, **changes: str | None) -> str:
    """`url` with query parameters replaced (None: removed)."""
    from urllib.parse import urlencode, urlunsplit

    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()]
    params = {k: v[0] for k, v in pairs}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))


@dataclass
class OIDCIdP:
    tenant: str
    idp_id: str
    client_id: str
    secret: str | None = field(repr=False)
    auth: str
    redirect_uri: str
    added: dict


def add_oidc_idp(broker: Any, op: OpenIDProvider, tenant: str, directory: Path, *, auth: str = "client_secret_basic",
                 explicit_auth: bool = False, preset: str | None = None, hosted_domain: str | None = None,
                 scopes: str | None = None, userinfo: bool = False, group_roles: tuple[str, ...] = (),
                 client_id: str | None = None, user: dict | None = None) -> OIDCIdP:
    """`tessera tenants add` (if needed is the caller's business: pass a new tenant), then
    `tessera idps add-oidc ... --json`, then the same client registered at the provider."""
    client_id = client_id or f"tessera-{tenant}"
    args = ["idps", "add-oidc", "--tenant", tenant, "--issuer", op.issuer, "--client-id", client_id]
    secret = None
    if auth == "private_key_jwt":
        args.append("--private-key-jwt")
    else:
        secret = Redacted(op.new_secret())
        BROKER_SECRETS.setdefault(broker.port, []).append(secret)
        args += ["--client-secret-file", str(write_secret_file(directory / f"{tenant}.secret", secret))]
        if auth != "client_secret_basic" or explicit_auth:
            args += ["--auth", auth]
    if preset is not None:
        args += ["--preset", preset]
    if hosted_domain is not None:
        args += ["--hosted-domain", hosted_domain]
    if scopes is not None:
        args += ["--scopes", scopes]
    if userinfo:
        args.append("--userinfo")
    for mapping in group_roles:
        args += ["--group-role", mapping]
    added = broker.cli(*args).json
    redirect_uri = broker.url(f"/sso/{tenant}/oidc/callback")
    assert isinstance(added, dict), "add-oidc --json did not print an object"
    assert str(added.get("id", "")).startswith("oidc_"), f"add-oidc id {added.get('id')!r}"
    assert added.get("tenant") == tenant and added.get("issuer") == op.issuer, added
    assert added.get("redirect_uri") == redirect_uri, f"redirect_uri {added.get('redirect_uri')!r}, expected {redirect_uri}"
    if auth == "private_key_jwt":
        assert added.get("jwks_uri") == broker.url(f"/sso/{tenant}/oidc/jwks"), f"jwks_uri {added.get('jwks_uri')!r}"
        response = requests.get(added["jwks_uri"], timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"GET {added['jwks_uri']}: HTTP {response.status_code}"
        jwks = response.json()
        op.register_client(client_id, redirect_uri, "private_key_jwt", jwks=jwks)
    else:
        assert "jwks_uri" not in added or added["jwks_uri"] is None, "jwks_uri for a client with a secret"
        op.register_client(client_id, redirect_uri, auth, secret=secret)
    if user is not None:
        op.set_user(user, client_id=client_id)
    return OIDCIdP(tenant, added["id"], client_id, secret, auth, redirect_uri, added)


@dataclass
class SignIn:
    browser: "Browser"
    identity: dict
    callback_url: str = field(repr=False)
    login_cookie: str = field(repr=False)
    session_cookie: str = field(repr=False)


class Browser:
    """One browser (cookie jar) signing in to one tenant of the broker. Redirects are followed by
    hand so that every hop can be checked."""

    def __init__(self, broker: Any, tenant: str, accept: str = BROWSER_ACCEPT) -> None:
        self.broker = broker
        self.tenant = tenant
        self.session = requests.Session()
        self.session.headers["Accept"] = accept
        self.login_response: requests.Response | None = None

    @property
    def base(self) -> str:
        return f"/sso/{self.tenant}/oidc"

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # the URL may hold a code
        return self.session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kwargs)

    def login(self, return_to: str | None = "/session", raw_query: str | None = None) -> requests.Response:
        url = self.broker.url(f"{self.base}/login")
        if raw_query is not None:
            response = self.get(f"{url}?{raw_query}")
        else:
            response = self.get(url, params={} if return_to is None else {"return_to": return_to})
        self.login_response = response
        return response

    def authorize_params(self) -> dict[str, str]:
        return query_of(self.login_response.headers["Location"])

    def to_provider(self, op: OpenIDProvider, return_to: str | None = "/session") -> str:
        """login -> 302 to the provider -> provider's 302 back: returns the callback URL (with the
        code and the state), not yet visited."""
        login = self.login(return_to)
        assert login.status_code == 302, f"login: HTTP {login.status_code} {login.text[:300]}"
        location = login.headers["Location"]
        assert location.startswith(op.authorization_endpoint + "?"), "login did not redirect to the provider"
        answer = self.get(location)
        assert answer.status_code == 302, f"provider authorize: HTTP {answer.status_code} {answer.text[:300]}"
        callback = answer.headers["Location"]
        assert callback.startswith(self.broker.url(f"{self.base}/callback?")), "the provider redirected elsewhere"
        return callback

    def callback(self, url: str, accept: str | None = None) -> requests.Response:
        __tracebackhide__ = True  # the URL holds a code
        headers = {"Accept": accept} if accept else {}
        return self.get(url, headers=headers)

    def session_info(self, accept: str = JSON_ACCEPT) -> requests.Response:
        return self.get(self.broker.url("/session"), headers={"Accept": accept})

    def logout(self) -> requests.Response:
        return self.session.post(self.broker.url("/session/logout"), allow_redirects=False, timeout=HTTP_TIMEOUT)

    def put_cookie(self, name: str, value: str | None, path: str = "/") -> None:
        """Replaces every cookie `name` in the jar by one with `value` (None: none at all)."""
        for cookie in [c for c in self.session.cookies if c.name == name]:
            self.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        if value is not None:
            self.session.cookies.set(name, value, domain="127.0.0.1", path=path)

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookies:
            if cookie.name == name:
                return cookie.value
        return None


def check_login_redirect(browser: Browser, op: OpenIDProvider, idp: OIDCIdP, scopes: str = "openid email profile") -> dict:
    """The broker's 302 to the provider and its login cookie, per docs/sso-oidc.md "Sign-in"."""
    login = browser.login_response
    assert login.status_code == 302, f"login: HTTP {login.status_code}"
    location = login.headers["Location"]
    assert location.split("?")[0] == op.authorization_endpoint
    params = query_of(location)
    assert params.get("response_type") == "code"
    assert params.get("client_id") == idp.client_id
    assert params.get("redirect_uri") == idp.redirect_uri
    assert set(params.get("scope", "").split()) == set(scopes.split()), f"scope {params.get('scope')!r}"
    assert params.get("code_challenge_method") == "S256"
    challenge = params.get("code_challenge", "")
    assert len(challenge) == 43 and all(c.isalnum() or c in "-_" for c in challenge), "code_challenge is not S256"
    for name in ("state", "nonce"):
        assert len(params.get(name, "")) >= 16, f"{name} missing or too short to be unguessable"
    distinct = params["state"] != params["nonce"]
    assert distinct, "state and nonce are the same value"
    assert "client_secret" not in params and "code_verifier" not in params, "a secret in the authorization URL"
    cookie = set_cookies(login).get(LOGIN_COOKIE)
    assert cookie is not None, "login set no tessera_oidc_login cookie"
    assert cookie.get("httponly") is True, "login cookie not HttpOnly"
    assert str(cookie.get("samesite", "")).lower() == "lax", f"login cookie SameSite {cookie.get('samesite')!r}"
    assert cookie.get("path") == f"/sso/{idp.tenant}/oidc", f"login cookie Path {cookie.get('path')!r}"
    assert cookie.get("max-age") == "600", f"login cookie Max-Age {cookie.get('max-age')!r}"
    assert "secure" not in cookie, "login cookie Secure on an http issuer"
    in_clear = params["state"] in cookie["value"] or params["nonce"] in cookie["value"]
    assert not in_clear, "login cookie holds the state or nonce in clear"
    return params


def sign_in(broker: Any, op: OpenIDProvider, idp: OIDCIdP, return_to: str | None = "/session",
            scopes: str = "openid email profile") -> SignIn:
    """The whole browser flow with every documented check of the happy path; returns the identity
    from GET /session."""
    browser = Browser(broker, idp.tenant)
    callback = browser.to_provider(op, return_to)
    check_login_redirect(browser, op, idp, scopes)
    login_cookie = set_cookies(browser.login_response)[LOGIN_COOKIE]["value"]
    tokens_before = len(op.issued["id_token"])
    response = browser.callback(callback)
    code = query_of(callback).get("code")
    assert response.status_code == 303, f"callback: HTTP {response.status_code} {redact(response.text[:300], code)}"
    assert len(op.issued["id_token"]) == tokens_before + 1, "the broker did not redeem the code once"
    target = urljoin(callback, response.headers["Location"])
    assert target == broker.url(return_to or "/session"), f"callback redirected to {response.headers['Location']!r}"
    cookies = set_cookies(response)
    session = cookies.get(SESSION_COOKIE)
    assert session is not None and session["value"], "no tessera_session cookie after sign-in"
    session["value"] = Redacted(session["value"])
    BROKER_SECRETS.setdefault(broker.port, []).append(session["value"])
    assert session.get("httponly") is True, "session cookie not HttpOnly"
    assert str(session.get("samesite", "")).lower() == "lax", f"session cookie SameSite {session.get('samesite')!r}"
    assert session.get("path") == "/", f"session cookie Path {session.get('path')!r}"
    assert "secure" not in session, "session cookie Secure on an http issuer"
    long_enough = len(session["value"]) >= 43
    assert long_enough, "session cookie shorter than 256 bits"
    cleared = LOGIN_COOKIE in cookies and is_cleared(cookies[LOGIN_COOKIE])
    assert cleared, "login cookie not cleared after sign-in"
    info = browser.session_info()
    assert info.status_code == 200, f"GET /session: HTTP {info.status_code} {info.text[:300]}"
    identity = info.json()
    missing = SESSION_MEMBERS - set(identity)
    assert not missing, f"GET /session lacks {sorted(missing)}"
    for name in ("id_token", "access_token", "refresh_token", "code"):
        assert name not in identity, f"GET /session has {name}"
    assert identity["tenant"] == idp.tenant and identity["idp"] == idp.idp_id
    return SignIn(browser, identity, Redacted(callback), Redacted(login_cookie), session["value"])


def new_oidc_broker(make: Any, env: dict[str, str] | None = None, start: bool = True) -> Any:
    """A broker whose issuer (TESSERA_ISSUER, for `serve` and the CLI alike) is its own loopback
    URL, so that `add-oidc` prints the redirect_uri the browser will come back to; trace logging,
    for the hygiene checks. `make` is `make_broker` or `BrokerPool.new`."""
    from support import free_port

    port = free_port()
    broker = make(port=port, env={"TESSERA_ISSUER": f"http://127.0.0.1:{port}", "TESSERA_LOG_LEVEL": "trace",
                                  **(env or {})})
    return broker.start() if start else broker


def audit_records(broker: Any, tenant: str | None = None) -> list[dict]:
    out = broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in records if tenant is None or r.get("tenant") == tenant]


def audit_count(broker: Any, tenant: str, action: str) -> int:
    return sum(1 for r in audit_records(broker, tenant) if r.get("action") == action)


def leaks(broker: Any, op: OpenIDProvider) -> list[str]:
    """What of the provider's codes, access tokens and ID tokens (genuine or forged), the client
    secrets and the session cookies is found in the broker's audit export or server log: a list
    of descriptions, never the values."""
    values: dict[str, list[str]] = {kind: list(items) for kind, items in op.issued.items()}
    values["client secret or session cookie"] = list(BROKER_SECRETS.get(broker.port, []))
    values["ID token signature"] = [t.split(".")[-1] for t in op.issued["id_token"]
                                    if t.count(".") == 2 and len(t.split(".")[-1]) > 20]
    audit_text = broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout
    found = []
    for where, text in (("audit export", audit_text), ("server log", broker.log_text())):
        for kind, items in values.items():
            count = sum(1 for item in items if len(item) >= 16 and item in text)
            if count:
                found.append(f"{count} {kind} value(s) in the {where}")
    return found
