/* licence — field extraction, normalisation and comparison of a business
 * licence's recognised text (see licence.h). Strings are UTF-8; nothing here
 * allocates but the JSON answers. */
#include "licence.h"

#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lic_meta {
	const char *name, *label, *record_path;
	const char
	    *labels[4]; /* what the licence prints, most specific first */
};

/* The order of the answer; extraction tries the USCC's labels first so that
 * 名称 never matches inside another label. */
static const struct lic_meta lic_meta[LIC_NFIELDS] = {
    [LIC_NAME] = {"name", "名称", "name", {"名称", NULL}},
    [LIC_USCC] = {"uscc", "统一社会信用代码", "uscc",
        {"统一社会信用代码", "社会信用代码", "信用代码", NULL}},
    [LIC_TYPE] = {"type", "类型", NULL, {"类型", NULL}},
    [LIC_LEGAL_REP] = {"legal_rep", "法定代表人", "legal_rep_name",
        {"法定代表人", "代表人", NULL}},
    [LIC_CAPITAL] = {"registered_capital", "注册资本", "registered_capital_fen",
        {"注册资本", NULL}},
    [LIC_FOUNDED] = {"founded", "成立日期", NULL, {"成立日期", NULL}},
    [LIC_DOMICILE] = {"domicile", "住所", "domicile", {"住所", NULL}},
    [LIC_TERM] = {"term", "营业期限", NULL, {"营业期限", NULL}},
};

static const enum lic_field lic_try_order[LIC_NFIELDS] = {LIC_USCC,
    LIC_LEGAL_REP, LIC_CAPITAL, LIC_FOUNDED, LIC_TERM, LIC_NAME, LIC_TYPE,
    LIC_DOMICILE};

const char *
lic_field_name(enum lic_field f)
{
	return lic_meta[f].name;
}

const char *
lic_field_label(enum lic_field f)
{
	return lic_meta[f].label;
}

const char *
lic_field_record_path(enum lic_field f)
{
	return lic_meta[f].record_path;
}

/* ---- UTF-8 ---- */

/* Decodes one code point at *s, advancing it; invalid bytes read as
 * U+FFFD one byte at a time. */
static uint32_t
utf8_next(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	uint32_t c = p[0];
	int n = 0;

	if (c < 0x80)
		n = 0;
	else if ((c & 0xE0) == 0xC0)
		c &= 0x1F, n = 1;
	else if ((c & 0xF0) == 0xE0)
		c &= 0x0F, n = 2;
	else if ((c & 0xF8) == 0xF0)
		c &= 0x07, n = 3;
	else {
		(*s)++;
		return 0xFFFD;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			(*s)++;
			return 0xFFFD;
		}
		c = (c << 6) | (p[i] & 0x3F);
	}
	*s += n + 1;
	return c;
}

/* Appends c to out (pos bytes used of size); returns -1 when it does not
 * fit (out stays NUL-terminated). */
static int
utf8_put(char *out, size_t size, size_t *pos, uint32_t c)
{
	char b[4];
	size_t n;

	if (c < 0x80)
		b[0] = (char)c, n = 1;
	else if (c < 0x800)
		b[0] = (char)(0xC0 | (c >> 6)),
		b[1] = (char)(0x80 | (c & 0x3F)), n = 2;
	else if (c < 0x10000)
		b[0] = (char)(0xE0 | (c >> 12)),
		b[1] = (char)(0x80 | ((c >> 6) & 0x3F)),
		b[2] = (char)(0x80 | (c & 0x3F)), n = 3;
	else
		b[0] = (char)(0xF0 | (c >> 18)),
		b[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
		b[2] = (char)(0x80 | ((c >> 6) & 0x3F)),
		b[3] = (char)(0x80 | (c & 0x3F)), n = 4;
	if (*pos + n + 1 > size)
		return -1;
	memcpy(out + *pos, b, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

static int
is_space(uint32_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x3000 ||
	    c == 0xA0 || c == 0x2002 || c == 0x2003 || c == 0x200B;
}

/* What OCR leaves between a label and its value, or at a line's ends. */
static int
is_junk(uint32_t c)
{
	return c == ':' || c == '"' || c == '\'' || c == ',' || c == '.' ||
	    c == '|' || c == '_' || c == '-' || c == '*' || c == '`' ||
	    c == '~' || c == ';' || c == '!' || c == 0x201C || c == 0x201D ||
	    c == 0x2018 || c == 0x2019 || c == 0x3001 || c == 0x3002 ||
	    c == 0xAB || c == 0xBB || c == 0xB7 || c == 0x2014 || c == 0x2026 ||
	    c == 0xFFFD;
}

int
lic_norm_text(const char *s, char *out, size_t size)
{
	size_t pos = 0;

	if (size == 0)
		return -1;
	out[0] = '\0';
	while (*s != '\0') {
		uint32_t c = utf8_next(&s);

		if (is_space(c))
			continue;
		if (c >= 0xFF01 && c <= 0xFF5E)
			c -= 0xFEE0;
		else if (c == 0x3008 || c == 0x300A || c == 0x3014)
			c = '('; /* 〈 《 〔 read for （ */
		else if (c == 0x3009 || c == 0x300B || c == 0x3015)
			c = ')';
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (utf8_put(out, size, &pos, c) != 0)
			return -1;
	}
	/* trailing 。.;  */
	while (pos > 0) {
		if (out[pos - 1] == '.' || out[pos - 1] == ';')
			pos--;
		else if (pos >= 3 &&
		    memcmp(out + pos - 3, "\xE3\x80\x82", 3) == 0)
			pos -= 3;
		else
			break;
		out[pos] = '\0';
	}
	return 0;
}

/* Removes junk at both ends of s (normalised text) in place. */
static void
trim_junk(char *s)
{
	const char *p = s, *q;
	size_t len;

	for (;;) {
		q = p;
		if (*p == '\0' || !is_junk(utf8_next(&q)))
			break;
		p = q;
	}
	memmove(s, p, strlen(p) + 1);
	len = strlen(s);
	while (len > 0) {
		/* the last code point */
		size_t start = len - 1;
		while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
			start--;
		q = s + start;
		if (!is_junk(utf8_next(&q)))
			break;
		len = start;
		s[len] = '\0';
	}
}

/* ---- dates, terms, amounts ---- */

static int
real_date(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31};

	if (y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1)
		return 0;
	if (m == 2 && d == 29)
		return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1];
}

/* Reads a date at *p (normalised text), advancing it: Y年M月D日 or
 * Y-M-D / Y.M.D / Y/M/D. Returns 0 with y, m, d set, else -1. */
static int
read_date(const char **p, int *y, int *m, int *d)
{
	const char *s = *p;
	int v[3] = {0, 0, 0};
	static const char *const cjk[] = {"年", "月", "日"};

	for (int i = 0; i < 3; i++) {
		int digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4)
			v[i] = v[i] * 10 + (*s++ - '0'), digits++;
		if (digits == 0 || (i == 0 && digits != 4) ||
		    (i > 0 && digits > 2))
			return -1;
		if (strncmp(s, cjk[i], 3) == 0)
			s += 3;
		else if (i < 2 && (*s == '-' || *s == '.' || *s == '/'))
			s++;
		else if (i < 2)
			return -1;
	}
	if (!real_date(v[0], v[1], v[2]))
		return -1;
	*y = v[0], *m = v[1], *d = v[2];
	*p = s;
	return 0;
}

int
lic_norm_date(const char *s, char *out, size_t size)
{
	char t[LIC_VALUE_MAX];
	const char *p = t;
	int y, m, d;

	if (lic_norm_text(s, t, sizeof(t)) != 0 ||
	    read_date(&p, &y, &m, &d) != 0 || *p != '\0')
		return -1;
	if ((size_t)snprintf(out, size, "%04d-%02d-%02d", y, m, d) >= size)
		return -1;
	return 0;
}

static int
is_forever(const char *p)
{
	return strcmp(p, "长期") == 0 || strcmp(p, "永久") == 0 ||
	    strcmp(p, "长期有效") == 0 || strcmp(p, "无固定期限") == 0;
}

int
lic_norm_term(const char *s, char *out, size_t size)
{
	char t[LIC_VALUE_MAX], to[16];
	const char *p = t;
	int y, m, d, y2, m2, d2;

	if (lic_norm_text(s, t, sizeof(t)) != 0)
		return -1;
	if (is_forever(t))
		return (size_t)snprintf(out, size, "长期") < size ? 0 : -1;
	if (read_date(&p, &y, &m, &d) != 0)
		return -1;
	if (strncmp(p, "至", 3) == 0)
		p += 3;
	else if (*p == '-' || *p == '~')
		p++;
	else
		return -1;
	if (is_forever(p))
		snprintf(to, sizeof(to), "长期");
	else if (read_date(&p, &y2, &m2, &d2) == 0 && *p == '\0')
		snprintf(to, sizeof(to), "%04d-%02d-%02d", y2, m2, d2);
	else
		return -1;
	if ((size_t)snprintf(out, size, "%04d-%02d-%02d/%s", y, m, d, to) >=
	    size)
		return -1;
	return 0;
}

/* A Chinese numeral digit (大写 or 小写), or -1. */
static int
cn_digit(uint32_t c)
{
	static const uint32_t big[] = {0x96F6, 0x58F9, 0x8D30, 0x53C1, 0x8086,
	    0x4F0D, 0x9646, 0x67D2, 0x634C, 0x7396}; /* 零壹贰叁肆伍陆柒捌玖 */
	static const uint32_t small[] = {0x3007, 0x4E00, 0x4E8C, 0x4E09, 0x56DB,
	    0x4E94, 0x516D, 0x4E03, 0x516B, 0x4E5D}; /* 〇一二…九 */

	for (int i = 0; i < 10; i++)
		if (c == big[i] || c == small[i])
			return i;
	if (c == 0x4E24) /* 两 */
		return 2;
	return -1;
}

/* 拾十 10, 佰百 100, 仟千 1000, or 0. */
static int
cn_unit(uint32_t c)
{
	if (c == 0x62FE || c == 0x5341)
		return 10;
	if (c == 0x4F70 || c == 0x767E)
		return 100;
	if (c == 0x4EDF || c == 0x5343)
		return 1000;
	return 0;
}

/* Reads a Chinese-numeral amount in yuan ("伍佰万元整"); -1 when s holds
 * none or something else. */
static long long
cn_amount_yuan(const char *s)
{
	long long yi = 0, wan = 0, section = 0, digit = -1;
	int any = 0;

	while (*s != '\0') {
		uint32_t c = utf8_next(&s);
		int u;

		if ((u = cn_digit(c)) >= 0) {
			digit = u;
			any = 1;
		} else if ((u = cn_unit(c)) > 0) {
			section += (digit < 0 ? 1 : digit) * u;
			digit = -1;
			any = 1;
		} else if (c == 0x4E07) { /* 万 */
			wan = (section + (digit < 0 ? 0 : digit)) * 10000;
			section = 0;
			digit = -1;
		} else if (c == 0x4EBF) { /* 亿 */
			yi = (yi + wan + section + (digit < 0 ? 0 : digit)) *
			    100000000LL;
			wan = section = 0;
			digit = -1;
		} else if (c == 0x5143 || c == 0x5706) { /* 元 圆 */
			break;
		} else {
			return -1;
		}
		if (yi > 1000000000000000LL)
			return -1;
	}
	if (!any)
		return -1;
	return yi + wan + section + (digit < 0 ? 0 : digit);
}

int
lic_norm_capital(const char *s, long long *fen)
{
	char t[LIC_VALUE_MAX], *p, *q;
	long long units = 0, frac = 0, mult = 100; /* fen per unit */
	int fdigits = 0, digits = 0;

	if (lic_norm_text(s, t, sizeof(t)) != 0)
		return -1;
	if (strstr(t, "美元") != NULL || strstr(t, "港元") != NULL ||
	    strstr(t, "欧元") != NULL)
		return -1;
	/* drop 人民币 wherever it is, and a closing 整 */
	while ((p = strstr(t, "人民币")) != NULL)
		memmove(p, p + 9, strlen(p + 9) + 1);
	if ((p = strstr(t, "整")) != NULL && p[3] == '\0')
		*p = '\0';
	q = t;
	if (*q < '0' || *q > '9') {
		long long yuan = cn_amount_yuan(t);

		if (yuan < 0)
			return -1;
		*fen = yuan * 100;
		return 0;
	}
	while ((*q >= '0' && *q <= '9') || *q == ',') {
		if (*q != ',') {
			if (++digits > 15)
				return -1;
			units = units * 10 + (*q - '0');
		}
		q++;
	}
	if (*q == '.') {
		q++;
		while (*q >= '0' && *q <= '9') {
			if (fdigits < 6)
				frac = frac * 10 + (*q - '0'), fdigits++;
			q++;
		}
	}
	if (strcmp(q, "万元") == 0 || strcmp(q, "万") == 0)
		mult = 1000000;
	else if (strcmp(q, "亿元") == 0 || strcmp(q, "亿") == 0)
		mult = 10000000000LL;
	else if (strcmp(q, "元") != 0)
		return -1;
	if (units > 100000000000000000LL / mult)
		return -1;
	*fen = units * mult;
	if (fdigits > 0) {
		long long pow10 = 1;

		for (int i = 0; i < fdigits; i++)
			pow10 *= 10;
		*fen += frac * mult / pow10;
	}
	return 0;
}

/* ---- extraction ---- */

/* The USCC in a value read by OCR: its letters and digits, with the letters
 * the code never uses read as the digits they resemble (O→0, I→1, Z→2,
 * S→5); 0 and the upper-case code in out only when the check character
 * holds. */
static int
read_uscc(const char *v, char out[19])
{
	char c[LIC_VALUE_MAX];
	size_t n = 0;

	for (; *v != '\0' && n + 1 < sizeof(c); v++) {
		char ch = *v;

		if (ch == 'O')
			ch = '0';
		else if (ch == 'I')
			ch = '1';
		else if (ch == 'Z')
			ch = '2';
		else if (ch == 'S')
			ch = '5';
		if ((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z'))
			c[n++] = ch;
		else if ((unsigned char)ch >= 0x80 && n > 0)
			break; /* the code ends where the text resumes */
	}
	c[n] = '\0';
	if (n != 18)
		return -1;
	return validate_uscc(c, out);
}

/* Counts the code points of s. */
static int
utf8_len(const char *s)
{
	int n = 0;

	while (*s != '\0')
		if (((unsigned char)*s++ & 0xC0) != 0x80)
			n++;
	return n;
}

/* Where label starts in t, at most a few junk bytes in; NULL if not. */
static const char *
find_label(const char *t, const char *label)
{
	const char *at = strstr(t, label);

	return at != NULL && at - t <= 6 ? at : NULL;
}

void
lic_extract(const struct lic_line *lines, size_t n, struct lic_read *out)
{
	char t[LIC_VALUE_MAX * 2];

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const char *text = lines[i].text;

		if (text == NULL || lic_norm_text(text, t, sizeof(t)) != 0 ||
		    t[0] == '\0')
			continue;
		if (lines[i].confidence >= 50)
			out->text_chars += utf8_len(t);
		if (strstr(t, "营业执照") != NULL || strstr(t, "执照") != NULL)
			out->title = 1;
		for (size_t k = 0; k < LIC_NFIELDS; k++) {
			enum lic_field f = lic_try_order[k];
			const char *at = NULL, *label = NULL;

			for (int j = 0; lic_meta[f].labels[j] != NULL && !at;
			     j++)
				at = find_label(t,
				    label = lic_meta[f].labels[j]);
			if (at == NULL)
				continue;
			if (out->confidence[f] == 0 && !out->value[f][0]) {
				char v[LIC_VALUE_MAX];

				out->labels++;
				snprintf(v, sizeof(v), "%s",
				    at + strlen(label));
				trim_junk(v);
				if (f == LIC_USCC) {
					char code[19];

					if (read_uscc(v, code) != 0) {
						out->uscc_invalid =
						    v[0] != '\0';
						out->confidence[f] = -1;
						break;
					}
					snprintf(v, sizeof(v), "%s", code);
				}
				if (v[0] != '\0') {
					snprintf(out->value[f], LIC_VALUE_MAX,
					    "%s", v);
					out->confidence[f] =
					    lines[i].confidence > 0
					    ? lines[i].confidence
					    : 1;
				}
			}
			break;
		}
	}
	for (size_t f = 0; f < LIC_NFIELDS; f++)
		if (out->confidence[f] < 0)
			out->confidence[f] = 0;
}

void
lic_uscc_read(struct lic_read *r, const char *text, int confidence)
{
	char t[LIC_VALUE_MAX], code[19];

	if (lic_norm_text(text, t, sizeof(t)) != 0 || read_uscc(t, code) != 0)
		return;
	if (r->value[LIC_USCC][0] != '\0' &&
	    strcmp(r->value[LIC_USCC], code) != 0) {
		r->value[LIC_USCC][0] = '\0';
		r->confidence[LIC_USCC] = 0;
		r->uscc_conflict = 1;
		return;
	}
	if (r->uscc_conflict)
		return;
	snprintf(r->value[LIC_USCC], LIC_VALUE_MAX, "%s", code);
	if (confidence > r->confidence[LIC_USCC])
		r->confidence[LIC_USCC] = confidence > 0 ? confidence : 1;
	r->uscc_invalid = 0;
}

const char *
lic_verdict(const struct lic_read *r)
{
	if (r->labels >= 2)
		return NULL;
	if (r->text_chars < 20 || r->title)
		return "unreadable";
	return "not_a_licence";
}

json_t *
lic_read_json(const struct lic_read *r)
{
	json_t *o = json_object();

	for (int f = 0; f < LIC_NFIELDS; f++) {
		char norm[LIC_VALUE_MAX];
		long long fen;
		json_t *nv = NULL;

		if (r->value[f][0] == '\0') {
			json_object_set_new(o, lic_meta[f].name, json_null());
			continue;
		}
		if (f == LIC_CAPITAL)
			nv = lic_norm_capital(r->value[f], &fen) == 0
			    ? json_integer(fen)
			    : json_null();
		else if (f == LIC_FOUNDED)
			nv = lic_norm_date(r->value[f], norm, sizeof(norm)) == 0
			    ? json_string(norm)
			    : json_null();
		else if (f == LIC_TERM)
			nv = lic_norm_term(r->value[f], norm, sizeof(norm)) == 0
			    ? json_string(norm)
			    : json_null();
		else
			nv = lic_norm_text(r->value[f], norm, sizeof(norm)) == 0
			    ? json_string(norm)
			    : json_null();
		json_object_set_new(o, lic_meta[f].name,
		    json_pack("{s:s, s:o, s:i}", "value", r->value[f],
		        "normalised", nv, "confidence", r->confidence[f]));
	}
	return o;
}

/* ---- comparison ---- */

const char *
lic_reason_text(const char *reason)
{
	static const struct {
		const char *reason, *text;
	} texts[] = {
	    {"unsupported_type",
	        "营业执照须为 JPG 或 PNG 图片，PDF 文件无法识别"},
	    {"unreadable", "图片模糊或过小，无法识别营业执照内容"},
	    {"not_a_licence", "图片中未识别到营业执照的字段"},
	    {"decode_failed", "图片无法解码"},
	    {"interrupted", "识别多次中断，未能完成"},
	    {"blob_missing", "文件读取失败"},
	};

	for (size_t i = 0;
	     reason != NULL && i < sizeof(texts) / sizeof(texts[0]); i++)
		if (strcmp(texts[i].reason, reason) == 0)
			return texts[i].text;
	return reason != NULL ? "识别失败" : NULL;
}

/* The record's value of f as text ("" when empty), for the answer and the
 * comparison; capital in 万元 or 元 as a licence prints it. */
static void
record_text(enum lic_field f, json_t *basic, char *out, size_t size)
{
	json_t *v = json_object_get(basic, lic_meta[f].record_path);

	out[0] = '\0';
	if (json_is_string(v))
		snprintf(out, size, "%s", json_string_value(v));
	else if (json_is_integer(v)) {
		long long fen = json_integer_value(v);

		if (fen % 1000000 == 0)
			snprintf(out, size, "%lld万元", fen / 1000000);
		else
			snprintf(out, size, "%lld.%02lld元", fen / 100,
			    fen % 100);
	}
}

static const char *
field_result(enum lic_field f, json_t *basic, json_t *read)
{
	json_t *rec = json_object_get(basic, lic_meta[f].record_path);
	json_t *norm = json_object_get(read, "normalised");
	json_int_t conf =
	    json_integer_value(json_object_get(read, "confidence"));
	char a[LIC_VALUE_MAX];

	if (!json_is_object(read) || norm == NULL || json_is_null(norm))
		return "unreadable";
	/* A USCC that passed its check character is trusted whatever the
	 * line's confidence; any other value needs the confidence. */
	if (f != LIC_USCC && conf < LIC_MIN_CONFIDENCE)
		return "unreadable";
	if (rec == NULL || json_is_null(rec))
		return "not_compared";
	if (f == LIC_CAPITAL)
		return json_is_integer(rec) && json_is_integer(norm) &&
		        json_integer_value(rec) == json_integer_value(norm)
		    ? "match"
		    : "mismatch";
	if (!json_is_string(rec) ||
	    lic_norm_text(json_string_value(rec), a, sizeof(a)) != 0)
		return "mismatch";
	return json_is_string(norm) && strcmp(a, json_string_value(norm)) == 0
	    ? "match"
	    : "mismatch";
}

json_t *
lic_compare(const char *status, const char *reason, json_t *fields,
    json_t *data)
{
	json_t *basic = json_object_get(data, "basic");
	json_t *list = json_array();
	int flagged = 0, done = status != NULL && strcmp(status, "done") == 0;

	for (int i = 0; i < LIC_NFIELDS; i++) {
		enum lic_field f = (enum lic_field)i;
		json_t *read =
		    done ? json_object_get(fields, lic_meta[f].name) : NULL;
		const char *result;
		char rec[LIC_VALUE_MAX];

		if (!done)
			result = status != NULL && strcmp(status, "failed") == 0
			    ? "unreadable"
			    : "pending";
		else if (lic_meta[f].record_path == NULL)
			result = json_is_object(read) ? "not_compared"
			                              : "unreadable";
		else
			result = field_result(f, basic, read);
		if (strcmp(result, "mismatch") == 0)
			flagged = 1;
		if (lic_meta[f].record_path != NULL)
			record_text(f, basic, rec, sizeof(rec));
		json_t *e = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "field",
		    lic_meta[f].name, "label", lic_meta[f].label, "result",
		    result, "record",
		    lic_meta[f].record_path != NULL && rec[0] != '\0'
		        ? json_string(rec)
		        : json_null(),
		    "recognised",
		    json_is_object(read)
		        ? json_incref(json_object_get(read, "value"))
		        : json_null(),
		    "confidence",
		    json_is_object(read)
		        ? json_incref(json_object_get(read, "confidence"))
		        : json_null());
		json_array_append_new(list, e);
	}
	return json_pack("{s:s, s:o, s:o, s:b, s:o}", "status",
	    status != NULL ? status : "none", "reason",
	    reason != NULL ? json_string(reason) : json_null(), "message",
	    lic_reason_text(reason) != NULL
	        ? json_string(lic_reason_text(reason))
	        : json_null(),
	    "flagged", flagged, "fields", list);
}
