"""issuance, 注销 (issue 19): the enterprise's administrator cancels a
member's certificate (the member left) and a person cancels their own, with
RSA and SM2 keys issued by the local CA (a renewal on the key). Each
cancellation revokes with reason cessation_of_operation: the CRL lists it
(parsed by `openssl crl`), the interop API answers CERT_REVOKED, CA login
refuses it; auth unbinds the key and removes the member's identity; the
audit chain has the entry. Refusals: another enterprise's administrator,
another member, staff, twice."""
import json
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (auth_trusts_local_ca, ca_bind, ca_login, interop, make_leaf, new_csr, pay, q,  # noqa: E402
                 renew, save_pem, staff_token, wait_registered)
from client import Api, admin_token, call, new_uscc, wait_until  # noqa: E402


def local_cert(suite, alg, kind, uscc=None):
    """A key bound to a fresh account whose latest certificate the local CA
    issued (a paid renewal): (token, account, cert_id, serial, pem path, key)."""
    auth_trusts_local_ca(suite)
    leaf = make_leaf(suite, alg, kind, days=30, uscc=uscc)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    pay(suite, cert_id, ["LN_JSGC"], account)
    new_key, csr = new_csr(suite, leaf.key, leaf.cert, alg)
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r
    return token, account, cert_id, r.json["serial"], save_pem(suite, r.json["certificate"]), new_key, leaf


def crl_text(suite, alg):
    r = call(suite.gateway, "GET", f"/api/v1/certs/crl/{alg}.crl")
    assert r.status == 200, r
    path = os.path.join(suite.base, "issuance-pki", f"crl-{uuid.uuid4().hex[:8]}.der")
    with open(path, "wb") as f:
        f.write(r.raw)
    return subprocess.run(["openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout


def crl_lists(text, serial):
    """The CRL entry of serial with its reason line, or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"Serial Number: {serial}":
            return "\n".join(lines[i:i + 6])
    return None


def cancelled(suite, cert_id, token):
    return Api(suite).post(f"/api/v1/certs/{cert_id}/cancel", {}, token=token)


def test_issuance_admin_cancels_member_certificate_rsa(suite):
    uscc = new_uscc()
    token, account, cert_id, serial, pem, key, leaf = local_cert(suite, "rsa", "agent", uscc)
    identity = suite.psql(f"SELECT id FROM auth.identities WHERE account_id = {q(account)}"
                          f" AND uscc = {q(uscc)} AND status = 'active'")[0][0]
    admin = admin_token(suite, uscc, leaf.enterprise)
    other_admin = admin_token(suite, new_uscc())

    # refusals, which change nothing: another enterprise, staff, not a cert
    r = cancelled(suite, cert_id, other_admin)
    assert r.status == 404 and r.code == "NOT_FOUND", r
    r = cancelled(suite, cert_id, staff_token(suite))
    assert r.status == 403 and r.code == "FORBIDDEN", r
    r = cancelled(suite, str(uuid.uuid4()), admin)
    assert r.status == 404, r
    assert cancelled(suite, "nope", admin).status == 404
    assert Api(suite).post(f"/api/v1/certs/{cert_id}/cancel", {}).status == 401
    assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE cert_id = {q(cert_id)}"
                      " AND revoked_at IS NOT NULL") == [["0"]]
    assert interop(suite, serial, "LN_JSGC").json["valid"] is True

    r = cancelled(suite, cert_id, admin)
    assert r.status == 200, r
    assert r.json["cert_id"] == cert_id and r.json["serial"] == serial
    assert r.json["status"] == "revoked" and r.json["reason"] == "cessation_of_operation"
    assert r.json["cancelled_by"] == "administrator"
    again = cancelled(suite, cert_id, admin)
    assert again.status == 409 and again.code == "CERT_REVOKED", again

    # the interop API, the CRL (openssl parses it) and the event
    r = interop(suite, serial, "LN_JSGC")
    assert r.json["valid"] is False and r.json["reason"] == "CERT_REVOKED", r
    entry = crl_lists(crl_text(suite, "rsa"), serial)
    assert entry is not None and "Cessation Of Operation" in entry, entry
    ev = json.loads(wait_until(lambda: suite.psql(
        "SELECT data::text FROM issuance.outbox WHERE type = 'issuance.cert.cancelled'"
        f" AND data->>'cert_id' = {q(cert_id)}"), what="cancelled event")[0][0])
    assert ev["cancelled_by"] == "administrator" and ev["account_id"] == account
    assert ev["uscc"] == uscc and ev["lock_kind"] == "agent"

    # auth: the key unbound, the member's rights ended, the sessions lose them
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM auth.identities WHERE id = {q(identity)} AND status = 'removed'"
        " AND removed_reason = 'cert_cancelled'"), timeout=15, what="identity removed")
    assert suite.psql(f"SELECT count(*) FROM auth.locks WHERE account_id = {q(account)}") == [["0"]]
    me = Api(suite).get("/api/v1/auth/me", token=token)
    assert me.status == 200 and not me.json.get("current_identity"), me
    # CA login with the cancelled certificate is refused
    r = ca_login(suite, leaf, cert_pem=open(pem).read(), key=key)
    assert r.status == 401 and r.code == "CERT_REVOKED", r
    # audited in the one chain: the cancellation and the unbinding
    # (the two services' entries reach the chain in separate batches)
    def audited():
        rows = suite.psql(
            "SELECT action FROM auth.audit_log WHERE"
            f" (object_id = {q(cert_id)} AND action = 'cert.cancelled') OR"
            f" (action = 'lock.unbound' AND before->>'account_id' = {q(account)}) ORDER BY action")
        return rows if len(rows) >= 2 else None
    rows = wait_until(audited, timeout=15, what="both audit entries")
    assert [r[0] for r in rows] == ["cert.cancelled", "lock.unbound"], rows


def test_issuance_holder_cancels_own_sm2_certificate(suite):
    token, account, cert_id, serial, pem, key, leaf = local_cert(suite, "sm2", "personal")
    other_token, _, other_id, _, _, _, _ = local_cert(suite, "sm2", "personal")
    # another person's certificate: 404, nothing changes
    r = cancelled(suite, other_id, token)
    assert r.status == 404, r

    r = cancelled(suite, cert_id, token)
    assert r.status == 200 and r.json["cancelled_by"] == "holder", r
    assert interop(suite, serial, "LN_JSGC").json["reason"] == "CERT_REVOKED"
    entry = crl_lists(crl_text(suite, "sm2"), serial)
    assert entry is not None and "Cessation Of Operation" in entry, entry
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM auth.locks WHERE cancelled_at IS NOT NULL AND account_id IS NULL AND id ="
        f" (SELECT lock_id FROM auth.lock_certs WHERE serial = {q(serial)})"), timeout=15,
        what="lock unbound")
    # the person keeps their account and personal identity
    assert suite.psql(f"SELECT status FROM auth.identities WHERE account_id = {q(account)}"
                      " AND type = 'personal'") == [["active"]]
    assert interop(suite, None, "LN_JSGC", cert_id=other_id).json["valid"] is True
