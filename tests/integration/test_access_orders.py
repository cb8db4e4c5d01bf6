"""Who sees which order, payment and invoice (issue 12), through nginx: one
rule in every service. An enterprise's administrator sees all of the
enterprise's; a member (项目负责人, 授权委托人, 造价师) sees the orders they
placed and those holding one of their own certificates, and gets 404 on the
others of the same enterprise; another enterprise's administrator and a
personal identity get 404 (existence is never leaked); staff by the access
table (finance, operator: all; reviewer: 403). The answer for an order, its
payment and its invoice is always the same. And the audit entries of money
and certificate decisions (price changes, refunds, reconciliations,
revocations) are written with the action, in the service's outbox."""
import datetime
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from test_orders import (Api, assert_error, enterprise_admin, items, member, person, place,  # noqa: E402
                         register_cert, staff_token)
from test_payments import finance_token, payment, sim_pay  # noqa: E402
from test_payments import pay as pay_order  # noqa: E402
from client import wait_until  # noqa: E402

AUDIT_KEYS = {"actor", "service", "action", "object_type", "object_id", "uscc", "before", "after"}


def make_member(suite, uscc, role="project_lead"):
    """A new account made a member of the enterprise uscc (its identity
    current in the session, its personal info complete). Identities are
    self-service in auth today; when a member needs the administrator's
    approval, this is the one place to change."""
    return member(suite, uscc, role)


def in_payments(suite, order_id):
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.orders WHERE id = '{order_id}'"),
               what="orders.order.created reached payments")


def audit_rows(suite, schema, action, object_id):
    return [json.loads(d) for (d,) in suite.psql(
        f"SELECT data::text FROM {schema}.audit_outbox WHERE type = '{schema}.audit.recorded'"
        f" AND data->>'action' = '{action}' AND data->>'object_id' = '{object_id}' ORDER BY seq")]


def statuses(suite, token, order_id, payment_id, invoice_id):
    api = Api(suite)
    return (api.get(f"/api/v1/orders/{order_id}", token=token).status,
            api.get(f"/api/v1/payments/{payment_id}", token=token).status,
            api.get(f"/api/v1/invoices/{invoice_id}", token=token).status)


def order_ids(suite, token):
    r = Api(suite).get("/api/v1/orders?limit=100", token=token)
    assert r.status == 200, r
    return {o["id"] for o in r.json["items"]}


def test_access_orders_payments_invoices_one_rule(suite):
    api = Api(suite)
    admin = enterprise_admin(suite)
    lead = make_member(suite, admin.uscc, "project_lead")
    agent = make_member(suite, admin.uscc, "agent")
    lead_cert, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    lead_cert2, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    agent_cert, _ = register_cert(suite, admin.uscc, agent.account, "agent")
    master, _ = register_cert(suite, admin.uscc, admin.account, "master")

    # The admin orders the lead's certificate; the lead orders their own; the
    # admin orders the agent's and the master lock's.
    r = place(suite, admin, items((lead_cert, ["LN_JSGC"])))
    assert r.status == 201, r
    by_admin = r.json["id"]
    r = place(suite, lead, items((lead_cert2, ["LN_JSGC"])))
    assert r.status == 201, r
    by_lead = r.json["id"]
    r = place(suite, admin, items((agent_cert, ["LN_JSGC"]), (master, ["LN_JSGC"])))
    assert r.status == 201, r
    others = r.json["id"]
    ev = json.loads(suite.psql("SELECT data::text FROM orders.outbox WHERE type = 'orders.order.created'"
                               f" AND subject = '{by_admin}'")[0][0])
    assert ev["items"][0]["holder_account_id"] == lead.account
    assert ev["items"][0]["cert_uscc"] == admin.uscc

    stranger = enterprise_admin(suite)       # another enterprise's administrator
    someone = person(suite)                   # a personal identity
    fin = finance_token(suite)
    op = staff_token(suite, "operator")
    rev = staff_token(suite, "reviewer")

    # Lists: each sees exactly theirs.
    assert {by_admin, by_lead, others} <= order_ids(suite, admin.token)
    assert order_ids(suite, lead.token) == {by_admin, by_lead}
    assert order_ids(suite, agent.token) == {others}
    assert not {by_admin, by_lead, others} & order_ids(suite, stranger.token)
    assert not {by_admin, by_lead, others} & order_ids(suite, someone.token)
    assert {by_admin, by_lead, others} <= order_ids(suite, fin)
    assert_error(api.get("/api/v1/orders", token=rev), 403, "FORBIDDEN")

    # Payments: the admin pays the order holding the lead's certificate; a
    # member pays the order they placed; nobody pays what they do not see.
    for o in (by_admin, by_lead, others):
        in_payments(suite, o)
    invoice = {"type": "e_normal", "email": "finance@example.com"}
    r = pay_order(suite, agent.token, by_lead, "alipay", invoice)
    assert r.status == 404 and r.code == "ORDER_NOT_FOUND", r
    r = pay_order(suite, stranger.token, by_admin, "alipay", invoice)
    assert r.status == 404 and r.code == "ORDER_NOT_FOUND", r
    r = pay_order(suite, someone.token, by_admin, "alipay", invoice)
    assert r.status == 404 and r.code == "ORDER_NOT_FOUND", r
    r = pay_order(suite, lead.token, by_lead, "alipay", invoice)
    assert r.status == 201, r
    r = pay_order(suite, admin.token, by_admin, "alipay", invoice)
    assert r.status == 201, r
    p = r.json["id"]
    sim_pay(suite, p)
    wait_until(lambda: payment(suite, admin.token, p)["status"] == "succeeded", what="paid")

    def invoice_of(token, order_id):
        r = api.get(f"/api/v1/invoices?order_id={order_id}", token=token)
        assert r.status == 200, r
        return r.json["items"]
    inv = wait_until(lambda: invoice_of(admin.token, by_admin), what="invoice created")[0]["id"]

    # The same answer for the order, its payment and its invoice — the
    # project lead's inconsistency is gone.
    assert statuses(suite, admin.token, by_admin, p, inv) == (200, 200, 200)
    assert statuses(suite, lead.token, by_admin, p, inv) == (200, 200, 200)
    assert statuses(suite, agent.token, by_admin, p, inv) == (404, 404, 404)
    assert statuses(suite, stranger.token, by_admin, p, inv) == (404, 404, 404)
    assert statuses(suite, someone.token, by_admin, p, inv) == (404, 404, 404)
    assert statuses(suite, fin, by_admin, p, inv) == (200, 200, 200)
    assert statuses(suite, op, by_admin, p, inv) == (200, 200, 200)
    assert statuses(suite, rev, by_admin, p, inv) == (403, 403, 403)
    r = api.get(f"/api/v1/payments/{p}", token=agent.token)
    assert r.status == 404 and r.code == "NOT_FOUND", r
    r = api.get(f"/api/v1/invoices/{inv}", token=rev)
    assert r.status == 403 and r.code == "FORBIDDEN", r
    assert [i["id"] for i in invoice_of(lead.token, by_admin)] == [inv]
    assert invoice_of(agent.token, by_admin) == []
    assert invoice_of(stranger.token, by_admin) == []
    r = api.get("/api/v1/invoices?limit=100", token=lead.token)
    assert inv in {i["id"] for i in r.json["items"]}, r
    r = api.get("/api/v1/invoices?limit=100", token=agent.token)
    assert inv not in {i["id"] for i in r.json["items"]}, r

    # Cancel: the placer or the administrator; a member who only sees an
    # order may not; someone who does not see it gets 404.
    assert_error(api.post(f"/api/v1/orders/{others}/cancel", token=lead.token), 404, "NOT_FOUND")
    assert_error(api.post(f"/api/v1/orders/{others}/cancel", token=agent.token), 403, "FORBIDDEN")
    assert_error(api.post(f"/api/v1/orders/{others}/cancel", token=fin), 403, "FORBIDDEN")
    r = api.post(f"/api/v1/orders/{others}/cancel", token=admin.token)
    assert r.status == 200 and r.json["status"] == "cancelled", r

    # A member who switches to their personal identity acts on nothing of
    # the enterprise.
    r = api.post("/api/v1/auth/identities", {"type": "personal"}, token=lead.token)
    assert r.status == 201, r
    assert api.post(f"/api/v1/auth/identities/{r.json['id']}/switch", token=lead.token).status == 200
    assert statuses(suite, lead.token, by_admin, p, inv) == (404, 404, 404)
    assert_error(api.post(f"/api/v1/orders/{by_lead}/cancel", token=lead.token), 404, "NOT_FOUND")

    # Audit: the refund, requested by finance and its outcome, in payments'
    # outbox with the action's own transaction.
    r = api.post("/api/v1/finance/refunds", {"payment_id": p, "amount_fen": 100, "reason": "多收"},
                 token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 201, r
    refund = r.json["id"]
    rows = audit_rows(suite, "payments", "refund.requested", refund)
    assert len(rows) == 1, rows
    a = rows[0]
    assert set(a) == AUDIT_KEYS, a
    assert a["service"] == "payments" and a["object_type"] == "refund" and a["uscc"] == admin.uscc
    assert a["actor"]["type"] == "staff" and a["actor"]["request_id"], a
    assert a["after"] == {"status": "pending", "payment_id": p, "amount_fen": 100, "reason": "多收"}
    if r.json["status"] == "succeeded":
        done = audit_rows(suite, "payments", "refund.succeeded", refund)
    else:
        done = wait_until(lambda: audit_rows(suite, "payments", "refund.succeeded", refund),
                          timeout=120, what="refund outcome audited")
    assert len(done) == 1 and done[0]["after"]["status"] == "succeeded", done
    assert done[0]["uscc"] == admin.uscc and done[0]["after"]["amount_fen"] == 100
    # A refused refund leaves no entry.
    r = api.post("/api/v1/finance/refunds", {"payment_id": p, "amount_fen": 10 ** 9, "reason": "x"},
                 token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 422 and r.code == "REFUND_AMOUNT_INVALID", r
    assert suite.psql("SELECT count(*) FROM payments.audit_outbox WHERE type = 'payments.audit.recorded'"
                      f" AND data->>'action' = 'refund.requested' AND data->'after'->>'payment_id' = '{p}'") \
        == [["1"]]


def test_access_orders_price_change_audited(suite):
    api = Api(suite)
    op = staff_token(suite, "operator")
    path = "/api/v1/platforms/CY_GGZY/prices"
    # Far in the future: nothing else in the suite sees it in force.
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650)) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"renew_fen": 6100, "add_fen": 21000, "lock_kind": "cost_engineer",
            "effective_at": when, "reason": "审计测试"}
    r = api.post(path, body, token=op)
    assert r.status == 201, r
    rows = audit_rows(suite, "orders", "price.set", "CY_GGZY")
    mine = [a for a in rows if a["after"]["id"] == r.json["id"]]
    assert len(mine) == 1, rows
    a = mine[0]
    assert set(a) == AUDIT_KEYS, a
    assert a["service"] == "orders" and a["object_type"] == "platform" and a["uscc"] is None
    assert a["actor"]["type"] == "staff" and a["actor"]["request_id"], a
    assert (a["after"]["renew_fen"], a["after"]["add_fen"], a["after"]["lock_kind"],
            a["after"]["reason"]) == (6100, 21000, "cost_engineer", "审计测试")
    assert a["before"] is None or a["before"]["lock_kind"] == "cost_engineer"
    # Refused: no version, no entry.
    before = len(suite.psql("SELECT 1 FROM orders.audit_outbox WHERE type = 'orders.audit.recorded'"))
    assert_error(api.post("/api/v1/platforms/NO_SUCH/prices", body, token=op), 404, "PLATFORM_UNKNOWN")
    assert len(suite.psql("SELECT 1 FROM orders.audit_outbox WHERE type = 'orders.audit.recorded'")) == before


def test_access_orders_revocation_audited(suite):
    from kit import ca_bind, make_leaf, wait_registered
    leaf = make_leaf(suite, "rsa", "agent", days=30)
    _, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    op = staff_token(suite, "operator")
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/revoke", {"reason": "key_compromise"}, token=op)
    assert r.status == 200, r
    rows = audit_rows(suite, "issuance", "cert.revoked", cert_id)
    assert len(rows) == 1, rows
    a = rows[0]
    assert set(a) == AUDIT_KEYS, a
    assert a["uscc"] == leaf.uscc and a["object_type"] == "certificate"
    assert a["actor"]["type"] == "staff"
    assert a["after"]["status"] == "revoked" and a["after"]["reason"] == "key_compromise"
    assert a["after"]["serial"] == r.json["serial"]
    # Refused (already revoked): no second entry.
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/revoke", {"reason": "key_compromise"}, token=op)
    assert r.status == 409, r
    assert len(audit_rows(suite, "issuance", "cert.revoked", cert_id)) == 1


def test_access_orders_reconciliation_audited(suite):
    from client import call
    from test_payments import SHANGHAI, sim_url
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw=bill, token=fin,
             headers={"Content-Type": "text/csv"})
    assert r.status == 201, r
    rows = audit_rows(suite, "payments", "reconciliation.recorded", r.json["id"])
    assert len(rows) == 1, rows
    a = rows[0]
    assert set(a) == AUDIT_KEYS and a["actor"]["type"] == "staff", a
    assert a["after"]["channel"] == "wechat" and a["after"]["date"] == today
    assert (a["after"]["matched"], a["after"]["missing_local"], a["after"]["missing_remote"],
            a["after"]["amount_mismatch"]) == (r.json["matched"], r.json["missing_local"],
                                               r.json["missing_remote"], r.json["amount_mismatch"])
    # A refused bill (not this channel's format) leaves no entry.
    before = len(suite.psql("SELECT 1 FROM payments.audit_outbox WHERE type = 'payments.audit.recorded'"
                            " AND data->>'action' = 'reconciliation.recorded'"))
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{today}", raw=bill, token=fin)
    assert r.status == 422, r
    assert len(suite.psql("SELECT 1 FROM payments.audit_outbox WHERE type = 'payments.audit.recorded'"
                          " AND data->>'action' = 'reconciliation.recorded'")) == before


def test_access_orders_removed_member_sees_nothing_at_once(suite):
    """A project lead places and pays an order for their own certificate
    (the administrator sees that order, its payment and its invoice); the
    administrator removes the lead in 人员管理: from the lead's next request,
    in the session that had the identity current, the order, the payment,
    the invoice and its file are 404, the lists are empty, and quoting,
    ordering and reissuing are refused — in orders and payments alike, not
    only in enterprise."""
    api = Api(suite)
    admin = enterprise_admin(suite)
    lead = make_member(suite, admin.uscc, "project_lead")
    cert, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    r = place(suite, lead, items((cert, ["LN_JSGC"])))
    assert r.status == 201, r
    order = r.json["id"]
    in_payments(suite, order)
    r = pay_order(suite, lead.token, order, "alipay", {"type": "e_normal", "email": "lead@example.com"})
    assert r.status == 201, r
    p = r.json["id"]
    sim_pay(suite, p)
    wait_until(lambda: payment(suite, lead.token, p)["status"] == "succeeded", what="paid")

    def issued(token):
        got = api.get(f"/api/v1/invoices?order_id={order}", token=token).json["items"]
        return got[0]["id"] if got and got[0]["status"] == "issued" else None
    inv = wait_until(lambda: issued(lead.token), what="invoice issued")
    # The administrator sees what the lead placed and paid.
    assert statuses(suite, admin.token, order, p, inv) == (200, 200, 200)
    assert statuses(suite, lead.token, order, p, inv) == (200, 200, 200)
    assert api.get(f"/api/v1/invoices/{inv}/file", token=lead.token).status == 200
    assert api.get(f"/api/v1/invoices/{inv}/file", token=admin.token).status == 200

    r = api.delete(f"/api/v1/auth/members/{lead.identity}", token=admin.token)
    assert r.status == 204, r
    assert statuses(suite, lead.token, order, p, inv) == (404, 404, 404)
    assert_error(api.get(f"/api/v1/invoices/{inv}/file", token=lead.token), 404, "INVOICE_FILE_NOT_FOUND")
    assert order not in order_ids(suite, lead.token)
    r = api.get("/api/v1/invoices?limit=100", token=lead.token)
    assert r.status == 200 and inv not in {i["id"] for i in r.json["items"]}, r
    assert_error(api.post("/api/v1/orders/quote", items((cert, ["LN_JSGC"])), token=lead.token),
                 403, "IDENTITY_REQUIRED")
    assert_error(place(suite, lead, items((cert, ["LN_JSGC"]))), 403, "IDENTITY_REQUIRED")
    assert_error(api.post(f"/api/v1/invoices/{inv}/reissue", {"title": "某某公司", "reason": "抬头有误"},
                          token=lead.token), 404, "INVOICE_NOT_FOUND")
    # The administrator still sees all of it.
    assert statuses(suite, admin.token, order, p, inv) == (200, 200, 200)
    assert api.get(f"/api/v1/invoices/{inv}/file", token=admin.token).status == 200
