"""Sign-in through a tenant's SAML 2.0 IdP (issue 3): the happy paths.

A real IdP built on pysaml2 (saml_idp.py) runs in the test process on loopback; the broker is set
up through its CLI (`tenants add`, `idps add-saml`), the IdP trusts the SP metadata the broker
serves, and a browser (`requests.Session`, redirects followed by hand) goes login -> IdP (signed
AuthnRequest by HTTP-Redirect) -> auto-post form -> ACS -> /session -> logout. Signed assertion,
signed response, both, encrypted assertion (AES-128/256-CBC, AES-128/256-GCM, RSA-OAEP), ECDSA,
key rollover, SHA-1 opt-in, metadata refresh over HTTP (a failed or unparseable refresh keeps the
last good copy, audited), the SP metadata, the presets and group roles, IdP-initiated sign-in,
return_to, the session and the audit trail. Refusals: test_saml_refusals.py; set-up, forms and
cross-tenant: test_saml_setup.py.

Skipped (module fixture) until the broker has `tessera idps add-saml`.

PYTEST_DONT_REWRITE: assertions are not rewritten, so that a failure shows only its message and
never an assertion, a cookie or a key compared in it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from saml_idp import (idps_reset_around, ACCEPTS, CONTENT_ENCRYPTION, DIGEST_SHA1, DIGEST_SHA384, DIGEST_SHA512, HTTP_TIMEOUT,
                      JSON_ACCEPT, LOGIN_COOKIE, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED,
                      NS, SESSION_COOKIE, SESSION_SECRETS, SIG_RSA_SHA1, SIG_RSA_SHA384, SIG_RSA_SHA512, SamlBrowser,
                      SamlIdP, SamlUser, add_saml_idp, audit_count, audit_records, audit_text, cert_from_b64,
                      check_accepted, check_login_redirect, check_refusal_response, decode_authn_request, encode_response,
                      is_cleared, leaks_in, new_saml_broker, parse_xml, redirect_signature_valid, require_saml_endpoints,
                      response_secrets, set_cookies, sign_in, subject_of)
from support import BrokerPool, describe

MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
DISPLAY_NAME = "urn:oid:2.16.840.1.113730.3.1.241"
ENTRA_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ENTRA_TENANT = "http://schemas.microsoft.com/identity/claims/tenantid"
MS_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
MS_ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
XMLSOAP_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
XMLSOAP_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
XMLSOAP_GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
XMLSOAP_SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
SUBJECT_ID = "urn:oasis:names:tc:SAML:attribute:subject-id"
EDU_UNIQUE_ID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13"
EPPN = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
IS_MEMBER_OF = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"

ACME_USER = SamlUser("ada-7f3a", NAMEID_PERSISTENT,
                     {MAIL: ["Ada.Lovelace@Example.COM"], DISPLAY_NAME: ["Ada Lovelace-Zeta"],
                      "groups": ["admins", "engineering", "grp-unmapped-7f3a"]},
                     {MAIL: "mail", DISPLAY_NAME: "displayName"})
ENTRA_USER = SamlUser("grace@contoso.example", NAMEID_EMAIL,
                      {ENTRA_OID: ["6f1c4a1e-0000-4000-8000-00000000e001"],
                       ENTRA_TENANT: ["b7d0c2a9-0000-4000-8000-0000000000f1"],
                       XMLSOAP_EMAIL: ["grace@contoso.example"], XMLSOAP_NAME: ["grace@contoso.example"],
                       XMLSOAP_GIVEN: ["Grace"], XMLSOAP_SURNAME: ["Hopper"], MS_GROUPS: ["grp-entra-admins"]})
ADFS_USER = SamlUser("CONTOSO\\bob", NAMEID_UNSPECIFIED,
                     {XMLSOAP_EMAIL: ["bob@contoso.example"], XMLSOAP_NAME: ["CONTOSO\\bob"],
                      MS_GROUPS: ["Domain Users", "adfs-admins"]})
OKTA_USER = SamlUser("okta@example.com", NAMEID_EMAIL,
                     {"email": ["okta@example.com"], "firstName": ["Ok"], "lastName": ["Ta"],
                      "groups": ["Everyone", "okta-admins"]})
GOOGLE_USER = SamlUser("linus@example.com", NAMEID_EMAIL, {})
SHIB_USER = SamlUser("AAdzZWNyZXQxeq0h1nN+", NAMEID_PERSISTENT,
                     {SUBJECT_ID: ["a1b2c3@example.edu"], EDU_UNIQUE_ID: ["0123456789abcdef@example.edu"],
                      EPPN: ["ada@example.edu"], MAIL: ["ada@example.edu"], DISPLAY_NAME: ["Ada of Edu"],
                      IS_MEMBER_OF: ["urn:mace:example.edu:staff"]},
                     {SUBJECT_ID: "subject-id", EDU_UNIQUE_ID: "eduPersonUniqueId", EPPN: "eduPersonPrincipalName",
                      MAIL: "mail", DISPLAY_NAME: "displayName", IS_MEMBER_OF: "isMemberOf"})
# Attribute values that are neither the subject nor the e-mail: never in the audit trail.
PRIVATE_VALUES = ["Ada Lovelace-Zeta", "grp-unmapped-7f3a", "b7d0c2a9-0000-4000-8000-0000000000f1", "Hopper",
                  "okta-admins", "urn:mace:example.edu:staff"]


@pytest.fixture(scope="module", autouse=True)
def saml_endpoints():
    require_saml_endpoints()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    pool = BrokerPool(tmp_path_factory.mktemp("saml-signin"))
    b = new_saml_broker(pool.new)
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def idps(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saml-idps")
    made = SimpleNamespace(
        main=SamlIdP(directory / "main", name="main").start(),
        rollover=SamlIdP(directory / "rollover", name="rollover", metadata_keys=["rsa", "rsa2"]).start(),
        ecdsa=SamlIdP(directory / "ecdsa", name="ecdsa", signing_key="ec").start(),
    )
    yield made
    for idp in vars(made).values():
        idp.stop()


@pytest.fixture(autouse=True)
def fresh_idps(idps):
    yield from idps_reset_around(idps)


@pytest.fixture(scope="module")
def tenants(broker, idps):
    names = ("acme", "resp", "both", "trusted", "ecdsa", "rollover", "sha1", "idpinit", "prefixed", "entra", "adfs",
             "okta", "google", "shib")
    for name in names:
        broker.add_tenant(name)
    main = idps.main
    return SimpleNamespace(
        acme=add_saml_idp(broker, main, "acme", group_roles=("admins=tenant_admin",), user=ACME_USER),
        resp=add_saml_idp(broker, main, "resp", signed="response", defaults={"sign": "response"}),
        both=add_saml_idp(broker, main, "both", signed="both", defaults={"sign": "both"}),
        trusted=add_saml_idp(broker, main, "trusted", trust_email=True, user=ACME_USER),
        ecdsa=add_saml_idp(broker, idps.ecdsa, "ecdsa"),
        rollover=add_saml_idp(broker, idps.rollover, "rollover"),
        sha1=add_saml_idp(broker, main, "sha1", allow_sha1=True,
                          defaults={"sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1}),
        idpinit=add_saml_idp(broker, main, "idpinit", allow_idp_initiated=True,
                             return_to_prefixes=("/session", "/admin")),
        prefixed=add_saml_idp(broker, main, "prefixed", return_to_prefixes=("/admin", "/reports")),
        entra=add_saml_idp(broker, main, "entra", preset="entra", user=ENTRA_USER,
                           group_roles=("grp-entra-admins=tenant_admin",)),
        adfs=add_saml_idp(broker, main, "adfs", preset="adfs", user=ADFS_USER, group_roles=("adfs-admins=tenant_admin",)),
        okta=add_saml_idp(broker, main, "okta", preset="okta", user=OKTA_USER, group_roles=("okta-admins=tenant_admin",)),
        google=add_saml_idp(broker, main, "google", preset="google", user=GOOGLE_USER),
        shib=add_saml_idp(broker, main, "shib", preset="shibboleth", user=SHIB_USER,
                          group_roles=("urn:mace:example.edu:staff=tenant_admin",)),
    )


# ----------------------------------------------------------------------------------------------
# Set-up as the sign-in sees it: add-saml and the SP metadata


def test_add_saml_audits_idp_added_for_each_tenant(broker, tenants):
    for rec in vars(tenants).values():
        records = [r for r in audit_records(broker, rec.tenant) if r.get("action") == "idp.added"]
        assert records, f"no idp.added record for {rec.tenant}"


def sp_metadata(broker, tenant: str) -> tuple[requests.Response, object]:
    response = requests.get(broker.url(f"/sso/{tenant}/saml/metadata"), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, describe(response)
    return response, parse_xml(response.content)


def test_sp_metadata_describes_the_sp_with_rsa_2048_signing_and_encryption_certificates(broker, tenants):
    rec = tenants.acme
    response, root = sp_metadata(broker, "acme")
    assert response.headers.get("Content-Type", "").startswith("application/samlmetadata+xml"), \
        f"Content-Type {response.headers.get('Content-Type')!r}"
    assert root.tag == "{urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor"
    assert root.get("entityID") == rec.sp_entity_id == f"{broker.issuer}/sso/acme/saml/metadata"
    descriptors = root.findall("md:SPSSODescriptor", NS)
    assert len(descriptors) == 1, f"{len(descriptors)} SPSSODescriptor elements"
    sp = descriptors[0]
    assert "urn:oasis:names:tc:SAML:2.0:protocol" in sp.get("protocolSupportEnumeration", "")
    assert sp.get("AuthnRequestsSigned") == "true", f"AuthnRequestsSigned {sp.get('AuthnRequestsSigned')!r}"
    assert sp.get("WantAssertionsSigned") == "true", f"WantAssertionsSigned {sp.get('WantAssertionsSigned')!r}"
    certs = {}
    for use in ("signing", "encryption"):
        found = sp.findall(f"md:KeyDescriptor[@use='{use}']/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
        assert found, f"no KeyDescriptor use={use} with an X509Certificate"
        for element in found:
            public = cert_from_b64(element.text).public_key()
            assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048, f"{use} key is not RSA-2048"
        certs[use] = {"".join(e.text.split()) for e in found}
    methods = [m.get("Algorithm") for m in sp.iterfind("md:KeyDescriptor[@use='encryption']/md:EncryptionMethod", NS)]
    assert methods, "no EncryptionMethod in the encryption KeyDescriptor"
    allowed = {CONTENT_ENCRYPTION[name][0] for name in CONTENT_ENCRYPTION} | {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2009/xmlenc11#rsa-oaep"}
    assert set(methods) <= allowed, f"EncryptionMethod outside what the ACS accepts: {sorted(set(methods) - allowed)}"
    assert sp.findall("md:NameIDFormat", NS), "no NameIDFormat"
    acs = [(a.get("Binding"), a.get("Location")) for a in sp.iterfind("md:AssertionConsumerService", NS)]
    assert acs == [("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", rec.acs_url)], f"AssertionConsumerService {acs}"
    text = response.text
    assert "PRIVATE KEY" not in text and "<ds:RSAKeyValue" not in text, "private key material in the SP metadata"


def test_sp_metadata_wants_assertions_signed_unless_the_tenant_chose_a_signed_response(broker, tenants):
    for tenant, want in (("resp", "false"), ("both", "true"), ("sha1", "true")):
        _, root = sp_metadata(broker, tenant)
        assert root.find("md:SPSSODescriptor", NS).get("WantAssertionsSigned") == want, \
            f"{tenant}: WantAssertionsSigned {root.find('md:SPSSODescriptor', NS).get('WantAssertionsSigned')!r}"


def test_each_tenant_has_its_own_sp_entity_id_and_acs(broker, tenants):
    seen = {(rec.sp_entity_id, rec.acs_url) for rec in vars(tenants).values()}
    assert len(seen) == len(vars(tenants)), "two tenants share an SP entityID or ACS"


def test_sp_metadata_of_a_tenant_without_saml_or_an_unknown_tenant_is_not_served(broker, tenants):
    broker.add_tenant("no-saml-md")
    for tenant in ("no-saml-md", "no-such-tenant-md"):
        response = requests.get(broker.url(f"/sso/{tenant}/saml/metadata"), timeout=HTTP_TIMEOUT)
        assert response.status_code in (400, 404), describe(response)
        assert "EntityDescriptor" not in response.text


# ----------------------------------------------------------------------------------------------
# Login: the AuthnRequest


def test_login_redirect_carries_an_authn_request_whose_signature_verifies_with_the_sp_metadata_certificate(
        broker, tenants):
    rec = tenants.acme
    browser = SamlBrowser(broker, "acme")
    login = browser.login("/session")
    assert login.status_code == 302, describe(login)
    location = login.headers["Location"]
    _, root = sp_metadata(broker, "acme")
    signing = ["".join(e.text.split()) for e in root.iterfind(
        "md:SPSSODescriptor/md:KeyDescriptor[@use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    valid, why = redirect_signature_valid(urlsplit(location).query, signing)
    assert valid, f"the AuthnRequest's redirect signature does not verify with the SP metadata certificate: {why}"
    encryption = ["".join(e.text.split()) for e in root.iterfind(
        "md:SPSSODescriptor/md:KeyDescriptor[@use='encryption']/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    if set(encryption) != set(signing):
        assert not redirect_signature_valid(urlsplit(location).query, encryption)[0], "signed with the encryption key"
    # The IdP (pysaml2) reads it, checks the signature over the raw query, the ACS against the metadata.
    answer = requests.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200, f"the IdP refused the AuthnRequest: {answer.text[:300]}"
    info = rec.idp.request_by_id(answer.headers["X-Test-AuthnRequest-ID"])
    assert info.pysaml2_error is None, f"pysaml2 refused the AuthnRequest: {info.pysaml2_error}"
    check_login_redirect(browser, rec)


def test_authn_request_is_fresh_and_each_login_has_its_own_request_id_and_cookie(broker, tenants):
    seen = []
    for _ in range(3):
        browser = SamlBrowser(broker, "acme")
        login = browser.login("/session")
        assert login.status_code == 302, describe(login)
        request = decode_authn_request(login.headers["Location"])
        issued = time.mktime(time.strptime(request.get("IssueInstant")[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert abs(issued - time.time()) < 120, f"IssueInstant {request.get('IssueInstant')} is not now"
        seen.append((request.get("ID"), set_cookies(login)[LOGIN_COOKIE]["value"]))
    for index in range(2):
        values = [item[index] for item in seen]
        assert len(set(values)) == 3, "a request ID or login cookie repeats across logins"


# ----------------------------------------------------------------------------------------------
# Signed assertion, signed response, both


def test_signed_assertion_sign_in_opens_a_session_with_the_normalized_identity(broker, tenants):
    rec = tenants.acme
    before = {a: audit_count(broker, "acme", a) for a in ("signin.succeeded", "user.provisioned")}
    result = sign_in(broker, rec)
    identity = result.identity
    assert identity["subject"] == subject_of(rec, "ada-7f3a"), f"subject {identity['subject']!r}"
    assert identity["email"] == "ada.lovelace@example.com", f"email {identity['email']!r} (must be lower-cased)"
    assert identity["email_verified"] is False, "email_verified without --trust-email"
    assert identity["name"] == "Ada Lovelace-Zeta", identity
    assert sorted(identity["groups"]) == ["admins", "engineering", "grp-unmapped-7f3a"], identity["groups"]
    assert identity["roles"] == ["tenant_admin"], "--group-role admins=tenant_admin not applied"
    assert identity["expires_at"], identity
    records = [r for r in audit_records(broker, "acme") if r.get("action") in ("signin.succeeded", "user.provisioned")]
    succeeded = [r for r in records if r["action"] == "signin.succeeded"]
    assert len(succeeded) == before["signin.succeeded"] + 1, "not one signin.succeeded record"
    assert "saml" in str(succeeded[-1].get("reason", "")).lower(), f"reason {succeeded[-1].get('reason')!r}"
    assert succeeded[-1].get("outcome") == "success" and succeeded[-1].get("actor", {}).get("type") == "user"
    provisioned = [r for r in records if r["action"] == "user.provisioned"]
    assert len(provisioned) == before["user.provisioned"] + 1, "not one user.provisioned record"


def test_signed_response_sign_in_for_a_tenant_that_chose_response(broker, tenants):
    result = sign_in(broker, tenants.resp)
    root = parse_xml(result.answer.xml)
    assert root.find("ds:Signature", NS) is not None and root.find("saml:Assertion/ds:Signature", NS) is None
    assert result.identity["subject"] == subject_of(tenants.resp, "ada@example.com")


def test_signed_response_and_assertion_sign_in_for_a_tenant_that_chose_both(broker, tenants):
    result = sign_in(broker, tenants.both)
    root = parse_xml(result.answer.xml)
    assert root.find("ds:Signature", NS) is not None and root.find("saml:Assertion/ds:Signature", NS) is not None
    assert result.identity["subject"] == subject_of(tenants.both, "ada@example.com")


def test_assertion_tenant_accepts_a_response_signed_as_well(broker, tenants):
    result = sign_in(broker, tenants.acme, sign="both")
    assert result.identity["subject"] == subject_of(tenants.acme, "ada-7f3a")


@pytest.mark.parametrize("alg", [(SIG_RSA_SHA384, DIGEST_SHA384), (SIG_RSA_SHA512, DIGEST_SHA512)],
                         ids=["rsa-sha384", "rsa-sha512"])
def test_rsa_sha384_and_sha512_signatures_are_accepted(broker, tenants, alg):
    sign_in(broker, tenants.acme, sign_alg=alg[0], digest_alg=alg[1])


def test_base64_in_lines_of_76_characters_is_accepted(broker, tenants):
    sign_in(broker, tenants.acme, line_length=76)


def test_conditions_within_the_60_second_clock_skew_are_accepted(broker, tenants):
    sign_in(broker, tenants.acme, not_before=30, not_on_or_after=600)
    sign_in(broker, tenants.acme, not_before=-600, not_on_or_after=-30, scd_not_on_or_after=300)


# ----------------------------------------------------------------------------------------------
# Encrypted assertions, ECDSA, key rollover, SHA-1 opt-in


@pytest.mark.parametrize("encryption", sorted(CONTENT_ENCRYPTION))
def test_encrypted_assertion_is_decrypted_with_the_sp_key(broker, tenants, encryption):
    result = sign_in(broker, tenants.acme, encrypt=encryption)
    root = parse_xml(result.answer.xml)
    assert root.find("saml:EncryptedAssertion", NS) is not None and root.find("saml:Assertion", NS) is None
    assert result.identity["subject"] == subject_of(tenants.acme, "ada-7f3a")


def test_encrypted_assertion_in_a_signed_response_for_a_response_tenant(broker, tenants):
    result = sign_in(broker, tenants.resp, encrypt="aes256-gcm", sign="response")
    assert result.identity["subject"] == subject_of(tenants.resp, "ada@example.com")


def test_encrypted_and_doubly_signed_response_for_a_both_tenant(broker, tenants):
    sign_in(broker, tenants.both, encrypt="aes128-gcm", sign="both")


def test_ecdsa_p256_signed_assertion_is_accepted(broker, tenants):
    result = sign_in(broker, tenants.ecdsa)
    method = parse_xml(result.answer.xml).find("saml:Assertion/ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
    assert method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


def test_key_rollover_either_certificate_of_the_metadata_is_accepted(broker, tenants):
    for key in ("rsa", "rsa2"):
        sign_in(broker, tenants.rollover, signing_key=key)


def test_sha1_is_accepted_when_the_tenant_allows_it(broker, tenants):
    result = sign_in(broker, tenants.sha1)
    assert b"xmldsig#rsa-sha1" in result.answer.xml and b"xmldsig#sha1" in result.answer.xml


# ----------------------------------------------------------------------------------------------
# Presets and claims


def test_trust_email_marks_the_email_verified(broker, tenants):
    identity = sign_in(broker, tenants.trusted).identity
    assert identity["email"] == "ada.lovelace@example.com" and identity["email_verified"] is True, identity


def test_entra_preset_takes_the_objectidentifier_as_the_stable_subject(broker, tenants):
    rec = tenants.entra
    identity = sign_in(broker, rec).identity
    assert identity["subject"] == subject_of(rec, "6f1c4a1e-0000-4000-8000-00000000e001"), identity["subject"]
    assert identity["email"] == "grace@contoso.example", identity
    assert identity["name"] == "Grace Hopper", identity
    assert identity["groups"] == ["grp-entra-admins"] and identity["roles"] == ["tenant_admin"], identity


def test_entra_preset_keeps_the_subject_when_the_name_id_changes(broker, tenants):
    rec = tenants.entra
    first = sign_in(broker, rec).identity
    other = SamlUser("grace.hopper@contoso.example", NAMEID_EMAIL, dict(ENTRA_USER.attributes))
    second = sign_in(broker, rec, user=other).identity
    assert first["subject"] == second["subject"], "the Entra subject followed the NameID"


def test_adfs_preset_takes_the_name_id_and_the_xmlsoap_claims(broker, tenants):
    rec = tenants.adfs
    identity = sign_in(broker, rec).identity
    assert identity["subject"] == subject_of(rec, "CONTOSO\\bob"), identity["subject"]
    assert identity["email"] == "bob@contoso.example", identity
    assert "adfs-admins" in identity["groups"] and identity["roles"] == ["tenant_admin"], identity


def test_okta_preset_takes_the_name_id_email_and_groups(broker, tenants):
    rec = tenants.okta
    identity = sign_in(broker, rec).identity
    assert identity["subject"] == subject_of(rec, "okta@example.com"), identity["subject"]
    assert identity["email"] == "okta@example.com" and identity["name"] == "Ok Ta", identity
    assert sorted(identity["groups"]) == ["Everyone", "okta-admins"] and identity["roles"] == ["tenant_admin"], identity


def test_google_preset_takes_the_email_name_id(broker, tenants):
    rec = tenants.google
    identity = sign_in(broker, rec).identity
    assert identity["subject"] == subject_of(rec, "linus@example.com") and identity["email"] == "linus@example.com"
    assert identity["groups"] == [] and identity["roles"] == [], identity


SHIB_FALLBACKS = {
    "subject-id": (SHIB_USER, "a1b2c3@example.edu"),
    "edu-person-unique-id": (SamlUser(SHIB_USER.name_id, NAMEID_PERSISTENT,
                                      {k: v for k, v in SHIB_USER.attributes.items() if k != SUBJECT_ID},
                                      SHIB_USER.friendly_names), "0123456789abcdef@example.edu"),
    "persistent-name-id": (SamlUser(SHIB_USER.name_id, NAMEID_PERSISTENT,
                                    {k: v for k, v in SHIB_USER.attributes.items()
                                     if k not in (SUBJECT_ID, EDU_UNIQUE_ID)},
                                    SHIB_USER.friendly_names), SHIB_USER.name_id),
    "eppn-with-a-transient-name-id": (SamlUser("_transient-7d1c", NAMEID_TRANSIENT,
                                               {k: v for k, v in SHIB_USER.attributes.items()
                                                if k not in (SUBJECT_ID, EDU_UNIQUE_ID)},
                                               SHIB_USER.friendly_names), "ada@example.edu"),
}


@pytest.mark.parametrize("which", sorted(SHIB_FALLBACKS))
def test_shibboleth_preset_stable_subject_is_subject_id_then_unique_id_then_persistent_name_id_then_eppn(
        broker, tenants, which):
    rec = tenants.shib
    user, stable = SHIB_FALLBACKS[which]
    identity = sign_in(broker, rec, user=user).identity
    assert identity["subject"] == subject_of(rec, stable), f"subject {identity['subject']!r}"
    assert identity["email"] == "ada@example.edu" and identity["roles"] == ["tenant_admin"], identity


def test_same_name_id_at_two_tenants_gives_two_subjects(broker, tenants):
    one = sign_in(broker, tenants.resp).identity
    two = sign_in(broker, tenants.both).identity
    assert one["subject"] != two["subject"] and one["tenant"] != two["tenant"], (one["subject"], two["subject"])


def test_identity_is_updated_on_each_sign_in(broker, tenants):
    rec = tenants.okta
    first = sign_in(broker, rec).identity
    renamed = SamlUser(OKTA_USER.name_id, NAMEID_EMAIL,
                       {"email": ["okta.renamed@example.com"], "firstName": ["Renamed"], "lastName": ["Ta"],
                        "groups": ["Everyone"]})
    second = sign_in(broker, rec, user=renamed).identity
    assert second["subject"] == first["subject"], second
    assert second["email"] == "okta.renamed@example.com" and second["name"] == "Renamed Ta", second
    assert second["groups"] == ["Everyone"] and second["roles"] == [], "roles not recomputed from the new groups"


# ----------------------------------------------------------------------------------------------
# return_to and RelayState


def test_return_to_path_with_a_query_is_where_the_acs_sends_the_browser(broker, tenants):
    sign_in(broker, tenants.acme, return_to="/admin/users?page=2&sort=name")


def test_return_to_defaults_to_session(broker, tenants):
    sign_in(broker, tenants.acme, return_to=None)


def test_return_to_under_a_configured_prefix_is_accepted(broker, tenants):
    sign_in(broker, tenants.prefixed, return_to="/admin/users")
    sign_in(broker, tenants.prefixed, return_to="/reports/2024")


@pytest.mark.parametrize("return_to", ["/session", "/settings", "/", "/administrator", "/reportsx"])
def test_return_to_outside_the_configured_prefixes_is_refused_with_400(broker, tenants, return_to):
    for accept in ACCEPTS:
        browser = SamlBrowser(broker, "prefixed", accept=accept)
        response = browser.login(return_to)
        assert "Location" not in response.headers, f"return_to {return_to!r} outside the prefixes was redirected"
        check_refusal_response(response, 400, "invalid_request", accept, {})
        assert LOGIN_COOKIE not in set_cookies(response), "a refused login set the login cookie"


DOT_SEGMENTS = {
    "/admin/../session": "return_to=/admin/../session",
    "/reports/../../session": "return_to=/reports/../../session",
    "/admin/./../settings": "return_to=/admin/./../settings",
    "/admin/%2e%2e/session": "return_to=/admin/%252e%252e/session",
    "/admin/%2E%2E/session": "return_to=/admin/%252E%252E/session",
}


@pytest.mark.parametrize("return_to", sorted(DOT_SEGMENTS))
def test_return_to_with_dot_segments_cannot_leave_the_allowed_prefixes(broker, tenants, return_to):
    """A browser resolves `/admin/../session` (and `%2e%2e`, WHATWG URL) to `/session` before it
    follows the redirect: under `/admin` only in appearance, so refused like `/session` itself."""
    for accept in ACCEPTS:
        browser = SamlBrowser(broker, "prefixed", accept=accept)
        response = browser.login(raw_query=DOT_SEGMENTS[return_to])
        assert "Location" not in response.headers, f"return_to {return_to!r} escapes the prefixes /admin, /reports"
        check_refusal_response(response, 400, "invalid_request", accept, {})


OPEN_REDIRECTS = ["https://evil.example", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
                  "javascript:alert(1)", "evil.example", "session", "/\tevil", "/session\r\nSet-Cookie: x=y",
                  "http:/evil.example", "data:text/html,hi"]


@pytest.mark.parametrize("return_to", OPEN_REDIRECTS, ids=[repr(v) for v in OPEN_REDIRECTS])
def test_return_to_that_is_not_a_local_path_is_refused_with_400(broker, tenants, return_to):
    for accept in ACCEPTS:
        browser = SamlBrowser(broker, "acme", accept=accept)
        response = browser.login(return_to)
        assert "Location" not in response.headers, f"return_to {return_to!r} was redirected"
        check_refusal_response(response, 400, "invalid_request", accept, {})
        assert LOGIN_COOKIE not in set_cookies(response)


def never_redirected_elsewhere(browser, response, rec, return_to: str) -> None:
    """Accepted with a redirect to `return_to`, or refused (400/403, no session): never elsewhere."""
    if response.status_code == 303:
        check_accepted(browser, response, rec, return_to)
        return
    assert response.status_code in (400, 403), describe(response)
    assert "Location" not in response.headers, "a refusal redirected"
    cookie = set_cookies(response).get(SESSION_COOKIE)
    assert cookie is None or not cookie.get("value"), "a refusal set a session cookie"


@pytest.mark.parametrize("relay_state", ["https://evil.example/", "/elsewhere"])
def test_relay_state_does_not_override_the_return_to_of_an_sp_initiated_sign_in(broker, tenants, relay_state):
    rec = tenants.acme
    browser = SamlBrowser(broker, "acme")
    answer = browser.to_idp(rec.idp, "/admin/settings")
    never_redirected_elsewhere(browser, browser.post_acs(answer.saml_response, relay_state), rec, "/admin/settings")


# ----------------------------------------------------------------------------------------------
# IdP-initiated


def post_unsolicited(broker, rec, relay_state: str | None = None, **changes):
    browser = SamlBrowser(broker, rec.tenant)
    xml = rec.idp.unsolicited(rec.sp_entity_id, rec.acs_url, **changes)
    return browser, browser.post_acs(xml, relay_state)


def test_idp_initiated_response_is_accepted_when_the_tenant_allows_it(broker, tenants):
    rec = tenants.idpinit
    browser, response = post_unsolicited(broker, rec)
    identity = check_accepted(browser, response, rec, "/session")
    assert identity["subject"] == subject_of(rec, "ada@example.com")


def test_idp_initiated_relay_state_under_a_prefix_is_the_return_to(broker, tenants):
    rec = tenants.idpinit
    browser, response = post_unsolicited(broker, rec, "/admin/dashboard")
    check_accepted(browser, response, rec, "/admin/dashboard")


@pytest.mark.parametrize("relay_state", ["https://evil.example/", "//evil.example", "/reports/x", "javascript:alert(1)"])
def test_idp_initiated_relay_state_that_is_not_allowed_never_becomes_the_redirect(broker, tenants, relay_state):
    rec = tenants.idpinit
    browser, response = post_unsolicited(broker, rec, relay_state)
    never_redirected_elsewhere(browser, response, rec, "/session")


# ----------------------------------------------------------------------------------------------
# Session


def test_logout_ends_the_session_on_the_server_and_clears_the_cookie(broker, tenants):
    result = sign_in(broker, tenants.acme)
    ended = audit_count(broker, "acme", "session.ended")
    response = result.browser.logout()
    assert response.status_code == 204, describe(response)
    cookie = set_cookies(response).get(SESSION_COOKIE)
    assert cookie is not None and is_cleared(cookie), "logout did not clear the session cookie"
    after = result.browser.session_info()
    assert after.status_code == 401 and after.json().get("error") == "login_required", describe(after)
    replay = requests.get(broker.url("/session"), cookies={SESSION_COOKIE: result.session_cookie},
                          headers={"Accept": JSON_ACCEPT}, timeout=HTTP_TIMEOUT)
    assert replay.status_code == 401, describe(replay)
    assert audit_count(broker, "acme", "session.ended") == ended + 1, "no session.ended record"


def test_each_sign_in_opens_a_new_session_with_its_own_cookie(broker, tenants):
    first = sign_in(broker, tenants.acme)
    second = sign_in(broker, tenants.acme)
    distinct = first.session_cookie != second.session_cookie
    assert distinct, "two sign-ins got the same session cookie"
    assert first.browser.logout().status_code == 204
    assert second.browser.session_info().status_code == 200, "logging out one session ended another"


def test_human_session_is_not_accepted_at_the_token_endpoint(broker, tenants):
    result = sign_in(broker, tenants.acme)
    response = requests.post(broker.token_endpoint, data={"grant_type": "client_credentials"},
                             cookies={SESSION_COOKIE: result.session_cookie}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 401 and response.json().get("error") == "invalid_client", describe(response)


# ----------------------------------------------------------------------------------------------
# Metadata refresh over HTTP (an IdP and a tenant of each test's own)


_refresh_tenants = iter(range(1, 10_000))


@pytest.fixture
def refreshing(broker, tmp_path):
    idp = SamlIdP(tmp_path / "refresh-idp", name=f"refresh{next(_refresh_tenants)}").start()
    tenant = f"refresh-{idp.name}"
    broker.add_tenant(tenant)
    rec = add_saml_idp(broker, idp, tenant, metadata=idp.metadata_url, refresh_interval=5)
    assert rec.added.get("metadata_source") == idp.metadata_url, rec.added
    yield rec
    idp.stop()


def wait_for_audit(broker, tenant: str, action: str, count: int, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while audit_count(broker, tenant, action) < count:
        assert time.monotonic() < deadline, f"no {count}th {action} record within {timeout} s (--refresh-interval 5)"
        time.sleep(1)


def test_metadata_refresh_over_http_picks_up_a_new_key_and_a_new_sso_url(broker, refreshing):
    rec = refreshing
    idp = rec.idp
    sign_in(broker, rec)
    refreshed = audit_count(broker, rec.tenant, "idp.metadata_refreshed")
    moved = f"{idp.base_url}/idp/sso-v2"
    idp.metadata_keys = ["rsa2"]
    idp.serve_metadata(idp.metadata_xml(["rsa2"], sso_url=moved))
    # Two refreshes after the change: the second surely fetched the new document.
    wait_for_audit(broker, rec.tenant, "idp.metadata_refreshed", refreshed + 2)
    browser = SamlBrowser(broker, rec.tenant)
    login = browser.login("/session")
    assert login.status_code == 302 and login.headers["Location"].startswith(moved + "?"), \
        "the login does not use the SSO URL of the refreshed metadata (only the keys were refreshed?)"
    idp.signing_key = "rsa2"
    try:
        answer = browser.to_idp(idp, "/session")
        check_accepted(browser, browser.post_acs(answer.saml_response), rec)
        old_key = SamlBrowser(broker, rec.tenant)
        idp.next_response(signing_key="rsa")
        answer = old_key.to_idp(idp, "/session")
        refused = old_key.post_acs(answer.saml_response, accept=JSON_ACCEPT)
        check_refusal_response(refused, 403, "access_denied", JSON_ACCEPT, {})
    finally:
        idp.signing_key = "rsa"


BROKEN_METADATA = {
    "unparseable": (b"<md:EntityDescriptor this is not xml", 200),
    "server-error": (b"the metadata service is down", 503),
    "no-signing-certificate": (None, 200),
}


def test_failed_or_unparseable_refresh_keeps_the_last_good_copy_and_is_audited(broker, refreshing):
    rec = refreshing
    idp = rec.idp
    sign_in(broker, rec)
    for name, (body, status) in BROKEN_METADATA.items():
        if body is None:
            body = idp.metadata_xml([])  # well-formed, but no KeyDescriptor at all
        failed = audit_count(broker, rec.tenant, "idp.metadata_refresh_failed")
        idp.serve_metadata(body, status)
        wait_for_audit(broker, rec.tenant, "idp.metadata_refresh_failed", failed + 2)
        record = [r for r in audit_records(broker, rec.tenant) if r.get("action") == "idp.metadata_refresh_failed"][-1]
        assert record.get("outcome") in ("failure", "denied"), f"{name}: outcome {record.get('outcome')!r}"
        assert "this is not xml" not in str(record), f"{name}: the audit record holds the document"
        sign_in(broker, rec)  # the last good copy still trusts the IdP's key and SSO URL
    refreshed = audit_count(broker, rec.tenant, "idp.metadata_refreshed")
    idp.serve_metadata(None)
    wait_for_audit(broker, rec.tenant, "idp.metadata_refreshed", refreshed + 1)
    sign_in(broker, rec)


def test_refresh_answered_404_keeps_the_last_good_copy_and_is_audited(broker, refreshing):
    rec = refreshing
    idp = rec.idp
    sign_in(broker, rec)
    failed = audit_count(broker, rec.tenant, "idp.metadata_refresh_failed")
    # The metadata URL answers 404 (the SSO endpoint stays up): unreachable metadata, not an IdP outage.
    idp.serve_metadata(b"not found", 404)
    wait_for_audit(broker, rec.tenant, "idp.metadata_refresh_failed", failed + 1)
    sign_in(broker, rec)


# ----------------------------------------------------------------------------------------------
# Hygiene, after all the traffic of this module (it makes its own if run alone)


def test_server_log_and_audit_export_hold_no_assertion_content_session_cookie_or_private_attribute(broker, tenants):
    rec = tenants.acme
    result = sign_in(broker, rec)
    assert result.browser.logout().status_code == 204
    refused = SamlBrowser(broker, "acme")
    rec.idp.next_response(audiences=["https://other-sp.example.test/"])
    answer = refused.to_idp(rec.idp)
    assert refused.post_acs(answer.saml_response, accept=JSON_ACCEPT).status_code == 403
    assert broker.log_text(), "the server wrote no log at trace level"
    secrets = {}
    for index, xml in enumerate(rec.idp.issued):
        for name, value in response_secrets(xml, encode_response(xml)).items():
            if not name.startswith(("NameID", "attribute value")):
                secrets[f"response {index}: {name}"] = value
    for index, cookie in enumerate(SESSION_SECRETS.get(broker.port, [])):
        secrets[f"session cookie {index}"] = cookie
    found = leaks_in(broker, secrets)
    assert not found, "; ".join(found[:10])
    text = audit_text(broker)
    for value in PRIVATE_VALUES:
        assert value not in text, "an attribute value other than the subject or e-mail is in the audit export"
    actions = {r.get("action") for r in audit_records(broker, "acme")}
    expected = {"idp.added", "signin.succeeded", "signin.failed", "user.provisioned", "session.ended"}
    assert expected <= actions, sorted(actions)
