"""Sign-in through a tenant's SAML IdP (issue 3): `tessera idps add-saml` and what it refuses
(metadata files and URLs that are not one usable IdP, bad options: the command fails and nothing
is stored), tenant isolation (a response made for tenant A's SP, posted to tenant B's ACS -- even
when both trust the same IdP -- is refused), and the ACS's form handling (size limits, malformed
forms, bad base64, not XML, unknown tenant, tenant without a SAML IdP), against the pysaml2 IdP of
saml_idp.py.

Skipped (module fixture) until the broker has `tessera idps add-saml`.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never an assertion, a cookie or a key compared in it.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
import requests
from lxml import etree

from saml_idp import (idps_reset_around, ACCEPTS, HTTP_TIMEOUT, JSON_ACCEPT, NS, NS_MD, Attempt, SamlBrowser, SamlIdP,
                      SamlUser, add_saml_args, add_saml_idp, audit_count, audit_records, check_accepted,
                      check_refusal_response, encode_response, expect_refused, key_descriptor, marked_user,
                      new_saml_broker, parse_xml, require_saml_endpoints, response_secrets, sign_in,
                      write_idp_metadata)
from support import BrokerPool, describe, free_port

FORM_LIMIT = 256 * 1024


@pytest.fixture(scope="module", autouse=True)
def saml_endpoints():
    require_saml_endpoints()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("saml-setup"))
    b = new_saml_broker(pool.new)
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def idps(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saml-setup-idps")
    made = SimpleNamespace(shared=SamlIdP(directory / "shared", name="shared").start(),
                           other=SamlIdP(directory / "other", name="other").start())
    yield made
    for idp in vars(made).values():
        idp.stop()


@pytest.fixture(autouse=True)
def fresh_idps(idps):
    yield from idps_reset_around(idps)


@pytest.fixture(scope="module")
def tenants(broker, idps):
    for name in ("alpha", "beta", "gamma", "no-saml"):
        broker.add_tenant(name)
    made = SimpleNamespace(
        alpha=add_saml_idp(broker, idps.shared, "alpha"),
        beta=add_saml_idp(broker, idps.shared, "beta"),
        gamma=add_saml_idp(broker, idps.other, "gamma"),
    )
    for rec in vars(made).values():
        sign_in(broker, rec)  # each works: the refusals below are refusals, not a set-up problem
    # The shared IdP also trusts gamma's SP (so it can answer gamma's requests, signed with ITS key).
    idps.shared.trust_sp(made.gamma.sp_metadata)
    return made


_tenants = iter(range(1, 10_000))


def new_tenant(broker) -> str:
    tenant = f"t{next(_tenants)}"
    broker.add_tenant(tenant)
    return tenant


# ----------------------------------------------------------------------------------------------
# add-saml: what it refuses, and that nothing is stored then


def md_tree(idp: SamlIdP) -> etree._Element:
    return parse_xml(idp.metadata_xml())


def md_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def without_sso_redirect(idp: SamlIdP) -> bytes:
    root = md_tree(idp)
    for sso in root.iterfind("md:IDPSSODescriptor/md:SingleSignOnService", NS):
        sso.set("Binding", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    return md_bytes(root)


def with_key_uses(idp: SamlIdP, uses: list[str | None], cert: str | None = None) -> bytes:
    root = md_tree(idp)
    descriptor = root.find("md:IDPSSODescriptor", NS)
    for element in descriptor.findall("md:KeyDescriptor", NS):
        descriptor.remove(element)
    for index, use in enumerate(uses):
        descriptor.insert(index, key_descriptor(cert or idp.key("rsa").cert_b64, use))
    return md_bytes(root)


def sp_only(idp: SamlIdP) -> bytes:
    root = md_tree(idp)
    descriptor = root.find("md:IDPSSODescriptor", NS)
    descriptor.tag = f"{{{NS_MD}}}SPSSODescriptor"
    for sso in descriptor.findall("md:SingleSignOnService", NS):
        descriptor.remove(sso)
    etree.SubElement(descriptor, f"{{{NS_MD}}}AssertionConsumerService",
                     Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", Location="https://sp.example.test/acs",
                     index="0")
    return md_bytes(root)


def two_entities(idp: SamlIdP) -> bytes:
    first = md_tree(idp)
    second = md_tree(idp)
    second.set("entityID", idp.entity_id + "/second")
    entities = etree.Element(f"{{{NS_MD}}}EntitiesDescriptor", nsmap={"md": NS_MD})
    entities.append(first)
    entities.append(second)
    return md_bytes(entities)


BAD_METADATA = {
    "not-xml": lambda idp: b"this is not metadata",
    "empty-file": lambda idp: b"",
    "not-an-entity-descriptor": lambda idp: b'<?xml version="1.0"?><html><body>login</body></html>',
    "sp-metadata-not-an-idp": sp_only,
    "two-entity-descriptors": two_entities,
    "no-http-redirect-sso-endpoint": without_sso_redirect,
    "no-key-descriptor": lambda idp: idp.metadata_xml([]),
    "encryption-certificate-only": lambda idp: with_key_uses(idp, ["encryption"]),
    "certificate-that-is-not-a-certificate": lambda idp: with_key_uses(idp, ["signing"], cert="bm90IGEgY2VydGlmaWNhdGU="),
}


def assert_nothing_stored(broker, tenant: str, idp: SamlIdP) -> None:
    listed = broker.cli("idps", "list", "--tenant", tenant).stdout
    try:
        rows = json.loads(listed)
    except json.JSONDecodeError:
        rows = []
    kinds = [row.get("kind") for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
    assert "saml" not in kinds and idp.entity_id not in listed, "a refused add-saml left a SAML IdP behind"
    assert audit_count(broker, tenant, "idp.added") == 0, "idp.added audited for a refused add-saml"
    response = requests.get(broker.url(f"/sso/{tenant}/saml/login"), params={"return_to": "/session"},
                            headers={"Accept": JSON_ACCEPT}, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert response.status_code == 400 and "Location" not in response.headers, \
        f"login after a refused add-saml: {describe(response)}"


@pytest.mark.parametrize("kind", sorted(BAD_METADATA))
def test_add_saml_refuses_metadata_that_is_not_one_usable_idp_and_stores_nothing(broker, idps, tenants, kind):
    tenant = new_tenant(broker)
    path = write_idp_metadata(broker, idps.shared, f"bad-{kind}", BAD_METADATA[kind](idps.shared))
    result = broker.cli(*add_saml_args(tenant, str(path)), check=False)
    assert result.returncode != 0, f"add-saml accepted {kind} metadata"
    assert "root:x:0:0" not in result.stdout + result.stderr, "the external entity was resolved"
    assert_nothing_stored(broker, tenant, idps.shared)


@pytest.mark.parametrize("entity", ["file", "http"])
def test_add_saml_never_resolves_an_external_entity_in_metadata(broker, idps, tenants, entity):
    """The contract does not say whether metadata with a DOCTYPE is refused; it must at least never
    be resolved (DESIGN.md: libxml2 hardened, no DTD, no entities, no network)."""
    tenant = new_tenant(broker)
    idp = idps.shared
    target = "file:///etc/passwd" if entity == "file" else f"{idp.base_url}/metadata-entity-probe"
    text = idp.metadata_xml().decode()
    head, _, rest = text.partition("?>")
    body = f'{head}?>\n<!DOCTYPE md:EntityDescriptor [<!ENTITY xxe SYSTEM "{target}">]>{rest}'
    body = body.replace('entityID="', 'entityID="&xxe;', 1).encode()
    hits = idp.hits.get("/metadata-entity-probe", 0)
    path = write_idp_metadata(broker, idp, f"xxe-{entity}", body)
    result = broker.cli(*add_saml_args(tenant, str(path)), check=False)
    assert "root:x:0:0" not in result.stdout + result.stderr, "the external entity was resolved"
    assert idp.hits.get("/metadata-entity-probe", 0) == hits, "the broker fetched the external entity"
    if result.returncode == 0:
        assert "root:" not in json.dumps(result.json), "the external entity was resolved into the stored IdP"
    else:
        assert_nothing_stored(broker, tenant, idp)


def test_add_saml_refuses_a_metadata_file_that_does_not_exist(broker, idps, tenants):
    tenant = new_tenant(broker)
    result = broker.cli(*add_saml_args(tenant, str(broker.dir / "metadata" / "missing.xml")), check=False)
    assert result.returncode != 0
    assert_nothing_stored(broker, tenant, idps.shared)


def test_add_saml_from_a_loopback_http_url_works(broker, idps, tenants):
    tenant = new_tenant(broker)
    rec = add_saml_idp(broker, idps.shared, tenant, metadata=idps.shared.metadata_url)
    assert rec.added["metadata_source"] == idps.shared.metadata_url, rec.added
    sign_in(broker, rec)


BAD_URLS = {
    "plain-http-off-loopback": "http://metadata.example.test/idp/metadata",
    "ftp": "ftp://127.0.0.1/idp/metadata",
    "file-url": "file:///etc/passwd",
}


@pytest.mark.parametrize("kind", sorted(BAD_URLS))
def test_add_saml_refuses_a_url_that_is_neither_https_nor_loopback_http(broker, idps, tenants, kind):
    tenant = new_tenant(broker)
    result = broker.cli(*add_saml_args(tenant, BAD_URLS[kind]), check=False)
    assert result.returncode != 0, f"add-saml accepted {BAD_URLS[kind]}"
    assert "root:x:0:0" not in result.stdout + result.stderr
    assert_nothing_stored(broker, tenant, idps.shared)


@pytest.mark.parametrize("answer", ["unreachable", "404", "not-metadata", "no-signing-certificate"])
def test_add_saml_refuses_a_loopback_url_that_does_not_serve_usable_metadata(broker, idps, tenants, answer):
    tenant = new_tenant(broker)
    idp = idps.shared
    url = idp.metadata_url
    if answer == "unreachable":
        url = f"http://127.0.0.1:{free_port()}/idp/metadata"
    elif answer == "404":
        idp.serve_metadata(b"not found", 404)
    elif answer == "not-metadata":
        idp.serve_metadata(b"<html>maintenance</html>", 200)
    else:
        idp.serve_metadata(with_key_uses(idp, ["encryption"]), 200)
    result = broker.cli(*add_saml_args(tenant, url), check=False)
    assert result.returncode != 0, f"add-saml accepted a URL answering {answer}"
    assert_nothing_stored(broker, tenant, idp)


@pytest.mark.parametrize("args", [
    pytest.param(["--refresh-interval", "4"], id="refresh-interval-below-5"),
    pytest.param(["--refresh-interval", "0"], id="refresh-interval-0"),
    pytest.param(["--signed", "none"], id="signed-none"),
    pytest.param(["--preset", "keycloak"], id="unknown-preset"),
    pytest.param(["--group-role", "admins"], id="group-role-without-equals"),
])
def test_add_saml_refuses_bad_options(broker, idps, tenants, args):
    tenant = new_tenant(broker)
    result = broker.cli(*add_saml_args(tenant, idps.shared.metadata_url), *args, check=False)
    assert result.returncode != 0, f"add-saml accepted {' '.join(args)}"
    assert_nothing_stored(broker, tenant, idps.shared)


def test_add_saml_accepts_the_minimum_refresh_interval_of_5_seconds(broker, idps, tenants):
    tenant = new_tenant(broker)
    add_saml_idp(broker, idps.shared, tenant, metadata=idps.shared.metadata_url, refresh_interval=5)


def test_add_saml_refuses_an_unknown_tenant(broker, idps, tenants):
    path = write_idp_metadata(broker, idps.shared, "for-unknown-tenant")
    result = broker.cli(*add_saml_args("no-such-tenant-x", str(path)), check=False)
    assert result.returncode != 0


# ----------------------------------------------------------------------------------------------
# Tenant isolation


def test_response_made_for_tenant_a_posted_to_tenant_b_is_refused_though_both_trust_the_same_idp(broker, idps, tenants):
    def attempt(accept):
        browser = SamlBrowser(broker, "alpha")
        idps.shared.next_response(user=marked_user())
        answer = browser.to_idp(idps.shared)
        # The same browser (one cookie jar) also has a pending login at beta: only the tenant differs.
        at_beta = SamlBrowser(broker, "beta")
        at_beta.session = browser.session
        assert at_beta.login("/session").status_code == 302
        response = at_beta.post_acs(answer.saml_response, accept=accept)
        return Attempt(response, at_beta, response_secrets(answer.xml, answer.saml_response))

    alpha_failed = audit_count(broker, "alpha", "signin.failed")
    expect_refused(broker, "beta", attempt, status=403, error="access_denied", check="Destination")
    assert audit_count(broker, "alpha", "signin.failed") == alpha_failed, "the refusal was audited in tenant A"


def test_response_accepted_at_tenant_a_replayed_to_tenant_b_is_refused(broker, idps, tenants):
    prepared = {}
    for accept in ACCEPTS:
        browser = SamlBrowser(broker, "alpha")
        idps.shared.next_response(user=marked_user())
        answer = browser.to_idp(idps.shared)
        check_accepted(browser, browser.post_acs(answer.saml_response), tenants.alpha)
        prepared[accept] = answer

    def attempt(accept):
        answer = prepared[accept]
        browser = SamlBrowser(broker, "beta")
        assert browser.login("/session").status_code == 302
        secrets = {k: v for k, v in response_secrets(answer.xml, answer.saml_response).items()
                   if not k.startswith(("NameID", "attribute value"))}
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser, secrets)

    expect_refused(broker, "beta", attempt, status=403, error="access_denied", check="Destination")


def test_response_to_tenant_b_with_tenant_a_as_audience_is_refused(broker, idps, tenants):
    """The IdP answers beta's own request (Destination, Recipient, InResponseTo right) but for
    alpha's SP entityID: the audience binds a response to one tenant."""
    def attempt(accept):
        browser = SamlBrowser(broker, "beta")
        idps.shared.next_response(user=marked_user(), audiences=[tenants.alpha.sp_entity_id])
        answer = browser.to_idp(idps.shared)
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser,
                       response_secrets(answer.xml, answer.saml_response))

    expect_refused(broker, "beta", attempt, status=403, error="access_denied", check="Audience")


def test_response_signed_by_another_tenants_idp_is_refused(broker, idps, tenants):
    """gamma trusts `other`; the shared IdP (trusted by alpha and beta) answers gamma's request
    with its own key and entityID: not a certificate of gamma's IdP metadata."""
    def attempt(accept):
        browser = SamlBrowser(broker, "gamma")
        login = browser.login("/session")
        assert login.status_code == 302
        query = login.headers["Location"].split("?", 1)[1]
        request = idps.shared.receive_authn_request(query)
        xml = idps.shared.respond(request, user=marked_user())
        posted = encode_response(xml)
        return Attempt(browser.post_acs(posted, accept=accept), browser, response_secrets(xml, posted))

    expect_refused(broker, "gamma", attempt, status=403, error="access_denied", check="Signature")


def test_response_of_the_right_key_but_another_tenants_idp_entity_id_is_refused(broker, idps, tenants):
    """gamma's own IdP key, but the shared IdP's entityID as Issuer."""
    def attempt(accept):
        browser = SamlBrowser(broker, "gamma")
        idps.other.next_response(user=marked_user(), issuer=idps.shared.entity_id)
        answer = browser.to_idp(idps.other)
        return Attempt(browser.post_acs(answer.saml_response, accept=accept), browser,
                       response_secrets(answer.xml, answer.saml_response))

    expect_refused(broker, "gamma", attempt, status=403, error="access_denied", check="Issuer")


# ----------------------------------------------------------------------------------------------
# The ACS form


def form_attempt(broker, tenant: str, data=None, body: bytes | None = None, content_type: str | None = None,
                 secrets: dict | None = None):
    def attempt(accept):
        browser = SamlBrowser(broker, tenant)
        if body is not None:
            response = browser.session.post(browser.acs_url, data=body, allow_redirects=False, timeout=HTTP_TIMEOUT,
                                            headers={"Accept": accept,
                                                     "Content-Type": content_type or "application/x-www-form-urlencoded"})
        else:
            response = browser.post_acs(None, data=data, accept=accept)
        return Attempt(response, browser, dict(secrets or {}))
    return attempt


def padded_response(broker, idp: SamlIdP, rec, target: int, measure: str) -> tuple[SamlBrowser, bytes, int, int]:
    """A genuine response for a fresh login, padded with attributes of 200-byte values (at most
    200 values each) so that its `measure` ("form": the url-encoded form body; "encoded": the
    SAMLResponse base64) is just at or under `target`: (browser, xml, form length, encoded length)."""
    browser = SamlBrowser(broker, rec.tenant)
    login = browser.login("/session")
    assert login.status_code == 302
    request = idp.receive_authn_request(login.headers["Location"].split("?", 1)[1])
    base = marked_user()

    def make(count: int) -> bytes:
        values = [f"{i:06d}" + "p" * 194 for i in range(count)]
        padding = {f"padding-{n}": values[n * 200:(n + 1) * 200] for n in range(0, (count + 199) // 200)}
        user = SamlUser(base.name_id, base.name_id_format, {**base.attributes, **padding}, base.friendly_names)
        return idp.respond(request, user=user)

    def sizes(xml: bytes) -> tuple[int, int]:
        encoded = encode_response(xml)
        return len(urlencode({"SAMLResponse": encoded})), len(encoded)

    def size(xml: bytes) -> int:
        return sizes(xml)[0 if measure == "form" else 1]

    small, large = size(make(10)), size(make(210))
    per_value = (large - small) / 200
    count = 10 + int((target - small) / per_value)
    xml = make(count)
    while size(xml) > target:
        count -= 3
        xml = make(count)
    return (browser, xml, *sizes(xml))


def test_form_over_256_kib_is_refused_with_400_even_for_a_genuine_response(broker, idps, tenants):
    def attempt(accept):
        browser, xml, form, encoded = padded_response(broker, idps.shared, tenants.alpha, FORM_LIMIT + 4096, "encoded")
        assert FORM_LIMIT < encoded <= form, f"the padded response is {encoded} bytes of base64, the form {form}"
        posted = encode_response(xml)
        return Attempt(browser.post_acs(posted, accept=accept), browser, response_secrets(xml, posted))

    expect_refused(broker, "alpha", attempt, status=400, error="invalid_request", check="Size")


def test_genuine_response_just_under_the_form_limit_is_accepted(broker, idps, tenants):
    browser, xml, form, encoded = padded_response(broker, idps.shared, tenants.alpha, FORM_LIMIT - 2048, "form")
    assert FORM_LIMIT - 8192 < form <= FORM_LIMIT and encoded <= form, f"the padded form is {form} bytes"
    assert len(xml) < 192 * 1024
    check_accepted(browser, browser.post_acs(encode_response(xml)), tenants.alpha)


def test_form_over_256_kib_of_junk_is_refused_with_400(broker, tenants):
    junk = "A" * (FORM_LIMIT + 1)
    expect_refused(broker, "alpha", form_attempt(broker, "alpha", data={"SAMLResponse": junk}), status=400,
                   error="invalid_request", check="Size")


MALFORMED_FORMS = {
    "missing-saml-response": ({"RelayState": "/session"}, "Form"),
    "empty-saml-response": ({"SAMLResponse": ""}, "Form"),
    "bad-base64": ({"SAMLResponse": "%%%this is *not* base64%%%"}, "Form"),
    "base64-of-plain-text": ({"SAMLResponse": "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IFhNTA=="}, "XML"),
    "base64-of-cut-xml": ({"SAMLResponse": encode_response(b'<?xml version="1.0"?><samlp:Response xmlns:samlp="')},
                          "XML"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_FORMS))
def test_malformed_acs_form_is_refused_with_400(broker, tenants, kind):
    data, check = MALFORMED_FORMS[kind]
    expect_refused(broker, "alpha", form_attempt(broker, "alpha", data=data), status=400, error="invalid_request",
                   check=check)


def test_acs_body_that_is_not_a_form_is_refused_with_400(broker, tenants):
    body = json.dumps({"SAMLResponse": encode_response(b"<x/>")}).encode()
    expect_refused(broker, "alpha", form_attempt(broker, "alpha", body=body, content_type="application/json"),
                   status=400, error="invalid_request", check="Form")


def test_acs_form_with_a_repeated_saml_response_is_refused_with_400(broker, idps, tenants):
    def attempt(accept):
        browser = SamlBrowser(broker, "alpha")
        idps.shared.next_response(user=marked_user())
        answer = browser.to_idp(idps.shared)
        body = urlencode([("SAMLResponse", answer.saml_response), ("SAMLResponse", answer.saml_response)]).encode()
        response = browser.session.post(browser.acs_url, data=body, allow_redirects=False, timeout=HTTP_TIMEOUT,
                                        headers={"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"})
        return Attempt(response, browser, response_secrets(answer.xml, answer.saml_response))

    expect_refused(broker, "alpha", attempt, status=400, error="invalid_request", check="Form")


@pytest.mark.parametrize("tenant", ["no-saml", "no-such-tenant"])
def test_acs_of_an_unknown_tenant_or_a_tenant_without_a_saml_idp_is_refused_with_400(broker, idps, tenants, tenant):
    xml = idps.shared.unsolicited(tenants.alpha.sp_entity_id, user=marked_user())
    posted = encode_response(xml)
    for accept in ACCEPTS:
        browser = SamlBrowser(broker, tenant)
        response = browser.post_acs(posted, accept=accept)
        check_refusal_response(response, 400, "invalid_request", accept, response_secrets(xml, posted))
        login = browser.login("/session")
        assert login.status_code == 400 and "Location" not in login.headers, describe(login)
    if tenant == "no-saml":
        records = [r for r in audit_records(broker, "no-saml") if r.get("action") == "signin.succeeded"]
        assert not records
