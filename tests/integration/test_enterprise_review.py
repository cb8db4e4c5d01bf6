"""enterprise, review (审核): the reviewers' queue (oldest first, time waited
against the one-working-day target, pages), claims so that two reviewers
never decide the same record, approve / reject with an opinion, the history,
the events (checked against proto/events) and the SMS to the admin; the
whole submit → reject → resubmit → approve path through nginx with real
uploads; and changes after approval, which leave the approved data in force
until the change is approved."""
import concurrent.futures
import datetime
import os
import sys
import time

# The shared helpers (test_enterprise_fixtures) sit beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, wait_until  # noqa: E402
from test_enterprise_fixtures import (Staff, admin, assert_event_data,  # noqa: E402
                                      assert_schema, events, fill_record, png_bytes,
                                      second_reviewer, sms_lines, wait_published, wait_sms)


def submitted(suite, name="辽宁演示科技有限公司"):
    """A fresh admin whose complete record is pending; returns (admin, record)."""
    a = admin(suite, name=name)
    fill_record(a, name=name)
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200, r
    return a, r.json


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def queue_ids(reviewer, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = reviewer.get("/api/v1/review/queue" + (f"?{query}" if query else ""))
    assert r.status == 200, r
    return r


def test_only_reviewers_review(suite):
    a, rec = submitted(suite)
    rid = rec["id"]
    for who, status in [(Api(suite), 401), (a, 403), (Staff(suite, "finance"), 403)]:
        token = getattr(who, "token", None)
        api = Api(suite)
        for method, path in [("GET", "/api/v1/review/queue"), ("GET", f"/api/v1/review/records/{rid}"),
                             ("POST", f"/api/v1/review/records/{rid}/claim"),
                             ("POST", f"/api/v1/review/records/{rid}/approve"),
                             ("POST", f"/api/v1/review/records/{rid}/reject")]:
            r = api.get(path, token=token) if method == "GET" else \
                api.post(path, {"opinion": "x"}, token=token)
            assert r.status == status, (method, path, status, r)
            if status == 403:
                assert r.code == "FORBIDDEN"
    assert a.get("/api/v1/enterprise").json["status"] == "pending"


def test_queue_oldest_first_with_target_and_pages(suite):
    reviewer = Staff(suite)
    mine = [submitted(suite)[1]["id"] for _ in range(3)]
    # Make the first one two days old: past the one-working-day target.
    suite.psql(f"UPDATE enterprise.records SET submitted_at = now() - interval '4 days'"
               f" WHERE id = '{mine[0]}'")
    items, cursor, pages = [], None, 0
    while True:
        r = queue_ids(reviewer, limit=2, **({"cursor": cursor} if cursor else {}))
        pages += 1
        assert len(r.json["items"]) <= 2
        items += r.json["items"]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2
    times = [parse_time(i["submitted_at"]) for i in items]
    assert times == sorted(times)
    by_id = {i["id"]: i for i in items}
    assert set(mine) <= set(by_id)
    assert len(by_id) == len(items)  # no item twice across pages
    for i in items:
        assert_schema("ReviewQueueItem", i)
        assert i["status"] == "pending"
        assert parse_time(i["due_at"]) > parse_time(i["submitted_at"])
    old = by_id[mine[0]]
    assert old["overdue"] is True and old["waited_seconds"] >= 4 * 86400 - 5
    fresh = by_id[mine[2]]
    assert fresh["overdue"] is False and 0 <= fresh["waited_seconds"] < 120
    assert fresh["resubmission"] is False and fresh["change"] is False
    # Bad paging parameters.
    for q in ["limit=0", "limit=101", "limit=x", "cursor=notacursor", "cursor=AAAA"]:
        r = reviewer.get(f"/api/v1/review/queue?{q}")
        assert r.status == 400 and r.code == "BAD_REQUEST", (q, r)


def test_due_date_follows_the_working_day_calendar(suite):
    """A submission made on a Friday is due on Monday, unless Monday is a
    holiday (workday_exceptions), then on Tuesday."""
    reviewer = Staff(suite)
    _, rec = submitted(suite)
    friday = "2026-11-27 10:00:00+08"
    suite.psql(f"UPDATE enterprise.records SET submitted_at = '{friday}' WHERE id = '{rec['id']}'")

    def item():
        return [i for i in all_queue(reviewer) if i["id"] == rec["id"]][0]
    assert item()["due_at"] == "2026-11-30T02:00:00Z"
    suite.psql("INSERT INTO enterprise.workday_exceptions (day, workday, note)"
               " VALUES ('2026-11-30', false, 'test holiday') ON CONFLICT (day) DO NOTHING")
    try:
        assert item()["due_at"] == "2026-12-01T02:00:00Z"
    finally:
        suite.psql("DELETE FROM enterprise.workday_exceptions WHERE day = '2026-11-30'")


def test_claims_keep_reviewers_apart(suite):
    a, rec = submitted(suite)
    rid = rec["id"]
    one, two = Staff(suite), second_reviewer(suite)
    r = one.post(f"/api/v1/review/records/{rid}/claim")
    assert r.status == 200, r
    assert_schema("EnterpriseRecord", r.json)
    claimed_by, until = r.json["claimed_by"], r.json["claimed_until"]
    assert claimed_by and parse_time(until) > datetime.datetime.now(datetime.timezone.utc)
    item = [i for i in all_queue(one) if i["id"] == rid][0]
    assert item["claimed_by"] == claimed_by and item["claimed_until"] == until
    # While the claim runs, the other reviewer can neither take nor decide it.
    for action, body in [("claim", None), ("approve", {}), ("reject", {"opinion": "不行"}),
                         ("release", None)]:
        r = two.post(f"/api/v1/review/records/{rid}/{action}", body)
        assert r.status == 409 and r.code == "RECORD_CLAIMED", (action, r)
    assert a.get("/api/v1/enterprise").json["status"] == "pending"
    # Claiming again extends one's own claim; releasing frees it.
    assert one.post(f"/api/v1/review/records/{rid}/claim").status == 200
    r = one.post(f"/api/v1/review/records/{rid}/release")
    assert r.status == 200 and r.json["claimed_by"] is None, r
    assert two.post(f"/api/v1/review/records/{rid}/claim").status == 200
    # An expired claim no longer holds.
    suite.psql(f"UPDATE enterprise.records SET claimed_until = now() - interval '1 s' WHERE id = '{rid}'")
    assert one.get(f"/api/v1/review/records/{rid}").json["claimed_by"] is None
    r = one.post(f"/api/v1/review/records/{rid}/approve", {})
    assert r.status == 200 and r.json["status"] == "approved", r
    assert r.json["claimed_by"] is None


def all_queue(reviewer):
    items, cursor = [], None
    while True:
        r = queue_ids(reviewer, limit=100, **({"cursor": cursor} if cursor else {}))
        items += r.json["items"]
        cursor = r.json["next_cursor"]
        if cursor is None:
            return items


def test_two_reviewers_never_both_decide(suite):
    a, rec = submitted(suite)
    rid = rec["id"]
    sessions = [Staff(suite), second_reviewer(suite), Staff(suite), second_reviewer(suite)]

    def decide(i):
        s = sessions[i]
        if i % 2:
            return s.post(f"/api/v1/review/records/{rid}/approve", {})
        return s.post(f"/api/v1/review/records/{rid}/reject", {"opinion": "资料不全"})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(decide, range(4)))
    assert sorted(r.status for r in replies) == [200, 409, 409, 409], replies
    assert all(r.code == "RECORD_NOT_PENDING" for r in replies if r.status == 409)
    history = a.get("/api/v1/enterprise").json["history"]
    assert len(history) == 2 and history[0]["type"] == "submitted"
    assert history[1]["type"] in ("approved", "rejected")
    n = sum(len(events(suite, t, rid)) for t in ("enterprise.record.approved", "enterprise.record.rejected"))
    assert n == 1


def test_decision_refusals(suite):
    a, rec = submitted(suite)
    rid = rec["id"]
    reviewer = Staff(suite)
    for body, status, code in [({}, 422, "OPINION_REQUIRED"), ({"opinion": ""}, 422, "OPINION_REQUIRED"),
                               ({"opinion": "  \n "}, 422, "OPINION_REQUIRED"),
                               ({"opinion": None}, 422, "OPINION_REQUIRED"),
                               ({"opinion": 3}, 400, "FIELD_TYPE"),
                               ({"opinion": "长" * 1001}, 422, "FIELD_INVALID")]:
        r = reviewer.post(f"/api/v1/review/records/{rid}/reject", body)
        assert (r.status, r.code, r.json["error"]["field"]) == (status, code, "opinion"), (body, r)
    r = reviewer.post(f"/api/v1/review/records/{rid}/approve", {"opinion": 5})
    assert r.status == 400 and r.code == "FIELD_TYPE"
    assert a.get("/api/v1/enterprise").json["status"] == "pending"
    for path in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"]:
        for action in ("claim", "approve"):
            r = reviewer.post(f"/api/v1/review/records/{path}/{action}", {})
            assert r.status == 404 and r.code == "NOT_FOUND", r
        assert reviewer.get(f"/api/v1/review/records/{path}").status == 404
    # A draft is not waiting for review.
    d = admin(suite)
    draft_id = d.get("/api/v1/enterprise").json["id"]
    for action, body in [("claim", None), ("approve", {}), ("reject", {"opinion": "x"})]:
        r = reviewer.post(f"/api/v1/review/records/{draft_id}/{action}", body)
        assert r.status == 409 and r.code == "RECORD_NOT_PENDING", (action, r)


def test_submit_reject_resubmit_approve_end_to_end(suite):
    """The seed guide's path: 提交审核 → 审核不通过 with 处理意见 → 编辑企业信息 →
    重新提交审核 → 审核通过, through nginx with real uploads; every step in
    the history, every event in the outbox and on the bus, and the admin
    told each result by SMS."""
    a, rec = submitted(suite, name="辽宁端到端测试有限公司")
    rid = rec["id"]
    reviewer = Staff(suite)

    # The reviewer finds it, reads it, opens an attachment, claims it.
    assert rid in [i["id"] for i in all_queue(reviewer)]
    full = reviewer.get(f"/api/v1/review/records/{rid}")
    assert full.status == 200 and full.json["basic"]["name"] == "辽宁端到端测试有限公司"
    licence = full.json["basic"]["files"]["business_license"]
    f = reviewer.get(f"/api/v1/files/{licence}")
    assert f.status == 200 and f.headers["Content-Type"] == "image/png"
    assert reviewer.post(f"/api/v1/review/records/{rid}/claim").status == 200

    # 审核不通过 with an opinion.
    opinion = "统一社会信用代码与营业执照不一致，请核对后重新提交"
    r = reviewer.post(f"/api/v1/review/records/{rid}/reject", {"opinion": opinion})
    assert r.status == 200 and r.json["status"] == "rejected", r
    assert_schema("EnterpriseRecord", r.json)
    mine = a.get("/api/v1/enterprise").json
    assert mine["status"] == "rejected"
    assert [(h["seq"], h["type"], h["status"], h["opinion"]) for h in mine["history"]] == \
        [(1, "submitted", "pending", None), (2, "rejected", "rejected", opinion)]
    assert rid not in [i["id"] for i in all_queue(reviewer)]
    sms = wait_sms(suite, a.phone, 1)
    assert f"record={rid}" in sms[0] and "result=rejected" in sms[0] and opinion in sms[0]

    # 编辑企业信息: the record stays rejected until resubmitted.
    new_licence = a.upload(png_bytes(3))
    r = a.put("/api/v1/enterprise", {"basic": {"name": "辽宁端到端测试股份有限公司",
                                               "files": {"business_license": new_licence}}})
    assert r.status == 200 and r.json["status"] == "rejected", r
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200 and r.json["status"] == "pending", r
    items = [i for i in all_queue(reviewer) if i["id"] == rid]
    assert items and items[0]["resubmission"] is True and items[0]["seq"] == 3

    # 审核通过.
    r = reviewer.post(f"/api/v1/review/records/{rid}/approve", {"opinion": "资料齐全"})
    assert r.status == 200 and r.json["status"] == "approved", r
    mine = a.get("/api/v1/enterprise").json
    assert_schema("EnterpriseRecord", mine)
    assert mine["status"] == "approved" and mine["change"] is None and mine["approved_at"]
    assert mine["basic"]["name"] == "辽宁端到端测试股份有限公司"
    assert [(h["seq"], h["type"], h["status"]) for h in mine["history"]] == \
        [(1, "submitted", "pending"), (2, "rejected", "rejected"), (3, "submitted", "pending"),
         (4, "approved", "approved")]
    r = reviewer.post(f"/api/v1/review/records/{rid}/reject", {"opinion": "再驳回"})
    assert r.status == 409 and r.code == "RECORD_NOT_PENDING"
    sms = wait_sms(suite, a.phone, 2)
    assert "result=approved" in sms[1] and "辽宁端到端测试股份有限公司" in sms[1]
    time.sleep(1.5)
    assert len(sms_lines(suite, a.phone)) == 2  # each result told once

    # The events, as the other services receive them.
    subs = wait_published(suite, "enterprise.record.submitted", rid, 2)
    assert [d["seq"] for d, _ in subs] == [1, 3]
    (rej, _), = wait_published(suite, "enterprise.record.rejected", rid)
    (app, _), = wait_published(suite, "enterprise.record.approved", rid)
    for t, d in [("enterprise.record.submitted", subs[0][0]), ("enterprise.record.submitted", subs[1][0]),
                 ("enterprise.record.rejected", rej), ("enterprise.record.approved", app)]:
        assert_event_data(t, d)
        assert d["record_id"] == rid and d["uscc"] == a.uscc
    reviewer_id = suite.psql("SELECT id FROM auth.staff WHERE username = 'reviewer'")[0][0]
    assert rej["opinion"] == opinion and rej["seq"] == 2 and rej["reviewer_id"] == reviewer_id
    assert app["seq"] == 4 and app["name"] == "辽宁端到端测试股份有限公司"
    assert app["taxpayer_type"] == "general" and app["admin_account_id"] == a.account_id
    assert app["invoice"] == {"title": "辽宁端到端测试股份有限公司", "taxpayer_id": a.uscc,
                              "invoice_address": "辽宁省沈阳市和平区南京北街1号",
                              "invoice_phone": "024-23456789", "bank_name": "中国工商银行沈阳和平支行",
                              "bank_account": "3301001234567890123"}
    # Submitting an approved record without a change has nothing to submit.
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 409 and r.code == "RECORD_NOT_EDITABLE"


def test_change_after_approval(suite):
    """Editing an approved record opens a change: the approved data stays in
    force (status approved) until the change is approved; a rejected change
    leaves it untouched."""
    a, rec = submitted(suite, name="辽宁变更测试有限公司")
    rid = rec["id"]
    reviewer = Staff(suite)
    assert reviewer.post(f"/api/v1/review/records/{rid}/approve", {}).status == 200

    r = a.put("/api/v1/enterprise", {"invoice": {"bank_name": "招商银行沈阳分行"}})
    assert r.status == 200, r
    assert_schema("EnterpriseRecord", r.json)
    assert r.json["status"] == "approved"
    assert r.json["invoice"]["bank_name"] == "中国工商银行沈阳和平支行"       # in force
    assert r.json["change"]["status"] == "draft"
    assert r.json["change"]["invoice"]["bank_name"] == "招商银行沈阳分行"    # under way
    r = a.put("/api/v1/enterprise", {"invoice": {"bank_account": "6214830012345678"}})
    assert r.json["change"]["invoice"]["bank_account"] == "6214830012345678"
    assert r.json["change"]["invoice"]["bank_name"] == "招商银行沈阳分行"

    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200 and r.json["status"] == "approved" and r.json["change"]["status"] == "pending", r
    assert a.put("/api/v1/enterprise", {"invoice": {"bank_name": "x"}}).status == 409
    sub = wait_published(suite, "enterprise.record.submitted", rid, 2)[1][0]
    assert sub["change"] is True and sub["seq"] == 3

    r = reviewer.post(f"/api/v1/review/records/{rid}/reject", {"opinion": "开户许可证与账号不符"})
    assert r.status == 200 and r.json["status"] == "approved" and r.json["change"]["status"] == "rejected", r
    assert r.json["invoice"]["bank_name"] == "中国工商银行沈阳和平支行"
    assert r.json["history"][-1]["change"] is True and r.json["history"][-1]["status"] == "rejected"
    wait_sms(suite, a.phone, 2)

    r = a.post("/api/v1/enterprise/submit")  # resubmitted unchanged
    assert r.status == 200
    r = reviewer.post(f"/api/v1/review/records/{rid}/approve", {})
    assert r.status == 200 and r.json["change"] is None, r
    assert r.json["invoice"]["bank_name"] == "招商银行沈阳分行"
    assert r.json["invoice"]["bank_account"] == "6214830012345678"
    evs = wait_published(suite, "enterprise.record.approved", rid, 2)
    assert evs[1][0]["invoice"]["bank_name"] == "招商银行沈阳分行" and evs[1][0]["change"] is True
    assert_event_data("enterprise.record.approved", evs[1][0])
    sms = wait_sms(suite, a.phone, 3)
    assert "result=approved" in sms[2] and "变更" in sms[2]


def test_sms_does_not_wait_for_enterprise_read_model(suite):
    """The review SMS is told by auth's notices since issue 17: auth knows
    the admin's phone itself, so the result is sent once even while
    enterprise's accounts read model lacks it, and enterprise keeps no
    notification row to send."""
    a, rec = submitted(suite)
    rid = rec["id"]
    row = f"SELECT 1 FROM enterprise.accounts WHERE account_id = '{a.account_id}'"
    wait_until(lambda: suite.psql(row), timeout=15, what="accounts read model")
    suite.psql(f"DELETE FROM enterprise.accounts WHERE account_id = '{a.account_id}'")
    assert Staff(suite).post(f"/api/v1/review/records/{rid}/approve", {}).status == 200
    wait_published(suite, "enterprise.record.approved", rid)
    sms = wait_sms(suite, a.phone, 1, timeout=15)
    assert f"record={rid}" in sms[0] and "result=approved" in sms[0]
    assert suite.psql(f"SELECT count(*) FROM enterprise.notifications WHERE record_id = '{rid}'") == [["0"]]
    time.sleep(1.0)
    assert len(sms_lines(suite, a.phone)) == 1  # once
