"""Sign-in through a tenant's SAML IdP (issue 3): every way a response can be wrong, one test each,
against the pysaml2 IdP of saml_idp.py and the hostile responses of saml_hostile.py.

Each hostile response answers a real pending AuthnRequest of the browser that posts it (so only the
named defect is wrong), and is tried twice, with `Accept: application/json` (JSON
{error, error_description}) and with a browser's Accept (plain text). Each refusal must have the
documented status and error, open no session, provision no user, and add one `signin.failed`
record (outcome denied) whose reason is `saml: <error>: <Check>: <words>` naming the check of the
contract that refuses it; neither the answer, nor the audit export, nor the server log may hold
anything of the response (NameID and attribute values, IDs, signature values, a slice of its
base64, XML markup). Every response carries values made for that attempt alone, so a leak cannot
hide behind an earlier legitimate sign-in.

Skipped (module fixture) until the broker has `tessera idps add-saml`.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never an assertion, a cookie or a key compared in it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from saml_hostile import CASES, Ctx, Evil, case_options, hostile_response, with_comment_in
from saml_idp import (JSON_ACCEPT, LOGIN_COOKIE, NAMEID_EMAIL, NAMEID_TRANSIENT, Attempt, SamlBrowser, SamlIdP,
                      SamlUser, add_saml_idp, check_accepted, encode_response, expect_refused, marked_user,
                      new_saml_broker, require_saml_endpoints, response_secrets, sign_in, subject_of)
from support import BrokerPool

ENTRA_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
XMLSOAP_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
PASSWD = "root:x:0:0"  # what /etc/passwd would put in an answer if an entity were resolved


@pytest.fixture(scope="module", autouse=True)
def saml_endpoints():
    require_saml_endpoints()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("saml-refusals"))
    b = new_saml_broker(pool.new)
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    made = SamlIdP(tmp_path_factory.mktemp("saml-refusals-idp"), name="refusals").start()
    yield made
    made.stop()


@pytest.fixture(autouse=True)
def fresh_idp(idp):
    idp.reset()
    yield
    pending = idp.pending_next()
    idp.reset()
    assert not pending, f"a response prepared at the IdP was never asked for: {pending}"


@pytest.fixture(scope="module")
def tenants(broker, idp):
    for name in ("acme", "resp", "both", "idpinit", "entra"):
        broker.add_tenant(name)
    made = SimpleNamespace(
        acme=add_saml_idp(broker, idp, "acme"),
        resp=add_saml_idp(broker, idp, "resp", signed="response", defaults={"sign": "response"}),
        both=add_saml_idp(broker, idp, "both", signed="both", defaults={"sign": "both"}),
        idpinit=add_saml_idp(broker, idp, "idpinit", allow_idp_initiated=True),
        entra=add_saml_idp(broker, idp, "entra", preset="entra",
                           user=SamlUser("grace@contoso.example", NAMEID_EMAIL,
                                         {ENTRA_OID: ["6f1c4a1e-0000-4000-8000-0000000000e2"],
                                          XMLSOAP_EMAIL: ["grace@contoso.example"]})),
    )
    # Each tenant signs in once before any refusal: a refusal below is never a set-up problem.
    for rec in vars(made).values():
        sign_in(broker, rec)
    return made


TENANT_FOR = {"assertion": "acme", "response": "resp", "both": "both"}


def hostile_attempt(broker, rec, case):
    """login -> the IdP's genuine answer for this browser's request (the case's options, values
    made for this attempt) -> the case's hostile derivation -> POST to the ACS."""
    def attempt(accept: str) -> Attempt:
        options = case_options(case, rec.idp)
        options.setdefault("user", marked_user())
        rec.idp.next_response(**options)
        browser = SamlBrowser(broker, rec.tenant)
        answer = browser.to_idp(rec.idp)
        ctx = Ctx(rec.idp, rec.sp_entity_id, rec.acs_url, answer.request, answer.xml, evil=Evil.new())
        hostile = hostile_response(case, ctx)
        posted = encode_response(hostile)
        secrets = {**response_secrets(answer.xml), **response_secrets(hostile, posted),
                   **{f"user value {i}": v for i, v in enumerate(options["user"].values()) if len(v) >= 6},
                   "evil NameID": ctx.evil.name_id, "/etc/passwd content": PASSWD}
        return Attempt(browser.post_acs(posted, accept=accept), browser, secrets)
    return attempt


def run_case(broker, tenants, case) -> None:
    rec = getattr(tenants, TENANT_FOR[case.signed])
    probe_hits = rec.idp.hits.get(case.probe, 0) if case.probe else 0
    expect_refused(broker, rec.tenant, hostile_attempt(broker, rec, case), status=case.status, error=case.error,
                   check=case.check)
    if case.probe:
        assert rec.idp.hits.get(case.probe, 0) == probe_hits, \
            f"the broker fetched {case.probe} (network access while parsing)"


def cases(family: str) -> list:
    return [pytest.param(case, id=case.name) for case in CASES if case.family == family]


# ----------------------------------------------------------------------------------------------
# The registry of saml_hostile.py, family by family


@pytest.mark.parametrize("case", cases("wrapping"))
def test_signature_wrapping_is_refused(broker, tenants, case):
    """Every XSW placement: two assertions anywhere (AssertionCount), or one assertion whose
    signature does not cover it as the Signature's parent (Signature)."""
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("signature"))
def test_bad_or_misplaced_signature_is_refused(broker, tenants, case):
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("assertions"))
def test_more_than_one_assertion_is_refused(broker, tenants, case):
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("encryption"))
def test_assertion_that_cannot_be_decrypted_as_allowed_is_refused(broker, tenants, case):
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("xml"))
def test_hostile_xml_is_refused_with_400_before_anything_is_resolved(broker, tenants, case):
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("status"))
def test_failed_status_is_refused(broker, tenants, case):
    run_case(broker, tenants, case)


@pytest.mark.parametrize("case", cases("conditions"))
def test_validly_signed_response_with_a_wrong_field_is_refused(broker, tenants, case):
    run_case(broker, tenants, case)


# ----------------------------------------------------------------------------------------------
# Comment injection: accepted, with the WHOLE value


def test_comment_inside_the_name_id_and_an_attribute_value_does_not_truncate_them(broker, tenants):
    """The IdP signs `victim@example.com.evil.test`; a comment is inserted after
    `victim@example.com` (exclusive C14N drops comments: the signature stays valid). The session
    must be for the whole value, never for victim@example.com."""
    rec = tenants.acme
    whole = "victim@example.com.evil.test"
    rec.idp.next_response(user=SamlUser(whole, NAMEID_EMAIL, {"urn:oid:0.9.2342.19200300.100.1.3": [whole]},
                                        {"urn:oid:0.9.2342.19200300.100.1.3": "mail"}))
    browser = SamlBrowser(broker, "acme")
    answer = browser.to_idp(rec.idp)
    ctx = Ctx(rec.idp, rec.sp_entity_id, rec.acs_url, answer.request, answer.xml)
    hostile = with_comment_in(ctx, ".//saml:Subject/saml:NameID | .//saml:AttributeValue", "victim@example.com")
    response = browser.post_acs(hostile)
    identity = check_accepted(browser, response, rec)
    assert identity["subject"] == subject_of(rec, whole), f"subject {identity['subject']!r}: the NameID was truncated"
    assert identity["email"] == whole, f"email {identity['email']!r}: the attribute value was truncated"


# ----------------------------------------------------------------------------------------------
# Unsolicited responses, InResponseTo and the login cookie


def test_unsolicited_response_is_refused_when_the_tenant_does_not_allow_it(broker, tenants):
    rec = tenants.acme

    def attempt(accept):
        browser = SamlBrowser(broker, "acme")
        xml = rec.idp.unsolicited(rec.sp_entity_id, rec.acs_url, user=marked_user())
        posted = encode_response(xml)
        return Attempt(browser.post_acs(posted, accept=accept), browser, response_secrets(xml, posted))

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check="Unsolicited")


def test_unsolicited_response_is_refused_even_when_the_browser_has_a_pending_login(broker, tenants):
    rec = tenants.acme

    def attempt(accept):
        browser = SamlBrowser(broker, "acme")
        assert browser.login("/session").status_code == 302
        xml = rec.idp.unsolicited(rec.sp_entity_id, rec.acs_url, user=marked_user())
        posted = encode_response(xml)
        return Attempt(browser.post_acs(posted, accept=accept), browser, response_secrets(xml, posted))

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check=("Unsolicited", "InResponseTo"))


def test_response_to_another_browsers_request_is_refused(broker, tenants):
    rec = tenants.acme

    def attempt(accept):
        victim = SamlBrowser(broker, "acme")
        rec.idp.next_response(user=marked_user())
        answer = victim.to_idp(rec.idp)
        attacker = SamlBrowser(broker, "acme")
        assert attacker.login("/session").status_code == 302  # a pending request of its own
        return Attempt(attacker.post_acs(answer.saml_response, accept=accept), attacker,
                       response_secrets(answer.xml, answer.saml_response))

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check="InResponseTo")


@pytest.mark.parametrize("cookie", ["absent", "altered"])
def test_sp_initiated_response_without_this_browsers_login_cookie_is_refused(broker, tenants, cookie):
    rec = tenants.acme

    def attempt(accept):
        browser = SamlBrowser(broker, "acme")
        rec.idp.next_response(user=marked_user())
        answer = browser.to_idp(rec.idp)
        value = browser.cookie(LOGIN_COOKIE)
        path = f"/sso/{rec.tenant}/saml"
        if cookie == "absent":
            browser.put_cookie(LOGIN_COOKIE, None)
        else:
            flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
            browser.put_cookie(LOGIN_COOKIE, flipped, path=path)
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser,
                       response_secrets(answer.xml, answer.saml_response))

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check="InResponseTo")


# ----------------------------------------------------------------------------------------------
# Replay: the same response, the same assertion ID


def _accepted_then(broker, rec, user: SamlUser | None = None, **changes):
    """A sign-in that succeeded, and what it posted: (browser, base64, login cookie value)."""
    browser = SamlBrowser(broker, rec.tenant)
    rec.idp.next_response(user=user or marked_user(), **changes)
    answer = browser.to_idp(rec.idp)
    cookie = browser.cookie(LOGIN_COOKIE)
    check_accepted(browser, browser.post_acs(answer.saml_response), rec)
    return browser, answer, cookie


def replay_secrets(answer) -> dict:
    """A replayed response was accepted once: its subject and e-mail may be in the audit trail;
    its signature values and base64 may not."""
    return {k: v for k, v in response_secrets(answer.xml, answer.saml_response).items()
            if not k.startswith(("NameID", "attribute value"))}


def test_replayed_response_is_refused_even_with_the_login_cookie_it_came_with(broker, tenants):
    rec = tenants.acme
    prepared = {accept: _accepted_then(broker, rec) for accept in (JSON_ACCEPT, "text/html")}

    def attempt(accept):
        browser, answer, cookie = prepared[accept if accept == JSON_ACCEPT else "text/html"]
        again = SamlBrowser(broker, "acme")
        again.put_cookie(LOGIN_COOKIE, cookie, path=f"/sso/{rec.tenant}/saml")
        return Attempt(again.post_acs(answer.saml_response, accept=accept), again, replay_secrets(answer))

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check=("InResponseTo", "Replay"))


def test_reused_assertion_id_in_a_new_validly_signed_response_is_refused_as_replay(broker, tenants):
    rec = tenants.acme
    ids = {}
    for accept in (JSON_ACCEPT, "text/html"):
        ids[accept] = f"_reused-{accept[:4]}-{marked_user().name_id.split('@')[0]}"
        _accepted_then(broker, rec, assertion_id=ids[accept])

    def attempt(accept):
        key = accept if accept == JSON_ACCEPT else "text/html"
        browser = SamlBrowser(broker, "acme")
        rec.idp.next_response(user=marked_user(), assertion_id=ids[key])
        answer = browser.to_idp(rec.idp)
        secrets = {k: v for k, v in response_secrets(answer.xml, answer.saml_response).items() if "Assertion ID" not in k}
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser, secrets)

    expect_refused(broker, "acme", attempt, status=403, error="access_denied", check="Replay")


def test_replayed_unsolicited_response_is_refused_as_replay_where_idp_initiated_is_allowed(broker, tenants):
    rec = tenants.idpinit
    prepared = {}
    for accept in (JSON_ACCEPT, "text/html"):
        xml = rec.idp.unsolicited(rec.sp_entity_id, rec.acs_url, user=marked_user())
        first = SamlBrowser(broker, "idpinit")
        check_accepted(first, first.post_acs(xml), rec)
        prepared[accept] = xml

    def attempt(accept):
        xml = prepared[accept if accept == JSON_ACCEPT else "text/html"]
        browser = SamlBrowser(broker, "idpinit")
        posted = encode_response(xml)
        secrets = {k: v for k, v in response_secrets(xml, posted).items()
                   if not k.startswith(("NameID", "attribute value"))}
        return Attempt(browser.post_acs(posted, accept=accept), browser, secrets)

    expect_refused(broker, "idpinit", attempt, status=403, error="access_denied", check="Replay")


def test_idp_initiated_tenant_still_checks_audience_recipient_and_validity(broker, tenants):
    rec = tenants.idpinit
    for changes, check in (({"audiences": ["https://other-sp.example.test/"]}, "Audience"),
                           ({"recipient": "https://other-sp.example.test/acs"}, "SubjectConfirmation"),
                           ({"not_before": -900, "not_on_or_after": -300, "scd_not_on_or_after": -300}, "Conditions")):
        def attempt(accept, changes=changes):
            xml = rec.idp.unsolicited(rec.sp_entity_id, rec.acs_url, user=marked_user(), **changes)
            browser = SamlBrowser(broker, "idpinit")
            posted = encode_response(xml)
            return Attempt(browser.post_acs(posted, accept=accept), browser, response_secrets(xml, posted))

        expect_refused(broker, "idpinit", attempt, status=403, error="access_denied", check=check)


# ----------------------------------------------------------------------------------------------
# Subject and claims


def claims_attempt(broker, rec, user: SamlUser):
    def attempt(accept):
        rec.idp.next_response(user=user)
        browser = SamlBrowser(broker, rec.tenant)
        answer = browser.to_idp(rec.idp)
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser,
                       response_secrets(answer.xml, answer.saml_response))
    return attempt


def test_transient_name_id_without_another_stable_identifier_is_refused_by_the_generic_preset(broker, tenants):
    user = marked_user()
    user = SamlUser(f"_transient-{user.name_id}", NAMEID_TRANSIENT, user.attributes, user.friendly_names)
    expect_refused(broker, "acme", claims_attempt(broker, tenants.acme, user), status=403, error="access_denied",
                   check=("Subject", "Claims"))


def test_response_without_a_name_id_is_refused_by_the_generic_preset(broker, tenants):
    user = marked_user()
    user = SamlUser(None, None, user.attributes, user.friendly_names)
    expect_refused(broker, "acme", claims_attempt(broker, tenants.acme, user), status=403, error="access_denied",
                   check=("Subject", "Claims"))


def test_entra_response_without_the_objectidentifier_is_refused(broker, tenants):
    user = marked_user(SamlUser("grace@contoso.example", NAMEID_EMAIL, {XMLSOAP_EMAIL: ["grace@contoso.example"]}),
                       domain="contoso.example")
    expect_refused(broker, "entra", claims_attempt(broker, tenants.entra, user), status=403, error="access_denied",
                   check=("Subject", "Claims"))
