/* catalogue — the platforms and their prices: the catalogue a holder orders
 * from (GET /api/v1/platforms), and the operator's price versions (set and
 * history of /api/v1/platforms/{code}/prices).
 *
 * GET /api/v1/platforms answers from a per-process cache of its serialized
 * bodies (one per ?lock_kind=), each with a strong ETag (If-None-Match:
 * 304). An entry holds until the first of: a price version set here
 * (orders_catalogue_invalidate), a scheduled version coming into force
 * (the load reads when), CAPLAT_ORDER_CATALOGUE_CACHE_MS (what another
 * process of the service changed). The session is still checked on every
 * request; nothing is read from PostgreSQL while the entry holds. */
#include "orders.h"

#include "audit.h"
#include "db.h"
#include "eligibility.h"
#include "json.h"
#include "lockcert.h"
#include "log.h"
#include "pricing.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	unsigned long long generation; /* of the cache when the load began */
};

/* The cached bodies: [0] without ?lock_kind=, [1 + kind] with it. */
static struct {
	char *body[1 + LOCK_KINDS];
	size_t len[1 + LOCK_KINDS];
	char etag[1 + LOCK_KINDS][24];
	int64_t until_ms[1 + LOCK_KINDS]; /* monotonic */
	unsigned long long generation;
} catalogue_cache;

void
orders_catalogue_invalidate(void)
{
	for (size_t i = 0; i < ARRAY_LEN(catalogue_cache.body); i++) {
		free(catalogue_cache.body[i]);
		catalogue_cache.body[i] = NULL;
	}
	catalogue_cache.generation++;
}

static size_t
cache_slot(const struct platforms_list *st)
{
	return st->by_kind ? 1 + (size_t)st->kind : 0;
}

/* Answers from the cache entry of slot (304 when the client has it). */
static void
platforms_reply_cached(struct http_req *req, size_t slot)
{
	const char *match = http_header(req, "If-None-Match");

	http_add_header(req, "ETag", catalogue_cache.etag[slot]);
	http_add_header(req, "Cache-Control", "private, no-cache");
	if (match != NULL &&
	    strstr(match, catalogue_cache.etag[slot]) != NULL) {
		http_reply_empty(req, 304);
		return;
	}
	http_reply_raw(req, 200, "application/json; charset=utf-8",
	    catalogue_cache.body[slot], catalogue_cache.len[slot]);
}

/* Keeps text (stolen) as slot's entry until ttl_ms from now. */
static void
cache_store(size_t slot, char *text, int64_t ttl_ms)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
	size_t len = strlen(text);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
	free(catalogue_cache.body[slot]);
	catalogue_cache.body[slot] = text;
	catalogue_cache.len[slot] = len;
	snprintf(catalogue_cache.etag[slot], sizeof(catalogue_cache.etag[slot]),
	    "\"%016llx\"", (unsigned long long)h);
	catalogue_cache.until_ms[slot] = now_mono_us() / 1000 + ttl_ms;
}

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
	if (catalogue_cache.body[cache_slot(st)] != NULL &&
	    now_mono_us() / 1000 < catalogue_cache.until_ms[cache_slot(st)]) {
		platforms_reply_cached(req, cache_slot(st));
		return;
	}
	st->generation = catalogue_cache.generation;
	b = db_batch_new();
	store_catalogue_now(b);
	store_catalogue_next_change(b);
	db_batch_run(orders.svc.db, b, platforms_on_loaded, req);
}

static void
platforms_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct platforms_list *st = req->data;
	struct order_catalogue cat;
	json_t *items, *body;
	int64_t ttl_ms = orders.cfg.catalogue_cache_ms;
	const char *next;
	char *text;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (orders_catalogue_from_rows(&cat, res, 0) != 0) {
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
	body = json_pack("{s:o, s:n}", "items", items, "next_cursor");
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fatal("json_dumps failed");
	/* A version scheduled to come into force ends the entry then. */
	next = db_value(res, 1, 0, 0);
	if (next != NULL && atoll(next) < ttl_ms)
		ttl_ms = atoll(next);
	/* Not when a price was set while this load ran: it may predate it. */
	if (ttl_ms > 0 && st->generation == catalogue_cache.generation) {
		cache_store(cache_slot(st), text, ttl_ms);
		platforms_reply_cached(req, cache_slot(st));
		return;
	}
	http_reply_raw(req, 200, "application/json; charset=utf-8", text,
	    strlen(text));
	free(text);
}

void
orders_platforms(struct http_req *req)
{
	session_require(req, platforms_list);
}

/* ---- operator: prices -------------------------------------------------- */

/* One price version from columns 0-8 of store_price_insert_sql. */
static json_t *
price_row_json(const struct db_result *res, int r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", orders_json_fen(db_value(res, 0, r, 0)));
	json_object_set_new(o, "platform", json_string(db_value(res, 0, r, 1)));
	json_object_set_new(o, "lock_kind",
	    orders_json_str(db_value(res, 0, r, 2)));
	json_object_set_new(o, "renew_fen",
	    orders_json_fen(db_value(res, 0, r, 3)));
	json_object_set_new(o, "add_fen",
	    orders_json_fen(db_value(res, 0, r, 4)));
	json_object_set_new(o, "effective_at",
	    json_string(db_value(res, 0, r, 5)));
	json_object_set_new(o, "set_by",
	    orders_json_str(db_value(res, 0, r, 6)));
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
	    json_field_enum(body, "lock_kind", JSON_FIELD_OPTIONAL,
	        lockcert_kinds, &kind, &err) != 0 ||
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
	log_info(req->id,
	    "msg=price_set platform=%s lock_kind=%s renew_fen=%lld add_fen=%lld "
	    "staff=%s",
	    req->params[0], kind ? kind : "base", renew, add,
	    username ? username : "-");
	/* Audited with the new version, in the same statement. */
	const struct audit_entry e = {.action = "price.set",
	    .object_type = "platform",
	    .object_id = req->params[0]};
	json_t *audit = audit_event_data(req, &e);
	char *audit_text = json_dumps(audit, JSON_COMPACT);
	const char *p[] = {req->params[0], kind, renew_s, add_s, effective,
	    req->session->staff_id, username, reason, audit_text};
	db_query(orders.svc.db, store_price_insert_sql, 9, p, price_on_inserted,
	    req);
	free(audit_text);
	json_decref(audit);
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
	audit_flush_notified(); /* the entry audit_emit() wrote, committed */
	orders_catalogue_invalidate();
	http_reply_json(req, 201, price_row_json(res, 0));
}

void
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

void
orders_price_history(struct http_req *req)
{
	session_require(req, price_history);
}
