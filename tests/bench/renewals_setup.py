#!/usr/bin/env python3
"""renewals_setup — readies N renewable certificates with paid renewals on a
suite started by suite_up.py, through the public API as a customer would
(tests/e2e/journey.py's steps): one enterprise whose administrator (a master
lock) completes the profile and the record, approved by the reviewer; N staff
locks of ALG that log in and bind; batch orders of up to 200 certificates
each, paid at the payment simulator. Writes one line per certificate,
"cert_id TAB holder token TAB key.pem TAB cert.pem", for tests/tools/renewbench.
Only the serial → cert_id look-up reads the database (the registry's ids).

  renewals_setup.py SUITE_DIR ALG N OUT_FILE [THREADS]"""
import concurrent.futures
import os
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in ("deploy/scripts", "tests", "tests/integration", "tests/e2e"):
    sys.path.insert(0, os.path.join(ROOT, p))
import suite as suite_mod  # noqa: E402
import journey as journey_mod  # noqa: E402
from client import call, pki, wait_until  # noqa: E402

_seq_lock = threading.Lock()
_seq = [0]


def issue_cert_unique(suite, alg, kind, holder, enterprise=None, uscc=None, days=30):
    """client.issue_cert with a name safe to make from several threads."""
    import subprocess
    name = f"b{uuid.uuid4().hex[:12]}-{alg}-{kind}"
    args = [os.path.join(ROOT, "tests", "ukey", "issue.sh"), suite.pki_dir, name, alg, kind, holder,
            enterprise or "", uscc or "", str(days)]
    subprocess.run(["bash", *args], check=True, capture_output=True)
    return name


journey_mod.issue_cert = issue_cert_unique


class PlainHolder(journey_mod.Holder):
    """A staff holder whose key stays a plain PEM file (no virtual key under
    a PIN: each PIN use costs an scrypt), signing with the ukey tool."""

    def __init__(self, journey, alg, kind, name, id_number):
        self.j = journey
        self.alg, self.kind, self.name, self.id_number = alg, kind, name, id_number
        self.phone = journey_mod.new_phone()
        self.cert_name = issue_cert_unique(journey.suite, alg, kind, name, journey.enterprise_name,
                                           journey.uscc)
        self.pem = open(pki(journey.suite, self.cert_name)).read()
        self.token = None
        self.cert_id = None

    def cert_pem(self):
        return self.pem

    def sign(self, nonce):
        return journey_mod.ukey(self.j.suite, "sign", pki(self.j.suite, self.cert_name, "key"), nonce)


def serial_of(path):
    import subprocess
    s = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path], capture_output=True,
                       text=True, check=True).stdout.strip().split("=")[1]
    return s if len(s) % 2 == 0 else "0" + s


def main():
    base, alg, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    suite = suite_mod.Suite(base, persistent=True)
    t0 = time.time()
    j = journey_mod.Journey(suite, channel="wechat", invoice="e_normal", algs=(alg,) * 4)
    j.patience = 120
    j.bind_locks()
    j.personal_info()
    j.enterprise_record()
    j._decide("approve")
    print(f"setup: enterprise approved ({time.time() - t0:.0f}s)", file=sys.stderr)

    def holder(i):
        h = PlainHolder(j, alg, "agent", f"压测{i}", "")
        h.login_and_bind()
        return h

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        holders = list(pool.map(holder, range(n)))
    print(f"setup: {n} {alg} locks bound ({time.time() - t0:.0f}s)", file=sys.stderr)
    serials = {serial_of(pki(suite, h.cert_name)): h for h in holders}
    in_list = ",".join("'" + s + "'" for s in serials)

    def registered():
        rows = suite.psql(f"SELECT serial, cert_id FROM issuance.certificates WHERE serial IN ({in_list})")
        return rows if len(rows) == len(serials) else None
    for serial, cert_id in wait_until(registered, timeout=120, what="every certificate registered"):
        serials[serial].cert_id = cert_id
    # orders learns the certificates from issuance's events: wait until a
    # quote of the last one prices.
    plan = ["LN_JSGC", "LN_ZFCG", "SY_GGZY"]
    api = j.api
    for k in range(0, n, 200):
        chunk = holders[k:k + 200]
        items = [{"cert_id": h.cert_id, "platforms": plan, "current_platforms": plan} for h in chunk]
        r = journey_mod.retry(lambda: api.post("/api/v1/orders/quote", {"items": items}, token=j.admin.token),
                              "quote", timeout=120,
                              again=("ENTERPRISE_NOT_APPROVED", "PROFILE_INCOMPLETE", "CERT_NOT_FOUND"))
        r = j.admin.post("/api/v1/orders", {"items": items}, headers={"Idempotency-Key": str(uuid.uuid4())})
        order = r.json
        body = {"order_id": order["id"], "channel": "wechat",
                "invoice": {"type": "e_normal", "email": f"{j.admin.phone}@example.com"}}
        key = str(uuid.uuid4())
        pay = journey_mod.retry(lambda: api.post("/api/v1/payments", body, token=j.admin.token,
                                                 headers={"Idempotency-Key": key}),
                                "payment", ok=(201,), timeout=60, again=("ORDER_NOT_FOUND",)).json
        sim = f"http://127.0.0.1:{suite.ports['paysim']}"
        journey_mod.retry(lambda: call(sim, "POST", "/sim/pay", body={"out_trade_no": pay["id"].replace("-", "")}),
                          "provider pay")
        wait_until(lambda: j.admin.get(f"/api/v1/orders/{order['id']}").json["status"] == "paid",
                   timeout=120, what="order paid")
    ids = ",".join("'" + h.cert_id + "'" for h in holders)
    wait_until(lambda: suite.psql(f"SELECT count(DISTINCT cert_id) FROM issuance.entitlements"
                                  f" WHERE cert_id IN ({ids})")[0][0] == str(n),
               timeout=120, what="every renewal granted")
    with open(out, "w") as f:
        for h in holders:
            f.write(f"{h.cert_id}\t{h.token}\t{pki(suite, h.cert_name, 'key')}\t{pki(suite, h.cert_name)}\n")
    print(f"setup: {n} paid renewals ready ({time.time() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
