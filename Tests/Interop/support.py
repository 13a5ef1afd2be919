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
