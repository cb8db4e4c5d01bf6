/* payments — the service's internal interfaces: configuration, the provider
 * clients (provider.c), the invoice provider (invoice.c), the sweeper that
 * asks the providers and issues invoices (sweep.c), handlers and events. */
#ifndef CAPLAT_PAYMENTS_H
#define CAPLAT_PAYMENTS_H

#include "http.h"
#include "idem.h"
#include "svc.h"

#include <jansson.h>
#include <stdint.h>

struct crypto_key;
struct db_result;
struct wechat_platform_certs;

struct pay_config {
	const char *notify_base; /* public base URL of /notify/… */
	long vat_rate_bp;        /* 600 = 6 % */
	long
	    query_delay; /* s before asking the provider about a pending payment */
	long pay_expire;         /* s after which an unpaid payment is closed */
	long sweep_ms;           /* sweeper period */
	long provider_timeout;   /* s per provider request */
	struct idem_config idem; /* CAPLAT_IDEMPOTENCY_* */
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
/* Loads keys and certificates (fatal on a bad file); a channel without
 * configuration is disabled (its calls answer PROVIDER_UNAVAILABLE). */
void provider_init(void);

/* ---- invoice.c: the invoice provider ----------------------------------- */

struct invoice_request {
	const char *id, *type, *kind, *title, *taxpayer_id, *email;
	int64_t amount_fen, tax_fen;
};

/* number: the issued invoice's number (borrowed), or NULL on failure;
 * delivered_to: where it was sent, or NULL. */
typedef void (*invoice_issued_fn)(void *arg, const char *number,
    const char *delivered_to);

struct invoice_provider {
	const char *name;
	void (*issue)(const struct invoice_request *req, invoice_issued_fn cb,
	    void *arg);
};

/* The configured provider (the local one by default). */
const struct invoice_provider *invoice_provider(void);

/* ---- sweep.c ----------------------------------------------------------- */

/* Starts the periodic sweeper: trade queries for pending payments, invoice
 * issuance, refund retries. */
void sweep_start(void);
/* Runs the sweeper soon (after a payment succeeded or a refund). */
void sweep_kick(void);

/* Completes a paid trade (notification or query): the payment_succeed()
 * SQL function with the invoice's VAT; cb gets its outcome text or NULL
 * when the database failed. notification (may be NULL): the raw record's
 * statement, added to the same transaction. */
struct db_batch;
typedef void (*pay_outcome_fn)(void *arg, const char *outcome,
    const struct db_result *res);
void pay_succeed(struct db_batch *b, const char *channel,
    const char *out_trade_no, int64_t amount_fen, const char *trade_no,
    const char *paid_at, const char *via, pay_outcome_fn cb, void *arg);

/* ---- handlers.c, notify.c, finance.c ------------------------------------ */

void pay_reply_db_error(struct http_req *req, const struct db_result *res);
void pay_routes_add(void);

/* events.c */
void pay_events_subscribe(void);

#endif
