"""A real SAML 2.0 identity provider for the interop tests of the broker's SAML sign-in (issue 3).

Built on pysaml2: `saml2.server.Server` makes every response (`create_authn_response`,
`create_error_response`), pysaml2's metadata (`create_metadata_string`) describes the IdP, its
`MetadataStore` holds the broker's SP metadata, `parse_authn_request` reads the AuthnRequest,
`apply_binding(HTTP-POST)` makes the auto-post form, and pysaml2's xmlsec1 backend (the Debian
`xmlsec1` command) signs and encrypts. Keys and self-signed certificates (RSA-2048, ECDSA P-256)
are made at run time with `cryptography` in a temporary folder; nothing secret is committed.

Where pysaml2 needs help, a small subclass (`_HookedServer`) changes the objects pysaml2 builds
*before* pysaml2 signs them, so a response with a wrong audience, recipient, issuer, ... carries a
genuine, valid IdP signature and is refused for the right reason:

- assertion and response fields (audience, recipient, destination, issuer, validity, InResponseTo,
  NameID, attributes, assertion ID, confirmation method): `setup_assertion` / `_add_info` hooks;
- encryption: pysaml2's `_encrypt_assertion` always asks xmlsec1 for 3DES-CBC with a `des-192`
  session key; the hook makes the same xmlsec1 call (pysaml2's `pre_encryption_part` template,
  `sec.encrypt_assertion`) with AES-128/256-CBC or AES-128/256-GCM and the chosen key transport
  (RSA-OAEP, or RSA 1.5 for the refusal test);
- ECDSA: pysaml2 signs an *assertion* with any key xmlsec1 can load (here P-256, ecdsa-sha256), but
  `Entity.sign` refuses non-RSA algorithms for a *response*: ECDSA is offered for assertions only.
- The AuthnRequest's redirect signature is checked here over the query string exactly as received
  (SAML bindings §3.4.4.1), with the SP's signing certificate from its metadata (`cryptography`).
  pysaml2's own check (`verify_redirect_signature`) rebuilds the string by url-encoding the decoded
  values again, which §3.4.4.1 says not to do; its verdict is recorded too, for information.

The IdP serves on 127.0.0.1 (plain http, a thread of the test process): `GET /idp/metadata`
(its metadata, or what a test told it to serve, for the refresh tests) and `GET /idp/sso` (the
HTTP-Redirect SSO endpoint: checks the AuthnRequest, answers an auto-post form with the response).
The entityID is the metadata URL. There is no login page: the configured user is signed in at once.

Control surface (direct calls; the IdP runs in-process):

    idp.trust_sp(metadata_xml)                  the broker's SP metadata (one per tenant)
    idp.set_user(user, sp_entity_id=None)       the signed-in user (per SP, or the default)
    idp.set_defaults(sp_entity_id, **changes)   ResponseOptions for every response to that SP
    idp.next_response(**changes)                ResponseOptions for the NEXT response only (FIFO)
    idp.respond(request, **changes)             a response to a received AuthnRequest, as bytes
    idp.unsolicited(sp_entity_id, **changes)    an IdP-initiated response, as bytes
    idp.serve_metadata(body, status=200)        what GET /idp/metadata answers (None: the real one)
    idp.metadata_keys = ["rsa", "rsa2"]         certificates published (rollover), by key name
    idp.signing_key = "rsa2"                    the key responses are signed with by default

Everything the IdP issues is recorded in `idp.issued` (XML) so the tests can check that none of it
is echoed or logged by the broker.

The second half drives the broker (test_saml_*.py): `require_saml_endpoints` (skip until the
broker has `idps add-saml`), `add_saml_idp`, `SamlBrowser` (a `requests.Session`, redirects
followed by hand), `sign_in` (the whole flow with every documented check of the happy path),
`expect_refused` (status, error, audit `Check`, no session, no user, nothing leaked).
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
import zlib
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, unquote_plus, urljoin, urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

with warnings.catch_warnings():
    # pysaml2 7.5 still imports cryptography's CFB mode from its old place (a deprecation warning
    # at import time, nothing to do with these tests).
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp
    from saml2.config import IdPConfig
    from saml2.metadata import create_metadata_string
    from saml2.server import Server
    from saml2.sigver import (RSACrypto, get_pem_wrapped_unwrapped, make_temp, pre_encryption_part,
                              verify_redirect_signature)

from oidc_provider import (BROWSER_ACCEPT, JSON_ACCEPT, SESSION_COOKIE, SESSION_MEMBERS, Redacted, audit_count,
                           audit_records, is_cleared, new_oidc_broker, query_of, set_cookies)

HTTP_TIMEOUT = 10
XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"

# -- namespaces
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS = {"samlp": NS_SAMLP, "saml": NS_SAML, "md": NS_MD, "ds": NS_DS, "xenc": NS_XENC}
ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"

# -- algorithms (XML-DSig, XML-Enc)
SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
SIG_RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SIG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIG_ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
TRANSFORM_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
TRANSFORM_EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
TRANSFORM_EXC_C14N_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
TRANSFORM_C14N10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
KEY_TRANSPORT_RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
KEY_TRANSPORT_RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
# name -> (EncryptedData algorithm, xmlsec1 --session-key)
CONTENT_ENCRYPTION = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
}
REDIRECT_SIG_HASHES = {
    SIG_RSA_SHA1: hashes.SHA1, SIG_RSA_SHA256: hashes.SHA256, SIG_RSA_SHA384: hashes.SHA384,
    SIG_RSA_SHA512: hashes.SHA512, SIG_ECDSA_SHA256: hashes.SHA256, SIG_ECDSA_SHA384: hashes.SHA384,
}

# -- NameID formats and other SAML values
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
CM_HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
AUTHN_PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
SAML_TIME = "%Y-%m-%dT%H:%M:%SZ"


def saml_time(offset_seconds: float = 0) -> str:
    return time.strftime(SAML_TIME, time.gmtime(time.time() + offset_seconds))


def safe_parser() -> etree.XMLParser:
    """lxml, hardened: no entity expansion, no DTD loading, no network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=False)


def parse_xml(data: bytes | str) -> etree._Element:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return etree.fromstring(data, safe_parser())


# ----------------------------------------------------------------------------------------------
# Keys and certificates, made at run time


@dataclass
class KeyPair:
    """A private key and its self-signed certificate, as PEM files in the IdP's folder."""
    name: str
    kind: str  # "rsa" or "ec"
    key_path: Path
    cert_path: Path
    private_key: Any = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def cert_b64(self) -> str:
        """The certificate as ds:X509Certificate holds it (base64 of the DER, one line)."""
        return base64.b64encode(self.cert_der).decode("ascii")

    @property
    def cert_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def default_sign_alg(self) -> str:
        return SIG_ECDSA_SHA256 if self.kind == "ec" else SIG_RSA_SHA256


def make_key_pair(directory: Path, name: str, kind: str = "rsa", bits: int = 2048, days: int = 30,
                  file_stem: str | None = None) -> KeyPair:
    """A new RSA (`bits`) or ECDSA P-256 key and a self-signed certificate for it, written as
    `STEM.key` (PKCS#8, 0600) and `STEM.crt` (STEM: `file_stem`, default `name`)."""
    stem = file_stem or name
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unknown key kind {kind}")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tessera-interop {stem}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.crt"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(name, kind, key_path, cert_path, key, cert)


def cert_from_b64(text: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


# ----------------------------------------------------------------------------------------------
# What a response says, and how it may be made wrong


class _Default:
    """The value the IdP would use on its own (from the request, the SP metadata, the clock)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


@dataclass
class SamlUser:
    """The signed-in user: the NameID and the attributes (Name -> values). Attribute NameFormat is
    `uri` for `urn:` names, none for `http(s):` names (as Entra ID and ADFS send them) and `basic`
    otherwise, unless `name_formats` says; FriendlyName from `friendly_names`."""
    name_id: str | None
    name_id_format: str | None = NAMEID_EMAIL
    attributes: dict[str, list[str]] = field(default_factory=dict)
    friendly_names: dict[str, str] = field(default_factory=dict)
    name_formats: dict[str, str | None] = field(default_factory=dict)

    def values(self) -> list[str]:
        """Every value the user carries (NameID and attribute values)."""
        out = [self.name_id] if self.name_id else []
        for values in self.attributes.values():
            out.extend(values)
        return out

    def name_format(self, name: str) -> str | None:
        if name in self.name_formats:
            return self.name_formats[name]
        if name.startswith("urn:"):
            return ATTRNAME_URI
        if name.startswith(("http://", "https://")):
            return None
        return ATTRNAME_BASIC


DEFAULT_USER = SamlUser("ada@example.com", NAMEID_EMAIL,
                        {"urn:oid:0.9.2342.19200300.100.1.3": ["ada@example.com"],
                         "urn:oid:2.16.840.1.113730.3.1.241": ["Ada Lovelace"],
                         "groups": ["admins", "engineering"]},
                        {"urn:oid:0.9.2342.19200300.100.1.3": "mail",
                         "urn:oid:2.16.840.1.113730.3.1.241": "displayName"})


@dataclass
class ResponseOptions:
    """How one response is made. DEFAULT: what a correct IdP sends; None: left out.

    sign: "assertion", "response", "both" or "none". signing_key / keyinfo_key: names of the IdP's
    keys (`idp.key(name)`); the KeyInfo carries the certificate of `keyinfo_key` (default: the
    signing key's). encrypt: None or a CONTENT_ENCRYPTION name; key_transport: its URI;
    encrypt_cert_pem: the recipient certificate (default: the SP's encryption certificate from its
    metadata). Times are offsets in seconds from now."""
    sign: str = "assertion"
    signing_key: str | None = None
    keyinfo_key: str | None = None
    sign_alg: str | None = None
    digest_alg: str = DIGEST_SHA256
    encrypt: str | None = None
    key_transport: str = KEY_TRANSPORT_RSA_OAEP
    encrypt_cert_pem: str | None = None
    user: SamlUser | None = None
    in_response_to: Any = DEFAULT
    destination: Any = DEFAULT
    recipient: Any = DEFAULT
    scd_in_response_to: Any = DEFAULT
    audiences: Any = DEFAULT
    issuer: Any = DEFAULT
    response_issuer: Any = DEFAULT
    not_before: Any = DEFAULT
    not_on_or_after: Any = DEFAULT
    scd_not_on_or_after: Any = DEFAULT
    confirmation_method: str = CM_BEARER
    assertion_id: Any = DEFAULT
    status: tuple[str, str] | None = None  # (second-level StatusCode, message): an error response

    def changed(self, **changes: Any) -> "ResponseOptions":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown response options {sorted(unknown)}")
        return replace(self, **changes)


@dataclass
class AuthnRequestInfo:
    """An AuthnRequest the IdP received by HTTP-Redirect, and what it found checking it."""
    query: str = field(repr=False)
    xml: bytes = field(repr=False)
    id: str | None
    issuer: str | None
    destination: str | None
    acs_url: str | None
    protocol_binding: str | None
    version: str | None
    issue_instant: str | None
    sig_alg: str | None
    relay_state: str | None
    has_embedded_signature: bool
    signature_valid: bool
    signature_error: str | None
    pysaml2_signature_valid: bool | None
    pysaml2_error: str | None
    acs_in_metadata: bool
    received_at: float = field(default_factory=time.time)

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.signature_valid:
            found.append(f"redirect signature: {self.signature_error}")
        if self.pysaml2_error:
            found.append(f"pysaml2 refused the AuthnRequest: {self.pysaml2_error}")
        if not self.acs_in_metadata:
            found.append("AssertionConsumerServiceURL is not an HTTP-POST ACS of the SP metadata")
        return found


class SamlRequestError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# pysaml2, with hooks


class _Hooks:
    """Changes applied to the objects pysaml2 builds, before pysaml2 signs and encrypts them."""

    def __init__(self, idp: "SamlIdP", options: ResponseOptions, sp_entity_id: str, acs_url: str,
                 in_response_to: str | None) -> None:
        self.idp = idp
        self.options = options
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.in_response_to = in_response_to
        self.user = options.user or idp.user_for(sp_entity_id)

    def assertion(self, assertion: saml.Assertion) -> None:
        o = self.options
        if o.assertion_id is not DEFAULT:
            assertion.id = o.assertion_id
        if o.issuer is not DEFAULT:
            assertion.issuer = None if o.issuer is None else saml.Issuer(text=o.issuer, format=NAMEID_ENTITY)
        conditions = assertion.conditions
        if o.not_before is not DEFAULT:
            conditions.not_before = None if o.not_before is None else saml_time(o.not_before)
        if o.not_on_or_after is not DEFAULT:
            conditions.not_on_or_after = None if o.not_on_or_after is None else saml_time(o.not_on_or_after)
        audiences = [self.sp_entity_id] if o.audiences is DEFAULT else list(o.audiences or [])
        conditions.audience_restriction = (
            [saml.AudienceRestriction(audience=[saml.Audience(text=a) for a in audiences])] if audiences else [])
        subject = assertion.subject
        if self.user.name_id is None:
            subject.name_id = None
        confirmation = subject.subject_confirmation[0]
        confirmation.method = o.confirmation_method
        data = confirmation.subject_confirmation_data
        if o.recipient is not DEFAULT:
            data.recipient = o.recipient
        if o.scd_not_on_or_after is not DEFAULT:
            data.not_on_or_after = None if o.scd_not_on_or_after is None else saml_time(o.scd_not_on_or_after)
        scd_irt = o.scd_in_response_to if o.scd_in_response_to is not DEFAULT else (
            o.in_response_to if o.in_response_to is not DEFAULT else self.in_response_to)
        data.in_response_to = scd_irt
        attributes = []
        for name, values in self.user.attributes.items():
            attributes.append(saml.Attribute(
                name=name, name_format=self.user.name_format(name), friendly_name=self.user.friendly_names.get(name),
                attribute_value=[saml.AttributeValue(text=value) for value in values]))
        assertion.attribute_statement = [saml.AttributeStatement(attribute=attributes)] if attributes else []

    def response(self, response: samlp.Response) -> None:
        o = self.options
        if o.destination is not DEFAULT:
            response.destination = o.destination
        if o.in_response_to is not DEFAULT:
            response.in_response_to = o.in_response_to
        issuer = o.response_issuer if o.response_issuer is not DEFAULT else o.issuer
        if issuer is not DEFAULT:
            response.issuer = None if issuer is None else saml.Issuer(text=issuer, format=NAMEID_ENTITY)


class _HookedServer(Server):
    hooks: _Hooks | None = None

    # No AssertionIDRequest / AuthnQuery service: pysaml2 would otherwise keep every assertion
    # (and read its NameID, which a test may have left out).
    def support_AssertionIDRequest(self):
        return False

    def support_AuthnQuery(self):
        return False

    def setup_assertion(self, *args: Any, **kwargs: Any):
        assertion = super().setup_assertion(*args, **kwargs)
        if self.hooks is not None and isinstance(assertion, saml.Assertion):
            self.hooks.assertion(assertion)
        return assertion

    def _add_info(self, msg, **kwargs):
        super()._add_info(msg, **kwargs)
        if self.hooks is not None and isinstance(msg, samlp.Response):
            self.hooks.response(msg)

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        # pysaml2's own version hard-codes TRIPLE_DES_CBC and a des-192 session key: the same
        # xmlsec1 call through pysaml2's backend, with the content algorithm and key transport asked for.
        options = self.hooks.options
        algorithm, session_key = CONTENT_ENCRYPTION[options.encrypt]
        wrapped, unwrapped = get_pem_wrapped_unwrapped(encrypt_cert)
        certificate = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=self.config.delete_tmpfiles)
        template = pre_encryption_part(msg_enc=algorithm, key_enc=options.key_transport, encrypt_cert=unwrapped)
        return self.sec.encrypt_assertion(response, certificate.name, template, key_type=session_key,
                                          node_xpath=node_xpath)


# ----------------------------------------------------------------------------------------------
# The identity provider


class SamlIdP:
    """A pysaml2 IdP on a loopback port of its own. See the module docstring."""

    def __init__(self, directory: Path | None = None, *, name: str = "idp", signing_key: str = "rsa",
                 metadata_keys: list[str] | tuple[str, ...] | None = None) -> None:
        if not os.access(XMLSEC1, os.X_OK):
            raise RuntimeError("the xmlsec1 command is missing (Debian package xmlsec1; `make deps` installs it)")
        self.name = name
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix=f"saml-{name}."))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.keys: dict[str, KeyPair] = {}
        self.signing_key = signing_key
        self.metadata_keys = list(metadata_keys or [signing_key])
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.metadata_url = f"{self.base_url}/idp/metadata"
        self.entity_id = self.metadata_url
        self.sso_url = f"{self.base_url}/idp/sso"
        self.thread: threading.Thread | None = None
        # state, reset by reset()
        self.requests: list[AuthnRequestInfo] = []
        self.refused_requests: list[str] = []
        self.issued: list[bytes] = []
        self.hits: dict[str, int] = {}
        self._users: dict[str | None, SamlUser] = {None: DEFAULT_USER}
        self._defaults: dict[str, dict] = {}
        self._next: list[dict] = []
        self._served_metadata: bytes | None = None
        self._metadata_status = 200
        self.sps: dict[str, bytes] = {}
        self.server = self._make_server()

    # -- life cycle

    def start(self) -> "SamlIdP":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"saml-idp-{self.name}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        """Back to the defaults (keys, trusted SPs, per-SP users and defaults stay)."""
        with self.lock:
            self._next.clear()
            self._served_metadata = None
            self._metadata_status = 200

    # -- keys

    def key(self, name: str) -> KeyPair:
        """The key pair `name`, made on first use: ECDSA P-256 when the name starts with "ec",
        RSA-2048 otherwise."""
        with self.lock:
            if name not in self.keys:
                kind = "ec" if name.startswith("ec") else "rsa"
                self.keys[name] = make_key_pair(self.directory / "keys", name, kind, file_stem=f"{self.name}-{name}")
            return self.keys[name]

    def _make_server(self) -> _HookedServer:
        signing = self.key(self.signing_key)
        config = IdPConfig().load({
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC1,
            "key_file": str(signing.key_path),
            "cert_file": str(signing.cert_path),
            "delete_tmpfiles": True,
            "accepted_time_diff": 60,
            "service": {"idp": {
                "name": f"Tessera interop IdP {self.name}",
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT],
                # The redirect signature is checked by receive_authn_request over the raw query
                # (pysaml2's own check re-encodes the values; its verdict is only recorded).
                "want_authn_requests_signed": False,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": ATTRNAME_URI}},
            }},
            "metadata": {},
        })
        server = _HookedServer(config=config)
        return server

    # -- metadata

    def metadata_xml(self, keys: list[str] | tuple[str, ...] | None = None, *, sso_url: str | None = None,
                     entity_id: str | None = None) -> bytes:
        """pysaml2's metadata of this IdP, with one KeyDescriptor use="signing" per key in `keys`
        (default: `metadata_keys`), and optionally another SSO location or entityID."""
        with self.lock:
            text = create_metadata_string(None, config=self.server.config, sign=False)
        root = parse_xml(text)
        descriptor = root.find("md:IDPSSODescriptor", NS)
        existing = descriptor.findall("md:KeyDescriptor", NS)
        position = list(descriptor).index(existing[0]) if existing else 0
        for element in existing:
            descriptor.remove(element)
        for offset, name in enumerate(keys if keys is not None else self.metadata_keys):
            descriptor.insert(position + offset, key_descriptor(self.key(name).cert_b64, "signing"))
        # One HTTP-Redirect SingleSignOnService, at `sso_url` (which pysaml2 then accepts as an
        # AuthnRequest Destination too: a moved SSO URL, for the refresh tests).
        services = descriptor.findall("md:SingleSignOnService", NS)
        for extra in services[1:]:
            descriptor.remove(extra)
        services[0].set("Location", sso_url or self.sso_url)
        if sso_url is not None:
            with self.lock:
                accepted = self.server.config.getattr("endpoints", "idp")["single_sign_on_service"]
                if (sso_url, BINDING_HTTP_REDIRECT) not in accepted:
                    accepted.append((sso_url, BINDING_HTTP_REDIRECT))
        if entity_id is not None:
            root.set("entityID", entity_id)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def write_metadata(self, path: Path, **kwargs: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.metadata_xml(**kwargs))
        return path

    def serve_metadata(self, body: bytes | None, status: int = 200) -> None:
        """What GET /idp/metadata answers from now on; None: the real metadata (current keys)."""
        with self.lock:
            self._served_metadata = body
            self._metadata_status = status

    # -- the service providers

    def trust_sp(self, metadata: bytes | str) -> str:
        """Loads an SP's metadata (the broker's, per tenant) into pysaml2's MetadataStore; returns
        its entityID."""
        text = metadata.decode("utf-8") if isinstance(metadata, bytes) else metadata
        entity_id = parse_xml(text).get("entityID")
        with self.lock:
            self.server.metadata.load("inline", text)
            self.sps[entity_id] = text.encode("utf-8")
        return entity_id

    def sp_acs_urls(self, sp_entity_id: str) -> list[str]:
        with self.lock:
            services = self.server.metadata.assertion_consumer_service(sp_entity_id, BINDING_HTTP_POST)
        return [service["location"] for service in services]

    def sp_certificates(self, sp_entity_id: str, use: str) -> list[str]:
        """Base64 DER certificates of the SP for `use` ("signing" or "encryption"), from its metadata."""
        with self.lock:
            found = self.server.metadata.certs(sp_entity_id, "spsso", use)
        out = []
        for _name, cert in found:
            text = "".join(cert.split())
            if text not in out:
                out.append(text)
        return out

    def set_user(self, user: SamlUser, sp_entity_id: str | None = None) -> None:
        with self.lock:
            self._users[sp_entity_id] = user

    def user_for(self, sp_entity_id: str | None) -> SamlUser:
        with self.lock:
            return self._users.get(sp_entity_id, self._users[None])

    def set_defaults(self, sp_entity_id: str, **changes: Any) -> None:
        ResponseOptions().changed(**changes)  # unknown names fail here
        with self.lock:
            self._defaults[sp_entity_id] = dict(changes)

    def next_response(self, **changes: Any) -> None:
        ResponseOptions().changed(**changes)
        with self.lock:
            self._next.append(dict(changes))

    def pending_next(self) -> list[dict]:
        with self.lock:
            return list(self._next)

    def options_for(self, sp_entity_id: str, **changes: Any) -> ResponseOptions:
        with self.lock:
            defaults = dict(self._defaults.get(sp_entity_id, {}))
        return ResponseOptions().changed(**{**defaults, **changes})

    # -- AuthnRequest (HTTP-Redirect binding)

    def receive_authn_request(self, query: str) -> AuthnRequestInfo:
        """Decodes and checks an AuthnRequest sent by HTTP-Redirect: the raw query string of
        GET /idp/sso. Raises SamlRequestError when it cannot be read at all."""
        raw: dict[str, str] = {}
        for part in query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            if name in raw:
                raise SamlRequestError(f"query parameter {name} repeated")
            raw[name] = value
        if "SAMLRequest" not in raw:
            raise SamlRequestError("no SAMLRequest")
        saml_request = unquote(raw["SAMLRequest"])
        try:
            xml = zlib.decompress(base64.b64decode(saml_request, validate=True), -15)
        except Exception as exc:
            raise SamlRequestError(f"SAMLRequest is not base64 of raw DEFLATE: {exc.__class__.__name__}") from None
        try:
            root = parse_xml(xml)
        except etree.XMLSyntaxError as exc:
            raise SamlRequestError(f"AuthnRequest is not well-formed XML: {exc}") from None
        if root.tag != f"{{{NS_SAMLP}}}AuthnRequest":
            raise SamlRequestError(f"not an AuthnRequest: {root.tag}")
        issuer_el = root.find("saml:Issuer", NS)
        issuer = issuer_el.text if issuer_el is not None else None
        sig_alg = unquote_plus(raw["SigAlg"]) if "SigAlg" in raw else None
        relay_state = unquote_plus(raw["RelayState"]) if "RelayState" in raw else None
        signature_b64 = unquote(raw["Signature"]) if "Signature" in raw else None

        certificates = self.sp_certificates(issuer, "signing") if issuer in self.sps else []
        if issuer not in self.sps:
            valid, error = False, "the Issuer is not an SP this IdP trusts"
        else:
            valid, error = redirect_signature_valid(query, certificates)

        pysaml2_valid = None
        if certificates and sig_alg and signature_b64:
            message = {"SAMLRequest": saml_request, "SigAlg": sig_alg, "Signature": signature_b64}
            if relay_state is not None:
                message["RelayState"] = relay_state
            try:
                pysaml2_valid = any(verify_redirect_signature(message, RSACrypto(None), cert=c) for c in certificates)
            except Exception:
                pysaml2_valid = False

        pysaml2_error = None
        try:
            with self.lock:
                parsed = self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
            if parsed is None:
                pysaml2_error = "parse_authn_request returned nothing"
        except Exception as exc:  # pysaml2's verdict (destination, schema, issue instant)
            pysaml2_error = f"{exc.__class__.__name__}: {str(exc)[:200]}"

        acs_url = root.get("AssertionConsumerServiceURL")
        info = AuthnRequestInfo(
            query=query, xml=xml, id=root.get("ID"), issuer=issuer, destination=root.get("Destination"),
            acs_url=acs_url, protocol_binding=root.get("ProtocolBinding"), version=root.get("Version"),
            issue_instant=root.get("IssueInstant"), sig_alg=sig_alg, relay_state=relay_state,
            has_embedded_signature=root.find("ds:Signature", NS) is not None, signature_valid=valid,
            signature_error=error, pysaml2_signature_valid=pysaml2_valid, pysaml2_error=pysaml2_error,
            acs_in_metadata=issuer in self.sps and acs_url in self.sp_acs_urls(issuer))
        with self.lock:
            self.requests.append(info)
        return info

    def request_by_id(self, request_id: str) -> AuthnRequestInfo | None:
        with self.lock:
            for info in reversed(self.requests):
                if info.id == request_id:
                    return info
        return None

    # -- responses

    def create_response(self, sp_entity_id: str, acs_url: str, in_response_to: str | None,
                        options: ResponseOptions) -> bytes:
        """A Response made by pysaml2 for the SP, as XML bytes."""
        if sp_entity_id not in self.sps:
            raise SamlRequestError(f"unknown SP {sp_entity_id}")
        key = self.key(options.signing_key or self.signing_key)
        keyinfo = self.key(options.keyinfo_key or key.name)
        sign_alg = options.sign_alg or key.default_sign_alg
        sign_assertion = options.sign in ("assertion", "both")
        sign_response = options.sign in ("response", "both")
        hooks = _Hooks(self, options, sp_entity_id, acs_url, in_response_to)
        encrypt_cert = None
        if options.encrypt:
            if options.encrypt_cert_pem:
                encrypt_cert = options.encrypt_cert_pem
            else:
                certs = self.sp_certificates(sp_entity_id, "encryption")
                if not certs:
                    raise SamlRequestError("the SP metadata has no encryption certificate")
                encrypt_cert = certs[0]
        user = hooks.user
        name_id = saml.NameID(format=user.name_id_format, text=user.name_id or "placeholder")
        with self.lock:
            server = self.server
            server.sec.key_file = str(key.key_path)
            server.sec.my_cert = keyinfo.cert_b64
            server.hooks = hooks
            try:
                if options.status is not None:
                    made = server.create_error_response(in_response_to, acs_url, info=options.status, sign=sign_response,
                                                        sign_alg=sign_alg, digest_alg=options.digest_alg)
                else:
                    made = server.create_authn_response(
                        {}, in_response_to, acs_url, sp_entity_id, name_id=name_id,
                        authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
                        sign_assertion=sign_assertion, sign_response=sign_response,
                        encrypt_assertion=bool(options.encrypt), encrypt_assertion_self_contained=True,
                        encrypt_cert_assertion=encrypt_cert, sign_alg=sign_alg, digest_alg=options.digest_alg)
            finally:
                server.hooks = None
                signing = self.key(self.signing_key)
                server.sec.key_file = str(signing.key_path)
                server.sec.my_cert = signing.cert_b64
            xml = str(made).encode("utf-8")
            if not xml.lstrip().startswith(b"<"):
                raise SamlRequestError(f"pysaml2 made no XML: {xml[:200]!r}")
            self.issued.append(xml)
        return xml

    def respond(self, request: AuthnRequestInfo, **changes: Any) -> bytes:
        """The response to a received AuthnRequest: the SP's defaults, then `changes`."""
        options = self.options_for(request.issuer, **changes)
        return self.create_response(request.issuer, request.acs_url, request.id, options)

    def unsolicited(self, sp_entity_id: str, acs_url: str | None = None, **changes: Any) -> bytes:
        """An IdP-initiated response (no InResponseTo) to the SP's ACS from its metadata."""
        acs = acs_url or self.sp_acs_urls(sp_entity_id)[0]
        options = self.options_for(sp_entity_id, **changes)
        return self.create_response(sp_entity_id, acs, None, options)

    def post_form(self, xml: bytes, acs_url: str, relay_state: str | None = None) -> str:
        """pysaml2's HTTP-POST binding: the auto-submitting HTML form carrying the response."""
        with self.lock:
            made = self.server.apply_binding(BINDING_HTTP_POST, xml.decode("utf-8"), acs_url, relay_state or "",
                                             response=True)
        return made["data"]

    # -- HTTP

    def _take_next(self) -> dict:
        with self.lock:
            return self._next.pop(0) if self._next else {}

    def _count(self, path: str) -> None:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def metadata_body(self) -> tuple[int, bytes]:
        with self.lock:
            status, body = self._metadata_status, self._served_metadata
        return status, (body if body is not None else self.metadata_xml())


def redirect_signature_valid(query: str, certificates: list[str]) -> tuple[bool, str | None]:
    """SAML bindings §3.4.4.1: the HTTP-Redirect signature is over `SAMLRequest=..&RelayState=..
    &SigAlg=..` (RelayState only when present; SAMLResponse in place of SAMLRequest for a
    response) with the values exactly as they appear in the query string. `certificates`: base64
    DER. Returns (valid, why not)."""
    raw: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name in raw:
            return False, f"{name} repeated"
        raw[name] = value
    message = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    if message not in raw or "SigAlg" not in raw or "Signature" not in raw:
        return False, "SAMLRequest, SigAlg or Signature missing"
    sig_alg = unquote_plus(raw["SigAlg"])
    if sig_alg not in REDIRECT_SIG_HASHES:
        return False, f"SigAlg {sig_alg!r} not supported"
    if not certificates:
        return False, "no signing certificate"
    signed = f"{message}={raw[message]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signed += f"&SigAlg={raw['SigAlg']}"
    try:
        signature = base64.b64decode(unquote(raw["Signature"]), validate=True)
    except ValueError:
        return False, "Signature is not base64"
    for cert in certificates:
        public = cert_from_b64(cert).public_key()
        try:
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), REDIRECT_SIG_HASHES[sig_alg]())
            else:
                public.verify(signature, signed.encode("ascii"), ec.ECDSA(REDIRECT_SIG_HASHES[sig_alg]()))
            return True, None
        except (InvalidSignature, ValueError):
            continue
    return False, "the signature does not verify with the signing certificate(s)"


def key_descriptor(cert_b64: str, use: str | None) -> etree._Element:
    """<md:KeyDescriptor use=..><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"""
    element = etree.Element(f"{{{NS_MD}}}KeyDescriptor", nsmap={"md": NS_MD})
    if use is not None:
        element.set("use", use)
    info = etree.SubElement(element, f"{{{NS_DS}}}KeyInfo", nsmap={"ds": NS_DS})
    data = etree.SubElement(info, f"{{{NS_DS}}}X509Data")
    etree.SubElement(data, f"{{{NS_DS}}}X509Certificate").text = cert_b64
    return element


def _make_handler(idp: SamlIdP):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            idp._count(path)
            if path == "/idp/metadata":
                status, body = idp.metadata_body()
                self._send(status, body, "application/samlmetadata+xml" if status == 200 else "text/plain")
                return
            if path == "/idp/sso" or path.startswith("/idp/sso-"):  # sso-*: a moved SSO URL (refresh tests)
                try:
                    request = idp.receive_authn_request(query)
                except SamlRequestError as exc:
                    with idp.lock:
                        idp.refused_requests.append(str(exc))
                    self._send(400, f"refused: {exc}".encode(), "text/plain; charset=utf-8")
                    return
                if request.problems:
                    with idp.lock:
                        idp.refused_requests.append("; ".join(request.problems))
                    self._send(400, ("refused: " + "; ".join(request.problems)).encode(), "text/plain; charset=utf-8")
                    return
                try:
                    xml = idp.respond(request, **idp._take_next())
                    form = idp.post_form(xml, request.acs_url, request.relay_state)
                except Exception as exc:  # a test's options the IdP cannot honour: say so
                    self._send(500, f"the IdP failed: {exc.__class__.__name__}: {exc}".encode(), "text/plain")
                    return
                self._send(200, form.encode("utf-8"), "text/html; charset=utf-8",
                           {"X-Test-AuthnRequest-ID": request.id or ""})
                return
            self._send(404, b"not found", "text/plain")

    return Handler


# ----------------------------------------------------------------------------------------------
# xmlsec1 on the command line: for the self-checks (and for telling what a variant is)


def xmlsec_verify(xml: bytes, cert_path: Path, node_id: str | None = None, keys_from_message: bool = True
                  ) -> tuple[bool, str]:
    """`xmlsec1 --verify --pubkey-cert-pem CERT --id-attr:ID Assertion --id-attr:ID Response
    [--node-id ID] FILE`: True when the (first, or the one under node_id) signature verifies.

    With xmlsec1's defaults (keys_from_message) a bare ds:KeyValue in the message's KeyInfo is
    used in preference to CERT -- the "key in KeyInfo" trap of a naive SP. keys_from_message=False
    adds `--enabled-key-data raw-x509-cert` (as pysaml2 does): only CERT can verify."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(xml)
        handle.flush()
        argv = [XMLSEC1, "--verify", "--pubkey-cert-pem", str(cert_path), "--id-attr:ID", ASSERTION_NODE,
                "--id-attr:ID", RESPONSE_NODE]
        if not keys_from_message:
            argv += ["--enabled-key-data", "raw-x509-cert"]
        if node_id:
            argv += ["--node-id", node_id]
        done = subprocess.run(argv + [handle.name], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and "\nOK" in "\n" + done.stderr, done.stderr[-600:]


def xmlsec_decrypt(xml: bytes, key_path: Path) -> tuple[bytes | None, str]:
    """`xmlsec1 --decrypt --privkey-pem KEY FILE`: the document with the EncryptedAssertion's
    EncryptedData replaced by its plaintext, or None."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(xml)
        handle.flush()
        done = subprocess.run([XMLSEC1, "--decrypt", "--privkey-pem", str(key_path), handle.name],
                              capture_output=True, timeout=60)
    if done.returncode != 0:
        return None, done.stderr.decode(errors="replace")[-600:]
    return done.stdout, ""


# ----------------------------------------------------------------------------------------------
# The broker side: `tessera idps add-saml`, a browser, the sign-in, the refusals


LOGIN_COOKIE = "tessera_saml_login"
ACCEPTS = (JSON_ACCEPT, BROWSER_ACCEPT)
SAML_CHECKS = ("Size", "Form", "XML", "DOCTYPE", "Status", "Destination", "AssertionCount", "Decryption", "Signature",
               "Issuer", "Conditions", "Audience", "SubjectConfirmation", "InResponseTo", "Unsolicited", "Replay",
               "Subject", "Claims", "UserEnabled")
REASON = re.compile(r"^saml: (?P<code>[a-z_]+): (?P<check>[A-Za-z]+): (?P<words>.+)$", re.S)


@functools.lru_cache(maxsize=1)
def _add_saml_help() -> tuple[bool, str]:
    from support import clean_env, wait_for_binary

    binary = wait_for_binary()
    try:
        done = subprocess.run([str(binary), "idps", "add-saml", "--help"], capture_output=True, text=True, timeout=60,
                              env=clean_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`tessera idps add-saml --help` failed: {exc.__class__.__name__}"
    text = done.stdout + done.stderr
    # swift-argument-parser answers an unknown subcommand's --help with the parent's help and exit
    # 0: the command exists only when its own help names --metadata.
    if done.returncode != 0 or "--metadata" not in text:
        return False, "the broker has no `tessera idps add-saml` yet (its SAML endpoints have not landed)"
    return True, ""


def idps_reset_around(idps: Any):
    """Body of a per-test fixture over a namespace of IdPs: every control reset before and after,
    and a response prepared at an IdP but never asked for fails the test."""
    for idp in vars(idps).values():
        idp.reset()
    yield
    pending = [p for idp in vars(idps).values() for p in idp.pending_next()]
    for idp in vars(idps).values():
        idp.reset()
    assert not pending, f"a response prepared at the IdP was never asked for: {pending}"


def require_saml_endpoints() -> None:
    """Skips the calling test (or module fixture) until the broker has its SAML side."""
    available, reason = _add_saml_help()
    if not available:
        import pytest

        pytest.skip(reason)


def new_saml_broker(make: Any, env: dict[str, str] | None = None, start: bool = True) -> Any:
    """A broker whose issuer is its own loopback URL (so the SP entityID and ACS printed by
    add-saml are where the browser goes), trace logging for the hygiene checks."""
    return new_oidc_broker(make, env=env, start=start)


@dataclass
class SamlTenant:
    """A tenant of the broker trusting one SamlIdP, as `tessera idps add-saml` set it up."""
    tenant: str
    idp: SamlIdP
    idp_id: str
    sp_entity_id: str
    acs_url: str
    sp_metadata_url: str
    sp_metadata: bytes = field(repr=False)
    added: dict


def write_idp_metadata(broker: Any, idp: SamlIdP, name: str, body: bytes | None = None, **kwargs: Any) -> Path:
    """The IdP's metadata (or `body`) as a file under the broker's `metadata/` folder."""
    path = broker.dir / "metadata" / f"{name}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body if body is not None else idp.metadata_xml(**kwargs))
    return path


def add_saml_args(tenant: str, source: str, *, preset: str | None = None, signed: str | None = None,
                  allow_sha1: bool = False, allow_idp_initiated: bool = False, trust_email: bool = False,
                  group_roles: tuple[str, ...] = (), return_to_prefixes: tuple[str, ...] = (),
                  refresh_interval: int | None = None) -> list[str]:
    args = ["idps", "add-saml", "--tenant", tenant, "--metadata", source]
    if preset is not None:
        args += ["--preset", preset]
    if signed is not None:
        args += ["--signed", signed]
    if allow_sha1:
        args.append("--allow-sha1")
    if allow_idp_initiated:
        args.append("--allow-idp-initiated")
    if trust_email:
        args.append("--trust-email")
    for mapping in group_roles:
        args += ["--group-role", mapping]
    for prefix in return_to_prefixes:
        args += ["--return-to-prefix", prefix]
    if refresh_interval is not None:
        args += ["--refresh-interval", str(refresh_interval)]
    return args


def add_saml_idp(broker: Any, idp: SamlIdP, tenant: str, *, metadata: str | Path | None = None,
                 user: SamlUser | None = None, defaults: dict | None = None, **options: Any) -> SamlTenant:
    """`tessera idps add-saml ... --json` for an existing tenant (the metadata file written under
    the broker's metadata/ folder unless `metadata` names a file or URL), the documented output
    checked, the SP metadata fetched from the broker and trusted by the IdP."""
    source = str(metadata) if metadata is not None else str(write_idp_metadata(broker, idp, f"{tenant}-{idp.name}"))
    added = broker.cli(*add_saml_args(tenant, source, **options)).json
    issuer = broker.issuer
    sp_entity_id = f"{issuer}/sso/{tenant}/saml/metadata"
    acs_url = f"{issuer}/sso/{tenant}/saml/acs"
    assert isinstance(added, dict), "add-saml --json did not print an object"
    assert isinstance(added.get("id"), str) and added["id"], f"add-saml id {added.get('id')!r}"
    assert added.get("tenant") == tenant and added.get("kind") == "saml", added
    assert added.get("entity_id") == idp.entity_id, f"entity_id {added.get('entity_id')!r}, expected {idp.entity_id}"
    assert added.get("metadata_source"), added
    assert added.get("sp_entity_id") == sp_entity_id, \
        f"sp_entity_id {added.get('sp_entity_id')!r}, expected {sp_entity_id}"
    assert added.get("acs_url") == acs_url, f"acs_url {added.get('acs_url')!r}, expected {acs_url}"
    assert added.get("sp_metadata_url") == broker.url(f"/sso/{tenant}/saml/metadata"), added
    response = requests.get(added["sp_metadata_url"], timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, f"GET SP metadata: HTTP {response.status_code} {response.text[:300]}"
    idp.trust_sp(response.content)
    if user is not None:
        idp.set_user(user, sp_entity_id)
    if defaults:
        idp.set_defaults(sp_entity_id, **defaults)
    return SamlTenant(tenant, idp, added["id"], sp_entity_id, acs_url, added["sp_metadata_url"], response.content, added)


@dataclass
class IdPAnswer:
    """The IdP's auto-post form: where it posts, the response (base64 as sent, and decoded), the
    RelayState, and the AuthnRequest the IdP answered."""
    action: str
    saml_response: str = field(repr=False)
    relay_state: str | None
    request: AuthnRequestInfo | None

    @property
    def xml(self) -> bytes:
        return base64.b64decode(self.saml_response)


def parse_post_form(text: str) -> tuple[str, dict[str, str]]:
    from lxml import html as lxml_html

    document = lxml_html.fromstring(text)
    forms = document.xpath("//form")
    assert len(forms) == 1, f"{len(forms)} forms in the IdP's answer"
    form = forms[0]
    inputs = {i.get("name"): i.get("value", "") for i in form.xpath(".//input") if i.get("name")}
    return html.unescape(form.get("action", "")), inputs


def encode_response(xml: bytes, line_length: int | None = None) -> str:
    """Base64 of a response as the HTTP-POST binding carries it (optionally in lines, as some IdPs do)."""
    text = base64.b64encode(xml).decode("ascii")
    if line_length:
        text = "\r\n".join(text[i:i + line_length] for i in range(0, len(text), line_length))
    return text


class SamlBrowser:
    """One browser (cookie jar) signing in to one tenant through SAML. Redirects are followed by
    hand; the IdP is visited without the broker's cookies (another site)."""

    def __init__(self, broker: Any, tenant: str, accept: str = BROWSER_ACCEPT) -> None:
        self.broker = broker
        self.tenant = tenant
        self.session = requests.Session()
        self.session.headers["Accept"] = accept
        self.login_response: requests.Response | None = None

    @property
    def base(self) -> str:
        return f"/sso/{self.tenant}/saml"

    @property
    def acs_url(self) -> str:
        return self.broker.url(f"{self.base}/acs")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kwargs)

    def login(self, return_to: str | None = "/session", raw_query: str | None = None) -> requests.Response:
        url = self.broker.url(f"{self.base}/login")
        if raw_query is not None:
            response = self.get(f"{url}?{raw_query}")
        else:
            response = self.get(url, params={} if return_to is None else {"return_to": return_to})
        self.login_response = response
        return response

    def to_idp(self, idp: SamlIdP, return_to: str | None = "/session") -> IdPAnswer:
        """login -> 302 to the IdP -> the IdP's auto-post form (not yet posted)."""
        login = self.login(return_to)
        assert login.status_code == 302, f"SAML login: HTTP {login.status_code} {login.text[:300]}"
        location = login.headers["Location"]
        assert location.startswith(idp.base_url + "/idp/sso"), f"SAML login redirected to {location[:120]!r}, not the IdP"
        answer = requests.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 200, f"IdP SSO: HTTP {answer.status_code} {answer.text[:500]}"
        action, inputs = parse_post_form(answer.text)
        assert "SAMLResponse" in inputs, "the IdP's form has no SAMLResponse"
        request = idp.request_by_id(answer.headers.get("X-Test-AuthnRequest-ID", ""))
        return IdPAnswer(action, inputs["SAMLResponse"], inputs.get("RelayState"), request)

    def post_acs(self, saml_response: bytes | str | None, relay_state: str | None = None, accept: str | None = None,
                 data: Any = None, headers: dict[str, str] | None = None, tenant: str | None = None) -> requests.Response:
        """POSTs the form to the ACS (of `tenant`, default this browser's): `saml_response` is XML
        (bytes, base64-encoded here) or base64 text as is; `data` replaces the whole form."""
        url = self.broker.url(f"/sso/{tenant or self.tenant}/saml/acs")
        if data is None:
            data = {}
            if saml_response is not None:
                data["SAMLResponse"] = (encode_response(saml_response) if isinstance(saml_response, bytes)
                                        else saml_response)
            if relay_state is not None:
                data["RelayState"] = relay_state
        all_headers = dict(headers or {})
        if accept:
            all_headers["Accept"] = accept
        return self.session.post(url, data=data, headers=all_headers, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def session_info(self, accept: str = JSON_ACCEPT) -> requests.Response:
        return self.get(self.broker.url("/session"), headers={"Accept": accept})

    def logout(self) -> requests.Response:
        return self.session.post(self.broker.url("/session/logout"), allow_redirects=False, timeout=HTTP_TIMEOUT)

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookies:
            if cookie.name == name:
                return cookie.value
        return None

    def put_cookie(self, name: str, value: str | None, path: str = "/") -> None:
        for cookie in [c for c in self.session.cookies if c.name == name]:
            self.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        if value is not None:
            self.session.cookies.set(name, value, domain="127.0.0.1", path=path)


def decode_authn_request(location: str) -> etree._Element:
    """The AuthnRequest of a login redirect: base64 of raw DEFLATE in SAMLRequest."""
    params = query_of(location)
    return parse_xml(zlib.decompress(base64.b64decode(params["SAMLRequest"]), -15))


def check_login_redirect(browser: SamlBrowser, rec: SamlTenant) -> AuthnRequestInfo:
    """The broker's 302 to the IdP, its AuthnRequest and its login cookie, per the contract."""
    login = browser.login_response
    assert login.status_code == 302, f"login: HTTP {login.status_code}"
    location = login.headers["Location"]
    assert location.startswith(rec.idp.sso_url + "?"), "the login did not redirect to the IdP's SSO URL"
    query = urlsplit(location).query
    names = [part.partition("=")[0] for part in query.split("&")]
    assert sorted(names) == ["SAMLRequest", "SigAlg", "Signature"], f"redirect query parameters {names}"
    params = query_of(location)
    assert params["SigAlg"] == SIG_RSA_SHA256, f"SigAlg {params['SigAlg']!r}"
    request = decode_authn_request(location)
    assert request.tag == f"{{{NS_SAMLP}}}AuthnRequest", request.tag
    assert request.get("ID") and request.get("Version") == "2.0" and request.get("IssueInstant"), dict(request.attrib)
    assert request.get("Destination") == rec.idp.sso_url, f"Destination {request.get('Destination')!r}"
    assert request.get("AssertionConsumerServiceURL") == rec.acs_url, \
        f"AssertionConsumerServiceURL {request.get('AssertionConsumerServiceURL')!r}"
    assert request.get("ProtocolBinding") == BINDING_HTTP_POST, f"ProtocolBinding {request.get('ProtocolBinding')!r}"
    issuer = request.find("saml:Issuer", NS)
    assert issuer is not None and issuer.text == rec.sp_entity_id, "AuthnRequest Issuer is not the SP entityID"
    assert request.find("ds:Signature", NS) is None, "an enveloped signature in an HTTP-Redirect AuthnRequest"
    cookie = set_cookies(login).get(LOGIN_COOKIE)
    assert cookie is not None and cookie.get("value"), f"login set no {LOGIN_COOKIE} cookie"
    assert cookie.get("httponly") is True, "login cookie not HttpOnly"
    assert cookie.get("path") == f"/sso/{rec.tenant}/saml", f"login cookie Path {cookie.get('path')!r}"
    assert "secure" not in cookie, "login cookie Secure on an http issuer"
    assert request.get("ID") not in cookie["value"], "the login cookie holds the request ID in clear"
    info = rec.idp.request_by_id(request.get("ID"))
    if info is not None:
        assert info.signature_valid, f"the IdP could not verify the redirect signature: {info.signature_error}"
        assert not info.problems, "; ".join(info.problems)
    return info


@dataclass
class SamlSignIn:
    browser: SamlBrowser
    identity: dict
    answer: IdPAnswer
    response: requests.Response = field(repr=False)
    session_cookie: str = field(repr=False)


# Values the broker must never echo, log or audit, per broker port (session cookies).
SESSION_SECRETS: dict[int, list[str]] = {}


def check_accepted(browser: SamlBrowser, response: requests.Response, rec: SamlTenant,
                   return_to: str | None = "/session") -> SamlSignIn | dict:
    """An accepted ACS post: 303 to return_to, session cookie set as documented, login cookie
    cleared, GET /session answering the identity. Returns the identity."""
    assert response.status_code == 303, f"ACS: HTTP {response.status_code} {response.text[:400]}"
    target = urljoin(browser.acs_url, response.headers.get("Location", ""))
    assert target == browser.broker.url(return_to or "/session"), f"ACS redirected to {response.headers.get('Location')!r}"
    cookies = set_cookies(response)
    session = cookies.get(SESSION_COOKIE)
    assert session is not None and session.get("value"), "no tessera_session cookie after a SAML sign-in"
    SESSION_SECRETS.setdefault(browser.broker.port, []).append(session["value"])
    assert session.get("httponly") is True, "session cookie not HttpOnly"
    assert str(session.get("samesite", "")).lower() == "lax", f"session cookie SameSite {session.get('samesite')!r}"
    assert len(session["value"]) >= 43, "session cookie shorter than 256 bits"
    assert "secure" not in session, "session cookie Secure on an http issuer"
    if LOGIN_COOKIE in cookies or browser.cookie(LOGIN_COOKIE) is not None:
        assert LOGIN_COOKIE in cookies and is_cleared(cookies[LOGIN_COOKIE]), "login cookie not cleared after sign-in"
    info = browser.session_info()
    assert info.status_code == 200, f"GET /session: HTTP {info.status_code} {info.text[:300]}"
    identity = info.json()
    missing = SESSION_MEMBERS - set(identity)
    assert not missing, f"GET /session lacks {sorted(missing)}"
    assert identity["tenant"] == rec.tenant and identity["idp"] == rec.idp_id, \
        f"session of tenant {identity['tenant']!r} idp {identity['idp']!r}"
    return identity


def sign_in(broker: Any, rec: SamlTenant, *, return_to: str | None = "/session", line_length: int | None = None,
            **changes: Any) -> SamlSignIn:
    """The whole SP-initiated flow through the IdP's HTTP endpoint, every documented check of the
    happy path; `changes` are ResponseOptions for this response."""
    browser = SamlBrowser(broker, rec.tenant)
    if changes:
        rec.idp.next_response(**changes)
    answer = browser.to_idp(rec.idp, return_to)
    check_login_redirect(browser, rec)
    assert answer.action == rec.acs_url, f"the IdP posts to {answer.action!r}, not the ACS"
    assert answer.relay_state is None, "the broker sent a RelayState (the contract says it does not)"
    body = answer.saml_response if line_length is None else encode_response(answer.xml, line_length)
    response = browser.post_acs(body, answer.relay_state)
    identity = check_accepted(browser, response, rec, return_to)
    return SamlSignIn(browser, identity, answer, response, Redacted(set_cookies(response)[SESSION_COOKIE]["value"]))


def subject_of(rec: SamlTenant, stable_id: str) -> str:
    return f"saml|{rec.idp_id}|{stable_id}"


# -- refusals


def reason_parts(record: dict) -> tuple[str | None, str | None]:
    """(error code, Check) of a signin.failed record's reason `saml: CODE: Check: words`."""
    match = REASON.match(str(record.get("reason", "")))
    return (match["code"], match["check"]) if match else (None, None)


TAG_LIKE = re.compile(r"<\s*/?\s*[A-Za-z_][\w.-]*(:[A-Za-z_][\w.-]*)?[\s>/]")


def check_refusal_response(response: requests.Response, status: int, error: str, accept: str,
                           never_echo: dict[str, str]) -> None:
    """The documented refusal: status, error, JSON by Accept or a plain page; nothing echoed."""
    echoed_in = " ".join(f"{k}: {v}" for k, v in response.headers.items()) + "\n" + response.text
    leaked = [name for name, value in never_echo.items() if value and value in echoed_in]
    assert not leaked, f"the refusal echoes {', '.join(leaked)}"
    assert not TAG_LIKE.search(response.text), "the refusal holds XML markup"
    body = response.text[:300]
    assert response.status_code == status, f"expected {status} {error}, got HTTP {response.status_code}: {body}"
    cookie = set_cookies(response).get(SESSION_COOKIE)
    assert cookie is None or not cookie.get("value"), "a refusal set a session cookie"
    content_type = response.headers.get("Content-Type", "")
    if accept == JSON_ACCEPT:
        assert content_type.startswith("application/json"), f"Content-Type {content_type!r} for Accept JSON: {body}"
        parsed = response.json()
        assert isinstance(parsed, dict) and parsed.get("error") == error, f"expected error {error}, got {body}"
        assert isinstance(parsed.get("error_description"), str) and parsed["error_description"], body
        assert set(parsed) <= {"error", "error_description", "error_uri"}, f"unexpected members {sorted(parsed)}"
    else:
        assert content_type.startswith("text/plain"), f"Content-Type {content_type!r} for a browser's Accept: {body}"
        assert response.text.strip(), "empty plain-text refusal"


@dataclass
class Attempt:
    """One try at the ACS: the broker's answer, the browser that made it, and the values of the
    posted response that must be found nowhere (error body, audit export, server log)."""
    response: requests.Response
    browser: SamlBrowser
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


def response_secrets(xml: bytes, posted_b64: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What of a posted response must never reappear: NameID and attribute values, assertion and
    response IDs, signature and digest values, a slice of the base64 as posted."""
    found: dict[str, str] = {}
    try:
        root = parse_xml(xml)
    except etree.XMLSyntaxError:
        root = None
    if root is not None:
        for index, element in enumerate(root.iter(f"{{{NS_SAML}}}NameID")):
            text = "".join(element.itertext()).strip()
            if len(text) >= 6:
                found[f"NameID {index}"] = text
        for index, element in enumerate(root.iter(f"{{{NS_SAML}}}AttributeValue")):
            text = "".join(element.itertext()).strip()
            if len(text) >= 6:
                found[f"attribute value {index}"] = text
        for index, element in enumerate(root.iter(f"{{{NS_SAML}}}Assertion", f"{{{NS_SAMLP}}}Response")):
            if element.get("ID"):
                found[f"{etree.QName(element).localname} ID {index}"] = element.get("ID")
        for index, element in enumerate(root.iter(f"{{{NS_DS}}}SignatureValue", f"{{{NS_DS}}}DigestValue",
                                                  f"{{{NS_XENC}}}CipherValue")):
            text = "".join((element.text or "").split())
            if len(text) >= 16:
                found[f"{etree.QName(element).localname} {index}"] = text[:32]
    if posted_b64:
        compact = "".join(posted_b64.split())
        middle = len(compact) // 2
        if len(compact) > 80:
            found["base64 of the response"] = compact[middle:middle + 40]
    found.update(extra or {})
    return {k: Redacted(v) for k, v in found.items() if v}


def audit_text(broker: Any) -> str:
    return broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout


def leaks_in(broker: Any, secrets: dict[str, str], *, include_log: bool = True) -> list[str]:
    """Which of `secrets` appear in the audit export (decoded) or the server log: names only."""
    text = audit_text(broker)
    decoded = []
    for line in text.splitlines():
        try:
            decoded.append(json.dumps(json.loads(line), ensure_ascii=False))
        except json.JSONDecodeError:
            decoded.append(line)
    places = [("audit export", text + "\n" + "\n".join(decoded))]
    if include_log:
        places.append(("server log", broker.log_text()))
    found = []
    for where, haystack in places:
        for name, value in secrets.items():
            if value and value in haystack:
                found.append(f"{name} in the {where}")
    return found


def expect_refused(broker: Any, tenant: str, attempt: Callable[[str], Attempt], *, status: int, error: str,
                   check: str | tuple[str, ...], accepts: tuple[str, ...] = ACCEPTS, audited: bool = True) -> list[dict]:
    """Runs `attempt(accept)` for each Accept: each must be refused as documented, open no session
    and provision no user, and leave one signin.failed record (outcome denied, reason
    `saml: ERROR: Check: ...` naming `check`) holding nothing of the response."""
    checks = check if isinstance(check, tuple) else (check,)
    for name in checks:
        assert name in SAML_CHECKS, f"unknown Check {name}"
    before = {action: audit_count(broker, tenant, action) for action in ("signin.failed", "signin.succeeded",
                                                                           "user.provisioned")}
    secrets: dict[str, str] = {}
    for accept in accepts:
        done = attempt(accept)
        check_refusal_response(done.response, status, error, accept, done.secrets)
        secrets.update({f"{k} ({accept.split(',')[0]})": v for k, v in done.secrets.items()})
        after = done.browser.session_info()
        assert after.status_code == 401, \
            f"a refused SAML response opened a session (GET /session: HTTP {after.status_code})"
    records = [r for r in audit_records(broker, tenant)]
    counts = {action: sum(1 for r in records if r.get("action") == action) for action in before}
    assert counts["signin.succeeded"] == before["signin.succeeded"], "signin.succeeded for a refused response"
    assert counts["user.provisioned"] == before["user.provisioned"], "a refused response provisioned a user"
    failed = [r for r in records if r.get("action") == "signin.failed"]
    if audited:
        assert counts["signin.failed"] == before["signin.failed"] + len(accepts), \
            f"{counts['signin.failed'] - before['signin.failed']} signin.failed records for {len(accepts)} refusals"
        for record in failed[len(failed) - len(accepts):]:
            assert record.get("outcome") == "denied", f"signin.failed outcome {record.get('outcome')!r}"
            code, named = reason_parts(record)
            assert code == error, \
                f"audit reason's error code {code!r}, expected {error}: {str(record.get('reason'))[:200]}"
            assert named in checks, f"audit reason names Check {named!r}, expected {' or '.join(checks)}"
            dumped = json.dumps(record, ensure_ascii=False)
            assert not TAG_LIKE.search(dumped), "XML markup in the signin.failed record"
    found = leaks_in(broker, secrets)
    assert not found, "; ".join(found)
    return failed[len(failed) - len(accepts):]


def fresh_marker() -> str:
    return uuid.uuid4().hex[:12]


def marked_user(base: SamlUser | None = None, domain: str = "example.com") -> SamlUser:
    """A user whose every value is new (for the leak checks): NameID `u-MARK@domain`, mail, name."""
    mark = fresh_marker()
    base = base or DEFAULT_USER
    attributes = {}
    for name, values in base.attributes.items():
        attributes[name] = [f"{v.split('@')[0]}-{mark}@{domain}" if "@" in v else f"{v}-{mark}" for v in values]
    return SamlUser(f"u-{mark}@{domain}", base.name_id_format, attributes, dict(base.friendly_names),
                    dict(base.name_formats))


def copy_user(user: SamlUser, **changes: Any) -> SamlUser:
    return replace(copy.deepcopy(user), **changes)
