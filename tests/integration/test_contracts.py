"""test_contracts — the contract and deployment files agree with API.md and with
each other: proto/openapi.yaml, proto/events/*.json, docker-compose.yml, the
gateway config of deploy/docker/ and the manifests of deploy/k8s/.

Every test_*(suite) ignores the running suite: these are file-level checks, plus
one black-box run of the compose gateway's nginx.conf in front of stub upstreams.
"""
import concurrent.futures
import copy
import datetime
import glob
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENAPI = os.path.join(ROOT, "proto", "openapi.yaml")
EVENTS_DIR = os.path.join(ROOT, "proto", "events")
K8S_DIR = os.path.join(ROOT, "deploy", "k8s")
SERVICES = ["auth", "enterprise", "orders", "payments", "issuance"]

# Every call of API.md: (method, path, owning service).
API_MD = [
    ("POST", "/api/v1/auth/ca/challenge", "auth"),
    ("POST", "/api/v1/auth/ca/login", "auth"),
    ("POST", "/api/v1/auth/sms", "auth"),
    ("POST", "/api/v1/auth/ca/bind", "auth"),
    ("POST", "/api/v1/auth/register", "auth"),
    ("POST", "/api/v1/auth/login", "auth"),
    ("POST", "/api/v1/auth/logout", "auth"),
    ("GET", "/api/v1/auth/me", "auth"),
    ("POST", "/api/v1/auth/identities", "auth"),
    ("POST", "/api/v1/auth/identities/{id}/switch", "auth"),
    ("POST", "/api/v1/auth/staff/login", "auth"),
    ("GET", "/api/v1/audit", "auth"),
    ("GET", "/api/v1/audit/export", "auth"),
    ("POST", "/api/v1/files", "enterprise"),
    ("GET", "/api/v1/files/{id}", "enterprise"),
    ("GET", "/api/v1/profile", "enterprise"),
    ("PUT", "/api/v1/profile", "enterprise"),
    ("GET", "/api/v1/enterprise", "enterprise"),
    ("PUT", "/api/v1/enterprise", "enterprise"),
    ("POST", "/api/v1/enterprise/submit", "enterprise"),
    ("GET", "/api/v1/review/queue", "enterprise"),
    ("POST", "/api/v1/review/records/{id}/approve", "enterprise"),
    ("POST", "/api/v1/review/records/{id}/reject", "enterprise"),
    ("GET", "/api/v1/certs", "issuance"),
    ("POST", "/api/v1/certs/{id}/renewal/challenge", "issuance"),
    ("POST", "/api/v1/certs/{id}/renewal", "issuance"),
    ("GET", "/api/v1/interop/certs/{serial}/status", "issuance"),
    ("GET", "/api/v1/platforms", "orders"),
    ("POST", "/api/v1/orders/quote", "orders"),
    ("POST", "/api/v1/orders", "orders"),
    ("GET", "/api/v1/orders", "orders"),
    ("GET", "/api/v1/orders/{id}", "orders"),
    ("POST", "/api/v1/orders/{id}/cancel", "orders"),
    ("POST", "/api/v1/payments", "payments"),
    ("GET", "/api/v1/payments/{id}", "payments"),
    ("POST", "/notify/alipay", "payments"),
    ("POST", "/notify/wechat", "payments"),
    ("GET", "/api/v1/invoices", "payments"),
    ("GET", "/api/v1/invoices/{id}", "payments"),
    ("POST", "/api/v1/finance/refunds", "payments"),
    ("POST", "/api/v1/finance/bills/{channel}/{date}", "payments"),
    ("GET", "/api/v1/finance/reconciliations/{id}", "payments"),
]
IDEMPOTENT_CREATES = [("POST", "/api/v1/orders"), ("POST", "/api/v1/payments"),
                      ("POST", "/api/v1/finance/refunds")]
LISTS = ["/api/v1/review/queue", "/api/v1/certs", "/api/v1/platforms", "/api/v1/orders",
         "/api/v1/invoices"]
OPS = ["/healthz", "/readyz", "/metrics"]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

EVENT_TYPES = [
    "auth.account.registered", "auth.lock.bound", "auth.identity.added",
    "enterprise.profile.completed", "enterprise.record.submitted",
    "enterprise.record.approved", "enterprise.record.rejected",
    "issuance.cert.registered", "issuance.cert.renewed", "issuance.cert.revoked",
    "orders.order.created", "orders.order.paid", "orders.order.cancelled",
    "orders.order.fulfilled", "payments.payment.succeeded", "payments.payment.refunded",
    "payments.invoice.issued",
]


# ---------------------------------------------------------------- helpers

def load_openapi():
    with open(OPENAPI, encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def resolve_pointer(doc, ref):
    assert ref.startswith("#/"), f"only local $refs are used: {ref}"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref does not resolve: {ref}"
        node = node[part]
    return node


def walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def schema_validator(doc, ref):
    """A 2020-12 validator for the OpenAPI schema at ref, with the document's
    paths and components in the root so that every local $ref resolves."""
    root = {"$ref": ref, "components": doc["components"], "paths": doc["paths"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def assert_valid(validator, instance, what):
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5])


def assert_invalid(validator, instance, what):
    assert list(validator.iter_errors(instance)), f"{what} should not validate"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def k8s_docs():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((os.path.basename(path), d))
    return docs


# ------------------------------------------------------------ compose

def test_compose_config_is_valid(suite):
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (deploy/scripts/install-deps.sh installs it)"
    r = subprocess.run([exe, "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"docker-compose config -q: {r.returncode} {r.stderr}"


def test_compose_has_every_part_with_readyz_healthchecks(suite):
    with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    svcs = compose["services"]
    for name in ["postgres", "redis", "nats", "gateway"] + SERVICES:
        assert name in svcs, f"compose lacks {name}"
    assert svcs["postgres"]["image"].startswith("postgres:15")
    assert svcs["redis"]["image"].startswith("redis:7")
    assert svcs["nats"]["image"].startswith("nats:2.9")
    assert "--jetstream" in svcs["nats"]["command"] or "-js" in svcs["nats"]["command"]
    assert any(v.endswith(":/data") for v in svcs["nats"]["volumes"])
    assert any("deploy/docker/initdb.sql" in v for v in svcs["postgres"]["volumes"])
    assert any("deploy/docker/nginx.conf" in v for v in svcs["gateway"]["volumes"])
    for svc in SERVICES:
        s = svcs[svc]
        assert s["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        env = s["environment"]
        assert env["SERVICE"] == svc and s["build"]["args"]["SERVICE"] == svc
        for var in ["CAPLAT_HTTP_PORT", "CAPLAT_DB_URL", "CAPLAT_DB_SCHEMA", "CAPLAT_REDIS_URL",
                    "CAPLAT_NATS_URL", "CAPLAT_MIGRATIONS_DIR", "CAPLAT_LOG_LEVEL"]:
            assert var in env, f"{svc} lacks {var}"
        assert env["CAPLAT_DB_SCHEMA"] == svc
        assert env["CAPLAT_MIGRATIONS_DIR"] == f"/app/deploy/sql/{svc}"
        assert re.match(rf"^postgresql://{svc}:[^@]+@postgres:5432/caplat(\?|$)",
                        env["CAPLAT_DB_URL"]), env["CAPLAT_DB_URL"]
        assert "/readyz" in " ".join(s["healthcheck"]["test"])


def test_initdb_sql_creates_one_role_and_schema_per_service(suite):
    with open(os.path.join(ROOT, "deploy", "docker", "initdb.sql"), encoding="utf-8") as f:
        sql = f.read()
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in sql
    for svc in SERVICES:
        assert re.search(rf"CREATE ROLE {svc} LOGIN PASSWORD :'pw_{svc}'", sql), svc
        assert f"CREATE SCHEMA {svc} AUTHORIZATION {svc};" in sql, svc
        assert f"SET search_path = {svc};" in sql, svc


# ------------------------------------------------------------ OpenAPI

def test_openapi_is_3_1(suite):
    doc = load_openapi()
    assert str(doc["openapi"]).startswith("3.1."), doc["openapi"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]


def test_openapi_has_every_api_md_call(suite):
    doc = load_openapi()
    for method, path, svc in API_MD:
        assert path in doc["paths"], f"missing path {path}"
        op = doc["paths"][path].get(method.lower())
        assert op is not None, f"missing {method} {path}"
        assert op.get("x-caplat-service") == svc, f"{method} {path}: service {op.get('x-caplat-service')}"
    for path in OPS:
        op = doc["paths"][path]["get"]
        assert op["x-caplat-status"] == "implemented", path
        assert op.get("security") == [], f"{path} needs no token"
        assert doc["paths"][path]["servers"][0]["url"].startswith("http://{service}")


def test_openapi_operations_are_complete(suite):
    doc = load_openapi()
    ids = set()
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("responses"), f"{where} has no responses"
        for code in op["responses"]:
            assert re.fullmatch(r"[1-5][0-9][0-9]", str(code)), f"{where}: status {code}"
        assert any(str(c).startswith("2") for c in op["responses"]), f"{where}: no 2xx"
        assert op.get("x-caplat-status") in ("implemented", "planned"), where
        assert op.get("operationId") and op["operationId"] not in ids, where
        ids.add(op["operationId"])
        for name in re.findall(r"{(\w+)}", path):
            params = op.get("parameters", []) + doc["paths"][path].get("parameters", [])
            params = [resolve_pointer(doc, p["$ref"]) if "$ref" in p else p for p in params]
            assert any(p["in"] == "path" and p["name"] == name for p in params), \
                f"{where}: path parameter {name} not declared"
        if not path.startswith("/notify/") and path not in OPS:
            # every error answer is the one envelope
            for code, resp in op["responses"].items():
                if str(code)[0] in "45":
                    if "$ref" in resp:
                        resp = resolve_pointer(doc, resp["$ref"])
                    schema = resp["content"]["application/json"]["schema"]
                    text = json.dumps(schema)
                    assert "#/components/schemas/Error" in text, f"{where} {code} is not the error envelope"


def test_openapi_refs_resolve(suite):
    doc = load_openapi()
    count = 0
    for path, node in walk(doc):
        if isinstance(node, dict) and "$ref" in node:
            resolve_pointer(doc, node["$ref"])
            count += 1
    assert count > 100, f"only {count} $refs: is the document whole?"


def test_openapi_schemas_are_2020_12(suite):
    doc = load_openapi()
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_openapi_conventions(suite):
    doc = load_openapi()
    for method, path in IDEMPOTENT_CREATES:
        params = doc["paths"][path][method.lower()]["parameters"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in params, f"{method} {path}"
    key = doc["components"]["parameters"]["IdempotencyKey"]
    assert key["in"] == "header" and key["name"] == "Idempotency-Key"
    for path in LISTS:
        text = json.dumps(doc["paths"][path]["get"]["responses"]["200"])
        assert "#/components/schemas/ListEnvelope" in text, path
    envelope = doc["components"]["schemas"]["ListEnvelope"]
    assert envelope["required"] == ["items", "next_cursor"]
    err = doc["components"]["schemas"]["Error"]["properties"]["error"]
    assert err["required"] == ["code", "message"] and "field" in err["properties"]
    # money fields are integers, in fen, and only those end in _fen
    for path, node in walk(doc["components"]["schemas"]):
        if isinstance(node, dict) and isinstance(node.get("properties"), dict):
            for prop, sch in node["properties"].items():
                if prop.endswith("_fen"):
                    text = json.dumps(sch)
                    assert '"integer"' in text or "#/components/schemas/Fen" in text, (path, prop)
    schemas = doc["components"]["schemas"]
    assert schemas["LockKind"]["enum"] == ["master", "project_lead", "agent", "cost_engineer", "personal"]
    assert schemas["OrderStatus"]["enum"] == ["pending_payment", "paid", "fulfilled", "cancelled",
                                              "expired", "refunded"]
    assert schemas["PaymentStatus"]["enum"] == ["pending", "succeeded", "closed", "refunded"]
    assert schemas["RecordStatus"]["enum"] == ["draft", "pending", "approved", "rejected"]
    assert schemas["InvoiceType"]["enum"] == ["none", "e_normal", "paper_special"]
    assert set(schemas["PlatformCode"]["x-caplat-seed-catalogue"]) == {
        "LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY", "DL_ZFCG", "AS_GGZY",
        "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"}
    # API.md's codes are where API.md puts them
    text = yaml.safe_dump(doc, allow_unicode=True)
    for code in ["BAD_SIGNATURE", "CERT_UNTRUSTED", "CERT_EXPIRED", "CERT_REVOKED",
                 "CHALLENGE_INVALID", "SMS_TOO_FREQUENT", "LOCK_ALREADY_BOUND", "ACCOUNT_HAS_LOCK",
                 "SMS_CODE_INVALID", "BAD_CREDENTIALS", "ACCOUNT_LOCKED", "ADMIN_EXISTS",
                 "USCC_INVALID", "RECORD_INCOMPLETE", "NO_PAID_RENEWAL", "PROFILE_INCOMPLETE",
                 "ENTERPRISE_NOT_APPROVED", "NOT_IN_RENEWAL_WINDOW", "CERT_IN_OPEN_ORDER",
                 "SPECIAL_INVOICE_NOT_ALLOWED"]:
        assert code in text, code


def test_openapi_schemas_accept_and_refuse_samples(suite):
    doc = load_openapi()
    uid = str(uuid.uuid4())
    err = schema_validator(doc, "#/components/schemas/Error")
    assert_valid(err, {"error": {"code": "USCC_INVALID", "message": "统一社会信用代码错误",
                                 "field": "uscc"}}, "error envelope")
    assert_invalid(err, {"error": {"message": "no code"}}, "error without code")
    login401 = schema_validator(
        doc, "#/paths/~1api~1v1~1auth~1ca~1login/post/responses/401/content/application~1json/schema")
    assert_valid(login401, {"error": {"code": "CERT_EXPIRED", "message": "证书已过期"}}, "login 401")
    assert_invalid(login401, {"error": {"code": "NOPE", "message": "x"}}, "login 401 with an unknown code")
    login = schema_validator(
        doc, "#/paths/~1api~1v1~1auth~1ca~1login/post/responses/200/content/application~1json/schema")
    assert_valid(login, {"status": "binding_required", "bind_token": "t", "lock": {
        "kind": "master", "holder": "张三", "enterprise_name": "示例科技有限公司",
        "uscc": "91350100M000100Y43", "serial": "1A2B3C"}}, "binding_required")
    assert_valid(login, {"status": "ok", "token": "t", "account": {"id": uid, "phone": "13800138000"},
                         "identity": None}, "login ok")
    quote = schema_validator(doc, "#/components/schemas/Quote")
    assert_valid(quote, {"items": [{"cert_id": uid, "price_fen": 30000, "lines": [
        {"platform": "LN_JSGC", "kind": "renew", "price_fen": 20000},
        {"platform": "SY_GGZY", "kind": "add", "price_fen": 10000}], "dropped": ["DL_GGZY"]}],
        "total_fen": 30000}, "quote")
    assert_invalid(quote, {"items": [], "total_fen": 300.5}, "money as a float")
    platforms = schema_validator(
        doc, "#/paths/~1api~1v1~1platforms/get/responses/200/content/application~1json/schema")
    assert_valid(platforms, {"items": [{"code": "LN_JSGC", "name": "辽宁建设工程信息网",
                                        "renew_fen": 20000, "add_fen": 30000,
                                        "by_lock_kind": {"personal": {"renew_fen": 10000, "add_fen": 15000}}}],
                             "next_cursor": None}, "platform list")
    assert_invalid(platforms, [{"code": "LN_JSGC"}], "a bare array instead of the list envelope")
    order = schema_validator(doc, "#/components/schemas/Order")
    assert_valid(order, {"id": uid, "number": "PL20240501000123", "status": "pending_payment",
                         "total_fen": 30000, "items": [], "expires_at": "2024-05-01T08:30:00Z"}, "order")
    assert_invalid(order, {"id": uid, "number": "PL1", "status": "unpaid", "total_fen": 1,
                           "items": [], "expires_at": "2024-05-01T08:30:00Z"}, "unknown order status")


# ------------------------------------------------------------- events

def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def event_schemas():
    return {os.path.basename(p)[:-5]: load_json(p)
            for p in sorted(glob.glob(os.path.join(EVENTS_DIR, "*.json")))}


def test_event_schemas_are_valid_2020_12(suite):
    schemas = event_schemas()
    assert "envelope" in schemas
    for name in EVENT_TYPES:
        assert name in schemas, f"proto/events/{name}.json is missing"
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        if name != "envelope":
            assert schema["title"] == name and schema["type"] == "object", name
            for prop in schema.get("properties", {}):
                if prop.endswith("_fen"):
                    assert "fen" in json.dumps(schema["properties"][prop]), (name, prop)
    with open(os.path.join(EVENTS_DIR, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for name in EVENT_TYPES:
        assert f"`{name}`" in readme, f"README.md lacks {name}"
    for rule in ["Nats-Msg-Id", "inbox", "caplat.dlq.<consumer>", "outbox"]:
        assert rule in readme, rule


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sample_events():
    """One plausible data object per event type, as the producers send them."""
    u = lambda: str(uuid.uuid4())  # noqa: E731
    acct, rec, cert, order, pay, inv = u(), u(), u(), u(), u(), u()
    t = _now()
    lock = {"serial": "7F3A9C01", "lock_kind": "master", "holder": "张三",
            "enterprise_name": "示例科技有限公司", "uscc": "91350100M000100Y43"}
    return {
        "auth.account.registered": {"account_id": acct, "phone": "13800138000"},
        "auth.lock.bound": dict(lock, account_id=acct, phone="13800138000", vendor="LNCA",
                                not_after=t, bound_at=t, lock_id=u(),
                                issuer="CN=caplat test SM2 issuing CA,O=caplat test,C=CN",
                                not_before=t, certificate_pem="-----BEGIN CERTIFICATE-----\n..."),
        "auth.identity.added": {"identity_id": u(), "account_id": acct, "type": "enterprise",
                                "enterprise_name": "示例科技有限公司", "uscc": "91350100M000100Y43",
                                "role": "admin"},
        "enterprise.profile.completed": {"account_id": acct, "name": "张三", "completed_at": t},
        "enterprise.record.submitted": {"record_id": rec, "uscc": "91350100M000100Y43",
                                        "name": "示例科技有限公司", "seq": 1, "submitted_by": acct},
        "enterprise.record.approved": {
            "record_id": rec, "uscc": "91350100M000100Y43", "name": "示例科技有限公司", "seq": 2,
            "taxpayer_type": "general", "admin_account_id": acct, "reviewer_id": u(),
            "opinion": None, "approved_at": t,
            "invoice": {"title": "示例科技有限公司", "taxpayer_id": "91350100M000100Y43",
                        "invoice_address": "沈阳市和平区示例路1号", "invoice_phone": "024-12345678",
                        "bank_name": "中国工商银行沈阳分行", "bank_account": "0301000000000000000"}},
        "enterprise.record.rejected": {"record_id": rec, "uscc": "91350100M000100Y43",
                                       "name": "示例科技有限公司", "seq": 2, "opinion": "营业执照不清晰",
                                       "reviewer_id": u()},
        "issuance.cert.registered": {
            "cert_id": cert, "serial": "7F3A9C01", "type": "enterprise", "holder": "张三",
            "enterprise_name": "示例科技有限公司", "uscc": "91350100M000100Y43",
            "lock_kind": "master", "vendor": "LNCA", "account_id": acct,
            "not_before": t, "not_after": t, "platforms": ["LN_JSGC", "SY_GGZY"]},
        "issuance.cert.renewed": {
            "cert_id": cert, "serial": "7F3A9C02", "previous_serial": "7F3A9C01",
            "issuer": "CN=LNCA SM2 CA,O=LNCA,C=CN", "previous_issuer": "CN=LNCA SM2 CA,O=LNCA,C=CN",
            "lock_kind": "master", "not_before": t, "not_after": t,
            "platforms": ["LN_JSGC", "LN_ZFCG"], "order_id": order},
        "issuance.cert.revoked": {"cert_id": cert, "serial": "7F3A9C02", "reason": "key_compromise",
                                  "issuer": "CN=LNCA SM2 CA,O=LNCA,C=CN"},
        "orders.order.created": {
            "order_id": order, "number": "PL20240501000123", "account_id": acct,
            "identity_id": u(), "uscc": "91350100M000100Y43", "total_fen": 30000,
            "items": [{"cert_id": cert, "price_fen": 30000, "platforms": ["LN_JSGC", "LN_ZFCG"],
                       "lines": [{"platform": "LN_JSGC", "kind": "renew", "price_fen": 20000},
                                 {"platform": "LN_ZFCG", "kind": "add", "price_fen": 10000}],
                       "dropped": ["SY_GGZY"]}],
            "expires_at": t},
        "orders.order.paid": {
            "order_id": order, "number": "PL20240501000123", "account_id": acct,
            "payment_id": pay, "total_fen": 30000, "paid_at": t,
            "items": [{"cert_id": cert, "platforms": ["LN_JSGC", "LN_ZFCG"], "price_fen": 30000}]},
        "orders.order.cancelled": {"order_id": order, "number": "PL20240501000123",
                                   "status": "expired"},
        "orders.order.fulfilled": {"order_id": order, "number": "PL20240501000123",
                                   "items": [{"cert_id": cert, "serial": "7F3A9C02"}]},
        "payments.payment.succeeded": {
            "payment_id": pay, "order_id": order, "channel": "alipay", "amount_fen": 30000,
            "provider_trade_no": "2024050122001400000000000001", "invoice_type": "e_normal",
            "paid_at": t},
        "payments.payment.refunded": {
            "refund_id": u(), "payment_id": pay, "order_id": order, "amount_fen": 10000,
            "refunded_total_fen": 10000, "full": False, "reason": "平台重复选择"},
        "payments.invoice.issued": {
            "invoice_id": inv, "order_id": order, "payment_id": pay, "type": "e_normal",
            "kind": "blue", "title": "示例科技有限公司", "taxpayer_id": "91350100M000100Y43",
            "amount_fen": 30000, "tax_fen": 1698, "number": "24212000000000000001",
            "account_id": str(uuid.uuid4()), "order_number": "PL20240501000001"},
    }


def envelope_for(type_, data):
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/caplat/" + type_.split(".")[0],
            "type": type_, "time": _now(), "subject": next(iter(data.values())),
            "datacontenttype": "application/json", "data": data}


def test_sample_events_validate(suite):
    schemas = event_schemas()
    checker = jsonschema.FormatChecker()
    envelope = jsonschema.Draft202012Validator(schemas["envelope"], format_checker=checker)
    samples = sample_events()
    assert sorted(samples) == sorted(EVENT_TYPES)
    for type_, data in samples.items():
        data_v = jsonschema.Draft202012Validator(schemas[type_], format_checker=checker)
        event = envelope_for(type_, data)
        subject_field = schemas[type_]["x-caplat-subject-field"]
        event["subject"] = data[subject_field]
        assert_valid(envelope, event, f"{type_} envelope")
        assert_valid(data_v, event["data"], f"{type_} data")
        # what a producer must not send
        for field in schemas[type_]["required"]:
            broken = copy.deepcopy(data)
            del broken[field]
            assert_invalid(data_v, broken, f"{type_} without {field}")
        for field in [f for f in data if f.endswith("_fen")]:
            broken = copy.deepcopy(data)
            broken[field] = data[field] + 0.5
            assert_invalid(data_v, broken, f"{type_} with {field} as a float")
        for field in [f for f in data if f.endswith("_id") and schemas[type_]["properties"][f].get("$ref") == "#/$defs/uuid"]:
            broken = copy.deepcopy(data)
            broken[field] = "42"
            assert_invalid(data_v, broken, f"{type_} with {field} not a uuid")
    # the envelope itself
    good = envelope_for("orders.order.paid", samples["orders.order.paid"])
    assert_valid(envelope, dict(good, traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                 "an extension attribute")
    for key, value in [("specversion", "0.3"), ("id", "not-a-uuid"), ("source", "/caplat/auth"),
                       ("type", "Orders.Order.Paid"), ("time", "2024-05-01 08:00:00"),
                       ("datacontenttype", "text/plain"), ("data", "{}"), ("Bad_Name", 1)]:
        assert_invalid(envelope, dict(good, **{key: value}), f"envelope with {key}={value!r}")
    for key in ["id", "source", "type", "time", "subject", "data"]:
        broken = dict(good)
        del broken[key]
        assert_invalid(envelope, broken, f"envelope without {key}")
    personal = {"identity_id": str(uuid.uuid4()), "account_id": str(uuid.uuid4()), "type": "personal"}
    ident = jsonschema.Draft202012Validator(schemas["auth.identity.added"])
    assert_valid(ident, personal, "personal identity")
    assert_invalid(ident, dict(personal, type="enterprise"), "enterprise identity without its enterprise")


# ---------------------------------------------------------------- k8s

def test_k8s_manifests(suite):
    docs = k8s_docs()
    kinds = {}
    for fname, d in docs:
        assert "kind" in d and "apiVersion" in d, fname
        kinds.setdefault(d["kind"], {})[d["metadata"]["name"] if "metadata" in d else fname] = d
    deployments = kinds["Deployment"]
    assert deployments, "no Deployment"
    for name, dep in deployments.items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in c, f"{name}/{c['name']} lacks a readinessProbe"
            assert "livenessProbe" in c, f"{name}/{c['name']} lacks a livenessProbe"
            assert c.get("resources", {}).get("requests"), f"{name}/{c['name']} lacks resource requests"
    for svc in SERVICES:
        dep = deployments[svc]
        assert dep["spec"]["replicas"] == 3, svc
        c = dep["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", svc
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", svc
        env = {e["name"]: e for e in c["env"]}
        assert env["SERVICE"]["value"] == svc and env["CAPLAT_DB_SCHEMA"]["value"] == svc
        assert env["CAPLAT_MIGRATIONS_DIR"]["value"] == f"/app/deploy/sql/{svc}"
        assert env["CAPLAT_DB_URL"]["value"].startswith(f"postgresql://{svc}:$(CAPLAT_DB_PASSWORD)@postgres:5432/caplat")
        names = [e["name"] for e in c["env"]]
        assert names.index("CAPLAT_DB_PASSWORD") < names.index("CAPLAT_DB_URL"), "$(VAR) needs the var first"
        assert kinds["Service"][svc]["spec"]["ports"][0]["port"] == 8080
    assert "gateway" in deployments and kinds["Service"]["gateway"]
    assert "redis" in deployments
    pg = kinds["StatefulSet"]["postgres"]
    assert pg["spec"]["template"]["spec"]["containers"][0]["image"].startswith("postgres:15")
    nats = kinds["StatefulSet"]["nats"]
    assert nats["spec"]["replicas"] == 3 and nats["spec"]["serviceName"] == "nats"
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    headless = kinds["Service"]["nats"]["spec"]
    assert headless["clusterIP"] == "None" and headless.get("publishNotReadyAddresses") is True
    conf = kinds["ConfigMap"]["nats-config"]["data"]["nats.conf"]
    for i in range(3):
        assert f"nats://nats-{i}.nats.caplat.svc.cluster.local:6222" in conf
    assert re.search(r"jetstream\s*{[^}]*store_dir:\s*/data", conf)
    stream = json.loads(kinds["ConfigMap"]["nats-config"]["data"]["stream-caplat.json"])
    assert stream["num_replicas"] == 3 and stream["subjects"] == ["caplat.>"]
    # the copies carried by ConfigMaps are the files of deploy/docker/
    with open(os.path.join(ROOT, "deploy", "docker", "nginx.conf"), encoding="utf-8") as f:
        assert kinds["ConfigMap"]["gateway-config"]["data"]["nginx.conf"] == f.read(), \
            "deploy/k8s/gateway.yaml's nginx.conf differs from deploy/docker/nginx.conf"
    with open(os.path.join(ROOT, "deploy", "docker", "initdb.sql"), encoding="utf-8") as f:
        assert kinds["ConfigMap"]["postgres-initdb"]["data"]["initdb.sql"] == f.read(), \
            "deploy/k8s/postgres.yaml's initdb.sql differs from deploy/docker/initdb.sql"
    secret = kinds["Secret"]["caplat-secrets"]
    assert all(v.startswith("CHANGE_ME") for v in secret["stringData"].values()), "template only"
    with open(os.path.join(K8S_DIR, "kustomization.yaml"), encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    for fname in {f for f, _ in docs} - {"kustomization.yaml", "secret.example.yaml"}:
        assert fname in kust["resources"], f"kustomization.yaml lacks {fname}"


# ------------------------------------------------- the gateway, for real

class _Stub(http.server.BaseHTTPRequestHandler):
    """An upstream that answers what it saw: its service, the raw path, headers."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls
    service = "?"

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({"svc": self.service, "method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", self.headers.get("X-Request-Id", "-"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


def _gateway_conf(port, upstream_ports, prefix):
    with open(os.path.join(ROOT, "deploy", "docker", "nginx.conf"), encoding="utf-8") as f:
        conf = f.read()

    def sub(pattern, repl):
        nonlocal conf
        conf, n = re.subn(pattern, repl, conf, flags=re.M)
        assert n, f"deploy/docker/nginx.conf: no match for {pattern!r}"

    sub(r"^user nginx;", "user root;" if os.getuid() == 0 else "")
    sub(r"^worker_processes auto;", "worker_processes 1;")
    sub(r"^worker_rlimit_nofile \d+;", "")
    sub(r"^error_log \S+", f"error_log {prefix}/error.log")
    sub(r"^pid \S+;", f"pid {prefix}/nginx.pid;")
    sub(r"access_log /var/log/nginx/access.log", f"access_log {prefix}/access.log")
    sub(r"listen 80\b[^;]*;", f"listen 127.0.0.1:{port};")
    for svc, p in upstream_ports.items():
        sub(rf"server {svc}:8080\b", f"server 127.0.0.1:{p}")
    return conf


def _request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        ids = [v for k, v in r.getheaders() if k.lower() == "x-request-id"]
        assert len(ids) == 1, f"{method} {path}: X-Request-Id {ids}"
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def test_gateway_routes_like_api_md(suite):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    assert nginx, "nginx is not installed (deploy/scripts/install-deps.sh installs it)"
    servers, threads = [], []
    prefix = tempfile.mkdtemp(prefix="caplat-gw-")
    os.chmod(prefix, 0o755)
    proc = None
    try:
        ports = {}
        for svc in SERVICES:
            handler = type(f"Stub_{svc}", (_Stub,), {"service": svc})
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            srv.daemon_threads = True
            ports[svc] = srv.server_address[1]
            t = threading.Thread(target=srv.serve_forever, daemon=True)
            t.start()
            servers.append(srv)
            threads.append(t)
        port = free_port()
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w", encoding="utf-8") as f:
            f.write(_gateway_conf(port, ports, prefix))
        t = subprocess.run([nginx, "-t", "-p", prefix, "-c", conf_path, "-e", os.path.join(prefix, "error.log")],
                           capture_output=True, text=True)
        assert t.returncode == 0, f"nginx -t: {t.stderr}"
        proc = subprocess.Popen([nginx, "-p", prefix, "-c", conf_path, "-e", os.path.join(prefix, "error.log"),
                                 "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "gateway nginx did not start"
                time.sleep(0.05)

        values = {"id": str(uuid.uuid4()), "serial": "7F3A9C01", "channel": "alipay", "date": "2024-05-01"}
        for method, path, svc in API_MD:
            real = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)
            if "interop" in real:
                real += "?platform=LN_JSGC"
            body = b"{}" if method in ("POST", "PUT") else None
            status, headers, raw = _request(port, method, real, {"X-Request-Id": "req-1234"}, body)
            assert status == 200, f"{method} {real}: {status} {raw[:200]!r}"
            seen = json.loads(raw)
            assert seen["svc"] == svc, f"{method} {real} went to {seen['svc']}, not {svc}"
            assert seen["path"] == real, f"{method} {real} arrived as {seen['path']}"
            h = seen["headers"]
            assert h["x-request-id"] == "req-1234" and headers["x-request-id"] == "req-1234"
            assert h["x-real-ip"] == "127.0.0.1" and h["x-forwarded-for"] == "127.0.0.1"
            assert h.get("connection", "") in ("", "keep-alive"), h.get("connection")

        # a request id is made when the client sends none
        status, headers, raw = _request(port, "GET", "/api/v1/auth/me")
        made = json.loads(raw)["headers"]["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made) and headers["x-request-id"] == made

        # never proxied, or unknown: the error envelope from the gateway itself
        for path in ["/internal/accounts/1", "/api/v1/auth/../../internal/x", "/api/v1/nope",
                     "/api/v1/filesx", "/healthzz"]:
            status, headers, raw = _request(port, "GET", path)
            assert status == 404, f"{path}: {status}"
            assert json.loads(raw)["error"]["code"] == "NOT_FOUND", path

        # the errors nginx meets reading the request line, and TRACE (issue 15)
        for method, path, want, code in [("GET", "/api/v1/files/%00", 400, "BAD_REQUEST"),
                                         ("GET", "/api/../../etc/passwd", 400, "BAD_REQUEST"),
                                         ("GET", "/api/v1/files?q=" + "a" * 20000, 414, "URI_TOO_LONG"),
                                         ("TRACE", "/api/v1/files", 405, "METHOD_NOT_ALLOWED")]:
            status, headers, raw = _request(port, method, path)
            assert status == want and headers["content-type"].startswith("application/json"), \
                f"{method} {path[:40]}: {status} {headers.get('content-type')} {raw[:80]!r}"
            assert json.loads(raw)["error"]["code"] == code, path[:40]

        # bodies over 6 MiB stop at the gateway
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("POST", "/api/v1/files")
        conn.putheader("Content-Type", "image/png")
        conn.putheader("Content-Length", str(6 * 1024 * 1024 + 1))
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 413, r.status
        assert json.loads(r.read())["error"]["code"] == "BODY_TOO_LARGE"
        conn.close()
        status, _, _ = _request(port, "POST", "/api/v1/files", {"Content-Type": "image/png"},
                                b"\x89PNG" + b"\0" * (5 * 1024 * 1024))
        assert status == 200, "a 5 MiB upload must pass the gateway"

        status, _, raw = _request(port, "GET", "/healthz")
        assert status == 200 and json.loads(raw)["status"] == "ok"

        # limit_req per client address: a burst far past the limit (16 clients at
        # once, whatever the machine's speed) gets 429s in the envelope. The
        # gateway's own /healthz answers before limit_req runs, so use a route.
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: _request(port, "GET", "/api/v1/platforms"), range(800)))
        limited = [(h, raw) for status, h, raw in answers if status == 429]
        assert limited, "no 429 after 800 requests at once"
        assert all(status in (200, 429) for status, _, _ in answers)
        assert json.loads(limited[0][1])["error"]["code"] == "RATE_LIMITED"
        assert limited[0][0].get("retry-after") == "1"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(prefix, ignore_errors=True)
