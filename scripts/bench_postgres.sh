#!/usr/bin/env bash
# PostgreSQL figures for `make bench` (issue 7): a throwaway cluster with durability ON, two
# instances, grants/s with durable audit and revocation propagation p50/p99. Bounded (~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/tessera}
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench-pg.XXXXXX")
CLUSTER=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench-pgdata.XXXXXX")
cleanup() { scripts/pg-test-cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
URL=$(PG_DURABLE=1 scripts/pg-test-cluster.sh start "$CLUSTER")
mkdir -p .bench
timeout 600 "$PY" scripts/bench_postgres.py "$(realpath "$BIN")" "$URL" "$WORK" | tee .bench/results-postgres.md
