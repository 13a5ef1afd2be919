"""Signing keys at rest: sealed with TESSERA_KEK, refused with a wrong one, warned about without."""

from __future__ import annotations

import base64
import json
import os

from support import unverified_header


def key_files(broker) -> list[dict]:
    files = sorted((broker.keys / "signing").glob("*.json"))
    assert files, "no key files under Keys/signing"
    return [json.loads(path.read_text()) for path in files]


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_with_kek_key_files_hold_sealed_private_jwk_and_no_private_jwk(make_broker):
    kek = new_kek()
    broker = make_broker(env={"TESSERA_KEK": kek}).start()
    for stored in key_files(broker):
        assert stored.get("sealed_private_jwk"), f"key {stored.get('kid')} is not sealed"
        assert "private_jwk" not in stored, f"key {stored.get('kid')} also holds a plain private_jwk"
        assert "d" not in json.loads(stored["public_jwk"]), f"key {stored.get('kid')}: private member in public_jwk"
    assert all(key["sealed"] for key in broker.cli("keys", "list").json)
    # The sealed active key signs: a token can be issued.
    broker.add_tenant("acme")
    client = broker.add_client("acme", "svc")
    assert unverified_header(broker.token(client))["alg"] == "ES256"
    # A rotation made by the CLI with the same KEK seals the new key too.
    broker.cli("keys", "rotate")
    for stored in key_files(broker):
        assert stored.get("sealed_private_jwk") and "private_jwk" not in stored
    assert kek not in broker.log_text(), "the KEK appears in the server log"


def test_restart_with_wrong_kek_fails_nonzero_naming_tessera_kek(make_broker):
    broker = make_broker(env={"TESSERA_KEK": new_kek()}).start()
    assert broker.stop() == 0

    wrong = new_kek()
    proc = broker.spawn(env={"TESSERA_KEK": wrong})
    code = broker.wait_exit(timeout=30)
    assert code != 0, "the server started with a wrong TESSERA_KEK"
    output = broker.log_text()[-4000:] + (broker.dir / "serve.stdout").read_text(errors="replace")
    assert "TESSERA_KEK" in broker.log_path.read_text(errors="replace"), "the start-up error does not name TESSERA_KEK"
    assert wrong not in output, "the wrong KEK is echoed in the output"
    assert proc.returncode == code

    # The key files are untouched by the failed start: the right KEK still works.
    broker.start()


def test_too_short_kek_is_refused_naming_tessera_kek(make_broker):
    broker = make_broker(env={"TESSERA_KEK": "short"})
    broker.spawn()
    assert broker.wait_exit(timeout=30) != 0
    assert "TESSERA_KEK" in broker.log_path.read_text(errors="replace")


def test_without_kek_server_log_warns_keys_are_unsealed(make_broker):
    broker = make_broker().start()
    warnings = [r for r in broker.log_records() if r.get("level") == "warning" and "unsealed" in str(r.get("msg", "")).lower()]
    assert warnings, "no warning about unsealed signing keys in the server log"
    assert all(not key["sealed"] for key in broker.cli("keys", "list").json)
    assert all("private_jwk" in stored for stored in key_files(broker))
