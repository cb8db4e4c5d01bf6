/* handlers — payments (create with Idempotency-Key, get) and the route
 * table (the invoices' handlers live in invoices.c) (Idempotency-Key: common/idem.h); the providers'
 * notifications live in notify.c, the finance staff's side in finance.c,
 * what they share in payments.c.
 * Each handler is a chain of named continuations; the last one replies. */
#include "payments.h"

#include "db.h"
#include "domain.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- POST /api/v1/payments --------------------------------------------- */

static const char *const channels[] = {"alipay", "wechat", NULL};
static const char *const invoice_types[] = {"none", "e_normal", "paper_special",
    NULL};

struct pcreate {
	struct http_req *req;
	json_t *body;
	struct idem idem;
	const char *order_id, *channel, *invoice_type, *email;
	struct pay_postal postal; /* paper_special only */
	char id[37], out_trade_no[33], created[48], order_number[64];
	int64_t amount_fen;
	json_t *answer;
};

static void
pcreate_free(void *p)
{
	struct pcreate *st = p;

	json_decref(st->body);
	json_decref(st->answer);
	free(st);
}

static void pcreate_on_claimed(void *arg, const struct db_result *res);
static void pcreate_on_provider(void *arg, const struct provider_answer *a);
static void pcreate_on_saved(void *arg, const struct db_result *res);

static void
pay_create(struct http_req *req)
{
	struct json_field_err err;
	struct access_viewer v;
	json_t *body, *invoice;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能支付订单");
		return;
	}
	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct pcreate *st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->body = body;
	http_req_attach(req, st, pcreate_free);
	if (idem_read(req, req->session->account_id, &st->idem) != 0)
		return;
	idem_hash(&st->idem, req, body);
	if (json_field_str(body, "order_id", JSON_FIELD_REQUIRED, 64,
	        &st->order_id, &err) != 0 ||
	    json_field_enum(body, "channel", JSON_FIELD_REQUIRED, channels,
	        &st->channel, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (!uuid_valid(st->order_id)) {
		http_reply_error(req, 422, "FIELD_INVALID", "order_id",
		    "订单编号格式不正确");
		return;
	}
	invoice = json_object_get(body, "invoice");
	if (invoice == NULL || json_is_null(invoice)) {
		http_reply_error(req, 422, "FIELD_REQUIRED", "invoice",
		    "请选择是否开具发票");
		return;
	}
	if (!json_is_object(invoice)) {
		http_reply_error(req, 400, "FIELD_TYPE", "invoice",
		    "invoice 须为对象");
		return;
	}
	if (json_field_enum(invoice, "type", JSON_FIELD_REQUIRED, invoice_types,
	        &st->invoice_type, &err) != 0 ||
	    json_field_str(invoice, "email", JSON_FIELD_OPTIONAL, 254,
	        &st->email, &err) != 0) {
		err.field = strcmp(err.field, "type") == 0 ? "invoice.type"
		                                           : "invoice.email";
		http_reply_field_error(req, &err);
		return;
	}
	if (strcmp(st->invoice_type, "e_normal") == 0 && st->email == NULL) {
		http_reply_error(req, 422, "FIELD_REQUIRED", "invoice.email",
		    "电子发票须填写接收邮箱");
		return;
	}
	if (st->email != NULL && !pay_email_ok(st->email)) {
		http_reply_error(req, 422, "EMAIL_INVALID", "invoice.email",
		    "邮箱格式不正确");
		return;
	}
	/* A paper special invoice is posted: to whom, where (issue 18). */
	if (strcmp(st->invoice_type, "paper_special") == 0 &&
	    pay_postal_read(invoice, 1, 1, &st->postal, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	struct db_batch *b = db_batch_new();
	const char *p[] = {st->order_id};
	const char *pv[] = {st->order_id, v.account, v.uscc, v.scope};
	idem_claim_add(b, &st->idem, pay.cfg.idem.lock_seconds); /* 0, 1 */
	db_batch_add(b, store_order_get_sql, 4, pv);             /* 2 */
	db_batch_add(b, store_order_enterprise_sql, 1, p);       /* 3 */
	db_batch_run(pay.svc.db, b, pcreate_on_claimed, st);
}

/* paper_special: an approved general taxpayer with the full title data. */
static int
special_allowed(const struct db_result *res)
{
	if (db_rows(res, 3) != 1 ||
	    strcmp(db_value(res, 3, 0, 0), "general") != 0)
		return 0;
	for (int col = 1; col <= 6; col++) {
		const char *v = db_value(res, 3, 0, col);
		if (v == NULL || v[0] == '\0')
			return 0;
	}
	return 1;
}

static void
pcreate_on_claimed(void *arg, const struct db_result *res)
{
	struct pcreate *st = arg;
	struct http_req *req = st->req;
	const struct idem *i = &st->idem;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (idem_claim_result(req, res, 0, i) != IDEM_CLAIMED)
		return;
	if (db_rows(res, 2) != 1) {
		/* Unknown, or not the caller's (the same rule as orders'). Not
		 * stored: the order's event may still be on its way. */
		idem_release_error(pay.svc.db, req, i, 404, "ORDER_NOT_FOUND",
		    NULL, "订单不存在");
		return;
	}
	if (strcmp(db_value(res, 2, 0, 3), "pending_payment") != 0 ||
	    strcmp(db_value(res, 2, 0, 4), "t") == 0) {
		idem_finish_error(pay.svc.db, req, i, 409, "ORDER_NOT_PAYABLE",
		    "order_id", "订单当前不可支付");
		return;
	}
	const char *locked = db_value(res, 2, 0, 5);
	if (locked != NULL && strcmp(locked, st->invoice_type) != 0) {
		idem_finish_error(pay.svc.db, req, i, 409,
		    "INVOICE_TYPE_LOCKED", "invoice.type",
		    "该订单已选择其他发票类型，发票类型选择后不可更改");
		return;
	}
	if (strcmp(st->invoice_type, "paper_special") == 0 &&
	    (db_value(res, 2, 0, 1) == NULL || !special_allowed(res))) {
		idem_finish_error(pay.svc.db, req, i, 422,
		    "SPECIAL_INVOICE_NOT_ALLOWED", "invoice.type",
		    "仅一般纳税人且开票信息完整的企业可开具纸质专票");
		return;
	}
	st->amount_fen = strtoll(db_value(res, 2, 0, 2), NULL, 10);
	snprintf(st->order_number, sizeof(st->order_number), "%s",
	    db_value(res, 2, 0, 6));
	if (st->amount_fen <= 0) {
		idem_finish_error(pay.svc.db, req, i, 409, "ORDER_NOT_PAYABLE",
		    "order_id", "订单金额为零，无需支付");
		return;
	}
	uuid_v4(st->id);
	/* out_trade_no: the payment id's 32 hex digits (fits Alipay's 64 and
	 * WeChat's 6–32 characters). */
	for (size_t s = 0, d = 0; st->id[s]; s++)
		if (st->id[s] != '-')
			st->out_trade_no[d++] = st->id[s];
	char *subject = xasprintf("CA数字证书延期年检 %s", st->order_number);
	provider_create(st->channel, st->out_trade_no, st->amount_fen, subject,
	    pcreate_on_provider, st);
	free(subject);
}

static void
pcreate_on_provider(void *arg, const struct provider_answer *a)
{
	struct pcreate *st = arg;
	char amount[24];

	if (a->status != PROVIDER_OK) {
		idem_release_error(pay.svc.db, st->req, &st->idem, 503,
		    "PROVIDER_UNAVAILABLE", NULL,
		    "支付渠道暂时不可用，请稍后重试或更换支付方式");
		return;
	}
	time_rfc3339(now_wall_ms(), st->created);
	st->answer = json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:{s:s, s:s?}, s:s, s:n}",
	    "id", st->id, "order_id", st->order_id, "channel", st->channel,
	    "status", "pending", "amount_fen", (json_int_t)st->amount_fen,
	    "refunded_fen", (json_int_t)0, "qr_code", a->qr_code, "invoice",
	    "type", st->invoice_type, "email", st->email, "created_at",
	    st->created, "paid_at");
	char *text = json_dumps(st->answer, JSON_COMPACT);
	snprintf(amount, sizeof(amount), "%lld", (long long)st->amount_fen);
	const char *p[] = {st->id, st->order_id, st->req->session->account_id,
	    st->channel, st->out_trade_no, amount, a->qr_code, st->invoice_type,
	    st->email, st->created};
	/* The payment and its stored first response: one transaction. */
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_payment_create_sql, 10, p);
	if (st->postal.address != NULL) {
		const char *pp[] = {st->id, st->postal.recipient,
		    st->postal.phone, st->postal.address};
		db_batch_add(b, store_payment_postal_sql, 4, pp);
	}
	idem_save_add(b, &st->idem, 201, text);
	db_batch_run(pay.svc.db, b, pcreate_on_saved, st);
	free(text);
}

static void
pcreate_on_saved(void *arg, const struct db_result *res)
{
	struct pcreate *st = arg;
	struct http_req *req = st->req;

	if (res->status == DB_REFUSED) {
		const struct pay_refusal *r =
		    pay_refusal(res->message, "ORDER_NOT_PAYABLE");
		idem_finish_error(pay.svc.db, req, &st->idem, r->status,
		    r->rule, r->field, r->message);
		return;
	}
	if (res->status != DB_OK) {
		idem_release_db_error(pay.svc.db, req, &st->idem, res);
		return;
	}
	log_info(req->id,
	    "msg=payment_created payment=%s order=%s channel=%s amount_fen=%lld",
	    st->id, st->order_id, st->channel, (long long)st->amount_fen);
	json_t *answer = st->answer;
	st->answer = NULL;
	http_reply_json(req, 201, answer);
	pay_sweep_kick_queries(); /* it learns when this one falls due */
}

static void
pay_create_route(struct http_req *req)
{
	session_require(req, pay_create);
}

/* ---- GET /api/v1/payments/{id} ----------------------------------------- */

static json_t *
payment_json(const struct db_result *res, int stmt, int row)
{
	const char *email = db_value(res, stmt, row, 9);

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:I, s:s?, s:{s:s, s:s?}, s:s, s:s?}",
	    "id", db_value(res, stmt, row, 0), "order_id",
	    db_value(res, stmt, row, 1), "channel", db_value(res, stmt, row, 3),
	    "status", db_value(res, stmt, row, 4), "amount_fen",
	    (json_int_t)strtoll(db_value(res, stmt, row, 5), NULL, 10),
	    "refunded_fen",
	    (json_int_t)strtoll(db_value(res, stmt, row, 6), NULL, 10),
	    "qr_code", db_value(res, stmt, row, 7), "invoice", "type",
	    db_value(res, stmt, row, 8), "email", email, "created_at",
	    db_value(res, stmt, row, 10), "paid_at",
	    db_value(res, stmt, row, 11));
}

static void
pay_get_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "支付记录不存在");
		return;
	}
	http_reply_json(req, 200, payment_json(res, 0, 0));
}

static void
pay_get(struct http_req *req)
{
	struct access_viewer v;

	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "支付记录不存在");
		return;
	}
	const char *p[] = {req->params[0], v.account, v.uscc, v.scope};
	db_query(pay.svc.db, store_payment_get_sql, 4, p, pay_get_on_loaded,
	    req);
}

static void
pay_get_route(struct http_req *req)
{
	session_require(req, pay_get);
}

/* ---- routes ------------------------------------------------------------ */

static const struct http_route routes[] = {
    {"POST", "/api/v1/payments", pay_create_route, 0},
    {"GET", "/api/v1/payments/{id}", pay_get_route, 0},
    {"POST", "/api/v1/payments/{id}/invoice", pay_invoice_late, 0},
    {"GET", "/api/v1/invoices", pay_invoice_list, 0},
    {"GET", "/api/v1/invoices/{id}", pay_invoice_get, 0},
    {"POST", "/api/v1/invoices/{id}/received", pay_invoice_received, 0},
    {"POST", "/api/v1/invoices/{id}/reissue", pay_invoice_reissue, 0},
    {"GET", "/api/v1/invoices/{id}/file", pay_invoice_file, 0},
    {"POST", "/api/v1/finance/invoices/{id}/posted", pay_finance_invoice_posted,
        0},
    {"POST", "/notify/alipay", pay_notify_alipay, 0},
    {"POST", "/notify/wechat", pay_notify_wechat, 0},
    {"POST", "/api/v1/finance/refunds", pay_finance_refund, 0},
    {"POST", "/api/v1/finance/bills/{channel}/{date}", pay_finance_bill,
        (512 * 1024 * 1024) | HTTP_BODY_STREAM},
    {"POST", "/api/v1/finance/bills/{channel}/{date}/fetch",
        pay_finance_bill_fetch, 0},
    {"GET", "/api/v1/finance/reconciliations/{id}", pay_finance_reconciliation,
        0},
    {"GET", "/api/v1/finance/reconciliations/{id}/items",
        pay_finance_reconciliation_items, 0},
    {"POST", "/api/v1/finance/reconciliations/{id}/items/{seq}/decision",
        pay_finance_reconciliation_decision, 0},
};

void
pay_routes_add(void)
{
	pay_notify_init();
	http_server_routes(pay.svc.http, routes, ARRAY_LEN(routes));
}
