/* licence — the pure half of business-licence (营业执照) recognition, no
 * I/O: reading the fields out of the text lines Tesseract returns (ocr.c),
 * normalising values (full/half-width, spaces, 万元 amounts, dates, 长期) and
 * comparing each field with the enterprise record. Unit-tested in
 * test_licence.c.
 *
 * A recognition's stored result (licence_ocr.fields, jsonb) is the object
 * lic_read_json() builds: {"<field>": {"value", "normalised", "confidence"}
 * or null when the field was not read}. */
#ifndef CAPLAT_ENT_LICENCE_H
#define CAPLAT_ENT_LICENCE_H

#include <jansson.h>
#include <stddef.h>

enum lic_field {
	LIC_NAME,      /* 名称 ↔ basic.name */
	LIC_USCC,      /* 统一社会信用代码 ↔ basic.uscc */
	LIC_TYPE,      /* 类型 (not in the record) */
	LIC_LEGAL_REP, /* 法定代表人 ↔ basic.legal_rep_name */
	LIC_CAPITAL,   /* 注册资本 ↔ basic.registered_capital_fen */
	LIC_FOUNDED,   /* 成立日期 (not in the record) */
	LIC_DOMICILE,  /* 住所 ↔ basic.domicile */
	LIC_TERM,      /* 营业期限 (not in the record) */
	LIC_NFIELDS
};

/* A field's wire name ("name", "uscc", …), Chinese label, and the record's
 * path it is compared with (NULL when the record has no such field). */
const char *lic_field_name(enum lic_field f);
const char *lic_field_label(enum lic_field f);
const char *lic_field_record_path(enum lic_field f);

/* Below this line confidence (0-100) a read value is unreadable: a doubtful
 * read is never shown as a mismatch. */
#define LIC_MIN_CONFIDENCE 50

/* One text line as the recogniser returned it (UTF-8) and its confidence. */
struct lic_line {
	const char *text;
	int confidence;
};

#define LIC_VALUE_MAX 256
struct lic_read {
	char value[LIC_NFIELDS][LIC_VALUE_MAX]; /* "" when not read */
	int confidence[LIC_NFIELDS];            /* 0 when not read */
	int labels;        /* how many field labels were found */
	int title;         /* the title 营业执照 was seen */
	int text_chars;    /* characters read with confidence ≥ 50 */
	int uscc_invalid;  /* a USCC was read but failed its check character */
	int uscc_conflict; /* two reads, both valid, disagreed: left unread */
};

/* Reads the fields from lines ("label value" layout; spaces, stray quotes
 * and colons after the label tolerated). The USCC is kept only when its
 * GB 32100 check character holds (O→0, I→1 read as digits first); else
 * uscc_invalid is set and the field stays unread. */
void lic_extract(const struct lic_line *lines, size_t n, struct lic_read *out);

/* A second read of the USCC alone (a model for its alphabet): text is
 * taken when its check character holds and the first read had none, or
 * agreed; a valid second read that contradicts a valid first one leaves the
 * field unread (two readings, one of them wrong: never guess). An invalid
 * second read changes nothing. */
void lic_uscc_read(struct lic_read *r, const char *text, int confidence);

/* Why a recognition yields no fields: NULL when it does (a licence), else
 * "unreadable" (hardly any text: blurred, dark, too small) or
 * "not_a_licence" (text, but no licence's labels). */
const char *lic_verdict(const struct lic_read *r);

/* Returns the stored result object of r (see above). Caller decrefs. */
json_t *lic_read_json(const struct lic_read *r);

/* ---- normalisation: each writes into out (size bytes) and returns 0, or
 * returns -1 when s is not of the kind. ---- */

/* Full-width ASCII → half-width, U+3000 and every white space removed,
 * （）→(), ASCII letters upper-cased, trailing 。.; removed. */
int lic_norm_text(const char *s, char *out, size_t size);
/* "2020年1月2日", "2020-01-02", "2020.1.2", "2020/01/02" → "2020-01-02"
 * (a real calendar date). */
int lic_norm_date(const char *s, char *out, size_t size);
/* "<date>至<date>" or "<date>至长期"/"<date>至永久"/"长期" → "2020-01-02/2050-01-01",
 * "2020-01-02/长期". */
int lic_norm_term(const char *s, char *out, size_t size);
/* An amount → fen: "500万元人民币", "人民币500万元", "500.5万元", "伍佰万元整",
 * "5000000元". Returns -1 when it is none. */
int lic_norm_capital(const char *s, long long *fen);

/* Returns a new LicenceCheck object: recognition (the stored status
 * "pending" | "done" | "failed", reason, the stored fields object, all
 * borrowed; status NULL = no licence recognised yet) against data (the
 * record body, borrowed): status, reason, flagged (any mismatch) and one
 * entry per field {field, label, result, record, recognised, confidence},
 * result "match" | "mismatch" | "unreadable" | "not_compared". Caller
 * decrefs. */
json_t *lic_compare(const char *status, const char *reason, json_t *fields,
    json_t *data);

/* The Chinese message of a failure reason. */
const char *lic_reason_text(const char *reason);

#endif
