/* invoices — the invoice API (issue 18): the list of the invoices the caller
 * sees (access_viewer: the administrator every invoice of the enterprise
 * whoever paid, members those of their orders and certificates, finance
 * and operator all) with filters, keyset pages and a CSV export for
 * finance; one invoice; 补开 (POST /api/v1/payments/{id}/invoice: an
 * invoice asked after payment for an order paid with `none`, once, within
 * CAPLAT_INVOICE_LATE_DAYS); the post of a paper special invoice: 已邮寄
 * recorded by finance, 已签收 by finance or the administrator. Changes carry
 * their audit entry in the same batch (common/audit.h). */
#include "payments.h"

#include "access.h"
#include "audit.h"
#include "db.h"
#include "domain.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "validate.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_int_t
fen(const struct db_result *res, int stmt, int row, int col)
{
	return (json_int_t)strtoll(db_value(res, stmt, row, col), NULL, 10);
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Issue 18 parts 6, 3, 7: the platform's answer (check code, issue date,
 * the reason of 开具失败 and the attempts), the reissue links, whether the
 * file is there, the e-mail's delivery. */
static void
invoice_platform_json(json_t *o, const struct db_result *res, int stmt, int row)
{
	const char *email_status = db_value(res, stmt, row, 34);

	json_object_set_new(o, "original_id",
	    str_or_null(db_value(res, stmt, row, 26)));
	json_object_set_new(o, "reversal_id",
	    str_or_null(db_value(res, stmt, row, 27)));
	json_object_set_new(o, "replacement_id",
	    str_or_null(db_value(res, stmt, row, 28)));
	json_object_set_new(o, "reissue_reason",
	    str_or_null(db_value(res, stmt, row, 38)));
	json_object_set_new(o, "check_code",
	    str_or_null(db_value(res, stmt, row, 29)));
	json_object_set_new(o, "issue_date",
	    str_or_null(db_value(res, stmt, row, 30)));
	json_object_set_new(o, "failure_reason",
	    str_or_null(db_value(res, stmt, row, 31)));
	json_object_set_new(o, "attempts",
	    json_integer(atoi(db_value(res, stmt, row, 32))));
	json_object_set_new(o, "file",
	    json_boolean(db_bool(res, stmt, row, 33)));
	if (email_status == NULL) {
		json_object_set_new(o, "email_delivery", json_null());
		return;
	}
	json_object_set_new(o, "email_delivery",
	    json_pack("{s:s?, s:s, s:i, s:s?, s:s?}", "to",
	        db_value(res, stmt, row, 39), "status", email_status,
	        "attempts", atoi(db_value(res, stmt, row, 37)), "error",
	        db_value(res, stmt, row, 35), "sent_at",
	        db_value(res, stmt, row, 36)));
}

static json_t *
invoice_json(const struct db_result *res, int stmt, int row)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I, s:s, s:s?, s:s?, s:s}",
	    "id", db_value(res, stmt, row, 0), "order_id",
	    db_value(res, stmt, row, 1), "type", db_value(res, stmt, row, 2),
	    "kind", db_value(res, stmt, row, 3), "reverses_invoice_id",
	    db_value(res, stmt, row, 4), "title", db_value(res, stmt, row, 5),
	    "taxpayer_id", db_value(res, stmt, row, 6), "amount_fen",
	    fen(res, stmt, row, 7), "tax_fen", fen(res, stmt, row, 8), "status",
	    db_value(res, stmt, row, 9), "number", db_value(res, stmt, row, 10),
	    "issued_at", db_value(res, stmt, row, 11), "payment_id",
	    db_value(res, stmt, row, 12));
	const char *order_number = db_value(res, stmt, row, 23);

	json_object_set_new(o, "order_number",
	    order_number ? json_string(order_number) : json_null());
	json_object_set_new(o, "late",
	    json_boolean(strcmp(db_value(res, stmt, row, 22), "t") == 0));
	json_object_set_new(o, "created_at",
	    json_string(db_value(res, stmt, row, 24)));
	invoice_platform_json(o, res, stmt, row);
	if (strcmp(db_value(res, stmt, row, 2), "paper_special") != 0 ||
	    strcmp(db_value(res, stmt, row, 3), "blue") != 0) {
		json_object_set_new(o, "post", json_null());
		return o;
	}
	json_object_set_new(o, "post",
	    json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
	        "status", db_value(res, stmt, row, 17), "recipient",
	        db_value(res, stmt, row, 14), "phone",
	        db_value(res, stmt, row, 15), "address",
	        db_value(res, stmt, row, 16), "express_company",
	        db_value(res, stmt, row, 18), "tracking_number",
	        db_value(res, stmt, row, 19), "posted_at",
	        db_value(res, stmt, row, 20), "received_at",
	        db_value(res, stmt, row, 21)));
	return o;
}

/* ---- GET /api/v1/invoices/{id} ------------------------------------------ */

static void
get_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "发票不存在");
		return;
	}
	http_reply_json(req, 200, invoice_json(res, 0, 0));
}

static void
get_start(struct http_req *req)
{
	struct access_viewer v;

	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "发票不存在");
		return;
	}
	const char *p[] = {req->params[0], v.account, v.uscc, v.scope};
	db_query(pay.svc.db, store_invoice_get_sql, 4, p, get_on_loaded, req);
}

void
pay_invoice_get(struct http_req *req)
{
	session_require(req, get_start);
}

/* ---- GET /api/v1/invoices ------------------------------------------------ */

/* Query parameters: the names of the list's $7 … $11 after the fixed ones. */
static const char *const filter_names[] = {"status", "type", "from", "to",
    "order_number"};
#define NFILTERS 5

struct ilist {
	long limit;
	int csv;
	char *order_id, *cursor, *limit_text, *format;
	char *filters[NFILTERS];
};

static void
ilist_free(void *p)
{
	struct ilist *st = p;

	free(st->order_id);
	free(st->cursor);
	free(st->limit_text);
	free(st->format);
	for (int i = 0; i < NFILTERS; i++)
		free(st->filters[i]);
	free(st);
}

/* A calendar date YYYY-MM-DD that exists. */
static int
date_ok(const char *s)
{
	struct tm tm = {0};
	char back[16];
	const char *end;

	if (strlen(s) != 10)
		return 0;
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return 0;
	tm.tm_isdst = -1;
	tm.tm_hour = 12;
	if (timegm(&tm) == (time_t)-1)
		return 0;
	strftime(back, sizeof(back), "%Y-%m-%d", &tm);
	return strcmp(back, s) == 0;
}

static int
one_of(const char *s, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(s, *allowed) == 0)
			return 1;
	return 0;
}

/* One CSV field: a number as it is; text quoted, and text that a
 * spreadsheet would take for a formula prefixed with an apostrophe. NULL is
 * an empty field. */
static void
csv_field(struct evbuffer *out, const char *s, int numeric, int last)
{
	if (s != NULL && numeric) {
		evbuffer_add(out, s, strlen(s));
	} else if (s != NULL) {
		evbuffer_add(out, "\"", 1);
		if (s[0] != '\0' && strchr("=+-@", s[0]) != NULL)
			evbuffer_add(out, "'", 1);
		for (const char *c = s; *c; c++)
			evbuffer_add(out, c, 1 + (*c == '"'));
		evbuffer_add(out, "\"", 1);
	}
	evbuffer_add(out, last ? "\r\n" : ",", last ? 2 : 1);
}

static void
csv_reply(struct http_req *req, const struct db_result *res, int n)
{
	/* columns of INVOICE_COLS, in the CSV's order */
	static const struct {
		const char *name;
		int col;
	} cols[] = {{"id", 0}, {"number", 10}, {"order_number", 23},
	    {"order_id", 1}, {"payment_id", 12}, {"type", 2}, {"kind", 3},
	    {"status", 17}, {"title", 5}, {"taxpayer_id", 6}, {"amount_fen", 7},
	    {"tax_fen", 8}, {"issued_at", 11}, {"created_at", 24}, {"late", 22},
	    {"express_company", 18}, {"tracking_number", 19}};
	struct evbuffer *out = evbuffer_new();
	size_t ncols = ARRAY_LEN(cols);

	for (size_t c = 0; c < ncols; c++)
		csv_field(out, cols[c].name, 0, c + 1 == ncols);
	for (int row = 0; row < n; row++)
		for (size_t c = 0; c < ncols; c++)
			csv_field(out, db_value(res, 0, row, cols[c].col),
			    cols[c].col == 7 || cols[c].col == 8,
			    c + 1 == ncols);
	size_t len = evbuffer_get_length(out);
	const void *data = evbuffer_pullup(out, -1);
	http_reply_raw(req, 200, "text/csv; charset=utf-8", data ? data : "",
	    len);
	evbuffer_free(out);
}

static void
list_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct ilist *st = req->data;
	int n;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	n = db_rows(res, 0);
	const char *next =
	    n > st->limit ? db_value(res, 0, (int)st->limit - 1, 13) : NULL;
	if (n > st->limit)
		n = (int)st->limit;
	if (st->csv) {
		if (next != NULL)
			http_add_header(req, "X-Next-Cursor", next);
		csv_reply(req, res, n);
		return;
	}
	json_t *items = json_array();
	for (int row = 0; row < n; row++)
		json_array_append_new(items, invoice_json(res, 0, row));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor",
	        next ? json_string(next) : json_null()));
}

static void
list_bad(struct http_req *req, const char *field, const char *message)
{
	http_reply_error(req, 400, "BAD_REQUEST", field, message);
}

static void
list_start(struct http_req *req)
{
	static const char *const statuses[] = {"pending", "issued", "failed",
	    NULL};
	static const char *const types[] = {"e_normal", "paper_special", NULL};
	struct ilist *st = xcalloc(1, sizeof(*st));
	struct access_viewer v;
	char *limit;

	http_req_attach(req, st, ilist_free);
	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	st->format = http_query_param(req, "format");
	if (st->format != NULL && strcmp(st->format, "json") != 0) {
		if (strcmp(st->format, "csv") != 0) {
			list_bad(req, "format", "format 须为 json 或 csv");
			return;
		}
		/* The export is finance's. */
		if (access_scope(req->session, ACCESS_FINANCE) <
		    ACCESS_PLATFORM) {
			http_reply_error(req, 403, "FORBIDDEN", NULL,
			    "仅财务人员可导出发票");
			return;
		}
		st->csv = 1;
	}
	long max = st->csv ? 10000 : 100;
	st->limit = st->csv ? max : 20;
	limit = http_query_param(req, "limit");
	if (limit != NULL) {
		char *end;
		st->limit = strtol(limit, &end, 10);
		int bad = *limit == '\0' || *end != '\0' || st->limit < 1 ||
		    st->limit > max;
		free(limit);
		if (bad) {
			list_bad(req, "limit",
			    st->csv ? "limit 须为 1 至 10000"
			            : "limit 须为 1 至 100");
			return;
		}
	}
	st->order_id = http_query_param(req, "order_id");
	st->cursor = http_query_param(req, "cursor");
	if (st->order_id != NULL && !uuid_valid(st->order_id)) {
		list_bad(req, "order_id", "订单编号格式不正确");
		return;
	}
	if (st->cursor != NULL &&
	    (strlen(st->cursor) > 128 || strlen(st->cursor) < 10)) {
		list_bad(req, "cursor", "cursor 不正确");
		return;
	}
	for (int i = 0; i < NFILTERS; i++)
		st->filters[i] = http_query_param(req, filter_names[i]);
	if (st->filters[0] != NULL && !one_of(st->filters[0], statuses)) {
		list_bad(req, "status",
		    "status 须为 pending、issued 或 failed");
		return;
	}
	if (st->filters[1] != NULL && !one_of(st->filters[1], types)) {
		list_bad(req, "type", "type 须为 e_normal 或 paper_special");
		return;
	}
	for (int i = 2; i <= 3; i++)
		if (st->filters[i] != NULL && !date_ok(st->filters[i])) {
			list_bad(req, filter_names[i],
			    "日期须为 YYYY-MM-DD（开票日期，北京时间）");
			return;
		}
	if (st->filters[4] != NULL && strlen(st->filters[4]) > 64) {
		list_bad(req, "order_number", "订单号过长");
		return;
	}
	st->limit_text = xasprintf("%ld", st->limit + 1);
	const char *p[] = {v.account, st->order_id, st->cursor, st->limit_text,
	    v.uscc, v.scope, st->filters[0], st->filters[1], st->filters[2],
	    st->filters[3], st->filters[4]};
	db_query(pay.svc.db, store_invoice_list_sql, 11, p, list_on_loaded,
	    req);
}

void
pay_invoice_list(struct http_req *req)
{
	session_require(req, list_start);
}

/* ---- the changes: 补开, 已邮寄, 已签收 -------------------------------------- */

struct change {
	struct http_req *req;
	json_t *body;
	struct access_viewer v;
	int status; /* of the answer when done */
	char id[37];
	char amount[24], tax[24], days[24];
	char *uscc; /* the invoice's enterprise (audit), once read */
	const char *type, *email, *company, *tracking;
	struct pay_postal postal;
};

static void
change_free(void *p)
{
	struct change *st = p;

	json_decref(st->body);
	free(st->uscc);
	free(st);
}

static struct change *
change_new(struct http_req *req, json_t *body, int status)
{
	struct change *st = xcalloc(1, sizeof(*st));

	st->req = req;
	st->body = body;
	st->status = status;
	http_req_attach(req, st, change_free);
	return st;
}

/* The batch's first statement changed, its audit entry followed, its last
 * one read the invoice: the refusal, or the invoice. */
static void
change_on_done(void *arg, const struct db_result *res)
{
	struct change *st = arg;
	struct http_req *req = st->req;
	int last = res->nstmts - 1;

	if (res->status == DB_REFUSED) {
		const struct pay_refusal *r =
		    pay_refusal(res->message, "INVOICE_STATE");
		http_reply_error(req, r->status, r->rule, r->field, r->message);
		return;
	}
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, last) != 1) {
		http_reply_error(req, 404, "INVOICE_NOT_FOUND", NULL,
		    "发票不存在");
		return;
	}
	if (st->status == 201)
		pay_sweep_kick(); /* issue the new invoice at once */
	http_reply_json(req, st->status, invoice_json(res, last, 0));
}

/* Adds the audit entry and the invoice's read to b and runs it. */
static void
change_run(struct change *st, struct db_batch *b, const char *action,
    json_t *after)
{
	const struct audit_entry e = {.action = action,
	    .object_type = "invoice",
	    .object_id = st->id,
	    .uscc = st->uscc ? st->uscc : st->v.uscc,
	    .after = after};
	const char *p[] = {st->id, st->v.account, st->v.uscc, st->v.scope};

	audit_add(b, st->req, &e);
	json_decref(after);
	db_batch_add(b, store_invoice_get_sql, 4, p);
	db_batch_run(pay.svc.db, b, change_on_done, st);
}

/* Posted and received read the invoice first (404 when it is not the
 * caller's), so that the audit entry names its enterprise; then run. */
typedef void (*change_next_fn)(struct change *st);

struct change_read {
	struct change *st;
	change_next_fn next;
};

static void
change_on_read(void *arg, const struct db_result *res)
{
	struct change_read *cr = arg;
	struct change *st = cr->st;
	change_next_fn next = cr->next;

	free(cr);
	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(st->req, 404, "INVOICE_NOT_FOUND", NULL,
		    "发票不存在");
		return;
	}
	if (db_value(res, 0, 0, 25) != NULL)
		st->uscc = xstrdup(db_value(res, 0, 0, 25));
	next(st);
}

static void
change_read(struct change *st, change_next_fn next)
{
	struct change_read *cr = xcalloc(1, sizeof(*cr));
	const char *p[] = {st->id, st->v.account, st->v.uscc, st->v.scope};

	cr->st = st;
	cr->next = next;
	db_query(pay.svc.db, store_invoice_get_sql, 4, p, change_on_read, cr);
}

/* ---- POST /api/v1/payments/{id}/invoice (补开) ----------------------------- */

static void late_on_payment(void *arg, const struct db_result *res);

static void
late_start(struct http_req *req)
{
	static const char *const types[] = {"e_normal", "paper_special", NULL};
	struct json_field_err err;
	struct access_viewer v;
	json_t *body;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能申请补开发票");
		return;
	}
	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct change *st = change_new(req, body, 201);
	st->v = v;
	if (json_field_enum(body, "type", JSON_FIELD_REQUIRED, types, &st->type,
	        &err) != 0 ||
	    json_field_str(body, "email", JSON_FIELD_OPTIONAL, 254, &st->email,
	        &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (strcmp(st->type, "e_normal") == 0 && st->email == NULL) {
		http_reply_error(req, 422, "FIELD_REQUIRED", "email",
		    "电子发票须填写接收邮箱");
		return;
	}
	if (st->email != NULL && !pay_email_ok(st->email)) {
		http_reply_error(req, 422, "EMAIL_INVALID", "email",
		    "邮箱格式不正确");
		return;
	}
	if (strcmp(st->type, "paper_special") == 0 &&
	    pay_postal_read(body, 1, 0, &st->postal, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "PAYMENT_NOT_FOUND", NULL,
		    "支付记录不存在");
		return;
	}
	const char *p[] = {req->params[0], v.account, v.uscc, v.scope};
	db_query(pay.svc.db, store_payment_get_sql, 4, p, late_on_payment, st);
}

static void
late_on_payment(void *arg, const struct db_result *res)
{
	struct change *st = arg;
	struct http_req *req = st->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "PAYMENT_NOT_FOUND", NULL,
		    "支付记录不存在");
		return;
	}
	/* What is left of the payment is invoiced, with DOMAIN.md's VAT; the
	 * function refuses when it changed meanwhile. */
	int64_t amount = strtoll(db_value(res, 0, 0, 5), NULL, 10) -
	    strtoll(db_value(res, 0, 0, 6), NULL, 10);
	snprintf(st->amount, sizeof(st->amount), "%lld", (long long)amount);
	snprintf(st->tax, sizeof(st->tax), "%lld",
	    (long long)money_vat_tax(amount, pay.cfg.vat_rate_bp));
	snprintf(st->days, sizeof(st->days), "%ld", pay.cfg.invoice_late_days);
	uuid_v4(st->id);
	const char *p[] = {st->id, req->params[0], st->type, st->email,
	    st->postal.recipient, st->postal.phone, st->postal.address,
	    st->days, st->amount, st->tax, st->v.account, st->v.uscc,
	    st->v.scope};
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_invoice_late_sql, 13, p);
	change_run(st, b, "invoice.requested_late",
	    json_pack("{s:s, s:s, s:s?, s:I}", "payment_id", req->params[0],
	        "type", st->type, "email", st->email, "amount_fen",
	        (json_int_t)amount));
	log_info(req->id, "msg=invoice_late payment=%s invoice=%s type=%s",
	    req->params[0], st->id, st->type);
}

void
pay_invoice_late(struct http_req *req)
{
	session_require(req, late_start);
}

/* ---- POST /api/v1/finance/invoices/{id}/posted (已邮寄) --------------------- */

static void
posted_run(struct change *st)
{
	const char *p[] = {st->id, st->company, st->tracking};
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_invoice_post_sql, 3, p);
	change_run(st, b, "invoice.posted",
	    json_pack("{s:s, s:s, s:s}", "post_status", "posted",
	        "express_company", st->company, "tracking_number",
	        st->tracking));
}

static void
posted_start(struct http_req *req)
{
	struct json_field_err err;
	json_t *body;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct change *st = change_new(req, body, 200);
	st->v.scope = "platform";
	if (json_field_str(body, "express_company", JSON_FIELD_REQUIRED, 64,
	        &st->company, &err) != 0 ||
	    json_field_str(body, "tracking_number", JSON_FIELD_REQUIRED, 64,
	        &st->tracking, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "INVOICE_NOT_FOUND", NULL,
		    "发票不存在");
		return;
	}
	snprintf(st->id, sizeof(st->id), "%s", req->params[0]);
	change_read(st, posted_run);
}

void
pay_finance_invoice_posted(struct http_req *req)
{
	session_require(req, posted_start);
}

/* ---- POST /api/v1/invoices/{id}/received (已签收) --------------------------- */

static void
received_run(struct change *st)
{
	const char *p[] = {st->id, st->v.account, st->v.uscc, st->v.scope};
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_invoice_receive_sql, 4, p);
	change_run(st, b, "invoice.received",
	    json_pack("{s:s}", "post_status", "received"));
}

static void
received_start(struct http_req *req)
{
	struct access_viewer v;

	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	/* Finance, or the enterprise's administrator (who sees the invoice). */
	int finance =
	    access_scope(req->session, ACCESS_FINANCE) >= ACCESS_PLATFORM;
	if (strcmp(v.scope, "enterprise") != 0 && !finance) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "仅财务人员或企业管理员可登记签收");
		return;
	}
	struct change *st = change_new(req, NULL, 200);
	st->v = v;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "INVOICE_NOT_FOUND", NULL,
		    "发票不存在");
		return;
	}
	snprintf(st->id, sizeof(st->id), "%s", req->params[0]);
	change_read(st, received_run);
}

void
pay_invoice_received(struct http_req *req)
{
	session_require(req, received_start);
}

/* ---- POST /api/v1/invoices/{id}/reissue (红冲重开) --------------------------- */

struct reissue_ids {
	char red[37], blue[37];
};

static void
reissue_run(struct change *st)
{
	char max[24];
	char original[37];
	struct reissue_ids *ids = xcalloc(1, sizeof(*ids));
	const char *title =
	    json_string_value(json_object_get(st->body, "title"));
	const char *taxpayer_id =
	    json_string_value(json_object_get(st->body, "taxpayer_id"));
	const char *reason =
	    json_string_value(json_object_get(st->body, "reason"));

	uuid_v4(ids->red);
	uuid_v4(ids->blue);
	snprintf(original, sizeof(original), "%s", st->id);
	snprintf(max, sizeof(max), "%ld", pay.cfg.reissue_max);
	snprintf(st->days, sizeof(st->days), "%ld", pay.cfg.reissue_days);
	const char *p[] = {original, ids->red, ids->blue, title, st->company,
	    reason, max, st->days, st->v.account, st->v.uscc, st->v.scope};
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_invoice_reissue_sql, 11, p);
	const struct audit_entry e = {.action = "invoice.reissued",
	    .object_type = "invoice",
	    .object_id = original,
	    .uscc = st->uscc ? st->uscc : st->v.uscc,
	    .after = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "reversal_id",
	        ids->red, "replacement_id", ids->blue, "title", title,
	        "taxpayer_id", taxpayer_id, "reason", reason)};
	audit_add(b, st->req, &e);
	json_decref(e.after);
	/* The answer is the new blue invoice. */
	snprintf(st->id, sizeof(st->id), "%s", ids->blue);
	const char *g[] = {st->id, st->v.account, st->v.uscc, st->v.scope};
	db_batch_add(b, store_invoice_get_sql, 4, g);
	log_info(st->req->id, "msg=invoice_reissue original=%s red=%s blue=%s",
	    original, ids->red, ids->blue);
	free(ids);
	db_batch_run(pay.svc.db, b, change_on_done, st);
}

static void
reissue_start(struct http_req *req)
{
	struct json_field_err err;
	struct access_viewer v;
	const char *title, *taxpayer_id, *reason;
	char uscc[19];
	json_t *body;

	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	/* The payer's side (their own or the enterprise's) or finance. */
	if (strcmp(v.scope, "platform") == 0 &&
	    access_scope(req->session, ACCESS_FINANCE) < ACCESS_PLATFORM) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "仅付款方或财务人员可申请重开发票");
		return;
	}
	if (http_read_json(req, &body) != 0)
		return;
	struct change *st = change_new(req, body, 201);
	st->v = v;
	if (json_field_str(body, "title", JSON_FIELD_REQUIRED, 100, &title,
	        &err) != 0 ||
	    json_field_str(body, "taxpayer_id", JSON_FIELD_OPTIONAL, 32,
	        &taxpayer_id, &err) != 0 ||
	    json_field_str(body, "reason", JSON_FIELD_REQUIRED, 200, &reason,
	        &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (taxpayer_id != NULL) {
		if (validate_uscc(taxpayer_id, uscc) != 0) {
			http_reply_error(req, 422, "TAXPAYER_ID_INVALID",
			    "taxpayer_id",
			    "纳税人识别号须为有效的统一社会信用代码");
			return;
		}
		json_object_set_new(body, "taxpayer_id", json_string(uscc));
		st->company =
		    json_string_value(json_object_get(body, "taxpayer_id"));
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "INVOICE_NOT_FOUND", NULL,
		    "发票不存在");
		return;
	}
	snprintf(st->id, sizeof(st->id), "%s", req->params[0]);
	change_read(st, reissue_run);
}

void
pay_invoice_reissue(struct http_req *req)
{
	session_require(req, reissue_start);
}

/* ---- GET /api/v1/invoices/{id}/file (the PDF, streamed) --------------------
 * Whoever sees the invoice; the file leaves the database 64 KiB at a time,
 * each chunk read when the previous one has reached the socket. */

#define FILE_CHUNK 65536

struct fdl {
	char id[37];
	long len, off; /* off: the next byte, from 1 */
};

static void file_next(struct http_req *req);

static void
file_on_chunk(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct fdl *st = req->data;
	const char *hex;
	size_t n;

	if (http_stream_gone(req) || res->status != DB_OK ||
	    db_rows(res, 0) != 1 || (hex = db_value(res, 0, 0, 0)) == NULL ||
	    (n = strlen(hex) / 2) == 0) {
		http_stream_end(req, 0);
		return;
	}
	struct evbuffer *buf = evbuffer_new();
	unsigned char *dst = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		unsigned hi =
		    (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0'
		                                 : hex[2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(hex[2 * i + 1] <= '9'
		        ? hex[2 * i + 1] - '0'
		        : hex[2 * i + 1] - 'a' + 10);
		dst[i] = (unsigned char)(hi << 4 | lo);
	}
	evbuffer_add(buf, dst, n);
	free(dst);
	st->off += (long)n;
	http_stream_chunk(req, buf, file_next);
	evbuffer_free(buf);
}

static void
file_next(struct http_req *req)
{
	struct fdl *st = req->data;
	char off[24], len[24];

	if (http_stream_gone(req)) {
		http_stream_end(req, 0);
		return;
	}
	if (st->off > st->len) {
		http_stream_end(req, 1);
		return;
	}
	snprintf(off, sizeof(off), "%ld", st->off);
	snprintf(len, sizeof(len), "%d", FILE_CHUNK);
	const char *p[] = {st->id, off, len};
	db_query(pay.svc.db, store_invoice_file_chunk_sql, 3, p, file_on_chunk,
	    req);
}

static void
file_on_head(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct fdl *st = req->data;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "INVOICE_FILE_NOT_FOUND", NULL,
		    "发票文件不存在（发票未开具或不可见）");
		return;
	}
	st->len = strtol(db_value(res, 0, 0, 0), NULL, 10);
	st->off = 1;
	char *disp = xasprintf("attachment; filename=\"%s.pdf\"",
	    db_value(res, 0, 0, 2));
	char *etag = xasprintf("\"%s\"", db_value(res, 0, 0, 1));
	http_add_header(req, "Content-Disposition", disp);
	http_add_header(req, "ETag", etag);
	free(disp);
	free(etag);
	http_stream_start(req, 200, db_value(res, 0, 0, 3));
	file_next(req);
}

static void
file_start(struct http_req *req)
{
	struct access_viewer v;

	if (access_viewer(req, ACCESS_PAYMENTS, &v) != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "INVOICE_FILE_NOT_FOUND", NULL,
		    "发票文件不存在（发票未开具或不可见）");
		return;
	}
	struct fdl *st = xcalloc(1, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", req->params[0]);
	http_req_attach(req, st, free);
	const char *p[] = {st->id, v.account, v.uscc, v.scope};
	db_query(pay.svc.db, store_invoice_file_head_sql, 4, p, file_on_head,
	    req);
}

void
pay_invoice_file(struct http_req *req)
{
	session_require(req, file_start);
}
