#!/usr/bin/env python3
"""paysim — Alipay and WeChat Pay on loopback, for tests and `make run`.

Plays both providers with their own RSA keys (real signatures through
libcrypto, tests/paysim/ossl.py):
  * Alipay open platform: POST /gateway.do (alipay.trade.precreate, .query,
    .refund), requests verified RSA2 with the merchant's public key, answers
    signed with "Alipay's" key; notifications form-encoded and signed RSA2.
  * WeChat Pay API v3: POST /v3/pay/transactions/native,
    GET /v3/pay/transactions/out-trade-no/{no}, POST /v3/refund/domestic/refunds,
    requests verified (WECHATPAY2-SHA256-RSA2048), answers and notifications
    signed with the platform key, resources AEAD_AES_256_GCM with the APIv3 key.
  * Notifications are retried until answered `success` / 2xx, on a (shortened)
    provider schedule; on demand duplicated and late.
  * Daily bills in each provider's CSV format: GET /sim/bills/{alipay|wechat}/{date};
    and as the providers hand them out: Alipay's
    alipay.data.dataservice.bill.downloadurl.query and WeChat's signed
    GET /v3/bill/tradebill answer a download URL (GET /sim/download/{token},
    WeChat's signed too), served in pieces; a date after today has no bill.
    POST /sim/bill-file {channel, date, path[, cut_at]} serves that file
    instead (benchmarks: a bill of 10^6 lines, never read whole; cut_at: the
    connection is closed after that many bytes of the announced length).
  * TLS with --tls-cert/--tls-key (plain HTTP still answered for the tests'
    control calls: the first byte of a connection decides).
  * Test control: POST /sim/answer-skew {seconds} (WeChat answers signed with
    a timestamp that far off), POST /sim/pay {out_trade_no, notify, duplicates, delay},
    GET /sim/trades/{out_trade_no}, GET /qr/{channel}/{no} (a "scan" that pays).

  paysim.py --dir DIR --port PORT [--watch-pidfile F]   serve (keys made in DIR)
  paysim.py --dir DIR keys                              only make the keys
"""
import argparse
import base64
import datetime
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ossl  # noqa: E402

ALIPAY_APP_ID = "2021000000000001"
ALIPAY_SELLER_ID = "2088101117955611"
WECHAT_MCHID = "1900000001"
WECHAT_APPID = "wx8888888888888888"
WECHAT_MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD2A4D4DB1"
PLATFORM_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# The providers' retry schedules (DOMAIN.md), shortened by --time-scale.
ALIPAY_RETRIES = [4 * 60, 10 * 60, 10 * 60, 3600, 2 * 3600, 6 * 3600, 15 * 3600]
WECHAT_RETRIES = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]


# ---- keys ------------------------------------------------------------------

def key_paths(d):
    """Where everything lives; the payments service reads the *_for_payments files."""
    return {
        "alipay_merchant_key": os.path.join(d, "alipay_merchant.key"),   # payments signs
        "alipay_merchant_pub": os.path.join(d, "alipay_merchant.pub"),   # sim verifies
        "alipay_key": os.path.join(d, "alipay.key"),                     # sim signs
        "alipay_pub": os.path.join(d, "alipay.pub"),                     # payments verifies
        "wechat_merchant_key": os.path.join(d, "wechat_merchant.key"),
        "wechat_merchant_pub": os.path.join(d, "wechat_merchant.pub"),
        "wechat_platform_key": os.path.join(d, "wechat_platform.key"),
        "wechat_platform_cert": os.path.join(d, "wechat_platform.pem"),
        "wechat_apiv3_key": os.path.join(d, "wechat_apiv3.key"),
    }


def make_keys(d):
    os.makedirs(d, exist_ok=True)
    k = key_paths(d)
    if os.path.exists(k["wechat_apiv3_key"]):
        return k

    def run(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    for name in ("alipay_merchant", "alipay", "wechat_merchant"):
        run("genrsa", "-out", k[f"{name}_key"], "2048")
        run("rsa", "-in", k[f"{name}_key"], "-pubout", "-out", k[f"{name}_pub"])
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k["wechat_platform_key"],
        "-out", k["wechat_platform_cert"], "-days", "3650", "-subj",
        "/C=CN/O=Tenpay.com/OU=Tenpay.com CA Center/CN=Tenpay.com Root CA",
        "-set_serial", "0x" + PLATFORM_SERIAL)
    with open(os.open(k["wechat_apiv3_key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(secrets.token_hex(16))  # 32 ASCII bytes
    return k


# ---- signing helpers (also used by the integration tests) -------------------

def alipay_sign_content(params, drop_sign_type):
    return "&".join(f"{k}={v}" for k, v in sorted(params.items())
                    if k != "sign" and not (drop_sign_type and k == "sign_type"))


def alipay_sign(key, params, drop_sign_type=True):
    return base64.b64encode(key.sign(alipay_sign_content(params, drop_sign_type).encode())).decode()


def alipay_notification(key, trade, status="TRADE_SUCCESS", notify_id=None, extra=None):
    """Form body (bytes) of an Alipay notification for trade, signed RSA2."""
    now = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    p = {"notify_time": now, "notify_type": "trade_status_sync",
         "notify_id": notify_id or secrets.token_hex(16), "app_id": ALIPAY_APP_ID,
         "auth_app_id": ALIPAY_APP_ID, "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
         "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
         "seller_id": ALIPAY_SELLER_ID, "trade_status": status,
         "total_amount": trade["total_amount"], "receipt_amount": trade["total_amount"],
         "buyer_pay_amount": trade["total_amount"], "invoice_amount": trade["total_amount"],
         "gmt_create": trade["gmt_create"], "gmt_payment": trade.get("gmt_payment") or now,
         "subject": trade.get("subject", ""), "buyer_id": "2088102116773037",
         "buyer_logon_id": "159****5620", "point_amount": "0.00",
         "fund_bill_list": json.dumps([{"amount": trade["total_amount"], "fundChannel": "ALIPAYACCOUNT"}],
                                      separators=(",", ":")),
         "passback_params": ""}
    p.update(extra or {})
    p["sign"] = alipay_sign(key, p)
    return urllib.parse.urlencode(p).encode()


# Seconds added to the timestamp of WeChat Pay answers (POST /sim/answer-skew):
# a stale but correctly signed answer, which payments must refuse.
ANSWER_SKEW = [0]


def wechat_sign_headers(key, body, skew=0):
    ts, nonce = str(int(time.time()) + skew), secrets.token_hex(16)
    msg = f"{ts}\n{nonce}\n".encode() + body + b"\n"
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(key.sign(msg)).decode(),
            "Wechatpay-Serial": PLATFORM_SERIAL,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def wechat_transaction(trade, state="SUCCESS"):
    return {"appid": WECHAT_APPID, "mchid": WECHAT_MCHID, "out_trade_no": trade["out_trade_no"],
            "transaction_id": trade["trade_no"], "trade_type": "NATIVE", "trade_state": state,
            "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
            "success_time": trade.get("success_time") or
            datetime.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": trade["total"], "payer_total": trade["total"],
                       "currency": "CNY", "payer_currency": "CNY"}}


def wechat_notification(platform_key, apiv3_key, transaction, event_id=None):
    """(headers, body bytes) of a WeChat Pay v3 notification."""
    nonce = secrets.token_hex(6)  # 12 characters
    plain = json.dumps(transaction, ensure_ascii=False, separators=(",", ":")).encode()
    ct = ossl.aes256gcm_encrypt(apiv3_key.encode(), nonce.encode(), b"transaction", plain)
    body = json.dumps({
        "id": event_id or str(uuid.uuid4()),
        "create_time": datetime.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ct).decode(),
                     "associated_data": "transaction", "nonce": nonce}},
        ensure_ascii=False, separators=(",", ":")).encode()
    return wechat_sign_headers(platform_key, body), body


def fen_to_yuan(fen):
    return f"{fen // 100}.{fen % 100:02d}"


# ---- the simulator ----------------------------------------------------------

class Sim:
    def __init__(self, d, port, time_scale):
        self.paths = make_keys(d)
        self.port = port
        self.scale = time_scale
        self.alipay_merchant = ossl.Key.load(self.paths["alipay_merchant_pub"])
        self.alipay = ossl.Key.load(self.paths["alipay_key"])
        self.wechat_merchant = ossl.Key.load(self.paths["wechat_merchant_pub"])
        self.platform = ossl.Key.load(self.paths["wechat_platform_key"])
        self.apiv3 = open(self.paths["wechat_apiv3_key"]).read().strip()
        self.trades = {}   # out_trade_no -> dict
        self.refunds = {}  # out_refund_no -> dict
        self.bill_files = {}  # (channel, date) -> path of a bill to serve
        self.downloads = {}   # token -> (channel, date)
        self.scheme = "http"
        self.lock = threading.Lock()
        self.log = open(os.path.join(d, "paysim.log"), "a", buffering=1)

    def say(self, msg):
        self.log.write(f"{datetime.datetime.now().isoformat()} {msg}\n")

    # -- trades
    def new_trade(self, channel, out_trade_no, total, notify_url, subject):
        with self.lock:
            t = self.trades.get(out_trade_no)
            if t is None:
                now = datetime.datetime.now(SHANGHAI)
                t = {"channel": channel, "out_trade_no": out_trade_no, "total": total,
                     "total_amount": fen_to_yuan(total), "notify_url": notify_url,
                     "subject": subject, "status": "WAIT_BUYER_PAY",
                     "trade_no": (now.strftime("%Y%m%d") + "22001" + secrets.token_hex(8)[:15]
                                  if channel == "alipay" else "4200" + secrets.randbelow(10**24).__str__().zfill(24)),
                     "gmt_create": now.strftime("%Y-%m-%d %H:%M:%S"), "notifications": 0,
                     "answered": 0}
                self.trades[out_trade_no] = t
            return t

    def pay(self, out_trade_no, notify=True, duplicates=0, delay=0.0):
        with self.lock:
            t = self.trades.get(out_trade_no)
            if t is None:
                return None
            if t["status"] == "WAIT_BUYER_PAY":
                now = datetime.datetime.now(SHANGHAI)
                t["status"] = "TRADE_SUCCESS"
                t["paid_at"] = now
                t["gmt_payment"] = now.strftime("%Y-%m-%d %H:%M:%S")
                t["success_time"] = now.isoformat(timespec="seconds")
        if notify:
            threading.Thread(target=self.deliver, args=(t, duplicates, delay), daemon=True).start()
        return t

    def deliver(self, t, duplicates, delay):
        """Sends the notification until answered, then `duplicates` more copies."""
        time.sleep(delay)
        schedule = ALIPAY_RETRIES if t["channel"] == "alipay" else WECHAT_RETRIES
        notify_id = secrets.token_hex(16)
        event_id = str(uuid.uuid4())
        attempt = 0
        while True:
            ok = self.notify_once(t, notify_id, event_id)
            if ok:
                break
            if attempt >= len(schedule):
                self.say(f"notify gave up trade={t['out_trade_no']}")
                return
            time.sleep(schedule[attempt] * self.scale)
            attempt += 1
        for _ in range(duplicates):
            time.sleep(0.05)
            self.notify_once(t, notify_id, event_id)

    def notify_once(self, t, notify_id, event_id):
        if t["channel"] == "alipay":
            body = alipay_notification(self.alipay, t, "TRADE_SUCCESS", notify_id)
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        else:
            headers, body = wechat_notification(self.platform, self.apiv3, wechat_transaction(t), event_id)
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(t["notify_url"], data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        except OSError as e:
            status, answer = 0, str(e).encode()
        with self.lock:
            t["notifications"] += 1
        ok = (answer == b"success") if t["channel"] == "alipay" else 200 <= status < 300
        if ok:
            with self.lock:
                t["answered"] += 1
        self.say(f"notify trade={t['out_trade_no']} status={status} ok={ok}")
        return ok

    def refund(self, out_trade_no, out_refund_no, amount):
        with self.lock:
            t = self.trades.get(out_trade_no)
            if t is None or t["status"] not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return None, "TRADE_STATUS_ERROR"
            r = self.refunds.get(out_refund_no)
            if r is not None:
                return r, None  # idempotent on the refund number
            done = sum(x["amount"] for x in self.refunds.values() if x["out_trade_no"] == out_trade_no)
            if amount <= 0 or done + amount > t["total"]:
                return None, "REFUND_AMT_RESTRICTION"
            r = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "amount": amount,
                 "refund_id": "5030" + str(secrets.randbelow(10**25)).zfill(25),
                 "at": datetime.datetime.now(SHANGHAI), "trade_no": t["trade_no"]}
            self.refunds[out_refund_no] = r
            if done + amount == t["total"] and t["channel"] == "alipay":
                t["status"] = "TRADE_CLOSED"
            return r, None

    # -- bills
    def bill_url(self, channel, date):
        """The download URL of a bill, or None when there is none (yet)."""
        try:
            day = datetime.date.fromisoformat(date)
        except ValueError:
            return None
        if day > datetime.datetime.now(SHANGHAI).date():
            return None
        token = secrets.token_hex(12)
        with self.lock:
            self.downloads[token] = (channel, date)
        return f"{self.scheme}://127.0.0.1:{self.port}/sim/download/{token}?sign={secrets.token_hex(8)}"

    def bill_chunks(self, channel, date):
        """The bill's bytes in pieces (a registered file is read 256 KiB at
        a time) and its content type."""
        path, cut_at = self.bill_files.get((channel, date), (None, None))
        ctype = "text/csv; charset=GBK" if channel == "alipay" else "text/csv; charset=utf-8"
        if path is None:
            body, ctype = self.bill(channel, date)
            return [body], len(body), ctype, None

        def read():
            with open(path, "rb") as f:
                while True:
                    piece = f.read(256 * 1024)
                    if not piece:
                        return
                    yield piece
        return read(), os.path.getsize(path), ctype, cut_at

    def bill(self, channel, date):
        day = datetime.date.fromisoformat(date)
        with self.lock:
            pays = [t for t in self.trades.values() if t["channel"] == channel and
                    t.get("paid_at") and t["paid_at"].date() == day]
            refs = [r for r in self.refunds.values()
                    if self.trades[r["out_trade_no"]]["channel"] == channel and r["at"].date() == day]
        if channel == "alipay":
            return self.alipay_bill(day, pays, refs)
        return self.wechat_bill(pays, refs)

    def alipay_bill(self, day, pays, refs):
        header = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
                  "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
                  "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
        nxt = day + datetime.timedelta(days=1)
        lines = ["#支付宝业务明细查询", f"#账号：[{ALIPAY_SELLER_ID}0156]",
                 f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{nxt:%Y年%m月%d日} 00:00:00]",
                 "#-----------------------------------------业务明细列表----------------------------------------",
                 header]

        def row(cells):
            return ",".join(c + "\t" for c in cells)
        total = 0
        for t in pays:
            fee = -(t["total"] * 6 // 1000)
            total += t["total"]
            lines.append(row([t["trade_no"], t["out_trade_no"], "交易", t["subject"], t["gmt_create"],
                              t["gmt_payment"], "", "", "", "", "buyer@example.com",
                              t["total_amount"], t["total_amount"], "0.00", "0.00", "0.00", "0.00",
                              "0.00", "", "0.00", "0.00", "", "-" + fen_to_yuan(-fee), "0.00", ""]))
        rtotal = 0
        for r in refs:
            t = self.trades[r["out_trade_no"]]
            rtotal += r["amount"]
            lines.append(row([t["trade_no"], t["out_trade_no"], "退款", t["subject"], t["gmt_create"],
                              r["at"].strftime("%Y-%m-%d %H:%M:%S"), "", "", "", "", "buyer@example.com",
                              "-" + fen_to_yuan(r["amount"]), "-" + fen_to_yuan(r["amount"]),
                              "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00",
                              r["out_refund_no"], "0.00", "0.00", ""]))
        lines += ["#-----------------------------------------业务明细列表结束------------------------------------",
                  f"#交易合计：{len(pays)}笔，商家实收：{fen_to_yuan(total)}元，商家优惠：0.00元",
                  f"#退款合计：{len(refs)}笔，商家实收：-{fen_to_yuan(rtotal)}元，商家优惠：0.00元",
                  f"#导出时间：[{datetime.datetime.now(SHANGHAI):%Y年%m月%d日 %H:%M:%S}]"]
        return ("\r\n".join(lines) + "\r\n").encode("gbk"), "text/csv; charset=GBK"

    def wechat_bill(self, pays, refs):
        header = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                  "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                  "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
        lines = [header]

        def row(cells):
            return ",".join("`" + c for c in cells)
        total = rtotal = fees = 0
        for t in pays:
            fee = t["total"] * 6 // 1000
            total += t["total"]
            fees += fee
            lines.append(row([t["paid_at"].strftime("%Y-%m-%d %H:%M:%S"), WECHAT_APPID, WECHAT_MCHID, "0", "",
                              t["trade_no"], t["out_trade_no"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE",
                              "SUCCESS", "OTHERS", "CNY", fen_to_yuan(t["total"]), "0.00", "0", "0",
                              "0.00", "0.00", "", "", t["subject"], "", f"{fee / 100:.5f}", "0.60%",
                              fen_to_yuan(t["total"]), "0.00", ""]))
        for r in refs:
            t = self.trades[r["out_trade_no"]]
            rtotal += r["amount"]
            lines.append(row([r["at"].strftime("%Y-%m-%d %H:%M:%S"), WECHAT_APPID, WECHAT_MCHID, "0", "",
                              t["trade_no"], t["out_trade_no"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE",
                              "REFUND", "OTHERS", "CNY", "0.00", "0.00", r["refund_id"], r["out_refund_no"],
                              fen_to_yuan(r["amount"]), "0.00", "ORIGINAL", "SUCCESS", t["subject"], "",
                              "0.00000", "0.60%", "0.00", fen_to_yuan(r["amount"]), ""]))
        lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
        lines.append(row([str(len(pays) + len(refs)), fen_to_yuan(total), fen_to_yuan(rtotal), "0.00",
                          f"{fees / 100:.5f}", fen_to_yuan(total), fen_to_yuan(rtotal)]))
        return ("\r\n".join(lines) + "\r\n").encode(), "text/csv; charset=utf-8"


def make_handler(sim):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sim.say("http " + (fmt % args))

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def send(self, status, body, ctype="application/json", headers=None):
            if isinstance(body, str):
                body = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status, obj):
            self.send(status, json.dumps(obj, ensure_ascii=False))

        # -- WeChat Pay: every answer signed like a notification
        def wechat_answer(self, status, obj):
            body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() if obj is not None else b""
            self.send(status, body, headers=wechat_sign_headers(sim.platform, body, ANSWER_SKEW[0]))

        def wechat_authorized(self, body):
            auth = self.headers.get("Authorization") or ""
            if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
                return False
            fields = {}
            for part in auth[len("WECHATPAY2-SHA256-RSA2048 "):].split(","):
                k, _, v = part.strip().partition("=")
                fields[k] = v.strip('"')
            if fields.get("mchid") != WECHAT_MCHID or fields.get("serial_no") != WECHAT_MERCHANT_SERIAL:
                return False
            if abs(time.time() - int(fields.get("timestamp", "0") or 0)) >= 300:
                return False
            msg = (f"{self.command}\n{self.path}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n".encode()
                   + body + b"\n")
            try:
                sig = base64.b64decode(fields.get("signature", ""), validate=True)
            except ValueError:
                return False
            return sim.wechat_merchant.verify(msg, sig)

        # -- Alipay: answers carry "sign" over the raw <method>_response text
        def alipay_answer(self, method, obj):
            key = method.replace(".", "_") + "_response"
            content = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            sign = base64.b64encode(sim.alipay.sign(content.encode())).decode()
            self.send(200, '{"' + key + '":' + content + ',"sign":"' + sign + '"}',
                      "application/json;charset=utf-8")

        def do_GET(self):
            path, _, query = self.path.partition("?")
            parts = path.strip("/").split("/")
            if path.startswith("/v3/pay/transactions/out-trade-no/"):
                if not self.wechat_authorized(b""):
                    return self.wechat_answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
                t = sim.trades.get(urllib.parse.unquote(parts[-1]))
                if t is None or t["channel"] != "wechat":
                    return self.wechat_answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
                state = "SUCCESS" if t["status"] in ("TRADE_SUCCESS", "TRADE_FINISHED") else "NOTPAY"
                tx = wechat_transaction(t, state)
                if state != "SUCCESS":
                    tx.pop("success_time")
                    tx.pop("transaction_id")
                return self.wechat_answer(200, tx)
            if path == "/v3/bill/tradebill":
                if not self.wechat_authorized(b""):
                    return self.wechat_answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
                q = dict(urllib.parse.parse_qsl(query))
                url = sim.bill_url("wechat", q.get("bill_date", ""))
                if url is None:
                    return self.wechat_answer(400, {"code": "NO_STATEMENT_EXIST", "message": "账单不存在"})
                return self.wechat_answer(200, {"hash_type": "SHA1", "hash_value": "", "download_url": url})
            if len(parts) == 3 and parts[:2] == ["sim", "download"]:
                got = sim.downloads.get(parts[2])
                if got is None:
                    return self.send_json(404, {"error": "no such download"})
                if got[0] == "wechat" and not self.wechat_authorized(b""):
                    return self.wechat_answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
                chunks, size, ctype, cut_at = sim.bill_chunks(*got)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                sent = 0
                for piece in chunks:
                    if cut_at is not None and sent + len(piece) > cut_at:
                        self.wfile.write(piece[:cut_at - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(piece)
                    sent += len(piece)
                return
            if len(parts) == 4 and parts[:2] == ["sim", "bills"]:
                body, ctype = sim.bill(parts[2], parts[3])
                return self.send(200, body, ctype)
            if len(parts) == 3 and parts[:2] == ["sim", "trades"]:
                t = sim.trades.get(parts[2])
                if t is None:
                    return self.send_json(404, {"error": "no such trade"})
                return self.send_json(200, {k: (v.isoformat() if isinstance(v, datetime.datetime) else v)
                                            for k, v in t.items()})
            if len(parts) == 3 and parts[0] == "qr":
                t = sim.pay(parts[2])
                return self.send(200 if t else 404, "paid\n" if t else "no such trade\n", "text/plain")
            if path == "/healthz":
                return self.send_json(200, {"status": "ok"})
            return self.send_json(404, {"error": "not found"})

        def do_POST(self):
            body = self.body()
            path = self.path.partition("?")[0]
            if path == "/gateway.do":
                return self.alipay_gateway(body)
            if path == "/v3/pay/transactions/native":
                if not self.wechat_authorized(body):
                    return self.wechat_answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
                req = json.loads(body)
                if req.get("mchid") != WECHAT_MCHID or req.get("appid") != WECHAT_APPID:
                    return self.wechat_answer(400, {"code": "PARAM_ERROR", "message": "商户号或应用ID不正确"})
                t = sim.new_trade("wechat", req["out_trade_no"], req["amount"]["total"],
                                  req["notify_url"], req.get("description", ""))
                return self.wechat_answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={t['out_trade_no'][:12]}"
                                                            f"&sim=http://127.0.0.1:{sim.port}/qr/wechat/{t['out_trade_no']}"})
            if path == "/v3/refund/domestic/refunds":
                if not self.wechat_authorized(body):
                    return self.wechat_answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
                req = json.loads(body)
                r, err = sim.refund(req["out_trade_no"], req["out_refund_no"], req["amount"]["refund"])
                if r is None:
                    return self.wechat_answer(400, {"code": err, "message": "退款失败"})
                return self.wechat_answer(200, {"refund_id": r["refund_id"], "out_refund_no": r["out_refund_no"],
                                                "transaction_id": r["trade_no"], "out_trade_no": r["out_trade_no"],
                                                "status": "SUCCESS", "amount": {"refund": r["amount"]}})
            if path == "/sim/bill-file":
                req = json.loads(body or b"{}")
                sim.bill_files[(req["channel"], req["date"])] = (req["path"], req.get("cut_at"))
                return self.send_json(200, {"ok": True})
            if path == "/sim/answer-skew":
                ANSWER_SKEW[0] = int(json.loads(body or b"{}").get("seconds", 0))
                return self.send_json(200, {"seconds": ANSWER_SKEW[0]})
            if path == "/sim/pay":
                req = json.loads(body or b"{}")
                t = sim.pay(req["out_trade_no"], req.get("notify", True), int(req.get("duplicates", 0)),
                            float(req.get("delay", 0)))
                return self.send_json(200 if t else 404, {"paid": bool(t)})
            return self.send_json(404, {"error": "not found"})

        def alipay_gateway(self, body):
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            method = params.get("method", "")
            sign = params.get("sign", "")
            try:
                sig = base64.b64decode(sign, validate=True)
            except ValueError:
                sig = b""
            if (params.get("sign_type") != "RSA2" or params.get("app_id") != ALIPAY_APP_ID or
                    not sim.alipay_merchant.verify(alipay_sign_content(params, False).encode(), sig)):
                return self.alipay_answer(method or "error", {
                    "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
                    "sub_msg": "验签出错"})
            biz = json.loads(params.get("biz_content") or "{}")
            no = biz.get("out_trade_no", "")
            if method == "alipay.trade.precreate":
                amount = biz.get("total_amount", "")
                yuan, _, cents = amount.partition(".")
                if not (yuan.isdigit() and len(cents) == 2 and cents.isdigit()):
                    return self.alipay_answer(method, {"code": "40004", "msg": "Business Failed",
                                                       "sub_code": "ACQ.INVALID_PARAMETER"})
                t = sim.new_trade("alipay", no, int(yuan) * 100 + int(cents), params.get("notify_url", ""),
                                  biz.get("subject", ""))
                return self.alipay_answer(method, {"code": "10000", "msg": "Success", "out_trade_no": no,
                                                   "qr_code": f"http://127.0.0.1:{sim.port}/qr/alipay/{no}"})
            if method == "alipay.trade.query":
                t = sim.trades.get(no)
                if t is None or t["channel"] != "alipay":
                    return self.alipay_answer(method, {"code": "40004", "msg": "Business Failed",
                                                       "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"})
                a = {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": t["trade_no"],
                     "trade_status": t["status"], "total_amount": t["total_amount"]}
                if t.get("gmt_payment"):
                    a["send_pay_date"] = t["gmt_payment"]
                return self.alipay_answer(method, a)
            if method == "alipay.trade.refund":
                amount = biz.get("refund_amount", "0.00")
                yuan, _, cents = amount.partition(".")
                r, err = sim.refund(no, biz.get("out_request_no", ""), int(yuan) * 100 + int(cents or 0))
                if r is None:
                    return self.alipay_answer(method, {"code": "40004", "msg": "Business Failed",
                                                       "sub_code": "ACQ." + err})
                return self.alipay_answer(method, {"code": "10000", "msg": "Success", "trade_no": r["trade_no"],
                                                   "out_trade_no": no, "fund_change": "Y",
                                                   "refund_fee": fen_to_yuan(r["amount"])})
            if method == "alipay.data.dataservice.bill.downloadurl.query":
                url = sim.bill_url("alipay", biz.get("bill_date", "")) if biz.get("bill_type") == "trade" else None
                if url is None:
                    return self.alipay_answer(method, {"code": "40004", "msg": "Business Failed",
                                                       "sub_code": "isp.bill_not_exist", "sub_msg": "账单不存在"})
                return self.alipay_answer(method, {"code": "10000", "msg": "Success", "bill_download_url": url})
            return self.alipay_answer(method or "error", {"code": "40004", "msg": "Business Failed",
                                                          "sub_code": "isv.invalid-method"})
    return H


def watchdog(pidfile, base):
    """Exits when the payments service has been gone for 20 s (or its
    suite directory vanished): the suite stops services, not paysim."""
    gone_since = None
    while True:
        time.sleep(1)
        alive = False
        try:
            pid = int(open(pidfile).read().strip())
            os.kill(pid, 0)
            alive = True
        except (OSError, ValueError):
            pass
        if not os.path.isdir(base):
            os._exit(0)
        if alive:
            gone_since = None
        elif gone_since is None:
            gone_since = time.time()
        elif time.time() - gone_since > 20:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiplies the providers' retry intervals (0.001 in tests)")
    ap.add_argument("--watch-pidfile", default=None)
    ap.add_argument("--tls-cert", default=None, help="serve TLS with this certificate (and --tls-key)")
    ap.add_argument("--tls-key", default=None)
    ap.add_argument("cmd", nargs="?", default="serve")
    args = ap.parse_args()
    if args.cmd == "keys":
        make_keys(args.dir)
        return
    sim = Sim(args.dir, args.port, args.time_scale)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(sim))
    srv.daemon_threads = True
    if args.tls_cert:
        sim.scheme = "https"
        import tlspki
        tlspki.serve_tls(srv, args.tls_cert, args.tls_key)
    if args.watch_pidfile:
        threading.Thread(target=watchdog, args=(args.watch_pidfile, args.dir), daemon=True).start()
    sim.say(f"listening port={args.port}")
    srv.serve_forever()


if __name__ == "__main__":
    main()
