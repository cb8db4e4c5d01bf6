"""Reminders, the producer side (issue 17): the expiry stages of each
certificate (CAPLAT_REMINDER_STAGES) claimed exactly once by issuance's
reminder pass with their issuance.notice.requested rows (holder, and the
enterprise's administrator) and issuance.cert.expiring in the same
transaction; none after renewal, revocation or a paid renewal; a kill -9
right after a batch committed neither loses nor doubles a stage; a paid
renewal tells each holder (renewal.ready) and reminds after 3 and 10 days
while unused (renewal.unused). The clock of the pass is moved with the
test-only offset file (CAPLAT_TEST_CLOCK_FILE). What these tests assert
are the outbox rows; delivering them (SMS, inbox) is auth's."""
import contextlib
import datetime
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import new_uscc, pay, q, restart_issuance  # noqa: E402
from client import wait_until  # noqa: E402

DAY = 86400
STAGES = [90, 30, 7, 0, -30]


def set_clock(suite, seconds):
    path = os.path.join(suite.base, "test_clock")
    with open(path + ".tmp", "w") as f:
        f.write(str(int(seconds)))
    os.replace(path + ".tmp", path)


def others_told_already(suite):
    """The suite is shared: the certificates and paid renewals other tests
    left would enter stages too as the clock moves months ahead (thousands
    of notices on 2 cores, and this test's waits time out behind them).
    Their stages are marked claimed before this test makes its own, so the
    pass tells only this test's certificates."""
    suite.psql("INSERT INTO issuance.reminder_stages (certificate_id, stage, cert_id)"
               " SELECT c.id, s, c.cert_id FROM issuance.certificates c"
               f" CROSS JOIN unnest(ARRAY{STAGES}) s ON CONFLICT DO NOTHING")
    suite.psql("INSERT INTO issuance.renewal_notices (entitlement_id, stage)"
               " SELECT e.id, s FROM issuance.entitlements e"
               " CROSS JOIN unnest(ARRAY[0, 3, 10]) s ON CONFLICT DO NOTHING")


@contextlib.contextmanager
def reminder_pass(suite, **env):
    """issuance with its reminder pass on (every 300 ms; the suite keeps it
    off for the other tests), then the clock back and the pass off again."""
    restart_issuance(suite, dict({"CAPLAT_REMINDER_PASS_MS": "300"}, **env))
    try:
        yield
    finally:
        set_clock(suite, 0)
        restart_issuance(suite)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def sync_cert_sql(uscc, holder, days_left, kind="agent", platforms=("LN_JSGC",)):
    """A certificate as the vendor directory sync enters it, notAfter
    days_left days (and an hour) from now: (SQL, cert_id, serial,
    certificate id)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    lineage, cert = str(uuid.uuid4()), str(uuid.uuid4())
    serial = uuid.uuid4().hex[:16].upper()
    arr = "{" + ",".join(platforms) + "}"
    typ = "enterprise" if uscc else "personal"
    sql = ("SELECT * FROM sync_certificate("
           f"'{lineage}', '{cert}', '{uuid.uuid4()}', 'CN=CFCA CA,O=CFCA,C=CN', '{serial}', 'CFCA',"
           f" NULL, NULL, NULL, NULL, '{iso(now - datetime.timedelta(days=300))}',"
           f" '{iso(now + datetime.timedelta(days=days_left, hours=1))}', NULL, '{typ}',"
           f" {q(kind if uscc else 'personal')}, {q(holder)}, {q('沈阳某某建设有限公司') if uscc else 'NULL'},"
           f" {q(uscc) if uscc else 'NULL'}, '{arr}', NULL, NULL, NULL);")
    return sql, lineage, serial, cert


def sync_cert(suite, uscc, holder, days_left, kind="agent", platforms=("LN_JSGC",)):
    """sync_cert_sql's certificate entered: (cert_id, serial, certificate id)."""
    sql, lineage, serial, cert = sync_cert_sql(uscc, holder, days_left, kind, platforms)
    suite.psql("SET search_path TO issuance, public; " + sql)
    return lineage, serial, cert


def notices(suite, cert_id, kind=None):
    """The issuance.notice.requested data about cert_id, oldest first."""
    rows = suite.psql(
        "SELECT data::text FROM issuance.outbox WHERE type = 'issuance.notice.requested'"
        f" AND data->'params'->>'cert_id' = {q(cert_id)}"
        + (f" AND data->>'kind' = {q(kind)}" if kind else "") + " ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def expiring_events(suite, cert_id):
    rows = suite.psql("SELECT data::text FROM issuance.outbox WHERE type = 'issuance.cert.expiring'"
                      f" AND subject = {q(cert_id)} ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def stage_count(suite, cert_id, stage):
    return len([n for n in notices(suite, cert_id, "cert.expiring") if n["params"]["stage"] == stage])


def renew_in_registry(suite, cert_id):
    """The lineage's current certificate is replaced (what renewal_complete
    records): a new certificate a year later, the old one replaced_by it."""
    new = str(uuid.uuid4())
    suite.psql(
        "BEGIN; SET search_path TO issuance, public;"
        f" CREATE TEMP TABLE old ON COMMIT DROP AS SELECT * FROM certificates"
        f"  WHERE cert_id = {q(cert_id)} AND replaced_by IS NULL;"
        f" UPDATE certificates SET replaced_by = {q(new)} WHERE id = (SELECT id FROM old);"
        " INSERT INTO certificates (id, cert_id, issuer, serial, vendor, not_before, not_after, platforms,"
        "  source, replaces)"
        f" SELECT {q(new)}, cert_id, issuer, '{uuid.uuid4().hex[:16].upper()}', vendor, now(),"
        "  not_after + interval '365 days', platforms, 'renewal', id FROM old; COMMIT")


def revoke_in_registry(suite, cert_id):
    """The current certificate revoked (as revoke_certificate records it)."""
    suite.psql("UPDATE issuance.certificates SET revoked_at = now(),"
               f" revocation_reason = 'cessation_of_operation' WHERE cert_id = {q(cert_id)}"
               " AND replaced_by IS NULL")


def offset_for(stage, days_left=95):
    """The clock offset at which a certificate made with days_left has just
    entered stage (its notAfter is days_left days and an hour away)."""
    return (days_left - stage) * DAY + 2 * 3600


def test_reminders_every_stage_once_none_after_renewal_revocation_or_payment(suite):
    others_told_already(suite)
    uscc = new_uscc()
    a, a_serial, a_cert = sync_cert(suite, uscc, "赵一", 95)
    paid, _, _ = sync_cert(suite, uscc, "钱二", 95)
    revoked, _, _ = sync_cert(suite, uscc, "孙三", 95)
    renewed, _, _ = sync_cert(suite, uscc, "周四", 95)
    personal, _, _ = sync_cert(suite, None, "吴五", 95)
    pay(suite, paid, ["LN_JSGC"])
    revoke_in_registry(suite, revoked)
    renew_in_registry(suite, renewed)
    with reminder_pass(suite):
        for stage in STAGES:
            set_clock(suite, offset_for(stage))
            wait_until(lambda: stage_count(suite, a, stage) == 2 and stage_count(suite, personal, stage) == 1,
                       timeout=15, what=f"stage {stage} claimed")
        # One more certificate entering a stage proves the pass ran again
        # after the last stage: nothing was sent twice meanwhile.
        late, _, _ = sync_cert(suite, uscc, "郑六", 95 + 30 + 60)
        wait_until(lambda: stage_count(suite, late, 90) == 2, timeout=15, what="a later certificate's stage")
    got = notices(suite, a, "cert.expiring")
    assert sorted((n["params"]["stage"], json.dumps(n["recipient"], sort_keys=True)) for n in got) == sorted(
        [(s, json.dumps({"cert_id": a})) for s in STAGES]
        + [(s, json.dumps({"role": "admin", "uscc": uscc}, sort_keys=True)) for s in STAGES])
    holder = [n for n in got if "cert_id" in n["recipient"]]
    assert [n["notice_id"] for n in holder] == [f"expiry:{a}:{a_cert}:d{s}:holder" for s in STAGES]
    assert all("channels" not in n for n in holder)  # SMS and inbox
    admin = [n for n in got if "uscc" in n["recipient"]]
    assert all(n["channels"] == ["inbox"] for n in admin)  # the SMS is orders' digest
    p = holder[0]["params"]
    assert p["serial"] == a_serial and p["holder_name"] == "赵一" and p["stage"] == 90
    assert p["days_left"] == 89 and p["not_after"].endswith("Z")  # 89 days 23 hours: whole days, as in CA管理
    assert [e["stage"] for e in expiring_events(suite, a)] == STAGES
    e = expiring_events(suite, a)[0]
    assert e["uscc"] == uscc and e["serial"] == a_serial and e["platforms"] == ["LN_JSGC"]
    assert e["certificate_id"] == a_cert and e["lock_kind"] == "agent"
    # a personal certificate: the holder only, no domain event for a digest
    assert [n["recipient"] for n in notices(suite, personal, "cert.expiring")] == [{"cert_id": personal}] * 5
    assert expiring_events(suite, personal) == []
    for other in (paid, revoked, renewed):
        assert notices(suite, other, "cert.expiring") == [], other
        assert expiring_events(suite, other) == []
    rows = suite.psql(f"SELECT stage FROM issuance.reminder_stages WHERE cert_id = {q(a)} ORDER BY stage DESC")
    assert [int(r[0]) for r in rows] == STAGES


def test_reminders_kill_9_after_a_batch_neither_loses_nor_doubles(suite):
    others_told_already(suite)
    uscc = new_uscc()
    certs = [sync_cert(suite, uscc, f"持有人{i}", 95)[0] for i in range(5)]
    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    try:
        set_clock(suite, offset_for(90))
        restart_issuance(suite, {"CAPLAT_FAULT": "issuance_crash_after_reminders",
                                 "CAPLAT_FAULT_ONCE": once, "CAPLAT_REMINDER_BATCH": "2",
                                 "CAPLAT_REMINDER_PASS_MS": "300"})
        wait_until(lambda: os.path.exists(once), timeout=15, what="issuance crashed after a batch")
        # Two more claimers at the same instant (another process would do
        # the same): the unique key lets each stage through once.
        now = suite.psql("SELECT extract(epoch FROM now())::bigint")[0][0]
        at = int(now) + offset_for(90)
        threads = [threading.Thread(target=suite.psql, args=(
            "SET search_path TO issuance, public; SELECT reminder_claim("
            f"to_timestamp({at}), '{{90,30,7,0,-30}}', 3)",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        restart_issuance(suite, {"CAPLAT_REMINDER_BATCH": "2", "CAPLAT_REMINDER_PASS_MS": "300"})
        wait_until(lambda: all(stage_count(suite, c, 90) == 2 for c in certs), timeout=20,
                   what="every stage claimed after the restart")
        late, _, _ = sync_cert(suite, uscc, "后来者", 60)
        wait_until(lambda: stage_count(suite, late, 90) == 2, timeout=15, what="the pass ran again")
    finally:
        set_clock(suite, 0)
        restart_issuance(suite)
    for c in certs:
        got = notices(suite, c, "cert.expiring")
        assert len(got) == 2 and len({n["notice_id"] for n in got}) == 2, got
        assert [e["stage"] for e in expiring_events(suite, c)] == [90]


def test_reminders_renewal_ready_then_unused_after_3_and_10_days(suite):
    others_told_already(suite)
    uscc = new_uscc()
    a, a_serial, _ = sync_cert(suite, uscc, "王一", 200, platforms=("LN_JSGC", "DL_GGZY"))
    b, _, _ = sync_cert(suite, uscc, "王二", 200)
    order = pay(suite, a, ["LN_JSGC"])
    pay(suite, b, ["LN_JSGC"])
    ent_a = suite.psql(f"SELECT id FROM issuance.entitlements WHERE cert_id = {q(a)}")[0][0]
    ent_b = suite.psql(f"SELECT id FROM issuance.entitlements WHERE cert_id = {q(b)}")[0][0]
    wait_until(lambda: notices(suite, a, "renewal.ready") and notices(suite, b, "renewal.ready"),
               timeout=15, what="renewal.ready")
    ready = notices(suite, a, "renewal.ready")
    assert len(ready) == 1 and ready[0]["notice_id"] == f"renewal:{ent_a}:ready", ready
    assert ready[0]["recipient"] == {"cert_id": a}
    p = ready[0]["params"]
    assert p["serial"] == a_serial and p["holder_name"] == "王一" and p["platforms"] == ["LN_JSGC"]
    assert p["order_number"].startswith("PL")
    # b's holder updates the key: no reminder for b after that
    suite.psql("UPDATE issuance.entitlements SET status = 'used', issuance_id = gen_random_uuid(),"
               f" used_at = now() WHERE id = {q(ent_b)}")
    with reminder_pass(suite):
        set_clock(suite, 3 * DAY + 3600)
        wait_until(lambda: len(notices(suite, a, "renewal.unused")) == 1, timeout=15, what="renewal.unused d3")
        set_clock(suite, 10 * DAY + 3600)
        wait_until(lambda: len(notices(suite, a, "renewal.unused")) == 2, timeout=15, what="renewal.unused d10")
        late, _, _ = sync_cert(suite, uscc, "王三", 200)
        pay(suite, late, ["LN_JSGC"])
        wait_until(lambda: len(notices(suite, late, "renewal.unused")) == 1, timeout=15,
                   what="the pass ran again")
    unused = notices(suite, a, "renewal.unused")
    assert [n["notice_id"] for n in unused] == [f"renewal:{ent_a}:d3", f"renewal:{ent_a}:d10"]
    assert [n["params"]["days_since_paid"] for n in unused] == [3, 10]
    assert all(n["recipient"] == {"cert_id": a} for n in unused)
    assert notices(suite, b, "renewal.unused") == []
    assert len(notices(suite, a, "renewal.ready")) == 1
    assert order


# ---- orders: the administrator's daily digest, order.expiring -------------

def _orders_module():
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("orders_tests", os.path.join(here, "test_orders.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def orders_notices(suite, subject_like):
    rows = suite.psql("SELECT data::text FROM orders.outbox WHERE type = 'orders.notice.requested'"
                      f" AND subject LIKE {q(subject_like)} ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_reminders_digest_quote_prices_exactly_those_certificates(suite):
    """Two certificates enter stage 90 (89 days left: inside the renewal
    window now, so no clock offset is needed): one digest today, with a
    quote an order is created from."""
    others_told_already(suite)
    o = _orders_module()
    uscc = new_uscc()
    admin = o.enterprise_admin(suite, uscc=uscc)
    later, _, _ = sync_cert(suite, uscc, "孙三", 200, kind="agent")
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(later)}"),
               what="the certificate reached orders")
    sa, a, a_serial, _ = sync_cert_sql(uscc, "赵一", 89, kind="project_lead", platforms=("DL_GGZY", "LN_JSGC"))
    sb, b, b_serial, _ = sync_cert_sql(uscc, "钱二", 88, kind="agent", platforms=("LN_JSGC",))
    suite.psql("BEGIN; SET LOCAL search_path TO issuance, public; " + sa + sb + " COMMIT")  # one pass sees both
    with reminder_pass(suite):
        digest = wait_until(lambda: orders_notices(suite, f"digest:{uscc}:%"), timeout=20,
                            what="the administrator's digest")
        late, _, _ = sync_cert(suite, uscc, "李四", 60)
        wait_until(lambda: suite.psql(
            f"SELECT 1 FROM orders.expiring_certs WHERE cert_id = {q(late)}"), what="a later stage gathered")
    assert len(digest) == 1, digest
    d = digest[0]
    day = suite.psql("SELECT to_char((now() AT TIME ZONE 'Asia/Shanghai')::date, 'YYYY-MM-DD')")[0][0]
    assert d["notice_id"] == f"digest:{uscc}:{day}" and d["kind"] == "cert.expiry_digest"
    assert d["recipient"] == {"uscc": uscc, "role": "admin"}
    p = d["params"]
    assert sorted((c["cert_id"], c["serial"], c["stage"]) for c in p["certificates"]) == sorted(
        [(a, a_serial, 90), (b, b_serial, 90)])
    assert {c["holder_name"] for c in p["certificates"]} == {"赵一", "钱二"}
    assert p["quote_id"] and p["valid_until"].endswith("Z") and p["day"] == day
    # The certificate entering a stage after today's digest waits for
    # tomorrow's: no second digest today.
    assert len(orders_notices(suite, f"digest:{uscc}:%")) == 1
    # The administrator orders exactly those renewals from the quote, with
    # their current platforms, at the quoted total.
    body = o.items(*sorted([(a, ["DL_GGZY", "LN_JSGC"]), (b, ["LN_JSGC"])]))
    body["quote_id"] = p["quote_id"]
    r = o.place(suite, admin, body)
    assert r.status == 201, r
    assert r.json["total_fen"] == p["total_fen"] and r.json["quote_id"] == p["quote_id"]
    assert sorted(i["cert_id"] for i in r.json["items"]) == sorted([a, b])
    # Another set of certificates does not match the quote.
    body = o.items((a, ["DL_GGZY", "LN_JSGC"]))
    body["quote_id"] = p["quote_id"]
    r = o.place(suite, admin, body)
    assert r.status == 422 and r.code == "QUOTE_MISMATCH", r


def test_reminders_unpaid_order_about_to_expire_told_once(suite):
    others_told_already(suite)
    o = _orders_module()
    admin = o.enterprise_admin(suite)
    c1, _ = o.register_cert(suite, admin.uscc, None, "agent", ["LN_JSGC"])
    c2, _ = o.register_cert(suite, admin.uscc, None, "agent", ["LN_JSGC"])
    r1 = o.place(suite, admin, o.items((c1, ["LN_JSGC"])))
    r2 = o.place(suite, admin, o.items((c2, ["LN_JSGC"])))
    assert r1.status == 201 and r2.status == 201, (r1, r2)
    first, second = r1.json["id"], r2.json["id"]
    # Within the notice period (CAPLAT_ORDER_EXPIRING_NOTICE_SECONDS, 10
    # minutes; a new order has 30): told.
    assert orders_notices(suite, f"order:{first}:expiring") == []
    suite.psql(f"UPDATE orders.orders SET expires_at = now() + interval '5 minutes' WHERE id = {q(first)}")
    wait_until(lambda: orders_notices(suite, f"order:{first}:expiring"), timeout=10, what="order.expiring")
    suite.psql(f"UPDATE orders.orders SET expires_at = now() + interval '5 minutes' WHERE id = {q(second)}")
    wait_until(lambda: orders_notices(suite, f"order:{second}:expiring"), timeout=10,
               what="the sweep ran again")
    got = orders_notices(suite, f"order:{first}:expiring")
    assert len(got) == 1, got
    n = got[0]
    assert n["kind"] == "order.expiring" and n["recipient"] == {"account_id": admin.account}
    assert n["params"]["order_id"] == first and n["params"]["order_number"] == r1.json["number"]
    assert n["params"]["total_fen"] == r1.json["total_fen"] and 1 <= n["params"]["minutes_left"] <= 5


def test_reminders_admin_sees_who_has_not_updated_yet(suite):
    """CA管理 with renewal_paid=true: the enterprise's certificates whose paid
    renewal still waits for the holder to update the key; a member sees only
    their own (none here); a bad value is 400."""
    others_told_already(suite)
    from client import Api
    o = _orders_module()
    uscc = new_uscc()
    admin = o.enterprise_admin(suite, uscc=uscc)
    a, _, _ = sync_cert(suite, uscc, "周一", 40)
    b, _, _ = sync_cert(suite, uscc, "周二", 40)
    c, _, _ = sync_cert(suite, uscc, "周三", 40)
    pay(suite, a, ["LN_JSGC"])
    pay(suite, b, ["LN_JSGC"])
    suite.psql("UPDATE issuance.entitlements SET status = 'used', issuance_id = gen_random_uuid(),"
               f" used_at = now() WHERE cert_id = {q(b)}")
    api = Api(suite)
    r = api.get("/api/v1/certs?renewal_paid=true", token=admin.token)
    assert r.status == 200, r
    assert [i["id"] for i in r.json["items"]] == [a]
    assert r.json["items"][0]["holder"] == "周一" and r.json["items"][0]["renewal_state"] == "paid"
    r = api.get("/api/v1/certs?renewal_paid=false", token=admin.token)
    assert r.status == 200 and sorted(i["id"] for i in r.json["items"]) == sorted([b, c]), r
    m = o.member(suite, uscc)
    r = api.get("/api/v1/certs?renewal_paid=true", token=m.token)
    assert r.status == 200 and r.json["items"] == [], r
    r = api.get("/api/v1/certs?renewal_paid=yes", token=admin.token)
    assert r.status == 400 and r.code == "BAD_REQUEST" and r.json["error"]["field"] == "renewal_paid", r


def test_reminders_orders_sweeps_rest_until_due(suite):
    """orders' expire, expiring and digest sweeps do not poll while nothing
    is due (here CAPLAT_ORDER_SWEEP_IDLE_SECONDS 60; the suite keeps 1): each
    waits until its next item falls due, and an order placed brings
    expiring forward only to when it enters the notice window."""
    import signal
    others_told_already(suite)
    # what other tests left due is told first (digests today, orders' notices)
    suite.psql("INSERT INTO orders.order_notices (order_id, kind) SELECT id, 'order.expiring'"
               " FROM orders.orders WHERE status = 'pending_payment' ON CONFLICT DO NOTHING")
    suite.psql("UPDATE orders.orders SET expires_at = now() + interval '1 hour'"
               " WHERE status = 'pending_payment' AND expires_at < now() + interval '1 hour'")
    suite.kill("orders", signal.SIGTERM)
    suite.start_service("orders", {"CAPLAT_ORDER_SWEEP_IDLE_SECONDS": "60"})
    try:
        time.sleep(1.5)  # the first runs (1 s after the start) are over
        o = _orders_module()
        admin = o.enterprise_admin(suite)
        c1, _ = o.register_cert(suite, admin.uscc, None, "agent", ["LN_JSGC"])
        r = o.place(suite, admin, o.items((c1, ["LN_JSGC"])))
        assert r.status == 201, r
        order = r.json["id"]
        # 30 minutes to pay, told 10 minutes before: the sweep rests ~20
        # minutes; moved into the window behind the service's back, the
        # order is told only when the sweep wakes (the idle bound here)
        suite.psql(f"UPDATE orders.orders SET expires_at = now() + interval '5 minutes' WHERE id = {q(order)}")
        time.sleep(3)
        assert orders_notices(suite, f"order:{order}:expiring") == [], "the sweep polled while idle"
    finally:
        suite.kill("orders", signal.SIGTERM)
        suite.start_service("orders")
    wait_until(lambda: orders_notices(suite, f"order:{order}:expiring"), timeout=15,
               what="order.expiring once the sweep runs")
