"""enterprise, least privilege on every read (issue 12, common/access.h):
the administrator reads the whole record; the enterprise's members (项目负责人,
授权委托人) read only its public part (name, USCC, status, handling point,
invoice title and taxpayer id) and neither edit, submit nor download its
attachments; reviewers and operators read any record in full and each such
read is audited (an enterprise.audit.recorded row in the outbox, written
before the answer); the review queue shows the legal representative's ID
number and phone only masked; a personal identity reads nothing."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api  # noqa: E402
from test_enterprise_fixtures import (ID_NUMBER, Staff, admin, assert_schema,  # noqa: E402
                                      fill_record, new_uscc, person)

# The public part, exactly (rules.c ent_public_fields).
PUBLIC_KEYS = {"id", "uscc", "status", "name", "handling_point", "invoice_title", "taxpayer_id",
               "approved_at"}
BANK_ACCOUNT = "3301001234567890123"   # complete_record's
LEGAL_REP_PHONE = "13912345678"


def member(suite, uscc, role="project_lead"):
    """A fresh account acting as a member (not the admin) of uscc. Today
    identities are self-service in auth; the one place to change when they
    become applications approved by the enterprise's administrator."""
    return person(suite).join(uscc, role)


def audit_rows(suite, action, object_id):
    rows = suite.psql("SELECT data::text FROM enterprise.audit_outbox WHERE type = 'enterprise.audit.recorded'"
                      f" AND data->>'action' = '{action}' AND data->>'object_id' = '{object_id}'"
                      " ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def with_record(suite):
    uscc = new_uscc()
    boss = admin(suite, uscc, name="辽宁最小权限测试有限公司")
    rec = fill_record(boss, name="辽宁最小权限测试有限公司")
    return uscc, boss, rec


def test_member_reads_only_the_public_part(suite):
    uscc, boss, rec = with_record(suite)
    for role in ("project_lead", "agent"):
        m = member(suite, uscc, role)
        r = m.get("/api/v1/enterprise")
        assert r.status == 200, r
        assert_schema("EnterpriseRecordPublic", r.json)
        assert set(r.json) == PUBLIC_KEYS, r.json
        assert r.json == {"id": rec["id"], "uscc": uscc, "status": "draft",
                          "name": "辽宁最小权限测试有限公司", "handling_point": "LN_SY",
                          "invoice_title": "辽宁最小权限测试有限公司", "taxpayer_id": uscc,
                          "approved_at": None}
        # No secret travels, under any key.
        raw = r.raw.decode()
        for secret in [ID_NUMBER, BANK_ACCOUNT, LEGAL_REP_PHONE, "legal_rep", "bank", "files",
                       "history"] + list(rec["basic"]["files"].values()):
            assert secret not in raw, (secret, raw)


def test_admin_reads_the_whole_record(suite):
    uscc, boss, rec = with_record(suite)
    r = boss.get("/api/v1/enterprise")
    assert r.status == 200, r
    assert_schema("EnterpriseRecord", r.json)
    assert r.json["basic"]["legal_rep_id_number"] == ID_NUMBER
    assert r.json["basic"]["legal_rep_phone"] == LEGAL_REP_PHONE
    assert r.json["invoice"]["bank_account"] == BANK_ACCOUNT
    assert r.json["basic"]["files"] == rec["basic"]["files"]
    assert r.json["history"] == []


def test_member_cannot_edit_submit_or_download(suite):
    uscc, boss, rec = with_record(suite)
    m = member(suite, uscc)
    r = m.put("/api/v1/enterprise", {"invoice": {"bank_account": "6222020200112233"}})
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_ADMIN", r
    r = m.post("/api/v1/enterprise/submit")
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_ADMIN", r
    assert boss.get("/api/v1/enterprise").json["invoice"]["bank_account"] == BANK_ACCOUNT
    # The enterprise's attachments: the admin and reviewers only.
    licence = rec["basic"]["files"]["business_license"]
    r = m.get(f"/api/v1/files/{licence}")
    assert r.status == 404 and r.code == "NOT_FOUND", r
    assert boss.get(f"/api/v1/files/{licence}").status == 200
    reviewer = Staff(suite)
    assert reviewer.get(f"/api/v1/files/{licence}").status == 200
    rows = audit_rows(suite, "enterprise.file.read", licence)
    assert rows and rows[-1]["actor"]["type"] == "staff", rows
    assert Staff(suite, "finance").get(f"/api/v1/files/{licence}").status == 404


def test_staff_full_reads_are_audited(suite):
    uscc, boss, rec = with_record(suite)
    rid = rec["id"]
    assert audit_rows(suite, "enterprise.record.read_full", rid) == []
    reviewer = Staff(suite)
    r = reviewer.get(f"/api/v1/review/records/{rid}")
    assert r.status == 200, r
    assert r.json["basic"]["legal_rep_id_number"] == ID_NUMBER
    rows = audit_rows(suite, "enterprise.record.read_full", rid)
    assert len(rows) == 1, rows
    entry = rows[0]
    assert entry["actor"]["type"] == "staff" and entry["object_type"] == "record"
    assert entry["uscc"] == uscc and entry["service"] == "enterprise"
    assert entry["actor"]["request_id"]
    staff_id = suite.psql("SELECT id FROM auth.staff WHERE username = 'reviewer'")[0][0]
    assert entry["actor"]["id"] == staff_id
    # Operators read full records too, audited alike; finance does not.
    r = Staff(suite, "operator").get(f"/api/v1/review/records/{rid}")
    assert r.status == 200, r
    assert len(audit_rows(suite, "enterprise.record.read_full", rid)) == 2
    r = Staff(suite, "finance").get(f"/api/v1/review/records/{rid}")
    assert r.status == 403 and r.code == "FORBIDDEN", r
    assert len(audit_rows(suite, "enterprise.record.read_full", rid)) == 2
    # The admin's own reads are not staff reads: nothing more recorded.
    boss.get("/api/v1/enterprise")
    assert len(audit_rows(suite, "enterprise.record.read_full", rid)) == 2


def test_staff_read_of_no_record_records_nothing(suite):
    """The full read's audit entry is written in the read's own transaction,
    from the record read (its USCC): a record that does not exist answers 404
    and leaves no entry."""
    import uuid
    rid = str(uuid.uuid4())
    r = Staff(suite, "operator").get(f"/api/v1/review/records/{rid}")
    assert r.status == 404 and r.code == "NOT_FOUND", r
    assert audit_rows(suite, "enterprise.record.read_full", rid) == []


def test_queue_masks_the_secrets(suite):
    uscc, boss, rec = with_record(suite)
    r = boss.post("/api/v1/enterprise/submit")
    assert r.status == 200, r
    reviewer = Staff(suite)
    items, cursor = [], None
    while True:
        r = reviewer.get("/api/v1/review/queue?kind=record&limit=100" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        assert ID_NUMBER not in r.raw.decode() and LEGAL_REP_PHONE not in r.raw.decode()
        items += r.json["items"]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    mine = [i for i in items if i["id"] == rec["id"]]
    assert len(mine) == 1, items
    item = mine[0]
    assert_schema("ReviewQueueItem", item)
    assert item["kind"] == "record"
    assert item["legal_rep_id_number"] == ID_NUMBER[:3] + "*" * 11 + ID_NUMBER[-4:]
    assert item["legal_rep_phone"] == "139****5678"
    assert item["applicant_id_number"] is None
    assert all(i["kind"] == "record" for i in items)
    r = reviewer.get("/api/v1/review/queue?kind=other")
    assert r.status == 400 and r.code == "BAD_REQUEST", r


def test_personal_identity_or_none_is_refused(suite):
    uscc, boss, rec = with_record(suite)
    nobody = person(suite)
    r = nobody.get("/api/v1/enterprise")
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_IDENTITY", r
    r = nobody.post("/api/v1/auth/identities", {"type": "personal"})
    assert r.status == 201, r
    assert nobody.post(f"/api/v1/auth/identities/{r.json['id']}/switch").status == 200
    for method, path in [("GET", "/api/v1/enterprise"), ("PUT", "/api/v1/enterprise"),
                         ("POST", "/api/v1/enterprise/submit")]:
        r = (nobody.get(path) if method == "GET" else
             nobody.put(path, {"basic": {"name": "x"}}) if method == "PUT" else nobody.post(path))
        assert r.status == 403 and r.code == "NOT_ENTERPRISE_IDENTITY", (method, r)
    # Not a reviewer: no full record by id either.
    r = nobody.get(f"/api/v1/review/records/{rec['id']}")
    assert r.status == 403 and r.code == "FORBIDDEN", r
    r = member(suite, uscc).get(f"/api/v1/review/records/{rec['id']}")
    assert r.status == 403 and r.code == "FORBIDDEN", r
    assert Api(suite).get("/api/v1/enterprise").status == 401


def test_review_actions_are_audited_with_the_enterprise(suite):
    uscc, boss, rec = with_record(suite)
    rid = boss.post("/api/v1/enterprise/submit").json["id"]
    (submitted,) = audit_rows(suite, "enterprise.record.submitted", rid)
    assert submitted["uscc"] == uscc and submitted["actor"]["type"] == "account"
    assert submitted["actor"]["id"] == boss.account_id and submitted["actor"]["role"] == "admin"
    reviewer = Staff(suite)
    assert reviewer.post(f"/api/v1/review/records/{rid}/claim").status == 200
    (claimed,) = audit_rows(suite, "enterprise.record.read_full", rid)
    assert claimed["uscc"] == uscc and claimed["actor"]["type"] == "staff"
    r = reviewer.post(f"/api/v1/review/records/{rid}/approve", {"opinion": "资料齐全"})
    assert r.status == 200 and r.json["status"] == "approved", r
    (decided,) = audit_rows(suite, "enterprise.record.approved", rid)
    assert decided["uscc"] == uscc and decided["after"] == {"opinion": "资料齐全"}
    # A refused action records nothing (its transaction rolled back).
    r = reviewer.post(f"/api/v1/review/records/{rid}/reject", {"opinion": "再驳回"})
    assert r.status == 409 and r.code == "RECORD_NOT_PENDING", r
    assert audit_rows(suite, "enterprise.record.rejected", rid) == []
    r = reviewer.post("/api/v1/review/records/00000000-0000-4000-8000-000000000000/claim")
    assert r.status == 404 and r.code == "NOT_FOUND", r
