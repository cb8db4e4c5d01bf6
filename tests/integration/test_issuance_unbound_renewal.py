"""issue 13 from end to end, through nginx: an imported certificate whose
holder never logged in is listed in CA管理, ordered and paid by the
enterprise's administrator (a real order and payment: orders, payments, the
payment simulator), and the holder, binding the key later, finds the paid
renewal on it and renews on the key; CA管理 then shows the successor, renewed,
with the platforms the administrator paid for."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kit import ca_bind, make_leaf, new_csr, q, renew, staff_token  # noqa: E402
from client import Api, wait_until  # noqa: E402
from test_issuance_import import catalogue_ready, cert_rows, row_of, run_import, to_csv  # noqa: E402
from test_orders import enterprise_admin, items, place  # noqa: E402
from test_payments import payment, sim_pay  # noqa: E402
from test_payments import pay as pay_order  # noqa: E402


def ca_item(suite, token, cert_id):
    r = Api(suite).get("/api/v1/certs?limit=100", token=token)
    assert r.status == 200, r
    got = [i for i in r.json["items"] if i["id"] == cert_id]
    return got[0] if got else None


def test_issuance_unbound_renewal_ordered_by_admin_then_renewed_on_the_key(suite):
    api = Api(suite)
    catalogue_ready(suite)
    admin = enterprise_admin(suite)
    leaf = make_leaf(suite, "ec", "agent", uscc=admin.uscc, days=20)
    done = run_import(suite, staff_token(suite), to_csv([row_of(leaf, ("LN_JSGC", "SY_GGZY"))]))
    assert done["inserted"] == 1, done
    cert_id = cert_rows(suite, [leaf.serial])[0][0]
    item = wait_until(lambda: ca_item(suite, admin.token, cert_id), what="CA管理 lists the imported certificate")
    assert item["bound"] is False and item["account_id"] is None and item["renewal_state"] == "renewable", item
    wait_until(lambda: suite.psql(f"SELECT 1 FROM orders.certs WHERE cert_id = {q(cert_id)}"), timeout=120,
               what="orders learned the imported certificate")

    # The administrator orders and pays the renewal: one platform kept, one added.
    r = place(suite, admin, items((cert_id, ["LN_JSGC", "LN_ZTB"])))
    assert r.status == 201, r
    order = r.json["id"]
    kinds = sorted((ln["platform"], ln["kind"]) for ln in r.json["items"][0]["lines"])
    assert kinds == [("LN_JSGC", "renew"), ("LN_ZTB", "add")], r.json
    wait_until(lambda: suite.psql(f"SELECT 1 FROM payments.orders WHERE id = '{order}'"), what="order in payments")
    r = pay_order(suite, admin.token, order, "alipay", {"type": "none"})
    assert r.status == 201, r
    sim_pay(suite, r.json["id"])
    wait_until(lambda: payment(suite, admin.token, r.json["id"])["status"] == "succeeded", what="paid")
    item = wait_until(lambda: (lambda i: i if i and i["renewal_state"] == "paid" else None)(
        ca_item(suite, admin.token, cert_id)), timeout=30, what="CA管理: paid, waiting for the holder")
    assert item["bound"] is False and item["renewal_paid"] is True, item

    # The holder logs in with the key for the first time: the same certificate,
    # the paid renewal waiting on it.
    token, account = ca_bind(suite, leaf)
    wait_until(lambda: cert_rows(suite, [leaf.serial])[0][7] == account, timeout=60,
               what="the binding reached the imported certificate")
    mine = wait_until(lambda: (lambda i: i if i and i.get("renewal_paid") else None)(
        ca_item(suite, token, cert_id)), timeout=30, what="the holder sees the paid renewal")
    assert mine["bound"] is True and mine["account_id"] == account, mine

    # ... and renews on the key.
    _, csr = new_csr(suite, leaf.key, leaf.cert, "ec")
    r = renew(suite, token, cert_id, leaf.key, csr)
    assert r.status == 201, r
    new = r.json
    assert new["cert_id"] == cert_id and new["serial"] != leaf.serial, new
    item = wait_until(lambda: (lambda i: i if i and i["renewal_state"] == "renewed" else None)(
        ca_item(suite, admin.token, cert_id)), timeout=30, what="CA管理: renewed")
    assert item["serial"] == new["serial"] and item["previous_serial"] == leaf.serial, item
    assert sorted(item["platforms"]) == ["LN_JSGC", "LN_ZTB"] and item["renewal_paid"] is False, item
    assert item["bound"] is True and item["days_left"] > 300, item
