/* finance — GET /api/v1/orders/late-payments: the payments that could not
 * pay an order (late, duplicate, wrong amount, unknown order) and wait for
 * finance to refund them. */
#include "orders.h"

#include "db.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- GET /api/v1/orders/late-payments (finance) ------------------------ */

/* The page size asked for (one more row is loaded to know of a next page). */
struct flagged_state {
	int limit;
};

static void flagged_on_loaded(void *arg, const struct db_result *res);

static void
flagged_start(struct http_req *req)
{
	char cur_time[40], cur_id[37], limit[16];
	struct flagged_state *st;
	int n;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (orders_read_limit(req, &n) != 0 ||
	    orders_read_cursor(req, cur_time, cur_id) != 0)
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
	struct flagged_state *st = req->data;
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
		    orders_json_str(db_value(res, 0, r, 2)));
		json_object_set_new(o, "channel",
		    json_string(db_value(res, 0, r, 3)));
		json_object_set_new(o, "amount_fen",
		    orders_json_fen(db_value(res, 0, r, 4)));
		json_object_set_new(o, "outcome",
		    json_string(db_value(res, 0, r, 5)));
		json_object_set_new(o, "order_status",
		    orders_json_str(db_value(res, 0, r, 6)));
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
		next = orders_cursor_json(db_value(res, 0, st->limit - 1, 10),
		    db_value(res, 0, st->limit - 1, 0));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void
orders_flagged(struct http_req *req)
{
	session_require(req, flagged_start);
}
