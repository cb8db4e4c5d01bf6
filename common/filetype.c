/* filetype — structural checks of PNG, JPEG and PDF bytes (filetype.h). */
#include "filetype.h"

#include <pthread.h>
#include <string.h>

/* ---- shared ------------------------------------------------------------- */

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static unsigned
be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_table_fill(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
}

uint32_t
filetype_crc32(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc_once, crc_table_fill);
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

static enum filetype_reason
pixels_ok(uint32_t width, uint32_t height, uint64_t max_pixels)
{
	if (width == 0 || height == 0 || width > 0x7FFFFFFFu ||
	    height > 0x7FFFFFFFu)
		return FILETYPE_BAD_DIMENSIONS;
	if ((uint64_t)width * height > max_pixels)
		return FILETYPE_TOO_MANY_PIXELS;
	return FILETYPE_OK;
}

/* ---- PNG ---------------------------------------------------------------- */

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n',
    0x1A, '\n'};

/* Bits per pixel of a legal colour type / bit depth pair, else 0. */
static unsigned
png_bits_per_pixel(unsigned colour, unsigned depth)
{
	switch (colour) {
	case 0: /* grey */
		return (depth == 1 || depth == 2 || depth == 4 || depth == 8 ||
		           depth == 16)
		    ? depth
		    : 0;
	case 2: /* RGB */
		return (depth == 8 || depth == 16) ? 3 * depth : 0;
	case 3: /* palette */
		return (depth == 1 || depth == 2 || depth == 4 || depth == 8)
		    ? depth
		    : 0;
	case 4: /* grey + alpha */
		return (depth == 8 || depth == 16) ? 2 * depth : 0;
	case 6: /* RGBA */
		return (depth == 8 || depth == 16) ? 4 * depth : 0;
	default:
		return 0;
	}
}

static int
png_type_ok(const unsigned char *t)
{
	for (int i = 0; i < 4; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') ||
		        (t[i] >= 'a' && t[i] <= 'z')))
			return 0;
	return 1;
}

static enum filetype_reason
png_check(const unsigned char *p, size_t len, uint64_t max_pixels,
    struct filetype_info *info)
{
	size_t pos = sizeof(png_signature);
	int seen_ihdr = 0, seen_plte = 0,
	    idat_state = 0; /* 0 none, 1 in, 2 after */
	unsigned colour = 0, bpp = 0;
	uint32_t width = 0, height = 0;
	uint64_t idat_bytes = 0;
	unsigned char zhead[2];
	size_t zhave = 0;
	enum filetype_reason r;

	if (len < sizeof(png_signature) ||
	    memcmp(p, png_signature, sizeof(png_signature)) != 0)
		return FILETYPE_BAD_SIGNATURE;
	for (;;) {
		if (len - pos < 12)
			return FILETYPE_TRUNCATED;
		uint32_t n = be32(p + pos);
		const unsigned char *type = p + pos + 4, *body = p + pos + 8;
		if (n > 0x7FFFFFFFu || !png_type_ok(type))
			return FILETYPE_BAD_CHUNK;
		if (len - pos - 12 < n)
			return FILETYPE_TRUNCATED;
		if (filetype_crc32(0, type, (size_t)n + 4) != be32(body + n))
			return FILETYPE_BAD_CRC;
		pos += (size_t)n + 12;

		if (!seen_ihdr && memcmp(type, "IHDR", 4) != 0)
			return FILETYPE_BAD_ORDER;
		if (memcmp(type, "IHDR", 4) == 0) {
			if (seen_ihdr)
				return FILETYPE_BAD_ORDER;
			seen_ihdr = 1;
			if (n != 13)
				return FILETYPE_BAD_HEADER;
			width = be32(body);
			height = be32(body + 4);
			if ((r = pixels_ok(width, height, max_pixels)) != 0)
				return r;
			colour = body[9];
			bpp = png_bits_per_pixel(colour, body[8]);
			if (bpp == 0 || body[10] != 0 || body[11] != 0 ||
			    body[12] > 1)
				return FILETYPE_BAD_HEADER;
		} else if (memcmp(type, "PLTE", 4) == 0) {
			if (seen_plte || idat_state != 0)
				return FILETYPE_BAD_ORDER;
			if (colour == 0 || colour == 4 || n == 0 ||
			    n % 3 != 0 || n / 3 > 256 ||
			    (colour == 3 && n / 3 > (1u << bpp)))
				return FILETYPE_BAD_CHUNK;
			seen_plte = 1;
		} else if (memcmp(type, "IDAT", 4) == 0) {
			if (idat_state == 2)
				return FILETYPE_BAD_ORDER;
			if (colour == 3 && !seen_plte)
				return FILETYPE_BAD_ORDER;
			idat_state = 1;
			idat_bytes += n;
			for (uint32_t i = 0; i < n && zhave < 2; i++)
				zhead[zhave++] = body[i];
		} else if (memcmp(type, "IEND", 4) == 0) {
			if (n != 0)
				return FILETYPE_BAD_CHUNK;
			break;
		} else {
			if (type[0] >= 'A' && type[0] <= 'Z')
				return FILETYPE_UNKNOWN_CRITICAL;
			if (idat_state == 1)
				idat_state = 2;
		}
	}
	if (pos != len)
		return FILETYPE_TRAILING_DATA;
	if (idat_state == 0)
		return FILETYPE_NO_IMAGE_DATA;
	/* zlib: CM 8 (deflate), CINFO <= 7, no FDICT, FCHECK. */
	if (zhave < 2 || (zhead[0] & 0x0F) != 8 || (zhead[0] >> 4) > 7 ||
	    (zhead[1] & 0x20) != 0 || (zhead[0] * 256u + zhead[1]) % 31 != 0)
		return FILETYPE_BAD_IMAGE_DATA;
	/* The filtered rows hold at least height * ceil(width * bpp / 8)
	 * bytes (more when interlaced); deflate packs at most 1032 bytes into
	 * one, so fewer IDAT bytes cannot be a real image of that size. Both
	 * factors are bounded by the pixel limit above. */
	uint64_t row = ((uint64_t)width * bpp + 7) / 8;
	if (row * height / 1032 > idat_bytes)
		return FILETYPE_BAD_IMAGE_DATA;
	if (info) {
		info->width = width;
		info->height = height;
	}
	return FILETYPE_OK;
}

/* ---- JPEG --------------------------------------------------------------- */

#define JPEG_MAX_IMAGES 8 /* a primary image and its MPF companions */

static int
jpeg_is_sof(unsigned m)
{
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* Scans entropy-coded data from pos to the next marker; returns its
 * position (of the 0xFF) or len when the bytes end first. */
static size_t
jpeg_skip_scan(const unsigned char *p, size_t len, size_t pos)
{
	while (pos < len) {
		if (p[pos] != 0xFF) {
			pos++;
			continue;
		}
		if (pos + 1 >= len)
			return len;
		unsigned next = p[pos + 1];
		if (next == 0x00 || (next >= 0xD0 && next <= 0xD7))
			pos += 2;
		else if (next == 0xFF)
			pos++; /* a fill byte before a marker */
		else
			return pos;
	}
	return len;
}

/* One image from SOI to EOI; *end gets the position after its EOI. */
static enum filetype_reason
jpeg_image(const unsigned char *p, size_t len, uint64_t max_pixels,
    struct filetype_info *info, size_t *end)
{
	size_t pos = 2;
	int seen_sof = 0, seen_sos = 0;
	uint32_t width = 0, height = 0;
	enum filetype_reason r;

	if (len < 3 || p[0] != 0xFF || p[1] != 0xD8 || p[2] != 0xFF)
		return FILETYPE_BAD_SIGNATURE;
	for (;;) {
		if (pos >= len)
			return FILETYPE_TRUNCATED;
		if (p[pos] != 0xFF)
			return FILETYPE_BAD_CHUNK; /* bytes between segments */
		while (pos < len && p[pos] == 0xFF)
			pos++; /* fill bytes */
		if (pos >= len)
			return FILETYPE_TRUNCATED;
		unsigned m = p[pos++];
		if (m == 0xD9) {
			if (!seen_sof || !seen_sos)
				return FILETYPE_NO_IMAGE_DATA;
			break;
		}
		if (m == 0xD8 || m == 0x00 || m == 0x01 ||
		    (m >= 0xD0 && m <= 0xD7))
			return FILETYPE_BAD_ORDER; /* SOI again, RST outside a scan */
		if (!(jpeg_is_sof(m) || m == 0xC4 || m == 0xCC ||
		        (m >= 0xDA && m <= 0xDF) || (m >= 0xE0 && m <= 0xEF) ||
		        m == 0xFE))
			return FILETYPE_UNKNOWN_CRITICAL;
		if (len - pos < 2)
			return FILETYPE_TRUNCATED;
		unsigned n = be16(p + pos);
		if (n < 2)
			return FILETYPE_BAD_CHUNK;
		if (len - pos < n)
			return FILETYPE_TRUNCATED;
		const unsigned char *s = p + pos + 2;
		unsigned body = n - 2;
		if (jpeg_is_sof(m)) {
			if (seen_sof)
				return FILETYPE_BAD_ORDER;
			seen_sof = 1;
			if (body < 6)
				return FILETYPE_BAD_HEADER;
			height = be16(s + 1);
			width = be16(s + 3);
			if ((r = pixels_ok(width, height, max_pixels)) != 0)
				return r;
			if (s[0] < 2 || s[0] > 16 || s[5] < 1 || s[5] > 4 ||
			    body != 6 + 3u * s[5])
				return FILETYPE_BAD_HEADER;
		} else if (m == 0xDA) {
			if (!seen_sof)
				return FILETYPE_BAD_ORDER;
			if (body < 1 || s[0] < 1 || s[0] > 4 ||
			    body != 4 + 2u * s[0])
				return FILETYPE_BAD_HEADER;
			seen_sos = 1;
			pos = jpeg_skip_scan(p, len, pos + n);
			continue;
		}
		pos += n;
	}
	*end = pos;
	if (info) {
		info->width = width;
		info->height = height;
	}
	return FILETYPE_OK;
}

/* The first image, then the images phones append after its EOI (CIPA
 * DC-007 Multi-Picture Format: previews, depth and gain maps), each a whole
 * JPEG of its own; anything else after an EOI is refused. */
static enum filetype_reason
jpeg_check(const unsigned char *p, size_t len, uint64_t max_pixels,
    struct filetype_info *info)
{
	size_t pos = 0, end;
	enum filetype_reason r;

	for (int image = 0; pos < len; image++) {
		if (image > 0 &&
		    (len - pos < 3 || p[pos] != 0xFF || p[pos + 1] != 0xD8 ||
		        p[pos + 2] != 0xFF))
			return FILETYPE_TRAILING_DATA;
		if (image == JPEG_MAX_IMAGES)
			return FILETYPE_TRAILING_DATA;
		r = jpeg_image(p + pos, len - pos, max_pixels,
		    image == 0 ? info : NULL, &end);
		if (r != FILETYPE_OK)
			return r;
		pos += end;
	}
	return pos == 0 ? FILETYPE_BAD_SIGNATURE : FILETYPE_OK;
}

/* ---- PDF ---------------------------------------------------------------- */

static int
pdf_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\0';
}

static int
pdf_delim(unsigned char c)
{
	return pdf_space(c) || c == '(' || c == ')' || c == '<' || c == '>' ||
	    c == '[' || c == ']' || c == '{' || c == '}' || c == '/' ||
	    c == '%';
}

static int
pdf_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static size_t
pdf_skip_space(const unsigned char *p, size_t len, size_t pos)
{
	while (pos < len && pdf_space(p[pos]))
		pos++;
	return pos;
}

/* Reads an unsigned integer at pos (at most 10 digits); returns the
 * position after it, or 0 when there is none. */
static size_t
pdf_uint(const unsigned char *p, size_t len, size_t pos, uint64_t *out)
{
	size_t start = pos;
	uint64_t v = 0;

	while (pos < len && pdf_digit(p[pos]) && pos - start < 10)
		v = v * 10 + (uint64_t)(p[pos++] - '0');
	if (pos == start || (pos < len && pdf_digit(p[pos])))
		return 0;
	*out = v;
	return pos;
}

/* Whether the keyword kw stands at pos, followed by a delimiter or the end. */
static int
pdf_keyword(const unsigned char *p, size_t len, size_t pos, const char *kw)
{
	size_t n = strlen(kw);

	return len - pos >= n && memcmp(p + pos, kw, n) == 0 &&
	    (pos + n == len || pdf_delim(p[pos + n]));
}

/* Reads "N G R" at pos; returns the position after it or 0. */
static size_t
pdf_ref(const unsigned char *p, size_t len, size_t pos)
{
	uint64_t v;

	pos = pdf_skip_space(p, len, pos);
	if ((pos = pdf_uint(p, len, pos, &v)) == 0 || v == 0)
		return 0;
	if (pos >= len || !pdf_space(p[pos]))
		return 0;
	pos = pdf_skip_space(p, len, pos);
	if ((pos = pdf_uint(p, len, pos, &v)) == 0 || v > 65535)
		return 0;
	if (pos >= len || !pdf_space(p[pos]))
		return 0;
	pos = pdf_skip_space(p, len, pos);
	return pdf_keyword(p, len, pos, "R") ? pos + 1 : 0;
}

/* What pdf_dict found in a dictionary's top level. */
struct pdf_dict {
	int root;        /* /Root N G R */
	int type_xref;   /* /Type /XRef */
	int has_length;  /* /Length as a direct integer */
	uint64_t length; /* its value */
};

/* Walks the dictionary "<<...>>" starting at pos (which must be "<<"),
 * noting the keys of its top level; returns the position after its ">>" or
 * 0 when it is malformed or unterminated. Strings, hex strings, comments
 * and nested dictionaries and arrays are skipped by their syntax. */
static size_t
pdf_dict(const unsigned char *p, size_t len, size_t pos, struct pdf_dict *d)
{
	int depth = 0; /* dictionary and array nesting */

	memset(d, 0, sizeof(*d));
	if (len - pos < 2 || p[pos] != '<' || p[pos + 1] != '<')
		return 0;
	while (pos < len) {
		unsigned char c = p[pos];
		if (c == '<' && pos + 1 < len && p[pos + 1] == '<') {
			if (++depth > 64)
				return 0;
			pos += 2;
		} else if (c == '>' && pos + 1 < len && p[pos + 1] == '>') {
			pos += 2;
			if (--depth == 0)
				return pos;
		} else if (c == '[') {
			if (++depth > 64)
				return 0;
			pos++;
		} else if (c == ']') {
			if (--depth <= 0)
				return 0;
			pos++;
		} else if (c == '(') {
			int paren = 1;
			for (pos++; pos < len && paren > 0; pos++) {
				if (p[pos] == '\\')
					pos++;
				else if (p[pos] == '(')
					paren++;
				else if (p[pos] == ')')
					paren--;
			}
			if (paren > 0)
				return 0;
		} else if (c == '<') {
			for (pos++; pos < len && p[pos] != '>'; pos++)
				;
			if (pos >= len)
				return 0;
			pos++;
		} else if (c == '%') {
			while (pos < len && p[pos] != '\r' && p[pos] != '\n')
				pos++;
		} else if (c == '/' && depth == 1) {
			size_t name = ++pos;
			while (pos < len && !pdf_delim(p[pos]))
				pos++;
			size_t n = pos - name;
			size_t after;
			if (n == 4 && memcmp(p + name, "Root", 4) == 0) {
				if ((after = pdf_ref(p, len, pos)) == 0)
					return 0;
				d->root = 1;
				pos = after;
			} else if (n == 4 && memcmp(p + name, "Type", 4) == 0) {
				after = pdf_skip_space(p, len, pos);
				if (len - after >= 5 &&
				    memcmp(p + after, "/XRef", 5) == 0 &&
				    (after + 5 == len ||
				        pdf_delim(p[after + 5])))
					d->type_xref = 1;
			} else if (n == 6 &&
			    memcmp(p + name, "Length", 6) == 0) {
				uint64_t v;
				after = pdf_skip_space(p, len, pos);
				after = pdf_uint(p, len, after, &v);
				/* "12 0 R" is indirect: not a direct length */
				if (after != 0 && pdf_ref(p, len, pos) == 0) {
					d->has_length = 1;
					d->length = v;
				}
			}
		} else {
			pos++;
		}
	}
	return 0;
}

/* An xref table at pos ("xref" already seen there): subsections of
 * "start count" and count 20-byte entries, then "trailer <<...>>". */
static enum filetype_reason
pdf_xref_table(const unsigned char *p, size_t len, size_t pos)
{
	struct pdf_dict d;
	size_t entries = 0;

	pos += 4;
	for (;;) {
		uint64_t start, count;
		pos = pdf_skip_space(p, len, pos);
		if (pdf_keyword(p, len, pos, "trailer"))
			break;
		if ((pos = pdf_uint(p, len, pos, &start)) == 0)
			return FILETYPE_BAD_XREF;
		if (pos >= len || p[pos] != ' ')
			return FILETYPE_BAD_XREF;
		if ((pos = pdf_uint(p, len, pos + 1, &count)) == 0)
			return FILETYPE_BAD_XREF;
		/* the end of the subsection line */
		while (pos < len && (p[pos] == ' ' || p[pos] == '\t'))
			pos++;
		if (pos < len && p[pos] == '\r')
			pos++;
		if (pos < len && p[pos] == '\n')
			pos++;
		if ((len - pos) / 20 < count)
			return FILETYPE_TRUNCATED;
		for (uint64_t i = 0; i < count; i++, pos += 20) {
			const unsigned char *e = p + pos;
			uint64_t offset = 0;
			for (int k = 0; k < 10; k++)
				if (pdf_digit(e[k]))
					offset = offset * 10 + (e[k] - '0');
				else
					return FILETYPE_BAD_XREF;
			for (int k = 11; k < 16; k++)
				if (!pdf_digit(e[k]))
					return FILETYPE_BAD_XREF;
			if (e[10] != ' ' || e[16] != ' ' ||
			    (e[17] != 'n' && e[17] != 'f') ||
			    !pdf_space(e[18]) || !pdf_space(e[19]))
				return FILETYPE_BAD_XREF;
			if (e[17] == 'n' && offset >= len)
				return FILETYPE_BAD_XREF;
			entries++;
		}
	}
	if (entries == 0)
		return FILETYPE_BAD_XREF;
	pos = pdf_skip_space(p, len, pos + 7);
	if (pdf_dict(p, len, pos, &d) == 0)
		return FILETYPE_BAD_XREF;
	return d.root ? FILETYPE_OK : FILETYPE_NO_ROOT;
}

/* A cross-reference stream "N G obj <<... /Type /XRef ...>> stream". */
static enum filetype_reason
pdf_xref_stream(const unsigned char *p, size_t len, size_t pos)
{
	struct pdf_dict d;
	uint64_t v;

	if ((pos = pdf_uint(p, len, pos, &v)) == 0 || v == 0)
		return FILETYPE_BAD_XREF;
	if (pos >= len || !pdf_space(p[pos]))
		return FILETYPE_BAD_XREF;
	pos = pdf_skip_space(p, len, pos);
	if ((pos = pdf_uint(p, len, pos, &v)) == 0 || v > 65535)
		return FILETYPE_BAD_XREF;
	pos = pdf_skip_space(p, len, pos);
	if (!pdf_keyword(p, len, pos, "obj"))
		return FILETYPE_BAD_XREF;
	pos = pdf_skip_space(p, len, pos + 3);
	if ((pos = pdf_dict(p, len, pos, &d)) == 0 || !d.type_xref)
		return FILETYPE_BAD_XREF;
	pos = pdf_skip_space(p, len, pos);
	if (!pdf_keyword(p, len, pos, "stream"))
		return FILETYPE_BAD_XREF;
	pos += 6;
	if (pos < len && p[pos] == '\r')
		pos++;
	if (pos >= len || p[pos] != '\n')
		return FILETYPE_BAD_XREF;
	pos++;
	if (d.has_length) {
		if (len - pos < d.length)
			return FILETYPE_TRUNCATED;
		pos = pdf_skip_space(p, len, pos + (size_t)d.length);
		if (!pdf_keyword(p, len, pos, "endstream"))
			return FILETYPE_BAD_XREF;
	}
	return d.root ? FILETYPE_OK : FILETYPE_NO_ROOT;
}

static enum filetype_reason
pdf_check(const unsigned char *p, size_t len)
{
	static const char eof[] = "%%EOF", sx[] = "startxref";
	size_t end = len, at;
	uint64_t offset;

	if (len < 9 || memcmp(p, "%PDF-", 5) != 0)
		return FILETYPE_BAD_SIGNATURE;
	if (!((p[5] == '1' && p[6] == '.' && p[7] >= '0' && p[7] <= '7') ||
	        (p[5] == '2' && p[6] == '.' && p[7] == '0')) ||
	    (p[8] != '\r' && p[8] != '\n'))
		return FILETYPE_BAD_SIGNATURE;
	while (end > 0 && pdf_space(p[end - 1]))
		end--;
	if (end < 9 + 5 || memcmp(p + end - 5, eof, 5) != 0)
		return FILETYPE_NO_EOF;
	/* Back from %%EOF: end of line, the offset, end of line, startxref. */
	at = end - 5;
	while (at > 9 && pdf_space(p[at - 1]))
		at--;
	size_t digits_end = at;
	while (at > 9 && pdf_digit(p[at - 1]))
		at--;
	if (at == digits_end || pdf_uint(p, len, at, &offset) != digits_end)
		return FILETYPE_NO_STARTXREF;
	size_t digits = at;
	while (at > 9 && pdf_space(p[at - 1]))
		at--;
	if (at == digits || at < 9 + sizeof(sx) - 1 ||
	    memcmp(p + at - (sizeof(sx) - 1), sx, sizeof(sx) - 1) != 0)
		return FILETYPE_NO_STARTXREF;
	at -= sizeof(sx) - 1;
	if (offset < 9 || offset >= at)
		return FILETYPE_BAD_XREF;
	if (pdf_keyword(p, at, (size_t)offset, "xref"))
		return pdf_xref_table(p, at, (size_t)offset);
	return pdf_xref_stream(p, at, (size_t)offset);
}

/* ---- the entry points --------------------------------------------------- */

enum filetype_reason
filetype_check(enum filetype type, const void *data, size_t len,
    uint64_t max_pixels, struct filetype_info *info)
{
	const unsigned char *p = data;

	if (info)
		memset(info, 0, sizeof(*info));
	if (len > 0 && p == NULL)
		return FILETYPE_BAD_SIGNATURE;
	switch (type) {
	case FILETYPE_PNG:
		return png_check(p, len, max_pixels, info);
	case FILETYPE_JPEG:
		return jpeg_check(p, len, max_pixels, info);
	case FILETYPE_PDF:
		return pdf_check(p, len);
	}
	return FILETYPE_BAD_SIGNATURE;
}

static const struct {
	const char *name;
	const char *text;
} filetype_reasons[] = {
    [FILETYPE_OK] = {"ok", "文件有效"},
    [FILETYPE_BAD_SIGNATURE] = {"bad_signature", "文件头不是该类型的文件头"},
    [FILETYPE_TRUNCATED] = {"truncated", "文件不完整（已被截断）"},
    [FILETYPE_BAD_CHUNK] = {"bad_chunk", "文件结构损坏"},
    [FILETYPE_BAD_CRC] = {"bad_crc", "文件校验值不符，内容已损坏"},
    [FILETYPE_BAD_HEADER] = {"bad_header", "图片头信息无效"},
    [FILETYPE_BAD_DIMENSIONS] = {"bad_dimensions", "图片宽度或高度无效"},
    [FILETYPE_TOO_MANY_PIXELS] = {"too_many_pixels", "图片像素超过上限"},
    [FILETYPE_BAD_ORDER] = {"bad_order", "文件结构顺序错误"},
    [FILETYPE_NO_IMAGE_DATA] = {"no_image_data", "图片没有图像数据"},
    [FILETYPE_BAD_IMAGE_DATA] = {"bad_image_data", "图片图像数据无效"},
    [FILETYPE_UNKNOWN_CRITICAL] = {"unknown_critical",
        "文件含有无法识别的关键结构"},
    [FILETYPE_TRAILING_DATA] = {"trailing_data", "文件结尾之后还有多余数据"},
    [FILETYPE_NO_EOF] = {"no_eof", "PDF 文件没有结尾标记（可能已被截断）"},
    [FILETYPE_NO_STARTXREF] = {"no_startxref", "PDF 文件缺少交叉引用位置"},
    [FILETYPE_BAD_XREF] = {"bad_xref", "PDF 文件的交叉引用表无效"},
    [FILETYPE_NO_ROOT] = {"no_root", "PDF 文件的 trailer 缺少 /Root"},
};

const char *
filetype_reason_name(enum filetype_reason reason)
{
	if ((unsigned)reason >=
	    sizeof(filetype_reasons) / sizeof(filetype_reasons[0]))
		return "unknown";
	return filetype_reasons[reason].name;
}

const char *
filetype_reason_text(enum filetype_reason reason)
{
	if ((unsigned)reason >=
	    sizeof(filetype_reasons) / sizeof(filetype_reasons[0]))
		return "文件无效";
	return filetype_reasons[reason].text;
}
