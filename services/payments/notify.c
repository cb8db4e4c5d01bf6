/* notify — the providers' asynchronous notifications (DOMAIN.md §3, §4):
 * verified before anything in them is believed or stored (an unverified
 * call is answered and counted, never written), checked against our ids and
 * the payment's amount, recorded raw, and applied once however often the
 * provider retries (payment_succeed() is idempotent, pay_succeed() in
 * sweep.c). Bad input (bytes that are not UTF-8 text, a form that does not
 * decode) is the caller's fault: a 4xx in the provider's format, never a
 * dependency error. Calls that fail before verification are rate-limited
 * per client address (notify_throttled). */
#include "payments.h"

#include "db.h"
#include "domain.h"
#include "log.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- counters ---------------------------------------------------------- */

enum { N_APPLIED, N_DUPLICATE, N_IGNORED, N_REJECTED, N_THROTTLED, N_OUTCOMES };
static const char *const outcome_names[N_OUTCOMES] = {"applied", "duplicate",
    "ignored", "rejected", "throttled"};
static atomic_long counters[2][N_OUTCOMES];

static void
count(int wechat, int outcome)
{
	atomic_fetch_add(&counters[wechat][outcome], 1);
}

static size_t
notify_metrics(void *arg, char *buf, size_t size)
{
	size_t used = 0;

	for (int c = 0; c < 2; c++)
		for (int o = 0; o < N_OUTCOMES; o++) {
			int n = snprintf(buf + used, size - used,
			    "caplat_payments_notifications_total{channel=\"%s\",outcome=\"%s\"} %ld\n",
			    c ? "wechat" : "alipay", outcome_names[o],
			    atomic_load(&counters[c][o]));
			if (n < 0 || (size_t)n >= size - used)
				return used;
			used += (size_t)n;
		}
	return used;
}

void
pay_notify_init(void)
{
	http_server_add_metrics(pay.svc.http, notify_metrics, NULL);
}

/* ---- failed calls per client address ------------------------------------ */

/* A token bucket per client address (X-Real-IP from the gateway) for the
 * calls refused before their signature verified: NOTIFY_FAIL_BURST of them
 * at once, then NOTIFY_FAIL_PER_SEC a second; past that every call from the
 * address answers 429 without being looked at, until the bucket refills.
 * A provider's genuine notifications never fail verification, so they never
 * drain it. Per process, a fixed table: an address hashed onto a slot held
 * by another one takes it over with a full bucket. */
#define NOTIFY_FAIL_SLOTS 256
#define NOTIFY_FAIL_BURST 20.0
#define NOTIFY_FAIL_PER_SEC 5.0

static struct {
	char peer[64];
	double tokens;
	int64_t at_us;
} fail_slots[NOTIFY_FAIL_SLOTS];

static double *
fail_bucket(const char *peer)
{
	uint32_t h = 2166136261u;
	int64_t now = now_mono_us();

	for (const char *p = peer; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h %= NOTIFY_FAIL_SLOTS;
	if (strcmp(fail_slots[h].peer, peer) != 0) {
		snprintf(fail_slots[h].peer, sizeof(fail_slots[h].peer), "%s",
		    peer);
		fail_slots[h].tokens = NOTIFY_FAIL_BURST;
	} else {
		fail_slots[h].tokens += (double)(now - fail_slots[h].at_us) /
		    1e6 * NOTIFY_FAIL_PER_SEC;
		if (fail_slots[h].tokens > NOTIFY_FAIL_BURST)
			fail_slots[h].tokens = NOTIFY_FAIL_BURST;
	}
	fail_slots[h].at_us = now;
	return &fail_slots[h].tokens;
}

/* Returns 1 when the address has no failed calls left for now. */
static int
notify_throttled(const char *peer)
{
	return *fail_bucket(peer) < 1.0;
}

static void
notify_failed(const char *peer)
{
	*fail_bucket(peer) -= 1.0;
}

/* ---- replies ----------------------------------------------------------- */

/* Alipay reads the body: "success" stops its retries, anything else
 * ("failure") makes it retry. */
static void
alipay_reply(struct http_req *req, int status)
{
	if (status == 200)
		http_reply_raw(req, 200, "text/plain; charset=utf-8", "success",
		    7);
	else
		http_reply_raw(req, status == 429 ? 429 : 400,
		    "text/plain; charset=utf-8", "failure", 7);
}

static void
wechat_reply(struct http_req *req, int status)
{
	static const char fail[] = "{\"code\":\"FAIL\",\"message\":\"失败\"}";

	if (status == 204)
		http_reply_empty(req, 204);
	else
		http_reply_raw(req, status, "application/json", fail,
		    sizeof(fail) - 1);
}

/* Per-notification state, freed with the request. */
struct note {
	struct http_req *req;
	int wechat;
	int status;    /* reply status for WeChat; Alipay: 200 or 400 */
	int outcome;   /* counter */
	char *headers; /* JSON text, or NULL */
	char *notify_id;
	char *out_trade_no;
	char *reason; /* why it was refused, for the log */
};

static void
note_free(void *p)
{
	struct note *n = p;

	free(n->headers);
	free(n->notify_id);
	free(n->out_trade_no);
	free(n->reason);
	free(n);
}

static void
note_reply(struct note *n)
{
	count(n->wechat, n->outcome);
	if (n->outcome == N_REJECTED)
		log_warn(n->req->id,
		    "msg=notification_refused channel=%s trade=%s reason=\"%s\"",
		    n->wechat ? "wechat" : "alipay",
		    n->out_trade_no ? n->out_trade_no : "-",
		    n->reason ? n->reason : "");
	if (n->wechat)
		wechat_reply(n->req, n->status);
	else
		alipay_reply(n->req, n->status);
}

/* Answers a call refused before it verified: nothing is stored, and the
 * address's failed-call bucket is drawn on. */
static void
note_refuse(struct note *n, int status, const char *reason)
{
	notify_failed(n->req->peer);
	n->status = status;
	n->outcome = N_REJECTED;
	n->reason = xstrdup(reason);
	note_reply(n);
}

/* Answers 429 when the caller has failed too often; returns 1 then. */
static int
note_throttle(struct note *n)
{
	if (!notify_throttled(n->req->peer))
		return 0;
	n->status = 429;
	n->outcome = N_THROTTLED;
	note_reply(n);
	return 1;
}

/* Adds the raw record of the notification to b. */
static void
note_record(struct db_batch *b, struct note *n, const char *outcome)
{
	const char *p[] = {n->wechat ? "wechat" : "alipay", n->notify_id,
	    n->out_trade_no, n->headers, (const char *)n->req->body, outcome};

	db_batch_add(b, store_notification_sql, 6, p);
}

static void
on_recorded(void *arg, const struct db_result *res)
{
	struct note *n = arg;

	if (res->status != DB_OK) {
		const char *code, *message;
		/* counts postgres only when it is down; anything else is logged
		 * and answers 500 */
		http_db_error_answer(n->req, res, &n->status, &code, &message);
		n->outcome = N_REJECTED;
	}
	note_reply(n);
}

/* Records a notification that changes nothing and answers. */
static void
note_finish(struct note *n, int status, int outcome, const char *recorded_as,
    const char *reason)
{
	struct db_batch *b = db_batch_new();

	n->status = status;
	n->outcome = outcome;
	if (reason != NULL)
		n->reason = xstrdup(reason);
	note_record(b, n, recorded_as);
	db_batch_run(pay.svc.db, b, on_recorded, n);
}

static void
on_succeed(void *arg, const char *outcome, const struct db_result *res)
{
	struct note *n = arg;

	if (outcome == NULL) {
		if (res->status == DB_UNAVAILABLE)
			http_server_dep_error(n->req->srv, "postgres");
		else
			log_error(n->req->id, "msg=db_error detail=\"%s\"",
			    res->message ? res->message : "");
		n->status = 503;
		n->outcome = N_REJECTED;
		n->reason = xstrdup("database");
	} else if (strcmp(outcome, "APPLIED") == 0) {
		log_info(n->req->id,
		    "msg=payment_succeeded channel=%s trade=%s via=notify",
		    n->wechat ? "wechat" : "alipay", n->out_trade_no);
		n->status = n->wechat ? 204 : 200;
		n->outcome = N_APPLIED;
	} else if (strcmp(outcome, "DUPLICATE") == 0) {
		n->status = n->wechat ? 204 : 200;
		n->outcome = N_DUPLICATE;
	} else {
		/* UNKNOWN_TRADE, AMOUNT_MISMATCH: refused; the provider retries and
		 * the raw record (same transaction) keeps the evidence. */
		n->status = n->wechat ? 422 : 400;
		n->outcome = N_REJECTED;
		n->reason = xstrdup(outcome);
	}
	note_reply(n);
}

static struct note *
note_new(struct http_req *req, int wechat)
{
	struct note *n = xcalloc(1, sizeof(*n));

	n->req = req;
	n->wechat = wechat;
	http_req_attach(req, n, note_free);
	return n;
}

/* ---- POST /notify/alipay ------------------------------------------------ */

void
pay_notify_alipay(struct http_req *req)
{
	struct note *n = note_new(req, 0);
	struct alipay_form f;
	enum alipay_verify_result v;
	const char *status, *amount, *gmt;
	int64_t fen;
	char *paid_at = NULL;

	if (note_throttle(n))
		return;
	if (!pay.alipay_ready) {
		note_refuse(n, 400, "alipay is not configured");
		return;
	}
	if (!http_text_valid(req->body, req->body_len)) {
		note_refuse(n, 400, "body is not UTF-8 text");
		return;
	}
	if (alipay_form_parse(&f, (const char *)req->body, req->body_len) !=
	    0) {
		note_refuse(n, 400, "form does not decode");
		return;
	}
	for (size_t i = 0; i < f.n; i++) {
		if (!http_text_valid(f.params[i].key,
		        strlen(f.params[i].key)) ||
		    !http_text_valid(f.params[i].value,
		        strlen(f.params[i].value))) {
			alipay_form_clear(&f);
			note_refuse(n, 400, "a parameter is not UTF-8 text");
			return;
		}
	}
	n->notify_id = alipay_form_get(&f, "notify_id")
	    ? xstrdup(alipay_form_get(&f, "notify_id"))
	    : NULL;
	n->out_trade_no = alipay_form_get(&f, "out_trade_no")
	    ? xstrdup(alipay_form_get(&f, "out_trade_no"))
	    : NULL;
	v = alipay_verify(&f, pay.alipay_public);
	if (v != ALIPAY_VERIFY_OK) {
		alipay_form_clear(&f);
		note_refuse(n, 400,
		    v == ALIPAY_VERIFY_BAD_SIGN_TYPE
		        ? "sign_type is not RSA2"
		        : "signature does not verify");
		return;
	}
	const char *app_id = alipay_form_get(&f, "app_id");
	const char *seller = alipay_form_get(&f, "seller_id");
	if (app_id == NULL || strcmp(app_id, pay.cfg.alipay_app_id) != 0 ||
	    seller == NULL || strcmp(seller, pay.cfg.alipay_seller_id) != 0) {
		alipay_form_clear(&f);
		note_finish(n, 400, N_REJECTED, "not_ours",
		    "app_id or seller_id is not ours");
		return;
	}
	status = alipay_form_get(&f, "trade_status");
	amount = alipay_form_get(&f, "total_amount");
	if (n->out_trade_no == NULL || status == NULL) {
		alipay_form_clear(&f);
		note_finish(n, 400, N_REJECTED, "malformed",
		    "out_trade_no or trade_status missing");
		return;
	}
	if (strcmp(status, "TRADE_SUCCESS") != 0 &&
	    strcmp(status, "TRADE_FINISHED") != 0) {
		struct db_batch *b = db_batch_new();
		n->status = 200;
		n->outcome = N_IGNORED;
		note_record(b, n, status);
		if (strcmp(status, "TRADE_CLOSED") == 0) {
			const char *p[] = {"alipay", n->out_trade_no};
			db_batch_add(b, store_payment_close_sql, 2, p);
		}
		alipay_form_clear(&f);
		db_batch_run(pay.svc.db, b, on_recorded, n);
		return;
	}
	if (amount == NULL ||
	    money_yuan_to_fen(amount, strlen(amount), 0, &fen) != 0 ||
	    alipay_form_get(&f, "trade_no") == NULL) {
		alipay_form_clear(&f);
		note_finish(n, 400, N_REJECTED, "malformed",
		    "total_amount or trade_no is not valid");
		return;
	}
	/* gmt_payment is Beijing time "yyyy-MM-dd HH:mm:ss". */
	gmt = alipay_form_get(&f, "gmt_payment");
	paid_at = alipay_time_timestamptz(gmt);
	if (gmt != NULL && paid_at == NULL)
		log_warn(n->req->id,
		    "msg=notify_time_unreadable channel=alipay");
	struct db_batch *b = db_batch_new();
	note_record(b, n, status);
	pay_succeed(b, "alipay", n->out_trade_no, fen,
	    alipay_form_get(&f, "trade_no"), paid_at, "notify", on_succeed, n);
	free(paid_at);
	alipay_form_clear(&f);
}

/* ---- POST /notify/wechat ------------------------------------------------ */

void
pay_notify_wechat(struct http_req *req)
{
	struct note *n = note_new(req, 1);
	const char *ts = http_header(req, "Wechatpay-Timestamp");
	const char *nonce = http_header(req, "Wechatpay-Nonce");
	const char *sig = http_header(req, "Wechatpay-Signature");
	const char *serial = http_header(req, "Wechatpay-Serial");
	const struct crypto_key *key;
	json_t *body, *tx;
	char *plain;
	size_t plain_len;

	const char *sig_type = http_header(req, "Wechatpay-Signature-Type");

	if (note_throttle(n))
		return;
	if (!pay.wechat_ready) {
		note_refuse(n, 503, "wechat is not configured");
		return;
	}
	if (ts == NULL || nonce == NULL || sig == NULL || serial == NULL) {
		note_refuse(n, 401, "signature headers missing");
		return;
	}
	if (!http_text_valid(ts, strlen(ts)) ||
	    !http_text_valid(nonce, strlen(nonce)) ||
	    !http_text_valid(serial, strlen(serial)) ||
	    (sig_type != NULL &&
	        !http_text_valid(sig_type, strlen(sig_type))) ||
	    !http_text_valid(req->body, req->body_len)) {
		note_refuse(n, 400, "a header or the body is not UTF-8 text");
		return;
	}
	key = wechat_platform_key(pay.wechat_platform, serial);
	if (key == NULL) {
		note_refuse(n, 401, "unknown Wechatpay-Serial");
		return;
	}
	if (!wechat_timestamp_fresh(ts, time(NULL))) {
		note_refuse(n, 401, "timestamp outside 300 s");
		return;
	}
	if (wechat_verify(key, ts, nonce, (const char *)req->body,
	        req->body_len, sig) != 0) {
		note_refuse(n, 401, "signature does not verify");
		return;
	}
	json_t *h = json_pack("{s:s, s:s, s:s, s:s?}", "Wechatpay-Timestamp",
	    ts, "Wechatpay-Nonce", nonce, "Wechatpay-Serial", serial,
	    "Wechatpay-Signature-Type", sig_type);
	n->headers = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	body = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	const char *id = json_string_value(json_object_get(body, "id"));
	n->notify_id = id ? xstrdup(id) : NULL;
	if (body == NULL ||
	    wechat_decrypt_resource(json_object_get(body, "resource"),
	        pay.wechat_apiv3_key, &plain, &plain_len) != 0) {
		json_decref(body);
		note_finish(n, 400, N_REJECTED, "malformed",
		    "resource does not decrypt");
		return;
	}
	json_decref(body);
	tx = json_loadb(plain, plain_len, 0, NULL);
	crypto_wipe(plain, plain_len);
	free(plain);
	const char *mchid = json_string_value(json_object_get(tx, "mchid"));
	const char *appid = json_string_value(json_object_get(tx, "appid"));
	const char *out =
	    json_string_value(json_object_get(tx, "out_trade_no"));
	const char *txn =
	    json_string_value(json_object_get(tx, "transaction_id"));
	const char *state =
	    json_string_value(json_object_get(tx, "trade_state"));
	const char *when =
	    json_string_value(json_object_get(tx, "success_time"));
	if (when != NULL && !wechat_time_valid(when)) {
		log_warn(n->req->id,
		    "msg=notify_time_unreadable channel=wechat");
		when = NULL; /* paid now: the time is the provider's only */
	}
	json_t *total = json_object_get(json_object_get(tx, "amount"), "total");
	n->out_trade_no = out ? xstrdup(out) : NULL;
	if (tx == NULL || out == NULL || state == NULL) {
		json_decref(tx);
		note_finish(n, 400, N_REJECTED, "malformed",
		    "transaction without out_trade_no or trade_state");
		return;
	}
	if (mchid == NULL || strcmp(mchid, pay.cfg.wechat_mchid) != 0 ||
	    appid == NULL || strcmp(appid, pay.cfg.wechat_appid) != 0) {
		json_decref(tx);
		note_finish(n, 422, N_REJECTED, "not_ours",
		    "mchid or appid is not ours");
		return;
	}
	if (strcmp(state, "SUCCESS") != 0) {
		json_decref(tx);
		note_finish(n, 204, N_IGNORED, "not_paid", NULL);
		return;
	}
	if (!json_is_integer(total) || json_integer_value(total) <= 0 ||
	    txn == NULL) {
		json_decref(tx);
		note_finish(n, 400, N_REJECTED, "malformed",
		    "amount.total or transaction_id missing");
		return;
	}
	struct db_batch *b = db_batch_new();
	note_record(b, n, state);
	pay_succeed(b, "wechat", out, json_integer_value(total), txn, when,
	    "notify", on_succeed, n);
	json_decref(tx);
}
