"""issuance, the certificate registry through nginx: a key bound at auth
(auth.lock.bound) enters the registry once and emits issuance.cert.registered;
GET /api/v1/certs shows the holder their own certificates and the enterprise
administrator the enterprise's, with days left, renewability and the reason
when not (未到年检时间, expired too long, open order, revoked), a page at a
time. Certificates are made per test under the test PKI (tests/issuance/kit.py)."""
import datetime
import json
import os
import sys
import uuid

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import (ca_bind, cert_item, certs, inject, make_leaf, new_uscc, not_after_of, now_utc,  # noqa: E402
                 pay, q, register_account, wait_registered)
from client import Api, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def schema(type_):
    with open(os.path.join(ROOT, "proto", "events", type_ + ".json")) as f:
        return jsonschema.Draft202012Validator(json.load(f), format_checker=jsonschema.FormatChecker())


def inject_lock_bound(suite, leaf, account_id, phone):
    """auth.lock.bound as auth publishes it, for a certificate auth would not
    log in with today (an expired one): the registry still records it."""
    lock_id = str(uuid.uuid4())
    return inject(suite, "auth.lock.bound", account_id, {
        "account_id": account_id, "phone": phone, "lock_id": lock_id, "lock_kind": leaf.kind,
        "holder": leaf.holder, "enterprise_name": leaf.enterprise, "uscc": leaf.uscc,
        "serial": leaf.serial, "issuer": leaf.issuer,
        "not_after": not_after_of(leaf.cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "certificate_pem": leaf.pem})


def test_issuance_bound_key_enters_registry_and_list(suite):
    leaf = make_leaf(suite, "rsa", "agent", days=30)
    token, account = ca_bind(suite, leaf)
    cert_id = wait_registered(suite, leaf.serial)
    item = cert_item(suite, token, cert_id)
    assert item is not None
    assert item["serial"] == leaf.serial and item["type"] == "enterprise"
    assert item["holder"] == leaf.holder and item["lock_kind"] == "agent"
    assert item["uscc"] == leaf.uscc and item["enterprise_name"] == leaf.enterprise
    assert item["vendor"] == "caplat test"  # the issuer's O
    assert item["days_left"] in (29, 30), item
    assert item["renewable"] is True and item["not_renewable_reason"] is None
    # First seen at a login: the associations are unknown, never a default.
    assert item["status"] == "valid" and item["platforms"] is None and item["platforms_known"] is False
    assert item["not_after"] == not_after_of(leaf.cert).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert item["account_id"] == account and item["renewal_paid"] is False
    # registered once, with the event in the same transaction
    rows = wait_until(lambda: suite.psql(
        "SELECT data::text FROM issuance.outbox WHERE type = 'issuance.cert.registered'"
        f" AND subject = {q(cert_id)}"), what="registered event")
    assert len(rows) == 1
    data = json.loads(rows[0][0])
    errors = list(schema("issuance.cert.registered").iter_errors(data))
    assert not errors, errors
    assert data["serial"] == leaf.serial and data["account_id"] == account
    assert data["issuer"] == leaf.issuer and data["lock_kind"] == "agent"
    assert data["platforms"] is None and data["platforms_known"] is False
    # the registry keeps the certificate itself and its key's identity
    row = suite.psql(f"SELECT source, key_type, length(pem) > 100, replaced_by IS NULL"
                     f" FROM issuance.certificates WHERE cert_id = {q(cert_id)}")
    assert row == [["login", "rsa", "t", "t"]]


def test_issuance_lock_bound_twice_registers_once(suite):
    token, account, phone = register_account(suite)
    leaf = make_leaf(suite, "ec", "personal", days=60)
    inject_lock_bound(suite, leaf, account, phone)
    inject_lock_bound(suite, leaf, account, phone)  # another event id, same certificate
    cert_id = wait_registered(suite, leaf.serial)
    wait_until(lambda: len(suite.psql(
        f"SELECT 1 FROM issuance.inbox i WHERE consumer = 'issuance-lock-bound'"
        f" AND event_id IN (SELECT id FROM issuance.outbox WHERE type = 'auth.lock.bound'"
        f" AND data->>'serial' = {q(leaf.serial)})")) == 2, what="both events applied")
    assert suite.psql(f"SELECT count(*) FROM issuance.certificates WHERE serial = {q(leaf.serial)}") == [["1"]]
    assert suite.psql("SELECT count(*) FROM issuance.outbox WHERE type = 'issuance.cert.registered'"
                      f" AND subject = {q(cert_id)}") == [["1"]]
    item = cert_item(suite, token, cert_id)
    assert item["type"] == "personal" and item["uscc"] is None and item["enterprise_name"] is None


def test_issuance_admin_sees_enterprise_others_their_own(suite):
    uscc = new_uscc()
    ent = f"范围测试{uuid.uuid4().hex[:4]}有限公司"
    master = make_leaf(suite, "sm2", "master", days=40, uscc=uscc, enterprise=ent)
    agent = make_leaf(suite, "rsa", "agent", days=20, uscc=uscc, enterprise=ent)
    outsider = make_leaf(suite, "rsa", "agent", days=20)
    admin_token, _ = ca_bind(suite, master)
    agent_token, _ = ca_bind(suite, agent)
    other_token, _ = ca_bind(suite, outsider)
    ids = {wait_registered(suite, x.serial) for x in (master, agent)}
    outsider_id = wait_registered(suite, outsider.serial)

    admin_items = certs(suite, admin_token)["items"]
    assert {i["id"] for i in admin_items} == ids
    # soonest notAfter first
    assert [i["serial"] for i in admin_items] == [agent.serial, master.serial]
    assert [i["serial"] for i in certs(suite, agent_token)["items"]] == [agent.serial]
    assert [i["id"] for i in certs(suite, other_token)["items"]] == [outsider_id]
    r = Api(suite).get("/api/v1/certs")
    assert r.status == 401 and r.code == "UNAUTHENTICATED"


def test_issuance_list_pages(suite):
    uscc = new_uscc()
    leaves = [make_leaf(suite, "rsa", "master", days=50, uscc=uscc)]
    leaves += [make_leaf(suite, "rsa", "project_lead", days=d, uscc=uscc) for d in (10, 30)]
    token, _ = ca_bind(suite, leaves[0])
    for leaf in leaves[1:]:
        ca_bind(suite, leaf)
    for leaf in leaves:
        wait_registered(suite, leaf.serial)
    seen, cursor = [], None
    for _ in range(5):
        page = certs(suite, token, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [i["serial"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [leaves[1].serial, leaves[2].serial, leaves[0].serial]
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "!!"}):
        r = Api(suite).get("/api/v1/certs?" + "&".join(f"{k}={v}" for k, v in bad.items()),
                           token=token)
        assert r.status == 400 and r.code == "BAD_REQUEST", (bad, r)


def test_issuance_list_reasons(suite):
    """未到年检时间 more than 90 days before notAfter; renewable when expired
    within 365 days; EXPIRED_TOO_LONG beyond; CERT_IN_OPEN_ORDER while an order
    awaits payment or a paid renewal is not used yet."""
    token, account, phone = register_account(suite)
    now = now_utc()
    day = datetime.timedelta(days=1)
    early = make_leaf(suite, "rsa", "personal", days=200)
    expired = make_leaf(suite, "rsa", "personal", not_before=now - 400 * day, not_after=now - 10 * day)
    ancient = make_leaf(suite, "sm2", "personal", not_before=now - 900 * day, not_after=now - 400 * day)
    ordered = make_leaf(suite, "ec", "personal", days=60)
    for leaf in (early, expired, ancient, ordered):
        inject_lock_bound(suite, leaf, account, phone)
    ids = {name: wait_registered(suite, leaf.serial)
           for name, leaf in (("early", early), ("expired", expired), ("ancient", ancient),
                              ("ordered", ordered))}
    items = {i["id"]: i for i in certs(suite, token)["items"]}
    assert items[ids["early"]]["renewable"] is False
    assert items[ids["early"]]["not_renewable_reason"] == "NOT_IN_RENEWAL_WINDOW"
    assert items[ids["early"]]["days_left"] in (199, 200)
    assert items[ids["expired"]]["renewable"] is True and items[ids["expired"]]["status"] == "expired"
    assert items[ids["expired"]]["days_left"] in (-10, -11)
    assert items[ids["ancient"]]["not_renewable_reason"] == "EXPIRED_TOO_LONG"
    assert items[ids["ordered"]]["renewable"] is True

    order_id = str(uuid.uuid4())
    inject(suite, "orders.order.created", order_id, {
        "order_id": order_id, "number": "PL1", "account_id": account, "identity_id": str(uuid.uuid4()),
        "total_fen": 100, "expires_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"cert_id": ids["ordered"], "price_fen": 100, "platforms": ["LN_JSGC"],
                   "lines": [], "dropped": []}]})
    wait_until(lambda: cert_item(suite, token, ids["ordered"])["not_renewable_reason"] == "CERT_IN_OPEN_ORDER",
               what="open order seen")
    inject(suite, "orders.order.cancelled", order_id, {"order_id": order_id, "number": "PL1",
                                                       "status": "cancelled"})
    wait_until(lambda: cert_item(suite, token, ids["ordered"])["renewable"] is True,
               what="cancelled order forgotten")
    pay(suite, ids["ordered"], ["LN_JSGC"], account)
    item = cert_item(suite, token, ids["ordered"])
    assert item["not_renewable_reason"] == "CERT_IN_OPEN_ORDER" and item["renewal_paid"] is True
