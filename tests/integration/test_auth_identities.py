"""auth, identities by proof and 人员管理 (issue 12), through nginx: nobody
acts for an enterprise by saying so. The administrator is proven by a master
lock naming the USCC or by an administrator application a reviewer approved
(enterprise.admin_application.approved, published here as the enterprise
service would: an outbox row of its schema); a member claim without a lock
is pending until the enterprise's administrator approves it; removal and
handover take effect in open sessions at once."""
import json
import os

from client import (Api, admin_application_approved, grant_admin, issue_cert, join_enterprise,
                    new_phone, new_uscc, register_account, wait_until)
from test_auth_ca import bind, ca_login, suite_redis_del

NAME = "沈阳某某测绘有限公司"
REFUSED_ENTERPRISE = ("NOT_ENTERPRISE_IDENTITY", "FORBIDDEN")


def person(suite):
    phone, token, account = register_account(suite)
    return phone, token, account


def claim(suite, token, uscc, role="project_lead", name=NAME):
    return Api(suite).post("/api/v1/auth/identities", {"type": "enterprise", "enterprise_name": name,
                                                        "uscc": uscc, "role": role}, token=token)


def identities(suite, token):
    r = Api(suite).get("/api/v1/auth/identities", token=token)
    assert r.status == 200, r
    return {i["id"]: i for i in r.json["identities"]}


def sms_texts(suite, phone):
    path = os.path.join(suite.sms_dir, f"{phone}.log")
    return open(path).read() if os.path.exists(path) else ""


def published(suite, type_, subject):
    def row():
        rows = suite.psql(f"SELECT data::text FROM auth.outbox WHERE type = '{type_}'"
                          f" AND subject = '{subject}' AND published_at IS NOT NULL")
        return rows[0] if rows else None
    return json.loads(wait_until(row, what=f"{type_} {subject} published")[0])


def audited(suite, action, object_id):
    rows = suite.psql("SELECT data::text FROM auth.audit_outbox WHERE type = 'auth.audit.recorded'"
                      f" AND data->>'action' = '{action}' AND data->>'object_id' = '{object_id}'")
    return [json.loads(r[0]) for r in rows]


def test_claiming_admin_without_proof_is_refused(suite):
    # The attack of issue 12: a phone account names any USCC and a role.
    api = Api(suite)
    _, token, _ = person(suite)
    uscc = new_uscc()
    r = claim(suite, token, uscc, "admin")
    assert r.status == 403 and r.code == "ADMIN_PROOF_REQUIRED" and r.json["error"]["field"] == "role", r
    assert "单位主锁" in r.json["error"]["message"] and "管理员申请" in r.json["error"]["message"]
    me = api.get("/api/v1/auth/me", token=token).json
    assert me["identities"] == [] and me["current_identity"] is None
    assert suite.psql(f"SELECT count(*) FROM auth.identities WHERE uscc = '{uscc}'") == [["0"]]
    # ... and the enterprise record stays closed to that session.
    r = api.get("/api/v1/enterprise", token=token)
    assert r.status == 403 and r.code in REFUSED_ENTERPRISE, r


def test_member_claim_is_pending_until_the_admin_approves(suite):
    api = Api(suite)
    uscc = new_uscc()
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, NAME)
    phone, token, account = person(suite)

    r = claim(suite, token, uscc, "agent")
    assert r.status == 202, r
    pending = r.json
    assert pending["status"] == "pending" and pending["source"] == "approval" and pending["role"] == "agent"
    assert claim(suite, token, uscc, "project_lead").code == "IDENTITY_EXISTS"

    # Pending grants nothing: not current, cannot be switched to, no event.
    me = api.get("/api/v1/auth/me", token=token).json
    assert me["current_identity"] is None
    assert me["identities"][0]["status"] == "pending"
    r = api.post(f"/api/v1/auth/identities/{pending['id']}/switch", token=token)
    assert r.status == 403 and r.code == "IDENTITY_NOT_ACTIVE", r
    r = api.get("/api/v1/enterprise", token=token)
    assert r.status == 403 and r.code in REFUSED_ENTERPRISE, r
    assert suite.psql(f"SELECT count(*) FROM auth.outbox WHERE type = 'auth.identity.added'"
                      f" AND subject = '{pending['id']}'") == [["0"]]
    assert audited(suite, "identity.applied", pending["id"])

    # The administrator sees the application in 人员管理 and approves it.
    r = api.get("/api/v1/auth/member-applications", token=boss)
    assert r.status == 200, r
    apps = {a["identity_id"]: a for a in r.json["applications"]}
    a = apps[pending["id"]]
    assert a["role"] == "agent" and a["status"] == "pending" and a["account_id"] == account
    assert a["phone_masked"] == phone[:3] + "****" + phone[-4:] and a["lock_bound"] is False
    r = api.post(f"/api/v1/auth/member-applications/{pending['id']}/approve", {}, token=boss)
    assert r.status == 200 and r.json["status"] == "active", r
    r = api.post(f"/api/v1/auth/member-applications/{pending['id']}/approve", {}, token=boss)
    assert r.status == 404 and r.code == "NOT_FOUND", r  # decided once

    mine = identities(suite, token)[pending["id"]]
    assert mine["status"] == "active" and mine["decided_at"]
    r = api.post(f"/api/v1/auth/identities/{pending['id']}/switch", token=token)
    assert r.status == 200 and r.json["current_identity"]["role"] == "agent", r
    assert api.get("/api/v1/enterprise", token=token).status == 200
    ev = published(suite, "auth.identity.added", pending["id"])
    assert ev["source"] == "approval" and ev["role"] == "agent" and ev["uscc"] == uscc
    assert audited(suite, "member.approved", pending["id"])
    r = api.get("/api/v1/auth/members", token=boss)
    assert r.status == 200, r
    members = {m["identity_id"]: m for m in r.json["members"]}
    assert members[pending["id"]]["status"] == "active" and members[pending["id"]]["since"]
    assert [m["role"] for m in r.json["members"]][0] == "admin"


def test_rejection_needs_an_opinion_the_applicant_sees(suite):
    api = Api(suite)
    uscc = new_uscc()
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, NAME)
    _, token, _ = person(suite)
    cid = claim(suite, token, uscc, "cost_engineer").json["id"]

    r = api.post(f"/api/v1/auth/member-applications/{cid}/reject", {}, token=boss)
    assert r.status == 422 and r.json["error"]["field"] == "opinion", r
    r = api.post(f"/api/v1/auth/member-applications/{cid}/reject", {"opinion": ""}, token=boss)
    assert r.status == 422 and r.json["error"]["field"] == "opinion", r
    r = api.post(f"/api/v1/auth/member-applications/{cid}/reject", {"opinion": "本单位无此造价师"},
                 token=boss)
    assert r.status == 200 and r.json["status"] == "rejected", r

    mine = identities(suite, token)[cid]
    assert mine["status"] == "rejected" and mine["opinion"] == "本单位无此造价师" and mine["decided_at"]
    r = api.post(f"/api/v1/auth/identities/{cid}/switch", token=token)
    assert r.status == 403 and r.code == "IDENTITY_NOT_ACTIVE", r
    r = api.get("/api/v1/auth/member-applications?status=rejected", token=boss)
    assert [a["opinion"] for a in r.json["applications"] if a["identity_id"] == cid] == ["本单位无此造价师"]
    assert api.get("/api/v1/auth/member-applications?status=bogus", token=boss).status == 422
    assert audited(suite, "member.rejected", cid)
    # A rejected claim may be made again: a new application.
    r = claim(suite, token, uscc, "cost_engineer")
    assert r.status == 202 and r.json["id"] != cid, r


def test_only_the_admin_decides(suite):
    api = Api(suite)
    uscc = new_uscc()
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, NAME)
    _, lead, _ = person(suite)
    join_enterprise(suite, lead, uscc, "project_lead", NAME)
    _, token, _ = person(suite)
    cid = claim(suite, token, uscc, "agent").json["id"]

    # A member of the enterprise is not its administrator.
    for method, path, body in [
            ("post", f"/api/v1/auth/member-applications/{cid}/approve", {}),
            ("post", f"/api/v1/auth/member-applications/{cid}/reject", {"opinion": "x"}),
            ("get", "/api/v1/auth/member-applications", None),
            ("get", "/api/v1/auth/members", None),
            ("post", "/api/v1/auth/admin/handover", {"identity_id": cid})]:
        r = getattr(api, method)(path, **({"body": body} if body is not None else {}), token=lead)
        assert r.status == 403 and r.code == "FORBIDDEN", (path, r)
        r = getattr(api, method)(path, **({"body": body} if body is not None else {}), token=token)
        assert r.status == 403 and r.code == "FORBIDDEN", (path, r)
    assert api.get("/api/v1/auth/members").status == 401
    # Another enterprise's administrator does not see this one's claims.
    _, other, _ = person(suite)
    grant_admin(suite, other, new_uscc(), "别家公司")
    r = api.post(f"/api/v1/auth/member-applications/{cid}/approve", {}, token=other)
    assert r.status == 404 and r.code == "NOT_FOUND", r
    assert identities(suite, token)[cid]["status"] == "pending"


def test_removed_member_loses_rights_in_open_sessions(suite):
    api = Api(suite)
    uscc = new_uscc()
    _, boss, _ = person(suite)
    boss_identity = grant_admin(suite, boss, uscc, NAME)
    phone, token, account = person(suite)
    lead_token = token
    mid = join_enterprise(suite, lead_token, uscc, "project_lead", NAME)
    # A second open session of the member, with the identity current too.
    r = api.post("/api/v1/auth/login", {"phone": phone, "password": "abc12345"})
    assert r.status == 200, r
    second = r.json["token"]
    assert api.get("/api/v1/auth/me", token=second).json["current_identity"]["id"] == mid
    assert api.get("/api/v1/enterprise", token=lead_token).status == 200

    r = api.delete(f"/api/v1/auth/members/{boss_identity}", token=boss)
    assert r.status == 409 and r.code == "CANNOT_REMOVE_ADMIN", r
    r = api.delete(f"/api/v1/auth/members/{mid}", token=boss)
    assert r.status == 204, r
    r = api.delete(f"/api/v1/auth/members/{mid}", token=boss)
    assert r.status == 404, r

    # Both open sessions act without the identity from their next request.
    for t in (lead_token, second):
        r = api.get("/api/v1/enterprise", token=t)
        assert r.status == 403 and r.code in REFUSED_ENTERPRISE, r
        assert api.get("/api/v1/auth/me", token=t).json["current_identity"] is None
    r = api.post(f"/api/v1/auth/identities/{mid}/switch", token=lead_token)
    assert r.status == 403 and r.code == "IDENTITY_NOT_ACTIVE", r
    assert identities(suite, lead_token)[mid]["status"] == "removed"
    r = api.get("/api/v1/auth/members", token=boss)
    assert mid not in {m["identity_id"] for m in r.json["members"]}
    ev = published(suite, "auth.identity.removed", mid)
    assert ev == {**ev, "identity_id": mid, "account_id": account, "uscc": uscc,
                  "role": "project_lead", "reason": "removed_by_admin"}
    entry = audited(suite, "identity.removed", mid)[0]
    assert entry["actor"]["id"] == api.get("/api/v1/auth/me", token=boss).json["account"]["id"]


def test_master_lock_replaces_an_admin_by_application(suite):
    api = Api(suite)
    uscc = new_uscc()
    name = "沈阳某某主锁有限公司"
    # A squatter cannot claim the admin identity before the lock holder...
    phone_a, token_a, account_a = person(suite)
    assert claim(suite, token_a, uscc, "admin", name).code == "ADMIN_PROOF_REQUIRED"
    # ... an administrator by application can exist, and is replaced.
    app_identity = grant_admin(suite, token_a, uscc, name)
    assert api.get("/api/v1/enterprise", token=token_a).status == 200

    cert = issue_cert(suite, "sm2", "master", "赵主锁", name, uscc)
    r, _ = ca_login(suite, cert)
    assert r.status == 200 and r.json["status"] == "binding_required", r
    phone_b = new_phone()
    r = bind(suite, r.json["bind_token"], phone_b, id_number="11010519491231002X")
    assert r.status == 200, r
    token_b = r.json["token"]
    me = api.get("/api/v1/auth/me", token=token_b).json
    assert me["current_identity"]["role"] == "admin" and me["current_identity"]["source"] == "lock"
    assert api.get("/api/v1/auth/members", token=token_b).status == 200

    # The replaced administrator's open session lost the identity at once.
    r = api.get("/api/v1/enterprise", token=token_a)
    assert r.status == 403 and r.code in REFUSED_ENTERPRISE, r
    assert identities(suite, token_a)[app_identity]["status"] == "removed"
    assert api.get("/api/v1/auth/members", token=token_a).status == 403
    # Both told by SMS; the events and the audit entries are out.
    wait_until(lambda: "取代" in sms_texts(suite, phone_a), what="SMS to the replaced admin")
    wait_until(lambda: "单位主锁" in sms_texts(suite, phone_b), what="SMS to the lock holder")
    ev = published(suite, "auth.identity.removed", app_identity)
    assert ev["reason"] == "replaced_by_master_lock" and ev["role"] == "admin"
    added = published(suite, "auth.identity.added", me["current_identity"]["id"])
    assert added["source"] == "lock" and added["role"] == "admin"
    granted = audited(suite, "identity.granted", me["current_identity"]["id"])
    assert granted and granted[0]["before"]["replaced_identity_id"] == app_identity
    assert granted[0]["actor"]["type"] == "account"
    assert audited(suite, "lock.bound", me["lock"]["id"])

    # A later application while a lock-proven administrator exists grants
    # nothing (audited).
    _, token_c, account_c = person(suite)
    application = admin_application_approved(suite, account_c, uscc, name)
    wait_until(lambda: audited(suite, "admin_application.ignored", application),
               what="ignored application audited")
    assert [i for i in identities(suite, token_c).values() if i.get("uscc") == uscc] == []
    assert audited(suite, "admin_application.ignored", application)[0]["after"]["reason"] == "lock_admin_exists"


def test_a_later_application_replaces_an_admin_by_application(suite):
    api = Api(suite)
    uscc = new_uscc()
    _, token_a, _ = person(suite)
    first = grant_admin(suite, token_a, uscc, NAME)
    _, token_b, _ = person(suite)
    grant_admin(suite, token_b, uscc, NAME)
    assert identities(suite, token_a)[first]["status"] == "removed"
    wait_until(lambda: api.get("/api/v1/auth/me", token=token_a).json["current_identity"] is None,
               what="replaced admin's session rewritten")
    assert published(suite, "auth.identity.removed", first)["reason"] == "replaced_by_application"


def test_an_approved_application_is_applied_once(suite):
    uscc = new_uscc()
    _, token, account = person(suite)
    grant_admin(suite, token, uscc, NAME)
    application = suite.psql(f"SELECT application_id FROM auth.identities WHERE account_id = '{account}'")[0][0]
    # The same application published again (another event id) grants nothing more.
    admin_application_approved(suite, account, uscc, NAME, application)
    wait_until(lambda: suite.psql(
        "SELECT count(*) FROM enterprise.outbox o JOIN auth.inbox i ON i.event_id = o.id"
        f" WHERE o.data->>'application_id' = '{application}'"
        " AND i.consumer = 'auth-admin-application-approved'") == [["2"]],
        what="second delivery consumed")
    assert suite.psql(f"SELECT count(*), min(status) FROM auth.identities WHERE uscc = '{uscc}'") == [["1", "active"]]


def test_a_member_lock_supersedes_a_pending_claim(suite):
    api = Api(suite)
    uscc = new_uscc()
    name = "沈阳某某先申请后绑锁有限公司"
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, name)
    phone, token, _ = person(suite)
    cid = claim(suite, token, uscc, "project_lead", name).json["id"]
    cert = issue_cert(suite, "ec", "agent", "孙代理", name, uscc)
    r, _ = ca_login(suite, cert)
    suite_redis_del(suite, f"sms:last:{phone}")  # the register code's cooldown
    r = bind(suite, r.json["bind_token"], phone)
    assert r.status == 200, r
    mine = identities(suite, r.json["token"])
    assert mine[cid]["status"] == "removed"
    active = [i for i in mine.values() if i["status"] == "active"]
    assert [(i["role"], i["source"]) for i in active] == [("agent", "lock")]
    r = api.get("/api/v1/auth/member-applications?status=pending", token=boss)
    assert cid not in {a["identity_id"] for a in r.json["applications"]}


def test_member_lock_makes_a_member_at_once_and_is_listed(suite):
    api = Api(suite)
    uscc = new_uscc()
    name = "沈阳某某锁成员有限公司"
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, name)
    cert = issue_cert(suite, "rsa", "project_lead", "钱项目", name, uscc)
    r, _ = ca_login(suite, cert)
    lock = r.json["lock"]
    phone = new_phone()
    r = bind(suite, r.json["bind_token"], phone)
    assert r.status == 200, r
    me = api.get("/api/v1/auth/me", token=r.json["token"]).json
    assert me["current_identity"]["role"] == "project_lead" and me["current_identity"]["status"] == "active"
    r = api.get("/api/v1/auth/members", token=boss)
    m = [x for x in r.json["members"] if x["identity_id"] == me["current_identity"]["id"]][0]
    assert m["name"] == "钱项目" and m["source"] == "lock" and m["lock_bound"] is True
    assert m["lock"]["kind"] == "project_lead" and m["lock"]["serial"] == lock["serial"]
    assert m["lock"]["not_after"] and m["lock"]["bound_at"]
    assert m["phone_masked"] == phone[:3] + "****" + phone[-4:]


def test_handover_makes_the_member_admin_and_the_admin_a_project_lead(suite):
    api = Api(suite)
    uscc = new_uscc()
    phone_a, boss, _ = person(suite)
    old_admin = grant_admin(suite, boss, uscc, NAME)
    phone_b, token_b, account_b = person(suite)
    member = join_enterprise(suite, token_b, uscc, "agent", NAME)

    r = api.post("/api/v1/auth/admin/handover", {}, token=boss)
    assert r.status == 422 and r.json["error"]["field"] == "identity_id", r
    r = api.post("/api/v1/auth/admin/handover", {"identity_id": old_admin}, token=boss)
    assert r.status == 404, r  # not to oneself
    r = api.post("/api/v1/auth/admin/handover", {"identity_id": member}, token=boss)
    assert r.status == 200, r
    h = r.json
    assert h["admin_account_id"] == account_b and h["previous_admin_role"] == "project_lead"

    # Both open sessions follow at once.
    cur_b = api.get("/api/v1/auth/me", token=token_b).json["current_identity"]
    assert cur_b["id"] == h["admin_identity_id"] and cur_b["role"] == "admin" and cur_b["source"] == "handover"
    cur_a = api.get("/api/v1/auth/me", token=boss).json["current_identity"]
    assert cur_a["id"] == h["previous_admin_identity_id"] and cur_a["role"] == "project_lead"
    assert api.get("/api/v1/auth/members", token=boss).status == 403
    r = api.get("/api/v1/auth/members", token=token_b)
    assert r.status == 200 and {m["role"] for m in r.json["members"]} == {"admin", "project_lead"}, r
    # The old session identities are ended; SMS to both; audited; events.
    assert identities(suite, boss)[old_admin]["status"] == "removed"
    wait_until(lambda: "移交" in sms_texts(suite, phone_a) and "移交" in sms_texts(suite, phone_b),
               what="handover SMS")
    assert audited(suite, "admin.handover", h["admin_identity_id"])
    assert published(suite, "auth.identity.added", h["admin_identity_id"])["source"] == "handover"
    assert published(suite, "auth.identity.removed", member)["reason"] == "handover"
    # The new administrator can remove the old one, now a member.
    r = api.delete(f"/api/v1/auth/members/{h['previous_admin_identity_id']}", token=token_b)
    assert r.status == 204, r


def test_personal_identities_stay_self_service(suite):
    api = Api(suite)
    _, token, _ = person(suite)
    r = api.post("/api/v1/auth/identities", {"type": "personal"}, token=token)
    assert r.status == 201 and r.json["status"] == "active" and r.json["source"] == "self", r
    me = api.get("/api/v1/auth/me", token=token).json
    assert me["current_identity"]["id"] == r.json["id"]


def test_approval_told_only_after_its_commit(suite):
    """auth dies after granting an approved administrator application but
    before its batch commits (crash point auth_crash_after_grant): the
    redelivered event grants the identity once, and the applicant is told
    by SMS once, by the batch that committed — never by the one that
    rolled back."""
    import signal
    import uuid
    phone, token, account = person(suite)
    uscc, name = new_uscc(), "辽宁提交后告知测试有限公司"
    told = "您的管理员申请已通过"
    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    suite.kill("auth", signal.SIGTERM)
    suite.start_service("auth", {"CAPLAT_FAULT": "auth_crash_after_grant", "CAPLAT_FAULT_ONCE": once})
    try:
        admin_application_approved(suite, account, uscc, name)
        wait_until(lambda: os.path.exists(once), timeout=30, what="auth crashed after the grant")
    finally:
        suite.kill("auth", signal.SIGTERM)
        suite.start_service("auth", {})
    wait_until(lambda: suite.psql(f"SELECT count(*) FROM auth.identities WHERE uscc = '{uscc}'"
                                  " AND role = 'admin' AND status = 'active'") == [["1"]],
               timeout=30, what="the grant applied after the restart")
    wait_until(lambda: told in sms_texts(suite, phone), timeout=15, what="the approval SMS")
    assert sms_texts(suite, phone).count(told) == 1, sms_texts(suite, phone)


def test_removal_reaches_open_sessions_after_a_crash(suite):
    """auth dies after a removal commits and before the member's open
    sessions are rewritten (crash point auth_crash_before_sessions_drop):
    the session_drops sweep of the restarted auth rewrites them, so the
    removed member's session — which every service trusts — loses the
    identity, in enterprise and orders alike (080_session_drops.sql). A
    removal whose rewrite ran is marked at once."""
    import signal
    import uuid
    api = Api(suite)
    uscc = new_uscc()
    _, boss, _ = person(suite)
    grant_admin(suite, boss, uscc, NAME)
    _, token, _ = person(suite)
    mid = join_enterprise(suite, token, uscc, "project_lead", NAME)
    _, other, _ = person(suite)
    normal = join_enterprise(suite, other, uscc, "agent", NAME)
    assert api.get("/api/v1/enterprise", token=token).status == 200

    # The ordinary removal: rewritten and marked.
    assert api.delete(f"/api/v1/auth/members/{normal}", token=boss).status == 204
    wait_until(lambda: suite.psql(f"SELECT sessions_dropped_at IS NOT NULL FROM auth.identities"
                                  f" WHERE id = '{normal}'") == [["t"]], what="the rewrite marked")
    assert api.get("/api/v1/enterprise", token=other).status == 403

    once = os.path.join(suite.base, f"fault-{uuid.uuid4().hex[:6]}")
    suite.kill("auth", signal.SIGTERM)
    suite.start_service("auth", {"CAPLAT_FAULT": "auth_crash_before_sessions_drop", "CAPLAT_FAULT_ONCE": once})
    try:
        try:
            r = api.delete(f"/api/v1/auth/members/{mid}", token=boss)
            assert r.status >= 500, r
        except (ConnectionError, OSError):
            pass
        wait_until(lambda: os.path.exists(once), timeout=30, what="auth crashed before the rewrite")
    finally:
        suite.kill("auth", signal.SIGTERM)
        suite.start_service("auth", {})
    # Committed, its sessions not rewritten: the sweep does it.
    assert suite.psql(f"SELECT status FROM auth.identities WHERE id = '{mid}'") == [["removed"]]
    wait_until(lambda: api.get("/api/v1/enterprise", token=token).status == 403, timeout=30,
               what="the removed member's open session rewritten by the sweep")
    r = api.get("/api/v1/enterprise", token=token)
    assert r.status == 403 and r.code in REFUSED_ENTERPRISE, r
    r = api.get("/api/v1/orders", token=token)
    assert r.status == 200 and r.json["items"] == [], r
    assert api.get("/api/v1/auth/me", token=token).json["current_identity"] is None
    assert suite.psql(f"SELECT sessions_dropped_at IS NOT NULL FROM auth.identities WHERE id = '{mid}'") == [["t"]]
