/* digest — the enterprise administrator's daily expiry digest (issue 17):
 * the certificates issuance reported entering a reminder stage
 * (issuance.cert.expiring, gathered by events.c) are priced for renewal
 * with their current platforms as a saved quote of the administrator (the
 * quote an order can be created from), and orders.notice.requested
 * cert.expiry_digest lists them with the quote id, once per enterprise and
 * day (digest_save, deploy/sql/orders/020_notices.sql). When no quote can
 * be priced (no administrator, not eligible) the digest goes without one. */
#include "orders.h"

#include "db.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct digest {
	void (*done)(void *arg, long wait);
	void *arg;
	struct order_ctx *st;
	char id[37], uscc[19], account[37];
	char *cert_ids;
};

static void digest_on_due(void *arg, const struct db_result *res);
static void digest_on_loaded(void *arg, const struct db_result *res);
static void digest_on_saved(void *arg, const struct db_result *res);

static void
digest_end(struct digest *d, long wait)
{
	void (*done)(void *, long) = d->done;
	void *arg = d->arg;

	order_ctx_free(d->st);
	free(d->cert_ids);
	free(d);
	done(arg, wait);
}

void
order_digest_run(void (*done)(void *arg, long wait), void *arg)
{
	struct digest *d = xcalloc(1, sizeof(*d));
	struct db_batch *b = db_batch_new();
	char gather[24];

	d->done = done;
	d->arg = arg;
	snprintf(gather, sizeof(gather), "%ld",
	    orders.cfg.digest_gather_seconds);
	const char *p[] = {gather};
	db_batch_add(b, store_digest_due_sql, 1, p);
	db_batch_add(b, store_digest_next_sql, 1, p);
	db_batch_run(orders.svc.db, b, digest_on_due, d);
}

/* Saves the digest, with the quote st priced when quoted is set. */
static void
digest_save(struct digest *d, int quoted)
{
	struct db_batch *b = db_batch_new();
	char quote_id[37], expires[32], total[24];
	const char *q = NULL, *until = NULL, *sum = NULL;

	if (quoted) {
		struct order_ctx *st = d->st;
		char *ids = json_dumps(st->price_ids, JSON_COMPACT);

		uuid_v4(quote_id);
		order_time_format(now_wall_ms() / 1000 +
		        orders.cfg.digest_quote_ttl,
		    expires);
		snprintf(total, sizeof(total), "%" PRId64, st->total_fen);
		ids[0] = '{';
		ids[strlen(ids) - 1] = '}';
		store_quote_insert(b, quote_id, d->account, st->items_hash, ids,
		    total, expires);
		free(ids);
		q = quote_id;
		until = expires;
		sum = total;
	}
	const char *p[] = {d->id, d->uscc, d->account[0] ? d->account : NULL,
	    d->cert_ids, q, until, sum};
	db_batch_add(b, store_digest_save_sql, 7, p);
	db_batch_run(orders.svc.db, b, digest_on_saved, d);
}

static void
digest_on_due(void *arg, const struct db_result *res)
{
	struct digest *d = arg;
	const char *items;
	char *body;
	json_t *j;

	if (res->status != DB_OK) {
		digest_end(d, -1);
		return;
	}
	if (db_rows(res, 0) != 1) {
		/* none due: when the next one is */
		const char *next = db_value(res, 1, 0, 0);
		digest_end(d,
		    next == NULL         ? -1
		        : atol(next) > 0 ? atol(next)
		                         : 1);
		return;
	}
	uuid_v4(d->id);
	snprintf(d->uscc, sizeof(d->uscc), "%s", db_value(res, 0, 0, 0));
	if (db_value(res, 0, 0, 1) != NULL)
		snprintf(d->account, sizeof(d->account), "%s",
		    db_value(res, 0, 0, 1));
	items = db_value(res, 0, 0, 2);
	d->cert_ids = xstrdup(db_value(res, 0, 0, 3));
	if (d->account[0] == '\0' || items == NULL) {
		digest_save(d, 0);
		return;
	}
	d->st = order_ctx_new_for_admin(d->account, d->uscc);
	body = xasprintf("{\"items\":%s}", items);
	j = json_loads(body, 0, NULL);
	free(body);
	if (j == NULL || order_set_request(d->st, j) != 0) {
		log_warn(NULL, "msg=digest_unquoted uscc=%s why=%s", d->uscc,
		    d->st->err.code ? d->st->err.code : "items");
		digest_save(d, 0);
		return;
	}
	struct db_batch *b = db_batch_new();
	order_load(d->st, b);
	db_batch_run(orders.svc.db, b, digest_on_loaded, d);
}

static void
digest_on_loaded(void *arg, const struct db_result *res)
{
	struct digest *d = arg;

	if (res->status != DB_OK) {
		digest_end(d, -1);
		return;
	}
	if (order_evaluate(d->st, res, 0) != 0) {
		log_warn(NULL, "msg=digest_unquoted uscc=%s why=%s field=%s",
		    d->uscc, d->st->err.code ? d->st->err.code : "-",
		    d->st->err.field);
		digest_save(d, 0);
		return;
	}
	digest_save(d, 1);
}

static void
digest_on_saved(void *arg, const struct db_result *res)
{
	struct digest *d = arg;
	int ok = res->status == DB_OK;

	if (ok)
		log_info(NULL, "msg=expiry_digest uscc=%s digest=%s", d->uscc,
		    d->id);
	else
		log_warn(NULL,
		    "msg=expiry_digest_failed uscc=%s status=%d error=\"%s\"",
		    d->uscc, res->status, res->message ? res->message : "");
	digest_end(d, ok ? 0 : -1);
}
