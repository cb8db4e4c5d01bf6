"""The outbox relay while idle (issue 16 part 4): it sends PostgreSQL no
statement at all while its outbox is empty (before, every relay ran a
claim transaction and a count every second), and the outbox trigger's
NOTIFY alone wakes it when a row is written."""
import time
import uuid

import suite as suite_mod
from client import wait_until

RELAYS = ("SELECT application_name, extract(epoch FROM now() - state_change)"
          " FROM pg_stat_activity WHERE application_name LIKE 'caplat-%-bus-relay'")


def test_bus_relay_idle_sends_nothing_and_wakes_on_notify(suite):
    def quiet():
        rows = suite.psql(RELAYS)
        # one relay per service, each idle on its LISTEN for over 2.5 s
        return len(rows) >= len(suite_mod.SERVICES) and \
            all(float(age) > 2.5 for _, age in rows) and rows
    try:
        wait_until(quiet, timeout=20, interval=0.5, what="every relay idle for 2.5 s")
    except AssertionError:
        recent = {svc: suite.psql("SELECT type, published_at, now() - created_at FROM outbox"
                                  " ORDER BY seq DESC LIMIT 3", role=svc)
                  for svc in suite_mod.SERVICES}
        raise AssertionError(f"relays not idle: {suite.psql(RELAYS)}; latest outbox rows: {recent}")

    # an INSERT that leaves no unpublished row (nothing selected; or an
    # audit entry held for its batch) wakes nobody (060_outbox_notify_rows)
    suite.psql("INSERT INTO outbox (type, subject, data)"
               " SELECT type, subject, data FROM outbox WHERE false", role="orders")
    time.sleep(1.0)
    age = dict(suite.psql(RELAYS))["caplat-orders-bus-relay"]
    assert float(age) > 3.4, f"an empty INSERT woke the orders relay ({age} s)"

    # a row written now is published at once: the NOTIFY woke the relay
    subject = str(uuid.uuid4())
    t0 = time.time()
    suite.psql(f"SELECT outbox_emit('orders.test.relayed', '{subject}', '{{}}'::jsonb)", role="orders")
    wait_until(lambda: suite.psql(f"SELECT 1 FROM outbox WHERE subject = '{subject}'"
                                  " AND published_at IS NOT NULL", role="orders"),
               timeout=5, what="row published after the NOTIFY")
    took = time.time() - t0
    # (no schema for this test type: the row goes before the events phase
    # checks every outbox row against its schema; nothing consumes it)
    suite.psql(f"DELETE FROM outbox WHERE subject = '{subject}'", role="orders")
    assert took < 3, f"published after {took:.2f} s"
