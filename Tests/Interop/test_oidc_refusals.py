"""Sign-in through a tenant's OpenID Provider (docs/sso-oidc.md): every way the callback or the
ID token can be wrong, one test each, against the real provider of oidc_provider.py.

Each refusal is tried twice, with `Accept: application/json` (JSON {error, error_description})
and with a browser's Accept (plain text); it must not echo the code, the ID token or the access
token, must not open a session, and must add one `signin.failed` record for the tenant to the
audit trail (and no `signin.succeeded`).

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never a token, code or secret compared in it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import pytest
import requests

from oidc_provider import (BROWSER_ACCEPT, JSON_ACCEPT, LOGIN_COOKIE, SESSION_COOKIE, Browser, Redacted,
                           add_oidc_idp, audit_count, audit_records, leaks, new_oidc_broker, query_of, set_cookies,
                           sign_in, with_query)
from support import BrokerPool

ACCEPTS = (JSON_ACCEPT, BROWSER_ACCEPT)


# `op`, the provider: conftest.py.


@pytest.fixture(autouse=True)
def fresh_provider(op):
    op.reset()
    yield
    pending = list(op._id_token_faults) + list(op._authorize_errors) + list(op._token_failures)
    op.reset()
    assert not pending, f"a fault prepared at the provider was never used: {pending}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("oidc-refusals"))
    b = new_oidc_broker(pool.new)
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def idps(broker, op, tmp_path_factory):
    directory = tmp_path_factory.mktemp("oidc-secrets")
    for tenant in ("acme", "beta", "info", "entra"):
        broker.add_tenant(tenant)
    return SimpleNamespace(
        acme=add_oidc_idp(broker, op, "acme", directory),
        beta=add_oidc_idp(broker, op, "beta", directory),
        info=add_oidc_idp(broker, op, "info", directory, userinfo=True),
        entra=add_oidc_idp(broker, op, "entra", directory, preset="entra",
                           user={"sub": "pairwise", "oid": "oid-1", "tid": "tid-1", "email": "e@contoso.example",
                                 "preferred_username": "e@contoso.example", "name": "E"}),
    )


@pytest.fixture(scope="module", autouse=True)
def working_sign_in_first(broker, op, idps):
    """Each tenant signs in once before any refusal: a refusal below is never a set-up problem."""
    for idp in vars(idps).values():
        sign_in(broker, op, idp)


def check_refusal(response: requests.Response, status: int | tuple[int, ...], error: str | tuple[str, ...], accept: str,
                  never_echo: dict[str, str | None]) -> None:
    """The documented refusal: status, error code, JSON or plain text by Accept; nothing echoed.
    (A tuple of statuses and one of errors: where the document allows either, pairwise.)"""
    echoed_in = " ".join(f"{k}: {v}" for k, v in response.headers.items()) + "\n" + response.text
    leaked = [name for name, value in never_echo.items() if value and value in echoed_in]
    assert not leaked, f"the refusal echoes the {', '.join(leaked)}"
    body = response.text[:300]
    statuses = status if isinstance(status, tuple) else (status,)
    errors = error if isinstance(error, tuple) else (error,)
    assert response.status_code in statuses, f"expected {status} {error}, got HTTP {response.status_code}: {body}"
    if len(statuses) == len(errors) > 1:
        errors = (errors[statuses.index(response.status_code)],)
    cookie = set_cookies(response).get(SESSION_COOKIE)
    assert cookie is None or not cookie.get("value"), "a refusal set a session cookie"
    content_type = response.headers.get("Content-Type", "")
    if accept == JSON_ACCEPT:
        assert content_type.startswith("application/json"), f"Content-Type {content_type!r} for Accept JSON: {body}"
        parsed = response.json()
        assert isinstance(parsed, dict) and parsed.get("error") in errors, f"expected error {error}, got {body}"
        assert isinstance(parsed.get("error_description"), str) and parsed["error_description"], body
        assert set(parsed) <= {"error", "error_description", "error_uri"}, f"unexpected members {sorted(parsed)}"
    else:
        assert content_type.startswith("text/plain"), f"Content-Type {content_type!r} for a browser's Accept: {body}"
        assert response.text.strip(), "empty plain-text refusal"


def expect_refusals(broker, op, tenant: str, status: int | tuple[int, ...], error: str | tuple[str, ...],
                    attempt: Callable[[str], tuple[requests.Response, Browser, dict]]) -> None:
    """Runs `attempt(accept)` for JSON and for a browser; each must be refused and audited once."""
    failed = audit_count(broker, tenant, "signin.failed")
    succeeded = audit_count(broker, tenant, "signin.succeeded")
    for accept in ACCEPTS:
        issued_before = {kind: len(items) for kind, items in op.issued.items()}
        response, browser, echo = attempt(accept)
        fresh = {f"{kind} just issued": items[-1] for kind, items in op.issued.items()
                 if len(items) > issued_before[kind]}
        check_refusal(response, status, error, accept, {k: Redacted(v) for k, v in {**echo, **fresh}.items() if v})
        after = browser.session_info()
        assert after.status_code == 401, f"a refused sign-in opened a session (GET /session: HTTP {after.status_code})"
    assert audit_count(broker, tenant, "signin.failed") == failed + 2, "not one signin.failed record per refusal"
    assert audit_count(broker, tenant, "signin.succeeded") == succeeded, "signin.succeeded for a refused sign-in"
    new = [r for r in audit_records(broker, tenant) if r.get("action") == "signin.failed"][-2:]
    for record in new:
        assert isinstance(record.get("reason"), str) and record["reason"], "signin.failed without the failed check"


def provider_round_trip(broker, op, tenant: str, accept: str, prepare: Callable[[], None] | None = None,
                        change: Callable[[str], str] | None = None) -> tuple[requests.Response, Browser, dict]:
    """login -> provider -> callback (optionally changed) with `accept`."""
    if prepare is not None:
        prepare()
    browser = Browser(broker, tenant)
    callback = browser.to_provider(op)
    code = query_of(callback).get("code")
    if change is not None:
        callback = change(callback)
    return browser.callback(callback, accept=accept), browser, {"code": code}


# ----------------------------------------------------------------------------------------------
# The ID token: signature and algorithm (403 access_denied)

SIGNATURE_FAULTS = {
    "other_key_same_kid": "signed by another key under the provider's kid",
    "bad_signature": "the provider's signature with one bit flipped",
    "unknown_kid": "kid not in the provider's JWKS (even after fetching it again)",
    "no_kid": "no kid, signed by a key not in the JWKS",
    "alg_none": "alg none",
    "alg_None": "alg None",
    "hs256_public_key": "HS256 keyed with the provider's public key PEM",
    "hs256_public_jwk": "HS256 keyed with the provider's public JWK",
    "not_jws": "not a compact JWS",
}


@pytest.mark.parametrize("fault", sorted(SIGNATURE_FAULTS))
def test_id_token_with_a_bad_signature_or_algorithm_is_refused_403(broker, op, idps, fault):
    expect_refusals(broker, op, "acme", 403, "access_denied",
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.tamper_next_id_token(fault)))


# ----------------------------------------------------------------------------------------------
# The ID token: claims (403 access_denied)

CLAIM_FAULTS = {
    "wrong_iss": "iss of another issuer",
    "iss_trailing_slash": "iss with a trailing slash (compared exactly)",
    "wrong_aud": "aud without the client id",
    "multi_aud_no_azp": "several audiences, no azp",
    "multi_aud_wrong_azp": "several audiences, azp another client",
    "single_aud_wrong_azp": "azp present and not the client id",
    "no_nonce": "no nonce",
    "wrong_nonce": "nonce of another login",
    "expired": "exp 5 minutes ago",
    "expired_90s": "exp 90 s ago",
    "no_exp": "no exp",
    "iat_future": "iat 5 minutes ahead",
    "wrong_at_hash": "at_hash of another access token",
    "no_sub": "no sub",
}


@pytest.mark.parametrize("fault", sorted(CLAIM_FAULTS))
def test_id_token_with_a_wrong_claim_is_refused_403(broker, op, idps, fault):
    expect_refusals(broker, op, "acme", 403, "access_denied",
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.tamper_next_id_token(fault)))


def test_id_token_expired_30_seconds_ago_is_refused_403(broker, op, idps):
    """docs/sso-oidc.md: "`exp` not passed" -- the 60 s allowance is given for `iat` only. (OIDC
    Core §3.1.3.7 would permit a small leeway on exp; if the broker keeps one, the document should
    say so, and this test should then use `expired_90s` only.)"""
    expect_refusals(broker, op, "acme", 403, "access_denied",
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.tamper_next_id_token("expired_30s")))


def test_token_response_without_an_id_token_is_refused(broker, op, idps):
    """A 200 token response without id_token: the document has no row of its own for it (the code
    was redeemed, the ID token is not a compact JWS): 400 invalid_grant or 403 access_denied."""
    expect_refusals(broker, op, "acme", (400, 403), ("invalid_grant", "access_denied"),
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.tamper_next_id_token("absent")))


def test_entra_preset_without_oid_is_refused_403(broker, op, idps):
    original = op.user_for(idps.entra.client_id).claims
    op.set_user({k: v for k, v in original.items() if k != "oid"}, client_id=idps.entra.client_id)
    try:
        expect_refusals(broker, op, "entra", 403, "access_denied",
                        lambda accept: provider_round_trip(broker, op, "entra", accept))
    finally:
        op.set_user(original, client_id=idps.entra.client_id)


def test_userinfo_with_another_sub_is_refused_403(broker, op, idps):
    expect_refusals(broker, op, "info", 403, "access_denied",
                    lambda accept: provider_round_trip(broker, op, "info", accept,
                                                       prepare=lambda: op.next_userinfo(sub="someone-else")))


# ----------------------------------------------------------------------------------------------
# The provider's answers


def test_provider_error_access_denied_is_refused_403_without_redeeming_anything(broker, op, idps):
    token_calls = op.hits["/token"]

    def attempt(accept):
        response, browser, echo = provider_round_trip(broker, op, "acme", accept,
                                                      prepare=lambda: op.fail_next_authorize("access_denied"))
        return response, browser, echo

    expect_refusals(broker, op, "acme", 403, "access_denied", attempt)
    assert op.hits["/token"] == token_calls, "the broker called the token endpoint after an error response"


@pytest.mark.parametrize("error", ["login_required", "server_error", "temporarily_unavailable", "interaction_required"])
def test_any_other_provider_error_is_refused_403_access_denied_without_echoing_its_text(broker, op, idps, error):
    def attempt(accept):
        response, browser, echo = provider_round_trip(broker, op, "acme", accept,
                                                      prepare=lambda: op.fail_next_authorize(error))
        reflected = "marker-51f3" in response.text
        assert not reflected, "the provider's error_description is reflected in the broker's page"
        return response, browser, echo

    expect_refusals(broker, op, "acme", 403, "access_denied", attempt)


def test_provider_error_with_a_wrong_state_is_refused_400_first(broker, op, idps):
    """The state is checked before the provider's error (the table's order)."""
    expect_refusals(broker, op, "acme", 400, "invalid_request",
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.fail_next_authorize("access_denied"),
                                                       change=lambda url: with_query(url, state="not-the-state")))


@pytest.mark.parametrize("status,error", [(400, "invalid_grant"), (401, "invalid_client")])
def test_token_endpoint_refusal_is_refused_400_invalid_grant(broker, op, idps, status, error):
    expect_refusals(broker, op, "acme", 400, "invalid_grant",
                    lambda accept: provider_round_trip(broker, op, "acme", accept,
                                                       prepare=lambda: op.fail_next_token(status, error)))


def test_replayed_code_is_refused_400_invalid_grant_by_the_provider(broker, op, idps):
    """A code the broker already redeemed, brought back with a fresh login's state."""
    first = sign_in(broker, op, idps.acme)
    used_code = query_of(first.callback_url)["code"]

    def attempt(accept):
        browser = Browser(broker, "acme")
        login = browser.login("/session")
        state = query_of(login.headers["Location"])["state"]
        callback = with_query(idps.acme.redirect_uri, code=used_code, state=state)
        errors = len(op.token_errors)
        response = browser.callback(callback, accept=accept)
        assert len(op.token_errors) == errors + 1 and op.token_errors[-1]["error"] == "invalid_grant", \
            "the provider was not asked to redeem the used code"
        return response, browser, {"code": used_code}

    expect_refusals(broker, op, "acme", 400, "invalid_grant", attempt)


def test_code_of_another_login_fails_pkce_at_the_provider_400_invalid_grant(broker, op, idps):
    """Code injection: a code issued to login A, brought to the broker with login B's state. The
    broker redeems it with B's verifier, which does not match A's challenge: the provider refuses
    (PKCE), so the broker never gets tokens for A."""

    def attempt(accept):
        victim = Browser(broker, "acme")
        stolen_code = query_of(victim.to_provider(op))["code"]
        attacker = Browser(broker, "acme")
        state = query_of(attacker.login("/session").headers["Location"])["state"]
        response = attacker.callback(with_query(idps.acme.redirect_uri, code=stolen_code, state=state), accept=accept)
        assert op.token_errors and op.token_errors[-1]["error_description"] == "Code challenge failed.", \
            "the provider did not refuse on PKCE"
        assert op.token_requests[-1]["has_code_verifier"]
        return response, attacker, {"code": stolen_code}

    expect_refusals(broker, op, "acme", 400, "invalid_grant", attempt)


# ----------------------------------------------------------------------------------------------
# The callback itself: login cookie and state (400 invalid_request, nothing redeemed)


def refused_before_redemption(op, attempt):
    def wrapped(accept):
        token_calls = op.hits["/token"]
        result = attempt(accept)
        assert op.hits["/token"] == token_calls, "the broker redeemed a code before checking the cookie and state"
        return result
    return wrapped


def test_replayed_callback_with_the_same_state_is_refused_400(broker, op, idps):
    """The whole callback (URL and login cookie) replayed after a successful sign-in: the state
    is used once, and the code is not redeemed again."""

    def attempt(accept):
        done = sign_in(broker, op, idps.acme)
        replayer = Browser(broker, "acme")
        replayer.put_cookie(LOGIN_COOKIE, done.login_cookie, path="/sso/acme/oidc")
        token_calls = op.hits["/token"]
        response = replayer.callback(done.callback_url, accept=accept)
        assert op.hits["/token"] == token_calls, "the broker redeemed the code of a replayed callback"
        return response, replayer, {"code": query_of(done.callback_url)["code"]}

    for accept in ACCEPTS:
        failed = audit_count(broker, "acme", "signin.failed")
        response, browser, echo = attempt(accept)
        check_refusal(response, 400, "invalid_request", accept, {k: Redacted(v) for k, v in echo.items() if v})
        assert browser.session_info().status_code == 401
        assert audit_count(broker, "acme", "signin.failed") == failed + 1


def test_same_callback_twice_in_the_same_browser_is_refused_400(broker, op, idps):
    browser = Browser(broker, "acme")
    callback = browser.to_provider(op)
    cookie = browser.cookie(LOGIN_COOKIE)
    assert browser.callback(callback).status_code == 303
    browser.put_cookie(LOGIN_COOKIE, cookie, path="/sso/acme/oidc")  # as if the clearing were ignored
    browser.put_cookie(SESSION_COOKIE, None)
    token_calls = op.hits["/token"]
    response = browser.callback(callback, accept=JSON_ACCEPT)
    check_refusal(response, 400, "invalid_request", JSON_ACCEPT, {"code": Redacted(query_of(callback)["code"])})
    assert op.hits["/token"] == token_calls


def test_mismatched_state_is_refused_400(broker, op, idps):
    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(
        op, lambda accept: provider_round_trip(broker, op, "acme", accept,
                                               change=lambda url: with_query(url, state=query_of(url)["state"][:-2] + "xx"))))


def test_state_of_another_login_is_refused_400(broker, op, idps):
    def attempt(accept):
        other = Browser(broker, "acme")
        other_state = query_of(other.login("/session").headers["Location"])["state"]
        return provider_round_trip(broker, op, "acme", accept, change=lambda url: with_query(url, state=other_state))

    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(op, attempt))


def test_missing_state_is_refused_400(broker, op, idps):
    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(
        op, lambda accept: provider_round_trip(broker, op, "acme", accept,
                                               change=lambda url: with_query(url, state=None))))


def test_missing_login_cookie_is_refused_400(broker, op, idps):
    def attempt(accept):
        browser = Browser(broker, "acme")
        callback = browser.to_provider(op)
        stranger = Browser(broker, "acme")
        return stranger.callback(callback, accept=accept), stranger, {"code": query_of(callback)["code"]}

    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(op, attempt))


def test_altered_login_cookie_is_refused_400(broker, op, idps):
    def attempt(accept):
        browser = Browser(broker, "acme")
        callback = browser.to_provider(op)
        value = browser.cookie(LOGIN_COOKIE)
        assert value, "no login cookie in the jar"
        middle = len(value) // 2
        altered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1:]
        browser.put_cookie(LOGIN_COOKIE, altered, path="/sso/acme/oidc")
        return browser.callback(callback, accept=accept), browser, {"code": query_of(callback)["code"]}

    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(op, attempt))


def test_login_cookie_of_another_tenant_is_refused_400(broker, op, idps):
    """beta's login cookie and state, brought to acme's callback with a code for acme."""

    def attempt(accept):
        beta = Browser(broker, "beta")
        beta_state = query_of(beta.login("/session").headers["Location"])["state"]
        beta_cookie = beta.cookie(LOGIN_COOKIE)
        acme = Browser(broker, "acme")
        callback = with_query(acme.to_provider(op), state=beta_state)
        mixed = Browser(broker, "acme")
        mixed.put_cookie(LOGIN_COOKIE, beta_cookie, path="/sso/acme/oidc")
        return mixed.callback(callback, accept=accept), mixed, {"code": query_of(callback)["code"]}

    expect_refusals(broker, op, "acme", 400, "invalid_request", refused_before_redemption(op, attempt))


def test_callback_without_a_code_is_refused_400(broker, op, idps):
    def attempt(accept):
        browser = Browser(broker, "acme")
        callback = with_query(browser.to_provider(op), code=None)
        token_calls = op.hits["/token"]
        response = browser.callback(callback, accept=accept)
        assert op.hits["/token"] == token_calls, "the broker called the token endpoint without a code"
        return response, browser, {}

    failed = audit_count(broker, "acme", "signin.failed")
    for accept in ACCEPTS:
        response, browser, echo = attempt(accept)
        assert response.status_code == 400, f"HTTP {response.status_code}: {response.text[:300]}"
        assert browser.session_info().status_code == 401
    assert audit_count(broker, "acme", "signin.failed") == failed + 2


# ----------------------------------------------------------------------------------------------
# Hygiene, after all the refusals of this module (each forged ID token included)


def test_refused_codes_and_forged_id_tokens_are_in_neither_the_server_log_nor_the_audit_export(broker, op, idps):
    op.tamper_next_id_token("alg_none")
    response, _, _ = provider_round_trip(broker, op, "acme", JSON_ACCEPT)
    assert response.status_code == 403
    assert len(op.issued["id_token"]) >= 2 and broker.log_text(), "no traffic to check"
    found = leaks(broker, op)
    assert not found, "; ".join(found)
