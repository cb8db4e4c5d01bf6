#!/usr/bin/env python3
"""taxsim — a 数电票 (fully digitalised e-invoice) tax platform on loopback,
for tests: the API payments' taxplat.c speaks, over HTTPS (the suite's test
PKI, tests/paysim/tlspki.py; plain HTTP still answered for the tests'
control calls: the first byte of a connection decides).

  POST /v1/invoices           issue a blue invoice
  POST /v1/invoices/red       red-reverse (红字) an issued blue one
  GET  /v1/requests/{id}      what became of a request (404: never seen)
  GET  /v1/invoices/{no}/pdf  the invoice file: a real (minimal) PDF

Every call needs `Authorization: Bearer <key>` (--key-file). The request id
is the deduplication key: the same request id answers the same invoice,
never a second one (GET /sim/requests counts the issuances per request).
Each line's tax must follow DOMAIN.md §5 (round_half_up(gross × r/(1+r)))
and the totals must be the lines' sums, else E2001. Answers: 200
{"code":"0000","data":{"invoice_number" (20 digits),"issue_date","check_code"}},
refusals 200 {"code":"E…","message":"…"}.

Test control (plain HTTP):
  POST /sim/config {"delay_ms": n, "refuse": [{"title"|"taxpayer_id": v,
       "code": c, "message": m}], "unavailable": n (503 for the next n calls),
       "drop": n (issue, then close the next n connections without an answer)}
  GET  /sim/requests          {request_id: issuances}
  GET  /sim/invoices/{no}     the invoice as issued (lines, amounts)

  taxsim.py --port PORT --key-file F [--tls-cert C --tls-key K] [--watch-pidfile P --dir D]
"""
import argparse
import datetime
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paysim"))

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def vat(gross, rate_bp):
    """DOMAIN.md §5, integers only: round_half_up(g·bp/(10000+bp))."""
    if gross < 0:
        return -vat(-gross, rate_bp)
    num, den = gross * rate_bp, 10000 + rate_bp
    return (2 * num + den) // (2 * den)


def pdf_escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines):
    """A minimal valid PDF 1.4 (one page, Helvetica, ASCII text lines) with
    a correct cross-reference table."""
    text = ["BT", "/F1 11 Tf", "50 800 Td", "14 TL"]
    for ln in lines:
        text.append(f"({pdf_escape(ln)}) Tj T*")
    text.append("ET")
    stream = "\n".join(text).encode("latin-1", "replace")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class Sim:
    def __init__(self, key):
        self.key = key
        self.lock = threading.Lock()
        self.requests = {}   # request_id -> answer data
        self.issuances = {}  # request_id -> times issued (must stay 1)
        self.invoices = {}   # number -> record
        self.seq = random.randrange(10 ** 6)
        self.config = {"delay_ms": 0, "refuse": [], "unavailable": 0, "drop": 0}

    def number(self):
        self.seq += 1
        yy = datetime.datetime.now(SHANGHAI).strftime("%y")
        return f"{yy}21{self.seq:016d}"

    def refusal(self, req):
        buyer = req.get("buyer") or {}
        for rule in self.config["refuse"]:
            if ("title" in rule and rule["title"] == buyer.get("name")) or \
               ("taxpayer_id" in rule and rule["taxpayer_id"] == buyer.get("taxpayer_id")):
                return rule.get("code", "E1001"), rule.get("message", "购买方信息校验未通过")
        lines = req.get("lines") or []
        if not lines:
            return "E2000", "缺少发票明细"
        for ln in lines:
            if ln.get("tax_fen") != vat(ln["amount_fen"], ln["rate_bp"]) or \
               ln.get("net_fen") != ln["amount_fen"] - ln["tax_fen"]:
                return "E2001", "税额计算不符（明细）"
        if req.get("total_fen") != sum(ln["amount_fen"] for ln in lines) or \
           req.get("tax_fen") != sum(ln["tax_fen"] for ln in lines):
            return "E2001", "税额计算不符（合计）"
        return None

    def issue(self, req, red):
        """Returns (answer dict, drop?)."""
        rid = req.get("request_id")
        if not rid:
            return {"code": "E0001", "message": "缺少请求流水号"}, False
        with self.lock:
            if rid in self.requests:
                return {"code": "0000", "data": self.requests[rid]}, self.take("drop")
            refused = self.refusal(req)
            if refused is None and red:
                orig = self.invoices.get(req.get("original_number") or "")
                if orig is None or orig["red"]:
                    refused = ("E3001", "原蓝字发票不存在")
                elif req["total_fen"] >= 0 or orig["reversed_fen"] - req["total_fen"] > orig["total_fen"]:
                    refused = ("E3002", "红冲金额超过原发票可冲红金额")
            if refused is not None:
                return {"code": refused[0], "message": refused[1]}, False
            number = self.number()
            now = datetime.datetime.now(SHANGHAI)
            data = {"invoice_number": number, "issue_date": now.strftime("%Y-%m-%d"),
                    "check_code": "".join(random.choice("0123456789") for _ in range(20))}
            rec = dict(req, red=red, number=number, reversed_fen=0, **data)
            if red:
                self.invoices[req["original_number"]]["reversed_fen"] -= req["total_fen"]
            self.invoices[number] = rec
            self.requests[rid] = data
            self.issuances[rid] = self.issuances.get(rid, 0) + 1
            return {"code": "0000", "data": data}, self.take("drop")

    def take(self, what):
        if self.config.get(what, 0) > 0:
            self.config[what] -= 1
            return True
        return False

    def pdf(self, number):
        rec = self.invoices.get(number)
        if rec is None:
            return None
        buyer = rec.get("buyer") or {}
        lines = [("RED-LETTER " if rec["red"] else "") + "ELECTRONIC INVOICE (SHUDIANPIAO)",
                 f"Invoice number: {number}", f"Issue date: {rec['issue_date']}",
                 f"Check code: {rec['check_code']}",
                 f"Buyer taxpayer id: {buyer.get('taxpayer_id') or '-'}"]
        if rec["red"]:
            lines.append(f"Reverses: {rec.get('original_number')}")
        for ln in rec["lines"]:
            lines.append(f"Line: amount {ln['amount_fen']} fen, tax {ln['tax_fen']} fen, net {ln['net_fen']} fen")
        lines.append(f"Total: {rec['total_fen']} fen, tax {rec['tax_fen']} fen")
        return make_pdf(lines)


def make_handler(sim):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def send(self, status, body, ctype="application/json"):
            if isinstance(body, (dict, list)):
                body = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def authorized(self):
            if self.headers.get("Authorization") != f"Bearer {sim.key}":
                self.send(401, {"code": "E0401", "message": "身份认证失败"})
                return False
            return True

        def api_wait(self):
            """The configured delay and unavailability; False when answered."""
            delay = sim.config.get("delay_ms", 0)
            if delay:
                time.sleep(delay / 1000)
            with sim.lock:
                if sim.take("unavailable"):
                    self.send(503, {"code": "E0503", "message": "系统繁忙"})
                    return False
            return True

        def do_GET(self):
            p = self.path.split("?")[0]
            if p == "/sim/requests":
                with sim.lock:
                    return self.send(200, dict(sim.issuances))
            if p.startswith("/sim/invoices/"):
                rec = sim.invoices.get(p.rsplit("/", 1)[1])
                return self.send(200 if rec else 404, rec or {})
            if not self.authorized() or not self.api_wait():
                return
            if p.startswith("/v1/requests/"):
                data = sim.requests.get(p.rsplit("/", 1)[1])
                if data is None:
                    return self.send(404, {"code": "E0404", "message": "无此请求"})
                return self.send(200, {"code": "0000", "data": data})
            if p.startswith("/v1/invoices/") and p.endswith("/pdf"):
                pdf = sim.pdf(p.split("/")[3])
                if pdf is None:
                    return self.send(404, {"code": "E0404", "message": "无此发票"})
                return self.send(200, pdf, "application/pdf")
            self.send(404, {"code": "E0404", "message": "not found"})

        def do_POST(self):
            p = self.path.split("?")[0]
            raw = self.body()
            if p == "/sim/config":
                with sim.lock:
                    sim.config.update(json.loads(raw or b"{}"))
                return self.send(200, sim.config)
            if not self.authorized() or not self.api_wait():
                return
            if p not in ("/v1/invoices", "/v1/invoices/red"):
                return self.send(404, {"code": "E0404", "message": "not found"})
            try:
                req = json.loads(raw)
            except ValueError:
                return self.send(400, {"code": "E0400", "message": "请求不是 JSON"})
            answer, drop = sim.issue(req, p.endswith("/red"))
            if drop:  # issued, but the answer is lost on the way
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.send(200, answer)
    return H


def watchdog(pidfile, base):
    """Exits when the payments service has been gone for 20 s (or the suite
    directory vanished)."""
    gone_since = None
    while True:
        time.sleep(1)
        alive = False
        try:
            os.kill(int(open(pidfile).read().strip()), 0)
            alive = True
        except (OSError, ValueError):
            pass
        if base and not os.path.isdir(base):
            os._exit(0)
        if alive:
            gone_since = None
        elif gone_since is None:
            gone_since = time.time()
        elif time.time() - gone_since > 20:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--watch-pidfile")
    ap.add_argument("--dir")
    args = ap.parse_args()
    key = open(args.key_file).read().strip()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Sim(key)))
    srv.daemon_threads = True
    if args.tls_cert:
        import tlspki
        tlspki.serve_tls(srv, args.tls_cert, args.tls_key)
    if args.watch_pidfile:
        threading.Thread(target=watchdog, args=(args.watch_pidfile, args.dir), daemon=True).start()
    print(f"taxsim listening port={args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
