/* listcache — CA管理's recent pages, per process (issue 13's latency goal).
 * An entry is the rows of one list statement (its text and parameters are
 * the key) for one enterprise, with the enterprise's registry version read
 * by the rows' own statement (one snapshot; deploy/sql/issuance/
 * 065_list_version.sql: every write to what the list shows bumps it, by
 * triggers). A page is answered from an entry only after the version has
 * been read again and is still the same. The rows are the database's: days left, status and
 * renewability are computed from them at each answer, and a statement
 * whose WHERE clause reads the clock (status=...) keys its entries by the
 * second as well. Fixed slots (a page is at most LIST_MAX + 1 rows), the
 * newest entry wins its slot. */
#include "issuance.h"

#include "db.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_CACHE_SLOTS 256

struct list_entry {
	char *key;
	long long version;
	struct list_rows *rows;
	/* the JSON page made from rows in second body_at (days left, status
	 * and renewability change with the second, nothing else does) */
	char *body;
	size_t body_len;
	time_t body_at;
};

static struct list_entry cache[LIST_CACHE_SLOTS];

struct list_rows *
list_rows_copy(const struct db_result *res, int stmt, int nrows, int ncols)
{
	int n = nrows;
	size_t size = 0, at = 0;
	struct list_rows *r = xcalloc(1, sizeof(*r));

	for (int i = 0; i < n; i++)
		for (int k = 0; k < ncols; k++) {
			const char *v = db_value(res, stmt, i, k);
			size += v ? strlen(v) + 1 : 0;
		}
	r->n = n;
	r->ncols = ncols;
	r->v = xcalloc((size_t)n * (size_t)ncols + 1, sizeof(char *));
	r->text = xmalloc(size + 1);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < ncols; k++) {
			const char *v = db_value(res, stmt, i, k);
			size_t len;

			if (v == NULL)
				continue;
			len = strlen(v) + 1;
			memcpy(r->text + at, v, len);
			r->v[i * ncols + k] = r->text + at;
			at += len;
		}
	return r;
}

void
list_rows_free(struct list_rows *r)
{
	if (r == NULL)
		return;
	free(r->v);
	free(r->text);
	free(r);
}

const char *
list_rows_value(const struct list_rows *r, int row, int col)
{
	if (row < 0 || row >= r->n || col < 0 || col >= r->ncols)
		return NULL;
	return r->v[row * r->ncols + col];
}

int
list_rows_bool(const struct list_rows *r, int row, int col)
{
	const char *v = list_rows_value(r, row, col);

	return v != NULL && strcmp(v, "t") == 0;
}

static size_t
slot_of(const char *key)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % LIST_CACHE_SLOTS);
}

const struct list_rows *
list_cache_get(const char *key, long long *version)
{
	const struct list_entry *e = &cache[slot_of(key)];

	if (e->key == NULL || strcmp(e->key, key) != 0)
		return NULL;
	*version = e->version;
	return e->rows;
}

void
list_cache_put(const char *key, long long version, struct list_rows *rows)
{
	struct list_entry *e = &cache[slot_of(key)];

	free(e->key);
	list_rows_free(e->rows);
	free(e->body);
	e->key = xstrdup(key);
	e->version = version;
	e->rows = rows;
	e->body = NULL;
	e->body_len = 0;
}

const char *
list_cache_body(const char *key, time_t at, size_t *len)
{
	const struct list_entry *e = &cache[slot_of(key)];

	if (e->key == NULL || e->body == NULL || e->body_at != at ||
	    strcmp(e->key, key) != 0)
		return NULL;
	*len = e->body_len;
	return e->body;
}

void
list_cache_set_body(const char *key, time_t at, char *body, size_t len)
{
	struct list_entry *e = &cache[slot_of(key)];

	if (e->key == NULL || strcmp(e->key, key) != 0) {
		free(body);
		return;
	}
	free(e->body);
	e->body = body;
	e->body_len = len;
	e->body_at = at;
}

/* ---- the enterprise's version, one read at a time per enterprise ----
 * Under load every cached page of an enterprise asks for the same number.
 * At most one read per enterprise is in flight; the requests that arrive
 * meanwhile wait for the NEXT read, sent when the current one answers, so
 * that each request's read starts after the request arrived and sees
 * every write committed before it (a request never takes the answer of a
 * read sent before it came). */

struct version_wait {
	struct version_wait *next;
	list_version_cb cb;
	void *arg;
};

struct version_read {
	struct version_read *next;
	char *uscc;
	struct version_wait *sent, *waiting;
};

static struct version_read *reads;

static void version_send(struct version_read *vr);

static void
version_on_read(void *arg, const struct db_result *res)
{
	struct version_read *vr = arg, **pp;
	struct version_wait *w = vr->sent, *next;
	int ok = res->status == DB_OK && db_rows(res, 0) == 1;
	long long v = ok ? atoll(db_value(res, 0, 0, 0)) : -1;

	vr->sent = NULL;
	if (vr->waiting != NULL)
		version_send(vr);
	else {
		for (pp = &reads; *pp != vr; pp = &(*pp)->next)
			;
		*pp = vr->next;
		free(vr->uscc);
		free(vr);
	}
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, res, ok, v);
		free(w);
	}
}

static void
version_send(struct version_read *vr)
{
	const char *p[] = {vr->uscc};

	vr->sent = vr->waiting;
	vr->waiting = NULL;
	db_query(issuance.svc.db, store_cert_list_version_sql, 1, p,
	    version_on_read, vr);
}

void
list_version_read(const char *uscc, list_version_cb cb, void *arg)
{
	struct version_read *vr;
	struct version_wait *w = xcalloc(1, sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	for (vr = reads; vr != NULL && strcmp(vr->uscc, uscc) != 0;
	     vr = vr->next)
		;
	if (vr == NULL) {
		vr = xcalloc(1, sizeof(*vr));
		vr->uscc = xstrdup(uscc);
		vr->next = reads;
		reads = vr;
	}
	w->next = vr->waiting;
	vr->waiting = w;
	if (vr->sent == NULL)
		version_send(vr);
}
