"""The SAML test IdP (saml_idp.py) and the hostile-response toolkit (saml_hostile.py) checked on
their own, without the broker: the broker-dependent SAML modules are only as good as these.

A stand-in service provider made with pysaml2 (`Saml2Client`: its own SP metadata with signing and
encryption certificates, HTTP-Redirect AuthnRequests signed with RSA-SHA256) talks to the IdP over
its loopback HTTP endpoint. Each genuine response must verify with
`xmlsec1 --verify --pubkey-cert-pem <IdP cert> --id-attr:ID ...Assertion`, encrypted ones must
decrypt with `xmlsec1 --decrypt --privkey-pem <SP key>`, pysaml2's own SP must accept them, and
each hostile variant must be what it claims (saml_hostile.CASES, each with its proof).

PYTEST_DONT_REWRITE: assertions are not rewritten (as in the other interop modules).
"""

from __future__ import annotations

import base64
import warnings
from types import SimpleNamespace

import pytest
import requests

from saml_hostile import CASES, Ctx, case_options, hostile_response, main_assertion, naive_verify, tree, whole_text, \
    with_comment_in
from saml_idp import (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, CONTENT_ENCRYPTION, DIGEST_SHA1, KEY_TRANSPORT_RSA_OAEP,
                      NAMEID_EMAIL, NS, SIG_ECDSA_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256, XMLSEC1, SamlIdP,
                      SamlRequestError, SamlUser,
                      make_key_pair, parse_post_form, parse_xml, xmlsec_decrypt, xmlsec_verify)

pytestmark = pytest.mark.standalone

SP_ENTITY_ID = "http://127.0.0.1:9/sso/standin/saml/metadata"
SP_ACS = "http://127.0.0.1:9/sso/standin/saml/acs"


class StandInSP:
    """pysaml2's service provider, in place of the broker."""

    def __init__(self, directory, idps: list[SamlIdP]) -> None:
        from saml2.client import Saml2Client
        from saml2.config import SPConfig
        from saml2.metadata import create_metadata_string

        self.signing = make_key_pair(directory, "standin-sp-signing")
        self.encryption = make_key_pair(directory, "standin-sp-encryption")
        config = SPConfig().load({
            "entityid": SP_ENTITY_ID, "xmlsec_binary": XMLSEC1,
            "key_file": str(self.signing.key_path), "cert_file": str(self.signing.cert_path),
            "encryption_keypairs": [{"key_file": str(self.encryption.key_path),
                                     "cert_file": str(self.encryption.cert_path)}],
            "accepted_time_diff": 60,
            "service": {"sp": {
                "endpoints": {"assertion_consumer_service": [(SP_ACS, BINDING_HTTP_POST)]},
                "authn_requests_signed": True, "want_assertions_signed": True, "want_response_signed": False,
                "allow_unsolicited": True}},
            "metadata": {"inline": [idp.metadata_xml().decode() for idp in idps]},
        })
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.metadata = create_metadata_string(None, config=config, sign=False)
        self.client = Saml2Client(config=config)
        for idp in idps:
            idp.trust_sp(self.metadata)

    def redirect_url(self, idp: SamlIdP) -> tuple[str, str]:
        request_id, info = self.client.prepare_for_authenticate(entityid=idp.entity_id, binding=BINDING_HTTP_REDIRECT,
                                                                sigalg=SIG_RSA_SHA256, sign=True)
        return request_id, dict(info["headers"])["Location"]

    def round_trip(self, idp: SamlIdP, **changes):
        """AuthnRequest -> the IdP's HTTP endpoint -> its auto-post form: (request id, info, XML, base64)."""
        request_id, url = self.redirect_url(idp)
        if changes:
            idp.next_response(**changes)
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, f"IdP: HTTP {answer.status_code} {answer.text[:300]}"
        action, inputs = parse_post_form(answer.text)
        assert action == SP_ACS, action
        info = idp.request_by_id(answer.headers["X-Test-AuthnRequest-ID"])
        assert info is not None and info.id == request_id
        return request_id, info, base64.b64decode(inputs["SAMLResponse"]), inputs["SAMLResponse"]

    def accepts(self, saml_response_b64: str, request_id: str | None):
        outstanding = {request_id: "/"} if request_id else {}
        return self.client.parse_authn_request_response(saml_response_b64, BINDING_HTTP_POST, outstanding=outstanding)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saml-selfcheck")
    idp = SamlIdP(directory / "idp", name="selfcheck").start()
    rollover = SamlIdP(directory / "rollover", name="rollover", metadata_keys=["rsa", "rsa2"]).start()
    ecdsa = SamlIdP(directory / "ecdsa", name="ecdsa", signing_key="ec").start()
    sp = StandInSP(directory / "sp", [idp, rollover, ecdsa])
    yield SimpleNamespace(idp=idp, rollover=rollover, ecdsa=ecdsa, sp=sp)
    for each in (idp, rollover, ecdsa):
        each.stop()


@pytest.fixture(autouse=True)
def clean_idps(world):
    for each in (world.idp, world.rollover, world.ecdsa):
        each.reset()
    yield
    pending = world.idp.pending_next()
    for each in (world.idp, world.rollover, world.ecdsa):
        each.reset()
    assert not pending, f"prepared responses never used: {pending}"


# ----------------------------------------------------------------------------------------------
# The IdP as a real one


def test_idp_metadata_is_pysaml2_metadata_with_one_signing_certificate_per_published_key(world):
    for idp, keys in ((world.idp, ["rsa"]), (world.rollover, ["rsa", "rsa2"]), (world.ecdsa, ["ec"])):
        root = parse_xml(idp.metadata_xml())
        assert root.get("entityID") == idp.entity_id
        sso = root.findall("md:IDPSSODescriptor/md:SingleSignOnService", NS)
        assert [(s.get("Binding"), s.get("Location")) for s in sso] == [(BINDING_HTTP_REDIRECT, idp.sso_url)]
        certs = [whole_text(c) for c in root.iterfind(
            "md:IDPSSODescriptor/md:KeyDescriptor[@use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
        assert certs == [idp.key(k).cert_b64 for k in keys]


def test_metadata_is_served_over_http_and_can_be_changed_and_broken(world):
    idp = world.idp
    first = requests.get(idp.metadata_url, timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/samlmetadata+xml"
    assert parse_xml(first.content).get("entityID") == idp.entity_id
    idp.serve_metadata(b"<not-metadata", 200)
    assert requests.get(idp.metadata_url, timeout=10).content == b"<not-metadata"
    idp.serve_metadata(b"down", 503)
    assert requests.get(idp.metadata_url, timeout=10).status_code == 503
    idp.serve_metadata(None)
    assert requests.get(idp.metadata_url, timeout=10).content == first.content


def test_redirect_signature_is_verified_over_the_raw_query_with_the_sp_metadata_certificate(world):
    _, url = world.sp.redirect_url(world.idp)
    info = world.idp.receive_authn_request(url.split("?", 1)[1])
    assert info.signature_valid and not info.problems, info.problems
    assert info.pysaml2_signature_valid is True, "pysaml2's own redirect check disagrees"
    assert info.issuer == SP_ENTITY_ID and info.acs_url == SP_ACS and info.destination == world.idp.sso_url
    # One character of the deflated request changed: refused, by HTTP too.
    query = url.split("?", 1)[1]
    name, value = query.split("&", 1)[0].split("=", 1)
    tampered = query.replace(f"{name}={value}", f"{name}={value[:-6]}{'A' if value[-6] != 'A' else 'B'}{value[-5:]}", 1)
    try:
        bad = world.idp.receive_authn_request(tampered)
    except SamlRequestError:
        pass  # not even decodable: refused as well
    else:
        assert not bad.signature_valid, "a tampered AuthnRequest verified"
    answer = requests.get(f"{world.idp.sso_url}?{tampered}", timeout=10)
    assert answer.status_code == 400 and "refused" in answer.text


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_signed_response_verifies_with_xmlsec1_and_the_idp_certificate(world, sign):
    request_id, info, xml, b64 = world.sp.round_trip(world.idp, sign=sign)
    root = tree(xml)
    assertion = main_assertion(root)
    cert = world.idp.key("rsa").cert_path
    if sign in ("assertion", "both"):
        assert root.find("saml:Assertion/ds:Signature", NS) is not None
        ok, detail = xmlsec_verify(xml, cert, assertion.get("ID"))
        assert ok, detail
    if sign in ("response", "both"):
        assert root.find("ds:Signature", NS) is not None
        ok, detail = xmlsec_verify(xml, cert, root.get("ID"))
        assert ok, detail
    other = world.rollover.key("rsa2").cert_path
    assert not xmlsec_verify(xml, other)[0], "verifies with a certificate that did not sign it"
    assert root.get("InResponseTo") == request_id and root.get("Destination") == SP_ACS
    audience = root.findtext("saml:Assertion/saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS)
    assert audience == SP_ENTITY_ID, audience
    for reference in root.iter("{http://www.w3.org/2000/09/xmldsig#}Reference"):
        transforms = [t.get("Algorithm") for t in reference.iterfind("ds:Transforms/ds:Transform", NS)]
        assert transforms == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature",
                              "http://www.w3.org/2001/10/xml-exc-c14n#"], transforms
    if sign != "response":  # the stand-in SP (like the broker's default) wants a signed assertion
        accepted = world.sp.accepts(b64, request_id)
        assert accepted.name_id.text == "ada@example.com"


@pytest.mark.parametrize("encryption", sorted(CONTENT_ENCRYPTION))
def test_encrypted_assertion_uses_rsa_oaep_decrypts_with_the_sp_key_and_verifies(world, encryption):
    request_id, info, xml, b64 = world.sp.round_trip(world.idp, encrypt=encryption, sign="both")
    root = tree(xml)
    assert root.find("saml:Assertion", NS) is None and root.find("saml:EncryptedAssertion", NS) is not None
    methods = [m.get("Algorithm") for m in root.iter("{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod")]
    assert methods == [CONTENT_ENCRYPTION[encryption][0], KEY_TRANSPORT_RSA_OAEP], methods
    cert = world.idp.key("rsa").cert_path
    assert xmlsec_verify(xml, cert, root.get("ID"))[0], "the response signature (over the encrypted form) fails"
    plain, detail = xmlsec_decrypt(xml, world.sp.encryption.key_path)
    assert plain is not None, detail
    assertion = parse_xml(plain).find(".//saml:Assertion", NS)
    assert xmlsec_verify(plain, cert, assertion.get("ID"))[0], "the decrypted assertion's signature fails"
    assert xmlsec_decrypt(xml, world.sp.signing.key_path)[0] is None, "decrypts with a key it was not encrypted for"
    assert world.sp.accepts(b64, request_id).name_id.text == "ada@example.com"


def test_ecdsa_p256_signed_assertion_verifies_with_the_ec_certificate(world):
    request_id, info, xml, b64 = world.sp.round_trip(world.ecdsa)
    root = tree(xml)
    method = root.find("saml:Assertion/ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    assert method == SIG_ECDSA_SHA256, method
    assert xmlsec_verify(xml, world.ecdsa.key("ec").cert_path, main_assertion(root).get("ID"))[0]
    assert world.sp.accepts(b64, request_id).name_id.text == "ada@example.com"


def test_rollover_idp_signs_with_either_published_key(world):
    for key in ("rsa", "rsa2"):
        request_id, info, xml, b64 = world.sp.round_trip(world.rollover, signing_key=key)
        assertion_id = main_assertion(tree(xml)).get("ID")
        assert xmlsec_verify(xml, world.rollover.key(key).cert_path, assertion_id)[0]
        other = "rsa2" if key == "rsa" else "rsa"
        assert not xmlsec_verify(xml, world.rollover.key(other).cert_path, assertion_id)[0]
        assert world.sp.accepts(b64, request_id).name_id.text == "ada@example.com"


def test_sha1_response_is_signed_with_rsa_sha1_over_a_sha1_digest(world):
    request_id, info, xml, b64 = world.sp.round_trip(world.idp, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1)
    root = tree(xml)
    signed_info = root.find("saml:Assertion/ds:Signature/ds:SignedInfo", NS)
    assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == SIG_RSA_SHA1
    assert signed_info.find("ds:Reference/ds:DigestMethod", NS).get("Algorithm") == DIGEST_SHA1
    assert xmlsec_verify(xml, world.idp.key("rsa").cert_path, main_assertion(root).get("ID"))[0]


def test_unsolicited_response_has_no_in_response_to_and_verifies(world):
    xml = world.idp.unsolicited(SP_ENTITY_ID)
    root = tree(xml)
    assert root.get("InResponseTo") is None
    assert root.find(".//saml:SubjectConfirmationData", NS).get("InResponseTo") is None
    assert root.find(".//saml:SubjectConfirmationData", NS).get("Recipient") == SP_ACS
    assert xmlsec_verify(xml, world.idp.key("rsa").cert_path, main_assertion(root).get("ID"))[0]
    assert world.sp.accepts(base64.b64encode(xml).decode(), None).name_id.text == "ada@example.com"


def test_attributes_and_name_id_are_sent_as_configured(world):
    user = SamlUser("00u-okta-7", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                    {"http://schemas.microsoft.com/identity/claims/objectidentifier": ["oid-1"],
                     "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ["ada@example.edu"], "groups": ["a", "b"]},
                    {"urn:oid:1.3.6.1.4.1.5923.1.1.1.6": "eduPersonPrincipalName"})
    _, _, xml, _ = world.sp.round_trip(world.idp, user=user)
    root = tree(xml)
    name_id = root.find(".//saml:Subject/saml:NameID", NS)
    assert (name_id.text, name_id.get("Format")) == (user.name_id, user.name_id_format)
    attributes = {a.get("Name"): (a.get("NameFormat"), a.get("FriendlyName"),
                                  [whole_text(v) for v in a.iterfind("saml:AttributeValue", NS)])
                  for a in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute")}
    assert attributes == {
        "http://schemas.microsoft.com/identity/claims/objectidentifier": (None, None, ["oid-1"]),
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ("urn:oasis:names:tc:SAML:2.0:attrname-format:uri", "eduPersonPrincipalName",
                                             ["ada@example.edu"]),
        "groups": ("urn:oasis:names:tc:SAML:2.0:attrname-format:basic", None, ["a", "b"]),
    }


# ----------------------------------------------------------------------------------------------
# The hostile toolkit


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_case_is_what_it_claims(world, case):
    idp = world.idp
    hits_before = dict(idp.hits)
    request_id, info, genuine, _ = world.sp.round_trip(idp, **case_options(case, idp))
    ctx = Ctx(idp, SP_ENTITY_ID, SP_ACS, info, genuine, sp_decryption_key=world.sp.encryption.key_path)
    hostile = hostile_response(case, ctx)
    if case.build is not None:
        assert hostile != genuine, "the builder changed nothing"
    if case.prove is not None:
        case.prove(ctx, hostile)
    if case.naive is not None:
        assert naive_verify(ctx, hostile) is case.naive, \
            f"xmlsec1 --verify (first signature) {'fails' if case.naive else 'succeeds'} on the hostile document"
    if case.probe:
        assert idp.hits.get(case.probe, 0) == hits_before.get(case.probe, 0), f"{case.probe} was fetched"
    assert case.check and case.status in (400, 403)


def test_comment_injection_keeps_the_signature_valid_while_a_text_only_reader_sees_a_truncated_value(world):
    user = SamlUser("victim@example.com.evil.test", NAMEID_EMAIL, {"mail": ["victim@example.com.evil.test"]})
    request_id, info, genuine, _ = world.sp.round_trip(world.idp, user=user)
    ctx = Ctx(world.idp, SP_ENTITY_ID, SP_ACS, info, genuine)
    hostile = with_comment_in(ctx, ".//saml:Subject/saml:NameID | .//saml:AttributeValue", "victim@example.com")
    root = tree(hostile)
    name_id = root.find(".//saml:Subject/saml:NameID", NS)
    assert name_id.text == "victim@example.com", "the first text node is not the truncated value"
    assert whole_text(name_id) == "victim@example.com.evil.test"
    assert xmlsec_verify(hostile, world.idp.key("rsa").cert_path, main_assertion(root).get("ID"))[0], \
        "the comment broke the signature (it must not: exclusive C14N drops comments)"
    accepted = world.sp.accepts(base64.b64encode(hostile).decode(), request_id)
    assert accepted.name_id.text in ("victim@example.com", "victim@example.com.evil.test")
