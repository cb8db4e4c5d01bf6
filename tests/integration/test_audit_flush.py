"""The audit flush (issue 12's cost goal) through nginx: an entry written by
a request reaches auth's chain within a few flush intervals although it
announces nothing (095: the writing process flushes once its batch
committed; orders' price change writes its entry with audit_emit() and
flushes after the commit), far sooner than the once-a-minute look; the
flush takes the held row out of the outbox (096) while audit_outbox still
shows it, from its batch, as the row was; and auth, which hands a batch to
PostgreSQL unparsed, refuses one without an array of entries (dead letter,
nothing appended)."""
import json
import uuid

from client import Api, wait_until
from test_enterprise_fixtures import admin, fill_record, staff_token


def chained(suite, action, object_id):
    return suite.psql(f"SELECT event_id, after::text FROM auth.audit_log WHERE action = '{action}'"
                      f" AND object_id = '{object_id}' ORDER BY seq")


def test_request_entries_are_chained_promptly_and_leave_the_outbox(suite):
    api = Api(suite)
    op = staff_token(suite, "operator")
    reason = "flush " + uuid.uuid4().hex[:8]
    # a version far ahead: no price any other test reads changes
    r = api.post("/api/v1/platforms/LN_ZTB/prices",
                 {"renew_fen": 4100, "add_fen": 21000, "lock_kind": "agent", "reason": reason,
                  "effective_at": "2036-01-01T00:00:00Z"}, token=op)
    assert r.status == 201, r
    # audit_emit() path: chained well before the 60 s look would find it
    rows = wait_until(lambda: [x for x in chained(suite, "price.set", "LN_ZTB") if reason in x[1]],
                      timeout=8, interval=0.1, what="the price change in the chain")
    event_id = rows[0][0]
    assert json.loads(rows[0][1])["renew_fen"] == 4100
    # flushed: the row left the outbox, its batch shows it as it was
    wait_until(lambda: suite.psql(f"SELECT count(*) FROM orders.outbox WHERE id = '{event_id}'") == [["0"]],
               timeout=5, interval=0.1, what="the held row taken out by the flush")
    seen = suite.psql(f"SELECT type, subject, seq > 0, data->>'action' FROM orders.audit_outbox"
                      f" WHERE id = '{event_id}'")
    assert seen == [["orders.audit.recorded", "LN_ZTB", "t", "price.set"]], seen

    # audit_add_sql() path (an operator's full read of a record)
    rec = fill_record(admin(suite, name="辽宁审计冲刷有限公司"), name="辽宁审计冲刷有限公司")
    r = api.get(f"/api/v1/review/records/{rec['id']}", token=op)
    assert r.status == 200, r
    wait_until(lambda: chained(suite, "enterprise.record.read_full", rec["id"]),
               timeout=8, interval=0.1, what="the full read in the chain")


def test_auth_refuses_a_batch_without_entries(suite):
    event_id = suite.psql("SET search_path TO orders; SELECT outbox_emit('orders.audit.batch', NULL,"
                          " '{\"entries\": \"none\"}'::jsonb)")[-1][0]
    try:
        dead = wait_until(lambda: suite.psql("SELECT deliveries FROM auth.dead_letter"
                                             f" WHERE consumer = 'auth-audit-batch' AND event_id = '{event_id}'"),
                          timeout=40, interval=0.5, what="the bad batch dead-lettered")
        assert dead == [["5"]], dead
        assert suite.psql(f"SELECT count(*) FROM auth.inbox WHERE event_id = '{event_id}'") == [["0"]]
    finally:
        # not a valid orders.audit.batch: out of the outbox before the
        # events phase checks every row against its schema
        suite.psql(f"DELETE FROM orders.outbox WHERE id = '{event_id}'")
