"""Sign-in through a tenant's OpenID Provider (docs/sso-oidc.md): the happy paths.

A real OpenID Provider built on Authlib (oidc_provider.py) runs in the test process; the broker is
set up through its CLI (`tenants add`, `idps add-oidc`) and a browser (`requests.Session`,
redirects followed by hand) goes login -> provider -> callback -> /session -> logout. Each client
authentication (client_secret_basic, client_secret_post, private_key_jwt), userinfo, the presets
(generic, Entra ID, Google, Keycloak, Okta), `return_to`, the session and the audit trail.
The refusals are in test_oidc_refusals.py, the set-up and outages in test_oidc_setup.py.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never a token, code or secret compared in it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from oidc_provider import (BROKER_SECRETS, BROWSER_ACCEPT, JSON_ACCEPT, LOGIN_COOKIE, SESSION_COOKIE, Browser,
                           add_oidc_idp, audit_count, audit_records, is_cleared, leaks, new_oidc_broker,
                           set_cookies, sign_in)
from support import HTTP_TIMEOUT, BrokerPool, describe

ACME_USER = {"sub": "user-0001", "email": "ada@example.com", "email_verified": True, "name": "Ada Lovelace-Zeta",
             "groups": ["admins", "engineering", "grp-unmapped-7f3a"]}
ENTRA_USER = {"sub": "pairwise-sub-for-this-app", "oid": "6f1c4a1e-0000-4000-8000-00000000e001",
              "tid": "b7d0c2a9-0000-4000-8000-0000000000t1", "preferred_username": "grace@contoso.example",
              "email": "grace@contoso.example", "name": "Grace Hopper", "groups": ["grp-entra-admins"],
              "roles": ["Tessera.Admin"]}
GOOGLE_USER = {"sub": "109876543210", "email": "linus@example.com", "email_verified": True, "name": "Linus T",
               "hd": "example.com"}
KEYCLOAK_USER = {"sub": "kc-3f9a", "email": "kc@example.com", "email_verified": False, "name": "Key Cloak",
                 "groups": ["/staff"], "realm_access": {"roles": ["realm-admins", "offline_access"]}}
OKTA_USER = {"sub": "00u1okta", "email": "okta@example.com", "email_verified": True, "name": "Ok Ta",
             "groups": ["Everyone", "okta-admins"]}
# Claim values that are neither the subject nor the e-mail: never in the audit trail.
PRIVATE_CLAIM_VALUES = ["Ada Lovelace-Zeta", "grp-unmapped-7f3a", "Grace Hopper", "b7d0c2a9-0000-4000-8000-0000000000t1",
                        "realm-admins", "okta-admins"]


# `op`, the provider, and `fresh_op`, its controls reset around every test: conftest.py.
pytestmark = pytest.mark.usefixtures("fresh_op")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("oidc-signin"))
    b = new_oidc_broker(pool.new)
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def idps(broker, op, tmp_path_factory):
    directory = tmp_path_factory.mktemp("oidc-secrets")
    tenants = ("acme", "post", "pkjwt", "info", "entra", "google", "keycloak", "okta")
    for tenant in tenants:
        broker.add_tenant(tenant)
    return SimpleNamespace(
        acme=add_oidc_idp(broker, op, "acme", directory, group_roles=("admins=tenant_admin",), user=ACME_USER),
        post=add_oidc_idp(broker, op, "post", directory, auth="client_secret_post"),
        pkjwt=add_oidc_idp(broker, op, "pkjwt", directory, auth="private_key_jwt"),
        info=add_oidc_idp(broker, op, "info", directory, userinfo=True, user=ACME_USER),
        entra=add_oidc_idp(broker, op, "entra", directory, preset="entra", user=ENTRA_USER,
                           group_roles=("grp-entra-admins=tenant_admin",)),
        google=add_oidc_idp(broker, op, "google", directory, preset="google", hosted_domain="example.com",
                            user=GOOGLE_USER),
        keycloak=add_oidc_idp(broker, op, "keycloak", directory, preset="keycloak", user=KEYCLOAK_USER,
                              group_roles=("realm-admins=tenant_admin",)),
        okta=add_oidc_idp(broker, op, "okta", directory, preset="okta", user=OKTA_USER,
                          group_roles=("okta-admins=tenant_admin",)),
    )


def subject(idp, sub: str) -> str:
    return f"oidc|{idp.idp_id}|{sub}"


def refused(response: requests.Response, status: int, accept: str) -> dict | str:
    """A refusal in the documented shape: JSON {error, error_description} for Accept JSON, plain
    text otherwise."""
    assert response.status_code == status, f"expected {status}, got {describe(response)}"
    content_type = response.headers.get("Content-Type", "")
    assert SESSION_COOKIE not in set_cookies(response), "a refusal set a session cookie"
    if accept == JSON_ACCEPT:
        assert content_type.startswith("application/json"), f"Content-Type {content_type!r} for Accept JSON"
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], describe(response)
        assert isinstance(body.get("error_description"), str) and body["error_description"], describe(response)
        assert set(body) <= {"error", "error_description", "error_uri"}, f"unexpected members {sorted(body)}"
        return body
    assert content_type.startswith("text/plain"), f"Content-Type {content_type!r} for a browser's Accept"
    assert response.text.strip(), "empty plain-text refusal"
    return response.text


# ----------------------------------------------------------------------------------------------
# Set-up as the sign-in sees it


def test_add_oidc_audits_idp_added_for_each_tenant(broker, idps):
    for idp in vars(idps).values():
        records = [r for r in audit_records(broker, idp.tenant) if r.get("action") == "idp.added"]
        assert records, f"no idp.added record for {idp.tenant}"


def test_private_key_jwt_provider_serves_only_a_public_es256_jwks(broker, idps):
    response = requests.get(broker.url("/sso/pkjwt/oidc/jwks"), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, describe(response)
    keys = response.json()["keys"]
    assert keys, "empty JWKS"
    for key in keys:
        assert key.get("kty") == "EC" and key.get("crv") == "P-256", f"key type {key.get('kty')}/{key.get('crv')}"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private key material in the served JWKS"
        assert key.get("kid"), "a key without kid"


def test_each_login_gets_its_own_state_nonce_pkce_challenge_and_sealed_cookie(broker, op, idps):
    seen = []
    for _ in range(3):
        browser = Browser(broker, "acme")
        assert browser.login("/session").status_code == 302
        params = browser.authorize_params()
        seen.append((params["state"], params["nonce"], params["code_challenge"], browser.cookie(LOGIN_COOKIE)))
    for index in range(4):
        values = [item[index] for item in seen]
        assert all(values) and len(set(values)) == 3, "a login value repeats across logins"


# ----------------------------------------------------------------------------------------------
# The three client authentications


def test_client_secret_basic_sign_in_opens_a_session_with_the_normalized_identity(broker, op, idps):
    idp = idps.acme
    succeeded = audit_count(broker, "acme", "signin.succeeded")
    result = sign_in(broker, op, idp)
    identity = result.identity
    assert identity["subject"] == subject(idp, "user-0001")
    assert identity["email"] == "ada@example.com" and identity["email_verified"] is True, identity
    assert identity["name"] == "Ada Lovelace-Zeta", identity
    assert sorted(identity["groups"]) == ["admins", "engineering", "grp-unmapped-7f3a"]
    assert identity["roles"] == ["tenant_admin"], "--group-role admins=tenant_admin not applied"
    assert identity["expires_at"], identity
    request = op.token_requests[-1]
    assert request["basic"] is True and "client_secret" not in request["form_keys"], "not client_secret_basic"
    assert request["grant_type"] == "authorization_code" and request["has_code_verifier"], request
    assert request["redirect_uri"] == idp.redirect_uri, request
    records = [r for r in audit_records(broker, "acme") if r.get("action") == "signin.succeeded"]
    assert len(records) == succeeded + 1, "no signin.succeeded record for the sign-in"
    assert records[-1].get("actor", {}).get("type") == "user", f"signin.succeeded actor {records[-1].get('actor')}"


def test_client_secret_post_sign_in_sends_the_secret_in_the_form(broker, op, idps):
    result = sign_in(broker, op, idps.post)
    assert result.identity["subject"] == subject(idps.post, "user-0001")
    request = op.token_requests[-1]
    assert request["basic"] is False, "client_secret_post client used Basic"
    assert {"client_id", "client_secret", "code_verifier"} <= set(request["form_keys"])
    assert result.identity["roles"] == [], "roles without any --group-role"


def test_private_key_jwt_sign_in_authenticates_with_an_es256_assertion_of_the_served_key(broker, op, idps):
    result = sign_in(broker, op, idps.pkjwt)
    assert result.identity["subject"] == subject(idps.pkjwt, "user-0001")
    request = op.token_requests[-1]
    assert request["basic"] is False and "client_secret" not in request["form_keys"]
    assert request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertion = op.assertions[-1]
    served = {k["kid"] for k in requests.get(broker.url("/sso/pkjwt/oidc/jwks"), timeout=HTTP_TIMEOUT).json()["keys"]}
    assert assertion["header"].get("alg") == "ES256" and assertion["header"].get("kid") in served, assertion["header"]
    claims = assertion["claims"]
    assert claims["iss"] == claims["sub"] == idps.pkjwt.client_id, {k: claims.get(k) for k in ("iss", "sub")}
    assert claims["aud"] in (op.token_endpoint, op.issuer, [op.token_endpoint], [op.issuer]), f"aud {claims['aud']!r}"
    assert claims.get("jti") and claims["exp"] - int(claims.get("iat", claims["exp"] - 1)) <= 600


def test_two_sign_ins_with_private_key_jwt_use_two_assertions(broker, op, idps):
    """A jti is used once at the provider: a second sign-in must not replay the first assertion."""
    sign_in(broker, op, idps.pkjwt)
    sign_in(broker, op, idps.pkjwt)
    jtis = [a["claims"]["jti"] for a in op.assertions[-2:]]
    assert jtis[0] != jtis[1], "the same client assertion jti twice"


# ----------------------------------------------------------------------------------------------
# ID token variations a correct relying party accepts


def test_userinfo_claims_complete_the_identity_when_enabled(broker, op, idps):
    op.exclude_from_id_token(idps.info.client_id, "name", "groups")
    calls = op.hits["/userinfo"]
    result = sign_in(broker, op, idps.info)
    assert op.hits["/userinfo"] == calls + 1, "--userinfo set but the userinfo endpoint was not called once"
    assert result.identity["name"] == "Ada Lovelace-Zeta", "name from userinfo missing"
    assert "engineering" in result.identity["groups"], "groups from userinfo missing"


def test_userinfo_is_not_called_without_the_flag(broker, op, idps):
    calls = op.hits["/userinfo"]
    sign_in(broker, op, idps.acme)
    assert op.hits["/userinfo"] == calls, "userinfo called without --userinfo"


@pytest.mark.parametrize("variation", ["es256", "multi_aud_with_azp", "iat_slightly_future", "no_at_hash"])
def test_valid_id_token_variations_are_accepted(broker, op, idps, variation):
    """ES256 signature with the provider's EC key; several audiences with azp the client; iat 20 s
    ahead (within the 60 s allowance); no at_hash (optional in the code flow)."""
    op.tamper_next_id_token(variation)
    result = sign_in(broker, op, idps.acme)
    assert result.identity["subject"] == subject(idps.acme, "user-0001")


# ----------------------------------------------------------------------------------------------
# Session


def test_logout_ends_the_session_on_the_server_and_clears_the_cookie(broker, op, idps):
    result = sign_in(broker, op, idps.acme)
    ended = audit_count(broker, "acme", "session.ended")
    response = result.browser.logout()
    assert response.status_code == 204, describe(response)
    cookie = set_cookies(response).get(SESSION_COOKIE)
    assert cookie is not None and is_cleared(cookie), "logout did not clear the session cookie"
    after = result.browser.session_info()
    assert after.status_code == 401 and after.json().get("error") == "login_required", describe(after)
    # The old cookie value, kept by someone, no longer opens the session.
    replay = requests.get(broker.url("/session"), cookies={SESSION_COOKIE: result.session_cookie},
                          headers={"Accept": JSON_ACCEPT}, timeout=HTTP_TIMEOUT)
    assert replay.status_code == 401 and replay.json().get("error") == "login_required", describe(replay)
    assert audit_count(broker, "acme", "session.ended") == ended + 1, "no session.ended record"


def test_session_without_a_cookie_or_with_a_made_up_one_is_401_login_required(broker):
    for cookies in ({}, {SESSION_COOKIE: "A" * 43}, {SESSION_COOKIE: ""}):
        response = requests.get(broker.url("/session"), cookies=cookies, headers={"Accept": JSON_ACCEPT},
                                timeout=HTTP_TIMEOUT)
        assert response.status_code == 401, describe(response)
        assert response.json().get("error") == "login_required", describe(response)


def test_each_sign_in_opens_a_new_session_with_its_own_cookie(broker, op, idps):
    first = sign_in(broker, op, idps.acme)
    second = sign_in(broker, op, idps.acme)
    distinct = first.session_cookie != second.session_cookie
    assert distinct, "two sign-ins got the same session cookie"
    assert first.browser.logout().status_code == 204
    assert second.browser.session_info().status_code == 200, "logging out one session ended another"


def test_same_sub_at_two_providers_gives_two_subjects(broker, op, idps):
    one = sign_in(broker, op, idps.acme).identity
    two = sign_in(broker, op, idps.post).identity
    assert one["subject"] != two["subject"], (one, two)
    assert one["subject"].endswith("|user-0001") and two["subject"].endswith("|user-0001"), (one, two)


def test_identity_is_updated_on_each_sign_in(broker, op, idps):
    client_id = idps.okta.client_id
    first = sign_in(broker, op, idps.okta).identity
    op.set_user({**OKTA_USER, "name": "Ok Ta Renamed", "email": "okta.renamed@example.com",
                 "groups": ["Everyone"]}, client_id=client_id)
    try:
        second = sign_in(broker, op, idps.okta).identity
    finally:
        op.set_user(OKTA_USER, client_id=client_id)
    assert second["subject"] == first["subject"], second
    assert second["name"] == "Ok Ta Renamed" and second["email"] == "okta.renamed@example.com", second
    assert second["groups"] == ["Everyone"] and second["roles"] == [], "roles not recomputed from the new groups"


def test_human_session_is_not_accepted_at_the_token_endpoint(broker, op, idps):
    result = sign_in(broker, op, idps.acme)
    response = requests.post(broker.token_endpoint, data={"grant_type": "client_credentials"},
                             cookies={SESSION_COOKIE: result.session_cookie}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 401 and response.json().get("error") == "invalid_client", describe(response)
    assert "access_token" not in response.text, "a human session got an access token"


def test_workload_token_does_not_open_a_session(broker, idps):
    client = broker.add_client("acme", "acme-workload", "crm:contacts.read")
    token = broker.token(client)
    for kwargs in ({"headers": {"Authorization": f"Bearer {token}", "Accept": JSON_ACCEPT}},
                   {"cookies": {SESSION_COOKIE: token}, "headers": {"Accept": JSON_ACCEPT}}):
        response = requests.get(broker.url("/session"), timeout=HTTP_TIMEOUT, **kwargs)
        assert response.status_code == 401 and response.json().get("error") == "login_required", \
            f"a workload access token opened a session: HTTP {response.status_code}"


# ----------------------------------------------------------------------------------------------
# Presets


def test_entra_preset_uses_oid_as_the_subject_not_the_pairwise_sub(broker, op, idps):
    identity = sign_in(broker, op, idps.entra).identity
    assert identity["subject"] == subject(idps.entra, ENTRA_USER["oid"])
    assert identity["email"] == "grace@contoso.example" and identity["name"] == "Grace Hopper", identity
    assert "grp-entra-admins" in identity["groups"] and "tenant_admin" in identity["roles"], identity


def test_entra_preset_takes_preferred_username_when_there_is_no_email(broker, op, idps):
    user = {k: v for k, v in ENTRA_USER.items() if k != "email"}
    op.set_user(user, client_id=idps.entra.client_id)
    try:
        identity = sign_in(broker, op, idps.entra).identity
    finally:
        op.set_user(ENTRA_USER, client_id=idps.entra.client_id)
    assert identity["email"] == "grace@contoso.example", identity
    assert identity["subject"] == subject(idps.entra, ENTRA_USER["oid"])


def test_entra_preset_does_not_call_an_email_the_provider_marks_unverified_verified(broker, op, idps):
    """The token says email_verified false: the normalized identity must not say true (Entra's
    e-mail claim is not verified by default, the "nOAuth" pitfall)."""
    op.set_user({**ENTRA_USER, "email_verified": False}, client_id=idps.entra.client_id)
    try:
        identity = sign_in(broker, op, idps.entra).identity
    finally:
        op.set_user(ENTRA_USER, client_id=idps.entra.client_id)
    assert identity["email_verified"] is not True, f"email_verified {identity['email_verified']!r} for an unverified e-mail"


def test_google_preset_with_the_required_hosted_domain_signs_in(broker, op, idps):
    identity = sign_in(broker, op, idps.google).identity
    assert identity["subject"] == subject(idps.google, GOOGLE_USER["sub"])
    assert identity["email"] == "linus@example.com" and identity["email_verified"] is True, identity


@pytest.mark.parametrize("change", [
    pytest.param({"hd": "evil.example", "email": "linus@evil.example"}, id="other-hd"),
    pytest.param({"hd": None}, id="no-hd"),
    pytest.param({"email": "linus@gmail.com"}, id="hd-right-email-domain-wrong"),
    pytest.param({"hd": "sub.example.com", "email": "linus@sub.example.com"}, id="subdomain-hd"),
])
def test_google_preset_refuses_a_wrong_hosted_domain_with_403(broker, op, idps, change):
    user = {k: v for k, v in {**GOOGLE_USER, **change}.items() if v is not None}
    op.set_user(user, client_id=idps.google.client_id)
    try:
        failed = audit_count(broker, "google", "signin.failed")
        for accept in (JSON_ACCEPT, BROWSER_ACCEPT):
            browser = Browser(broker, "google")
            response = browser.callback(browser.to_provider(op), accept=accept)
            body = refused(response, 403, accept)
            if accept == JSON_ACCEPT:
                assert body["error"] == "access_denied"
            assert browser.session_info().status_code == 401
        assert audit_count(broker, "google", "signin.failed") == failed + 2
    finally:
        op.set_user(GOOGLE_USER, client_id=idps.google.client_id)


def test_google_preset_does_not_pick_a_groups_claim(broker, op, idps):
    """docs/sso-oidc.md: the Google preset picks sub, email, email_verified, name, hd -- not groups."""
    op.set_user({**GOOGLE_USER, "groups": ["grp-google-injected"]}, client_id=idps.google.client_id)
    try:
        identity = sign_in(broker, op, idps.google).identity
    finally:
        op.set_user(GOOGLE_USER, client_id=idps.google.client_id)
    assert identity["groups"] == [], f"groups {identity['groups']!r} taken by the Google preset"


def test_keycloak_preset_takes_realm_roles_as_groups(broker, op, idps):
    identity = sign_in(broker, op, idps.keycloak).identity
    assert identity["subject"] == subject(idps.keycloak, "kc-3f9a")
    assert identity["email_verified"] is False, identity
    assert {"/staff", "realm-admins", "offline_access"} <= set(identity["groups"]), identity["groups"]
    assert identity["roles"] == ["tenant_admin"], identity


def test_okta_preset_takes_groups_and_maps_roles(broker, op, idps):
    identity = sign_in(broker, op, idps.okta).identity
    assert identity["subject"] == subject(idps.okta, "00u1okta")
    assert sorted(identity["groups"]) == ["Everyone", "okta-admins"] and identity["roles"] == ["tenant_admin"]


def test_okta_preset_takes_neither_entra_roles_nor_keycloak_realm_roles(broker, op, idps):
    op.set_user({**OKTA_USER, "groups": ["Everyone"], "roles": ["okta-admins"],
                 "realm_access": {"roles": ["okta-admins"]}}, client_id=idps.okta.client_id)
    try:
        identity = sign_in(broker, op, idps.okta).identity
    finally:
        op.set_user(OKTA_USER, client_id=idps.okta.client_id)
    assert identity["groups"] == ["Everyone"] and identity["roles"] == [], identity


# ----------------------------------------------------------------------------------------------
# return_to


def test_return_to_defaults_to_session(broker, op, idps):
    sign_in(broker, op, idps.acme, return_to=None)


def test_return_to_path_with_a_query_is_where_the_callback_sends_the_browser(broker, op, idps):
    sign_in(broker, op, idps.acme, return_to="/admin/users?page=2&sort=name")


def test_return_to_of_1024_bytes_is_accepted_and_1025_refused(broker, op, idps):
    longest = "/" + "a" * 1023
    sign_in(broker, op, idps.acme, return_to=longest)
    browser = Browser(broker, "acme", accept=JSON_ACCEPT)
    response = browser.login(longest + "a")
    refused(response, 400, JSON_ACCEPT)


OPEN_REDIRECTS = [
    "https://evil.example",
    "https://evil.example/session",
    "//evil.example",
    "//evil.example/session",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/session\\..\\evil",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "session",
    "/\tevil",
    "/session\r\nSet-Cookie: x=y",
    "/session\x00",
    "http:/evil.example",
]


@pytest.mark.parametrize("return_to", OPEN_REDIRECTS, ids=[repr(v) for v in OPEN_REDIRECTS])
def test_return_to_that_is_not_a_path_on_this_site_is_refused_with_400(broker, idps, return_to):
    for accept in (JSON_ACCEPT, BROWSER_ACCEPT):
        browser = Browser(broker, "acme", accept=accept)
        response = browser.login(return_to)
        assert "Location" not in response.headers, f"return_to {return_to!r} was redirected"
        refused(response, 400, accept)
        assert LOGIN_COOKIE not in set_cookies(response), "a refused login set the login cookie"


def test_return_to_percent_encoded_twice_slash_is_refused(broker, idps):
    """`%2F%2Fevil.example` decodes to `//evil.example`."""
    browser = Browser(broker, "acme", accept=JSON_ACCEPT)
    response = browser.login(raw_query="return_to=%2F%2Fevil.example")
    assert "Location" not in response.headers
    refused(response, 400, JSON_ACCEPT)


def test_login_for_a_tenant_without_an_openid_provider_does_not_redirect(broker, idps):
    broker.add_tenant("no-idp")
    for tenant in ("no-idp", "no-such-tenant"):
        response = requests.get(broker.url(f"/sso/{tenant}/oidc/login"), allow_redirects=False,
                                headers={"Accept": JSON_ACCEPT}, timeout=HTTP_TIMEOUT)
        assert response.status_code in (400, 404), describe(response)
        assert "Location" not in response.headers


# ----------------------------------------------------------------------------------------------
# Hygiene, after all the traffic of this module (it makes its own if run alone)


def test_server_log_and_audit_export_hold_no_code_token_secret_or_session_cookie(broker, op, idps):
    result = sign_in(broker, op, idps.acme)
    assert result.browser.logout().status_code == 204
    op.tamper_next_id_token("wrong_nonce")
    browser = Browser(broker, "acme")
    assert browser.callback(browser.to_provider(op), accept=JSON_ACCEPT).status_code == 403

    have_traffic = bool(op.issued["code"] and op.issued["id_token"] and BROKER_SECRETS.get(broker.port))
    assert have_traffic, "no traffic to check"
    assert broker.log_text(), "the server wrote no log at trace level"
    found = leaks(broker, op)
    assert not found, "; ".join(found)
    audit_text = broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout
    for value in PRIVATE_CLAIM_VALUES:
        assert value not in audit_text, "a claim value other than the subject or e-mail is in the audit export"
    actions = {r.get("action") for r in audit_records(broker, "acme")}
    assert {"idp.added", "signin.succeeded", "signin.failed", "session.ended"} <= actions, sorted(actions)
