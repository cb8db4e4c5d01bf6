/* Unit tests for filetype: real tiny files built here (a 1x1 PNG with its
 * CRCs and a stored-block zlib stream, a minimal PDF with a correct xref
 * table, a PDF with a cross-reference stream, the classic minimal JPEG),
 * accepted; then forged, truncated, reordered and bomb variants, each
 * refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filetype.h"

#define MAX_PIXELS 40000000u

/* ---- building PNGs ------------------------------------------------------ */

struct buf {
	unsigned char b[4096];
	size_t n;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void
put32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v};
	put(b, x, 4);
}

static void
chunk(struct buf *b, const char *type, const void *data, size_t n)
{
	size_t at = b->n;

	put32(b, (uint32_t)n);
	put(b, type, 4);
	if (n)
		put(b, data, n);
	put32(b, filetype_crc32(0, b->b + at + 4, n + 4));
}

static void
ihdr(struct buf *b, uint32_t w, uint32_t h, int depth, int colour)
{
	unsigned char d[13] = {w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16,
	    h >> 8, h, depth, colour, 0, 0, 0};
	chunk(b, "IHDR", d, sizeof(d));
}

/* A zlib stream of raw in one stored block. */
static size_t
zlib_stored(unsigned char *out, const unsigned char *raw, size_t n)
{
	uint32_t a = 1, s = 0;
	size_t k = 0;

	out[k++] = 0x78;
	out[k++] = 0x01;
	out[k++] = 0x01; /* final, stored */
	out[k++] = n & 0xFF;
	out[k++] = n >> 8;
	out[k++] = ~n & 0xFF;
	out[k++] = (~n >> 8) & 0xFF;
	memcpy(out + k, raw, n);
	k += n;
	for (size_t i = 0; i < n; i++) {
		a = (a + raw[i]) % 65521;
		s = (s + a) % 65521;
	}
	uint32_t adler = s << 16 | a;
	out[k++] = adler >> 24;
	out[k++] = adler >> 16;
	out[k++] = adler >> 8;
	out[k++] = adler;
	return k;
}

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A,
    '\n'};

/* A real 1x1 RGB PNG: filter byte 0 and one red pixel. */
static void
png_1x1(struct buf *b)
{
	static const unsigned char raw[] = {0, 0xFF, 0, 0};
	unsigned char z[64];
	size_t zn = zlib_stored(z, raw, sizeof(raw));

	b->n = 0;
	put(b, png_sig, 8);
	ihdr(b, 1, 1, 8, 2);
	chunk(b, "IDAT", z, zn);
	chunk(b, "IEND", NULL, 0);
}

static enum filetype_reason
png(const struct buf *b)
{
	return filetype_check(FILETYPE_PNG, b->b, b->n, MAX_PIXELS, NULL);
}

static void
test_png_valid(void **state)
{
	struct buf b;
	struct filetype_info info;
	unsigned char z[64];
	static const unsigned char raw[] = {0, 0x80};

	png_1x1(&b);
	assert_int_equal(filetype_check(FILETYPE_PNG, b.b, b.n, MAX_PIXELS,
	                     &info),
	    FILETYPE_OK);
	assert_int_equal(info.width, 1);
	assert_int_equal(info.height, 1);
	/* the well-known CRC of an empty IEND */
	assert_int_equal(filetype_crc32(0, "IEND", 4), 0xAE426082u);

	/* ancillary chunks, a palette image, IDAT split in two */
	size_t zn = zlib_stored(z, raw, sizeof(raw));
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 3);
	chunk(&b, "tEXt", "Title\0x", 7);
	chunk(&b, "PLTE", "\x10\x20\x30", 3);
	chunk(&b, "IDAT", z, 1);
	chunk(&b, "IDAT", z + 1, zn - 1);
	chunk(&b, "tIME", "\x07\xea\x0c\x06\x01\x02\x03", 7);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_OK);
}

static void
test_png_findings(void **state)
{
	/* The finding: the signature and 10 NUL bytes. */
	unsigned char forged[18] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A,
	    '\n'};
	assert_int_equal(filetype_check(FILETYPE_PNG, forged, sizeof(forged),
	                     MAX_PIXELS, NULL),
	    FILETYPE_TRUNCATED);
	unsigned char forged30[30] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A,
	    '\n'};
	/* a zero-length chunk of type "\0\0\0\0" */
	assert_int_equal(filetype_check(FILETYPE_PNG, forged30,
	                     sizeof(forged30), MAX_PIXELS, NULL),
	    FILETYPE_BAD_CHUNK);
	assert_int_equal(filetype_check(FILETYPE_PNG, png_sig, 8, MAX_PIXELS,
	                     NULL),
	    FILETYPE_TRUNCATED);
	assert_int_equal(filetype_check(FILETYPE_PNG, png_sig, 7, MAX_PIXELS,
	                     NULL),
	    FILETYPE_BAD_SIGNATURE);
	assert_int_equal(filetype_check(FILETYPE_PNG, "", 0, MAX_PIXELS, NULL),
	    FILETYPE_BAD_SIGNATURE);
}

static void
test_png_truncated_every_length(void **state)
{
	struct buf b;

	png_1x1(&b);
	for (size_t n = 0; n < b.n; n++) {
		enum filetype_reason r =
		    filetype_check(FILETYPE_PNG, b.b, n, MAX_PIXELS, NULL);
		assert_int_not_equal(r, FILETYPE_OK);
	}
	/* without IEND at all */
	assert_int_equal(filetype_check(FILETYPE_PNG, b.b, b.n - 12, MAX_PIXELS,
	                     NULL),
	    FILETYPE_TRUNCATED);
}

static void
test_png_crc_and_every_flipped_byte(void **state)
{
	struct buf b;

	png_1x1(&b);
	b.b[b.n - 1] ^= 1; /* IEND's CRC */
	assert_int_equal(png(&b), FILETYPE_BAD_CRC);
	/* Any single changed byte after the signature is caught. */
	png_1x1(&b);
	for (size_t i = 8; i < b.n; i++) {
		b.b[i] ^= 0x40;
		assert_int_not_equal(png(&b), FILETYPE_OK);
		b.b[i] ^= 0x40;
	}
	assert_int_equal(png(&b), FILETYPE_OK);
}

static void
test_png_structure(void **state)
{
	struct buf b;
	unsigned char z[64];
	static const unsigned char raw[] = {0, 1, 2, 3};
	size_t zn = zlib_stored(z, raw, sizeof(raw));

	/* trailing data after IEND */
	png_1x1(&b);
	put(&b, "x", 1);
	assert_int_equal(png(&b), FILETYPE_TRAILING_DATA);
	/* IHDR not first */
	b.n = 0;
	put(&b, png_sig, 8);
	chunk(&b, "tEXt", "a\0b", 3);
	ihdr(&b, 1, 1, 8, 2);
	chunk(&b, "IDAT", z, zn);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_BAD_ORDER);
	/* no IDAT */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 2);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_NO_IMAGE_DATA);
	/* IDAT runs interrupted */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 2);
	chunk(&b, "IDAT", z, 2);
	chunk(&b, "tEXt", "a\0b", 3);
	chunk(&b, "IDAT", z + 2, zn - 2);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_BAD_ORDER);
	/* unknown critical chunk */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 2);
	chunk(&b, "ABCD", "", 0);
	chunk(&b, "IDAT", z, zn);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_UNKNOWN_CRITICAL);
	/* palette image without PLTE */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 3);
	chunk(&b, "IDAT", z, zn);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_BAD_ORDER);
	/* IDAT that is not a zlib stream */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 1, 1, 8, 2);
	chunk(&b, "IDAT", "\0\0\0\0\0\0\0\0", 8);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_BAD_IMAGE_DATA);
	/* a chunk length past the end */
	png_1x1(&b);
	b.b[8 + 25 + 3] = 0xF0; /* IDAT length */
	assert_int_equal(png(&b), FILETYPE_TRUNCATED);
	b.b[8 + 25] = 0x80; /* over 2^31-1 */
	assert_int_equal(png(&b), FILETYPE_BAD_CHUNK);
}

static void
test_png_header_fields(void **state)
{
	static const struct {
		uint32_t w, h;
		int depth, colour;
		enum filetype_reason want;
	} cases[] = {
	    {0, 1, 8, 2, FILETYPE_BAD_DIMENSIONS},
	    {1, 0, 8, 2, FILETYPE_BAD_DIMENSIONS},
	    {0x80000000u, 1, 8, 2, FILETYPE_BAD_DIMENSIONS},
	    {1, 1, 7, 2, FILETYPE_BAD_HEADER},
	    {1, 1, 4, 2, FILETYPE_BAD_HEADER},
	    {1, 1, 16, 3, FILETYPE_BAD_HEADER},
	    {1, 1, 8, 5, FILETYPE_BAD_HEADER},
	    {1, 1, 1, 0, FILETYPE_OK},
	    {1, 1, 16, 6, FILETYPE_OK},
	};
	unsigned char z[64];
	static const unsigned char raw[16] = {0};
	size_t zn = zlib_stored(z, raw, sizeof(raw));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = {.n = 0};
		put(&b, png_sig, 8);
		ihdr(&b, cases[i].w, cases[i].h, cases[i].depth,
		    cases[i].colour);
		chunk(&b, "IDAT", z, zn);
		chunk(&b, "IEND", NULL, 0);
		if (png(&b) != cases[i].want)
			fail_msg("case %zu: %s", i,
			    filetype_reason_name(png(&b)));
	}
}

static void
test_png_bombs(void **state)
{
	struct buf b;
	unsigned char z[64];
	static const unsigned char raw[] = {0, 0, 0, 0};
	size_t zn = zlib_stored(z, raw, sizeof(raw));

	/* 100000 x 100000 declared in a 60-byte file: refused by IHDR. */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 100000, 100000, 8, 2);
	chunk(&b, "IDAT", z, zn);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_TOO_MANY_PIXELS);
	/* at the limit exactly, the pixel count passes; the data cannot
	 * hold 8000x5000 RGB pixels, so the file is refused as forged */
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 8000, 5000, 8, 2);
	chunk(&b, "IDAT", z, zn);
	chunk(&b, "IEND", NULL, 0);
	assert_int_equal(png(&b), FILETYPE_BAD_IMAGE_DATA);
	b.n = 0;
	put(&b, png_sig, 8);
	ihdr(&b, 8001, 5000, 8, 2);
	assert_int_equal(png(&b), FILETYPE_TOO_MANY_PIXELS);
	/* the limit is the caller's */
	png_1x1(&b);
	assert_int_equal(filetype_check(FILETYPE_PNG, b.b, b.n, 0, NULL),
	    FILETYPE_TOO_MANY_PIXELS);
	assert_int_equal(filetype_check(FILETYPE_PNG, b.b, b.n, 1, NULL),
	    FILETYPE_OK);
}

/* ---- JPEG --------------------------------------------------------------- */

/* The classic minimal 1x1 JPEG: APP0 (JFIF), DQT, SOF9 (arithmetic),
 * DAC, SOS, two bytes of scan, EOI. */
static const unsigned char jpeg_min[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10,
    'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x01, 0x00, 0x48, 0x00, 0x48, 0x00,
    0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x03, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x03, 0x02, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x06, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x08, 0x06, 0x06, 0x05, 0x06, 0x09, 0x08, 0x0A, 0x0A,
    0x09, 0x08, 0x09, 0x09, 0x0A, 0x0C, 0x0F, 0x0C, 0x0A, 0x0B, 0x0E, 0x0B,
    0x09, 0x09, 0x0D, 0x11, 0x0D, 0x0E, 0x0F, 0x10, 0x10, 0x11, 0x10, 0x0A,
    0x0C, 0x12, 0x13, 0x12, 0x10, 0x13, 0x0F, 0x10, 0x10, 0x10, 0xFF, 0xC9,
    0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xFF,
    0xCC, 0x00, 0x06, 0x00, 0x10, 0x10, 0x05, 0xFF, 0xDA, 0x00, 0x08, 0x01,
    0x01, 0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF, 0xD9};
#define JPEG_SOF 89 /* offset of the SOF9 marker */

static enum filetype_reason
jpeg(const unsigned char *p, size_t n)
{
	return filetype_check(FILETYPE_JPEG, p, n, MAX_PIXELS, NULL);
}

static void
test_jpeg_valid(void **state)
{
	struct filetype_info info;
	unsigned char b[256];

	assert_int_equal(jpeg_min[JPEG_SOF + 1], 0xC9);
	assert_int_equal(filetype_check(FILETYPE_JPEG, jpeg_min,
	                     sizeof(jpeg_min), MAX_PIXELS, &info),
	    FILETYPE_OK);
	assert_int_equal(info.width, 1);
	assert_int_equal(info.height, 1);
	/* stuffed bytes, a restart marker and fill bytes in the scan */
	size_t n = sizeof(jpeg_min) - 2;
	memcpy(b, jpeg_min, n);
	memcpy(b + n, "\xFF\x00\x12\xFF\xD3\x34\xFF\xFF\xFF\xD9", 10);
	assert_int_equal(jpeg(b, n + 10), FILETYPE_OK);
}

static void
test_jpeg_refusals(void **state)
{
	unsigned char b[256];
	size_t n = sizeof(jpeg_min);

	/* the magic alone, and every truncation */
	assert_int_equal(jpeg((const unsigned char *)"\xFF\xD8\xFF", 3),
	    FILETYPE_TRUNCATED);
	for (size_t k = 0; k < n; k++)
		assert_int_not_equal(jpeg(jpeg_min, k), FILETYPE_OK);
	/* trailing data after EOI */
	memcpy(b, jpeg_min, n);
	b[n] = 0;
	assert_int_equal(jpeg(b, n + 1), FILETYPE_TRAILING_DATA);
	/* a stray byte between segments */
	memcpy(b, jpeg_min, JPEG_SOF);
	b[JPEG_SOF] = 0x0C;
	memcpy(b + JPEG_SOF + 1, jpeg_min + JPEG_SOF, n - JPEG_SOF);
	assert_int_equal(jpeg(b, n + 1), FILETYPE_BAD_CHUNK);
	/* zero width, zero height, 5 components, bad length */
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 8] = 0;
	assert_int_equal(jpeg(b, n), FILETYPE_BAD_DIMENSIONS);
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 6] = 0;
	assert_int_equal(jpeg(b, n), FILETYPE_BAD_DIMENSIONS);
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 9] = 5;
	assert_int_equal(jpeg(b, n), FILETYPE_BAD_HEADER);
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 3] = 0x0A;
	assert_int_not_equal(jpeg(b, n), FILETYPE_OK);
	/* a reserved marker instead of SOF9 */
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 1] = 0xF3;
	assert_int_equal(jpeg(b, n), FILETYPE_UNKNOWN_CRITICAL);
	/* DAC instead of SOF: SOS before SOF */
	memcpy(b, jpeg_min, n);
	b[JPEG_SOF + 1] = 0xFE; /* a comment */
	assert_int_equal(jpeg(b, n), FILETYPE_BAD_ORDER);
	/* the bomb: 65535 x 65535 declared in 125 bytes */
	memcpy(b, jpeg_min, n);
	memcpy(b + JPEG_SOF + 5, "\xFF\xFF\xFF\xFF", 4);
	assert_int_equal(jpeg(b, n), FILETYPE_TOO_MANY_PIXELS);
	/* further whole images after EOI (Multi-Picture Format) */
	unsigned char two[3 * sizeof(jpeg_min)];
	memcpy(two, jpeg_min, n);
	memcpy(two + n, jpeg_min, n);
	assert_int_equal(jpeg(two, 2 * n), FILETYPE_OK);
	assert_int_equal(jpeg(two, 2 * n - 1), FILETYPE_TRUNCATED);
	assert_int_not_equal(jpeg(two, n + 2), FILETYPE_OK);
	memcpy(two + 2 * n, "\xFF\xD8", 2);
	assert_int_equal(jpeg(two, 2 * n + 2), FILETYPE_TRAILING_DATA);
	memcpy(b, jpeg_min, n);
	memcpy(b + JPEG_SOF + 5, "\xFF\xFF\xFF\xFF", 4);
	memcpy(two + n, b, n);
	assert_int_equal(jpeg(two, 2 * n), FILETYPE_TOO_MANY_PIXELS);
	static unsigned char nine[9 * sizeof(jpeg_min)];
	for (int i = 0; i < 9; i++)
		memcpy(nine + i * n, jpeg_min, n);
	assert_int_equal(jpeg(nine, 8 * n), FILETYPE_OK);
	assert_int_equal(jpeg(nine, 9 * n), FILETYPE_TRAILING_DATA);
	/* EOI with no scan */
	memcpy(b, jpeg_min, 20);
	memcpy(b + 20, "\xFF\xD9", 2);
	assert_int_equal(jpeg(b, 22), FILETYPE_NO_IMAGE_DATA);
}

/* ---- PDF ---------------------------------------------------------------- */

/* A minimal real PDF: catalog, pages, one page; an xref table with the
 * objects' true offsets; trailer /Size /Root; startxref; %%EOF. */
static size_t
pdf_min(char *out, size_t size, const char *trailer_extra)
{
	static const char *objs[] = {
	    "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
	    "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
	    "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
	    "/Contents (a \\) string >>) >>\nendobj\n",
	};
	size_t off[3], n;

	n = (size_t)snprintf(out, size, "%%PDF-1.4\n%%\xE2\xE3\xCF\xD3\n");
	for (int i = 0; i < 3; i++) {
		off[i] = n;
		n += (size_t)snprintf(out + n, size - n, "%s", objs[i]);
	}
	size_t xref = n;
	n += (size_t)snprintf(out + n, size - n,
	    "xref\n0 4\n0000000000 65535 f \n");
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(out + n, size - n, "%010zu 00000 n \n",
		    off[i]);
	n += (size_t)snprintf(out + n, size - n,
	    "trailer\n<< /Size 4 %s>>\nstartxref\n%zu\n%%%%EOF\n",
	    trailer_extra, xref);
	assert_true(n < size);
	return n;
}

static enum filetype_reason
pdf(const char *p, size_t n)
{
	return filetype_check(FILETYPE_PDF, p, n, MAX_PIXELS, NULL);
}

static void
test_pdf_valid(void **state)
{
	char b[2048], s[2048];
	size_t n = pdf_min(b, sizeof(b), "/Root 1 0 R /Info << /T (x>>) >> ");

	assert_int_equal(pdf(b, n), FILETYPE_OK);
	/* trailing white space after %%EOF, CRLF line ends */
	memcpy(b + n, "\r\n\n  ", 5);
	assert_int_equal(pdf(b, n + 5), FILETYPE_OK);

	/* a cross-reference stream instead of a table (PDF 1.5+) */
	static const char body[] = "%PDF-1.7\n"
	                           "1 0 obj\n<< /Type /Catalog >>\nendobj\n";
	static const char data[] = "\x01\x02\x03\x04\x05\x06\x07\x08";
	n = (size_t)snprintf(s, sizeof(s), "%s", body);
	size_t xref = n;
	n += (size_t)snprintf(s + n, sizeof(s) - n,
	    "2 0 obj\n<< /Type /XRef /Size 3 /W [1 2 1] /Root 1 0 R "
	    "/Length %zu >>\nstream\n",
	    sizeof(data) - 1);
	memcpy(s + n, data, sizeof(data) - 1);
	n += sizeof(data) - 1;
	n += (size_t)snprintf(s + n, sizeof(s) - n,
	    "\nendstream\nendobj\nstartxref\n%zu\n%%%%EOF", xref);
	assert_int_equal(pdf(s, n), FILETYPE_OK);
	/* ... whose /Length does not end at "endstream" */
	char *len = strstr(s, "/Length 8");
	len[8] = '7';
	assert_int_equal(pdf(s, n), FILETYPE_BAD_XREF);
	len[8] = '8';
	/* ... without /Type /XRef */
	memcpy(strstr(s, "/XRef"), "/XRaf", 5);
	assert_int_equal(pdf(s, n), FILETYPE_BAD_XREF);
}

static void
test_pdf_findings(void **state)
{
	char b[2048];
	size_t n = pdf_min(b, sizeof(b), "/Root 1 0 R ");

	/* The finding: the five bytes "%PDF-". */
	assert_int_equal(pdf("%PDF-", 5), FILETYPE_BAD_SIGNATURE);
	assert_int_equal(pdf("%PDF-1.4\n", 9), FILETYPE_NO_EOF);
	assert_int_equal(pdf("%PDF-1.4\n%%EOF", 14), FILETYPE_NO_STARTXREF);
	assert_int_equal(pdf("%PDF-1.4\nstartxref\n9\n%%EOF", 26),
	    FILETYPE_BAD_XREF);
	assert_int_equal(pdf("%PDF-1.9\n", 9), FILETYPE_BAD_SIGNATURE);
	assert_int_equal(pdf("%PDF-1.4 x", 10), FILETYPE_BAD_SIGNATURE);
	/* the old test fixture: a trailer without any xref */
	static const char old[] = "%PDF-1.4\n1 0 obj <</Type/Catalog>> "
	                          "endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n";
	assert_int_equal(pdf(old, sizeof(old) - 1), FILETYPE_NO_STARTXREF);
	/* every truncation of a valid file (but its last end of line) */
	for (size_t k = 0; k + 1 < n; k++)
		assert_int_not_equal(pdf(b, k), FILETYPE_OK);
}

static void
test_pdf_forged(void **state)
{
	char b[2048];
	size_t n;
	char *p;

	/* no /Root */
	n = pdf_min(b, sizeof(b), "");
	assert_int_equal(pdf(b, n), FILETYPE_NO_ROOT);
	/* /Root that is not a reference */
	n = pdf_min(b, sizeof(b), "/Root (1 0 R) ");
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	/* startxref pointing one byte off */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	p = strstr(b, "startxref\n") + 10;
	p[2] = p[2] == '0' ? '1' : (char)(p[2] - 1);
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	/* an xref entry with a letter in it, an offset past the end */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	p = strstr(b, "00000 n");
	p[-3] = 'x';
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	p = strstr(b, "00000 n");
	p[-11] = '9';
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	/* more entries declared than present */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	p = strstr(b, "xref\n0 4");
	p[7] = '9';
	assert_int_not_equal(pdf(b, n), FILETYPE_OK);
	/* no trailer keyword */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	memcpy(strstr(b, "trailer"), "trailor", 7);
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	/* an unterminated trailer dictionary */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R (");
	assert_int_equal(pdf(b, n), FILETYPE_BAD_XREF);
	/* garbage after %%EOF */
	n = pdf_min(b, sizeof(b), "/Root 1 0 R ");
	memcpy(b + n, "<html>", 6);
	assert_int_equal(pdf(b, n + 6), FILETYPE_NO_EOF);
}

static void
test_reason_names(void **state)
{
	assert_string_equal(filetype_reason_name(FILETYPE_OK), "ok");
	assert_string_equal(filetype_reason_name(FILETYPE_TOO_MANY_PIXELS),
	    "too_many_pixels");
	assert_string_equal(filetype_reason_name(FILETYPE_NO_ROOT), "no_root");
	assert_string_equal(filetype_reason_name((enum filetype_reason)999),
	    "unknown");
	for (int r = 0; r <= FILETYPE_NO_ROOT; r++) {
		assert_non_null(filetype_reason_name((enum filetype_reason)r));
		assert_true(
		    strlen(filetype_reason_text((enum filetype_reason)r)) > 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_png_valid),
	    cmocka_unit_test(test_png_findings),
	    cmocka_unit_test(test_png_truncated_every_length),
	    cmocka_unit_test(test_png_crc_and_every_flipped_byte),
	    cmocka_unit_test(test_png_structure),
	    cmocka_unit_test(test_png_header_fields),
	    cmocka_unit_test(test_png_bombs),
	    cmocka_unit_test(test_jpeg_valid),
	    cmocka_unit_test(test_jpeg_refusals),
	    cmocka_unit_test(test_pdf_valid),
	    cmocka_unit_test(test_pdf_findings),
	    cmocka_unit_test(test_pdf_forged),
	    cmocka_unit_test(test_reason_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
