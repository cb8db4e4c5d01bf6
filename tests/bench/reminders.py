#!/usr/bin/env python3
"""reminders — the daily reminder pass (issue 17) over 10⁶ certificates.

Starts PostgreSQL of a throw-away suite with issuance's schema only (its
migrations), generates the certificates in bulk (generate_series straight
into lineages and certificates: notAfter spread evenly from 60 days ago to
a year ahead, 4 in 5 of enterprises, 1 % revoked, 1 % with an unused paid
renewal), then runs the pass the service runs (store_reminder_pass_sql:
reminder_claim + renewal_unused_claim, CAPLAT_REMINDER_BATCH per
transaction until a batch is not full) three times:
  first      the backlog: every certificate in the window of its latest stage
  next day   the steady state: what enters a stage in one day
  again      nothing due: the cost of looking
and prints each pass's time, stages claimed, and the database work per
certificate claimed (shared buffers hit/read from pg_stat_database), the
plans of the claim's statements for one stage (auto_explain: ANALYZE,
BUFFERS) and, as the same-run reference, a full scan of certificates
(SELECT count(*)). Reports; never fails. Goal: the pass under 60 s.

  tests/bench/reminders.py [CERTIFICATES] [BATCH]
"""
import os
import re
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["CAPLAT_SERVICES"] = "issuance"
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
import suite as suite_mod  # noqa: E402

STAGES = "{90,30,7,0,-30}"
UNUSED = "{3,10}"


def psql_timed(s, sql):
    t0 = time.monotonic()
    rows = s.psql(sql)
    return rows, time.monotonic() - t0


def buffers(s):
    r = s.psql("SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = 'caplat'")[0]
    return int(r[0]), int(r[1])


def run_pass(s, now_sql, batch):
    """The pass as sweep.c runs it: one instant, rounds of `batch` from
    where the last round stopped, until every stage's window is walked."""
    at = s.psql(f"SELECT extract(epoch FROM {now_sql})::bigint")[0][0]
    hit0, read0 = buffers(s)
    claimed = rounds = 0
    in_db = 0.0
    cursor = ("NULL", "NULL", "NULL")
    t0 = time.monotonic()
    while True:
        rows = s.psql("SET search_path TO issuance, public;"
                      " SELECT r.o_claimed, r.o_stage, r.o_after::text, r.o_after_id,"
                      f" renewal_unused_claim(to_timestamp({at}), '{UNUSED}', {batch}),"
                      " extract(epoch FROM clock_timestamp() - statement_timestamp())"
                      f" FROM reminder_claim(to_timestamp({at}), '{STAGES}', {batch},"
                      f" {cursor[0]}, {cursor[1]}, {cursor[2]}) r")
        e, stage, after, after_id, u, server = rows[0]
        claimed += int(e) + int(u)
        in_db += float(server)
        rounds += 1
        if stage == "" and int(u) < batch:
            break
        cursor = (stage, f"'{after}'::timestamptz", f"'{after_id}'::uuid") if stage else ("NULL",) * 3
    took = time.monotonic() - t0
    time.sleep(0.6)  # pg_stat_database is flushed at most every 500 ms
    hit1, read1 = buffers(s)
    return took, in_db, claimed, rounds, hit1 - hit0, read1 - read0


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    base = tempfile.mkdtemp(prefix="caplat-bench-rem-")
    os.chmod(base, 0o755)
    s = suite_mod.Suite(base, persistent=False, fixed_ports=False)
    try:
        s.start_postgres()
        env = dict(os.environ, **s.service_env("issuance"), **s.issuance_env())
        suite_mod.run_step([os.path.join(s.build, "bin", "caplat-issuance"), "migrate"],
                           what="issuance migrations", env=env, cwd=ROOT)
        t0 = time.monotonic()
        s.psql(f"""
SET session_replication_role = replica;  -- bulk load: no triggers, no FK checks
SET search_path TO issuance, public;
INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, not_after)
SELECT md5('l' || i)::uuid, CASE WHEN i % 5 = 0 THEN 'personal' ELSE 'enterprise' END,
       CASE WHEN i % 5 = 0 THEN 'personal' ELSE 'agent' END, '持有人' || i,
       CASE WHEN i % 5 <> 0 THEN '企业' || (i % 10000) END,
       CASE WHEN i % 5 <> 0 THEN '91110108' || lpad((i % 10000)::text, 9, '0') || 'X' END,
       now() + make_interval(secs => ((i::bigint * 7919) % {total})::float8 / {total} * 425 * 86400 - 60 * 86400)
FROM generate_series(1, {total}) i;
INSERT INTO certificates (id, cert_id, issuer, serial, vendor, not_before, not_after, platforms, source,
                          revoked_at, revocation_reason)
SELECT md5('c' || i)::uuid, md5('l' || i)::uuid, 'CN=Bench CA', upper(to_hex(i)), 'CFCA',
       now() - interval '300 days',
       now() + make_interval(secs => ((i::bigint * 7919) % {total})::float8 / {total} * 425 * 86400 - 60 * 86400),
       '{{LN_JSGC}}', 'import',
       CASE WHEN i % 100 = 1 THEN now() END, CASE WHEN i % 100 = 1 THEN 'cessation_of_operation' END
FROM generate_series(1, {total}) i;
INSERT INTO entitlements (id, order_id, cert_id, platforms, paid_at)
SELECT md5('e' || i)::uuid, md5('o' || i)::uuid, md5('l' || i)::uuid, '{{LN_JSGC}}',
       now() - make_interval(days => i % 20)
FROM generate_series(1, {total}, 100) i;
RESET session_replication_role;
ANALYZE lineages; ANALYZE certificates; ANALYZE entitlements;
""")
        load = time.monotonic() - t0
        size = s.psql("SELECT pg_size_pretty(pg_total_relation_size('issuance.certificates'))")[0][0]
        _, ref = psql_timed(s, "SELECT count(*) FROM issuance.certificates")
        ref = float(s.psql("SELECT count(*), extract(epoch FROM clock_timestamp() - statement_timestamp())"
                           " FROM issuance.certificates")[0][1])
        _, spawn = psql_timed(s, "SELECT 1")
        print(f"certificates: {total} generated in {load:.1f} s ({size} with indexes); batch {batch}")
        print(f"reference (same run): a full scan of certificates, SELECT count(*): {ref * 1000:.0f} ms"
              f" in the database; one psql round trip (SELECT 1): {spawn * 1000:.0f} ms")
        results = []
        for name, now_sql in (("first (backlog)", "now()"), ("next day", "now() + interval '1 day'"),
                              ("again (nothing due)", "now() + interval '1 day'")):
            took, in_db, claimed, rounds, hit, read = run_pass(s, now_sql, batch)
            results.append((name, took, claimed, rounds, hit, read))
            per = f"{(hit + read) / claimed:.1f} buffers/claim" if claimed else "-"
            print(f"pass {name:20s} {took:7.2f} s ({in_db:6.2f} s in the database)"
                  f"  {claimed:7d} claimed in {rounds:3d} rounds"
                  f"  shared hit {hit:9d} read {read:8d}  {per}"
                  f"  ({(hit + read) / total:.2f} buffers per certificate in the registry)")
        # The plans of the claim's statements (inside reminder_claim) for
        # the steady state, two days on, without keeping what it claims.
        print("plans of reminder_claim's statements for stage 30, two days on (auto_explain):")
        print(plans(s, f"""
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice; SET client_min_messages = notice;
BEGIN; SET LOCAL search_path TO issuance, public;
SELECT * FROM reminder_claim(now() + interval '2 days', '{{30}}', {batch});
ROLLBACK;"""))
    finally:
        s.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def plans(s, sql):
    """The auto_explain plans (NOTICE on stderr) of the claim statement."""
    import subprocess
    env = dict(os.environ, PGPASSWORD=s.secrets["db_admin"])
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(s.ports["postgres"]),
                        "-U", "admin", "-d", "caplat", "-c", sql], env=env, capture_output=True, text=True)
    keep, show = [], False
    for line in r.stderr.splitlines():
        if "Query Text:" in line:
            show = "WITH due AS" in line
            if show:
                keep.append("  -- the claim (WITH due AS ... INSERT INTO reminder_stages ... INSERT INTO outbox)")
            continue
        if show and re.match(r"^\s*(->|[A-Z][a-zA-Z ]+ on|Insert|CTE|Limit|Sort|Nested|Index|Buffers|Planning|"
                             r"Execution|Hash|Aggregate|Result|Append|Filter|Rows|Bitmap|Seq|Trigger|Join|Merge)",
                             line.replace("NOTICE:  ", "")):
            keep.append("  " + line.replace("NOTICE:  ", ""))
    return "\n".join(keep) or r.stderr[-3000:]


if __name__ == "__main__":
    main()
