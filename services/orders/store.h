/* store — every SQL statement of the orders service (see store.c). The
 * functions append statements to a db.h batch; the comments give each
 * statement's columns. The *_sql strings run alone (db_query) or, for the
 * consumers, on the bus transaction (bus_tx_exec/query). */
#ifndef CAPLAT_ORDERS_STORE_H
#define CAPLAT_ORDERS_STORE_H

#include <jansson.h>

struct db_batch;

/* ---- catalogue ---- */

/* Catalogue rows, one per (platform, lock kind) version in force now,
 * ordered by the platform's sort: 0 code, 1 name, 2 sort, 3 lock kind ("" for
 * the base), 4 renew_fen, 5 add_fen, 6 price id, 7 effective_at. */
void store_catalogue_now(struct db_batch *b);
/* The same columns for the versions a quote ($1 quote id, $2 account) was
 * made with. */
void store_catalogue_of_quote(struct db_batch *b, const char *quote_id,
    const char *account_id);
/* $1 code, $2 lock kind or NULL, $3 renew_fen, $4 add_fen, $5 effective_at
 * or NULL (now), $6 staff id, $7 staff username, $8 reason → the new row:
 * 0 id, 1 platform, 2 lock kind, 3 renew, 4 add, 5 effective_at, 6 staff
 * username, 7 reason, 8 created_at; no row when the platform is unknown. */
extern const char store_price_insert_sql[];
/* $1 code → the platform's price history, newest first: columns 0-8 as
 * store_price_insert_sql's, then 9 in force now (t/f), 10 scheduled (t/f),
 * 11 platform name; one row of NULL prices when the platform has none, no
 * row when it is unknown. */
extern const char store_price_history_sql[];

/* ---- eligibility facts ---- */

/* Three statements: the caller's profile (a row when complete), the
 * approval of uscc (a row when approved; uscc may be NULL), and the
 * requested certificates (cert_ids as a PostgreSQL array literal):
 * 0 cert_id, 1 serial, 2 type, 3 holder, 4 uscc, 5 account_id, 6 lock kind,
 * 7 not_after (epoch s), 8 platforms (JSON array), 9 revoked, 10 enterprise
 * approved, 11 in an open order, 12 vendor, 13 enterprise name, 14 not_after
 * (RFC 3339). */
void store_facts(struct db_batch *b, const char *account_id, const char *uscc,
    const char *cert_ids);
/* One statement: $1 quote, $2 account → 0 items_hash, 1 still valid (t/f). */
void store_quote_get(struct db_batch *b, const char *quote_id,
    const char *account_id);
/* One statement → 0 the next order number sequence value. */
void store_next_number(struct db_batch *b);
void store_quote_insert(struct db_batch *b, const char *id,
    const char *account_id, const char *items_hash, const char *price_ids,
    const char *total_fen, const char *expires_at);

/* ---- idempotency ---- */

/* Two statements: claim (a row when this request now owns the key: new, or
 * taken over from a request unfinished for lock_seconds), then the key's
 * row: 0 request_hash, 1 response_status, 2 response_body. */
void store_idem_claim(struct db_batch *b, const char *account_id,
    const char *key, const char *request_hash, long lock_seconds);
/* Records the response of the request owning the key. */
void store_idem_save(struct db_batch *b, const char *account_id,
    const char *key, int status, const char *body);
/* $1 account, $2 key: frees a key whose request ended without a stored
 * response, so that a retry runs again. */
extern const char store_idem_release_sql[];

/* ---- orders ---- */

void store_order_insert(struct db_batch *b, const char *id, const char *number,
    const char *account_id, const char *identity_id, const char *uscc,
    const char *total_fen, const char *quote_id, const char *created_at,
    const char *expires_at);
/* items: JSON array of {seq, cert_id, account_id, uscc, price_fen,
 * platforms, detail}. */
void store_order_items_insert(struct db_batch *b, const char *order_id,
    const char *items_json);

/* Orders visible to $1 account (placed by it, or holding one of its
 * certificates, or — $2 when the caller is an enterprise admin — one of that
 * enterprise's certificates), newest first. $3 status or NULL, $4/$5 the
 * cursor (created_at text, id) or NULL, $6 limit, $7 order id or NULL.
 * Columns: see ORDER_COL_* in handlers.c. */
extern const char store_order_list_sql[];

/* Cancels $1 order when pending_payment and the caller may ($2 account placed
 * it, or $3 the enterprise admin's uscc): statement 0 returns the order's
 * id when it was cancelled now; the event ($4 event id) goes out with it.
 * Statement 1: the order as the list shows it; statement 2: whether the
 * caller may cancel it at all (0 allowed t/f). */
void store_order_cancel(struct db_batch *b, const char *order_id,
    const char *account_id, const char *admin_uscc, const char *event_id);

/* $1 limit, $2/$3 cursor (recorded_at text, payment_id) or NULL → payments
 * flagged for refund, newest first: 0 payment_id, 1 order_id, 2 number,
 * 3 channel, 4 amount_fen, 5 outcome, 6 order_status, 7 paid_at,
 * 8 recorded_at, 9 provider_trade_no, 10 cursor text. */
extern const char store_flagged_payments_sql[];

/* ---- the sweep ---- */

/* Expires up to $1 unpaid orders past expires_at and emits their
 * orders.order.cancelled (status expired) → 0 the number expired. */
extern const char store_sweep_expire_sql[];
/* Drops quotes a day past their expiry and idempotency keys older than
 * 48 h. */
void store_housekeeping(struct db_batch *b);

/* ---- the consumers (bus transaction) ---- */

extern const char store_identity_upsert_sql[];
extern const char store_profile_upsert_sql[];
extern const char store_enterprise_approved_sql[];
extern const char store_cert_registered_sql[];
extern const char store_cert_renewed_sql[];
extern const char store_cert_revoked_sql[];
/* $1 order → 0 status, 1 total_fen, 2 number, 3 account_id, 4 payment_id;
 * locks the row for the rest of the transaction. */
extern const char store_order_lock_sql[];
extern const char store_payment_record_sql[];
/* $1 order, $2 payment, $3 paid_at → a row when the order became paid. */
extern const char store_order_paid_sql[];
/* $1 order → 0 cert_id, 1 platforms (JSON), 2 price_fen, 3 renewed_serial. */
extern const char store_order_items_sql[];
/* $1 order, $2 cert, $3 renewed_at, $4 new serial → rows marked renewed. */
extern const char store_item_renewed_sql[];
/* $1 order → 0 number, 1 fulfilled_at when every item is renewed now. */
extern const char store_order_fulfilled_sql[];
/* $1 payment, $2 refunded total, $3 full (t/f) → 0 outcome, 1 order_id. */
extern const char store_payment_refunded_sql[];
/* $1 order, $2 payment → a row when the order became refunded. */
extern const char store_order_refunded_sql[];

#endif
