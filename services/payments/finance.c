/* finance — staff with the finance role: refunds (Idempotency-Key; the
 * provider's refund, then payments.payment.refunded and the red-letter
 * invoice) and the daily reconciliation against the providers' bill files. */
#include "payments.h"

#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "domain.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- POST /api/v1/finance/refunds --------------------------------------- */

struct refund {
	struct http_req *req;
	json_t *body;
	struct idem idem;
	const char *payment_id, *reason;
	long long amount_fen;
	char id[37], out_refund_no[33], created[48];
	char *channel, *out_trade_no, *order_id;
	int64_t total_fen;
};

static void
refund_free(void *p)
{
	struct refund *st = p;

	json_decref(st->body);
	free(st->channel);
	free(st->out_trade_no);
	free(st->order_id);
	free(st);
}

static void refund_on_claimed(void *arg, const struct db_result *res);
static void refund_on_created(void *arg, const struct db_result *res);
static void refund_on_provider(void *arg, const struct provider_answer *a);
static void refund_on_done(void *arg, const struct db_result *res);

static void
refund_start(struct http_req *req)
{
	struct json_field_err err;
	json_t *body;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct refund *st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->body = body;
	http_req_attach(req, st, refund_free);
	if (idem_read(req, req->session->staff_id, &st->idem) != 0)
		return;
	idem_hash(&st->idem, req, body);
	if (json_field_str(body, "payment_id", JSON_FIELD_REQUIRED, 64,
	        &st->payment_id, &err) != 0 ||
	    json_field_str(body, "reason", JSON_FIELD_REQUIRED, 256,
	        &st->reason, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (json_field_int(body, "amount_fen", JSON_FIELD_REQUIRED, 1,
	        MONEY_MAX_FEN, &st->amount_fen, NULL, &err) != 0) {
		if (err.status == 422 && strcmp(err.code, "FIELD_INVALID") == 0)
			http_reply_error(req, 422, "REFUND_AMOUNT_INVALID",
			    "amount_fen", "退款金额须为正整数（分）");
		else
			http_reply_field_error(req, &err);
		return;
	}
	if (!uuid_valid(st->payment_id)) {
		http_reply_error(req, 404, "PAYMENT_NOT_FOUND", "payment_id",
		    "支付记录不存在");
		return;
	}
	struct db_batch *b = db_batch_new();
	idem_claim_add(b, &st->idem, pay.cfg.idem.lock_seconds);
	db_batch_run(pay.svc.db, b, refund_on_claimed, st);
}

static void
refund_on_claimed(void *arg, const struct db_result *res)
{
	struct refund *st = arg;
	char amount[24];

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (idem_claim_result(st->req, res, 0, &st->idem) != IDEM_CLAIMED)
		return;
	uuid_v4(st->id);
	for (size_t s = 0, d = 0; st->id[s]; s++)
		if (st->id[s] != '-')
			st->out_refund_no[d++] = st->id[s];
	snprintf(amount, sizeof(amount), "%lld", st->amount_fen);
	/* The refund and its audit entry: one statement. */
	char *audit =
	    pay_audit_text(st->req, "refund.requested", "refund", st->id);
	const char *p[] = {st->id, st->payment_id, amount, st->reason,
	    st->req->session->staff_id, st->out_refund_no, audit};
	db_query(pay.svc.db, store_refund_create_sql, 7, p, refund_on_created,
	    st);
	free(audit);
}

static void
refund_on_created(void *arg, const struct db_result *res)
{
	struct refund *st = arg;
	struct http_req *req = st->req;

	if (res->status == DB_REFUSED) {
		const struct pay_refusal *r =
		    pay_refusal(res->message, "PAYMENT_NOT_REFUNDABLE");
		idem_finish_error(pay.svc.db, req, &st->idem, r->status,
		    r->rule, r->field, r->message);
		return;
	}
	if (res->status != DB_OK) {
		idem_release_db_error(pay.svc.db, req, &st->idem, res);
		return;
	}
	st->channel = xstrdup(db_value(res, 0, 0, 0));
	st->out_trade_no = xstrdup(db_value(res, 0, 0, 1));
	st->total_fen = strtoll(db_value(res, 0, 0, 2), NULL, 10);
	st->order_id = xstrdup(db_value(res, 0, 0, 3));
	time_rfc3339(now_wall_ms(), st->created);
	provider_refund(st->channel, st->out_trade_no, st->out_refund_no,
	    st->amount_fen, st->total_fen, st->reason, refund_on_provider, st);
}

static json_t *
refund_json(const struct refund *st, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "id", st->id,
	    "payment_id", st->payment_id, "order_id", st->order_id,
	    "amount_fen", (json_int_t)st->amount_fen, "reason", st->reason,
	    "status", status, "created_at", st->created);
}

struct refund_done {
	struct refund *st;
	const char *status;
};

static void
refund_on_provider(void *arg, const struct provider_answer *a)
{
	struct refund *st = arg;
	char tax[24];

	if (a->status == PROVIDER_UNAVAILABLE) {
		/* It may have happened: the sweeper asks again with the same
		 * out_refund_no, which the providers treat idempotently. */
		log_warn(st->req->id, "msg=refund_pending refund=%s", st->id);
		idem_finish(pay.svc.db, st->req, &st->idem, 201,
		    refund_json(st, "pending"));
		return;
	}
	struct db_batch *b = db_batch_new();
	char *audit;
	if (a->status == PROVIDER_REFUSED) {
		audit =
		    pay_audit_text(st->req, "refund.failed", "refund", st->id);
		const char *p[] = {st->id, audit};
		db_batch_add(b, store_refund_fail_sql, 2, p);
	} else {
		snprintf(tax, sizeof(tax), "%lld",
		    (long long)money_vat_tax(st->amount_fen,
		        pay.cfg.vat_rate_bp));
		audit = pay_audit_text(st->req, "refund.succeeded", "refund",
		    st->id);
		const char *p[] = {st->id, a->trade_no, tax, audit};
		db_batch_add(b, store_refund_succeed_sql, 4, p);
	}
	free(audit);
	struct refund_done *d = xcalloc(1, sizeof(*d));
	d->st = st;
	d->status = a->status == PROVIDER_OK ? "succeeded" : "failed";
	db_batch_run(pay.svc.db, b, refund_on_done, d);
}

static void
refund_on_done(void *arg, const struct db_result *res)
{
	struct refund_done *d = arg;
	struct refund *st = d->st;
	const char *status = d->status;

	free(d);
	if (res->status != DB_OK) {
		/* The provider refunded; the sweeper's retry records it. */
		log_error(st->req->id, "msg=refund_not_recorded refund=%s",
		    st->id);
		status = "pending";
	} else if (strcmp(status, "succeeded") == 0) {
		log_info(st->req->id,
		    "msg=refund_succeeded refund=%s payment=%s amount_fen=%lld",
		    st->id, st->payment_id, st->amount_fen);
		sweep_kick(); /* the red-letter invoice */
	}
	idem_finish(pay.svc.db, st->req, &st->idem, 201,
	    refund_json(st, status));
}

void
pay_finance_refund(struct http_req *req)
{
	session_require(req, refund_start);
}

/* ---- POST /api/v1/finance/bills/{channel}/{date} ----------------------- */

struct recon {
	struct http_req *req;
	int wechat;
	char date[11];
	struct bill bill;
	int parse_rc;
	char err[256];
	char sha[CRYPTO_SHA256_HEX_SIZE];
	char id[37];
	json_t *items;
	struct recon_counts counts;
};

static void
recon_free(void *p)
{
	struct recon *st = p;

	bill_clear(&st->bill);
	json_decref(st->items);
	free(st);
}

static int
date_ok(const char *s)
{
	struct tm tm = {0};
	char back[11];

	if (strlen(s) != 10 || strptime(s, "%Y-%m-%d", &tm) == NULL)
		return 0;
	strftime(back, sizeof(back), "%Y-%m-%d", &tm);
	return strcmp(back, s) == 0 && tm.tm_mday <= 31 && timegm(&tm) != -1 &&
	    (tm.tm_mon != 1 || tm.tm_mday <= 29);
}

static void recon_parse(void *arg);
static void recon_on_parsed(void *arg);
static void recon_on_local(void *arg, const struct db_result *res);
static void recon_on_saved(void *arg, const struct db_result *res);

static void
bill_start(struct http_req *req)
{
	struct recon *st;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (strcmp(req->params[0], "alipay") != 0 &&
	    strcmp(req->params[0], "wechat") != 0) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "支付渠道不存在");
		return;
	}
	if (!date_ok(req->params[1])) {
		http_reply_error(req, 400, "BAD_PATH", NULL,
		    "日期须为 YYYY-MM-DD");
		return;
	}
	st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->wechat = strcmp(req->params[0], "wechat") == 0;
	snprintf(st->date, sizeof(st->date), "%s", req->params[1]);
	http_req_attach(req, st, recon_free);
	/* A big bill is parsed off the loop. */
	work_submit(recon_parse, recon_on_parsed, st);
}

static void
recon_parse(void *arg)
{
	struct recon *st = arg;
	const char *data = (const char *)st->req->body;
	size_t len = st->req->body_len;

	crypto_sha256_hex(data, len, st->sha);
	st->parse_rc = st->wechat
	    ? bill_parse_wechat(&st->bill, data, len, st->err, sizeof(st->err))
	    : bill_parse_alipay(&st->bill, data, len, st->err, sizeof(st->err));
}

static void
recon_on_parsed(void *arg)
{
	struct recon *st = arg;
	json_t *numbers;
	char *text;

	if (st->parse_rc != 0) {
		http_reply_error(st->req, 422, "BILL_INVALID", NULL, st->err);
		return;
	}
	numbers = json_array();
	for (size_t i = 0; i < st->bill.n; i++) {
		const struct bill_line *l = &st->bill.lines[i];
		json_array_append_new(numbers,
		    json_string(l->kind == BILL_REFUND ? l->out_refund_no
		                                       : l->out_trade_no));
	}
	text = json_dumps(numbers, JSON_COMPACT);
	json_decref(numbers);
	const char *p[] = {st->wechat ? "wechat" : "alipay", st->date, text};
	db_query(pay.svc.db, store_recon_local_sql, 3, p, recon_on_local, st);
	free(text);
}

static void
recon_on_local(void *arg, const struct db_result *res)
{
	struct recon *st = arg;
	struct recon_local *local;
	int n;
	char counts[4][24];
	char *items;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	n = db_rows(res, 0);
	local = xcalloc(n ? (size_t)n : 1, sizeof(*local));
	for (int i = 0; i < n; i++) {
		local[i].kind = strcmp(db_value(res, 0, i, 0), "refund") == 0
		    ? BILL_REFUND
		    : BILL_PAYMENT;
		local[i].out_no = db_value(res, 0, i, 1);
		local[i].provider_no = db_value(res, 0, i, 2);
		local[i].amount_fen = strtoll(db_value(res, 0, i, 3), NULL, 10);
	}
	st->items = recon_compare(&st->bill, local, (size_t)n, &st->counts);
	free(local);
	uuid_v4(st->id);
	snprintf(counts[0], 24, "%ld", st->counts.matched);
	snprintf(counts[1], 24, "%ld", st->counts.missing_local);
	snprintf(counts[2], 24, "%ld", st->counts.missing_remote);
	snprintf(counts[3], 24, "%ld", st->counts.amount_mismatch);
	items = json_dumps(st->items, JSON_COMPACT);
	const char *p[] = {st->id, st->wechat ? "wechat" : "alipay", st->date,
	    counts[0], counts[1], counts[2], counts[3], items, st->sha,
	    st->req->session->staff_id};
	/* The reconciliation and its audit entry: one transaction. */
	json_t *after = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i}",
	    "channel", p[1], "date", st->date, "bill_sha256", st->sha,
	    "matched", (int)st->counts.matched, "missing_local",
	    (int)st->counts.missing_local, "missing_remote",
	    (int)st->counts.missing_remote, "amount_mismatch",
	    (int)st->counts.amount_mismatch);
	const struct audit_entry e = {.action = "reconciliation.recorded",
	    .object_type = "reconciliation",
	    .object_id = st->id,
	    .after = after};
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_recon_insert_sql, 10, p);
	audit_add(b, st->req, &e);
	db_batch_run(pay.svc.db, b, recon_on_saved, st);
	json_decref(after);
	free(items);
}

static void
recon_on_saved(void *arg, const struct db_result *res)
{
	struct recon *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	log_info(st->req->id,
	    "msg=reconciled channel=%s date=%s matched=%ld missing_local=%ld"
	    " missing_remote=%ld amount_mismatch=%ld",
	    st->wechat ? "wechat" : "alipay", st->date, st->counts.matched,
	    st->counts.missing_local, st->counts.missing_remote,
	    st->counts.amount_mismatch);
	http_reply_json(st->req, 201,
	    json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:O, s:s}", "id",
	        st->id, "channel", st->wechat ? "wechat" : "alipay", "date",
	        st->date, "matched", (int)st->counts.matched, "missing_local",
	        (int)st->counts.missing_local, "missing_remote",
	        (int)st->counts.missing_remote, "amount_mismatch",
	        (int)st->counts.amount_mismatch, "items", st->items,
	        "created_at", db_value(res, 0, 0, 0)));
}

void
pay_finance_bill(struct http_req *req)
{
	session_require(req, bill_start);
}

/* ---- GET /api/v1/finance/reconciliations/{id} --------------------------- */

static void
recon_get_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:s}", "id",
	        db_value(res, 0, 0, 0), "channel", db_value(res, 0, 0, 1),
	        "date", db_value(res, 0, 0, 2), "matched",
	        (json_int_t)atoll(db_value(res, 0, 0, 3)), "missing_local",
	        (json_int_t)atoll(db_value(res, 0, 0, 4)), "missing_remote",
	        (json_int_t)atoll(db_value(res, 0, 0, 5)), "amount_mismatch",
	        (json_int_t)atoll(db_value(res, 0, 0, 6)), "items",
	        json_loads(db_value(res, 0, 0, 7), 0, NULL), "created_at",
	        db_value(res, 0, 0, 8)));
}

static void
recon_get(struct http_req *req)
{
	if (session_require_staff(req, "finance") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	const char *p[] = {req->params[0]};
	db_query(pay.svc.db, store_recon_get_sql, 1, p, recon_get_on_loaded,
	    req);
}

void
pay_finance_reconciliation(struct http_req *req)
{
	session_require(req, recon_get);
}
