"""The command line refuses bad input with a clear message, a non-zero exit, and no change."""

from __future__ import annotations

import json

from jwcrypto import jwk as jwcrypto_jwk

from keys import ec_p256_key


def test_malformed_or_unknown_key_config_file_is_refused(make_broker, tmp_path):
    broker = make_broker()
    not_json = tmp_path / "broken.json"
    not_json.write_text("{port: 8080")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"port": 8080, "client_secret": "nope"}))
    for path, expected in ((not_json, "JSON object"), (unknown, "unknown configuration key 'client_secret'")):
        result = broker.cli("tenants", "list", "--config", str(path), check=False, json_output=False)
        assert result.returncode != 0
        assert expected in result.stderr


def test_out_of_range_settings_are_refused(make_broker):
    broker = make_broker()
    for env, expected in (({"TESSERA_ACCESS_TOKEN_LIFETIME": "3600"}, "access_token_lifetime"),
                          ({"TESSERA_PORT": "70000"}, "port"),
                          ({"TESSERA_KEK": "short"}, "TESSERA_KEK"),
                          ({"TESSERA_DPOP_NONCE": "maybe"}, "dpop_nonce")):
        result = broker.cli("tenants", "list", check=False, json_output=False, env=env)
        assert result.returncode != 0, env
        assert expected in result.stderr, env


def test_client_jwks_with_private_key_material_is_refused_and_nothing_is_registered(make_broker, tmp_path):
    broker = make_broker()
    broker.add_tenant("acme")
    private = jwcrypto_jwk.JWK.from_pem(ec_p256_key("leak").private_pem)
    leaky = tmp_path / "leaky-jwks.json"
    private_members = json.loads(private.export_private())
    leaky.write_text(json.dumps({"keys": [private_members]}))
    symmetric = tmp_path / "oct-jwks.json"
    symmetric.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}))
    for path in (leaky, symmetric, tmp_path / "missing.json"):
        result = broker.cli("clients", "add", "--tenant", "acme", "--name", "pk", "--scopes", "crm:contacts.read",
                            "--auth", "private_key_jwt", "--jwks", str(path), check=False, json_output=False)
        assert result.returncode != 0, path.name
        assert private_members["d"] not in result.stdout + result.stderr, "the private key is never echoed"
    assert broker.cli("clients", "list", "--tenant", "acme").json == []
    audit = broker.cli("audit", "export", "--format", "jsonl", json_output=False).stdout
    assert "client.created" not in audit


def test_bad_scopes_tenants_and_wildcards_are_refused_at_registration(make_broker):
    broker = make_broker()
    broker.add_tenant("acme")
    for args, expected in ((["--tenant", "acme", "--scopes", "crm"], "invalid scope"),
                           (["--tenant", "acme", "--scopes", "crm:contacts.read:ids=*"], "wildcard"),
                           (["--tenant", "nobody", "--scopes", "crm:contacts.read"], "does not exist"),
                           (["--tenant", "Bad_Tenant", "--scopes", "crm:contacts.read"], "invalid tenant id")):
        result = broker.cli("clients", "add", "--name", "x", *args, check=False, json_output=False)
        assert result.returncode != 0, args
        assert expected in result.stderr, (args, result.stderr[-300:])
    assert broker.cli("clients", "list").json == []


def test_audit_export_refuses_a_bad_since_and_format(make_broker):
    broker = make_broker()
    for args, expected in ((["--since", "yesterday"], "RFC 3339"), (["--format", "csv"], "jsonl")):
        result = broker.cli("audit", "export", *args, check=False, json_output=False)
        assert result.returncode != 0
        assert expected in result.stderr
