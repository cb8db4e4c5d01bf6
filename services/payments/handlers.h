/* handlers — what the handler files (handlers.c, notify.c, finance.c) share:
 * error replies, the payment's JSON, the route entries (idempotency keys:
 * common/idem.h). */
#ifndef CAPLAT_PAYMENTS_HANDLERS_H
#define CAPLAT_PAYMENTS_HANDLERS_H

#include "http.h"
#include "idem.h"

#include <jansson.h>

struct db_batch;
struct db_result;
struct json_field_err;

void pay_reply_field_err(struct http_req *req,
    const struct json_field_err *err);
/* A Payment object from a store_payment_get_sql row. New reference. */
json_t *pay_payment_json(const struct db_result *res, int stmt, int row);

/* notify.c */
void pay_notify_alipay(struct http_req *req);
void pay_notify_wechat(struct http_req *req);
/* finance.c */
void pay_finance_refund(struct http_req *req);
void pay_finance_bill(struct http_req *req);
void pay_finance_reconciliation(struct http_req *req);

#endif
