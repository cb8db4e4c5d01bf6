#!/usr/bin/env python3
"""vendor_sim — a vendor CA's HTTP API for issuance's remote adapter
(services/issuance/vendor_remote.c), with its own RSA and SM2 CAs made by the
test PKI's scripts (tests/ukey/ca.sh, issue.sh), that can be made slow or failing:

  POST /v1/certificates          {request_id, serial, csr, not_before, not_after}
  POST /v1/certificates/renew    {…, certificate}   → 201 {certificate, chain, serial}
  POST /v1/revocations           {request_id, serial, issuer, reason, revoked_at} → 200
  GET  /v1/directory?uscc=&since=&limit=
                                 the vendor's directory (issue 13): {items: [{certificate,
                                 holder, lock_kind, key_serial, key_vendor, applied_at,
                                 platforms, revoked_at, revocation_reason}], next_cursor,
                                 more} — the certificates of a USCC, or those issued or
                                 changed after the cursor (a sequence number: a change
                                 gives the entry the next one, so it is listed again)
  POST /control/issue            {holder, enterprise, uscc, lock_kind, key_serial, key_vendor,
                                 applied_at, platforms, days, alg} a first application at this
                                 vendor: a new key and certificate, entered in the directory
                                 → {certificate, key, serial}
  POST /control/change           {serial, holder?, lock_kind?, platforms?, key_serial?,
                                 key_vendor?, revoked_at?, revocation_reason?} the vendor
                                 changes a certificate it listed (its holder renamed, its
                                 key or associations changed, revoked at the vendor): the
                                 entry takes the given fields and the next sequence number
                                 → {seq}; 404 for a serial it never issued
  POST /control                  {"fail": N, "delay": S, "reject": bool}
                                 fail the next N certificate requests with 503; answer
                                 after S seconds (the certificate is issued and recorded
                                 first, as a real CA would while the caller times out);
                                 refuse every request with 422
  GET  /stats                    {"signed": {request_id: times signed}, "answers": {request_id:
                                 times answered}, "revocations": [...], "requests": N}

A repeated request_id answers the certificate issued the first time: the
idempotency the adapter relies on ("never issued twice"). Requests need
"Authorization: Bearer <token>" when --token is given.

  python3 tests/issuance/vendor_sim.py --dir DIR --port PORT [--token T]
"""
import argparse
import datetime
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

UKEY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ukey")


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


class Sim:
    def __init__(self, d, token):
        self.dir = d
        self.token = token
        self.lock = threading.Lock()        # state below
        self.sign_lock = threading.Lock()   # one openssl ca at a time
        self.ledger = {}                    # request_id -> answer dict
        self.inflight = {}                  # request_id -> threading.Event
        self.signed = {}
        self.answers = {}
        self.revocations = []
        self.directory = []                 # [{seq, uscc, certificate, …}]
        self.seq = 0                        # the directory's last sequence number
        self.requests = 0
        self.fail = 0
        self.delay = 0.0
        self.reject = False
        os.makedirs(d, exist_ok=True)
        for alg in ("rsa", "sm2"):
            self.make_ca(alg)

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, alg):
        """Its root and issuing CA, made by the test PKI's tests/ukey/ca.sh."""
        if os.path.exists(self.path(f"{alg}-ca.cert.pem")):
            return
        up = alg.upper()
        run("bash", os.path.join(UKEY, "ca.sh"), self.dir, f"{alg}-root", alg,
            f"/C=CN/O=SIMCA/CN=SIMCA {up} Root")
        run("bash", os.path.join(UKEY, "ca.sh"), self.dir, f"{alg}-ca", alg,
            f"/C=CN/O=SIMCA/CN=SIMCA {up} CA", f"{alg}-root")
        with open(self.path("roots.pem"), "a") as f:
            f.write(open(self.path(f"{alg}-root.cert.pem")).read())
            f.write(open(self.path(f"{alg}-ca.cert.pem")).read())

    def issue(self, body):
        """Signs the CSR with the reserved serial and validity
        (tests/ukey/issue.sh); returns the answer dict."""
        with self.sign_lock, tempfile.TemporaryDirectory(dir=self.dir) as db:
            csr = os.path.join(db, "req.csr")
            with open(csr, "w") as f:
                f.write(body["csr"])
            text = run("openssl", "req", "-in", csr, "-noout", "-text")
            alg = "sm2" if "SM2" in text else "rsa"

            def asn1(t):
                return datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").strftime("%Y%m%d%H%M%SZ")
            run("bash", os.path.join(UKEY, "issue.sh"), "--csr", csr, "--serial", body["serial"],
                "--from", asn1(body["not_before"]), "--until", asn1(body["not_after"]),
                "--out", db, self.dir, "leaf", alg)
            return {"certificate": open(os.path.join(db, "leaf.cert.pem")).read(),
                    "chain": [open(self.path(f"{alg}-ca.cert.pem")).read(),
                              open(self.path(f"{alg}-root.cert.pem")).read()],
                    "serial": body["serial"]}


    def first_application(self, body):
        """A new key and certificate under this vendor's CA, in the directory."""
        alg = body.get("alg", "rsa")
        kind = body.get("lock_kind", "agent")
        uscc = body.get("uscc") or ""
        with self.sign_lock, tempfile.TemporaryDirectory(dir=self.dir) as out:
            run("bash", os.path.join(UKEY, "issue.sh"), "--out", out, self.dir, "leaf", alg, kind,
                body["holder"], body.get("enterprise") or "", uscc, str(int(body.get("days", 365))))
            cert = open(os.path.join(out, "leaf.cert.pem")).read()
            key = open(os.path.join(out, "leaf.key.pem")).read()
            serial = run("openssl", "x509", "-noout", "-serial", "-in",
                         os.path.join(out, "leaf.cert.pem")).strip().split("=", 1)[1].upper()
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "uscc": uscc or None, "certificate": cert, "serial": serial,
                     "holder": body["holder"], "lock_kind": kind,
                     "key_serial": body.get("key_serial"), "key_vendor": body.get("key_vendor"),
                     "applied_at": body.get("applied_at"), "platforms": body.get("platforms"),
                     "revoked_at": None, "revocation_reason": None}
            self.directory.append(entry)
        return {"certificate": cert, "key": key, "seq": entry["seq"], "serial": serial}

    CHANGEABLE = ("holder", "lock_kind", "platforms", "key_serial", "key_vendor", "revoked_at",
                  "revocation_reason")

    def change(self, body):
        """The vendor changes an entry it listed: the given fields, the next
        sequence number (listed again after any earlier cursor). None when
        the serial is not in the directory."""
        serial = str(body.get("serial") or "").upper().lstrip("0")
        with self.lock:
            entry = next((e for e in self.directory if e["serial"].lstrip("0") == serial), None)
            if entry is None:
                return None
            for k in self.CHANGEABLE:
                if k in body:
                    entry[k] = body[k]
            self.seq += 1
            entry["seq"] = self.seq
            return entry["seq"]

    def list_directory(self, uscc, since, limit):
        with self.lock:
            if uscc:
                rows = [e for e in self.directory if e["uscc"] == uscc]
            else:
                rows = sorted((e for e in self.directory if e["seq"] > since), key=lambda e: e["seq"])
            page, more = rows[:limit], len(rows) > limit
            items = [{k: e[k] for k in ("certificate", "holder", "lock_kind", "key_serial", "key_vendor",
                                        "applied_at", "platforms", "revoked_at", "revocation_reason")}
                     for e in page]
        return {"items": items, "next_cursor": str(page[-1]["seq"]) if page else None, "more": more}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        sim = self.sim
        if self.path == "/stats":
            with sim.lock:
                self.reply(200, {"signed": sim.signed, "answers": sim.answers,
                                 "revocations": sim.revocations, "requests": sim.requests,
                                 "fail": sim.fail, "delay": sim.delay})
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/v1/directory":
            if sim.token and self.headers.get("Authorization") != f"Bearer {sim.token}":
                self.reply(401, {"error": "bad token"})
                return
            qs = urllib.parse.parse_qs(url.query)
            try:
                since = int((qs.get("since") or ["0"])[0])
                limit = max(1, min(500, int((qs.get("limit") or ["100"])[0])))
            except ValueError:
                self.reply(400, {"error": "bad since or limit"})
                return
            with sim.lock:
                sim.requests += 1
                failing = sim.fail > 0
                if failing:
                    sim.fail -= 1
            if failing:
                self.reply(503, {"error": "temporarily failing"})
                return
            self.reply(200, sim.list_directory((qs.get("uscc") or [None])[0], since, limit))
            return
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        sim = self.sim
        try:
            body = self.body()
        except ValueError:
            self.reply(400, {"error": "bad json"})
            return
        if self.path == "/control/issue":
            try:
                self.reply(201, sim.first_application(body))
            except (KeyError, subprocess.CalledProcessError) as e:
                self.reply(400, {"error": f"cannot issue: {e}"})
            return
        if self.path == "/control/change":
            seq = sim.change(body)
            if seq is None:
                self.reply(404, {"error": "no such certificate in the directory"})
            else:
                self.reply(200, {"seq": seq})
            return
        if self.path == "/control":
            with sim.lock:
                sim.fail = int(body.get("fail", sim.fail))
                sim.delay = float(body.get("delay", sim.delay))
                sim.reject = bool(body.get("reject", sim.reject))
            self.reply(200, {"ok": True})
            return
        if sim.token and self.headers.get("Authorization") != f"Bearer {sim.token}":
            self.reply(401, {"error": "bad token"})
            return
        if self.path == "/v1/revocations":
            with sim.lock:
                sim.requests += 1
                if sim.fail > 0:
                    sim.fail -= 1
                    self.reply(503, {"error": "temporarily failing"})
                    return
                if not any(r["request_id"] == body.get("request_id") for r in sim.revocations):
                    sim.revocations.append(body)
            self.reply(200, {"revoked": body.get("serial")})
            return
        if self.path not in ("/v1/certificates", "/v1/certificates/renew"):
            self.reply(404, {"error": "not found"})
            return
        rid = body.get("request_id")
        if not rid or not body.get("csr") or not body.get("serial"):
            self.reply(400, {"error": "request_id, serial and csr are required"})
            return
        with sim.lock:
            sim.requests += 1
            if sim.reject:
                self.reply(422, {"error": "refused by policy"})
                return
            if sim.fail > 0:
                sim.fail -= 1
                self.reply(503, {"error": "temporarily failing"})
                return
            delay = sim.delay
            done = sim.ledger.get(rid)
            waiting = sim.inflight.get(rid) if done is None else None
            first = done is None and waiting is None
            if first:
                waiting = sim.inflight[rid] = threading.Event()
        if first:
            try:
                answer = sim.issue(body)
            except subprocess.CalledProcessError as e:
                with sim.lock:
                    del sim.inflight[rid]
                waiting.set()
                self.reply(422, {"error": "cannot issue: " + (e.stderr or "")[-200:]})
                return
            with sim.lock:
                sim.ledger[rid] = answer
                sim.signed[rid] = sim.signed.get(rid, 0) + 1
                del sim.inflight[rid]
            waiting.set()
            done = answer
        elif done is None:
            waiting.wait(60)
            with sim.lock:
                done = sim.ledger.get(rid)
            if done is None:
                self.reply(503, {"error": "first attempt failed"})
                return
        if delay:
            time.sleep(delay)
        with sim.lock:
            sim.answers[rid] = sim.answers.get(rid, 0) + 1
        self.reply(201, done)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--tls-cert", default=None, help="serve TLS with this certificate (and --tls-key); "
                    "plain HTTP is still answered for the tests' control calls")
    ap.add_argument("--tls-key", default=None)
    args = ap.parse_args()
    Handler.sim = Sim(args.dir, args.token)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    if args.tls_cert:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "paysim"))
        import tlspki
        tlspki.serve_tls(srv, args.tls_cert, args.tls_key)
    print(f"vendor_sim on 127.0.0.1:{args.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
