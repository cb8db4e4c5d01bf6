"""Reconciliation with red invoices and refunds in the period (issue 18's
'Done means'), through nginx: a title corrected by a red reversal and a new
blue invoice, then a partial refund with its red invoice, change nothing in
the day's reconciliation (upload and fetch alike) and the order's invoices
add up to what was paid less what was refunded."""
import datetime
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, call, new_uscc, wait_until  # noqa: E402
from test_invoices import invoice_of_order, issued  # noqa: E402
from test_payments import (SHANGHAI, act_for, approve, finance_token, new_order, pay, payment,  # noqa: E402
                           register, sim_pay, sim_url)


def test_recon_balances_with_red_invoices_and_refunds(suite):
    """issue 18's 'Done means': the reconciliation still balances with red
    invoices and refunds in the period. An enterprise payment with an
    electronic invoice whose title is corrected (red reversal + new blue
    invoice) and then refunded in part (a red invoice of the refund): the
    day's bill, uploaded and fetched alike, matches the payment line and the
    refund line (none of ours among the differences), and the invoices of
    the order add up to what was paid less what was refunded."""
    api = Api(suite)
    fin = finance_token(suite)
    uscc = new_uscc()
    approve(suite, uscc, "沈阳对账红票有限公司", "general")
    token, account = register(suite)
    act_for(suite, token, uscc, role="admin")
    order = new_order(suite, account, 10000, uscc)
    p = pay(suite, token, order, "alipay", {"type": "e_normal", "email": "recon@example.com"}).json
    sim_pay(suite, p["id"])
    wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", what="paid")
    orig = invoice_of_order(suite, token, order)
    r = api.post(f"/api/v1/invoices/{orig['id']}/reissue", {"title": "沈阳对账红票新名称有限公司", "reason": "抬头有误"},
                 token=token)
    assert r.status == 201, r
    blue = issued(suite, token, r.json["id"])
    r = api.post("/api/v1/finance/refunds", {"payment_id": p["id"], "amount_fen": 2500, "reason": "部分退款"},
                 token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 201 and r.json["status"] == "succeeded", r
    refund_no = suite.psql(f"SELECT out_refund_no FROM payments.refunds WHERE id = '{r.json['id']}'")[0][0]
    no = suite.psql(f"SELECT out_trade_no FROM payments.payments WHERE id = '{p['id']}'")[0][0]

    def all_issued():
        got = api.get(f"/api/v1/invoices?order_id={order}", token=token).json["items"]
        return got if len(got) == 4 and all(i["status"] == "issued" for i in got) else None
    invs = wait_until(all_issued, what="original, its red, the new blue and the refund's red issued")
    reds = [i for i in invs if i["kind"] == "red"]
    assert sorted((i["reverses_invoice_id"], i["amount_fen"]) for i in reds) == \
        sorted([(orig["id"], -10000), (blue["id"], -2500)]), invs
    assert sum(i["amount_fen"] for i in invs) == 10000 - 2500, invs
    assert sum(i["tax_fen"] for i in invs) == blue["tax_fen"] + [i for i in reds if i["reverses_invoice_id"] ==
                                                                  blue["id"]][0]["tax_fen"], invs

    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/alipay/{today}").raw
    ours = [ln for ln in bill.split(b"\r\n") if f",{no}\t,".encode() in ln]
    assert len(ours) == 2 and refund_no.encode() in ours[1], ours
    day = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=5)).strftime("%Y-%m-%d")
    path = os.path.join(suite.base, f"bill-red-{uuid.uuid4().hex[:8]}.csv")
    with open(path, "wb") as f:
        f.write(bill)
    os.chmod(path, 0o644)
    assert call(sim_url(suite), "POST", "/sim/bill-file",
                body={"channel": "alipay", "date": day, "path": path}).status == 200
    uploaded = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{today}", raw=bill, token=fin,
                    headers={"Content-Type": "text/csv"})
    fetched = Api(suite).post(f"/api/v1/finance/bills/alipay/{day}/fetch", token=fin)
    for rep in (uploaded, fetched):
        assert rep.status == 201, rep
        assert rep.json["matched"] >= 2, rep.json
        seen, cursor = [], None
        while True:
            q = f"?limit=1000&cursor={cursor}" if cursor else "?limit=1000"
            page = Api(suite).get(f"/api/v1/finance/reconciliations/{rep.json['id']}/items{q}", token=fin)
            assert page.status == 200, page
            seen += page.json["items"]
            cursor = page.json["next_cursor"]
            if cursor is None:
                break
        assert not [i for i in seen if i["out_trade_no"] in (no, refund_no)], seen
