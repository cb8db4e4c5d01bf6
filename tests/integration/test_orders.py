"""orders: the platform catalogue and its prices, quotes, eligibility and the
refusals of bad input — black-box through nginx against the real PostgreSQL,
Redis and NATS.

The facts orders checks come from other services' events. Those services may
not run here, so each test stands in for them the way test_auth_ca does: it
writes the upstream event as an outbox row of the orders schema; orders'
relay publishes it to JetStream and orders' own consumers apply it. Event
data follows proto/events/<type>.json (test_events_match_schemas checks).
The helpers below are shared with test_orders_lifecycle.py."""
import datetime
import json
import secrets
import uuid

from client import Api, call, join_enterprise, new_phone, new_uscc, sms_code, wait_until

ISSUER = "CN=CFCA TEST OCA1,O=China Financial Certification Authority,C=CN"
CATALOGUE = ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY", "DL_ZFCG",
             "AS_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"]


# ---------------------------------------------------------------- helpers

def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def days(n):
    return datetime.timedelta(days=n)


def register(suite):
    api = Api(suite)
    phone = new_phone()
    r = api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
    assert r.status == 202, r
    code = sms_code(suite, phone, "register")
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": code, "password": "abc12345"})
    assert r.status == 201, r
    return r.json["token"], r.json["account"]["id"]


def use_identity(suite, token, uscc=None, role="admin", name="沈阳某某建设有限公司"):
    """Gives the account an enterprise identity by proof (client.join_enterprise:
    an administrator by an approved application, a member approved by the
    administrator; issue 12) or, without uscc, a personal identity, and makes
    it the session's current one."""
    api = Api(suite)
    if uscc:
        return join_enterprise(suite, token, uscc, role, name)
    r = api.post("/api/v1/auth/identities", {"type": "personal"}, token=token)
    assert r.status == 201, r
    s = api.post(f"/api/v1/auth/identities/{r.json['id']}/switch", token=token)
    assert s.status == 200, s
    return r.json["id"]


def inject(suite, type_, subject, data):
    """Writes an upstream event as an orders outbox row; returns its id."""
    event_id = str(uuid.uuid4())
    text = json.dumps(data, ensure_ascii=False).replace("'", "''")
    suite.psql(f"INSERT INTO orders.outbox (id, type, subject, data) VALUES ('{event_id}',"
               f" '{type_}', '{subject}', '{text}'::jsonb)")
    return event_id


def applied(suite, *event_ids):
    """Waits until orders' consumers applied every event."""
    for event_id in event_ids:
        wait_until(lambda: suite.psql(
            f"SELECT 1 FROM orders.inbox WHERE event_id = '{event_id}'"), timeout=15,
            what=f"event {event_id} applied by orders")


def profile_completed(suite, account, name="张三"):
    return inject(suite, "enterprise.profile.completed", account,
                  {"account_id": account, "name": name, "completed_at": iso(now())})


def record_approved(suite, uscc, name="沈阳某某建设有限公司", seq=1):
    record = str(uuid.uuid4())
    return inject(suite, "enterprise.record.approved", record, {
        "record_id": record, "uscc": uscc, "name": name, "seq": seq,
        "taxpayer_type": "general",
        "invoice": {"title": name, "taxpayer_id": uscc, "invoice_address": None,
                    "invoice_phone": None, "bank_name": None, "bank_account": None},
        "reviewer_id": str(uuid.uuid4()), "approved_at": iso(now())})


class Caller:
    def __init__(self, token, account, identity, uscc):
        self.token, self.account, self.identity, self.uscc = token, account, identity, uscc


def enterprise_admin(suite, profile=True, approved=True, uscc=None):
    """A registered account acting as the admin of a fresh enterprise, with
    its personal info complete and the enterprise approved (unless told)."""
    token, account = register(suite)
    uscc = uscc or new_uscc()
    identity = use_identity(suite, token, uscc, "admin")
    events = []
    if profile:
        events.append(profile_completed(suite, account))
    if approved:
        events.append(record_approved(suite, uscc))
    applied(suite, *events)
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM orders.identities WHERE identity_id = '{identity}'"),
        what="auth.identity.added reached orders")
    return Caller(token, account, identity, uscc)


def member(suite, uscc, role="project_lead", profile=True):
    token, account = register(suite)
    identity = use_identity(suite, token, uscc, role)
    if profile:
        applied(suite, profile_completed(suite, account, "李四"))
    return Caller(token, account, identity, uscc)


def person(suite, profile=True):
    token, account = register(suite)
    identity = use_identity(suite, token)
    if profile:
        applied(suite, profile_completed(suite, account, "王五"))
    return Caller(token, account, identity, None)


def register_cert(suite, uscc=None, account=None, kind="project_lead", platforms=("LN_JSGC",),
                  expires_in=30, holder="李四", wait=True):
    """issuance.cert.registered for a certificate expiring in expires_in days."""
    cert_id = str(uuid.uuid4())
    serial = secrets.token_hex(8).upper().lstrip("0") or "1"
    not_after = now() + days(expires_in)
    event = inject(suite, "issuance.cert.registered", cert_id, {
        "cert_id": cert_id, "serial": serial,
        "type": "enterprise" if uscc else "personal", "holder": holder,
        "enterprise_name": "沈阳某某建设有限公司" if uscc else None, "uscc": uscc,
        "lock_kind": kind, "vendor": "CFCA", "account_id": account,
        "not_before": iso(not_after - days(365)), "not_after": iso(not_after),
        "platforms": list(platforms), "registered_at": iso(now())})
    if wait:
        applied(suite, event)
    return cert_id, serial


def items(*pairs):
    return {"items": [{"cert_id": c, "platforms": list(p)} for c, p in pairs]}


def quote(suite, caller, body):
    return Api(suite).post("/api/v1/orders/quote", body, token=caller.token)


def place(suite, caller, body, key=None):
    return Api(suite).post("/api/v1/orders", body, token=caller.token,
                           headers={"Idempotency-Key": key or str(uuid.uuid4())})


def staff_token(suite, user):
    r = Api(suite).post("/api/v1/auth/staff/login",
                        {"username": user, "password": suite.secrets[f"staff_{user}"]})
    assert r.status == 200, r
    return r.json["token"]


def order_count(suite, caller):
    return int(suite.psql(f"SELECT count(*) FROM orders.orders WHERE account_id = '{caller.account}'")[0][0])


def assert_nothing_changed(suite, caller, before):
    """No order, item, key or event was left by a refused creation."""
    assert order_count(suite, caller) == before
    assert suite.psql(f"SELECT count(*) FROM orders.idem_keys"
                      f" WHERE scope = '{caller.account}'") == [["0"]]
    assert suite.psql(f"SELECT count(*) FROM orders.outbox WHERE type = 'orders.order.created'"
                      f" AND data->>'account_id' = '{caller.account}'") == [["0"]]


def assert_error(r, status, code, field=None):
    assert r.status == status and r.code == code, r
    assert r.json["error"]["message"], r
    if field is not None:
        assert r.json["error"].get("field") == field, r


# ---------------------------------------------------------------- catalogue

def test_orders_platform_catalogue(suite):
    api = Api(suite)
    caller = person(suite, profile=False)
    assert api.get("/api/v1/platforms").status == 401
    r = api.get("/api/v1/platforms", token=caller.token)
    assert r.status == 200, r
    assert r.json["next_cursor"] is None
    got = {p["code"]: p for p in r.json["items"]}
    assert [p["code"] for p in r.json["items"]] == CATALOGUE
    assert got["LN_JSGC"]["name"] == "辽宁建设工程信息网"
    assert got["SF_JSXM"]["name"] == "沈抚示范区建设项目管理平台"
    assert (got["LN_JSGC"]["renew_fen"], got["LN_JSGC"]["add_fen"]) == (10000, 30000)
    assert (got["LN_ZTB"]["renew_fen"], got["LN_ZTB"]["add_fen"]) == (5000, 25000)
    assert got["LN_JSGC"]["by_lock_kind"] == {"personal": {"renew_fen": 8000, "add_fen": 20000}}
    r = api.get("/api/v1/platforms?lock_kind=personal", token=caller.token)
    assert r.status == 200
    assert {p["code"]: p["renew_fen"] for p in r.json["items"]}["LN_ZTB"] == 4000
    r = api.get("/api/v1/platforms?lock_kind=boss", token=caller.token)
    assert_error(r, 400, "BAD_REQUEST", "lock_kind")
    # Every seeded price is a version with its reason: the audit trail.
    rows = suite.psql("SELECT count(*), min(reason) FROM orders.platform_prices"
                      " WHERE staff_id IS NULL")
    assert rows == [["24", "seed catalogue (migration 001)"]]


def test_orders_operator_sets_price_with_audit_trail(suite):
    api = Api(suite)
    op = staff_token(suite, "operator")
    holder = person(suite, profile=False)
    path = "/api/v1/platforms/SF_JSXM/prices"
    body = {"renew_fen": 7000, "add_fen": 27000, "lock_kind": "agent", "reason": "2025 年调价"}
    assert_error(api.post(path, body, token=holder.token), 403, "FORBIDDEN")
    assert_error(api.post(path, body, token=staff_token(suite, "reviewer")), 403, "FORBIDDEN")
    assert_error(api.post("/api/v1/platforms/NO_SUCH/prices", body, token=op), 404,
                 "PLATFORM_UNKNOWN")
    assert_error(api.post(path, dict(body, renew_fen=-1), token=op), 422, "FIELD_INVALID", "renew_fen")
    assert_error(api.post(path, dict(body, lock_kind="boss"), token=op), 422, "FIELD_INVALID",
                 "lock_kind")
    assert_error(api.post(path, {k: v for k, v in body.items() if k != "reason"}, token=op),
                 422, "FIELD_REQUIRED", "reason")
    assert_error(api.post(path, dict(body, effective_at=iso(now() - days(1))), token=op),
                 422, "FIELD_INVALID", "effective_at")
    assert_error(api.post(path, dict(body, effective_at="tomorrow"), token=op),
                 422, "FIELD_INVALID", "effective_at")
    assert suite.psql("SELECT count(*) FROM orders.platform_prices WHERE platform = 'SF_JSXM'") \
        == [["2"]]

    # Scheduled for next year: recorded, not yet in force.
    later = api.post(path, dict(body, effective_at=iso(now() + days(365)), renew_fen=9900), token=op)
    assert later.status == 201, later
    assert later.json["set_by"] == "operator" and later.json["lock_kind"] == "agent"
    r = api.post(path, body, token=op)
    assert r.status == 201, r
    assert (r.json["renew_fen"], r.json["add_fen"], r.json["reason"]) == (7000, 27000, "2025 年调价")
    cat = api.get("/api/v1/platforms?lock_kind=agent", token=holder.token).json["items"]
    sf = {p["code"]: p for p in cat}["SF_JSXM"]
    assert (sf["renew_fen"], sf["add_fen"]) == (7000, 27000)
    assert sf["by_lock_kind"]["agent"] == {"renew_fen": 7000, "add_fen": 27000}

    hist = api.get(path, token=op)
    assert hist.status == 200, hist
    states = [(h["lock_kind"], h["renew_fen"], h["state"], h["set_by"]) for h in hist.json["items"]]
    assert states[0] == ("agent", 9900, "scheduled", "operator")
    assert ("agent", 7000, "in_force", "operator") in states
    assert (None, 5000, "in_force", None) in states
    assert api.get(path, token=holder.token).status == 403
    assert api.get(path, token=staff_token(suite, "finance")).status == 200

    # History is append-only, in the database too.
    try:
        suite.psql("UPDATE orders.platform_prices SET renew_fen = 1 WHERE platform = 'SF_JSXM'")
        raise AssertionError("price history was updated")
    except RuntimeError as e:
        assert "PRICE_HISTORY_IMMUTABLE" in str(e)

    # Back to the seed price (a new version) so other tests see the seed.
    r = api.post(path, {"renew_fen": 5000, "add_fen": 25000, "lock_kind": "agent",
                        "reason": "恢复"}, token=op)
    assert r.status == 201
    sf = {p["code"]: p for p in api.get("/api/v1/platforms", token=holder.token).json["items"]}["SF_JSXM"]
    assert sf["by_lock_kind"] == {"personal": {"renew_fen": 4000, "add_fen": 20000}}


# ---------------------------------------------------------------- quotes

def test_orders_quote_prices_the_guide_examples(suite):
    admin = enterprise_admin(suite)
    master, _ = register_cert(suite, admin.uscc, admin.account, "master",
                              ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY",
                               "AS_GGZY"], holder="辽宁某某公司")
    cost, _ = register_cert(suite, admin.uscc, None, "cost_engineer", ["LN_JSGC"], holder="赵六")
    r = quote(suite, admin, items(
        (master, ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_ZFCG"]),
        (cost, ["LN_JSGC"])))
    assert r.status == 200, r
    q = r.json
    assert q["total_fen"] == 65000                        # 应付金额 650 元
    m, c = q["items"]
    assert (m["cert_id"], m["price_fen"]) == (master, 55000)  # 550 元
    assert [(l["platform"], l["kind"], l["price_fen"]) for l in m["lines"]] == [
        ("LN_JSGC", "renew", 10000), ("LN_ZTB", "renew", 5000), ("LN_ZFCG", "renew", 5000),
        ("LN_GGZY", "renew", 5000), ("SY_GGZY", "renew", 5000), ("DL_ZFCG", "add", 25000)]
    assert m["dropped"] == ["DL_GGZY", "AS_GGZY"]
    assert "停止使用" in q["notice"]                       # 平台选择说明
    assert (c["price_fen"], c["dropped"], c["lock_kind"]) == (10000, [], "cost_engineer")
    assert q["quote_id"] and q["expires_at"]

    # 四(二)3: two project leads' certificates, 300 + 400 = 700 元.
    nine = ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "SY_GGZY", "DL_GGZY", "AS_GGZY", "JZ_GGZY",
            "CY_GGZY", "HC_DZCG"]
    a, _ = register_cert(suite, admin.uscc, None, "project_lead", nine, holder="刘某")
    b, _ = register_cert(suite, admin.uscc, None, "project_lead", nine, holder="徐某")
    r = quote(suite, admin, items((a, nine[:3] + ["SY_GGZY", "AS_GGZY"]), (b, nine[:7])))
    assert r.status == 200, r
    assert [i["price_fen"] for i in r.json["items"]] == [30000, 40000]
    assert r.json["total_fen"] == 70000
    # A quote changes nothing but its own record.
    assert order_count(suite, admin) == 0


def test_orders_quote_personal_lock_and_personal_identity(suite):
    """A person (personal identity) renews their own personal certificate:
    no enterprise approval needed, the personal lock's prices apply."""
    p = person(suite)
    cert, _ = register_cert(suite, None, p.account, "personal", ["LN_JSGC"])
    r = quote(suite, p, items((cert, ["LN_JSGC", "LN_ZTB"])))
    assert r.status == 200, r
    assert r.json["total_fen"] == 8000 + 20000


def test_orders_quote_needs_profile_completed(suite):
    admin = enterprise_admin(suite, profile=False)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    assert_error(quote(suite, admin, items((cert, ["LN_JSGC"]))), 403, "PROFILE_INCOMPLETE")
    applied(suite, profile_completed(suite, admin.account))
    assert quote(suite, admin, items((cert, ["LN_JSGC"]))).status == 200


def test_orders_quote_needs_enterprise_approved(suite):
    admin = enterprise_admin(suite, approved=False)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    assert_error(quote(suite, admin, items((cert, ["LN_JSGC"]))), 403, "ENTERPRISE_NOT_APPROVED")
    applied(suite, record_approved(suite, admin.uscc))
    assert quote(suite, admin, items((cert, ["LN_JSGC"]))).status == 200


def test_orders_only_admin_orders_colleagues_certificates(suite):
    admin = enterprise_admin(suite)
    lead = member(suite, admin.uscc, "project_lead")
    own, _ = register_cert(suite, admin.uscc, lead.account, "project_lead")
    colleague, _ = register_cert(suite, admin.uscc, str(uuid.uuid4()), "agent")
    assert quote(suite, lead, items((own, ["LN_JSGC"]))).status == 200
    assert_error(quote(suite, lead, items((colleague, ["LN_JSGC"]))), 403, "NOT_ENTERPRISE_ADMIN",
                 "items[0].cert_id")
    # The admin may order both, in one batch.
    r = quote(suite, admin, items((own, ["LN_JSGC"]), (colleague, ["LN_JSGC"])))
    assert r.status == 200 and r.json["total_fen"] == 20000, r


def test_orders_quote_window_and_revocation(suite):
    admin = enterprise_admin(suite)
    early, _ = register_cert(suite, admin.uscc, None, "agent", expires_in=120)
    edge, _ = register_cert(suite, admin.uscc, None, "agent", expires_in=89)
    late, _ = register_cert(suite, admin.uscc, None, "agent", expires_in=-370)
    expired, _ = register_cert(suite, admin.uscc, None, "agent", expires_in=-300)
    r = quote(suite, admin, items((edge, ["LN_JSGC"]), (early, ["LN_JSGC"])))
    assert_error(r, 409, "NOT_IN_RENEWAL_WINDOW", "items[1].cert_id")
    assert "未到年检时间" in r.json["error"]["message"]
    assert_error(quote(suite, admin, items((late, ["LN_JSGC"]))), 409, "NOT_IN_RENEWAL_WINDOW")
    assert quote(suite, admin, items((edge, ["LN_JSGC"]), (expired, ["LN_JSGC"]))).status == 200
    revoked, serial = register_cert(suite, admin.uscc, None, "agent")
    applied(suite, inject(suite, "issuance.cert.revoked", revoked, {
        "cert_id": revoked, "serial": serial, "issuer": ISSUER, "reason": "key_compromise",
        "revoked_at": iso(now())}))
    assert_error(quote(suite, admin, items((revoked, ["LN_JSGC"]))), 409, "CERT_REVOKED")


def test_orders_caller_must_be_a_holder_with_an_identity(suite):
    api = Api(suite)
    body = items((str(uuid.uuid4()), ["LN_JSGC"]))
    token, _ = register(suite)
    assert_error(api.post("/api/v1/orders/quote", body, token=token), 403, "IDENTITY_REQUIRED")
    assert_error(api.post("/api/v1/orders/quote", body, token=staff_token(suite, "finance")),
                 403, "FORBIDDEN")
    assert api.post("/api/v1/orders/quote", body).status == 401
    admin = enterprise_admin(suite)
    assert_error(quote(suite, admin, body), 404, "CERT_NOT_FOUND", "items[0].cert_id")


# ------------------------------------------- bad input: a clear error, nothing changed

def test_orders_refuses_unknown_platform(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    before = order_count(suite, admin)
    r = place(suite, admin, items((cert, ["LN_JSGC", "XX_NOWHERE"])))
    assert_error(r, 422, "PLATFORM_UNKNOWN", "items[0].platforms[1]")
    r = place(suite, admin, items((cert, ["ln-jsgc"])))
    assert_error(r, 422, "PLATFORM_UNKNOWN", "items[0].platforms[0]")
    assert_nothing_changed(suite, admin, before)


def test_orders_refuses_empty_platform_list(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    before = order_count(suite, admin)
    assert_error(place(suite, admin, items((cert, []))), 422, "ITEMS_EMPTY", "items[0].platforms")
    assert_error(place(suite, admin, {"items": []}), 422, "ITEMS_EMPTY", "items")
    assert_error(place(suite, admin, {"items": [{"cert_id": cert}]}), 422, "ITEMS_EMPTY",
                 "items[0].platforms")
    assert_error(place(suite, admin, {"items": "x"}), 400, "FIELD_TYPE", "items")
    assert_nothing_changed(suite, admin, before)


def test_orders_refuses_certificate_of_another_enterprise(suite):
    admin = enterprise_admin(suite)
    other = enterprise_admin(suite)
    mine, _ = register_cert(suite, admin.uscc, admin.account, "master")
    theirs, _ = register_cert(suite, other.uscc, other.account, "master")
    before = order_count(suite, admin)
    r = place(suite, admin, items((mine, ["LN_JSGC"]), (theirs, ["LN_JSGC"])))
    assert_error(r, 404, "CERT_NOT_FOUND", "items[1].cert_id")
    assert_error(quote(suite, admin, items((theirs, ["LN_JSGC"]))), 404, "CERT_NOT_FOUND")
    assert_nothing_changed(suite, admin, before)


def test_orders_refuses_duplicate_certificates(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    before = order_count(suite, admin)
    r = place(suite, admin, items((cert, ["LN_JSGC"]), (cert.upper(), ["LN_ZTB"])))
    assert_error(r, 422, "FIELD_INVALID", "items[1].cert_id")
    r = place(suite, admin, items((cert, ["LN_JSGC", "LN_JSGC"])))
    assert_error(r, 422, "FIELD_INVALID", "items[0].platforms[1]")
    assert_nothing_changed(suite, admin, before)


def test_orders_refuses_certificate_outside_window(suite):
    admin = enterprise_admin(suite)
    ok, _ = register_cert(suite, admin.uscc, admin.account, "master")
    early, _ = register_cert(suite, admin.uscc, None, "agent", expires_in=200)
    before = order_count(suite, admin)
    r = place(suite, admin, items((ok, ["LN_JSGC"]), (early, ["LN_JSGC"])))
    assert_error(r, 409, "NOT_IN_RENEWAL_WINDOW", "items[1].cert_id")
    assert_nothing_changed(suite, admin, before)
    # The certificate that was fine is not held by the refused order.
    assert place(suite, admin, items((ok, ["LN_JSGC"]))).status == 201
