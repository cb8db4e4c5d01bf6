"""enterprise, personal info (个人信息): partial saves, every field checked
with good and bad values (a refusal changes nothing), ID-card scans that
must be the caller's uploads, and enterprise.profile.completed emitted once,
through the outbox, when the profile becomes complete (已完善)."""
import os
import sys

# The shared helpers (test_enterprise_fixtures) sit beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import Api  # noqa: E402
from test_enterprise_fixtures import (ID_NUMBER, ID_NUMBER_2, Staff,  # noqa: E402
                                      assert_event_data, assert_schema, events, person,
                                      wait_published)

EMPTY = {"name": None, "id_number": None, "email": None, "id_card_front_file": None,
         "id_card_back_file": None, "status": "incomplete"}


def test_profile_starts_empty_and_saves_partially(suite):
    p = person(suite)
    r = p.get("/api/v1/profile")
    assert r.status == 200 and r.json == EMPTY, r
    assert_schema("Profile", r.json)

    r = p.put("/api/v1/profile", {"name": "张三"})
    assert r.status == 200 and r.json == dict(EMPTY, name="张三"), r
    r = p.put("/api/v1/profile", {"id_number": "11010519491231002x", "email": "zhang.san@example.com"})
    assert r.status == 200, r
    assert r.json == dict(EMPTY, name="张三", id_number=ID_NUMBER, email="zhang.san@example.com")
    # Absent and null fields keep their value; the answer is the whole profile.
    r = p.put("/api/v1/profile", {"name": "张三丰", "email": None})
    assert r.json["name"] == "张三丰" and r.json["email"] == "zhang.san@example.com"
    assert r.json["status"] == "incomplete"
    assert p.get("/api/v1/profile").json == r.json
    assert events(suite, "enterprise.profile.completed", p.account_id) == []


def test_profile_bad_values_change_nothing(suite):
    p = person(suite)
    p.put("/api/v1/profile", {"name": "张三", "id_number": ID_NUMBER, "email": "a@example.com"})
    before = p.get("/api/v1/profile").json
    other = person(suite)
    foreign_file = other.upload()
    cases = [
        ({}, 422, "FIELD_REQUIRED", None),
        ({"status": "completed"}, 422, "FIELD_REQUIRED", None),
        ({"name": ""}, 422, "FIELD_REQUIRED", "name"),
        ({"name": " 张三"}, 422, "FIELD_INVALID", "name"),
        ({"name": "张" * 65}, 422, "FIELD_INVALID", "name"),
        ({"name": 3}, 400, "FIELD_TYPE", "name"),
        ({"id_number": "110105194912310029"}, 422, "ID_NUMBER_INVALID", "id_number"),
        ({"id_number": "110101199002300014"}, 422, "ID_NUMBER_INVALID", "id_number"),
        ({"id_number": "1101051949123100"}, 422, "ID_NUMBER_INVALID", "id_number"),
        ({"id_number": 110105194912310029}, 400, "FIELD_TYPE", "id_number"),
        ({"email": "a@b"}, 422, "EMAIL_INVALID", "email"),
        ({"email": "张三@example.com"}, 422, "EMAIL_INVALID", "email"),
        ({"email": ["a@example.com"]}, 400, "FIELD_TYPE", "email"),
        ({"id_card_front_file": "x"}, 422, "FILE_NOT_FOUND", "id_card_front_file"),
        ({"id_card_front_file": foreign_file}, 422, "FILE_NOT_FOUND", "id_card_front_file"),
        ({"id_card_back_file": "00000000-0000-4000-8000-000000000000"}, 422, "FILE_NOT_FOUND",
         "id_card_back_file"),
        ({"id_card_back_file": 1}, 400, "FIELD_TYPE", "id_card_back_file"),
        ({"phone": "13912345678"}, 422, "FIELD_INVALID", "phone"),
        # A bad field spoils the whole update, good fields included.
        ({"name": "李四", "email": "bad"}, 422, "EMAIL_INVALID", "email"),
    ]
    for body, status, code, field in cases:
        r = p.put("/api/v1/profile", body)
        assert (r.status, r.code, r.json["error"].get("field")) == (status, code, field), (body, r)
        assert r.json["error"]["message"]
    r = p.put("/api/v1/profile", raw=b"[1]")
    assert r.status == 400 and r.code == "BAD_JSON"
    assert p.get("/api/v1/profile").json == before


def test_profile_completes_once_with_event(suite):
    p = person(suite)
    front, back = p.upload(), p.upload()
    r = p.put("/api/v1/profile", {"name": "王五", "id_number": ID_NUMBER_2, "id_card_front_file": front})
    assert r.json["status"] == "incomplete"
    r = p.put("/api/v1/profile", {"id_card_back_file": back.upper()})
    assert r.status == 200 and r.json["status"] == "completed", r
    assert r.json["id_card_back_file"] == back
    assert_schema("Profile", r.json)
    evs = wait_published(suite, "enterprise.profile.completed", p.account_id)
    assert len(evs) == 1
    data = evs[0][0]
    assert_event_data("enterprise.profile.completed", data)
    assert data["account_id"] == p.account_id and data["name"] == "王五"
    # Later edits keep it completed and emit nothing more.
    new_front = p.upload()
    r = p.put("/api/v1/profile", {"name": "王五五", "id_card_front_file": new_front})
    assert r.json["status"] == "completed" and r.json["id_card_front_file"] == new_front
    assert len(events(suite, "enterprise.profile.completed", p.account_id)) == 1


def test_profile_is_per_account(suite):
    a, b = person(suite), person(suite)
    a.put("/api/v1/profile", {"name": "甲"})
    assert b.get("/api/v1/profile").json == EMPTY
    assert Api(suite).get("/api/v1/profile").status == 401
    r = Staff(suite).get("/api/v1/profile")
    assert r.status == 403 and r.code == "FORBIDDEN", r
