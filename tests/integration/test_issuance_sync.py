"""issuance, the vendor directory sync (issue 13) through nginx: a periodic
sync reads every adapter's directory from its cursor and enters the
certificates it lists into the registry with the same issuance.cert.registered
a binding gives (no account yet), so orders learns them; a holder who binds
later finds the certificate already known (one lineage, the account filled
in). The local CA answers from what it issued at its desk
(`caplat-issuance ca-issue`), the remote adapter from
tests/issuance/vendor_sim.py's GET /v1/directory; a second pass from the
stored cursor changes nothing."""
import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (Leaf, auth_trusts_local_ca, ca_bind, keygen, new_uscc, q, restart_issuance,  # noqa: E402
                 run, serial_of)
from client import wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("issuance_vendor_tests",
                                               os.path.join(HERE, "test_issuance_vendor.py"))
_vendor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_vendor)
vendor_sim, remote_env, TOKEN = _vendor.vendor_sim, _vendor.remote_env, _vendor.TOKEN

SYNC = {"CAPLAT_ISSUANCE_SYNC_MS": "300"}


def desk_issue(suite, holder, uscc, kind="agent", enterprise="沈阳同步测试有限公司", **meta):
    """A first application at the local CA's desk: a new RSA key, a CSR with
    the USB-key subject, `caplat-issuance ca-issue`; returns the Leaf."""
    d = os.path.join(suite.base, "issuance-pki")
    os.makedirs(d, exist_ok=True)
    name = f"desk-{uuid.uuid4().hex[:8]}"
    key, csr, cert = (os.path.join(d, f"{name}.{x}") for x in ("key.pem", "csr.pem", "cert.pem"))
    keygen("rsa", key)
    subj = f"/C=CN/O={enterprise}/OU={kind}/CN={holder}/organizationIdentifier={uscc}"
    run("openssl", "req", "-new", "-utf8", "-key", key, "-subj", subj, "-out", csr)
    args = ["--csr", csr, "--days", "60"]
    for k, v in meta.items():
        args += ["--" + k.replace("_", "-"), v]
    env = dict(os.environ, **suite.service_env("issuance"), **suite.extra_env("issuance"))
    out = subprocess.run([os.path.join(suite.build, "bin", "caplat-issuance"), "ca-issue", *args],
                         env=env, check=True, capture_output=True, text=True)
    with open(cert, "w") as f:
        f.write(out.stdout)
    return Leaf(cert, key, "rsa", kind, holder, enterprise, uscc)


def registry_row(suite, serial):
    rows = suite.psql(
        "SELECT l.id, l.account_id, l.key_serial, l.key_vendor, l.applied_at IS NOT NULL,"
        " c.source, c.vendor, array_to_string(c.platforms, ','), l.holder, l.lock_kind, l.uscc"
        f" FROM issuance.certificates c JOIN issuance.lineages l ON l.id = c.cert_id"
        f" WHERE c.serial = {q(serial)}")
    if not rows:
        return None
    keys = ["cert_id", "account_id", "key_serial", "key_vendor", "applied", "source", "vendor",
            "platforms", "holder", "lock_kind", "uscc"]
    return dict(zip(keys, rows[0]))


def wait_synced(suite, serial, timeout=20):
    return wait_until(lambda: registry_row(suite, serial), timeout=timeout,
                      what=f"certificate {serial} synced into the registry")


def registered_events(suite, serial):
    return suite.psql("SELECT data->>'account_id', data->>'cert_id' FROM issuance.outbox"
                      " WHERE type = 'issuance.cert.registered'"
                      f" AND data->>'serial' = {q(serial)} ORDER BY seq")


def test_issuance_sync_local_ca_then_binding_finds_it(suite):
    uscc = new_uscc()
    try:
        restart_issuance(suite, SYNC)
        leaf = desk_issue(suite, "同步持锁人", uscc, key_serial="KEY-0001-AB", key_vendor="飞天诚信",
                          platforms="LN_JSGC,DL_GGZY", applied_at="2019-03-01T00:00:00Z")
        row = wait_synced(suite, leaf.serial)
        assert row["source"] == "sync" and row["account_id"] == "", row
        assert row["key_serial"] == "KEY-0001-AB" and row["key_vendor"] == "飞天诚信", row
        assert row["platforms"] == "LN_JSGC,DL_GGZY" and row["holder"] == "同步持锁人", row
        assert row["lock_kind"] == "agent" and row["uscc"] == uscc and row["applied"] == "t", row
        assert row["vendor"] == "caplat", row
        # the same event as a binding's, without an account: orders learns it
        events = registered_events(suite, leaf.serial)
        assert events == [["", row["cert_id"]]], events
        wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(row['cert_id'])}"),
                   what="orders learned the synced certificate")
        assert suite.psql("SELECT cursor IS NOT NULL, last_error FROM issuance.vendor_sync"
                          " WHERE vendor = 'caplat'") == [["t", ""]]
        # the holder binds later: the same lineage, the account filled in
        auth_trusts_local_ca(suite)
        token, account = ca_bind(suite, leaf)
        wait_until(lambda: registry_row(suite, leaf.serial)["account_id"] == account,
                   what="binding filled the account into the synced lineage")
        assert registry_row(suite, leaf.serial)["cert_id"] == row["cert_id"]
        assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE serial = {q(leaf.serial)}") == [["1"]]
        # the binding registers the account once more, so orders learns the
        # holder (010_import.sql's register_certificate)
        assert registered_events(suite, leaf.serial) == [["", row["cert_id"]],
                                                        [account, row["cert_id"]]]
        # the holder sees it as theirs
        from client import Api
        r = Api(suite).get("/api/v1/certs", token=token)
        assert r.status == 200 and [i["id"] for i in r.json["items"]] == [row["cert_id"]], r
        item = r.json["items"][0]
        assert item["bound"] is True and item["key_serial"] == "KEY-0001-AB", item
        assert item["applied_at"] == "2019-03-01T00:00:00.000Z", item
    finally:
        restart_issuance(suite)


def sim_get(sim, path):
    req = urllib.request.Request(sim.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def sim_issue(sim, **body):
    req = urllib.request.Request(sim.url + "/control/issue", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    return answer


def serial_of_pem(suite, pem):
    path = os.path.join(suite.base, f"sim-{uuid.uuid4().hex[:8]}.pem")
    with open(path, "w") as f:
        f.write(pem)
    return serial_of(path)


def test_issuance_sync_remote_vendor_directory_and_cursor(suite):
    uscc = new_uscc()
    with vendor_sim(suite) as sim:
        try:
            # the directory first, the adapter later: what the vendor holds already
            firsts = [sim_issue(sim, holder=f"远程持锁人{i}", enterprise="沈阳远程测试有限公司", uscc=uscc,
                                lock_kind="project_lead", key_serial=f"SIMKEY-{i}", key_vendor="握奇",
                                platforms=["LN_JSGC"], applied_at="2020-05-06T07:08:09Z", days=40)
                      for i in range(3)]
            listed = sim_get(sim, f"/v1/directory?uscc={uscc}")
            assert len(listed["items"]) == 3 and listed["more"] is False, listed
            restart_issuance(suite, remote_env(sim, **SYNC))
            serials = [serial_of_pem(suite, a["certificate"]) for a in firsts]
            rows = [wait_synced(suite, s) for s in serials]
            for i, row in enumerate(rows):
                assert row["vendor"] == "SIMCA" and row["source"] == "sync", row
                assert row["key_serial"] == f"SIMKEY-{i}" and row["key_vendor"] == "握奇", row
                assert row["lock_kind"] == "project_lead" and row["account_id"] == "", row
            cursor = wait_until(lambda: suite.psql(
                "SELECT cursor FROM issuance.vendor_sync WHERE vendor = 'SIMCA' AND cursor = '3'"),
                what="the cursor advanced to the last one read")
            assert cursor == [["3"]]
            # changed since the cursor: only the new one is read
            asked = sim.stats()["requests"]
            later = sim_issue(sim, holder="后来者", enterprise="沈阳远程测试有限公司", uscc=uscc,
                              lock_kind="agent", days=40)
            serial = serial_of_pem(suite, later["certificate"])
            row = wait_synced(suite, serial)
            assert row["holder"] == "后来者" and row["platforms"] == "", row
            wait_until(lambda: suite.psql("SELECT 1 FROM issuance.vendor_sync WHERE vendor = 'SIMCA'"
                                          " AND cursor = '4'"), what="cursor 4")
            assert sim.stats()["requests"] > asked  # it keeps asking from its cursor
            for s in serials + [serial]:
                assert len(registered_events(suite, s)) == 1, s
            # a vendor failing: the cursor stays, the error is kept, nothing breaks
            sim.control(fail=2)
            wait_until(lambda: suite.psql("SELECT 1 FROM issuance.vendor_sync WHERE vendor = 'SIMCA'"
                                          " AND last_error LIKE '%503%'"), what="failure recorded")
            assert suite.psql("SELECT cursor FROM issuance.vendor_sync WHERE vendor = 'SIMCA'") == [["4"]]
        finally:
            restart_issuance(suite)
