/* evaluate — from rows to the domain: the facts and catalogue a quote or an
 * order creation loads (store.c), checked by eligibility.c and priced by
 * pricing.c into the items answered, stored and announced. Shared by quotes.c
 * and the creation in handlers.c. */
#include "orders.h"

#include "crypto.h"
#include "db.h"
#include "eligibility.h"
#include "json.h"
#include "pricing.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builds a catalogue from rows of store_catalogue_*(). Returns 0, or -1 when
 * a row is malformed (a bug). */
int
orders_catalogue_from_rows(struct order_catalogue *cat,
    const struct db_result *res, int stmt)
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

void
order_ctx_free(void *p)
{
	struct order_ctx *st = p;

	if (st == NULL)
		return;
	free(st->as_account);
	free(st->as_uscc);
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

/* Who the evaluation is for (account, enterprise, admin; the facts are
 * left 0): the request's session, or the digest's administrator. */
static void
order_caller_of(const struct order_ctx *st, struct order_caller *c)
{
	const struct session *s;
	int enterprise;

	memset(c, 0, sizeof(*c));
	if (st->req == NULL) {
		c->account_id = st->as_account;
		c->uscc = st->as_uscc;
		c->admin = 1;
		return;
	}
	s = st->req->session;
	enterprise =
	    s->identity_type && strcmp(s->identity_type, "enterprise") == 0;
	c->account_id = s->account_id;
	c->uscc = enterprise ? s->uscc : NULL;
	c->admin = enterprise && orders_admin_uscc(s) != NULL;
}

/* The statements every evaluation needs, appended to b: facts (3) and the
 * catalogue (1), now or of the quote. */
void
order_load(struct order_ctx *st, struct db_batch *b)
{
	struct order_caller c;
	char *ids = cert_ids_literal(&st->rq);

	order_caller_of(st, &c);
	store_facts(b, c.account_id, c.uscc, ids);
	free(ids);
	if (st->rq.quote_id[0] != '\0')
		store_catalogue_of_quote(b, st->rq.quote_id, c.account_id);
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
	    orders_json_str(db_value(res, stmt, r, CERT_COL_HOLDER)));
	json_object_set_new(o, "lock_kind", json_string(lock_kind));
	json_object_set_new(o, "not_after",
	    json_string(db_value(res, stmt, r, CERT_COL_NOT_AFTER)));
	json_object_set_new(o, "vendor",
	    orders_json_str(db_value(res, stmt, r, CERT_COL_VENDOR)));
	json_object_set_new(o, "enterprise_name",
	    orders_json_str(db_value(res, stmt, r, CERT_COL_ENTERPRISE)));
	return o;
}

/* Prices one eligible item (facts row r) into st->items (the API shape),
 * st->rows (the insert) and st->price_ids. Returns 0, or -1 with st->err. */
static int
order_price_item(struct order_ctx *st, const struct order_catalogue *cat,
    size_t i, const struct db_result *res, int stmt, int r)
{
	const struct order_item_req *it = &st->rq.items[i];
	const char *known = db_value(res, stmt, r, CERT_COL_PLATFORMS);
	json_t *current;
	size_t ncur, bad = 0, k;
	const char **cur;
	json_t *lines, *dropped, *chosen, *item, *row;
	enum order_lock_kind kind = LOCK_PERSONAL;
	enum order_price_status ps;
	struct order_pricing pr;
	char field[64];
	int rc = -1;

	/* Unknown associations (first seen at a login, never imported): the
	 * administrator confirms the current set, never priced as all new. */
	if (known == NULL && it->current == NULL) {
		snprintf(field, sizeof(field), "items[%zu].current_platforms",
		    i);
		order_error_set(&st->err, 409, "PLATFORMS_UNCONFIRMED", field,
		    "该证书当前关联的平台未知，请确认其当前关联的平台");
		return -1;
	}
	if (known != NULL) {
		current = json_loads(known, 0, NULL);
	} else {
		current = json_array();
		for (k = 0; k < it->ncurrent; k++)
			json_array_append_new(current,
			    json_string(it->current[k]));
	}
	ncur = json_array_size(current);
	cur = xcalloc(ncur ? ncur : 1, sizeof(*cur));
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
	    orders_json_str(db_value(res, stmt, r, CERT_COL_ACCOUNT)));
	json_object_set_new(row, "uscc",
	    orders_json_str(db_value(res, stmt, r, CERT_COL_USCC)));
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
int
order_evaluate(struct order_ctx *st, const struct db_result *res, int first)
{
	struct order_caller caller;
	const int certs = first + 2;
	struct order_catalogue cat;
	enum order_refusal refusal;
	char field[64];
	int rc = -1;

	order_caller_of(st, &caller);
	caller.profile_complete = db_rows(res, first) > 0;
	caller.enterprise_approved = db_rows(res, first + 1) > 0;
	if (orders_catalogue_from_rows(&cat, res, first + 3) != 0) {
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
int
order_read_request(struct order_ctx *st)
{
	if (http_read_json(st->req, &st->body) != 0)
		return -1;
	if (order_request_parse(&st->rq, st->body, &st->err) != 0) {
		orders_reply_error(st->req, &st->err);
		return -1;
	}
	order_items_hash(st);
	return 0;
}

struct order_ctx *
order_ctx_new_for_admin(const char *account_id, const char *uscc)
{
	struct order_ctx *st = xcalloc(1, sizeof(*st));

	st->as_account = xstrdup(account_id);
	st->as_uscc = xstrdup(uscc);
	return st;
}

int
order_set_request(struct order_ctx *st, json_t *body)
{
	json_decref(st->body);
	st->body = body;
	if (order_request_parse(&st->rq, st->body, &st->err) != 0)
		return -1;
	order_items_hash(st);
	return 0;
}

struct order_ctx *
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
int
order_quote_check(struct order_ctx *st, const struct db_result *res, int stmt)
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
