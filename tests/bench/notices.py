#!/usr/bin/env python3
"""notices — auth's notice pipeline on a bench suite (tests/bench/notices.sh):
N accounts and one notice each (auth.notice.requested, emitted in one SQL
statement), then the time until every notice is accepted (rendered, the
recipient resolved, inbox message and SMS row written in one transaction)
and until every SMS is sent through the local provider and recorded. Same
run reference: N notices of an unknown kind, which the consumer records as
undeliverable with one INSERT — the bus's own cost per event. Reports;
never fails.

  python3 tests/bench/notices.py BASE [N]"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
import suite as suite_mod  # noqa: E402


def wait(s, sql, n, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if int(s.psql(sql)[0][0]) >= n:
            return time.time() - t0
        time.sleep(0.1)
    return None


def main():
    base = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    s = suite_mod.Suite(base, persistent=True)
    tag = str(int(time.time()))
    s.psql(f"INSERT INTO auth.accounts (id, phone) SELECT md5('nb-{tag}-' || i)::uuid,"
           f" '15' || lpad(((EXTRACT(EPOCH FROM now())::bigint % 1000) * 100000 + i)::text, 9, '0')"
           f" FROM generate_series(1, {n}) i ON CONFLICT DO NOTHING")
    # reference: the bus alone (an unknown kind: one INSERT in the consumer)
    t0 = time.time()
    s.psql(f"SELECT auth.outbox_emit('auth.notice.requested', 'ref-{tag}-' || i, jsonb_build_object("
           f"'notice_id', 'ref-{tag}-' || i, 'kind', 'bench.unknown', 'recipient',"
           f" jsonb_build_object('account_id', md5('nb-{tag}-' || i)::uuid), 'params', '{{}}'::jsonb))"
           f" FROM generate_series(1, {n}) i")
    ref = wait(s, f"SELECT count(*) FROM auth.notices WHERE notice_id LIKE 'ref-{tag}-%'", n)
    ref_total = time.time() - t0
    # the pipeline
    t0 = time.time()
    s.psql(f"SELECT auth.outbox_emit('auth.notice.requested', 'nb-{tag}-' || i, jsonb_build_object("
           f"'notice_id', 'nb-{tag}-' || i, 'kind', 'cert.expiring', 'recipient',"
           f" jsonb_build_object('account_id', md5('nb-{tag}-' || i)::uuid), 'params', jsonb_build_object("
           f"'serial', 'BENCH' || i, 'not_after', '2027-01-31T00:00:00Z', 'days_left', 30,"
           f" 'holder_name', '压测' || i)))"
           f" FROM generate_series(1, {n}) i")
    emitted = time.time() - t0
    accepted = wait(s, f"SELECT count(*) FROM auth.messages WHERE notice_id LIKE 'nb-{tag}-%'", n)
    accepted_total = time.time() - t0
    sent = wait(s, f"SELECT count(*) FROM auth.sms_deliveries WHERE notice_id LIKE 'nb-{tag}-%'"
                   f" AND status = 'sent'", n)
    sent_total = time.time() - t0
    print(f"notices: {n}, emitted in one statement in {emitted:.2f} s")
    print(f"reference (bus only, unknown kind → one INSERT): {n} consumed in {ref_total:.2f} s"
          f" = {n / ref_total:.0f}/s" if ref is not None else "reference: timed out")
    print(f"accepted (render, resolve, inbox + SMS row in one transaction): {accepted_total:.2f} s"
          f" = {n / accepted_total:.0f}/s" if accepted is not None else "accepted: timed out")
    print(f"sent through the local provider and recorded: {sent_total:.2f} s after emitting"
          f" = {n / sent_total:.0f}/s" if sent is not None else "sent: timed out")
    s.psql(f"DELETE FROM auth.sms_deliveries WHERE notice_id LIKE 'nb-{tag}-%'")


if __name__ == "__main__":
    main()
