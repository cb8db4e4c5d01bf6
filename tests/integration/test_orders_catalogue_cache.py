"""GET /api/v1/platforms from orders' per-process cache (issue 16 part 5):
a strong ETag and 304 on If-None-Match; the session is still checked on
every request; a price set through the API shows at once (the cache is
dropped), one written behind the service's back (another process) within
CAPLAT_ORDER_CATALOGUE_CACHE_MS (2 s)."""
from client import Api, wait_until
from test_orders import person, staff_token

PATH = "/api/v1/platforms"


def sf_jsxm(r):
    return {p["code"]: p for p in r.json["items"]}["SF_JSXM"]


def test_orders_catalogue_cached_with_etag_and_dropped_on_price_change(suite):
    api = Api(suite)
    holder, other = person(suite, profile=False), person(suite, profile=False)
    first = api.get(PATH, token=holder.token)
    assert first.status == 200, first
    etag = first.headers.get("ETag") or first.headers.get("Etag")
    assert etag and etag.startswith('"') and etag.endswith('"'), first.headers
    # the same answer for another holder; the client's copy: 304, no body
    again = api.get(PATH, token=other.token)
    assert again.status == 200 and again.json == first.json
    assert (again.headers.get("ETag") or again.headers.get("Etag")) == etag
    nm = api.get(PATH, token=holder.token, headers={"If-None-Match": etag})
    assert nm.status == 304 and not nm.raw, nm
    assert api.get(PATH, token=holder.token, headers={"If-None-Match": '"0"'}).status == 200
    # cached or not, no session, no catalogue
    assert api.get(PATH).status == 401
    assert api.get(PATH, token="x" * 43, headers={"If-None-Match": etag}).status == 401

    # a price set through the API: the next answer has it, with a new ETag
    op = staff_token(suite, "operator")
    base = (sf_jsxm(first)["renew_fen"], sf_jsxm(first)["add_fen"])
    r = api.post(f"{PATH}/SF_JSXM/prices", {"renew_fen": 5100, "add_fen": base[1],
                                             "reason": "缓存测试"}, token=op)
    assert r.status == 201, r
    now = api.get(PATH, token=holder.token, headers={"If-None-Match": etag})
    assert now.status == 200 and sf_jsxm(now)["renew_fen"] == 5100, now
    etag2 = now.headers.get("ETag") or now.headers.get("Etag")
    assert etag2 != etag

    # written behind this process's back (as another process would): seen
    # within the cache's bound
    suite.psql("INSERT INTO orders.platform_prices (platform, lock_kind, renew_fen, add_fen,"
               f" effective_at, reason) VALUES ('SF_JSXM', NULL, 5200, {base[1]}, now(), '缓存测试')")
    wait_until(lambda: sf_jsxm(api.get(PATH, token=holder.token))["renew_fen"] == 5200,
               timeout=5, what="a price written elsewhere shows within 2 s")

    r = api.post(f"{PATH}/SF_JSXM/prices", {"renew_fen": base[0], "add_fen": base[1],
                                             "reason": "恢复"}, token=op)
    assert r.status == 201, r
    assert sf_jsxm(api.get(PATH, token=holder.token))["renew_fen"] == base[0]


def test_orders_catalogue_cache_refuses_a_logged_out_session_at_once(suite):
    """The answer is cached, the session never: a token logged out (or every
    token of the account) is refused on the very next request, the cached
    catalogue and /auth/me alike."""
    api = Api(suite)
    a, b = person(suite, profile=False), person(suite, profile=False)
    for p in (a, b):
        assert api.get(PATH, token=p.token).status == 200
        assert api.get("/api/v1/auth/me", token=p.token).status == 200
    assert api.post("/api/v1/auth/logout", {}, token=a.token).status == 204
    r = api.get(PATH, token=a.token)
    assert r.status == 401 and r.code == "UNAUTHENTICATED", r
    assert api.get("/api/v1/auth/me", token=a.token).status == 401
    assert api.post("/api/v1/auth/logout/all", {}, token=b.token).status == 204
    assert api.get(PATH, token=b.token).status == 401
    assert api.get("/api/v1/auth/me", token=b.token).status == 401
