"""/metrics: the per-step latency histograms (common/hist.h,
caplat_step_duration_seconds{svc, step}) count the steps of a USB-key login
through nginx: the signature and chain checks, the Redis commands and the
JSON answers; the buckets are cumulative and end at the count. (The renewal
side — csr_verify, ca_sign, vendor_call in issuance — is asserted in
test_issuance_renewal.py.)"""
import re

from client import call, issue_cert, register_account, wait_until
from test_auth_ca import ca_login

LINE = re.compile(r'^caplat_step_duration_seconds_(bucket|sum|count)\{svc="[a-z]+",step="([a-z_]+)"'
                  r'(?:,le="([^"]+)")?\} (\S+)$')


def steps(suite, svc="auth"):
    """{step: {"count": n, "sum": s, "buckets": [(le, n), …]}} of svc."""
    text = call(suite.service_url(svc), "GET", "/metrics").raw.decode()
    assert "# TYPE caplat_step_duration_seconds histogram" in text
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            s = out.setdefault(m[2], {"count": 0, "sum": 0.0, "buckets": []})
            if m[1] == "bucket":
                s["buckets"].append((m[3], int(m[4])))
            else:
                s[m[1]] = float(m[4]) if m[1] == "sum" else int(m[4])
    return out


def test_login_steps_are_timed(suite):
    name = issue_cert(suite, "sm2", "personal", "计时")
    before = steps(suite)
    r, _ = ca_login(suite, name)
    assert r.status == 200 and r.json["status"] == "binding_required", r
    after = steps(suite)

    def grew(step):
        return after.get(step, {}).get("count", 0) - before.get(step, {}).get("count", 0)
    assert grew("sig_verify") == 1
    assert grew("chain_verify") == 1
    assert grew("redis") >= 2          # the challenge stored, then taken
    assert grew("json_build") >= 2     # the challenge and the login answers
    for step, s in after.items():
        counts = [n for _, n in s["buckets"]]
        assert counts == sorted(counts), step
        assert s["buckets"][-1] == ("+Inf", s["count"]), step
        assert s["sum"] >= 0
    assert after["sig_verify"]["sum"] > before.get("sig_verify", {}).get("sum", 0.0)


def test_database_and_bus_steps_are_timed(suite):
    """A registration is a database batch in auth, an auth.account.registered
    published by auth's relay and applied by enterprise's consumer: each of
    those steps is counted where it happens."""
    def count(svc, step):
        return steps(suite, svc).get(step, {}).get("count", 0)
    before = {(s, st): count(s, st) for s, st in
              [("auth", "db_batch"), ("auth", "bus_publish"), ("enterprise", "bus_consume")]}
    register_account(suite)
    for key, n in before.items():
        wait_until(lambda: count(*key) > n, timeout=10, what=f"{key} counted")
