"""issuance, the operator's bulk import of certificate records through nginx
(POST /api/v1/cert-imports?format=csv|jsonl&dry_run=…, GET …/imports/{id}):
CSV and JSON Lines commits, a dry run that changes nothing and reports rows,
a re-import that changes nothing (rows, events), a changed row that updates
and is audited, every bad file refused with its report and no change, an
imported certificate found (not duplicated) when its holder binds the key, a
first renewal quote priced from the imported platforms, a kill -9 of
issuance in the middle of a large import that leaves nothing and can be run
again, and the import's events (one array per field) applied by orders and
auth, as is the layout before it."""
import csv
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kit import ca_bind, make_leaf, new_uscc, q, staff_token  # noqa: E402
from client import Api, call, wait_until  # noqa: E402

COLUMNS = ["certificate", "issuer", "serial", "not_before", "not_after", "holder", "lock_kind",
           "uscc", "key_vendor", "key_serial", "first_applied_on", "platforms"]


def row_of(leaf, platforms=("LN_JSGC", "SY_GGZY"), pem=True, **over):
    r = {"certificate": leaf.pem if pem else "", "issuer": "" if pem else leaf.issuer,
         "serial": "" if pem else leaf.serial, "not_before": "", "not_after": "",
         "holder": leaf.holder, "lock_kind": leaf.kind, "uscc": leaf.uscc or "",
         "key_vendor": "天威诚信", "key_serial": "TW" + leaf.serial[-8:],
         "first_applied_on": "2019-03-01", "platforms": ",".join(platforms)}
    r.update(over)
    return r


def to_csv(rows, columns=COLUMNS):
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return out.getvalue().encode()


def to_jsonl(rows):
    out = []
    for r in rows:
        o = {k: v for k, v in r.items() if v != ""}
        if "platforms" in o:
            o["platforms"] = [p for p in o["platforms"].split(",") if p]
        out.append(json.dumps(o, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


def post_import(suite, token, body, fmt="csv", dry_run=False, timeout=60):
    return call(suite.gateway, "POST", f"/api/v1/cert-imports?format={fmt}&dry_run={str(dry_run).lower()}",
                token=token, raw=body, timeout=timeout,
                headers={"Content-Type": "text/csv" if fmt == "csv" else "application/x-ndjson"})


def get_import(suite, token, import_id):
    r = Api(suite).get(f"/api/v1/cert-imports/{import_id}", token=token)
    assert r.status == 200, r
    return r.json


def run_import(suite, token, body, fmt="csv", timeout=60):
    """A committed import, waited for: its final state."""
    r = post_import(suite, token, body, fmt)
    assert r.status == 202, r
    assert r.json["status"] == "running" and r.headers.get("Location", "").endswith(r.json["id"])
    return wait_until(lambda: (lambda s: s if s["status"] != "running" else None)(
        get_import(suite, token, r.json["id"])), timeout=timeout, interval=0.2, what="import finished")


def cert_rows(suite, serials):
    return suite.psql("SELECT c.cert_id, c.source, array_to_string(c.platforms, ','), l.holder,"
                      " l.key_vendor, l.key_serial, l.first_applied_on, l.account_id"
                      " FROM issuance.certificates c JOIN issuance.lineages l ON l.id = c.cert_id"
                      f" WHERE c.serial IN ({','.join(q(s) for s in serials)}) ORDER BY c.serial")


def outbox_count(suite, type_, subjects=None):
    where = f"type = {q(type_)}"
    if subjects is not None:
        where += f" AND subject IN ({','.join(q(s) for s in subjects)})"
    # audit entries: held or already flushed into their batch (096)
    table = "issuance.audit_outbox" if type_.endswith(".audit.recorded") else "issuance.outbox"
    return int(suite.psql(f"SELECT count(*) FROM {table} WHERE {where}")[0][0])


def announced(suite, ids=None):
    """How often certificates were announced to the other services: entries
    of issuance.certs.imported (an import's batches of up to 500) plus
    issuance.cert.registered events (bindings, renewals, syncs)."""
    only = "" if ids is None else f" AND e IN ({','.join(q(i) for i in ids)})"
    # (one array per field since issuance 091: cert_id lists the batch's)
    batched = int(suite.psql("SELECT count(*) FROM issuance.outbox o,"
                             " jsonb_array_elements_text(o.data->'cert_id') e"
                             f" WHERE o.type = 'issuance.certs.imported'{only}")[0][0])
    return batched + outbox_count(suite, "issuance.cert.registered", ids)


def registry_size(suite):
    return int(suite.psql("SELECT count(*) FROM issuance.certificates")[0][0])


def catalogue_ready(suite):
    wait_until(lambda: suite.psql("SELECT 1 FROM issuance.platform_catalogue WHERE code = 'SF_JSXM'"),
               timeout=20, what="the platform catalogue reached issuance")


# ---------------------------------------------------------------- commits

def test_issuance_import_csv_dry_run_commit_and_reimport(suite):
    catalogue_ready(suite)
    op = staff_token(suite)
    uscc = new_uscc()
    a = make_leaf(suite, "ec", "master", uscc=uscc)
    b = make_leaf(suite, "rsa", "project_lead", uscc=uscc, enterprise=a.enterprise)
    body = to_csv([row_of(a), row_of(b, ("LN_JSGC",))])

    # A dry run answers its report and changes nothing.
    before, events = registry_size(suite), announced(suite)
    r = post_import(suite, op, body, dry_run=True)
    assert r.status == 200, r
    assert r.json["dry_run"] is True and r.json["status"] == "checked", r
    assert (r.json["rows_total"], r.json["inserted"], r.json["updated"], r.json["unchanged"]) == (2, 2, 0, 0)
    assert r.json["errors"] == [] and r.json["error_count"] == 0
    assert registry_size(suite) == before and cert_rows(suite, [a.serial, b.serial]) == []
    assert announced(suite) == events

    # The commit: 202 at once, then done; each certificate registered once.
    done = run_import(suite, op, body)
    assert done["status"] == "done" and done["dry_run"] is False, done
    assert (done["rows_total"], done["rows_done"], done["inserted"], done["updated"], done["unchanged"]) == \
        (2, 2, 2, 0, 0)
    assert done["finished_at"] and done["bytes"] == len(body)
    rows = cert_rows(suite, [a.serial, b.serial])
    assert len(rows) == 2
    by_holder = {row[3]: row for row in rows}
    assert by_holder[a.holder][1:3] == ("import", "LN_JSGC,SY_GGZY") or \
        list(by_holder[a.holder][1:3]) == ["import", "LN_JSGC,SY_GGZY"]
    assert list(by_holder[b.holder][1:7]) == ["import", "LN_JSGC", b.holder, "天威诚信", "TW" + b.serial[-8:],
                                              "2019-03-01"]
    assert by_holder[a.holder][7] == ""  # not bound yet
    ids = [row[0] for row in rows]
    # Announced once each, in one issuance.certs.imported of the import.
    assert announced(suite, ids) == 2
    assert suite.psql("SELECT count(*), sum(jsonb_array_length(data->'cert_id')) FROM issuance.outbox"
                      f" WHERE type = 'issuance.certs.imported' AND subject = {q(done['id'])}")[0] in \
        (("1", "2"), ["1", "2"])
    audits = outbox_count(suite, "issuance.audit.recorded")
    # orders learns them (its read model of the registry), auth which
    # certificate each cert_id is (its notices).
    wait_until(lambda: len(suite.psql("SELECT 1 FROM orders.certs WHERE cert_id IN"
                                      f" ({','.join(q(i) for i in ids)})")) == 2,
               timeout=120, what="orders learned the imported certificates")
    wait_until(lambda: len(suite.psql("SELECT 1 FROM auth.notice_certs WHERE cert_id IN"
                                      f" ({','.join(q(i) for i in ids)})")) == 2,
               timeout=120, what="auth learned the imported certificates")
    # The event is one array per field (issuance 091), each certificate's
    # facts at the same index, and the consumers read them so.
    ev = json.loads(suite.psql("SELECT data::text FROM issuance.outbox WHERE type = 'issuance.certs.imported'"
                               f" AND subject = {q(done['id'])}")[0][0])
    assert ev["count"] == 2 and sorted(ev["cert_id"]) == sorted(ids), ev
    k = ev["cert_id"].index(by_holder[b.holder][0])
    assert (ev["serial"][k], ev["holder"][k], ev["lock_kind"][k], ev["uscc"][k], ev["platforms"][k],
            ev["account_id"][k]) == (b.serial, b.holder, "project_lead", uscc, ["LN_JSGC"], None), ev
    got = suite.psql("SELECT c.serial, c.holder, c.lock_kind, c.uscc, array_to_string(c.platforms, ','),"
                     " c.not_after = i.not_after, c.not_before = i.not_before, n.issuer = i.issuer"
                     " FROM orders.certs c JOIN issuance.certificates i ON i.cert_id = c.cert_id"
                     " JOIN auth.notice_certs n ON n.cert_id = c.cert_id AND n.serial = i.serial"
                     f" WHERE c.cert_id = {q(by_holder[b.holder][0])}")
    assert [list(r) for r in got] == [[b.serial, b.holder, "project_lead", uscc, "LN_JSGC", "t", "t", "t"]], got

    # The same file again changes nothing: no row, no event, no audit.
    again = run_import(suite, op, body)
    assert (again["status"], again["inserted"], again["updated"], again["unchanged"]) == ("done", 0, 0, 2)
    assert cert_rows(suite, [a.serial, b.serial]) == rows
    assert announced(suite, ids) == 2
    assert outbox_count(suite, "issuance.audit.recorded") == audits


def test_issuance_import_jsonl_changed_row_updates_and_is_audited(suite):
    catalogue_ready(suite)
    op = staff_token(suite)
    a = make_leaf(suite, "ec", "agent")
    p = make_leaf(suite, "sm2", "personal")
    # One row by PEM, one by issuer DN + serial (the old platform's export).
    rows = [row_of(a, ("LN_ZTB",)),
            row_of(p, ("SY_GGZY",), pem=False, not_after="2027-06-30", not_before="2025-06-30")]
    done = run_import(suite, op, to_jsonl(rows), fmt="jsonl")
    assert (done["status"], done["format"], done["inserted"]) == ("done", "jsonl", 2), done
    got = cert_rows(suite, [p.serial])
    assert list(got[0][1:3]) == ["import", "SY_GGZY"]
    assert suite.psql(f"SELECT pem IS NULL, extract(year FROM not_after)::int FROM issuance.certificates"
                      f" WHERE serial = {q(p.serial)}")[0] in (("t", "2027"), ["t", "2027"])
    cert_id = cert_rows(suite, [a.serial])[0][0]
    audits = outbox_count(suite, "issuance.audit.recorded", [cert_id])
    registered = announced(suite, [cert_id])

    # A changed row (platforms and holder) updates the record, audited.
    rows[0] = row_of(a, ("LN_ZTB", "LN_GGZY"), holder="新持锁人")
    done = run_import(suite, op, to_jsonl(rows), fmt="jsonl")
    assert (done["status"], done["inserted"], done["updated"], done["unchanged"]) == ("done", 0, 1, 1), done
    got = cert_rows(suite, [a.serial])[0]
    assert list(got[2:4]) == ["LN_GGZY,LN_ZTB", "新持锁人"]
    assert outbox_count(suite, "issuance.audit.recorded", [cert_id]) == audits + 1
    data = json.loads(suite.psql("SELECT data::text FROM issuance.audit_outbox WHERE type = 'issuance.audit.recorded'"
                                 f" AND subject = {q(cert_id)} ORDER BY created_at DESC LIMIT 1")[0][0])
    assert data["action"] == "certificate.imported" and data["actor"]["type"] == "staff"
    assert data["before"]["platforms"] == ["LN_ZTB"] and data["after"]["platforms"] == ["LN_GGZY", "LN_ZTB"]
    assert data["before"]["holder"] == a.holder and data["after"]["holder"] == "新持锁人"
    assert data["after"]["import_id"] == done["id"]
    # Announced again (issuance.certs.imported): orders keeps the new set.
    assert announced(suite, [cert_id]) == registered + 1
    wait_until(lambda: suite.psql(f"SELECT holder FROM orders.certs WHERE cert_id = {q(cert_id)}")
               in ([["新持锁人"]], [("新持锁人",)]), timeout=120, what="orders learned the changed holder")
    # One summary entry for the import.
    assert outbox_count(suite, "issuance.audit.recorded", [done["id"]]) == 1


def test_issuance_import_event_of_the_layout_before_091_still_applied(suite):
    """An issuance.certs.imported written before issuance 091 ({import_id,
    certs: [issuance.cert.registered data]}), still in flight during an
    upgrade: orders and auth apply it as before. Published straight to NATS
    (build/bin/bustool), as issuance would have."""
    import datetime
    uscc = new_uscc()
    import_id, ids = str(uuid.uuid4()), [str(uuid.uuid4()), str(uuid.uuid4())]
    serials = [secrets.token_hex(8).upper() for _ in ids]
    certs = [{"cert_id": c, "serial": s, "issuer": "CN=old layout CA", "type": "enterprise",
              "holder": f"旧格式{i}", "enterprise_name": "旧格式企业", "uscc": uscc, "lock_kind": "agent",
              "lock_id": None, "vendor": "caplat test", "account_id": None,
              "not_before": "2025-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
              "platforms": ["LN_JSGC"], "platforms_known": True, "fingerprint_sha256": None,
              "registered_at": "2026-01-01T00:00:00Z"} for i, (c, s) in enumerate(zip(ids, serials))]
    event_id = str(uuid.uuid4())
    envelope = {"specversion": "1.0", "id": event_id, "source": "/caplat/issuance",
                "type": "issuance.certs.imported", "subject": import_id,
                "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "datacontenttype": "application/json", "data": {"import_id": import_id, "certs": certs}}
    env = dict(os.environ, CAPLAT_NATS_URL=f"nats://127.0.0.1:{suite.ports['nats']}")
    subprocess.run([os.path.join(suite.build, "bin", "bustool"), "publish", "caplat.issuance.certs.imported",
                    event_id, json.dumps(envelope)], env=env, check=True, capture_output=True)
    listed = ",".join(q(i) for i in ids)
    wait_until(lambda: suite.psql(f"SELECT count(*) FROM orders.certs WHERE cert_id IN ({listed})"
                                  " AND holder LIKE '旧格式%' AND platforms = '{LN_JSGC}'")[0][0] == "2",
               timeout=60, what="orders applied the earlier layout")
    wait_until(lambda: suite.psql(f"SELECT count(*) FROM auth.notice_certs WHERE cert_id IN ({listed})"
                                  " AND issuer = 'CN=old layout CA'")[0][0] == "2",
               timeout=60, what="auth applied the earlier layout")


# ---------------------------------------------------------------- bad files

def self_signed(suite):
    d = os.path.join(suite.base, "issuance-pki")
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "rogue.key"), os.path.join(d, "rogue.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=rogue/O=rogue"],
                   check=True, capture_output=True)
    return open(cert).read()


def test_issuance_import_bad_files_refused_with_report(suite):
    catalogue_ready(suite)
    op = staff_token(suite)
    good = make_leaf(suite, "ec", "project_lead")
    other = make_leaf(suite, "ec", "agent")
    bad_uscc = good.uscc[:-1] + ("0" if good.uscc[-1] != "0" else "1")
    cases = [
        ("csv", b"holder,lock_kind\n" + "张三".encode("gbk") + b",master\n", "ENCODING_INVALID", None, 2),
        ("csv", to_csv([row_of(good)], [c for c in COLUMNS if c != "platforms"]), "COLUMN_MISSING",
         "platforms", 1),
        ("csv", to_csv([row_of(good), row_of(other, certificate="-----BEGIN CERTIFICATE-----\nAAAA\n"
                                                                "-----END CERTIFICATE-----\n")]),
         "CERT_INVALID", "certificate", None),
        ("csv", to_csv([row_of(good), row_of(other, certificate=self_signed(suite))]), "CERT_UNTRUSTED",
         "certificate", None),
        ("jsonl", to_jsonl([row_of(good), row_of(other, pem=False, issuer="CN=Nobody,O=Rogue CA",
                                                 not_after="2027-01-01")]), "CERT_UNTRUSTED", "issuer", 2),
        ("csv", to_csv([row_of(good), row_of(other, uscc=bad_uscc)]), "USCC_INVALID", "uscc", None),
        ("jsonl", to_jsonl([row_of(good), row_of(other, platforms="LN_JSGC,XX_NOPE")]), "PLATFORM_UNKNOWN",
         "platforms", 2),
        ("csv", to_csv([row_of(good), row_of(other, lock_kind="boss")]), "LOCK_KIND_INVALID", "lock_kind",
         None),
        # an agent's key imported as the master lock (priced and shown as one)
        ("jsonl", to_jsonl([row_of(good), row_of(other, lock_kind="master")]), "LOCK_KIND_MISMATCH",
         "lock_kind", 2),
        ("jsonl", to_jsonl([row_of(good), row_of(other, first_applied_on="2019-02-30")]), "DATE_INVALID",
         "first_applied_on", 2),
        ("jsonl", to_jsonl([row_of(good), row_of(good)]), "ROW_DUPLICATE", "serial", 2),
        ("jsonl", to_jsonl([row_of(good)]) + b"{not json\n", "ROW_MALFORMED", None, 2),
    ]
    before = registry_size(suite)
    events = int(suite.psql("SELECT count(*) FROM issuance.outbox"
                                 " WHERE type <> 'issuance.audit.batch'")[0][0])
    for fmt, body, code, field, line in cases:
        for dry in (True, False):
            r = post_import(suite, op, body, fmt, dry_run=dry)
            if dry:
                assert r.status == 200, (code, r)
                report = r.json
            else:
                assert r.status == 202, (code, r)
                report = wait_until(lambda: (lambda s: s if s["status"] != "running" else None)(
                    get_import(suite, op, r.json["id"])), what="import finished")
            assert report["status"] == "refused", (code, report)
            assert report["error_count"] >= 1 and report["inserted"] is None, (code, report)
            e = report["errors"][0]
            assert e["code"] == code and e.get("field") == field and e["message"], (code, report)
            if line is not None:
                assert e["line"] == line, (code, report)
            else:
                assert e["line"] >= 2, (code, report)
    # Nothing of any of them: not even the good rows.
    assert registry_size(suite) == before
    assert cert_rows(suite, [good.serial, other.serial]) == []
    assert int(suite.psql("SELECT count(*) FROM issuance.outbox"
                                 " WHERE type <> 'issuance.audit.batch'")[0][0]) == events


def test_issuance_import_request_checks(suite):
    op = staff_token(suite)
    body = to_csv([])
    r = call(suite.gateway, "POST", "/api/v1/cert-imports?format=xml", token=op, raw=body)
    assert (r.status, r.code, r.json["error"].get("field")) == (400, "BAD_REQUEST", "format"), r
    r = call(suite.gateway, "POST", "/api/v1/cert-imports?format=csv", token=op, raw=b"")
    assert (r.status, r.code) == (400, "FILE_EMPTY"), r
    r = call(suite.gateway, "POST", "/api/v1/cert-imports?format=csv", raw=body)
    assert r.status == 401, r
    # Reviewers read certificates but do not import them.
    r = call(suite.gateway, "POST", "/api/v1/cert-imports?format=csv", token=staff_token(suite, "reviewer"),
             raw=body)
    assert (r.status, r.code) == (403, "FORBIDDEN"), r
    r = Api(suite).get(f"/api/v1/cert-imports/{uuid.uuid4()}", token=op)
    assert (r.status, r.code) == (404, "NOT_FOUND"), r
    # A header alone: a commit of nothing.
    done = run_import(suite, op, body)
    assert (done["status"], done["rows_total"], done["inserted"]) == ("done", 0, 0), done


# ---------------------------------------------------------------- then the holder

def test_issuance_import_then_binding_finds_the_certificate(suite):
    catalogue_ready(suite)
    op = staff_token(suite)
    leaf = make_leaf(suite, "ec", "project_lead")
    done = run_import(suite, op, to_csv([row_of(leaf, ("LN_JSGC", "LN_ZFCG"))]))
    assert done["inserted"] == 1, done
    cert_id = cert_rows(suite, [leaf.serial])[0][0]

    token, account = ca_bind(suite, leaf)
    wait_until(lambda: cert_rows(suite, [leaf.serial])[0][7] == account, timeout=60,
               what="the binding reached the imported certificate")
    rows = cert_rows(suite, [leaf.serial])
    assert len(rows) == 1 and rows[0][0] == cert_id and rows[0][1] == "import"
    # The holder sees it with the imported platforms, not a default set.
    r = Api(suite).get("/api/v1/certs", token=token)
    assert r.status == 200, r
    mine = [i for i in r.json["items"] if i["serial"] == leaf.serial]
    assert len(mine) == 1 and mine[0]["id"] == cert_id and mine[0]["platforms"] == ["LN_JSGC", "LN_ZFCG"], r
    # orders learns the account from the registered event sent again.
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"
                                  f" AND account_id = {q(account)}"), timeout=120, what="orders learned the holder")


def test_issuance_import_first_renewal_quote_priced_from_imported_platforms(suite):
    from test_orders import enterprise_admin, items, quote
    catalogue_ready(suite)
    op = staff_token(suite)
    admin = enterprise_admin(suite)
    leaf = make_leaf(suite, "ec", "project_lead", uscc=admin.uscc, days=20)
    done = run_import(suite, op, to_csv([row_of(leaf, ("LN_JSGC", "SY_GGZY"))]))
    assert done["inserted"] == 1, done
    cert_id = cert_rows(suite, [leaf.serial])[0][0]
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"), timeout=120,
               what="orders learned the imported certificate")
    # The administrator quotes the renewal before the holder ever logged in:
    # the imported platforms are kept (renew), one more is new (add).
    r = quote(suite, admin, items((cert_id, ["LN_JSGC", "SY_GGZY", "LN_ZTB"])))
    assert r.status == 200, r
    lines = [(l["platform"], l["kind"], l["price_fen"]) for l in r.json["items"][0]["lines"]]
    assert lines == [("LN_JSGC", "renew", 10000), ("LN_ZTB", "add", 25000), ("SY_GGZY", "renew", 5000)] or \
        sorted(lines) == sorted([("LN_JSGC", "renew", 10000), ("SY_GGZY", "renew", 5000),
                                 ("LN_ZTB", "add", 25000)]), r
    assert r.json["items"][0]["dropped"] == []


# ---------------------------------------------------------------- a crash

def big_file(issuer, n):
    """n rows by issuer DN + serial under one trusted issuing CA."""
    uscc = new_uscc()
    out = io.StringIO()
    out.write("issuer,serial,not_after,holder,lock_kind,uscc,key_vendor,key_serial,first_applied_on,platforms\r\n")
    base = secrets.token_hex(6).upper()
    issuer_csv = '"' + issuer.replace('"', '""') + '"'
    for i in range(n):
        out.write(f"{issuer_csv},{base}{i:08X},2027-06-30,持锁人{i},cost_engineer,{uscc},天威诚信,TW{i:08d},"
                  f"2020-01-15,\"LN_JSGC,SY_GGZY\"\r\n")
    return out.getvalue().encode(), base


def test_issuance_import_kill9_midway_leaves_nothing_and_reruns(suite):
    catalogue_ready(suite)
    op = staff_token(suite)
    issuer = make_leaf(suite, "ec", "agent").issuer
    # Large enough to be killed while it runs; tests/bench/import.py takes
    # 10^5 rows.
    n = int(os.environ.get("CAPLAT_IMPORT_TEST_ROWS", "30000"))
    body, base = big_file(issuer, n)
    before = registry_size(suite)
    events = int(suite.psql("SELECT count(*) FROM issuance.outbox"
                                 " WHERE type <> 'issuance.audit.batch'")[0][0])

    r = post_import(suite, op, body, timeout=120)
    assert r.status == 202, r
    import_id = r.json["id"]
    # Killed while it runs: after it has started to read rows.
    wait_until(lambda: get_import(suite, op, import_id)["rows_done"] > 0, timeout=60, interval=0.02,
               what="the import under way")
    suite.kill("issuance", signal.SIGKILL)
    suite.start_service("issuance")
    assert registry_size(suite) == before
    assert int(suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE serial LIKE {q(base + '%')}")[0][0]) == 0
    assert int(suite.psql("SELECT count(*) FROM issuance.outbox"
                                 " WHERE type <> 'issuance.audit.batch'")[0][0]) == events
    state = wait_until(lambda: (lambda s: s if s["status"] != "running" else None)(
        get_import(suite, op, import_id)), timeout=30, interval=0.5, what="the import seen as interrupted")
    assert (state["status"], state["error"]) == ("failed", "INTERRUPTED"), state

    t0 = time.monotonic()
    done = run_import(suite, op, body, timeout=300)
    assert (done["status"], done["inserted"], done["rows_total"]) == ("done", n, n), done
    assert int(suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE serial LIKE {q(base + '%')}")[0][0]) == n
    print(f"import of {n} rows after the crash: {time.monotonic() - t0:.1f} s")
    # The certificates travel in batches of 500 (issuance.certs.imported).
    assert suite.psql("SELECT count(*), sum(jsonb_array_length(data->'cert_id')) FROM issuance.outbox"
                      f" WHERE type = 'issuance.certs.imported' AND subject = {q(done['id'])}")[0] in \
        ((str(-(-n // 500)), str(n)), [str(-(-n // 500)), str(n)])
    # Let orders apply them all before the next test, which may wait on
    # orders' events itself.
    wait_until(lambda: int(suite.psql("SELECT count(*) FROM orders.certs c JOIN issuance.certificates i"
                                      " ON i.cert_id = c.cert_id"
                                      f" WHERE i.serial LIKE {q(base + '%')}")[0][0]) == n,
               timeout=600, interval=1, what="orders applied the imported certificates")


# ---------------------------------------------------------------- unknown associations

def test_issuance_first_seen_at_login_has_unknown_platforms_and_quote_asks_to_confirm(suite):
    from test_orders import enterprise_admin, quote
    catalogue_ready(suite)
    admin = enterprise_admin(suite)
    leaf = make_leaf(suite, "ec", "project_lead", uscc=admin.uscc, days=20)
    token, _ = ca_bind(suite, leaf)
    cert_id = wait_until(lambda: (cert_rows(suite, [leaf.serial]) or [[None]])[0][0], timeout=60,
                         what="registered at the binding")
    r = Api(suite).get("/api/v1/certs", token=token)
    mine = [i for i in r.json["items"] if i["id"] == cert_id]
    assert mine and mine[0]["platforms"] is None and mine[0]["platforms_known"] is False, r
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"
                                  " AND platforms IS NULL"), timeout=120, what="orders learned it, unknown")

    # A quote does not price every platform as new: it asks for the current set.
    r = quote(suite, admin, {"items": [{"cert_id": cert_id, "platforms": ["LN_JSGC", "LN_ZTB"]}]})
    assert (r.status, r.code, r.json["error"]["field"]) == \
        (409, "PLATFORMS_UNCONFIRMED", "items[0].current_platforms"), r
    # The administrator confirms it: kept ones renew, the rest are new.
    r = quote(suite, admin, {"items": [{"cert_id": cert_id, "platforms": ["LN_JSGC", "LN_ZTB"],
                                        "current_platforms": ["LN_JSGC", "SY_GGZY"]}]})
    assert r.status == 200, r
    item = r.json["items"][0]
    assert {l["platform"]: l["kind"] for l in item["lines"]} == {"LN_JSGC": "renew", "LN_ZTB": "add"}, r
    assert item["dropped"] == ["SY_GGZY"], r

    # An import then says the associations: known from now on, no confirmation.
    op = staff_token(suite)
    done = run_import(suite, op, to_csv([row_of(leaf, ("LN_JSGC", "LN_ZTB"))]))
    assert (done["status"], done["inserted"], done["updated"]) == ("done", 0, 1), done
    r = Api(suite).get("/api/v1/certs", token=token)
    mine = [i for i in r.json["items"] if i["id"] == cert_id]
    assert mine[0]["platforms"] == ["LN_JSGC", "LN_ZTB"] and mine[0]["platforms_known"] is True, r
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"
                                  " AND platforms IS NOT NULL"), timeout=120, what="orders learned the set")
    r = quote(suite, admin, {"items": [{"cert_id": cert_id, "platforms": ["LN_JSGC", "LN_ZTB"]}]})
    assert r.status == 200, r
    assert {l["platform"]: l["kind"] for l in r.json["items"][0]["lines"]} == {"LN_JSGC": "renew",
                                                                                 "LN_ZTB": "renew"}, r
