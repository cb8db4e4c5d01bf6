"""Invoices as finance and administrators need them (issue 18), through
nginx: who sees which invoice (the administrator every invoice of the
enterprise whoever placed and paid the order, a project lead those of their
orders, finance all) with filters, keyset pages and finance's CSV export;
补开 (an invoice asked after payment for an order paid with `none`: once,
within CAPLAT_INVOICE_LATE_DAYS, never for an order that chose a type); the
paper special invoice's postal data (required, the field named) and its
states 待开具 → 已开具 → 已邮寄 (express company and tracking number, by
finance) → 已签收 (by finance or the administrator), audited; a personal
invoice titled with the person's verified name."""
import datetime
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from client import Api, new_uscc, wait_until  # noqa: E402
from test_orders import enterprise_admin, items, member, place, register_cert, staff_token  # noqa: E402
from test_payments import (act_for, approve, finance_token, inject, new_order, outbox,  # noqa: E402
                           payment, register, sim_pay)
from test_payments import pay as pay_order  # noqa: E402

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
POSTAL = {"recipient": "张三", "phone": "13800000000", "address": "沈阳市和平区南京北街1号"}


def named(suite, token, account, name):
    """The account's verified personal info reaches payments."""
    inject(suite, "enterprise.profile.completed", account,
           {"account_id": account, "name": name,
            "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.persons WHERE account_id = '{account}'"),
               what="persons read model")


def paid(suite, token, order, invoice, channel="alipay"):
    r = pay_order(suite, token, order, channel, invoice)
    assert r.status == 201, r
    sim_pay(suite, r.json["id"])
    wait_until(lambda: payment(suite, token, r.json["id"])["status"] == "succeeded", what="paid")
    return r.json["id"]


def invoices(suite, token, query=""):
    r = Api(suite).get(f"/api/v1/invoices{query}", token=token)
    assert r.status == 200, r
    return r.json


def issued(suite, token, invoice_id):
    def got():
        r = Api(suite).get(f"/api/v1/invoices/{invoice_id}", token=token)
        return r.json if r.status == 200 and r.json["status"] == "issued" else None
    return wait_until(got, what="invoice issued")


def invoice_of_order(suite, token, order):
    def got():
        items_ = invoices(suite, token, f"?order_id={order}")["items"]
        return items_[0] if items_ and items_[0]["status"] == "issued" else None
    return wait_until(got, what="invoice of the order issued")


def audit(suite, action, object_id):
    return [json.loads(d) for (d,) in suite.psql(
        "SELECT data::text FROM payments.audit_outbox WHERE type = 'payments.audit.recorded'"
        f" AND data->>'action' = '{action}' AND data->>'object_id' = '{object_id}'")]


def error(r, status, code, field=None):
    assert r.status == status and r.code == code, r
    if field is not None:
        assert r.json["error"].get("field") == field, r


def number_of(suite, order):
    return suite.psql(f"SELECT number FROM payments.orders WHERE id = '{order}'")[0][0]


# ---- 1. who sees which invoice ---------------------------------------------

def test_invoices_project_lead_order_visible_to_administrator(suite):
    """A project lead places and pays an order for their own certificate: the
    enterprise's administrator sees its invoice (list, filter by order
    number, the invoice itself); another member does not; finance does."""
    api = Api(suite)
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc, "project_lead")
    agent = member(suite, admin.uscc, "agent")
    cert, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    r = place(suite, lead, items((cert, ["LN_JSGC"])))
    assert r.status == 201, r
    order = r.json["id"]
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.orders WHERE id = '{order}'"), what="order")
    paid(suite, lead.token, order, {"type": "e_normal", "email": "lead@example.com"})
    inv = invoice_of_order(suite, lead.token, order)
    number = number_of(suite, order)
    assert inv["order_number"] == number and inv["late"] is False and inv["post"] is None

    # The administrator: in the list (all, and by order number), and the invoice.
    ids = [i["id"] for i in invoices(suite, admin.token, "?limit=100")["items"]]
    assert inv["id"] in ids
    got = invoices(suite, admin.token, f"?order_number={number}")["items"]
    assert [i["id"] for i in got] == [inv["id"]]
    # (the e-mail's delivery moves on meanwhile: compared apart)
    got = api.get(f"/api/v1/invoices/{inv['id']}", token=admin.token).json
    assert got.pop("email_delivery")["to"] == inv.pop("email_delivery")["to"] == "lead@example.com"
    assert got == inv
    # Another member of the enterprise: not theirs.
    assert invoices(suite, agent.token, f"?order_number={number}")["items"] == []
    assert api.get(f"/api/v1/invoices/{inv['id']}", token=agent.token).status == 404
    # Finance: all.
    fin = finance_token(suite)
    assert [i["id"] for i in invoices(suite, fin, f"?order_number={number}")["items"]] == [inv["id"]]
    # The reviewer has no payments area.
    error(api.get("/api/v1/invoices", token=staff_token(suite, "reviewer")), 403, "FORBIDDEN")


def test_invoices_filters_pages_csv_and_personal_title(suite):
    """Three invoices of one person: titled with the person's verified name;
    filtered by status, type, issue date and order number; in keyset pages;
    exported as CSV by finance only."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "钱七")
    orders = [new_order(suite, account, fen) for fen in (10000, 20000, 30000)]
    for o in orders:
        paid(suite, token, o, {"type": "e_normal", "email": "qian@example.com"})
    invs = [invoice_of_order(suite, token, o) for o in orders]
    assert all(i["title"] == "钱七" and i["taxpayer_id"] is None for i in invs)
    ids = {i["id"] for i in invs}

    # Pages: newest first, two and one, no overlap.
    first = invoices(suite, token, "?limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = invoices(suite, token, f"?limit=2&cursor={first['next_cursor']}")
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert {i["id"] for i in first["items"] + second["items"]} == ids
    assert [i["amount_fen"] for i in first["items"] + second["items"]] == [30000, 20000, 10000]

    # Filters.
    today = datetime.datetime.now(SHANGHAI).date()
    tomorrow, yesterday = today + datetime.timedelta(days=1), today - datetime.timedelta(days=1)
    assert {i["id"] for i in invoices(suite, token, "?type=e_normal&status=issued")["items"]} == ids
    assert invoices(suite, token, "?type=paper_special")["items"] == []
    assert invoices(suite, token, "?status=pending")["items"] == []
    assert {i["id"] for i in invoices(suite, token, f"?from={today}&to={today}")["items"]} == ids
    assert invoices(suite, token, f"?from={tomorrow}")["items"] == []
    assert invoices(suite, token, f"?to={yesterday}")["items"] == []
    got = invoices(suite, token, f"?order_number={number_of(suite, orders[1])}")["items"]
    assert [i["id"] for i in got] == [invs[1]["id"]]
    error(api.get("/api/v1/invoices?from=2025-02-30", token=token), 400, "BAD_REQUEST", "from")
    error(api.get("/api/v1/invoices?status=lost", token=token), 400, "BAD_REQUEST", "status")
    error(api.get("/api/v1/invoices?type=paper", token=token), 400, "BAD_REQUEST", "type")
    error(api.get("/api/v1/invoices?limit=101", token=token), 400, "BAD_REQUEST", "limit")

    # CSV: finance's, with the filters and pages.
    error(api.get("/api/v1/invoices?format=csv", token=token), 403, "FORBIDDEN")
    error(api.get("/api/v1/invoices?format=csv", token=staff_token(suite, "operator")), 403, "FORBIDDEN")
    fin = finance_token(suite)
    number = number_of(suite, orders[2])
    r = api.get(f"/api/v1/invoices?format=csv&order_number={number}", token=fin)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv"), r
    lines = r.raw.decode("utf-8").split("\r\n")
    assert lines[0].startswith('"id","number","order_number","order_id","payment_id","type"'), lines[0]
    assert len(lines) == 3 and lines[2] == "", lines
    row = lines[1].split(",")
    assert row[0] == f'"{invs[2]["id"]}"' and row[1] == f'"{invs[2]["number"]}"' and row[2] == f'"{number}"'
    assert row[8] == '"钱七"' and row[10] == "30000" and row[11] == str(invs[2]["tax_fen"])
    assert "X-Next-Cursor" not in r.headers
    r = api.get(f"/api/v1/invoices?format=csv&limit=1&from={today}&type=e_normal", token=fin)
    assert r.status == 200 and r.headers.get("X-Next-Cursor"), r
    assert len(r.raw.decode("utf-8").split("\r\n")) == 3


# ---- 2. 补开 -----------------------------------------------------------------

def test_invoices_late_once_not_twice_not_too_late(suite):
    """An order paid with `none` asks its invoice later: once (201, issued
    like any other, audited), the second time 409 INVOICE_ALREADY_REQUESTED;
    after CAPLAT_INVOICE_LATE_DAYS (90) 422 INVOICE_PERIOD_EXPIRED; an order
    that chose a type 409 INVOICE_TYPE_LOCKED; someone else's 404."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "孙八")
    order = new_order(suite, account, 10600)
    p = paid(suite, token, order, {"type": "none"})
    assert invoices(suite, token, f"?order_id={order}")["items"] == []
    path = f"/api/v1/payments/{p}/invoice"

    # Bad input changes nothing.
    error(api.post(path, {"type": "e_normal"}, token=token), 422, "FIELD_REQUIRED", "email")
    error(api.post(path, {"type": "none"}, token=token), 422, "FIELD_INVALID", "type")
    error(api.post(path, {"type": "e_normal", "email": "nope"}, token=token), 422, "EMAIL_INVALID", "email")
    error(api.post(path, {"type": "paper_special", "recipient": "张三", "phone": "138"}, token=token),
          422, "FIELD_REQUIRED", "address")
    error(api.post(path, dict(POSTAL, type="paper_special"), token=token),
          422, "SPECIAL_INVOICE_NOT_ALLOWED", "type")   # a person is no general taxpayer
    stranger, _ = register(suite)
    error(api.post(path, {"type": "e_normal", "email": "x@example.com"}, token=stranger),
          404, "PAYMENT_NOT_FOUND")
    error(api.post(path, {"type": "e_normal", "email": "x@example.com"}, token=finance_token(suite)),
          403, "FORBIDDEN")
    error(api.post(f"/api/v1/payments/{uuid.uuid4()}/invoice", {"type": "e_normal", "email": "x@example.com"},
                   token=token), 404, "PAYMENT_NOT_FOUND")
    assert invoices(suite, token, f"?order_id={order}")["items"] == []

    r = api.post(path, {"type": "e_normal", "email": "sun@example.com"}, token=token)
    assert r.status == 201, r
    inv = r.json
    assert inv["late"] is True and inv["payment_id"] == p and inv["order_id"] == order
    assert inv["amount_fen"] == 10600 and inv["tax_fen"] == 600 and inv["title"] == "孙八"
    assert inv["type"] == "e_normal" and inv["kind"] == "blue"
    got = issued(suite, token, inv["id"])
    assert len(got["number"]) == 20
    # Delivered: the e-mail with the PDF reached the SMTP server (part 7).
    wait_until(lambda: suite.psql(f"SELECT email FROM payments.invoice_deliveries"
                                  f" WHERE invoice_id = '{inv['id']}'") == [["sun@example.com"]],
               what="the invoice e-mailed")
    assert len(outbox(suite, "payments.invoice.issued", inv["id"])) == 1
    entries = audit(suite, "invoice.requested_late", inv["id"])
    assert len(entries) == 1 and entries[0]["after"]["payment_id"] == p, entries

    # Twice: refused, nothing added.
    error(api.post(path, {"type": "e_normal", "email": "sun@example.com"}, token=token),
          409, "INVOICE_ALREADY_REQUESTED")
    assert len(invoices(suite, token, f"?order_id={order}")["items"]) == 1
    assert len(audit(suite, "invoice.requested_late", inv["id"])) == 1

    # Too late: paid 91 days ago.
    late = new_order(suite, account, 5000)
    p2 = paid(suite, token, late, {"type": "none"})
    suite.psql(f"UPDATE payments.payments SET paid_at = now() - interval '91 days' WHERE id = '{p2}'")
    error(api.post(f"/api/v1/payments/{p2}/invoice", {"type": "e_normal", "email": "sun@example.com"},
                   token=token), 422, "INVOICE_PERIOD_EXPIRED")
    suite.psql(f"UPDATE payments.payments SET paid_at = now() - interval '89 days' WHERE id = '{p2}'")
    r = api.post(f"/api/v1/payments/{p2}/invoice", {"type": "e_normal", "email": "sun@example.com"}, token=token)
    assert r.status == 201, r

    # An order that chose its invoice at payment.
    chosen = new_order(suite, account, 5000)
    p3 = paid(suite, token, chosen, {"type": "e_normal", "email": "sun@example.com"})
    error(api.post(f"/api/v1/payments/{p3}/invoice", {"type": "e_normal", "email": "sun@example.com"},
                   token=token), 409, "INVOICE_TYPE_LOCKED")


# ---- 3. paper special invoices --------------------------------------------

def test_invoices_paper_special_postal_data_and_post_states(suite):
    """A 纸质专票 needs recipient, phone and address (422 naming the missing
    one); issued, finance records 已邮寄 with the express company and the
    tracking number (payments.invoice.posted, audited), the administrator
    sees them and records 已签收; members and others may not."""
    api = Api(suite)
    uscc = new_uscc()
    approve(suite, uscc, "沈阳某某建设有限公司", "general")
    token, account = register(suite)
    act_for(suite, token, uscc, role="admin")
    order = new_order(suite, account, 99900, uscc)
    for missing in ("recipient", "phone", "address"):
        body = {k: v for k, v in POSTAL.items() if k != missing}
        r = pay_order(suite, token, order, "wechat", dict(body, type="paper_special"))
        error(r, 422, "FIELD_REQUIRED", f"invoice.{missing}")
    paid(suite, token, order, dict(POSTAL, type="paper_special"), channel="wechat")
    inv = invoice_of_order(suite, token, order)
    assert inv["type"] == "paper_special" and inv["title"] == "沈阳某某建设有限公司"
    assert inv["post"] == {"status": "issued", "recipient": "张三", "phone": "13800000000",
                           "address": "沈阳市和平区南京北街1号", "express_company": None,
                           "tracking_number": None, "posted_at": None, "received_at": None}
    assert invoices(suite, token, "?type=paper_special")["items"][0]["id"] == inv["id"]

    fin = finance_token(suite)
    posted = f"/api/v1/finance/invoices/{inv['id']}/posted"
    received = f"/api/v1/invoices/{inv['id']}/received"
    # Not yet posted: nothing to receive.
    error(api.post(received, token=token), 409, "INVOICE_STATE")
    error(api.post(posted, {"express_company": "顺丰速运"}, token=fin), 422, "FIELD_REQUIRED", "tracking_number")
    error(api.post(posted, {"express_company": "顺丰速运", "tracking_number": "SF1"}, token=token),
          403, "FORBIDDEN")
    error(api.post(f"/api/v1/finance/invoices/{uuid.uuid4()}/posted",
                   {"express_company": "顺丰速运", "tracking_number": "SF1"}, token=fin), 404, "INVOICE_NOT_FOUND")
    r = api.post(posted, {"express_company": "顺丰速运", "tracking_number": "SF1234567890"}, token=fin)
    assert r.status == 200, r
    assert r.json["post"]["status"] == "posted" and r.json["post"]["tracking_number"] == "SF1234567890"
    assert r.json["post"]["express_company"] == "顺丰速运" and r.json["post"]["posted_at"]
    assert r.json["status"] == "issued"
    error(api.post(posted, {"express_company": "顺丰速运", "tracking_number": "SF2"}, token=fin),
          409, "INVOICE_STATE")
    ev = [json.loads(d) for (d,) in outbox(suite, "payments.invoice.posted", inv["id"])]
    assert len(ev) == 1 and ev[0]["tracking_number"] == "SF1234567890" and ev[0]["number"] == inv["number"]
    entries = audit(suite, "invoice.posted", inv["id"])
    assert len(entries) == 1 and entries[0]["uscc"] == uscc, entries
    assert entries[0]["after"]["tracking_number"] == "SF1234567890"

    # The administrator sees the state and the tracking number.
    got = api.get(f"/api/v1/invoices/{inv['id']}", token=token).json
    assert got["post"]["status"] == "posted" and got["post"]["tracking_number"] == "SF1234567890"
    # A member of the enterprise (who does not see it), a stranger: no.
    lead = member(suite, uscc, "project_lead")
    error(api.post(received, token=lead.token), 403, "FORBIDDEN")
    stranger = enterprise_admin(suite)
    error(api.post(received, token=stranger.token), 404, "INVOICE_NOT_FOUND")
    error(api.post(received, token=staff_token(suite, "operator")), 403, "FORBIDDEN")
    r = api.post(received, token=token)
    assert r.status == 200 and r.json["post"]["status"] == "received" and r.json["post"]["received_at"], r
    error(api.post(received, token=fin), 409, "INVOICE_STATE")
    entries = audit(suite, "invoice.received", inv["id"])
    assert len(entries) == 1 and entries[0]["uscc"] == uscc, entries

    # An e-invoice has no post.
    other = new_order(suite, account, 1000, uscc)
    paid(suite, token, other, {"type": "e_normal", "email": "a@example.com"})
    e_inv = invoice_of_order(suite, token, other)
    assert e_inv["post"] is None
    error(api.post(f"/api/v1/finance/invoices/{e_inv['id']}/posted",
                   {"express_company": "顺丰速运", "tracking_number": "SF3"}, token=fin), 409, "INVOICE_STATE")

    # 补开 of a 专票 for the enterprise: the postal data is required there too.
    none = new_order(suite, account, 2000, uscc)
    p = paid(suite, token, none, {"type": "none"})
    error(api.post(f"/api/v1/payments/{p}/invoice", {"type": "paper_special", "recipient": "张三",
                                                     "address": "沈阳"}, token=token),
          422, "FIELD_REQUIRED", "phone")
    r = api.post(f"/api/v1/payments/{p}/invoice", dict(POSTAL, type="paper_special"), token=token)
    assert r.status == 201 and r.json["post"]["status"] == "pending" and r.json["post"]["recipient"] == "张三", r
    assert r.json["title"] == "沈阳某某建设有限公司" and r.json["late"] is True
