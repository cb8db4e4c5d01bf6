"""journey — the whole renewal journey of one enterprise, through nginx only
(plus the USB-key simulator and the payment-provider simulator), as the
seed guide walks it: CA login and binding of a master lock and three staff
locks (RSA and SM2 mixed); personal info; the enterprise record with real
uploads, rejected once with an opinion, fixed and approved; a batch renewal
quote and order with different platforms per certificate (one dropped, one
added); payment with a special invoice; each holder renews on the key; the
interop API then answers for exactly the new platform sets; the order is
fulfilled, the invoice issued, and finance's reconciliation matches.

Used by tests/e2e/test_journey.py (once per channel, and under faults) and
by tests/bench. Each step is a method so a fault harness can act between
steps; `steps()` lists them in order."""
import base64
import datetime
import hashlib
import hmac
import os
import sys
import tempfile
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "paysim"))

from client import Api, call, issue_cert, new_phone, new_uscc, sms_code, ukey, wait_until  # noqa: E402
from test_enterprise_fixtures import complete_record, jpeg_bytes, pdf_bytes, png_bytes  # noqa: E402

ALL_PLATFORMS = ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY", "DL_ZFCG",
                 "AS_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"]
# The platforms a certificate of the old platform carries when first seen
# (suite.py gives issuance this default); the order then keeps, drops and adds.
# What the administrator confirms the keys are on today: a certificate first
# seen at a login has unknown associations (platforms null), and a quote asks
# for the current set (items[i].current_platforms) instead of pricing every
# platform as new.
DEFAULT_PLATFORMS = ["LN_JSGC", "LN_ZFCG", "SY_GGZY"]
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def retry(fn, what, timeout=30.0, ok=(200, 201, 204), again=()):
    """Calls fn until its reply status is in ok: the fault harness restarts
    parts of the suite under the journey, and a client retries a 503 or a
    dropped connection the way the frontend would (idempotent calls only,
    or calls with an Idempotency-Key)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except OSError as e:  # connection refused / reset while restarting
            last = e
            time.sleep(0.2)
            continue
        if getattr(last, "status", None) in ok:
            return last
        if getattr(last, "status", None) not in (502, 503, 504, 429) and \
                getattr(last, "code", None) not in again:
            raise AssertionError(f"{what}: {last}")
        time.sleep(0.2)
    raise AssertionError(f"{what}: gave up after {timeout}s: {last}")


class Holder:
    """A person with a USB key (a virtual key folder under the PIN)."""

    def __init__(self, journey, alg, kind, name, id_number):
        self.j = journey
        self.alg, self.kind, self.name, self.id_number = alg, kind, name, id_number
        self.phone = new_phone()
        self.cert_name = issue_cert(journey.suite, alg, kind, name, journey.enterprise_name,
                                    journey.uscc)
        self.keys = tempfile.mkdtemp(prefix="ukey-", dir=journey.suite.base)
        from client import pki
        ukey(journey.suite, "-d", self.keys, "import", "lock", pki(journey.suite, self.cert_name, "key"),
             pki(journey.suite, self.cert_name))
        self.token = None
        self.cert_id = None

    def cert_pem(self):
        return ukey(self.j.suite, "-d", self.keys, "cert", "lock") + "\n"

    def sign(self, nonce):
        return ukey(self.j.suite, "-d", self.keys, "sign", "lock", nonce)

    def get(self, path):
        return retry(lambda: self.j.api.get(path, token=self.token), f"GET {path}")

    def post(self, path, body=None, ok=(200, 201, 204), headers=None):
        return retry(lambda: self.j.api.post(path, body, token=self.token, headers=headers),
                     f"POST {path}", ok=ok)

    def put(self, path, body):
        return retry(lambda: self.j.api.put(path, body, token=self.token), f"PUT {path}")

    def upload(self, data, content_type):
        r = retry(lambda: call(self.j.suite.gateway, "POST", "/api/v1/files", raw=data, token=self.token,
                               headers={"Content-Type": content_type}), "upload", ok=(201,))
        return r.json["file_id"]

    def ca_login(self):
        api = self.j.api
        ch = retry(lambda: api.post("/api/v1/auth/ca/challenge", {}), "challenge").json
        return retry(lambda: api.post("/api/v1/auth/ca/login", {
            "challenge_id": ch["challenge_id"], "certificate": self.cert_pem(),
            "signature": self.sign(ch["nonce"])}), "ca login")

    def login_and_bind(self):
        r = self.ca_login()
        assert r.json["status"] == "binding_required", r
        assert r.json["lock"]["kind"] == self.kind
        retry(lambda: self.j.api.post("/api/v1/auth/sms", {"phone": self.phone, "purpose": "bind"}),
              "sms", ok=(202,))
        body = {"bind_token": r.json["bind_token"], "phone": self.phone,
                "sms_code": sms_code(self.j.suite, self.phone, "bind")}
        if self.kind == "master":
            body["id_number"] = self.id_number
        r = retry(lambda: self.j.api.post("/api/v1/auth/ca/bind", body), "bind")
        self.token = r.json["token"]
        # Logging in again with the key now goes straight in.
        r = self.ca_login()
        assert r.json["status"] == "ok", r
        self.token = r.json["token"]


class Journey:
    def __init__(self, suite, channel="wechat", invoice="paper_special",
                 algs=("sm2", "rsa", "sm2", "rsa")):
        self.suite = suite
        self.api = Api(suite)
        self.channel, self.invoice_type = channel, invoice
        self.uscc = new_uscc()
        self.enterprise_name = f"辽宁{self.uscc[-6:]}建设工程有限公司"
        self.admin = Holder(self, algs[0], "master", "张三", "11010519491231002X")
        self.staff = [Holder(self, algs[1], "project_lead", "李四", "440524188001010014"),
                      Holder(self, algs[2], "agent", "王五", "11010119900307803X"),
                      Holder(self, algs[3], "project_lead", "赵六", "110101199003074477")]
        self.holders = [self.admin] + self.staff
        self.reviewer = None
        self.order = None
        self.payment = None
        self.plan = {}      # cert_id -> chosen platforms
        self.renewed = {}   # cert_id -> renewal answer
        # How long an asynchronous effect (an event crossing services) may
        # take: seconds normally; under faults an event a killed consumer
        # held comes back after AckWait (CAPLAT_BUS_ACK_WAIT_MS).
        self.patience = 60

    def steps(self):
        return [self.bind_locks, self.personal_info, self.enterprise_record, self.review,
                self.quote_and_order, self.pay, self.renew_on_keys, self.interop_answers,
                self.order_fulfilled_and_invoice, self.reconciliation]

    def run(self, between=None):
        for step in self.steps():
            step()
            if between:
                between(step.__name__)

    # 1. CA login and binding of every lock
    def bind_locks(self):
        for h in self.holders:
            h.login_and_bind()
        me = self.admin.get("/api/v1/auth/me").json
        assert me["current_identity"]["role"] == "admin" and me["current_identity"]["uscc"] == self.uscc

    # 2. personal info (个人信息) of every holder: 已完善
    def personal_info(self):
        for h in self.holders:
            front = h.upload(png_bytes(), "image/png")
            back = h.upload(jpeg_bytes(), "image/jpeg")
            r = h.put("/api/v1/profile", {"name": h.name, "id_number": h.id_number,
                                          "email": f"{h.phone}@example.com",
                                          "id_card_front_file": front, "id_card_back_file": back})
            assert r.json["status"] == "completed", r

    # 3. the enterprise record, with real uploads
    def _record_files(self):
        a = self.admin
        return {
            "basic": {"legal_rep_id_front": a.upload(png_bytes(), "image/png"),
                      "legal_rep_id_back": a.upload(png_bytes(), "image/png"),
                      "business_license": a.upload(jpeg_bytes(), "image/jpeg")},
            "invoice": {"authorization_letter": a.upload(pdf_bytes("授权书"), "application/pdf"),
                        "special_invoice_info": a.upload(pdf_bytes("专票信息"), "application/pdf")},
            "seal": {"seal_form": a.upload(pdf_bytes("印章"), "application/pdf")},
        }

    def enterprise_record(self):
        record = complete_record(self.uscc, self._record_files(), name=self.enterprise_name,
                                 taxpayer_type="general")
        record["basic"]["legal_rep_name"] = "张三"
        record["basic"]["legal_rep_id_number"] = self.admin.id_number
        self.admin.put("/api/v1/enterprise", record)
        r = self.admin.post("/api/v1/enterprise/submit")
        assert r.json["status"] == "pending", r

    # 4. review: rejected once with an opinion, fixed, approved
    def _reviewer_token(self):
        if self.reviewer is None:
            r = retry(lambda: self.api.post("/api/v1/auth/staff/login", {
                "username": "reviewer", "password": self.suite.secrets["staff_reviewer"]}), "staff login")
            self.reviewer = r.json["token"]
        return self.reviewer

    def _decide(self, verb, body=None):
        tok = self._reviewer_token()
        rec_id = self.admin.get("/api/v1/enterprise").json["id"]
        r = retry(lambda: self.api.post(f"/api/v1/review/records/{rec_id}/{verb}", body or {}, token=tok),
                  f"review {verb}", ok=(200, 409))
        if r.status == 409:  # a retry after our own decision landed
            assert self.admin.get("/api/v1/enterprise").json["status"] in ("approved", "rejected"), r
        return rec_id

    def review(self):
        self._decide("reject", {"opinion": "营业执照照片不清晰，请重新上传"})
        rec = self.admin.get("/api/v1/enterprise").json
        assert rec["status"] == "rejected", rec
        assert any(h.get("opinion") == "营业执照照片不清晰，请重新上传" for h in rec["history"]), rec
        files = self._record_files()
        self.admin.put("/api/v1/enterprise", {"basic": {"files": files["basic"]}})
        assert self.admin.post("/api/v1/enterprise/submit").json["status"] == "pending"
        self._decide("approve")
        rec = self.admin.get("/api/v1/enterprise").json
        assert rec["status"] == "approved", rec
        assert [h["status"] for h in rec["history"]][-1] == "approved"

    # 5. a batch quote and order with different platforms per certificate
    def _certs(self):
        def ready():
            r = self.admin.get("/api/v1/certs")
            items = r.json["items"]
            mine = [c for c in items if c["serial"].lstrip("0") in self._serials()]
            return mine if len(mine) == len(self.holders) and all(c["renewable"] for c in mine) else None
        return wait_until(ready, timeout=self.patience, what="every certificate registered and renewable")

    def _serials(self):
        import subprocess
        out = set()
        for h in self.holders:
            s = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=h.cert_pem(),
                               capture_output=True, text=True).stdout.strip().split("=")[1]
            out.add(s.lstrip("0") or "0")
        return out

    def quote_and_order(self):
        certs = self._certs()
        by_serial = {c["serial"].lstrip("0"): c for c in certs}
        for h in self.holders:
            import subprocess
            s = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=h.cert_pem(),
                               capture_output=True, text=True).stdout.strip().split("=")[1].lstrip("0")
            h.cert_id = by_serial[s]["id"]
            assert by_serial[s]["platforms"] is None and by_serial[s]["platforms_known"] is False, by_serial[s]
        # Per certificate: keep two, drop SY_GGZY, and add one that differs.
        added = ["LN_GGZY", "DL_GGZY", "HC_DZCG", "LN_ZTB"]
        items = []
        for h, add in zip(self.holders, added):
            self.plan[h.cert_id] = ["LN_JSGC", "LN_ZFCG", add]
            items.append({"cert_id": h.cert_id, "platforms": self.plan[h.cert_id],
                          "current_platforms": DEFAULT_PLATFORMS})
        # orders learns the approval and the completed profiles from events:
        # right after a restart it may not have them yet.
        q = retry(lambda: self.api.post("/api/v1/orders/quote", {"items": items}, token=self.admin.token),
                  "quote", timeout=self.patience,
                  again=("ENTERPRISE_NOT_APPROVED", "PROFILE_INCOMPLETE", "CERT_NOT_FOUND")).json
        for it in q["items"]:
            assert it["dropped"] == ["SY_GGZY"], it
            kinds = {line["platform"]: line["kind"] for line in it["lines"]}
            assert kinds["LN_JSGC"] == "renew" and kinds["LN_ZFCG"] == "renew", it
            assert sorted(k for k, v in kinds.items() if v == "add") == [p for p in self.plan[it["cert_id"]]
                                                                        if p not in DEFAULT_PLATFORMS]
            assert it["price_fen"] == sum(line["price_fen"] for line in it["lines"])
        assert q["total_fen"] == sum(it["price_fen"] for it in q["items"])
        key = str(uuid.uuid4())
        r = self.admin.post("/api/v1/orders", {"items": items}, headers={"Idempotency-Key": key})
        self.order = r.json
        assert self.order["status"] == "pending_payment" and self.order["number"].startswith("PL")
        assert self.order["total_fen"] == q["total_fen"]
        # The same key and body answers the same order.
        again = self.admin.post("/api/v1/orders", {"items": items}, headers={"Idempotency-Key": key})
        assert again.json["id"] == self.order["id"]

    # 6. payment with a special VAT invoice
    def pay(self):
        key = str(uuid.uuid4())
        body = {"order_id": self.order["id"], "channel": self.channel,
                "invoice": {"type": self.invoice_type, "email": f"{self.admin.phone}@example.com"}}
        if self.invoice_type == "paper_special":   # posted: to whom, where (issue 18)
            body["invoice"].update(recipient="张三", phone="13800000000",
                                   address="沈阳市和平区南京北街1号")
        # Payments learns the order from orders.order.created: until then
        # ORDER_NOT_FOUND (the key is freed for the retry).
        r = retry(lambda: self.api.post("/api/v1/payments", body, token=self.admin.token,
                                        headers={"Idempotency-Key": key}),
                  "payment", ok=(201,), timeout=60, again=("ORDER_NOT_FOUND",))
        self.payment = r.json
        assert self.payment["amount_fen"] == self.order["total_fen"]
        assert self.payment["qr_code"]
        # The holder scans the QR code and pays at the provider.
        sim = f"http://127.0.0.1:{self.suite.ports['paysim']}"
        out_trade_no = self.payment["id"].replace("-", "")
        retry(lambda: call(sim, "POST", "/sim/pay", body={"out_trade_no": out_trade_no}), "provider pay")
        wait_until(lambda: self.admin.get(f"/api/v1/payments/{self.payment['id']}").json["status"] == "succeeded",
                   timeout=self.patience, what="payment succeeded (provider notification)")
        wait_until(lambda: self.admin.get(f"/api/v1/orders/{self.order['id']}").json["status"] == "paid",
                   timeout=self.patience, what="order paid")

    # 7. each holder renews the certificate on the key
    def renew_on_keys(self):
        for h in self.holders:
            def challenge():
                return self.api.post(f"/api/v1/certs/{h.cert_id}/renewal/challenge", {}, token=h.token)
            ch = wait_until(lambda: (lambda r: r.json if r.status == 200 else None)(challenge()),
                            timeout=self.patience, what="renewal entitlement granted").copy()
            csr = ukey(self.suite, "-d", h.keys, "csr", "lock") + "\n"
            r = retry(lambda: self.api.post(f"/api/v1/certs/{h.cert_id}/renewal",
                                            {"challenge_id": ch["challenge_id"], "csr": csr,
                                             "signature": h.sign(ch["nonce"])}, token=h.token),
                      "renewal", ok=(201,))
            self.renewed[h.cert_id] = r.json
            assert sorted(r.json["platforms"]) == sorted(self.plan[h.cert_id]), r
            path = os.path.join(h.keys, "renewed.pem")
            open(path, "w").write(r.json["certificate"])
            ukey(self.suite, "-d", h.keys, "install", "lock", path)
            # The renewed key logs in and stays bound to the same account
            # (auth learns the lineage from issuance.cert.renewed).
            r = wait_until(lambda: (lambda r: r if r.json["status"] == "ok" else None)(h.ca_login()),
                           timeout=self.patience, what="renewed certificate logs in to the same account")
            assert r.json["account"]["phone"] == h.phone, r

    # 8. downstream platforms see the new association at once
    def interop(self, serial, platform):
        path = f"/api/v1/interop/certs/{serial}/status"
        query = urllib.parse.urlencode({"platform": platform})
        secret = interop_secret(self.suite, platform)

        def signed():
            # a fresh nonce per attempt: issuance refuses a replayed one
            ts, nonce = str(int(time.time())), uuid.uuid4().hex
            sig = hmac.new(secret.encode(), f"GET\n{path}\n{query}\n{ts}\n{nonce}".encode(),
                           hashlib.sha256).hexdigest()
            return call(self.suite.gateway, "GET", f"{path}?{query}",
                        headers={"X-Platform": platform, "X-Timestamp": ts, "X-Nonce": nonce,
                                 "X-Signature": sig})
        return retry(signed, "interop")

    def interop_answers(self):
        for cert_id, renewal in self.renewed.items():
            for p in ALL_PLATFORMS:
                r = self.interop(renewal["serial"], p)
                assert r.json["valid"] == (p in self.plan[cert_id]), (p, r)

    # 9. the order is fulfilled; the invoice is issued
    def order_fulfilled_and_invoice(self):
        wait_until(lambda: self.admin.get(f"/api/v1/orders/{self.order['id']}").json["status"] == "fulfilled",
                   timeout=self.patience, what="order fulfilled")

        def issued():
            items = self.admin.get(f"/api/v1/invoices?order_id={self.order['id']}").json["items"]
            return [i for i in items if i["status"] == "issued"] or None
        inv = wait_until(issued, timeout=self.patience, what="invoice issued")[0]
        assert inv["type"] == self.invoice_type and inv["amount_fen"] == self.order["total_fen"]
        assert inv["title"] == self.enterprise_name and inv["taxpayer_id"] == self.uscc
        rate_tax = (inv["amount_fen"] * 6 * 2 + 106) // (106 * 2)  # round half up of gross·6/106
        assert inv["tax_fen"] == rate_tax, inv

    # 10. finance reconciles the day against the provider's bill
    def reconciliation(self):
        r = retry(lambda: self.api.post("/api/v1/auth/staff/login", {
            "username": "finance", "password": self.suite.secrets["staff_finance"]}), "finance login")
        fin = r.json["token"]
        today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
        sim = f"http://127.0.0.1:{self.suite.ports['paysim']}"
        bill = call(sim, "GET", f"/sim/bills/{self.channel}/{today}").raw
        r = retry(lambda: call(self.suite.gateway, "POST", f"/api/v1/finance/bills/{self.channel}/{today}",
                               raw=bill, token=fin, headers={"Content-Type": "text/csv"}),
                  "reconcile", ok=(201,))
        rep = r.json
        assert rep["matched"] >= 1 and rep["amount_mismatch"] == 0 and rep["missing_local"] == 0, rep
        out_trade_no = self.payment["id"].replace("-", "")
        assert not [i for i in rep["items"] if i.get("out_trade_no") == out_trade_no], rep


def interop_secret(suite, platform):
    """The interop secret suite.py gives issuance for a platform."""
    seed = suite.secrets["db_admin"]
    return hashlib.sha256(f"interop:{platform}:{seed}".encode()).hexdigest()[:32]
