"""auth, USB-key (CA 锁) login and binding, through nginx with the USB-key
simulator (tests/tools/ukey.c) and the test PKI (tests/ukey/mkpki.sh):
RSA, ECDSA P-256 and SM2 keys; binding rules enforced by the database."""
import json
import subprocess
import uuid

from client import Api, issue_cert, new_phone, new_uscc, pki, sms_code, ukey, wait_until


def challenge(api):
    r = api.post("/api/v1/auth/ca/challenge", {})
    assert r.status == 200, r
    assert set(r.json) == {"challenge_id", "nonce", "expires_at"}
    assert str(uuid.UUID(r.json["challenge_id"])) == r.json["challenge_id"], r  # the contract's Uuid
    return r.json


def ca_login(suite, name, key_name=None, reuse=None):
    """Logs in with the certificate `name`, signing with `key_name`'s key."""
    api = Api(suite)
    ch = reuse or challenge(api)
    sig = ukey(suite, "sign", pki(suite, key_name or name, "key"), ch["nonce"])
    cert = open(pki(suite, name)).read()
    return api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                               "certificate": cert, "signature": sig}), ch


def bind(suite, bind_token, phone, id_number=None, code=None):
    api = Api(suite)
    if code is None:
        assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "bind"}).status == 202
        code = sms_code(suite, phone, "bind")
    body = {"bind_token": bind_token, "phone": phone, "sms_code": code}
    if id_number:
        body["id_number"] = id_number
    return api.post("/api/v1/auth/ca/bind", body)


def test_master_lock_sm2_binds_admin_then_logs_in(suite):
    api = Api(suite)
    r, _ = ca_login(suite, "sm2-master")
    assert r.status == 200 and r.json["status"] == "binding_required", r
    lock = r.json["lock"]
    assert lock["kind"] == "master" and lock["holder"] == "张三"
    assert lock["uscc"] == "91350100M000100Y43" and lock["enterprise_name"] == "福州某某建设工程有限公司"
    token = r.json["bind_token"]
    phone = new_phone()

    # The master lock needs the administrator's ID number, valid.
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "bind"}).status == 202
    code = sms_code(suite, phone, "bind")
    r = bind(suite, token, phone, code=code)
    assert r.status == 422 and r.code == "FIELD_REQUIRED" and r.json["error"]["field"] == "id_number", r
    r = bind(suite, token, phone, id_number="110105194912310029", code=code)
    assert r.status == 422 and r.code == "ID_NUMBER_INVALID", r
    r = bind(suite, token, phone, id_number="11010519491231002X", code="000000" if code != "000000" else "111111")
    assert r.status == 401 and r.code == "SMS_CODE_INVALID", r
    r = bind(suite, token, phone, id_number="11010519491231002x", code=code)
    assert r.status == 200, r
    account_id = r.json["account"]["id"]
    assert r.json["account"]["phone"] == phone

    me = api.get("/api/v1/auth/me", token=r.json["token"]).json
    assert me["lock"]["kind"] == "master"
    assert me["current_identity"]["role"] == "admin"
    assert me["current_identity"]["uscc"] == "91350100M000100Y43"
    # The ID number is kept masked and keyed-hashed, never in clear.
    rows = suite.psql(f"SELECT id_number_masked, length(id_number_hmac) FROM auth.accounts WHERE id = '{account_id}'")
    assert rows == [["110*************2X", "64"]]

    # The bind token is single use.
    r = bind(suite, token, phone, id_number="11010519491231002X", code=code)
    assert r.status == 401 and r.code == "BIND_TOKEN_INVALID", r

    # Next time the lock logs straight in.
    r, _ = ca_login(suite, "sm2-master")
    assert r.status == 200 and r.json["status"] == "ok", r
    assert r.json["account"]["id"] == account_id
    assert r.json["identity"]["role"] == "admin"
    assert api.get("/api/v1/auth/me", token=r.json["token"]).status == 200

    # Events: account registered, identity added, lock bound (with the cert).
    def events():
        rows = suite.psql("SELECT type, data::text FROM auth.outbox WHERE published_at IS NOT NULL"
                          f" AND data->>'account_id' = '{account_id}' ORDER BY seq")
        return rows if len(rows) >= 3 else None
    rows = wait_until(events, what="bind events published")
    assert [t for t, _ in rows] == ["auth.account.registered", "auth.identity.added", "auth.lock.bound"]
    bound = json.loads(rows[2][1])
    assert bound["lock_kind"] == "master" and bound["serial"] == lock["serial"]
    assert bound["phone"] == phone and bound["lock_id"] == lock["id"]
    assert "BEGIN CERTIFICATE" in bound["certificate_pem"]


def test_agent_lock_rsa_binds_without_id_number(suite):
    r, _ = ca_login(suite, "rsa-agent")
    assert r.status == 200 and r.json["status"] == "binding_required", r
    phone = new_phone()
    r = bind(suite, r.json["bind_token"], phone)
    assert r.status == 200, r
    me = Api(suite).get("/api/v1/auth/me", token=r.json["token"]).json
    assert me["current_identity"]["role"] == "agent"
    assert me["current_identity"]["uscc"] == "91440300708461136T"


def test_personal_lock_ec_binds_personal_identity(suite):
    r, _ = ca_login(suite, "ec-personal")
    assert r.status == 200 and r.json["status"] == "binding_required", r
    assert r.json["lock"]["kind"] == "personal" and "uscc" not in r.json["lock"]
    r = bind(suite, r.json["bind_token"], new_phone())
    assert r.status == 200, r
    me = Api(suite).get("/api/v1/auth/me", token=r.json["token"]).json
    assert me["current_identity"]["type"] == "personal"


def test_one_lock_one_account(suite):
    # Two logins of the same unbound lock give two bind tokens: the first
    # bind wins, the second is refused by the database.
    r1, _ = ca_login(suite, "rsa-project_lead")
    r2, _ = ca_login(suite, "rsa-project_lead")
    assert r1.json["status"] == r2.json["status"] == "binding_required"
    phone = new_phone()
    assert bind(suite, r1.json["bind_token"], phone).status == 200
    r = bind(suite, r2.json["bind_token"], new_phone())
    assert r.status == 409 and r.code == "LOCK_ALREADY_BOUND", r
    # An account with a lock cannot take another one.
    r3, _ = ca_login(suite, "ec-project_lead")
    suite_redis_del(suite, f"sms:last:{phone}")
    r = bind(suite, r3.json["bind_token"], phone)
    assert r.status == 409 and r.code == "ACCOUNT_HAS_LOCK", r
    rows = suite.psql(f"SELECT count(*) FROM auth.locks l JOIN auth.accounts a ON a.id = l.account_id"
                      f" WHERE a.phone = '{phone}'")
    assert rows == [["1"]]


def suite_redis_del(suite, key):
    subprocess.run(["redis-cli", "-p", str(suite.ports["redis"]), "DEL", key],
                   check=True, stdout=subprocess.DEVNULL)


def test_challenge_single_use_and_unknown(suite):
    r, ch = ca_login(suite, "sm2-project_lead")
    assert r.status == 200, r
    r, _ = ca_login(suite, "sm2-project_lead", reuse=ch)
    assert r.status == 401 and r.code == "CHALLENGE_INVALID", r
    r, _ = ca_login(suite, "sm2-project_lead", reuse={"challenge_id": "nope", "nonce": ch["nonce"]})
    assert r.status == 401 and r.code == "CHALLENGE_INVALID"


def test_bad_signature_writes_nothing(suite):
    # sm2-agent's certificate, signed with another SM2 key.
    r, _ = ca_login(suite, "sm2-agent", key_name="sm2-personal")
    assert r.status == 401 and r.code == "BAD_SIGNATURE", r
    serial = subprocess.run(["openssl", "x509", "-in", pki(suite, "sm2-agent"), "-noout", "-serial"],
                            capture_output=True, text=True).stdout.strip().split("=")[1].lstrip("0")
    assert suite.psql(f"SELECT count(*) FROM auth.lock_certs WHERE serial = '{serial}'") == [["0"]]
    # Garbage signature too.
    api = Api(suite)
    ch = challenge(api)
    r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                           "certificate": open(pki(suite, "sm2-agent")).read(),
                                           "signature": "bm90IGEgc2lnbmF0dXJl"})
    assert r.status == 401 and r.code == "BAD_SIGNATURE"


def test_expired_untrusted_and_garbage_certificates(suite):
    for name, code in [("rsa-expired", "CERT_EXPIRED"), ("sm2-expired", "CERT_EXPIRED"),
                       ("ec-rogue", "CERT_UNTRUSTED"), ("sm2-rogue", "CERT_UNTRUSTED")]:
        r, _ = ca_login(suite, name)
        assert r.status == 401 and r.code == code, (name, r)
    api = Api(suite)
    ch = challenge(api)
    r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                           "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                           "signature": "AAAA"})
    assert r.status == 401 and r.code == "CERT_UNTRUSTED"
    r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"]})
    assert r.status == 422 and r.code == "FIELD_REQUIRED" and r.json["error"]["field"] == "certificate"


def test_revoked_certificate_refused_after_registry_event(suite):
    """The registry's revocation reaches auth through the bus (outbox →
    JetStream → consumer with inbox) and the next login is refused."""
    r, _ = ca_login(suite, "ec-agent")
    assert r.status == 200 and r.json["status"] == "binding_required", r
    serial = r.json["lock"]["serial"]
    issuer = subprocess.run(["openssl", "x509", "-in", pki(suite, "ec-agent"), "-noout", "-issuer",
                             "-nameopt", "RFC2253,-esc_msb"],
                            capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    event_id = str(uuid.uuid4())
    data = json.dumps({"cert_id": str(uuid.uuid4()), "issuer": issuer, "serial": serial,
                       "reason": "key_compromise",
                       "revoked_at": "2026-11-01T00:00:00Z"}).replace("'", "''")
    # An issuance event, produced the way issuance produces: an outbox row.
    suite.psql(f"INSERT INTO auth.outbox (id, type, subject, data) VALUES ('{event_id}',"
               f" 'issuance.cert.revoked', '{serial}', '{data}'::jsonb)")
    wait_until(lambda: suite.psql(f"SELECT 1 FROM auth.revoked_certs WHERE serial = '{serial}'"),
               what="revocation applied")
    assert suite.psql(f"SELECT count(*) FROM auth.inbox WHERE event_id = '{event_id}'") == [["1"]]
    r, _ = ca_login(suite, "ec-agent")
    assert r.status == 401 and r.code == "CERT_REVOKED", r


def test_virtual_key_folder_with_pin(suite):
    """tests/ukey as the holder uses it: a key folder whose private key is
    encrypted under the PIN (111111 at first); the wrong PIN signs nothing."""
    import os
    import tempfile
    name = issue_cert(suite, "sm2", "agent", "钱七", "沈阳某某招标代理有限公司", new_uscc())
    d = tempfile.mkdtemp()
    ukey(suite, "-d", d, "import", "lock", pki(suite, name, "key"), pki(suite, name))
    assert "ENCRYPTED PRIVATE KEY" in open(os.path.join(d, "lock", "key.pem")).read()
    api = Api(suite)
    ch = challenge(api)
    bad = subprocess.run([os.path.join(suite.build, "bin", "ukey"), "-d", d, "sign", "lock", ch["nonce"]],
                         env=dict(os.environ, UKEY_PIN="000000"), capture_output=True, text=True)
    assert bad.returncode == 3 and "wrong PIN" in bad.stderr
    sig = ukey(suite, "-d", d, "sign", "lock", ch["nonce"])
    r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                           "certificate": ukey(suite, "-d", d, "cert", "lock"),
                                           "signature": sig})
    assert r.status == 200 and r.json["status"] == "binding_required", r


def test_openssl_cli_key_logs_in(suite):
    """A key and certificate made with the openssl CLI, and a signature made
    with `openssl dgst`, log in (RSA, ECDSA P-256 and SM2 with its ID)."""
    api = Api(suite)
    for alg in ("rsa", "ec", "sm2"):
        name = issue_cert(suite, alg, "personal", "孙八")
        ch = challenge(api)
        nonce = __import__("base64").b64decode(ch["nonce"])
        args = ["openssl", "dgst", "-sha256", "-sign", pki(suite, name, "key")]
        if alg == "sm2":
            args = ["openssl", "dgst", "-sm3", "-sign", pki(suite, name, "key"),
                    "-sigopt", "distid:1234567812345678"]
        sig = subprocess.run(args, input=nonce, capture_output=True, check=True).stdout
        r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                               "certificate": open(pki(suite, name)).read(),
                                               "signature": __import__("base64").b64encode(sig).decode()})
        assert r.status == 200 and r.json["status"] == "binding_required", (alg, r)


def test_renewed_certificate_tried_before_the_event_stays_on_its_lock(suite):
    """A holder who tries the renewed certificate before issuance's event
    reaches auth gets a fresh unbound lock for it; when the event arrives,
    that stray lock is folded into the lineage and the key logs straight in."""
    old = issue_cert(suite, "rsa", "personal", "周九")
    r, _ = ca_login(suite, old)
    phone = new_phone()
    assert bind(suite, r.json["bind_token"], phone).status == 200
    new = issue_cert(suite, "rsa", "personal", "周九")
    r, _ = ca_login(suite, new)
    assert r.json["status"] == "binding_required"  # not known yet
    serial = lambda n: subprocess.run(["openssl", "x509", "-in", pki(suite, n), "-noout", "-serial"],  # noqa: E731
                                      capture_output=True, text=True).stdout.strip().split("=")[1]
    issuer = subprocess.run(["openssl", "x509", "-in", pki(suite, old), "-noout", "-issuer", "-nameopt",
                             "RFC2253,-esc_msb"], capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    data = json.dumps({"cert_id": str(uuid.uuid4()), "serial": serial(new), "issuer": issuer,
                       "previous_serial": serial(old), "previous_issuer": issuer, "lock_kind": "personal",
                       "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-12-31T00:00:00Z",
                       "platforms": ["LN_JSGC"], "order_id": str(uuid.uuid4())})
    suite.psql(f"INSERT INTO auth.outbox (id, type, subject, data) VALUES ('{uuid.uuid4()}',"
               f" 'issuance.cert.renewed', '{serial(new)}', '{data}'::jsonb)")
    r = wait_until(lambda: (lambda r: r if r.json["status"] == "ok" else None)(ca_login(suite, new)[0]),
                   what="renewed certificate on the holder's lock")
    assert r.json["account"]["phone"] == phone
