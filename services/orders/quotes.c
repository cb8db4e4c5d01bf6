/* quotes — POST /api/v1/orders/quote: prices the requested renewals with
 * the catalogue in force and keeps the price versions for the order that
 * follows (evaluate.c does the checking and pricing). */
#include "orders.h"

#include "db.h"
#include "json.h"
#include "session.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quote_on_loaded(void *arg, const struct db_result *res);
static void quote_on_saved(void *arg, const struct db_result *res);

static void
quote_start(struct http_req *req)
{
	struct order_ctx *st;
	struct db_batch *b;

	if (orders_require_holder(req) != 0)
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
		orders_reply_error(st->req, &st->err);
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

void
orders_quote(struct http_req *req)
{
	session_require(req, quote_start);
}
