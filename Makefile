# Tessera — `make run` starts a broker on 127.0.0.1:8080; `make test` runs every test.
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libxml2-dev libxmlsec1-dev xmlsec1 python3-onelogin-saml2 libssl-dev libsqlite3-dev sqlite3 postgresql python3 python3-venv wrk curl pkg-config

.PHONY: deps venv build build-release run test test-swift test-interop bench clean

## Installs the Debian packages the build and the tests need, only those missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

## Python tools for the interop tests and benchmarks, in a venv.
venv: $(VENV)/.installed
$(VENV)/.installed: Tests/Interop/requirements.txt | deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

build-release: deps
	$(SWIFT) build -c release

run: build
	.build/debug/tessera serve

test: deps venv
	$(SWIFT) build --build-tests
	$(MAKE) test-swift test-interop

## The Swift tests, with a throwaway PostgreSQL cluster for TesseraStorePostgresTests: the script
## starts it, exports TESSERA_TEST_POSTGRES_URL, and stops and removes it even when a test fails.
test-swift:
	scripts/pg-test-cluster.sh run $(SWIFT) test --skip-build

## The interop tests, with a throwaway PostgreSQL cluster for test_multi_instance.py (each of its
## tests creates a database of its own there; without TESSERA_TEST_POSTGRES_URL they fail under CI).
test-interop: venv
	scripts/pg-test-cluster.sh run $(PY) -m pytest -q Tests/Interop

bench: build-release venv
	scripts/bench.sh
	scripts/bench_saml.sh
	scripts/bench_postgres.sh

clean:
	rm -rf .build $(VENV)
