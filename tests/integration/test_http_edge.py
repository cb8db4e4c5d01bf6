"""An honest HTTP edge (issue 15, part 4), black-box through nginx: methods a
path does not serve answer 405 with Allow and the envelope (never libevent's
HTML 501); every error nginx produces itself is the JSON envelope; path and
query parameters and JSON bodies that are not UTF-8 text answer 400
INVALID_UTF8 naming the field, before any database call; payments verifies a
notification before storing it, limits the calls that fail verification per
address, and never counts bad input as a dependency error. Every answer of
caplat's API is checked against proto/openapi.yaml (client.call), the
gateway's own ones against the Error schema."""
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

import yaml

from client import Api, Reply, call, contract, new_phone, sms_code

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paysim"))
import ossl  # noqa: E402
import paysim  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JSON_TYPE = re.compile(r"^application/json\b")


def raw(suite, method, path, body=None, headers=None, base=None):
    """One request sent byte for byte (http.client: no normalisation of the
    path), answered as a client.Reply."""
    u = urllib.parse.urlsplit(base or suite.gateway)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read() if method != "HEAD" else b""
        return Reply(r.status, data, dict(r.getheaders()))
    finally:
        c.close()


def envelope(r, status, code, field=None):
    """r is status with the JSON envelope {"error":{"code","message"}}."""
    assert r.status == status, r
    ctype = r.headers.get("Content-Type", "")
    assert JSON_TYPE.match(ctype), (ctype, r)
    doc = json.loads(r.raw)
    assert set(doc) == {"error"}, doc
    assert doc["error"]["code"] == code, doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"], doc
    if field is not None:
        assert doc["error"].get("field") == field, doc
    assert set(doc["error"]) <= {"code", "message", "field"}, doc
    return doc["error"]


def metric(suite, svc, name, labels):
    text = raw(suite, "GET", "/metrics", base=suite.service_url(svc)).raw.decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def register(suite):
    api = Api(suite)
    phone = new_phone()
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"}).status == 202
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(suite, phone, "register"),
                                            "password": "secret123"})
    assert r.status == 201, r
    return r.json["token"]


# ---- 405 with Allow ------------------------------------------------------------

def test_edge_unsupported_methods_answer_405_with_allow(suite):
    """PATCH, OPTIONS and an unknown method on an operation's path: 405, Allow
    with the path's methods, the envelope (not libevent's HTML 501); HEAD is
    GET without the body; an unknown path is 404."""
    cases = [
        ("PATCH", "/api/v1/profile", {"GET", "HEAD", "PUT"}),
        ("OPTIONS", "/api/v1/profile", {"GET", "HEAD", "PUT"}),
        ("FROB", "/api/v1/profile", {"GET", "HEAD", "PUT"}),
        ("DELETE", "/api/v1/auth/login", {"POST"}),
        ("PATCH", "/api/v1/platforms/LN_JSGC/prices", {"GET", "HEAD", "POST"}),
        ("PUT", "/notify/alipay", {"POST"}),
    ]
    for method, path, allow in cases:
        r = call(suite.gateway, method, path, body={} if method in ("PATCH", "PUT") else None)
        envelope(r, 405, "METHOD_NOT_ALLOWED")
        got = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        assert got == allow, (method, path, r.headers)
        assert r.headers.get("X-Request-Id"), r.headers
    # the service directly, too (every service runs the same router)
    r = raw(suite, "PATCH", "/api/v1/profile", base=suite.service_url("enterprise"))
    envelope(r, 405, "METHOD_NOT_ALLOWED")
    r = raw(suite, "POST", "/healthz", base=suite.service_url("auth"))
    envelope(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers.get("Allow") == "GET, HEAD", r.headers
    # HEAD: GET's status and headers, no body
    token = register(suite)
    get = call(suite.gateway, "GET", "/api/v1/platforms", token=token)
    head = raw(suite, "HEAD", "/api/v1/platforms", headers={"Authorization": f"Bearer {token}"})
    assert head.status == get.status == 200, (head, get)
    assert head.raw == b""
    assert JSON_TYPE.match(head.headers.get("Content-Type", "")), head.headers
    assert raw(suite, "HEAD", "/healthz", base=suite.service_url("auth")).status == 200
    # unknown paths: the router's 404 (service) and the gateway's (nginx)
    envelope(call(suite.gateway, "PATCH", "/api/v1/profile/nothing"), 404, "NOT_FOUND")
    envelope(call(suite.gateway, "GET", "/api/v1/nothing/here"), 404, "NOT_FOUND")
    envelope(raw(suite, "GET", "/nothing"), 404, "NOT_FOUND")


# ---- nginx's own errors -----------------------------------------------------

def test_edge_gateway_errors_are_the_json_envelope(suite):
    """%00 and ../ above the root (nginx 400), an over-long URI (414), a header
    too large (494 → 400), a body too large (413), TRACE (nginx's 405): the
    JSON envelope with application/json, never nginx's HTML pages."""
    for path in ("/api/v1/platforms/%00/prices", "/api/v1/../../../etc/passwd", "/../api/v1/platforms"):
        r = raw(suite, "GET", path)
        envelope(r, 400, "BAD_REQUEST")
        assert b"<html" not in r.raw
    r = raw(suite, "GET", "/api/v1/platforms?x=" + "a" * 20000)
    envelope(r, 414, "URI_TOO_LONG")
    r = raw(suite, "GET", "/api/v1/platforms", headers={"X-Big": "b" * 40000})
    envelope(r, 400, "BAD_REQUEST")
    # a body too large: nginx answers on the Content-Length alone
    r = raw(suite, "POST", "/api/v1/auth/login",
            headers={"Content-Type": "application/json", "Content-Length": str(7 * 1024 * 1024)})
    envelope(r, 413, "BODY_TOO_LARGE")
    r = raw(suite, "TRACE", "/api/v1/platforms")
    envelope(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers.get("Allow"), r.headers
    envelope(raw(suite, "GET", "/internal/anything"), 404, "NOT_FOUND")
    # each of them agrees with the Error schema of the spec
    schema = contract().deref({"$ref": "#/components/schemas/Error"})
    from jsonschema import Draft202012Validator
    v = Draft202012Validator(dict(schema, components=contract().doc["components"]))
    for path in ("/api/v1/platforms/%00/prices", "/api/v1/platforms?x=" + "a" * 20000):
        assert not list(v.iter_errors(raw(suite, "GET", path).json))


# ---- invalid UTF-8 ------------------------------------------------------------

def test_edge_invalid_utf8_is_400_with_the_field(suite):
    """The finding (GET /api/v1/platforms/%ff%fe/prices reached PostgreSQL and
    answered 500) and its kin: path parameters, query parameters and JSON
    bodies that are not UTF-8 text answer 400 INVALID_UTF8 naming the field,
    and nothing reaches a database (no dependency error, no 500)."""
    api = Api(suite)
    before = metric(suite, "orders", "caplat_http_requests_total", {"status": "500"})
    pg = metric(suite, "orders", "caplat_dependency_errors_total", {"dep": "postgres"})
    r = api.get("/api/v1/platforms/%ff%fe/prices")
    envelope(r, 400, "INVALID_UTF8", "code")
    for bad in ("%c0%af", "%ed%a0%80", "%f4%90%80%80", "ab%e4%b8"):  # overlong, surrogate, >U+10FFFF, cut
        envelope(api.get(f"/api/v1/platforms/{bad}/prices"), 400, "INVALID_UTF8", "code")
    envelope(api.get("/api/v1/platforms?lock_kind=%ff"), 400, "INVALID_UTF8", "lock_kind")
    envelope(api.get("/api/v1/platforms?%ff=1"), 400, "INVALID_UTF8", "query")
    envelope(api.get("/api/v1/orders/%ff"), 400, "INVALID_UTF8", "id")
    envelope(call(suite.gateway, "GET", "/api/v1/certs?cursor=%fe"), 400, "INVALID_UTF8", "cursor")
    envelope(call(suite.gateway, "GET", "/api/v1/certs?cursor=ab%00cd"), 400, "INVALID_UTF8", "cursor")
    # a JSON body: raw bytes that are not UTF-8, and a lone surrogate escape
    r = call(suite.gateway, "POST", "/api/v1/auth/login", raw=b'{"phone":"\xff\xfe","password":"x"}',
             headers={"Content-Type": "application/json"})
    envelope(r, 400, "INVALID_UTF8", "body")
    r = call(suite.gateway, "POST", "/api/v1/auth/login", raw=b'{"phone":"\\ud800","password":"x"}',
             headers={"Content-Type": "application/json"})
    envelope(r, 400, "BAD_JSON")
    # valid UTF-8 still passes through to the handlers
    token = register(suite)
    r = api.get("/api/v1/platforms/%E4%B8%AD/prices", token=token)
    assert r.status == 403 and r.code == "FORBIDDEN", r  # staff only: the handler answered
    r = api.get("/api/v1/platforms?lock_kind=%E4%B8%AD", token=token)
    assert r.status != 500 and r.code != "INVALID_UTF8", r
    assert metric(suite, "orders", "caplat_http_requests_total", {"status": "500"}) == before
    assert metric(suite, "orders", "caplat_dependency_errors_total", {"dep": "postgres"}) == pg


def test_edge_spec_documents_invalid_utf8_on_every_operation(suite):
    """Any operation of the API may answer 400 INVALID_UTF8 (the router checks
    every query string): each lists 400 with that code."""
    doc = yaml.safe_load(open(os.path.join(ROOT, "proto", "openapi.yaml"), encoding="utf-8"))
    c = contract()
    missing = []
    body = json.dumps({"error": {"code": "INVALID_UTF8", "message": "x", "field": "q"}}).encode()
    for path, item in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in item:
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            if c.problems(method.upper(), concrete, Reply(400, body, {"Content-Type": "application/json"})):
                missing.append(f"{method.upper()} {path}")
    assert not missing, missing


# ---- payments notifications ------------------------------------------------------

def _notifications(suite):
    return int(suite.psql("SELECT count(*) FROM payments.notifications")[0][0])


def _pg_errors(suite):
    return metric(suite, "payments", "caplat_dependency_errors_total", {"dep": "postgres"})


def test_edge_notifications_verified_before_stored(suite):
    """Unsigned, forged and non-UTF-8 notifications are answered in the
    provider's own format with 4xx, nothing is stored, and no dependency error
    is counted; calls failing verification are limited per address (429)."""
    stored, pg = _notifications(suite), _pg_errors(suite)
    alipay = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    r = call(suite.gateway, "POST", "/notify/alipay", raw=b"notify_id=1&out_trade_no=x&trade_status=TRADE_SUCCESS",
             headers=alipay)
    assert r.status == 400 and r.raw == b"failure", r
    r = call(suite.gateway, "POST", "/notify/alipay", raw=b"notify_id=\xff\xfe&out_trade_no=x", headers=alipay)
    assert r.status == 400 and r.raw == b"failure", r
    r = call(suite.gateway, "POST", "/notify/alipay", raw=b"notify_id=%ff%fe&out_trade_no=x&sign=AAAA",
             headers=alipay)
    assert r.status == 400 and r.raw == b"failure", r
    wechat = {"Content-Type": "application/json"}
    r = call(suite.gateway, "POST", "/notify/wechat", raw=b'{"id":"x"}', headers=wechat)
    assert r.status == 401 and r.json == {"code": "FAIL", "message": "失败"}, r
    r = call(suite.gateway, "POST", "/notify/wechat", raw=b'{"id":"\xff\xfe"}', headers=dict(wechat, **{
        "Wechatpay-Timestamp": str(int(time.time())), "Wechatpay-Nonce": "n", "Wechatpay-Signature": "AAAA",
        "Wechatpay-Serial": "0123"}))
    assert r.status == 400 and r.json == {"code": "FAIL", "message": "失败"}, r
    # a query string that is not text: the router's envelope
    envelope(call(suite.gateway, "POST", "/notify/alipay?x=%ff", raw=b"a=b", headers=alipay),
             400, "INVALID_UTF8", "x")
    # a genuine signature over a body that is not UTF-8 text: still refused
    k = paysim.key_paths(os.path.join(suite.base, "paysim"))
    platform = ossl.Key.load(k["wechat_platform_key"])
    headers, body = paysim.wechat_notification(platform, "0" * 32, {"out_trade_no": "x"})
    assert b'"summary":"' in body
    body = body.replace(b'"summary":"', b'"summary":"\xff')
    import base64
    msg = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    headers = dict(headers, **{"Wechatpay-Signature": base64.b64encode(platform.sign(msg)).decode()})
    r = call(suite.gateway, "POST", "/notify/wechat", raw=body, headers=dict(headers, **wechat))
    assert r.status == 400, r
    assert _notifications(suite) == stored, "an unverified notification was stored"
    assert _pg_errors(suite) == pg, "bad input counted as a PostgreSQL error"

    # the calls that fail verification are limited per address
    statuses = []
    for _ in range(200):
        r = call(suite.gateway, "POST", "/notify/wechat", raw=b"{}", headers=wechat)
        statuses.append(r.status)
        if r.status == 429:
            assert r.json == {"code": "FAIL", "message": "失败"}, r
            break
    assert statuses[-1] == 429, statuses
    assert metric(suite, "payments", "caplat_payments_notifications_total",
                  {"channel": "wechat", "outcome": "throttled"}) >= 1
    r = call(suite.gateway, "POST", "/notify/alipay", raw=b"a=b", headers=alipay)
    assert r.status in (400, 429) and r.raw == b"failure", r
    assert _notifications(suite) == stored
    time.sleep(5)  # 20 failed calls at once, 5 a second: the bucket is full again
    r = call(suite.gateway, "POST", "/notify/wechat", raw=b"{}", headers=wechat)
    assert r.status == 401, r


def test_edge_replay_script(suite):
    """tests/edge_replay.py replays every finding of part 4 against the suite:
    each gets the right answer."""
    import subprocess
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "edge_replay.py"),
                        "--gateway", suite.gateway, "--payments", suite.service_url("payments"),
                        "--db", suite.admin_db_url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    marks = [line.split(" ", 1)[0] for line in r.stdout.splitlines() if line.startswith(("ok", "FAIL", "skip"))]
    assert len(marks) >= 25 and set(marks) == {"ok"}, r.stdout
    time.sleep(1)  # the failed-call bucket of 127.0.0.1 refills (5 calls used)


def _operations():
    doc = yaml.safe_load(open(os.path.join(ROOT, "proto", "openapi.yaml"), encoding="utf-8"))
    for path, item in doc["paths"].items():
        if not path.startswith(("/api/", "/notify/")):
            continue
        methods = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        yield path, methods


def test_edge_every_operation_sweep(suite):
    """Every path of the spec: PATCH and OPTIONS answer 405 with (at least) the
    path's methods in Allow; every parameter of every path set to bytes that
    are not UTF-8, and a query parameter likewise, answer 400 INVALID_UTF8
    naming it — never a 500, never a handler."""
    swept = 0
    for path, methods in _operations():
        concrete = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        if "PATCH" not in methods:
            for m in ("PATCH", "OPTIONS"):
                r = call(suite.gateway, m, concrete)
                envelope(r, 405, "METHOD_NOT_ALLOWED")
                allow = {x.strip() for x in r.headers.get("Allow", "").split(",")}
                want = methods | ({"HEAD"} if "GET" in methods else set())
                assert want <= allow, (m, path, allow)
        names = re.findall(r"\{([^}]+)\}", path)
        for i, name in enumerate(names):
            bad = path
            for j, other in enumerate(names):
                bad = bad.replace("{" + other + "}", "%ff%fe" if i == j else "00000000-0000-4000-8000-000000000000")
            for m in methods:
                envelope(call(suite.gateway, m, bad, body={} if m in ("POST", "PUT") else None),
                         400, "INVALID_UTF8", name)
                swept += 1
        for m in methods:
            r = call(suite.gateway, m, concrete + "?q=%c0%af", body={} if m in ("POST", "PUT") else None)
            envelope(r, 400, "INVALID_UTF8", "q")
            swept += 1
    assert swept > 60, swept
