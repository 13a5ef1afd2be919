"""PostgreSQL stopped and started under load, with two broker instances on it (issue 7, "Faults").

Split from test_multi_instance.py, whose fixtures and helpers it uses: a cluster of this test's own
(it is stopped and started), two instances, grants and introspections running throughout. See
that module's docstring for what must hold.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import requests

from support import BrokerPool, PostgresCluster, SharedDatabase, introspection_of, postgres_test_url, unverified_claims
from test_multi_instance import (POLL, PROPAGATION_LIMIT, SCOPE, GrantLoad, Outcome, Poller, audited_jtis, report, start_pair,
                                 statuses, verify_chain, wait_inactive)

# ----------------------------------------------------------------------------------------------
# 6. PostgreSQL stopped and started under load


@pytest.fixture
def own_cluster_pair(tmp_path):
    postgres_test_url()  # the same gate as every other test of the module
    cluster = PostgresCluster()
    try:
        database = SharedDatabase(cluster.url)
        pool = BrokerPool(tmp_path)
        try:
            a, b = start_pair(pool, database.url, tmp_path / "Keys")
            yield SimpleNamespace(a=a, b=b, cluster=cluster, database=database)
        finally:
            pool.shutdown()
    finally:
        cluster.remove()


def check_unavailable(outcome: Outcome) -> str | None:
    """A clear refusal while the store is down: 503, RFC 6749 §5.2 JSON `temporarily_unavailable`
    with an error_description, `Cache-Control: no-store`, `Retry-After` in seconds. Returns what
    is wrong, or None."""
    headers = {k.lower(): v for k, v in outcome.headers.items()}
    problems = []
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append(f"Content-Type {headers.get('content-type')!r}")
    try:
        body = json.loads(outcome.text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("error") != "temporarily_unavailable":
        problems.append(f"body {outcome.text[:200]!r}")
    elif not body.get("error_description"):
        problems.append("no error_description")
    if "no-store" not in headers.get("cache-control", ""):
        problems.append("no Cache-Control: no-store")
    if not headers.get("retry-after", "").strip().isdigit():
        problems.append(f"Retry-After {headers.get('retry-after')!r}")
    return "; ".join(problems) or None


OUTAGE = 12.0  # seconds PostgreSQL stays down
ANSWER_BOUND = 10.0  # a grant sent while the store is down is answered within this, the store still down
HANG_LIMIT = 30.0  # the clients' timeout: no answer by then is a hang


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def test_postgres_stopped_and_started_under_load(own_cluster_pair):
    """PostgreSQL (a cluster of this test's own) is stopped with `pg_ctl -m fast` while both
    instances serve grants, kept down for 12 s, and started again on the same port and data folder.
    Every problem found is listed at the end, after the measured figures are printed."""
    a, b, cluster = own_cluster_pair.a, own_cluster_pair.b, own_cluster_pair.cluster
    a.add_tenant("acme")
    svc = a.add_client("acme", "svc", SCOPE)
    rs = a.add_client("acme", "rs", SCOPE, introspect=True)
    revoked = a.token(svc)
    assert a.revoke(svc, revoked).status_code == 200
    live = b.token(svc)
    for broker in (a, b):
        assert introspection_of(broker, rs, revoked) == {"active": False}
        assert introspection_of(broker, rs, live)["active"] is True

    load = GrantLoad(hard_limit=150)
    load.add("A", a, svc, threads=2, timeout=HANG_LIMIT)
    load.add("B", b, svc, threads=2, timeout=HANG_LIMIT)
    # One fresh grant per instance, sent 1 s into the outage on a new connection.
    probes = GrantLoad(hard_limit=150)
    probes.add("A", a, svc, threads=1, count=1, timeout=HANG_LIMIT)
    probes.add("B", b, svc, threads=1, count=1, timeout=HANG_LIMIT)

    def readyz(broker):
        return lambda: requests.get(broker.url("/readyz"), timeout=HANG_LIMIT).status_code

    def introspect_revoked(broker):
        def probe():
            response = requests.post(broker.metadata()["introspection_endpoint"], data={"token": revoked},
                                     auth=(rs.client_id, rs.secret), timeout=HANG_LIMIT)
            active = response.json().get("active") if response.status_code == 200 else None
            return response.status_code, active
        return probe

    pollers = {"A": Poller(readyz(a), hard_limit=150), "B": Poller(readyz(b), hard_limit=150)}
    introspectors = {"A": Poller(introspect_revoked(a), 0.2, 150), "B": Poller(introspect_revoked(b), 0.2, 150)}
    load.start()
    for poller in (*pollers.values(), *introspectors.values()):
        poller.start()
    recovered: dict[str, float] = {}
    ready_again: dict[str, float] = {}
    recovery_tries: list[Outcome] = []
    try:
        time.sleep(1.0)
        down_sent = time.monotonic()
        cluster.stop_server()
        down = time.monotonic()
        time.sleep(1.0)
        probes.start()
        time.sleep(max(0.0, down + OUTAGE - time.monotonic()))
        up_sent = time.monotonic()
        cluster.start_server()
        up = time.monotonic()

        # Back: each instance answers a fresh grant sent after the restart (on a new connection, not
        # behind the load's requests), and /readyz 200 (at most 30 s).
        while time.monotonic() - up < 30 and (len(recovered) < 2 or len(ready_again) < 2):
            for name, broker in (("A", a), ("B", b)):
                if name not in recovered:
                    started = time.monotonic()
                    try:
                        response = requests.post(broker.url("/oauth2/token"), data={"grant_type": "client_credentials"},
                                                 auth=(svc.client_id, svc.secret), timeout=5)
                    except requests.RequestException as error:
                        recovery_tries.append(Outcome(name, started, time.monotonic(), None, type(error).__name__))
                    else:
                        outcome = Outcome(name, started, time.monotonic(), response.status_code,
                                          headers=dict(response.headers))
                        if response.status_code == 200:
                            outcome.token = response.json()["access_token"]
                            outcome.jti = unverified_claims(outcome.token)["jti"]
                            recovered[name] = outcome.ended - up
                        else:
                            outcome.text = response.text[:500]
                        recovery_tries.append(outcome)
                ready = [at + took for at, took, result in pollers[name].snapshot() if at >= up and result == 200]
                if ready and name not in ready_again:
                    ready_again[name] = min(ready) - up
            time.sleep(POLL)
        time.sleep(0.5)
    finally:
        load.stop(join_timeout=HANG_LIMIT + 10)
        probes.join(join_timeout=HANG_LIMIT + 10)
        for poller in (*pollers.values(), *introspectors.values()):
            poller.stop(join_timeout=HANG_LIMIT + 10)

    # What happened, measured (times from the moment PostgreSQL was down / up again).
    outcomes = load.outcomes + probes.outcomes + recovery_tries
    overlapping = [o for o in outcomes if o.started < up and o.ended > down_sent]
    waited_through = [o for o in overlapping if o.status == 200 and o.ended > up]
    refusals = [o for o in overlapping if o.status == 503]
    # /readyz answers given while the store was down (sent after the stop began, answered after
    # pg_ctl said it was stopped and before it was started again).
    def while_down(at: float, took: float) -> bool:
        return at >= down_sent and down < at + took <= up

    not_ready = {name: min((at + took - down for at, took, result in poller.snapshot()
                            if while_down(at, took) and result == 503), default=None)
                 for name, poller in pollers.items()}
    readyz_during = {name: sorted({(result, round(took, 1)) for at, took, result in poller.snapshot()
                                   if while_down(at, took)}, key=str)
                     for name, poller in pollers.items()}
    introspected = {name: poller.snapshot() for name, poller in introspectors.items()}
    report(f"postgres outage: pg_ctl stop {ms(down - down_sent)}, down {up - down:.1f} s, pg_ctl start {ms(up - up_sent)}")
    report(f"postgres outage: grants overlapping the outage {statuses(overlapping)}; all {statuses(outcomes)}")
    for o in sorted(overlapping, key=lambda o: o.started):
        report(f"  grant at {o.instance}: sent {o.started - down:+.2f} s, answered after {ms(o.duration)} "
               f"({'still down' if o.ended < up else f'{o.ended - up:.2f} s after the restart'}): "
               f"{o.status} {o.error or ''} Retry-After={o.headers.get('Retry-After')}")
    for o in probes.outcomes:
        report(f"  probe sent 1 s into the outage to {o.instance}: {o.status} {o.error or ''} after {ms(o.duration)}")
    report(f"postgres outage: 503 refusals {len(refusals)}, Retry-After {sorted({o.headers.get('Retry-After') for o in refusals}, key=str)}; "
           f"{len(waited_through)} grants waited through the outage and got 200 after the restart "
           f"(longest {ms(max((o.duration for o in waited_through), default=None))})")
    report(f"postgres outage: /readyz first answered 503 {({k: ms(v) for k, v in not_ready.items()})} after the stop "
           f"completed (answers while down, (status, seconds taken): {readyz_during}); 200 again "
           f"{({k: ms(v) for k, v in ready_again.items()})} after the start")
    report(f"postgres outage: first fresh grant after the restart answered 200 {({k: ms(v) for k, v in recovered.items()})} "
           f"after the start ({statuses(recovery_tries)} tried); introspections of the revoked token: "
           f"{({k: statuses_of(v) for k, v in introspected.items()})}, slowest "
           f"{({k: ms(max((took for _, took, _ in v), default=None)) for k, v in introspected.items()})}")

    problems: list[str] = []
    unanswered = [o for o in outcomes if o.status is None]
    if unanswered:
        problems.append(f"{len(unanswered)} grant requests got no answer within {HANG_LIMIT:.0f} s: "
                        + ", ".join(f"{o.instance} sent {o.started - down:+.2f} s from the stop" for o in unanswered))
    for o in probes.outcomes:
        if o.status is None or o.ended >= up:
            problems.append(f"a grant sent to {o.instance} 1 s into the outage was not answered while the store was "
                            f"down ({OUTAGE - 1:.0f} s): got {o.status} {o.error or ''} after {ms(o.duration)} "
                            f"(expected 503 temporarily_unavailable, or an answer within {ANSWER_BOUND:.0f} s)")
    unexpected = [o for o in outcomes if o.status not in (None, 200, 503)]
    if unexpected:
        problems.append(f"answers other than 200 or 503: {statuses(unexpected)}; first: {unexpected[0].text[:300]}")
    unclear = [(o, check_unavailable(o)) for o in outcomes if o.status == 503]
    unclear = [(o, why) for o, why in unclear if why]
    if unclear:
        problems.append(f"{len(unclear)} 503 answers are not a clear temporarily_unavailable: {unclear[0][1]}")
    for name in ("A", "B"):
        if not_ready[name] is None:
            problems.append(f"/readyz at {name} never answered 503 while the store was down: {readyz_during[name]}")
        if name not in ready_again:
            problems.append(f"/readyz at {name} not 200 within 30 s of the restart")
        if name not in recovered:
            problems.append(f"no grant sent to {name} after the restart answered 200 within 30 s")
    for name, results in introspected.items():
        active = [result for _, _, result in results if isinstance(result, tuple) and result[1] is True]
        if active:
            problems.append(f"the token revoked before the outage was reported active {len(active)} times at {name}")
        odd = [result for _, _, result in results if not (isinstance(result, tuple) and result[0] in (200, 503))]
        if odd:
            problems.append(f"introspection at {name} answered {sorted(set(map(str, odd)))}")
    if a.proc.poll() is not None or b.proc.poll() is not None:
        problems.append("an instance exited during the outage")
    for broker in (a, b):
        answer = introspection_of(broker, rs, revoked)
        if answer != {"active": False}:
            problems.append(f"after the outage, the revoked token introspects at {broker.dir.name} as {answer}")

    # Nothing acknowledged without its audit record; the chain is intact.
    issued = set(audited_jtis(a))
    missing = [o for o in outcomes if o.status == 200 and o.jti not in issued]
    if missing:
        problems.append(f"{len(missing)} grants answered 200 have no audit record "
                        f"({sum(1 for o in missing if o in overlapping)} of them overlapped the outage)")
    verify_chain(a)

    # Revocation still reaches the other instance after the store came back.
    revoked_at = time.monotonic()
    assert a.revoke(svc, live).status_code == 200
    seen, still_active = wait_inactive(b, rs, {"live": live}, since=revoked_at)
    report(f"postgres outage: revocation at A seen at B after the recovery: {ms(seen.get('live'))}")
    if still_active:
        problems.append(f"after the restart, a revocation at A is not seen at B within {PROPAGATION_LIMIT} s")
    assert not problems, "\n".join(problems)


def statuses_of(results: list[tuple[float, float, object]]) -> dict:
    counts: dict = {}
    for _, _, result in results:
        key = str(result)
        counts[key] = counts.get(key, 0) + 1
    return counts
