"""enterprise, licence recognition (issue 20): a business licence uploaded
with ?purpose=business_license is read by Tesseract off the request; the
record's licence_check compares it field by field (green / red with both
values / unreadable) for the administrator, and the reviewer's queue and
view carry the same comparison and its flag. A mismatch, an unreadable photo,
a PDF or a picture of something else never blocks saving or submitting.

The licences are drawn by tests/tools/licence_gen.py (Noto CJK, PIL): a
handful of small images, one recognition each (~1-2 s of CPU)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import licence_gen  # noqa: E402

from client import wait_until  # noqa: E402
from test_enterprise_fixtures import (Staff, admin, assert_schema, complete_record,  # noqa: E402
                                      new_uscc, pdf_bytes, record_files)

NAME = "沈阳华信科技有限公司"
# what complete_record() fills in, as a licence prints it
PRINTED = {"legal_rep": "张三", "capital": "500万元人民币", "domicile": "辽宁省沈阳市和平区南京北街1号"}
COMPARED = ["name", "uscc", "legal_rep", "registered_capital", "domicile"]


def upload_licence(a, data, content_type):
    r = a.post_raw("/api/v1/files?purpose=business_license", data, content_type)
    assert r.status == 201, r
    return r.json


def save_with_licence(a, file_id, name=NAME):
    files = record_files(a)
    files["basic"]["business_license"] = file_id
    r = a.put("/api/v1/enterprise", complete_record(a.uscc, files, name=name))
    assert r.status == 200, r
    assert_schema("EnterpriseRecord", r.json)
    return r.json


def recognised(a):
    """The record once its licence's recognition has ended."""
    out = {}

    def ended():
        r = a.get("/api/v1/enterprise")
        assert r.status == 200, r
        out["rec"] = r.json
        return r.json["licence_check"]["status"] in ("done", "failed")
    wait_until(ended, timeout=60, interval=0.25, what="the licence recognition")
    return out["rec"]


def results(check):
    return {f["field"]: f for f in check["fields"]}


def submit_and_review(a):
    """Submits (never blocked by the licence) and returns the reviewer's
    queue item and view of the record."""
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200, r
    rid = r.json["id"]
    reviewer = Staff(a.suite)
    item = None
    cursor = None
    while item is None:
        r = reviewer.get("/api/v1/review/queue?kind=record&limit=100" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        item = next((i for i in r.json["items"] if i["id"] == rid), None)
        cursor = r.json["next_cursor"]
        assert item is not None or cursor, "record not in the queue"
    view = reviewer.get(f"/api/v1/review/records/{rid}")
    assert view.status == 200, view
    return item, view.json


def test_clean_matching_licence_is_all_green(suite):
    uscc = new_uscc()
    a = admin(suite, uscc=uscc, name=NAME)
    data, ctype, _ = licence_gen.generate(2001, "clean", name=NAME, uscc=uscc, **PRINTED)
    up = upload_licence(a, data, ctype)
    assert up["recognition"] == {"status": "pending", "reason": None, "message": None}
    rec = save_with_licence(a, up["file_id"])
    assert rec["licence_check"]["status"] in ("pending", "done")
    check = recognised(a)["licence_check"]
    assert check["status"] == "done", check
    got = results(check)
    for f in COMPARED:
        assert got[f]["result"] == "match", (f, got[f])
        assert got[f]["confidence"] >= 60, got[f]
    assert got["uscc"]["recognised"] == uscc
    assert got["registered_capital"]["record"] == "500万元"
    assert got["registered_capital"]["recognised"] == "500万元人民币"
    for f in ("type", "founded", "term"):
        assert got[f]["result"] == "not_compared", got[f]
        assert got[f]["record"] is None and got[f]["recognised"]
    assert check["flagged"] is False and check["reason"] is None
    item, view = submit_and_review(a)
    assert item["licence_check"]["flagged"] is False
    assert item["licence_check"]["status"] == "done"
    assert [f["result"] for f in view["licence_check"]["fields"]] == \
        [f["result"] for f in check["fields"]]
    # the members' public view carries none of it
    assert_schema("LicenceCheck", view["licence_check"])


def test_changed_name_and_uscc_are_red_with_both_values(suite):
    uscc = new_uscc()
    other = new_uscc()
    a = admin(suite, uscc=uscc, name=NAME)
    data, ctype, _ = licence_gen.generate(2002, "clean", name="沈阳恒通建设工程有限公司", uscc=other,
                                          **PRINTED)
    # uploaded without the purpose: the record naming it queues the recognition
    r = a.post_raw("/api/v1/files", data, ctype)
    assert r.status == 201 and "recognition" not in r.json, r
    save_with_licence(a, r.json["file_id"])
    check = recognised(a)["licence_check"]
    assert check["status"] == "done", check
    got = results(check)
    assert got["name"]["result"] == "mismatch", got["name"]
    assert got["name"]["record"] == NAME
    assert got["name"]["recognised"] == "沈阳恒通建设工程有限公司"
    assert got["uscc"]["result"] == "mismatch", got["uscc"]
    assert (got["uscc"]["record"], got["uscc"]["recognised"]) == (uscc, other)
    for f in ("legal_rep", "registered_capital", "domicile"):
        assert got[f]["result"] == "match", (f, got[f])
    assert check["flagged"] is True
    # the submission is allowed; the reviewer sees the flag and both values
    item, view = submit_and_review(a)
    assert item["licence_check"]["flagged"] is True
    vgot = results(view["licence_check"])
    assert vgot["name"]["result"] == "mismatch"
    assert vgot["uscc"]["recognised"] == other


def test_unreadable_photo_says_so(suite):
    a = admin(suite, name=NAME)
    data, ctype, _ = licence_gen.generate(2003, "photo", name=NAME, uscc=a.uscc, **PRINTED)
    up = upload_licence(a, data, ctype)
    save_with_licence(a, up["file_id"])
    check = recognised(a)["licence_check"]
    assert check["status"] == "failed", check
    assert check["reason"] == "unreadable"
    assert "模糊" in check["message"]
    assert {f["result"] for f in check["fields"]} == {"unreadable"}
    assert check["flagged"] is False
    item, _ = submit_and_review(a)
    assert item["licence_check"]["reason"] == "unreadable"


def test_pdf_or_other_picture_fails_with_a_reason_and_never_blocks(suite):
    a = admin(suite, name=NAME)
    # a PDF: failed at upload, nothing queued
    up = upload_licence(a, pdf_bytes("licence"), "application/pdf")
    assert up["recognition"]["status"] == "failed"
    assert up["recognition"]["reason"] == "unsupported_type"
    assert "PDF" in up["recognition"]["message"]
    assert_schema("FileInfo", up)
    assert suite.psql(f"SELECT status || '/' || reason FROM enterprise.licence_ocr WHERE file_id = '{up['file_id']}'"
                      ) == [["failed/unsupported_type"]]
    # a picture of something else: recognised, then failed as not a licence
    up = upload_licence(a, licence_gen.draw_other(7), "image/png")
    save_with_licence(a, up["file_id"])
    check = recognised(a)["licence_check"]
    assert check["status"] == "failed", check
    assert check["reason"] == "not_a_licence"
    assert check["message"]
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200, r
    assert r.json["status"] == "pending"
    # a bad purpose is refused before anything is stored
    r = a.post_raw("/api/v1/files?purpose=id_card", pdf_bytes("x"), "application/pdf")
    assert r.status == 422 and r.code == "FIELD_INVALID", r
    assert r.json["error"]["field"] == "purpose"


def test_recognition_left_running_by_a_crash_resumes_when_its_lease_ends(suite):
    """A recognition a dead process had claimed (its row running under a
    lease): the restarted service does not poll for it — its first round
    reads when the lease ends and the next round comes then — and the
    licence is recognised again."""
    import time
    uscc = new_uscc()
    a = admin(suite, uscc=uscc, name=NAME)
    data, ctype, _ = licence_gen.generate(2005, "clean", name=NAME, uscc=uscc, **PRINTED)
    up = upload_licence(a, data, ctype)
    save_with_licence(a, up["file_id"])
    assert recognised(a)["licence_check"]["status"] == "done"
    fid = up["file_id"]
    suite.kill("enterprise")  # SIGKILL
    suite.psql("UPDATE enterprise.licence_ocr SET status = 'running', fields = NULL, attempts = 1,"
               f" leased_until = now() + interval '4 seconds', finished_at = NULL WHERE file_id = '{fid}'")
    t0 = time.time()
    suite.start_service("enterprise")

    def row():
        return suite.psql(f"SELECT status, attempts FROM enterprise.licence_ocr WHERE file_id = '{fid}'")[0]
    time.sleep(max(0.0, 2.5 - (time.time() - t0)))
    assert row() == ["running", "1"], row()  # still under the dead process's lease
    wait_until(lambda: row() == ["done", "2"], timeout=30, interval=0.25, what="recognised after the lease")
    assert recognised(a)["licence_check"]["status"] == "done"
