/* handlers — the orders API's route table and its main resource, orders:
 * create (with Idempotency-Key), list, detail and cancel; and the service's
 * counters on /metrics. The further areas have their own files (catalogue.c,
 * quotes.c, finance.c); evaluate.c checks and prices, store.c holds every SQL
 * statement. Each handler is a chain of named continuations; the last one
 * replies. */
#include "orders.h"

#include "bus.h"
#include "db.h"
#include "eligibility.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orders orders;

/* ---- POST /api/v1/orders ----------------------------------------------- */

/* Statement indexes of the creation's load batch. */
enum {
	CREATE_CLAIM, /* idem_claim_add's two statements */
	CREATE_KEY,
	CREATE_NUMBER,
	CREATE_FACTS, /* 3 facts + 1 catalogue */
	CREATE_QUOTE = CREATE_FACTS + 4,
};

static void create_on_loaded(void *arg, const struct db_result *res);
static void create_on_inserted(void *arg, const struct db_result *res);
static void create_release(struct order_ctx *st);

static void
create_start(struct http_req *req)
{
	struct order_ctx *st;
	struct db_batch *b;

	if (orders_require_holder(req) != 0)
		return;
	st = order_ctx_new(req, 1);
	if (idem_read(req, req->session->account_id, &st->idem) != 0 ||
	    order_read_request(st) != 0)
		return;
	idem_hash(&st->idem, req, st->body);
	b = db_batch_new();
	idem_claim_add(b, &st->idem, orders.cfg.idem.lock_seconds);
	store_next_number(b);
	order_load(st, b);
	if (st->rq.quote_id[0] != '\0')
		store_quote_get(b, st->rq.quote_id, req->session->account_id);
	db_batch_run(orders.svc.db, b, create_on_loaded, st);
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
	json_object_set_new(o, "uscc", orders_json_str(uscc));
	json_object_set_new(o, "quote_id",
	    orders_json_str(st->rq.quote_id[0] ? st->rq.quote_id : NULL));
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
		json_t *row = json_array_get(st->rows, i);

		for (size_t k = 0; k < ARRAY_LEN(keep); k++)
			json_object_set(e, keep[k],
			    json_object_get(it, keep[k]));
		/* Who holds the certificate (its account, its enterprise): the
		 * other services apply the same visibility rule. */
		json_object_set_new(e, "holder_account_id",
		    json_deep_copy(json_object_get(row, "account_id")));
		json_object_set_new(e, "cert_uscc",
		    json_deep_copy(json_object_get(row, "uscc")));
		json_array_append_new(list, e);
	}
	json_object_set_new(d, "order_id", json_string(st->id));
	json_object_set_new(d, "number", json_string(st->number));
	json_object_set_new(d, "account_id", json_string(s->account_id));
	json_object_set_new(d, "identity_id", json_string(s->identity_id));
	json_object_set_new(d, "uscc", orders_json_str(uscc));
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
	enum idem_claim claim;
	json_t *ev;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	claim = idem_claim_result(st->req, res, CREATE_CLAIM, &st->idem);
	if (claim == IDEM_REPLAYED)
		atomic_fetch_add(&orders.n.idempotent_replays, 1);
	if (claim != IDEM_CLAIMED)
		return;
	st->claimed = 1;
	if ((st->rq.quote_id[0] != '\0' &&
	        order_quote_check(st, res, CREATE_QUOTE) != 0) ||
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
	idem_save_add(b, &st->idem, 201, reply);
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
		idem_release_db_error(orders.svc.db, st->req, &st->idem, res);
		return;
	}
	atomic_fetch_add(&orders.n.created, 1);
	order_sweep_kick(orders.cfg.order_ttl);
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
	idem_release_error(orders.svc.db, st->req, &st->idem, st->err.status,
	    st->err.code, st->err.field[0] ? st->err.field : NULL,
	    st->err.message);
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

/* The Order answer from one row of store_order_list(). */
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
	json_object_set_new(o, "total_fen",
	    orders_json_fen(COL(ORDER_COL_TOTAL)));
	json_object_set_new(o, "items", items);
	json_object_set_new(o, "expires_at",
	    json_string(COL(ORDER_COL_EXPIRES)));
	json_object_set_new(o, "created_at",
	    json_string(COL(ORDER_COL_CREATED)));
	json_object_set_new(o, "paid_at", orders_json_str(COL(ORDER_COL_PAID)));
	json_object_set_new(o, "closed_at",
	    orders_json_str(COL(ORDER_COL_CLOSED)));
	json_object_set_new(o, "fulfilled_at",
	    orders_json_str(COL(ORDER_COL_FULFILLED)));
	json_object_set_new(o, "refunded_at",
	    orders_json_str(COL(ORDER_COL_REFUNDED)));
	json_object_set_new(o, "uscc", orders_json_str(COL(ORDER_COL_USCC)));
	json_object_set_new(o, "quote_id",
	    orders_json_str(COL(ORDER_COL_QUOTE)));
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
	struct db_batch *b;
	char cur_time[40], cur_id[37], limit[16];
	char *status;
	int n;

	struct access_viewer v;

	if (access_viewer(req, ACCESS_ORDERS, &v) != 0)
		return;
	if (orders_read_limit(req, &n) != 0 ||
	    orders_read_cursor(req, cur_time, cur_id) != 0)
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
	b = db_batch_new();
	store_order_list(b, &v, status, cur_time[0] ? cur_time : NULL,
	    cur_id[0] ? cur_id : NULL, limit, NULL);
	db_batch_run(orders.svc.db, b, list_on_loaded, req);
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
		next = orders_cursor_json(db_value(res, 0, st->limit - 1,
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
	struct access_viewer v;
	struct db_batch *b;

	if (access_viewer(req, ACCESS_ORDERS, &v) != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	b = db_batch_new();
	store_order_list(b, &v, NULL, NULL, NULL, "1", req->params[0]);
	db_batch_run(orders.svc.db, b, get_on_loaded, req);
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
	struct access_viewer v;
	struct db_batch *b;

	if (access_viewer(req, ACCESS_ORDERS, &v) != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "订单不存在");
		return;
	}
	b = db_batch_new();
	store_order_cancel(b, req->params[0], &v);
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
    {"POST", "/api/v1/orders/new-certificate", orders_new_certificate,
        ORDER_MAX_BODY},
    {"GET", "/api/v1/orders/late-payments", orders_flagged, 0},
    {"POST", "/api/v1/orders", orders_create, ORDER_MAX_BODY},
    {"GET", "/api/v1/orders", orders_list, 0},
    {"GET", "/api/v1/orders/{id}", orders_get, 0},
    {"POST", "/api/v1/orders/{id}/cancel", orders_cancel, 0},
};
const size_t orders_nroutes = ARRAY_LEN(orders_routes);
