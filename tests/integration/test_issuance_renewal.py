"""issuance, renewal on the USB key (更新数字证书) through nginx with the
local CA: RSA and SM2 renewals end to end (the virtual USB key of
tests/tools/ukey.c makes the new key pair and installs the certificate,
which then logs in at auth); the validity rules (from the old notAfter in
time, from today when expired); the entitlement used once; the lineage; the
refusals, which change nothing; revocation with its event, auth's refusal
and the CRLs. Certificates are made per test (tests/issuance/kit.py)."""
import datetime
import json
import os
import subprocess
import sys
import uuid

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (auth_trusts_local_ca, ca_bind, ca_login, cert_item, challenge, inject,  # noqa: E402
                 interop, make_leaf, new_csr, not_after_of, now_utc, pay, q, register_account,
                 renew, restart_issuance, save_pem, serial_of, staff_token, wait_registered)
from client import Api, call, ukey, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DISTID = "1234567812345678"


def validator(type_):
    with open(os.path.join(ROOT, "proto", "events", type_ + ".json")) as f:
        return jsonschema.Draft202012Validator(json.load(f), format_checker=jsonschema.FormatChecker())


def plus_year(dt):
    try:
        return dt.replace(year=dt.year + 1)
    except ValueError:  # 29 February
        return dt.replace(year=dt.year + 1, day=28)


def local_ca_file(suite, name, what):
    return os.path.join(suite.base, "ca", f"{name}-{what}.pem")


def openssl_verify(suite, alg, leaf_path):
    """The renewed certificate chains to the local CA, checked by the openssl
    CLI link by link as DOMAIN.md §1 says for SM2."""
    opt = ["-vfyopt", f"distid:{DISTID}"] if alg == "sm2" else []
    subprocess.run(["openssl", "verify", *opt, "-CAfile", local_ca_file(suite, alg, "root.cert"),
                    local_ca_file(suite, alg, "ca.cert")], check=True, capture_output=True)
    subprocess.run(["openssl", "verify", *opt, "-partial_chain", "-CAfile",
                    local_ca_file(suite, alg, "ca.cert"), leaf_path], check=True, capture_output=True)


def ukey_dir(suite, *args):
    d = os.path.join(suite.base, "issuance-ukeys")
    return ukey(suite, "-d", d, *args)


def issuance_steps(suite):
    """{step: count} of issuance's caplat_step_duration_seconds."""
    text = call(suite.service_url("issuance"), "GET", "/metrics").raw.decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('caplat_step_duration_seconds_count{svc="issuance",step="'):
            out[line.split('step="')[1].split('"')[0]] = int(line.rsplit(" ", 1)[1])
    return out


def renewed_event(suite, serial):
    rows = wait_until(lambda: suite.psql(
        "SELECT data::text FROM issuance.outbox WHERE type = 'issuance.cert.renewed'"
        f" AND data->>'serial' = {q(serial)}"), what="renewed event")
    return json.loads(rows[0][0])


def end_to_end(suite, alg, kind):
    """Bind, pay, renew on the virtual key, install, log in with the new
    certificate; the registry, the event and the interop API agree."""
    auth_trusts_local_ca(suite)
    leaf = make_leaf(suite, alg, kind, days=45)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    name = f"key-{uuid.uuid4().hex[:8]}"
    ukey_dir(suite, "import", name, leaf.key, leaf.cert)

    r = challenge(suite, token, cert_id)
    assert r.status == 409 and r.code == "NO_PAID_RENEWAL", r
    order_id = pay(suite, cert_id, ["LN_JSGC", "SY_GGZY"], account)
    r = challenge(suite, token, cert_id)
    assert r.status == 200 and r.json["serial"] == leaf.serial, r
    sig = ukey_dir(suite, "sign", name, r.json["nonce"])
    csr = ukey_dir(suite, "csr", name)
    steps_before = issuance_steps(suite)
    got = Api(suite).post(f"/api/v1/certs/{cert_id}/renewal",
                          {"challenge_id": r.json["challenge_id"], "csr": csr, "signature": sig},
                          token=token)
    assert got.status == 201, got
    # /metrics times the renewal's steps (issue 16): each at least once
    steps_after = issuance_steps(suite)
    for step in ("sig_verify", "csr_verify", "ca_sign", "vendor_call", "json_build", "redis"):
        assert steps_after.get(step, 0) > steps_before.get(step, 0), step
    # the CSR is parsed and verified once per renewal, not again to sign it
    assert steps_after["csr_verify"] - steps_before.get("csr_verify", 0) == 1
    body = got.json
    assert set(body) >= {"certificate", "chain", "serial", "not_after", "platforms", "cert_id"}
    assert body["cert_id"] == cert_id and body["platforms"] == ["LN_JSGC", "SY_GGZY"]
    assert len(body["chain"]) == 2
    path = save_pem(suite, body["certificate"])
    assert serial_of(path) == body["serial"] != leaf.serial
    # the subject stays; the validity runs on from the old notAfter
    assert subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"],
                          capture_output=True, text=True).stdout == \
        subprocess.run(["openssl", "x509", "-in", leaf.cert, "-noout", "-subject", "-nameopt", "RFC2253"],
                       capture_output=True, text=True).stdout
    assert not_after_of(path) == plus_year(not_after_of(leaf.cert))
    assert body["not_after"] == plus_year(not_after_of(leaf.cert)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    openssl_verify(suite, alg if alg == "sm2" else "rsa", path)

    # recorded: lineage, entitlement used, the event (auth consumes it)
    assert suite.psql(f"SELECT c.serial, p.serial, c.source, c.vendor FROM issuance.certificates c"
                      f" JOIN issuance.certificates p ON p.id = c.replaces"
                      f" WHERE c.cert_id = {q(cert_id)} AND c.replaced_by IS NULL") == \
        [[body["serial"], leaf.serial, "renewal", "caplat"]]
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE order_id = {q(order_id)}") == [["used"]]
    ev = renewed_event(suite, body["serial"])
    assert not list(validator("issuance.cert.renewed").iter_errors(ev))
    assert ev["previous_serial"] == leaf.serial and ev["previous_issuer"] == leaf.issuer
    assert ev["order_id"] == order_id and ev["cert_id"] == cert_id
    assert ev["platforms"] == ["LN_JSGC", "SY_GGZY"] and ev["account_id"] == account

    # the key installs the certificate and logs in with it: the same account
    ukey_dir(suite, "install", name, path)
    new_cert = ukey_dir(suite, "cert", name)

    def login():
        api = Api(suite)
        ch = api.post("/api/v1/auth/ca/challenge", {}).json
        r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"], "certificate": new_cert,
                                               "signature": ukey_dir(suite, "sign", name, ch["nonce"])})
        return r if r.status == 200 and r.json.get("status") == "ok" else None
    r = wait_until(login, what="renewed certificate logs in")
    assert r.json["account"]["id"] == account

    # the list shows the new certificate; downstream platforms see it at once
    item = cert_item(suite, token, cert_id)
    assert item["serial"] == body["serial"] and item["previous_serial"] == leaf.serial
    assert item["vendor"] == "caplat" and item["platforms"] == ["LN_JSGC", "SY_GGZY"]
    assert item["renewable"] is False and item["not_renewable_reason"] == "NOT_IN_RENEWAL_WINDOW"
    r = interop(suite, body["serial"], "SY_GGZY")
    assert r.status == 200 and r.json["valid"] is True and r.json["reason"] is None, r
    r = interop(suite, body["serial"], "DL_GGZY")
    assert r.json["valid"] is False and r.json["reason"] == "PLATFORM_NOT_ASSOCIATED"
    r = interop(suite, leaf.serial, "LN_JSGC")
    assert r.json["valid"] is False and r.json["reason"] == "CERT_SUPERSEDED"
    return leaf, cert_id, token, body


def test_issuance_rsa_renewal_end_to_end(suite):
    end_to_end(suite, "rsa", "agent")


def test_issuance_sm2_renewal_end_to_end(suite):
    leaf, cert_id, token, body = end_to_end(suite, "sm2", "master")
    path = save_pem(suite, body["certificate"])
    text = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-text"], capture_output=True,
                          text=True).stdout
    assert "SM2-with-SM3" in text and "caplat local SM2 issuing CA" in text
    assert "/api/v1/certs/crl/sm2.crl" in text  # the CRL distribution point


def test_issuance_ec_key_renews_under_rsa_ca(suite):
    leaf = make_leaf(suite, "ec", "project_lead", days=10)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_ZTB"], account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "ec")
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=r.json["certificate"],
                          capture_output=True, text=True).stdout
    assert "caplat local RSA issuing CA" in text and "prime256v1" in text


def test_issuance_expired_certificate_renews_from_today(suite):
    token, account, phone = register_account(suite)
    now = now_utc()
    leaf = make_leaf(suite, "sm2", "personal", not_before=now - datetime.timedelta(days=400),
                     not_after=now - datetime.timedelta(days=20))
    inject(suite, "auth.lock.bound", account, {
        "account_id": account, "phone": phone, "lock_id": str(uuid.uuid4()), "lock_kind": "personal",
        "holder": leaf.holder, "serial": leaf.serial, "issuer": leaf.issuer,
        "not_after": not_after_of(leaf.cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "certificate_pem": leaf.pem})
    cert_id = wait_registered(suite, leaf.serial)
    assert cert_item(suite, token, cert_id)["status"] == "expired"
    pay(suite, cert_id, ["LN_ZFCG"], account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
    before = now_utc()
    r = renew(suite, token, cert_id, leaf.key, csr)
    after = now_utc()
    assert r.status == 201, r
    got = not_after_of(save_pem(suite, r.json["certificate"]))
    assert plus_year(before) <= got <= plus_year(after) + datetime.timedelta(seconds=1)
    nb = datetime.datetime.strptime(r.json["not_before"], "%Y-%m-%dT%H:%M:%S.000Z").replace(
        tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=301) <= nb <= after


def test_issuance_entitlement_used_once_and_lineage(suite):
    leaf = make_leaf(suite, "rsa", "personal", days=60)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC"], account)
    new_key, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
    r = challenge(suite, token, cert_id)
    ch = r.json
    first = renew(suite, token, cert_id, leaf.key, csr, ch=ch)
    assert first.status == 201, first
    # the challenge is single use
    again = renew(suite, token, cert_id, leaf.key, csr, ch=ch)
    assert again.status == 401 and again.code == "CHALLENGE_INVALID", again
    # the holder now signs with the new key: nothing paid any more
    new_cert = save_pem(suite, first.json["certificate"])
    _, csr2 = new_csr(suite, new_key, new_cert, "rsa")
    r = renew(suite, token, cert_id, new_key, csr2)
    assert r.status == 409 and r.code == "NO_PAID_RENEWAL", r
    # the old key again: another CSR is refused, the same one gets the same certificate back
    _, csr3 = new_csr(suite, leaf.key, leaf.cert, "rsa")
    r = renew(suite, token, cert_id, leaf.key, csr3)
    assert r.status == 409 and r.code == "CERT_SUPERSEDED", r
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201 and r.json["serial"] == first.json["serial"], r
    assert r.json["certificate"] == first.json["certificate"]
    assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE cert_id = {q(cert_id)}") == [["2"]]
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}") == [["used"]]

    # a second paid order: the new certificate is far from its notAfter
    pay(suite, cert_id, ["LN_JSGC", "DL_ZFCG"], account)
    r = renew(suite, token, cert_id, new_key, csr2)
    assert r.status == 409 and r.code == "NOT_IN_RENEWAL_WINDOW", r
    # with the window opened wider (configurable), it renews the latest: a lineage of three
    try:
        restart_issuance(suite, {"CAPLAT_RENEWAL_WINDOW_BEFORE_DAYS": "800"})
        r = renew(suite, token, cert_id, new_key, csr2)
    finally:
        restart_issuance(suite)
    assert r.status == 201, r
    third = r.json["serial"]
    rows = suite.psql(f"SELECT c.serial, p.serial, c.replaced_by IS NULL FROM issuance.certificates c"
                      f" LEFT JOIN issuance.certificates p ON p.id = c.replaces"
                      f" WHERE c.cert_id = {q(cert_id)} ORDER BY c.registered_at")
    assert rows == [[leaf.serial, "", "f"], [first.json["serial"], leaf.serial, "f"],
                    [third, first.json["serial"], "t"]]
    # the validity ran on twice from the first notAfter
    assert not_after_of(save_pem(suite, r.json["certificate"])) == \
        plus_year(plus_year(not_after_of(leaf.cert)))
    assert r.json["platforms"] == ["LN_JSGC", "DL_ZFCG"]
    assert interop(suite, first.json["serial"], "LN_JSGC").json["reason"] == "CERT_SUPERSEDED"


def test_issuance_renewal_refusals_change_nothing(suite):
    leaf = make_leaf(suite, "sm2", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    other = make_leaf(suite, "sm2", "agent", days=30)
    other_token, _ = ca_bind(suite, other)
    other_id = wait_registered(suite, other.serial)
    pay(suite, cert_id, ["LN_JSGC"], account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")

    # not the holder, not a certificate, staff
    assert challenge(suite, other_token, cert_id).status == 404
    assert challenge(suite, token, str(uuid.uuid4())).status == 404
    assert challenge(suite, token, "nope").status == 404
    r = challenge(suite, staff_token(suite), cert_id)
    assert r.status == 403, r
    # the nonce signed by another key
    r = renew(suite, token, cert_id, leaf.key, csr, sign_key=other.key)
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    # a challenge of another certificate, an unknown one
    ch_other = challenge(suite, other_token, other_id)
    assert ch_other.status == 409  # nothing paid for it
    ch = challenge(suite, token, cert_id).json
    r = Api(suite).post(f"/api/v1/certs/{other_id}/renewal", {"challenge_id": ch["challenge_id"],
                        "csr": csr, "signature": "AAAA"}, token=other_token)
    assert r.status == 401 and r.code == "CHALLENGE_INVALID", r
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/renewal", {"challenge_id": str(uuid.uuid4()),
                        "csr": csr, "signature": "AAAA"}, token=token)
    assert r.status == 401 and r.code == "CHALLENGE_INVALID", r
    # CSRs: garbage, another subject, the current key
    r = renew(suite, token, cert_id, leaf.key, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
              "-----END CERTIFICATE REQUEST-----\n")
    assert r.status == 422 and r.code == "CSR_INVALID", r
    _, foreign = new_csr(suite, other.key, other.cert, "sm2")
    r = renew(suite, token, cert_id, leaf.key, foreign)
    assert r.status == 422 and r.code == "CSR_SUBJECT_MISMATCH", r
    reused = subprocess.run([os.path.join(suite.build, "bin", "ukey"), "csr", leaf.key, leaf.key, leaf.cert],
                            check=True, capture_output=True, text=True).stdout
    r = renew(suite, token, cert_id, leaf.key, reused)
    assert r.status == 422 and r.code == "CSR_KEY_REUSED", r
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/renewal", {"challenge_id": ch["challenge_id"]},
                        token=token)
    assert r.status == 422 and r.code == "FIELD_REQUIRED", r
    # none of it used the entitlement or reserved a serial
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}") == [["paid"]]
    assert suite.psql(f"SELECT count(*) FROM issuance.issuances WHERE cert_id = {q(cert_id)}") == [["0"]]
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r


def test_issuance_challenges_do_not_cross_services(suite):
    """A CA login challenge (auth) is refused as a renewal challenge
    (issuance) and the other way round, and the refused one stays usable
    where it was issued: one mechanism (common/challenge), two scopes. Both
    ids are UUIDs, as the contract says."""
    leaf = make_leaf(suite, "sm2", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC"], account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
    api = Api(suite)

    def login(ch):
        sig = ukey(suite, "sign", leaf.key, ch["nonce"])
        return api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                                   "certificate": leaf.pem, "signature": sig})

    login_ch = api.post("/api/v1/auth/ca/challenge", {}).json
    assert str(uuid.UUID(login_ch["challenge_id"])) == login_ch["challenge_id"]
    r = renew(suite, token, cert_id, leaf.key, csr, ch=login_ch)
    assert r.status == 401 and r.code == "CHALLENGE_INVALID", r
    r = login(login_ch)
    assert r.status == 200 and r.json["status"] == "ok", r

    r = challenge(suite, token, cert_id)
    assert r.status == 200, r
    renew_ch = r.json
    assert str(uuid.UUID(renew_ch["challenge_id"])) == renew_ch["challenge_id"]
    r = login(renew_ch)
    assert r.status == 401 and r.code == "CHALLENGE_INVALID", r
    assert suite.psql(f"SELECT count(*) FROM issuance.issuances WHERE cert_id = {q(cert_id)}") == [["0"]]
    r = renew(suite, token, cert_id, leaf.key, csr, ch=renew_ch)
    assert r.status == 201, r


def test_issuance_window_refuses_early_renewal(suite):
    leaf = make_leaf(suite, "rsa", "agent", days=200)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    item = cert_item(suite, token, cert_id)
    assert item["not_renewable_reason"] == "NOT_IN_RENEWAL_WINDOW"
    pay(suite, cert_id, ["LN_JSGC"], account)  # an orders bug would not bypass the window
    _, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 409 and r.code == "NOT_IN_RENEWAL_WINDOW", r
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}") == [["paid"]]


def test_issuance_revocation_event_auth_and_crl(suite):
    auth_trusts_local_ca(suite)
    leaf = make_leaf(suite, "rsa", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC"], account)
    new_key, csr = new_csr(suite, leaf.key, leaf.cert, "rsa")
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r
    serial, new_pem = r.json["serial"], r.json["certificate"]
    wait_until(lambda: ca_login(suite, leaf, cert_pem=new_pem, key=new_key).status == 200,
               what="renewed certificate logs in")

    api = Api(suite)
    path = f"/api/v1/certs/{cert_id}/revoke"
    assert api.post(path, {"reason": "key_compromise"}).status == 401
    r = api.post(path, {"reason": "key_compromise"}, token=token)
    assert r.status == 403, r
    op = staff_token(suite)
    r = api.post(path, {"reason": "stolen"}, token=op)
    assert r.status == 422 and r.code == "FIELD_INVALID", r
    r = api.post(f"/api/v1/certs/{uuid.uuid4()}/revoke", {"reason": "key_compromise"}, token=op)
    assert r.status == 404, r
    r = api.post(path, {"reason": "key_compromise"}, token=op)
    assert r.status == 200 and r.json["serial"] == serial and r.json["status"] == "revoked", r
    r = api.post(path, {"reason": "key_compromise"}, token=op)
    assert r.status == 409 and r.code == "CERT_REVOKED", r

    rows = wait_until(lambda: suite.psql("SELECT data::text FROM issuance.outbox WHERE type ="
                                         f" 'issuance.cert.revoked' AND subject = {q(cert_id)}"),
                      what="revoked event")
    ev = json.loads(rows[0][0])
    assert not list(validator("issuance.cert.revoked").iter_errors(ev))
    assert ev["serial"] == serial and ev["reason"] == "key_compromise" and "caplat local" in ev["issuer"]
    # auth consumes it: the next login is refused
    wait_until(lambda: ca_login(suite, leaf, cert_pem=new_pem, key=new_key).code == "CERT_REVOKED",
               what="auth refuses the revoked certificate")
    item = cert_item(suite, token, cert_id)
    assert item["status"] == "revoked" and item["not_renewable_reason"] == "CERT_REVOKED"
    pay(suite, cert_id, ["LN_JSGC"], account)
    r = challenge(suite, token, cert_id)
    assert r.status == 409 and r.code == "CERT_REVOKED", r
    r = interop(suite, serial, "LN_JSGC")
    assert r.json["valid"] is False and r.json["reason"] == "CERT_REVOKED"

    # the local RSA CA's CRL lists it, signed by the issuing CA
    r = api.get("/api/v1/certs/crl/rsa.crl")
    assert r.status == 200 and r.headers["Content-Type"] == "application/pkix-crl", r
    crl = save_pem(suite, "")
    with open(crl, "wb") as f:
        f.write(r.raw)
    bundle = save_pem(suite, open(local_ca_file(suite, "rsa", "ca.cert")).read() +
                      open(local_ca_file(suite, "rsa", "root.cert")).read())
    out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", crl, "-CAfile", bundle, "-noout",
                          "-text"], capture_output=True, text=True)
    assert out.returncode == 0 and "verify OK" in out.stderr + out.stdout, out
    assert serial in out.stdout.replace(":", "").upper() and "Key Compromise" in out.stdout
    r = api.get("/api/v1/certs/crl/sm2.crl")
    assert r.status == 200 and r.raw[:1] == b"\x30"
    assert api.get("/api/v1/certs/crl/ec.crl").status == 404
    assert api.get("/api/v1/certs/crl/rsa").status == 404
