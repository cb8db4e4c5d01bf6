/* handlers — what the handler files (handlers.c, notify.c, finance.c) share:
 * error replies, idempotency keys, the payment's JSON, the route entries. */
#ifndef CAPLAT_PAYMENTS_HANDLERS_H
#define CAPLAT_PAYMENTS_HANDLERS_H

#include "crypto.h"
#include "http.h"

#include <jansson.h>

struct db_batch;
struct db_result;
struct json_field_err;

void pay_reply_field_err(struct http_req *req,
    const struct json_field_err *err);
/* Returns a new API.md error envelope; field may be NULL. */
json_t *pay_error_json(const char *code, const char *field,
    const char *message);
/* A Payment object from a store_payment_get_sql row. New reference. */
json_t *pay_payment_json(const struct db_result *res, int stmt, int row);

/* An Idempotency-Key of one caller (PERFORMANCE.md: Stripe's model). */
struct idem {
	char account[64];
	char key[129];
	char hash[CRYPTO_SHA256_HEX_SIZE]; /* of method, path and body */
};

/* Reads the Idempotency-Key header; answers 400 IDEMPOTENCY_KEY_MISSING or
 * BAD_REQUEST itself and returns -1. */
int idem_read(struct http_req *req, const char *account, struct idem *out);
/* Adds two statements to b: the claim and the key's row. */
void idem_claim_add(struct db_batch *b, const struct idem *i);
/* With the claim at statement stmt: returns 1 when the key is ours;
 * otherwise answers (the stored first response, or 409
 * IDEMPOTENCY_KEY_REUSED / IDEMPOTENCY_IN_PROGRESS) and returns 0. */
int idem_claimed_or_reply(struct http_req *req, const struct db_result *res,
    int stmt, const struct idem *i);
/* Stores the response under the key, then answers it. Steals body. */
void idem_finish(struct http_req *req, const struct idem *i, int status,
    json_t *body);
void idem_finish_error(struct http_req *req, const struct idem *i, int status,
    const char *code, const char *field, const char *message);
/* Frees the key (a retry runs again), then answers the error: for
 * failures of a dependency, where a retry may succeed. */
void idem_release_error(struct http_req *req, const struct idem *i, int status,
    const char *code, const char *message);

/* notify.c */
void pay_notify_alipay(struct http_req *req);
void pay_notify_wechat(struct http_req *req);
/* finance.c */
void pay_finance_refund(struct http_req *req);
void pay_finance_bill(struct http_req *req);
void pay_finance_reconciliation(struct http_req *req);

#endif
