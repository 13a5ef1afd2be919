"""Fixtures of the interop tests (the machinery is in support.py).

`make_broker` gives a test its own brokers; `broker` is one running broker per test module.
Every broker is stopped with SIGTERM at teardown and must exit 0 (graceful shutdown).
"""

from __future__ import annotations

import pytest

from support import BrokerPool


def pytest_configure(config):
    config.addinivalue_line("markers", "standalone: needs no broker (the SAML test IdP's self-checks)")


@pytest.fixture
def make_broker(tmp_path):
    """A factory of brokers private to one test (for tests that change keys, the audit log, ...)."""
    pool = BrokerPool(tmp_path)
    yield pool.new
    pool.shutdown()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One running broker shared by the tests of a module."""
    pool = BrokerPool(tmp_path_factory.mktemp("module"))
    b = pool.new().start()
    yield b
    pool.shutdown()


@pytest.fixture(scope="module")
def op():
    """A real OpenID Provider (Authlib, oidc_provider.py) on loopback, one per test module."""
    from oidc_provider import OpenIDProvider

    provider = OpenIDProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def fresh_op(op):
    """The provider with every fault control reset before and after the test."""
    op.reset()
    yield op
    op.reset()
