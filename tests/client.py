"""client — a tiny HTTP/JSON client for the integration and e2e tests
(standard library only), plus helpers to read SMS codes and sign with the
USB-key simulator."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request


class Reply:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        """The API.md error code, or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return f"<Reply {self.status} {self.raw[:300]!r}>"


def call(base, method, path, body=None, token=None, headers=None, raw=None, timeout=10):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None and raw is None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), dict(e.headers))


class Api:
    """Calls through the gateway (or a service directly with base=...)."""

    def __init__(self, suite, base=None):
        self.suite = suite
        self.base = base or suite.gateway

    def get(self, path, **kw):
        return call(self.base, "GET", path, **kw)

    def post(self, path, body=None, **kw):
        return call(self.base, "POST", path, body=body if body is not None else {}, **kw)

    def put(self, path, body=None, **kw):
        return call(self.base, "PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return call(self.base, "DELETE", path, **kw)


def sms_code(suite, phone, purpose, timeout=5):
    """The last code the local SMS provider delivered to phone for purpose."""
    path = os.path.join(suite.sms_dir, f"{phone}.log")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            for line in reversed(open(path).read().splitlines()):
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if fields.get("purpose") == purpose:
                    return fields["code"]
        time.sleep(0.05)
    raise AssertionError(f"no SMS code for {phone} ({purpose})")


def ukey(suite, *args):
    out = subprocess.run([os.path.join(suite.build, "bin", "ukey"), *args],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def pki(suite, name, what="cert"):
    """Path of a test PKI file: pki(suite, 'sm2-master') → its certificate."""
    return os.path.join(suite.pki_dir, f"{name}.{what}.pem")


_phone_seq = [int(time.time() * 1000) % 10**7]


def new_phone():
    """A fresh valid mobile number per call (tests never share accounts)."""
    _phone_seq[0] += 1
    return f"139{_phone_seq[0] % 10**8:08d}"


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


_cert_seq = [0]


def issue_cert(suite, alg, kind, holder, enterprise=None, uscc=None, days=30):
    """A fresh USB-key certificate under the test PKI (tests/ukey/issue.sh);
    returns its name for pki(suite, name). 30 days: inside the renewal window."""
    _cert_seq[0] += 1
    name = f"t{os.getpid()}-{_cert_seq[0]}-{alg}-{kind}"
    args = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "ukey", "issue.sh"),
            suite.pki_dir, name, alg, kind, holder]
    if enterprise:
        args += [enterprise, uscc or ""]
    else:
        args += ["", ""]
    args.append(str(days))
    subprocess.run(["bash", *args], check=True)
    return name


USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_uscc_seq = [int(time.time()) % 10**6]


def new_uscc():
    """A fresh valid 统一社会信用代码 (GB 32100 check character)."""
    _uscc_seq[0] += 1
    body = f"91350100{_uscc_seq[0] % 10**9:09d}"
    total = sum(USCC_SYMBOLS.index(ch) * w for ch, w in zip(body, USCC_WEIGHTS))
    check = (31 - total % 31) % 31
    return body + USCC_SYMBOLS[check]


# ------------------------------------------------------------ identities by proof
#
# An enterprise identity is no longer self-service (issue 12): the
# administrator is proven by a master lock or an approved administrator
# application, a member claim waits for the administrator's approval. The
# fixtures below obtain identities the way a real user does, through the
# administrator application: the reviewer's approval is stood in for by the
# event enterprise emits (enterprise.admin_application.approved, written as
# an outbox row of the enterprise schema: its relay publishes it and auth
# consumes it), member claims are approved by the enterprise's administrator
# through 人员管理.

_admins = {}  # uscc → token of the administrator made by these fixtures


def register_account(suite):
    """A fresh phone-and-password account: (phone, token, account_id)."""
    api = Api(suite)
    phone = new_phone()
    r = api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
    assert r.status == 202, r
    code = sms_code(suite, phone, "register")
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": code, "password": "abc12345"})
    assert r.status == 201, r
    return phone, r.json["token"], r.json["account"]["id"]


def admin_application_approved(suite, account_id, uscc, name, application=None):
    """Publishes enterprise.admin_application.approved for account_id (as the
    enterprise service does when a reviewer approves the application; a
    given application id publishes it again as a new event); returns the
    application id."""
    import datetime
    import uuid
    application = application or str(uuid.uuid4())
    data = {"application_id": application, "account_id": account_id, "uscc": uscc,
            "enterprise_name": name,
            "decided_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    text = json.dumps(data, ensure_ascii=False).replace("'", "''")
    suite.psql(f"INSERT INTO enterprise.outbox (id, type, subject, data) VALUES"
               f" ('{uuid.uuid4()}', 'enterprise.admin_application.approved', '{application}',"
               f" '{text}'::jsonb)")
    return application


def switch_identity(suite, token, identity_id):
    r = Api(suite).post(f"/api/v1/auth/identities/{identity_id}/switch", token=token)
    assert r.status == 200, r
    return r


def grant_admin(suite, token, uscc, name="辽宁演示科技有限公司", switch=True):
    """Makes the account of token the administrator of uscc by an approved
    administrator application; returns the identity id (current if switch)."""
    api = Api(suite)
    me = api.get("/api/v1/auth/me", token=token)
    assert me.status == 200, me
    account_id = me.json["account"]["id"]
    admin_application_approved(suite, account_id, uscc, name)

    def granted():
        r = api.get("/api/v1/auth/identities", token=token)
        for i in r.json["identities"]:
            if i.get("uscc") == uscc and i.get("role") == "admin" and i["status"] == "active":
                return i["id"]
        return None
    identity = wait_until(granted, timeout=20, what=f"admin of {uscc} granted")
    if switch:
        switch_identity(suite, token, identity)
    _admins[uscc] = token
    return identity


def admin_token(suite, uscc, name="辽宁演示科技有限公司"):
    """The token of an administrator of uscc (made by these fixtures), a new
    one if none is known."""
    token = _admins.get(uscc)
    if token is not None:
        r = Api(suite).get("/api/v1/auth/me", token=token)
        cur = r.json.get("current_identity") if r.status == 200 else None
        if cur and cur.get("uscc") == uscc and cur.get("role") == "admin":
            return token
    _, token, _ = register_account(suite)
    grant_admin(suite, token, uscc, name)
    return token


def join_enterprise(suite, token, uscc, role="admin", name="辽宁演示科技有限公司", switch=True):
    """Gives the account of token an active identity of role in uscc by
    proof: an administrator by application, a member by a claim the
    administrator approves. Returns the identity id (current if switch)."""
    if role == "admin":
        return grant_admin(suite, token, uscc, name, switch)
    api = Api(suite)
    r = api.post("/api/v1/auth/identities", {"type": "enterprise", "enterprise_name": name,
                                              "uscc": uscc, "role": role}, token=token)
    assert r.status == 202 and r.json["status"] == "pending", r
    identity = r.json["id"]
    a = api.post(f"/api/v1/auth/member-applications/{identity}/approve", {},
                 token=admin_token(suite, uscc, name))
    assert a.status == 200 and a.json["status"] == "active", a
    if switch:
        switch_identity(suite, token, identity)
    return identity
