"""Sign-in through a tenant's OpenID Provider (docs/sso-oidc.md): `tessera idps add-oidc` and its
discovery checks, where the client secret and key are kept, and the provider's outages during a
callback (JWKS or token endpoint down: 503, and the broker keeps serving), key rotation and the
rate limit of JWKS fetches, against the real provider of oidc_provider.py.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never a token, code or secret compared in it.
"""

from __future__ import annotations

import stat
import time

import pytest
import requests

from oidc_provider import (BROWSER_ACCEPT, JSON_ACCEPT, Browser, OIDCIdP, OpenIDProvider, add_oidc_idp, audit_count, leaks,
                           new_oidc_broker, query_of, sign_in, write_secret_file)
from support import HTTP_TIMEOUT, BrokerPool, describe, free_port, unverified_header

KEK = "oidc-interop-kek-0123456789abcdef0123456789"


# `op`, the provider, and `fresh_op`, its controls reset around every test: conftest.py.
pytestmark = pytest.mark.usefixtures("fresh_op")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("oidc-setup"))
    b = new_oidc_broker(pool.new)
    yield b
    pool.shutdown()


_tenants = iter(range(1, 10_000))


def new_tenant(broker) -> str:
    tenant = f"t{next(_tenants)}"
    broker.add_tenant(tenant)
    return tenant


def add_oidc_raw(broker, op, tenant: str, tmp_path, *extra: str, secret: str | None = "s3cr3t-value-for-cli-tests",
                 issuer: str | None = None):
    args = ["idps", "add-oidc", "--tenant", tenant, "--issuer", issuer or op.issuer, "--client-id", f"tessera-{tenant}"]
    if secret is not None:
        args += ["--client-secret-file", str(write_secret_file(tmp_path / f"{tenant}.secret", secret))]
    return broker.cli(*args, *extra, check=False, json_output=False)


@pytest.fixture(scope="module", autouse=True)
def add_oidc_available(broker, op, tmp_path_factory):
    """A valid add-oidc succeeds: the refusals below are refusals, not a missing command."""
    tenant = new_tenant(broker)
    result = add_oidc_raw(broker, op, tenant, tmp_path_factory.mktemp("control"))
    assert result.returncode == 0, f"a valid add-oidc failed: {result.stderr[-400:]}"


def assert_cli_refused(result, *words: str, secret: str = "s3cr3t-value-for-cli-tests",
                       parse_error: bool = False) -> None:
    assert result.returncode != 0, "add-oidc accepted it"
    message = (result.stderr + result.stdout).lower()
    assert message.strip(), "add-oidc failed without a message"
    if not parse_error:
        assert "unknown option" not in message and "unexpected argument" not in message, \
            f"refused for a reason other than the one tested: {result.stderr[-400:]}"
    for word in words:
        assert word in message, f"the message does not mention {word!r}: {result.stderr[-400:]}"
    assert secret not in result.stderr + result.stdout, "add-oidc printed the client secret"


def login_is_not_redirected_to(broker, tenant: str, op) -> None:
    response = requests.get(broker.url(f"/sso/{tenant}/oidc/login"), allow_redirects=False,
                            headers={"Accept": JSON_ACCEPT}, timeout=HTTP_TIMEOUT)
    assert not response.headers.get("Location", "").startswith(op.issuer), \
        "a provider refused by add-oidc is used for sign-in"


# ----------------------------------------------------------------------------------------------
# add-oidc and discovery


def test_add_oidc_refuses_a_discovery_whose_issuer_differs(broker, op, tmp_path):
    tenant = new_tenant(broker)
    op.discovery_overrides = {"issuer": op.issuer + "/another"}
    result = add_oidc_raw(broker, op, tenant, tmp_path)
    assert_cli_refused(result, "issuer")
    login_is_not_redirected_to(broker, tenant, op)
    # the same with --json: still non-zero, still a message
    result = broker.cli("idps", "add-oidc", "--tenant", tenant, "--issuer", op.issuer, "--client-id", "x",
                        "--client-secret-file", str(tmp_path / f"{tenant}.secret"), check=False)
    assert result.returncode != 0


def test_add_oidc_refuses_an_issuer_given_with_a_trailing_slash(broker, op, tmp_path):
    """Discovery says `http://127.0.0.1:PORT`; `--issuer` must equal it exactly."""
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, issuer=op.issuer + "/"), "issuer")


@pytest.mark.parametrize("member", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_add_oidc_refuses_a_discovery_without_a_required_endpoint(broker, op, tmp_path, member):
    tenant = new_tenant(broker)
    op.discovery_overrides = {member: None}
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path))
    login_is_not_redirected_to(broker, tenant, op)


@pytest.mark.parametrize("member", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_add_oidc_refuses_plain_http_endpoints_off_loopback(broker, op, tmp_path, member):
    tenant = new_tenant(broker)
    op.discovery_overrides = {member: f"http://op.example.test/{member}"}
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path), "https")


def test_add_oidc_refuses_a_plain_http_issuer_off_loopback(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, issuer="http://op.example.test"), "https")


def test_scopes_option_sets_the_scopes_asked_for(broker, op, tmp_path):
    tenant = new_tenant(broker)
    idp = add_oidc_idp(broker, op, tenant, tmp_path, scopes="openid email groups", explicit_auth=True)
    assert sign_in(broker, op, idp, scopes="openid email groups").identity["email"] == "ada@example.com"
    assert op.token_requests[-1]["basic"] is True, "--auth client_secret_basic did not use Basic"


def test_add_oidc_refuses_an_unreachable_issuer(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, issuer=f"http://127.0.0.1:{free_port()}"))


def test_add_oidc_refuses_scopes_without_openid(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--scopes", "email profile"), "openid")


def test_add_oidc_refuses_a_second_provider_for_the_same_tenant(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert add_oidc_raw(broker, op, tenant, tmp_path).returncode == 0
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path))


def test_add_oidc_refuses_an_unknown_tenant(broker, op, tmp_path):
    assert_cli_refused(add_oidc_raw(broker, op, "no-such-tenant", tmp_path), "tenant")


def test_add_oidc_needs_exactly_one_of_a_secret_file_a_secret_or_private_key_jwt(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, secret=None))
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--private-key-jwt"))
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--client-secret-file", str(tmp_path / "missing")))
    # --client-secret with one of the other two
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--client-secret", "s3cr3t-value-for-cli-tests"))
    assert_cli_refused(broker.cli("idps", "add-oidc", "--tenant", tenant, "--issuer", op.issuer, "--client-id", "x",
                                  "--client-secret", "s3cr3t-value-for-cli-tests", "--private-key-jwt", check=False,
                                  json_output=False))
    # an unknown preset, an --auth other than the two secret methods
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--preset", "myspace"))
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--auth", "client_secret_jwt"))
    # after all these refusals the tenant can still get its provider
    assert add_oidc_raw(broker, op, tenant, tmp_path).returncode == 0


def test_client_secret_on_the_command_line_works_with_a_warning_and_is_kept_like_a_file_secret(broker, op, tmp_path):
    """docs/sso-oidc.md: `--client-secret S` works too, with a warning (ps and shell history)."""
    tenant = new_tenant(broker)
    client_id = f"tessera-{tenant}"
    secret = op.new_secret()
    result = broker.cli("idps", "add-oidc", "--tenant", tenant, "--issuer", op.issuer, "--client-id", client_id,
                        "--client-secret", secret, check=False)
    assert result.returncode == 0, f"add-oidc --client-secret failed: {result.stderr[-400:]}"
    printed = secret in result.stdout + result.stderr
    assert not printed, "add-oidc printed the client secret"
    assert result.stderr.strip(), "no warning about a secret on the command line"
    added = result.json
    path = broker.keys / "oidc" / f"{added['id']}.secret"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600, f"no 0600 Keys/oidc/{added['id']}.secret"
    in_database = secret.encode() in database_bytes(broker)
    assert not in_database, "the client secret is in the database"
    op.register_client(client_id, added["redirect_uri"], secret=secret)
    idp = OIDCIdP(tenant, added["id"], client_id, secret, "client_secret_basic", added["redirect_uri"], added)
    assert sign_in(broker, op, idp).identity["subject"] == f"oidc|{added['id']}|user-0001"


def test_add_oidc_refuses_a_group_role_without_an_equals_sign(broker, op, tmp_path):
    tenant = new_tenant(broker)
    assert_cli_refused(add_oidc_raw(broker, op, tenant, tmp_path, "--group-role", "no-equals-sign"))


# ----------------------------------------------------------------------------------------------
# Where the secret and the key are kept


def database_bytes(broker) -> bytes:
    return b"".join(p.read_bytes() for p in broker.dir.glob("tessera.db*") if p.is_file())


def test_client_secret_is_kept_0600_in_keys_and_never_in_the_database(broker, op, tmp_path):
    tenant = new_tenant(broker)
    idp = add_oidc_idp(broker, op, tenant, tmp_path)
    path = broker.keys / "oidc" / f"{idp.idp_id}.secret"
    assert path.is_file(), f"no Keys/oidc/{idp.idp_id}.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"mode {oct(stat.S_IMODE(path.stat().st_mode))}"
    in_database = idp.secret.encode() in database_bytes(broker)
    assert not in_database, "the client secret is in the database"
    assert sign_in(broker, op, idp).identity["tenant"] == tenant


def test_client_secret_is_sealed_with_the_kek_and_sign_in_still_works(make_broker, op, tmp_path):
    broker = new_oidc_broker(make_broker, env={"TESSERA_KEK": KEK})
    broker.add_tenant("acme")
    idp = add_oidc_idp(broker, op, "acme", tmp_path)
    path = broker.keys / "oidc" / f"{idp.idp_id}.secret"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    in_clear = idp.secret.encode() in path.read_bytes()
    assert not in_clear, "the client secret is kept unsealed despite TESSERA_KEK"
    in_database = idp.secret.encode() in database_bytes(broker)
    assert not in_database, "the client secret is in the database"
    result = sign_in(broker, op, idp)
    assert op.token_requests[-1]["basic"] is True
    assert result.identity["subject"] == f"oidc|{idp.idp_id}|user-0001", result.identity


def test_private_key_jwt_key_is_generated_in_keys_and_its_public_half_served(broker, op, tmp_path):
    tenant = new_tenant(broker)
    idp = add_oidc_idp(broker, op, tenant, tmp_path, auth="private_key_jwt")
    path = broker.keys / "oidc" / f"{idp.idp_id}.key.json"
    assert path.is_file(), f"no Keys/oidc/{idp.idp_id}.key.json"
    assert not stat.S_IMODE(path.stat().st_mode) & 0o077, "the private key file is readable by others"
    served = requests.get(broker.url(f"/sso/{tenant}/oidc/jwks"), timeout=HTTP_TIMEOUT).json()["keys"]
    assert all("d" not in key for key in served)
    assert sign_in(broker, op, idp).identity["tenant"] == tenant


# ----------------------------------------------------------------------------------------------
# Outages and key rotation (a provider and a broker of their own)


def broker_still_serves(broker) -> None:
    assert broker.proc.poll() is None, "tessera serve exited"
    for path in ("/healthz", "/readyz"):
        response = requests.get(broker.url(path), timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"{path}: {describe(response)}"


def check_503(response: requests.Response, code: str | None) -> None:
    __tracebackhide__ = True  # its argument is a code
    assert code is None or code not in response.text, "the refusal echoes the code"
    assert response.status_code == 503, f"expected 503 temporarily_unavailable, got {describe(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
    body = response.json()
    assert body.get("error") == "temporarily_unavailable" and body.get("error_description"), describe(response)


def sign_in_eventually(broker, op, idp, timeout: float = 30) -> None:
    """After an outage ends, sign-in works again (bounded: a refetch may wait out its 10 s limit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sign_in(broker, op, idp)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@pytest.mark.parametrize("outage", ["http-500", "connection-refused"])
def test_jwks_endpoint_down_during_callback_is_503_and_the_broker_keeps_serving(make_broker, tmp_path, outage):
    with OpenIDProvider(separate=("jwks",)) as provider:
        broker = new_oidc_broker(make_broker)
        broker.add_tenant("acme")
        idp = add_oidc_idp(broker, provider, "acme", tmp_path)
        sign_in(broker, provider, idp)
        # The next ID token is signed with a new key: the broker must fetch the JWKS, which is down.
        provider.rotate_signing_key()
        if outage == "http-500":
            provider.jwks_status = 500
        else:
            provider.take_down("jwks")
        provider.wait_since_last_hit("/jwks", 10.5)  # outside the 10 s limit of JWKS fetches
        failed = audit_count(broker, "acme", "signin.failed")
        browser = Browser(broker, "acme")
        callback = browser.to_provider(provider)
        response = browser.callback(callback, accept=JSON_ACCEPT)
        check_503(response, query_of(callback)["code"])
        assert browser.session_info().status_code == 401
        broker_still_serves(broker)
        assert audit_count(broker, "acme", "signin.failed") == failed + 1
        provider.reset()
        sign_in_eventually(broker, provider, idp)
        broker_still_serves(broker)
        found = leaks(broker, provider)
        assert not found, "; ".join(found)


def test_token_endpoint_unreachable_is_503_and_the_broker_keeps_serving(make_broker, tmp_path):
    with OpenIDProvider(separate=("token",)) as provider:
        broker = new_oidc_broker(make_broker)
        broker.add_tenant("acme")
        idp = add_oidc_idp(broker, provider, "acme", tmp_path)
        provider.take_down("token")
        failed = audit_count(broker, "acme", "signin.failed")
        for accept in (JSON_ACCEPT, BROWSER_ACCEPT):
            browser = Browser(broker, "acme")
            callback = browser.to_provider(provider)
            response = browser.callback(callback, accept=accept)
            if accept == JSON_ACCEPT:
                check_503(response, query_of(callback)["code"])
            else:
                assert response.status_code == 503, describe(response)
                assert response.headers.get("Content-Type", "").startswith("text/plain"), describe(response)
                echoed = query_of(callback)["code"] in response.text
                assert not echoed, "the refusal echoes the code"
        broker_still_serves(broker)
        assert audit_count(broker, "acme", "signin.failed") == failed + 2
        provider.bring_up("token")
        sign_in(broker, provider, idp)
        found = leaks(broker, provider)
        assert not found, "; ".join(found)


def test_rotated_key_is_found_by_fetching_the_jwks_again_at_most_once_per_10_seconds(make_broker, tmp_path):
    with OpenIDProvider() as provider:
        broker = new_oidc_broker(make_broker)
        broker.add_tenant("acme")
        idp = add_oidc_idp(broker, provider, "acme", tmp_path)
        sign_in(broker, provider, idp)
        provider.wait_since_last_hit("/jwks", 10.5)
        new_kid = provider.rotate_signing_key()
        fetches = provider.hits["/jwks"]
        sign_in(broker, provider, idp)
        assert provider.hits["/jwks"] == fetches + 1, "the JWKS was not fetched exactly once for the new kid"
        assert unverified_header(provider.issued["id_token"][-1])["kid"] == new_kid

        # An unknown kid right after: refused, and the JWKS is not fetched again within 10 s.
        provider.tamper_next_id_token("unknown_kid")
        browser = Browser(broker, "acme")
        response = browser.callback(browser.to_provider(provider), accept=JSON_ACCEPT)
        assert response.status_code == 403 and response.json().get("error") == "access_denied", describe(response)
        assert provider.hits["/jwks"] == fetches + 1, "the JWKS was fetched again within 10 s"

        # After 10 s, an unknown kid makes one fetch again, and is still refused.
        provider.wait_since_last_hit("/jwks", 10.5)
        provider.tamper_next_id_token("unknown_kid")
        browser = Browser(broker, "acme")
        response = browser.callback(browser.to_provider(provider), accept=JSON_ACCEPT)
        assert response.status_code == 403 and response.json().get("error") == "access_denied", describe(response)
        assert provider.hits["/jwks"] == fetches + 2, "an unknown kid after 10 s did not fetch the JWKS once"


def test_cookies_are_secure_when_the_broker_issuer_is_https(make_broker, op, tmp_path):
    """The broker serves plain http here but its issuer (TESSERA_ISSUER) is https, as behind a
    TLS-terminating proxy: the login and session cookies get Secure, the redirect_uri is https."""
    from oidc_provider import LOGIN_COOKIE, SESSION_COOKIE, set_cookies

    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    broker = make_broker(port=port, env={"TESSERA_ISSUER": issuer}).start()
    broker.add_tenant("acme")
    secret = op.new_secret()
    out = broker.cli("idps", "add-oidc", "--tenant", "acme", "--issuer", op.issuer, "--client-id", "tessera-https",
                     "--client-secret-file", str(write_secret_file(tmp_path / "https.secret", secret))).json
    assert out["redirect_uri"] == f"{issuer}/sso/acme/oidc/callback"
    op.register_client("tessera-https", out["redirect_uri"], secret=secret)

    login = requests.get(broker.url("/sso/acme/oidc/login"), params={"return_to": "/session"}, allow_redirects=False,
                         timeout=HTTP_TIMEOUT)
    assert login.status_code == 302, describe(login)
    assert query_of(login.headers["Location"])["redirect_uri"] == out["redirect_uri"]
    login_cookie = set_cookies(login)[LOGIN_COOKIE]
    assert login_cookie.get("secure") is True, "login cookie not Secure with an https issuer"
    answer = requests.get(login.headers["Location"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(out["redirect_uri"] + "?")
    callback = broker.url(answer.headers["Location"][len(issuer):])  # through the "proxy"
    done = requests.get(callback, cookies={LOGIN_COOKIE: login_cookie["value"]}, allow_redirects=False,
                        timeout=HTTP_TIMEOUT)
    assert done.status_code == 303, describe(done)
    session = set_cookies(done)[SESSION_COOKIE]
    assert session.get("secure") is True and session.get("httponly") is True, "session cookie not Secure with https"
