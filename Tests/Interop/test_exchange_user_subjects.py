"""RFC 8693 subject tokens from the tenant's own IdPs (issue 5): a `saml2` assertion from its SAML
IdP (pysaml2, saml_idp.py) and an `id_token` from its OpenID Provider (Authlib, oidc_provider.py).

The assertion is checked as at the ACS but for the browser binding (signed by a metadata
certificate, issuer, audience = the tenant's SP, validity, bearer confirmation for the ACS or the
token endpoint) and is single-use, shared with the ACS; the ID token as at the callback but
without a nonce. The subject becomes the normalized person (`saml|…`, `oidc|…`, `sub_type:
user`); a person's token carries no scopes, so the client's registration and the policy bound the
result; neither kind may be an actor; another tenant's IdP is never trusted.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace

import pytest
from authlib.jose import jwt as authlib_jwt
from lxml import etree

from oidc_provider import add_oidc_idp, new_oidc_broker
from saml_idp import SamlBrowser, SamlIdP, SamlUser, JSON_ACCEPT
from support import (BrokerPool, add_client_with_grants, assert_oauth_error, audit_export, describe, exchange,
                     put_policy, unverified_claims, verify_access_token)

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SCOPES = "crm:contacts.read crm:contacts.write"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def assertion_of(response_xml: bytes) -> bytes:
    """The signed Assertion element of an IdP response, as a document of its own (its enveloped
    signature covers the element alone, so it stays valid)."""
    root = etree.fromstring(response_xml)
    found = root.findall(f"{{{SAML_NS}}}Assertion")
    assert len(found) == 1, "the IdP response has no single plain assertion"
    return etree.tostring(found[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory, op):
    directory = tmp_path_factory.mktemp("user-subjects")
    pool = BrokerPool(directory)
    broker = new_oidc_broker(pool.new)
    idp = SamlIdP(directory / "idp", name="subjects").start()
    other_idp = SamlIdP(directory / "other-idp", name="other").start()
    try:
        tenants = {}
        for tenant, source in (("acme", idp), ("globex", other_idp)):
            broker.add_tenant(tenant)
            metadata = directory / f"{tenant}-idp.xml"
            metadata.write_bytes(source.metadata_xml())
            broker.cli("idps", "add-saml", "--tenant", tenant, "--metadata", str(metadata), "--allow-idp-initiated")
            sp_metadata = SamlBrowser(broker, tenant).get(broker.url(f"/sso/{tenant}/saml/metadata")).content
            tenants[tenant] = source.trust_sp(sp_metadata)
        oidc = add_oidc_idp(broker, op, "acme", directory, client_id="tessera-acme-subjects")
        connector = add_client_with_grants(broker, "acme", "connector", SCOPES)
        plain = add_client_with_grants(broker, "acme", "no-policy", SCOPES)
        other = add_client_with_grants(broker, "globex", "globex-connector", SCOPES)
        put_policy(broker, "acme", {"exchange": [
            {"id": "people", "effect": "allow", "clients": [connector.client_id],
             "subject_token_types": ["saml2", "id_token"], "scopes": "crm:contacts.read", "actor": "optional",
             "dpop": "optional", "max_lifetime": 300},
        ]}, directory / "acme-policy.json")
        put_policy(broker, "globex", {"exchange": [
            {"id": "people", "effect": "allow", "clients": [other.client_id], "subject_token_types": ["saml2"],
             "scopes": "crm:contacts.read", "actor": "optional", "dpop": "optional"},
        ]}, directory / "globex-policy.json")
        yield SimpleNamespace(broker=broker, idp=idp, other_idp=other_idp, sp=tenants, op=op, oidc=oidc,
                              connector=connector, plain=plain, other=other)
    finally:
        idp.stop()
        other_idp.stop()
        pool.shutdown()


def saml2_token(w, user: SamlUser | None = None, tenant: str = "acme", idp: SamlIdP | None = None, **changes) -> str:
    source = idp or w.idp
    if user is not None:
        changes["user"] = user
    return b64url(assertion_of(source.unsolicited(w.sp[tenant], **changes)))


def id_token(w, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": w.op.issuer, "aud": "tessera-acme-subjects", "sub": "person-0042", "email": "p42@example.com",
              "email_verified": True, "iat": now, "exp": now + 600, **overrides}
    key = w.op.current_signing_key()
    header = {"alg": "RS256", "kid": key.as_dict()["kid"]}
    return authlib_jwt.encode(header, claims, key.as_dict(is_private=True)).decode("ascii")


def test_a_saml_assertion_of_the_tenants_idp_becomes_a_narrower_user_token(world):
    w = world
    token = saml2_token(w, SamlUser("ada@example.com"))
    response = exchange(w.broker, w.connector, token, "saml2", scope="crm:contacts.read")
    assert response.status_code == 200, describe(response)
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    claims = verify_access_token(w.broker, body["access_token"], audience=None)
    assert claims["sub"].startswith("saml|") and claims["sub"].endswith("|ada@example.com"), claims["sub"]
    assert claims["sub_type"] == "user" and claims["scope"] == "crm:contacts.read"
    assert claims["exp"] - claims["iat"] <= 300


def test_a_saml_assertion_is_single_use_also_across_the_acs(world):
    w = world
    token = saml2_token(w)
    assert exchange(w.broker, w.connector, token, "saml2").status_code == 200
    assert_oauth_error(exchange(w.broker, w.connector, token, "saml2"), "invalid_request")
    # An assertion that opened a session cannot be exchanged afterwards.
    response_xml = w.idp.unsolicited(w.sp["acme"])
    browser = SamlBrowser(w.broker, "acme", accept=JSON_ACCEPT)
    assert browser.post_acs(response_xml).status_code == 303
    assert_oauth_error(exchange(w.broker, w.connector, b64url(assertion_of(response_xml)), "saml2"), "invalid_request")


@pytest.mark.parametrize("change", ["audience", "recipient", "expired", "altered", "unsigned", "other_tenant"])
def test_a_saml_assertion_that_the_acs_would_refuse_is_refused(world, change):
    w = world
    if change == "audience":
        token = saml2_token(w, audiences=["https://other-sp.example/metadata"])
    elif change == "recipient":
        token = saml2_token(w, recipient="https://other-sp.example/acs")
    elif change == "expired":
        token = saml2_token(w, not_before=-1200, not_on_or_after=-600, scd_not_on_or_after=-600)
    elif change == "altered":
        document = etree.fromstring(assertion_of(w.idp.unsolicited(w.sp["acme"])))
        name_id = document.find(f".//{{{SAML_NS}}}NameID")
        name_id.text = "mallory@example.com"
        token = b64url(etree.tostring(document))
    elif change == "unsigned":
        token = saml2_token(w, sign="response")
    else:
        # globex's IdP, valid for globex's SP, presented by acme's connector.
        token = saml2_token(w, tenant="globex", idp=w.other_idp)
    response = exchange(w.broker, w.connector, token, "saml2")
    assert_oauth_error(response, "invalid_request")


def test_an_assertion_for_the_other_tenant_works_only_there(world):
    w = world
    token = saml2_token(w, tenant="globex", idp=w.other_idp)
    response = exchange(w.broker, w.other, token, "saml2")
    assert response.status_code == 200, describe(response)
    assert unverified_claims(response.json()["access_token"])["tid"] == "globex"


def test_an_id_token_of_the_tenants_provider_becomes_a_user_token_without_a_nonce(world):
    w = world
    response = exchange(w.broker, w.connector, id_token(w), "id_token", scope="crm:contacts.read")
    assert response.status_code == 200, describe(response)
    claims = unverified_claims(response.json()["access_token"])
    assert claims["sub"].startswith("oidc|") and claims["sub"].endswith("|person-0042"), claims["sub"]
    assert claims["sub_type"] == "user"


@pytest.mark.parametrize("overrides", [{"aud": "someone-else"}, {"iss": "https://evil.example"},
                                       {"exp": int(time.time()) - 3600}])
def test_an_id_token_for_another_audience_issuer_or_expired_is_refused(world, overrides):
    assert_oauth_error(exchange(world.broker, world.connector, id_token(world, **overrides), "id_token"), "invalid_request")


def test_the_policy_and_the_client_registration_bound_a_person_token(world):
    w = world
    # Beyond the policy's scopes.
    denied = exchange(w.broker, w.connector, saml2_token(w), "saml2", scope="crm:contacts.write")
    assert denied.status_code in (400, 403), describe(denied)
    # Beyond the client's registration.
    assert_oauth_error(exchange(w.broker, w.connector, saml2_token(w), "saml2", scope="billing:invoices.read"),
                       "invalid_scope")
    # No rule for this client: deny by default.
    refused = exchange(w.broker, w.plain, saml2_token(w), "saml2")
    assert refused.status_code in (400, 403), describe(refused)


def test_a_person_token_cannot_be_an_actor(world):
    w = world
    subject = exchange(w.broker, w.connector, saml2_token(w), "saml2").json()["access_token"]
    response = exchange(w.broker, w.connector, subject, "access_token", actor_token=id_token(w), actor_token_type="id_token")
    assert_oauth_error(response, "invalid_request")


def test_no_assertion_content_reaches_the_audit_trail(world):
    w = world
    secret_name = "hidden-attribute-value-9f31"
    token = saml2_token(w, SamlUser("grace@example.com", attributes={"displayName": [secret_name]}))
    exchange(w.broker, w.connector, token, "saml2")
    text = str(audit_export(w.broker))
    assert secret_name not in text and token[:40] not in text
