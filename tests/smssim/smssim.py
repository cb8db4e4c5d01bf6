#!/usr/bin/env python3
"""smssim — Alibaba Cloud SMS (dysmsapi 2017-05-25 SendSms) for the tests:
checks each request as the provider does and keeps what it "sent".

  POST /           the RPC call, parameters form-encoded in the body (or the
                   query): AccessKeyId, Action=SendSms, Format, PhoneNumbers,
                   RegionId, SignName, SignatureMethod=HMAC-SHA1,
                   SignatureNonce (unique), SignatureVersion=1.0,
                   TemplateCode, TemplateParam (JSON), Timestamp (UTC, within
                   15 minutes), Version=2017-05-25, OutId, Signature.
                   The signature is recomputed exactly: Base64(HMAC-SHA1(
                   secret + "&", "POST&%2F&" + enc(sorted enc(k)=enc(v) joined
                   by "&"))), enc = RFC 3986 percent-encoding.
                   → {"Code": "OK", "BizId", "RequestId", "Message"} or
                   {"Code": <error>, "Message", "RequestId"}:
                   InvalidAccessKeyId.NotFound (404), SignatureDoesNotMatch
                   (400), SignatureNonceUsed (400), isv.SMS_SIGNATURE_ILLEGAL,
                   isv.SMS_TEMPLATE_ILLEGAL, isv.TEMPLATE_MISSING_PARAMETERS,
                   isv.MOBILE_NUMBER_ILLEGAL, isv.BUSINESS_LIMIT_CONTROL.
                   A repeated OutId answers the first BizId and sends nothing
                   more (the idempotency the sender relies on).
  POST /control    {"fail": N, "fail_code": "isv.SMS_TEMPLATE_ILLEGAL",
                   "throttle": N, "delay": S, "delay_count": N}
                   the next N calls fail with fail_code (default
                   isp.SYSTEM_ERROR, HTTP 500) / are throttled
                   (isv.BUSINESS_LIMIT_CONTROL); the next delay_count calls
                   are answered after S seconds (the message is sent first,
                   as a real provider would while the caller times out)
  GET  /stats      {"sent": [{out_id, phone, template, params, text, biz_id}],
                   "calls": N, "refused": {code: n}}

  python3 tests/smssim/smssim.py --port P --key-id ID --secret S --sign NAME
      --templates 'SMS_1=您的验证码为${code}|SMS_2=${title}：${text}'
      [--tls-cert C --tls-key K]
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid


def enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def signature(params, secret, method="POST"):
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    sts = f"{method}&{enc('/')}&{enc(canonical)}"
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


class Sim:
    def __init__(self, key_id, secret, sign, templates):
        self.key_id, self.secret, self.sign, self.templates = key_id, secret, sign, templates
        self.lock = threading.Lock()
        self.sent = []
        self.by_out_id = {}
        self.nonces = set()
        self.calls = 0
        self.refused = {}
        self.fail = 0
        self.fail_code = "isp.SYSTEM_ERROR"
        self.throttle = 0
        self.delay = 0.0
        self.delay_count = 0

    def handle(self, params):
        """→ (http status, answer dict, delay seconds)."""
        rid = str(uuid.uuid4()).upper()
        with self.lock:
            self.calls += 1
            if params.get("AccessKeyId") != self.key_id:
                return self.refuse(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", rid)
            given = params.pop("Signature", "")
            if not hmac.compare_digest(given, signature(params, self.secret)):
                return self.refuse(400, "SignatureDoesNotMatch",
                                   "Specified signature is not matched with our calculation.", rid)
            for k, v in (("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"),
                         ("Action", "SendSms"), ("Version", "2017-05-25")):
                if params.get(k) != v:
                    return self.refuse(400, "InvalidParameter", f"{k} is invalid.", rid)
            try:
                ts = datetime.datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
                ts = ts.replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                return self.refuse(400, "InvalidTimeStamp.Format", "Timestamp is invalid.", rid)
            if abs((datetime.datetime.now(datetime.timezone.utc) - ts).total_seconds()) > 900:
                return self.refuse(400, "InvalidTimeStamp.Expired", "Timestamp is expired.", rid)
            nonce = params.get("SignatureNonce", "")
            if not nonce or nonce in self.nonces:
                return self.refuse(400, "SignatureNonceUsed", "Specified signature nonce was used already.", rid)
            self.nonces.add(nonce)
            out_id = params.get("OutId")
            if out_id and out_id in self.by_out_id:
                prev = self.by_out_id[out_id]
                return 200, {"Code": "OK", "Message": "OK", "BizId": prev["biz_id"], "RequestId": rid}, 0
            if self.fail > 0:
                self.fail -= 1
                status = 500 if self.fail_code.startswith("isp.") else 200
                return self.refuse(status, self.fail_code, "injected failure", rid)
            if self.throttle > 0:
                self.throttle -= 1
                return self.refuse(200, "isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", rid)
            if params.get("SignName") != self.sign:
                return self.refuse(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名", rid)
            phone = params.get("PhoneNumbers", "")
            if not re.fullmatch(r"1[3-9][0-9]{9}", phone):
                return self.refuse(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", rid)
            template = self.templates.get(params.get("TemplateCode"))
            if template is None:
                return self.refuse(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板", rid)
            try:
                tp = json.loads(params.get("TemplateParam") or "{}")
                assert isinstance(tp, dict)
            except (ValueError, AssertionError):
                return self.refuse(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法", rid)
            names = re.findall(r"\$\{(\w+)\}", template)
            if any(n not in tp for n in names):
                return self.refuse(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值", rid)
            text = f"【{self.sign}】" + re.sub(r"\$\{(\w+)\}", lambda m: str(tp[m.group(1)]), template)
            biz = f"{int(time.time() * 1000)}^{len(self.sent) + 1}"
            rec = {"out_id": out_id, "phone": phone, "template": params["TemplateCode"],
                   "params": tp, "text": text, "biz_id": biz}
            self.sent.append(rec)
            if out_id:
                self.by_out_id[out_id] = rec
            delay = 0
            if self.delay_count > 0:
                self.delay_count -= 1
                delay = self.delay
            return 200, {"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": rid}, delay

    def refuse(self, status, code, message, rid):
        self.refused[code] = self.refused.get(code, 0) + 1
        return status, {"Code": code, "Message": message, "RequestId": rid}, 0


class Handler(http.server.BaseHTTPRequestHandler):
    sim = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("smssim: " + (fmt % args) + "\n")

    def reply(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/stats":
            with self.sim.lock:
                return self.reply(200, {"sent": list(self.sim.sent), "calls": self.sim.calls,
                                        "refused": dict(self.sim.refused)})
        self.reply(404, {"Code": "NotFound"})

    def do_POST(self):
        raw = self.body()
        if self.path == "/control":
            kw = json.loads(raw or b"{}")
            with self.sim.lock:
                for k in ("fail", "fail_code", "throttle", "delay", "delay_count"):
                    if k in kw:
                        setattr(self.sim, k, kw[k])
                if kw.get("reset"):
                    self.sim.sent.clear()
                    self.sim.by_out_id.clear()
                    self.sim.refused.clear()
            return self.reply(200, {"ok": True})
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        params.update(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        status, answer, delay = self.sim.handle(params)
        if delay:
            time.sleep(delay)
        self.reply(status, answer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key-id", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--sign", required=True)
    ap.add_argument("--templates", required=True, help="CODE=text|CODE=text")
    ap.add_argument("--tls-cert", default=None)
    ap.add_argument("--tls-key", default=None)
    args = ap.parse_args()
    templates = dict(t.split("=", 1) for t in args.templates.split("|"))
    Handler.sim = Sim(args.key_id, args.secret, args.sign, templates)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    if args.tls_cert:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "paysim"))
        import tlspki
        tlspki.serve_tls(srv, args.tls_cert, args.tls_key)
    print(f"smssim on 127.0.0.1:{args.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
