/* store — every SQL statement of the payments service (see store.c). The
 * state changes that go with an event are the PL/pgSQL functions of
 * deploy/sql/payments/001_payments.sql; statement and column indexes are
 * documented per statement. Idempotency-Key statements: common/idem_store.c. */
#ifndef CAPLAT_PAYMENTS_STORE_H
#define CAPLAT_PAYMENTS_STORE_H

/* $1 order id → 0 account_id, 1 uscc, 2 total_fen, 3 status, 4 expired (t/f),
 * 5 invoice_type, 6 number */
extern const char store_order_get_sql[];
/* $1 order id → the order's enterprise: 0 taxpayer_type, 1 title,
 * 2 taxpayer_id, 3 address, 4 phone, 5 bank, 6 account */
extern const char store_order_enterprise_sql[];
/* payment_create($1 … $10) (deploy/sql/payments/002_idempotency.sql) */
extern const char store_payment_create_sql[];
/* $1 payment id → the Payment columns (see store_payment_cols) */
extern const char store_payment_get_sql[];
/* 0 id, 1 order_id, 2 account_id, 3 channel, 4 status, 5 amount_fen,
 * 6 refunded_fen, 7 qr_code, 8 invoice_type, 9 invoice_email, 10 created_at,
 * 11 paid_at */

/* payment_succeed($1 channel, $2 out_trade_no, $3 amount, $4 trade_no,
 * $5 paid_at, $6 via, $7 tax) → outcome text */
extern const char store_payment_succeed_sql[];
/* $1 channel, $2 notify_id, $3 out_trade_no, $4 headers json, $5 body,
 * $6 outcome */
extern const char store_notification_sql[];
/* $1 channel, $2 out_trade_no: closes it when pending (TRADE_CLOSED) */
extern const char store_payment_close_sql[];

/* Sweeper: $1 query delay s, $2 expire s → due pending payments: 0 id,
 * 1 channel, 2 out_trade_no, 3 amount_fen, 4 expired (t/f) */
extern const char store_payments_due_sql[];
/* $1 id: closes an unpaid payment */
extern const char store_payment_expire_sql[];
/* Fills the titles of pending invoices whose enterprise is now known. */
extern const char store_invoices_fill_titles_sql[];
/* Pending invoices to issue: 0 id, 1 type, 2 kind, 3 title, 4 taxpayer_id,
 * 5 email, 6 amount_fen, 7 tax_fen */
extern const char store_invoices_due_sql[];
/* invoice_issue($1 id, $2 number, $3 delivered_to) */
extern const char store_invoice_issue_sql[];
/* Releases a claim after a provider failure: $1 id */
extern const char store_invoice_unclaim_sql[];
/* Local invoice numbers: → one text value */
extern const char store_invoice_number_sql[];
/* Invoice columns: 0 id, 1 order_id, 2 type, 3 kind, 4 reverses, 5 title,
 * 6 taxpayer_id, 7 amount_fen, 8 tax_fen, 9 status, 10 number, 11 issued_at,
 * 12 payment_id, 13 cursor */
extern const char
    store_invoice_get_sql[]; /* $1 id, $2 account or NULL (finance) */
extern const char
    store_invoice_list_sql[]; /* $1 account or NULL, $2 order or NULL,
                                                  $3 cursor or NULL, $4 limit */

/* refund_create($1 id, $2 payment, $3 amount, $4 reason, $5 staff, $6 out_refund_no)
 * → 0 channel, 1 out_trade_no, 2 amount_fen, 3 order_id */
extern const char store_refund_create_sql[];
/* refund_succeed($1 id, $2 provider no, $3 tax) */
extern const char store_refund_succeed_sql[];
/* $1 id */
extern const char store_refund_fail_sql[];
/* Pending refunds to try again: 0 id, 1 channel, 2 out_trade_no,
 * 3 out_refund_no, 4 amount_fen, 5 payment amount, 6 reason */
extern const char store_refunds_due_sql[];

/* Reconciliation: $1 channel, $2 date, $3 JSON array of our numbers in the
 * bill → 0 kind (payment|refund), 1 out_no, 2 provider_no, 3 amount_fen */
extern const char store_recon_local_sql[];
/* $1 id, $2 channel, $3 date, $4..$7 counts, $8 items, $9 sha256, $10 staff */
extern const char store_recon_insert_sql[];
/* $1 id → 0 id, 1 channel, 2 date, 3..6 counts, 7 items, 8 created_at */
extern const char store_recon_get_sql[];

/* Events: orders and enterprises read models (bus thread). */
extern const char store_order_upsert_sql[];
extern const char store_order_cancel_sql[];
extern const char store_order_cancel_payments_sql[];
extern const char store_order_paid_sql[];
extern const char store_enterprise_upsert_sql[];

#endif
