/* importfile — reading an import file, pure: UTF-8 check, CSV (RFC 4180)
 * and JSON Lines records, dates, platform sets and COPY text fields. No I/O;
 * import.c drives it (test_importfile.c). */
#include "issuance.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Returns 0 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), else -1 with *bad the offset of the first bad
 * byte. */
int
importfile_utf8_check(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			k = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			k = 3, cp = c & 0x07;
		else
			goto fail;
		for (size_t m = 1; m <= k; m++) {
			if (i + m >= n || (s[i + m] & 0xC0) != 0x80)
				goto fail;
			cp = (cp << 6) | (s[i + m] & 0x3F);
		}
		if ((k == 2 &&
		        (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			goto fail;
		i += k + 1;
	}
	return 0;
fail:
	*bad = i;
	return -1;
}

long
importfile_line_of(const unsigned char *s, size_t off)
{
	long line = 1;

	for (size_t i = 0; i < off; i++)
		line += s[i] == '\n';
	return line;
}

void
importfile_record_clear(struct importfile_record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->fields[i]);
	r->n = 0;
	json_decref(r->obj);
	r->obj = NULL;
}

/* Reads the next CSV record (RFC 4180: "," separated, '"' quoted with ""
 * inside, CRLF or LF). Returns 1 with r filled, 0 at the end, -1 on an
 * unterminated quote. Blank lines are skipped. */
int
importfile_csv_next(struct importfile_reader *rd, struct importfile_record *r)
{
	importfile_record_clear(r);
	while (rd->p < rd->end && (*rd->p == '\n' || *rd->p == '\r')) {
		rd->line += *rd->p == '\n';
		rd->p++;
	}
	if (rd->p >= rd->end)
		return 0;
	r->line = rd->line;
	for (;;) {
		size_t cap = 64, len = 0;
		char *f = xmalloc(cap);

		if (rd->p < rd->end && *rd->p == '"') {
			rd->p++;
			for (;;) {
				if (rd->p >= rd->end) {
					free(f);
					return -1;
				}
				if (*rd->p == '"') {
					if (rd->p + 1 < rd->end &&
					    rd->p[1] == '"') {
						rd->p++;
					} else {
						rd->p++;
						break;
					}
				}
				if (*rd->p == '\n')
					rd->line++;
				if (len + 2 > cap)
					f = xrealloc(f, cap *= 2);
				f[len++] = *rd->p++;
			}
		}
		while (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n') {
			if (len + 2 > cap)
				f = xrealloc(f, cap *= 2);
			f[len++] = *rd->p++;
		}
		if (len > 0 && f[len - 1] == '\r' &&
		    (rd->p >= rd->end || *rd->p == '\n'))
			len--;
		f[len] = '\0';
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 16;
			r->fields =
			    xrealloc(r->fields, r->cap * sizeof(*r->fields));
		}
		r->fields[r->n++] = f;
		if (rd->p >= rd->end)
			return 1;
		if (*rd->p++ == '\n') {
			rd->line++;
			return 1;
		}
	}
}

/* Reads the next JSON Lines record. Returns 1 with r->obj (NULL when the
 * line is not a JSON object), 0 at the end. */
int
importfile_jsonl_next(struct importfile_reader *rd, struct importfile_record *r)
{
	importfile_record_clear(r);
	for (;;) {
		const char *nl;
		size_t n;

		if (rd->p >= rd->end)
			return 0;
		nl = memchr(rd->p, '\n', (size_t)(rd->end - rd->p));
		n = (size_t)((nl ? nl : rd->end) - rd->p);
		r->line = rd->line++;
		const char *start = rd->p;
		rd->p = nl ? nl + 1 : rd->end;
		if (strspn(start, " \t\r") >= n)
			continue;
		r->obj = json_loadb(start, n, JSON_REJECT_DUPLICATES, NULL);
		if (r->obj != NULL && !json_is_object(r->obj)) {
			json_decref(r->obj);
			r->obj = NULL;
		}
		return 1;
	}
}

/* "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ". */
int
importfile_time(const char *s, time_t *out, int date_only)
{
	struct tm tm = {0};
	int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
	size_t len = strlen(s);

	if (len == 10) {
		if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
			return -1;
	} else if (!date_only && len == 20 && s[10] == 'T' && s[19] == 'Z') {
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h,
		        &mi, &se, &n) != 6 ||
		    n != 20)
			return -1;
	} else {
		return -1;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = timegm(&tm);
	gmtime_r(out, &tm);
	if (tm.tm_mday != d) /* 31 February */
		return -1;
	return 0;
}

void
importfile_pg_time(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S+00", &tm);
}

/* "{A,B}" from codes separated by ',', ';', '|' or blanks: sorted, without
 * repeats. Returns NULL (and reports) when a code is malformed. */
char *
importfile_platforms(const char *s)
{
	char *copy = xstrdup(s), *save = NULL, *tok, *out;
	char *codes[64];
	size_t n = 0;

	for (tok = strtok_r(copy, ",;| \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ",;| \t", &save)) {
		size_t i;

		if (!cert_platform_code_ok(tok) || n == ARRAY_LEN(codes)) {
			free(copy);
			return NULL;
		}
		for (i = 0; i < n && strcmp(codes[i], tok) < 0; i++)
			;
		if (i < n && strcmp(codes[i], tok) == 0)
			continue;
		memmove(codes + i + 1, codes + i, (n - i) * sizeof(*codes));
		codes[i] = tok;
		n++;
	}
	out = xstrdup("{");
	for (size_t i = 0; i < n; i++) {
		char *more = xasprintf("%s%s%s", out, i ? "," : "", codes[i]);
		free(out);
		out = more;
	}
	char *done = xasprintf("%s}", out);
	free(out);
	free(copy);
	return done;
}

/* Appends s as one COPY text field (NULL as \N) and a tab or newline. */
void
importfile_copy_field(struct importfile_buf *b, const char *s, int last)
{
	size_t need = s ? strlen(s) * 2 + 4 : 4;

	if (b->len + need + 1 > b->cap) {
		b->cap = (b->len + need + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	if (s == NULL) {
		memcpy(b->data + b->len, "\\N", 2);
		b->len += 2;
	} else {
		for (; *s; s++) {
			char c = *s, e = 0;

			if (c == '\\')
				e = '\\';
			else if (c == '\n')
				e = 'n';
			else if (c == '\r')
				e = 'r';
			else if (c == '\t')
				e = 't';
			if (e) {
				b->data[b->len++] = '\\';
				b->data[b->len++] = e;
			} else {
				b->data[b->len++] = c;
			}
		}
	}
	b->data[b->len++] = last ? '\n' : '\t';
}

/* An RFC 9562 UUID version 7 as text: ms the Unix time in milliseconds (48
 * bits), seq a counter below 2^42 unique for that ms (12 bits in rand_a,
 * 30 at the top of rand_b after the variant), rnd 32 random bits. The layout
 * of import_uuid() (060_import_merge_ordered_batched.sql). */
void
importfile_uuid7(char out[37], int64_t ms, uint64_t seq,
    const unsigned char rnd[4])
{
	unsigned char b[16];

	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((seq >> 38) & 0x0f));
	b[7] = (unsigned char)(seq >> 30);
	b[8] = (unsigned char)(0x80 | ((seq >> 24) & 0x3f));
	b[9] = (unsigned char)(seq >> 16);
	b[10] = (unsigned char)(seq >> 8);
	b[11] = (unsigned char)seq;
	memcpy(b + 12, rnd, 4);
	/* (by hand: snprintf of 16 bytes, twice per row, was a tenth of the
	 * job's reading of 10^5 rows) */
	for (int i = 0, k = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = "0123456789abcdef"[b[i] >> 4];
		out[k++] = "0123456789abcdef"[b[i] & 15];
	}
	out[36] = '\0';
}
