"""Reconciliation with the bill fetched from the provider (issue 18 part 8):
POST /api/v1/finance/bills/{channel}/{date}/fetch asks the provider for the
day's download URL (Alipay alipay.data.dataservice.bill.downloadurl.query,
WeChat's signed GET /v3/bill/tradebill), downloads it as a stream (common/
httpc, never collected) into the parser and COPY, and answers the same
report as an upload of the same bill. Repeated lines and refunds in the
period, through the one-pass compare (recon_run_fast), in both paths."""
import datetime
import hashlib
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, call, wait_until  # noqa: E402
from test_orders import staff_token  # noqa: E402
from test_payments import (SHANGHAI, finance_token, new_order, pay, payment, register, sim_pay,  # noqa: E402
                           sim_url)

COUNTS = ("matched", "missing_local", "missing_remote", "amount_mismatch", "items_total")


def paid_and_refunded(suite, token, account, fin, channel):
    """A payment of channel paid, then refunded in part: its bill has a
    payment line and a refund line."""
    order = new_order(suite, account, 5000)
    p = pay(suite, token, order, channel, {"type": "none"}).json
    sim_pay(suite, p["id"])
    wait_until(lambda: payment(suite, token, p["id"])["status"] == "succeeded", what="paid")
    r = Api(suite).post("/api/v1/finance/refunds", {"payment_id": p["id"], "amount_fen": 1200, "reason": "部分退款"},
                        token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 201 and r.json["status"] == "succeeded", r
    no = suite.psql(f"SELECT out_trade_no FROM payments.payments WHERE id = '{p['id']}'")[0][0]
    refund_no = suite.psql(f"SELECT out_refund_no FROM payments.refunds WHERE id = '{r.json['id']}'")[0][0]
    return no, refund_no


def test_recon_fetch_same_report_as_upload(suite):
    """Fetched from each provider, the day's bill reconciles exactly as the
    same bill uploaded: our payment and its refund are matched; the answer
    is the report (read back the same); only finance; a day after today has
    no bill (404 BILL_NOT_FOUND); bad channel and date refused."""
    token, account = register(suite)
    fin = finance_token(suite)
    api = Api(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    for channel in ("alipay", "wechat"):
        no, refund_no = paid_and_refunded(suite, token, account, fin, channel)
        r = api.post(f"/api/v1/finance/bills/{channel}/{today}/fetch", token=fin)
        assert r.status == 201, r
        rep = r.json
        assert rep["channel"] == channel and rep["date"] == today and rep["matched"] >= 2, rep
        assert not [i for i in rep["items"] if i["out_trade_no"] in (no, refund_no)], rep
        got = api.get(f"/api/v1/finance/reconciliations/{rep['id']}", token=fin)
        assert got.status == 200 and got.json == rep, got
        # the same bill uploaded: the same counts
        bill = call(sim_url(suite), "GET", f"/sim/bills/{channel}/{today}").raw
        up = call(suite.gateway, "POST", f"/api/v1/finance/bills/{channel}/{today}", raw=bill, token=fin,
                  headers={"Content-Type": "text/csv"})
        assert up.status == 201, up
        assert {k: up.json[k] for k in COUNTS} == {k: rep[k] for k in COUNTS}, (up.json, rep)
        # (not the same bytes: an Alipay bill ends with the second it was made)
        rows = suite.psql(f"SELECT bill_lines FROM payments.reconciliations WHERE id IN"
                          f" ('{rep['id']}', '{up.json['id']}')")
        assert len(rows) == 2 and rows[0] == rows[1] and int(rows[0][0]) >= 2, rows
    tomorrow = (datetime.datetime.now(SHANGHAI) + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    for channel in ("alipay", "wechat"):
        r = api.post(f"/api/v1/finance/bills/{channel}/{tomorrow}/fetch", token=fin)
        assert r.status == 404 and r.code == "BILL_NOT_FOUND", r
    r = api.post(f"/api/v1/finance/bills/paypal/{today}/fetch", token=fin)
    assert r.status == 404 and r.code == "NOT_FOUND", r
    r = api.post("/api/v1/finance/bills/alipay/2026-02-30/fetch", token=fin)
    assert r.status == 400 and r.code == "BAD_PATH", r
    r = api.post(f"/api/v1/finance/bills/alipay/{today}/fetch", token=staff_token(suite, "operator"))
    assert r.status == 403, r
    r = api.post(f"/api/v1/finance/bills/alipay/{today}/fetch")
    assert r.status == 401, r


def test_recon_fetch_repeated_lines_and_refunds(suite):
    """A bill (served by the provider for the day before, so today's other
    records are not missing_remote) with our payment line and refund line
    each repeated: the first of each is matched, each repeat is
    missing_local (in its place in the bill), upload and fetch alike."""
    token, account = register(suite)
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    day = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    no, refund_no = paid_and_refunded(suite, token, account, fin, "alipay")
    lines = call(sim_url(suite), "GET", f"/sim/bills/alipay/{today}").raw.split(b"\r\n")
    ours = [ln for ln in lines if f",{no}\t,".encode() in ln]
    assert len(ours) == 2 and refund_no.encode() in ours[1], ours
    at = lines.index(ours[1]) + 1
    bill = b"\r\n".join(lines[:at] + [ours[0], ours[1]] + lines[at:])
    path = os.path.join(suite.base, f"bill-{uuid.uuid4().hex[:8]}.csv")
    with open(path, "wb") as f:
        f.write(bill)
    os.chmod(path, 0o644)
    assert call(sim_url(suite), "POST", "/sim/bill-file",
                body={"channel": "alipay", "date": day, "path": path}).status == 200
    fetched = Api(suite).post(f"/api/v1/finance/bills/alipay/{day}/fetch", token=fin)
    uploaded = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{day}", raw=bill, token=fin,
                    headers={"Content-Type": "text/csv"})
    for r in (fetched, uploaded):
        assert r.status == 201, r
        mine = [(i["kind"], i["type"], i["out_trade_no"], i["local_amount_fen"], i["remote_amount_fen"])
                for i in r.json["items"] if i["out_trade_no"] in (no, refund_no)]
        assert mine == [("missing_local", "payment", no, None, 5000),
                        ("missing_local", "refund", refund_no, None, 1200)], r.json
    assert {k: fetched.json[k] for k in COUNTS} == {k: uploaded.json[k] for k in COUNTS}
    # the same bytes, the same hash, however they came (a download is hashed
    # by the loop as it arrives, an upload by the worker)
    sha = hashlib.sha256(bill).hexdigest()
    assert suite.psql(f"SELECT bill_sha256 FROM payments.reconciliations WHERE id IN"
                      f" ('{fetched.json['id']}', '{uploaded.json['id']}')") == [[sha], [sha]]
    assert suite.psql("SELECT count(*) FROM payments.recon_bill") == [["0"]]


def test_recon_fetch_cut_download_records_nothing(suite):
    """A download that ends before its announced length (the connection
    closed mid-bill) is never recorded, not even its first lines: 503, no
    reconciliation of that day; the same file whole is then recorded."""
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    day = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=3)).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw.decode()
    lines = bill.split("\r\n")
    rows = []
    for i in range(3000):  # 1.2 MB: its first half parsed and COPYed before the cut
        rows.append(",".join("`" + c for c in [
            f"{day} 10:00:00", "wx8888888888888888", "1900000001", "0", "", f"44000{i:08d}",
            f"CUT{i:06d}", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
            "1.00", "0.00", "0", "0", "0.00", "0.00", "", "", "证书续期", "", "0.00600", "0.60%",
            "1.00", "0.00", "x" * 200]))
    body = "\r\n".join([lines[0]] + rows + lines[-3:]).encode()
    path = os.path.join(suite.base, f"bill-cut-{uuid.uuid4().hex[:8]}.csv")
    with open(path, "wb") as f:
        f.write(body)
    os.chmod(path, 0o644)
    before = suite.psql(f"SELECT count(*) FROM payments.reconciliations WHERE channel = 'wechat' AND bill_date = '{day}'")
    assert call(sim_url(suite), "POST", "/sim/bill-file",
                body={"channel": "wechat", "date": day, "path": path, "cut_at": len(body) // 2}).status == 200
    r = Api(suite).post(f"/api/v1/finance/bills/wechat/{day}/fetch", token=fin)
    assert r.status == 503 and r.code == "UNAVAILABLE", r
    after = suite.psql(f"SELECT count(*) FROM payments.reconciliations WHERE channel = 'wechat' AND bill_date = '{day}'")
    assert after == before, (before, after)
    assert call(sim_url(suite), "POST", "/sim/bill-file",
                body={"channel": "wechat", "date": day, "path": path}).status == 200
    r = Api(suite).post(f"/api/v1/finance/bills/wechat/{day}/fetch", token=fin)
    assert r.status == 201 and r.json["missing_local"] >= 3000, r


ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
                 "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
                 "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def alipay_bill(day, rows):
    """An Alipay 业务明细 (GBK) of rows (type 交易/退款, out_trade_no,
    out_refund_no, provider number, fen; a refund's amount negative)."""
    out = ["#支付宝业务明细查询", "#-----------------------------------------业务明细列表------", ALIPAY_HEADER]
    for kind, no, refund_no, provider, fen in rows:
        fen = -fen if kind == "退款" else fen
        y = ("-" if fen < 0 else "") + f"{abs(fen) // 100}.{abs(fen) % 100:02d}"
        out.append(f"{provider}\t,{no}\t,{kind}\t,证书续期\t,{day} 10:00:00\t,{day} 10:00:00\t,\t,\t,\t,\t,"
                   f"b@example.com\t,{y}\t,{y}\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
                   f"{refund_no}\t,0.00\t,0.00\t,\t")
    out += ["#-----------------------------------------业务明细列表结束------", f"#交易合计：{len(rows)}笔"]
    return ("\r\n".join(out) + "\r\n").encode("gbk")


def test_recon_day_window_exact(suite):
    """The compare joins the bill with the payments and refunds of the
    bill's day (Asia/Shanghai) only, yet stays exact: records paid at the
    day's first and last instant are the day's; a line naming a payment or
    refund of another day is compared with it (matched, or a different
    amount); an unpaid payment, another channel's, a pending refund and a
    repeat are missing_local; the day's records without a line are
    missing_remote — in the bill's order, then by type and number."""
    fin = finance_token(suite)
    day, tag = "2021-06-15", uuid.uuid4().hex[:8].upper()
    n = {k: f"{k}{tag}" for k in ("E1", "E2", "E3", "E4", "E5", "E6", "E7", "F1", "F2", "F3", "F4", "U1")}
    order = str(uuid.uuid4())
    suite.psql("INSERT INTO payments.orders (id, number, account_id, total_fen, expires_at, status)"
               f" VALUES ('{order}', 'W{tag}', gen_random_uuid(), 1, now() + interval '1 day', 'paid')")
    pays = [("E1", "alipay", 100, "2021-06-15 00:00:00+08"), ("E2", "alipay", 200, "2021-06-15 23:59:59.999+08"),
            ("E3", "alipay", 300, "2021-06-14 23:59:59.999+08"), ("E4", "alipay", 400, "2021-06-16 00:00:00+08"),
            ("E5", "alipay", 500, None), ("E6", "wechat", 600, "2021-06-15 12:00:00+08"),
            ("E7", "alipay", 700, "2021-06-15 12:00:00+08")]
    for k, channel, fen, paid in pays:
        suite.psql("INSERT INTO payments.payments (id, order_id, account_id, channel, out_trade_no, amount_fen,"
                   " status, invoice_type, provider_trade_no, paid_at) VALUES (gen_random_uuid(),"
                   f" '{order}', gen_random_uuid(), '{channel}', '{n[k]}', {fen},"
                   f" '{'pending' if paid is None else 'succeeded'}', 'none', 'P{n[k]}',"
                   f" {'NULL' if paid is None else repr(paid)})")
    refunds = [("F1", "E1", 10, "succeeded", "2021-06-15 09:00:00+08"),
               ("F2", "E3", 20, "succeeded", "2021-06-10 09:00:00+08"),
               ("F3", "E1", 30, "pending", None), ("F4", "E2", 40, "succeeded", "2021-06-15 23:00:00+08")]
    for k, pay_k, fen, status, at in refunds:
        suite.psql("INSERT INTO payments.refunds (id, payment_id, out_refund_no, amount_fen, reason, status,"
                   " provider_refund_no, staff_id, succeeded_at) SELECT gen_random_uuid(), id,"
                   f" '{n[k]}', {fen}, 'x', '{status}', 'P{n[k]}', 'finance',"
                   f" {'NULL' if at is None else repr(at)} FROM payments.payments WHERE out_trade_no = '{n[pay_k]}'")
    lines = [("交易", n["E1"], "", "T1", 100), ("交易", n["E2"], "", "T2", 201), ("交易", n["E3"], "", "T3", 300),
             ("交易", n["E4"], "", "T4", 401), ("交易", n["E5"], "", "T5", 500), ("交易", n["E6"], "", "T6", 600),
             ("退款", n["E1"], n["F1"], "T1", 10), ("退款", n["E3"], n["F2"], "T3", 20),
             ("退款", n["E1"], n["F3"], "T1", 30), ("交易", n["U1"], "", "T9", 900),
             ("交易", n["E1"], "", "T1B", 100)]
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/alipay/{day}", raw=alipay_bill(day, lines), token=fin,
             headers={"Content-Type": "text/csv"})
    assert r.status == 201, r
    assert {k: r.json[k] for k in COUNTS} == {"matched": 4, "missing_local": 5, "missing_remote": 2,
                                              "amount_mismatch": 2, "items_total": 9}, r.json
    got = [(i["kind"], i["type"], i["out_trade_no"], i["provider_trade_no"], i["local_amount_fen"],
            i["remote_amount_fen"]) for i in r.json["items"]]
    assert got == [("amount_mismatch", "payment", n["E2"], "T2", 200, 201),
                   ("amount_mismatch", "payment", n["E4"], "T4", 400, 401),
                   ("missing_local", "payment", n["E5"], "T5", None, 500),
                   ("missing_local", "payment", n["E6"], "T6", None, 600),
                   ("missing_local", "refund", n["F3"], "T1", None, 30),
                   ("missing_local", "payment", n["U1"], "T9", None, 900),
                   ("missing_local", "payment", n["E1"], "T1B", None, 100),
                   ("missing_remote", "payment", n["E7"], f"P{n['E7']}", 700, None),
                   ("missing_remote", "refund", n["F4"], f"P{n['F4']}", 40, None)], got
