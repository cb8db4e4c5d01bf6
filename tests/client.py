"""client — a tiny HTTP/JSON client for the integration and e2e tests, plus
helpers to read SMS codes and sign with the USB-key simulator.

Every answer `call` (and so `Api`) receives from caplat is checked against
proto/openapi.yaml: the operation is looked up by method and path template,
the status must be one the operation documents, the Content-Type one of its
media types, and a JSON body must be valid against the schema of that status
(python3-jsonschema, 2020-12, $refs resolved in the spec) with no field the
spec's schemas do not name. A mismatch raises ContractError naming the
operation, the status and the JSON pointer. A path under /api/ or /notify/
that the spec does not have must be answered with the router's 404/405 error
envelope.

CAPLAT_CONTRACT_LOG=<file> records each answer that mismatches there (one
JSON line: the problems, the request line and the whole answer) instead of
raising: a way to list every drift of a run at once and to check them again
after changing the spec (tests/contract/recheck.py)."""
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
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
        """The error envelope's code, or None."""
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
            reply = Reply(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        reply = Reply(e.code, e.read(), dict(e.headers))
    check_contract(method, path, reply)
    return reply


# ---------------------------------------------------------- the contract

SPEC_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "proto", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class ContractError(AssertionError):
    """An answer that proto/openapi.yaml does not allow."""


class Contract:
    """proto/openapi.yaml as a lookup: (method, concrete path) → operation,
    (operation, status, media type) → a JSON Schema validator."""

    def __init__(self, path=SPEC_PATH):
        import yaml
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for template, item in self.doc["paths"].items():
            parts = template.strip("/").split("/")
            rx = "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            literal = sum(1 for p in parts if not p.startswith("{"))
            self.routes.append((re.compile("^/" + rx + "$"), literal, template, item))
        # The most literal template wins: /orders/quote before /orders/{id}.
        self.routes.sort(key=lambda r: -r[1])
        self.validators = {}
        self.lock = threading.Lock()

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref):
        assert ref.startswith("#/"), f"only local $refs are used: {ref}"
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def find(self, method, path):
        """(template, operation) for a concrete path, or (template, None)
        when the path exists without this method, or (None, None)."""
        for rx, _, template, item in self.routes:
            if rx.match(path):
                op = item.get(method.lower())
                if op is not None:
                    return template, op
                return template, None
        return None, None

    def strict_components(self):
        """The components with `unevaluatedProperties: false` on every object
        schema that lists its properties (but those extended through allOf, the
        Error and list envelopes), so that a field the spec does not name fails:
        every field the services answer is in the contract."""
        import copy
        if getattr(self, "_strict", None) is not None:
            return self._strict
        comps = copy.deepcopy(self.doc["components"])
        bases = set()
        for _, node in _walk(self.doc):
            if isinstance(node, dict) and isinstance(node.get("allOf"), list):
                bases.update(m["$ref"] for m in node["allOf"] if isinstance(m, dict) and "$ref" in m)

        def tighten(node):
            if isinstance(node, dict):
                if ("properties" in node and "additionalProperties" not in node
                        and "unevaluatedProperties" not in node):
                    node["unevaluatedProperties"] = False
                for k, v in node.items():
                    if k != "allOf":
                        tighten(v)
            elif isinstance(node, list):
                for v in node:
                    tighten(v)
        for name, schema in comps["schemas"].items():
            if "#/components/schemas/" + name not in bases:
                tighten(schema)
        self._strict = comps
        return comps

    def validator(self, key, schema):
        from jsonschema import Draft202012Validator
        with self.lock:
            v = self.validators.get(key)
            if v is None:
                root = dict(schema)
                root["components"] = self.strict_components()
                v = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
                self.validators[key] = v
        return v

    def problems(self, method, path, reply):
        """What is wrong with reply, as a list of strings (empty: it agrees)."""
        path = urllib.parse.urlsplit(path).path
        template, op = self.find(method, path)
        if op is None:
            if template is None and not path.startswith(("/api/", "/notify/")):
                return []  # not caplat's API (a simulator, a fixture server)
            if reply.status in (404, 405) and reply.code in ("NOT_FOUND", "METHOD_NOT_ALLOWED"):
                return []
            return [f"{method} {path}: no such operation in the spec, answered {reply.status}"]
        name = f"{method} {template} ({op.get('operationId')})"
        responses = op.get("responses", {})
        resp = responses.get(str(reply.status))
        if resp is None:
            return [f"{name}: status {reply.status} is not documented "
                    f"(documented: {', '.join(sorted(responses))}); body {reply.raw[:200]!r}"]
        resp = self.deref(resp)
        content = resp.get("content") or {}
        if not content:
            if reply.raw:
                return [f"{name} {reply.status}: the spec documents no body, got {reply.raw[:200]!r}"]
            return []
        ctype = (reply.headers.get("Content-Type") or reply.headers.get("content-type") or "")
        media = ctype.split(";")[0].strip().lower()
        if media not in content and ctype not in content:
            return [f"{name} {reply.status}: Content-Type {ctype!r} is not one of {sorted(content)}"]
        entry = content.get(ctype) or content[media]
        if media != "application/json" or "schema" not in entry:
            return []
        if reply.json is None and reply.raw.strip() != b"null":
            return [f"{name} {reply.status}: the body is not JSON: {reply.raw[:200]!r}"]
        v = self.validator((template, method, reply.status, media), entry["schema"])
        out = []
        from jsonschema.exceptions import best_match
        for e in sorted(v.iter_errors(reply.json), key=lambda e: list(e.absolute_path))[:5]:
            if e.context:  # oneOf / anyOf: the branch that came closest
                e = best_match(e.context)
            ptr = "".join("/" + str(p).replace("~", "~0").replace("/", "~1")
                          for p in e.absolute_path)
            out.append(f"{name} {reply.status} at {ptr or '/'}: {e.message[:300]}")
        return out


def _walk(node):
    yield None, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


_contract = []


def contract():
    if not _contract:
        _contract.append(Contract())
    return _contract[0]


def check_contract(method, path, reply):
    """Raises ContractError unless proto/openapi.yaml allows this answer."""
    problems = contract().problems(method.upper(), path, reply)
    if not problems:
        return
    log = os.environ.get("CAPLAT_CONTRACT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"problems": problems, "method": method.upper(), "path": path,
                                "status": reply.status, "headers": reply.headers,
                                "body": reply.raw.decode("utf-8", "replace")},
                               ensure_ascii=False) + "\n")
        return
    raise ContractError("answer outside proto/openapi.yaml: " + "; ".join(problems))


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
