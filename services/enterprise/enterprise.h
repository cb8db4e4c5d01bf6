/* enterprise — the service's internal interfaces: configuration, the
 * handlers' shared helpers, the route table and the event consumers. The
 * store (store.h), the domain rules (rules.h), the working-day calendar
 * (workday.h) and the blob store (blob.h) have their own headers. */
#ifndef CAPLAT_ENTERPRISE_H
#define CAPLAT_ENTERPRISE_H

#include "http.h"
#include "svc.h"

#include <jansson.h>

struct blob_store;
struct db_result;
struct ent_err;

/* An upload's size limit: 5 MiB (API.md). */
#define ENT_FILE_MAX (5 * 1024 * 1024)

struct ent_config {
	const char *sms_provider; /* "local:<dir>" (common/sms.h) */
	const char
	    *blob_store; /* "local:<dir>"; "" = local:$CAPLAT_VAR_DIR/blobs */
	long claim_ttl;  /* seconds a reviewer's claim holds */
};

struct ent {
	struct svc svc;
	struct ent_config cfg;
	struct blob_store *blobs;
};

extern struct ent ent;

/* ---- helpers shared by the handler files (handlers.c) ---- */

/* Answers 503 when the database is unavailable, 500 otherwise. */
void ent_reply_db_error(struct http_req *req, const struct db_result *res);
/* Returns a new JSON string of s, or JSON null when s is NULL. */
json_t *ent_json_str(const char *s);
/* json_decref() as a data_free for http_req_attach(). */
void ent_json_free(void *json);
/* Answers a domain refusal (rules.h). */
void ent_reply_err(struct http_req *req, const struct ent_err *err);
/* Answers 403 FORBIDDEN and returns -1 unless the session is an account's
 * (not staff). */
int ent_require_account(struct http_req *req);
/* Answers 403 NOT_ENTERPRISE_IDENTITY (current identity not an enterprise
 * one) or, when admin, NOT_ENTERPRISE_ADMIN (role not admin), returning -1;
 * else 0. */
int ent_require_enterprise(struct http_req *req, int admin);
/* Builds a record answer from a store_record_* statement (rec) and a
 * store_history_* statement (hist) of res; returns a new reference, or NULL
 * when rec has no row. with_claim adds the reviewer's claim fields. */
json_t *ent_record_json(const struct db_result *res, int rec, int hist,
    int with_claim);

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

/* ---- events.c ---- */

/* Starts the consumers of the accounts and members read models. */
void ent_events_subscribe(void);

/* ---- notify.c ---- */

/* Starts / stops the sender of the review SMS (a timer on the loop). */
void ent_notify_start(void);
void ent_notify_stop(void);

#endif
