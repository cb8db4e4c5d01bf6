"""New certificate applications (issue 19) through nginx: the administrator
of an approved enterprise applies for a member's staff lock (RSA) and a
person for their personal lock (SM2); the subject comes from the approved
record and the completed profile, never typed; the order is priced at the
new-association price and paid through payments and the simulator; the key
pair is generated on the virtual USB key (build/bin/ukey keygen, under the
PIN) and the CSR sent with the challenge signed by the new key; the
certificate is written to the key, registered for the holder's account,
binds with the usual CA login, and chains for openssl and GnuTLS certtool.
Refusals: a subject that is not the approved record's, an unpaid
application, a non-administrator applying for someone else, another's
application. A crash of issuance between the intent and the vendor neither
loses nor doubles the certificate."""
import json
import os
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import auth_trusts_local_ca, interop, q, restart_issuance, save_pem  # noqa: E402
from client import Api, new_phone, sms_code, ukey, wait_until  # noqa: E402
from test_auth_ca import suite_redis_del  # noqa: E402
from test_orders import enterprise_admin, member, person  # noqa: E402
from test_payments import pay as pay_order  # noqa: E402
from test_payments import payment, sim_pay  # noqa: E402

DISTID = "1234567812345678"


def ukey_dir(suite, *args):
    return ukey(suite, "-d", os.path.join(suite.base, "issuance-ukeys"), *args)


def apply(suite, token, platforms, member_identity=None):
    body = {"platforms": platforms}
    if member_identity:
        body["member_identity_id"] = member_identity
    return Api(suite).post("/api/v1/orders/new-certificate", body, token=token)


def application_recorded(suite, cert_id):
    wait_until(lambda: suite.psql(f"SELECT 1 FROM issuance.applications WHERE id = {q(cert_id)}"),
               timeout=15, what="issuance learnt the application")


def pay_and_wait(suite, token, order_id, cert_id):
    r = pay_order(suite, token, order_id, "alipay", {"type": "e_normal", "email": "buyer@example.com"})
    assert r.status == 201, r
    sim_pay(suite, r.json["id"])
    wait_until(lambda: payment(suite, token, r.json["id"])["status"] == "succeeded", what="paid")
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM issuance.entitlements WHERE cert_id = {q(cert_id)}"), timeout=15,
        what="the paid application reached issuance")


def challenge(suite, token, cert_id):
    return Api(suite).post(f"/api/v1/certs/{cert_id}/issue/challenge", {}, token=token)


def issue(suite, token, cert_id, key_name, csr, sign_with=None):
    r = challenge(suite, token, cert_id)
    assert r.status == 200, r
    sig = ukey_dir(suite, "sign", sign_with or key_name, r.json["nonce"])
    return Api(suite).post(f"/api/v1/certs/{cert_id}/issue",
                           {"challenge_id": r.json["challenge_id"], "csr": csr, "signature": sig},
                           token=token, timeout=30)


def verify_chain(suite, alg, body):
    """openssl and GnuTLS certtool both accept the chain [leaf, issuing CA, root]."""
    d = os.path.join(suite.base, "issuance-pki", f"chain-{uuid.uuid4().hex[:8]}")
    os.makedirs(d)
    leaf, ca, root = os.path.join(d, "leaf.pem"), os.path.join(d, "ca.pem"), os.path.join(d, "root.pem")
    for path, text in ((leaf, body["certificate"]), (ca, body["chain"][0]), (root, body["chain"][1])):
        with open(path, "w") as f:
            f.write(text)
    opt = ["-vfyopt", f"distid:{DISTID}"] if alg == "sm2" else []
    if alg == "sm2":  # link by link, as DOMAIN.md §1 says for SM2 (the ID per verification)
        steps = [["-CAfile", root, ca], ["-partial_chain", "-CAfile", ca, leaf]]
    else:
        steps = [["-CAfile", root, "-untrusted", ca, leaf]]
    for step in steps:
        r = subprocess.run(["openssl", "verify", *opt, *step], capture_output=True, text=True)
        assert r.returncode == 0 and "OK" in r.stdout, r
    if shutil.which("certtool") and alg == "rsa":  # GnuTLS has no SM2
        with open(os.path.join(d, "bundle.pem"), "w") as f:
            f.write(body["certificate"] + body["chain"][0] + body["chain"][1])
        r = subprocess.run(["certtool", "--verify-chain", "--infile", os.path.join(d, "bundle.pem")],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "Chain verification output: Verified" in r.stdout, r.stdout[-600:]
    return leaf


def subject_of(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt",
                           "RFC2253,-esc_msb"], capture_output=True, text=True).stdout.strip().removeprefix("subject=")


def bind_with_key(suite, key_name, phone_account_token):
    """The usual CA login and binding with the new key, to the holder's phone."""
    api = Api(suite)
    ch = api.post("/api/v1/auth/ca/challenge", {}).json
    r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                            "certificate": ukey_dir(suite, "cert", key_name),
                                            "signature": ukey_dir(suite, "sign", key_name, ch["nonce"])})
    return r


def test_issuance_admin_applies_for_member_staff_lock_rsa(suite):
    auth_trusts_local_ca(suite)
    admin = enterprise_admin(suite)
    mem = member(suite, admin.uscc, "agent")
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM orders.identities WHERE identity_id = {q(mem.identity)}"), what="member known to orders")

    # refusals at the application: a member for someone else, an unknown member
    r = apply(suite, mem.token, ["LN_JSGC"], admin.identity)
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_ADMIN", r
    r = apply(suite, admin.token, ["LN_JSGC"], str(uuid.uuid4()))
    assert r.status == 404 and r.code == "NOT_FOUND", r
    r = apply(suite, admin.token, ["NO_SUCH"], mem.identity)
    assert r.status == 422 and r.code == "PLATFORM_UNKNOWN", r

    r = apply(suite, admin.token, ["LN_JSGC", "SY_GGZY"], mem.identity)
    assert r.status == 201, r
    order = r.json
    item = order["items"][0]
    cert_id = item["cert_id"]
    assert order["status"] == "pending_payment" and order["total_fen"] == 30000 + 25000
    assert [(line["platform"], line["kind"], line["price_fen"]) for line in item["lines"]] == \
        [("LN_JSGC", "add", 30000), ("SY_GGZY", "add", 25000)]
    app = item["application"]
    assert app["lock_kind"] == "agent" and app["holder"] == "李四"
    assert app["holder_account_id"] == mem.account
    assert app["subject"] == {"c": "CN", "o": "沈阳某某建设有限公司", "ou": "agent", "cn": "李四",
                              "organization_identifier": admin.uscc}
    application_recorded(suite, cert_id)

    # unpaid: refused; not the holder: 404
    r = challenge(suite, mem.token, cert_id)
    assert r.status == 409 and r.code == "APPLICATION_NOT_PAID", r
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 404, r
    pay_and_wait(suite, admin.token, order["id"], cert_id)

    # the key pair on the key; a subject typed differently is refused
    name = f"new-{uuid.uuid4().hex[:8]}"
    ukey_dir(suite, "keygen", name, "rsa")
    ch = challenge(suite, mem.token, cert_id)
    assert ch.status == 200 and ch.json["subject"] == app["subject"], ch
    wrong = dict(app["subject"], o="别的公司有限公司")
    bad_csr = ukey_dir(suite, "request", name, json.dumps(wrong, ensure_ascii=False))
    r = issue(suite, mem.token, cert_id, name, bad_csr)
    assert r.status == 422 and r.code == "CSR_SUBJECT_MISMATCH", r
    csr = ukey_dir(suite, "request", name, json.dumps(ch.json["subject"], ensure_ascii=False))
    # the challenge signed by another key: no proof of the CSR's key
    other = f"other-{uuid.uuid4().hex[:8]}"
    ukey_dir(suite, "keygen", other, "rsa")
    r = issue(suite, mem.token, cert_id, name, csr, sign_with=other)
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    assert suite.psql(f"SELECT status FROM issuance.applications WHERE id = {q(cert_id)}") == [["open"]]

    r = issue(suite, mem.token, cert_id, name, csr)
    assert r.status == 201, r
    body = r.json
    assert body["cert_id"] == cert_id and body["platforms"] == ["LN_JSGC", "SY_GGZY"]
    leaf = verify_chain(suite, "rsa", body)
    assert subject_of(leaf) == (f"organizationIdentifier={admin.uscc},CN=李四,OU=agent,"
                                "O=沈阳某某建设有限公司,C=CN")
    # the same CSR again: the same certificate, never a second one
    again = issue(suite, mem.token, cert_id, name, csr)
    assert again.status == 201 and again.json["serial"] == body["serial"], again
    assert suite.psql(f"SELECT count(*), min(source) FROM issuance.certificates WHERE cert_id = {q(cert_id)}") \
        == [["1", "application"]]
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}") == [["used"]]
    ev = wait_until(lambda: suite.psql(
        "SELECT data::text FROM issuance.outbox WHERE type = 'issuance.cert.registered'"
        f" AND subject = {q(cert_id)}"), what="registered event")
    assert json.loads(ev[0][0])["account_id"] == mem.account
    # the order is fulfilled by the issue (its one item done)
    got = wait_until(lambda: (lambda o: o if o.json["status"] == "fulfilled" else None)(
        Api(suite).get(f"/api/v1/orders/{order['id']}", token=admin.token)), timeout=15, what="order fulfilled")
    assert got.json["items"][0]["renewed_serial"] == body["serial"]
    assert got.json["items"][0]["application"]["subject"] == app["subject"]

    # written to the key; the usual CA login binds it to the member's account
    ukey_dir(suite, "install", name, leaf)
    r = bind_with_key(suite, name, mem.token)
    assert r.status == 200 and r.json["status"] == "binding_required", r
    phone = suite.psql(f"SELECT phone FROM auth.accounts WHERE id = {q(mem.account)}")[0][0]
    suite_redis_del(suite, f"sms:last:{phone}")  # the registration's code was just sent
    assert Api(suite).post("/api/v1/auth/sms", {"phone": phone, "purpose": "bind"}).status == 202
    r = Api(suite).post("/api/v1/auth/ca/bind", {"bind_token": r.json["bind_token"], "phone": phone,
                                                 "sms_code": sms_code(suite, phone, "bind")})
    assert r.status == 200 and r.json["account"]["id"] == mem.account, r  # the applicant's account
    wait_until(lambda: suite.psql(f"SELECT 1 FROM issuance.lineages WHERE id = {q(cert_id)}"
                                  " AND lock_id IS NOT NULL"), timeout=15, what="one lineage, now with its lock")
    assert interop(suite, body["serial"], "SY_GGZY").json["valid"] is True
    assert interop(suite, body["serial"], "DL_GGZY").json["reason"] == "PLATFORM_NOT_ASSOCIATED"
    # CA管理: the member sees the new certificate as theirs
    items = Api(suite).get("/api/v1/certs?limit=100", token=mem.token).json["items"]
    assert [i["serial"] for i in items if i["id"] == cert_id] == [body["serial"]]


def test_issuance_person_applies_for_personal_lock_sm2_and_survives_a_crash(suite):
    auth_trusts_local_ca(suite)
    p = person(suite)
    r = apply(suite, p.token, ["LN_ZFCG"])
    assert r.status == 201, r
    order, cert_id = r.json, r.json["items"][0]["cert_id"]
    assert order["total_fen"] == 20000  # the personal lock's new-association price
    assert r.json["items"][0]["application"]["subject"] == {"c": "CN", "ou": "personal", "cn": "王五"}
    application_recorded(suite, cert_id)
    pay_and_wait(suite, p.token, order["id"], cert_id)
    name = f"new-{uuid.uuid4().hex[:8]}"
    ukey_dir(suite, "keygen", name, "sm2")
    subject = challenge(suite, p.token, cert_id).json["subject"]
    csr = ukey_dir(suite, "request", name, json.dumps(subject, ensure_ascii=False))

    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    try:
        restart_issuance(suite, {"CAPLAT_FAULT": "issuance_crash_before_vendor", "CAPLAT_FAULT_ONCE": once,
                                 "CAPLAT_ISSUANCE_LEASE_SECONDS": "3"})
        r = issue(suite, p.token, cert_id, name, csr)
        assert r.status in (502, 503), r  # issuance died between the intent and the vendor
        assert os.path.exists(once)
        row = suite.psql(f"SELECT status, serial FROM issuance.applications WHERE id = {q(cert_id)}")
        assert row[0][0] == "pending", row
        assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE cert_id = {q(cert_id)}") == [["0"]]
        restart_issuance(suite)  # its resumer finishes after the lease
        wait_until(lambda: suite.psql(
            f"SELECT 1 FROM issuance.applications WHERE id = {q(cert_id)} AND status = 'issued'"),
            timeout=20, what="the resumer issued")
    finally:
        restart_issuance(suite)
    r = issue(suite, p.token, cert_id, name, csr)
    assert r.status == 201 and r.json["serial"] == row[0][1], r
    assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE cert_id = {q(cert_id)}") == [["1"]]
    leaf = verify_chain(suite, "sm2", r.json)
    text = subprocess.run(["openssl", "x509", "-in", leaf, "-noout", "-text"], capture_output=True,
                          text=True).stdout
    assert "SM2-with-SM3" in text and "caplat local SM2 issuing CA" in text
    ukey_dir(suite, "install", name, leaf)
    r = bind_with_key(suite, name, p.token)
    assert r.status == 200 and r.json["status"] == "binding_required", r


def test_issuance_long_expired_points_to_a_prefilled_new_application(suite):
    from kit import inject, make_leaf, new_csr, not_after_of, now_utc, pay, renew, wait_registered
    from test_orders import register_cert
    import datetime
    p = person(suite)
    now = now_utc()
    leaf = make_leaf(suite, "sm2", "personal", not_before=now - datetime.timedelta(days=800),
                     not_after=now - datetime.timedelta(days=400))
    inject(suite, "auth.lock.bound", p.account, {
        "account_id": p.account, "phone": new_phone(), "lock_id": str(uuid.uuid4()),
        "lock_kind": "personal", "holder": leaf.holder, "serial": leaf.serial, "issuer": leaf.issuer,
        "not_after": not_after_of(leaf.cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "certificate_pem": leaf.pem})
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC"], p.account)
    _, csr = new_csr(suite, leaf.key, leaf.cert, "sm2")
    r = renew(suite, p.token, cert_id, leaf.key, csr)
    assert r.status == 409 and r.code == "EXPIRED_TOO_LONG", r
    pointer = r.json["error"]["new_application"]
    assert pointer == {"method": "POST", "path": "/api/v1/orders/new-certificate",
                       "body": {"replaces_cert_id": cert_id}}, pointer
    # the pointer's body is an application for the same holder and lock kind
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"),
               what="orders knows the certificate")
    r = Api(suite).post(pointer["path"], dict(pointer["body"], platforms=["LN_JSGC"]), token=p.token)
    assert r.status == 201, r
    app = r.json["items"][0]["application"]
    assert app["lock_kind"] == "personal" and app["holder"] == "王五" and app["replaces_cert_id"] == cert_id

    # the platform associations carry over when none are chosen
    old, _ = register_cert(suite, account=p.account, kind="personal", platforms=("LN_JSGC", "DL_ZFCG"),
                           expires_in=-400, holder="王五")
    r = Api(suite).post(pointer["path"], {"replaces_cert_id": old}, token=p.token)
    assert r.status == 201, r
    item = r.json["items"][0]
    assert item["platforms"] == ["LN_JSGC", "DL_ZFCG"] and r.json["total_fen"] == 20000 * 2
    assert [line["kind"] for line in item["lines"]] == ["add", "add"]
    # refusals: still renewable; another person's certificate
    fresh, _ = register_cert(suite, account=p.account, kind="personal", expires_in=-10, holder="王五")
    r = Api(suite).post(pointer["path"], {"replaces_cert_id": fresh}, token=p.token)
    assert r.status == 409 and r.code == "CERT_STILL_RENEWABLE", r
    other = person(suite)
    r = Api(suite).post(pointer["path"], {"replaces_cert_id": old}, token=other.token)
    assert r.status == 404 and r.code == "CERT_NOT_FOUND", r


def renamed(suite, uscc, name, seq):
    """The enterprise's approved change of its record (version seq, a new
    name) has reached issuance."""
    from test_orders import applied, record_approved
    applied(suite, record_approved(suite, uscc, name=name, seq=seq))
    wait_until(lambda: suite.psql(f"SELECT 1 FROM issuance.enterprise_records WHERE uscc = {q(uscc)}"
                                  f" AND name = {q(name)}"), timeout=15, what="the change reached issuance")


def change_ready(suite, alg, kind):
    """A holder's certificate (lock kind `kind`) of an enterprise named
    沈阳某某建设有限公司, bound; then the enterprise renamed 沈阳新名建设有限公司.
    Returns (admin, leaf, token, account, cert_id)."""
    from kit import ca_bind, make_leaf, wait_registered
    auth_trusts_local_ca(suite)
    admin = enterprise_admin(suite)
    leaf = make_leaf(suite, alg, kind, days=200, uscc=admin.uscc, holder="赵六",
                     enterprise="沈阳某某建设有限公司")
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    wait_until(lambda: suite.psql(f"SELECT 1 FROM issuance.enterprise_records WHERE uscc = {q(admin.uscc)}"),
               timeout=15, what="issuance knows the approved record")
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token)
    assert r.status == 409 and r.code == "NO_CHANGE", r
    renamed(suite, admin.uscc, "沈阳新名建设有限公司", 2)
    return admin, leaf, token, account, cert_id


def change_issue(suite, token, app, alg, subject):
    """Issues change application app on a new key with a CSR of subject.
    Returns (the key's name, the answer)."""
    name = f"chg-{uuid.uuid4().hex[:8]}"
    ukey_dir(suite, "keygen", name, alg)
    csr = ukey_dir(suite, "request", name, json.dumps(subject, ensure_ascii=False))
    return name, issue(suite, token, app, name, csr)


def subject_change(suite, alg, kind):
    """自主变更: the enterprise's approved record changes its name; the
    holder's certificate is re-issued with the new subject on a new key, joins
    the lineage, logs in to the same account, and the old one is revoked with
    affiliation_changed once the new one is collected."""
    from kit import ca_login
    admin, leaf, token, account, cert_id = change_ready(suite, alg, kind)
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=admin.token)
    assert r.status == 404, r  # not the holder's
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token)
    assert r.status == 200, r
    change = r.json
    assert change["subject"] == {"c": "CN", "o": "沈阳新名建设有限公司", "ou": kind, "cn": "赵六",
                                 "organization_identifier": admin.uscc}
    assert change["previous_enterprise_name"] == "沈阳某某建设有限公司" and change["status"] == "open"
    assert Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token).json["application_id"] == \
        change["application_id"]
    app = change["application_id"]

    old_subject = dict(change["subject"], o="沈阳某某建设有限公司")
    _, r = change_issue(suite, token, app, alg, old_subject)
    assert r.status == 422 and r.code == "CSR_SUBJECT_MISMATCH", r
    name, r = change_issue(suite, token, app, alg, change["subject"])
    assert r.status == 201, r
    body = r.json
    assert body["cert_id"] == cert_id  # the lineage keeps them together
    new_leaf = verify_chain(suite, alg, body)
    assert subject_of(new_leaf) == (f"organizationIdentifier={admin.uscc},CN=赵六,OU={kind},"
                                    "O=沈阳新名建设有限公司,C=CN")
    assert suite.psql(f"SELECT c.serial, p.serial, p.revocation_reason FROM issuance.certificates c"
                      f" JOIN issuance.certificates p ON p.id = c.replaces"
                      f" WHERE c.cert_id = {q(cert_id)} AND c.replaced_by IS NULL") == \
        [[body["serial"], leaf.serial, "affiliation_changed"]]
    # interop: the new serial answers, the old one is revoked
    assert interop(suite, body["serial"], "LN_JSGC").json["reason"] in (None, "PLATFORM_NOT_ASSOCIATED")
    assert interop(suite, leaf.serial, "LN_JSGC").json["reason"] == "CERT_REVOKED"
    assert interop(suite, None, "LN_JSGC", cert_id=cert_id).json["serial"] == body["serial"]
    # the key logs in with the new certificate to the same account; the old one is refused
    ukey_dir(suite, "install", name, new_leaf)

    def login():
        api = Api(suite)
        ch = api.post("/api/v1/auth/ca/challenge", {}).json
        r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                                "certificate": ukey_dir(suite, "cert", name),
                                                "signature": ukey_dir(suite, "sign", name, ch["nonce"])})
        return r if r.status == 200 and r.json.get("status") == "ok" else None
    r = wait_until(login, timeout=15, what="the changed certificate logs in")
    assert r.json["account"]["id"] == account
    wait_until(lambda: ca_login(suite, leaf).status == 401, timeout=15, what="old certificate refused")
    assert ca_login(suite, leaf).code == "CERT_REVOKED"


def test_issuance_subject_change_rsa_member_lock(suite):
    subject_change(suite, "rsa", "agent")


def test_issuance_subject_change_sm2_master_lock(suite):
    subject_change(suite, "sm2", "master")


def test_issuance_subject_change_closed_when_the_certificate_is_revoked_first(suite):
    """An open change application ends with its certificate: revoked by an
    operator before the holder issued the change, the application is closed
    (cert_revoked), its issue is refused APPLICATION_CLOSED and a new change
    CERT_REVOKED; the registry keeps the revoked certificate as latest."""
    from kit import staff_token
    admin, leaf, token, account, cert_id = change_ready(suite, "rsa", "agent")
    change = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token).json
    app = change["application_id"]
    rv = Api(suite).post(f"/api/v1/certs/{cert_id}/revoke", {"reason": "key_compromise"},
                         token=staff_token(suite))
    assert rv.status == 200, rv
    assert suite.psql(f"SELECT status, closed_reason FROM issuance.applications WHERE id = {q(app)}") == \
        [["closed", "cert_revoked"]]
    r = challenge(suite, token, app)
    assert r.status == 409 and r.code == "APPLICATION_CLOSED" and "吊销" in r.json["error"]["message"], r
    r = Api(suite).post(f"/api/v1/certs/{cert_id}/change", {}, token=token)
    assert r.status == 409 and r.code == "CERT_REVOKED", r
    assert suite.psql(f"SELECT serial FROM issuance.certificates WHERE cert_id = {q(cert_id)}"
                      " AND replaced_by IS NULL") == [[leaf.serial]]
