"""issuance, the downstream platforms' interop API through nginx: a signed
request (X-Platform, X-Timestamp, X-Nonce, X-Signature = HMAC-SHA256 of
method, path, query, timestamp and nonce with the platform's secret) answers
whether a certificate is valid for the asking platform right now, naming its
cert id and, when superseded, its successor's serial; old or future
timestamps, replayed nonces, unknown platforms, bad signatures and
mismatched platforms are refused with proto/openapi.yaml's codes. A serial
two issuers share answers 409 SERIAL_AMBIGUOUS unless asked with the issuer
or by cert id (issue 13)."""
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
    # issue 13: the answer names the certificate (cert id, issuer, serial)
    assert r.json == {"valid": True, "reason": None, "not_after": new["not_after"],
                      "platforms": ["LN_JSGC", "HC_DZCG"], "cert_id": new["cert_id"],
                      "issuer": r.json["issuer"], "serial": new["serial"],
                      "successor_serial": None}
    r = interop(suite, new["serial"], "SF_JSXM")
    assert r.json["valid"] is False and r.json["reason"] == "PLATFORM_NOT_ASSOCIATED"
    # leading zeros and lower case name the same certificate
    r = interop(suite, "00" + new["serial"].lower(), "LN_JSGC")
    assert r.status == 200 and r.json["valid"] is True, r
    r = interop(suite, leaf.serial, "LN_JSGC")
    assert r.json["reason"] == "CERT_SUPERSEDED"
    assert r.json["successor_serial"] == new["serial"] and r.json["cert_id"] == new["cert_id"]
    # a certificate first seen at login has unknown associations (no
    # default set): associated with no platform until imported or renewed
    fresh = make_leaf(suite, "sm2", "personal", days=30)
    ca_bind(suite, fresh)
    wait_registered(suite, fresh.serial)
    for p in ("LN_JSGC", "DL_GGZY"):
        r = interop(suite, fresh.serial, p)
        assert r.json == {"valid": False, "reason": "PLATFORM_NOT_ASSOCIATED",
                          "not_after": r.json["not_after"], "platforms": [],
                          "cert_id": r.json["cert_id"], "issuer": r.json["issuer"],
                          "serial": fresh.serial, "successor_serial": None}, r
    r = interop(suite, "7F" + uuid.uuid4().hex.upper(), "LN_JSGC")
    assert r.status == 404 and r.code == "CERT_NOT_FOUND", r
    r = interop(suite, None, "LN_JSGC", cert_id=str(uuid.uuid4()))
    assert r.status == 404 and r.code == "CERT_NOT_FOUND", r


def test_issuance_interop_refuses_bad_requests(suite):
    _, new = renewed_for(suite, ["LN_JSGC"])
    serial = new["serial"]
    now = int(time.time())
    assert interop(suite, serial, "LN_JSGC", ts=str(now - 290)).status == 200
    # 310 s off, not 301: a second may pass between taking now and the check
    for ts in (str(now - 310), str(now + 310), "", "abc", str(now) + "000"):
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
    nonce = uuid.uuid4().hex
    sig = hmac.new(platform_secret(suite, "LN_JSGC").encode(),
                   f"GET\n{path}\nplatform=LN_JSGC\n{ts}\n{nonce}".encode(), hashlib.sha256).hexdigest()
    r = call(suite.gateway, "GET", path + "?platform=LN_JSGC&x=1",
             headers={"X-Platform": "LN_JSGC", "X-Timestamp": ts, "X-Signature": sig, "X-Nonce": nonce})
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    r = call(suite.gateway, "GET", path + "?platform=LN_JSGC")
    assert r.status == 401 and r.code == "TIMESTAMP_INVALID", r


def test_issuance_interop_refuses_replayed_nonce(suite):
    """issue 13: a signed request is good once; its nonce is kept for the
    timestamp window, so the same request again is refused."""
    _, new = renewed_for(suite, ["LN_JSGC"])
    ts = str(int(time.time()))
    nonce = uuid.uuid4().hex
    r = interop(suite, new["serial"], "LN_JSGC", ts=ts, nonce=nonce)
    assert r.status == 200 and r.json["valid"] is True, r
    r = interop(suite, new["serial"], "LN_JSGC", ts=ts, nonce=nonce)
    assert r.status == 401 and r.code == "NONCE_REPLAYED", r
    # the same nonce by another platform is that platform's own
    assert interop(suite, new["serial"], "LN_ZTB", ts=ts, nonce=nonce).status == 200
    # no nonce, or a malformed one: refused before anything is looked up
    for bad in ("", "short", "x" * 65, "has space 0123456789"):
        r = interop(suite, new["serial"], "LN_JSGC", nonce=bad)
        assert r.status == 401 and r.code == "NONCE_INVALID", (bad, r)
    # a stale timestamp with a fresh nonce
    r = interop(suite, new["serial"], "LN_JSGC", ts=str(int(time.time()) - 400))
    assert r.status == 401 and r.code == "TIMESTAMP_INVALID", r
    # a bad signature does not burn the nonce
    nonce = uuid.uuid4().hex
    assert interop(suite, new["serial"], "LN_JSGC", nonce=nonce, tamper=True).status == 401
    assert interop(suite, new["serial"], "LN_JSGC", nonce=nonce).status == 200


def second_issuer_twin(suite, serial):
    """Another vendor's certificate with the same serial: a lineage and a
    certificate in the registry under issuer CN=OtherCA (what a vendor
    directory sync or an import brings in)."""
    lineage, cert = str(uuid.uuid4()), str(uuid.uuid4())
    issuer = f"CN=OtherCA {uuid.uuid4().hex[:6]},O=OTHERCA,C=CN"
    suite.psql(f"INSERT INTO issuance.lineages (id, type, lock_kind, holder) VALUES"
               f" ('{lineage}', 'personal', 'personal', '另一持锁人')")
    suite.psql(f"INSERT INTO issuance.certificates (id, cert_id, issuer, serial, vendor, not_before,"
               f" not_after, platforms, source) VALUES ('{cert}', '{lineage}', '{issuer}', '{serial}',"
               f" 'OTHERCA', now() - interval '1 day', now() + interval '30 days', '{{LN_JSGC}}', 'sync')")
    return lineage, issuer


def test_issuance_interop_serial_shared_by_two_issuers(suite):
    """issue 13: the same serial at two vendors never gives an ambiguous
    answer: serial alone is 409 SERIAL_AMBIGUOUS naming the candidates'
    issuers; issuer + serial, or the cert id, answers each one."""
    leaf, new = renewed_for(suite, ["LN_JSGC", "HC_DZCG"])
    serial = new["serial"]
    ours = interop(suite, serial, "LN_JSGC").json["issuer"]
    twin, twin_issuer = second_issuer_twin(suite, serial)
    r = interop(suite, serial, "LN_JSGC")
    assert r.status == 409 and r.code == "SERIAL_AMBIGUOUS", r
    cands = r.json["error"]["candidates"]
    assert sorted(c["issuer"] for c in cands) == sorted([ours, twin_issuer]), cands
    assert sorted(c["cert_id"] for c in cands) == sorted([new["cert_id"], twin]), cands
    # leading zeros and lower case are the same serial, still ambiguous
    assert interop(suite, "0" + serial.lower(), "LN_JSGC").code == "SERIAL_AMBIGUOUS"
    r = interop(suite, serial, "HC_DZCG", issuer=ours)
    assert r.status == 200 and r.json["cert_id"] == new["cert_id"] and r.json["valid"] is True, r
    r = interop(suite, serial, "HC_DZCG", issuer=twin_issuer)
    assert r.status == 200 and r.json["cert_id"] == twin, r
    assert r.json["valid"] is False and r.json["reason"] == "PLATFORM_NOT_ASSOCIATED", r
    r = interop(suite, serial, "LN_JSGC", issuer="CN=Nobody,C=CN")
    assert r.status == 404 and r.code == "CERT_NOT_FOUND", r
    # by cert id: the lineage's latest certificate
    r = interop(suite, None, "LN_JSGC", cert_id=twin)
    assert r.status == 200 and r.json["serial"] == serial and r.json["issuer"] == twin_issuer, r
    r = interop(suite, None, "LN_JSGC", cert_id=new["cert_id"])
    assert r.status == 200 and r.json["issuer"] == ours and r.json["successor_serial"] is None, r
    # the renewed certificate's predecessor names its successor
    r = interop(suite, leaf.serial, "LN_JSGC")
    assert r.status == 200 and r.json["reason"] == "CERT_SUPERSEDED", r
    assert r.json["successor_serial"] == serial and r.json["cert_id"] == new["cert_id"], r
