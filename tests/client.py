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
