"""The hash-chained audit log: verified intact after traffic, tampering found and named, exported
as JSON lines."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from support import describe

SCOPE = "crm:contacts.read"


@pytest.fixture
def busy_broker(make_broker):
    """A broker after some traffic: grants, a refused grant, introspections, a revocation."""
    broker = make_broker().start()
    broker.add_tenant("acme")
    svc = broker.add_client("acme", "svc", SCOPE)
    rs = broker.add_client("acme", "rs", SCOPE, introspect=True)
    tokens = [broker.token(svc) for _ in range(3)]
    for token in tokens:
        assert broker.introspect(rs, token).status_code == 200
    assert broker.revoke(svc, tokens[0]).status_code == 200
    refused = broker.post_token(svc, scope="crm:contacts.delete")
    assert refused.status_code == 400, describe(refused)
    return broker


def verify(broker) -> tuple[int, dict, str]:
    result = broker.cli("audit", "verify", check=False)
    text = broker.cli("audit", "verify", check=False, json_output=False)
    assert text.returncode == result.returncode
    return result.returncode, result.json, text.stdout + text.stderr


def export(broker, *args: str) -> list[dict]:
    out = broker.cli("audit", "export", "--format", "jsonl", *args, json_output=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_audit_verify_exits_0_after_traffic(busy_broker):
    code, report, _ = verify(busy_broker)
    assert code == 0 and report["intact"] is True, report
    # tenant, 2 clients, 3 grants, 3 introspections, 1 revocation, 1 refusal, key generation
    assert report["records"] >= 12, report


def test_audit_export_jsonl_lines_are_chained_json_with_seq_prev_hash_hash_action(busy_broker):
    records = export(busy_broker)
    assert len(records) >= 12
    previous = "0" * 64
    for expected_seq, record in enumerate(records, start=1):
        for name in ("seq", "prev_hash", "hash", "action"):
            assert name in record, f"record {expected_seq} has no {name}"
        assert record["seq"] == expected_seq
        assert record["prev_hash"] == previous
        assert re.fullmatch(r"[0-9a-f]{64}", record["hash"])
        previous = record["hash"]
    actions = {record["action"] for record in records}
    for action in ("key.generated", "tenant.created", "client.created", "token.issued", "token.introspected",
                   "token.revoked", "token.denied"):
        assert action in actions, f"no {action} record in the export"
    # --tenant filters.
    assert all(record.get("tenant") == "acme" for record in export(busy_broker, "--tenant", "acme"))


def test_audit_verify_exits_1_naming_the_seq_of_a_record_changed_in_sqlite(busy_broker):
    broker = busy_broker
    assert verify(broker)[0] == 0
    assert broker.stop() == 0

    with sqlite3.connect(broker.db) as db:
        schema = "\n".join(row[0] for row in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))
        assert re.search(r"CREATE TABLE audit \([^)]*\bbody BLOB", schema), "audit table has no body column"
        count = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        assert count >= 5
        target = count // 2
        body = bytearray(db.execute("SELECT body FROM audit WHERE seq = ?", (target,)).fetchone()[0])
        # Change one byte: a digit of the timestamp, so the record stays valid JSON.
        position = body.index(b'"ts":"') + len(b'"ts":"') + 3
        body[position] = ord("0") if body[position] != ord("0") else ord("1")
        # Whoever can write the file can drop the append-only triggers; the chain must still tell.
        triggers = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'")]
        for name in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE audit SET body = ? WHERE seq = ?", (bytes(body), target))
    db.close()

    code, report, text = verify(broker)
    assert code == 1, f"audit verify exit code {code} after tampering: {report}"
    assert report["intact"] is False
    assert report["first_bad_record"] == target, report
    assert re.search(rf"\b{target}\b", text), f"audit verify output does not name record {target}: {text}"
