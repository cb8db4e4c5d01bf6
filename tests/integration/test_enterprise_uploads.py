"""enterprise, attachments are what they claim (issue 15 part 5): through
nginx, real PNG, JPEG and PDF files are stored; forged, truncated and
decompression-bomb files are refused with 422, a stable code
(FILE_TYPE_INVALID, FILE_TOO_LARGE_PIXELS) and the field `file`, and
nothing is stored — no files row and no blob. The two findings of the issue
(the PNG signature and 10 NUL bytes; the five bytes "%PDF-") are among the
cases."""
import hashlib
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_enterprise_fixtures import (assert_schema, jpeg_bytes, pdf_bytes,  # noqa: E402
                                      person, png_bytes, png_chunk)

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_of(width, height, idat, depth=8, colour=2, extra=b""):
    return (PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)) +
            extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def png_gradient(width=300, height=200):
    """A real RGB PNG with varied pixels, deflated by zlib."""
    rows = b"".join(b"\x00" + bytes((x + y) & 0xFF for x in range(width) for _ in range(3))
                    for y in range(height))
    return png_of(width, height, zlib.compress(rows, 9))


def jpeg_with_size(width, height):
    """The minimal JPEG with its SOF9's height and width replaced."""
    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc9")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def pdf_xref_stream():
    """A PDF 1.5+ file whose cross-reference section is a (deflated) stream."""
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    one = len(out)
    out += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    two = len(out)
    out += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    xref = len(out)
    rows = b"".join(struct.pack(">BHB", t, off, g) for t, off, g in
                    ((0, 0, 255), (1, one, 0), (1, two, 0), (1, xref, 0)))
    body = zlib.compress(rows)
    out += (b"3 0 obj\n<< /Type /XRef /Size 4 /W [1 2 1] /Root 1 0 R /Filter /FlateDecode /Length %d >>\n"
            b"stream\n" % len(body)) + body + b"\nendstream\nendobj\n"
    return out + b"startxref\n%d\n%%%%EOF\n" % xref


def files_of(suite, p):
    return suite.psql(f"SELECT count(*) FROM enterprise.files WHERE owner_account_id = '{p.account_id}'")


def blob_exists(suite, data):
    sha = hashlib.sha256(data).hexdigest()
    return os.path.exists(os.path.join(suite.base, "blobs", sha[:2], sha))


def test_real_files_are_stored(suite):
    p = person(suite)
    for data, ctype in [(png_bytes(text=os.urandom(6).hex()), "image/png"),
                        (png_gradient(), "image/png"),
                        (jpeg_bytes(), "image/jpeg"),
                        # a second whole image after EOI, as phones append
                        # them (Multi-Picture Format); unique by its comment
                        (jpeg_bytes() + jpeg_bytes()[:2] + b"\xff\xfe\x00\x0a" + os.urandom(8) +
                         jpeg_bytes()[2:], "image/jpeg"),
                        (pdf_bytes(os.urandom(6).hex()), "application/pdf"),
                        (pdf_xref_stream(), "application/pdf"),
                        # white space after %%EOF is allowed
                        (pdf_bytes(os.urandom(6).hex()) + b"\r\n\n", "application/pdf")]:
        r = p.post_raw("/api/v1/files", data, ctype)
        assert r.status == 201, (ctype, r)
        assert_schema("FileInfo", r.json)
        assert r.json["content_type"] == ctype and r.json["size"] == len(data)
        assert blob_exists(suite, data)
        assert p.get(f"/api/v1/files/{r.json['file_id']}").raw == data


def forged_cases():
    good_png = png_bytes(text="forged-" + os.urandom(4).hex())
    iend = good_png.rindex(b"IEND") - 4
    bad_crc = bytearray(good_png)
    bad_crc[-1] ^= 0x01
    raw = b"\x00\x01\x02\x03"
    jpeg = jpeg_bytes()
    sof = jpeg.index(b"\xff\xc9")
    pdf = pdf_bytes("forged-" + os.urandom(4).hex())
    sx = pdf.rindex(b"startxref\n") + len(b"startxref\n")
    off = int(pdf[sx:pdf.index(b"\n", sx)])
    return [
        # the findings
        ("png: signature and 10 NUL bytes", PNG_SIG + b"\0" * 10, "image/png", "FILE_TYPE_INVALID"),
        ("pdf: the five bytes %PDF-", b"%PDF-", "application/pdf", "FILE_TYPE_INVALID"),
        # PNG
        ("png: truncated before IEND", good_png[:iend], "image/png", "FILE_TYPE_INVALID"),
        ("png: truncated inside a chunk", good_png[:45], "image/png", "FILE_TYPE_INVALID"),
        ("png: CRC of IEND wrong", bytes(bad_crc), "image/png", "FILE_TYPE_INVALID"),
        ("png: data after IEND", good_png + b"<script>", "image/png", "FILE_TYPE_INVALID"),
        ("png: no IDAT", PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
         png_chunk(b"IEND", b""), "image/png", "FILE_TYPE_INVALID"),
        ("png: bit depth 7", png_of(1, 1, zlib.compress(raw), depth=7), "image/png", "FILE_TYPE_INVALID"),
        ("png: zero width", png_of(0, 1, zlib.compress(raw)), "image/png", "FILE_TYPE_INVALID"),
        ("png: IDAT not zlib", png_of(1, 1, b"\0" * 16), "image/png", "FILE_TYPE_INVALID"),
        # bombs: huge declared dimensions in a small file
        ("png bomb: 100000x100000", png_of(100000, 100000, zlib.compress(raw)), "image/png",
         "FILE_TOO_LARGE_PIXELS"),
        ("png bomb: one pixel over 40 MP", png_of(8001, 5000, zlib.compress(b"\0" * 5000)), "image/png",
         "FILE_TOO_LARGE_PIXELS"),
        ("png bomb: 40 MP declared in 60 bytes", png_of(8000, 5000, zlib.compress(raw)), "image/png",
         "FILE_TYPE_INVALID"),
        ("jpeg bomb: 65535x65535", jpeg_with_size(65535, 65535), "image/jpeg", "FILE_TOO_LARGE_PIXELS"),
        # JPEG
        ("jpeg: magic only", b"\xff\xd8\xff", "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: no EOI", jpeg[:-2], "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: cut in the DQT", jpeg[:60], "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: zero width", jpeg_with_size(0, 1), "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: stray byte before SOS", jpeg[:jpeg.index(b"\xff\xda")] + b"\x0c" + jpeg[jpeg.index(b"\xff\xda"):],
         "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: no SOF", jpeg[:sof] + jpeg[sof + 13:], "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: data after EOI", jpeg + b"PK\x03\x04", "image/jpeg", "FILE_TYPE_INVALID"),
        ("jpeg: truncated second image", jpeg + jpeg[:-2], "image/jpeg", "FILE_TYPE_INVALID"),
        # PDF
        ("pdf: header only", b"%PDF-1.4\n", "application/pdf", "FILE_TYPE_INVALID"),
        ("pdf: truncated (no %%EOF)", pdf[:len(pdf) // 2], "application/pdf", "FILE_TYPE_INVALID"),
        ("pdf: no xref (the old fixture)", b"%PDF-1.4\n1 0 obj <</Type/Catalog>> endobj\n"
         b"trailer <</Root 1 0 R>>\n%%EOF\n", "application/pdf", "FILE_TYPE_INVALID"),
        ("pdf: startxref points elsewhere", pdf[:sx] + b"%d" % (off + 1) + pdf[pdf.index(b"\n", sx):],
         "application/pdf", "FILE_TYPE_INVALID"),
        ("pdf: trailer without /Root", pdf.replace(b"/Root 1 0 R", b"/Info 1 0 R"), "application/pdf",
         "FILE_TYPE_INVALID"),
        ("pdf: html after %%EOF", pdf + b"<html><script>x</script>", "application/pdf", "FILE_TYPE_INVALID"),
        ("pdf: version 9.9", b"%PDF-9.9" + pdf[8:], "application/pdf", "FILE_TYPE_INVALID"),
    ]


def test_forged_truncated_and_bomb_files_refused(suite):
    p = person(suite)
    before = files_of(suite, p)
    for what, data, ctype, code in forged_cases():
        r = p.post_raw("/api/v1/files", data, ctype)
        assert (r.status, r.code) == (422, code), (what, r)
        assert r.json["error"]["field"] == "file", (what, r.json)
        assert r.json["error"]["message"], what
        assert_schema("Error", r.json)
        assert not blob_exists(suite, data), what
    assert files_of(suite, p) == before == [["0"]]
    # The account still uploads a real file afterwards.
    r = p.post_raw("/api/v1/files", png_bytes(), "image/png")
    assert r.status == 201, r


def test_type_mismatch_names_the_field(suite):
    p = person(suite)
    r = p.post_raw("/api/v1/files", pdf_bytes(), "image/jpeg")
    assert (r.status, r.code) == (422, "FILE_TYPE_MISMATCH"), r
    assert r.json["error"]["field"] == "file", r.json
    assert files_of(suite, p) == [["0"]]
