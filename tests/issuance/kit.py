"""kit — what the issuance tests share: USB-key certificates made on demand
under the test PKI's issuing CAs (any validity, any holder, a fresh USCC),
CA login and binding through auth, paid orders injected as the orders
service would publish them (an outbox row in issuance's own schema, which
its relay publishes and its consumer applies), renewal through the gateway,
and signed interop requests. Standard library and the openssl CLI only."""
import datetime
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import time
import urllib.parse
import uuid

from client import Api, call, new_phone, sms_code, ukey, wait_until

USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ISSUE_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ukey", "issue.sh")


def new_uscc():
    """A random valid 统一社会信用代码 (GB 32100-2015), so each test owns its
    enterprise (one administrator per enterprise)."""
    body = "91" + "110108" + "".join(random.choice(USCC_SYMBOLS) for _ in range(9))
    total = sum(USCC_SYMBOLS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    check = (31 - total % 31) % 31
    return body + USCC_SYMBOLS[check]


def utc(dt):
    return dt.strftime("%Y%m%d%H%M%SZ")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def keygen(alg, path):
    opts = {"rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "sm2": ["-algorithm", "SM2"]}[alg]
    run("openssl", "genpkey", *opts, "-out", path)
    os.chmod(path, 0o600)


def cert_field(pem_path, *opts):
    return run("openssl", "x509", "-in", pem_path, "-noout", *opts, "-nameopt", "RFC2253,-esc_msb")


def serial_of(pem_path):
    """The serial as caplat writes it: upper-case hex of whole bytes."""
    s = cert_field(pem_path, "-serial").strip().split("=", 1)[1]
    return s if len(s) % 2 == 0 else "0" + s


def not_after_of(pem_path):
    text = cert_field(pem_path, "-enddate").strip().split("=", 1)[1]
    return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc)


class Leaf:
    def __init__(self, cert, key, alg, kind, holder, enterprise, uscc):
        self.cert, self.key, self.alg = cert, key, alg
        self.kind, self.holder, self.enterprise, self.uscc = kind, holder, enterprise, uscc
        self.pem = open(cert).read()
        self.serial = serial_of(cert)
        self.issuer = cert_field(cert, "-issuer").strip().split("=", 1)[1]


def make_leaf(suite, alg, kind="agent", not_before=None, not_after=None, days=30, uscc=None,
              holder=None, enterprise=None):
    """A USB-key certificate of the API.md profile, issued by the test PKI's
    <alg>-ca (which auth trusts) with tests/ukey/issue.sh, valid from
    not_before (default a year ago) until not_after (default `days` from now)."""
    d = os.path.join(suite.base, "issuance-pki")
    name = f"{alg}-{kind}-{uuid.uuid4().hex[:8]}"
    holder = holder or "持锁人" + uuid.uuid4().hex[:4]
    if kind == "personal":
        enterprise, uscc = None, None
    else:
        uscc = uscc or new_uscc()
        enterprise = enterprise or f"测试企业{uuid.uuid4().hex[:6]}有限公司"
    now = now_utc()
    not_before = not_before or now - datetime.timedelta(days=365)
    not_after = not_after or now + datetime.timedelta(days=days)
    run("bash", ISSUE_SH, "--out", d, "--from", utc(not_before), "--until", utc(not_after),
        suite.pki_dir, name, alg, kind, holder, enterprise or "", uscc or "")
    return Leaf(os.path.join(d, name + ".cert.pem"), os.path.join(d, name + ".key.pem"),
                alg, kind, holder, enterprise, uscc)


# ---- auth: CA login and binding ------------------------------------------

def ca_login(suite, leaf, cert_pem=None, key=None):
    api = Api(suite)
    ch = api.post("/api/v1/auth/ca/challenge", {})
    assert ch.status == 200, ch
    sig = ukey(suite, "sign", key or leaf.key, ch.json["nonce"])
    return api.post("/api/v1/auth/ca/login", {"challenge_id": ch.json["challenge_id"],
                                               "certificate": cert_pem or leaf.pem,
                                               "signature": sig})


def ca_bind(suite, leaf, id_number="11010519491231002X"):
    """Logs in with the key and binds it to a new phone: (token, account id).
    auth then emits auth.lock.bound, which enters the certificate in the
    registry."""
    api = Api(suite)
    r = ca_login(suite, leaf)
    assert r.status == 200 and r.json["status"] == "binding_required", r
    phone = new_phone()
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "bind"}).status == 202
    body = {"bind_token": r.json["bind_token"], "phone": phone,
            "sms_code": sms_code(suite, phone, "bind")}
    if leaf.kind == "master":
        body["id_number"] = id_number
    r = api.post("/api/v1/auth/ca/bind", body)
    assert r.status == 200, r
    return r.json["token"], r.json["account"]["id"]


def register_account(suite):
    """An account without a key (SMS registration): (token, account id, phone)."""
    api = Api(suite)
    phone = new_phone()
    assert api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"}).status == 202
    r = api.post("/api/v1/auth/register", {"phone": phone, "password": "abc12345",
                                           "sms_code": sms_code(suite, phone, "register")})
    assert r.status == 201, r
    return r.json["token"], r.json["account"]["id"], phone


def staff_token(suite, user="operator"):
    r = Api(suite).post("/api/v1/auth/staff/login",
                        {"username": user, "password": suite.secrets[f"staff_{user}"]})
    assert r.status == 200, r
    return r.json["token"]


# ---- the registry -----------------------------------------------------------

def q(s):
    return "'" + str(s).replace("'", "''") + "'"


def wait_registered(suite, serial, timeout=15):
    """The registry's cert_id of the certificate with this serial."""
    rows = wait_until(lambda: suite.psql(
        f"SELECT cert_id FROM issuance.certificates WHERE serial = {q(serial)}"),
        timeout=timeout, what=f"certificate {serial} registered")
    return rows[0][0]


def inject(suite, type_, subject, data):
    """An event of another service, produced the way producers do: an outbox
    row (here in issuance's schema), published by the relay."""
    event_id = str(uuid.uuid4())
    suite.psql(f"INSERT INTO issuance.outbox (id, type, subject, data) VALUES ({q(event_id)},"
               f" {q(type_)}, {q(subject)}, {q(json.dumps(data))}::jsonb)")
    return event_id


def pay(suite, cert_id, platforms, account_id=None, wait=True):
    """orders.order.paid for one certificate: one renewal entitlement."""
    order_id = str(uuid.uuid4())
    inject(suite, "orders.order.paid", order_id, {
        "order_id": order_id, "number": "PL" + uuid.uuid4().hex[:12].upper(),
        "account_id": account_id or str(uuid.uuid4()), "payment_id": str(uuid.uuid4()),
        "total_fen": 30000, "paid_at": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"cert_id": cert_id, "platforms": platforms, "price_fen": 30000}]})
    if wait:
        wait_until(lambda: suite.psql(
            f"SELECT 1 FROM issuance.entitlements WHERE order_id = {q(order_id)}"),
            what="entitlement granted")
    return order_id


def certs(suite, token, **params):
    path = "/api/v1/certs" + ("?" + urllib.parse.urlencode(params) if params else "")
    r = Api(suite).get(path, token=token)
    assert r.status == 200, r
    return r.json


def cert_item(suite, token, cert_id):
    for item in certs(suite, token, limit=100)["items"]:
        if item["id"] == cert_id:
            return item
    return None


# ---- renewal on the key -----------------------------------------------------

def challenge(suite, token, cert_id):
    return Api(suite).post(f"/api/v1/certs/{cert_id}/renewal/challenge", {}, token=token)


def new_csr(suite, key, cert, alg):
    """A new key pair on the key and its CSR with the certificate's subject
    (ukey csr: signed by the new key, made by the holder of the old one)."""
    d = os.path.dirname(key)
    new_key = os.path.join(d, f"new-{uuid.uuid4().hex[:8]}.key.pem")
    keygen(alg, new_key)
    csr = subprocess.run([os.path.join(suite.build, "bin", "ukey"), "csr", key, new_key, cert],
                         check=True, capture_output=True, text=True).stdout
    return new_key, csr


def renew(suite, token, cert_id, key, csr, ch=None, sign_key=None):
    """Challenge (unless given), signature by the current key, renewal."""
    if ch is None:
        r = challenge(suite, token, cert_id)
        assert r.status == 200, r
        ch = r.json
    sig = ukey(suite, "sign", sign_key or key, ch["nonce"])
    return Api(suite).post(f"/api/v1/certs/{cert_id}/renewal",
                           {"challenge_id": ch["challenge_id"], "csr": csr, "signature": sig},
                           token=token, timeout=30)


def save_pem(suite, text):
    path = os.path.join(suite.base, "issuance-pki", f"got-{uuid.uuid4().hex[:8]}.pem")
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- auth trusts the local CA --------------------------------------------

def auth_trusts_local_ca(suite):
    """Makes sure auth trusts the local CA's roots, so renewed certificates
    log in: when auth's configured bundle lacks them (suite.py not wired to
    Suite.vendor_roots_bundle), auth is restarted once with that bundle."""
    local = open(suite.local_ca_roots()).read()
    current = suite.extra_env("auth").get("CAPLAT_VENDOR_ROOTS", "")
    marker = os.path.join(suite.base, "issuance-pki", ".auth-trusts-local-ca")
    if os.path.exists(marker) or (current and os.path.exists(current) and local in open(current).read()):
        return
    bundle = suite.vendor_roots_bundle()
    suite.kill("auth", signal.SIGTERM)
    suite.start_service("auth", {"CAPLAT_VENDOR_ROOTS": bundle})
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    open(marker, "w").close()


def restart_issuance(suite, env=None):
    """Restarts issuance (a graceful stop) with extra configuration (None:
    its own again)."""
    suite.kill("issuance", signal.SIGTERM)
    suite.start_service("issuance", env or {})


# ---- interop ------------------------------------------------------------------

def platform_secret(suite, code):
    env = suite.extra_env("issuance")["CAPLAT_INTEROP_SECRETS"]
    return dict(kv.split("=", 1) for kv in env.split(","))[code]


def interop(suite, serial, platform, header_platform=None, secret=None, ts=None, query=None,
            method="GET", tamper=False, nonce=None, issuer=None, cert_id=None):
    """A signed interop request: X-Signature = HMAC-SHA256 over method, path,
    query, timestamp and X-Nonce (a fresh nonce each call unless given;
    nonce="" sends none). By serial (issuer= added when given) or, with
    cert_id, by cert id."""
    path = (f"/api/v1/interop/cert-ids/{cert_id}/status" if cert_id
            else f"/api/v1/interop/certs/{serial}/status")
    if query is None:
        query = f"platform={platform}"
        if issuer is not None:
            query += "&issuer=" + urllib.parse.quote(issuer, safe="")
    ts = str(int(time.time())) if ts is None else ts
    nonce = uuid.uuid4().hex if nonce is None else nonce
    header_platform = header_platform or platform
    secret = secret or platform_secret(suite, header_platform)
    canonical = f"{method}\n{path}\n{query}\n{ts}\n{nonce}"
    sig = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    if tamper:
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    headers = {"X-Platform": header_platform, "X-Timestamp": ts, "X-Signature": sig}
    if nonce:
        headers["X-Nonce"] = nonce
    return call(suite.gateway, method, path + ("?" + query if query else ""), headers=headers)
