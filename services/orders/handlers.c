/* handlers — the orders API: the platform catalogue and its prices (operator),
 * quotes, orders (create with Idempotency-Key, list, detail, cancel) and the
 * payments flagged for refund (finance). Each handler is a chain of named
 * continuations; the last one replies. Eligibility and pricing are the pure
 * code of eligibility.c and pricing.c; every SQL statement is in store.c. */
#include "orders.h"

#include "crypto.h"
#include "bus.h"
#include "db.h"
#include "eligibility.h"
#include "json.h"
#include "log.h"
#include "pricing.h"
#include "session.h"
#include "store.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orders orders;

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100
#define DROPPED_NOTICE \
	"未勾选的原关联平台将于证书更新成功之日起停止使用，再次新增需按照平台新增标准重新缴费"

/* ---- shared helpers ---------------------------------------------------- */

static void
reply_order_error(struct http_req *req, const struct order_error *err)
{
	http_reply_error(req, err->status, err->code,
	    err->field[0] ? err->field : NULL, err->message);
}

/* Certificate holders only: a staff session, or an account without a current
 * identity, is answered 403 here. */
static int
require_holder(struct http_req *req)
{
	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能办理证书延期");
		return -1;
	}
	if (req->session->identity_id == NULL) {
		http_reply_error(req, 403, "IDENTITY_REQUIRED", NULL,
		    "请先添加并切换到企业或个人身份");
		return -1;
	}
	return 0;
}

/* The caller's enterprise when the current identity is its administrator. */
static const char *
admin_uscc(const struct session *s)
{
	if (s->uscc != NULL && s->role != NULL && strcmp(s->role, "admin") == 0)
		return s->uscc;
	return NULL;
}

static json_t *
json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
json_fen(const char *s)
{
	return json_integer(s != NULL ? strtoll(s, NULL, 10) : 0);
}

/* Reads ?limit= (1..100, default 20) into *limit, or answers 400. */
static int
read_limit(struct http_req *req, int *limit)
{
	char *v = http_query_param(req, "limit"), *end;
	long n;

	*limit = LIST_DEFAULT_LIMIT;
	if (v == NULL)
		return 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 1 || n > LIST_MAX_LIMIT) {
		free(v);
		http_reply_error(req, 400, "BAD_REQUEST", "limit",
		    "limit 须为 1 至 100 的整数");
		return -1;
	}
	free(v);
	*limit = (int)n;
	return 0;
}

/* A cursor is base64url("<time with microseconds>|<uuid>"), opaque to
 * clients. Decodes ?cursor= into time and id (both "" when absent), or
 * answers 400. */
static int
read_cursor(struct http_req *req, char time[40], char id[37])
{
	char *v = http_query_param(req, "cursor"), text[80], *bar = NULL;
	unsigned char *raw = NULL;
	size_t len = 0;
	int64_t t;

	time[0] = id[0] = '\0';
	if (v == NULL)
		return 0;
	if (strlen(v) <= 512 &&
	    crypto_base64url_decode(&raw, &len, v, strlen(v)) == 0 &&
	    len < sizeof(text) && memchr(raw, '\0', len) == NULL) {
		memcpy(text, raw, len);
		text[len] = '\0';
		bar = strchr(text, '|');
	}
	free(v);
	free(raw);
	if (bar == NULL || bar - text >= 40 || !uuid_valid(bar + 1)) {
		http_reply_error(req, 400, "BAD_REQUEST", "cursor",
		    "分页游标无效");
		return -1;
	}
	*bar = '\0';
	if (order_time_parse(text, &t) != 0) {
		http_reply_error(req, 400, "BAD_REQUEST", "cursor",
		    "分页游标无效");
		return -1;
	}
	memcpy(time, text, (size_t)(bar - text) + 1);
	memcpy(id, bar + 1, 37);
	return 0;
}

static json_t *
make_cursor(const char *time, const char *id)
{
	char *text = xasprintf("%s|%s", time, id);
	char *enc = crypto_base64url_encode(text, strlen(text));
	json_t *c = json_string(enc);

	free(text);
	free(enc);
	return c;
}

/* ---- the catalogue ----------------------------------------------------- */

/* Builds a catalogue from rows of store_catalogue_*(). Returns 0, or -1 when
 * a row is malformed (a bug). */
static int
catalogue_from_rows(struct order_catalogue *cat, const struct db_result *res,
    int stmt)
{
	order_catalogue_init(cat);
	for (int r = 0; r < db_rows(res, stmt); r++) {
		if (order_catalogue_add(cat, db_value(res, stmt, r, 0),
		        db_value(res, stmt, r, 1),
		        atoi(db_value(res, stmt, r, 2)),
		        db_value(res, stmt, r, 3),
		        strtoll(db_value(res, stmt, r, 4), NULL, 10),
		        strtoll(db_value(res, stmt, r, 5), NULL, 10),
		        strtoll(db_value(res, stmt, r, 6), NULL, 10)) != 0) {
			order_catalogue_clear(cat);
			return -1;
		}
	}
	return 0;
}

static json_t *
prices_json(const struct order_price *p)
{
	return json_pack("{s:I, s:I}", "renew_fen", (json_int_t)p->renew_fen,
	    "add_fen", (json_int_t)p->add_fen);
}

static void platforms_on_loaded(void *arg, const struct db_result *res);

struct platforms_list {
	int by_kind; /* ?lock_kind= given */
	enum order_lock_kind kind;
};

static void
platforms_list(struct http_req *req)
{
	struct platforms_list *st = xcalloc(1, sizeof(*st));
	char *kind = http_query_param(req, "lock_kind");
	struct db_batch *b;

	http_req_attach(req, st, free);
	if (kind != NULL) {
		int bad = order_lock_kind_parse(kind, &st->kind) != 0;
		free(kind);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "lock_kind",
			    "未知的 CA 锁类型");
			return;
		}
		st->by_kind = 1;
	}
	b = db_batch_new();
	store_catalogue_now(b);
	db_batch_run(orders.svc.db, b, platforms_on_loaded, req);
}

static void
platforms_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct platforms_list *st = req->data;
	struct order_catalogue cat;
	json_t *items;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (catalogue_from_rows(&cat, res, 0) != 0) {
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	items = json_array();
	for (size_t i = 0; i < cat.n; i++) {
		const struct order_platform *p = &cat.platforms[i];
		const struct order_price *top =
		    st->by_kind ? order_platform_price(p, st->kind) : &p->base;
		json_t *by = json_object();

		if (top == NULL || !top->present)
			continue; /* no price for this kind: not orderable */
		for (int k = 0; k < LOCK_KINDS; k++) {
			const struct order_price *o = &p->by_kind[k];
			if (o->present &&
			    (!p->base.present ||
			        o->renew_fen != p->base.renew_fen ||
			        o->add_fen != p->base.add_fen))
				json_object_set_new(by,
				    order_lock_kind_name(
				        (enum order_lock_kind)k),
				    prices_json(o));
		}
		json_array_append_new(items,
		    json_pack("{s:s, s:s, s:I, s:I, s:o}", "code", p->code,
		        "name", p->name ? p->name : p->code, "renew_fen",
		        (json_int_t)top->renew_fen, "add_fen",
		        (json_int_t)top->add_fen, "by_lock_kind", by));
	}
	order_catalogue_clear(&cat);
	http_reply_json(req, 200,
	    json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

static void
orders_platforms(struct http_req *req)
{
	session_require(req, platforms_list);
}

/* ---- operator: prices -------------------------------------------------- */

static const char *const lock_kinds[] = {"master", "project_lead", "agent",
    "cost_engineer", "personal", NULL};

/* One price version from columns 0-8 of store_price_insert_sql. */
static json_t *
price_row_json(const struct db_result *res, int r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_fen(db_value(res, 0, r, 0)));
	json_object_set_new(o, "platform", json_string(db_value(res, 0, r, 1)));
	json_object_set_new(o, "lock_kind",
	    json_str_or_null(db_value(res, 0, r, 2)));
	json_object_set_new(o, "renew_fen", json_fen(db_value(res, 0, r, 3)));
	json_object_set_new(o, "add_fen", json_fen(db_value(res, 0, r, 4)));
	json_object_set_new(o, "effective_at",
	    json_string(db_value(res, 0, r, 5)));
	json_object_set_new(o, "set_by",
	    json_str_or_null(db_value(res, 0, r, 6)));
	json_object_set_new(o, "reason", json_string(db_value(res, 0, r, 7)));
	json_object_set_new(o, "created_at",
	    json_string(db_value(res, 0, r, 8)));
	return o;
}

static void price_on_inserted(void *arg, const struct db_result *res);

static void
price_set(struct http_req *req)
{
	struct json_field_err err;
	const char *kind = NULL, *reason, *effective = NULL;
	long long renew, add;
	char renew_s[24], add_s[24];
	int64_t t;
	json_t *body;

	if (session_require_staff(req, "operator") != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	http_req_attach(req, body, (void (*)(void *))json_decref);
	if (json_field_int(body, "renew_fen", JSON_FIELD_REQUIRED, 0,
	        100000000000LL, &renew, NULL, &err) != 0 ||
	    json_field_int(body, "add_fen", JSON_FIELD_REQUIRED, 0,
	        100000000000LL, &add, NULL, &err) != 0 ||
	    json_field_enum(body, "lock_kind", JSON_FIELD_OPTIONAL, lock_kinds,
	        &kind, &err) != 0 ||
	    json_field_str(body, "effective_at", JSON_FIELD_OPTIONAL, 64,
	        &effective, &err) != 0 ||
	    json_field_str(body, "reason", JSON_FIELD_REQUIRED, 500, &reason,
	        &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (effective != NULL) {
		if (order_time_parse(effective, &t) != 0) {
			http_reply_error(req, 422, "FIELD_INVALID",
			    "effective_at", "生效时间须为 RFC 3339 格式");
			return;
		}
		/* History is append-only in time too: a price never takes
		 * effect in the past, so what a quote or order was priced at
		 * can always be told again. */
		if (t < now_wall_ms() / 1000 - 5) {
			http_reply_error(req, 422, "FIELD_INVALID",
			    "effective_at", "生效时间不能早于当前时间");
			return;
		}
	}
	snprintf(renew_s, sizeof(renew_s), "%lld", renew);
	snprintf(add_s, sizeof(add_s), "%lld", add);
	const char *username =
	    json_string_value(json_object_get(req->session->data, "username"));
	const char *p[] = {req->params[0], kind, renew_s, add_s, effective,
	    req->session->staff_id, username, reason};
	log_info(req->id,
	    "msg=price_set platform=%s lock_kind=%s renew_fen=%lld add_fen=%lld "
	    "staff=%s",
	    req->params[0], kind ? kind : "base", renew, add,
	    username ? username : "-");
	db_query(orders.svc.db, store_price_insert_sql, 8, p, price_on_inserted,
	    req);
}

static void
price_on_inserted(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "PLATFORM_UNKNOWN", NULL,
		    "未知的应用平台");
		return;
	}
	http_reply_json(req, 201, price_row_json(res, 0));
}

static void
orders_price_set(struct http_req *req)
{
	session_require(req, price_set);
}

static void prices_on_loaded(void *arg, const struct db_result *res);

static void
price_history(struct http_req *req)
{
	json_t *roles = json_object_get(req->session->data, "roles");
	int allowed = 0;
	size_t i;
	json_t *r;

	for (i = 0; i < json_array_size(roles); i++) {
		r = json_array_get(roles, i);
		const char *role = json_string_value(r);
		if (role != NULL &&
		    (strcmp(role, "operator") == 0 ||
		        strcmp(role, "finance") == 0))
			allowed = 1;
	}
	if (req->session->staff_id == NULL || !allowed) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权执行此操作");
		return;
	}
	const char *p[] = {req->params[0]};
	db_query(orders.svc.db, store_price_history_sql, 1, p, prices_on_loaded,
	    req);
}

static void
prices_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	json_t *items;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) == 0) {
		http_reply_error(req, 404, "PLATFORM_UNKNOWN", NULL,
		    "未知的应用平台");
		return;
	}
	items = json_array();
	for (int r = 0; r < db_rows(res, 0); r++) {
		json_t *o;

		if (db_value(res, 0, r, 0) == NULL)
			continue;
		o = price_row_json(res, r);
		json_object_set_new(o, "state",
		    json_string(db_bool(res, 0, r, 10) ? "scheduled"
		            : db_bool(res, 0, r, 9)    ? "in_force"
		                                       : "superseded"));
		json_array_append_new(items, o);
	}
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:o, s:n}", "platform", req->params[0],
	        "name", db_value(res, 0, 0, 11), "items", items,
	        "next_cursor"));
}

static void
orders_price_history(struct http_req *req)
{
	session_require(req, price_history);
}

/* ---- quotes and orders: shared evaluation ------------------------------ */

/* State of a quote or an order creation, freed with the request. */
struct order_ctx {
	struct http_req *req;
	json_t *body;
	struct order_request rq;
	int create;    /* POST /orders (else the quote) */
	char key[129]; /* Idempotency-Key */
	char body_hash[65];
	char items_hash[65];
	int claimed;            /* this request owns the key */
	struct order_error err; /* the refusal answered after the release */
	/* Results of the evaluation: */
	json_t *items;     /* the priced items (API shape) */
	json_t *rows;      /* order_items rows for the insert */
	json_t *price_ids; /* the price versions used */
	int64_t total_fen;
	int dropped_any;
	/* The new order: */
	char id[37];
	char number[40];
	json_t *reply;
};

static void
order_ctx_free(void *p)
{
	struct order_ctx *st = p;

	order_request_clear(&st->rq);
	json_decref(st->body);
	json_decref(st->items);
	json_decref(st->rows);
	json_decref(st->price_ids);
	json_decref(st->reply);
	free(st);
}

/* The PostgreSQL array literal of the requested certificate ids. */
static char *
cert_ids_literal(const struct order_request *rq)
{
	char *s = xmalloc(rq->nitems * 37 + 3), *p = s;

	*p++ = '{';
	for (size_t i = 0; i < rq->nitems; i++)
		p += sprintf(p, "%s%s", i ? "," : "", rq->items[i].cert_id);
	*p++ = '}';
	*p = '\0';
	return s;
}

/* The statements every evaluation needs, appended to b: facts (3) and the
 * catalogue (1), now or of the quote. */
static void
order_load(struct order_ctx *st, struct db_batch *b)
{
	struct session *s = st->req->session;
	char *ids = cert_ids_literal(&st->rq);

	store_facts(b, s->account_id,
	    s->identity_type && strcmp(s->identity_type, "enterprise") == 0
	        ? s->uscc
	        : NULL,
	    ids);
	free(ids);
	if (st->rq.quote_id[0] != '\0')
		store_catalogue_of_quote(b, st->rq.quote_id, s->account_id);
	else
		store_catalogue_now(b);
}

/* The certificate columns of the facts statement (store_facts). */
enum {
	CERT_COL_ID,
	CERT_COL_SERIAL,
	CERT_COL_TYPE,
	CERT_COL_HOLDER,
	CERT_COL_USCC,
	CERT_COL_ACCOUNT,
	CERT_COL_LOCK_KIND,
	CERT_COL_NOT_AFTER_EPOCH,
	CERT_COL_PLATFORMS,
	CERT_COL_REVOKED,
	CERT_COL_APPROVED,
	CERT_COL_IN_OPEN_ORDER,
	CERT_COL_VENDOR,
	CERT_COL_ENTERPRISE,
	CERT_COL_NOT_AFTER,
};

/* Finds the facts row of a certificate in the certs statement, or -1. */
static int
facts_row(const struct db_result *res, int stmt, const char *cert_id)
{
	for (int r = 0; r < db_rows(res, stmt); r++)
		if (strcmp(db_value(res, stmt, r, CERT_COL_ID), cert_id) == 0)
			return r;
	return -1;
}

static const char *
pricing_error_message(enum order_price_status s)
{
	switch (s) {
	case PRICE_MISSING:
		return "该应用平台暂不支持此类 CA 锁";
	case PRICE_OVERFLOW:
		return "金额超出范围";
	default:
		return "未知的应用平台";
	}
}

/* The priced item as answered and stored (QuoteItem plus the certificate as
 * it was): steals lines, dropped, chosen and current. */
static json_t *
item_json(const char *cert_id, int64_t price_fen, json_t *lines,
    json_t *dropped, json_t *chosen, json_t *current, const char *lock_kind,
    const struct db_result *res, int stmt, int r)
{
	json_t *o = json_object();

	json_object_set_new(o, "cert_id", json_string(cert_id));
	json_object_set_new(o, "price_fen", json_integer(price_fen));
	json_object_set_new(o, "lines", lines);
	json_object_set_new(o, "dropped", dropped);
	json_object_set_new(o, "platforms", chosen);
	json_object_set_new(o, "current_platforms", current);
	json_object_set_new(o, "serial",
	    json_string(db_value(res, stmt, r, CERT_COL_SERIAL)));
	json_object_set_new(o, "holder",
	    json_str_or_null(db_value(res, stmt, r, CERT_COL_HOLDER)));
	json_object_set_new(o, "lock_kind", json_string(lock_kind));
	json_object_set_new(o, "not_after",
	    json_string(db_value(res, stmt, r, CERT_COL_NOT_AFTER)));
	json_object_set_new(o, "vendor",
	    json_str_or_null(db_value(res, stmt, r, CERT_COL_VENDOR)));
	json_object_set_new(o, "enterprise_name",
	    json_str_or_null(db_value(res, stmt, r, CERT_COL_ENTERPRISE)));
	return o;
}

/* Prices one eligible item (facts row r) into st->items (the API shape),
 * st->rows (the insert) and st->price_ids. Returns 0, or -1 with st->err. */
static int
order_price_item(struct order_ctx *st, const struct order_catalogue *cat,
    size_t i, const struct db_result *res, int stmt, int r)
{
	const struct order_item_req *it = &st->rq.items[i];
	json_t *current =
	    json_loads(db_value(res, stmt, r, CERT_COL_PLATFORMS), 0, NULL);
	size_t ncur = json_array_size(current), bad = 0, k;
	const char **cur = xcalloc(ncur ? ncur : 1, sizeof(*cur));
	json_t *lines, *dropped, *chosen, *item, *row;
	enum order_lock_kind kind = LOCK_PERSONAL;
	enum order_price_status ps;
	struct order_pricing pr;
	char field[64];
	int rc = -1;

	for (k = 0; k < ncur; k++) {
		const char *code =
		    json_string_value(json_array_get(current, k));
		cur[k] = code ? code : "";
	}
	/* The read model's CHECK admits only the five kinds. */
	(void)order_lock_kind_parse(db_value(res, stmt, r, CERT_COL_LOCK_KIND),
	    &kind);
	ps = order_price_cert(&pr, cat, kind, cur, ncur, it->platforms,
	    it->nplatforms, &bad);
	if (ps != PRICE_OK) {
		snprintf(field, sizeof(field), "items[%zu].platforms[%zu]", i,
		    bad);
		order_error_set(&st->err, 422,
		    ps == PRICE_OVERFLOW ? "FIELD_INVALID" : "PLATFORM_UNKNOWN",
		    field, pricing_error_message(ps));
		goto out;
	}
	if (order_fen_add(&st->total_fen, pr.price_fen) != 0) {
		order_error_set(&st->err, 422, "FIELD_INVALID", "items",
		    "金额超出范围");
		order_pricing_clear(&pr);
		goto out;
	}
	lines = json_array();
	chosen = json_array();
	for (k = 0; k < pr.nlines; k++) {
		const struct order_line *l = &pr.lines[k];
		const struct order_platform *plat =
		    order_catalogue_find(cat, l->platform);

		json_array_append_new(lines,
		    json_pack("{s:s, s:s, s:s, s:I, s:I}", "platform",
		        l->platform, "name",
		        plat && plat->name ? plat->name : l->platform, "kind",
		        l->add ? "add" : "renew", "price_fen",
		        (json_int_t)l->price_fen, "price_id",
		        (json_int_t)l->price_id));
		json_array_append_new(chosen, json_string(l->platform));
		json_array_append_new(st->price_ids, json_integer(l->price_id));
	}
	dropped = json_array();
	for (k = 0; k < pr.ndropped; k++)
		json_array_append_new(dropped, json_string(pr.dropped[k]));
	st->dropped_any |= pr.ndropped > 0;
	item = item_json(it->cert_id, pr.price_fen, lines, dropped, chosen,
	    json_incref(current), order_lock_kind_name(kind), res, stmt, r);

	row = json_object();
	json_object_set_new(row, "seq", json_integer((json_int_t)i + 1));
	json_object_set_new(row, "cert_id", json_string(it->cert_id));
	json_object_set_new(row, "account_id",
	    json_str_or_null(db_value(res, stmt, r, CERT_COL_ACCOUNT)));
	json_object_set_new(row, "uscc",
	    json_str_or_null(db_value(res, stmt, r, CERT_COL_USCC)));
	json_object_set_new(row, "price_fen", json_integer(pr.price_fen));
	json_object_set(row, "platforms", json_object_get(item, "platforms"));
	json_object_set(row, "detail", item);
	json_array_append_new(st->rows, row);
	json_array_append_new(st->items, item);
	order_pricing_clear(&pr);
	rc = 0;
out:
	free(cur);
	json_decref(current);
	return rc;
}

/* Checks and prices every item from the loaded facts (statements first ..
 * first+3). Returns 0 with st->items, rows, price_ids and total set, or -1
 * with st->err. */
static int
order_evaluate(struct order_ctx *st, const struct db_result *res, int first)
{
	struct session *s = st->req->session;
	int enterprise =
	    s->identity_type && strcmp(s->identity_type, "enterprise") == 0;
	const char *admin = admin_uscc(s);
	struct order_caller caller = {
	    .account_id = s->account_id,
	    .uscc = enterprise ? s->uscc : NULL,
	    .admin = enterprise && admin != NULL,
	    .profile_complete = db_rows(res, first) > 0,
	    .enterprise_approved = db_rows(res, first + 1) > 0,
	};
	const int certs = first + 2;
	struct order_catalogue cat;
	enum order_refusal refusal;
	char field[64];
	int rc = -1;

	if (catalogue_from_rows(&cat, res, first + 3) != 0) {
		order_error_set(&st->err, 500, "INTERNAL", NULL,
		    "服务器内部错误");
		return -1;
	}
	/* Input first: every platform must be in the catalogue. */
	for (size_t i = 0; i < st->rq.nitems; i++) {
		for (size_t k = 0; k < st->rq.items[i].nplatforms; k++) {
			if (order_catalogue_find(&cat,
			        st->rq.items[i].platforms[k]) == NULL) {
				snprintf(field, sizeof(field),
				    "items[%zu].platforms[%zu]", i, k);
				order_error_set(&st->err, 422,
				    "PLATFORM_UNKNOWN", field,
				    st->rq.quote_id[0]
				        ? "报价中没有该应用平台，请重新报价"
				        : "未知的应用平台");
				goto done;
			}
		}
	}
	if ((refusal = order_caller_check(&caller)) != ORDER_ELIGIBLE) {
		order_refusal_error(refusal, NULL, &st->err);
		goto done;
	}
	st->items = json_array();
	st->rows = json_array();
	st->price_ids = json_array();
	st->total_fen = 0;
	for (size_t i = 0; i < st->rq.nitems; i++) {
		int r = facts_row(res, certs, st->rq.items[i].cert_id);
		struct order_cert_facts f = {0};

		if (r >= 0) {
			f.found = 1;
			f.uscc = db_value(res, certs, r, CERT_COL_USCC);
			f.account_id =
			    db_value(res, certs, r, CERT_COL_ACCOUNT);
			f.not_after = strtoll(db_value(res, certs, r,
			                          CERT_COL_NOT_AFTER_EPOCH),
			    NULL, 10);
			f.revoked = db_bool(res, certs, r, CERT_COL_REVOKED);
			f.enterprise_approved =
			    db_bool(res, certs, r, CERT_COL_APPROVED);
			f.in_open_order =
			    db_bool(res, certs, r, CERT_COL_IN_OPEN_ORDER);
		}
		refusal = order_cert_check(&caller, &f, &orders.cfg.window,
		    now_wall_ms() / 1000);
		if (refusal != ORDER_ELIGIBLE) {
			snprintf(field, sizeof(field), "items[%zu].cert_id", i);
			order_refusal_error(refusal, field, &st->err);
			goto done;
		}
		if (order_price_item(st, &cat, i, res, certs, r) != 0)
			goto done;
	}
	rc = 0;
done:
	order_catalogue_clear(&cat);
	return rc;
}

/* The items hash: which certificates with which platforms. */
static void
order_items_hash(struct order_ctx *st)
{
	char *canon = order_request_canonical(&st->rq);

	crypto_sha256_hex(canon, strlen(canon), st->items_hash);
	free(canon);
}

/* Reads and checks the body into st->rq, or answers. */
static int
order_read_request(struct order_ctx *st)
{
	if (http_read_json(st->req, &st->body) != 0)
		return -1;
	if (order_request_parse(&st->rq, st->body, &st->err) != 0) {
		reply_order_error(st->req, &st->err);
		return -1;
	}
	order_items_hash(st);
	return 0;
}

static struct order_ctx *
order_ctx_new(struct http_req *req, int create)
{
	struct order_ctx *st = xcalloc(1, sizeof(*st));

	st->req = req;
	st->create = create;
	http_req_attach(req, st, order_ctx_free);
	return st;
}

/* Checks the quote row (statement stmt) against the request: answers and
 * returns -1 when it is gone, expired or for other items. */
static int
quote_check(struct order_ctx *st, const struct db_result *res, int stmt)
{
	if (db_rows(res, stmt) != 1 || !db_bool(res, stmt, 0, 1)) {
		order_error_set(&st->err, 409, "QUOTE_EXPIRED", "quote_id",
		    "报价已失效，请重新报价");
		return -1;
	}
	if (strcmp(db_value(res, stmt, 0, 0), st->items_hash) != 0) {
		order_error_set(&st->err, 422, "QUOTE_MISMATCH", "quote_id",
		    "订单内容与报价不一致，请重新报价");
		return -1;
	}
	return 0;
}

/* ---- POST /api/v1/orders/quote ----------------------------------------- */

static void quote_on_loaded(void *arg, const struct db_result *res);
static void quote_on_saved(void *arg, const struct db_result *res);

static void
quote_start(struct http_req *req)
{
	struct order_ctx *st;
	struct db_batch *b;

	if (require_holder(req) != 0)
		return;
	st = order_ctx_new(req, 0);
	if (order_read_request(st) != 0)
		return;
	if (st->rq.quote_id[0] != '\0') {
		http_reply_error(req, 422, "FIELD_INVALID", "quote_id",
		    "报价请求不能携带报价编号");
		return;
	}
	b = db_batch_new();
	order_load(st, b);
	db_batch_run(orders.svc.db, b, quote_on_loaded, st);
}

static void
quote_on_loaded(void *arg, const struct db_result *res)
{
	struct order_ctx *st = arg;
	char quote_id[37], expires[32], total[24];
	struct db_batch *b;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (order_evaluate(st, res, 0) != 0) {
		reply_order_error(st->req, &st->err);
		return;
	}
	uuid_v4(quote_id);
	order_time_format(now_wall_ms() / 1000 + orders.cfg.quote_ttl, expires);
	snprintf(total, sizeof(total), "%" PRId64, st->total_fen);
	st->reply = json_pack("{s:s, s:s, s:O, s:I}", "quote_id", quote_id,
	    "expires_at", expires, "items", st->items, "total_fen",
	    (json_int_t)st->total_fen);
	if (st->dropped_any)
		json_object_set_new(st->reply, "notice",
		    json_string(DROPPED_NOTICE));
	/* The quote keeps the price versions it was made with. */
	char *ids = json_dumps(st->price_ids, JSON_COMPACT);
	ids[0] = '{';
	ids[strlen(ids) - 1] = '}';
	b = db_batch_new();
	store_quote_insert(b, quote_id, st->req->session->account_id,
	    st->items_hash, ids, total, expires);
	free(ids);
	db_batch_run(orders.svc.db, b, quote_on_saved, st);
}

static void
quote_on_saved(void *arg, const struct db_result *res)
{
	struct order_ctx *st = arg;
	json_t *reply = st->reply;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	st->reply = NULL;
	http_reply_json(st->req, 200, reply);
}

static void
orders_quote(struct http_req *req)
{
	session_require(req, quote_start);
}

/* ---- POST /api/v1/orders ----------------------------------------------- */

/* Statement indexes of the creation's load batch. */
enum {
	CREATE_CLAIM,
	CREATE_KEY,
	CREATE_NUMBER,
	CREATE_FACTS, /* 3 facts + 1 catalogue */
	CREATE_QUOTE = CREATE_FACTS + 4,
};

static void create_on_loaded(void *arg, const struct db_result *res);
static void create_on_inserted(void *arg, const struct db_result *res);
static void create_release(struct order_ctx *st);
static void create_on_released(void *arg, const struct db_result *res);

/* The Idempotency-Key: 1..128 printable ASCII characters. */
static int
read_idempotency_key(struct http_req *req, char out[129])
{
	const char *k = http_header(req, "Idempotency-Key");
	size_t n;

	if (k == NULL || *k == '\0') {
		http_reply_error(req, 400, "IDEMPOTENCY_KEY_MISSING",
		    "Idempotency-Key", "缺少 Idempotency-Key 请求头");
		return -1;
	}
	for (n = 0; k[n] != '\0'; n++) {
		if (k[n] < 0x21 || k[n] > 0x7e || n >= 128) {
			http_reply_error(req, 400, "BAD_REQUEST",
			    "Idempotency-Key",
			    "Idempotency-Key 须为 1 至 128 个可见 ASCII 字符");
			return -1;
		}
	}
	memcpy(out, k, n + 1);
	return 0;
}

static void
create_start(struct http_req *req)
{
	struct order_ctx *st;
	struct db_batch *b;
	char *canon;

	if (require_holder(req) != 0)
		return;
	st = order_ctx_new(req, 1);
	if (read_idempotency_key(req, st->key) != 0 ||
	    order_read_request(st) != 0)
		return;
	/* "Another body" is judged on the JSON, not its spacing or key order. */
	canon = json_dumps(st->body, JSON_COMPACT | JSON_SORT_KEYS);
	crypto_sha256_hex(canon, strlen(canon), st->body_hash);
	free(canon);
	b = db_batch_new();
	store_idem_claim(b, req->session->account_id, st->key, st->body_hash,
	    orders.cfg.idempotency_lock);
	store_next_number(b);
	order_load(st, b);
	if (st->rq.quote_id[0] != '\0')
		store_quote_get(b, st->rq.quote_id, req->session->account_id);
	db_batch_run(orders.svc.db, b, create_on_loaded, st);
}

/* Another request holds or used the key: replay, or refuse. */
static void
create_key_taken(struct order_ctx *st, const struct db_result *res)
{
	struct http_req *req = st->req;
	const char *status = db_value(res, CREATE_KEY, 0, 1);
	json_t *body;

	if (db_rows(res, CREATE_KEY) != 1) {
		/* Freed between the two statements: rare; the client retries. */
		http_reply_error(req, 409, "IDEMPOTENCY_IN_PROGRESS", NULL,
		    "相同 Idempotency-Key 的请求正在处理，请稍后重试");
		return;
	}
	if (strcmp(db_value(res, CREATE_KEY, 0, 0), st->body_hash) != 0) {
		http_reply_error(req, 409, "IDEMPOTENCY_KEY_REUSED",
		    "Idempotency-Key", "该 Idempotency-Key 已用于另一个请求");
		return;
	}
	if (status == NULL) {
		http_reply_error(req, 409, "IDEMPOTENCY_IN_PROGRESS", NULL,
		    "相同 Idempotency-Key 的请求正在处理，请稍后重试");
		return;
	}
	body = json_loads(db_value(res, CREATE_KEY, 0, 2), 0, NULL);
	atomic_fetch_add(&orders.n.idempotent_replays, 1);
	http_add_header(req, "Idempotent-Replayed", "true");
	http_reply_json(req, atoi(status), body);
}

/* The 201 answer of a new order: the shape of GET /api/v1/orders/{id}
 * (order_row_json). */
static json_t *
created_reply(const struct order_ctx *st, const char *uscc, const char *created,
    const char *expires)
{
	json_t *o = json_object(), *list = json_array();

	for (size_t i = 0; i < json_array_size(st->items); i++) {
		json_t *view = json_deep_copy(json_array_get(st->items, i));

		json_object_set_new(view, "progress", json_string("unpaid"));
		json_object_set_new(view, "renewed_at", json_null());
		json_object_set_new(view, "renewed_serial", json_null());
		json_array_append_new(list, view);
	}
	json_object_set_new(o, "id", json_string(st->id));
	json_object_set_new(o, "number", json_string(st->number));
	json_object_set_new(o, "status", json_string("pending_payment"));
	json_object_set_new(o, "total_fen", json_integer(st->total_fen));
	json_object_set_new(o, "items", list);
	json_object_set_new(o, "expires_at", json_string(expires));
	json_object_set_new(o, "created_at", json_string(created));
	json_object_set_new(o, "paid_at", json_null());
	json_object_set_new(o, "closed_at", json_null());
	json_object_set_new(o, "fulfilled_at", json_null());
	json_object_set_new(o, "refunded_at", json_null());
	json_object_set_new(o, "uscc", json_str_or_null(uscc));
	json_object_set_new(o, "quote_id",
	    json_str_or_null(st->rq.quote_id[0] ? st->rq.quote_id : NULL));
	json_object_set_new(o, "late_payments", json_array());
	json_object_set_new(o, "progress",
	    json_pack("{s:i, s:I}", "renewed", 0, "total",
	        (json_int_t)st->rq.nitems));
	json_object_set_new(o, "placed_by",
	    json_string(st->req->session->account_id));
	if (st->dropped_any)
		json_object_set_new(o, "notice", json_string(DROPPED_NOTICE));
	return o;
}

/* The data of orders.order.created (proto/events). */
static json_t *
created_event(const struct order_ctx *st, const char *uscc, const char *created,
    const char *expires)
{
	const struct session *s = st->req->session;
	json_t *d = json_object(), *list = json_array();
	static const char *const keep[] = {"cert_id", "price_fen", "platforms",
	    "lines", "dropped"};

	for (size_t i = 0; i < json_array_size(st->items); i++) {
		json_t *it = json_array_get(st->items, i), *e = json_object();

		for (size_t k = 0; k < ARRAY_LEN(keep); k++)
			json_object_set(e, keep[k],
			    json_object_get(it, keep[k]));
		json_array_append_new(list, e);
	}
	json_object_set_new(d, "order_id", json_string(st->id));
	json_object_set_new(d, "number", json_string(st->number));
	json_object_set_new(d, "account_id", json_string(s->account_id));
	json_object_set_new(d, "identity_id", json_string(s->identity_id));
	json_object_set_new(d, "uscc", json_str_or_null(uscc));
	json_object_set_new(d, "total_fen", json_integer(st->total_fen));
	json_object_set_new(d, "items", list);
	json_object_set_new(d, "expires_at", json_string(expires));
	json_object_set_new(d, "created_at", json_string(created));
	return d;
}

static void
create_on_loaded(void *arg, const struct db_result *res)
{
	struct order_ctx *st = arg;
	struct session *s = st->req->session;
	const char *uscc =
	    s->identity_type && strcmp(s->identity_type, "enterprise") == 0
	    ? s->uscc
	    : NULL;
	char created[32], expires[32], created_db[48], expires_db[48];
	int64_t now_ms = now_wall_ms(), now = now_ms / 1000;
	char total[24], *rows, *reply;
	struct db_batch *b;
	json_t *ev;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, CREATE_CLAIM) != 1) {
		create_key_taken(st, res);
		return;
	}
	st->claimed = 1;
	if ((st->rq.quote_id[0] != '\0' &&
	        quote_check(st, res, CREATE_QUOTE) != 0) ||
	    order_evaluate(st, res, CREATE_FACTS) != 0) {
		create_release(st);
		return;
	}
	uuid_v4(st->id);
	order_number_format(now,
	    strtoll(db_value(res, CREATE_NUMBER, 0, 0), NULL, 10), st->number);
	order_time_format(now, created);
	order_time_format(now + orders.cfg.order_ttl, expires);
	/* Stored to the millisecond so that the list's order is the order of
	 * creation; answered to the second like every time of the API. */
	time_rfc3339(now_ms, created_db);
	time_rfc3339(now_ms + orders.cfg.order_ttl * 1000, expires_db);
	snprintf(total, sizeof(total), "%" PRId64, st->total_fen);

	st->reply = created_reply(st, uscc, created, expires);
	ev = created_event(st, uscc, created, expires);
	rows = json_dumps(st->rows, JSON_COMPACT);
	reply = json_dumps(st->reply, JSON_COMPACT);
	/* The order, its items, its event and the stored first response:
	 * one transaction. */
	b = db_batch_new();
	store_order_insert(b, st->id, st->number, s->account_id, s->identity_id,
	    uscc, total, st->rq.quote_id[0] ? st->rq.quote_id : NULL,
	    created_db, expires_db);
	store_order_items_insert(b, st->id, rows);
	bus_outbox_add(b, "orders.order.created", st->id, ev);
	store_idem_save(b, s->account_id, st->key, 201, reply);
	free(rows);
	free(reply);
	json_decref(ev);
	db_batch_run(orders.svc.db, b, create_on_inserted, st);
}

static void
create_on_inserted(void *arg, const struct db_result *res)
{
	struct order_ctx *st = arg;
	json_t *reply;

	if (res->status == DB_CONFLICT && res->constraint != NULL &&
	    strcmp(res->constraint, "order_items_open_cert") == 0) {
		/* Another order took a certificate since the check. */
		order_error_set(&st->err, 409, "CERT_IN_OPEN_ORDER", "items",
		    "证书已在其他未完成的订单中");
		create_release(st);
		return;
	}
	if (res->status != DB_OK) {
		/* Nothing was created (or, if the connection broke after the
		 * commit, the stored response makes the release a no-op). */
		if (res->status == DB_UNAVAILABLE) {
			http_server_dep_error(st->req->srv, "postgres");
			order_error_set(&st->err, 503, "UNAVAILABLE", NULL,
			    "服务暂时不可用，请稍后重试");
		} else {
			log_error(st->req->id,
			    "msg=db_error sqlstate=%s stmt=%d error=\"%s\"",
			    res->sqlstate ? res->sqlstate : "-",
			    res->failed_stmt,
			    res->message ? res->message : "-");
			order_error_set(&st->err, 500, "INTERNAL", NULL,
			    "服务器内部错误");
		}
		create_release(st);
		return;
	}
	atomic_fetch_add(&orders.n.created, 1);
	log_info(st->req->id,
	    "msg=order_created order=%s number=%s items=%zu total_fen=%" PRId64,
	    st->id, st->number, st->rq.nitems, st->total_fen);
	reply = st->reply;
	st->reply = NULL;
	http_reply_json(st->req, 201, reply);
}

/* A refusal after the key was claimed: free the key (nothing was created, so
 * a retry must run again), then answer st->err. */
static void
create_release(struct order_ctx *st)
{
	const char *p[] = {st->req->session->account_id, st->key};

	db_query(orders.svc.db, store_idem_release_sql, 2, p,
	    create_on_released, st);
}

static void
create_on_released(void *arg, const struct db_result *res)
{
	struct order_ctx *st = arg;

	if (res->status != DB_OK)
		log_warn(st->req->id, "msg=idempotency_release_failed");
	reply_order_error(st->req, &st->err);
}

static void
orders_create(struct http_req *req)
{
	session_require(req, create_start);
}

/* ---- GET /api/v1/orders, /api/v1/orders/{id} --------------------------- */

enum {
	ORDER_COL_ID,
	ORDER_COL_NUMBER,
	ORDER_COL_STATUS,
	ORDER_COL_TOTAL,
	ORDER_COL_CREATED,
	ORDER_COL_EXPIRES,
	ORDER_COL_PAID,
	ORDER_COL_CLOSED,
	ORDER_COL_FULFILLED,
	ORDER_COL_REFUNDED,
	ORDER_COL_USCC,
	ORDER_COL_ACCOUNT,
	ORDER_COL_QUOTE,
	ORDER_COL_ITEMS,
	ORDER_COL_LATE,
	ORDER_COL_CURSOR,
};

/* Per-item progress: unpaid, paid (awaiting 更新数字证书), renewed, or
 * closed (the order ended without this renewal). */
static const char *
item_progress(const char *order_status, int renewed)
{
	if (renewed)
		return "renewed";
	if (strcmp(order_status, "pending_payment") == 0)
		return "unpaid";
	if (strcmp(order_status, "paid") == 0)
		return "paid";
	return "closed";
}

/* The Order answer from one row of store_order_list_sql. */
static json_t *
order_row_json(const struct db_result *res, int stmt, int r)
{
	const char *status = db_value(res, stmt, r, ORDER_COL_STATUS);
	json_t *rows =
	    json_loads(db_value(res, stmt, r, ORDER_COL_ITEMS), 0, NULL);
	json_t *late = NULL, *items = json_array(), *row, *o;
	int done = 0, dropped_any = 0;
	size_t i;

	if (db_value(res, stmt, r, ORDER_COL_LATE) != NULL)
		late =
		    json_loads(db_value(res, stmt, r, ORDER_COL_LATE), 0, NULL);
	for (i = 0; i < json_array_size(rows); i++) {
		row = json_array_get(rows, i);
		json_t *item = json_deep_copy(json_object_get(row, "detail"));
		json_t *at = json_object_get(row, "renewed_at");
		int renewed = json_is_string(at);

		done += renewed;
		dropped_any |=
		    json_array_size(json_object_get(item, "dropped")) > 0;
		json_object_set_new(item, "progress",
		    json_string(item_progress(status, renewed)));
		json_object_set(item, "renewed_at", at ? at : json_null());
		json_object_set(item, "renewed_serial",
		    json_object_get(row, "renewed_serial")
		        ? json_object_get(row, "renewed_serial")
		        : json_null());
		json_array_append_new(items, item);
	}
	json_decref(rows);
#define COL(c) db_value(res, stmt, r, (c))
	o = json_object();
	json_object_set_new(o, "id", json_string(COL(ORDER_COL_ID)));
	json_object_set_new(o, "number", json_string(COL(ORDER_COL_NUMBER)));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "total_fen", json_fen(COL(ORDER_COL_TOTAL)));
	json_object_set_new(o, "items", items);
	json_object_set_new(o, "expires_at",
	    json_string(COL(ORDER_COL_EXPIRES)));
	json_object_set_new(o, "created_at",
	    json_string(COL(ORDER_COL_CREATED)));
	json_object_set_new(o, "paid_at",
	    json_str_or_null(COL(ORDER_COL_PAID)));
	json_object_set_new(o, "closed_at",
	    json_str_or_null(COL(ORDER_COL_CLOSED)));
	json_object_set_new(o, "fulfilled_at",
	    json_str_or_null(COL(ORDER_COL_FULFILLED)));
	json_object_set_new(o, "refunded_at",
	    json_str_or_null(COL(ORDER_COL_REFUNDED)));
	json_object_set_new(o, "uscc", json_str_or_null(COL(ORDER_COL_USCC)));
	json_object_set_new(o, "quote_id",
	    json_str_or_null(COL(ORDER_COL_QUOTE)));
	json_object_set_new(o, "late_payments", late ? late : json_array());
	json_object_set_new(o, "progress",
	    json_pack("{s:i, s:I}", "renewed", done, "total",
	        (json_int_t)json_array_size(items)));
#undef COL
	json_object_set_new(o, "placed_by",
	    json_string(db_value(res, stmt, r, ORDER_COL_ACCOUNT)));
	if (dropped_any)
		json_object_set_new(o, "notice", json_string(DROPPED_NOTICE));
	return o;
}

static void list_on_loaded(void *arg, const struct db_result *res);

static const char *const order_statuses[] = {"pending_payment", "paid",
    "fulfilled", "cancelled", "expired", "refunded", NULL};

struct list_state {
	int limit;
};

static void
list_start(struct http_req *req)
{
	struct list_state *st;
	char cur_time[40], cur_id[37], limit[16];
	char *status;
	int n;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号没有订单");
		return;
	}
	if (read_limit(req, &n) != 0 || read_cursor(req, cur_time, cur_id) != 0)
		return;
	status = http_query_param(req, "status");
	if (status != NULL) {
		int ok = 0;
		for (int i = 0; order_statuses[i] != NULL; i++)
			ok |= strcmp(status, order_statuses[i]) == 0;
		if (!ok) {
			free(status);
			http_reply_error(req, 400, "BAD_REQUEST", "status",
			    "未知的订单状态");
			return;
		}
	}
	st = xcalloc(1, sizeof(*st));
	st->limit = n;
	http_req_attach(req, st, free);
	snprintf(limit, sizeof(limit), "%d", n + 1);
	const char *p[] = {req->session->account_id, admin_uscc(req->session),
	    status, cur_time[0] ? cur_time : NULL, cur_id[0] ? cur_id : NULL,
	    limit, NULL};
	db_query(orders.svc.db, store_order_list_sql, 7, p, list_on_loaded,
	    req);
	free(status);
}

static void
list_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct list_state *st = req->data;
	json_t *items = json_array(), *next = json_null();
	int rows;

	if (res->status != DB_OK) {
		json_decref(items);
		http_reply_db_error(req, res);
		return;
	}
	rows = db_rows(res, 0);
	for (int r = 0; r < rows && r < st->limit; r++)
		json_array_append_new(items, order_row_json(res, 0, r));
	if (rows > st->limit)
		next = make_cursor(db_value(res, 0, st->limit - 1,
		                       ORDER_COL_CURSOR),
		    db_value(res, 0, st->limit - 1, ORDER_COL_ID));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

static void
orders_list(struct http_req *req)
{
	session_require(req, list_start);
}

static void get_on_loaded(void *arg, const struct db_result *res);

static void
get_start(struct http_req *req)
{
	if (req->session->account_id == NULL || !uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	const char *p[] = {req->session->account_id, admin_uscc(req->session),
	    NULL, NULL, NULL, "1", req->params[0]};
	db_query(orders.svc.db, store_order_list_sql, 7, p, get_on_loaded, req);
}

static void
get_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	http_reply_json(req, 200, order_row_json(res, 0, 0));
}

static void
orders_get(struct http_req *req)
{
	session_require(req, get_start);
}

/* ---- POST /api/v1/orders/{id}/cancel ----------------------------------- */

static void cancel_on_done(void *arg, const struct db_result *res);

static void
cancel_start(struct http_req *req)
{
	char event_id[37];
	struct db_batch *b;

	if (req->session->account_id == NULL || !uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	uuid_v4(event_id);
	b = db_batch_new();
	store_order_cancel(b, req->params[0], req->session->account_id,
	    admin_uscc(req->session), event_id);
	db_batch_run(orders.svc.db, b, cancel_on_done, req);
}

static void
cancel_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 1) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	if (db_rows(res, 0) == 1) {
		atomic_fetch_add(&orders.n.cancelled, 1);
		log_info(req->id, "msg=order_cancelled order=%s",
		    req->params[0]);
		http_reply_json(req, 200, order_row_json(res, 1, 0));
		return;
	}
	if (!db_bool(res, 2, 0, 0)) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "只有下单人或企业管理员可以取消订单");
		return;
	}
	http_reply_error(req, 409, "ORDER_NOT_CANCELLABLE", NULL,
	    "只有待支付的订单可以取消");
}

static void
orders_cancel(struct http_req *req)
{
	session_require(req, cancel_start);
}

/* ---- GET /api/v1/orders/late-payments (finance) ------------------------ */

static void flagged_on_loaded(void *arg, const struct db_result *res);

static void
flagged_start(struct http_req *req)
{
	char cur_time[40], cur_id[37], limit[16];
	struct list_state *st;
	int n;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (read_limit(req, &n) != 0 || read_cursor(req, cur_time, cur_id) != 0)
		return;
	st = xcalloc(1, sizeof(*st));
	st->limit = n;
	http_req_attach(req, st, free);
	snprintf(limit, sizeof(limit), "%d", n + 1);
	const char *p[] = {limit, cur_time[0] ? cur_time : NULL,
	    cur_id[0] ? cur_id : NULL};
	db_query(orders.svc.db, store_flagged_payments_sql, 3, p,
	    flagged_on_loaded, req);
}

static void
flagged_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct list_state *st = req->data;
	json_t *items, *next = json_null();
	int rows;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	items = json_array();
	rows = db_rows(res, 0);
	for (int r = 0; r < rows && r < st->limit; r++) {
		json_t *o = json_object();

		json_object_set_new(o, "payment_id",
		    json_string(db_value(res, 0, r, 0)));
		json_object_set_new(o, "order_id",
		    json_string(db_value(res, 0, r, 1)));
		json_object_set_new(o, "number",
		    json_str_or_null(db_value(res, 0, r, 2)));
		json_object_set_new(o, "channel",
		    json_string(db_value(res, 0, r, 3)));
		json_object_set_new(o, "amount_fen",
		    json_fen(db_value(res, 0, r, 4)));
		json_object_set_new(o, "outcome",
		    json_string(db_value(res, 0, r, 5)));
		json_object_set_new(o, "order_status",
		    json_str_or_null(db_value(res, 0, r, 6)));
		json_object_set_new(o, "paid_at",
		    json_string(db_value(res, 0, r, 7)));
		json_object_set_new(o, "recorded_at",
		    json_string(db_value(res, 0, r, 8)));
		json_object_set_new(o, "provider_trade_no",
		    json_string(db_value(res, 0, r, 9)));
		json_object_set_new(o, "refund_needed", json_true());
		json_array_append_new(items, o);
	}
	if (rows > st->limit)
		next = make_cursor(db_value(res, 0, st->limit - 1, 10),
		    db_value(res, 0, st->limit - 1, 0));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

static void
orders_flagged(struct http_req *req)
{
	session_require(req, flagged_start);
}

/* ---- metrics ----------------------------------------------------------- */

size_t
orders_metrics(void *arg, char *buf, size_t size)
{
	struct orders_counters *n = &orders.n;
	int len = snprintf(buf, size,
	    "# TYPE caplat_orders_created_total counter\ncaplat_orders_created_total %lld\n"
	    "# TYPE caplat_orders_cancelled_total counter\ncaplat_orders_cancelled_total %lld\n"
	    "# TYPE caplat_orders_expired_total counter\ncaplat_orders_expired_total %lld\n"
	    "# TYPE caplat_orders_paid_total counter\ncaplat_orders_paid_total %lld\n"
	    "# TYPE caplat_orders_fulfilled_total counter\ncaplat_orders_fulfilled_total %lld\n"
	    "# TYPE caplat_orders_refunded_total counter\ncaplat_orders_refunded_total %lld\n"
	    "# TYPE caplat_orders_payments_flagged_total counter\n"
	    "caplat_orders_payments_flagged_total %lld\n"
	    "# TYPE caplat_orders_idempotent_replays_total counter\n"
	    "caplat_orders_idempotent_replays_total %lld\n",
	    (long long)atomic_load(&n->created),
	    (long long)atomic_load(&n->cancelled),
	    (long long)atomic_load(&n->expired),
	    (long long)atomic_load(&n->paid),
	    (long long)atomic_load(&n->fulfilled),
	    (long long)atomic_load(&n->refunded),
	    (long long)atomic_load(&n->payments_flagged),
	    (long long)atomic_load(&n->idempotent_replays));

	if (len < 0)
		return 0;
	return (size_t)len < size ? (size_t)len : (size ? size - 1 : 0);
}

/* ---- the route table --------------------------------------------------- */

/* 200 items of 64 platforms fit well under 256 KiB. */
#define ORDER_MAX_BODY (256 * 1024)

const struct http_route orders_routes[] = {
    {"GET", "/api/v1/platforms", orders_platforms, 0},
    {"GET", "/api/v1/platforms/{code}/prices", orders_price_history, 0},
    {"POST", "/api/v1/platforms/{code}/prices", orders_price_set, 0},
    {"POST", "/api/v1/orders/quote", orders_quote, ORDER_MAX_BODY},
    {"GET", "/api/v1/orders/late-payments", orders_flagged, 0},
    {"POST", "/api/v1/orders", orders_create, ORDER_MAX_BODY},
    {"GET", "/api/v1/orders", orders_list, 0},
    {"GET", "/api/v1/orders/{id}", orders_get, 0},
    {"POST", "/api/v1/orders/{id}/cancel", orders_cancel, 0},
};
const size_t orders_nroutes = ARRAY_LEN(orders_routes);
