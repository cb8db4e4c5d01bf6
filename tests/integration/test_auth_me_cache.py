"""GET /api/v1/auth/me is answered from a cached copy per account (issue 16:
no PostgreSQL round trip when nothing changed), through nginx: after every
kind of change the answer shows (identity added, switched, approved,
removed; administrator granted by application; lock bound, lock cancelled)
the next /me shows the new state at once, in every open session."""
import json
import subprocess
import uuid

from client import Api, grant_admin, issue_cert, new_uscc, pki, register_account, wait_until
from test_auth_ca import bind, ca_login, suite_redis_del

NAME = "沈阳某某缓存测试有限公司"


def me(api, token):
    r = api.get("/api/v1/auth/me", token=token)
    assert r.status == 200, r
    return r.json


def cached(suite, account):
    out = subprocess.run(["redis-cli", "-p", str(suite.ports["redis"]), "GET", f"me:{account}"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip() != ""


def status_of(m, identity):
    return {i["id"]: i["status"] for i in m["identities"]}.get(identity)


def test_auth_me_cache_follows_every_change(suite):
    api = Api(suite)
    phone, token, account = register_account(suite)
    r = api.post("/api/v1/auth/login", {"phone": phone, "password": "abc12345"})
    assert r.status == 200, r
    second = r.json["token"]  # another open session of the same account

    first = me(api, token)
    assert first["identities"] == [] and first["lock"] is None
    assert cached(suite, account)
    assert me(api, second) == first  # served from the cache

    # identity added (self service), then switched to
    r = api.post("/api/v1/auth/identities", {"type": "personal"}, token=token)
    assert r.status == 201, r
    personal = r.json["id"]
    for t in (token, second):
        assert status_of(me(api, t), personal) == "active"
    r = api.post(f"/api/v1/auth/identities/{personal}/switch", token=token)
    assert r.status == 200, r
    assert me(api, second)["current_identity"]["id"] == personal

    # administrator by an approved application (the bus consumer's change)
    uscc = new_uscc()
    admin = grant_admin(suite, token, uscc, NAME)
    for t in (token, second):
        m = me(api, t)
        assert status_of(m, admin) == "active" and m["current_identity"]["id"] == admin

    # a member claim: pending, approved by the administrator, removed
    m_phone, m_token, _ = register_account(suite)
    me(api, m_token)  # cached before the claim
    r = api.post("/api/v1/auth/identities", {"type": "enterprise", "enterprise_name": NAME,
                                              "uscc": uscc, "role": "agent"}, token=m_token)
    assert r.status == 202, r
    claim = r.json["id"]
    assert status_of(me(api, m_token), claim) == "pending"
    r = api.post(f"/api/v1/auth/member-applications/{claim}/approve", {}, token=token)
    assert r.status == 200, r
    assert status_of(me(api, m_token), claim) == "active"
    r = api.post(f"/api/v1/auth/identities/{claim}/switch", token=m_token)
    assert r.status == 200, r
    assert me(api, m_token)["current_identity"]["id"] == claim
    r = api.delete(f"/api/v1/auth/members/{claim}", token=token)
    assert r.status == 204, r
    m = me(api, m_token)
    assert status_of(m, claim) == "removed" and m["current_identity"] is None

    # a lock bound to the account (personal key, the account's phone)
    cert = issue_cert(suite, "ec", "personal", "缓存测试")
    r, _ = ca_login(suite, cert)
    assert r.status == 200 and r.json["status"] == "binding_required", r
    serial = r.json["lock"]["serial"]
    me(api, second)  # cached before the bind
    suite_redis_del(suite, f"sms:last:{phone}")  # the register code was just sent
    r = bind(suite, r.json["bind_token"], phone)
    assert r.status == 200 and r.json["account"]["id"] == account, r
    lock = me(api, second)["lock"]
    assert lock is not None and lock["kind"] == "personal", lock

    # the lock cancelled (注销): issuance's event reaches auth through the bus
    issuer = subprocess.run(["openssl", "x509", "-in", pki(suite, cert), "-noout", "-issuer",
                             "-nameopt", "RFC2253,-esc_msb"],
                            capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    cert_id = str(uuid.uuid4())
    data = json.dumps({"cert_id": cert_id, "serial": serial, "issuer": issuer,
                       "lock_kind": "personal", "account_id": account, "cancelled_by": "holder",
                       "cancelled_at": "2026-11-01T00:00:00Z"}).replace("'", "''")
    me(api, second)  # cached with the lock
    suite.psql(f"INSERT INTO auth.outbox (id, type, subject, data) VALUES ('{uuid.uuid4()}',"
               f" 'issuance.cert.cancelled', '{cert_id}', '{data}'::jsonb)")
    wait_until(lambda: me(api, second)["lock"] is None, timeout=15, what="/me without the lock")
