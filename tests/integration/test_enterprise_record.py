"""enterprise, the enterprise record of the current identity (企业信息):
who may read and edit it, drafts saved partially, every field of the basic,
invoice and seal parts checked through nginx with good and bad values (a
refusal changes nothing), attachments that must be the admin's uploads,
the handling-point catalogue, and submission: RECORD_INCOMPLETE with the
missing fields, then pending and frozen (409)."""
import copy
import os
import sys

# The shared helpers (test_enterprise_fixtures) sit beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api  # noqa: E402
from test_enterprise_fixtures import (ID_NUMBER, Staff, admin, assert_event_data,  # noqa: E402
                                      assert_schema, complete_record, events, fill_record,
                                      jpeg_bytes, new_uscc, pdf_bytes, person, record_files,
                                      wait_published)

GOOD = [
    # (part path, value, stored value)
    ("basic.name", "辽宁某某建设工程有限公司", "辽宁某某建设工程有限公司"),
    ("basic.registered_capital_fen", 0, 0),
    ("basic.registered_capital_fen", 123456789012, 123456789012),
    ("basic.legal_rep_name", "欧阳娜娜", "欧阳娜娜"),
    ("basic.legal_rep_id_number", "11010519491231002x", ID_NUMBER),
    ("basic.legal_rep_phone", "+8618612345678", "18612345678"),
    ("basic.domicile", "辽宁省大连市中山区人民路1号", "辽宁省大连市中山区人民路1号"),
    ("basic.region", {"province": "辽宁省", "city": "大连市", "district": "中山区"},
     {"province": "辽宁省", "city": "大连市", "district": "中山区"}),
    ("basic.address", "大连市中山区人民路1号", "大连市中山区人民路1号"),
    ("basic.subject_types", ["tenderer", "agency"], ["tenderer", "agency"]),
    ("basic.legal_rep_id_type", "resident_id_card", "resident_id_card"),
    ("basic.handling_point", "LN_DL", "LN_DL"),
    ("invoice.taxpayer_type", "small_scale", "small_scale"),
    ("invoice.taxpayer_type", "individual", "individual"),
    ("invoice.bank_name", "中国建设银行大连分行", "中国建设银行大连分行"),
    ("invoice.bank_account", "21201501234567890", "21201501234567890"),
    ("invoice.invoice_phone", "0411-87654321", "0411-87654321"),
    ("invoice.invoice_phone", "13812345678", "13812345678"),
    ("invoice.invoice_address", "大连市中山区人民路1号", "大连市中山区人民路1号"),
    ("invoice.contact_name", "赵六", "赵六"),
    ("invoice.contact_phone", "13712345678", "13712345678"),
    ("basic.name", None, None),
    ("basic.region", None, None),
    ("invoice.bank_account", "", None),
]

BAD = [
    # (part path, value, status, code, field)
    ("basic.name", "  ", 422, "FIELD_INVALID", None),
    ("basic.name", "名" * 201, 422, "FIELD_INVALID", None),
    ("basic.name", 1, 400, "FIELD_TYPE", None),
    ("basic.uscc", "91350100M000100Y44", 422, "USCC_INVALID", None),
    ("basic.uscc", "9135010", 422, "USCC_INVALID", None),
    ("basic.uscc", "91110108551385082Q", 422, "FIELD_INVALID", None),  # valid, another enterprise
    ("basic.uscc", None, 422, "FIELD_INVALID", None),
    ("basic.registered_capital_fen", -100, 422, "FIELD_INVALID", None),
    ("basic.registered_capital_fen", 10 ** 17 + 1, 422, "FIELD_INVALID", None),
    ("basic.registered_capital_fen", 100.5, 400, "FIELD_TYPE", None),
    ("basic.registered_capital_fen", "5000000", 400, "FIELD_TYPE", None),
    ("basic.legal_rep_name", "张\n三", 422, "FIELD_INVALID", None),
    ("basic.legal_rep_id_number", "110105194912310029", 422, "ID_NUMBER_INVALID", None),
    ("basic.legal_rep_id_number", "110101199002300014", 422, "ID_NUMBER_INVALID", None),
    ("basic.legal_rep_id_number", "E12345678", 422, "ID_NUMBER_INVALID", None),
    ("basic.legal_rep_phone", "10012345678", 422, "PHONE_INVALID", None),
    ("basic.legal_rep_phone", "024-12345678", 422, "PHONE_INVALID", None),
    ("basic.domicile", ["x"], 400, "FIELD_TYPE", None),
    ("basic.region", {"province": "辽宁", "city": "沈阳市", "district": "和平区"}, 422, "FIELD_INVALID",
     "basic.region.province"),
    ("basic.region", {"province": "辽宁省", "city": "沈阳市"}, 422, "FIELD_REQUIRED", "basic.region.district"),
    ("basic.region", "辽宁省沈阳市和平区", 400, "FIELD_TYPE", None),
    ("basic.address", "\t", 422, "FIELD_INVALID", None),
    ("basic.subject_types", ["bidder", "bidder"], 422, "FIELD_INVALID", None),
    ("basic.subject_types", ["supplier"], 422, "FIELD_INVALID", None),
    ("basic.subject_types", "bidder", 400, "FIELD_TYPE", None),
    ("basic.legal_rep_id_type", "id_card", 422, "FIELD_INVALID", None),
    ("basic.handling_point", "LN_XX", 422, "FIELD_INVALID", None),      # not in the catalogue
    ("basic.handling_point", "沈阳市办理点", 422, "FIELD_INVALID", None),
    ("invoice.taxpayer_type", "general_taxpayer", 422, "FIELD_INVALID", None),
    ("invoice.bank_name", "银行" * 51, 422, "FIELD_INVALID", None),
    ("invoice.bank_account", "6222-0202-0011", 422, "FIELD_INVALID", None),
    ("invoice.bank_account", "12345", 422, "FIELD_INVALID", None),
    ("invoice.invoice_phone", "12345678", 422, "PHONE_INVALID", None),
    ("invoice.invoice_phone", "024-1234", 422, "PHONE_INVALID", None),
    ("invoice.invoice_address", 7, 400, "FIELD_TYPE", None),
    ("invoice.contact_name", " 赵六", 422, "FIELD_INVALID", None),
    ("invoice.contact_phone", "0411-87654321", 422, "PHONE_INVALID", None),
    ("invoice.title", "某公司", 422, "FIELD_INVALID", None),
    ("basic.files.business_license", "nope", 422, "FILE_NOT_FOUND", None),
    ("basic.files.legal_rep_id_front", "00000000-0000-4000-8000-000000000000", 422, "FILE_NOT_FOUND", None),
    ("basic.files.legal_rep_id_back", 5, 400, "FIELD_TYPE", None),
    ("invoice.files.authorization_letter", "00000000-0000-4000-8000-000000000000", 422, "FILE_NOT_FOUND", None),
    ("invoice.files.special_invoice_info", "x", 422, "FILE_NOT_FOUND", None),
    ("seal.files.seal_form", "00000000-0000-4000-8000-000000000000", 422, "FILE_NOT_FOUND", None),
    ("seal.files.stamp", "00000000-0000-4000-8000-000000000000", 422, "FIELD_INVALID", None),
]


def body_at(path, value):
    """{"basic": {"files": {"x": value}}} for "basic.files.x"."""
    keys = path.split(".")
    body = value
    for k in reversed(keys):
        body = {k: body}
    return body


def value_at(record, path):
    v = record
    for k in path.split("."):
        v = v[k]
    return v


def version(suite, uscc):
    return suite.psql(f"SELECT version, data::text FROM enterprise.records WHERE uscc = '{uscc}'")


def test_new_record_is_an_empty_draft(suite):
    uscc = new_uscc()
    a = admin(suite, uscc, name="辽宁演示测试企业")
    r = a.get("/api/v1/enterprise")
    assert r.status == 200, r
    assert_schema("EnterpriseRecord", r.json)
    rec = r.json
    assert rec["status"] == "draft" and rec["history"] == [] and rec["change"] is None
    assert rec["uscc"] == uscc
    assert rec["basic"]["uscc"] == uscc and rec["basic"]["name"] == "辽宁演示测试企业"
    assert rec["basic"]["legal_rep_id_type"] == "resident_id_card"
    assert rec["basic"]["files"] == {"legal_rep_id_front": None, "legal_rep_id_back": None,
                                     "business_license": None}
    assert rec["invoice"]["taxpayer_type"] is None and rec["seal"] == {"files": {"seal_form": None}}
    # Reading again answers the same record.
    assert a.get("/api/v1/enterprise").json["id"] == rec["id"]


def test_who_may_read_and_edit(suite):
    uscc = new_uscc()
    boss = admin(suite, uscc)
    lead = person(suite).join(uscc, "project_lead")
    r = lead.get("/api/v1/enterprise")
    assert r.status == 200 and r.json["id"] == boss.get("/api/v1/enterprise").json["id"], r
    r = lead.put("/api/v1/enterprise", {"basic": {"name": "改名"}})
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_ADMIN", r
    r = lead.post("/api/v1/enterprise/submit")
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_ADMIN", r

    nobody = person(suite)  # no identity yet
    r = nobody.get("/api/v1/enterprise")
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_IDENTITY", r
    r = nobody.post("/api/v1/auth/identities", {"type": "personal"})
    nobody.post(f"/api/v1/auth/identities/{r.json['id']}/switch")
    r = nobody.put("/api/v1/enterprise", {"basic": {"name": "x"}})
    assert r.status == 403 and r.code == "NOT_ENTERPRISE_IDENTITY", r

    assert Api(suite).get("/api/v1/enterprise").status == 401
    r = Staff(suite).get("/api/v1/enterprise")
    assert r.status == 403 and r.code == "FORBIDDEN", r


def test_every_field_good_values(suite):
    a = admin(suite)
    for path, value, stored in GOOD:
        r = a.put("/api/v1/enterprise", body_at(path, value))
        assert r.status == 200, (path, value, r)
        assert value_at(r.json, path) == stored, (path, value, value_at(r.json, path))
        assert value_at(a.get("/api/v1/enterprise").json, path) == stored
    assert_schema("EnterpriseRecord", r.json)
    # Passport numbers follow the ID type.
    r = a.put("/api/v1/enterprise", {"basic": {"legal_rep_id_type": "passport",
                                               "legal_rep_id_number": "E12345678"}})
    assert r.status == 200 and r.json["basic"]["legal_rep_id_number"] == "E12345678", r
    r = a.put("/api/v1/enterprise", {"basic": {"legal_rep_id_type": "resident_id_card"}})
    assert r.status == 422 and r.code == "ID_NUMBER_INVALID", r
    # Files: each slot takes an upload of the admin (the licence an image).
    files = record_files(a)
    for part in ("basic", "invoice", "seal"):
        for name, fid in files[part].items():
            r = a.put("/api/v1/enterprise", {part: {"files": {name: fid}}})
            assert r.status == 200 and r.json[part]["files"][name] == fid, (name, r)
    r = a.put("/api/v1/enterprise", {"basic": {"files": {"business_license": None}}})
    assert r.status == 200 and r.json["basic"]["files"]["business_license"] is None
    assert r.json["basic"]["files"]["legal_rep_id_front"] == files["basic"]["legal_rep_id_front"]


def test_every_field_bad_values_change_nothing(suite):
    a = admin(suite)
    fill_record(a)
    before = version(suite, a.uscc)
    record = a.get("/api/v1/enterprise").json
    for path, value, status, code, field in BAD:
        r = a.put("/api/v1/enterprise", body_at(path, value))
        want_field = field or path
        assert (r.status, r.code, r.json["error"].get("field")) == (status, code, want_field), (path, value, r)
        assert r.json["error"]["message"]
    # A good field beside a bad one is not saved either.
    r = a.put("/api/v1/enterprise", {"basic": {"name": "新名称", "legal_rep_phone": "123"}})
    assert r.status == 422 and r.code == "PHONE_INVALID"
    # Malformed bodies.
    for raw in (b"{", b"[]", b'"x"'):
        r = a.put("/api/v1/enterprise", raw=raw)
        assert r.status == 400 and r.code == "BAD_JSON", r
    for body, code, field in [({}, "FIELD_REQUIRED", None), ({"basic": []}, "FIELD_TYPE", "basic"),
                              ({"basic": {"files": "x"}}, "FIELD_TYPE", "basic.files"),
                              ({"company": {}}, "FIELD_INVALID", "company")]:
        r = a.put("/api/v1/enterprise", body)
        assert r.code == code and r.json["error"].get("field") == field, (body, r)
    assert version(suite, a.uscc) == before
    assert a.get("/api/v1/enterprise").json == record


def test_attachments_must_be_the_admins(suite):
    a = admin(suite)
    other = person(suite)
    foreign = other.upload()
    r = a.put("/api/v1/enterprise", {"basic": {"files": {"business_license": foreign}}})
    assert r.status == 422 and r.code == "FILE_NOT_FOUND", r
    assert r.json["error"]["field"] == "basic.files.business_license"
    # The business licence must be a picture (JPG/PNG), the others may be PDF.
    pdf = a.upload(pdf_bytes("licence"), "application/pdf")
    r = a.put("/api/v1/enterprise", {"basic": {"files": {"business_license": pdf}}})
    assert r.status == 422 and r.code == "FIELD_INVALID", r
    assert r.json["error"]["field"] == "basic.files.business_license"
    jpg = a.upload(jpeg_bytes(), "image/jpeg")
    r = a.put("/api/v1/enterprise", {"basic": {"files": {"business_license": jpg, "legal_rep_id_front": pdf}}})
    assert r.status == 200, r


def test_handling_points_catalogue(suite):
    a = admin(suite)
    r = a.get("/api/v1/enterprise/handling-points")
    assert r.status == 200, r
    codes = {p["code"]: p["name"] for p in r.json["items"]}
    assert codes["LN_SY"] == "沈阳市办理点" and codes["LN_DL"] == "大连市办理点"
    assert r.json["next_cursor"] is None
    suite.psql("INSERT INTO enterprise.handling_points (code, name, region, active)"
               " VALUES ('LN_OLD', '已撤销办理点', '辽宁省', false) ON CONFLICT DO NOTHING")
    r = a.put("/api/v1/enterprise", {"basic": {"handling_point": "LN_OLD"}})
    assert r.status == 422 and r.json["error"]["field"] == "basic.handling_point", r


def test_submit_incomplete_lists_missing_fields(suite):
    a = admin(suite)
    a.put("/api/v1/enterprise", {"basic": {"registered_capital_fen": 100}})
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 422 and r.code == "RECORD_INCOMPLETE", r
    assert_schema("Error", r.json)
    missing = r.json["error"]["missing_fields"]
    assert "basic.registered_capital_fen" not in missing and "basic.uscc" not in missing
    for path in ["basic.legal_rep_name", "basic.region", "basic.subject_types", "basic.handling_point",
                 "basic.files.business_license", "invoice.taxpayer_type", "invoice.bank_account",
                 "invoice.files.authorization_letter", "seal.files.seal_form"]:
        assert path in missing, (path, missing)
    # A general taxpayer also needs the special invoice info (专票).
    full = complete_record(a.uscc, record_files(a), taxpayer_type="general")
    del full["invoice"]["files"]["special_invoice_info"]
    assert a.put("/api/v1/enterprise", full).status == 200
    r = a.put("/api/v1/enterprise", {"invoice": {"files": {"special_invoice_info": None}}})
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 422 and r.json["error"]["missing_fields"] == ["invoice.files.special_invoice_info"], r
    # A small-scale taxpayer does not.
    assert a.put("/api/v1/enterprise", {"invoice": {"taxpayer_type": "small_scale"}}).status == 200
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200 and r.json["status"] == "pending", r
    assert a.get("/api/v1/enterprise").json["status"] == "pending"
    assert events(suite, "enterprise.record.submitted", r.json["id"])


def test_submit_freezes_the_record(suite):
    a = admin(suite)
    fill_record(a)
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 200, r
    rec = r.json
    assert_schema("EnterpriseRecord", rec)
    assert rec["status"] == "pending" and rec["submitted_at"]
    assert [(h["seq"], h["type"], h["status"], h["opinion"]) for h in rec["history"]] == \
        [(1, "submitted", "pending", None)]
    before = version(suite, a.uscc)
    r = a.put("/api/v1/enterprise", {"basic": {"name": "待审核时修改"}})
    assert r.status == 409 and r.code == "RECORD_NOT_EDITABLE", r
    r = a.post("/api/v1/enterprise/submit")
    assert r.status == 409 and r.code == "RECORD_NOT_EDITABLE", r
    assert version(suite, a.uscc) == before
    evs = wait_published(suite, "enterprise.record.submitted", rec["id"])
    assert len(evs) == 1
    data = evs[0][0]
    assert_event_data("enterprise.record.submitted", data)
    assert (data["record_id"], data["uscc"], data["name"], data["seq"], data["submitted_by"]) == \
        (rec["id"], a.uscc, "辽宁演示科技有限公司", 1, a.account_id)


def test_concurrent_saves_all_land(suite):
    """Partial saves racing on one record each keep their field (optimistic
    versions retried), none overwrites another's."""
    import concurrent.futures
    a = admin(suite)
    a.get("/api/v1/enterprise")
    fields = [("basic.legal_rep_name", "张三"), ("basic.domicile", "住所一"), ("basic.address", "地址一"),
              ("invoice.bank_name", "银行一"), ("invoice.contact_name", "联系人"),
              ("invoice.invoice_address", "开票地址")]
    with concurrent.futures.ThreadPoolExecutor(len(fields)) as pool:
        replies = list(pool.map(lambda f: a.put("/api/v1/enterprise", body_at(*f)), fields))
    assert all(r.status in (200, 409) for r in replies), replies
    rec = a.get("/api/v1/enterprise").json
    for (path, value), r in zip(fields, replies):
        if r.status == 200:
            assert value_at(rec, path) == value, path
        else:
            assert r.code == "RECORD_CHANGED"


def test_update_body_may_carry_read_only_fields(suite):
    a = admin(suite)
    rec = a.get("/api/v1/enterprise").json
    body = copy.deepcopy(rec)
    body["basic"]["legal_rep_name"] = "回写"
    r = a.put("/api/v1/enterprise", body)
    assert r.status == 200 and r.json["basic"]["legal_rep_name"] == "回写", r
