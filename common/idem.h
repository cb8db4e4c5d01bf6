/* idem — the Idempotency-Key of the POSTs that create (orders, payments,
 * refunds), one implementation for every service (Stripe's model): the first
 * response is stored under (scope, key), where scope is the caller (account
 * or staff id), and a retry of the same request answers it again with
 * Idempotent-Replayed: true. "The same request" is judged on its method, its
 * path and the canonical JSON of its body (keys sorted, no spacing), so a
 * retry that orders its keys differently is a replay. The table idem_keys is
 * created in every service schema (deploy/sql/common/002_idempotency.sql);
 * its SQL is in idem_store.c.
 *
 * A creation is: idem_read, idem_hash → idem_claim_add (in the load batch) →
 * idem_claim_result → … → idem_save_add (in the creating transaction) or
 * idem_finish, or idem_release_error when nothing was created and a retry
 * must run again. The service's sweep calls idem_purge (or idem_purge_due). */
#ifndef CAPLAT_IDEM_H
#define CAPLAT_IDEM_H

#include "crypto.h"
#include "db.h"

#include <jansson.h>

struct http_req;

#define IDEM_KEY_MAX 128 /* characters of a key, each 0x21..0x7e */

/* Per service, the same variables everywhere (README's configuration). */
struct idem_config {
	long lock_seconds;    /* an unfinished request holds its key so long */
	long retention_hours; /* keys are purged so long after their creation */
	long purge_seconds;   /* the sweep purges at most this often */
};

/* Loads the CAPLAT_IDEMPOTENCY_* variables into c (defaults: lock 60 s,
 * retention 48 h, purge hourly); a bad value stops the process. */
void idem_config_load(struct idem_config *c);

/* One caller's key for one request. */
struct idem {
	char scope[64]; /* the caller: account id, or staff id */
	char key[IDEM_KEY_MAX + 1];
	char hash[CRYPTO_SHA256_HEX_SIZE]; /* idem_request_hash() */
};

/* ---- pure: no I/O ------------------------------------------------------- */

enum idem_key_check {
	IDEM_KEY_OK,
	IDEM_KEY_MISSING, /* NULL or empty */
	IDEM_KEY_INVALID, /* longer than IDEM_KEY_MAX or not printable ASCII */
};

enum idem_key_check idem_key_check(const char *key);

/* Writes the request's hash (lower-case hex) into out: SHA-256 of
 * "METHOD PATH\n" followed by the hex SHA-256 of the body's canonical JSON
 * (json_dumps with JSON_SORT_KEYS | JSON_COMPACT; "null" for no body). Two
 * bodies that differ only in key order or spacing hash alike. */
void idem_request_hash(const char *method, const char *path, const json_t *body,
    char out[CRYPTO_SHA256_HEX_SIZE]);

/* ---- the request -------------------------------------------------------- */

/* Reads the Idempotency-Key header of req for the caller scope (borrowed)
 * into *out. Returns 0; or answers 400 IDEMPOTENCY_KEY_MISSING or
 * BAD_REQUEST (field Idempotency-Key) itself and returns -1. */
int idem_read(struct http_req *req, const char *scope, struct idem *out);
/* Hashes the request into i->hash (idem_request_hash of req's method and
 * path, and body, borrowed): call it once the body is read, before
 * idem_claim_add. */
void idem_hash(struct idem *i, const struct http_req *req, const json_t *body);

enum idem_claim {
	IDEM_CLAIMED,  /* the key is this request's: go on */
	IDEM_REPLAYED, /* answered with the stored first response */
	IDEM_REFUSED,  /* answered 409 IDEMPOTENCY_KEY_REUSED / _IN_PROGRESS */
};

/* With idem_claim_add()'s two statements at stmt and stmt + 1 of res (a
 * successful batch): says whether the key is ours; otherwise answers req
 * (the stored status and body with Idempotent-Replayed: true, or a 409). */
enum idem_claim idem_claim_result(struct http_req *req,
    const struct db_result *res, int stmt, const struct idem *i);

/* Stores the response under the key, then answers it (even when storing
 * failed: that is logged). Steals body. */
void idem_finish(struct db_pool *db, struct http_req *req, const struct idem *i,
    int status, json_t *body);

/* idem_finish with API.md's error envelope (field may be NULL): a refusal
 * that a retry would get again. */
void idem_finish_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, int status, const char *code, const char *field,
    const char *message);

/* Frees the key (nothing was created: a retry must run again), then answers
 * the error (code, field and message are copied; field may be NULL). */
void idem_release_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, int status, const char *code, const char *field,
    const char *message);
/* idem_release_error with the answer http_reply_db_error gives for res (503
 * counted against postgres, or 500 logged). */
void idem_release_db_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, const struct db_result *res);

/* Deletes the keys older than retention_hours and logs how many, then calls
 * done (may be NULL) with the result: for a sweep job that schedules its
 * next run itself. */
void idem_purge(struct db_pool *db, long retention_hours, db_cb done,
    void *arg);

/* ---- idem_store.c: the statements --------------------------------------- */

/* Adds two statements to b: the claim (a row when the key is now this
 * request's: new, or unfinished with the same hash and silent for more than
 * lock_seconds) and the key's row (request_hash, response_status,
 * response_body). */
void idem_claim_add(struct db_batch *b, const struct idem *i,
    long lock_seconds);
/* Adds the storing of the first response (body: its JSON text, borrowed) to
 * b: put it in the transaction that creates, so both commit together. */
void idem_save_add(struct db_batch *b, const struct idem *i, int status,
    const char *body);
/* Adds the deletion of the key while it has no response. */
void idem_release_add(struct db_batch *b, const struct idem *i);
/* Adds the deletion of every key older than retention_hours; its affected
 * rows are the count. */
void idem_purge_add(struct db_batch *b, long retention_hours);

#endif
