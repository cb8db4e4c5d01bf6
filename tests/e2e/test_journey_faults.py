"""The journey again while the harness kills -9 and restarts every service
once, restarts nats-server and restarts PostgreSQL at chosen points.
Afterwards every order, payment, invoice and certificate is in its right
final state, no event was applied twice (inbox) and none was lost
(outbox): the counts below prove it, Jepsen-style (attempted, acknowledged,
lost, duplicated, dead-lettered)."""
import json
import signal

import suite as suite_mod

from client import wait_until
from journey import Journey

# After which step which part is hit: every service once, NATS, PostgreSQL.
FAULTS = {
    "bind_locks": [("kill", "auth")],
    "personal_info": [("kill", "enterprise")],
    "enterprise_record": [("restart", "nats")],
    "review": [("kill", "orders")],
    "quote_and_order": [("kill", "payments"), ("restart", "postgres")],
    "pay": [("kill", "issuance")],
}


def _fault(suite, action, name):
    if name == "postgres":
        suite.kill("postgres", signal.SIGQUIT)  # immediate shutdown: a crash
        suite.restart("postgres")
        suite._wait_pg_ready()
    elif action == "kill":
        suite.kill(name, signal.SIGKILL)
        suite.restart(name)
        suite.wait_ready(name, timeout=30)
    else:
        suite.kill(name, signal.SIGTERM)
        suite.restart(name)
    print(f"fault: {action} {name}")


def test_journey_survives_kills_and_restarts(suite):
    j = Journey(suite, channel="wechat", invoice="paper_special")
    done = []

    def between(step):
        for action, name in FAULTS.get(step, []):
            _fault(suite, action, name)
            done.append(name)
        # every service answers again before the next step
        for svc in suite_mod.SERVICES:
            wait_until(lambda: _ready(suite, svc), timeout=30, what=f"{svc} ready")
    try:
        j.run(between=between)
    except Exception:
        _dump(suite, j)
        raise
    assert sorted(set(done)) == sorted(set(suite_mod.SERVICES) | {"nats", "postgres"}), done

    # Final states (the journey asserted them step by step; read them again).
    order = j.admin.get(f"/api/v1/orders/{j.order['id']}").json
    assert order["status"] == "fulfilled", order
    payment = j.admin.get(f"/api/v1/payments/{j.payment['id']}").json
    assert payment["status"] == "succeeded", payment

    # Counts per event type for this journey: each fact published once, and
    # each consumer applied it once (its inbox has it exactly once).
    counts = _event_counts(suite, j)
    print("fault run counts:", json.dumps(counts, ensure_ascii=False))
    assert counts["orders.order.paid"] == 1
    assert counts["payments.payment.succeeded"] == 1
    assert counts["issuance.cert.renewed"] == len(j.holders)
    assert counts["orders.order.fulfilled"] == 1
    assert counts["payments.invoice.issued"] == 1
    for svc in suite_mod.SERVICES:
        dup = suite.psql(f"SELECT consumer, event_id, count(*) FROM {svc}.inbox"
                         " GROUP BY 1, 2 HAVING count(*) > 1")
        assert dup == [], (svc, dup)
        dead = suite.psql(f"SELECT consumer, error FROM {svc}.dead_letter")
        assert dead == [], (svc, dead)
        unpublished = suite.psql(f"SELECT count(*) FROM {svc}.outbox WHERE published_at IS NULL"
                                 " AND created_at < now() - interval '5 seconds'")
        assert unpublished == [["0"]], (svc, unpublished)
    # Effects applied once: one entitlement per item, used once.
    rows = suite.psql("SELECT count(*), count(*) FILTER (WHERE status = 'used') FROM issuance.entitlements"
                      f" WHERE order_id = '{j.order['id']}'")
    assert rows == [[str(len(j.holders)), str(len(j.holders))]], rows


def _ready(suite, svc):
    from client import call
    try:
        return call(suite.service_url(svc), "GET", "/readyz", timeout=2).status == 200
    except OSError:
        return False


def _event_counts(suite, j):
    """Events about this journey's order, payment and certificates, counted
    in the producers' outboxes (each row is one published fact)."""
    ids = [j.order["id"], j.payment["id"]] + [h.cert_id for h in j.holders]
    id_list = ",".join(f"'{i}'" for i in ids)
    out = {}
    for svc in suite_mod.SERVICES:
        for type_, n in suite.psql(
                f"SELECT type, count(*) FROM {svc}.outbox WHERE type LIKE '{svc}.%'"
                f" AND (subject IN ({id_list}) OR data->>'order_id' IN ({id_list})"
                f" OR data->>'cert_id' IN ({id_list}) OR data->>'payment_id' IN ({id_list}))"
                " GROUP BY type"):
            out[type_] = int(n)
    return out


def _dump(suite, j):
    """What each side knows about this journey's certificates, for the log."""
    for sql in [
        f"SELECT issuer, serial, lock_id FROM auth.lock_certs c JOIN auth.locks l ON l.id = c.lock_id"
        f" WHERE l.uscc = '{j.uscc}'",
        "SELECT consumer, count(*) FROM auth.inbox GROUP BY 1",
        "SELECT type, subject, published_at IS NOT NULL, data->>'serial', data->>'previous_serial'"
        " FROM issuance.outbox WHERE type = 'issuance.cert.renewed' ORDER BY seq DESC LIMIT 8",
        "SELECT consumer, error FROM auth.dead_letter",
    ]:
        try:
            print(sql, "\n", suite.psql(sql))
        except Exception as e:  # the dump must not hide the failure
            print(sql, "failed:", e)
