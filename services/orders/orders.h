/* orders — the service's internal interfaces: configuration, counters, and
 * every prototype one of its I/O files offers another: the handler files
 * (handlers.c with the route table and orders, catalogue.c, quotes.c,
 * finance.c), their shared helpers (request.c), the evaluation of loaded rows
 * (evaluate.c), the SQL (store.c), the consumers (events.c) and the expiry
 * sweep (sweep.c). The pure domain keeps its own headers (eligibility.h,
 * pricing.h). */
#ifndef CAPLAT_ORDERS_H
#define CAPLAT_ORDERS_H

#include "eligibility.h"
#include "access.h"
#include "http.h"
#include "idem.h"
#include "pricing.h"
#include "svc.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct db_batch;
struct db_result;
struct session;

struct orders_config {
	long order_ttl; /* seconds an unpaid order waits for payment (1800) */
	long sweep_seconds;         /* period of the expiry sweep */
	long sweep_idle_seconds;    /* its longest rest when nothing is due */
	long catalogue_cache_ms;    /* GET /platforms' cached answer, at most */
	long quote_ttl;             /* seconds a quote keeps its prices */
	long digest_quote_ttl;      /* the same for an expiry digest's quote */
	long digest_gather_seconds; /* a digest waits for the rest of a pass */
	long
	    order_expiring_notice_seconds; /* order.expiring this early, 0 off */
	struct idem_config idem;           /* CAPLAT_IDEMPOTENCY_* */
	struct renewal_window window;
};

/* Counters shown on /metrics; written from the loop and the bus threads. */
struct orders_counters {
	atomic_llong created;
	atomic_llong cancelled;
	atomic_llong expired;
	atomic_llong paid;
	atomic_llong fulfilled;
	atomic_llong refunded;
	atomic_llong
	    payments_flagged; /* late, duplicate, wrong amount, unknown */
	atomic_llong idempotent_replays;
};

struct orders {
	struct svc svc;
	struct orders_config cfg;
	struct orders_counters n;
};

/* Defined in handlers.c (not main.c) so that unit tests link without main.o. */
extern struct orders orders;

/* The notice answered with an order or quote that drops platforms. */
#define DROPPED_NOTICE \
	"未勾选的原关联平台将于证书更新成功之日起停止使用，再次新增需按照平台新增标准重新缴费"

/* ---- handlers.c: the route table, orders, metrics ---- */

extern const struct http_route orders_routes[];
extern const size_t orders_nroutes;
/* The service's counters as Prometheus text (http_metrics_fn shape). */
size_t orders_metrics(void *arg, char *buf, size_t size);

/* ---- the further API areas (route handlers) ---- */

/* catalogue.c: GET /api/v1/platforms; GET and POST
 * /api/v1/platforms/{code}/prices. */
void orders_platforms(struct http_req *req);
/* Drops the cached answers of GET /api/v1/platforms (a price was set, the
 * catalogue changed). Loop thread. */
void orders_catalogue_invalidate(void);
void orders_price_history(struct http_req *req);
void orders_price_set(struct http_req *req);
/* quotes.c: POST /api/v1/orders/quote. */
void orders_quote(struct http_req *req);
/* finance.c: GET /api/v1/orders/late-payments. */
void orders_flagged(struct http_req *req);

/* ---- request.c: what the handler files share ---- */

/* Replies the domain's refusal err (its field when set). */
void orders_reply_error(struct http_req *req, const struct order_error *err);
/* Who sees which order: access_viewer(req, ACCESS_ORDERS, &v)
 * (common/access.h), the same rule as payments'. */
/* Certificate holders only: a staff session, or an account without a current
 * identity, is answered 403. Returns 0, or -1 when answered. */
int orders_require_holder(struct http_req *req);
/* The caller's enterprise when the current identity acts on all of its
 * orders (its administrator, by the access table), else NULL. Borrowed from
 * the session. */
const char *orders_admin_uscc(const struct session *s);
/* A new JSON string of s, or null when s is NULL. */
json_t *orders_json_str(const char *s);
/* A new JSON integer of a fen column (0 when NULL). */
json_t *orders_json_fen(const char *s);
/* Reads ?limit= (1..100, default 20) into *limit. Returns 0, or -1 when
 * answered 400. */
int orders_read_limit(struct http_req *req, int *limit);
/* Decodes the opaque ?cursor= into time and id (both "" when absent).
 * Returns 0, or -1 when answered 400. */
int orders_read_cursor(struct http_req *req, char time[40], char id[37]);
/* The next_cursor (a new JSON string) for the row at time, id. */
json_t *orders_cursor_json(const char *time, const char *id);

/* ---- evaluate.c: rows to the domain for quotes and creation ---- */

/* State of a quote or an order creation, freed with the request. */
struct order_ctx {
	struct http_req *req;
	json_t *body;
	struct order_request rq;
	int create;       /* POST /orders (else the quote) */
	struct idem idem; /* the creation's Idempotency-Key */
	char items_hash[65];
	int claimed;            /* this request owns the key */
	struct order_error err; /* the refusal answered after the release */
	/* Results of the evaluation: */
	json_t *items;     /* the priced items (API shape) */
	json_t *rows;      /* order_items rows for the insert */
	json_t *price_ids; /* the price versions used */
	int64_t total_fen;
	int dropped_any;
	/* Without a request: the administrator it is priced for. */
	char *as_account, *as_uscc;
	/* The new order: */
	char id[37];
	char number[40];
	json_t *reply;
};

/* A new context for req (a quote, or create set: an order creation), freed
 * with the request. */
struct order_ctx *order_ctx_new(struct http_req *req, int create);
/* A new context without a request: a quote priced for the administrator
 * account_id of enterprise uscc (the expiry digest, digest.c). Both strings
 * are copied. Free with order_ctx_free(). */
struct order_ctx *order_ctx_new_for_admin(const char *account_id,
    const char *uscc);
void order_ctx_free(void *st);
/* Reads body (steals it) as a request into st->rq and its items hash.
 * Returns 0, or -1 with st->err. */
int order_set_request(struct order_ctx *st, json_t *body);
/* Reads and checks the body into st->rq and its items hash. Returns 0, or -1
 * when answered. */
int order_read_request(struct order_ctx *st);
/* Appends the statements every evaluation needs to b: the facts (3) and the
 * catalogue (1), now or of the request's quote. */
void order_load(struct order_ctx *st, struct db_batch *b);
/* Checks and prices every item from the statements first .. first+3 of res
 * (order_load). Returns 0 with st->items, rows, price_ids and total_fen set,
 * or -1 with st->err. */
int order_evaluate(struct order_ctx *st, const struct db_result *res,
    int first);
/* Checks the quote row (statement stmt, store_quote_get) against the request.
 * Returns 0, or -1 with st->err when it is gone, expired or for other items. */
int order_quote_check(struct order_ctx *st, const struct db_result *res,
    int stmt);
/* Builds cat from rows of store_catalogue_*() (statement stmt). Returns 0, or
 * -1 when a row is malformed (a bug). */
int orders_catalogue_from_rows(struct order_catalogue *cat,
    const struct db_result *res, int stmt);

/* ---- events.c: starts the consumers of the other services' events ---- */

void orders_events_subscribe(void);

/* ---- sweep.c: the periodic expiry of unpaid orders (and housekeeping of
 * quotes and Idempotency-Keys) on the loop; start once after svc_init ---- */

void order_sweep_start(void);

/* ---- digest.c: the administrator's daily expiry digest ---- */

/* Saves the next due enterprise's digest (its quote and
 * orders.notice.requested), then calls done(arg, 0): another may be due at
 * once. When none is due, done(arg, s): the next falls due in s seconds
 * (s > 0), or none is waiting (s = -1); a failed step also gives -1. On the
 * loop. */
void order_digest_run(void (*done)(void *arg, long wait), void *arg);
void order_sweep_stop(void);
/* An order created here expires in `seconds`: the expiry sweep runs by then
 * (it may be resting until CAPLAT_ORDER_SWEEP_IDLE_SECONDS). */
void order_sweep_kick(long seconds);
/* A certificate was gathered for a digest: the digest sweep runs when it
 * falls due (CAPLAT_DIGEST_GATHER_SECONDS). Any thread. */
void order_digest_kick(void);

/* ==== store.c: every SQL statement of the service. The functions append
 * statements to a db.h batch; the comments give each statement's columns.
 * The *_sql strings run alone (db_query) or, for the consumers, on the bus
 * transaction (bus_tx_exec/query). ==== */

/* ---- catalogue ---- */

/* Catalogue rows, one per (platform, lock kind) version in force now,
 * ordered by the platform's sort: 0 code, 1 name, 2 sort, 3 lock kind ("" for
 * the base), 4 renew_fen, 5 add_fen, 6 price id, 7 effective_at. */
void store_catalogue_now(struct db_batch *b);
/* 0: milliseconds until the next scheduled price version comes into force,
 * NULL when none is. */
void store_catalogue_next_change(struct db_batch *b);
/* The same columns for the versions a quote ($1 quote id, $2 account) was
 * made with. */
void store_catalogue_of_quote(struct db_batch *b, const char *quote_id,
    const char *account_id);
/* $1 code, $2 lock kind or NULL, $3 renew_fen, $4 add_fen, $5 effective_at
 * or NULL (now), $6 staff id, $7 staff username, $8 reason, $9 the audit
 * entry's data (audit_event_data; its before/after are set by the statement)
 * → the new row: 0 id, 1 platform, 2 lock kind, 3 renew, 4 add,
 * 5 effective_at, 6 staff username, 7 reason, 8 created_at, 9 the audit
 * event's id; no row (and no audit entry) when the platform is unknown. */
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

/* ---- orders ---- */

void store_order_insert(struct db_batch *b, const char *id, const char *number,
    const char *account_id, const char *identity_id, const char *uscc,
    const char *total_fen, const char *quote_id, const char *created_at,
    const char *expires_at);
/* items: JSON array of {seq, cert_id, account_id, uscc, price_fen,
 * platforms, detail}. */
void store_order_items_insert(struct db_batch *b, const char *order_id,
    const char *items_json);

/* Appends the orders visible to v (ORDER_VISIBLE in store.c), newest
 * first: a list (status or NULL, the cursor's created_at text and id or
 * NULL, limit) or one order (order_id, the others NULL, limit "1"). Columns:
 * see ORDER_COL_* in handlers.c. */
void store_order_list(struct db_batch *b, const struct access_viewer *v,
    const char *status, const char *cur_time, const char *cur_id,
    const char *limit, const char *order_id);

/* Cancels the order when pending_payment, visible to v and v may cancel it
 * (placed it, or the enterprise scope): statement 0 returns the order's id
 * when it was cancelled now; its orders.order.cancelled goes out with it.
 * Statement 1: the order as the list shows it to v; statement 2: whether v
 * may cancel it at all (0 allowed t/f). */
void store_order_cancel(struct db_batch *b, const char *order_id,
    const struct access_viewer *v);

/* $1 limit, $2/$3 cursor (recorded_at text, payment_id) or NULL → payments
 * flagged for refund, newest first: 0 payment_id, 1 order_id, 2 number,
 * 3 channel, 4 amount_fen, 5 outcome, 6 order_status, 7 paid_at,
 * 8 recorded_at, 9 provider_trade_no, 10 cursor text. */
extern const char store_flagged_payments_sql[];

/* ---- the sweep ---- */

/* Expires up to $1 unpaid orders past expires_at and emits their
 * orders.order.cancelled (status expired) → 0 the number expired. */
extern const char store_sweep_expire_sql[];
/* Seconds until the next unpaid order expires (negative when overdue), NULL
 * when none is unpaid. */
extern const char store_sweep_next_expiry_sql[];
/* Drops quotes a day past their expiry. */
void store_housekeeping(struct db_batch *b);
/* order_expiring_claim($1 seconds before expiry, $2 limit) → 0 claimed. */
extern const char store_order_expiring_sql[];
/* ($1 seconds before expiry) → 0 seconds until the next untold unpaid order
 * enters that window, NULL when none. */
extern const char store_order_expiring_next_sql[];
/* The next enterprise whose expiry digest is due ($1 gather seconds): 0 uscc,
 * 1 its administrator's account or NULL, 2 the quote's items (JSON
 * [{cert_id, platforms}], certificates with known platforms) or NULL, 3 every
 * gathered certificate id "{…}". No row when none is due. */
extern const char store_digest_due_sql[];
/* ($1 gather seconds) → 0 seconds until the next digest falls due, NULL when
 * no certificate waits for one. */
extern const char store_digest_next_sql[];
/* digest_save($1 id, $2 uscc, $3 account, $4 cert ids "{…}", $5 quote or
 * NULL, $6 valid until or NULL, $7 total fen or NULL) → 0 certificates. */
extern const char store_digest_save_sql[];

/* ---- the consumers (bus transaction) ---- */

extern const char store_identity_upsert_sql[];
extern const char store_profile_upsert_sql[];
extern const char store_enterprise_approved_sql[];
extern const char store_cert_registered_sql[];
extern const char store_certs_imported_sql[];
extern const char store_certs_imported_cols_sql[];
extern const char store_new_cert_items_cols_sql[];
extern const char store_cert_renewed_sql[];
extern const char store_cert_revoked_sql[];
/* issuance.cert.expiring: $1 cert, $2 stage, $3 uscc, $4 serial, $5 holder,
 * $6 not_after, $7 platforms (JSON) or NULL. */
extern const char store_expiring_insert_sql[];
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

/* ---- newcert.c: the product "new certificate" (issue 19) ---- */

/* POST /api/v1/orders/new-certificate. */
void orders_new_certificate(struct http_req *req);
/* new_cert_order($1 order, $2 new cert id, $3 account, $4 identity,
 * $5 identity type, $6 role, $7 uscc, $8 member identity or NULL,
 * $9 platforms "{A,B}", $10 ttl seconds, $11 replaced cert or NULL,
 * $12 the renewal window's days after notAfter) → 0 the order (JSON).
 * Refuses NOT_ADMIN, MEMBER_NOT_FOUND, CERT_NOT_FOUND, CERT_STILL_RENEWABLE,
 * ENTERPRISE_NOT_APPROVED, PROFILE_INCOMPLETE, PLATFORM_UNKNOWN,
 * PLATFORMS_EMPTY. */
extern const char store_new_cert_order_sql[];
/* $1 cert id → 0 the paid order whose new-certificate item it is (not yet
 * issued). */
extern const char store_new_cert_item_sql[];
extern const char store_new_cert_items_sql[];
extern const char store_identity_lock_sql[];
extern const char store_identity_removed_sql[];
extern const char store_identity_orders_cancel_sql[];

#endif
