"""issuance, the vendor CA adapters and the resume path: renewal through the
remote HTTP adapter against tests/issuance/vendor_sim.py; a failing vendor
(503, nothing consumed, the intent resumed in the background), a slow one
(timeout after it issued: asked again with the same request id), a crash
after the vendor answered and a crash before it was asked (local CA) — each
ends with exactly one certificate for the reserved serial, issued once,
which the holder collects with the same CSR; a vendor refusal gives the
entitlement back; revocations are forwarded to the vendor."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (ca_bind, cert_item, challenge, make_leaf, new_csr, pay, q, renew,  # noqa: E402
                 restart_issuance, staff_token, wait_registered)
from client import Api, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, "tests", "issuance", "vendor_sim.py")
TOKEN = "sim-token-0123456789"


class Sim:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}"  # the tests' control calls
        self.tls_url = f"https://127.0.0.1:{port}"  # what issuance calls

    def control(self, **kw):
        req = urllib.request.Request(self.url + "/control", data=json.dumps(kw).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())


@contextlib.contextmanager
def vendor_sim(suite):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(suite.log_dir, "vendor_sim.log"), "ab")
    p = subprocess.Popen([sys.executable, SIM, "--dir", os.path.join(suite.base, "vendor-sim"),
                          "--port", str(port), "--token", TOKEN,
                          "--tls-cert", os.path.join(suite.tls_ca(), "server.pem"),
                          "--tls-key", os.path.join(suite.tls_ca(), "server.key")], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert p.poll() is None and time.time() < deadline, "vendor_sim did not start"
                time.sleep(0.05)
        yield Sim(port)
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()


def remote_env(sim, **extra):
    env = {"CAPLAT_CA_DEFAULT_ADAPTER": "remote", "CAPLAT_CA_REMOTE_URL": sim.tls_url,
           "CAPLAT_CA_REMOTE_VENDOR": "SIMCA", "CAPLAT_CA_REMOTE_TOKEN": TOKEN,
           "CAPLAT_CA_REMOTE_TIMEOUT_MS": "1500", "CAPLAT_ISSUANCE_LEASE_SECONDS": "3"}
    env.update(extra)
    return env


def paid_cert(suite, alg="rsa", kind="agent"):
    leaf = make_leaf(suite, alg, kind, days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC", "LN_GGZY"], account)
    return leaf, token, cert_id


def intent(suite, cert_id):
    rows = suite.psql(f"SELECT id, serial, status, attempts FROM issuance.issuances"
                      f" WHERE cert_id = {q(cert_id)} ORDER BY created_at DESC LIMIT 1")
    return dict(zip(["id", "serial", "status", "attempts"], rows[0])) if rows else None


def entitlement(suite, cert_id):
    return suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}")[0][0]


def wait_issued(suite, cert_id, timeout=20):
    return wait_until(lambda: (intent(suite, cert_id) or {}).get("status") == "issued",
                      timeout=timeout, what="intent issued by the resumer")


def collect(suite, token, cert_id, leaf, csr):
    """The holder comes back with the old key and the same CSR."""
    r = challenge(suite, token, cert_id)
    assert r.status == 200 and r.json["serial"] == leaf.serial, r
    return renew(suite, token, cert_id, leaf.key, csr, ch=r.json)


def issued_once(suite, cert_id, sim, serial):
    it = intent(suite, cert_id)
    assert it["serial"] == serial and it["status"] == "issued"
    assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE serial = {q(serial)}") == [["1"]]
    assert suite.psql("SELECT count(*) FROM issuance.outbox WHERE type = 'issuance.cert.renewed'"
                      f" AND data->>'serial' = {q(serial)}") == [["1"]]
    assert entitlement(suite, cert_id) == "used"
    if sim is not None:
        assert sim.stats()["signed"].get(it["id"]) == 1, sim.stats()


def test_issuance_remote_vendor_renews_and_revokes(suite):
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim))
            leaf, token, cert_id = paid_cert(suite, "sm2", "project_lead")
            _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status == 201, r
            text = subprocess.run(["openssl", "x509", "-noout", "-issuer", "-serial"],
                                  input=r.json["certificate"], capture_output=True, text=True).stdout
            assert "SIMCA SM2 CA" in text and r.json["serial"] in text
            assert len(r.json["chain"]) == 2
            issued_once(suite, cert_id, sim, r.json["serial"])
            assert cert_item(suite, token, cert_id)["vendor"] == "SIMCA"

            op = staff_token(suite)
            rv = Api(suite).post(f"/api/v1/certs/{cert_id}/revoke", {"reason": "affiliation_changed"},
                                 token=op)
            assert rv.status == 200 and rv.json["vendor_notified"] is False, rv
            wait_until(lambda: any(x["serial"] == r.json["serial"] and x["reason"] == "affiliation_changed"
                                   for x in sim.stats()["revocations"]), what="revocation forwarded")
            wait_until(lambda: suite.psql("SELECT status FROM issuance.vendor_jobs WHERE serial ="
                                          f" {q(r.json['serial'])}") == [["done"]], what="job done")
        finally:
            restart_issuance(suite)


def test_issuance_vendor_failure_resumes_without_double_issue(suite):
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim))
            leaf, token, cert_id = paid_cert(suite)
            _, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
            sim.control(fail=1000)
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status == 503 and r.code == "VENDOR_CA_UNAVAILABLE", r
            first = intent(suite, cert_id)
            assert first["status"] == "pending" and len(first["serial"]) == 32
            assert entitlement(suite, cert_id) == "reserved"
            # while pending: the same key is asked again (same serial); another key is refused
            r = collect(suite, token, cert_id, leaf, csr)
            assert r.status in (409, 503), r
            assert intent(suite, cert_id)["serial"] == first["serial"]
            _, other = new_csr(suite, leaf.key, leaf.cert, "rsa")
            r = renew(suite, token, cert_id, leaf.key, other)
            assert r.status == 409 and r.code in ("RENEWAL_PENDING", "RENEWAL_IN_PROGRESS"), r
            if r.code == "RENEWAL_IN_PROGRESS":  # the refusal table's Retry-After: the lease
                assert int(r.headers["Retry-After"]) >= 1, r.headers
            else:
                assert r.json["error"]["field"] == "csr", r
            assert suite.psql(f"SELECT count(*) FROM issuance.issuances WHERE cert_id = {q(cert_id)}") == [["1"]]
            # the vendor recovers: the resumer finishes it in the background
            sim.control(fail=0)
            wait_issued(suite, cert_id)
            issued_once(suite, cert_id, sim, first["serial"])
            assert int(intent(suite, cert_id)["attempts"]) >= 3
            r = collect(suite, token, cert_id, leaf, csr)
            assert r.status == 201 and r.json["serial"] == first["serial"], r
            issued_once(suite, cert_id, sim, first["serial"])
        finally:
            restart_issuance(suite)


def test_issuance_slow_vendor_timeout_resumes_with_same_request(suite):
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim))
            leaf, token, cert_id = paid_cert(suite, "sm2", "agent")
            _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
            sim.control(delay=3)  # issues at once, answers after the 1.5 s timeout
            t0 = time.time()
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status == 503 and r.code == "VENDOR_CA_UNAVAILABLE", r
            assert time.time() - t0 < 3
            it = intent(suite, cert_id)
            wait_until(lambda: sim.stats()["signed"].get(it["id"]) == 1, what="the vendor issued")
            sim.control(delay=0)
            wait_issued(suite, cert_id)
            issued_once(suite, cert_id, sim, it["serial"])
            r = collect(suite, token, cert_id, leaf, csr)
            assert r.status == 201 and r.json["serial"] == it["serial"], r
        finally:
            restart_issuance(suite)


def test_issuance_crash_after_vendor_resumes_once(suite):
    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim, CAPLAT_FAULT="issuance_crash_after_vendor",
                                                CAPLAT_FAULT_ONCE=once))
            leaf, token, cert_id = paid_cert(suite)
            _, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status in (502, 503), r  # issuance died after the vendor answered
            assert os.path.exists(once)
            it = intent(suite, cert_id)
            assert it["status"] == "pending" and sim.stats()["signed"].get(it["id"]) == 1
            restart_issuance(suite, remote_env(sim))
            wait_issued(suite, cert_id)
            issued_once(suite, cert_id, sim, it["serial"])
            assert sim.stats()["answers"][it["id"]] == 2  # asked again, signed once
            r = collect(suite, token, cert_id, leaf, csr)
            assert r.status == 201 and r.json["serial"] == it["serial"], r
        finally:
            restart_issuance(suite)


def test_issuance_crash_before_vendor_local_ca_resumes(suite):
    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    try:
        restart_issuance(suite, {"CAPLAT_FAULT": "issuance_crash_before_vendor", "CAPLAT_FAULT_ONCE": once,
                                 "CAPLAT_ISSUANCE_LEASE_SECONDS": "3"})
        leaf, token, cert_id = paid_cert(suite, "sm2", "personal")
        _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
        r = renew(suite, token, cert_id, leaf.key, csr)
        assert r.status in (502, 503), r
        it = intent(suite, cert_id)
        assert it["status"] == "pending" and entitlement(suite, cert_id) == "reserved"
        assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE cert_id = {q(cert_id)}") == [["1"]]
        restart_issuance(suite)  # the default configuration: its resumer takes over after the lease
        wait_issued(suite, cert_id)
        issued_once(suite, cert_id, None, it["serial"])
        r = collect(suite, token, cert_id, leaf, csr)
        assert r.status == 201 and r.json["serial"] == it["serial"], r
    finally:
        restart_issuance(suite)


def test_issuance_vendor_refusal_gives_entitlement_back(suite):
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim))
            leaf, token, cert_id = paid_cert(suite)
            _, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
            sim.control(reject=True)
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status == 422 and r.code == "CSR_REJECTED", r
            assert intent(suite, cert_id)["status"] == "failed"
            assert entitlement(suite, cert_id) == "paid"
            sim.control(reject=False)
            r = renew(suite, token, cert_id, leaf.key, csr)
            assert r.status == 201, r
            assert entitlement(suite, cert_id) == "used"
        finally:
            restart_issuance(suite)


def test_issuance_subject_change_of_a_vendor_certificate_forwards_its_revocation(suite):
    """自主变更 under a remote vendor CA, twice: the first change is issued
    by the vendor (SIMCA) and replaces a certificate that is not the
    vendor's (nothing forwarded); after a second rename the vendor's
    certificate is changed in turn, and its revocation (affiliation_changed)
    reaches the vendor through a vendor job, as an operator's does."""
    from test_issuance_new_application import change_issue, change_ready, renamed
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim))
            admin, leaf, token, account, cert_id = change_ready(suite, "rsa", "agent")
            change = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token).json
            _, first = change_issue(suite, token, change["application_id"], "rsa", change["subject"])
            assert first.status == 201, first
            assert cert_item(suite, token, cert_id)["vendor"] == "SIMCA"
            assert suite.psql(f"SELECT count(*) FROM issuance.vendor_jobs WHERE serial = {q(leaf.serial)}") == \
                [["0"]]

            renamed(suite, admin.uscc, "沈阳再名建设有限公司", 3)
            r = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token)
            assert r.status == 200 and r.json["application_id"] != change["application_id"], r
            assert r.json["previous_enterprise_name"] == "沈阳新名建设有限公司", r
            _, second = change_issue(suite, token, r.json["application_id"], "rsa", r.json["subject"])
            assert second.status == 201, second
            old = first.json["serial"]
            wait_until(lambda: any(x["serial"] == old and x["reason"] == "affiliation_changed"
                                   for x in sim.stats()["revocations"]), what="revocation forwarded")
            wait_until(lambda: suite.psql(f"SELECT status FROM issuance.vendor_jobs WHERE serial = {q(old)}")
                       == [["done"]], what="job done")
        finally:
            restart_issuance(suite)
