"""payments, black-box through nginx with the provider simulator
(tests/paysim/): payments with Idempotency-Key, the providers' signed
notifications (real RSA, AES-256-GCM), trade queries when no notification
comes, invoices, refunds with red-letter invoices, reconciliation against
the providers' bill files. Orders and enterprise approvals are injected as
outbox rows into payments' own schema: its relay publishes them to JetStream
and its consumers apply them, as if orders / enterprise had produced them."""
import datetime
import json
import os
import sys
import time
import urllib.parse
import uuid

from client import Api, call, join_enterprise, new_phone, sms_code, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paysim"))
import ossl  # noqa: E402
import paysim  # noqa: E402

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
GENERAL_USCC = "91440300708461136T"
SMALL_USCC = "91110108551385082Q"


# ---- helpers ---------------------------------------------------------------

def register(suite):
    api = Api(suite)
    phone = new_phone()
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"}).status == 202
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(suite, phone, "register"),
                                            "password": "secret123"})
    assert r.status == 201, r
    return r.json["token"], r.json["account"]["id"]


def act_for(suite, token, uscc=None, role="agent"):
    """Makes the session's current identity a member of uscc (or, without
    uscc, the account's personal identity): an enterprise's orders, payments
    and invoices are seen only as one of its identities (issue 12)."""
    if uscc:
        join_enterprise(suite, token, uscc, role, name="某某公司")
        return
    api = Api(suite)
    r = api.post("/api/v1/auth/identities", {"type": "personal"}, token=token)
    assert r.status == 201, r
    assert api.post(f"/api/v1/auth/identities/{r.json['id']}/switch", token=token).status == 200


def finance_token(suite):
    r = Api(suite).post("/api/v1/auth/staff/login", {"username": "finance",
                                                      "password": suite.secrets["staff_finance"]})
    assert r.status == 200, r
    return r.json["token"]


def inject(suite, type_, subject, data):
    """An event of another service, published through payments' own outbox."""
    event_id = str(uuid.uuid4())
    body = json.dumps(data, ensure_ascii=False).replace("'", "''")
    suite.psql(f"INSERT INTO payments.outbox (id, type, subject, data) VALUES ('{event_id}',"
               f" '{type_}', '{subject}', '{body}'::jsonb)")
    return event_id


def new_order(suite, account_id, total_fen, uscc=None):
    order_id = str(uuid.uuid4())
    inject(suite, "orders.order.created", order_id, {
        "order_id": order_id, "number": "PL" + uuid.uuid4().hex[:12].upper(),
        "account_id": account_id, "identity_id": str(uuid.uuid4()), "uscc": uscc,
        "total_fen": total_fen,
        "items": [{"cert_id": str(uuid.uuid4()), "price_fen": total_fen, "platforms": ["LN_JSGC"],
                   "lines": [{"platform": "LN_JSGC", "kind": "renew", "price_fen": total_fen}],
                   "dropped": []}],
        "expires_at": (datetime.datetime.now(datetime.timezone.utc) +
                       datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.orders WHERE id = '{order_id}'"),
               what="order read model")
    return order_id


def named(suite, account, name="赵六"):
    """The account's verified personal info (enterprise.profile.completed):
    a personal invoice is titled with the name and waits for it (issue 18;
    orders are placed only once it is complete)."""
    inject(suite, "enterprise.profile.completed", account,
           {"account_id": account, "name": name,
            "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def approve(suite, uscc, name, taxpayer_type, full=True):
    record_id = str(uuid.uuid4())
    inject(suite, "enterprise.record.approved", record_id, {
        "record_id": record_id, "uscc": uscc, "name": name, "seq": 2, "taxpayer_type": taxpayer_type,
        "invoice": {"title": name, "taxpayer_id": uscc,
                    "invoice_address": "沈阳市和平区南京北街1号" if full else None,
                    "invoice_phone": "024-12345678" if full else None,
                    "bank_name": "中国银行沈阳分行" if full else None,
                    "bank_account": "1234567890123" if full else None},
        "reviewer_id": str(uuid.uuid4()), "approved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.enterprises WHERE uscc = '{uscc}'"
                                  f" AND record_id = '{record_id}'"), what="enterprise read model")


def pay(suite, token, order_id, channel, invoice, key=None):
    return Api(suite).post("/api/v1/payments", {"order_id": order_id, "channel": channel,
                                                "invoice": invoice},
                           token=token, headers={"Idempotency-Key": key or str(uuid.uuid4())})


def sim_url(suite):
    return f"http://127.0.0.1:{suite.ports['paysim']}"


def sim_pay(suite, payment_id, **kw):
    out_trade_no = payment_id.replace("-", "")
    r = call(sim_url(suite), "POST", "/sim/pay", body=dict(out_trade_no=out_trade_no, **kw))
    assert r.status == 200, r
    return out_trade_no


def sim_trade(suite, out_trade_no):
    return call(sim_url(suite), "GET", f"/sim/trades/{out_trade_no}").json


def keys(suite):
    return paysim.key_paths(os.path.join(suite.base, "paysim"))


def payment(suite, token, payment_id):
    r = Api(suite).get(f"/api/v1/payments/{payment_id}", token=token)
    assert r.status == 200, r
    return r.json


def outbox(suite, type_, subject):
    return suite.psql(f"SELECT data FROM payments.outbox WHERE type = '{type_}' AND subject = '{subject}'")


def notify_alipay(suite, body):
    return call(suite.gateway, "POST", "/notify/alipay", raw=body,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def notify_wechat(suite, headers, body):
    return call(suite.gateway, "POST", "/notify/wechat", raw=body,
                headers=dict(headers, **{"Content-Type": "application/json"}))


# ---- payments ----------------------------------------------------------------

def test_payments_alipay_paid_by_notification_once_with_invoice(suite):
    """A payment by Alipay: a signed precreate gives the QR code; the
    simulator's signed notification (sent again twice) marks it succeeded
    once, emits one payments.payment.succeeded, and the 电子普票 is issued with
    the VAT of DOMAIN.md §5 and delivered to the e-mail."""
    token, account = register(suite)
    named(suite, account)   # a personal invoice is titled with the verified name (issue 18)
    order = new_order(suite, account, 10000)
    key = str(uuid.uuid4())
    invoice = {"type": "e_normal", "email": "buyer@example.com"}
    r = pay(suite, token, order, "alipay", invoice, key)
    assert r.status == 201, r
    p = r.json
    assert p["status"] == "pending" and p["amount_fen"] == 10000 and p["qr_code"].startswith("http")
    assert p["order_id"] == order and p["invoice"] == invoice

    # Same key, same body: the first answer again; another body: 409.
    again = pay(suite, token, order, "alipay", invoice, key)
    assert again.status == 201 and again.json == p, again
    other = pay(suite, token, order, "wechat", invoice, key)
    assert other.status == 409 and other.code == "IDEMPOTENCY_KEY_REUSED", other

    out_trade_no = sim_pay(suite, p["id"], duplicates=2)
    wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", what="payment succeeded")
    wait_until(lambda: sim_trade(suite, out_trade_no)["answered"] >= 3, what="duplicates answered")
    got = payment(suite, token, p["id"])
    assert got["paid_at"] and got["qr_code"] is None
    events = outbox(suite, "payments.payment.succeeded", p["id"])
    assert len(events) == 1, events
    ev = json.loads(events[0][0])
    assert ev["amount_fen"] == 10000 and ev["channel"] == "alipay" and ev["invoice_type"] == "e_normal"
    assert ev["order_id"] == order and ev["provider_trade_no"] == sim_trade(suite, out_trade_no)["trade_no"]
    rows = suite.psql(f"SELECT outcome FROM payments.notifications WHERE out_trade_no = '{out_trade_no}'")
    assert len(rows) >= 3 and all(row[0] == "TRADE_SUCCESS" for row in rows), rows

    def issued():
        r = Api(suite).get(f"/api/v1/invoices?order_id={order}", token=token)
        return r.json["items"] if r.status == 200 and r.json["items"] and \
            r.json["items"][0]["status"] == "issued" else None
    items = wait_until(issued, what="invoice issued")
    inv = items[0]
    assert inv["type"] == "e_normal" and inv["kind"] == "blue" and inv["amount_fen"] == 10000
    assert inv["tax_fen"] == 566 and inv["title"] == "赵六" and inv["taxpayer_id"] is None
    assert len(inv["number"]) == 20
    assert Api(suite).get(f"/api/v1/invoices/{inv['id']}", token=token).json == inv
    assert suite.psql(f"SELECT email FROM payments.invoice_deliveries WHERE invoice_id = '{inv['id']}'") == \
        [["buyer@example.com"]]
    assert len(outbox(suite, "payments.invoice.issued", inv["id"])) == 1
    # Someone else sees neither the payment nor the invoice.
    stranger, _ = register(suite)
    assert Api(suite).get(f"/api/v1/payments/{p['id']}", token=stranger).status == 404
    assert Api(suite).get(f"/api/v1/invoices/{inv['id']}", token=stranger).status == 404
    # The order is paid: a new payment is refused.
    r = pay(suite, token, order, "alipay", invoice)
    assert r.status == 409 and r.code == "ORDER_NOT_PAYABLE", r


def test_payments_wechat_special_invoice_rules(suite):
    """WeChat Pay Native: 纸质专票 only for an approved general taxpayer with the
    full title data (else 422 SPECIAL_INVOICE_NOT_ALLOWED); the invoice type is
    fixed once chosen (409 INVOICE_TYPE_LOCKED); the v3 notification decrypts
    and marks the payment succeeded; the 专票 carries the enterprise's title."""
    approve(suite, GENERAL_USCC, "深圳某某科技有限公司", "general")
    approve(suite, SMALL_USCC, "北京某某咨询有限公司", "small_scale")
    token, account = register(suite)
    # Posted: to whom, where (issue 18).
    postal = {"recipient": "张三", "phone": "13800000000", "address": "深圳市南山区科技园1号"}

    small = new_order(suite, account, 990, SMALL_USCC)
    act_for(suite, token, SMALL_USCC)
    r = pay(suite, token, small, "wechat", dict(postal, type="paper_special"))
    assert r.status == 422 and r.code == "SPECIAL_INVOICE_NOT_ALLOWED", r
    assert r.json["error"]["field"] == "invoice.type"
    personal = new_order(suite, account, 990)
    act_for(suite, token)
    r = pay(suite, token, personal, "wechat", dict(postal, type="paper_special"))
    assert r.status == 422 and r.code == "SPECIAL_INVOICE_NOT_ALLOWED", r

    order = new_order(suite, account, 99900, GENERAL_USCC)
    act_for(suite, token, GENERAL_USCC)
    r = pay(suite, token, order, "wechat", {"type": "paper_special"})
    assert r.status == 422 and r.code == "FIELD_REQUIRED" and r.json["error"]["field"] == "invoice.recipient", r
    r = pay(suite, token, order, "wechat", dict(postal, type="paper_special"))
    assert r.status == 201, r
    assert r.json["qr_code"].startswith("weixin://wxpay/bizpayurl")
    r2 = pay(suite, token, order, "alipay", {"type": "e_normal", "email": "a@example.com"})
    assert r2.status == 409 and r2.code == "INVOICE_TYPE_LOCKED", r2
    # A second payment with the same type supersedes the first.
    r3 = pay(suite, token, order, "wechat", dict(postal, type="paper_special"))
    assert r3.status == 201, r3
    assert payment(suite, token, r.json["id"])["status"] == "closed"

    sim_pay(suite, r3.json["id"])
    wait_until(lambda: payment(suite, token, r3.json["id"])["status"] == "succeeded", what="wechat paid")

    def issued():
        r = Api(suite).get(f"/api/v1/invoices?order_id={order}", token=token)
        return r.json["items"] if r.status == 200 and r.json["items"] and \
            r.json["items"][0]["status"] == "issued" else None
    inv = wait_until(issued, what="invoice issued")[0]
    assert inv["type"] == "paper_special" and inv["title"] == "深圳某某科技有限公司"
    assert inv["taxpayer_id"] == GENERAL_USCC and inv["amount_fen"] == 99900 and inv["tax_fen"] == 5655


def test_payments_notifications_refused_unless_verified(suite):
    """Forged or tampered notifications change nothing and are refused:
    Alipay with another key, another amount, another app; WeChat with a bad
    signature, an unknown serial, a stale timestamp, a wrong APIv3 key."""
    token, account = register(suite)
    order = new_order(suite, account, 17)
    p = pay(suite, token, order, "alipay", {"type": "none"}).json
    out = p["id"].replace("-", "")
    trade = dict(sim_trade(suite, out))
    trade["gmt_payment"] = None
    k = keys(suite)
    alipay_key = ossl.Key.load(k["alipay_key"])
    rogue = ossl.Key.load(k["wechat_merchant_key"])  # any key but Alipay's

    r = notify_alipay(suite, paysim.alipay_notification(rogue, trade))
    assert r.status == 400 and r.raw == b"failure", r
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, dict(trade, total_amount="0.18")))
    assert r.status == 400 and r.raw == b"failure", r
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, trade, extra={"app_id": "2021000000009999"}))
    assert r.status == 400 and r.raw == b"failure", r
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, trade, extra={"sign_type": "RSA"}))
    assert r.status == 400, r
    body = paysim.alipay_notification(alipay_key, trade).replace(b"total_amount=0.17", b"total_amount=0.18")
    r = notify_alipay(suite, body)
    assert r.status == 400, r
    # Not paid yet: nothing changed, and the refusals are on record.
    assert payment(suite, token, p["id"])["status"] == "pending"
    # Only the verified refusals are on record (0.18 and another app_id): the
    # unverified ones are answered before anything is stored (issue 15).
    assert len(suite.psql(f"SELECT 1 FROM payments.notifications WHERE out_trade_no = '{out}'")) == 2
    # WAIT_BUYER_PAY is answered success and changes nothing.
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, trade, status="WAIT_BUYER_PAY"))
    assert r.status == 200 and r.raw == b"success", r
    # The genuine one (the buyer pays 0.17 = 17 fen, exactly).
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, trade))
    assert r.status == 200 and r.raw == b"success", r
    assert payment(suite, token, p["id"])["status"] == "succeeded"
    # TRADE_FINISHED after TRADE_SUCCESS: success, still one event.
    r = notify_alipay(suite, paysim.alipay_notification(alipay_key, trade, status="TRADE_FINISHED"))
    assert r.status == 200 and r.raw == b"success", r
    assert len(outbox(suite, "payments.payment.succeeded", p["id"])) == 1

    order = new_order(suite, account, 106)
    p = pay(suite, token, order, "wechat", {"type": "none"}).json
    out = p["id"].replace("-", "")
    trade = dict(sim_trade(suite, out))
    platform = ossl.Key.load(k["wechat_platform_key"])
    apiv3 = open(k["wechat_apiv3_key"]).read().strip()
    tx = paysim.wechat_transaction(trade)
    headers, body = paysim.wechat_notification(rogue, apiv3, tx)
    r = notify_wechat(suite, headers, body)
    assert r.status == 401 and r.json == {"code": "FAIL", "message": "失败"}, r
    headers, body = paysim.wechat_notification(platform, apiv3, tx)
    r = notify_wechat(suite, dict(headers, **{"Wechatpay-Serial": "0123456789ABCDEF"}), body)
    assert r.status == 401, r
    r = notify_wechat(suite, headers, body.replace(b'"summary":"', b'"summary":"x'))
    assert r.status == 401, r
    stale = str(int(time.time()) - 301)
    msg = f"{stale}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    import base64
    r = notify_wechat(suite, dict(headers, **{"Wechatpay-Timestamp": stale, "Wechatpay-Signature":
                                              base64.b64encode(platform.sign(msg)).decode()}), body)
    assert r.status == 401, r
    headers, body = paysim.wechat_notification(platform, "0" * 32, tx)
    r = notify_wechat(suite, headers, body)
    assert r.status == 400, r
    headers, body = paysim.wechat_notification(platform, apiv3, dict(tx, amount={"total": 107}))
    r = notify_wechat(suite, headers, body)
    assert r.status == 422, r
    headers, body = paysim.wechat_notification(platform, apiv3, dict(tx, mchid="1900009999"))
    r = notify_wechat(suite, headers, body)
    assert r.status == 422, r
    assert payment(suite, token, p["id"])["status"] == "pending"
    headers, body = paysim.wechat_notification(platform, apiv3, tx)
    r = notify_wechat(suite, headers, body)
    assert r.status == 204, r
    r = notify_wechat(suite, headers, body)  # the same notification again
    assert r.status == 204, r
    assert payment(suite, token, p["id"])["status"] == "succeeded"
    assert len(outbox(suite, "payments.payment.succeeded", p["id"])) == 1


def test_payments_trade_query_when_no_notification(suite):
    """The payer paid but no notification arrives: after the query delay the
    service asks the provider (alipay.trade.query / WeChat query, signed) and
    marks the payment succeeded. The sweep has no periodic look here
    (CAPLAT_PAY_IDLE_MS 10 minutes): the new payment's kick and the time its
    query falls due alone bring the query."""
    from test_https_client import restart_payments
    token, account = register(suite)
    restart_payments(suite, {"CAPLAT_PAY_IDLE_MS": "600000"})
    try:
        for channel in ("alipay", "wechat"):
            order = new_order(suite, account, 650)
            p = pay(suite, token, order, channel, {"type": "none"}).json
            sim_pay(suite, p["id"], notify=False)
            wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", timeout=20,
                       what=f"{channel} payment found by query")
            assert suite.psql(f"SELECT paid_via FROM payments.payments WHERE id = '{p['id']}'") == [["query"]]
            assert len(outbox(suite, "payments.payment.succeeded", p["id"])) == 1
    finally:
        restart_payments(suite)


def test_payments_requests_refused(suite):
    """Input and access errors answer the documented codes and store nothing."""
    token, account = register(suite)
    api = Api(suite)
    order = new_order(suite, account, 500)
    body = {"order_id": order, "channel": "alipay", "invoice": {"type": "none"}}
    assert api.post("/api/v1/payments", body).status == 401
    r = api.post("/api/v1/payments", body, token=token)
    assert r.status == 400 and r.code == "IDEMPOTENCY_KEY_MISSING", r
    r = pay(suite, token, str(uuid.uuid4()), "alipay", {"type": "none"})
    assert r.status == 404 and r.code == "ORDER_NOT_FOUND", r
    other, _ = register(suite)
    r = pay(suite, other, order, "alipay", {"type": "none"})
    assert r.status == 404 and r.code == "ORDER_NOT_FOUND", r
    r = pay(suite, token, order, "paypal", {"type": "none"})
    assert r.status == 422 and r.json["error"]["field"] == "channel", r
    r = pay(suite, token, order, "alipay", {"type": "e_normal"})
    assert r.status == 422 and r.code == "FIELD_REQUIRED" and r.json["error"]["field"] == "invoice.email", r
    r = pay(suite, token, order, "alipay", {"type": "e_normal", "email": "not-an-email"})
    assert r.status == 422 and r.code == "EMAIL_INVALID", r
    fin = finance_token(suite)
    r = pay(suite, fin, order, "alipay", {"type": "none"})
    assert r.status == 403, r
    r = api.post("/api/v1/finance/refunds", {"payment_id": str(uuid.uuid4()), "amount_fen": 1,
                                             "reason": "x"}, token=token,
                 headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 403 and r.code == "FORBIDDEN", r
    assert suite.psql(f"SELECT count(*) FROM payments.payments WHERE order_id = '{order}'") == [["0"]]
    # A cancelled order cannot be paid, and its pending payment closes.
    p = pay(suite, token, order, "alipay", {"type": "none"}).json
    inject(suite, "orders.order.cancelled", order, {"order_id": order, "number": "PL1",
                                                    "status": "cancelled"})
    wait_until(lambda: payment(suite, token, p["id"])["status"] == "closed", what="payment closed")
    r = pay(suite, token, order, "alipay", {"type": "none"})
    assert r.status == 409 and r.code == "ORDER_NOT_PAYABLE", r


def test_payments_refunds_and_red_invoices(suite):
    """Finance refunds part then the rest: the provider refunds (signed),
    payments.payment.refunded is emitted each time, each refund gets a red-letter
    invoice of its amount, and the payment ends `refunded`."""
    token, account = register(suite)
    named(suite, account)
    fin = finance_token(suite)
    api = Api(suite)
    for channel in ("wechat", "alipay"):
        order = new_order(suite, account, 10000)
        p = pay(suite, token, order, channel, {"type": "e_normal", "email": "f@example.com"}).json
        sim_pay(suite, p["id"])
        wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", what="paid")
        key = str(uuid.uuid4())
        body = {"payment_id": p["id"], "amount_fen": 1700, "reason": "部分平台未关联"}
        r = api.post("/api/v1/finance/refunds", body, token=fin, headers={"Idempotency-Key": key})
        assert r.status == 201 and r.json["status"] == "succeeded", r
        again = api.post("/api/v1/finance/refunds", body, token=fin, headers={"Idempotency-Key": key})
        assert again.status == 201 and again.json == r.json, again
        r2 = api.post("/api/v1/finance/refunds", dict(body, amount_fen=8301), token=fin,
                      headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r2.status == 422 and r2.code == "REFUND_AMOUNT_INVALID", r2
        got = payment(suite, token, p["id"])
        assert got["status"] == "succeeded" and got["refunded_fen"] == 1700
        r3 = api.post("/api/v1/finance/refunds", dict(body, amount_fen=8300), token=fin,
                      headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r3.status == 201 and r3.json["status"] == "succeeded", r3
        got = payment(suite, token, p["id"])
        assert got["status"] == "refunded" and got["refunded_fen"] == 10000
        r4 = api.post("/api/v1/finance/refunds", dict(body, amount_fen=1), token=fin,
                      headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r4.status == 409 and r4.code == "PAYMENT_NOT_REFUNDABLE", r4
        events = [json.loads(e[0]) for e in outbox(suite, "payments.payment.refunded", p["id"])]
        assert sorted((e["amount_fen"], e["refunded_total_fen"], e["full"]) for e in events) == \
            [(1700, 1700, False), (8300, 10000, True)], events

        def all_issued():
            r = api.get(f"/api/v1/invoices?order_id={order}", token=token)
            items = r.json["items"] if r.status == 200 else []
            return items if len(items) == 3 and all(i["status"] == "issued" for i in items) else None
        items = wait_until(all_issued, what="blue and red invoices")
        blue = [i for i in items if i["kind"] == "blue"][0]
        reds = sorted((i["amount_fen"], i["tax_fen"]) for i in items if i["kind"] == "red")
        assert reds == [(-8300, -470), (-1700, -96)], reds
        assert all(i["reverses_invoice_id"] == blue["id"] for i in items if i["kind"] == "red")
    r = api.post("/api/v1/finance/refunds", {"payment_id": str(uuid.uuid4()), "amount_fen": 1, "reason": "x"},
                 token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 404 and r.code == "PAYMENT_NOT_FOUND", r


def test_payments_reconciliation_against_bills(suite):
    """The day's bill files from the simulator (Alipay GBK, WeChat backtick
    CSV) reconcile with the local records; a line we do not know and a
    different amount are reported."""
    token, account = register(suite)
    fin = finance_token(suite)
    for channel in ("alipay", "wechat"):
        order = new_order(suite, account, 2000)
        p = pay(suite, token, order, channel, {"type": "none"}).json
        sim_pay(suite, p["id"])
        wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", what="paid")
    mine = set()
    for row in suite.psql(f"SELECT out_trade_no FROM payments.payments WHERE account_id = '{account}'"):
        mine.add(row[0])
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    for channel in ("alipay", "wechat"):
        bill = call(sim_url(suite), "GET", f"/sim/bills/{channel}/{today}").raw
        r = call(suite.gateway, "POST", f"/api/v1/finance/bills/{channel}/{today}", raw=bill, token=fin,
                 headers={"Content-Type": "text/csv"})
        assert r.status == 201, r
        rep = r.json
        assert rep["matched"] >= 1 and rep["missing_local"] == 0 and rep["amount_mismatch"] == 0, rep
        # Ours are matched; a payment succeeded here on a notification the
        # provider never sent (the forged-notification test) would be
        # missing_remote: exactly what the reconciliation is for.
        assert not [i for i in rep["items"] if i["out_trade_no"] in mine], rep
        got = call(suite.gateway, "GET", f"/api/v1/finance/reconciliations/{rep['id']}", token=fin)
        assert got.status == 200 and got.json["matched"] == rep["matched"] and got.json["items"] == rep["items"]
    # A WeChat bill with one foreign line and one changed amount.
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw.decode()
    lines = bill.split("\r\n")
    first = lines[1].split(",`")
    changed = ",`".join(first[:24] + ["1999.99"] + first[25:])
    foreign = ",`".join(first[:5] + ["4200009999", "FOREIGN1"] + first[7:])
    bill = "\r\n".join([lines[0], changed, foreign] + lines[2:])
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw=bill.encode(), token=fin)
    assert r.status == 201, r
    assert r.json["amount_mismatch"] == 1 and r.json["missing_local"] == 1, r.json
    kinds = sorted(i["kind"] for i in r.json["items"] if i["kind"] != "missing_remote")
    assert kinds == ["amount_mismatch", "missing_local"], r.json
    # Not a bill of this channel.
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{today}", raw=bill.encode(), token=fin)
    assert r.status == 422 and r.code == "BILL_INVALID", r
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{today}", raw=b"x", token=token)
    assert r.status == 403, r


def test_payments_bill_body_streamed(suite):
    """A bill larger than the server's in-memory body limit (8 MiB) goes
    through nginx and is parsed from libevent's buffer a piece at a time
    (HTTP_BODY_STREAM: never copied whole, log msg=body_streamed); its
    lines are all counted, a line cut between pieces included."""
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw.decode()
    lines = bill.split("\r\n")
    header, summary = lines[0], lines[-3:]
    foreign = []
    for i in range(40000):
        foreign.append(",".join("`" + c for c in [
            f"{today} 10:00:00", "wx8888888888888888", "1900000001", "0", "", f"43000{i:08d}",
            f"STREAMED{i:06d}", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
            "1.00", "0.00", "0", "0", "0.00", "0.00", "", "", "证书续期", "", "0.00600", "0.60%",
            "1.00", "0.00", ""]))
    body = "\r\n".join([header] + lines[1:-3] + foreign + summary).encode()
    assert len(body) > 8 * 1024 * 1024, len(body)
    rid = f"bill-streamed-{uuid.uuid4().hex[:12]}"
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw=body, token=fin,
             headers={"Content-Type": "text/csv", "X-Request-Id": rid})
    assert r.status == 201, r
    assert r.json["missing_local"] >= 40000 and r.json["items_total"] >= 40000, r.json
    got = suite.psql("SELECT count(*) FROM payments.reconciliation_items"
                     f" WHERE recon_id = '{r.json['id']}' AND out_no LIKE 'STREAMED%'")
    assert got == [["40000"]], got
    with open(os.path.join(suite.log_dir, "payments.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert f"req={rid} msg=body_streamed bytes={len(body)}" in log
