#!/usr/bin/env bash
# Load benchmark of the token service (`make bench`, after `swift build -c release` and `make venv`).
#
# Starts the broker from BIN (default .build/release/tessera) in a temporary folder on a free
# loopback port, registers a tenant and a client_secret_basic client allowed to introspect, and
# measures with wrk (HTTP/1.1 keep-alive, Lua scripts in scripts/wrk/):
#   a. client_credentials grants             wrk -t2 -c32 -d15s --latency
#   b. introspection, warm (100 tokens, again and again)
#   c. introspection, cold (every request a token never introspected before)
#   e. token exchange (RFC 8693) with a DPoP proof: a connector client trades its own access token
#      for a narrower DPoP-bound one under a tenant exchange policy (proof verified, jti consumed,
#      subject verified, policy decided, token minted, token and audit recorded)
#   d. ceilings on the same machine: openssl speed ecdsap256, wrk on /healthz
#   e. RSS of the server: VmRSS idle after start, VmHWM after the load
# then stops the server with SIGTERM, runs `tessera audit verify` and reports the record count.
# Prints a Markdown section and writes it to .bench/results.md. Exits 1 if any run had a non-2xx
# answer, a socket error or an unexpected body, or if the audit chain does not verify.
#
# Bounded: each step has a time limit; the whole script takes about 2.5 minutes (< 5).
# Secrets never appear on a command line or in the output: the client's Basic header reaches
# the wrk scripts through the environment.
#
# Env overrides (for development only; numbers from a debug build are meaningless):
#   BIN=.build/debug/tessera  THREADS=2  CONNECTIONS=32  DURATION=15  PY=python3  BENCH_KEEP=1
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${BIN:-.build/release/tessera}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-15}
HEALTHZ_DURATION=${HEALTHZ_DURATION:-10}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-5}
WARM_TOKENS=100
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
SCOPE="crm:contacts.read"
OUT_DIR="$ROOT/.bench"
RESULTS="$OUT_DIR/results.md"
WRK_DIR="$ROOT/scripts/wrk"
if [[ -z "${PY:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi

die() { echo "bench: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "no executable at $BIN (run 'swift build -c release' or set BIN)"
command -v wrk >/dev/null || die "wrk is not installed (make deps)"
command -v openssl >/dev/null || die "openssl is not installed"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
SERVER_PID=""
SERVER_EXIT=""
FAILURES=()

stop_server() {
  # SIGTERM, wait up to 20 s, then SIGKILL. Sets SERVER_EXIT.
  [[ -n "$SERVER_PID" ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 200); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "bench: server did not stop within 20 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  set +e
  wait "$SERVER_PID" 2>/dev/null
  SERVER_EXIT=$?
  set -e
  SERVER_PID=""
}

cleanup() {
  local status=$?
  stop_server || true
  mkdir -p "$OUT_DIR"
  [[ -f "$WORK/serve.log" ]] && cp "$WORK/serve.log" "$OUT_DIR/serve.log" 2>/dev/null || true
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
STORAGE=(--database "sqlite:$WORK/tessera.db" --keys-dir "$WORK/Keys")
# The benchmark's own environment: no TESSERA_* variable of the caller leaks in.
for name in $(env | sed -n 's/^\(TESSERA_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done

tessera() { timeout 120 "$BIN" "$@" "${STORAGE[@]}"; }
json_get() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
rss_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

server_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died (see .bench/serve.log)"
}

echo "bench: work folder $WORK, port $PORT, binary $BIN" >&2

# ---- setup ----------------------------------------------------------------------------------
tessera tenants add bench --json >/dev/null
CLIENT_JSON=$(tessera clients add --tenant bench --name bench --scopes "$SCOPE" --auth client_secret_basic --introspect --json)
CLIENT_ID=$(json_get client_id <<<"$CLIENT_JSON")
CLIENT_SECRET=$(json_get client_secret <<<"$CLIENT_JSON")
unset CLIENT_JSON
# RFC 6749 §2.3.1: form-encode id and secret, then Basic. Ours are URL-safe already.
BENCH_AUTHORIZATION="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
CONNECTOR_JSON=$(tessera clients add --tenant bench --name connector --scopes "$SCOPE" --auth client_secret_basic \
  --grants "client_credentials,urn:ietf:params:oauth:grant-type:token-exchange" --json)
CONNECTOR_ID=$(json_get client_id <<<"$CONNECTOR_JSON")
CONNECTOR_SECRET=$(json_get client_secret <<<"$CONNECTOR_JSON")
unset CONNECTOR_JSON
BENCH_EXCHANGE_AUTHORIZATION="Basic $(printf '%s:%s' "$CONNECTOR_ID" "$CONNECTOR_SECRET" | base64 -w0)"
export BENCH_EXCHANGE_AUTHORIZATION
cat >"$WORK/policy.json" <<POLICY
{"exchange": [{"id": "bench-connector", "effect": "allow", "clients": ["$CONNECTOR_ID"],
  "subject_token_types": ["access_token"], "scopes": "$SCOPE", "actor": "optional", "dpop": "required",
  "max_lifetime": 300}]}
POLICY
tessera policies put --tenant bench --file "$WORK/policy.json" --json >/dev/null
export BENCH_AUTHORIZATION BENCH_WRK_DIR="$WRK_DIR" BENCH_SCOPE="$SCOPE" BENCH_THREADS="$THREADS"

SERVE_CMD=(serve --host 127.0.0.1 --port "$PORT" "${STORAGE[@]}")
TESSERA_LOG_LEVEL="$LOG_LEVEL" "$BIN" "${SERVE_CMD[@]}" 2>"$WORK/serve.log" >/dev/null &
SERVER_PID=$!
ready=0
for _ in $(seq 600); do
  if curl -sf --max-time 2 "$BASE/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[[ $ready == 1 ]] || { tail -n 20 "$WORK/serve.log" >&2; die "server not ready within 60 s"; }
sleep 1
RSS_IDLE=$(rss_kib "$SERVER_PID" VmRSS)
# One grant by hand, to fail early and clearly if the client cannot get a token.
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: $BENCH_AUTHORIZATION" \
  -d grant_type=client_credentials "$BASE/oauth2/token")
[[ "$status" == 200 ]] || die "a single grant got HTTP $status"

# ---- wrk runs -------------------------------------------------------------------------------
ROWS=()
# run NAME DURATION SCRIPT PATH [ENV=VALUE...]: one wrk run; its BENCH_JSON line in $WORK/NAME.json.
run_wrk() {
  local name=$1 duration=$2 script=$3 path=$4
  shift 4
  local cmd=(wrk "-t$THREADS" "-c$CONNECTIONS" "-d${duration}s" --latency --timeout 10s -s "scripts/wrk/$script" "$BASE$path")
  local shown="${*:+$* }${cmd[*]}"
  case "$script" in
    get.lua) ;;
    exchange.lua) shown="BENCH_EXCHANGE_AUTHORIZATION=<connector's Basic header> $shown" ;;
    *) shown="BENCH_AUTHORIZATION=<Basic header> $shown" ;;
  esac
  echo "bench: $name: $shown" >&2
  env "$@" timeout $((duration + 60)) "${cmd[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" \
    || die "wrk failed for $name: $(tail -n 5 "$WORK/$name.err")"
  grep '^BENCH_JSON ' "$WORK/$name.out" | sed 's/^BENCH_JSON //' >"$WORK/$name.json"
  [[ -s "$WORK/$name.json" ]] || die "no summary from wrk for $name"
  server_alive
  printf '%s\n' "$shown" >"$WORK/$name.cmd"
}
field() { "$PY" -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(v)' "$WORK/$1.json" "$2"; }

# a. grants; every token is kept for the introspection runs.
mkdir -p "$WORK/tokens"
run_wrk grants "$DURATION" grant.lua /oauth2/token BENCH_TOKENS_DIR="$WORK/tokens"
cat "$WORK"/tokens/tokens-*.txt >"$WORK/pool.txt"
head -n "$WARM_TOKENS" "$WORK/pool.txt" >"$WORK/warm.txt"
tail -n +$((WARM_TOKENS + 1)) "$WORK/pool.txt" >"$WORK/cold.txt"

# b. introspection warm.
run_wrk warm "$DURATION" introspect_warm.lua /oauth2/introspect BENCH_WARM_FILE="$WORK/warm.txt"

# c. introspection cold. Warm throughput bounds cold throughput from above, so a pool of
# warm_rps × seconds tokens is enough for that many seconds; mint more first if needed.
GRANT_RPS=$(field grants rps)
WARM_RPS=$(field warm rps)
COLD_POOL=$(wc -l <"$WORK/cold.txt")
TOPPED_UP=0
NEEDED=$("$PY" -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2]) * 1.1))' "$WARM_RPS" "$DURATION")
if (( COLD_POOL < NEEDED )); then
  MINT_SECONDS=$("$PY" -c 'import math, sys; print(min(20, max(2, math.ceil((int(sys.argv[1]) - int(sys.argv[2])) / max(1.0, float(sys.argv[3]))))))' \
    "$NEEDED" "$COLD_POOL" "$GRANT_RPS")
  rm -f "$WORK"/tokens/*
  run_wrk mint "$MINT_SECONDS" grant.lua /oauth2/token BENCH_TOKENS_DIR="$WORK/tokens"
  cat "$WORK"/tokens/tokens-*.txt >>"$WORK/cold.txt"
  COLD_POOL=$(wc -l <"$WORK/cold.txt")
  TOPPED_UP=1
fi
COLD_SECONDS=$("$PY" -c 'import sys; print(max(3, min(int(sys.argv[3]), int(int(sys.argv[1]) / max(1.0, float(sys.argv[2]) * 1.1)))))' \
  "$COLD_POOL" "$WARM_RPS" "$DURATION")
run_wrk cold "$COLD_SECONDS" introspect_cold.lua /oauth2/introspect BENCH_COLD_FILE="$WORK/cold.txt" BENCH_THREADS="$THREADS"

# e. token exchange with DPoP. The connector's own access token is the subject; each request has
# a fresh proof, made beforehand (with the server's current nonce) by scripts/bench_dpop_proofs.py.
curl -s --max-time 10 -H "Authorization: $BENCH_EXCHANGE_AUTHORIZATION" -d grant_type=client_credentials \
  "$BASE/oauth2/token" | json_get access_token >"$WORK/subject.txt"
"$PY" scripts/bench_dpop_proofs.py "$BASE/oauth2/token" - 1 "$WORK/bootstrap.txt"
NONCE=$(curl -s -o /dev/null -D - --max-time 10 -H "Authorization: $BENCH_EXCHANGE_AUTHORIZATION" \
  -H "DPoP: $(cat "$WORK/bootstrap.txt")" -d grant_type=client_credentials "$BASE/oauth2/token" \
  | awk 'tolower($1) == "dpop-nonce:" { sub(/\r$/, "", $2); print $2 }')
[[ -n "$NONCE" ]] || die "the server gave no DPoP-Nonce"
PROOFS=$("$PY" -c 'import sys; print(min(90000, max(5000, int(float(sys.argv[1]) * int(sys.argv[2]) * 1.2))))' "$GRANT_RPS" "$DURATION")
"$PY" scripts/bench_dpop_proofs.py "$BASE/oauth2/token" "$NONCE" "$PROOFS" "$WORK/proofs.txt"
run_wrk exchange "$DURATION" exchange.lua /oauth2/token BENCH_SUBJECT_FILE="$WORK/subject.txt" \
  BENCH_PROOFS_FILE="$WORK/proofs.txt" BENCH_THREADS="$THREADS"

# d. ceilings: the same machine, the same run.
run_wrk healthz "$HEALTHZ_DURATION" get.lua /healthz
RSS_HWM=$(rss_kib "$SERVER_PID" VmHWM)
RSS_AFTER=$(rss_kib "$SERVER_PID" VmRSS)

OPENSSL_CMD=(openssl speed -seconds "$OPENSSL_SECONDS" ecdsap256)
echo "bench: ceiling: ${OPENSSL_CMD[*]}" >&2
timeout 120 "${OPENSSL_CMD[@]}" >"$WORK/openssl.out" 2>/dev/null || die "openssl speed failed"
ECDSA=$(awk '/nistp256/ { line = $(NF-1) " " $NF } END { print line }' "$WORK/openssl.out")
ECDSA_SIGN=${ECDSA% *}
ECDSA_VERIFY=${ECDSA#* }
[[ -n "$ECDSA" ]] || die "cannot read the openssl speed output"

# ---- stop, audit --------------------------------------------------------------------------
stop_server
[[ "$SERVER_EXIT" == 0 ]] || FAILURES+=("the server exited $SERVER_EXIT after SIGTERM (expected 0)")
set +e
AUDIT_JSON=$(tessera audit verify --json 2>"$WORK/audit.err")
AUDIT_EXIT=$?
set -e
if [[ $AUDIT_EXIT == 0 ]]; then
  AUDIT_RECORDS=$(json_get records <<<"$AUDIT_JSON")
  AUDIT_LINE="\`tessera audit verify\`: intact, exit 0; **$AUDIT_RECORDS audit records** written in this run."
else
  AUDIT_RECORDS="?"
  AUDIT_LINE="\`tessera audit verify\`: **FAILED (exit $AUDIT_EXIT)**: ${AUDIT_JSON:-$(tail -n 3 "$WORK/audit.err")}"
  FAILURES+=("audit verify failed")
fi

# ---- report ---------------------------------------------------------------------------------
row() { # name label
  local name=$1 label=$2 n non2xx bad sockerr note=""
  n=$(field "$name" requests)
  non2xx=$(field "$name" non2xx)
  bad=$(field "$name" bad_answers)
  sockerr=$(( $(field "$name" connect_errors) + $(field "$name" read_errors) + $(field "$name" write_errors) + $(field "$name" timeouts) ))
  if (( non2xx != 0 )); then note+=" **non-2xx not zero: $non2xx**"; FAILURES+=("$label: $non2xx non-2xx answers"); fi
  if (( bad != 0 )); then note+=" **$bad unexpected answers**"; FAILURES+=("$label: $bad answers were not 200 with the expected body"); fi
  if (( sockerr != 0 )); then note+=" **$sockerr socket errors**"; FAILURES+=("$label: $sockerr socket errors"); fi
  if [[ ( "$name" == cold || "$name" == exchange ) && $(field "$name" threads_exhausted) != 0 ]]; then
    note+=" pool ran out before the end: req/s is a lower bound"
  fi
  printf '| %s | %s | %.0f | %.2f | %.2f | %s | %s |\n' "$label" "$n" "$(field "$name" rps)" "$(field "$name" p50_ms)" \
    "$(field "$name" p99_ms)" "$non2xx" "${note# }"
}

BUILD_NOTE=""
case "$BIN" in *"/debug/"*) BUILD_NOTE=$'\n> **Debug build: these numbers are meaningless.** Use the release build (`make bench`).\n' ;; esac
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "## Benchmark: token service ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo "$BUILD_NOTE"
  echo "- Machine: \`nproc\` = $(nproc), $CPU_MODEL, $MEM_TOTAL RAM, $(uname -sr); load average before the report: $LOAD"
  echo "- Binary: \`${BIN#"$ROOT"/}\` ($(du -h "$BIN" | cut -f1)); SQLite store, signing keys unsealed, log level \`$LOG_LEVEL\` (one JSON access-log line per request to a file)"
  echo "- Server: \`$(printf '%s' "tessera ${SERVE_CMD[*]}" | sed "s#$WORK#\$WORK#g; s#--port $PORT#--port \$PORT#")\`"
  echo "- Load: $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2) on the same machine, loopback, HTTP/1.1 keep-alive, $THREADS threads, $CONNECTIONS connections; client_secret_basic client with the introspect right; scope \`$SCOPE\`"
  echo
  echo "| run | requests | req/s | p50 ms | p99 ms | non-2xx | notes |"
  echo "|---|---|---|---|---|---|---|"
  row grants "a. client_credentials grant"
  row warm "b. introspection, warm ($WARM_TOKENS tokens, repeated)"
  row cold "c. introspection, cold (each token once)"
  row exchange "e. token exchange with a DPoP proof (each proof once)"
  row healthz "d. GET /healthz (HTTP ceiling)"
  echo
  echo "Cold run: $COLD_POOL distinct, never-introspected tokens for ${COLD_SECONDS} s (tokens from run a$([[ $TOPPED_UP == 1 ]] && echo ", topped up by the unmeasured mint run listed below"))."
  echo
  echo "Exchange run: $PROOFS proofs made beforehand by \`scripts/bench_dpop_proofs.py\` (P-256, the server's DPoP nonce); policy \`bench-connector\` (DPoP required, 300 s ceiling); subject: the connector's own access token."
  echo
  echo "Ceiling, one core: \`${OPENSSL_CMD[*]}\`: ECDSA P-256 **sign ${ECDSA_SIGN}/s, verify ${ECDSA_VERIFY}/s** (OpenSSL $(openssl version | cut -d' ' -f2))."
  echo
  echo "Memory (/proc/PID/status): VmRSS idle after start $(mib "$RSS_IDLE"); VmHWM after the load $(mib "$RSS_HWM") (VmRSS then $(mib "$RSS_AFTER"))."
  echo
  echo "$AUDIT_LINE Server exit code after SIGTERM: $SERVER_EXIT."
  echo
  echo "Commands (\`BENCH_AUTHORIZATION\` holds the client's Basic header, never shown; the wrk scripts also read \`BENCH_WRK_DIR=scripts/wrk\` and \`BENCH_SCOPE=$SCOPE\`; \`\$WORK\` is a temporary folder):"
  echo
  echo '```'
  echo "tessera tenants add bench --json --database sqlite:\$WORK/tessera.db --keys-dir \$WORK/Keys"
  echo "tessera clients add --tenant bench --name bench --scopes \"$SCOPE\" --auth client_secret_basic --introspect --json --database sqlite:\$WORK/tessera.db --keys-dir \$WORK/Keys"
  echo "TESSERA_LOG_LEVEL=$LOG_LEVEL tessera serve --host 127.0.0.1 --port \$PORT --database sqlite:\$WORK/tessera.db --keys-dir \$WORK/Keys"
  echo "tessera clients add --tenant bench --name connector --scopes \"$SCOPE\" --auth client_secret_basic --grants client_credentials,urn:ietf:params:oauth:grant-type:token-exchange --json ..."
  echo "tessera policies put --tenant bench --file \$WORK/policy.json --json ..."
  echo "python scripts/bench_dpop_proofs.py http://127.0.0.1:\$PORT/oauth2/token \$NONCE $PROOFS \$WORK/proofs.txt"
  for name in grants warm $([[ $TOPPED_UP == 1 ]] && echo mint) cold exchange healthz; do
    sed "s#$WORK#\$WORK#g; s#$BASE#http://127.0.0.1:\$PORT#g" "$WORK/$name.cmd"
  done
  echo "${OPENSSL_CMD[*]}"
  echo "tessera audit verify --json --database sqlite:\$WORK/tessera.db --keys-dir \$WORK/Keys"
  echo '```'
  if ((${#FAILURES[@]})); then
    echo
    echo "**Problems in this run:**"
    for problem in "${FAILURES[@]}"; do echo "- $problem"; done
  fi
} >"$WORK/results.md"

mkdir -p "$OUT_DIR"
cp "$WORK/results.md" "$RESULTS"
cat "$RESULTS"
for leak in "$CLIENT_SECRET" "${BENCH_AUTHORIZATION#Basic }" "$CONNECTOR_SECRET" "${BENCH_EXCHANGE_AUTHORIZATION#Basic }"; do
  if grep -qF -- "$leak" "$RESULTS" "$WORK/serve.log"; then die "the client credentials appear in the results or the server log"; fi
done
((${#FAILURES[@]} == 0)) || exit 1
