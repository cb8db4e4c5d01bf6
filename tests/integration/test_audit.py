"""The audit trail (issue 12, part 5), through nginx: audited actions reach
auth's one SHA-256 chain with their actor, address and request id;
operators (only) read it with filters and cursor pages and export it as CSV
or JSON Lines, streamed; `caplat-audit verify` passes on the chain and fails
on every kind of tampering, each done on a copy of the table behind the
service's back (so the real chain, verified again at the end of the run by
test_audit_chain.py, stays whole).

Entries of other services are stood in for by audit events written with
outbox_emit() into their outboxes, exactly as common/audit.c writes them."""
import csv
import http.client
import io
import json
import os
import re
import socket
import subprocess
import urllib.parse
import uuid

from client import Api, call, new_phone, new_uscc, sms_code, wait_until

HEX64 = re.compile(r"^[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def staff_login(suite, username, request_id=None):
    headers = {"X-Request-Id": request_id} if request_id else None
    r = Api(suite).post("/api/v1/auth/staff/login",
                        {"username": username, "password": suite.secrets[f"staff_{username}"]},
                        headers=headers)
    assert r.status == 200, r
    token = r.json["token"]
    me = Api(suite).get("/api/v1/auth/me", token=token)
    return token, me.json["staff"]["id"]


def audit(suite, token, **params):
    q = urllib.parse.urlencode(params)
    return Api(suite).get("/api/v1/audit" + (f"?{q}" if q else ""), token=token)


def emit(suite, svc, action, uscc=None, object_id=None, after=None, actor_id=None):
    """An audit entry of svc, as its own audit_add would write it."""
    data = {"actor": {"type": "account", "id": actor_id or str(uuid.uuid4()),
                      "identity_id": str(uuid.uuid4()), "role": "admin",
                      "ip": "10.1.2.3", "request_id": "req-" + uuid.uuid4().hex[:12]},
            "service": svc, "action": action, "object_type": "thing",
            "object_id": object_id or str(uuid.uuid4()), "uscc": uscc,
            "before": None, "after": after}
    text = json.dumps(data, ensure_ascii=False).replace("'", "''")
    rows = suite.psql(f"SET search_path TO {svc}; SELECT outbox_emit('{svc}.audit.recorded',"
                      f" '{data['object_id']}', '{text}'::jsonb)")
    return rows[-1][0], data


def admin_url(suite):
    return (f"postgresql://admin:{suite.secrets['db_admin']}@127.0.0.1:"
            f"{suite.ports['postgres']}/caplat")


def verify(suite, *args):
    r = subprocess.run([os.path.join(suite.build, "bin", "caplat-audit"), "verify", *args],
                       env=dict(os.environ, CAPLAT_DB_URL=admin_url(suite)),
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout.strip() + r.stderr.strip()


def chain_has(suite, event_ids):
    ids = ",".join(f"'{i}'" for i in event_ids)
    n = suite.psql(f"SELECT count(*) FROM auth.audit_log WHERE event_id IN ({ids})")[0][0]
    return int(n) == len(event_ids)


def test_staff_login_is_audited_with_actor_ip_and_request_id(suite):
    rid = "audit-" + uuid.uuid4().hex[:16]
    _, staff_id = staff_login(suite, "reviewer", request_id=rid)
    op, _ = staff_login(suite, "operator")

    def entry():
        r = audit(suite, op, actor=staff_id, action="staff.login")
        assert r.status == 200, r
        return [e for e in r.json["items"] if e["actor"]["request_id"] == rid]
    items = wait_until(entry, timeout=15, what="the staff login in the audit trail")
    e = items[0]
    assert e["service"] == "auth" and e["action"] == "staff.login"
    assert e["actor"]["type"] == "staff" and e["actor"]["id"] == staff_id
    assert e["actor"]["ip"] == "127.0.0.1" and e["actor"]["request_id"] == rid
    assert e["object_type"] == "staff" and e["object_id"] == staff_id
    assert e["after"] == {"roles": ["reviewer"]} and e["before"] is None
    assert uuid.UUID(e["event_id"]) and isinstance(e["seq"], int) and e["seq"] > 0
    assert HEX64.match(e["hash"]) and TIME.match(e["occurred_at"]) and TIME.match(e["recorded_at"])
    # the entry is the outbox event's, with the event's time
    row = suite.psql(f"SELECT type, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
                     f" FROM auth.audit_outbox WHERE id = '{e['event_id']}'")
    assert row and row[0][0] == "auth.audit.recorded"
    assert e["occurred_at"].startswith(row[0][1])
    # a failed login is no staff login
    r = Api(suite).post("/api/v1/auth/staff/login", {"username": "reviewer", "password": "wrong-1"})
    assert r.status == 401


def test_filters_and_cursor_pages(suite):
    op, op_id = staff_login(suite, "operator")
    uscc, other = new_uscc(), new_uscc()
    actor = str(uuid.uuid4())
    ids = []
    for i, svc in enumerate(["orders", "payments", "issuance", "enterprise", "orders", "payments", "orders"]):
        ev, _ = emit(suite, svc, f"test.step{i}", uscc=uscc, after={"i": i, "名": "示例"},
                     actor_id=actor if i % 2 == 0 else None)
        ids.append(ev)
    lone, lone_data = emit(suite, "issuance", "test.other", uscc=other)
    wait_until(lambda: chain_has(suite, ids + [lone]), timeout=20, what="entries in the chain")

    r = audit(suite, op, uscc=uscc)
    assert r.status == 200 and r.json["next_cursor"] is None, r
    got = r.json["items"]
    # the answer is what proto/openapi.yaml says
    from test_contracts import assert_valid, load_openapi, schema_validator
    doc = load_openapi()
    assert_valid(schema_validator(doc, "#/paths/~1api~1v1~1audit/get/responses/200/content/application~1json/schema"),
                 r.json, "GET /api/v1/audit")
    r422 = audit(suite, op, limit=0)
    assert_valid(schema_validator(doc, "#/components/responses/AuditInvalid/content/application~1json/schema"),
                 r422.json, "422")
    assert {e["event_id"] for e in got} == set(ids)
    assert [e["seq"] for e in got] == sorted((e["seq"] for e in got), reverse=True), "newest first"
    # entries of one service keep their order; services' batches may
    # interleave in the chain (deploy/sql/common/050_audit_batch.sql)
    first = next(e for e in got if e["event_id"] == ids[0])
    assert first["after"] == {"i": 0, "名": "示例"}
    assert first["actor"] == {"type": "account", "id": actor, "identity_id": first["actor"]["identity_id"],
                              "role": "admin", "ip": "10.1.2.3",
                              "request_id": first["actor"]["request_id"]}
    orders = [e["event_id"] for e in got if e["service"] == "orders"][::-1]
    assert orders == [ids[0], ids[4], ids[6]], "one service's entries in their order"

    # each filter alone and together
    assert {e["event_id"] for e in audit(suite, op, uscc=uscc, service="orders").json["items"]} == \
        {ids[0], ids[4], ids[6]}
    assert {e["event_id"] for e in audit(suite, op, actor=actor).json["items"]} == {ids[0], ids[2], ids[4], ids[6]}
    assert [e["event_id"] for e in audit(suite, op, action="test.step3", uscc=uscc).json["items"]] == [ids[3]]
    assert [e["event_id"] for e in audit(suite, op, object_id=lone_data["object_id"]).json["items"]] == [lone]
    newest = max(e["occurred_at"] for e in got)
    oldest = min(e["occurred_at"] for e in got)
    assert {e["event_id"] for e in audit(suite, op, uscc=uscc, **{"from": oldest}).json["items"]} == set(ids)
    assert audit(suite, op, uscc=uscc, to=oldest).json["items"] == []
    assert audit(suite, op, uscc=uscc, **{"from": "2999-01-01T00:00:00+08:00"}).json["items"] == []
    assert len(audit(suite, op, uscc=uscc, to="2999-01-01T00:00:00Z").json["items"]) == 7
    assert newest >= oldest

    # cursor pages: 3 + 3 + 1, no entry twice, the last page says so
    seen, cursor, pages = [], None, 0
    while True:
        params = {"uscc": uscc, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = audit(suite, op, **params)
        assert r.status == 200, r
        pages += 1
        seen += [e["event_id"] for e in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert len(r.json["items"]) == 3
    assert pages == 3 and seen == [e["event_id"] for e in got]

    # bad input: 422 naming the field, nothing else
    for params, field in [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"limit": "x"}, "limit"),
                          ({"from": "yesterday"}, "from"), ({"to": "2024-05-01 08:00:00"}, "to"),
                          ({"service": "billing"}, "service"), ({"cursor": "abc"}, "cursor"),
                          ({"uscc": ""}, "uscc")]:
        r = audit(suite, op, **params)
        assert r.status == 422 and r.code == "FIELD_INVALID" and r.json["error"]["field"] == field, (params, r)
    r = Api(suite).get("/api/v1/audit/export?format=xml", token=op)
    assert r.status == 422 and r.json["error"]["field"] == "format", r


def test_only_operators_read_the_trail(suite):
    for path in ["/api/v1/audit", "/api/v1/audit/export?format=jsonl"]:
        r = Api(suite).get(path)
        assert r.status == 401 and r.code == "UNAUTHENTICATED", r
        for username in ["reviewer", "finance"]:
            token, _ = staff_login(suite, username)
            r = Api(suite).get(path, token=token)
            assert r.status == 403 and r.code == "FORBIDDEN", (username, r)
    # an account (a holder), even an enterprise's administrator, reads nothing
    api = Api(suite)
    phone = new_phone()
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"}).status == 202
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(suite, phone, "register"),
                                           "password": "abc12345"})
    assert r.status == 201, r
    token = r.json["token"]
    for path in ["/api/v1/audit", "/api/v1/audit/export"]:
        r = api.get(path, token=token)
        assert r.status == 403 and r.code == "FORBIDDEN", r


def test_export_csv_and_jsonl(suite):
    op, _ = staff_login(suite, "operator")
    uscc = new_uscc()
    ids = [emit(suite, svc, "test.export", uscc=uscc,
                after={"note": 'a "quoted", multi\nline value'})[0]
           for svc in ["orders", "payments", "enterprise"]]
    wait_until(lambda: chain_has(suite, ids), timeout=20, what="entries in the chain")
    listed = audit(suite, op, uscc=uscc).json["items"][::-1]  # oldest first, like the export

    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=csv&uscc={uscc}", token=op)
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "caplat-audit.csv" in r.headers.get("Content-Disposition", "")
    rows = list(csv.reader(io.StringIO(r.raw.decode("utf-8"), newline="")))
    assert rows[0] == ["seq", "event_id", "service", "action", "actor_type", "actor_id", "identity_id",
                       "role", "ip", "request_id", "object_type", "object_id", "uscc", "before", "after",
                       "occurred_at", "recorded_at", "hash"]
    body = [dict(zip(rows[0], row)) for row in rows[1:]]
    # chain order: services' batches may interleave, so the ids as a set
    assert [b["event_id"] for b in body] == [e["event_id"] for e in listed] and set(ids) == {b["event_id"] for b in body}
    for b, e in zip(body, listed):
        assert int(b["seq"]) == e["seq"] and b["hash"] == e["hash"] and b["uscc"] == uscc
        assert json.loads(b["after"]) == e["after"] and b["before"] == ""
        assert b["actor_id"] == e["actor"]["id"] and b["occurred_at"] == e["occurred_at"]

    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=jsonl&uscc={uscc}", token=op)
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/jsonl"), r
    lines = r.raw.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == listed

    # each export is itself audited: who, which format, which filters
    rid = "exp-" + uuid.uuid4().hex[:12]
    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=jsonl&uscc={uscc}&service=orders", token=op,
             headers={"X-Request-Id": rid})
    assert r.status == 200 and len(r.raw.decode().splitlines()) == 1
    _, op_id = staff_login(suite, "operator")

    def exported():
        items = audit(suite, op, action="audit.exported", object_id=rid).json["items"]
        return items
    e = wait_until(exported, timeout=15, what="the export's own entry")[0]
    assert e["actor"]["type"] == "staff" and e["actor"]["id"] == op_id and e["actor"]["request_id"] == rid
    assert e["object_type"] == "audit_export"
    assert e["after"] == {"format": "jsonl", "filters": {"uscc": uscc, "service": "orders"}}

    # nothing matches: the CSV header alone, an empty JSONL
    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=csv&uscc={new_uscc()}", token=op)
    assert r.status == 200 and r.raw.decode().count("\n") == 1
    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=jsonl&uscc={new_uscc()}", token=op)
    assert r.status == 200 and r.raw == b""


def _inflight(suite):
    text = call(suite.service_url("auth"), "GET", "/metrics").raw.decode()
    return int(re.search(r'caplat_http_inflight\{svc="auth"\} (\d+)', text).group(1))


def _log(suite):
    with open(os.path.join(suite.log_dir, "auth.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


def _hang_up_early(host, port, path, token):
    """Asks for path with a small receive buffer, reads 4 KiB, hangs up."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(30)
    s.connect((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    got = b""
    while len(got) < 4096:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    s.close()
    assert got.startswith(b"HTTP/1.1 200"), got[:200]


def test_export_streams_and_stops_when_the_client_leaves(suite):
    """50 000 chained entries (appended by audit_append itself, as the
    consumer does): the whole export arrives, chunked; a client that reads
    a little and hangs up stops the export in the service (it logs the
    stop, nothing stays in flight) and the service answers on."""
    op, _ = staff_login(suite, "operator")
    uscc = new_uscc()
    suite.psql("SET search_path TO auth; SELECT count(audit_append(gen_random_uuid(), 'auth', 'test.bulk',"
               " 'system', 'system:test', NULL, NULL, NULL, NULL, 'thing', g::text,"
               f" '{uscc}', NULL, jsonb_build_object('n', g), now())) FROM generate_series(1, 50000) g")
    host, port = suite.gateway.rsplit("/", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", f"/api/v1/audit/export?format=jsonl&uscc={uscc}", headers={"Authorization": f"Bearer {op}"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    lines = r.read().decode().splitlines()
    conn.close()
    assert len(lines) == 50000 and json.loads(lines[-1])["after"] == {"n": 50000}

    for base in [suite.gateway, suite.service_url("auth")]:
        host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
        stops = _log(suite).count("msg=audit_export_stopped")
        _hang_up_early(host, int(port), f"/api/v1/audit/export?format=csv&uscc={uscc}", op)
        wait_until(lambda: _log(suite).count("msg=audit_export_stopped") > stops, timeout=30,
                   what=f"the export via {base} to stop")
        wait_until(lambda: _inflight(suite) == 0, timeout=10, what="no request left in flight")
    assert audit(suite, op, uscc=uscc, limit=1).status == 200


def test_verify_passes_and_detects_tampering(suite):
    ev, _ = emit(suite, "payments", "test.verify", uscc=new_uscc(), after={"amount_fen": 100})
    wait_until(lambda: chain_has(suite, [ev]), timeout=20, what="the entry in the chain")
    rc, out = verify(suite)
    assert rc == 0 and out.startswith("ok: "), out
    count = int(out.split()[1])
    assert count >= 1

    def copy(name):
        suite.psql(f"DROP TABLE IF EXISTS public.{name}; CREATE TABLE public.{name} AS SELECT * FROM auth.audit_log;"
                   f" ALTER TABLE public.{name} ADD PRIMARY KEY (seq)")
        rc, out = verify(suite, "--table", f"public.{name}")
        assert rc == 0, out
        return out

    mid = suite.psql("SELECT seq FROM auth.audit_log ORDER BY seq DESC OFFSET 2 LIMIT 1")[0][0]
    mid = int(mid)
    # one entry's `after` changed
    copy("audit_t1")
    suite.psql(f"UPDATE public.audit_t1 SET after = '{{\"amount_fen\": 1}}' WHERE seq = {mid}")
    rc, out = verify(suite, "--table", "public.audit_t1")
    assert rc == 1 and out.startswith(f"bad: seq {mid}: hash mismatch"), out
    # one entry deleted
    copy("audit_t2")
    suite.psql(f"DELETE FROM public.audit_t2 WHERE seq = {mid}")
    rc, out = verify(suite, "--table", "public.audit_t2")
    assert rc == 1 and out.startswith(f"bad: seq {mid}: missing"), out
    # two entries' seq swapped (reordered)
    copy("audit_t3")
    suite.psql(f"UPDATE public.audit_t3 SET seq = -1 WHERE seq = {mid};"
               f" UPDATE public.audit_t3 SET seq = {mid} WHERE seq = {mid + 1};"
               f" UPDATE public.audit_t3 SET seq = {mid + 1} WHERE seq = -1")
    rc, out = verify(suite, "--table", "public.audit_t3")
    assert rc == 1 and out.startswith(f"bad: seq {mid}: hash mismatch"), out
    # a changed entry whose hash was recomputed alone still breaks the next link
    copy("audit_t4")
    suite.psql(f"SET search_path TO auth, public; UPDATE public.audit_t4 SET actor_id = 'someone-else' WHERE seq = {mid};"
               f" UPDATE public.audit_t4 t SET hash = encode(sha256(convert_to("
               f"  (SELECT hash FROM public.audit_t4 WHERE seq = {mid - 1}) ||"
               f"  auth.audit_canonical(ROW(t.*)::auth.audit_log), 'UTF8')), 'hex') WHERE seq = {mid}")
    rc, out = verify(suite, "--table", "public.audit_t4")
    assert rc == 1 and out.startswith(f"bad: seq {mid + 1}: hash mismatch"), out
    # the newest entries removed: seen against a head noted before
    out = copy("audit_t5")
    head = f"{out.split()[4]}:{out.split()[5]}"
    suite.psql("DELETE FROM public.audit_t5 WHERE seq = (SELECT max(seq) FROM public.audit_t5)")
    rc, out2 = verify(suite, "--table", "public.audit_t5")
    assert rc == 0, out2
    rc, out2 = verify(suite, "--table", "public.audit_t5", "--head", head)
    assert rc == 1 and "missing" in out2, out2
    for t in ["audit_t1", "audit_t2", "audit_t3", "audit_t4", "audit_t5"]:
        suite.psql(f"DROP TABLE public.{t}")
    # the real chain was never touched
    rc, out = verify(suite)
    assert rc == 0, out


def test_failed_staff_logins_are_audited_and_rate_limited(suite):
    """A wrong password of a staff account is audited each time (the lockout
    bounds it); an unknown username only once per client address a minute,
    and the username itself is never recorded."""
    cli = ["redis-cli", "-p", str(suite.ports["redis"])]
    subprocess.run(cli + ["DEL", "audit:staff_failed:ip:127.0.0.1", "audit:staff_failed:all"],
                   check=True, stdout=subprocess.DEVNULL)
    ghost = "ghost-" + uuid.uuid4().hex[:10]
    rids = ["fail-" + uuid.uuid4().hex[:16] for _ in range(3)]
    for rid in rids[:2]:
        r = Api(suite).post("/api/v1/auth/staff/login", {"username": ghost, "password": "x-1"},
                            headers={"X-Request-Id": rid})
        assert r.status == 401 and r.code == "BAD_CREDENTIALS", r
    # a staff account of its own, so the lockout of the shared ones is not touched
    username = "auditfail" + uuid.uuid4().hex[:8]
    password = suite.secrets["staff_reviewer"] + "-f"
    env = dict(os.environ, **suite.service_env("auth"), CAPLAT_STAFF_PASSWORD=password)
    subprocess.run([os.path.join(suite.build, "bin", "caplat-auth"), "staff-add", username, "reviewer"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    r = Api(suite).post("/api/v1/auth/staff/login", {"username": username, "password": "wrong-1"},
                        headers={"X-Request-Id": rids[2]})
    assert r.status == 401 and r.code == "BAD_CREDENTIALS", r
    r = Api(suite).post("/api/v1/auth/staff/login", {"username": username, "password": password})
    assert r.status == 200, r
    staff_id = Api(suite).get("/api/v1/auth/me", token=r.json["token"]).json["staff"]["id"]
    op, _ = staff_login(suite, "operator")

    def entries():
        r = audit(suite, op, action="staff.login_failed", limit=200)
        assert r.status == 200, r
        got = {e["actor"]["request_id"]: e for e in r.json["items"] if e["actor"]["request_id"] in rids}
        return got if rids[0] in got and rids[2] in got else None
    got = wait_until(entries, timeout=15, what="the failed staff logins in the audit trail")
    unknown, wrong = got[rids[0]], got[rids[2]]
    assert unknown["service"] == "auth" and unknown["object_type"] == "staff"
    assert unknown["object_id"] is None and unknown["after"] == {"reason": "unknown_username"}
    assert unknown["actor"]["type"] == "system" and unknown["actor"]["ip"] == "127.0.0.1"
    assert ghost not in json.dumps(unknown)
    assert wrong["object_id"] == staff_id and wrong["after"] == {"reason": "bad_password"}
    assert wrong["actor"]["type"] == "system"
    # the second unknown username from the same address within the minute: no entry
    assert rids[1] not in got


def test_csv_export_neutralises_formulas(suite):
    """A cell a spreadsheet would run as a formula (= + - @ first) is written
    after a ' in the CSV export; the JSON Lines export keeps the value."""
    op, _ = staff_login(suite, "operator")
    uscc = new_uscc()
    evil = ['=HYPERLINK("http://x.invalid","a")', "+1+1", "-2+3", "@SUM(1,2)"]
    ids = [emit(suite, "orders", "test.formula", uscc=uscc, object_id=v, actor_id=v)[0] for v in evil]
    wait_until(lambda: chain_has(suite, ids), timeout=20, what="entries in the chain")
    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=csv&uscc={uscc}", token=op)
    assert r.status == 200, r
    rows = list(csv.reader(io.StringIO(r.raw.decode("utf-8"), newline="")))
    body = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [b["object_id"] for b in body] == ["'" + v for v in evil]
    assert [b["actor_id"] for b in body] == ["'" + v for v in evil]
    assert all(b["uscc"] == uscc and b["after"] == "" for b in body)  # plain cells unchanged
    r = call(suite.gateway, "GET", f"/api/v1/audit/export?format=jsonl&uscc={uscc}", token=op)
    assert [json.loads(line)["object_id"] for line in r.raw.decode("utf-8").splitlines()] == evil


def test_filtered_queries_walk_their_index(suite):
    """Each filter drives its own (column, seq) index, also once the page
    statement runs on a generic plan (after 5 executions of a prepared
    statement): the index's scan counter grows, the table is not scanned."""
    op, _ = staff_login(suite, "operator")
    uscc, actor, obj = new_uscc(), str(uuid.uuid4()), str(uuid.uuid4())
    ev, _ = emit(suite, "orders", "test.indexed", uscc=uscc, object_id=obj, actor_id=actor)
    wait_until(lambda: chain_has(suite, [ev]), timeout=20, what="the entry in the chain")

    def scans(index):
        return int(suite.psql("SELECT idx_scan FROM pg_stat_user_indexes"
                              f" WHERE schemaname = 'auth' AND indexrelname = '{index}'")[0][0])
    for index, params in [("audit_log_object", {"object_id": obj}), ("audit_log_actor", {"actor": actor}),
                          ("audit_log_uscc", {"uscc": uscc}), ("audit_log_action", {"action": "test.indexed"}),
                          ("audit_log_service", {"service": "orders", "limit": 1})]:
        before = scans(index)
        for _ in range(48):  # past the custom plans on each of the pool's connections
            r = audit(suite, op, **params)
            assert r.status == 200 and r.json["items"], (index, r)
            assert "service" in params or r.json["items"][0]["event_id"] == ev, (index, r)
        # PostgreSQL reports a backend's counters when it has been idle a while
        wait_until(lambda: scans(index) >= before + 48, timeout=30, interval=0.5, what=f"{index} scans")
