"""Idempotency-Key, one behaviour in every service that creates (common/idem.h):
orders (POST /api/v1/orders), payments (POST /api/v1/payments) and refunds
(POST /api/v1/finance/refunds), black-box through nginx. The same request
with its JSON keys in another order or spaced otherwise is a replay of the
stored first response; another request under the same key is 409
IDEMPOTENCY_KEY_REUSED; a missing or malformed key is 400 naming the header;
an unfinished first request holds its key for CAPLAT_IDEMPOTENCY_LOCK_SECONDS;
the sweep purges keys older than CAPLAT_IDEMPOTENCY_RETENTION_HOURS (the
suite purges every second)."""
import hashlib
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, call, wait_until  # noqa: E402
from test_orders import assert_error, enterprise_admin, items, order_count, place, register_cert  # noqa: E402
import test_payments as pay  # noqa: E402

KEY = "Idempotency-Key"


def post_raw(suite, path, text, token, key):
    """A POST of the exact JSON text given (key order, spacing)."""
    return call(suite.gateway, "POST", path, raw=text.encode(), token=token,
                headers={KEY: key, "Content-Type": "application/json"})


def request_hash(path, body):
    """common/idem.c's hash: SHA-256 of "POST <path>\\n" and the hex SHA-256
    of the body's canonical JSON (sorted keys, no spacing, UTF-8)."""
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body_hash = hashlib.sha256(canon.encode()).hexdigest()
    return hashlib.sha256(f"POST {path}\n{body_hash}".encode()).hexdigest()


def replays(suite):
    text = call(suite.service_url("orders"), "GET", "/metrics").raw.decode()
    for line in text.splitlines():
        if line.startswith("caplat_orders_idempotent_replays_total "):
            return int(line.split()[1])
    raise AssertionError("caplat_orders_idempotent_replays_total not on /metrics")


def paid_payment(suite):
    """An account's succeeded payment of 10000 fen: (account token, payment)."""
    token, account = pay.register(suite)
    order = pay.new_order(suite, account, 10000)
    p = pay.pay(suite, token, order, "alipay", {"type": "none"}).json
    pay.sim_pay(suite, p["id"])
    wait_until(lambda: pay.payment(suite, token, p["id"])["status"] == "succeeded", what="paid")
    return token, p


# ---- replays ---------------------------------------------------------------------

def test_idempotency_orders_replay_with_keys_reordered(suite):
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    key = str(uuid.uuid4())
    first = place(suite, admin, {"items": [{"cert_id": cert, "platforms": ["LN_JSGC"]}]}, key)
    assert first.status == 201, first
    before = replays(suite)
    again = post_raw(suite, "/api/v1/orders",
                     '{ "items" : [ { "platforms" : ["LN_JSGC"], "cert_id" : "%s" } ] }' % cert,
                     admin.token, key)
    assert again.status == 201 and again.json == first.json, again
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert order_count(suite, admin) == 1
    assert replays(suite) == before + 1


def test_idempotency_payments_replay_with_keys_reordered(suite):
    token, account = pay.register(suite)
    order = pay.new_order(suite, account, 10000)
    key = str(uuid.uuid4())
    first = pay.pay(suite, token, order, "wechat", {"type": "e_normal", "email": "a@example.com"}, key)
    assert first.status == 201, first
    again = post_raw(suite, "/api/v1/payments",
                     '{"invoice": {"email": "a@example.com", "type": "e_normal"},'
                     ' "channel": "wechat", "order_id": "%s"}' % order, token, key)
    assert again.status == 201 and again.json == first.json, again
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert suite.psql(f"SELECT count(*) FROM payments.payments WHERE order_id = '{order}'") == [["1"]]


def test_idempotency_refunds_replay_with_keys_reordered(suite):
    _, p = paid_payment(suite)
    fin = pay.finance_token(suite)
    key = str(uuid.uuid4())
    first = Api(suite).post("/api/v1/finance/refunds",
                            {"payment_id": p["id"], "amount_fen": 100, "reason": "重复支付"},
                            token=fin, headers={KEY: key})
    assert first.status == 201, first
    again = post_raw(suite, "/api/v1/finance/refunds",
                     '{"reason":"重复支付","amount_fen":100,"payment_id":"%s"}' % p["id"], fin, key)
    assert again.status == 201 and again.json == first.json, again
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert suite.psql(f"SELECT count(*) FROM payments.refunds WHERE payment_id = '{p['id']}'") == [["1"]]


# ---- refusals --------------------------------------------------------------------

def test_idempotency_key_reused_with_another_request(suite):
    """Another body under a used key: 409 naming the header, nothing created."""
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    key = str(uuid.uuid4())
    assert place(suite, admin, items((cert, ["LN_JSGC"])), key).status == 201
    assert_error(place(suite, admin, items((cert, ["LN_JSGC", "LN_ZTB"])), key),
                 409, "IDEMPOTENCY_KEY_REUSED", KEY)
    assert order_count(suite, admin) == 1

    token, account = pay.register(suite)
    order = pay.new_order(suite, account, 500)
    assert pay.pay(suite, token, order, "alipay", {"type": "none"}, key).status == 201
    assert_error(pay.pay(suite, token, order, "wechat", {"type": "none"}, key),
                 409, "IDEMPOTENCY_KEY_REUSED", KEY)
    assert suite.psql(f"SELECT count(*) FROM payments.payments WHERE order_id = '{order}'") == [["1"]]

    _, p = paid_payment(suite)
    fin = pay.finance_token(suite)
    body = {"payment_id": p["id"], "amount_fen": 100, "reason": "x"}
    api = Api(suite)
    assert api.post("/api/v1/finance/refunds", body, token=fin, headers={KEY: key}).status == 201
    assert_error(api.post("/api/v1/finance/refunds", dict(body, amount_fen=101), token=fin,
                          headers={KEY: key}), 409, "IDEMPOTENCY_KEY_REUSED", KEY)
    assert suite.psql(f"SELECT count(*) FROM payments.refunds WHERE payment_id = '{p['id']}'") == [["1"]]


def test_idempotency_key_missing_or_invalid(suite):
    """No key, an empty one, one too long or not printable ASCII: 400 naming
    the header, in every service; 128 printable characters are a key."""
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    token, account = pay.register(suite)
    order = pay.new_order(suite, account, 500)
    fin = pay.finance_token(suite)
    api = Api(suite)
    cases = [("/api/v1/orders", items((cert, ["LN_JSGC"])), admin.token),
             ("/api/v1/payments", {"order_id": order, "channel": "alipay", "invoice": {"type": "none"}},
              token),
             ("/api/v1/finance/refunds", {"payment_id": str(uuid.uuid4()), "amount_fen": 1, "reason": "x"},
              fin)]
    for path, body, tok in cases:
        assert_error(api.post(path, body, token=tok), 400, "IDEMPOTENCY_KEY_MISSING", KEY)
        assert_error(api.post(path, body, token=tok, headers={KEY: ""}), 400, "IDEMPOTENCY_KEY_MISSING", KEY)
        for bad in ("x" * 129, "with space", "中文".encode().decode("latin-1")):
            assert_error(api.post(path, body, token=tok, headers={KEY: bad}), 400, "BAD_REQUEST", KEY)
    assert place(suite, admin, items((cert, ["LN_JSGC"])), "~" * 128).status == 201
    assert pay.pay(suite, token, order, "alipay", {"type": "none"}, "!" * 128).status == 201


def test_idempotency_payments_in_progress_until_the_lock_lapses(suite):
    """A first request still running (a key row without a response) holds the
    key; once silent past the lock (60 s) a retry of the same request takes it
    over. The row's hash is computed here the way the service does."""
    token, account = pay.register(suite)
    order = pay.new_order(suite, account, 500)
    body = {"order_id": order, "channel": "alipay", "invoice": {"type": "none"}}
    key = str(uuid.uuid4())
    suite.psql(f"INSERT INTO payments.idem_keys (scope, key, request_hash) VALUES"
               f" ('{account}', '{key}', '{request_hash('/api/v1/payments', body)}')")
    assert_error(pay.pay(suite, token, order, "alipay", {"type": "none"}, key), 409, "IDEMPOTENCY_IN_PROGRESS")
    suite.psql(f"UPDATE payments.idem_keys SET locked_at = now() - interval '2 minutes' WHERE key = '{key}'")
    r = pay.pay(suite, token, order, "alipay", {"type": "none"}, key)
    assert r.status == 201, r
    assert suite.psql(f"SELECT response_status FROM payments.idem_keys WHERE key = '{key}'") == [["201"]]


# ---- purge -----------------------------------------------------------------------

def test_idempotency_keys_purged_after_retention(suite):
    """Keys older than the retention (48 h) go with the sweep, in both
    services; younger ones stay. A purged key is free for a new request."""
    admin = enterprise_admin(suite)
    cert, _ = register_cert(suite, admin.uscc, admin.account, "master")
    cert2, _ = register_cert(suite, admin.uscc, admin.account, "master")
    old, young = str(uuid.uuid4()), str(uuid.uuid4())
    assert place(suite, admin, items((cert, ["LN_JSGC"])), old).status == 201
    assert place(suite, admin, items((cert2, ["LN_JSGC"])), young).status == 201

    token, account = pay.register(suite)
    orders = [pay.new_order(suite, account, 500) for _ in range(2)]
    assert pay.pay(suite, token, orders[0], "alipay", {"type": "none"}, old).status == 201
    assert pay.pay(suite, token, orders[1], "alipay", {"type": "none"}, young).status == 201

    for schema in ("orders", "payments"):
        suite.psql(f"UPDATE {schema}.idem_keys SET created_at = now() - interval '49 hours'"
                   f" WHERE key = '{old}'")
        wait_until(lambda: suite.psql(f"SELECT count(*) FROM {schema}.idem_keys"
                                      f" WHERE key = '{old}'") == [["0"]],
                   what=f"{schema}: old key purged")
        assert suite.psql(f"SELECT count(*) FROM {schema}.idem_keys WHERE key = '{young}'") == [["1"]]
    # The purged key now names a new request: no 409 for another body.
    cert3, _ = register_cert(suite, admin.uscc, admin.account, "master")
    r = place(suite, admin, items((cert3, ["LN_JSGC"])), old)
    assert r.status == 201 and "Idempotent-Replayed" not in r.headers, r
    assert order_count(suite, admin) == 3
