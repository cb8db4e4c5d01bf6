"""outbox_emit() (deploy/sql/common/002_outbox_emit.sql): the one way SQL
writes an event, present in every service schema. It writes the outbox row
common/bus.c writes (id, type, subject, data), returns the event id (the
caller's, or a new one) and refuses a type that is not a valid subject tail.
Each case runs in a transaction that is rolled back, so nothing reaches the
relay."""
import uuid

import suite as suite_mod


def test_outbox_emit_writes_the_row_of_bus_outbox_add(suite):
    for svc in suite_mod.SERVICES:
        subject = str(uuid.uuid4())
        rows = suite.psql(
            "BEGIN;"
            f" SELECT outbox_emit('orders.test.emitted', '{subject}', '{{\"a\": 1}}'::jsonb);"
            " SELECT id, type, data::text, published_at IS NULL FROM outbox"
            f" WHERE subject = '{subject}';"
            " ROLLBACK;",
            role=svc)
        assert len(rows) == 2 and uuid.UUID(rows[0][0]), (svc, rows)
        assert rows[1] == [rows[0][0], "orders.test.emitted", '{"a": 1}', "t"], (svc, rows)


def test_outbox_emit_keeps_the_callers_event_id(suite):
    event = str(uuid.uuid4())
    rows = suite.psql(
        f"BEGIN; SELECT outbox_emit('orders.test.emitted', NULL, NULL, '{event}'::uuid);"
        f" SELECT count(*) FROM outbox WHERE id = '{event}'; ROLLBACK;", role="orders")
    assert rows == [[event], ["1"]], rows


def test_outbox_emit_refuses_a_bad_type(suite):
    for bad in ["", "orders..x", "orders.x.", "orders x", "dlq.orders.x", "orders.*"]:
        try:
            suite.psql(f"BEGIN; SELECT outbox_emit('{bad}', 's', '{{}}'::jsonb); ROLLBACK;",
                       role="orders")
        except RuntimeError as e:
            assert "bad event type" in str(e), (bad, e)
        else:
            raise AssertionError(f"type {bad!r} was accepted")
