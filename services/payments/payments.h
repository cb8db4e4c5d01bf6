/* payments — the service's internal interfaces: configuration and state,
 * the helpers the handler files share (payments.c), the provider clients
 * (provider.c), the invoice provider (invoice.c), the sweeper that asks the
 * providers and issues invoices (sweep.c), the handlers of each area, the
 * store (every SQL statement, store.c) and the event consumers. The pure
 * parts (money, Alipay, WeChat Pay, bills) keep their own header, domain.h. */
#ifndef CAPLAT_PAYMENTS_H
#define CAPLAT_PAYMENTS_H

#include "crypto.h"
#include "access.h"
#include "http.h"
#include "idem.h"
#include "httpc.h"
#include "svc.h"

#include <jansson.h>
#include <stdint.h>

struct crypto_key;
struct db_batch;
struct db_result;
struct json_field_err;
struct wechat_platform_certs;

struct pay_config {
	const char *notify_base; /* public base URL of /notify/… */
	long vat_rate_bp;        /* 600 = 6 % */
	long
	    query_delay; /* s before asking the provider about a pending payment */
	long pay_expire;         /* s after which an unpaid payment is closed */
	long sweep_ms;           /* least time between a sweep's rounds */
	long idle_ms;            /* most time a sweep rests */
	long provider_timeout;   /* s per provider request */
	struct idem_config idem; /* CAPLAT_IDEMPOTENCY_* */
	long idem_purge_ms;      /* idem.purge_seconds, for the sweep table */
	long invoice_late_days; /* 补开: days after payment it may be asked */
	/* issue 18 parts 6, 3, 7 */
	const char *taxplat_url; /* 数电票 platform base URL; "" = local */
	const char *taxplat_key; /* its API key (file) */
	long taxplat_timeout;    /* s per platform request */
	long invoice_retry_s;    /* backoff base of issuance retries */
	long invoice_max_attempts;
	long reissue_max;      /* reissues per payment */
	long reissue_days;     /* within days of the first invoice */
	const char *smtp_host; /* "" = no e-mail delivery */
	long smtp_port;
	const char *smtp_from;
	const char *smtp_helo;
	const char *smtp_tls;  /* none | starttls | tls */
	const char *smtp_user; /* "" = no AUTH */
	const char *smtp_password_file;
	long smtp_timeout;
	long email_retry_s;
	long email_max_attempts;
	/* Alipay */
	const char *alipay_gateway; /* http(s)://host[:port]/gateway.do */
	const char *alipay_app_id;
	const char *alipay_seller_id;   /* our PID */
	const char *alipay_private_key; /* merchant key (PEM file) */
	const char *alipay_public_key;  /* Alipay's public key (PEM file) */
	/* WeChat Pay */
	const char *wechat_api; /* https://api.mch.weixin.qq.com */
	const char *wechat_mchid;
	const char *wechat_appid;
	const char *wechat_serial;      /* our merchant certificate's serial */
	const char *wechat_private_key; /* merchant key (PEM file) */
	const char
	    *wechat_platform_certs; /* platform certificates (PEM bundle) */
	const char
	    *wechat_apiv3_key_file; /* file holding the 32-byte APIv3 key */
};

struct payments {
	struct svc svc;
	struct pay_config cfg;
	struct crypto_key *alipay_merchant, *alipay_public;
	struct crypto_key *wechat_merchant;
	struct wechat_platform_certs *wechat_platform;
	char wechat_apiv3_key[33];
	int alipay_ready, wechat_ready;
};

extern struct payments pay;

/* ---- provider.c: the providers' APIs over async evhttp ---------------- */

enum provider_status {
	PROVIDER_OK,
	PROVIDER_REFUSED, /* a business answer: not paid, no such trade, … */
	PROVIDER_UNAVAILABLE, /* not configured, unreachable, timeout, bad signature */
};

/* One provider answer; every pointer is borrowed for the callback only. */
struct provider_answer {
	enum provider_status status;
	const char *qr_code;  /* create: the code URL */
	int paid;             /* query: 1 paid, 0 not (yet) */
	int closed;           /* query: closed or unknown to the provider */
	int64_t amount_fen;   /* query: the trade's amount */
	const char *trade_no; /* query: provider trade no; refund: refund id */
	const char *paid_at;  /* query: timestamptz text or NULL */
	const char *message;  /* for logs */
	const char *url;      /* bill URL: where the day's bill is downloaded */
};

typedef void (*provider_cb)(void *arg, const struct provider_answer *a);

/* Each call answers cb exactly once on the loop (possibly before it
 * returns, when the channel is not configured). Signing runs on a worker. */
void provider_create(const char *channel, const char *out_trade_no,
    int64_t amount_fen, const char *subject, provider_cb cb, void *arg);
void provider_query(const char *channel, const char *out_trade_no,
    provider_cb cb, void *arg);
void provider_refund(const char *channel, const char *out_trade_no,
    const char *out_refund_no, int64_t refund_fen, int64_t total_fen,
    const char *reason, provider_cb cb, void *arg);
/* The download URL of channel's bill of date (YYYY-MM-DD): Alipay's
 * alipay.data.dataservice.bill.downloadurl.query (bill_type trade), WeChat's
 * GET /v3/bill/tradebill (bill_type ALL); a.url. REFUSED: no such bill. */
void provider_bill_url(const char *channel, const char *date, provider_cb cb,
    void *arg);
/* Downloads url (from provider_bill_url; WeChat's request signed): the body
 * of a 200 answer goes to on_body(arg, …) as it arrives (httpc_body_fn,
 * HTTPC_BODY_HOLD held until provider_bill_resume(arg)), never collected;
 * then done(arg, a) once: OK after a 200 answer, REFUSED with another
 * status, UNAVAILABLE without an answer. */
void provider_bill_download(const char *channel, const char *url,
    httpc_body_fn on_body, provider_cb done, void *arg);
void provider_bill_resume(void *arg);
/* Loads keys and certificates (fatal on a bad file); a channel without
 * configuration is disabled (its calls answer PROVIDER_UNAVAILABLE). */
void provider_init(void);
void provider_free(void); /* at exit: the outgoing client (httpc) */

/* ---- invoice.c / taxplat.c: the invoice provider ------------------------
 * The interface every tax platform implements (issue, red-reverse, query,
 * download). invoice.c holds the local provider (numbers from a sequence,
 * no file: `make run` without a platform) and picks the configured one;
 * taxplat.c speaks a 数电票 platform's JSON API over common/httpc. */

struct invoice_line {
	const char *name;
	int64_t amount_fen, tax_fen; /* tax-inclusive gross and its VAT */
};

struct invoice_request {
	const char *id; /* our invoice id: the platform's request id (dedup) */
	const char *type, *title, *taxpayer_id;
	const char *original_number; /* red: the blue invoice's number */
	const char *reason;          /* red: why */
	int64_t amount_fen, tax_fen;
	const struct invoice_line *lines;
	int nlines;
	long rate_bp;
};

enum invoice_outcome {
	INVOICE_OK,
	INVOICE_REFUSED,     /* a business answer: reason says why */
	INVOICE_UNKNOWN,     /* query: the platform has no such request */
	INVOICE_UNAVAILABLE, /* not reached, timeout, bad answer */
};

/* One answer; every pointer is borrowed for the callback only. */
struct invoice_answer {
	enum invoice_outcome outcome;
	const char *number, *issue_date, *check_code; /* issue, query */
	const char *reason;                           /* refused, unavailable */
	const char *file; /* download: the PDF, or NULL when none */
	size_t file_len;
};

typedef void (*invoice_fn)(void *arg, const struct invoice_answer *a);

struct invoice_provider {
	const char *name;
	void (*issue)(const struct invoice_request *req, invoice_fn cb,
	    void *arg);
	void (*red_reverse)(const struct invoice_request *req, invoice_fn cb,
	    void *arg);
	void (*query)(const char *request_id, invoice_fn cb, void *arg);
	void (*download)(const char *number, invoice_fn cb, void *arg);
};

/* The configured provider (the local one when CAPLAT_TAXPLAT_URL is
 * empty); each call answers cb exactly once, from the loop. */
const struct invoice_provider *invoice_provider(void);
/* taxplat.c: the 数电票 platform client; NULL when not configured. */
const struct invoice_provider *taxplat_provider(void);
void taxplat_free(void);

/* ---- smtp.c: libcurl's SMTP client on the libevent loop ------------------ */

struct smtp_mail {
	const char *from, *to, *subject; /* subject: UTF-8 */
	const char *text;                /* the body, UTF-8 */
	const char *attachment_name;     /* ASCII file name */
	const void *attachment;          /* application/pdf */
	size_t attachment_len;
};

/* error: NULL when the server accepted the message, else why not. */
typedef void (*smtp_fn)(void *arg, const char *error);

/* Sends m through CAPLAT_SMTP_HOST:PORT with libcurl (a MIME multipart
 * body, the base64 attachment); cb once, from the loop (at once when no
 * transfer can be started). */
void smtp_send(const struct smtp_mail *m, smtp_fn cb, void *arg);
/* Checks the SMTP configuration and reads the AUTH password, at start:
 * a bad CAPLAT_SMTP_TLS, an unreadable password file, or AUTH in clear
 * to a host that is not loopback is fatal. */
void smtp_init(void);

/* ---- payments.c: the state and the helpers the handler files share ---- */

/* Returns a new API.md error envelope; field may be NULL. */
json_t *pay_error_json(const char *code, const char *field,
    const char *message);

/* A refusal of the SQL functions of deploy/sql/payments (RAISE EXCEPTION
 * '<rule>'): the answer's status, code, field and message. */
struct pay_refusal {
	const char *rule;
	int status;
	const char *field;
	const char *message;
};
/* Returns the table's row of rule, or the row of fallback when rule is
 * NULL or not in the table (fallback must be in it). Borrowed, static. */
const struct pay_refusal *pay_refusal(const char *rule, const char *fallback);

/* Who sees which order's payments and invoices: access_viewer(req,
 * ACCESS_PAYMENTS, &v) (common/access.h), the same rule as orders'. */

/* The data of an audit entry (audit_event_data: actor from req, or the
 * system actor when req is NULL) as JSON text for the statements of store.c
 * that emit it with their change. Caller frees. */
char *pay_audit_text(const struct http_req *req, const char *action,
    const char *object_type, const char *object_id);

/* Returns 1 when s is a plausible e-mail address (local@domain.tld). */
int pay_email_ok(const char *s);

/* The postal data of a paper special invoice (纸质专票): recipient, phone,
 * address, borrowed from the JSON object they were read from. */
struct pay_postal {
	const char *recipient, *phone, *address;
};
/* Reads obj's "recipient", "phone" and "address" (each required when
 * required); nested names the fields "invoice.<name>" in errors. Returns 0,
 * or -1 with err filled. */
int pay_postal_read(json_t *obj, int required, int nested,
    struct pay_postal *out, struct json_field_err *err);

/* Idempotency keys of payment creation and refunds: common/idem.h. */

/* ---- the route table (handlers.c) and its handlers --------------------- */

/* Adds the route table and the notification counters. */
void pay_routes_add(void);
/* notify.c: the providers' notifications; pay_notify_init adds their
 * counters to /metrics. */
void pay_notify_init(void);
void pay_notify_alipay(struct http_req *req);
void pay_notify_wechat(struct http_req *req);
/* invoices.c: the invoice API (list with filters, pages and CSV, get,
 * 补开, 已邮寄 by finance, 已签收) */
void pay_invoice_list(struct http_req *req);
void pay_invoice_get(struct http_req *req);
void pay_invoice_late(struct http_req *req);
void pay_invoice_received(struct http_req *req);
void pay_finance_invoice_posted(struct http_req *req);
void pay_invoice_file(struct http_req *req);
void pay_invoice_reissue(struct http_req *req);
/* finance.c */
void pay_finance_refund(struct http_req *req);
void pay_finance_bill(struct http_req *req);
void pay_finance_bill_fetch(struct http_req *req);
void pay_finance_reconciliation(struct http_req *req);
void pay_finance_reconciliation_items(struct http_req *req);
void pay_finance_reconciliation_decision(struct http_req *req);

/* ---- sweep.c ----------------------------------------------------------- */

/* Starts the sweep table's timers: trade queries for pending payments,
 * invoice issuance, refund retries. */
void pay_sweep_start(void);
/* Frees the sweep table's timers (shutdown). */
void pay_sweep_stop(void);
/* Runs every sweep soon (after a payment succeeded or a refund). */
void pay_sweep_kick(void);
/* Only the provider-query sweep (a payment was created). */
void pay_sweep_kick_queries(void);

/* Completes a paid trade (notification or query): adds the
 * payment_succeed() SQL function with the invoice's VAT to b (new, or
 * already holding the notification's raw record, so that both are one
 * transaction) and runs it; cb gets its outcome text, or NULL when the
 * database failed. Kicks the sweep when applied, so that the invoice is
 * issued at once. */
typedef void (*pay_outcome_fn)(void *arg, const char *outcome,
    const struct db_result *res);
void pay_succeed(struct db_batch *b, const char *channel,
    const char *out_trade_no, int64_t amount_fen, const char *trade_no,
    const char *paid_at, const char *via, pay_outcome_fn cb, void *arg);

/* ---- events.c ---------------------------------------------------------- */

void pay_events_subscribe(void);

/* ---- store.c: every SQL statement of the service. The state changes that
 * go with an event are the PL/pgSQL functions of
 * deploy/sql/payments/001_payments.sql; statement and column indexes are
 * documented per statement. ---- */

/* $1 order id, $2 $3 $4 the viewer (account, uscc, scope) → 0 account_id,
 * 1 uscc, 2 total_fen, 3 status, 4 expired (t/f), 5 invoice_type, 6 number;
 * no row when the order is unknown or not the viewer's */
extern const char store_order_get_sql[];
/* $1 order id → the order's enterprise: 0 taxpayer_type, 1 title,
 * 2 taxpayer_id, 3 address, 4 phone, 5 bank, 6 account */
extern const char store_order_enterprise_sql[];
/* payment_create($1 … $10) (deploy/sql/payments/002_idempotency.sql) */
extern const char store_payment_create_sql[];
/* $1 payment id, $2 $3 $4 the viewer → the Payment columns (below); no
 * row when it is not the viewer's */
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
extern const char store_payments_next_sql[];
/* $1 id: closes an unpaid payment */
extern const char store_payment_expire_sql[];
/* Fills the titles of pending invoices whose enterprise is now known. */
extern const char store_invoices_fill_titles_sql[];
/* $1 max attempts → invoices due to issue (claimed): 0 id, 1 type,
 * 2 kind, 3 title, 4 taxpayer_id, 5 email, 6 amount_fen, 7 tax_fen,
 * 8 attempts (this one included), 9 the reversed invoice's number (red),
 * 10 the red invoice's reason */
extern const char store_invoices_due_sql[];
extern const char store_invoices_next_sql[];
/* invoice_issued($1 id, $2 number, $3 issue date, $4 check code,
 * $5 provider, $6 file hex or NULL, $7 its sha256) → APPLIED|DUPLICATE */
extern const char store_invoice_issued_sql[];
/* invoice_try_failed($1 id, $2 refused t/f, $3 reason, $4 backoff base s) */
extern const char store_invoice_try_failed_sql[];
/* Local invoice numbers: → one text value */
extern const char store_invoice_number_sql[];
/* Invoice columns: 0 id, 1 order_id, 2 type, 3 kind, 4 reverses, 5 title,
 * 6 taxpayer_id, 7 amount_fen, 8 tax_fen, 9 status, 10 number, 11 issued_at,
 * 12 payment_id, 13 cursor, 14 recipient, 15 recipient_phone,
 * 16 postal_address, 17 state (pending|issued|failed|posted|received),
 * 18 express_company, 19 tracking_number, 20 posted_at, 21 received_at,
 * 22 late (t/f), 23 order_number, 24 created_at, 25 uscc (the enterprise
 * concerned, for audit entries), 26 original_id, 27 reversal_id,
 * 28 replacement_id, 29 check_code, 30 issue_date, 31 failure_reason,
 * 32 attempts, 33 has a file (t/f), 34 email_status, 35 email_error,
 * 36 emailed_at, 37 email_attempts, 38 reissue_reason, 39 email */
/* $1 id, $2 $3 $4 the viewer (account, uscc, scope) */
extern const char store_invoice_get_sql[];
/* $1 the viewer's account, $2 order or NULL, $3 cursor or NULL, $4 limit,
 * $5 $6 the viewer's uscc and scope, $7 status, $8 type, $9 issued from
 * (date, Asia/Shanghai), $10 issued to (date, inclusive), $11 order number
 * (each NULL: any) */
extern const char store_invoice_list_sql[];
/* Titles pending personal invoices with the payer's name once known. */
extern const char store_invoices_fill_names_sql[];
/* $1 payment, $2 recipient, $3 phone, $4 postal address (纸质专票) */
extern const char store_payment_postal_sql[];
/* 补开: invoice_request_late($1 new id, $2 payment, $3 type, $4 email,
 * $5 recipient, $6 phone, $7 address, $8 days, $9 amount, $10 tax); a
 * payment not visible to the viewer $11 $12 $13 raises PAYMENT_NOT_FOUND */
extern const char store_invoice_late_sql[];
/* invoice_post($1 id, $2 express company, $3 tracking number) */
extern const char store_invoice_post_sql[];
/* invoice_receive($1 id); an invoice not visible to the viewer $2 $3 $4
 * raises INVOICE_NOT_FOUND */
extern const char store_invoice_receive_sql[];
/* The file of an invoice the viewer ($2 $3 $4) sees: 0 length, 1 sha256,
 * 2 number, 3 content type; no row when none */
extern const char store_invoice_file_head_sql[];
/* $1 invoice, $2 offset (from 1), $3 length → 0 the bytes in hex */
extern const char store_invoice_file_chunk_sql[];
/* invoice_reissue($1 original, $2 red id, $3 blue id, $4 title,
 * $5 taxpayer id, $6 reason, $7 max, $8 days); an original not visible to
 * the viewer $9 $10 $11 raises INVOICE_NOT_FOUND */
extern const char store_invoice_reissue_sql[];
/* E-mails due (claimed): 0 id, 1 email, 2 number, 3 title, 4 amount_fen,
 * 5 tax_fen, 6 kind, 7 the file in hex */
extern const char store_invoice_emails_due_sql[];
extern const char store_invoice_emails_next_sql[];
/* invoice_email_done($1 id, $2 error or NULL, $3 backoff base s, $4 max) */
extern const char store_invoice_email_done_sql[];
/* enterprise.profile.completed: $1 account, $2 name, $3 completed_at */
extern const char store_person_upsert_sql[];

/* refund_create($1 id, $2 payment, $3 amount, $4 reason, $5 staff, $6 out_refund_no)
 * and its audit entry ($7: pay_audit_text "refund.requested")
 * → 0 channel, 1 out_trade_no, 2 amount_fen, 3 order_id, 4 audit event */
extern const char store_refund_create_sql[];
/* refund_succeed($1 id, $2 provider no, $3 tax) and, when applied, its audit
 * entry ($4: pay_audit_text "refund.succeeded") → 0 outcome */
extern const char store_refund_succeed_sql[];
/* $1 id: failed when pending, with its audit entry ($2: pay_audit_text
 * "refund.failed") */
extern const char store_refund_fail_sql[];
/* Pending refunds to try again: 0 id, 1 channel, 2 out_trade_no,
 * 3 out_refund_no, 4 amount_fen, 5 payment amount, 6 reason */
extern const char store_refunds_due_sql[];
extern const char store_refunds_next_sql[];

/* Reconciliation (issue 18 part 8): COPY of the bill's lines into
 * bill_staging (recon_id, seq, kind, out_no, provider_no, amount_fen) */
/* empties the staging table (and locks it) at the transaction's start */
extern const char store_recon_bill_sql[];
extern const char store_recon_copy_sql[];
/* recon_run_fast($1 id, $2 channel, $3 date, $4 sha256, $5 staff, $6 lines,
 * $7 lines flagged as repeats, $8 inline items, $9 audit data) →
 * 0 matched, 1 missing_local,
 * 2 missing_remote, 3 amount_mismatch, 4 items_total, 5 created_at */
extern const char store_recon_run_sql[];
/* $1 id → 0 id, 1 channel, 2 date, 3..6 counts, 7 items, 8 created_at,
 * 9 items_total */
extern const char store_recon_get_sql[];
/* $1 id → 0 the number of differences; no row when unknown */
extern const char store_recon_total_sql[];
/* $1 id, $2 after seq, $3 limit → 0 seq, 1 kind, 2 type, 3 out_no,
 * 4 provider_no, 5 local_amount_fen, 6 remote_amount_fen, 7 decision,
 * 8 decision_note, 9 decided_by, 10 decided_at (7..10 NULL: undecided) */
extern const char store_recon_items_sql[];
/* $1 id, $2 seq, $3 decision, $4 note, $5 staff: records the decision
 * (DB_REFUSED "ITEM_NOT_FOUND") → the columns of store_recon_items_sql,
 * then 11 the decision it replaced (NULL: the first) */
extern const char store_recon_decide_sql[];

/* Events: orders and enterprises read models (bus thread). */
extern const char store_order_upsert_sql[];
/* $1 order, $2 the event's items (cert_id, holder_account_id, cert_uscc) */
extern const char store_order_certs_sql[];
extern const char store_order_cancel_sql[];
extern const char store_order_cancel_payments_sql[];
extern const char store_order_paid_sql[];
extern const char store_enterprise_upsert_sql[];

#endif
