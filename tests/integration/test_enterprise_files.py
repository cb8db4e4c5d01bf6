"""enterprise, attachments: upload by raw body through nginx (type from the
bytes matched to Content-Type, 5 MiB cap, SHA-256 content addressing in the
blob store) and who may read a file back (owner, the owner's enterprise
admin, reviewers — everyone else gets 404)."""
import hashlib
import os
import sys

# The shared helpers (test_enterprise_fixtures) sit beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api, call, wait_until  # noqa: E402
from test_enterprise_fixtures import (Staff, admin, assert_schema, jpeg_bytes,  # noqa: E402
                                      new_uscc, pdf_bytes, person, png_bytes)

MiB = 1024 * 1024


def test_upload_each_type_and_read_back(suite):
    p = person(suite)
    for data, ctype in [(png_bytes(), "image/png"), (jpeg_bytes(), "image/jpeg"),
                        (pdf_bytes("types"), "application/pdf")]:
        r = p.post_raw("/api/v1/files", data, ctype)
        assert r.status == 201, r
        assert_schema("FileInfo", r.json)
        assert r.json["sha256"] == hashlib.sha256(data).hexdigest()
        assert r.json["size"] == len(data) and r.json["content_type"] == ctype
        g = p.get(f"/api/v1/files/{r.json['file_id']}")
        assert g.status == 200 and g.raw == data, g
        assert g.headers["Content-Type"] == ctype
        assert g.headers["ETag"] == f'"{r.json["sha256"]}"'
        assert g.headers.get("X-Content-Type-Options") == "nosniff"
        # A cached copy is confirmed without the bytes.
        again = p.get(f"/api/v1/files/{r.json['file_id']}", headers={"If-None-Match": g.headers["ETag"]})
        assert again.status == 304 and again.raw == b"", again
    # Content-Type parameters and case do not matter.
    r = p.post_raw("/api/v1/files", png_bytes(), "IMAGE/PNG; charset=binary")
    assert r.status == 201 and r.json["content_type"] == "image/png", r


def test_upload_refusals_change_nothing(suite):
    p = person(suite)
    before = suite.psql(f"SELECT count(*) FROM enterprise.files WHERE owner_account_id = '{p.account_id}'")
    cases = [
        (png_bytes(), "image/gif", 422, "FILE_TYPE_UNSUPPORTED"),
        (png_bytes(), "image/jpg", 422, "FILE_TYPE_UNSUPPORTED"),
        (png_bytes(), None, 422, "FILE_TYPE_UNSUPPORTED"),
        (b"", "image/png", 422, "FILE_EMPTY"),
        (png_bytes(), "image/jpeg", 422, "FILE_TYPE_MISMATCH"),
        (jpeg_bytes(), "application/pdf", 422, "FILE_TYPE_MISMATCH"),
        (pdf_bytes(), "image/png", 422, "FILE_TYPE_MISMATCH"),
        (b"GIF89a" + b"\x00" * 20, "image/png", 422, "FILE_TYPE_MISMATCH"),
        (b"<html>%PDF-1.4", "application/pdf", 422, "FILE_TYPE_MISMATCH"),
    ]
    for data, ctype, status, code in cases:
        r = p.post_raw("/api/v1/files", data, ctype)
        assert (r.status, r.code) == (status, code), (ctype, data[:8], r)
        assert r.json["error"]["message"]
    after = suite.psql(f"SELECT count(*) FROM enterprise.files WHERE owner_account_id = '{p.account_id}'")
    assert before == after == [["0"]]


def test_upload_size_limit(suite):
    p = person(suite)
    pdf = pdf_bytes("big")
    exactly = pdf + b"\n" * (5 * MiB - len(pdf))
    r = p.post_raw("/api/v1/files", exactly, "application/pdf")
    assert r.status == 201 and r.json["size"] == 5 * MiB, r
    g = p.get(f"/api/v1/files/{r.json['file_id']}", timeout=30)
    assert g.status == 200 and len(g.raw) == 5 * MiB and g.raw == exactly
    # One byte over: the service's route limit; far over: the gateway's.
    r = p.post_raw("/api/v1/files", exactly + b"\n", "application/pdf")
    assert r.status == 413 and r.code == "BODY_TOO_LARGE", r
    r = p.post_raw("/api/v1/files", exactly + b"\n" * (2 * MiB), "application/pdf")
    assert r.status == 413 and r.code == "BODY_TOO_LARGE", r


def test_same_bytes_stored_once(suite):
    a, b = person(suite), person(suite)
    data = png_bytes(7, text="same-bytes-" + os.urandom(8).hex())  # unique bytes
    r1 = a.post_raw("/api/v1/files", data, "image/png")
    r2 = b.post_raw("/api/v1/files", data, "image/png")
    assert r1.status == r2.status == 201
    assert r1.json["file_id"] != r2.json["file_id"]
    sha = hashlib.sha256(data).hexdigest()
    assert r1.json["sha256"] == r2.json["sha256"] == sha
    blob = os.path.join(suite.base, "blobs", sha[:2], sha)
    assert os.path.exists(blob) and open(blob, "rb").read() == data
    leftovers = [f for f in os.listdir(os.path.dirname(blob)) if f.startswith(".tmp")]
    assert leftovers == []
    assert a.get(f"/api/v1/files/{r1.json['file_id']}").raw == data
    assert b.get(f"/api/v1/files/{r2.json['file_id']}").raw == data


def test_who_may_read_a_file(suite):
    uscc = new_uscc()
    boss = admin(suite, uscc)                      # the enterprise's admin
    lead = person(suite).join(uscc, "project_lead")  # a member who uploads
    stranger = person(suite)
    other_admin = admin(suite)                     # admin of another enterprise
    file_id = lead.upload()
    path = f"/api/v1/files/{file_id}"

    assert lead.get(path).status == 200
    # The admin learns who belongs to the enterprise from auth.identity.added.
    wait_until(lambda: boss.get(path).status == 200, timeout=15, what="admin reads member's file")
    for who in (stranger, other_admin):
        r = who.get(path)
        assert r.status == 404 and r.code == "NOT_FOUND", r
    # A member who is not the admin does not read the admin's files.
    boss_file = boss.upload()
    assert lead.get(f"/api/v1/files/{boss_file}").status == 404
    # Reviewers read every file; other staff do not.
    assert Staff(suite, "reviewer").get(path).status == 200
    r = Staff(suite, "finance").get(path)
    assert r.status == 404, r
    # Not logged in, malformed and unknown ids.
    assert Api(suite).get(path).status == 401
    assert lead.get("/api/v1/files/not-a-uuid").status == 404
    assert lead.get("/api/v1/files/00000000-0000-4000-8000-000000000000").status == 404


def test_upload_needs_an_account(suite):
    r = call(suite.gateway, "POST", "/api/v1/files", raw=png_bytes(), headers={"Content-Type": "image/png"})
    assert r.status == 401 and r.code == "UNAUTHENTICATED", r
    staff = Staff(suite, "reviewer")
    r = call(suite.gateway, "POST", "/api/v1/files", raw=png_bytes(), token=staff.token,
             headers={"Content-Type": "image/png"})
    assert r.status == 403 and r.code == "FORBIDDEN", r
