"""test_enterprise_fixtures — helpers the enterprise tests share (no test
cases here): accounts with an enterprise identity, staff sessions, valid
USCCs, real attachment bytes, a complete enterprise record, and readers of
the enterprise outbox checked against proto/events."""
import json
import os
import random
import struct
import sys
import zlib

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_auth_accounts import register  # noqa: E402

from client import Api, join_enterprise, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_rng = random.SystemRandom()

# ------------------------------------------------------------ identifiers

USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc_check(prefix17):
    """The GB 32100 check character of a 17-character prefix."""
    s = sum(USCC_SYMBOLS.index(c) * w for c, w in zip(prefix17, USCC_WEIGHTS))
    return USCC_SYMBOLS[(31 - s % 31) % 31]


def new_uscc():
    """A fresh valid USCC (one admin per USCC: one per test)."""
    body = "91" + "210102" + "".join(_rng.choice(USCC_SYMBOLS) for _ in range(9))
    return body + uscc_check(body)


ID_NUMBER = "11010519491231002X"  # DOMAIN.md vectors
ID_NUMBER_2 = "440524188001010014"

# ------------------------------------------------------------ sessions


class Person:
    """An account, optionally acting for an enterprise (current identity)."""

    def __init__(self, suite, phone, token, account_id):
        self.suite, self.phone, self.token, self.account_id = suite, phone, token, account_id
        self.api = Api(suite)
        self.uscc = None
        self.identity_id = None

    def get(self, path, **kw):
        return self.api.get(path, token=self.token, **kw)

    def put(self, path, body=None, **kw):
        return self.api.put(path, body, token=self.token, **kw)

    def post(self, path, body=None, **kw):
        return self.api.post(path, body, token=self.token, **kw)

    def join(self, uscc, role="admin", name="辽宁演示科技有限公司"):
        """Obtains an enterprise identity by proof (client.join_enterprise: an
        administrator by an approved application, a member approved by the
        administrator; issue 12) and makes it the session's current one."""
        self.identity_id = join_enterprise(self.suite, self.token, uscc, role, name)
        self.uscc = uscc
        return self

    def upload(self, data=None, content_type="image/png"):
        data = data if data is not None else png_bytes()
        r = self.post_raw("/api/v1/files", data, content_type)
        assert r.status == 201, r
        return r.json["file_id"]

    def post_raw(self, path, data, content_type):
        from client import call
        headers = {"Content-Type": content_type} if content_type else {}
        return call(self.suite.gateway, "POST", path, raw=data, token=self.token,
                    headers=headers, timeout=30)


def person(suite):
    phone, token, account_id = register(suite)
    return Person(suite, phone, token, account_id)


def admin(suite, uscc=None, name="辽宁演示科技有限公司"):
    """A fresh account that is the admin of a fresh enterprise."""
    return person(suite).join(uscc or new_uscc(), "admin", name)


def staff_token(suite, username="reviewer"):
    r = Api(suite).post("/api/v1/auth/staff/login", {"username": username,
                                                    "password": suite.secrets[f"staff_{username}"]})
    assert r.status == 200, r
    return r.json["token"]


def second_reviewer(suite, username="reviewer2"):
    """Creates (or resets) another reviewer the way an operator does, with
    caplat-auth staff-add, and logs it in."""
    import subprocess
    password = suite.secrets["staff_reviewer"] + "-2"
    env = dict(os.environ, **suite.service_env("auth"), CAPLAT_STAFF_PASSWORD=password)
    subprocess.run([os.path.join(suite.build, "bin", "caplat-auth"), "staff-add", username, "reviewer"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    s = Staff.__new__(Staff)
    s.api = Api(suite)
    r = s.api.post("/api/v1/auth/staff/login", {"username": username, "password": password})
    assert r.status == 200, r
    s.token = r.json["token"]
    return s


class Staff:
    def __init__(self, suite, username="reviewer"):
        self.api = Api(suite)
        self.token = staff_token(suite, username)

    def get(self, path, **kw):
        return self.api.get(path, token=self.token, **kw)

    def post(self, path, body=None, **kw):
        return self.api.post(path, body, token=self.token, **kw)


# ------------------------------------------------------------ attachments

def png_chunk(kind, data):
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(seed=None, text=None):
    """A real 1x1 PNG; seed varies one pixel so that files differ, text adds
    a tEXt chunk (Comment) to make the bytes unique."""
    pixel = seed if seed is not None else _rng.randrange(256)
    raw = b"\x00" + bytes([pixel & 0xFF, 0x80, 0x40])
    extra = png_chunk(b"tEXt", b"Comment\x00" + text.encode()) if text else b""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            extra + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


# The classic minimal 1x1 JPEG (JFIF APP0, DQT, SOF9 arithmetic-coded, DAC,
# SOS, two bytes of scan, EOI): 125 bytes, every segment length exact.
JPEG_BYTES = bytes.fromhex(
    "ffd8ffe000104a46494600010101004800480000"
    "ffdb004300030202020202030202020303030304060404040404080606050609080a0a090809090a0c0f0c0a0b0e0b09090d110d0e0f101011100a0c12131210130f101010"
    "ffc9000b080001000101011100ffcc000600101005"
    "ffda0008010100003f00d2cf20ffd9")


def jpeg_bytes():
    return JPEG_BYTES


def pdf_bytes(text="caplat"):
    """A minimal real PDF: catalog, pages, one page, a comment with text, an
    xref table with the objects' true offsets, trailer /Root, startxref."""
    objs = [b"1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n",
            b"2 0 obj <</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n",
            b"3 0 obj <</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>> endobj\n"]
    out = b"%PDF-1.4\n% " + text.encode() + b"\n"
    offsets = []
    for o in objs:
        offsets.append(len(out))
        out += o
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    return out + b"trailer <</Size 4/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref


# ------------------------------------------------------------ the record

def record_files(p):
    """Uploads every attachment of a record; returns the files objects."""
    return {
        "basic": {"legal_rep_id_front": p.upload(), "legal_rep_id_back": p.upload(jpeg_bytes(), "image/jpeg"),
                  "business_license": p.upload()},
        "invoice": {"authorization_letter": p.upload(pdf_bytes(), "application/pdf"),
                    "special_invoice_info": p.upload(pdf_bytes("special"), "application/pdf")},
        "seal": {"seal_form": p.upload(pdf_bytes("seal"), "application/pdf")},
    }


def complete_record(uscc, files, name="辽宁演示科技有限公司", taxpayer_type="general"):
    """A complete, valid EnterpriseRecordUpdate."""
    return {
        "basic": {
            "name": name, "uscc": uscc, "registered_capital_fen": 500000000,
            "legal_rep_name": "张三", "legal_rep_id_type": "resident_id_card",
            "legal_rep_id_number": ID_NUMBER, "legal_rep_phone": "13912345678",
            "domicile": "辽宁省沈阳市和平区南京北街1号",
            "region": {"province": "辽宁省", "city": "沈阳市", "district": "和平区"},
            "address": "辽宁省沈阳市和平区南京北街1号", "subject_types": ["bidder"],
            "handling_point": "LN_SY", "files": files["basic"],
        },
        "invoice": {
            "taxpayer_type": taxpayer_type, "bank_name": "中国工商银行沈阳和平支行",
            "bank_account": "3301001234567890123", "invoice_phone": "024-23456789",
            "invoice_address": "辽宁省沈阳市和平区南京北街1号", "contact_name": "李四",
            "contact_phone": "15012345678", "files": files["invoice"],
        },
        "seal": {"files": files["seal"]},
    }


def fill_record(p, **kw):
    """PUTs a complete record for p's enterprise; returns the answer."""
    r = p.put("/api/v1/enterprise", complete_record(p.uscc, record_files(p), **kw))
    assert r.status == 200, r
    return r.json


# ------------------------------------------------------------ contracts

_openapi = None


def openapi_validator(name):
    """A validator for components/schemas/<name> of proto/openapi.yaml."""
    global _openapi
    if _openapi is None:
        with open(os.path.join(ROOT, "proto", "openapi.yaml"), encoding="utf-8") as f:
            _openapi = yaml.safe_load(f)
    root = {"$ref": f"#/components/schemas/{name}", "components": _openapi["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def assert_schema(name, instance):
    errors = list(openapi_validator(name).iter_errors(instance))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def assert_event_data(event_type, data):
    with open(os.path.join(ROOT, "proto", "events", f"{event_type}.json"), encoding="utf-8") as f:
        schema = json.load(f)
    errors = list(jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.FormatChecker()).iter_errors(data))
    assert not errors, f"{event_type}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def events(suite, event_type, subject):
    """The enterprise outbox's events of a type and subject, oldest first, as
    (data, published) pairs."""
    rows = suite.psql(f"SELECT data::text, published_at IS NOT NULL FROM enterprise.outbox"
                      f" WHERE type = '{event_type}' AND subject = '{subject}' ORDER BY seq")
    return [(json.loads(d), p == "t") for d, p in rows]


def wait_published(suite, event_type, subject, count=1):
    return wait_until(lambda: (lambda evs: evs if len(evs) >= count and all(p for _, p in evs) else None)(
        events(suite, event_type, subject)), timeout=15, what=f"{event_type} published")


def sms_lines(suite, phone):
    path = os.path.join(suite.sms_dir, f"{phone}.log")
    if not os.path.exists(path):
        return []
    return [line for line in open(path, encoding="utf-8").read().splitlines()
            if "purpose=review_result" in line]


def wait_sms(suite, phone, count, timeout=30):
    return wait_until(lambda: (lambda ls: ls if len(ls) >= count else None)(sms_lines(suite, phone)),
                      timeout=timeout, what=f"{count} review SMS to {phone}")
