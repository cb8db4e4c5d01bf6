"""Invoices through a 数电票 tax platform (issue 18 parts 6, 3, 7), through
nginx, against tests/taxsim (HTTPS, the suite's test PKI) and a real SMTP
server (tests/smtpsink, python3-aiosmtpd):
  * issuance: 20-digit number, issue date, check code, the PDF stored and
    downloadable (streamed) by whoever sees the invoice, nobody else; the
    line's tax per DOMAIN.md; a refusal is 开具失败 with the platform's
    reason, retried with backoff until issued; a lost answer, an
    unavailable or slow platform never issue twice nor block the service;
  * reissue: a red invoice reversing the original and a new blue one with
    the corrected title, linked, audited, within the limits;
  * e-mail: the PDF arrives at the SMTP server as a MIME attachment; a
    refused recipient ends `failed` with the server's answer, a temporary
    refusal is retried until sent."""
import email
import email.policy
import glob
import hashlib
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, call, new_uscc, wait_until  # noqa: E402
from test_orders import enterprise_admin, staff_token  # noqa: E402
from test_payments import (act_for, approve, finance_token, new_order, outbox, register)  # noqa: E402
from test_invoices import audit, error, invoice_of_order, named, number_of, paid  # noqa: E402


def tax_sim(suite):
    return f"http://127.0.0.1:{suite.ports['taxsim']}"


def sim_config(suite, **kw):
    r = call(tax_sim(suite), "POST", "/sim/config", body=kw)
    assert r.status == 200, r


def sim_issuances(suite):
    return call(tax_sim(suite), "GET", "/sim/requests").json


def sim_invoice(suite, number):
    r = call(tax_sim(suite), "GET", f"/sim/invoices/{number}")
    assert r.status == 200, r
    return r.json


def get_invoice(suite, token, invoice_id):
    r = Api(suite).get(f"/api/v1/invoices/{invoice_id}", token=token)
    assert r.status == 200, r
    return r.json


def issued(suite, token, invoice_id):
    def got():
        inv = get_invoice(suite, token, invoice_id)
        return inv if inv["status"] == "issued" else None
    return wait_until(got, what="invoice issued")


def mails_to(suite, address):
    out = []
    for env in sorted(glob.glob(os.path.join(suite.smtp_dir, "*.json"))):
        meta = json.load(open(env))
        eml = env[:-5] + ".eml"
        if address in meta["rcpt_tos"] and os.path.exists(eml):
            with open(eml, "rb") as f:
                out.append((meta, email.message_from_bytes(f.read(), policy=email.policy.default)))
    return out


# ---- 6. the tax platform ------------------------------------------------------

def test_invoice_platform_issues_pdf_downloadable_by_those_who_see_it(suite):
    """A personal e-invoice of 100.00: the platform's 20-digit number, today's
    issue date, a check code; the line split per DOMAIN.md (566 / 9434); the
    PDF stored once, streamed to the payer and finance, 404 to a stranger,
    403 to the reviewer; the event carries the account, the order's number
    and the invoice's; issued once per request id."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "周九")
    order = new_order(suite, account, 10000)
    paid(suite, token, order, {"type": "e_normal", "email": "zhou@example.com"})
    inv = invoice_of_order(suite, token, order)
    assert len(inv["number"]) == 20 and inv["number"].isdigit(), inv
    assert inv["check_code"] and len(inv["check_code"]) == 20, inv
    assert inv["issue_date"] == time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    assert inv["file"] is True and inv["failure_reason"] is None and inv["attempts"] == 1
    assert inv["amount_fen"] == 10000 and inv["tax_fen"] == 566
    rec = sim_invoice(suite, inv["number"])
    assert rec["lines"] == [{"name": "*信息技术服务*数字证书服务", "amount_fen": 10000, "tax_fen": 566,
                             "net_fen": 9434, "rate_bp": 600}], rec
    assert rec["total_fen"] == 10000 and rec["tax_fen"] == 566 and rec["buyer"]["name"] == "周九"
    assert rec["request_id"] == inv["id"] and sim_issuances(suite)[inv["id"]] == 1

    path = f"/api/v1/invoices/{inv['id']}/file"
    r = api.get(path, token=token)
    assert r.status == 200 and r.headers["Content-Type"] == "application/pdf", r
    pdf = r.raw
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF"), pdf[:40]
    assert inv["number"].encode() in pdf and b"tax 566 fen" in pdf
    assert r.headers["Content-Disposition"] == f'attachment; filename="{inv["number"]}.pdf"'
    assert r.headers["ETag"] == '"' + hashlib.sha256(pdf).hexdigest() + '"'
    # The xref offsets point at the objects: a real PDF.
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref:xref + 4] == b"xref"
    assert api.get(path, token=finance_token(suite)).raw == pdf
    stranger, _ = register(suite)
    error(api.get(path, token=stranger), 404, "INVOICE_FILE_NOT_FOUND")
    error(api.get(path, token=staff_token(suite, "reviewer")), 403, "FORBIDDEN")
    error(api.get(f"/api/v1/invoices/{uuid.uuid4()}/file", token=token), 404, "INVOICE_FILE_NOT_FOUND")
    assert api.get(path).status == 401

    ev = [json.loads(d) for (d,) in outbox(suite, "payments.invoice.issued", inv["id"])]
    assert len(ev) == 1, ev
    assert ev[0]["account_id"] == account and ev[0]["order_number"] == number_of(suite, order)
    assert ev[0]["number"] == inv["number"] and ev[0]["check_code"] == inv["check_code"]


def test_invoice_platform_refusal_is_failed_with_reason_then_retried(suite):
    """The platform refuses the buyer: 开具失败 with its reason (no number, no
    file); once it accepts, the retry (backoff) issues it, once."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "吴十")
    sim_config(suite, refuse=[{"title": "吴十", "code": "E1001", "message": "购买方名称与税务登记不符"}])
    try:
        order = new_order(suite, account, 990)
        paid(suite, token, order, {"type": "e_normal", "email": "wu@example.com"})

        def failed():
            items = api.get(f"/api/v1/invoices?order_id={order}", token=token).json["items"]
            return items[0] if items and items[0]["status"] == "failed" else None
        inv = wait_until(failed, what="开具失败")
        assert inv["failure_reason"] == "E1001：购买方名称与税务登记不符", inv
        assert inv["number"] is None and inv["file"] is False and inv["attempts"] >= 1
        error(api.get(f"/api/v1/invoices/{inv['id']}/file", token=token), 404, "INVOICE_FILE_NOT_FOUND")
        assert [i["id"] for i in api.get("/api/v1/invoices?status=failed", token=token).json["items"]] == \
            [inv["id"]]
        assert outbox(suite, "payments.invoice.issued", inv["id"]) == []
    finally:
        sim_config(suite, refuse=[])
    got = issued(suite, token, inv["id"])
    assert got["failure_reason"] is None and got["attempts"] >= 2 and got["tax_fen"] == 56
    assert sim_issuances(suite)[inv["id"]] == 1


def test_invoice_platform_lost_answer_slow_and_unavailable_issue_once(suite):
    """The answer to the issue call is lost (the platform issued): the retry
    finds the request (dedup on the invoice id), not a second invoice. A
    503 platform is retried. A slow platform does not block the service."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "郑一")
    sim_config(suite, drop=1)   # issued, the answer lost: the sweep's retry queries it
    order = new_order(suite, account, 17)
    paid(suite, token, order, {"type": "e_normal", "email": "zheng1@example.com"})
    inv = invoice_of_order(suite, token, order)
    assert sim_issuances(suite)[inv["id"]] == 1 and inv["attempts"] >= 2, inv
    assert inv["tax_fen"] == 1 and sim_invoice(suite, inv["number"])["lines"][0]["net_fen"] == 16

    sim_config(suite, unavailable=2)   # 503s: the sweep retries (1 s, 2 s)
    order = new_order(suite, account, 106)
    paid(suite, token, order, {"type": "e_normal", "email": "zheng1@example.com"})
    inv = invoice_of_order(suite, token, order)
    assert sim_issuances(suite)[inv["id"]] == 1 and inv["tax_fen"] == 6

    sim_config(suite, delay_ms=2500)
    try:
        order = new_order(suite, account, 1)
        paid(suite, token, order, {"type": "e_normal", "email": "zheng1@example.com"})
        time.sleep(0.5)  # the sweep is now waiting for the platform
        t0 = time.time()
        r = api.get(f"/api/v1/invoices?order_id={order}", token=token)
        assert r.status == 200 and time.time() - t0 < 1.0, (r, time.time() - t0)
        inv = r.json["items"][0]
    finally:
        sim_config(suite, delay_ms=0)
    got = issued(suite, token, inv["id"])
    assert got["tax_fen"] == 0 and sim_issuances(suite)[inv["id"]] == 1


# ---- 3. reissue ------------------------------------------------------------------

def test_invoice_reissue_red_and_blue_linked_with_limits(suite):
    """A wrong title: the red invoice reverses the original exactly, the new
    blue one carries the corrected title; linked both ways, audited; the
    amounts cancel and re-add exactly. Refusals: unchanged, invalid taxpayer
    id, not visible (404), operator (403), replaced already (409), after the
    period (422), beyond CAPLAT_INVOICE_REISSUE_MAX (2) (409)."""
    api = Api(suite)
    uscc = new_uscc()
    approve(suite, uscc, "沈阳旧名称有限公司", "general")
    token, account = register(suite)
    act_for(suite, token, uscc, role="admin")
    order = new_order(suite, account, 99900, uscc)
    paid(suite, token, order, {"type": "e_normal", "email": "fin@example.com"})
    orig = invoice_of_order(suite, token, order)
    assert orig["title"] == "沈阳旧名称有限公司" and orig["tax_fen"] == 5655
    path = f"/api/v1/invoices/{orig['id']}/reissue"

    error(api.post(path, {"title": "沈阳旧名称有限公司", "reason": "抬头有误"}, token=token),
          422, "INVOICE_UNCHANGED", "title")
    error(api.post(path, {"title": "沈阳新名称有限公司", "taxpayer_id": "91210000X", "reason": "税号有误"},
                   token=token), 422, "TAXPAYER_ID_INVALID", "taxpayer_id")
    error(api.post(path, {"title": "沈阳新名称有限公司"}, token=token), 422, "FIELD_REQUIRED", "reason")
    error(api.post(path, {"title": "沈阳新名称有限公司", "reason": "抬头有误"},
                   token=enterprise_admin(suite).token), 404, "INVOICE_NOT_FOUND")
    error(api.post(path, {"title": "沈阳新名称有限公司", "reason": "抬头有误"},
                   token=staff_token(suite, "operator")), 403, "FORBIDDEN")
    # After the period (365 days from the first invoice).
    suite.psql(f"UPDATE payments.invoices SET issued_at = now() - interval '366 days' WHERE id = '{orig['id']}'")
    error(api.post(path, {"title": "沈阳新名称有限公司", "reason": "抬头有误"}, token=token),
          422, "INVOICE_REISSUE_PERIOD")
    suite.psql(f"UPDATE payments.invoices SET issued_at = now() WHERE id = '{orig['id']}'")

    r = api.post(path, {"title": "沈阳新名称有限公司", "reason": "抬头有误"}, token=token)
    assert r.status == 201, r
    blue = r.json
    assert blue["kind"] == "blue" and blue["status"] == "pending" and blue["original_id"] == orig["id"]
    assert blue["title"] == "沈阳新名称有限公司" and blue["taxpayer_id"] == uscc
    assert blue["amount_fen"] == 99900 and blue["tax_fen"] == 5655 and blue["reissue_reason"] == "抬头有误"
    blue = issued(suite, token, blue["id"])
    o = get_invoice(suite, token, orig["id"])
    assert o["replacement_id"] == blue["id"] and o["reversal_id"], o
    red = issued(suite, token, o["reversal_id"])
    assert red["kind"] == "red" and red["reverses_invoice_id"] == orig["id"]
    assert (red["amount_fen"], red["tax_fen"]) == (-99900, -5655) and red["title"] == "沈阳旧名称有限公司"
    assert o["amount_fen"] + red["amount_fen"] + blue["amount_fen"] == 99900
    assert o["tax_fen"] + red["tax_fen"] + blue["tax_fen"] == 5655
    # The platform: the red one reverses the original's number, before the blue one.
    assert sim_invoice(suite, red["number"])["original_number"] == orig["number"]
    assert red["issued_at"] <= blue["issued_at"]
    entries = audit(suite, "invoice.reissued", orig["id"])
    assert len(entries) == 1 and entries[0]["uscc"] == uscc, entries
    assert entries[0]["after"]["replacement_id"] == blue["id"] and entries[0]["after"]["reason"] == "抬头有误"
    # The original is replaced: not again.
    error(api.post(path, {"title": "沈阳又一名称有限公司", "reason": "抬头有误"}, token=token), 409, "INVOICE_STATE")
    error(api.post(f"/api/v1/invoices/{red['id']}/reissue", {"title": "x", "reason": "y"}, token=token),
          409, "INVOICE_STATE")

    # A second reissue (of the new blue one), then the limit.
    new_tin = new_uscc()
    r = api.post(f"/api/v1/invoices/{blue['id']}/reissue",
                 {"title": "沈阳新名称有限公司", "taxpayer_id": new_tin.lower(), "reason": "税号有误"}, token=token)
    assert r.status == 201 and r.json["taxpayer_id"] == new_tin and r.json["original_id"] == blue["id"], r
    third = issued(suite, token, r.json["id"])
    error(api.post(f"/api/v1/invoices/{third['id']}/reissue", {"title": "第三次有限公司", "reason": "抬头有误"},
                   token=token), 409, "INVOICE_REISSUE_LIMIT")
    items = api.get(f"/api/v1/invoices?order_id={order}", token=token).json["items"]
    assert len(items) == 5 and sum(i["amount_fen"] for i in items) == 99900
    assert sum(i["tax_fen"] for i in items) == 5655


def test_invoice_reissue_personal_and_refunded(suite):
    """A person's invoice takes no taxpayer id; finance may reissue it; a
    refund reverses the live invoice through the platform (red number,
    linked) and then it can no longer be reissued."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "王二")
    order = new_order(suite, account, 10000)
    p = paid(suite, token, order, {"type": "e_normal", "email": "wang@example.com"})
    orig = invoice_of_order(suite, token, order)
    path = f"/api/v1/invoices/{orig['id']}/reissue"
    error(api.post(path, {"title": "王贰", "taxpayer_id": new_uscc(), "reason": "x"}, token=token),
          422, "TAXPAYER_ID_NOT_ALLOWED", "taxpayer_id")
    fin = finance_token(suite)
    r = api.post(path, {"title": "王贰", "reason": "姓名有误"}, token=fin)
    assert r.status == 201 and r.json["title"] == "王贰", r
    blue = issued(suite, token, r.json["id"])

    r = api.post("/api/v1/finance/refunds", {"payment_id": p, "amount_fen": 10000, "reason": "全额退款"},
                 token=fin, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status == 201 and r.json["status"] == "succeeded", r

    def refund_red():
        items = api.get(f"/api/v1/invoices?order_id={order}", token=token).json["items"]
        reds = [i for i in items if i["kind"] == "red" and i["reverses_invoice_id"] == blue["id"]]
        return reds[0] if reds and reds[0]["status"] == "issued" else None
    red = wait_until(refund_red, what="the refund's red invoice")
    assert (red["amount_fen"], red["tax_fen"]) == (-10000, -566) and len(red["number"]) == 20
    assert sim_invoice(suite, red["number"])["original_number"] == blue["number"]
    error(api.post(f"/api/v1/invoices/{blue['id']}/reissue", {"title": "王三", "reason": "x"}, token=token),
          409, "INVOICE_STATE")


# ---- 7. e-mail --------------------------------------------------------------------

def test_invoice_email_arrives_with_the_pdf_attached(suite):
    """The issued invoice's PDF reaches the SMTP server: the envelope, a
    multipart/mixed message, the text and the PDF attachment equal to the
    downloadable file; the delivery is `sent` on the invoice."""
    api = Api(suite)
    token, account = register(suite)
    named(suite, token, account, "冯三")
    addr = f"feng.{uuid.uuid4().hex[:8]}@example.com"
    order = new_order(suite, account, 20000)
    paid(suite, token, order, {"type": "e_normal", "email": addr})
    inv = invoice_of_order(suite, token, order)

    def sent():
        got = get_invoice(suite, token, inv["id"])
        return got if got["email_delivery"]["status"] == "sent" else None
    got = wait_until(sent, what="e-mail sent")
    d = got["email_delivery"]
    assert d["to"] == addr and d["attempts"] == 1 and d["error"] is None and d["sent_at"], d
    mails = mails_to(suite, addr)
    assert len(mails) == 1, mails
    meta, msg = mails[0]
    assert meta["mail_from"] == "invoice@caplat.invalid" and meta["rcpt_tos"] == [addr]
    assert meta["ehlo"] == "caplat.invalid"
    # The suite's relay requires STARTTLS, then AUTH: the message came that way.
    assert meta["tls"] is True and meta["auth"] == "caplat-mail", meta
    assert msg.get_content_type() == "multipart/mixed" and addr in str(msg["To"])
    assert msg["Subject"] == f"电子发票 {inv['number']}"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "text/plain" and inv["number"] in parts[0].get_content()
    assert "¥200.00" in parts[0].get_content() and "冯三" in parts[0].get_content()
    att = parts[1]
    assert att.get_content_type() == "application/pdf" and att.get_filename() == f"{inv['number']}.pdf"
    assert att.get_content() == api.get(f"/api/v1/invoices/{inv['id']}/file", token=token).raw
    assert suite.psql(f"SELECT email FROM payments.invoice_deliveries WHERE invoice_id = '{inv['id']}'") == [[addr]]


def test_invoice_email_refused_fails_visibly_temporary_retried(suite):
    """550 from the server: retried with backoff, then `failed` with the
    server's answer on the invoice. 451 twice: the third try is sent."""
    token, account = register(suite)
    named(suite, token, account, "陈四")
    bounce = f"bounce.{uuid.uuid4().hex[:8]}@example.com"
    flaky = f"flaky.{uuid.uuid4().hex[:8]}@example.com"
    o1, o2 = new_order(suite, account, 3000), new_order(suite, account, 4000)
    paid(suite, token, o1, {"type": "e_normal", "email": bounce})
    paid(suite, token, o2, {"type": "e_normal", "email": flaky})
    i1, i2 = invoice_of_order(suite, token, o1), invoice_of_order(suite, token, o2)

    def delivery(inv, status):
        d = get_invoice(suite, token, inv["id"])["email_delivery"]
        return d if d["status"] == status else None
    d1 = wait_until(lambda: delivery(i1, "failed"), what="e-mail failed", timeout=30)
    assert d1["attempts"] == 3 and d1["error"].startswith("SMTP RCPT TO: 550"), d1
    d2 = wait_until(lambda: delivery(i2, "sent"), what="e-mail sent after 451s", timeout=30)
    assert d2["attempts"] == 3 and d2["error"] is None, d2
    assert mails_to(suite, bounce) == [] and len(mails_to(suite, flaky)) == 1


def test_invoice_email_relay_refusing_our_login_fails_visibly(suite):
    """The relay refuses our credentials (535 after AUTH, over STARTTLS):
    retried, then `failed` with the step named, and the password appears
    neither in the invoice's error nor in the payments log."""
    token, account = register(suite)
    named(suite, token, account, "褚五")
    addr = f"auth.{uuid.uuid4().hex[:8]}@example.com"
    good = open(suite.smtp_auth).read()
    password = good.strip().split(":", 1)[1]
    try:
        with open(suite.smtp_auth, "w") as f:
            f.write("caplat-mail:changed-by-the-relay\n")
        order = new_order(suite, account, 2500)
        paid(suite, token, order, {"type": "e_normal", "email": addr})
        inv = invoice_of_order(suite, token, order)

        def failed():
            d = get_invoice(suite, token, inv["id"])["email_delivery"]
            return d if d["status"] == "failed" else None
        d = wait_until(failed, what="e-mail failed on AUTH", timeout=30)
    finally:
        with open(suite.smtp_auth, "w") as f:
            f.write(good)
    assert d["attempts"] == 3 and d["error"].startswith("SMTP AUTH: 535"), d
    assert password not in d["error"] and mails_to(suite, addr) == []
    with open(os.path.join(suite.log_dir, "payments.log"), encoding="utf-8", errors="replace") as f:
        assert password not in f.read()


def test_invoice_email_configuration_refused_at_start(suite):
    """AUTH in clear to a relay that is not on loopback, an unknown TLS
    mode and an unreadable password file stop payments at start, naming
    the variable."""
    from test_https_client import start_fails
    out = start_fails(suite, CAPLAT_SMTP_HOST="smtp.example.com", CAPLAT_SMTP_TLS="none")
    assert "CAPLAT_SMTP_USER" in out and "in clear" in out, out
    out = start_fails(suite, CAPLAT_SMTP_TLS="ssl")
    assert "CAPLAT_SMTP_TLS" in out, out
    out = start_fails(suite, CAPLAT_SMTP_PASSWORD_FILE="/nonexistent/smtp_password")
    assert "CAPLAT_SMTP_PASSWORD_FILE" in out, out


# ---- 8. reconciliation at scale: every difference kept, paged, CSV -------------------

def test_reconciliation_differences_paged_and_exported(suite):
    """A WeChat bill with 1,500 lines we do not know: all are counted and
    kept (items_total), 1000 inline, every one reachable in pages (no
    overlap, in the bill's order) and as CSV; the report reads back the
    same; the staging table is empty again; only finance."""
    import datetime
    from test_payments import SHANGHAI, sim_url
    api = Api(suite)
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw.decode()
    lines = bill.split("\r\n")
    header, summary = lines[0], lines[-3:]   # the summary's two lines and the last CRLF
    foreign = []
    for i in range(1500):
        foreign.append(",".join("`" + c for c in [
            f"{today} 10:00:00", "wx8888888888888888", "1900000001", "0", "", f"42000{i:08d}",
            f"FOREIGN{i:06d}", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
            "1.00", "0.00", "0", "0", "0.00", "0.00", "", "", "证书续期", "", "0.00600", "0.60%",
            "1.00", "0.00", ""]))
    body = "\r\n".join([header] + lines[1:-3] + foreign + summary)
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw=body.encode(), token=fin,
             headers={"Content-Type": "text/csv"})
    assert r.status == 201, r
    rep = r.json
    assert rep["missing_local"] >= 1500 and rep["items_total"] == \
        rep["missing_local"] + rep["missing_remote"] + rep["amount_mismatch"], rep
    assert len(rep["items"]) == 1000 and rep["items"][0]["kind"] == "missing_local"
    got = api.get(f"/api/v1/finance/reconciliations/{rep['id']}", token=fin)
    assert got.status == 200 and got.json == rep, got
    seen, cursor = [], None
    while True:
        q = f"?limit=1000&cursor={cursor}" if cursor else "?limit=1000"
        page = api.get(f"/api/v1/finance/reconciliations/{rep['id']}/items{q}", token=fin)
        assert page.status == 200 and page.json["total"] == rep["items_total"], page
        seen += page.json["items"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert [i["seq"] for i in seen] == list(range(1, rep["items_total"] + 1))
    ours = [i["out_trade_no"] for i in seen if i["kind"] == "missing_local" and i["out_trade_no"].startswith("FOREIGN")]
    assert ours == [f"FOREIGN{i:06d}" for i in range(1500)]
    assert {k: v for k, v in seen[0].items() if k not in ("seq", "decision")} == rep["items"][0]
    assert all(i["decision"] is None for i in seen)
    r = api.get(f"/api/v1/finance/reconciliations/{rep['id']}/items?format=csv&limit=600", token=fin)
    assert r.status == 200 and r.headers["X-Next-Cursor"] == "600", r
    csv_lines = r.raw.decode().split("\r\n")
    assert csv_lines[0] == ("seq,kind,type,out_trade_no,provider_trade_no,local_amount_fen,remote_amount_fen,"
                            "decision,decision_note,decided_by,decided_at")
    assert len(csv_lines) == 602 and csv_lines[1].startswith("1,missing_local,payment,")
    assert suite.psql("SELECT count(*) FROM payments.recon_bill") == [["0"]]
    error(api.get(f"/api/v1/finance/reconciliations/{rep['id']}/items", token=staff_token(suite, "operator")),
          403, "FORBIDDEN")
    error(api.get(f"/api/v1/finance/reconciliations/{uuid.uuid4()}/items", token=fin), 404, "NOT_FOUND")
    error(api.get(f"/api/v1/finance/reconciliations/{rep['id']}/items?cursor=x", token=fin),
          400, "BAD_REQUEST", "cursor")


def test_reconciliation_decision_per_difference_audited(suite):
    """Finance records a decision on a difference (with a note): stored with
    who and when, shown on the item in the paged list and the CSV, audited;
    a second decision replaces the first (both audited). Refusals: not
    finance 403, unknown item 404, a decision outside the list 422 (field),
    no decision 422, nothing changed by any of them."""
    import csv
    import datetime
    import io
    from test_payments import SHANGHAI, sim_url
    api = Api(suite)
    fin = finance_token(suite)
    today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    bill = call(sim_url(suite), "GET", f"/sim/bills/wechat/{today}").raw.decode()
    lines = bill.split("\r\n")
    tag = uuid.uuid4().hex[:8].upper()
    foreign = [",".join("`" + c for c in [
        f"{today} 11:00:00", "wx8888888888888888", "1900000001", "0", "", f"43{tag}{i:02d}",
        f"DECIDE{tag}{i}", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
        "2.00", "0.00", "0", "0", "0.00", "0.00", "", "", "证书续期", "", "0.01200", "0.60%",
        "2.00", "0.00", ""]) for i in range(2)]
    body = "\r\n".join([lines[0]] + lines[1:-3] + foreign + lines[-3:])
    r = call(suite.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw=body.encode(), token=fin,
             headers={"Content-Type": "text/csv"})
    assert r.status == 201, r
    rid = r.json["id"]
    items = api.get(f"/api/v1/finance/reconciliations/{rid}/items?limit=1000", token=fin).json["items"]
    ours = [i for i in items if (i["out_trade_no"] or "").startswith(f"DECIDE{tag}")]
    assert len(ours) == 2 and all(i["decision"] is None for i in ours), ours
    seq, other = ours[0]["seq"], ours[1]["seq"]
    path = f"/api/v1/finance/reconciliations/{rid}/items/{seq}/decision"

    # Refusals first: nothing is recorded by any of them.
    error(api.post(path, {"decision": "write_off"}, token=staff_token(suite, "operator")), 403, "FORBIDDEN")
    assert api.post(path, {"decision": "write_off"}).status == 401
    error(api.post(path, {"decision": "burn_it"}, token=fin), 422, "FIELD_INVALID", "decision")
    error(api.post(path, {"note": "x"}, token=fin), 422, "FIELD_REQUIRED", "decision")
    error(api.post(f"/api/v1/finance/reconciliations/{rid}/items/999999/decision", {"decision": "ignore"},
                   token=fin), 404, "NOT_FOUND")
    error(api.post(f"/api/v1/finance/reconciliations/{uuid.uuid4()}/items/{seq}/decision",
                   {"decision": "ignore"}, token=fin), 404, "NOT_FOUND")
    error(api.post(f"/api/v1/finance/reconciliations/{rid}/items/x/decision", {"decision": "ignore"},
                   token=fin), 404, "NOT_FOUND")
    assert suite.psql(f"SELECT count(*) FROM payments.reconciliation_items WHERE recon_id = '{rid}'"
                      " AND decision IS NOT NULL") == [["0"]]
    assert audit(suite, "reconciliation.decided", f"{rid}/{seq}") == []

    r = api.post(path, {"decision": "provider_claim", "note": "向微信支付申诉"}, token=fin)
    assert r.status == 200, r
    d = r.json["decision"]
    assert r.json["seq"] == seq and r.json["out_trade_no"] == f"DECIDE{tag}0" and r.json["replaced"] is None
    assert d["decision"] == "provider_claim" and d["note"] == "向微信支付申诉" and d["decided_by"] and d["decided_at"]
    r2 = api.post(path, {"decision": "write_off"}, token=fin)
    assert r2.status == 200 and r2.json["replaced"] == "provider_claim", r2
    assert r2.json["decision"]["decision"] == "write_off" and r2.json["decision"]["note"] is None

    items = api.get(f"/api/v1/finance/reconciliations/{rid}/items?limit=1000", token=fin).json["items"]
    by_seq = {i["seq"]: i for i in items}
    assert by_seq[seq]["decision"] == r2.json["decision"] and by_seq[other]["decision"] is None
    rows = list(csv.DictReader(io.StringIO(
        api.get(f"/api/v1/finance/reconciliations/{rid}/items?format=csv", token=fin).raw.decode())))
    row = next(x for x in rows if x["seq"] == str(seq))
    assert row["decision"] == "write_off" and row["decision_note"] == "" and row["decided_by"] == d["decided_by"]
    assert row["decided_at"] == r2.json["decision"]["decided_at"]
    assert next(x for x in rows if x["seq"] == str(other))["decision"] == ""
    entries = audit(suite, "reconciliation.decided", f"{rid}/{seq}")
    assert sorted(e["after"]["decision"] for e in entries) == ["provider_claim", "write_off"], entries
    assert all(e["object_type"] == "reconciliation_item" for e in entries)
