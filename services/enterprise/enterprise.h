/* enterprise — the service's internal interfaces: configuration, the
 * helpers the handler files share (enterprise.c), the route table and the
 * handlers of each area, the store (every SQL statement, store.c), the event
 * consumers, the review SMS sender, the licence recognition (ocr.c) and the
 * timers. The pure modules keep their own headers: the domain rules
 * (rules.h), the working-day calendar (workday.h), the blob store (blob.h)
 * and the licence fields (licence.h). */
#ifndef CAPLAT_ENTERPRISE_H
#define CAPLAT_ENTERPRISE_H

#include "http.h"
#include "svc.h"

#include <jansson.h>

struct blob_store;
struct db_batch;
struct db_result;
struct ent_admin_application;
struct ent_err;
struct ent_profile_update;
struct ent_refs;

/* An upload's size limit: 5 MiB (API.md). */
#define ENT_FILE_MAX (5 * 1024 * 1024)

struct ent_config {
	const char *sms_provider; /* "local:<dir>" (common/sms.h) */
	const char
	    *blob_store; /* "local:<dir>"; "" = local:$CAPLAT_VAR_DIR/blobs */
	long claim_ttl;  /* seconds a reviewer's claim holds */
	long upload_max_pixels;  /* width x height of an uploaded image */
	const char *id_hash_key; /* HMAC key of applicants' ID numbers */
	long ocr_threads;        /* licence recognition threads, 0 = none */
	const char *ocr_lang;    /* Tesseract languages ("chi_sim") */
};

struct ent {
	struct svc svc;
	struct ent_config cfg;
	struct blob_store *blobs;
};

extern struct ent ent;

/* ---- enterprise.c: helpers shared by the handler files ---- */

/* Returns a new JSON string of s, or JSON null when s is NULL. */
json_t *ent_json_str(const char *s);
/* json_decref() as a data_free for http_req_attach(). */
void ent_json_free(void *json);
/* Answers a domain refusal (rules.h). */
void ent_reply_err(struct http_req *req, const struct ent_err *err);
/* Answers a refusal of the SQL functions (DB_REFUSED, res->message the
 * rule's name, "FILE_NOT_FOUND:<field>" naming its field) from the one
 * table of rule → status and message (the rule is the answer's code), and
 * returns 1; returns 0 without answering for any other result or an
 * unknown rule. */
int ent_reply_refused(struct http_req *req, const struct db_result *res);
/* Answers 403 FORBIDDEN and returns -1 unless the session is an account's
 * (not staff). */
int ent_require_account(struct http_req *req);
/* Answers 403 NOT_ENTERPRISE_IDENTITY (current identity not an enterprise
 * one) or, when admin, NOT_ENTERPRISE_ADMIN (no ACCESS_ENTERPRISE_EDIT on
 * the enterprise: only its administrator edits), returning -1; else 0. */
int ent_require_enterprise(struct http_req *req, int admin);
/* Returns a new LicenceCheck (licence.h lic_compare): licence is the
 * REC_LICENCE text (NULL when the record names no recognised licence),
 * data the record's body (borrowed). */
json_t *ent_licence_check(const char *licence, json_t *data);
/* Builds a record answer from a store_record_* statement (rec) and a
 * store_history_* statement (hist) of res; returns a new reference, or NULL
 * when rec has no row. with_claim adds the reviewer's claim fields. */
json_t *ent_record_json(const struct db_result *res, int rec, int hist,
    int with_claim);
/* Adds to b (the answer's own transaction) the audit entry of a staff read
 * of an enterprise's full data: action "enterprise.record.read_full" (or
 * another read action), object type and id, uscc when known. */
void ent_audit_read(struct db_batch *b, const struct http_req *req,
    const char *action, const char *object_type, const char *object_id,
    const char *uscc);

/* ---- routes ---- */

extern const struct http_route ent_routes[];
extern const size_t ent_nroutes;

/* files.c */
void ent_file_upload(struct http_req *req);
void ent_file_get(struct http_req *req);
/* review.c */
void ent_review_queue(struct http_req *req);
void ent_review_record(struct http_req *req);
void ent_review_claim(struct http_req *req);
void ent_review_release(struct http_req *req);
void ent_review_approve(struct http_req *req);
void ent_review_reject(struct http_req *req);
/* applications.c: 管理员申请, the applicant's side and the reviewers' */
void ent_application_create(struct http_req *req);
void ent_application_list(struct http_req *req);
void ent_review_application(struct http_req *req);
void ent_review_application_approve(struct http_req *req);
void ent_review_application_reject(struct http_req *req);
void ent_review_application_claim(struct http_req *req);
void ent_review_application_release(struct http_req *req);

/* ---- store.c: every SQL statement of the service. Functions append
 * statements to a db.h batch; the columns of each statement are listed
 * here so that continuations read them by index. ---- */

/* files */
void store_file_insert(struct db_batch *b, const char *id, const char *owner,
    const char *sha256, long size, const char *content_type);
/* → 0 sha256, 1 size, 2 content_type, 3 allowed ('t'/'f'): the owner
 * (account_id), or an admin of an enterprise the owner belongs to
 * (admin_uscc, NULL unless the caller is such an admin). */
void store_file_access(struct db_batch *b, const char *id,
    const char *account_id, const char *admin_uscc);

/* ---- profiles: → 0 name, 1 id_number, 2 email, 3 id_card_front_file,
 * 4 id_card_back_file, 5 completed ('t'/'f') ---- */
void store_profile_get(struct db_batch *b, const char *account_id);
/* Saves the given fields; emits enterprise.profile.completed (event_id) on
 * completion. Refuses FILE_NOT_FOUND:<field>. */
void store_profile_save(struct db_batch *b, const char *account_id,
    const struct ent_profile_update *u, const char *event_id);

/* ---- records: → 0 id, 1 uscc, 2 work_status, 3 version, 4 data,
 * 5 approved_data, 6 approved_at, 7 submitted_at, 8 updated_at,
 * 9 claimed_by, 10 claimed_until (both NULL unless a claim runs), 11 seq,
 * 12 the licence recognition ---- */
enum {
	REC_ID,
	REC_USCC,
	REC_WORK_STATUS,
	REC_VERSION,
	REC_DATA,
	REC_APPROVED_DATA,
	REC_APPROVED_AT,
	REC_SUBMITTED_AT,
	REC_UPDATED_AT,
	REC_CLAIMED_BY,
	REC_CLAIMED_UNTIL,
	REC_SEQ,
	REC_LICENCE, /* {status, reason, fields} JSON text of the licence's
	              * recognition (licence_ocr), NULL when none */
};
/* Creates the enterprise's record (id, data JSON text) unless it exists. */
void store_record_ensure(struct db_batch *b, const char *id, const char *uscc,
    const char *data);
void store_record_by_uscc(struct db_batch *b, const char *uscc);
void store_record_by_id(struct db_batch *b, const char *id);
extern const char store_record_read_audit_sql[];
/* History, oldest first: → 0 seq, 1 time, 2 status, 3 opinion, 4 type,
 * 5 change ('t'/'f'). */
void store_history_by_uscc(struct db_batch *b, const char *uscc);
void store_history_by_id(struct db_batch *b, const char *id);
/* Two statements: the referenced files the account owns (→ 0 id,
 * 1 content_type), then the handling point if active (→ 0 code). */
void store_refs_check(struct db_batch *b, const char *account_id,
    const struct ent_refs *refs);
/* Saves data (JSON text) if the record is still at version and not pending;
 * a change opens on an approved record. → one row (0 id) or none. */
void store_record_update(struct db_batch *b, const char *id,
    const char *version, const char *data);
/* The PL/pgSQL transitions (deploy/sql/enterprise): refusals come back as
 * DB_REFUSED with the rule's name. Each → 0 seq (or the claim's end). */
void store_record_submit(struct db_batch *b, const char *id,
    const char *version, const char *account_id, const char *event_id);
void store_record_claim(struct db_batch *b, const char *id,
    const char *reviewer_id, long ttl_seconds);
void store_record_release(struct db_batch *b, const char *id,
    const char *reviewer_id);
void store_record_decide(struct db_batch *b, const char *id,
    const char *reviewer_id, int approve, const char *opinion,
    const char *event_id);

/* ---- administrator applications: → the APP_* columns ---- */
enum {
	APP_ID,
	APP_ACCOUNT,
	APP_NAME,
	APP_USCC,
	APP_ID_MASKED,
	APP_ID_MATCHES, /* 't'/'f', NULL when the profile had no ID number */
	APP_FILE,
	APP_STATUS,
	APP_OPINION,
	APP_REVIEWER,
	APP_SUBMITTED_AT,
	APP_DECIDED_AT,
	APP_LOCK_ADMIN, /* 't' when the enterprise has a lock-proven admin */
	APP_PHONE,      /* the applicant's phone, NULL when not known yet */
	APP_CLAIMED_BY, /* the claiming reviewer while the claim runs */
	APP_CLAIMED_UNTIL,
};
/* The PL/pgSQL submission: refuses FILE_NOT_FOUND:authorization_file_id,
 * APPLICATION_PENDING. matches is "t", "f" or NULL. → 0 id. */
void store_application_submit(struct db_batch *b, const char *id,
    const char *account_id, const struct ent_admin_application *a,
    const char *id_hmac, const char *id_masked, const char *matches,
    const char *event_id);
void store_application_by_id(struct db_batch *b, const char *id);
/* The account's applications, newest first (at most 100). */
void store_applications_by_account(struct db_batch *b, const char *account_id);
/* Refuses NOT_FOUND, APPLICATION_NOT_PENDING, RECORD_CLAIMED, ADMIN_EXISTS.
 * → 0 status. */
void store_application_decide(struct db_batch *b, const char *id,
    const char *reviewer_id, int approve, const char *opinion,
    const char *event_id);
/* Claim for ttl seconds (→ 0 claimed_until) and release; both refuse
 * NOT_FOUND, APPLICATION_NOT_PENDING, RECORD_CLAIMED. */
void store_application_claim(struct db_batch *b, const char *id,
    const char *reviewer_id, long ttl_seconds);
void store_application_release(struct db_batch *b, const char *id,
    const char *reviewer_id);

/* ---- review queue ---- */
/* Pending records and administrator applications, oldest submission first,
 * limit+1 rows after the cursor (both NULL for the first page), of one kind
 * ("record", "admin_application") or both (NULL): → 0 id, 1 name, 2 uscc,
 * 3 submitted_at, 4 submitted epoch ms, 5 cursor time (µs precision),
 * 6 resubmission, 7 change, 8 seq, 9 claimed_by, 10 claimed_until,
 * 11 waited seconds, 12 now epoch ms, 13 kind, 14 legal_rep_id_number,
 * 15 legal_rep_phone (records; in full: the caller masks them),
 * 16 the applicant's ID number, masked (applications), 17 the licence's
 * recognition as REC_LICENCE, 18 the record's data (records). */
void store_queue(struct db_batch *b, int limit, const char *after_time,
    const char *after_id, const char *kind);
/* Calendar exceptions within a year of today: → 0 day (YYYY-MM-DD),
 * 1 workday ('t'/'f'). */
void store_workday_exceptions(struct db_batch *b);
/* → 0 code, 1 name, 2 region, active ones by code. */
void store_handling_points(struct db_batch *b);

/* ---- licence recognition (licence_ocr) ---- */
/* The recognition of an uploaded licence: status "pending", or "failed"
 * with reason (a PDF: unsupported_type). */
void store_licence_ocr_insert(struct db_batch *b, const char *file_id,
    const char *status, const char *reason);
/* Queues the recognition of an image file (JPEG, PNG) unless it has one:
 * a licence uploaded without the purpose, named by a record. */
void store_licence_ocr_ensure(struct db_batch *b, const char *file_id);
/* Fails (interrupted) the rows claimed attempts times whose lease ran out. */
void store_licence_ocr_expire(struct db_batch *b, int attempts);
/* Claims up to limit pending rows (or leases run out) for lease_s seconds:
 * → 0 file_id, 1 sha256. limit 0 claims nothing. */
void store_licence_ocr_claim(struct db_batch *b, int limit, int lease_s,
    int attempts);
/* (attempts) → 0 seconds until the first lease of a running recognition
 * ends, NULL when none runs. */
void store_licence_ocr_next(struct db_batch *b, int attempts);
/* Records a result: status "done" with fields (JSON text) or "failed" with
 * reason. */
void store_licence_ocr_finish(struct db_batch *b, const char *file_id,
    const char *status, const char *reason, const char *fields, long ms);

/* ---- read models, on the bus's consumer transactions ---- */
/* $1 account_id, $2 phone */
extern const char store_account_upsert_sql[];
/* $1 identity_id, $2 account_id, $3 uscc, $4 role, $5 source (or NULL) */
extern const char store_member_upsert_sql[];
/* $1 identity_id: the identity ended (auth.identity.removed) */
extern const char store_member_delete_sql[];

/* ---- events.c ---- */

/* Starts the consumers of the accounts and members read models. */
void ent_events_subscribe(void);

/* ---- licence recognition (ocr.c; the pure half is licence.h) ---- */

struct lic_read;
struct ocr_engine;
struct sweep;

/* Starts / stops the recognition threads (CAPLAT_OCR_THREADS). */
void ent_ocr_start(void);
void ent_ocr_stop(void);
/* One round of the sweep row s (common/sweep.h): claims as many pending
 * recognitions as threads are idle and runs them, then rests until a lease
 * ends; records each result and kicks s as a thread frees up. */
void ent_ocr_round(struct sweep *s);
/* Limits Tesseract's OpenMP to one thread per recognition: first thing in
 * main(), re-executes the program with OMP_THREAD_LIMIT=1 unless it is set
 * (libgomp reads it before main). */
void ent_ocr_one_core(char **argv);
/* A recogniser for one thread (its TessBaseAPI loads on first use). */
struct ocr_engine *ent_ocr_engine_new(void);
void ent_ocr_engine_free(struct ocr_engine *e);
/* Recognises a licence image (JPEG or PNG bytes): 0 with out filled, or -1
 * with *reason "decode_failed", "unreadable", "not_a_licence" or
 * "engine_failed" (out still filled as far as read). Blocking: a pool
 * thread or the ocr command, never the loop. */
int ent_ocr_recognise(struct ocr_engine *e, const char *lang,
    const unsigned char *data, size_t len, struct lic_read *out,
    const char **reason);

/* ---- sweep.c ---- */

/* Starts / stops the service's timers (the sweep table) on the loop. */
void ent_sweep_start(void);
void ent_sweep_stop(void);
/* A licence recognition was queued: its round now (loop thread). */
void ent_sweep_kick_ocr(void);

#endif
