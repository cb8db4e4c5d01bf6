#!/usr/bin/env python3
"""commits — PostgreSQL transactions (pg_stat_database.xact_commit of the
caplat database) while the suite is idle and per renewal, on a throw-away
suite (tests/bench/suite_up.py) or on a running one (--base DIR):

  1. idle: xact_commit over IDLE seconds with nothing to do, per second;
     beside it the transaction ids assigned (txid_current), so a commit
     that changed nothing is told apart from one that wrote;
  2. renewals: N certificates bound and paid first (not counted), then N
     challenge + renewal pairs one after the other; the count waits until
     every consumer has caught up (the outboxes drained and xact_commit
     steady), minus the idle rate over the same time.

  3. the renewals' event latency per consumer (outbox row written to its
     application), which the relay's lazy mark does not add to and the
     consumers' gathering (CAPLAT_BUS_GATHER_MS) does.

  tests/bench/commits.py [--renewals N] [--concurrency C] [--idle SECONDS] [--base DIR]
Benchmarks report, they never fail on time."""
import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "issuance"))
import suite as suite_mod  # noqa: E402
from kit import auth_trusts_local_ca, ca_bind, make_leaf, pay, renew, new_csr, wait_registered  # noqa: E402

SCHEMAS = ["auth", "enterprise", "orders", "payments", "issuance"]


def stat(s):
    """(transactions committed, transaction ids assigned so far): a
    transaction that writes gets an id, a read-only one does not (this
    probe's txid_current() takes one id itself)."""
    row = s.psql("SELECT xact_commit, txid_current() FROM pg_stat_database"
                 " WHERE datname = 'caplat'")[0]
    return int(row[0]), int(row[1])


def snapshot(s):
    # the statistics of other backends reach pg_stat_database when they
    # flush (at most once a second, PostgreSQL 15): read a fresh snapshot
    s.psql("SELECT pg_stat_clear_snapshot()")
    return stat(s)


def backlog(s):
    q = " + ".join(f"(SELECT count(*) FROM {x}.outbox WHERE published_at IS NULL)" for x in SCHEMAS)
    return int(s.psql(f"SELECT {q}")[0][0])


def settle(s, quiet=2.0, limit=30.0):
    """Waits until the outboxes are empty, then `quiet` seconds more for the
    consumers' transactions."""
    t0 = time.time()
    while time.time() - t0 < limit and backlog(s) != 0:
        time.sleep(0.3)
    time.sleep(quiet)


# PostgreSQL 15 backends hold their statistics up to 10 s while idle
# (PGSTAT_IDLE_INTERVAL) before pg_stat_database sees them: xact_commit
# lags by that much; the transaction ids (txid_current) do not.
def measure_idle(s, seconds):
    time.sleep(1.2)  # let the last statistics flush
    c0, w0 = snapshot(s)
    time.sleep(seconds)
    time.sleep(1.2)
    c1, w1 = snapshot(s)
    probe = 2  # this script's own statements (psql: 1 transaction each)
    return max(0, c1 - c0 - probe) / (seconds + 1.2), max(0, w1 - w0 - 1) / (seconds + 1.2)


def where_writes(s, w0, n):
    """Which transactions the renewals' writes were (issue 16 part 3): rows
    written by one transaction share its xmin, so the inboxes tell how many
    events each consumer applied per commit, and the outbox rows marked
    published since w0 how many relay marks there were. Transaction ids
    since w0 only (a fresh suite: the 32-bit xid is the txid)."""
    lo = w0 % (1 << 32)
    for schema in SCHEMAS:
        for consumer, events, txs in s.psql(
                f"SELECT consumer, count(*), count(DISTINCT xmin::text) FROM {schema}.inbox"
                f" WHERE xmin::text::bigint > {lo} GROUP BY consumer ORDER BY consumer"):
            print(f"  {schema} consumer {consumer}: {events} events in {txs} transactions"
                  f" ({int(events) / max(1, int(txs)):.1f} per commit; {int(txs) / n:.2f} per renewal)")
        rows = s.psql(f"SELECT count(*), count(DISTINCT xmin::text) FROM {schema}.outbox"
                      f" WHERE published_at IS NOT NULL AND xmin::text::bigint > {lo}")
        if rows and int(rows[0][0]) > 0:
            events, txs = rows[0]
            print(f"  {schema} relay: {events} events marked published in {txs} transactions"
                  f" ({int(events) / max(1, int(txs)):.1f} per commit; {int(txs) / n:.2f} per renewal)")


def event_latency(s, t0):
    """Event latency of the renewals' cert.renewed events, per consumer: from
    the start of issuance's transaction that wrote the outbox row (its
    created_at) to the start of the consumer's transaction that applied it
    (inbox processed_at): the relay, JetStream, the fetch and any gathering
    (CAPLAT_BUS_GATHER_MS)."""
    for schema, consumer in (("orders", "orders-cert-renewed"), ("auth", "auth-cert-renewed")):
        rows = s.psql(
            "SELECT count(*), round(avg(ms)::numeric, 1),"
            " round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),"
            " round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),"
            " round(max(ms)::numeric, 1) FROM (SELECT extract(epoch FROM i.processed_at - o.created_at)"
            f" * 1000 AS ms FROM {schema}.inbox i JOIN issuance.outbox o ON o.id = i.event_id"
            f" WHERE i.consumer = '{consumer}' AND o.created_at >= to_timestamp({t0})) x")
        n, avg, p50, p99, top = rows[0]
        print(f"  event latency to {consumer}: {n} events, mean {avg} ms, p50 {p50} ms, p99 {p99} ms, max {top} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--renewals", type=int, default=10)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--base", default=None)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    base = args.base
    own = base is None
    if own:
        base = tempfile.mkdtemp(prefix="caplat-commits-")
        os.chmod(base, 0o755)
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "suite_up.py"), "up", base],
                       check=True, stdout=subprocess.DEVNULL)
    try:
        s = suite_mod.Suite(base, persistent=True)
        psql = s.psql
        calls = [0]

        def counted(sql, **kw):
            calls[0] += 1
            return psql(sql, **kw)
        s.psql = counted
        auth_trusts_local_ca(s)
        settle(s)
        rate, wal = measure_idle(s, args.idle)
        print(f"idle: {rate:.1f} commits/s, of which {wal:.1f}/s wrote ({args.idle:.0f} s)")

        ready = []
        for _ in range(args.renewals):
            for attempt in range(5):
                try:
                    leaf = make_leaf(s, "rsa", "agent", days=45)
                    token, account = ca_bind(s, leaf)
                    cert_id = wait_registered(s, leaf.serial)
                    pay(s, cert_id, ["LN_JSGC"], account)
                    break
                except AssertionError:
                    # the gateway's per-address rate limit (429) when the
                    # set-up runs faster than it allows: slow down
                    if attempt == 4:
                        raise
                    time.sleep(2)
            _, csr = new_csr(s, leaf.key, leaf.cert, "rsa")
            ready.append((leaf, token, cert_id, csr))
        settle(s)
        c0, w0 = snapshot(s)
        calls[0] = 0
        t0 = time.time()
        def one(item):
            leaf, token, cert_id, csr = item
            r = renew(s, token, cert_id, leaf.key, csr)
            assert r.status == 201, r
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as ex:
            list(ex.map(one, ready))
        settle(s)
        c1, w1 = snapshot(s)
        dt = time.time() - t0
        n = args.renewals
        net = c1 - c0 - calls[0] - rate * dt
        writes = w1 - w0 - 1 - wal * dt
        print(f"renewals: {n} at concurrency {args.concurrency} in {dt:.1f} s (with the wait for the "
              f"consumers): {(c1 - c0) / n:.1f} commits each raw, {net / n:.1f} each less this probe's own "
              f"{calls[0]} statements and the idle rate over the time; {writes / n:.1f} of them wrote")
        where_writes(s, w0, n)
        event_latency(s, t0)
        print(f"  (CAPLAT_BUS_RELAY_MARK_MS={os.environ.get('CAPLAT_BUS_RELAY_MARK_MS', 'default')},"
              f" CAPLAT_BUS_GATHER_MS={os.environ.get('CAPLAT_BUS_GATHER_MS', 'default')};"
              f" load {open('/proc/loadavg').read().split()[0]})")
    finally:
        if own:
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "suite_up.py"), "down", base])


if __name__ == "__main__":
    main()
