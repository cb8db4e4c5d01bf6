"""What ends a new certificate's application (issue 19) before it is issued,
through nginx: a member removed by the administrator (auth.identity.removed
reaches orders) can no longer be applied for; an application whose order
was cancelled, or refunded before the issue, is closed in issuance and its
issue refused with APPLICATION_CLOSED."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "issuance"))
from kit import q  # noqa: E402
from client import Api, wait_until  # noqa: E402
from test_orders import enterprise_admin, member  # noqa: E402
from test_issuance_new_application import apply, application_recorded  # noqa: E402


def test_issuance_new_application_refused_for_a_removed_member(suite):
    admin = enterprise_admin(suite)
    mem = member(suite, admin.uscc, "agent")
    wait_until(lambda: suite.psql(
        f"SELECT 1 FROM orders.identities WHERE identity_id = {q(mem.identity)}"), what="member known to orders")
    r = Api(suite).delete(f"/api/v1/auth/members/{mem.identity}", token=admin.token)
    assert r.status == 204, r
    wait_until(lambda: suite.psql(
        f"SELECT reason FROM orders.removed_identities WHERE identity_id = {q(mem.identity)}")
        == [["removed_by_admin"]], what="auth.identity.removed reached orders")
    assert suite.psql(f"SELECT count(*) FROM orders.identities WHERE identity_id = {q(mem.identity)}") == [["0"]]
    r = apply(suite, admin.token, ["LN_JSGC"], mem.identity)
    assert r.status == 404 and r.code == "NOT_FOUND" and r.json["error"]["field"] == "member_identity_id", r
    # the administrator's own application is unaffected
    r = apply(suite, admin.token, ["LN_JSGC"])
    assert r.status == 201 and r.json["items"][0]["application"]["lock_kind"] == "master", r
