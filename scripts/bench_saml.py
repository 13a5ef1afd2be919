"""ACS validation figures of `make bench` (issue 3, "Speed"): how many signed SAML responses per
second one process accepts, Tessera (TesseraSAML, `saml-bench`) beside the Python SAML libraries
validating the very same response on the same machine in the same run. Driven by
scripts/bench_saml.sh; each step is a subcommand so that each library runs under its own
interpreter:

  prepare WORK                 (the venv's python: pysaml2, cryptography)
      The pysaml2 IdP of Tests/Interop/saml_idp.py with an RSA-2048 key, trusting the broker's SP
      (entityID ISSUER/sso/TENANT/saml/metadata, ACS ISSUER/sso/TENANT/saml/acs), makes ONE
      Response: assertion signed (rsa-sha256, sha256 digests, exclusive c14n), ~8 KB decoded
      (attributes padded with groups), InResponseTo REQUEST_ID, valid for one hour. Writes into
      WORK: metadata.xml (the IdP's), sp-metadata.xml, idp.crt, response.xml, response.b64,
      python3-saml-settings.json, pysaml2-sp.json and prepare.json (what the others need).
  python3-saml WORK SECONDS    (Debian's /usr/bin/python3 with python3-onelogin-saml2)
      OneLogin_Saml2_Response(settings, b64).is_valid(request_data, REQUEST_ID) in a loop, strict
      mode, wantAssertionsSigned; the settings object is built once, as a long-running app keeps it.
  pysaml2 WORK SECONDS         (the venv's python)
      Saml2Client(SPConfig).parse_authn_request_response(b64, HTTP-POST, {REQUEST_ID: "/"}) in a
      loop; the client is built once. pysaml2 runs the xmlsec1 command for each signature check.
  report WORK                  (any python)
      The Markdown section, from WORK/*.json and WORK/commands.txt.

Every measuring subcommand first validates once (a refusal exits 1 with the library's reason),
then loops for SECONDS on one thread, recording each call's latency, and prints one JSON line:
{"verified_per_second", "p50_us", "p99_us", "threads", "count", "failures", ...}.
None of the three checks assertion-ID replay (that needs the broker's database).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "http://127.0.0.1:8080"
TENANT = "bench"
SP_ENTITY_ID = f"{ISSUER}/sso/{TENANT}/saml/metadata"
ACS_URL = f"{ISSUER}/sso/{TENANT}/saml/acs"
REQUEST_ID = "id-7c0f3b6e2a9d4c1f8e5a6b7d9c0e1f2a"
VALIDITY_SECONDS = 3600
TARGET_BYTES = 8 * 1024
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# The aims of issue 3.
AIM_RATE = 2000
AIM_VS_PYTHON3_SAML = 5
AIM_VS_PYSAML2 = 50


def fail(message: str) -> None:
    print(f"bench_saml: {message}", file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------------------------
# prepare


def sp_metadata() -> str:
    """The broker's SP metadata as the IdP needs it: entityID and the HTTP-POST ACS."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY_ID}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>{NAMEID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{BINDING_POST}" Location="{ACS_URL}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


def bench_user(groups: int):
    """A realistic enterprise sign-in: LDAP/Entra-style attributes and `groups` group DNs."""
    from saml_idp import SamlUser

    attributes = {
        "urn:oid:0.9.2342.19200300.100.1.3": ["ada.lovelace@example.com"],
        "urn:oid:2.16.840.1.113730.3.1.241": ["Ada Lovelace"],
        "urn:oid:2.5.4.42": ["Ada"],
        "urn:oid:2.5.4.4": ["Lovelace"],
        "urn:oid:2.16.840.1.113730.3.1.3": ["E-004217"],
        "urn:oid:2.5.4.11": ["Analytical Engines"],
        "urn:oid:2.5.4.12": ["Principal Engineer"],
        "http://schemas.microsoft.com/identity/claims/tenantid": ["9188040d-6c67-4c5b-b112-36a304b66dad"],
        "http://schemas.microsoft.com/identity/claims/objectidentifier": ["4f7d2c1e-8a3b-4e6f-9d0c-1b2a3c4d5e6f"],
        "groups": [f"cn=team-{i:03d},ou=groups,dc=example,dc=com" for i in range(groups)],
    }
    friendly = {
        "urn:oid:0.9.2342.19200300.100.1.3": "mail", "urn:oid:2.16.840.1.113730.3.1.241": "displayName",
        "urn:oid:2.5.4.42": "givenName", "urn:oid:2.5.4.4": "sn", "urn:oid:2.16.840.1.113730.3.1.3": "employeeNumber",
        "urn:oid:2.5.4.11": "ou", "urn:oid:2.5.4.12": "title",
    }
    return SamlUser("ada.lovelace@example.com", NAMEID_EMAIL, attributes, friendly)


def prepare(work: Path) -> None:
    import base64

    sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from saml_idp import NS_DS, NS_SAML, ResponseOptions, SamlIdP, parse_xml

    idp = SamlIdP(work / "idp", name="bench")  # RSA-2048 signing key "rsa", made now
    idp.httpd.server_close()  # never served: only its pysaml2 server and keys are used
    idp.trust_sp(sp_metadata())
    (work / "sp-metadata.xml").write_text(sp_metadata())
    options = ResponseOptions(sign="assertion", sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
                              not_on_or_after=VALIDITY_SECONDS, scd_not_on_or_after=VALIDITY_SECONDS)

    def make(groups: int) -> bytes:
        return idp.create_response(SP_ENTITY_ID, ACS_URL, REQUEST_ID, options.changed(user=bench_user(groups)))

    # Pad with groups to ~8 KB decoded: measure the size of ten groups, then fill the rest.
    groups = 4
    xml = make(groups)
    per_group = max(1, (len(make(groups + 10)) - len(xml)) / 10)
    groups += max(0, int((TARGET_BYTES - len(xml)) / per_group))
    xml = make(groups)
    while len(xml) > TARGET_BYTES + 128 and groups > 0:
        groups -= 1
        xml = make(groups)
    metadata = idp.metadata_xml()
    key = idp.key(idp.signing_key)

    encoded = base64.b64encode(xml).decode("ascii")
    (work / "metadata.xml").write_bytes(metadata)
    (work / "response.xml").write_bytes(xml)
    (work / "response.b64").write_text(encoded + "\n")
    (work / "idp.crt").write_text(key.cert_pem)
    text = xml.decode("utf-8")
    root = parse_xml(xml)
    facts = {
        "issuer": ISSUER, "tenant": TENANT, "sp_entity_id": SP_ENTITY_ID, "acs_url": ACS_URL,
        "request_id": REQUEST_ID, "idp_entity_id": idp.entity_id, "key_bits": key.private_key.key_size,
        "decoded_bytes": len(xml), "encoded_bytes": len(encoded), "groups": groups,
        "attribute_values": text.count("AttributeValue") // 2,
        "signed": "assertion", "signature_method": SIG_RSA_SHA256 if SIG_RSA_SHA256 in text else "?",
        "digest_method": DIGEST_SHA256 if DIGEST_SHA256 in text else "?",
        "assertion_signatures": len(root.findall(f"{{{NS_SAML}}}Assertion/{{{NS_DS}}}Signature")),
        "response_signatures": len(root.findall(f"{{{NS_DS}}}Signature")),
        "validity_seconds": VALIDITY_SECONDS,
    }
    if facts["signature_method"] == "?" or facts["digest_method"] == "?" or facts["assertion_signatures"] != 1 \
            or facts["response_signatures"] != 0:
        fail("the response is not as meant: one assertion signature (rsa-sha256, sha256), no response signature")
    (work / "prepare.json").write_text(json.dumps(facts, indent=1))

    settings = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": SP_ENTITY_ID,
            "assertionConsumerService": {"url": ACS_URL, "binding": BINDING_POST},
            "NameIDFormat": NAMEID_EMAIL,
            "x509cert": "",
            "privateKey": "",
        },
        "idp": {
            "entityId": idp.entity_id,
            "singleSignOnService": {"url": idp.sso_url, "binding": BINDING_REDIRECT},
            "x509cert": key.cert_b64,
        },
        "security": {
            "wantAssertionsSigned": True,
            "wantMessagesSigned": False,
            "wantNameId": True,
            "signatureAlgorithm": SIG_RSA_SHA256,
            "digestAlgorithm": DIGEST_SHA256,
        },
    }
    (work / "python3-saml-settings.json").write_text(json.dumps(settings, indent=1))

    import shutil

    sp_config = {
        "entityid": SP_ENTITY_ID,
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
        "metadata": {"local": [str(work / "metadata.xml")]},
        "accepted_time_diff": 60,
        "allow_unknown_attributes": True,
        "delete_tmpfiles": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [[ACS_URL, BINDING_POST]]},
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": False,
            "authn_requests_signed": False,
        }},
    }
    (work / "pysaml2-sp.json").write_text(json.dumps(sp_config, indent=1))
    print(json.dumps(facts))


# ----------------------------------------------------------------------------------------------
# measuring


def percentile(values: list[int], p: float) -> int:
    """Nearest rank, as saml-bench."""
    import math

    rank = max(1, min(len(values), math.ceil(p / 100 * len(values))))
    return values[rank - 1]


def cpu_time() -> float:
    """CPU seconds of this process and of its waited-for children (pysaml2's xmlsec1 runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(validate, seconds: float, name: str) -> None:
    """validate() returns None when accepted, else the reason. One warm call, then a timed loop."""
    reason = validate()
    if reason is not None:
        fail(f"{name} refused the response: {reason}")
    latencies: list[int] = []
    cpu_before = cpu_time()
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    end = start
    while True:
        t0 = time.perf_counter_ns()
        if t0 >= deadline and latencies:
            break
        reason = validate()
        end = time.perf_counter_ns()
        if reason is not None:
            fail(f"{name} refused the response after {len(latencies)} acceptances: {reason}")
        latencies.append(end - t0)
    cpu_seconds = cpu_time() - cpu_before
    latencies.sort()
    elapsed = (end - start) / 1e9
    us = lambda ns: round(ns / 1000, 1)  # noqa: E731
    print(json.dumps({
        "verified_per_second": round(len(latencies) / elapsed, 1), "p50_us": us(percentile(latencies, 50)),
        "p90_us": us(percentile(latencies, 90)), "p99_us": us(percentile(latencies, 99)), "max_us": us(latencies[-1]),
        "mean_us": us(sum(latencies) / len(latencies)), "threads": 1, "count": len(latencies), "failures": 0,
        "elapsed_seconds": round(elapsed, 3), "cpu_seconds": round(cpu_seconds, 3),
    }))


def bench_python3_saml(work: Path, seconds: float) -> None:
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    facts = json.loads((work / "prepare.json").read_text())
    settings = OneLogin_Saml2_Settings(json.loads((work / "python3-saml-settings.json").read_text()),
                                       sp_validation_only=True)
    encoded = (work / "response.b64").read_text().strip()
    acs = facts["acs_url"]
    scheme, _, rest = acs.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    request_data = {"https": "on" if scheme == "https" else "off", "http_host": host,
                    "server_port": port or ("443" if scheme == "https" else "80"), "script_name": "/" + path,
                    "get_data": {}, "post_data": {"SAMLResponse": encoded}}
    request_id = facts["request_id"]

    def validate():
        response = OneLogin_Saml2_Response(settings, request_data["post_data"]["SAMLResponse"])
        if response.is_valid(request_data, request_id):
            return None
        return response.get_error() or "is_valid returned False"

    measure(validate, seconds, "python3-saml")


def bench_pysaml2(work: Path, seconds: float) -> None:
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from saml2 import BINDING_HTTP_POST
        from saml2.client import Saml2Client
        from saml2.config import SPConfig
    logging.basicConfig(level=logging.CRITICAL)

    facts = json.loads((work / "prepare.json").read_text())
    config = SPConfig().load(json.loads((work / "pysaml2-sp.json").read_text()))
    client = Saml2Client(config=config)
    encoded = (work / "response.b64").read_text().strip()
    request_id = facts["request_id"]

    def validate():
        try:
            response = client.parse_authn_request_response(encoded, BINDING_HTTP_POST, outstanding={request_id: "/"})
        except Exception as exc:  # pysaml2 raises its refusals
            return f"{exc.__class__.__name__}: {str(exc)[:300]}"
        if response is None or response.assertion is None or response.in_response_to != request_id:
            return "parse_authn_request_response accepted nothing"
        return None

    measure(validate, seconds, "pysaml2")


# ----------------------------------------------------------------------------------------------
# report


def report(work: Path) -> None:
    facts = json.loads((work / "prepare.json").read_text())
    results = {name: json.loads((work / f"{name}.json").read_text())
               for name in ("swift-2", "swift-1", "python3-saml", "pysaml2")}
    env = json.loads((work / "environment.json").read_text())
    commands = (work / "commands.txt").read_text().rstrip("\n").replace(str(work), "$WORK")

    def rate(name: str) -> float:
        return float(results[name]["verified_per_second"])

    def ratio(a: float, b: float) -> str:
        return f"{a / b:,.1f}×" if b > 0 else "n/a"

    def verdict(value: float, aim: float) -> str:
        return "met" if value >= aim else "**not met**"

    rows = [
        ("swift-2", f"Tessera `saml-bench` (TesseraSAML, libxmlsec1 {env['xmlsec1']}), 2 threads"),
        ("swift-1", "Tessera `saml-bench`, 1 thread"),
        ("python3-saml", f"python3-saml {env['python3_saml']} (OneLogin; python-xmlsec {env['python_xmlsec']}), "
                         f"Debian Python {env['debian_python']}, 1 process"),
        ("pysaml2", f"pysaml2 {env['pysaml2']} (runs `xmlsec1` per signature), Python {env['venv_python']}, 1 process"),
    ]
    swift2, swift1, onelogin, pysaml2 = rate("swift-2"), rate("swift-1"), rate("python3-saml"), rate("pysaml2")
    out = []
    out.append(f"## Benchmark: ACS validation (SAML) ({env['date']})")
    out.append("")
    if env.get("debug"):
        out.append("> **Debug build: these numbers are meaningless.** Use the release build (`make bench`).")
        out.append("")
    out.append(f"- Machine: `nproc` = {env['nproc']}, {env['cpu']}; load average before the runs: {env['load_before']}, "
               f"after: {env['load_after']}")
    out.append(f"- Response: one HTTP-POST `SAMLResponse`, {facts['decoded_bytes']:,} bytes decoded "
               f"({facts['encoded_bytes']:,} base64), made by the pysaml2 IdP of `Tests/Interop/saml_idp.py`: "
               f"assertion signed with RSA-{facts['key_bits']} `rsa-sha256`, `sha256` digest, exclusive c14n, "
               f"response unsigned; NameID + {facts['attribute_values']} attribute values ({facts['groups']} groups); "
               f"InResponseTo a pending request; valid for {facts['validity_seconds'] // 60} min.")
    out.append("- Each implementation validates that same response again and again for "
               f"{env['seconds']} s (after one unmeasured validation; Tessera also after {env['warmup']} s of "
               "unmeasured warm-up), every call timed; a single refusal fails the run. All parse the "
               "base64 form value, check the signature with the IdP certificate from configuration/metadata and "
               "check Destination, Issuer, Audience, validity window, bearer confirmation and InResponseTo. "
               "**None checks assertion-ID replay** (Tessera's ACS does, in its database: not measured here).")
    out.append("- Tessera: `SAMLResponseVerifier.verify` (every ACS check but replay; SHA-1 refused). python3-saml: "
               "strict mode, `wantAssertionsSigned`, which also validates the XML against the SAML schema. "
               "pysaml2: `Saml2Client.parse_authn_request_response`, `want_assertions_signed`. Settings and clients "
               "are built once, outside the loop.")
    out.append("")
    def cores(name: str) -> float:
        r = results[name]
        return float(r["cpu_seconds"]) / max(float(r["elapsed_seconds"]), 1e-9)

    def per_cpu(name: str) -> float:
        r = results[name]
        return int(r["count"]) / max(float(r["cpu_seconds"]), 1e-9)

    out.append("| implementation | verified/s | p50 µs | p99 µs | validations | CPU cores busy | verified per CPU-second |")
    out.append("|---|---|---|---|---|---|---|")
    for name, label in rows:
        r = results[name]
        out.append(f"| {label} | {float(r['verified_per_second']):,.0f} | {float(r['p50_us']):,.0f} | "
                   f"{float(r['p99_us']):,.0f} | {int(r['count']):,} | {cores(name):.2f} | {per_cpu(name):,.0f} |")
    out.append("")
    out.append("CPU cores busy: the process's CPU time (user + system, with pysaml2's `xmlsec1` children) over "
               "the wall time of its run; below its thread count, other processes on the machine took part of the cores.")
    out.append("")
    if cores("swift-2") < 1.8:
        out.append(f"> **The 2-thread run got {cores('swift-2'):.2f} cores**: the machine was shared during this "
                   "run, so the 2-core figure and the ratios are lower than the machine allows; compare per core below.")
        out.append("")
    out.append("| aim (issue 3) | figure | |")
    out.append("|---|---|---|")
    out.append(f"| ≥ {AIM_RATE:,} verified/s on {env['nproc']} cores, one process | {swift2:,.0f}/s | {verdict(swift2, AIM_RATE)} |")
    out.append(f"| ≥ {AIM_VS_PYTHON3_SAML}× python3-saml (one process each) | {ratio(swift2, onelogin)} "
               f"| {verdict(swift2 / onelogin if onelogin else 0, AIM_VS_PYTHON3_SAML)} |")
    out.append(f"| ≥ {AIM_VS_PYSAML2}× pysaml2 (one process each) | {ratio(swift2, pysaml2)} "
               f"| {verdict(swift2 / pysaml2 if pysaml2 else 0, AIM_VS_PYSAML2)} |")
    out.append("")
    out.append(f"Per core (Tessera on 1 thread against each single-threaded Python process): "
               f"{ratio(swift1, onelogin)} python3-saml, {ratio(swift1, pysaml2)} pysaml2; per CPU-second "
               f"(insensitive to other load): {ratio(per_cpu('swift-1'), per_cpu('python3-saml'))} python3-saml, "
               f"{ratio(per_cpu('swift-1'), per_cpu('pysaml2'))} pysaml2. "
               f"Scaling from 1 to 2 threads: {ratio(swift2, swift1)}.")
    out.append("")
    out.append("Commands (`$WORK` is a temporary folder; `scripts/bench_saml.sh` runs them):")
    out.append("")
    out.append("```")
    out.append(commands)
    out.append("```")
    print("\n".join(out))


def main() -> None:
    if len(sys.argv) < 3:
        fail("usage: bench_saml.py prepare|python3-saml|pysaml2|report WORK [SECONDS]")
    command, work = sys.argv[1], Path(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    if command == "prepare":
        prepare(work)
    elif command == "python3-saml":
        bench_python3_saml(work, seconds)
    elif command == "pysaml2":
        bench_pysaml2(work, seconds)
    elif command == "report":
        report(work)
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
