#!/usr/bin/env bash
# ACS validation figures for `make bench` (issue 3, "Speed"), after `swift build -c release` and
# `make venv`: accepted sign-ins/s for one ~8 KB SAML response (assertion signed, RSA-2048,
# rsa-sha256), one process, with p50/p99 latency, beside the Python SAML libraries validating the
# same response on this machine in this run:
#   - Tessera: .build/release/saml-bench (TesseraSAML's SAMLResponseVerifier), 2 threads and 1;
#   - python3-saml (OneLogin, on libxmlsec1 through python-xmlsec): Debian's python3-onelogin-saml2
#     under Debian's /usr/bin/python3 (its python3-xmlsec and python3-lxml match the system
#     libxml2/xmlsec1; a pip lxml next to a pip xmlsec is the known mismatch);
#   - pysaml2: the venv's, which runs the xmlsec1 command for each signature check.
# scripts/bench_saml.py makes the response (the pysaml2 IdP of Tests/Interop/saml_idp.py) and the
# settings, measures the Python libraries, and writes the Markdown section, which is appended to
# .bench/results.md (and copied to .bench/results-saml.md). Builds nothing.
# Exits 1 if any implementation refuses the response even once (with its reason).
#
# Bounded: each step has a time limit; the whole script takes about 4 × SAML_SECONDS + 15 s.
# Env overrides: BIN=.build/release/saml-bench  SAML_SECONDS=10  SAML_WARMUP=1  PY=.venv/bin/python
#                SYSTEM_PY=/usr/bin/python3  BENCH_KEEP=1  BENCH_OUT=.bench (where the results go)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${BIN:-.build/release/saml-bench}
SAML_SECONDS=${SAML_SECONDS:-10}
SAML_WARMUP=${SAML_WARMUP:-1}
SYSTEM_PY=${SYSTEM_PY:-/usr/bin/python3}
OUT_DIR=${BENCH_OUT:-$ROOT/.bench}
RESULTS="$OUT_DIR/results.md"
if [[ -z "${PY:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi

die() { echo "bench_saml: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "no executable at $BIN (run 'swift build -c release' or set BIN)"
[[ "$SAML_SECONDS" =~ ^[1-9][0-9]*$ && "$SAML_SECONDS" -le 120 ]] || die "SAML_SECONDS must be a whole number of seconds, 1 to 120"
command -v xmlsec1 >/dev/null || die "xmlsec1 is not installed (make deps)"
"$SYSTEM_PY" -c 'import onelogin.saml2.response' 2>/dev/null \
  || die "python3-saml is missing for $SYSTEM_PY: apt-get install python3-onelogin-saml2 (make deps)"
"$PY" -c 'import saml2, cryptography' 2>/dev/null || die "pysaml2 is missing for $PY (make venv)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench-saml.XXXXXX")
cleanup() {
  local status=$?
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench_saml: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$WORK/commands.txt"
# step NAME LIMIT COMMAND...: runs COMMAND with a time limit, its JSON line to $WORK/NAME.json.
step() {
  local name=$1 limit=$2
  shift 2
  local shown="$*"
  shown=${shown//"$ROOT/"/}
  echo "bench_saml: $name: $shown" >&2
  printf '%s\n' "$shown" >>"$WORK/commands.txt"
  if ! timeout "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
    die "$name failed: $(tail -n 5 "$WORK/$name.err")"
  fi
  tail -n 1 "$WORK/$name.out" >"$WORK/$name.json"
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if r["failures"] == 0 and r["count"] > 0 else 1)' \
    "$WORK/$name.json" 2>/dev/null || die "$name gave no usable result: $(cat "$WORK/$name.out")"
}

echo "bench_saml: work folder $WORK" >&2
shown="$PY scripts/bench_saml.py prepare $WORK"
printf '%s\n' "${shown//"$ROOT/"/}" >>"$WORK/commands.txt"
timeout 120 "$PY" scripts/bench_saml.py prepare "$WORK" >"$WORK/prepare.out" 2>"$WORK/prepare.err" \
  || die "prepare failed: $(tail -n 5 "$WORK/prepare.err")"
field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/prepare.json" "$1"; }
REQUEST_ID=$(field request_id)
ISSUER=$(field issuer)
TENANT=$(field tenant)

LIMIT=$((SAML_SECONDS + 60))
step python3-saml "$LIMIT" "$SYSTEM_PY" scripts/bench_saml.py python3-saml "$WORK" "$SAML_SECONDS"
step pysaml2 "$LIMIT" "$PY" scripts/bench_saml.py pysaml2 "$WORK" "$SAML_SECONDS"
for threads in 2 1; do
  step "swift-$threads" "$LIMIT" "$BIN" --metadata "$WORK/metadata.xml" --response "$WORK/response.b64" \
    --request-id "$REQUEST_ID" --issuer "$ISSUER" --tenant "$TENANT" --seconds "$SAML_SECONDS" --threads "$threads" \
    --warmup "$SAML_WARMUP"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
DEBUG=0
case "$BIN" in *"/debug/"*) DEBUG=1 ;; esac
BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') BENCH_NPROC=$(nproc) \
  BENCH_CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
  BENCH_LOAD_BEFORE=$LOAD_BEFORE BENCH_LOAD_AFTER=$LOAD_AFTER BENCH_SECONDS=$SAML_SECONDS BENCH_WARMUP=$SAML_WARMUP \
  BENCH_XMLSEC1=$(version libxmlsec1-openssl) BENCH_PYTHON3_SAML=$(version python3-onelogin-saml2) \
  BENCH_PYTHON_XMLSEC=$(version python3-xmlsec) \
  BENCH_DEBIAN_PYTHON=$("$SYSTEM_PY" -c 'import platform; print(platform.python_version())') \
  BENCH_PYSAML2=$("$PY" -c 'import importlib.metadata as m; print(m.version("pysaml2"))') \
  BENCH_VENV_PYTHON=$("$PY" -c 'import platform; print(platform.python_version())') BENCH_DEBUG=$DEBUG \
  "$PY" -c '
import json, os, sys
keys = ["date", "nproc", "cpu", "load_before", "load_after", "seconds", "warmup", "xmlsec1", "python3_saml",
        "python_xmlsec", "debian_python", "pysaml2", "venv_python"]
env = {k: os.environ["BENCH_" + k.upper()] for k in keys}
env["debug"] = os.environ["BENCH_DEBUG"] == "1"
json.dump(env, open(sys.argv[1], "w"))' "$WORK/environment.json"

"$PY" scripts/bench_saml.py report "$WORK" >"$WORK/results.md" || die "the report failed"
mkdir -p "$OUT_DIR"
cp "$WORK/results.md" "$OUT_DIR/results-saml.md"
{ echo; cat "$WORK/results.md"; } >>"$RESULTS"
cat "$WORK/results.md"
