"""issuance, the downstream platforms' interop API through nginx: a signed
request (X-Platform, X-Timestamp, X-Signature = HMAC-SHA256 of method, path,
query and timestamp with the platform's secret) answers whether a
certificate is valid for the asking platform right now; old or future
timestamps, unknown platforms, bad signatures and mismatched platforms are
refused with proto/openapi.yaml's codes."""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (ca_bind, interop, make_leaf, new_csr, pay, platform_secret, renew,  # noqa: E402
                 wait_registered)
from client import call  # noqa: E402


def renewed_for(suite, platforms):
    leaf = make_leaf(suite, "rsa", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, platforms, account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r
    return leaf, r.json


def test_issuance_interop_status_answers(suite):
    leaf, new = renewed_for(suite, ["LN_JSGC", "HC_DZCG"])
    r = interop(suite, new["serial"], "HC_DZCG")
    assert r.status == 200, r
    assert r.json == {"valid": True, "reason": None, "not_after": new["not_after"],
                      "platforms": ["LN_JSGC", "HC_DZCG"]}
    r = interop(suite, new["serial"], "SF_JSXM")
    assert r.json["valid"] is False and r.json["reason"] == "PLATFORM_NOT_ASSOCIATED"
    # leading zeros and lower case name the same certificate
    r = interop(suite, "00" + new["serial"].lower(), "LN_JSGC")
    assert r.status == 200 and r.json["valid"] is True, r
    r = interop(suite, leaf.serial, "LN_JSGC")
    assert r.json["reason"] == "CERT_SUPERSEDED"
    # a certificate first seen at login has unknown associations (no
    # default set): associated with no platform until imported or renewed
    fresh = make_leaf(suite, "sm2", "personal", days=30)
    ca_bind(suite, fresh)
    wait_registered(suite, fresh.serial)
    for p in ("LN_JSGC", "DL_GGZY"):
        r = interop(suite, fresh.serial, p)
        assert r.json == {"valid": False, "reason": "PLATFORM_NOT_ASSOCIATED",
                          "not_after": r.json["not_after"], "platforms": []}, r
    r = interop(suite, "7F" + uuid.uuid4().hex.upper(), "LN_JSGC")
    assert r.status == 404 and r.code == "CERT_NOT_FOUND", r


def test_issuance_interop_refuses_bad_requests(suite):
    _, new = renewed_for(suite, ["LN_JSGC"])
    serial = new["serial"]
    now = int(time.time())
    assert interop(suite, serial, "LN_JSGC", ts=str(now - 290)).status == 200
    for ts in (str(now - 301), str(now + 301), "", "abc", str(now) + "000"):
        r = interop(suite, serial, "LN_JSGC", ts=ts)
        assert r.status == 401 and r.code == "TIMESTAMP_INVALID", (ts, r)
    r = interop(suite, serial, "LN_JSGC", tamper=True)
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    r = interop(suite, serial, "LN_JSGC", secret=platform_secret(suite, "LN_ZTB"))
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    r = interop(suite, serial, "XX_NOPE", secret="0123456789abcdef0123")
    assert r.status == 401 and r.code == "PLATFORM_UNKNOWN", r
    # platform= must be the caller's own
    r = interop(suite, serial, "LN_JSGC", header_platform="LN_ZTB")
    assert r.status == 403 and r.code == "PLATFORM_MISMATCH", r
    r = interop(suite, serial, "LN_JSGC", query="")
    assert r.status == 400, r
    # the query is signed as sent: an added parameter breaks the signature
    path = f"/api/v1/interop/certs/{serial}/status"
    ok = interop(suite, serial, "LN_JSGC")
    assert ok.status == 200
    import hashlib
    import hmac
    ts = str(int(time.time()))
    sig = hmac.new(platform_secret(suite, "LN_JSGC").encode(),
                   f"GET\n{path}\nplatform=LN_JSGC\n{ts}".encode(), hashlib.sha256).hexdigest()
    r = call(suite.gateway, "GET", path + "?platform=LN_JSGC&x=1",
             headers={"X-Platform": "LN_JSGC", "X-Timestamp": ts, "X-Signature": sig})
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    r = call(suite.gateway, "GET", path + "?platform=LN_JSGC")
    assert r.status == 401 and r.code == "TIMESTAMP_INVALID", r
