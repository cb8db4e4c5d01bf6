"""enterprise, administrator applications (管理员申请, issue 12): any account
files one with the enterprise's name and USCC, the applicant's ID number
(kept only hashed and masked; it must be the applicant's own when the
personal info names one) and an uploaded 授权委托书 of its own; it lists its
own applications with the status, the decision time and the opinion; one
pending application per (account, USCC); a reviewer finds it in the review
queue beside the records, reads it with the file, and approves or rejects
it with an opinion (required on reject), once; approval is refused while the
enterprise has a lock-proven administrator. Each submission and decision
writes its event (the approved one with exactly the agreed fields) and its
audit entry in the same transaction, and the applicant gets an SMS."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, wait_until  # noqa: E402
from test_enterprise_fixtures import (ID_NUMBER, ID_NUMBER_2, Staff, assert_event_data,  # noqa: E402
                                      assert_schema, events, jpeg_bytes, new_uscc, pdf_bytes,
                                      person, wait_published)

PATH = "/api/v1/enterprise/admin-applications"
MASKED = ID_NUMBER[:3] + "*" * 11 + ID_NUMBER[-4:]


def applicant(suite):
    """A fresh account with no identity, the way a new user arrives."""
    return person(suite)


def application(p, uscc=None, **over):
    body = {"enterprise_name": "辽宁管理员申请测试有限公司", "uscc": uscc or new_uscc(),
            "id_number": ID_NUMBER.lower(),
            "authorization_file_id": p.upload(pdf_bytes("授权委托书".encode().hex()), "application/pdf")}
    body.update(over)
    return body


def file_application(p, **over):
    body = application(p, **over)
    r = p.post(PATH, body)
    assert r.status == 201, r
    assert_schema("AdminApplication", r.json)
    return body, r.json


def audit_actions(suite, object_id):
    rows = suite.psql("SELECT data->>'action' FROM enterprise.audit_outbox WHERE type = 'enterprise.audit.recorded'"
                      f" AND data->>'object_id' = '{object_id}' ORDER BY seq")
    return [r[0] for r in rows]


def app_sms(suite, phone):
    path = os.path.join(suite.sms_dir, f"{phone}.log")
    if not os.path.exists(path):
        return []
    return [line for line in open(path, encoding="utf-8").read().splitlines()
            if "purpose=admin_application" in line]


def queue_item(reviewer, app_id):
    cursor = None
    while True:
        r = reviewer.get("/api/v1/review/queue?kind=admin_application&limit=100"
                         + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        for i in r.json["items"]:
            if i["id"] == app_id:
                return i
        cursor = r.json["next_cursor"]
        if not cursor:
            return None


def test_file_and_list_own(suite):
    p = applicant(suite)
    body, app = file_application(p)
    assert app["status"] == "pending" and app["opinion"] is None and app["decided_at"] is None
    assert app["uscc"] == body["uscc"] and app["enterprise_name"] == body["enterprise_name"]
    assert app["id_number"] == MASKED and app["authorization_file_id"] == body["authorization_file_id"]
    # Never stored in full: a keyed hash and the mask.
    row = suite.psql(f"SELECT id_number_hmac, id_number_masked FROM enterprise.admin_applications"
                     f" WHERE id = '{app['id']}'")[0]
    assert len(row[0]) == 64 and row[1] == MASKED
    assert suite.psql("SELECT count(*) FROM enterprise.admin_applications"
                      f" WHERE id_number_hmac LIKE '%{ID_NUMBER}%'")[0][0] == "0"
    r = p.get(PATH)
    assert r.status == 200, r
    assert [a["id"] for a in r.json["items"]] == [app["id"]] and r.json["next_cursor"] is None
    assert_schema("AdminApplication", r.json["items"][0])
    # Another account does not see it.
    assert applicant(suite).get(PATH).json["items"] == []
    # Filing is an event and an audit entry.
    (data, _), = wait_published(suite, "enterprise.admin_application.submitted", app["id"])
    assert_event_data("enterprise.admin_application.submitted", data)
    assert data["account_id"] == p.account_id and data["uscc"] == body["uscc"]
    assert audit_actions(suite, app["id"]) == ["enterprise.admin_application.submitted"]
    # A pending application grants nothing.
    r = p.get("/api/v1/enterprise")
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_IDENTITY", r
    # Staff file nothing; anonymous callers neither.
    r = Staff(suite).post(PATH, application(p))
    assert r.status == 403 and r.code == "FORBIDDEN", r
    assert Api(suite).post(PATH, {}).status == 401


def test_one_pending_application_per_enterprise(suite):
    p = applicant(suite)
    body, app = file_application(p)
    r = p.post(PATH, application(p, uscc=body["uscc"]))
    assert r.status == 409 and r.code == "APPLICATION_PENDING", r
    # Another enterprise, or another applicant for the same one: fine.
    file_application(p)
    file_application(applicant(suite), uscc=body["uscc"])
    assert len(p.get(PATH).json["items"]) == 2


def test_bad_input_is_refused_with_its_field(suite):
    p = applicant(suite)
    other = applicant(suite)
    cases = [
        ({"uscc": "91350100M000100Y44"}, 422, "USCC_INVALID", "uscc"),
        ({"uscc": "9135010"}, 422, "USCC_INVALID", "uscc"),
        ({"id_number": "110105194912310029"}, 422, "ID_NUMBER_INVALID", "id_number"),
        ({"id_number": 110105}, 400, "FIELD_TYPE", "id_number"),
        ({"enterprise_name": None}, 422, "FIELD_REQUIRED", "enterprise_name"),
        ({"enterprise_name": " 某公司"}, 422, "FIELD_INVALID", "enterprise_name"),
        ({"authorization_file_id": "nope"}, 422, "FILE_NOT_FOUND", "authorization_file_id"),
        ({"authorization_file_id": "00000000-0000-4000-8000-000000000000"}, 422, "FILE_NOT_FOUND",
         "authorization_file_id"),
        # Another account's upload is not the applicant's 授权委托书.
        ({"authorization_file_id": other.upload(jpeg_bytes(), "image/jpeg")}, 422, "FILE_NOT_FOUND",
         "authorization_file_id"),
        ({"role": "admin"}, 422, "FIELD_INVALID", "role"),
    ]
    for over, status, code, field in cases:
        r = p.post(PATH, application(p, **over))
        assert r.status == status and r.code == code, (over, r)
        assert r.json["error"].get("field") == field, (over, r)
    # The ID number must be the applicant's own once the personal info has one.
    assert p.put("/api/v1/profile", {"id_number": ID_NUMBER}).status == 200
    r = p.post(PATH, application(p, id_number=ID_NUMBER_2))
    assert r.status == 422 and r.code == "ID_NUMBER_MISMATCH" and r.json["error"]["field"] == "id_number", r
    assert p.get(PATH).json["items"] == []
    assert suite.psql("SELECT count(*) FROM enterprise.admin_applications"
                      f" WHERE account_id = '{p.account_id}'")[0][0] == "0"
    # With the matching number it is filed, and the reviewer sees the match.
    _, app = file_application(p)
    r = Staff(suite).get(f"/api/v1/review/admin-applications/{app['id']}")
    assert r.status == 200 and r.json["id_matches_profile"] is True, r


def test_reviewer_approves(suite):
    p = applicant(suite)
    body, app = file_application(p)
    reviewer = Staff(suite)
    item = queue_item(reviewer, app["id"])
    assert item is not None
    assert_schema("ReviewQueueItem", item)
    assert item["kind"] == "admin_application" and item["uscc"] == body["uscc"]
    assert item["name"] == body["enterprise_name"] and item["applicant_id_number"] == MASKED
    assert item["legal_rep_id_number"] is None and item["status"] == "pending"
    # The reviewer reads it with the file.
    # (The phone comes with auth.account.registered, on the bus.)
    r = wait_until(lambda: (lambda r: r if r.json.get("applicant_phone") else None)(
        reviewer.get(f"/api/v1/review/admin-applications/{app['id']}")), timeout=15, what="applicant phone")
    assert r.status == 200, r
    assert_schema("AdminApplicationReview", r.json)
    assert r.json["account_id"] == p.account_id and r.json["applicant_phone"] == p.phone[:3] + "****" + p.phone[-4:]
    assert r.json["id_matches_profile"] is None and r.json["lock_admin_exists"] is False
    f = reviewer.get(f"/api/v1/files/{r.json['authorization_file_id']}")
    assert f.status == 200 and f.headers.get("Content-Type") == "application/pdf", f
    # Neither the applicant nor finance decides.
    for who in (p, Staff(suite, "finance")):
        r = who.post(f"/api/v1/review/admin-applications/{app['id']}/approve", {})
        assert r.status == 403 and r.code == "FORBIDDEN", r
    r = reviewer.post(f"/api/v1/review/admin-applications/{app['id']}/approve", {"opinion": "授权委托书有效"})
    assert r.status == 200, r
    assert_schema("AdminApplicationReview", r.json)
    assert r.json["status"] == "approved" and r.json["decided_at"] and r.json["opinion"] == "授权委托书有效"
    staff_id = suite.psql("SELECT id FROM auth.staff WHERE username = 'reviewer'")[0][0]
    assert r.json["reviewer_id"] == staff_id
    # Once.
    for action, b in (("approve", {}), ("reject", {"opinion": "x"})):
        r2 = reviewer.post(f"/api/v1/review/admin-applications/{app['id']}/{action}", b)
        assert r2.status == 409 and r2.code == "APPLICATION_NOT_PENDING", r2
    assert queue_item(reviewer, app["id"]) is None
    # The event auth grants the identity on: exactly the agreed fields.
    (data, _), = wait_published(suite, "enterprise.admin_application.approved", app["id"])
    assert_event_data("enterprise.admin_application.approved", data)
    assert data == {"application_id": app["id"], "account_id": p.account_id, "uscc": body["uscc"],
                    "enterprise_name": body["enterprise_name"], "decided_at": r.json["decided_at"]}
    assert audit_actions(suite, app["id"]) == ["enterprise.admin_application.submitted",
                                               "enterprise.admin_application.approved"]
    mine = p.get(PATH).json["items"][0]
    assert mine["status"] == "approved" and mine["decided_at"] == r.json["decided_at"]
    sms = wait_until(lambda: app_sms(suite, p.phone), timeout=30, what="application SMS")
    assert len(sms) == 1 and "result=approved" in sms[0] and app["id"] in sms[0], sms
    assert ID_NUMBER not in open(os.path.join(suite.sms_dir, f"{p.phone}.log"), encoding="utf-8").read()


def test_reviewer_rejects_with_an_opinion(suite):
    p = applicant(suite)
    body, app = file_application(p)
    reviewer = Staff(suite)
    url = f"/api/v1/review/admin-applications/{app['id']}/reject"
    for b in ({}, {"opinion": "  "}):
        r = reviewer.post(url, b)
        assert r.status == 422 and r.code == "OPINION_REQUIRED" and r.json["error"]["field"] == "opinion", r
    opinion = "授权委托书未加盖公章"
    r = reviewer.post(url, {"opinion": opinion})
    assert r.status == 200 and r.json["status"] == "rejected" and r.json["opinion"] == opinion, r
    (data, _), = wait_published(suite, "enterprise.admin_application.rejected", app["id"])
    assert_event_data("enterprise.admin_application.rejected", data)
    assert data == {"application_id": app["id"], "account_id": p.account_id, "uscc": body["uscc"],
                    "opinion": opinion, "decided_at": r.json["decided_at"]}
    assert events(suite, "enterprise.admin_application.approved", app["id"]) == []
    mine = p.get(PATH).json["items"][0]
    assert mine["status"] == "rejected" and mine["opinion"] == opinion and mine["decided_at"]
    sms = wait_until(lambda: app_sms(suite, p.phone), timeout=30, what="application SMS")
    assert "result=rejected" in sms[0] and opinion in sms[0], sms
    # A rejected application grants nothing and blocks nothing: file again.
    _, again = file_application(p, uscc=body["uscc"])
    item = queue_item(reviewer, again["id"])
    assert item["resubmission"] is True
    for bad in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        r = reviewer.post(f"/api/v1/review/admin-applications/{bad}/approve", {})
        assert r.status == 404 and r.code == "NOT_FOUND", r
        assert reviewer.get(f"/api/v1/review/admin-applications/{bad}").status == 404


def publish_auth_event(suite, event_type, data):
    """Publishes an event as auth would (the CloudEvent on its subject), with
    build/bin/bustool: stands for auth's identities by proof (issue 12)."""
    import datetime
    import subprocess
    import uuid
    event_id = str(uuid.uuid4())
    envelope = {"specversion": "1.0", "id": event_id, "source": "/caplat/auth", "type": event_type,
                "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "subject": data["identity_id"], "datacontenttype": "application/json", "data": data}
    env = dict(os.environ, CAPLAT_NATS_URL=f"nats://127.0.0.1:{suite.ports['nats']}")
    subprocess.run([os.path.join(suite.build, "bin", "bustool"), "publish", f"caplat.{event_type}",
                    event_id, json.dumps(envelope)], env=env, check=True, capture_output=True)


def test_lock_proven_admin_refuses_approval(suite):
    import uuid
    p = applicant(suite)
    body, app = file_application(p)
    reviewer = Staff(suite)
    url = f"/api/v1/review/admin-applications/{app['id']}"
    # Another account binds the enterprise's master lock: auth says so with
    # auth.identity.added, source "lock".
    identity = {"identity_id": str(uuid.uuid4()), "account_id": str(uuid.uuid4()), "type": "enterprise",
                "enterprise_name": body["enterprise_name"], "uscc": body["uscc"], "role": "admin",
                "source": "lock"}
    publish_auth_event(suite, "auth.identity.added", identity)
    wait_until(lambda: reviewer.get(url).json["lock_admin_exists"], timeout=15, what="lock admin known")
    r = reviewer.post(f"{url}/approve", {})
    assert r.status == 409 and r.code == "ADMIN_EXISTS", r
    assert p.get(PATH).json["items"][0]["status"] == "pending"
    assert events(suite, "enterprise.admin_application.approved", app["id"]) == []
    assert audit_actions(suite, app["id"]) == ["enterprise.admin_application.submitted"]
    # An admin granted otherwise (an earlier application) does not block:
    # auth decides who is replaced. Once the lock holder's identity ends,
    # approval goes through.
    other = dict(identity, identity_id=str(uuid.uuid4()), account_id=str(uuid.uuid4()), source="application")
    publish_auth_event(suite, "auth.identity.added", other)
    wait_until(lambda: suite.psql("SELECT source FROM enterprise.members"
                                  f" WHERE identity_id = '{other['identity_id']}'") == [["application"]],
               timeout=15, what="application admin known")
    publish_auth_event(suite, "auth.identity.removed",
                       {"identity_id": identity["identity_id"], "account_id": identity["account_id"],
                        "uscc": body["uscc"], "role": "admin", "reason": "handover"})
    wait_until(lambda: not reviewer.get(url).json["lock_admin_exists"], timeout=15, what="lock admin gone")
    r = reviewer.post(f"{url}/approve", {})
    assert r.status == 200 and r.json["status"] == "approved", r
    json.dumps(r.json)


def test_claims_keep_reviewers_apart_on_applications(suite):
    """Claim and release of an application, as of a record: the claimer is
    shown in the queue and the application; another reviewer can neither
    claim, release nor decide it (RECORD_CLAIMED); release or the lease's
    expiry frees it; each claim and release is audited."""
    from test_enterprise_fixtures import second_reviewer
    p = applicant(suite)
    _, app = file_application(p)
    aid = app["id"]
    base = f"/api/v1/review/admin-applications/{aid}"
    one, two = Staff(suite), second_reviewer(suite)
    one_id = suite.psql("SELECT id FROM auth.staff WHERE username = 'reviewer'")[0][0]
    two_id = suite.psql("SELECT id FROM auth.staff WHERE username = 'reviewer2'")[0][0]
    r = one.get(base)
    assert r.status == 200 and r.json["claimed_by"] is None and r.json["claimed_until"] is None, r
    r = one.post(f"{base}/claim")
    assert r.status == 200, r
    assert_schema("AdminApplicationReview", r.json)
    until = r.json["claimed_until"]
    assert r.json["claimed_by"] == one_id and until and r.json["status"] == "pending"
    item = queue_item(two, aid)
    assert item["claimed_by"] == one_id and item["claimed_until"] == until
    assert two.get(base).json["claimed_by"] == one_id
    # While the claim runs, the other reviewer can neither take nor decide it.
    for action, body in [("claim", None), ("approve", {}), ("reject", {"opinion": "不行"}),
                         ("release", None)]:
        r = two.post(f"{base}/{action}", body)
        assert r.status == 409 and r.code == "RECORD_CLAIMED", (action, r)
    assert p.get(PATH).json["items"][0]["status"] == "pending"
    # Claiming again extends one's own claim; releasing frees it.
    assert one.post(f"{base}/claim").status == 200
    r = one.post(f"{base}/release")
    assert r.status == 200 and r.json["claimed_by"] is None and r.json["claimed_until"] is None, r
    assert_schema("AdminApplicationReview", r.json)
    assert queue_item(one, aid)["claimed_by"] is None
    r = two.post(f"{base}/claim")
    assert r.status == 200 and r.json["claimed_by"] == two_id, r
    r = one.post(f"{base}/approve", {})
    assert r.status == 409 and r.code == "RECORD_CLAIMED", r
    # An expired claim no longer holds (the lease ends behind the service's back).
    suite.psql(f"UPDATE enterprise.admin_applications SET claimed_until = now() - interval '1 s' WHERE id = '{aid}'")
    assert one.get(base).json["claimed_by"] is None
    assert queue_item(one, aid)["claimed_by"] is None
    # The claimer decides; the decision clears the claim; then nothing moves.
    assert one.post(f"{base}/claim").status == 200
    r = one.post(f"{base}/reject", {"opinion": "授权委托书不清晰"})
    assert r.status == 200 and r.json["status"] == "rejected" and r.json["claimed_by"] is None, r
    assert r.json["reviewer_id"] == one_id
    for action in ("claim", "release"):
        r = one.post(f"{base}/{action}")
        assert r.status == 409 and r.code == "APPLICATION_NOT_PENDING", (action, r)
    # Unknown ids, and people who are not reviewers.
    for bad in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        r = one.post(f"/api/v1/review/admin-applications/{bad}/claim")
        assert r.status == 404 and r.code == "NOT_FOUND", r
    for who in (p, Staff(suite, "finance")):
        r = who.post(f"{base}/claim")
        assert r.status == 403 and r.code == "FORBIDDEN", r
    assert audit_actions(suite, aid) == [
        "enterprise.admin_application.submitted",
        "enterprise.admin_application.claimed", "enterprise.admin_application.claimed",
        "enterprise.admin_application.released", "enterprise.admin_application.claimed",
        "enterprise.admin_application.claimed", "enterprise.admin_application.rejected"]


def test_claimer_approves_application(suite):
    p = applicant(suite)
    _, app = file_application(p)
    base = f"/api/v1/review/admin-applications/{app['id']}"
    reviewer = Staff(suite)
    r = reviewer.post(f"{base}/claim")
    assert r.status == 200 and r.json["claimed_by"], r
    r = reviewer.post(f"{base}/approve", {"opinion": "授权委托书有效"})
    assert r.status == 200 and r.json["status"] == "approved", r
    assert r.json["claimed_by"] is None and r.json["claimed_until"] is None
    assert queue_item(reviewer, app["id"]) is None
