"""auth, notices (issue 17): every <svc>.notice.requested and the decisions
auth tells by itself (review result, administrator and member application)
land once in the recipient's inbox (GET /api/v1/messages: cursor pages, the
unread count, mark read, only the caller's own) and once at the SMS provider,
keyed by notice_id. With the Alibaba Cloud provider against
tests/smssim/smssim.py (TLS, the signature checked as the provider does):
OTP codes still work; a duplicate notice is one SMS; a provider timeout then
success is one SMS (OutId); throttling is retried later; a template error is
a dead letter operators see and resend; a kill -9 of auth between the send
and its record is still exactly one SMS."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, join_enterprise, new_phone, new_uscc, register_account, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, "tests", "smssim", "smssim.py")
KEY_ID, SECRET, SIGN = "LTAI5tNotifyTestKey", "notify-test-secret-0123456789", "CA互联互通"
TEMPLATES = {"SMS_100001": "您的验证码为${code}，5分钟内有效，请勿泄露。", "SMS_100002": "${title}：${text}"}

KINDS = {
    "cert.expiring": {"serial": "0A1B2C", "not_after": "2027-01-31T00:00:00Z", "days_left": 30,
                      "holder_name": "张三"},
    "cert.expiry_digest": {"day": "2026-12-06", "quote_id": "q-1", "total_fen": 50000,
                           "valid_until": "2026-12-13T00:00:00Z",
                           "certificates": [{"cert_id": str(uuid.uuid4()), "serial": "0A1B2C",
                                             "holder_name": "张三", "not_after": "2027-01-31", "stage": 30}]},
    "renewal.ready": {"serial": "0A1B2C", "holder_name": "张三", "order_number": "PL0123456789AB",
                      "platforms": ["LN_JSGC"]},
    "renewal.unused": {"serial": "0A1B2C", "days_since_paid": 3},
    "order.expiring": {"order_number": "CO202701010001", "total_fen": 50000,
                       "expires_at": "2027-01-01T10:00:00Z"},
    "payment.succeeded": {"order_id": str(uuid.uuid4()), "amount_fen": 50000},
    "invoice.issued": {"invoice_number": "24212000000000000001", "amount_fen": 50000},
    "invoice.posted": {"invoice_number": "24212000000000000001", "express_company": "顺丰速运",
                       "tracking_number": "SF1234567890"},
    "review.decided": {"record_id": str(uuid.uuid4()), "result": "approved", "name": "辽宁通知测试有限公司"},
    "admin_application.decided": {"application_id": str(uuid.uuid4()), "result": "rejected",
                                  "opinion": "授权委托书不清晰"},
    "member_application.decided": {"enterprise_name": "辽宁通知测试有限公司", "result": "approved"},
    "cert.issued": {"serial": "0A1B2D"},
    "cert.cancelled": {"serial": "0A1B2C"},
}


def q(s):
    return "'" + str(s).replace("'", "''") + "'"


def emit(suite, notice_id, kind, recipient, params, channels=None):
    """Asks for a notice as a producer does: an outbox row of
    auth.notice.requested (published by auth's relay)."""
    data = {"notice_id": notice_id, "kind": kind, "recipient": recipient, "params": params}
    if channels:
        data["channels"] = channels
    suite.psql(f"SELECT auth.outbox_emit('auth.notice.requested', {q(notice_id)},"
               f" {q(json.dumps(data, ensure_ascii=False))}::jsonb)")


def nid(tag):
    return f"test:{tag}:{uuid.uuid4().hex[:12]}"


def messages(suite, token, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = Api(suite).get("/api/v1/messages" + (f"?{qs}" if qs else ""), token=token)
    assert r.status == 200, r
    return r.json


def all_messages(suite, token):
    items, cursor = [], None
    while True:
        page = messages(suite, token, limit=5, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def sms_lines(suite, phone, needle):
    path = os.path.join(suite.sms_dir, f"{phone}.log")
    if not os.path.exists(path):
        return []
    return [ln for ln in open(path, encoding="utf-8").read().splitlines() if needle in ln]


def delivery(suite, notice_id):
    rows = suite.psql(f"SELECT status, attempts, last_error FROM auth.sms_deliveries"
                      f" WHERE notice_id = {q(notice_id)}")
    return dict(zip(["status", "attempts", "last_error"], rows[0])) if rows else None


def test_every_kind_lands_once_in_the_inbox_and_the_sms_log(suite):
    api = Api(suite)
    phone, token, account = register_account(suite)
    ids = {kind: nid(kind) for kind in KINDS}
    for kind, params in KINDS.items():
        emit(suite, ids[kind], kind, {"account_id": account}, params)
    emit(suite, ids["cert.expiring"], "cert.expiring", {"account_id": account}, KINDS["cert.expiring"])
    wait_until(lambda: messages(suite, token)["unread"] >= len(KINDS), timeout=20, what="13 messages")
    items = all_messages(suite, token)
    assert sorted(m["kind"] for m in items) == sorted(KINDS), items
    assert {m["notice_id"] for m in items} == set(ids.values())
    by_kind = {m["kind"]: m for m in items}
    assert by_kind["cert.expiring"]["title"] == "数字证书即将到期"
    assert "还剩 30 天" in by_kind["cert.expiring"]["body"]
    assert "报价号 q-1" in by_kind["cert.expiry_digest"]["body"] and "500.00 元" in by_kind["cert.expiry_digest"]["body"]
    assert "更新数字证书" in by_kind["renewal.ready"]["body"]
    assert by_kind["payment.succeeded"]["read_at"] is None
    for kind, notice in ids.items():
        wait_until(lambda: sms_lines(suite, phone, f"notice={notice} "), timeout=10, what=f"SMS of {kind}")
    time.sleep(0.3)  # a second SMS of the duplicate would be written by now
    for kind, notice in ids.items():
        lines = sms_lines(suite, phone, f"notice={notice} ")
        assert len(lines) == 1, (kind, lines)
        assert "【CA互联互通】" in lines[0]
    # pages: newest first, unread count over all pages
    page = messages(suite, token, limit=5)
    assert len(page["items"]) == 5 and page["next_cursor"] and page["unread"] == len(KINDS)
    assert messages(suite, token, unread="true", limit=100)["unread"] == len(KINDS)
    # mark one read (idempotent), then all
    mid = by_kind["payment.succeeded"]["id"]
    r = api.post(f"/api/v1/messages/{mid}/read", token=token)
    assert r.status == 200 and r.json["message"]["read_at"] and r.json["unread"] == len(KINDS) - 1, r
    first = r.json["message"]["read_at"]
    r = api.post(f"/api/v1/messages/{mid}/read", token=token)
    assert r.status == 200 and r.json["message"]["read_at"] == first and r.json["unread"] == len(KINDS) - 1, r
    assert len(messages(suite, token, unread="true", limit=100)["items"]) == len(KINDS) - 1
    # only the caller's own
    _, other, _ = register_account(suite)
    r = api.post(f"/api/v1/messages/{mid}/read", token=other)
    assert r.status == 404 and r.code == "NOT_FOUND", r
    assert messages(suite, other)["items"] == []
    r = api.post("/api/v1/messages/read-all", token=token)
    assert r.status == 200 and r.json["marked"] == len(KINDS) - 1 and r.json["unread"] == 0, r
    assert messages(suite, token)["unread"] == 0
    # refusals
    assert api.get("/api/v1/messages").status == 401
    r = api.get("/api/v1/messages?limit=0", token=token)
    assert r.status == 422 and r.code == "FIELD_INVALID", r
    r = api.get("/api/v1/messages?cursor=abc", token=token)
    assert r.status == 422 and r.code == "FIELD_INVALID", r


def test_recipients_admin_cert_and_undeliverable(suite):
    _, token, account = register_account(suite)
    uscc = new_uscc()
    join_enterprise(suite, token, uscc, name="辽宁通知测试有限公司")
    to_admin = nid("admin")
    emit(suite, to_admin, "cert.expiry_digest", {"uscc": uscc, "role": "admin"}, KINDS["cert.expiry_digest"])
    nobody = nid("nobody")
    emit(suite, nobody, "cert.expiring", {"cert_id": str(uuid.uuid4())}, KINDS["cert.expiring"])
    bad = nid("bad")
    emit(suite, bad, "cert.expiring", {"account_id": account}, {"serial": "1"})
    inbox_only = nid("inbox")
    emit(suite, inbox_only, "cert.issued", {"account_id": account}, {"serial": "77"}, channels=["inbox"])

    def outcome(n):
        rows = suite.psql(f"SELECT status, COALESCE(reason, '') FROM auth.notices WHERE notice_id = {q(n)}")
        return tuple(rows[0]) if rows else None
    wait_until(lambda: all(outcome(n) for n in (to_admin, nobody, bad, inbox_only)), timeout=20,
               what="notices accepted")
    assert outcome(to_admin) == ("delivered", "")
    assert outcome(nobody) == ("undeliverable", "no_binding")
    assert outcome(bad) == ("undeliverable", "bad_params:days_left")
    assert outcome(inbox_only) == ("delivered", "")
    assert delivery(suite, inbox_only) is None
    got = {m["notice_id"] for m in all_messages(suite, token)}
    assert to_admin in got and inbox_only in got and bad not in got


def test_cert_recipient_is_the_account_the_key_is_bound_to(suite):
    sys.path.insert(0, os.path.join(ROOT, "tests", "issuance"))
    from kit import ca_bind, make_leaf, wait_registered  # noqa: E402
    leaf = make_leaf(suite, "rsa", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    notice = nid("holder")
    emit(suite, notice, "cert.expiring", {"cert_id": cert_id},
         dict(KINDS["cert.expiring"], serial=leaf.serial, days_left=7))
    m = wait_until(lambda: [x for x in all_messages(suite, token) if x["notice_id"] == notice], timeout=20,
                   what="the holder's message")
    assert leaf.serial in m[0]["body"] and "还剩 7 天" in m[0]["body"], m
    assert suite.psql(f"SELECT account_id FROM auth.notices WHERE notice_id = {q(notice)}") == [[account]]


def test_member_application_decided_is_told_once(suite):
    _, admin, _ = register_account(suite)
    uscc = new_uscc()
    join_enterprise(suite, admin, uscc, name="辽宁通知测试有限公司")
    phone, token, _ = register_account(suite)
    r = Api(suite).post("/api/v1/auth/identities", {"type": "enterprise", "enterprise_name": "辽宁通知测试有限公司",
                                                     "uscc": uscc, "role": "project_lead"}, token=token)
    assert r.status == 202, r
    identity = r.json["id"]
    r = Api(suite).post(f"/api/v1/auth/member-applications/{identity}/reject", {"opinion": "不是本单位人员"},
                        token=admin)
    assert r.status == 200, r
    notice = f"member_application:{identity}"
    m = wait_until(lambda: [x for x in all_messages(suite, token) if x["notice_id"] == notice], timeout=20,
                   what="member decision message")
    assert m[0]["kind"] == "member_application.decided" and "不是本单位人员" in m[0]["body"], m
    wait_until(lambda: sms_lines(suite, phone, f"notice={notice} "), timeout=10, what="member SMS")
    assert len(sms_lines(suite, phone, "kind=member_application.decided")) == 1


# ---- the Alibaba Cloud provider against the simulator ------------------------

class Sim:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}"
        self.tls_url = f"https://127.0.0.1:{port}"

    def control(self, **kw):
        req = urllib.request.Request(self.url + "/control", data=json.dumps(kw).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def sent(self, out_id=None, phone=None):
        return [s for s in self.stats()["sent"]
                if (out_id is None or s["out_id"] == out_id) and (phone is None or s["phone"] == phone)]


@contextlib.contextmanager
def sms_sim(suite):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(suite.log_dir, "smssim.log"), "ab")
    p = subprocess.Popen([sys.executable, SIM, "--port", str(port), "--key-id", KEY_ID, "--secret", SECRET,
                          "--sign", SIGN, "--templates", "|".join(f"{k}={v}" for k, v in TEMPLATES.items()),
                          "--tls-cert", os.path.join(suite.tls_ca(), "server.pem"),
                          "--tls-key", os.path.join(suite.tls_ca(), "server.key")], stdout=log, stderr=log)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert p.poll() is None and time.time() < deadline, "smssim did not start"
                time.sleep(0.05)
        yield Sim(port)
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()


def aliyun_env(suite, sim, **extra):
    env = {"CAPLAT_SMS_PROVIDER": f"aliyun:{sim.tls_url}", "CAPLAT_SMS_ACCESS_KEY_ID": KEY_ID,
           "CAPLAT_SMS_ACCESS_KEY_SECRET": SECRET, "CAPLAT_SMS_SIGN_NAME": SIGN,
           "CAPLAT_SMS_TEMPLATES": "otp=SMS_100001,notice=SMS_100002",
           "CAPLAT_TLS_CA_FILE": os.path.join(suite.tls_ca(), "ca.pem"),
           "CAPLAT_SMS_TIMEOUT_MS": "800", "CAPLAT_SMS_LEASE_SECONDS": "2",
           "CAPLAT_SMS_RETRY_BASE_MS": "200", "CAPLAT_SMS_THROTTLE_MS": "300",
           # no periodic look: kicks and the rounds' due times alone
           "CAPLAT_SMS_DELIVERY_MS": "600000", "CAPLAT_SMS_NUMBER_HOURLY": "1000"}
    env.update(extra)
    return env


def restart_auth(suite, env=None):
    suite.kill("auth", signal.SIGTERM)
    suite.start_service("auth", env or {})


def staff(suite):
    r = Api(suite).post("/api/v1/auth/staff/login",
                        {"username": "operator", "password": suite.secrets["staff_operator"]})
    assert r.status == 200, r
    return r.json["token"]


def dead_letters(suite, token):
    items, cursor = [], None
    while True:
        r = Api(suite).get("/api/v1/sms/dead-letters?limit=50" + (f"&cursor={cursor}" if cursor else ""),
                           token=token)
        assert r.status == 200, r
        items += r.json["items"]
        cursor = r.json["next_cursor"]
        if cursor is None:
            return items


def test_aliyun_provider_retries_dead_letters_and_crash(suite):
    api = Api(suite)
    phone, token, account = register_account(suite)  # (the local provider's code)
    with sms_sim(suite) as sim:
        try:
            restart_auth(suite, aliyun_env(suite, sim))
            # OTP codes go through the provider's otp template
            fresh = new_phone()
            r = api.post("/api/v1/auth/sms", {"phone": fresh, "purpose": "register"})
            assert r.status == 202, r
            otp = wait_until(lambda: sim.sent(phone=fresh), timeout=10, what="OTP at the provider")
            assert otp[0]["template"] == "SMS_100001" and otp[0]["text"].startswith("【CA互联互通】您的验证码为")
            r = api.post("/api/v1/auth/register", {"phone": fresh, "sms_code": otp[0]["params"]["code"],
                                                   "password": "abc12345"})
            assert r.status == 201, r

            # every kind once, a duplicate notice once
            ids = {kind: nid(kind) for kind in KINDS}
            for kind, params in KINDS.items():
                emit(suite, ids[kind], kind, {"account_id": account}, params)
            emit(suite, ids["review.decided"], "review.decided", {"account_id": account}, KINDS["review.decided"])
            for kind, notice in ids.items():
                wait_until(lambda: (delivery(suite, notice) or {}).get("status") == "sent", timeout=15,
                           what=f"{kind} sent")
            for kind, notice in ids.items():
                got = sim.sent(out_id=notice)
                assert len(got) == 1 and got[0]["phone"] == phone and got[0]["template"] == "SMS_100002", (kind, got)
            assert "还剩 30 天" in sim.sent(out_id=ids["cert.expiring"])[0]["text"]

            # the provider times out after sending: tried again, the OutId keeps it one SMS
            sim.control(delay=1.5, delay_count=1)
            slow = nid("slow")
            emit(suite, slow, "renewal.ready", {"account_id": account}, KINDS["renewal.ready"])
            wait_until(lambda: (delivery(suite, slow) or {}).get("status") == "sent", timeout=15, what="slow sent")
            d = delivery(suite, slow)
            assert int(d["attempts"]) >= 2, d
            assert len(sim.sent(out_id=slow)) == 1

            # throttled: retried later, sent once
            before = sim.stats()["refused"].get("isv.BUSINESS_LIMIT_CONTROL", 0)
            sim.control(throttle=1)
            limited = nid("throttle")
            emit(suite, limited, "order.expiring", {"account_id": account}, KINDS["order.expiring"])
            wait_until(lambda: (delivery(suite, limited) or {}).get("status") == "sent", timeout=15,
                       what="throttled sent")
            assert sim.stats()["refused"]["isv.BUSINESS_LIMIT_CONTROL"] == before + 1
            assert int(delivery(suite, limited)["attempts"]) == 2 and len(sim.sent(out_id=limited)) == 1

            # a template error: dead letter, visible to operators, resendable
            sim.control(fail=1, fail_code="isv.SMS_TEMPLATE_ILLEGAL")
            dead = nid("dead")
            emit(suite, dead, "invoice.issued", {"account_id": account}, KINDS["invoice.issued"])
            wait_until(lambda: (delivery(suite, dead) or {}).get("status") == "dead", timeout=15, what="dead letter")
            assert delivery(suite, dead)["last_error"] == "isv.SMS_TEMPLATE_ILLEGAL"
            op = staff(suite)
            item = [i for i in dead_letters(suite, op) if i["notice_id"] == dead]
            assert len(item) == 1 and item[0]["status"] == "dead" and "****" in item[0]["phone"], item
            assert item[0]["last_error"] == "isv.SMS_TEMPLATE_ILLEGAL"
            r = api.get("/api/v1/sms/dead-letters", token=token)
            assert r.status == 403 and r.code == "FORBIDDEN", r
            r = api.post(f"/api/v1/sms/dead-letters/{item[0]['id']}/resend", token=token)
            assert r.status == 403, r
            r = api.post(f"/api/v1/sms/dead-letters/{item[0]['id']}/resend", token=op)
            assert r.status == 200 and r.json["status"] == "pending" and r.json["attempts"] == 0, r
            wait_until(lambda: (delivery(suite, dead) or {}).get("status") == "sent", timeout=15, what="resent")
            assert len(sim.sent(out_id=dead)) == 1
            r = api.post(f"/api/v1/sms/dead-letters/{item[0]['id']}/resend", token=op)
            assert r.status == 404 and r.code == "NOT_FOUND", r

            # kill -9 between the send and its record: sent again after the
            # lease with the same OutId, one SMS
            once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
            restart_auth(suite, aliyun_env(suite, sim, CAPLAT_FAULT="auth_sms_crash_after_send", CAPLAT_FAULT_ONCE=once))
            crash = nid("crash")
            emit(suite, crash, "payment.succeeded", {"account_id": account}, KINDS["payment.succeeded"])
            wait_until(lambda: os.path.exists(once) and len(sim.sent(out_id=crash)) == 1, timeout=15,
                       what="sent, then auth died")
            assert delivery(suite, crash)["status"] == "sending"
            restart_auth(suite, aliyun_env(suite, sim))
            wait_until(lambda: (delivery(suite, crash) or {}).get("status") == "sent", timeout=15,
                       what="crashed SMS recorded after the lease")
            assert len(sim.sent(out_id=crash)) == 1 and int(delivery(suite, crash)["attempts"]) == 2
            # and between the claim and the send
            once2 = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
            restart_auth(suite, aliyun_env(suite, sim, CAPLAT_FAULT="auth_sms_crash_after_claim", CAPLAT_FAULT_ONCE=once2))
            claim = nid("claim")
            emit(suite, claim, "cert.cancelled", {"account_id": account}, KINDS["cert.cancelled"])
            wait_until(lambda: os.path.exists(once2) and (delivery(suite, claim) or {}).get("status") == "sending",
                       timeout=15, what="claimed, then auth died")
            assert sim.sent(out_id=claim) == []
            restart_auth(suite, aliyun_env(suite, sim))
            wait_until(lambda: (delivery(suite, claim) or {}).get("status") == "sent", timeout=15,
                       what="claimed SMS sent after the lease")
            assert len(sim.sent(out_id=claim)) == 1

            # our own per-number hourly limit: the next notice waits for the next hour
            restart_auth(suite, aliyun_env(suite, sim, CAPLAT_SMS_NUMBER_HOURLY="5"))
            later = nid("limit")
            emit(suite, later, "cert.issued", {"account_id": account}, {"serial": "88"})
            wait_until(lambda: (delivery(suite, later) or {}).get("last_error") == "number_hourly_limit",
                       timeout=15, what="held by the number limit")
            d = delivery(suite, later)
            assert d["status"] == "pending" and d["attempts"] == "0" and sim.sent(out_id=later) == [], d
        finally:
            restart_auth(suite)


def test_payment_and_invoice_are_told_to_who_placed_the_order(suite):
    from test_payments import named, new_order, pay, payment, sim_pay  # noqa: E402
    phone, token, account = register_account(suite)
    named(suite, account)
    order = new_order(suite, account, 10000)
    r = pay(suite, token, order, "alipay", {"type": "e_normal", "email": "buyer@example.com"})
    assert r.status == 201, r
    pid = r.json["id"]
    sim_pay(suite, pid, duplicates=1)
    wait_until(lambda: payment(suite, token, pid)["status"] == "succeeded", what="payment succeeded")

    def told():
        got = {m["kind"]: m for m in all_messages(suite, token)}
        return got if {"payment.succeeded", "invoice.issued"} <= set(got) else None
    got = wait_until(told, timeout=20, what="payment and invoice messages")
    assert got["payment.succeeded"]["notice_id"] == f"payment.succeeded:{pid}"
    assert "100.00 元" in got["payment.succeeded"]["body"] and "PL" in got["payment.succeeded"]["body"]
    assert "100.00 元" in got["invoice.issued"]["body"]
    assert len(all_messages(suite, token)) == 2
    for kind in ("payment.succeeded", "invoice.issued"):
        notice = got[kind]["notice_id"]
        wait_until(lambda: sms_lines(suite, phone, f"notice={notice} "), timeout=10, what=f"SMS of {kind}")
        assert len(sms_lines(suite, phone, f"notice={notice} ")) == 1
