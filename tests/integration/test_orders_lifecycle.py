"""orders: the life of an order — creation (batch and single) with
Idempotency-Key, listing and detail with per-item progress, cancel, expiry by
the sweep, payment (and late, duplicate or wrong payments flagged for
refund), renewals fulfilling the order, refunds, and quotes keeping their
prices. Upstream events are injected as in test_orders.py."""
import datetime
import json
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_orders import (ISSUER, Api, applied, assert_error, enterprise_admin, inject,  # noqa: E402
                         iso, items, member, now, order_count, person, place, quote,
                         register_cert, staff_token)
from client import call, wait_until  # noqa: E402


def order_row(suite, order_id, cols="status"):
    return suite.psql(f"SELECT {cols} FROM orders.orders WHERE id = '{order_id}'")[0]


def events_of(suite, type_, order_id):
    return [json.loads(d) for (d,) in suite.psql(
        f"SELECT data::text FROM orders.outbox WHERE type = '{type_}' AND subject = '{order_id}'"
        " ORDER BY seq")]


def pay(suite, order, amount=None, payment_id=None):
    payment_id = payment_id or str(uuid.uuid4())
    applied(suite, inject(suite, "payments.payment.succeeded", payment_id, {
        "payment_id": payment_id, "order_id": order["id"], "channel": "alipay",
        "amount_fen": order["total_fen"] if amount is None else amount,
        "provider_trade_no": "2024" + uuid.uuid4().hex[:20], "invoice_type": "e_normal",
        "paid_at": iso(now())}))
    return payment_id


def renewed(suite, order, cert_id, serial, lock_kind="master", platforms=("LN_JSGC",)):
    new_serial = uuid.uuid4().hex[:16].upper()
    not_after = now() + datetime.timedelta(days=395)
    applied(suite, inject(suite, "issuance.cert.renewed", cert_id, {
        "cert_id": cert_id, "serial": new_serial, "previous_serial": serial,
        "issuer": ISSUER, "previous_issuer": ISSUER,
        "lock_kind": lock_kind, "not_before": iso(now()), "not_after": iso(not_after),
        "platforms": list(platforms), "order_id": order["id"], "renewed_at": iso(now())}))
    return new_serial


def get(suite, caller, order_id):
    return Api(suite).get(f"/api/v1/orders/{order_id}", token=caller.token)


def cancel(suite, caller, order_id):
    return Api(suite).post(f"/api/v1/orders/{order_id}/cancel", token=caller.token)


def china_today():
    return (datetime.datetime.now(datetime.timezone.utc) +
            datetime.timedelta(hours=8)).strftime("%Y%m%d")


# ---------------------------------------------------------------- creation

def test_orders_admin_batch_order_for_several_holders(suite):
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc, "project_lead")
    master, _ = register_cert(suite, admin.uscc, admin.account, "master",
                              ["LN_JSGC", "LN_ZTB", "DL_GGZY"], holder="辽宁某某公司")
    leads, _ = register_cert(suite, admin.uscc, lead.account, "project_lead", ["LN_JSGC"])
    r = place(suite, admin, items((master, ["LN_JSGC", "LN_ZTB", "DL_ZFCG"]),
                                  (leads, ["LN_JSGC"])))
    assert r.status == 201, r
    o = r.json
    assert re.fullmatch(r"PL\d{16}", o["number"]) and o["number"][2:10] == china_today(), o
    assert o["status"] == "pending_payment" and o["paid_at"] is None
    assert o["total_fen"] == 10000 + 5000 + 25000 + 10000
    created = datetime.datetime.fromisoformat(o["created_at"].replace("Z", "+00:00"))
    expires = datetime.datetime.fromisoformat(o["expires_at"].replace("Z", "+00:00"))
    assert (expires - created).total_seconds() == 1800     # 30 minutes by default
    assert [i["cert_id"] for i in o["items"]] == [master, leads]
    assert o["items"][0]["dropped"] == ["DL_GGZY"] and "停止使用" in o["notice"]
    assert all(i["progress"] == "unpaid" for i in o["items"])
    assert o["uscc"] == admin.uscc

    detail = get(suite, admin, o["id"])
    assert detail.status == 200, detail
    for k in ("id", "number", "status", "total_fen", "expires_at", "created_at", "items",
              "progress", "placed_by", "uscc"):
        assert detail.json[k] == o[k], k

    # The holder of one certificate sees the order that renews it.
    assert get(suite, lead, o["id"]).status == 200
    listed = Api(suite).get("/api/v1/orders", token=lead.token).json["items"]
    assert [x["id"] for x in listed] == [o["id"]]
    # Another enterprise does not.
    other = enterprise_admin(suite)
    assert_error(get(suite, other, o["id"]), 404, "NOT_FOUND")
    assert_error(get(suite, other, "not-a-uuid"), 404, "NOT_FOUND")

    ev = events_of(suite, "orders.order.created", o["id"])
    assert len(ev) == 1
    assert (ev[0]["number"], ev[0]["total_fen"], ev[0]["account_id"], ev[0]["identity_id"]) == \
        (o["number"], o["total_fen"], admin.account, admin.identity)
    assert ev[0]["items"][0]["platforms"] == ["LN_JSGC", "LN_ZTB", "DL_ZFCG"]
    assert [l["kind"] for l in ev[0]["items"][0]["lines"]] == ["renew", "renew", "add"]


def test_orders_single_order_by_a_holder(suite):
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc, "agent")
    cert, _ = register_cert(suite, admin.uscc, lead.account, "agent", ["LN_JSGC", "LN_ZTB"])
    r = place(suite, lead, items((cert, ["LN_JSGC"])))
    assert r.status == 201, r
    assert r.json["total_fen"] == 10000 and r.json["items"][0]["dropped"] == ["LN_ZTB"]
    # The admin sees the enterprise's orders, the holder their own.
    ids = [x["id"] for x in Api(suite).get("/api/v1/orders", token=admin.token).json["items"]]
    assert r.json["id"] in ids


def test_orders_certificate_in_open_order(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    first = place(suite, admin, items((cert, ["LN_JSGC"])))
    assert first.status == 201
    before = order_count(suite, admin)
    assert_error(quote(suite, admin, items((cert, ["LN_JSGC"]))), 409, "CERT_IN_OPEN_ORDER",
                 "items[0].cert_id")
    r = place(suite, admin, items((cert, ["LN_JSGC", "LN_ZTB"])))
    assert_error(r, 409, "CERT_IN_OPEN_ORDER", "items[0].cert_id")
    assert order_count(suite, admin) == before
    assert cancel(suite, admin, first.json["id"]).status == 200
    assert place(suite, admin, items((cert, ["LN_JSGC"]))).status == 201


def test_orders_concurrent_orders_of_one_certificate(suite):
    """Two orders racing for one certificate: exactly one wins (the partial
    unique index on open items), the other is CERT_IN_OPEN_ORDER."""
    import concurrent.futures
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda _: place(suite, admin, items((cert, ["LN_JSGC"]))), range(8)))
    assert sorted(r.status for r in rs) == [201] + [409] * 7, rs
    assert all(r.code == "CERT_IN_OPEN_ORDER" for r in rs if r.status == 409)
    assert order_count(suite, admin) == 1
    assert suite.psql(f"SELECT count(*) FROM orders.idem_keys WHERE scope ="
                      f" '{admin.account}'") == [["1"]]


# ---------------------------------------------------------------- idempotency

def test_orders_idempotency_key_replays_first_response(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    body = items((cert, ["LN_JSGC"]))
    key = str(uuid.uuid4())
    first = place(suite, admin, body, key)
    assert first.status == 201, first
    # Same key, same body (other spacing and key order): the stored answer.
    raw = ('{"items":[{"platforms":["LN_JSGC"],  "cert_id":"%s"}]}' % cert).encode()
    again = call(suite.gateway, "POST", "/api/v1/orders", raw=raw, token=admin.token,
                 headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    assert again.status == 201 and again.json == first.json, again
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert order_count(suite, admin) == 1
    # Another account's key space is its own.
    other = enterprise_admin(suite)
    cert2, _ = register_cert(suite, other.uscc, other.account, "master")
    assert place(suite, other, items((cert2, ["LN_JSGC"])), key).status == 201


def test_orders_idempotency_key_with_another_body(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    key = str(uuid.uuid4())
    first = place(suite, admin, items((cert, ["LN_JSGC"])), key)
    assert first.status == 201
    r = place(suite, admin, items((cert, ["LN_JSGC", "LN_ZTB"])), key)
    assert_error(r, 409, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key")
    assert order_count(suite, admin) == 1
    assert get(suite, admin, first.json["id"]).json["total_fen"] == 10000


def test_orders_idempotency_key_missing_or_in_flight(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    body = items((cert, ["LN_JSGC"]))
    api = Api(suite)
    assert_error(api.post("/api/v1/orders", body, token=admin.token), 400, "IDEMPOTENCY_KEY_MISSING")
    assert_error(api.post("/api/v1/orders", body, token=admin.token,
                          headers={"Idempotency-Key": "x" * 129}), 400, "BAD_REQUEST")
    # A first request still running holds the key (row without a response).
    key = str(uuid.uuid4())
    import hashlib
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body_hash = hashlib.sha256(canon.encode()).hexdigest()
    request_hash = hashlib.sha256(f"POST /api/v1/orders\n{body_hash}".encode()).hexdigest()
    suite.psql(f"INSERT INTO orders.idem_keys (scope, key, request_hash)"
               f" VALUES ('{admin.account}', '{key}', '{request_hash}')")
    assert_error(place(suite, admin, body, key), 409, "IDEMPOTENCY_IN_PROGRESS")
    # Once it has been silent past the lock, a retry takes the key over.
    suite.psql(f"UPDATE orders.idem_keys SET locked_at = now() - interval '2 minutes'"
               f" WHERE key = '{key}'")
    assert place(suite, admin, body, key).status == 201


# ---------------------------------------------------------------- cancel, expiry

def test_orders_cancel_while_pending(suite):
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc)
    cert, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    assert_error(cancel(suite, lead, o["id"]), 403, "FORBIDDEN")    # sees it, may not cancel
    stranger = enterprise_admin(suite)
    assert_error(cancel(suite, stranger, o["id"]), 404, "NOT_FOUND")
    r = cancel(suite, admin, o["id"])
    assert r.status == 200 and r.json["status"] == "cancelled" and r.json["closed_at"], r
    assert r.json["items"][0]["progress"] == "closed"
    assert_error(cancel(suite, admin, o["id"]), 409, "ORDER_NOT_CANCELLABLE")
    ev = events_of(suite, "orders.order.cancelled", o["id"])
    assert len(ev) == 1 and ev[0]["status"] == "cancelled" and ev[0]["number"] == o["number"]


def test_orders_refuses_cancel_after_payment(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    pay(suite, o)
    assert order_row(suite, o["id"]) == ["paid"]
    assert_error(cancel(suite, admin, o["id"]), 409, "ORDER_NOT_CANCELLABLE")
    assert order_row(suite, o["id"], "status, closed_at IS NULL") == ["paid", "t"]
    assert events_of(suite, "orders.order.cancelled", o["id"]) == []


def test_orders_unpaid_order_expires(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    # As if 30 minutes had passed: the sweep (every second here) expires it.
    suite.psql(f"UPDATE orders.orders SET expires_at = now() - interval '1 second'"
               f" WHERE id = '{o['id']}'")
    wait_until(lambda: order_row(suite, o["id"]) == ["expired"], what="order expired")
    ev = events_of(suite, "orders.order.cancelled", o["id"])
    assert len(ev) == 1 and ev[0]["status"] == "expired", ev
    assert get(suite, admin, o["id"]).json["status"] == "expired"
    assert_error(cancel(suite, admin, o["id"]), 409, "ORDER_NOT_CANCELLABLE")
    # The certificate is free again.
    assert place(suite, admin, items((cert, ["LN_JSGC"]))).status == 201
    m = call(suite.service_url("orders"), "GET", "/metrics").raw.decode()
    assert re.search(r"^caplat_orders_expired_total [1-9]", m, re.M), m[-800:]


# ---------------------------------------------------------------- payment, renewal

def test_orders_paid_then_renewed_then_fulfilled(suite):
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc)
    c1, s1 = register_cert(suite, admin.uscc, admin.account, "master", ["LN_JSGC", "LN_ZTB"])
    c2, s2 = register_cert(suite, admin.uscc, lead.account, "project_lead", ["LN_JSGC"])
    o = place(suite, admin, items((c1, ["LN_JSGC"]), (c2, ["LN_JSGC", "SY_GGZY"]))).json
    payment = pay(suite, o)
    d = get(suite, admin, o["id"]).json
    assert d["status"] == "paid" and d["paid_at"], d
    assert [i["progress"] for i in d["items"]] == ["paid", "paid"]
    ev = events_of(suite, "orders.order.paid", o["id"])
    assert len(ev) == 1
    assert (ev[0]["payment_id"], ev[0]["total_fen"], ev[0]["account_id"]) == \
        (payment, o["total_fen"], admin.account)
    assert [(i["cert_id"], i["platforms"]) for i in ev[0]["items"]] == \
        [(c1, ["LN_JSGC"]), (c2, ["LN_JSGC", "SY_GGZY"])]
    # The same payment told twice changes nothing.
    pay(suite, o, payment_id=payment)
    assert len(events_of(suite, "orders.order.paid", o["id"])) == 1

    n1 = renewed(suite, o, c1, s1, "master", ["LN_JSGC"])
    d = get(suite, lead, o["id"]).json
    assert d["status"] == "paid" and [i["progress"] for i in d["items"]] == ["renewed", "paid"]
    assert d["items"][0]["renewed_serial"] == n1 and d["progress"] == {"renewed": 1, "total": 2}
    n2 = renewed(suite, o, c2, s2, "project_lead", ["LN_JSGC", "SY_GGZY"])
    d = get(suite, admin, o["id"]).json
    assert d["status"] == "fulfilled" and d["fulfilled_at"], d
    ev = events_of(suite, "orders.order.fulfilled", o["id"])
    assert len(ev) == 1 and ev[0]["items"] == [{"cert_id": c1, "serial": n1},
                                               {"cert_id": c2, "serial": n2}], ev
    # Renewed a year on: outside the window again (未到年检时间).
    assert_error(quote(suite, admin, items((c1, ["LN_JSGC"]))), 409, "NOT_IN_RENEWAL_WINDOW")


def test_orders_late_payment_is_recorded_and_flagged(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    assert cancel(suite, admin, o["id"]).status == 200
    payment = pay(suite, o)
    assert order_row(suite, o["id"]) == ["cancelled"]
    assert suite.psql(f"SELECT outcome, order_status, refund_needed FROM orders.order_payments"
                      f" WHERE payment_id = '{payment}'") == [["late", "cancelled", "t"]]
    d = get(suite, admin, o["id"]).json
    assert d["late_payments"] == [{"payment_id": payment, "amount_fen": o["total_fen"],
                                   "outcome": "late", "refund_needed": True,
                                   "refunded_at": None}], d
    api = Api(suite)
    fin = staff_token(suite, "finance")
    assert api.get("/api/v1/orders/late-payments", token=admin.token).status == 403
    flagged = api.get("/api/v1/orders/late-payments?limit=100", token=fin)
    assert flagged.status == 200, flagged
    mine = [x for x in flagged.json["items"] if x["payment_id"] == payment]
    assert mine and mine[0]["number"] == o["number"] and mine[0]["outcome"] == "late"
    # Finance refunds it: the flag is cleared, the order stays cancelled.
    applied(suite, inject(suite, "payments.payment.refunded", payment, {
        "refund_id": str(uuid.uuid4()), "payment_id": payment, "order_id": o["id"],
        "amount_fen": o["total_fen"], "refunded_total_fen": o["total_fen"], "full": True,
        "reason": "订单已取消", "refunded_at": iso(now())}))
    assert suite.psql(f"SELECT refund_needed, refunded_at IS NOT NULL FROM orders.order_payments"
                      f" WHERE payment_id = '{payment}'") == [["f", "t"]]
    assert order_row(suite, o["id"]) == ["cancelled"]


def test_orders_duplicate_and_wrong_payments_are_flagged(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    short = pay(suite, o, amount=o["total_fen"] - 1)
    assert order_row(suite, o["id"]) == ["pending_payment"]
    first = pay(suite, o)
    second = pay(suite, o)
    assert order_row(suite, o["id"], "status, payment_id") == ["paid", first]
    rows = dict((p, (oc, f)) for p, oc, f in suite.psql(
        f"SELECT payment_id, outcome, refund_needed FROM orders.order_payments"
        f" WHERE order_id = '{o['id']}'"))
    assert rows == {short: ("amount_mismatch", "t"), first: ("applied", "f"),
                    second: ("duplicate", "t")}
    unknown = {"id": str(uuid.uuid4()), "total_fen": 100}
    lost = pay(suite, unknown)
    assert suite.psql(f"SELECT outcome, refund_needed FROM orders.order_payments"
                      f" WHERE payment_id = '{lost}'") == [["unknown_order", "t"]]


def test_orders_full_refund_frees_the_certificate(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    o = place(suite, admin, items((cert, ["LN_JSGC"]))).json
    payment = pay(suite, o)
    assert_error(quote(suite, admin, items((cert, ["LN_JSGC"]))), 409, "CERT_IN_OPEN_ORDER")
    applied(suite, inject(suite, "payments.payment.refunded", payment, {
        "refund_id": str(uuid.uuid4()), "payment_id": payment, "order_id": o["id"],
        "amount_fen": o["total_fen"], "refunded_total_fen": o["total_fen"], "full": True,
        "reason": "客户申请退款"}))
    d = get(suite, admin, o["id"]).json
    assert d["status"] == "refunded" and d["refunded_at"] and d["items"][0]["progress"] == "closed"
    assert quote(suite, admin, items((cert, ["LN_JSGC"]))).status == 200


# ---------------------------------------------------------------- listing

def test_orders_list_pages_and_filters(suite):
    api = Api(suite)
    admin = enterprise_admin(suite)
    ids = []
    for _ in range(3):
        cert, _ = register_cert(suite, admin.uscc, None, "agent")
        ids.append(place(suite, admin, items((cert, ["LN_JSGC"]))).json["id"])
    assert cancel(suite, admin, ids[0]).status == 200
    r = api.get("/api/v1/orders?limit=2", token=admin.token)
    assert r.status == 200, r
    assert [x["id"] for x in r.json["items"]] == ids[:0:-1] and r.json["next_cursor"]
    r2 = api.get(f"/api/v1/orders?limit=2&cursor={r.json['next_cursor']}", token=admin.token)
    assert [x["id"] for x in r2.json["items"]] == [ids[0]] and r2.json["next_cursor"] is None
    r = api.get("/api/v1/orders?status=cancelled", token=admin.token)
    assert [x["id"] for x in r.json["items"]] == [ids[0]]
    assert_error(api.get("/api/v1/orders?limit=0", token=admin.token), 400, "BAD_REQUEST", "limit")
    assert_error(api.get("/api/v1/orders?limit=101", token=admin.token), 400, "BAD_REQUEST")
    assert_error(api.get("/api/v1/orders?cursor=zzz", token=admin.token), 400, "BAD_REQUEST",
                 "cursor")
    assert_error(api.get("/api/v1/orders?status=lost", token=admin.token), 400, "BAD_REQUEST")
    # Someone else's list does not show them.
    p = person(suite)
    assert api.get("/api/v1/orders", token=p.token).json == {"items": [], "next_cursor": None}


# ---------------------------------------------------------------- prices kept

def test_orders_quote_and_order_keep_their_prices(suite):
    api = Api(suite)
    op = staff_token(suite, "operator")
    admin = enterprise_admin(suite)
    a, _ = register_cert(suite, admin.uscc, None, "agent", ["HC_DZCG"])
    b, _ = register_cert(suite, admin.uscc, None, "agent", ["HC_DZCG"])
    q = quote(suite, admin, items((a, ["HC_DZCG"]))).json
    assert q["total_fen"] == 5000
    placed = place(suite, admin, items((b, ["HC_DZCG"]))).json
    path = "/api/v1/platforms/HC_DZCG/prices"
    assert api.post(path, {"renew_fen": 6500, "add_fen": 25000, "reason": "调价"},
                    token=op).status == 201
    try:
        # The quote's prices hold for an order placed with it ...
        r = place(suite, admin, dict(items((a, ["HC_DZCG"])), quote_id=q["quote_id"]))
        assert r.status == 201 and r.json["total_fen"] == 5000, r
        assert r.json["quote_id"] == q["quote_id"]
        # ... an earlier order keeps its own ...
        assert get(suite, admin, placed["id"]).json["total_fen"] == 5000
        # ... and without a quote the new price applies.
        assert cancel(suite, admin, placed["id"]).status == 200
        assert place(suite, admin, items((b, ["HC_DZCG"]))).json["total_fen"] == 6500
        # A quote is for its own items, and only while it lasts.
        c, _ = register_cert(suite, admin.uscc, None, "agent", ["HC_DZCG"])
        assert_error(place(suite, admin, dict(items((c, ["HC_DZCG"])), quote_id=q["quote_id"])),
                     422, "QUOTE_MISMATCH", "quote_id")
        q2 = quote(suite, admin, items((c, ["HC_DZCG"]))).json
        suite.psql(f"UPDATE orders.quotes SET expires_at = now() - interval '1 s'"
                   f" WHERE id = '{q2['quote_id']}'")
        before = order_count(suite, admin)
        assert_error(place(suite, admin, dict(items((c, ["HC_DZCG"])), quote_id=q2["quote_id"])),
                     409, "QUOTE_EXPIRED", "quote_id")
        assert_nothing_changed_since(suite, admin, before)
    finally:
        assert api.post(path, {"renew_fen": 5000, "add_fen": 25000, "reason": "恢复"},
                        token=op).status == 201


def assert_nothing_changed_since(suite, caller, before):
    assert order_count(suite, caller) == before
    assert suite.psql(f"SELECT count(*) FROM orders.idem_keys WHERE scope ="
                      f" '{caller.account}' AND response_status IS NULL") == [["0"]]


def test_orders_service_metrics(suite):
    m = call(suite.service_url("orders"), "GET", "/metrics")
    assert m.status == 200
    text = m.raw.decode()
    for name in ("caplat_orders_created_total", "caplat_orders_paid_total",
                 "caplat_orders_payments_flagged_total", "caplat_bus_consumed_total"):
        assert name in text, name
    assert call(suite.service_url("orders"), "GET", "/healthz").json == \
        {"status": "ok", "service": "orders"}
