"""issuance, the vendor directory sync (issue 13) through nginx: a periodic
sync reads every adapter's directory from its cursor and enters the
certificates it lists into the registry with the same issuance.cert.registered
a binding gives (no account yet), so orders learns them; a holder who binds
later finds the certificate already known (one lineage, the account filled
in). The local CA answers from what it issued at its desk
(`caplat-issuance ca-issue`), the remote adapter from
tests/issuance/vendor_sim.py's GET /v1/directory; a second pass from the
stored cursor changes nothing."""
import datetime
import importlib.util
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (Leaf, auth_trusts_local_ca, ca_bind, keygen, new_uscc, q, restart_issuance,  # noqa: E402
                 run, serial_of)
from client import Api, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("issuance_vendor_tests",
                                               os.path.join(HERE, "test_issuance_vendor.py"))
_vendor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_vendor)
vendor_sim, remote_env, TOKEN = _vendor.vendor_sim, _vendor.remote_env, _vendor.TOKEN
_spec = importlib.util.spec_from_file_location("ca_manage_tests", os.path.join(HERE, "test_ca_manage.py"))
_ca_manage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ca_manage)

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


# ---- a vendor changes what it listed ------------------------------------------

def sim_change(sim, **body):
    req = urllib.request.Request(sim.url + "/control/change", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["seq"]


def sim_leaf(suite, answer, kind, holder, enterprise, uscc):
    """A Leaf (kit.py) of a key the simulator issued, to log in with."""
    d = os.path.join(suite.base, "vendor-sim-leaves")
    os.makedirs(d, exist_ok=True)
    name = uuid.uuid4().hex[:8]
    cert, key = os.path.join(d, f"{name}.cert.pem"), os.path.join(d, f"{name}.key.pem")
    with open(cert, "w") as f:
        f.write(answer["certificate"])
    with open(key, "w") as f:
        f.write(answer["key"])
    os.chmod(key, 0o600)
    return Leaf(cert, key, "rsa", kind, holder, enterprise, uscc)


def auth_trusts(suite, *extra_roots):
    """Restarts auth trusting the suite's vendor roots and extra_roots
    (none: the suite's bundle again, as auth_trusts_local_ca leaves it)."""
    bundle = suite.vendor_roots_bundle()
    if extra_roots:
        path = os.path.join(suite.base, "vendor-roots-sync.pem")
        with open(path, "w") as f:
            f.write(open(bundle).read())
            for r in extra_roots:
                f.write(open(r).read())
        bundle = path
    suite.kill("auth", signal.SIGTERM)
    suite.start_service("auth", {"CAPLAT_VENDOR_ROOTS": bundle})


def outbox_rows(suite, type_, cert_id):
    view = "audit_outbox" if type_.endswith(".audit.recorded") else "outbox"
    return [json.loads(r[0]) for r in suite.psql(
        f"SELECT data::text FROM issuance.{view} WHERE type = {q(type_)}"
        f" AND subject = {q(cert_id)} ORDER BY seq")]


def sync_counts(suite, cert_ids):
    return {c: tuple(len(outbox_rows(suite, t, c)) for t in
                     ("issuance.cert.registered", "issuance.cert.revoked", "issuance.audit.recorded"))
            for c in cert_ids}


def test_issuance_sync_applies_vendor_changes_to_known_certificates(suite):
    """A certificate the registry knows (synced, then bound by its holder)
    that the vendor changes — holder renamed, lock kind, key and platform
    associations changed — and one the vendor revokes are listed again
    "changed since" the cursor: the next pass applies each change once
    (audited certificate.synced, issuance.cert.registered again / the
    revocation's issuance.cert.revoked), keeps the lineage, its account and
    its validity, leaves an unchanged neighbour alone; passes after it and
    a re-read of the whole directory change nothing; CA管理 (the
    administrator), the holder's own list and orders show the new values."""
    uscc = new_uscc()
    admin = _ca_manage.enterprise_admin(suite, uscc)
    ent = "沈阳变更测试有限公司"
    # a fresh simulator numbers its directory from 1: forget another
    # test's cursor of SIMCA (issuance is running without that adapter)
    suite.psql("DELETE FROM issuance.vendor_sync WHERE vendor = 'SIMCA'")
    with vendor_sim(suite) as sim:
        try:
            restart_issuance(suite, remote_env(sim, **SYNC))
            common = dict(enterprise=ent, uscc=uscc, key_vendor="握奇", applied_at="2020-05-06T07:08:09Z", days=40)
            answers = {n: sim_issue(sim, holder=h, lock_kind="agent", key_serial=f"SIMKEY-{n}",
                                    platforms=["LN_JSGC"], **common)
                       for n, h in (("a", "变更甲"), ("b", "变更乙"), ("c", "变更丙"))}
            serial = {n: serial_of_pem(suite, a["certificate"]) for n, a in answers.items()}
            rows = {n: wait_synced(suite, s) for n, s in serial.items()}
            ids = {n: r["cert_id"] for n, r in rows.items()}
            wait_until(lambda: suite.psql("SELECT 1 FROM issuance.vendor_sync WHERE vendor = 'SIMCA'"
                                          " AND cursor = '3'"), what="cursor 3")
            # a's holder binds the key: the account is the binding's from now on
            auth_trusts(suite, os.path.join(suite.base, "vendor-sim", "roots.pem"))
            leaf = sim_leaf(suite, answers["a"], "agent", "变更甲", ent, uscc)
            token, account = ca_bind(suite, leaf)
            wait_until(lambda: registry_row(suite, serial["a"])["account_id"] == account,
                       what="the binding filled the account in")
            before = sync_counts(suite, ids.values())
            # (these three: other tests' work may add certificates meanwhile)
            mine = "(" + ",".join(q(s) for s in serial.values()) + ")"
            validity = suite.psql("SELECT serial, not_before, not_after, fingerprint_sha256, md5(pem)"
                                  f" FROM issuance.certificates WHERE serial IN {mine} ORDER BY serial")

            # the vendor changes a and revokes b: both listed again after the cursor
            assert sim_change(sim, serial=serial["a"], holder="变更甲新名", lock_kind="project_lead",
                              key_serial="SIMKEY-a2", platforms=["LN_JSGC", "DL_GGZY"]) == 4
            assert sim_change(sim, serial=serial["b"], revoked_at="2026-01-02T03:04:05Z",
                              revocation_reason="key_compromise") == 5
            listed = sim_get(sim, "/v1/directory?since=3")
            assert [serial_of_pem(suite, i["certificate"]) for i in listed["items"]] == [serial["a"], serial["b"]]
            wait_until(lambda: suite.psql("SELECT 1 FROM issuance.vendor_sync WHERE vendor = 'SIMCA'"
                                          " AND cursor = '5'"), what="cursor 5")

            def check_applied():
                a = registry_row(suite, serial["a"])
                assert a["cert_id"] == ids["a"] and a["account_id"] == account, a
                assert (a["holder"], a["lock_kind"], a["key_serial"], a["key_vendor"], a["platforms"]) == (
                    "变更甲新名", "project_lead", "SIMKEY-a2", "握奇", "LN_JSGC,DL_GGZY"), a
                assert suite.psql("SELECT count(*) FROM issuance.lineages WHERE uscc = " + q(uscc)) == [["3"]]
                assert suite.psql(f"SELECT revoked_at, revocation_reason FROM issuance.certificates"
                                  f" WHERE serial = {q(serial['b'])}") == [["2026-01-02 03:04:05+00",
                                                                              "key_compromise"]]
                assert registry_row(suite, serial["c"]) == rows["c"]
                # the certificates themselves (validity, PEM) untouched
                assert suite.psql("SELECT serial, not_before, not_after, fingerprint_sha256, md5(pem)"
                                  f" FROM issuance.certificates WHERE serial IN {mine} ORDER BY serial") == validity
                assert len(validity) == 3
                counts = sync_counts(suite, ids.values())
                reg, rev, aud = before[ids["a"]]
                assert counts[ids["a"]] == (reg + 1, rev, aud + 1), counts
                reg, rev, aud = before[ids["b"]]
                assert counts[ids["b"]] == (reg, rev + 1, aud + 1), counts
                assert counts[ids["c"]] == before[ids["c"]], counts

            check_applied()
            # what was announced and audited
            ev = outbox_rows(suite, "issuance.cert.registered", ids["a"])[-1]
            assert (ev["holder"], ev["lock_kind"], ev["platforms"], ev["account_id"]) == (
                "变更甲新名", "project_lead", ["LN_JSGC", "DL_GGZY"], account), ev
            audit = outbox_rows(suite, "issuance.audit.recorded", ids["a"])[-1]
            assert audit["action"] == "certificate.synced" and audit["actor"]["type"] == "system", audit
            assert audit["actor"]["id"] == "system:issuance" and audit["uscc"] == uscc, audit
            assert (audit["before"]["holder"], audit["before"]["platforms"], audit["before"]["key_serial"]) == (
                "变更甲", ["LN_JSGC"], "SIMKEY-a"), audit
            assert (audit["after"]["holder"], audit["after"]["platforms"], audit["after"]["lock_kind"]) == (
                "变更甲新名", ["LN_JSGC", "DL_GGZY"], "project_lead"), audit
            revoked = outbox_rows(suite, "issuance.cert.revoked", ids["b"])
            assert [(r["serial"], r["reason"], r["revoked_at"]) for r in revoked] == [
                (serial["b"], "key_compromise", "2026-01-02T03:04:05Z")], revoked
            assert outbox_rows(suite, "issuance.audit.recorded", ids["b"])[-1]["action"] == "certificate.sync_revoked"

            # exactly once: more passes, then the whole directory read again
            asked = sim.stats()["requests"]
            wait_until(lambda: sim.stats()["requests"] >= asked + 2, what="two more passes")
            check_applied()
            suite.psql("UPDATE issuance.vendor_sync SET cursor = NULL WHERE vendor = 'SIMCA'")
            wait_until(lambda: suite.psql("SELECT 1 FROM issuance.vendor_sync WHERE vendor = 'SIMCA'"
                                          " AND cursor = '5'"), what="the directory read again")
            check_applied()

            # CA管理: the administrator sees the new values; b revoked
            def listed_items():
                r = _ca_manage.certs(suite, admin.token)
                assert r.status == 200, r
                return {i["id"]: i for i in r.json["items"]}
            items = wait_until(lambda: (lambda it: it if it.get(ids["a"], {}).get("holder") == "变更甲新名"
                                        else None)(listed_items()), what="CA管理 shows the change")
            ia = items[ids["a"]]
            assert (ia["holder"], ia["lock_kind"], ia["key_serial"], ia["platforms"], ia["bound"],
                    ia["account_id"], ia["platforms_known"]) == (
                "变更甲新名", "project_lead", "SIMKEY-a2", ["LN_JSGC", "DL_GGZY"], True, account, True), ia
            assert items[ids["b"]]["status"] == "revoked", items[ids["b"]]
            ic = items[ids["c"]]
            assert (ic["holder"], ic["lock_kind"], ic["platforms"], ic["status"]) == (
                "变更丙", "agent", ["LN_JSGC"], "valid"), ic
            # the holder's own list, and orders
            r = Api(suite).get("/api/v1/certs", token=token)
            assert r.status == 200 and [i["id"] for i in r.json["items"]] == [ids["a"]], r
            assert r.json["items"][0]["holder"] == "变更甲新名", r.json["items"][0]
            wait_until(lambda: suite.psql(f"SELECT holder, lock_kind, array_to_string(platforms, ',')"
                                          f" FROM orders.certs WHERE cert_id = {q(ids['a'])}")
                       == [["变更甲新名", "project_lead", "LN_JSGC,DL_GGZY"]], what="orders learned the change")
        finally:
            restart_issuance(suite)
            suite.psql("DELETE FROM issuance.vendor_sync WHERE vendor = 'SIMCA'")
            auth_trusts(suite)


def test_issuance_sync_page_twice_listed_and_listed_revoked(suite):
    """sync_page() (101_sync_page.sql), as the sync calls it for one page:
    a certificate listed twice counts once, its last listing; a new
    certificate listed revoked is registered, then revoked
    (issuance.cert.registered before issuance.cert.revoked); the same page
    again changes nothing; CA管理 shows both as listed."""
    uscc = new_uscc()
    admin = _ca_manage.enterprise_admin(suite, uscc)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def item(serial, holder, **kw):
        d = {"lineage": str(uuid.uuid4()), "cert": str(uuid.uuid4()), "event": str(uuid.uuid4()),
             "issuer": "CN=PAGE CA,O=PAGE,C=CN", "serial": serial, "vendor": "PAGECA",
             "not_before": _ca_manage.iso(now - datetime.timedelta(days=10)),
             "not_after": _ca_manage.iso(now + datetime.timedelta(days=100)), "type": "enterprise",
             "lock_kind": "agent", "holder": holder, "enterprise": "沈阳分页测试有限公司", "uscc": uscc,
             "platforms": ["LN_JSGC"], "key_serial": None, "key_vendor": None,
             "applied_at": None, "revoked_at": None, "reason": None}
        d.update(kw)
        return d

    s1, s2 = uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex[:16].upper()
    page = [item(s1, "分页甲"), item(s2, "分页乙", revoked_at="2026-03-04T05:06:07Z", reason="superseded"),
            item(s1, "分页甲二", platforms=["LN_JSGC", "LN_ZTB"])]
    audit = {"actor": {"type": "system", "id": "system:issuance"}, "service": "issuance",
             "action": "certificate.synced", "object_type": "certificate"}
    call = ("SET search_path TO issuance, public; SELECT * FROM sync_page("
            f"{q(json.dumps(page))}::jsonb, {q(json.dumps(audit))}::jsonb)")
    assert suite.psql(call)[-1] == ["2", "0", "1"]
    ids = {s: suite.psql(f"SELECT cert_id FROM issuance.certificates WHERE serial = {q(s)}")[0][0] for s in (s1, s2)}
    assert registry_row(suite, s1)["holder"] == "分页甲二" and registry_row(suite, s1)["platforms"] == "LN_JSGC,LN_ZTB"
    types = [r[0] for r in suite.psql(f"SELECT type FROM issuance.outbox WHERE subject = {q(ids[s2])}"
                                      " AND type LIKE 'issuance.cert.%' ORDER BY seq")]
    assert types == ["issuance.cert.registered", "issuance.cert.revoked"], types
    before = sync_counts(suite, ids.values())
    assert before[ids[s1]] == (1, 0, 0) and before[ids[s2]] == (1, 1, 1), before
    # the same page again (fresh ids): nothing
    for d in page:
        d.update(lineage=str(uuid.uuid4()), cert=str(uuid.uuid4()), event=str(uuid.uuid4()))
    call = ("SET search_path TO issuance, public; SELECT * FROM sync_page("
            f"{q(json.dumps(page))}::jsonb, {q(json.dumps(audit))}::jsonb)")
    assert suite.psql(call)[-1] == ["0", "0", "0"]
    assert sync_counts(suite, ids.values()) == before
    r = _ca_manage.certs(suite, admin.token)
    assert r.status == 200, r
    items = {i["id"]: i for i in r.json["items"]}
    assert (items[ids[s1]]["holder"], items[ids[s1]]["platforms"], items[ids[s1]]["status"]) == (
        "分页甲二", ["LN_JSGC", "LN_ZTB"], "valid"), items[ids[s1]]
    assert items[ids[s2]]["status"] == "revoked", items[ids[s2]]
