#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, listening only on
# 127.0.0.1 (a free port) and on a Unix socket inside that folder; stopped and removed afterwards.
#
#   scripts/pg-test-cluster.sh run CMD [ARGS...]   start, run CMD with TESSERA_TEST_POSTGRES_URL set,
#                                                  stop and remove (also when CMD fails); CMD's status
#   scripts/pg-test-cluster.sh start DIR           start a cluster in the empty folder DIR, print its URL
#   scripts/pg-test-cluster.sh stop DIR            stop the cluster in DIR and remove DIR
#
# When TESSERA_TEST_POSTGRES_URL is already set, `run` uses that server and starts none.
# initdb refuses to run as root: as root, the cluster runs as the `postgres` OS user (created by
# Debian's postgresql package); as anyone else, as that user. Data durability is switched off
# (fsync, synchronous_commit): the cluster lives for one test run. PG_DURABLE=1 keeps it on (benchmarks).
set -euo pipefail

MARKER=.tessera-pg-test-cluster

die() {
    echo "pg-test-cluster: $*" >&2
    exit 1
}

pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] && [ -x "$found/initdb" ] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: run 'make deps' (Debian package postgresql)"
    echo "$found"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir=$1
    local DURABILITY="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-0}" = 1 ] && DURABILITY="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
    [ -d "$dir" ] || die "no folder $dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    local bin
    bin=$(pg_bin)
    touch "$dir/$MARKER"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user (Debian package postgresql)"
        chown postgres: "$dir"
        chmod 0700 "$dir"
    fi
    local password
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    # The password file is read by initdb only, then removed.
    as_owner bash -c "umask 077 && printf '%s\n' '$password' > '$dir/pwfile'"
    as_owner "$bin/initdb" -D "$dir/data" -U tessera --pwfile="$dir/pwfile" --auth-host=scram-sha-256 \
        --auth-local=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
    rm -f "$dir/pwfile"
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 $DURABILITY -c deadlock_timeout=100ms" \
            start >/dev/null; then
            echo "postgres://tessera:$password@127.0.0.1:$port/postgres" >"$dir/url"
            cat "$dir/url"
            return 0
        fi
        # Most likely the port was taken between choosing and binding it: try another.
        echo "pg-test-cluster: start on port $port failed (attempt $attempt): $(tail -n 3 "$dir/server.log" 2>/dev/null)" >&2
    done
    die "the cluster did not start; log: $dir/server.log"
}

stop() {
    local dir=$1
    [ -f "$dir/$MARKER" ] || die "$dir is not a test cluster folder: not removing it"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

run() {
    [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
    if [ -n "${TESSERA_TEST_POSTGRES_URL:-}" ]; then
        exec "$@"
    fi
    local dir tmp=${TMPDIR:-/tmp}
    # The postgres user must be able to reach the folder: as root, use /tmp, not root's TMPDIR.
    [ "$(id -u)" = 0 ] && tmp=/tmp
    dir=$(mktemp -d "$tmp/tessera-pg.XXXXXX")
    # shellcheck disable=SC2064  # expand $dir now
    trap "stop '$dir'" EXIT
    trap 'exit 130' INT TERM
    local url
    url=$(start "$dir")
    local port=${url##*:}
    echo "pg-test-cluster: PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') on 127.0.0.1:${port%%/*} and $dir" >&2
    local status=0
    TESSERA_TEST_POSTGRES_URL=$url "$@" || status=$?
    return $status
}

command=${1:-}
shift || true
case $command in
start) start "${1:?usage: $0 start DIR}" ;;
stop) stop "${1:?usage: $0 stop DIR}" ;;
run) run "$@" ;;
*) die "usage: $0 run CMD [ARGS...] | start DIR | stop DIR" ;;
esac
