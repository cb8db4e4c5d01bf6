/* handlers — the registry list, revocation (operator), the local CA's
 * CRLs, the downstream platforms' interop status, and the route table. The
 * renewal calls live in renew.c. Each handler is a chain of named
 * continuations; the last one replies. */
#include "issuance.h"

#include "access.h"
#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "hist.h"
#include "json.h"
#include "kv.h"
#include "lockcert.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "vendor.h"
#include "work.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 20
#define LIST_MAX 100

static json_t *
nullable(const char *v)
{
	return v ? json_string(v) : json_null();
}

static json_t *
time_json(const char *epoch)
{
	char buf[48];

	time_rfc3339(atoll(epoch) * 1000, buf);
	return json_string(buf);
}

/* ---- GET /api/v1/certs (CA管理) ------------------------------------------
 * Filters, sort and keyset pages on the latest certificate of each key in
 * the caller's scope (common/access.h ACCESS_CERTS: the administrator the
 * whole enterprise, bound or not; a member or a person their own; staff
 * with the area the whole registry); format=csv exports the same rows. */

#define CSV_DEFAULT 10000
#define CSV_MAX 10000

struct list {
	struct http_req *req;
	long limit;
	int csv;
	char *sql;       /* store_cert_list_build's, for the batch's life */
	char *owned[13]; /* the statement's parameters */
	const char *params[13];
	int nparams;
	/* An enterprise administrator's page (listcache.c): its enterprise,
	 * its cache key, and the list's statement index in the batch. */
	char *uscc, *key;
	int stmt;
};

static void
list_free(void *p)
{
	struct list *l = p;

	free(l->sql);
	for (int i = 0; i < l->nparams; i++)
		free(l->owned[i]);
	free(l->uscc);
	free(l->key);
	free(l);
}

/* The columns of store_cert_list_build's statement. */
#define LIST_COLS 22

static void list_on_rows(void *arg, const struct db_result *res);
static void list_on_version(void *arg, const struct db_result *res, int ok,
    long long version);
static void list_write(struct list *l, const struct list_rows *rows);

/* The cursor is base64url("<cert id>.<sort key>"). */
static int
cursor_decode(const char *cursor, char id[37], char **key)
{
	unsigned char *raw;
	size_t len;
	int rc = -1;

	if (crypto_base64url_decode(&raw, &len, cursor, strlen(cursor)) != 0)
		return -1;
	raw = xrealloc(raw, len + 1);
	raw[len] = '\0';
	if (len > 37 && raw[36] == '.' && strlen((char *)raw) == len) {
		snprintf(id, 37, "%.36s", (char *)raw);
		if (uuid_valid(id)) {
			*key = xstrdup((char *)raw + 37);
			rc = 0;
		}
	}
	free(raw);
	return rc;
}

static const char *const list_sorts[] = {"not_after", "holder", "applied_at"};
static const char *const list_statuses[] = {"valid", "expired", "revoked",
    NULL};

static int
one_of(const char *v, const char *const *set)
{
	for (size_t i = 0; set[i] != NULL; i++)
		if (strcmp(v, set[i]) == 0)
			return 1;
	return 0;
}

/* A query parameter as an integer in [min, max]: 0 (absent: *set 0), or -1
 * after answering 400. */
static int
int_param(struct http_req *req, const char *name, long min, long max, long *out,
    int *set)
{
	char *text = http_query_param(req, name), *end;
	int ok;

	*set = text != NULL;
	if (text == NULL)
		return 0;
	*out = strtol(text, &end, 10);
	ok = *text && *end == '\0' && *out >= min && *out <= max;
	free(text);
	if (!ok) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s 须为 %ld 至 %ld 的整数", name,
		    min, max);
		http_reply_error(req, 400, "BAD_REQUEST", name, msg);
		return -1;
	}
	return 0;
}

/* Every query parameter the list reads, owned until the query is sent. */
struct list_query {
	char *cursor, *sort, *status, *holder, *vendor, *lock_kind, *bound,
	    *format, *key, *renewal_paid;
};

static void
list_query_free(struct list_query *q)
{
	free(q->cursor);
	free(q->sort);
	free(q->status);
	free(q->holder);
	free(q->vendor);
	free(q->lock_kind);
	free(q->bound);
	free(q->format);
	free(q->key);
	free(q->renewal_paid);
}

static int
list_bad(struct http_req *req, const char *field, const char *message)
{
	http_reply_error(req, 400, "BAD_REQUEST", field, message);
	return -1;
}

/* Reads and checks the filters; -1 after answering 400. */
static int
list_read_query(struct http_req *req, struct list_query *q)
{
	q->cursor = http_query_param(req, "cursor");
	q->sort = http_query_param(req, "sort");
	q->status = http_query_param(req, "status");
	q->holder = http_query_param(req, "holder");
	q->vendor = http_query_param(req, "vendor");
	q->lock_kind = http_query_param(req, "lock_kind");
	q->bound = http_query_param(req, "bound");
	q->format = http_query_param(req, "format");
	/* renewal_paid=true: paid renewals the holder has not yet done on the
	 * key (who has not updated yet, issue 17). */
	q->renewal_paid = http_query_param(req, "renewal_paid");
	if (q->renewal_paid != NULL && strcmp(q->renewal_paid, "true") != 0 &&
	    strcmp(q->renewal_paid, "false") != 0)
		return list_bad(req, "renewal_paid",
		    "renewal_paid 须为 true 或 false");
	if (q->format != NULL && strcmp(q->format, "json") != 0 &&
	    strcmp(q->format, "csv") != 0)
		return list_bad(req, "format", "format 须为 json 或 csv");
	if (q->status != NULL && !one_of(q->status, list_statuses))
		return list_bad(req, "status",
		    "status 须为 valid、expired 或 revoked");
	if (q->lock_kind != NULL && !lockcert_kind_valid(q->lock_kind))
		return list_bad(req, "lock_kind", "lock_kind 无效");
	if (q->bound != NULL && strcmp(q->bound, "true") != 0 &&
	    strcmp(q->bound, "false") != 0)
		return list_bad(req, "bound", "bound 须为 true 或 false");
	if ((q->holder != NULL && (!*q->holder || strlen(q->holder) > 64)) ||
	    (q->vendor != NULL && (!*q->vendor || strlen(q->vendor) > 64)))
		return list_bad(req,
		    q->holder && strlen(q->holder) > 64 ? "holder" : "vendor",
		    "holder / vendor 须为 1 至 64 个字符");
	return 0;
}

/* The list's batch: generic plans, the statement (with the enterprise's
 * version as its last column when its pages are cached: listcache.c). */
static void
list_run(struct list *l)
{
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_generic_plans_sql, 0, NULL);
	l->stmt = 1;
	db_batch_add(b, l->sql, l->nparams, l->params);
	db_batch_run(issuance.svc.db, b, list_on_rows, l);
}

/* A cached page's version check: the same version answers from the cache,
 * another reads the rows again. */
static void
list_on_version(void *arg, const struct db_result *res, int ok,
    long long version)
{
	struct list *l = arg;
	const struct list_rows *rows;
	long long cached;

	if (!ok) {
		http_reply_db_error(l->req, res);
		return;
	}
	rows = list_cache_get(l->key, &cached);
	if (rows != NULL && cached == version) {
		issuance_count("list_cache_hit");
		list_write(l, rows);
		return;
	}
	list_run(l);
}

static void
list_start(struct http_req *req)
{
	const struct session *s = req->session;
	enum access_scope scope = access_scope(s, ACCESS_CERTS);
	const char *uscc = NULL, *account = NULL;
	struct list_query q = {0};
	char id[37], limit[24], min_at[24], max_at[24];
	long n, dmin = 0, dmax = 0;
	int has_limit, has_min, has_max, sort = CERT_SORT_NOT_AFTER, desc = 0;
	time_t now = time(NULL);
	struct list *l = xcalloc(1, sizeof(*l));

	l->req = req;
	http_req_attach(req, l, list_free);
	if (s->staff_id != NULL && scope < ACCESS_PLATFORM) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return;
	}
	if (list_read_query(req, &q) != 0)
		goto out;
	l->csv = q.format != NULL && strcmp(q.format, "csv") == 0;
	if (int_param(req, "limit", 1, l->csv ? CSV_MAX : LIST_MAX, &n,
	        &has_limit) != 0 ||
	    int_param(req, "days_left_min", -36500, 36500, &dmin, &has_min) !=
	        0 ||
	    int_param(req, "days_left_max", -36500, 36500, &dmax, &has_max) !=
	        0)
		goto out;
	l->limit = has_limit ? n : l->csv ? CSV_DEFAULT : LIST_DEFAULT;
	if (q.sort != NULL) {
		const char *name = q.sort[0] == '-' ? q.sort + 1 : q.sort;

		desc = q.sort[0] == '-';
		sort = -1;
		for (size_t i = 0; i < ARRAY_LEN(list_sorts); i++)
			if (strcmp(name, list_sorts[i]) == 0)
				sort = (int)i;
		if (sort < 0) {
			list_bad(req, "sort",
			    "sort 须为 not_after、holder、applied_at（前加 - 为倒序）");
			goto out;
		}
	}
	if (q.cursor != NULL && cursor_decode(q.cursor, id, &q.key) != 0) {
		list_bad(req, "cursor", "cursor 无效");
		goto out;
	}
	if (scope >= ACCESS_PLATFORM)
		; /* staff: the whole registry */
	else if (scope == ACCESS_ENTERPRISE)
		uscc =
		    s->uscc; /* the enterprise's certificates, bound or not */
	else
		account = s->account_id; /* one's own */
	/* days_left = floor((notAfter - now) / day) */
	snprintf(min_at, sizeof(min_at), "%lld",
	    (long long)now + (long long)dmin * DAY_SECONDS);
	snprintf(max_at, sizeof(max_at), "%lld",
	    (long long)now + (long long)(dmax + 1) * DAY_SECONDS);
	snprintf(limit, sizeof(limit), "%ld", l->limit + 1);
	const char *p[] = {uscc, account, q.status, has_min ? min_at : NULL,
	    has_max ? max_at : NULL, q.holder, q.vendor, q.lock_kind, q.bound,
	    q.key, q.key ? id : NULL, limit, q.renewal_paid};
	const char *used[13];
	int nused;

	l->sql = store_cert_list_build(sort, desc, p, uscc != NULL && !l->csv,
	    used, &nused);
	l->nparams = nused;
	for (int i = 0; i < nused; i++)
		l->params[i] = l->owned[i] = xstrdup(used[i]);
	if (uscc != NULL && !l->csv) {
		/* the statement (what store_cert_list_build's text is made
		 * of: sort, direction, which filters, the status; not its
		 * 2 KB of text, hashed and compared at each look-up), the
		 * parameters and, when its WHERE clause reads the clock
		 * (status), the second */
		size_t size = strlen(uscc) + 64, at;
		unsigned present = 0;
		long long v;

		for (int i = 0; i < 13; i++)
			present |= (p[i] != NULL) << i;
		for (int i = 0; i < nused; i++)
			size += strlen(used[i]) + 1;
		l->key = xmalloc(size);
		at = (size_t)snprintf(l->key, size, "%s\x1e%d%c%x%s", uscc,
		    sort, desc ? '-' : '+', present, q.status ? q.status : "");
		for (int i = 0; i < nused; i++) {
			size_t len = strlen(used[i]);

			l->key[at++] = '\x1f';
			memcpy(l->key + at, used[i], len + 1);
			at += len;
		}
		if (q.status != NULL)
			snprintf(l->key + at, size - at, "\x1e%lld",
			    (long long)now);
		l->uscc = xstrdup(uscc);
		if (list_cache_get(l->key, &v) != NULL) {
			list_version_read(l->uscc, list_on_version, l);
			goto out;
		}
	}
	list_run(l);
out:
	list_query_free(&q);
}

/* One item of the list from row i of store_cert_list_build's statement. */
static json_t *
cert_item_json(const struct list_rows *r, int i, time_t now)
{
	time_t not_after = (time_t)atoll(list_rows_value(r, i, 9));
	int revoked = list_rows_bool(r, i, 11);
	int open_order = list_rows_bool(r, i, 12),
	    paid = list_rows_bool(r, i, 13);
	const char *reason = cert_not_renewable_reason(&issuance.window,
	    not_after, now, revoked, open_order || paid);
	/* NULL: the associations are unknown (first seen at a login). */
	const char *platforms_text = list_rows_value(r, i, 10);
	json_t *platforms =
	    platforms_text ? json_loads(platforms_text, 0, NULL) : NULL;
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(list_rows_value(r, i, 0)));
	json_object_set_new(o, "serial", json_string(list_rows_value(r, i, 1)));
	json_object_set_new(o, "type", json_string(list_rows_value(r, i, 2)));
	json_object_set_new(o, "holder", json_string(list_rows_value(r, i, 3)));
	json_object_set_new(o, "vendor", json_string(list_rows_value(r, i, 4)));
	json_object_set_new(o, "lock_kind",
	    json_string(list_rows_value(r, i, 5)));
	json_object_set_new(o, "enterprise_name",
	    nullable(list_rows_value(r, i, 6)));
	json_object_set_new(o, "uscc", nullable(list_rows_value(r, i, 7)));
	json_object_set_new(o, "not_before",
	    time_json(list_rows_value(r, i, 8)));
	json_object_set_new(o, "not_after",
	    time_json(list_rows_value(r, i, 9)));
	json_object_set_new(o, "days_left",
	    json_integer(cert_days_left(not_after, now)));
	json_object_set_new(o, "renewable", json_boolean(reason == NULL));
	json_object_set_new(o, "not_renewable_reason", nullable(reason));
	json_object_set_new(o, "not_renewable_message",
	    nullable(cert_reason_message(reason)));
	json_object_set_new(o, "platforms",
	    platforms_text == NULL ? json_null()
	                           : (platforms ? platforms : json_array()));
	json_object_set_new(o, "platforms_known",
	    json_boolean(platforms_text != NULL));
	json_object_set_new(o, "status",
	    json_string(cert_status_name(not_after, now, revoked)));
	json_object_set_new(o, "renewal_paid", json_boolean(paid));
	json_object_set_new(o, "issuer",
	    json_string(list_rows_value(r, i, 14)));
	json_object_set_new(o, "account_id",
	    nullable(list_rows_value(r, i, 15)));
	json_object_set_new(o, "previous_serial",
	    nullable(list_rows_value(r, i, 16)));
	json_object_set_new(o, "key_serial",
	    nullable(list_rows_value(r, i, 17)));
	json_object_set_new(o, "key_vendor",
	    nullable(list_rows_value(r, i, 18)));
	json_object_set_new(o, "applied_at",
	    time_json(list_rows_value(r, i, 19)));
	json_object_set_new(o, "bound",
	    json_boolean(list_rows_value(r, i, 15) != NULL));
	json_object_set_new(o, "renewal_state",
	    json_string(cert_renewal_state(reason, open_order, paid,
	        list_rows_bool(r, i, 20))));
	return o;
}

/* Appends one CSV field (RFC 4180 quoting; in text, a leading = + - @ is
 * written after a ' so that spreadsheets show it as text, not a formula). */
static void
csv_field(struct evbuffer *out, const char *v, int text, int last)
{
	int quote = v != NULL && strpbrk(v, ",\"\r\n") != NULL;

	if (quote)
		evbuffer_add(out, "\"", 1);
	if (text && v != NULL && v[0] != '\0' && strchr("=+-@", v[0]) != NULL)
		evbuffer_add(out, "'", 1);
	for (const char *p = v; p != NULL && *p; p++) {
		if (*p == '"')
			evbuffer_add(out, "\"", 1);
		evbuffer_add(out, p, 1);
	}
	if (quote)
		evbuffer_add(out, "\"", 1);
	evbuffer_add(out, last ? "\r\n" : ",", last ? 2 : 1);
}

static const char *const csv_columns[] = {"cert_id", "serial", "holder",
    "lock_kind", "vendor", "key_vendor", "key_serial", "applied_at",
    "not_before", "not_after", "days_left", "platforms", "bound",
    "renewal_state", "status", "enterprise_name", "uscc", "issuer"};

static void
csv_row(struct evbuffer *out, json_t *o)
{
	for (size_t k = 0; k < ARRAY_LEN(csv_columns); k++) {
		const char *name = strcmp(csv_columns[k], "cert_id") == 0
		    ? "id"
		    : csv_columns[k];
		json_t *v = json_object_get(o, name);
		char buf[32];
		const char *text = NULL;
		char *joined = NULL;

		if (json_is_string(v))
			text = json_string_value(v);
		else if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld",
			    (long long)json_integer_value(v));
			text = buf;
		} else if (json_is_boolean(v))
			text = json_is_true(v) ? "true" : "false";
		else if (json_is_array(v)) {
			json_t *e;
			size_t i;
			joined = xstrdup("");
			json_array_foreach(v, i, e)
			{
				char *more = xasprintf("%s%s%s", joined,
				    i ? ";" : "", json_string_value(e));
				free(joined);
				joined = more;
			}
			text = joined;
		}
		csv_field(out, text, json_is_string(v),
		    k + 1 == ARRAY_LEN(csv_columns));
		free(joined);
	}
}

/* The JSON page written straight from the rows into one growing buffer
 * (measured, issue 13: a jansson tree per row, then json_dumps, cost about
 * as much CPU in the service as the list's statement in the database; then
 * an evbuffer_add per fragment, a gmtime_r and snprintf per time and the
 * buffer's copies were a third of the miss path's CPU in the service). The
 * same items as cert_item_json, which the CSV export keeps. */
struct jbuf {
	char *p;
	size_t len, cap;
};

static void
jb_add(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		while (b->len + n > b->cap)
			b->cap = b->cap ? b->cap * 2 : 16384;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define JB_LIT(b, s) jb_add((b), (s), sizeof(s) - 1)

static void
jw_str(struct jbuf *out, const char *v)
{
	const char *run;

	if (v == NULL) {
		JB_LIT(out, "null");
		return;
	}
	JB_LIT(out, "\"");
	run = v;
	for (const char *p = v; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		char esc[8];

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		jb_add(out, run, (size_t)(p - run));
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof(esc), "\\%c", ch);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
		jb_add(out, esc, strlen(esc));
		run = p + 1;
	}
	jb_add(out, run, strlen(run));
	JB_LIT(out, "\"");
}

/* ,"key": (the first key, "id", is written with the opening brace) */
#define JW_KEY(out, key) JB_LIT((out), ",\"" key "\":")

static void
jw_digits(char *at, unsigned v, int n)
{
	while (n-- > 0) {
		at[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* time_rfc3339 of whole seconds (what the columns hold), as a string,
 * without gmtime_r and snprintf: the civil date from the day number
 * (H. Hinnant's days-to-civil), for years 0..9999 (else time_rfc3339). */
static void
jw_time(struct jbuf *out, const char *epoch)
{
	long long t = atoll(epoch), days, sod;
	char buf[48] = "\"0000-00-00T00:00:00.000Z\"";

	days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	sod = t - days * 86400;
	{
		long long z = days + 719468;
		long long era = (z >= 0 ? z : z - 146096) / 146097;
		unsigned doe = (unsigned)(z - era * 146097);
		unsigned yoe =
		    (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
		long long y = (long long)yoe + era * 400;
		unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		unsigned mp = (5 * doy + 2) / 153;
		unsigned d = doy - (153 * mp + 2) / 5 + 1;
		unsigned m = mp < 10 ? mp + 3 : mp - 9;

		y += m <= 2;
		if (y < 0 || y > 9999) {
			time_rfc3339(t * 1000, buf);
			jw_str(out, buf);
			return;
		}
		jw_digits(buf + 1, (unsigned)y, 4);
		jw_digits(buf + 6, m, 2);
		jw_digits(buf + 9, d, 2);
	}
	jw_digits(buf + 12, (unsigned)(sod / 3600), 2);
	jw_digits(buf + 15, (unsigned)(sod / 60 % 60), 2);
	jw_digits(buf + 18, (unsigned)(sod % 60), 2);
	jb_add(out, buf, 26);
}

static void
jw_bool(struct jbuf *out, int v)
{
	if (v)
		JB_LIT(out, "true");
	else
		JB_LIT(out, "false");
}

static void
jw_int(struct jbuf *out, long long v)
{
	char buf[24];
	int n = 0;
	unsigned long long u =
	    v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		buf[sizeof(buf) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[sizeof(buf) - 1 - n++] = '-';
	jb_add(out, buf + sizeof(buf) - n, (size_t)n);
}

static void
cert_item_write(struct jbuf *out, const struct list_rows *r, int i, time_t now)
{
	time_t not_after = (time_t)atoll(list_rows_value(r, i, 9));
	int revoked = list_rows_bool(r, i, 11);
	int open_order = list_rows_bool(r, i, 12);
	int paid = list_rows_bool(r, i, 13);
	const char *reason = cert_not_renewable_reason(&issuance.window,
	    not_after, now, revoked, open_order || paid);
	const char *platforms = list_rows_value(r, i, 10);

	JB_LIT(out, "{\"id\":");
	jw_str(out, list_rows_value(r, i, 0));
	JW_KEY(out, "serial");
	jw_str(out, list_rows_value(r, i, 1));
	JW_KEY(out, "type");
	jw_str(out, list_rows_value(r, i, 2));
	JW_KEY(out, "holder");
	jw_str(out, list_rows_value(r, i, 3));
	JW_KEY(out, "vendor");
	jw_str(out, list_rows_value(r, i, 4));
	JW_KEY(out, "lock_kind");
	jw_str(out, list_rows_value(r, i, 5));
	JW_KEY(out, "enterprise_name");
	jw_str(out, list_rows_value(r, i, 6));
	JW_KEY(out, "uscc");
	jw_str(out, list_rows_value(r, i, 7));
	JW_KEY(out, "not_before");
	jw_time(out, list_rows_value(r, i, 8));
	JW_KEY(out, "not_after");
	jw_time(out, list_rows_value(r, i, 9));
	JW_KEY(out, "days_left");
	jw_int(out, (long long)cert_days_left(not_after, now));
	JW_KEY(out, "renewable");
	jw_bool(out, reason == NULL);
	JW_KEY(out, "not_renewable_reason");
	jw_str(out, reason);
	JW_KEY(out, "not_renewable_message");
	jw_str(out, cert_reason_message(reason));
	/* array_to_json's text, NULL when the associations are unknown */
	JW_KEY(out, "platforms");
	if (platforms != NULL)
		jb_add(out, platforms, strlen(platforms));
	else
		JB_LIT(out, "null");
	JW_KEY(out, "platforms_known");
	jw_bool(out, platforms != NULL);
	JW_KEY(out, "status");
	jw_str(out, cert_status_name(not_after, now, revoked));
	JW_KEY(out, "renewal_paid");
	jw_bool(out, paid);
	JW_KEY(out, "issuer");
	jw_str(out, list_rows_value(r, i, 14));
	JW_KEY(out, "account_id");
	jw_str(out, list_rows_value(r, i, 15));
	JW_KEY(out, "previous_serial");
	jw_str(out, list_rows_value(r, i, 16));
	JW_KEY(out, "key_serial");
	jw_str(out, list_rows_value(r, i, 17));
	JW_KEY(out, "key_vendor");
	jw_str(out, list_rows_value(r, i, 18));
	JW_KEY(out, "applied_at");
	jw_time(out, list_rows_value(r, i, 19));
	JW_KEY(out, "bound");
	jw_bool(out, list_rows_value(r, i, 15) != NULL);
	JW_KEY(out, "renewal_state");
	jw_str(out,
	    cert_renewal_state(reason, open_order, paid,
	        list_rows_bool(r, i, 20)));
	JB_LIT(out, "}");
}

static void
list_write_json(struct list *l, const struct list_rows *r, const char *cursor,
    time_t now)
{
	struct jbuf out = {0};
	long limit = l->limit;
	int64_t t0 = hist_now();

	JB_LIT(&out, "{\"items\":[");
	for (int i = 0; i < r->n && i < limit; i++) {
		if (i)
			JB_LIT(&out, ",");
		cert_item_write(&out, r, i, now);
	}
	JB_LIT(&out, "],\"next_cursor\":");
	jw_str(&out, cursor);
	JB_LIT(&out, "}");
	hist_step(STEP_JSON_BUILD, t0);
	http_reply_raw(l->req, 200, "application/json; charset=utf-8", out.p,
	    out.len);
	if (l->key != NULL)
		list_cache_set_body(l->key, now, out.p, out.len); /* steals */
	else
		free(out.p);
}

static void
list_write_csv(struct http_req *req, const struct list_rows *r, long limit,
    const char *cursor)
{
	time_t now = time(NULL);
	json_t *items = json_array(), *o;
	size_t i;

	for (int k = 0; k < r->n && k < limit; k++)
		json_array_append_new(items, cert_item_json(r, k, now));
	struct evbuffer *out = evbuffer_new();

	evbuffer_add(out, "\xef\xbb\xbf", 3); /* BOM: Excel reads UTF-8 */
	for (size_t k = 0; k < ARRAY_LEN(csv_columns); k++)
		csv_field(out, csv_columns[k], 1,
		    k + 1 == ARRAY_LEN(csv_columns));
	json_array_foreach(items, i, o) csv_row(out, o);
	if (cursor != NULL)
		http_add_header(req, "X-Next-Cursor", cursor);
	http_add_header(req, "Content-Disposition",
	    "attachment; filename=\"certs.csv\"");
	http_reply_raw(req, 200, "text/csv; charset=utf-8",
	    evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
	json_decref(items);
}

/* The page from its rows (the statement's or a cached copy). */
static void
list_write(struct list *l, const struct list_rows *r)
{
	char *cursor = NULL;
	time_t now = time(NULL);
	const char *body;
	size_t len;

	/* the same page in the same second: the same bytes */
	if (l->key != NULL && !l->csv &&
	    (body = list_cache_body(l->key, now, &len)) != NULL) {
		http_reply_raw(l->req, 200, "application/json; charset=utf-8",
		    body, len);
		return;
	}
	if (r->n > l->limit) {
		int last = (int)l->limit - 1;
		char *raw = xasprintf("%s.%s", list_rows_value(r, last, 0),
		    list_rows_value(r, last, 21));

		cursor = crypto_base64url_encode(raw, strlen(raw));
		free(raw);
	}
	if (l->csv)
		list_write_csv(l->req, r, l->limit, cursor);
	else
		list_write_json(l, r, cursor, now);
	free(cursor);
}

static void
list_on_rows(void *arg, const struct db_result *res)
{
	struct list *l = arg;
	struct list_rows *rows;
	long long version;
	int n;

	if (res->status != DB_OK) {
		http_reply_db_error(l->req, res);
		return;
	}
	n = db_rows(res, l->stmt);
	if (l->key != NULL && n < 1) { /* never: uncached, as it is */
		free(l->key);
		l->key = NULL;
	}
	if (l->key == NULL) {
		rows = list_rows_copy(res, l->stmt, n, LIST_COLS);
		list_write(l, rows);
		list_rows_free(rows);
		return;
	}
	issuance_count("list_cache_miss");
	/* the version read with the rows (column LIST_COLS of each row, and
	 * of the one row of NULLs of an empty page) */
	version = atoll(db_value(res, l->stmt, 0, LIST_COLS));
	if (db_value(res, l->stmt, 0, 0) == NULL)
		n = 0;
	rows = list_rows_copy(res, l->stmt, n, LIST_COLS);
	list_cache_put(l->key, version, rows);
	list_write(l, rows);
}

static void
cert_list(struct http_req *req)
{
	session_require(req, list_start);
}

/* ---- POST /api/v1/certs/{id}/revoke (operator) -------------------------- */

static const char *const revoke_reasons[] = {"unspecified", "key_compromise",
    "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", NULL};

struct revoke {
	struct http_req *req;
	json_t *body;
	const char *reason;
};

static void
revoke_free(void *p)
{
	struct revoke *rv = p;

	json_decref(rv->body);
	free(rv);
}

static void revoke_on_done(void *arg, const struct db_result *res);

static void
revoke_start(struct http_req *req)
{
	struct json_field_err err;
	char event[37], job[37], *forward;
	json_t *body;

	if (session_require_staff(req, "operator") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	if (http_read_json(req, &body) != 0)
		return;
	struct revoke *rv = xcalloc(1, sizeof(*rv));
	rv->req = req;
	rv->body = body;
	http_req_attach(req, rv, revoke_free);
	if (json_field_enum(body, "reason", JSON_FIELD_REQUIRED, revoke_reasons,
	        &rv->reason, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	uuid_v4(event);
	uuid_v4(job);
	forward = vendor_forward_names();
	/* The revocation and its audit entry: one statement. */
	const struct audit_entry e = {.action = "cert.revoked",
	    .object_type = "certificate",
	    .object_id = req->params[0]};
	json_t *audit = audit_event_data(req, &e);
	char *audit_text = json_dumps(audit, JSON_COMPACT);
	const char *p[] = {req->params[0], rv->reason, event, job, forward,
	    audit_text};
	db_query(issuance.svc.db, store_revoke_sql, 6, p, revoke_on_done, rv);
	free(audit_text);
	json_decref(audit);
	free(forward);
}

static void
revoke_on_done(void *arg, const struct db_result *res)
{
	struct revoke *rv = arg;
	struct http_req *req = rv->req;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	log_info(req->id,
	    "msg=cert_revoked cert_id=%s serial=%s reason=%s staff=%s",
	    req->params[0], db_value(res, 0, 0, 0), rv->reason,
	    req->session->staff_id);
	issuance_count("revoked");
	issuance_sweep_kick(); /* a vendor job may be pending */
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "cert_id",
	        req->params[0], "serial", db_value(res, 0, 0, 0), "issuer",
	        db_value(res, 0, 0, 1), "status", "revoked", "reason",
	        rv->reason, "revoked_at", time_json(db_value(res, 0, 0, 2)),
	        "vendor_notified", !db_bool(res, 0, 0, 4)));
}

static void
cert_revoke(struct http_req *req)
{
	session_require(req, revoke_start);
}

/* ---- GET /api/v1/certs/crl/{ca}.crl ------------------------------------ */

/* The last CRL this process made per issuing CA, reused while nothing was
 * revoked since and it is less than an hour old. Loop thread only. */
static struct crl_cache {
	char name[8];
	char digest[CRYPTO_SHA256_HEX_SIZE];
	unsigned char *der;
	size_t len;
	time_t made;
} crl_cache[2];

struct crl {
	struct http_req *req;
	const struct localca_ca *ca;
	struct crypto_crl_entry *entries;
	char **serials;
	size_t n;
	char digest[CRYPTO_SHA256_HEX_SIZE];
	time_t now;
	unsigned char *der;
	size_t len;
	int rc;
};

static void
crl_free(void *p)
{
	struct crl *c = p;

	for (size_t i = 0; i < c->n; i++)
		free(c->serials[i]);
	free(c->serials);
	free(c->entries);
	free(c->der);
	free(c);
}

static void crl_on_entries(void *arg, const struct db_result *res);
static void crl_sign(void *arg);
static void crl_on_signed(void *arg);

static enum crypto_crl_reason
crl_reason(const char *reason)
{
	static const char *const names[] = {"unspecified", "key_compromise",
	    "ca_compromise", "affiliation_changed", "superseded",
	    "cessation_of_operation"};

	for (size_t i = 0; reason && i < ARRAY_LEN(names); i++)
		if (strcmp(reason, names[i]) == 0)
			return (enum crypto_crl_reason)i;
	return CRYPTO_CRL_UNSPECIFIED;
}

static struct crl_cache *
crl_cache_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(crl_cache); i++) {
		if (crl_cache[i].name[0] == '\0')
			snprintf(crl_cache[i].name, sizeof(crl_cache[i].name),
			    "%s", name);
		if (strcmp(crl_cache[i].name, name) == 0)
			return &crl_cache[i];
	}
	return NULL;
}

static void
cert_crl(struct http_req *req)
{
	char name[8];
	size_t len = strlen(req->params[0]);
	const struct localca_ca *ca = NULL;

	if (len > 4 && len < 4 + sizeof(name) &&
	    strcmp(req->params[0] + len - 4, ".crl") == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4),
		    req->params[0]);
		ca = localca_find(issuance.localca, name);
	}
	if (ca == NULL) {
		http_reply_error(req, 404, "NOT_FOUND", NULL,
		    "没有该签发机构的证书吊销列表");
		return;
	}
	struct crl *c = xcalloc(1, sizeof(*c));
	c->req = req;
	c->ca = ca;
	http_req_attach(req, c, crl_free);
	const char *p[] = {ca->ca->subject_dn};
	db_query(issuance.svc.db, store_crl_entries_sql, 1, p, crl_on_entries,
	    c);
}

static void
crl_on_entries(void *arg, const struct db_result *res)
{
	struct crl *c = arg;
	struct crl_cache *cache;
	char *all = xstrdup("");

	if (res->status != DB_OK) {
		free(all);
		http_reply_db_error(c->req, res);
		return;
	}
	c->n = (size_t)db_rows(res, 0);
	c->entries = xcalloc(c->n + 1, sizeof(*c->entries));
	c->serials = xcalloc(c->n + 1, sizeof(*c->serials));
	for (size_t i = 0; i < c->n; i++) {
		c->serials[i] = xstrdup(db_value(res, 0, (int)i, 0));
		c->entries[i].serial = c->serials[i];
		c->entries[i].revoked_at =
		    (time_t)atoll(db_value(res, 0, (int)i, 1));
		c->entries[i].reason = crl_reason(db_value(res, 0, (int)i, 2));
		char *more = xasprintf("%s%s/%lld/%d;", all, c->serials[i],
		    (long long)c->entries[i].revoked_at,
		    (int)c->entries[i].reason);
		free(all);
		all = more;
	}
	crypto_sha256_hex(all, strlen(all), c->digest);
	free(all);
	c->now = time(NULL);
	cache = crl_cache_of(c->ca->name);
	if (cache != NULL && cache->der != NULL &&
	    strcmp(cache->digest, c->digest) == 0 &&
	    c->now - cache->made < 3600) {
		http_reply_raw(c->req, 200, "application/pkix-crl", cache->der,
		    cache->len);
		return;
	}
	work_submit(crl_sign, crl_on_signed, c);
}

static void
crl_sign(void *arg)
{
	struct crl *c = arg;

	c->rc = localca_crl(c->ca, c->entries, c->n, c->now,
	    issuance.cfg.crl_hours, &c->der, &c->len);
}

static void
crl_on_signed(void *arg)
{
	struct crl *c = arg;
	struct crl_cache *cache = crl_cache_of(c->ca->name);

	if (c->rc != 0) {
		log_error(c->req->id, "msg=crl_failed ca=%s", c->ca->name);
		http_reply_error(c->req, 500, "INTERNAL", NULL,
		    "服务器内部错误");
		return;
	}
	if (cache != NULL) {
		free(cache->der);
		cache->der = xmalloc(c->len);
		memcpy(cache->der, c->der, c->len);
		cache->len = c->len;
		cache->made = c->now;
		snprintf(cache->digest, sizeof(cache->digest), "%s", c->digest);
	}
	http_reply_raw(c->req, 200, "application/pkix-crl", c->der, c->len);
}

/* ---- GET /api/v1/interop/certs/{serial}/status,
 *      GET /api/v1/interop/cert-ids/{cert_id}/status ---------------------
 * Signed (X-Platform, X-Timestamp, X-Nonce, X-Signature); a nonce is kept
 * in Redis for twice the timestamp window, so a replay inside the window is
 * refused. A serial two issuers share answers 409 SERIAL_AMBIGUOUS unless
 * the caller names the issuer (issuer=) or asks by cert id. */

struct interop {
	struct http_req *req;
	char platform[40];
	char serial[65];
	char *issuer;  /* issuer= or NULL */
	char *cert_id; /* by cert id, or NULL */
};

static void
interop_free(void *p)
{
	struct interop *in = p;

	free(in->issuer);
	free(in->cert_id);
	free(in);
}

static void interop_on_nonce(void *arg, const struct kv_reply *reply);
static void interop_on_rows(void *arg, const struct db_result *res);

/* Checks the signed headers and the platform= parameter; answers and
 * returns -1 on a failure. */
static int
interop_authenticate(struct http_req *req, const char **platform_out)
{
	const char *platform = http_header(req, "X-Platform");
	const char *ts = http_header(req, "X-Timestamp");
	const char *nonce = http_header(req, "X-Nonce");
	const char *sig = http_header(req, "X-Signature");
	const char *secret;
	char *canonical, *query_platform;
	int sig_ok;

	if (ts == NULL ||
	    cert_interop_timestamp_ok(ts, time(NULL),
	        issuance.cfg.interop_skew) != 0) {
		http_reply_error(req, 401, "TIMESTAMP_INVALID", NULL,
		    "X-Timestamp 缺失或与服务器时间相差过大");
		return -1;
	}
	if (platform == NULL ||
	    (secret = cert_platform_secret(issuance.secrets, issuance.nsecrets,
	         platform)) == NULL) {
		http_reply_error(req, 401, "PLATFORM_UNKNOWN", NULL,
		    "未知的平台");
		return -1;
	}
	if (!cert_interop_nonce_ok(nonce)) {
		http_reply_error(req, 401, "NONCE_INVALID", NULL,
		    "X-Nonce 缺失或格式错误（16 至 64 位字母、数字、- 或 _）");
		return -1;
	}
	canonical = cert_interop_canonical(req->method, req->path, req->query,
	    ts, nonce);
	sig_ok = sig != NULL &&
	    cert_interop_signature_ok(secret, canonical, sig) == 0;
	free(canonical);
	if (!sig_ok) {
		log_info(req->id, "msg=interop_bad_signature platform=%s",
		    platform);
		http_reply_error(req, 401, "BAD_SIGNATURE", NULL,
		    "签名验证失败");
		return -1;
	}
	query_platform = http_query_param(req, "platform");
	if (query_platform == NULL) {
		http_reply_error(req, 400, "BAD_REQUEST", "platform",
		    "缺少 platform 参数");
		return -1;
	}
	if (strcmp(query_platform, platform) != 0) {
		free(query_platform);
		http_reply_error(req, 403, "PLATFORM_MISMATCH", "platform",
		    "platform 参数与 X-Platform 不一致");
		return -1;
	}
	free(query_platform);
	*platform_out = platform;
	return 0;
}

/* Takes the nonce (SET NX EX), then asks the registry. */
static void
interop_take_nonce(struct interop *in)
{
	struct http_req *req = in->req;
	char *key = xasprintf("%s%s:%s", store_interop_nonce_prefix,
	    in->platform, http_header(req, "X-Nonce"));
	char ttl[24];

	snprintf(ttl, sizeof(ttl), "%ld", 2 * issuance.cfg.interop_skew);
	const char *argv[] = {"SET", key, "1", "NX", "EX", ttl};
	kv_command(issuance.svc.kv, interop_on_nonce, in, 6, argv, NULL);
	free(key);
}

static void
interop_status(struct http_req *req)
{
	const char *platform;
	size_t n = strlen(req->params[0]);
	struct interop *in;

	if (interop_authenticate(req, &platform) != 0)
		return;
	in = xcalloc(1, sizeof(*in));
	in->req = req;
	snprintf(in->platform, sizeof(in->platform), "%s", platform);
	http_req_attach(req, in, interop_free);
	in->issuer = http_query_param(req, "issuer");
	if (in->issuer != NULL &&
	    (in->issuer[0] == '\0' || strlen(in->issuer) > 1024)) {
		http_reply_error(req, 400, "BAD_REQUEST", "issuer",
		    "issuer 须为签发者 DN");
		return;
	}
	if (n == 0 || n > 64 ||
	    strspn(req->params[0], "0123456789abcdefABCDEF") != n) {
		issuance_refuse(req, "INTEROP_CERT_NOT_FOUND");
		return;
	}
	for (size_t i = 0; i <= n; i++)
		in->serial[i] =
		    (char)(req->params[0][i] >= 'a' && req->params[0][i] <= 'f'
		            ? req->params[0][i] - 'a' + 'A'
		            : req->params[0][i]);
	interop_take_nonce(in);
}

static void
interop_status_by_id(struct http_req *req)
{
	const char *platform;
	struct interop *in;

	if (interop_authenticate(req, &platform) != 0)
		return;
	in = xcalloc(1, sizeof(*in));
	in->req = req;
	snprintf(in->platform, sizeof(in->platform), "%s", platform);
	http_req_attach(req, in, interop_free);
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "INTEROP_CERT_NOT_FOUND");
		return;
	}
	in->cert_id = xstrdup(req->params[0]);
	interop_take_nonce(in);
}

static void
interop_on_nonce(void *arg, const struct kv_reply *reply)
{
	struct interop *in = arg;
	struct http_req *req = in->req;

	if (reply == NULL || kv_reply_type(reply) == KV_ERROR) {
		http_reply_unavailable(req, "redis");
		return;
	}
	if (kv_reply_type(reply) == KV_NIL) {
		log_info(req->id, "msg=interop_replay platform=%s",
		    in->platform);
		http_reply_error(req, 401, "NONCE_REPLAYED", NULL,
		    "该请求已处理过（X-Nonce 重复），请使用新的 X-Nonce");
		return;
	}
	if (in->cert_id != NULL) {
		const char *p[] = {in->cert_id, in->platform};
		db_query(issuance.svc.db, store_interop_by_id_sql, 2, p,
		    interop_on_rows, in);
		return;
	}
	const char *p[] = {in->serial, in->platform, in->issuer};
	db_query(issuance.svc.db, store_interop_sql, 3, p, interop_on_rows, in);
}

/* Two or more issuers share the serial asked without issuer=. */
static int
interop_ambiguous(const struct db_result *res)
{
	int n = db_rows(res, 0);

	for (int i = 1; i < n; i++)
		if (strcmp(db_value(res, 0, i, 8), db_value(res, 0, 0, 8)) != 0)
			return 1;
	return 0;
}

static void
interop_on_rows(void *arg, const struct db_result *res)
{
	struct interop *in = arg;
	struct http_req *req = in->req;
	const char *reason;
	json_t *platforms, *body;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) < 1) {
		issuance_refuse(req, "INTEROP_CERT_NOT_FOUND");
		return;
	}
	if (interop_ambiguous(res)) {
		json_t *candidates = json_array();

		for (int i = 0; i < db_rows(res, 0); i++)
			json_array_append_new(candidates,
			    json_pack("{s:s, s:s, s:s}", "issuer",
			        db_value(res, 0, i, 8), "serial",
			        db_value(res, 0, i, 9), "cert_id",
			        db_value(res, 0, i, 6)));
		http_reply_json(req, 409,
		    json_pack("{s:{s:s, s:s, s:o}}", "error", "code",
		        "SERIAL_AMBIGUOUS", "message",
		        "多个签发者使用了该序列号，请同时提供 issuer 或按证书 ID 查询",
		        "candidates", candidates));
		return;
	}
	reason = cert_interop_reason((time_t)atoll(db_value(res, 0, 0, 0)),
	    (time_t)atoll(db_value(res, 0, 0, 1)), time(NULL),
	    db_bool(res, 0, 0, 2), db_bool(res, 0, 0, 3),
	    db_bool(res, 0, 0, 5));
	platforms = json_loads(db_value(res, 0, 0, 4), 0, NULL);
	body = json_pack("{s:b, s:s?, s:o, s:o}", "valid", reason == NULL,
	    "reason", reason, "not_after", time_json(db_value(res, 0, 0, 1)),
	    "platforms", platforms ? platforms : json_array());
	json_object_set_new(body, "cert_id",
	    json_string(db_value(res, 0, 0, 6)));
	json_object_set_new(body, "issuer",
	    json_string(db_value(res, 0, 0, 8)));
	json_object_set_new(body, "serial",
	    json_string(db_value(res, 0, 0, 9)));
	json_object_set_new(body, "successor_serial",
	    nullable(db_value(res, 0, 0, 7)));
	http_reply_json(req, 200, body);
}

/* ---- the route table --------------------------------------------------- */

const struct http_route issuance_routes[] = {
    {"GET", "/api/v1/certs", cert_list, 0},
    {"GET", "/api/v1/certs/crl/{ca}", cert_crl, 0},
    {"POST", "/api/v1/cert-imports", cert_import, ISSUANCE_IMPORT_MAX_BODY},
    {"GET", "/api/v1/cert-imports/{id}", cert_import_get, 0},
    {"POST", "/api/v1/certs/{id}/renewal/challenge", cert_renewal_challenge, 0},
    {"POST", "/api/v1/certs/{id}/renewal", cert_renewal, 64 * 1024},
    {"POST", "/api/v1/certs/{id}/revoke", cert_revoke, 0},
    {"POST", "/api/v1/certs/{id}/cancel", cert_cancel, 0},
    {"POST", "/api/v1/certs/{id}/issue/challenge", cert_issue_challenge, 0},
    {"POST", "/api/v1/certs/{id}/issue", cert_issue, 64 * 1024},
    {"POST", "/api/v1/certs/{id}/change", cert_change, 0},
    {"GET", "/api/v1/interop/certs/{serial}/status", interop_status, 0},
    {"GET", "/api/v1/interop/cert-ids/{cert_id}/status", interop_status_by_id,
        0},
};
const size_t issuance_nroutes = ARRAY_LEN(issuance_routes);
