/* rules — the enterprise service's pure domain rules, no I/O: what a valid
 * personal-info update and enterprise-record update look like (every field
 * of the basic, invoice and seal parts), how an update merges into a draft,
 * what a record needs before it can be submitted, and which bytes are which
 * attachment type. Unit-tested in test_rules.c. */
#ifndef CAPLAT_ENT_RULES_H
#define CAPLAT_ENT_RULES_H

#include <jansson.h>
#include <stddef.h>

/* One refusal, ready for http_reply_error (API.md envelope). */
struct ent_err {
	int status;        /* 400 malformed, 422 invalid */
	const char *code;  /* FIELD_TYPE, FIELD_INVALID, USCC_INVALID, … */
	char field[96];    /* dotted path ("basic.uscc"), "" when none */
	char message[192]; /* Chinese, for the user */
};

/* Fills err; field may be NULL. Returns -1, for "return ent_err_set(…)". */
int ent_err_set(struct ent_err *err, int status, const char *code,
    const char *field, const char *message);

/* Registered capital bound: 10^17 fen (a thousand trillion yuan). */
#define ENT_CAPITAL_MAX_FEN 100000000000000000LL
#define ENT_MAX_FILE_REFS 8

/* A file id named by an update: checked against the caller's uploads. */
struct ent_file_ref {
	const char *path; /* "basic.files.business_license" (static) */
	char id[37];      /* lower-case UUID */
	int images_only;  /* JPEG or PNG only (营业执照) */
};

/* What an update refers to outside itself, for the store to check. */
struct ent_refs {
	struct ent_file_ref files[ENT_MAX_FILE_REFS];
	size_t nfiles;
	char handling_point[33]; /* "" when the update names none */
};

/* ---- enterprise record ---- */

/* Returns a new record body {basic, invoice, seal} with every field null but
 * basic.uscc (uscc), basic.name (name, may be NULL) and basic.legal_rep_id_type
 * ("resident_id_card"). Caller decrefs. */
json_t *ent_record_skeleton(const char *uscc, const char *name);

/* Checks an EnterpriseRecordUpdate body: only known parts and fields, each
 * field given of the right type and format (null or "" clears a field but
 * basic.uscc, which must stay the record's uscc). Read-only keys of the
 * record answer (id, status, history, …) are ignored. On success returns 0,
 * sets *patch to a new object holding the normalized given fields in the
 * record's shape (caller decrefs) and fills refs; on error returns -1 with
 * err filled and *patch untouched. */
int ent_record_parse(json_t *body, const char *uscc, json_t **patch,
    struct ent_refs *refs, struct ent_err *err);

/* Returns a new record body: data (borrowed) with patch's fields (borrowed)
 * put over it. Caller decrefs. */
json_t *ent_record_merge(json_t *data, json_t *patch);

/* The checks that need the merged record: the legal representative's ID
 * number against the ID type when the patch touched either (a 居民身份证号码
 * is normalized in place). Returns 0, or -1 with err filled. */
int ent_record_check(json_t *merged, json_t *patch, struct ent_err *err);

/* Returns a new array of the dotted paths a submission still lacks, empty
 * when data (borrowed) is complete. Caller decrefs. */
json_t *ent_record_missing(json_t *data);

/* Returns a new object {basic, invoice, seal} with every known field of data
 * (borrowed), null where absent, in the contract's order. Caller decrefs. */
json_t *ent_record_parts(json_t *data);

/* ---- personal info ---- */

/* A checked ProfileUpdate: NULL / "" where not given. Strings borrowed from
 * the body or held here. */
struct ent_profile_update {
	const char *name;
	char id_number[19];
	const char *email;
	char id_card_front_file[37];
	char id_card_back_file[37];
};

/* Checks a ProfileUpdate body (absent or null fields keep their value; at
 * least one field must be given). Returns 0, or -1 with err filled. */
int ent_profile_parse(json_t *body, struct ent_profile_update *out,
    struct ent_err *err);

/* ---- review ---- */

/* Reads a reviewer's "opinion" from body: at most 1000 characters, no
 * control characters but line breaks and tabs. *out is borrowed from body,
 * NULL when absent, null or blank; required makes that OPINION_REQUIRED.
 * Returns 0, or -1 with err filled. */
int ent_opinion_parse(json_t *body, int required, const char **out,
    struct ent_err *err);

/* Writes the SMS telling an admin a review result into out (size bytes, at
 * most 1024 fit the provider's line): "purpose=review_result record=<id>
 * result=approved|rejected " then the Chinese text, naming the enterprise
 * and, for a rejection, the opinion. Control characters become spaces and
 * the opinion is cut (on a character boundary) to ENT_SMS_OPINION_MAX bytes. */
#define ENT_SMS_OPINION_MAX 300
void ent_review_sms_text(char *out, size_t size, const char *record_id,
    int approved, int change, const char *name, const char *opinion);

/* ---- least privilege ---- */

/* Returns a new object: the public part of a record answer (full, borrowed,
 * as ent_record_json builds it), what an enterprise's members read — id,
 * uscc, status, name, handling_point, invoice_title, taxpayer_id and
 * approved_at, from the data in force. The one list of public fields.
 * Caller decrefs. */
json_t *ent_record_public(json_t *full);

/* ---- administrator applications (管理员申请) ---- */

/* A checked AdminApplicationCreate; strings borrowed from the body or held
 * here. */
struct ent_admin_application {
	const char *enterprise_name;
	char uscc[19];
	char id_number[19];
	char authorization_file_id[37];
};

/* Checks an AdminApplicationCreate body: enterprise_name (text, at most 200
 * characters), uscc (USCC_INVALID), id_number (ID_NUMBER_INVALID) and
 * authorization_file_id (FILE_NOT_FOUND unless a UUID), each required
 * (FIELD_REQUIRED) and a string (FIELD_TYPE). Returns 0, or -1 with err
 * filled, naming the field. */
int ent_admin_application_parse(json_t *body, struct ent_admin_application *out,
    struct ent_err *err);

/* Writes the SMS telling an applicant the decision on an administrator
 * application into out (as ent_review_sms_text): "purpose=admin_application
 * application=<id> result=approved|rejected " then the Chinese text. */
void ent_admin_application_sms_text(char *out, size_t size,
    const char *application_id, int approved, const char *name,
    const char *opinion);

/* ---- attachments ---- */

/* Returns the canonical type ("image/jpeg", "image/png", "application/pdf",
 * static) named by a Content-Type header value (parameters and case
 * ignored), or NULL when it is none of the three. */
const char *ent_file_content_type(const char *header);

/* Returns the canonical type of data by its magic number, or NULL. */
const char *ent_file_sniff(const void *data, size_t len);

#endif
