#!/usr/bin/env python3
"""Replays issue 15's findings on the HTTP edge (part 4) against a running
gateway and checks each answer. Standard library only.

  python3 tests/edge_replay.py --gateway http://127.0.0.1:8080 \\
      [--payments http://127.0.0.1:18084] [--db postgresql://admin:…@…/caplat]

--payments (payments' own port, for /metrics) and --db (psql, to count
payments.notifications) add the checks that need them; without them those
checks are reported as skipped. Exit 0 when every finding gets the right
answer, 1 otherwise.

The findings, as reported:
  1. PATCH, OPTIONS and unknown methods answered libevent's HTML 501
     → 405, Allow with the path's methods, the JSON envelope METHOD_NOT_ALLOWED
  2. nginx answered %00 / ../ in a path, an over-long URI, a too-large body or
     header and unknown paths with its own HTML pages
     → the JSON envelope (400 BAD_REQUEST, 414 URI_TOO_LONG, 413, 404, 405)
  3. GET /api/v1/platforms/%ff%fe/prices reached PostgreSQL and answered 500
     → 400 INVALID_UTF8 with the field, also for query parameters and bodies
  4. payments stored every notification before checking its signature
     → an unsigned or forged notification is answered and stores nothing
  5. a notification with invalid UTF-8 answered 503 and counted as a
     PostgreSQL outage → 4xx in the provider's format, no dependency error
"""
import argparse
import http.client
import json
import subprocess
import sys
import time
import urllib.parse

RESULTS = []


def request(base, method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = b"" if method == "HEAD" else r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def envelope_problem(status, headers, data, want_status, want_code, want_field=None):
    """None when the answer is want_status with the JSON envelope, else why not."""
    if status != want_status:
        return f"status {status}, want {want_status}: {data[:120]!r}"
    if not headers.get("content-type", "").startswith("application/json"):
        return f"Content-Type {headers.get('content-type')!r}: {data[:120]!r}"
    try:
        doc = json.loads(data)
    except ValueError:
        return f"not JSON: {data[:120]!r}"
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str):
        return f"not the envelope: {doc!r}"
    if err.get("code") != want_code:
        return f"code {err.get('code')!r}, want {want_code!r}"
    if want_field is not None and err.get("field") != want_field:
        return f"field {err.get('field')!r}, want {want_field!r}"
    return None


def check(finding, what, problem):
    RESULTS.append((finding, what, problem))
    mark = "ok  " if problem is None else ("skip" if problem == "skipped" else "FAIL")
    print(f"{mark} [{finding}] {what}" + ("" if problem in (None, "skipped") else f": {problem}"))


def metric(payments, name, labels):
    _, _, data = request(payments, "GET", "/metrics")
    total = 0.0
    for line in data.decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def notifications(db):
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", db, "-c",
                          "SELECT count(*) FROM payments.notifications"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--payments", help="payments' own base URL (for /metrics)")
    ap.add_argument("--db", help="a PostgreSQL URL that may read payments.notifications")
    a = ap.parse_args()
    gw = a.gateway.rstrip("/")

    # 1. methods
    for method, path in (("PATCH", "/api/v1/profile"), ("OPTIONS", "/api/v1/profile"),
                         ("FROB", "/api/v1/profile"), ("PATCH", "/api/v1/orders/00000000-0000-4000-8000-000000000000"),
                         ("OPTIONS", "/notify/alipay"), ("DELETE", "/api/v1/auth/login")):
        s, h, d = request(gw, method, path)
        p = envelope_problem(s, h, d, 405, "METHOD_NOT_ALLOWED")
        if p is None and not h.get("allow"):
            p = "no Allow header"
        check(1, f"{method} {path} → 405 + Allow ({h.get('allow')})", p)
    s, h, d = request(gw, "TRACE", "/api/v1/profile")
    check(1, "TRACE (refused by nginx) → 405 envelope",
          envelope_problem(s, h, d, 405, "METHOD_NOT_ALLOWED"))

    # 2. nginx's own errors
    for path in ("/api/v1/platforms/%00/prices", "/api/../../etc/passwd"):
        s, h, d = request(gw, "GET", path)
        check(2, f"GET {path} → 400 envelope", envelope_problem(s, h, d, 400, "BAD_REQUEST"))
    s, h, d = request(gw, "GET", "/api/v1/platforms?q=" + "a" * 20000)
    check(2, "an over-long URI → 414 envelope", envelope_problem(s, h, d, 414, "URI_TOO_LONG"))
    s, h, d = request(gw, "GET", "/api/v1/platforms", headers={"X-Big": "b" * 40000})
    check(2, "a header too large → 400 envelope", envelope_problem(s, h, d, 400, "BAD_REQUEST"))
    s, h, d = request(gw, "POST", "/api/v1/auth/login",
                      headers={"Content-Type": "application/json", "Content-Length": str(7 << 20)})
    check(2, "a body too large → 413 envelope", envelope_problem(s, h, d, 413, "BODY_TOO_LARGE"))
    for path in ("/nothing", "/api/v1/nothing/here", "/internal/x"):
        s, h, d = request(gw, "GET", path)
        check(2, f"GET {path} → 404 envelope", envelope_problem(s, h, d, 404, "NOT_FOUND"))

    # 3. invalid UTF-8
    for path, field in (("/api/v1/platforms/%ff%fe/prices", "code"),
                        ("/api/v1/platforms/%c0%af/prices", "code"),
                        ("/api/v1/orders/%ed%a0%80", "id"),
                        ("/api/v1/platforms?lock_kind=%ff", "lock_kind"),
                        ("/api/v1/certs?cursor=%fe%ff", "cursor"),
                        ("/api/v1/certs?cursor=ab%00cd", "cursor")):
        s, h, d = request(gw, "GET", path)
        check(3, f"GET {path} → 400 INVALID_UTF8 field={field}",
              envelope_problem(s, h, d, 400, "INVALID_UTF8", field))
    s, h, d = request(gw, "POST", "/api/v1/auth/login", body=b'{"phone":"\xff\xfe","password":"x"}',
                      headers={"Content-Type": "application/json"})
    check(3, "a JSON body with invalid UTF-8 → 400 INVALID_UTF8 field=body",
          envelope_problem(s, h, d, 400, "INVALID_UTF8", "body"))

    # 4 and 5. notifications
    before = notifications(a.db) if a.db else None
    pg = metric(a.payments, "caplat_dependency_errors_total", {"dep": "postgres"}) if a.payments else None
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    s, h, d = request(gw, "POST", "/notify/alipay",
                      body=b"notify_id=replay&out_trade_no=replay&trade_status=TRADE_SUCCESS&total_amount=1.00",
                      headers=form)
    check(4, "an unsigned Alipay notification → 400 failure",
          None if (s, d) == (400, b"failure") else f"{s} {d[:80]!r}")
    s, h, d = request(gw, "POST", "/notify/wechat", body=b'{"id":"replay"}',
                      headers={"Content-Type": "application/json"})
    check(4, "an unsigned WeChat notification → 401 FAIL",
          None if s == 401 and json.loads(d or b"{}").get("code") == "FAIL" else f"{s} {d[:80]!r}")
    s, h, d = request(gw, "POST", "/notify/wechat", body=b'{"id":"replay"}', headers={
        "Content-Type": "application/json", "Wechatpay-Timestamp": str(int(time.time())),
        "Wechatpay-Nonce": "replay", "Wechatpay-Signature": "Zm9yZ2Vk", "Wechatpay-Serial": "0BADC0DE"})
    check(4, "a forged WeChat notification → 401 FAIL",
          None if s == 401 and json.loads(d or b"{}").get("code") == "FAIL" else f"{s} {d[:80]!r}")
    s, h, d = request(gw, "POST", "/notify/alipay", body=b"notify_id=\xff\xfe&out_trade_no=replay",
                      headers=form)
    check(5, "an Alipay notification with invalid UTF-8 → 400 failure",
          None if (s, d) == (400, b"failure") else f"{s} {d[:80]!r}")
    s, h, d = request(gw, "POST", "/notify/wechat", body=b'{"id":"\xff\xfe"}', headers={
        "Content-Type": "application/json", "Wechatpay-Timestamp": str(int(time.time())),
        "Wechatpay-Nonce": "replay", "Wechatpay-Signature": "Zm9yZ2Vk", "Wechatpay-Serial": "0BADC0DE"})
    check(5, "a WeChat notification with invalid UTF-8 → 400 FAIL",
          None if s == 400 and json.loads(d or b"{}").get("code") == "FAIL" else f"{s} {d[:80]!r}")
    if a.db:
        after = notifications(a.db)
        check(4, "nothing of them stored", None if after == before else f"{after - before} rows stored")
    else:
        check(4, "nothing of them stored (needs --db)", "skipped")
    if a.payments:
        now = metric(a.payments, "caplat_dependency_errors_total", {"dep": "postgres"})
        check(5, "no PostgreSQL error counted", None if now == pg else f"{now - pg} counted")
    else:
        check(5, "no PostgreSQL error counted (needs --payments)", "skipped")

    failed = [r for r in RESULTS if r[2] not in (None, "skipped")]
    print(f"{len(RESULTS) - len(failed)} of {len(RESULTS)} answers right"
          + (f", {len(failed)} wrong" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
