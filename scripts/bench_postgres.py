"""PostgreSQL figures of `make bench` (issue 7): two broker instances on one PostgreSQL on this
machine, durability ON (fsync, synchronous_commit), measured from this process on loopback.

  a. client_credentials grants/s with durable audit, at instance A, with wrk (scripts/wrk/grant.lua)
  b. revocation propagation A -> B: for each of N tokens (default 1,000): revoke at A (RFC 7009),
     then introspect at B until `{"active": false}`; the time from A's 200 to B's first inactive
     answer, p50 and p99 (includes one introspection round trip at B).

Usage: bench_postgres.py BIN DATABASE_URL WORK_DIR   (the cluster is started by bench_postgres.sh)
Prints a Markdown section. Secrets never appear on a command line or in the output.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    bin_path, url, work = sys.argv[1], sys.argv[2], sys.argv[3]
    revocations = int(os.environ.get("BENCH_REVOCATIONS", "1000"))
    duration = int(os.environ.get("DURATION", "15"))
    parsed = urllib.parse.urlsplit(url)
    database = f"bench_{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PGPASSWORD"] = parsed.password or ""
    psql = ["psql", "-h", "127.0.0.1", "-p", str(parsed.port), "-U", parsed.username, "-d", "postgres", "-qAt", "-c"]
    for sql in (f"CREATE DATABASE {database}",):
        subprocess.run(psql + [sql], env=env, check=True, capture_output=True, timeout=60)
    durable = subprocess.run(psql + ["SHOW fsync"], env=env, check=True, capture_output=True, text=True).stdout.strip()
    synchronous = subprocess.run(psql + ["SHOW synchronous_commit"], env=env, check=True, capture_output=True,
                                 text=True).stdout.strip()
    db_url = urllib.parse.urlunsplit(parsed._replace(path="/" + database))
    storage = ["--database", db_url, "--keys-dir", os.path.join(work, "Keys")]
    issuer = "http://127.0.0.1:1"  # the load balancer's name; requests go to each instance's port

    def cli(*args: str) -> dict:
        out = subprocess.run([bin_path, *args, *storage, "--json"], env=env, check=True, capture_output=True, text=True,
                             timeout=120)
        return json.loads(out.stdout)

    cli("tenants", "add", "bench")
    svc = cli("clients", "add", "--tenant", "bench", "--name", "svc", "--scopes", "crm:contacts.read")
    rs = cli("clients", "add", "--tenant", "bench", "--name", "rs", "--scopes", "crm:contacts.read", "--introspect")
    servers = []
    ports = []
    for name in ("a", "b"):
        port = free_port()
        log = open(os.path.join(work, f"serve-{name}.log"), "w")
        servers.append(subprocess.Popen([bin_path, "serve", "--host", "127.0.0.1", "--port", str(port), "--issuer", issuer,
                                         *storage], env={**env, "TESSERA_LOG_LEVEL": "warning"}, stdout=log, stderr=log))
        ports.append(port)
    try:
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("an instance did not become ready")
                time.sleep(0.2)
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        svc_auth = (svc["client_id"], svc["client_secret"])
        rs_auth = (rs["client_id"], rs["client_secret"])

        # a. grants at A with wrk.
        header = "Basic " + base64.b64encode(f"{svc['client_id']}:{svc['client_secret']}".encode()).decode()
        wrk = subprocess.run(["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "--timeout", "10s", "-s",
                              "scripts/wrk/grant.lua", f"{a}/oauth2/token"],
                             env={**env, "BENCH_AUTHORIZATION": header, "BENCH_WRK_DIR": "scripts/wrk",
                                  "BENCH_SCOPE": "crm:contacts.read"},
                             capture_output=True, text=True, timeout=duration + 60, check=True)
        summary = json.loads([line for line in wrk.stdout.splitlines() if line.startswith("BENCH_JSON ")][0][11:])

        # b. revocation propagation A -> B.
        session = requests.Session()
        delays = []
        slowest_poll = 0
        for _ in range(revocations):
            token = session.post(f"{a}/oauth2/token", data={"grant_type": "client_credentials"}, auth=svc_auth,
                                 timeout=10).json()["access_token"]
            revoked = session.post(f"{a}/oauth2/revoke", data={"token": token}, auth=svc_auth, timeout=10)
            assert revoked.status_code == 200
            start = time.perf_counter()
            polls = 0
            while True:
                polls += 1
                answer = session.post(f"{b}/oauth2/introspect", data={"token": token}, auth=rs_auth, timeout=10).json()
                if answer == {"active": False}:
                    break
                if time.perf_counter() - start > 10:
                    raise SystemExit("a revocation was not seen at B within 10 s")
            delays.append((time.perf_counter() - start) * 1000)
            slowest_poll = max(slowest_poll, polls)
        delays.sort()
        p50 = statistics.median(delays)
        p99 = delays[max(0, int(len(delays) * 0.99) - 1)]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        codes = [server.wait(timeout=30) for server in servers]
    verify = subprocess.run([bin_path, "audit", "verify", *storage, "--json"], env=env, capture_output=True, text=True,
                            timeout=300)
    print(f"### PostgreSQL, two instances ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `nproc` = {os.cpu_count()})")
    print()
    print(f"PostgreSQL 15 on the same machine, fsync `{durable}`, synchronous_commit `{synchronous}`; both instances "
          f"`tessera serve --database postgres://… --keys-dir $WORK/Keys --issuer {issuer}` (release build).")
    print()
    print("| run | result |")
    print("|---|---|")
    print(f"| a. client_credentials grants at A, durable audit (`wrk -t2 -c32 -d{duration}s`, grant.lua) | "
          f"**{summary['rps']:.0f}/s**, p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms, "
          f"non-2xx {summary['non2xx']}, bad answers {summary['bad_answers']} |")
    print(f"| b. revocation propagation A → B over {len(delays)} revocations (A's 200 → B's first inactive answer, "
          f"one introspection round trip included) | **p50 {p50:.1f} ms, p99 {p99:.1f} ms**, max {delays[-1]:.1f} ms; "
          f"at most {slowest_poll} introspections at B |")
    print()
    print(f"`tessera audit verify` afterwards: exit {verify.returncode} ({verify.stdout.strip()[:120]}); "
          f"instances' exit codes after SIGTERM: {codes}.")


if __name__ == "__main__":
    main()
