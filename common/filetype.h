/* filetype — is a byte string really the PNG, JPEG or PDF it claims to be?
 * A structural parse, no I/O, no decoding and no allocation: the bytes are
 * walked once and the declared pixel count is checked against a limit as
 * soon as the header that declares it is read, before anything could take
 * memory for the pixels (a decompression bomb is refused by its header).
 *
 *  PNG  the signature; every chunk's length, type and CRC-32; IHDR first
 *       with a width and height of 1..2^31-1 and a legal bit depth / colour
 *       type pair (compression, filter 0, interlace 0 or 1); PLTE where the
 *       colour type needs it, before IDAT; one run of IDAT chunks whose
 *       bytes open a zlib stream (deflate, window <= 32K, FCHECK, no preset
 *       dictionary) and are enough to hold the declared pixels at deflate's
 *       best ratio (1032:1); no unknown critical chunk; IEND last and empty,
 *       nothing after it.
 *  JPEG SOI; each marker and segment length in bounds; exactly one SOF
 *       (any of the 13 coding processes) with a precision of 2..16, non-zero
 *       height and width and 1..4 components of the stated length; SOS only
 *       after SOF with 1..4 components; entropy-coded data scanned to the
 *       next marker (stuffed bytes, RST0-7 and fill bytes skipped); no
 *       unknown or reserved marker; EOI last, nothing after it but up to 7
 *       further whole JPEGs (the Multi-Picture Format images phones append:
 *       previews, depth and gain maps), each checked the same way.
 *  PDF  a header "%PDF-1.0".."%PDF-1.7" or "%PDF-2.0" and an end of line;
 *       "%%EOF" last (only white space may follow); "startxref" with an
 *       offset before it that points at a cross-reference section: an "xref"
 *       table (subsections of 20-byte entries, in-use offsets inside the
 *       file) followed by "trailer <<...>>", or an "N G obj <<...>> stream"
 *       whose dictionary has /Type /XRef (and, when its /Length is direct,
 *       whose stream ends with "endstream"); that dictionary names /Root as
 *       an indirect reference "N G R". */
#ifndef CAPLAT_FILETYPE_H
#define CAPLAT_FILETYPE_H

#include <stddef.h>
#include <stdint.h>

enum filetype {
	FILETYPE_PNG,
	FILETYPE_JPEG,
	FILETYPE_PDF,
};

/* Why a file was refused. The names (filetype_reason_name) are stable and
 * may be logged or shown; FILETYPE_OK is 0. */
enum filetype_reason {
	FILETYPE_OK = 0,
	FILETYPE_BAD_SIGNATURE,   /* the magic number / PDF header line */
	FILETYPE_TRUNCATED,       /* the bytes end inside a structure */
	FILETYPE_BAD_CHUNK,       /* PNG chunk or JPEG segment malformed */
	FILETYPE_BAD_CRC,         /* a PNG chunk's CRC-32 does not match */
	FILETYPE_BAD_HEADER,      /* IHDR / SOF / SOS fields not legal */
	FILETYPE_BAD_DIMENSIONS,  /* a width or height of 0 or > 2^31-1 */
	FILETYPE_TOO_MANY_PIXELS, /* width x height over the limit */
	FILETYPE_BAD_ORDER,       /* e.g. IHDR not first, SOS before SOF */
	FILETYPE_NO_IMAGE_DATA,   /* no IDAT / no SOS */
	FILETYPE_BAD_IMAGE_DATA,  /* zlib header, or too few bytes for pixels */
	FILETYPE_UNKNOWN_CRITICAL, /* PNG critical chunk / JPEG marker unknown */
	FILETYPE_TRAILING_DATA,    /* bytes after IEND / EOI */
	FILETYPE_NO_EOF,           /* PDF does not end with %%EOF */
	FILETYPE_NO_STARTXREF,     /* PDF: no startxref and offset before it */
	FILETYPE_BAD_XREF,         /* PDF: no xref section at that offset */
	FILETYPE_NO_ROOT,          /* PDF: trailer without /Root N G R */
};

/* What a successful check learnt; pixels are 0 for a PDF. */
struct filetype_info {
	uint32_t width;
	uint32_t height;
};

/* Checks that the len bytes at data are a well-formed file of type, with
 * at most max_pixels pixels (width x height) for an image. Returns
 * FILETYPE_OK and fills info (may be NULL) when they are; returns the first
 * reason found otherwise. Reads nothing outside data[0..len). */
enum filetype_reason filetype_check(enum filetype type, const void *data,
    size_t len, uint64_t max_pixels, struct filetype_info *info);

/* Returns the stable lower-case name of reason ("truncated", "bad_crc", …),
 * static. */
const char *filetype_reason_name(enum filetype_reason reason);

/* Returns a short Chinese description of reason for users, static. */
const char *filetype_reason_text(enum filetype_reason reason);

/* Returns the CRC-32 (ISO 3309 / ITU-T V.42, as PNG and zlib use) of the len
 * bytes at data, continued from crc (0 to start). */
uint32_t filetype_crc32(uint32_t crc, const void *data, size_t len);

#endif
