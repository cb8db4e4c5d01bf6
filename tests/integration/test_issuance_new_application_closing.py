"""What ends a new certificate's application (issue 19) before it is issued,
through nginx: a member removed by the administrator (auth.identity.removed
reaches orders and issuance) can no longer be applied for, and the
application placed for them before closes; an application whose order
was cancelled, or refunded before the issue, is closed in issuance and its
issue refused with APPLICATION_CLOSED; one refunded while pending at the
vendor closes if the vendor then refuses it for good."""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import q  # noqa: E402
from client import Api, wait_until  # noqa: E402
from test_orders import applied, enterprise_admin, inject, iso, member, now  # noqa: E402
from test_orders_lifecycle import pay  # noqa: E402
from test_issuance_new_application import apply, application_recorded, challenge  # noqa: E402


def app_status(suite, cert_id):
    return suite.psql(f"SELECT status, closed_reason FROM issuance.applications WHERE id = {q(cert_id)}")


def test_issuance_new_application_refused_for_a_removed_member(suite):
    admin = enterprise_admin(suite)
    mem = member(suite, admin.uscc, "agent")
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM orders.identities WHERE identity_id = {q(mem.identity)}"), what="member known to orders")
    r = apply(suite, admin.token, ["LN_JSGC"], mem.identity)
    assert r.status == 201, r
    order, before = r.json["id"], r.json["items"][0]["cert_id"]
    application_recorded(suite, before)
    r = Api(suite).delete(f"/api/v1/auth/members/{mem.identity}", token=admin.token)
    assert r.status == 204, r
    # the unpaid application placed before the removal is cancelled in
    # orders and closed in issuance (by whichever event comes first)
    wait_until(lambda: suite.psql(f"SELECT status FROM orders.orders WHERE id = {q(order)}")
               == [["cancelled"]], timeout=15, what="orders cancelled the removed member's application")
    wait_until(lambda: app_status(suite, before)[0][0] == "closed", timeout=15,
               what="issuance closed the removed member's application")
    assert app_status(suite, before)[0][1] in ("holder_removed", "order_cancelled")
    r = Api(suite).get(f"/api/v1/orders/{order}", token=admin.token)
    assert r.status == 200 and r.json["status"] == "cancelled" and r.json["closed_at"], r
    r = challenge(suite, mem.token, before)
    assert r.status == 409 and r.code == "APPLICATION_CLOSED", r
    wait_until(lambda: suite.psql(
        f"SELECT reason FROM orders.removed_identities WHERE identity_id = {q(mem.identity)}")
        == [["removed_by_admin"]], what="auth.identity.removed reached orders")
    assert suite.psql(f"SELECT count(*) FROM orders.identities WHERE identity_id = {q(mem.identity)}") == [["0"]]
    r = apply(suite, admin.token, ["LN_JSGC"], mem.identity)
    assert r.status == 404 and r.code == "NOT_FOUND" and r.json["error"]["field"] == "member_identity_id", r
    # the administrator's own application is unaffected
    r = apply(suite, admin.token, ["LN_JSGC"])
    assert r.status == 201 and r.json["items"][0]["application"]["lock_kind"] == "master", r


def test_issuance_new_application_closed_when_its_order_is_cancelled(suite):
    admin = enterprise_admin(suite)
    r = apply(suite, admin.token, ["LN_JSGC"])
    assert r.status == 201, r
    order, cert_id = r.json["id"], r.json["items"][0]["cert_id"]
    application_recorded(suite, cert_id)
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 409 and r.code == "APPLICATION_NOT_PAID", r
    r = Api(suite).post(f"/api/v1/orders/{order}/cancel", token=admin.token)
    assert r.status == 200 and r.json["status"] == "cancelled", r
    wait_until(lambda: app_status(suite, cert_id) == [["closed", "order_cancelled"]], timeout=15,
               what="issuance closed the application")
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 409 and r.code == "APPLICATION_CLOSED", r


def test_issuance_new_application_closed_when_refunded_before_the_issue(suite):
    """A full refund of the paid application before the holder sent the CSR
    closes it (orders.order.refunded); a refund after the issue revokes
    nothing (the administrator cancels the certificate: 注销)."""
    admin = enterprise_admin(suite)
    r = apply(suite, admin.token, ["LN_JSGC"])
    assert r.status == 201, r
    order = r.json
    cert_id = order["items"][0]["cert_id"]
    application_recorded(suite, cert_id)
    payment = pay(suite, order)
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM issuance.entitlements WHERE cert_id = {q(cert_id)}"), timeout=15,
        what="the paid application reached issuance")
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 200, r
    applied(suite, inject(suite, "payments.payment.refunded", payment, {
        "refund_id": str(uuid.uuid4()), "payment_id": payment, "order_id": order["id"],
        "amount_fen": order["total_fen"], "refunded_total_fen": order["total_fen"], "full": True,
        "reason": "客户申请退款", "refunded_at": iso(now())}))
    r = Api(suite).get(f"/api/v1/orders/{order['id']}", token=admin.token)
    assert r.status == 200 and r.json["status"] == "refunded", r
    assert suite.psql(f"SELECT data->>'refunded_fen', data->'items'->0->>'cert_id' FROM orders.outbox"
                      f" WHERE type = 'orders.order.refunded' AND subject = {q(order['id'])}") == \
        [[str(order["total_fen"]), cert_id]]
    wait_until(lambda: app_status(suite, cert_id) == [["closed", "order_refunded"]], timeout=15,
               what="issuance closed the refunded application")
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 409 and r.code == "APPLICATION_CLOSED", r


def test_issuance_new_application_refunded_while_pending_closes_if_the_vendor_refuses(suite):
    """Refunded while pending at the vendor: not closed (the vendor may still
    issue it) but marked; a final refusal by the vendor then closes it
    instead of giving the entitlement back."""
    admin = enterprise_admin(suite)
    r = apply(suite, admin.token, ["LN_JSGC"])
    assert r.status == 201, r
    order = r.json
    cert_id = order["items"][0]["cert_id"]
    application_recorded(suite, cert_id)
    payment = pay(suite, order)
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM issuance.entitlements WHERE cert_id = {q(cert_id)}"), timeout=15,
        what="the paid application reached issuance")
    # the holder's CSR was sent: pending at the vendor, under a long lease
    serial = uuid.uuid4().hex[:16].upper()
    suite.psql(f"SET search_path = issuance; SELECT application_begin({q(cert_id)}, {q(admin.account)}, 'spki', 'csr',"
               f" {q(serial)}, 'cfca', now(), now() + interval '1 year', 600)")
    applied(suite, inject(suite, "payments.payment.refunded", payment, {
        "refund_id": str(uuid.uuid4()), "payment_id": payment, "order_id": order["id"],
        "amount_fen": order["total_fen"], "refunded_total_fen": order["total_fen"], "full": True,
        "reason": "客户申请退款", "refunded_at": iso(now())}))
    wait_until(lambda: suite.psql(f"SELECT status FROM issuance.applications WHERE id = {q(cert_id)}"
                                  " AND order_refunded_at IS NOT NULL") == [["pending"]], timeout=15,
               what="issuance marked the pending application refunded")
    suite.psql(f"SET search_path = issuance; SELECT application_failed({q(cert_id)}, 'refused', 1, true)")
    assert app_status(suite, cert_id) == [["closed", "order_refunded"]]
    assert suite.psql(f"SELECT status FROM issuance.entitlements WHERE cert_id = {q(cert_id)}") == [["reserved"]]
    r = challenge(suite, admin.token, cert_id)
    assert r.status == 409 and r.code == "APPLICATION_CLOSED", r
