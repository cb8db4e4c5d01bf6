"""CA管理 (issue 13) through nginx: the enterprise administrator lists every
certificate of the enterprise, bound or not, with every column (holder, lock
kind, vendor, key serial and vendor, first application, validity, days
left, platforms, bound, renewal state), filters, sorts, keyset pages and a
CSV export; a member sees only their own; another enterprise's
administrator sees none of them; the administrator orders the renewal of a
certificate whose holder never logged in, and the renewal state follows the
order (in an order, paid and waiting for the holder)."""
import csv
import datetime
import importlib.util
import io
import os
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import ca_bind, make_leaf, new_uscc, pay, q, wait_registered  # noqa: E402
from client import Api, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("orders_tests", os.path.join(HERE, "test_orders.py"))
_orders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_orders)

COLUMNS = {"id", "serial", "type", "holder", "vendor", "lock_kind", "enterprise_name", "uscc",
           "not_before", "not_after", "days_left", "renewable", "not_renewable_reason",
           "not_renewable_message", "platforms", "status", "renewal_paid", "issuer", "account_id",
           "previous_serial", "key_serial", "key_vendor", "applied_at", "bound", "renewal_state",
           "platforms_known"}


def join_enterprise(suite, token, uscc, role):
    """Makes the session `token` act as `role` (admin, project_lead, agent,
    cost_engineer) of the enterprise `uscc`. Today identities are self-service
    in auth (a key's binding may already have added it); when membership
    needs the administrator's approval, change this function only."""
    api = Api(suite)
    r = api.post("/api/v1/auth/identities", {"type": "enterprise", "enterprise_name": "沈阳某某建设有限公司",
                                             "uscc": uscc, "role": role}, token=token)
    if r.status == 409 and r.code == "IDENTITY_EXISTS":
        me = api.get("/api/v1/auth/me", token=token)
        identity = next(i["id"] for i in me.json["identities"] if i.get("uscc") == uscc)
    else:
        assert r.status == 201, r
        identity = r.json["id"]
    s = api.post(f"/api/v1/auth/identities/{identity}/switch", token=token)
    assert s.status == 200, s
    return identity


def enterprise_admin(suite, uscc):
    """An account acting as the enterprise's administrator, its personal info
    complete and the enterprise approved (what ordering needs)."""
    return _orders.enterprise_admin(suite, uscc=uscc)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def unbound_cert(suite, uscc, holder, kind="agent", vendor="CFCA", days_left=30, key_serial=None,
                 key_vendor=None, applied_at="2018-04-01T00:00:00Z", platforms=("LN_JSGC",)):
    """A certificate the registry knows before its holder ever logged in, as
    the vendor directory sync enters it (sync_certificate(): the lineage,
    the certificate and issuance.cert.registered)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    lineage, cert = str(uuid.uuid4()), str(uuid.uuid4())
    serial = uuid.uuid4().hex[:16].upper()
    issuer = f"CN={vendor} CA,O={vendor},C=CN"
    arr = "{" + ",".join(platforms) + "}"
    suite.psql(
        "SET search_path TO issuance, public; SELECT * FROM sync_certificate("
        f"'{lineage}', '{cert}', '{uuid.uuid4()}', {q(issuer)}, '{serial}', {q(vendor)}, NULL, NULL,"
        f" NULL, NULL, '{iso(now - datetime.timedelta(days=300))}',"
        f" '{iso(now + datetime.timedelta(days=days_left, hours=1))}', NULL, 'enterprise', {q(kind)},"
        f" {q(holder)}, '沈阳某某建设有限公司', {q(uscc)}, '{arr}', "
        f"{q(key_serial) if key_serial else 'NULL'}, {q(key_vendor) if key_vendor else 'NULL'},"
        f" '{applied_at}')")
    return lineage, serial


def certs(suite, token, **params):
    path = "/api/v1/certs" + ("?" + urllib.parse.urlencode(params) if params else "")
    return Api(suite).get(path, token=token)


def ids(r):
    assert r.status == 200, r
    return [i["id"] for i in r.json["items"]]


def all_pages(suite, token, limit, **params):
    seen, cursor = [], None
    while True:
        extra = dict(params, limit=limit)
        if cursor:
            extra["cursor"] = cursor
        r = certs(suite, token, **extra)
        assert r.status == 200 and len(r.json["items"]) <= limit, r
        seen += [i["id"] for i in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            return seen


def setup_enterprise(suite):
    uscc = new_uscc()
    admin = enterprise_admin(suite, uscc)
    a = unbound_cert(suite, uscc, "赵一", kind="agent", vendor="CFCA", days_left=20,
                     key_serial="FT-0001", key_vendor="飞天诚信", applied_at="2018-04-01T00:00:00Z",
                     platforms=("LN_JSGC", "DL_GGZY"))
    b = unbound_cert(suite, uscc, "钱二", kind="project_lead", vendor="GDCA", days_left=200,
                     key_serial="WQ-0002", key_vendor="握奇", applied_at="2016-01-01T00:00:00Z")
    c = unbound_cert(suite, uscc, "孙三", kind="master", vendor="CFCA", days_left=-10,
                     applied_at="2020-09-09T00:00:00Z")
    # a member whose own key is bound
    leaf = make_leaf(suite, "rsa", "project_lead", days=60, uscc=uscc, holder="李四")
    token, account = ca_bind(suite, leaf)
    bound_id = wait_registered(suite, leaf.serial)
    join_enterprise(suite, token, uscc, "project_lead")
    return uscc, admin, a, b, c, (bound_id, leaf, token, account)


def test_ca_manage_admin_lists_bound_and_unbound_with_every_column(suite):
    uscc, admin, a, b, c, (bound_id, leaf, member_token, account) = setup_enterprise(suite)
    r = certs(suite, admin.token)
    assert r.status == 200, r
    items = {i["id"]: i for i in r.json["items"]}
    assert set(items) == {a[0], b[0], c[0], bound_id}, items.keys()
    for i in items.values():
        assert set(i) == COLUMNS, set(i) ^ COLUMNS
    ia = items[a[0]]
    assert ia["holder"] == "赵一" and ia["lock_kind"] == "agent" and ia["vendor"] == "CFCA", ia
    assert ia["key_serial"] == "FT-0001" and ia["key_vendor"] == "飞天诚信", ia
    assert ia["applied_at"] == "2018-04-01T00:00:00.000Z" and ia["days_left"] == 20, ia
    assert ia["platforms"] == ["LN_JSGC", "DL_GGZY"] and ia["bound"] is False, ia
    assert ia["account_id"] is None and ia["renewal_state"] == "renewable" and ia["status"] == "valid", ia
    assert items[b[0]]["renewal_state"] == "not_due" and items[b[0]]["days_left"] == 200
    assert items[c[0]]["status"] == "expired" and items[c[0]]["renewal_state"] == "renewable"
    ib = items[bound_id]
    assert ib["bound"] is True and ib["account_id"] == account and ib["holder"] == "李四", ib
    # default order: soonest notAfter first
    assert ids(r) == [c[0], a[0], bound_id, b[0]]


def test_ca_manage_filters_sort_pages_and_csv(suite):
    uscc, admin, a, b, c, (bound_id, leaf, _, _) = setup_enterprise(suite)
    t = admin.token
    assert ids(certs(suite, t, status="expired")) == [c[0]]
    assert ids(certs(suite, t, status="valid")) == [a[0], bound_id, b[0]]
    assert ids(certs(suite, t, status="revoked")) == []
    assert ids(certs(suite, t, days_left_min=0, days_left_max=90)) == [a[0], bound_id]
    assert ids(certs(suite, t, days_left_max=20)) == [c[0], a[0]]
    assert ids(certs(suite, t, days_left_min=21)) == [bound_id, b[0]]
    assert ids(certs(suite, t, holder="钱")) == [b[0]]
    assert ids(certs(suite, t, vendor="GDCA")) == [b[0]]
    assert ids(certs(suite, t, lock_kind="master")) == [c[0]]
    assert ids(certs(suite, t, bound="false")) == [c[0], a[0], b[0]]
    assert ids(certs(suite, t, bound="true")) == [bound_id]
    assert ids(certs(suite, t, vendor="CFCA", status="valid")) == [a[0]]
    # sorts
    assert ids(certs(suite, t, sort="-not_after")) == [b[0], bound_id, a[0], c[0]]
    holders = [i["holder"] for i in certs(suite, t, sort="holder").json["items"]]
    assert holders == sorted(holders) and len(holders) == 4
    desc = [i["holder"] for i in certs(suite, t, sort="-holder").json["items"]]
    assert desc == holders[::-1]
    applied = [i["applied_at"] for i in certs(suite, t, sort="applied_at").json["items"]]
    assert applied[:3] == ["2016-01-01T00:00:00.000Z", "2018-04-01T00:00:00.000Z",
                          "2020-09-09T00:00:00.000Z"], applied
    # keyset pages: every certificate once, in order, for every sort
    for sort in ("not_after", "-not_after", "holder", "-holder", "applied_at", "-applied_at"):
        full = ids(certs(suite, t, sort=sort))
        assert all_pages(suite, t, 1, sort=sort) == full, sort
        assert all_pages(suite, t, 3, sort=sort) == full, sort
    # bad parameters change nothing and say which
    for bad, field in ((dict(sort="price"), "sort"), (dict(status="x"), "status"),
                       (dict(days_left_min="a"), "days_left_min"), (dict(lock_kind="boss"), "lock_kind"),
                       (dict(bound="yes"), "bound"), (dict(cursor="!!"), "cursor"),
                       (dict(limit=0), "limit"), (dict(format="xml"), "format")):
        r = certs(suite, t, **bad)
        assert r.status == 400 and r.code == "BAD_REQUEST" and r.json["error"]["field"] == field, (bad, r)
    # CSV export: the same rows and filters, a header line
    r = certs(suite, t, format="csv")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv"), r
    text = r.raw.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["cert_id"] for row in rows] == [c[0], a[0], bound_id, b[0]], rows
    ra = next(row for row in rows if row["cert_id"] == a[0])
    assert ra["holder"] == "赵一" and ra["key_serial"] == "FT-0001" and ra["platforms"] == "LN_JSGC;DL_GGZY"
    assert ra["bound"] == "false" and ra["renewal_state"] == "renewable" and ra["days_left"] == "20", ra
    rc = next(row for row in rows if row["cert_id"] == c[0])
    assert rc["days_left"] == "-10" and rc["status"] == "expired", rc
    r = certs(suite, t, format="csv", vendor="GDCA")
    assert [row["cert_id"] for row in csv.DictReader(io.StringIO(r.raw.decode("utf-8-sig")))] == [b[0]]
    r = certs(suite, t, format="csv", limit=2)
    assert len(list(csv.DictReader(io.StringIO(r.raw.decode("utf-8-sig"))))) == 2
    assert r.headers.get("X-Next-Cursor"), r.headers
    # a holder name a spreadsheet would run as a formula is written as text
    f = unbound_cert(suite, uscc, "=HYPERLINK(\"x\")", vendor="GDCA")
    r = certs(suite, t, format="csv", holder="=HYPERLINK")
    rows = list(csv.DictReader(io.StringIO(r.raw.decode("utf-8-sig"))))
    assert [(row["cert_id"], row["holder"]) for row in rows] == [(f[0], "'=HYPERLINK(\"x\")")], rows


def test_ca_manage_member_sees_own_and_other_admin_sees_nothing(suite):
    uscc, admin, a, b, c, (bound_id, leaf, member_token, _) = setup_enterprise(suite)
    assert ids(certs(suite, member_token)) == [bound_id]
    assert ids(certs(suite, member_token, bound="false")) == []
    other = enterprise_admin(suite, new_uscc())
    assert ids(certs(suite, other.token)) == []
    assert ids(certs(suite, other.token, holder="赵一")) == []
    r = certs(suite, other.token, format="csv")
    assert r.status == 200 and len(list(csv.DictReader(io.StringIO(r.raw.decode("utf-8-sig"))))) == 0


def test_ca_manage_admin_orders_renewal_for_never_logged_in_holder(suite):
    uscc, admin, a, b, c, _ = setup_enterprise(suite)
    cert_id = a[0]
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"),
               what="orders learned the unbound certificate")
    r = _orders.quote(suite, admin, _orders.items((cert_id, ["LN_JSGC"])))
    assert r.status == 200, r
    r = _orders.place(suite, admin, _orders.items((cert_id, ["LN_JSGC"])))
    assert r.status == 201, r
    wait_until(lambda: certs(suite, admin.token, holder="赵一").json["items"][0]["renewal_state"] == "in_order",
               what="the open order shows in CA管理")
    item = certs(suite, admin.token, holder="赵一").json["items"][0]
    assert item["bound"] is False and item["renewable"] is False, item
    # paid: waiting for the holder to bind and update the key
    pay(suite, cert_id, ["LN_JSGC"], admin.account)
    item = certs(suite, admin.token, holder="赵一").json["items"][0]
    assert item["renewal_state"] == "paid" and item["renewal_paid"] is True, item


def test_ca_manage_json_page_escapes_text_and_names_empty_platforms(suite):
    """The JSON page is written straight from the rows (issue 13's list
    latency): a holder with a quote, a backslash, a tab and a newline comes
    back exactly, and an empty platform set is [] (known), not null."""
    uscc = new_uscc()
    admin = enterprise_admin(suite, uscc)
    holder = '王"五\\六\t七\n八'
    lineage, _ = unbound_cert(suite, uscc, holder, platforms=())
    r = certs(suite, admin.token, holder='"五\\')
    assert r.status == 200, r
    [item] = r.json["items"]
    assert item["id"] == lineage and item["holder"] == holder, item
    assert item["platforms"] == [] and item["platforms_known"] is True, item
    assert set(item) == COLUMNS and r.json["next_cursor"] is None, item


def list_cache_hits(suite):
    """issuance's count of pages answered from its list cache (all of its
    processes behind nginx)."""
    from client import call
    total = 0
    for name in ["issuance"] + [n for n in suite.ports if n.startswith("issuance.")]:
        text = call(f"http://127.0.0.1:{suite.ports[name]}", "GET", "/metrics").raw.decode()
        total += sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith('caplat_issuance_total{what="list_cache_hit"}'))
    return total


def test_ca_manage_cached_pages_follow_every_write(suite):
    """The administrator's pages are answered from issuance's per-process
    cache while the enterprise's registry version (bumped by triggers on
    every write to lineages, certificates, open orders and entitlements,
    065_list_version.sql) is unchanged: a repeated page is a cache hit, and
    every kind of change, made the way other processes make it (SQL), shows
    on the very next page: a new certificate, a binding, a revocation, a
    platform change, a renewal's successor, an open order and its removal,
    a paid entitlement and its use, a lineage moving to another
    enterprise; a write to another enterprise does not clear this one's."""
    uscc, admin, a, b, c, (bound_id, leaf, _, _) = setup_enterprise(suite)
    t = admin.token

    def page():
        r = certs(suite, t)
        assert r.status == 200, r
        return {i["id"]: i for i in r.json["items"]}

    def item(cid):
        return page()[cid]

    def version(u):
        return int(suite.psql(f"SELECT issuance.cert_list_version({q(u)})")[0][0])

    # a repeated page is answered from the cache (once the writes that the
    # setup's events cause have settled)
    def hit():
        before = list_cache_hits(suite)
        p = page()
        return list_cache_hits(suite) > before and p
    first = wait_until(hit, what="a repeated page answered from the cache")
    assert set(first) == {a[0], b[0], c[0], bound_id}, first.keys()
    # another enterprise's write leaves this enterprise's version (and pages) alone
    for _ in range(5):
        mine, other = version(uscc), new_uscc()
        unbound_cert(suite, other, "周七")
        if version(uscc) == mine:
            break
    assert version(uscc) == mine and version(other) >= 1
    # a transaction's several writes to one enterprise bump it once
    for _ in range(5):
        before = version(other)
        suite.psql(f"""BEGIN;
            UPDATE issuance.lineages SET holder = '周七七' WHERE uscc = {q(other)};
            UPDATE issuance.certificates SET platforms = '{{DL_GGZY}}'
            WHERE cert_id IN (SELECT id FROM issuance.lineages WHERE uscc = {q(other)});
            COMMIT;""")
        if version(other) == before + 1:
            break
    assert version(other) == before + 1
    # a new certificate (vendor sync)
    d = unbound_cert(suite, uscc, "吴八", days_left=100)
    assert d[0] in page()
    # a binding (the holder logs in with the key)
    account = str(uuid.uuid4())
    suite.psql(f"UPDATE issuance.lineages SET account_id = {q(account)} WHERE id = {q(a[0])}")
    assert item(a[0])["bound"] is True and item(a[0])["account_id"] == account
    # platforms, then a revocation
    suite.psql(f"UPDATE issuance.certificates SET platforms = '{{DL_GGZY}}' WHERE cert_id = {q(b[0])}")
    assert item(b[0])["platforms"] == ["DL_GGZY"]
    suite.psql("UPDATE issuance.certificates SET revoked_at = now(), revocation_reason = 'superseded'"
               f" WHERE cert_id = {q(b[0])}")
    assert item(b[0])["status"] == "revoked" and item(b[0])["renewable"] is False
    # an open order, and its end
    order = str(uuid.uuid4())
    suite.psql(f"INSERT INTO issuance.open_orders (order_id, cert_id) VALUES ({q(order)}, {q(a[0])})")
    assert item(a[0])["renewal_state"] == "in_order"
    suite.psql(f"DELETE FROM issuance.open_orders WHERE order_id = {q(order)}")
    assert item(a[0])["renewal_state"] == "renewable"
    # a paid renewal (the orders.order.paid consumer), then its use
    pay(suite, a[0], ["LN_JSGC"], account)
    assert item(a[0])["renewal_state"] == "paid" and item(a[0])["renewal_paid"] is True
    suite.psql("UPDATE issuance.entitlements SET status = 'used', issuance_id = gen_random_uuid(),"
               f" used_at = now() WHERE cert_id = {q(a[0])}")
    assert item(a[0])["renewal_paid"] is False
    # a renewal's successor certificate: the page shows it and its predecessor's serial
    old_serial = item(a[0])["serial"]
    new_cert = str(uuid.uuid4())
    suite.psql(f"""
        BEGIN;
        CREATE TEMP TABLE prev ON COMMIT DROP AS
            SELECT * FROM issuance.certificates WHERE cert_id = {q(a[0])} AND replaced_by IS NULL;
        UPDATE issuance.certificates SET replaced_by = {q(new_cert)}
        WHERE cert_id = {q(a[0])} AND replaced_by IS NULL;
        INSERT INTO issuance.certificates (id, cert_id, issuer, serial, vendor, not_before, not_after,
                                           platforms, source, replaces)
        SELECT {q(new_cert)}, cert_id, issuer, 'ABCDEF0123', vendor, now(), now() + interval '730 days',
               platforms, 'renewal', id FROM prev;
        COMMIT;""")
    ia = item(a[0])
    assert ia["serial"] == "ABCDEF0123" and ia["previous_serial"] == old_serial, ia
    assert ia["renewal_state"] == "renewed" and ia["days_left"] >= 729, ia
    # the same page with a filter and the holder sort: cached, then changed
    assert ids(certs(suite, t, sort="holder", holder="吴八")) == [d[0]]
    suite.psql(f"UPDATE issuance.lineages SET holder = '郑九' WHERE id = {q(d[0])}")
    assert ids(certs(suite, t, sort="holder", holder="吴八")) == []
    # an empty page is cached with its version too (read by the page's own
    # statement, a row of NULLs), answered again from the cache, and a
    # write shows on it
    def empty_hit():
        before = list_cache_hits(suite)
        r = certs(suite, t, sort="holder", holder="吴八")
        assert r.status == 200 and r.json == {"items": [], "next_cursor": None}, r
        return list_cache_hits(suite) > before
    wait_until(empty_hit, what="an empty page answered from the cache")
    suite.psql(f"UPDATE issuance.lineages SET holder = '吴八' WHERE id = {q(d[0])}")
    assert ids(certs(suite, t, sort="holder", holder="吴八")) == [d[0]]
    # a lineage moving to another enterprise leaves this one's pages
    suite.psql(f"UPDATE issuance.lineages SET uscc = {q(new_uscc())} WHERE id = {q(c[0])}")
    assert c[0] not in page()


def test_ca_manage_concurrent_cached_pages_share_version_reads(suite):
    """Many concurrent pages of one enterprise share its version reads
    (one in flight per enterprise, the others wait for the next): every one
    is answered, and every page asked after a write shows it."""
    import concurrent.futures
    uscc, admin, a, b, c, _ = setup_enterprise(suite)
    t = admin.token

    def burst():
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda _: certs(suite, t, limit=100), range(48)))
        assert all(r.status == 200 for r in rs), [r for r in rs if r.status != 200][:1]
        return [{i["id"]: i for i in r.json["items"]} for r in rs]

    # once the writes that the setup's events cause (the member's joining)
    # have settled, as test_ca_manage_cached_pages_follow_every_write does:
    # a write landing amid the burst would make its pages differ
    def hit():
        before = list_cache_hits(suite)
        r = certs(suite, t, limit=100)
        return list_cache_hits(suite) > before and r
    wait_until(hit, what="a repeated page answered from the cache")
    # days left are counted to the second: a certificate issued N days
    # before its end shows N for its first second and N-1 after, so a burst
    # that starts right after the setup straddles that flip
    import time
    ends = [datetime.datetime.strptime(i["not_after"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() for i in certs(suite, t, limit=100).json["items"]]
    wait_until(lambda: all((e - time.time()) % 86400 > 5 for e in ends), what="days left settled for the burst")
    pages = burst()
    assert all(p == pages[0] for p in pages) and a[0] in pages[0]
    suite.psql(f"UPDATE issuance.lineages SET holder = '冯十' WHERE id = {q(a[0])}")
    assert all(p[a[0]]["holder"] == "冯十" for p in burst())
    suite.psql("UPDATE issuance.certificates SET revoked_at = now(), revocation_reason = 'superseded'"
               f" WHERE cert_id = {q(a[0])}")
    assert all(p[a[0]]["status"] == "revoked" for p in burst())


def test_ca_manage_list_version_folds_without_changing_and_grows_by_one_per_commit(suite):
    """The version (085_list_version_append.sql) is the folded base plus the
    appended bumps: each committed writing transaction raises it by one, a
    fold moves the bumps into the base without changing it (nor the cached
    page: still a hit), and a page after the next write shows that write."""
    uscc, admin, a, _, _, _ = setup_enterprise(suite)
    t = admin.token

    def version(u=uscc):
        return int(suite.psql(f"SELECT issuance.cert_list_version({q(u)})")[0][0])

    def appended(u=uscc):
        return int(suite.psql(f"SELECT count(*) FROM issuance.cert_list_changes WHERE uscc = {q(u)}")[0][0])

    def hit():
        before = list_cache_hits(suite)
        r = certs(suite, t)
        return list_cache_hits(suite) > before and r
    wait_until(hit, what="a repeated page answered from the cache")
    v0 = version()
    for i in range(3):
        suite.psql(f"UPDATE issuance.lineages SET holder = '褚{i}' WHERE id = {q(a[0])}")
    assert version() == v0 + 3
    # one fold for several enterprises, one of them without a base row yet
    other = new_uscc()
    unbound_cert(suite, other, "周七")
    vo = version(other)
    assert vo >= 1
    suite.psql(f"SELECT issuance.cert_list_fold(ARRAY[{q(uscc)}, {q(other)}])")
    assert appended() == 0 and version() == v0 + 3
    assert appended(other) == 0 and version(other) == vo
    r = wait_until(hit, what="the page cached again after the writes")
    assert {i["id"]: i for i in r.json["items"]}[a[0]]["holder"] == "褚2"
    suite.psql(f"SELECT issuance.cert_list_fold(ARRAY[{q(uscc)}])")
    assert version() == v0 + 3 and hit(), "a fold alone leaves the cached page valid"
    suite.psql(f"UPDATE issuance.lineages SET holder = '卫十' WHERE id = {q(a[0])}")
    assert version() == v0 + 4 and appended() <= 1  # (1 in 16 bumps folds itself)
    r = certs(suite, t)
    assert r.status == 200 and {i["id"]: i for i in r.json["items"]}[a[0]]["holder"] == "卫十", r
