"""Support for the interop tests: a real `tessera serve` on a free loopback port, in a temporary
folder, with the CLI run against the same database and keys folder.

The binary is `.build/debug/tessera` unless `TESSERA_BIN` names another one. Every wait is
bounded; every server is stopped with SIGTERM at teardown and must exit 0 (graceful shutdown).

Secrets and tokens are never printed: helpers report status codes and OAuth error bodies only.
"""

from __future__ import annotations

import base64
import ctypes
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".build" / "debug" / "tessera"
HTTP_TIMEOUT = 10
READY_TIMEOUT = 60
STOP_TIMEOUT = 20
CLI_TIMEOUT = 60


def tessera_bin() -> Path:
    return Path(os.environ.get("TESSERA_BIN", str(DEFAULT_BIN)))


def wait_for_binary(timeout: float = 120) -> Path:
    """The debug binary is rebuilt by others from time to time: wait (bounded) until it is there."""
    path = tessera_bin()
    deadline = time.monotonic() + timeout
    while not (path.is_file() and os.access(path, os.X_OK)):
        if time.monotonic() > deadline:
            pytest.fail(f"tessera binary not found at {path} (set TESSERA_BIN)")
        time.sleep(0.5)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any TESSERA_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies, so no server outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _popen_retrying(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """Popen, retrying for a while if the binary is being replaced (ETXTBSY, ENOENT)."""
    deadline = time.monotonic() + 60
    while True:
        wait_for_binary()
        try:
            return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kwargs)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# ----------------------------------------------------------------------------------------------
# JWT helpers (no verification: for reading headers and claims only)


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unverified_header(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[0]))


def unverified_claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def describe(response: requests.Response) -> str:
    """A response for an assertion message: status and body, which for the OAuth endpoints is an
    error object (never a token, since a 200 token response is never described)."""
    body = response.text if response.status_code != 200 or "access_token" not in response.text else "<token response>"
    return f"HTTP {response.status_code}: {body[:500]}"


# ----------------------------------------------------------------------------------------------
# The broker


@dataclass
class Client:
    client_id: str
    secret: str | None
    auth: str
    tenant: str


@dataclass
class CLIResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            # Never echo stdout: `clients add` prints a secret there.
            pytest.fail(f"CLI output is not JSON ({len(self.stdout)} characters); stderr: {self.stderr[-500:]}")


class Broker:
    """One broker folder (database + Keys) and at most one running `tessera serve` on it."""

    _serial = itertools.count(1)

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "tessera.db"
        self.keys = self.dir / "Keys"
        self.port = port or free_port()
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_paths: list[Path] = []
        self.exit_codes: list[int] = []
        self._metadata: dict | None = None

    # -- locations

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def storage_args(self) -> list[str]:
        return ["--database", f"sqlite:{self.db}", "--keys-dir", str(self.keys)]

    @property
    def log_path(self) -> Path:
        return self.log_paths[-1]

    # -- process

    def spawn(self, args: list[str] | None = None, env: dict[str, str] | None = None, port_flag: bool = True) -> subprocess.Popen:
        """Starts `tessera serve` without waiting for it."""
        assert self.proc is None or self.proc.poll() is not None, "a server is already running on this folder"
        argv = [str(wait_for_binary()), "serve", "--host", "127.0.0.1", *self.storage_args]
        if port_flag:
            argv += ["--port", str(self.port)]
        argv += list(args or [])
        log = self.dir / f"serve-{next(self._serial)}.log"
        self.log_paths.append(log)
        merged = clean_env({**self.env, **(env or {})})
        with open(log, "wb") as stderr, open(self.dir / "serve.stdout", "ab") as stdout:
            self.proc = _popen_retrying(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=merged, cwd=self.dir)
        self._metadata = None
        return self.proc

    def start(self, args: list[str] | None = None, env: dict[str, str] | None = None, port_flag: bool = True) -> "Broker":
        self.spawn(args, env, port_flag)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"tessera serve exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}")
            try:
                if requests.get(self.url("/readyz"), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"tessera serve not ready on port {self.port} within {timeout} s:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"tessera serve did not exit within {timeout} s")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait (bounded). Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        self.exit_codes.append(code)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_paths or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_records(self) -> list[dict]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append({"msg": line})
        return records

    # -- command line

    def cli(self, *args: str, check: bool = True, json_output: bool = True, env: dict[str, str] | None = None,
            timeout: float = CLI_TIMEOUT) -> CLIResult:
        argv = [str(wait_for_binary()), *args, *self.storage_args]
        if json_output:
            argv.append("--json")
        proc = _popen_retrying(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               env=clean_env({**self.env, **(env or {})}), cwd=self.dir, text=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            pytest.fail(f"tessera {' '.join(args[:2])} did not finish within {timeout} s")
        result = CLIResult(proc.returncode, stdout, stderr)
        if check and result.returncode != 0:
            pytest.fail(f"tessera {' '.join(args[:2])} exited {result.returncode}: {stderr[-800:]}")
        return result

    def add_tenant(self, tenant: str) -> None:
        self.cli("tenants", "add", tenant)

    def add_client(self, tenant: str, name: str, scopes: str = "crm:contacts.read", auth: str = "client_secret_basic",
                   jwks: Path | None = None, introspect: bool = False) -> Client:
        args = ["clients", "add", "--tenant", tenant, "--name", name, "--scopes", scopes, "--auth", auth]
        if jwks is not None:
            args += ["--jwks", str(jwks)]
        if introspect:
            args.append("--introspect")
        out = self.cli(*args).json
        assert out["client_id"].strip(), "clients add returned no client_id"
        if auth == "private_key_jwt":
            assert "client_secret" not in out, "a private_key_jwt client must not get a secret"
        else:
            assert out.get("client_secret"), "clients add returned no client_secret"
        return Client(out["client_id"], out.get("client_secret"), auth, tenant)

    # -- HTTP

    def metadata(self) -> dict:
        if self._metadata is None:
            response = requests.get(self.url("/.well-known/oauth-authorization-server"), timeout=HTTP_TIMEOUT)
            assert response.status_code == 200, describe(response)
            self._metadata = response.json()
        return self._metadata

    @property
    def issuer(self) -> str:
        return self.metadata()["issuer"]

    @property
    def token_endpoint(self) -> str:
        return self.metadata()["token_endpoint"]

    def jwks(self) -> dict:
        response = requests.get(self.metadata()["jwks_uri"], timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, describe(response)
        return response.json()

    @staticmethod
    def _client_auth(client: Client, data: dict) -> tuple[dict, tuple | None]:
        if client.auth == "client_secret_basic":
            return data, (client.client_id, client.secret)
        if client.auth == "client_secret_post":
            return {**data, "client_id": client.client_id, "client_secret": client.secret}, None
        raise ValueError("use an assertion for private_key_jwt clients")

    def post_token(self, client: Client, scope: str | None = None) -> requests.Response:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        data, auth = self._client_auth(client, data)
        return requests.post(self.token_endpoint, data=data, auth=auth, timeout=HTTP_TIMEOUT)

    def token(self, client: Client, scope: str | None = None) -> str:
        response = self.post_token(client, scope)
        assert response.status_code == 200, describe(response)
        return response.json()["access_token"]

    def introspect(self, caller: Client, token: str) -> requests.Response:
        data, auth = self._client_auth(caller, {"token": token})
        return requests.post(self.metadata()["introspection_endpoint"], data=data, auth=auth, timeout=HTTP_TIMEOUT)

    def revoke(self, caller: Client, token: str) -> requests.Response:
        data, auth = self._client_auth(caller, {"token": token, "token_type_hint": "access_token"})
        return requests.post(self.metadata()["revocation_endpoint"], data=data, auth=auth, timeout=HTTP_TIMEOUT)


class BrokerPool:
    """Brokers made for one fixture; all stopped with SIGTERM at teardown, each must exit 0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.brokers: list[Broker] = []

    def new(self, name: str = "broker", **kwargs: Any) -> Broker:
        broker = Broker(self.root / f"{name}-{len(self.brokers) + 1}", **kwargs)
        self.brokers.append(broker)
        return broker

    def shutdown(self) -> None:
        problems = []
        for broker in self.brokers:
            running = broker.proc is not None and broker.proc.poll() is None
            if running:
                code = broker.stop()
                if code != 0:
                    problems.append(f"{broker.dir.name}: exit code {code} after SIGTERM\n{broker.log_tail(10)}")
        assert not problems, "graceful shutdown failed:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------------------------
# Token exchange (RFC 8693), workload federation, exchange policy and refresh tokens: helpers for
# test_token_exchange*.py (docs/token-exchange.md is the contract). Nothing above depends on them.

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
EXCHANGE_GRANTS = f"client_credentials,{TOKEN_EXCHANGE_GRANT},refresh_token"
TOKEN_TYPE_URN = {short: f"urn:ietf:params:oauth:token-type:{short}"
                  for short in ("access_token", "refresh_token", "id_token", "saml2", "jwt")}
ACCESS_TOKEN_URN = TOKEN_TYPE_URN["access_token"]
EXCHANGE_ERRORS = ("invalid_scope", "invalid_target", "invalid_request")

_DPOP_NONCES: dict[int, str] = {}  # broker port -> the last DPoP-Nonce it sent


def add_client_with_grants(broker: Broker, tenant: str, name: str, scopes: str, grants: str = EXCHANGE_GRANTS,
                           introspect: bool = False, dpop: str | None = None) -> Client:
    """`clients add` with `--grants` (client_secret_basic)."""
    args = ["clients", "add", "--tenant", tenant, "--name", name, "--scopes", scopes, "--grants", grants]
    if introspect:
        args.append("--introspect")
    if dpop is not None:
        args += ["--dpop", dpop]
    out = broker.cli(*args).json
    assert out["client_id"].strip() and out.get("client_secret"), "clients add returned no client_id or secret"
    return Client(out["client_id"], out["client_secret"], "client_secret_basic", tenant)


class DPoPKey:
    """A DPoP key pair (jwcrypto) and RFC 9449 proofs made with it."""

    def __init__(self, kty: str = "EC") -> None:
        from jwcrypto import jwk as jwcrypto_jwk

        if kty == "EC":
            self.key, self.alg = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256"), "ES256"
        elif kty == "RSA":
            self.key, self.alg = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048), "PS256"
        else:
            self.key, self.alg = jwcrypto_jwk.JWK.generate(kty="OKP", crv="Ed25519"), "EdDSA"

    @property
    def public_jwk(self) -> dict:
        return self.key.export_public(as_dict=True)

    @property
    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint, by jwcrypto."""
        return self.key.thumbprint()

    def proof(self, htu: str, nonce: str | None, htm: str = "POST") -> str:
        import uuid

        from jwcrypto import jwt as jwcrypto_jwt

        claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time())}
        if nonce is not None:
            claims["nonce"] = nonce
        token = jwcrypto_jwt.JWT(header={"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}, claims=claims)
        token.make_signed_token(self.key)
        return token.serialize()


def _oauth_error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def post_token_form(broker: Broker, client: Client, form: list[tuple[str, str]], dpop: DPoPKey | None = None,
                    *, expect_nonce_challenge: bool = False) -> requests.Response:
    """POSTs a form to the token endpoint as `client` (Basic). With `dpop`, a fresh proof per
    attempt carries the last nonce the broker gave; a `use_dpop_nonce` answer is retried once with
    the nonce it carries. `expect_nonce_challenge`: the first proof carries no nonce and must be
    answered 400 use_dpop_nonce with a DPoP-Nonce header (RFC 9449 §8)."""
    endpoint = broker.token_endpoint
    for attempt in range(2):
        headers = {}
        if dpop is not None:
            nonce = None if (expect_nonce_challenge and attempt == 0) else _DPOP_NONCES.get(broker.port)
            headers["DPoP"] = dpop.proof(endpoint, nonce)
        response = requests.post(endpoint, data=form, auth=(client.client_id, client.secret), headers=headers,
                                 timeout=HTTP_TIMEOUT)
        if response.headers.get("DPoP-Nonce"):
            _DPOP_NONCES[broker.port] = response.headers["DPoP-Nonce"]
        challenged = response.status_code == 400 and _oauth_error_code(response) == "use_dpop_nonce"
        if expect_nonce_challenge and attempt == 0:
            assert challenged, f"a first proof without a nonce was not answered use_dpop_nonce: {describe(response)}"
            assert response.headers.get("DPoP-Nonce"), "400 use_dpop_nonce without a DPoP-Nonce header"
            continue
        if dpop is not None and challenged and attempt == 0:
            continue
        return response
    return response


def exchange_form(subject_token: str | None, subject_token_type: str | None = "access_token", *,
                  actor_token: str | None = None, actor_token_type: str | None = None, scope: str | None = None,
                  audience: tuple[str, ...] | list[str] = (), resource: tuple[str, ...] | list[str] = (),
                  requested_token_type: str | None = None) -> list[tuple[str, str]]:
    """An RFC 8693 §2.1 request form. Token types may be given by short name or URN; an actor
    token gets `actor_token_type` access_token unless told otherwise (pass "" to leave it out)."""

    def urn(kind: str) -> str:
        return TOKEN_TYPE_URN.get(kind, kind)

    form = [("grant_type", TOKEN_EXCHANGE_GRANT)]
    if subject_token is not None:
        form.append(("subject_token", subject_token))
    if subject_token_type is not None:
        form.append(("subject_token_type", urn(subject_token_type)))
    if actor_token is not None:
        form.append(("actor_token", actor_token))
        if actor_token_type is None:
            actor_token_type = "access_token"
    if actor_token_type:
        form.append(("actor_token_type", urn(actor_token_type)))
    if scope is not None:
        form.append(("scope", scope))
    form += [("audience", value) for value in audience]
    form += [("resource", value) for value in resource]
    if requested_token_type is not None:
        form.append(("requested_token_type", urn(requested_token_type)))
    return form


def exchange(broker: Broker, client: Client, subject_token: str | None, subject_token_type: str | None = "access_token",
             *, dpop: DPoPKey | None = None, expect_nonce_challenge: bool = False, **kwargs: Any) -> requests.Response:
    return post_token_form(broker, client, exchange_form(subject_token, subject_token_type, **kwargs), dpop,
                           expect_nonce_challenge=expect_nonce_challenge)


def refresh(broker: Broker, client: Client, refresh_token: str, dpop: DPoPKey | None = None,
            scope: str | None = None) -> requests.Response:
    form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
    if scope is not None:
        form.append(("scope", scope))
    return post_token_form(broker, client, form, dpop)


def revoke_with_hint(broker: Broker, client: Client, token: str, hint: str) -> requests.Response:
    return requests.post(broker.metadata()["revocation_endpoint"], data={"token": token, "token_type_hint": hint},
                         auth=(client.client_id, client.secret), timeout=HTTP_TIMEOUT)


def secret_fragments(secret: str) -> list[str]:
    """The secret and each of its dot-separated parts long enough to identify it."""
    fragments = [secret[:64]] + [part[:64] for part in secret.split(".") if len(part) >= 16]
    return [f for f in fragments if len(f) >= 16]


def assert_oauth_error(response: requests.Response, error: str | tuple[str, ...], status: int = 400,
                       never_echo: tuple[str, ...] | list[str] = ()) -> str:
    """RFC 6749 §5.2: the status, a JSON object {error, error_description} with `Cache-Control:
    no-store`, and none of `never_echo` (tokens) in the body or headers. Returns the error code."""
    allowed = (error,) if isinstance(error, str) else tuple(error)
    assert response.status_code == status, f"expected {status} {'/'.join(allowed)}, got {describe(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
    assert "no-store" in response.headers.get("Cache-Control", ""), \
        f"error without Cache-Control: no-store ({response.headers.get('Cache-Control')!r}): {describe(response)}"
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"error body is not JSON: {describe(response)}")
    assert isinstance(body, dict), describe(response)
    assert body.get("error") in allowed, f"expected error {'/'.join(allowed)}, got {describe(response)}"
    assert isinstance(body.get("error_description"), str) and body["error_description"], \
        f"error without error_description: {describe(response)}"
    assert set(body) <= {"error", "error_description", "error_uri"}, f"unexpected members {sorted(body)}"
    echoed = " ".join(f"{k}: {v}" for k, v in response.headers.items()) + response.text
    for secret in never_echo:
        for fragment in secret_fragments(secret):
            assert fragment not in echoed, "the error response echoes a token it was given"
    return body["error"]


def verify_access_token(broker: Broker, token: str, audience: str | None = "crm") -> dict:
    """PyJWT against the live `jwks_uri` (no caching): signature, `typ: at+jwt`, iss, aud, and the
    RFC 9068 §2.2 claims present."""
    import jwt as pyjwt

    metadata = broker.metadata()
    assert unverified_header(token).get("typ") == "at+jwt", f"typ {unverified_header(token).get('typ')!r}"
    jwks_client = pyjwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=False, cache_keys=False, timeout=HTTP_TIMEOUT)
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    options = {"require": ["iss", "sub", "aud", "exp", "iat", "jti"]}
    if audience is None:
        options["verify_aud"] = False
    return pyjwt.decode(token, signing_key.key, algorithms=["ES256", "ES384", "EdDSA", "RS256", "PS256"],
                        audience=audience, issuer=metadata["issuer"], options=options)


def introspection_of(broker: Broker, caller: Client, token: str) -> dict:
    response = broker.introspect(caller, token)
    assert response.status_code == 200, describe(response)
    assert "no-store" in response.headers.get("Cache-Control", "")
    return response.json()


def audit_export(broker: Broker, *args: str) -> list[dict]:
    out = broker.cli("audit", "export", "--format", "jsonl", *args, json_output=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def audit_export_text(broker: Broker) -> str:
    return broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout


def put_policy(broker: Broker, tenant: str, document: Any, path: Path, check: bool = True) -> CLIResult:
    """`tessera policies put`; `document` is written as JSON unless it is already text."""
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
    return broker.cli("policies", "put", "--tenant", tenant, "--file", str(path), check=check)


def get_policy(broker: Broker, tenant: str) -> dict:
    """`tessera policies get --json`, with `document` as a JSON value even if printed as text."""
    out = broker.cli("policies", "get", "--tenant", tenant).json
    if isinstance(out.get("document"), str):
        out["document"] = json.loads(out["document"])
    return out


# -- parameterized scopes (DESIGN.md, "Scopes"), implemented independently of the broker


def parse_scope(text: str) -> tuple[str, dict[str, frozenset[str]]]:
    parts = text.split(":")
    base = f"{parts[0]}:{parts[1]}"
    parameters = {}
    for piece in parts[2:]:
        name, values = piece.split("=", 1)
        parameters[name] = frozenset(values.split(","))
    return base, parameters


def canonical_scope(text: str) -> str:
    base, parameters = parse_scope(text)
    return base + "".join(f":{name}=" + ",".join(sorted(parameters[name])) for name in sorted(parameters))


def scope_covers(held: str, requested: str) -> bool:
    """DESIGN.md: a held scope covers a requested one when the base is the same and every
    parameter of the held scope is present in the requested one with a subset of its values."""
    held_base, held_parameters = parse_scope(held)
    requested_base, requested_parameters = parse_scope(requested)
    if held_base != requested_base:
        return False
    return all(name in requested_parameters and requested_parameters[name] <= values
               for name, values in held_parameters.items())


def scopes_cover(held: str | list[str], requested: str) -> bool:
    held_list = held.split() if isinstance(held, str) else held
    return any(scope_covers(h, requested) for h in held_list)


# -- a simulated workload issuer (a Kubernetes or CI OIDC issuer)


class WorkloadIssuerSim:
    """An external OIDC-style issuer: an EC P-256 key (`kid` ...-ec, ES256) and an RSA key
    (`kid` ...-rsa, RS256), made with `cryptography`; its public JWKS written to a file; JWTs
    signed with PyJWT or jwcrypto."""

    def __init__(self, issuer: str, directory: Path, name: str = "ci") -> None:
        from keys import ec_p256_key, rsa_key

        self.issuer = issuer
        self.ec = ec_p256_key(f"{name}-ec")
        self.rsa = rsa_key(f"{name}-rsa", "RS256")
        self.jwks_path = directory / f"{name}-jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": [self.ec.public_jwk, self.rsa.public_jwk]}))

    def claims(self, sub: str = "repo:acme/widgets:ref:refs/heads/main", aud: Any = "tessera", lifetime: int = 300,
               **extra: Any) -> dict:
        import uuid

        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": aud, "iat": now, "nbf": now, "exp": now + lifetime,
                  "jti": str(uuid.uuid4()), "ref": "refs/heads/main", "repository": "acme/widgets"}
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, key: str = "ec", library: str = "pyjwt", kid: str | None = None) -> str:
        client_key = self.ec if key == "ec" else self.rsa
        return sign_jwt(claims, client_key.private_key, client_key.alg, kid or client_key.kid, library)

    def token(self, key: str = "ec", library: str = "pyjwt", **claim_args: Any) -> str:
        return self.sign(self.claims(**claim_args), key=key, library=library)


def sign_jwt(claims: dict, private_key: Any, alg: str, kid: str | None, library: str = "pyjwt") -> str:
    headers = {"typ": "JWT"}
    if kid is not None:
        headers["kid"] = kid
    if library == "pyjwt":
        import jwt as pyjwt

        return pyjwt.encode(claims, private_key, algorithm=alg, headers=headers)
    from cryptography.hazmat.primitives import serialization
    from jwcrypto import jwk as jwcrypto_jwk
    from jwcrypto import jwt as jwcrypto_jwt

    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    token = jwcrypto_jwt.JWT(header={**headers, "alg": alg}, claims=claims)
    token.make_signed_token(jwcrypto_jwk.JWK.from_pem(pem))
    return token.serialize()


def unsigned_jwt(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A compact JWS put together by hand (for `alg: none` and HMAC forgeries)."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{b64url(signature)}"


def hmac_jwt(header: dict, claims: dict, secret: bytes) -> str:
    import hashlib
    import hmac

    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


# -- the parties of test_token_exchange.py and test_token_exchange_hostile.py

CI_ISSUER = "https://ci.example.test"
GLOBEX_CI_ISSUER = "https://ci.globex.test"
CRM_API = "https://crm.example.com/api"
READ_WRITE = "crm:contacts.read crm:contacts.write"


def exchange_policy(broker: Broker, parties: Any) -> dict:
    """acme's exchange policy: one rule per kind of exchange, each for its own client, so every
    test knows which rule decides."""
    return {"exchange": [
        {"id": "imp-no-writes", "effect": "deny", "clients": [parties.imp.client_id],
         "subject_token_types": ["access_token"], "scopes": "crm:contacts.write"},
        {"id": "workload-dpop", "effect": "allow", "clients": [parties.wl.client_id],
         "subject_token_types": ["jwt"], "subject_issuers": [CI_ISSUER], "subjects": ["repo:acme/*"],
         "audiences": ["crm"], "scopes": READ_WRITE, "actor": "optional", "max_lifetime": 300, "dpop": "required"},
        {"id": "delegation", "effect": "allow", "clients": [parties.deleg.client_id, parties.chain.client_id],
         "subject_token_types": ["urn:ietf:params:oauth:token-type:access_token"], "subject_issuers": [broker.issuer],
         "audiences": ["crm"], "resources": [CRM_API], "scopes": READ_WRITE, "actor": "required",
         "max_lifetime": 400, "dpop": "optional"},
        {"id": "impersonation", "effect": "allow", "clients": [parties.imp.client_id],
         "subject_token_types": ["access_token"], "scopes": READ_WRITE, "actor": "optional", "dpop": "optional",
         "max_lifetime": 200},
        {"id": "refreshable", "effect": "allow", "clients": [parties.rf.client_id],
         "subject_token_types": ["jwt"], "subject_issuers": [CI_ISSUER], "scopes": READ_WRITE, "actor": "optional",
         "dpop": "required", "max_lifetime": 120, "refresh_tokens": True, "refresh_lifetime": 600},
        {"id": "refreshable-access-token", "effect": "allow", "clients": [parties.rf.client_id],
         "subject_token_types": ["access_token"], "scopes": READ_WRITE, "actor": "optional", "dpop": "optional",
         "max_lifetime": 120, "refresh_tokens": True},
        # After `impersonation` (wildcards false) fails on a wildcard, this one may allow it.
        {"id": "imp-wildcards", "effect": "allow", "clients": [parties.imp.client_id],
         "subject_token_types": ["access_token"], "scopes": "crm:contacts.read", "wildcards": True,
         "actor": "optional", "dpop": "optional", "max_lifetime": 200},
        # A workload (its CI JWT) acting for the subject.
        {"id": "imp-workload-actor", "effect": "allow", "clients": [parties.imp.client_id],
         "subject_token_types": ["access_token"], "scopes": READ_WRITE, "actor": "required",
         "actors": ["repo:acme/*"], "dpop": "optional", "max_lifetime": 600},
    ]}


def build_exchange_world(broker: Broker, directory: Path) -> Any:
    """Tenants acme (policy, workload issuer), globex (its own workload issuer) and initech (no
    policy); clients registered through the CLI; acme's policy put through the CLI."""
    from types import SimpleNamespace

    for tenant in ("acme", "globex", "initech"):
        broker.add_tenant(tenant)
    ci = WorkloadIssuerSim(CI_ISSUER, directory, "ci")
    globex_ci = WorkloadIssuerSim(GLOBEX_CI_ISSUER, directory, "globex-ci")
    broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", CI_ISSUER, "--jwks", str(ci.jwks_path),
               "--audience", "tessera", "--subject", "repo:acme/*", "--claim", "ref=refs/heads/main",
               "--scopes", READ_WRITE)
    broker.cli("idps", "add-workload", "--tenant", "globex", "--issuer", GLOBEX_CI_ISSUER,
               "--jwks", str(globex_ci.jwks_path), "--audience", "tessera", "--subject", "*",
               "--scopes", "crm:contacts.read")
    parties = SimpleNamespace(
        ci=ci, globex_ci=globex_ci,
        up=add_client_with_grants(broker, "acme", "upstream", READ_WRITE, grants="client_credentials"),
        wl=add_client_with_grants(broker, "acme", "workload-exchanger", READ_WRITE),
        deleg=add_client_with_grants(broker, "acme", "delegate", READ_WRITE),
        chain=add_client_with_grants(broker, "acme", "chained", READ_WRITE),
        imp=add_client_with_grants(broker, "acme", "impersonator", READ_WRITE),
        rf=add_client_with_grants(broker, "acme", "refresher", READ_WRITE),
        plain=add_client_with_grants(broker, "acme", "cc-only", READ_WRITE, grants="client_credentials"),
        rs=add_client_with_grants(broker, "acme", "resource-server", "crm:contacts.read",
                                  grants="client_credentials", introspect=True),
        globex=add_client_with_grants(broker, "globex", "globex-svc", READ_WRITE),
        initech=add_client_with_grants(broker, "initech", "initech-svc", READ_WRITE),
    )
    parties.policy = exchange_policy(broker, parties)
    out = put_policy(broker, "acme", parties.policy, directory / "acme-policy.json").json
    assert out.get("tenant") == "acme" and isinstance(out.get("version"), int), out
    parties.policy_version = out["version"]
    return parties


# ----------------------------------------------------------------------------------------------
# PostgreSQL and several instances: helpers for test_multi_instance.py. Nothing above depends on
# them. A database per test on the cluster named by TESSERA_TEST_POSTGRES_URL (set by
# `scripts/pg-test-cluster.sh run ...`), brokers sharing that database, one keys folder and one
# issuer, and a cluster of the test's own for the tests that stop and start PostgreSQL.
# The URL carries a password: it is never printed, and psql gets it through PGPASSWORD.

POSTGRES_URL_VARIABLE = "TESSERA_TEST_POSTGRES_URL"
PG_TEST_CLUSTER = REPO / "scripts" / "pg-test-cluster.sh"
SHARED_ISSUER = "https://tessera-lb.test"  # the public name of a load-balanced group of instances


def postgres_test_url() -> str:
    """The server of TESSERA_TEST_POSTGRES_URL; without it the test fails under CI, else skips."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if url:
        return url
    message = (f"{POSTGRES_URL_VARIABLE} is not set: run through `scripts/pg-test-cluster.sh run ...` "
               "(as `make test-interop` does)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def postgres_url_with_database(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def psql(url: str, sql: str, timeout: float = 60) -> str:
    """Runs `sql` with Debian's psql against the server and database of `url`. Returns stdout
    (unaligned, tuples only)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    env = clean_env({"PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
                     "PGUSER": unquote(parts.username or ""), "PGPASSWORD": unquote(parts.password or ""),
                     "PGDATABASE": parts.path.lstrip("/") or "postgres", "PGCONNECT_TIMEOUT": "10"})
    try:
        done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"psql did not finish within {timeout} s: {sql[:80]}")
    if done.returncode != 0:
        pytest.fail(f"psql exited {done.returncode} for {sql[:80]!r}: {done.stderr[-500:]}")
    return done.stdout


class SharedDatabase:
    """A database of its own on a PostgreSQL server, made with CREATE DATABASE and dropped with
    DROP DATABASE ... WITH (FORCE)."""

    def __init__(self, server_url: str, prefix: str = "tessera_mi") -> None:
        import uuid

        self.server_url = server_url
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        psql(server_url, f'CREATE DATABASE "{self.name}"')
        self.url = postgres_url_with_database(server_url, self.name)

    def drop(self) -> None:
        psql(self.server_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class SharedStoreBroker(Broker):
    """A broker instance on a shared PostgreSQL database and a shared keys folder, under a shared
    issuer. The metadata's endpoint URLs name the issuer (the load balancer); requests go to this
    instance's own port, so `metadata()` rewrites the endpoints to it while `issuer` stays shared.
    `public_token_endpoint` is what DPoP proofs (`htu`) and client assertions (`aud`) name."""

    def __init__(self, workdir: Path, *, database_url: str, keys_dir: Path, issuer: str = SHARED_ISSUER,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        super().__init__(workdir, env=env, port=port)
        self.database_url = database_url
        self.keys = keys_dir
        self.shared_issuer = issuer

    @property
    def storage_args(self) -> list[str]:
        return ["--database", self.database_url, "--keys-dir", str(self.keys)]

    def spawn(self, args: list[str] | None = None, env: dict[str, str] | None = None,
              port_flag: bool = True) -> subprocess.Popen:
        return super().spawn(["--issuer", self.shared_issuer, *(args or [])], env, port_flag)

    def metadata(self) -> dict:
        if self._metadata is None:
            response = requests.get(self.url("/.well-known/oauth-authorization-server"), timeout=HTTP_TIMEOUT)
            assert response.status_code == 200, describe(response)
            document = response.json()
            assert document["issuer"] == self.shared_issuer, f"issuer {document['issuer']!r}"
            for name, value in list(document.items()):
                if name.endswith("_endpoint") or name == "jwks_uri":
                    if isinstance(value, str) and value.startswith(self.shared_issuer):
                        document[name] = self.base_url + value[len(self.shared_issuer):]
            self._metadata = document
        return self._metadata

    @property
    def public_token_endpoint(self) -> str:
        return self.shared_issuer + "/oauth2/token"


def new_shared_broker(pool: BrokerPool, name: str, database_url: str, keys_dir: Path, **kwargs: Any) -> SharedStoreBroker:
    """A SharedStoreBroker in `pool` (stopped with SIGTERM at the pool's shutdown, must exit 0)."""
    broker = SharedStoreBroker(pool.root / f"{name}-{len(pool.brokers) + 1}", database_url=database_url,
                               keys_dir=keys_dir, **kwargs)
    pool.brokers.append(broker)
    return broker


_SHARED_DPOP_NONCES: dict[str, str] = {}  # issuer -> the last DPoP-Nonce any of its instances sent


def post_token_shared(broker: SharedStoreBroker, client: Client, form: list[tuple[str, str]] | dict,
                      dpop: DPoPKey | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
    """POSTs a form to this instance's token endpoint as `client` (Basic). With `dpop`, the proof
    names the shared `htu` and carries the last nonce any instance of the issuer gave (nonces are
    shared through the keys folder); one `use_dpop_nonce` answer is retried with its nonce."""
    response = None
    for attempt in range(2):
        headers = {}
        if dpop is not None:
            headers["DPoP"] = dpop.proof(broker.public_token_endpoint, _SHARED_DPOP_NONCES.get(broker.shared_issuer))
        response = requests.post(broker.url("/oauth2/token"), data=form, auth=(client.client_id, client.secret),
                                 headers=headers, timeout=timeout)
        if response.headers.get("DPoP-Nonce"):
            _SHARED_DPOP_NONCES[broker.shared_issuer] = response.headers["DPoP-Nonce"]
        if dpop is not None and attempt == 0 and response.status_code == 400 \
                and _oauth_error_code(response) == "use_dpop_nonce":
            continue
        return response
    return response


class PostgresCluster:
    """A PostgreSQL cluster of one test's own, made by `scripts/pg-test-cluster.sh start DIR`, so
    that the test may stop it and start it again on the same port and data folder."""

    def __init__(self) -> None:
        import tempfile

        # The postgres OS user must reach the folder: as root, under /tmp (as the script does).
        base = "/tmp" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="tessera-pg-mi.", dir=base))
        self.data = self.dir / "data"
        done = subprocess.run([str(PG_TEST_CLUSTER), "start", str(self.dir)], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            pytest.fail(f"pg-test-cluster.sh start failed ({done.returncode}): {done.stderr[-800:]}")
        self.url = done.stdout.strip().splitlines()[-1]
        # What the script started the server with (pg_ctl writes it): reused to start it again.
        opts = (self.data / "postmaster.opts").read_text()
        import shlex

        words = shlex.split(opts)
        options = []
        skip = False
        for word in words[1:]:  # words[0] is the postgres binary
            if skip:
                skip = False
                continue
            if word == "-D":
                skip = True
                continue
            options.append(word)
        self.server_options = shlex.join(options)
        self.bin = Path(words[0]).parent

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def pg_ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        argv = self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), *args])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            pytest.fail(f"pg_ctl {' '.join(args[:3])} exited {done.returncode}: {done.stderr[-500:]}")
        return done

    def stop_server(self) -> None:
        """pg_ctl stop -m fast: sessions are ended, the port closes."""
        self.pg_ctl("-m", "fast", "-w", "-t", "60", "stop")

    def start_server(self) -> None:
        """Starts it again on the same port and data folder, with the same options."""
        self.pg_ctl("-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o", self.server_options, "start")

    def remove(self) -> None:
        subprocess.run([str(PG_TEST_CLUSTER), "stop", str(self.dir)], capture_output=True, text=True, timeout=120)
