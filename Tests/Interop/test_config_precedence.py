"""Configuration precedence: --port flag > TESSERA_PORT > --config file > default, checked by
where `tessera serve` actually listens (and the issuer it derives from that port)."""

from __future__ import annotations

import json

import pytest
import requests

from support import HTTP_TIMEOUT, free_port, port_is_open


@pytest.fixture
def ports():
    chosen: list[int] = []
    while len(chosen) < 3:
        port = free_port()
        if port not in chosen:
            chosen.append(port)
    return chosen


def serve_and_check(make_broker, tmp_path, file_port: int, env_port: int | None, flag_port: int | None, winner: int,
                    losers: list[int]) -> None:
    config = tmp_path / "tessera.json"
    config.write_text(json.dumps({"port": file_port, "log_level": "info"}))
    env = {"TESSERA_PORT": str(env_port)} if env_port else {}
    args = ["--config", str(config)] + (["--port", str(flag_port)] if flag_port else [])
    broker = make_broker(env=env, port=winner)
    broker.start(args=args, port_flag=False)
    metadata = requests.get(f"http://127.0.0.1:{winner}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT).json()
    assert metadata["issuer"] == f"http://127.0.0.1:{winner}"
    for port in losers:
        assert not port_is_open(port), f"also listening on losing port {port}"
    assert broker.stop() == 0


def test_config_file_port_is_used_when_nothing_overrides_it(make_broker, tmp_path, ports):
    file_port, env_port, flag_port = ports
    serve_and_check(make_broker, tmp_path, file_port, None, None, winner=file_port, losers=[env_port, flag_port])


def test_tessera_port_env_overrides_config_file_port(make_broker, tmp_path, ports):
    file_port, env_port, flag_port = ports
    serve_and_check(make_broker, tmp_path, file_port, env_port, None, winner=env_port, losers=[file_port, flag_port])


def test_port_flag_overrides_tessera_port_env_and_config_file_port(make_broker, tmp_path, ports):
    file_port, env_port, flag_port = ports
    serve_and_check(make_broker, tmp_path, file_port, env_port, flag_port, winner=flag_port, losers=[file_port, env_port])
