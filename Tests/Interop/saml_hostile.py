"""Hostile SAML responses, each derived from a genuine one that the pysaml2 IdP (saml_idp.py) made
for the very AuthnRequest being answered, and a registry of them (`CASES`) that the refusal tests
(test_saml_refusals.py) post to the broker and the self-check (test_saml_idp_selfcheck.py) proves
to be what they claim, without the broker.

Two kinds of cases:
- made by the IdP with changed options, validly signed (wrong audience, expired, SHA-1, untrusted
  key, RSA 1.5 key transport, ...): `Case.genuine` holds the ResponseOptions changes;
- derived afterwards with lxml from a validly signed response (signature wrapping in every
  placement we could construct, moved or stripped signatures, comment injection, content altered
  after signing, two assertions, DOCTYPE / external entity / entity expansion, ...): `Case.build`.
  Where a new signature with an unusual template is needed (Reference URI "", extra transforms),
  the template is written here and signed by pysaml2's xmlsec1 backend with the IdP's key.

Each case names the check of the broker's ACS (the `Check` of the audit reason) that must refuse
it, per the order of the contract: Size, Form, XML, DOCTYPE, Status, Destination, AssertionCount,
Decryption, Signature, Issuer, Conditions, Audience, SubjectConfirmation, InResponseTo,
Unsolicited, Replay, Subject, Claims, UserEnabled.

`Case.naive` says what a naive service provider would conclude: True when `xmlsec1 --verify` of
the first signature in the document (IDs registered for Response and Assertion, the IdP's
certificate) succeeds on the hostile document -- that is, the attack gets past a verifier that
does not check which node was signed. The self-check asserts it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lxml import etree

from saml_idp import (CM_HOLDER_OF_KEY, DIGEST_SHA1, DIGEST_SHA256, KEY_TRANSPORT_RSA_1_5, NS, NS_DS, NS_SAML,
                      NS_SAMLP, NS_XENC, SIG_RSA_SHA1, SIG_RSA_SHA256, STATUS_AUTHN_FAILED, TRANSFORM_C14N10,
                      TRANSFORM_ENVELOPED, TRANSFORM_EXC_C14N, TRANSFORM_EXC_C14N_WITH_COMMENTS, AuthnRequestInfo,
                      SamlIdP, SamlUser, fresh_marker, parse_xml, xmlsec_decrypt, xmlsec_verify)

TRANSFORM_XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
Q_ASSERTION = f"{{{NS_SAML}}}Assertion"
Q_ENCRYPTED_ASSERTION = f"{{{NS_SAML}}}EncryptedAssertion"
Q_RESPONSE = f"{{{NS_SAMLP}}}Response"
Q_SIGNATURE = f"{{{NS_DS}}}Signature"
Q_ISSUER = f"{{{NS_SAML}}}Issuer"
Q_NAMEID = f"{{{NS_SAML}}}NameID"


# ----------------------------------------------------------------------------------------------
# lxml helpers


def tree(xml: bytes) -> etree._Element:
    return parse_xml(xml)


def dump(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def all_assertions(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(Q_ASSERTION))


def main_assertion(root: etree._Element) -> etree._Element:
    found = root.find("saml:Assertion", NS)
    assert found is not None, "the genuine response has no Assertion child"
    return found


def direct_signature(element: etree._Element) -> etree._Element | None:
    return element.find("ds:Signature", NS)


def whole_text(element: etree._Element) -> str:
    return "".join(element.itertext())


def name_id_texts(root: etree._Element) -> list[str]:
    return [whole_text(e) for e in root.iter(Q_NAMEID)]


def insert_after_issuer(parent: etree._Element, child: etree._Element) -> None:
    """Puts `child` where a Signature goes: right after the parent's Issuer (or first)."""
    issuer = parent.find("saml:Issuer", NS)
    parent.insert(list(parent).index(issuer) + 1 if issuer is not None else 0, child)


def extensions_of(response: etree._Element) -> etree._Element:
    """The Response's samlp:Extensions (made if missing), after Issuer and Signature."""
    found = response.find("samlp:Extensions", NS)
    if found is not None:
        return found
    extensions = etree.Element(f"{{{NS_SAMLP}}}Extensions")
    position = 0
    for index, child in enumerate(response):
        if child.tag in (Q_ISSUER, Q_SIGNATURE):
            position = index + 1
    response.insert(position, extensions)
    return extensions


def c14n_without_signature(element: etree._Element) -> bytes:
    """Exclusive C14N of the element without its own (enveloped) Signature: what its IdP digest covers."""
    clone = copy.deepcopy(element)
    for signature in clone.findall("ds:Signature", NS):
        clone.remove(signature)
    return etree.tostring(clone, method="c14n", exclusive=True, with_comments=False)


@dataclass
class Evil:
    """The attacker's values: a NameID and e-mail of someone else."""
    name_id: str
    email: str

    @classmethod
    def new(cls) -> "Evil":
        mark = fresh_marker()
        return cls(f"evil.admin-{mark}@evil.test", f"evil.admin-{mark}@evil.test")


def evil_copy(assertion: etree._Element, evil: Evil, new_id: str | None = None,
              keep_signature: bool = False) -> etree._Element:
    """A copy of a genuine assertion naming the attacker: NameID and every e-mail-like attribute
    value replaced; its own Signature dropped unless kept; ID replaced when `new_id`."""
    clone = copy.deepcopy(assertion)
    if not keep_signature:
        for signature in clone.findall("ds:Signature", NS):
            clone.remove(signature)
    if new_id:
        clone.set("ID", new_id)
    for name_id in clone.iter(Q_NAMEID):
        for child in list(name_id):
            name_id.remove(child)
        name_id.text = evil.name_id
    for value in clone.iter(f"{{{NS_SAML}}}AttributeValue"):
        if "@" in whole_text(value):
            for child in list(value):
                value.remove(child)
            value.text = evil.email
    return clone


def without_signatures(element: etree._Element) -> etree._Element:
    clone = copy.deepcopy(element)
    for signature in clone.findall("ds:Signature", NS):
        clone.remove(signature)
    return clone


def evil_id() -> str:
    return f"_evil{fresh_marker()}"


# ----------------------------------------------------------------------------------------------
# The context of one case: the genuine response for the pending request, and how to get more


@dataclass
class Ctx:
    idp: SamlIdP
    sp_entity_id: str
    acs_url: str
    request: AuthnRequestInfo | None
    genuine: bytes = field(repr=False)
    evil: Evil = field(default_factory=Evil.new)
    sp_decryption_key: Path | None = None  # known in the self-check only

    def make(self, **changes: Any) -> bytes:
        """Another response from the IdP for the same request (or unsolicited without one)."""
        if self.request is not None:
            return self.idp.respond(self.request, **changes)
        return self.idp.unsolicited(self.sp_entity_id, self.acs_url, **changes)

    @property
    def idp_cert(self) -> Path:
        return self.idp.key(self.idp.signing_key).cert_path


# ----------------------------------------------------------------------------------------------
# Builders: genuine bytes -> hostile bytes


# -- signature wrapping, assertion signed (XSW3-XSW8 of Somorovsky et al., "On Breaking SAML", 2012,
#    and the placements of SAML Raider)

def xsw_evil_assertion_before(ctx: Ctx) -> bytes:
    """XSW3: an unsigned evil assertion (new ID) inserted before the signed one."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    root.insert(list(root).index(original), evil_copy(original, ctx.evil, evil_id()))
    return dump(root)


def xsw_evil_assertion_after(ctx: Ctx) -> bytes:
    """An unsigned evil assertion (new ID) appended after the signed one."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    original.addnext(evil_copy(original, ctx.evil, evil_id()))
    return dump(root)


def xsw_duplicate_id_before(ctx: Ctx) -> bytes:
    """An evil assertion with the SAME ID as the signed one, before it (ID lookups find it first)."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    root.insert(list(root).index(original), evil_copy(original, ctx.evil))
    return dump(root)


def xsw_duplicate_id_after(ctx: Ctx) -> bytes:
    """An evil assertion with the SAME ID as the signed one, after it (ID lookups find it last)."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    original.addnext(evil_copy(original, ctx.evil))
    return dump(root)


def xsw_signed_inside_evil(ctx: Ctx) -> bytes:
    """XSW4: the evil assertion takes the signed one's place and holds it as its last child."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, evil_id())
    root.replace(original, evil)
    evil.append(original)
    return dump(root)


def xsw_signed_in_evil_advice(ctx: Ctx) -> bytes:
    """The signed assertion moved under the evil one's saml:Advice (a place the schema allows)."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, evil_id())
    root.replace(original, evil)
    advice = etree.Element(f"{{{NS_SAML}}}Advice")
    conditions = evil.find("saml:Conditions", NS)
    (conditions.addnext if conditions is not None else evil.append)(advice)
    advice.append(original)
    return dump(root)


def xsw_signature_on_evil_copy(ctx: Ctx) -> bytes:
    """XSW5: the evil copy keeps the ID and the Signature; the original, its signature removed,
    is appended at the end of the Response."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, keep_signature=True)
    root.replace(original, evil)
    root.append(without_signatures(original))
    return dump(root)


def xsw_original_inside_evil_signature(ctx: Ctx) -> bytes:
    """XSW6: the evil copy keeps the ID and the Signature; the original, signature removed, is
    placed inside that Signature."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, keep_signature=True)
    root.replace(original, evil)
    direct_signature(evil).append(without_signatures(original))
    return dump(root)


def xsw_evil_in_extensions(ctx: Ctx) -> bytes:
    """XSW7: an evil assertion in the Response's samlp:Extensions (before the signed one)."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    extensions_of(root).append(evil_copy(original, ctx.evil, evil_id()))
    return dump(root)


def xsw_signed_in_extensions(ctx: Ctx) -> bytes:
    """The signed assertion hidden in samlp:Extensions; the evil one in its place."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, evil_id())
    root.replace(original, evil)
    extensions_of(root).append(original)
    return dump(root)


def xsw_original_in_signature_object(ctx: Ctx) -> bytes:
    """XSW8: the evil copy keeps the ID and the Signature; the original, signature removed, is
    placed in a ds:Object of that Signature."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, keep_signature=True)
    root.replace(original, evil)
    holder = etree.SubElement(direct_signature(evil), f"{{{NS_DS}}}Object")
    holder.append(without_signatures(original))
    return dump(root)


def xsw_signed_in_evil_signature_object(ctx: Ctx) -> bytes:
    """The evil assertion (new ID) carries the genuine Signature, and the signed assertion sits,
    whole, in a ds:Object of it."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    evil = evil_copy(original, ctx.evil, evil_id())
    root.replace(original, evil)
    signature = copy.deepcopy(direct_signature(original))
    insert_after_issuer(evil, signature)
    etree.SubElement(signature, f"{{{NS_DS}}}Object").append(original)
    return dump(root)


def assertion_signature_moved_to_response(ctx: Ctx) -> bytes:
    """One assertion; its (valid) Signature moved out to the Response: the signed node is no
    longer the Signature's parent."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    signature = direct_signature(original)
    original.remove(signature)
    insert_after_issuer(root, signature)
    return dump(root)


def evil_assertion_with_signature_of_error_response(ctx: Ctx) -> bytes:
    """One (evil, unsigned) assertion carrying the valid Signature of an error Response the IdP
    signed for the same request; that error Response, its Signature removed, hidden in the
    Extensions of the Response: the Reference resolves, the digest matches, the signed node is
    neither the assertion nor the Signature's parent."""
    root = tree(ctx.genuine)
    original = main_assertion(root)
    error = tree(ctx.make(sign="response", status=(STATUS_AUTHN_FAILED, "no")))
    signature = direct_signature(error)
    error.remove(signature)
    evil = evil_copy(original, ctx.evil, evil_id())
    root.replace(original, evil)
    insert_after_issuer(evil, signature)
    extensions_of(root).append(error)
    return dump(root)


# -- signature wrapping, response signed (XSW1, XSW2 and kin)

def _evil_response(root: etree._Element, ctx: Ctx) -> etree._Element:
    """A copy of the genuine Response with a new ID, its signature dropped, its assertion evil."""
    evil = copy.deepcopy(root)
    evil.set("ID", evil_id())
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    assertion = main_assertion(evil)
    evil.replace(assertion, evil_copy(assertion, ctx.evil, evil_id()))
    return evil


def xsw1_response_in_signature_object(ctx: Ctx) -> bytes:
    """XSW1: an evil Response (new ID, evil assertion) whose Signature is the genuine one, holding
    the genuine Response (signature removed) in a ds:Object."""
    genuine = tree(ctx.genuine)
    evil = _evil_response(genuine, ctx)
    signature = copy.deepcopy(direct_signature(genuine))
    insert_after_issuer(evil, signature)
    etree.SubElement(signature, f"{{{NS_DS}}}Object").append(without_signatures(genuine))
    return dump(evil)


def xsw2_response_before_signature(ctx: Ctx) -> bytes:
    """XSW2: an evil Response with the genuine Signature (detached) and, right before it, the
    genuine Response without its signature."""
    genuine = tree(ctx.genuine)
    evil = _evil_response(genuine, ctx)
    signature = copy.deepcopy(direct_signature(genuine))
    insert_after_issuer(evil, signature)
    signature.addprevious(without_signatures(genuine))
    return dump(evil)


def signed_response_in_extensions(ctx: Ctx) -> bytes:
    """An evil Response (new ID, evil assertion, the genuine Signature moved to it) with the
    genuine Response (signature removed) in its Extensions: the Reference resolves and the digest
    matches, but the signed Response is not the one read."""
    genuine = tree(ctx.genuine)
    evil = _evil_response(genuine, ctx)
    signature = copy.deepcopy(direct_signature(genuine))
    insert_after_issuer(evil, signature)
    extensions_of(evil).append(without_signatures(genuine))
    return dump(evil)


def wrapped_signed_error_response(ctx: Ctx) -> bytes:
    """One (evil, unsigned) assertion in an evil Response that carries the valid Signature of an
    error Response the IdP signed for the same request, that error Response (signature removed)
    in its Extensions. Only one Assertion in the document: the count does not catch it."""
    genuine = tree(ctx.genuine)
    error = tree(ctx.make(sign="response", status=(STATUS_AUTHN_FAILED, "no")))
    signature = direct_signature(error)
    error.remove(signature)
    evil = _evil_response(genuine, ctx)
    insert_after_issuer(evil, signature)
    extensions_of(evil).append(error)
    return dump(evil)


def response_signature_moved_into_assertion(ctx: Ctx) -> bytes:
    """The Response's (valid) Signature moved into the Assertion: the enveloped transform still
    removes it from the Response's digest, so it verifies, but its parent is not the signed node."""
    root = tree(ctx.genuine)
    signature = direct_signature(root)
    root.remove(signature)
    insert_after_issuer(main_assertion(root), signature)
    return dump(root)


# -- other signature faults

def stripped_signature(ctx: Ctx) -> bytes:
    """Every Signature removed."""
    root = tree(ctx.genuine)
    for signature in list(root.iter(Q_SIGNATURE)):
        signature.getparent().remove(signature)
    return dump(root)


def altered_after_signing(ctx: Ctx) -> bytes:
    """The signed assertion's NameID changed after signing (signature kept)."""
    root = tree(ctx.genuine)
    name_id = main_assertion(root).find("saml:Subject/saml:NameID", NS)
    name_id.text = ctx.evil.name_id
    return dump(root)


def keyinfo_as_bare_key_value(ctx: Ctx) -> bytes:
    """(Genuine made with signing_key="untrusted".) The KeyInfo's certificate replaced by the bare
    ds:KeyValue/RSAKeyValue of the signing key: a key in the message only."""
    root = tree(ctx.genuine)
    public = ctx.idp.key("untrusted").private_key.public_key().public_numbers()

    def b64_int(value: int) -> str:
        import base64

        return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()

    for key_info in root.iter(f"{{{NS_DS}}}KeyInfo"):
        if key_info.getparent().tag != Q_SIGNATURE:
            continue
        for child in list(key_info):
            key_info.remove(child)
        key_value = etree.SubElement(key_info, f"{{{NS_DS}}}KeyValue")
        rsa_value = etree.SubElement(key_value, f"{{{NS_DS}}}RSAKeyValue")
        etree.SubElement(rsa_value, f"{{{NS_DS}}}Modulus").text = b64_int(public.n)
        etree.SubElement(rsa_value, f"{{{NS_DS}}}Exponent").text = b64_int(public.e)
    return dump(root)


def resign(ctx: Ctx, xml: bytes, *, target: str = "assertion", reference_uri: str | None = None,
           transforms: tuple[str, ...] = (TRANSFORM_ENVELOPED, TRANSFORM_EXC_C14N), c14n: str = TRANSFORM_EXC_C14N,
           sign_alg: str = SIG_RSA_SHA256, digest_alg: str = DIGEST_SHA256, key: str | None = None) -> bytes:
    """Replaces the target's Signature by a new one from a template written here (Reference URI,
    transforms, canonicalization as given), signed with the IdP's key by pysaml2's xmlsec1 backend."""
    root = tree(xml)
    element = main_assertion(root) if target == "assertion" else root
    for signature in element.findall("ds:Signature", NS):
        element.remove(signature)
    ds = f"{{{NS_DS}}}"
    signature = etree.Element(ds + "Signature", nsmap={"ds": NS_DS})
    signed_info = etree.SubElement(signature, ds + "SignedInfo")
    etree.SubElement(signed_info, ds + "CanonicalizationMethod", Algorithm=c14n)
    etree.SubElement(signed_info, ds + "SignatureMethod", Algorithm=sign_alg)
    reference = etree.SubElement(signed_info, ds + "Reference",
                                 URI=f"#{element.get('ID')}" if reference_uri is None else reference_uri)
    transforms_el = etree.SubElement(reference, ds + "Transforms")
    for algorithm in transforms:
        transform = etree.SubElement(transforms_el, ds + "Transform", Algorithm=algorithm)
        if algorithm == TRANSFORM_XPATH:
            # no prefix in the expression: lxml may re-prefix the ds namespace when inserting
            etree.SubElement(transform, ds + "XPath").text = \
                f"not(ancestor-or-self::*[local-name()='Signature' and namespace-uri()='{NS_DS}'])"
    etree.SubElement(reference, ds + "DigestMethod", Algorithm=digest_alg)
    etree.SubElement(reference, ds + "DigestValue")
    etree.SubElement(signature, ds + "SignatureValue")
    signing = ctx.idp.key(key or ctx.idp.signing_key)
    key_info = etree.SubElement(signature, ds + "KeyInfo")
    etree.SubElement(etree.SubElement(key_info, ds + "X509Data"), ds + "X509Certificate").text = signing.cert_b64
    insert_after_issuer(element, signature)
    node = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion" if target == "assertion" else \
        "urn:oasis:names:tc:SAML:2.0:protocol:Response"
    signed = ctx.idp.server.sec.crypto.sign_statement(dump(root).decode("utf-8"), node, str(signing.key_path),
                                                     element.get("ID"))
    return signed.encode("utf-8")


# -- comments, entities, XInclude

def with_comment_in(ctx: Ctx, xpath: str, split_after: str) -> bytes:
    """A comment inserted in the text of the element(s) at `xpath`, right after `split_after`:
    exclusive C14N without comments ignores it, so the signature stays valid."""
    root = tree(ctx.genuine)
    done = 0
    for element in root.xpath(xpath, namespaces=NS):
        text = element.text or ""
        assert text.startswith(split_after) and len(text) > len(split_after), \
            f"{text!r} does not start with {split_after!r}"
        element.text = split_after
        comment = etree.Comment(" tessera-interop ")
        comment.tail = text[len(split_after):]
        element.insert(0, comment)
        done += 1
    assert done, f"nothing at {xpath}"
    return dump(root)


def _root_start(text: str) -> int:
    match = re.search(r"<(?![?!])", text)
    return match.start()


def _root_name(text: str) -> str:
    return re.match(r"<([^\s>/]+)", text[_root_start(text):]).group(1)


def with_doctype(ctx: Ctx, subset: str = "", name_id_text: str | None = None, system: str | None = None) -> bytes:
    """The genuine XML with a DOCTYPE before the root element; optionally the NameID's text
    replaced by an entity reference."""
    text = ctx.genuine.decode("utf-8")
    if name_id_text is not None:
        original = name_id_texts(tree(ctx.genuine))[0]
        text = text.replace(f">{original}</", f">{name_id_text}</", 1)
    start = _root_start(text)
    doctype = f"<!DOCTYPE {_root_name(text)}"
    if system:
        doctype += f' SYSTEM "{system}"'
    if subset:
        doctype += f" [\n{subset}\n]"
    doctype += ">\n"
    return (text[:start] + doctype + text[start:]).encode("utf-8")


def plain_doctype(ctx: Ctx) -> bytes:
    return with_doctype(ctx)


def external_entity_file(ctx: Ctx) -> bytes:
    return with_doctype(ctx, '<!ENTITY xxe SYSTEM "file:///etc/passwd">', name_id_text="&xxe;")


def external_entity_http(ctx: Ctx) -> bytes:
    """XXE pointing at the IdP's own loopback server: a fetch would show in its hit counter."""
    return with_doctype(ctx, f'<!ENTITY xxe SYSTEM "{ctx.idp.base_url}/xxe-probe">', name_id_text="&xxe;")


def external_dtd(ctx: Ctx) -> bytes:
    """An external DTD subset on the IdP's loopback server: a fetch would show in its hit counter."""
    return with_doctype(ctx, system=f"{ctx.idp.base_url}/dtd-probe")


def billion_laughs(ctx: Ctx) -> bytes:
    lines = ['<!ENTITY lol "lol">']
    for level in range(1, 10):
        previous = "lol" if level == 1 else f"lol{level - 1}"
        lines.append(f'<!ENTITY lol{level} "{("&" + previous + ";") * 10}">')
    return with_doctype(ctx, "\n".join(lines), name_id_text="&lol9;")


def xinclude_in_name_id(ctx: Ctx) -> bytes:
    """An xi:include of /etc/passwd inside the NameID (no DOCTYPE): an SP must not process it; the
    signed content changed, so the signature breaks."""
    root = tree(ctx.genuine)
    name_id = main_assertion(root).find("saml:Subject/saml:NameID", NS)
    name_id.text = None
    include = etree.SubElement(name_id, "{http://www.w3.org/2001/XInclude}include",
                               nsmap={"xi": "http://www.w3.org/2001/XInclude"})
    include.set("href", "file:///etc/passwd")
    include.set("parse", "text")
    return dump(root)


def not_well_formed(ctx: Ctx) -> bytes:
    text = ctx.genuine.decode("utf-8")
    return text[: len(text) // 2].encode("utf-8")


# -- several assertions

def two_signed_assertions(ctx: Ctx) -> bytes:
    """Two assertions, each validly signed by the IdP for this request (the second naming the
    attacker): exactly one is allowed."""
    root = tree(ctx.genuine)
    other = main_assertion(tree(ctx.make(user=SamlUser(ctx.evil.name_id, attributes={"mail": [ctx.evil.email]}))))
    main_assertion(root).addnext(other)
    return dump(root)


def plain_assertion_beside_encrypted(ctx: Ctx) -> bytes:
    """(Genuine encrypted.) An evil plain assertion beside the EncryptedAssertion."""
    root = tree(ctx.genuine)
    plain = main_assertion(tree(ctx.make(sign="none", encrypt=None)))
    evil = evil_copy(plain, ctx.evil, evil_id())
    root.find("saml:EncryptedAssertion", NS).addprevious(evil)
    return dump(root)


# ----------------------------------------------------------------------------------------------
# Proofs for the self-check: each variant is what it claims


def naive_verify(ctx: Ctx, xml: bytes) -> bool:
    return xmlsec_verify(xml, ctx.idp_cert)[0]


def genuine_element(ctx: Ctx, kind: str) -> etree._Element:
    root = tree(ctx.genuine)
    return main_assertion(root) if kind == "assertion" else root


def genuine_intact(ctx: Ctx, hostile: bytes, kind: str) -> bool:
    """The element the IdP signed is in the hostile document, its digested content unchanged."""
    original = genuine_element(ctx, kind)
    want = c14n_without_signature(original)
    for element in tree(hostile).iter(original.tag):
        if element.get("ID") == original.get("ID") and c14n_without_signature(element) == want:
            return True
    return False


def prove_wrapping(kind: str, assertions: int | None = None) -> Callable[[Ctx, bytes], None]:
    def prove(ctx: Ctx, hostile: bytes) -> None:
        root = tree(hostile)
        count = len(all_assertions(root))
        assert (count >= 2) if assertions is None else (count == assertions), f"{count} assertions"
        assert ctx.evil.name_id in name_id_texts(root), "no evil NameID in the wrapped document"
        assert genuine_intact(ctx, hostile, kind), f"the IdP-signed {kind} is not intact in the document"
        values = [whole_text(v) for v in root.iter(f"{{{NS_DS}}}SignatureValue")]
        original = [whole_text(v) for v in tree(ctx.genuine).iter(f"{{{NS_DS}}}SignatureValue")]
        assert set(original) & set(values), "the genuine SignatureValue is gone"
    return prove


def prove_misplaced_signature(ctx: Ctx, hostile: bytes) -> None:
    """One assertion; the first Signature's Reference does not name its parent."""
    root = tree(hostile)
    assert len(all_assertions(root)) == 1, "not a single assertion"
    signature = next(root.iter(Q_SIGNATURE))
    uri = signature.find("ds:SignedInfo/ds:Reference", NS).get("URI")
    assert uri != f"#{signature.getparent().get('ID')}", "the Signature's parent is the signed node"


def prove_stripped(ctx: Ctx, hostile: bytes) -> None:
    root = tree(hostile)
    assert next(root.iter(Q_SIGNATURE), None) is None, "a Signature remains"
    assert c14n_without_signature(main_assertion(root)) == c14n_without_signature(genuine_element(ctx, "assertion"))


def prove_altered(ctx: Ctx, hostile: bytes) -> None:
    assert ctx.evil.name_id in name_id_texts(tree(hostile))
    assert not naive_verify(ctx, hostile), "the altered document still verifies"


def prove_signed_by(key: str, keyinfo: str | None, bare_key_value: bool = False) -> Callable[[Ctx, bytes], None]:
    def prove(ctx: Ctx, hostile: bytes) -> None:
        assert not xmlsec_verify(hostile, ctx.idp_cert, keys_from_message=False)[0], \
            "verifies with the IdP's metadata certificate"
        assert xmlsec_verify(hostile, ctx.idp.key(key).cert_path, keys_from_message=False)[0], \
            f"does not verify with the {key} key"
        root = tree(hostile)
        certs = [whole_text(c) for c in root.iter(f"{{{NS_DS}}}X509Certificate")]
        if bare_key_value:
            assert not certs and next(root.iter(f"{{{NS_DS}}}RSAKeyValue"), None) is not None, "no bare RSAKeyValue"
        else:
            assert certs and all(c == ctx.idp.key(keyinfo).cert_b64 for c in certs), f"KeyInfo is not the {keyinfo} cert"
    return prove


def prove_valid_and(check: Callable[[etree._Element], Any],
                    node: str | None = "assertion") -> Callable[[Ctx, bytes], None]:
    """The IdP's signature verifies (`node`: the assertion's, the response's, or None for the first
    one), and `check(root)` holds: the defect is exactly the one named."""
    def prove(ctx: Ctx, hostile: bytes) -> None:
        root = tree(hostile)
        node_id = {"assertion": main_assertion(root).get("ID") if node == "assertion" else None,
                   "response": root.get("ID")}.get(node)
        ok, detail = xmlsec_verify(hostile, ctx.idp_cert, node_id)
        assert ok, f"the IdP's signature does not verify: {detail[-300:]}"
        assert check(root), "the named defect is not in the response"
    return prove


def prove_signature_template(**expect: str) -> Callable[[Ctx, bytes], None]:
    def prove(ctx: Ctx, hostile: bytes) -> None:
        root = tree(hostile)
        signature = direct_signature(main_assertion(root))
        assert signature is not None, "no assertion Signature"
        methods = {
            "sign_alg": signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm"),
            "digest_alg": signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS).get("Algorithm"),
            "c14n": signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm"),
            "uri": signature.find("ds:SignedInfo/ds:Reference", NS).get("URI"),
            "transforms": " ".join(t.get("Algorithm") for t in signature.iterfind(
                "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS)),
        }
        for name, value in expect.items():
            matches = (value in methods[name]) if name == "transforms" else methods[name] == value
            assert matches, f"{name} {methods[name]!r}"
        ok, detail = xmlsec_verify(hostile, ctx.idp_cert, main_assertion(root).get("ID"))
        assert ok, f"the IdP's signature does not verify: {detail[-300:]}"
    return prove


def prove_signatures_on(*parts: str) -> Callable[[Ctx, bytes], None]:
    """Exactly these parts ("response", "assertion") carry a Signature, each valid."""
    def prove(ctx: Ctx, hostile: bytes) -> None:
        root = tree(hostile)
        assertion = main_assertion(root)
        have = {"response": direct_signature(root) is not None, "assertion": direct_signature(assertion) is not None}
        assert {k for k, v in have.items() if v} == set(parts), f"signatures on {have}"
        for part in parts:
            node_id = root.get("ID") if part == "response" else assertion.get("ID")
            assert xmlsec_verify(hostile, ctx.idp_cert, node_id)[0], f"the {part} signature does not verify"
    return prove


def prove_doctype(marker: str, probe: str | None = None) -> Callable[[Ctx, bytes], None]:
    def prove(ctx: Ctx, hostile: bytes) -> None:
        assert b"<!DOCTYPE" in hostile and marker.encode() in hostile, "no such DOCTYPE"
        try:
            root = tree(hostile)  # hardened parse: nothing expanded, nothing fetched
        except etree.XMLSyntaxError as exc:
            # libxml2 >= 2.11 refuses the nested entities outright ("entity amplification")
            assert "amplification" in str(exc), f"not well-formed: {exc}"
        else:
            assert "root:" not in " ".join(name_id_texts(root)), "an entity was expanded by the hardened parser"
        if probe:
            assert ctx.idp.hits.get(probe, 0) == 0, f"{probe} was fetched while building the case"
    return prove


def prove_not_well_formed(ctx: Ctx, hostile: bytes) -> None:
    try:
        tree(hostile)
    except etree.XMLSyntaxError:
        return
    raise AssertionError("the document is well-formed")


def prove_two_signed(ctx: Ctx, hostile: bytes) -> None:
    assertions = all_assertions(tree(hostile))
    assert len(assertions) == 2 and len({a.get("ID") for a in assertions}) == 2, "not two distinct assertions"
    for assertion in assertions:
        assert xmlsec_verify(hostile, ctx.idp_cert, assertion.get("ID"))[0], "an assertion's signature does not verify"


def prove_plain_beside_encrypted(ctx: Ctx, hostile: bytes) -> None:
    root = tree(hostile)
    assert len(all_assertions(root)) == 1 and len(list(root.iter(Q_ENCRYPTED_ASSERTION))) == 1


def prove_encrypted(key_transport: str | None = None, decrypts_with_sp: bool = True,
                    other_key: str | None = None) -> Callable[[Ctx, bytes], None]:
    def prove(ctx: Ctx, hostile: bytes) -> None:
        root = tree(hostile)
        assert not all_assertions(root) and len(list(root.iter(Q_ENCRYPTED_ASSERTION))) == 1, "not one EncryptedAssertion"
        if key_transport:
            methods = [m.get("Algorithm") for m in root.iter(f"{{{NS_XENC}}}EncryptionMethod")]
            assert key_transport in methods, f"key transport {methods}"
        if ctx.sp_decryption_key is not None:
            plain, _ = xmlsec_decrypt(hostile, ctx.sp_decryption_key)
            assert (plain is not None) == decrypts_with_sp, f"decrypts with the SP key: {plain is not None}"
        if other_key:
            plain, detail = xmlsec_decrypt(hostile, ctx.idp.key(other_key).key_path)
            assert plain is not None, f"does not decrypt with the {other_key} key: {detail[-200:]}"
    return prove


def prove_unsigned_failed_status(xml: bytes) -> None:
    root = tree(xml)
    assert "Success" not in root.find("samlp:Status/samlp:StatusCode", NS).get("Value"), "Status is Success"
    assert next(root.iter(Q_SIGNATURE), None) is None, "signed"
    assert not all_assertions(root), "an assertion in an error response"


def text_at(xpath: str) -> Callable[[etree._Element], list[str]]:
    return lambda root: [whole_text(e) if isinstance(e, etree._Element) else str(e)
                         for e in root.xpath(xpath, namespaces=NS)]


# ----------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    family: str            # wrapping | signature | encryption | xml | conditions | status
    check: tuple[str, ...]
    signed: str = "assertion"  # the tenant's --signed setting the case is posted to
    status: int = 403
    error: str = "access_denied"
    genuine: dict = field(default_factory=dict)  # ResponseOptions changes for the IdP's response
    build: Callable[[Ctx], bytes] | None = None
    prove: Callable[[Ctx, bytes], None] | None = None
    naive: bool | None = None
    probe: str | None = None  # a path on the IdP that must never be fetched


def _case(name, description, family, check, **kwargs) -> Case:
    return Case(name, description, family, check if isinstance(check, tuple) else (check,), **kwargs)


OTHER_SP = "https://other-sp.example.test/saml/metadata"
OTHER_ACS = "https://other-sp.example.test/saml/acs"
OTHER_ISSUER = "https://other-idp.example.test/idp"

CASES: list[Case] = [
    # -- signature wrapping, assertion signed: two assertions in the document -> AssertionCount
    _case("xsw3-evil-assertion-before-the-signed-one", xsw_evil_assertion_before.__doc__, "wrapping", "AssertionCount",
          build=xsw_evil_assertion_before, prove=prove_wrapping("assertion"), naive=True),
    _case("evil-assertion-after-the-signed-one", xsw_evil_assertion_after.__doc__, "wrapping", "AssertionCount",
          build=xsw_evil_assertion_after, prove=prove_wrapping("assertion"), naive=True),
    _case("duplicate-id-evil-assertion-before", xsw_duplicate_id_before.__doc__, "wrapping", "AssertionCount",
          build=xsw_duplicate_id_before, prove=prove_wrapping("assertion")),
    _case("duplicate-id-evil-assertion-after", xsw_duplicate_id_after.__doc__, "wrapping", "AssertionCount",
          build=xsw_duplicate_id_after, prove=prove_wrapping("assertion")),
    _case("xsw4-signed-assertion-inside-the-evil-one", xsw_signed_inside_evil.__doc__, "wrapping", "AssertionCount",
          build=xsw_signed_inside_evil, prove=prove_wrapping("assertion")),
    _case("signed-assertion-in-the-evil-ones-advice", xsw_signed_in_evil_advice.__doc__, "wrapping", "AssertionCount",
          build=xsw_signed_in_evil_advice, prove=prove_wrapping("assertion")),
    _case("xsw5-signature-on-evil-copy-original-appended", xsw_signature_on_evil_copy.__doc__, "wrapping",
          "AssertionCount", build=xsw_signature_on_evil_copy, prove=prove_wrapping("assertion")),
    _case("xsw6-original-inside-the-evil-signature", xsw_original_inside_evil_signature.__doc__, "wrapping",
          "AssertionCount", build=xsw_original_inside_evil_signature, prove=prove_wrapping("assertion")),
    _case("xsw7-evil-assertion-in-extensions", xsw_evil_in_extensions.__doc__, "wrapping", "AssertionCount",
          build=xsw_evil_in_extensions, prove=prove_wrapping("assertion"), naive=True),
    _case("signed-assertion-hidden-in-extensions", xsw_signed_in_extensions.__doc__, "wrapping", "AssertionCount",
          build=xsw_signed_in_extensions, prove=prove_wrapping("assertion")),
    _case("xsw8-original-in-the-signatures-object", xsw_original_in_signature_object.__doc__, "wrapping",
          "AssertionCount", build=xsw_original_in_signature_object, prove=prove_wrapping("assertion")),
    _case("signed-assertion-in-the-evil-signatures-object", xsw_signed_in_evil_signature_object.__doc__, "wrapping",
          "AssertionCount", build=xsw_signed_in_evil_signature_object, prove=prove_wrapping("assertion")),
    # -- signature wrapping with a single assertion -> Signature (the signed node must be the parent)
    _case("assertion-signature-moved-to-the-response", assertion_signature_moved_to_response.__doc__, "wrapping",
          "Signature", build=assertion_signature_moved_to_response, prove=prove_misplaced_signature, naive=True),
    _case("evil-assertion-with-the-signature-of-a-signed-error-response",
          evil_assertion_with_signature_of_error_response.__doc__, "wrapping", "Signature",
          build=evil_assertion_with_signature_of_error_response, prove=prove_misplaced_signature, naive=True),
    # -- signature wrapping, response signed
    _case("xsw1-signed-response-in-the-signatures-object", xsw1_response_in_signature_object.__doc__, "wrapping",
          "AssertionCount", signed="response", genuine={"sign": "response"}, build=xsw1_response_in_signature_object,
          prove=prove_wrapping("response")),
    _case("xsw2-signed-response-before-a-detached-signature", xsw2_response_before_signature.__doc__, "wrapping",
          "AssertionCount", signed="response", genuine={"sign": "response"}, build=xsw2_response_before_signature,
          prove=prove_wrapping("response")),
    _case("signed-response-hidden-in-the-evil-responses-extensions", signed_response_in_extensions.__doc__,
          "wrapping", "AssertionCount", signed="response", genuine={"sign": "response"},
          build=signed_response_in_extensions, prove=prove_wrapping("response"), naive=True),
    _case("evil-response-wrapping-a-signed-error-response", wrapped_signed_error_response.__doc__, "wrapping",
          "Signature", signed="response", genuine={"sign": "response"}, build=wrapped_signed_error_response,
          prove=prove_misplaced_signature, naive=True),
    _case("response-signature-moved-into-the-assertion", response_signature_moved_into_assertion.__doc__,
          "wrapping", "Signature", signed="response", genuine={"sign": "response"},
          build=response_signature_moved_into_assertion, prove=prove_misplaced_signature, naive=True),

    # -- signatures
    _case("stripped-signature", stripped_signature.__doc__, "signature", "Signature", build=stripped_signature,
          prove=prove_stripped),
    _case("content-altered-after-signing", altered_after_signing.__doc__, "signature", "Signature",
          build=altered_after_signing, prove=prove_altered, naive=False),
    _case("untrusted-key-with-its-own-cert-in-keyinfo",
          "Signed by a key not in the IdP metadata, its certificate in KeyInfo (a key in KeyInfo only)", "signature",
          "Signature", genuine={"signing_key": "untrusted"}, prove=prove_signed_by("untrusted", "untrusted"), naive=False),
    _case("untrusted-key-with-the-idps-cert-in-keyinfo",
          "Signed by a key not in the metadata, the IdP's genuine certificate in KeyInfo", "signature", "Signature",
          genuine={"signing_key": "untrusted", "keyinfo_key": "rsa"}, prove=prove_signed_by("untrusted", "rsa"),
          naive=False),
    # naive=True: xmlsec1's defaults take a bare KeyValue from the message over the loaded certificate
    _case("untrusted-key-as-a-bare-key-value-in-keyinfo", keyinfo_as_bare_key_value.__doc__, "signature", "Signature",
          genuine={"signing_key": "untrusted"}, build=keyinfo_as_bare_key_value,
          prove=prove_signed_by("untrusted", None, bare_key_value=True), naive=True),
    _case("rsa-sha1-signature-with-sha1-digest", "RSA-SHA1 signature and SHA-1 digest (tenant without --allow-sha1)",
          "signature", "Signature", genuine={"sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1},
          prove=prove_signature_template(sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1), naive=True),
    _case("rsa-sha256-signature-with-sha1-digest", "RSA-SHA256 signature over a SHA-1 digest", "signature",
          "Signature", genuine={"digest_alg": DIGEST_SHA1},
          prove=prove_signature_template(sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA1), naive=True),
    _case("reference-uri-empty-whole-document", "A valid signature whose Reference URI is \"\" (the whole document)",
          "signature", "Signature", build=lambda ctx: resign(ctx, ctx.genuine, reference_uri=""),
          prove=prove_signature_template(uri=""), naive=True),
    _case("transform-exclusive-c14n-with-comments", "A valid signature with the exc-c14n#WithComments transform",
          "signature", "Signature",
          build=lambda ctx: resign(ctx, ctx.genuine, transforms=(TRANSFORM_ENVELOPED, TRANSFORM_EXC_C14N_WITH_COMMENTS)),
          prove=prove_signature_template(transforms=TRANSFORM_EXC_C14N_WITH_COMMENTS), naive=True),
    _case("transform-inclusive-c14n", "A valid signature with inclusive C14N 1.0 as transform and SignedInfo c14n",
          "signature", "Signature",
          build=lambda ctx: resign(ctx, ctx.genuine, transforms=(TRANSFORM_ENVELOPED, TRANSFORM_C14N10),
                                   c14n=TRANSFORM_C14N10),
          prove=prove_signature_template(transforms=TRANSFORM_C14N10, c14n=TRANSFORM_C14N10), naive=True),
    _case("transform-xpath", "A valid signature with an XPath filter transform", "signature", "Signature",
          build=lambda ctx: resign(ctx, ctx.genuine, transforms=(TRANSFORM_XPATH, TRANSFORM_EXC_C14N)),
          prove=prove_signature_template(transforms=TRANSFORM_XPATH), naive=True),
    _case("only-the-response-signed-for-an-assertion-tenant",
          "A valid response signature, the assertion unsigned (tenant --signed assertion)", "signature", "Signature",
          genuine={"sign": "response"}, prove=prove_signatures_on("response")),
    _case("only-the-assertion-signed-for-a-response-tenant",
          "A valid assertion signature, the response unsigned (tenant --signed response)", "signature", "Signature",
          signed="response", genuine={"sign": "assertion"}, prove=prove_signatures_on("assertion")),
    _case("only-the-assertion-signed-for-a-both-tenant",
          "A valid assertion signature, the response unsigned (tenant --signed both)", "signature", "Signature",
          signed="both", genuine={"sign": "assertion"}, prove=prove_signatures_on("assertion")),
    _case("only-the-response-signed-for-a-both-tenant",
          "A valid response signature, the assertion unsigned (tenant --signed both)", "signature", "Signature",
          signed="both", genuine={"sign": "response"}, prove=prove_signatures_on("response")),
    _case("unsigned-encrypted-assertion", "An encrypted assertion that carries no signature, response unsigned",
          "signature", "Signature", genuine={"sign": "none", "encrypt": "aes128-cbc"},
          prove=prove_encrypted(decrypts_with_sp=True)),
    _case("xinclude-in-name-id", xinclude_in_name_id.__doc__, "signature", "Signature", build=xinclude_in_name_id,
          naive=False),

    # -- several assertions
    _case("two-validly-signed-assertions", two_signed_assertions.__doc__, "assertions", "AssertionCount",
          build=two_signed_assertions, prove=prove_two_signed),
    _case("plain-evil-assertion-beside-an-encrypted-one", plain_assertion_beside_encrypted.__doc__, "assertions",
          "AssertionCount", genuine={"encrypt": "aes128-cbc"}, build=plain_assertion_beside_encrypted,
          prove=prove_plain_beside_encrypted),

    # -- encryption
    _case("rsa-1-5-key-transport", "EncryptedAssertion whose key is transported with RSA PKCS#1 v1.5 (only RSA-OAEP)",
          "encryption", "Decryption", genuine={"encrypt": "aes128-cbc", "key_transport": KEY_TRANSPORT_RSA_1_5},
          prove=prove_encrypted(KEY_TRANSPORT_RSA_1_5)),
    _case("encrypted-for-another-key", "EncryptedAssertion encrypted for a certificate that is not the SP's",
          "encryption", "Decryption", genuine={"encrypt": "aes256-gcm", "encrypt_cert_pem": "stranger"},
          prove=prove_encrypted(decrypts_with_sp=False, other_key="stranger")),

    # -- XML
    _case("doctype", "A harmless DOCTYPE before the (validly signed) Response", "xml", "DOCTYPE", status=400,
          error="invalid_request", build=plain_doctype, prove=prove_doctype("<!DOCTYPE")),
    _case("external-entity-file", "DOCTYPE with an external entity SYSTEM file:///etc/passwd used in the NameID",
          "xml", "DOCTYPE", status=400, error="invalid_request", build=external_entity_file,
          prove=prove_doctype("file:///etc/passwd")),
    _case("external-entity-over-http", "DOCTYPE with an external entity on a loopback URL used in the NameID", "xml",
          "DOCTYPE", status=400, error="invalid_request", build=external_entity_http,
          prove=prove_doctype("xxe-probe", "/xxe-probe"), probe="/xxe-probe"),
    _case("external-dtd-over-http", "DOCTYPE naming an external DTD on a loopback URL", "xml", "DOCTYPE", status=400,
          error="invalid_request", build=external_dtd, prove=prove_doctype("dtd-probe", "/dtd-probe"),
          probe="/dtd-probe"),
    # A libxml2 that refuses entity amplification while parsing (2.11+) fails it as XML before any
    # DOCTYPE check can run; one that parses the internal subset without expanding it sees the DOCTYPE.
    _case("billion-laughs", "DOCTYPE with nested entities (entity expansion) used in the NameID", "xml",
          ("DOCTYPE", "XML"), status=400, error="invalid_request", build=billion_laughs, prove=prove_doctype("lol9")),
    _case("not-well-formed", "The response cut in half", "xml", "XML", status=400, error="invalid_request",
          build=not_well_formed, prove=prove_not_well_formed),

    # -- status
    _case("failed-status-signed", "A signed Response with Status Responder/AuthnFailed (no assertion)", "status",
          "Status", genuine={"sign": "response", "status": (STATUS_AUTHN_FAILED, "authentication failed")},
          prove=prove_valid_and(lambda r: "Success" not in r.find("samlp:Status/samlp:StatusCode", NS).get("Value"),
                                node="response")),

    _case("failed-status-unsigned", "An unsigned Response with Status Responder/AuthnFailed (no assertion)", "status",
          "Status", genuine={"sign": "none", "status": (STATUS_AUTHN_FAILED, "authentication failed")},
          prove=lambda ctx, xml: prove_unsigned_failed_status(xml)),

    # -- what the signed response says (all validly signed by the IdP)
    _case("wrong-destination", "Response Destination another SP's ACS", "conditions", "Destination",
          genuine={"destination": OTHER_ACS}, prove=prove_valid_and(lambda r: r.get("Destination") == OTHER_ACS)),
    _case("missing-destination", "No Destination on the Response", "conditions", "Destination",
          genuine={"destination": None}, prove=prove_valid_and(lambda r: r.get("Destination") is None)),
    _case("wrong-issuer", "Assertion (and Response) Issuer another IdP's entityID, signed with the trusted key",
          "conditions", "Issuer", genuine={"issuer": OTHER_ISSUER},
          prove=prove_valid_and(lambda r: text_at("saml:Assertion/saml:Issuer")(r) == [OTHER_ISSUER])),
    _case("wrong-response-issuer", "Response Issuer another entityID, the Assertion's right", "conditions", "Issuer",
          genuine={"response_issuer": OTHER_ISSUER},
          prove=prove_valid_and(lambda r: text_at("saml:Issuer")(r) == [OTHER_ISSUER])),
    _case("expired", "Conditions and SubjectConfirmationData NotOnOrAfter 5 minutes ago", "conditions", "Conditions",
          genuine={"not_before": -600, "not_on_or_after": -300, "scd_not_on_or_after": -300},
          prove=prove_valid_and(lambda r: text_at("saml:Assertion/saml:Conditions/@NotOnOrAfter")(r))),
    _case("expired-90-seconds-ago", "Conditions NotOnOrAfter 90 s ago (beyond the 60 s skew)", "conditions",
          "Conditions", genuine={"not_before": -600, "not_on_or_after": -90},
          prove=prove_valid_and(lambda r: text_at("saml:Assertion/saml:Conditions/@NotOnOrAfter")(r))),
    _case("not-yet-valid", "Conditions NotBefore 5 minutes ahead", "conditions", "Conditions",
          genuine={"not_before": 300, "not_on_or_after": 900},
          prove=prove_valid_and(lambda r: text_at("saml:Assertion/saml:Conditions/@NotBefore")(r))),
    _case("wrong-audience", "AudienceRestriction naming another SP only", "conditions", "Audience",
          genuine={"audiences": [OTHER_SP]},
          prove=prove_valid_and(lambda r: text_at(".//saml:Audience")(r) == [OTHER_SP])),
    _case("no-audience-restriction", "Conditions without any AudienceRestriction", "conditions", "Audience",
          genuine={"audiences": []}, prove=prove_valid_and(lambda r: not r.xpath(".//saml:Audience", namespaces=NS))),
    _case("wrong-recipient", "Bearer SubjectConfirmationData Recipient another SP's ACS", "conditions",
          "SubjectConfirmation", genuine={"recipient": OTHER_ACS},
          prove=prove_valid_and(lambda r: text_at(".//saml:SubjectConfirmationData/@Recipient")(r) == [OTHER_ACS])),
    _case("subject-confirmation-expired", "SubjectConfirmationData NotOnOrAfter 5 minutes ago, Conditions valid",
          "conditions", "SubjectConfirmation", genuine={"scd_not_on_or_after": -300},
          prove=prove_valid_and(lambda r: text_at(".//saml:SubjectConfirmationData/@NotOnOrAfter")(r))),
    _case("holder-of-key-confirmation", "SubjectConfirmation method holder-of-key, no bearer", "conditions",
          "SubjectConfirmation", genuine={"confirmation_method": CM_HOLDER_OF_KEY},
          prove=prove_valid_and(lambda r: text_at(".//saml:SubjectConfirmation/@Method")(r) == [CM_HOLDER_OF_KEY])),
    _case("wrong-in-response-to", "InResponseTo (Response and SubjectConfirmationData) of another request",
          "conditions", "InResponseTo", genuine={"in_response_to": "_not-a-pending-request-0001"},
          prove=prove_valid_and(lambda r: r.get("InResponseTo") == "_not-a-pending-request-0001")),
    _case("wrong-in-response-to-in-subject-confirmation-only",
          "Response InResponseTo right, SubjectConfirmationData InResponseTo another request", "conditions",
          "InResponseTo", genuine={"scd_in_response_to": "_not-a-pending-request-0002"},
          prove=prove_valid_and(lambda r: text_at(".//saml:SubjectConfirmationData/@InResponseTo")(r)
                                == ["_not-a-pending-request-0002"])),
]

CASES_BY_NAME = {case.name: case for case in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate case names"


def case_options(case: Case, idp: SamlIdP) -> dict:
    """The case's ResponseOptions changes, with key names resolved (encrypt_cert_pem: a key name)."""
    options = dict(case.genuine)
    if isinstance(options.get("encrypt_cert_pem"), str) and not options["encrypt_cert_pem"].startswith("-----"):
        options["encrypt_cert_pem"] = idp.key(options["encrypt_cert_pem"]).cert_pem
    return options


def hostile_response(case: Case, ctx: Ctx) -> bytes:
    return case.build(ctx) if case.build is not None else ctx.genuine
