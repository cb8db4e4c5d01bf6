/* audit — the operators' view of the audit trail (issue 12):
 * GET /api/v1/audit (newest first, keyset cursor pages) and
 * GET /api/v1/audit/export (CSV or JSON Lines, oldest first, streamed one
 * page of AUDIT_EXPORT_PAGE rows at a time, the next page read only when the
 * previous one has been written to the client). The chain itself is
 * appended by events.c through deploy/sql/auth/010_audit.sql. */
#include "auth.h"

#include "access.h"
#include "audit.h"
#include "bus.h"
#include "db.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LIST_DEFAULT 50
#define AUDIT_LIST_MAX 200
#define AUDIT_EXPORT_PAGE 1000
#define AUDIT_FILTER_MAX 128

/* Per-request state, freed with the request. */
struct audit_req {
	struct http_req *req;
	char *values[7]; /* the filter's strings, owned */
	struct audit_filter f;
	char after[24]; /* the cursor: a seq, "" for none */
	int limit;
	int csv;
	long long rows;
};

static void
audit_req_free(void *p)
{
	struct audit_req *st = p;

	for (size_t i = 0; i < ARRAY_LEN(st->values); i++)
		free(st->values[i]);
	free(st);
}

static int
reply_invalid(struct http_req *req, const char *field, const char *message)
{
	http_reply_error(req, 422, "FIELD_INVALID", field, message);
	return -1;
}

static int
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM). */
static int
rfc3339_ok(const char *s)
{
	size_t n = strlen(s), i = 19;

	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) ||
	    (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return 0;
	if (atoi(s + 5) < 1 || atoi(s + 5) > 12 || atoi(s + 8) < 1 ||
	    atoi(s + 8) > 31 || atoi(s + 11) > 23 || atoi(s + 14) > 59 ||
	    atoi(s + 17) > 60)
		return 0;
	if (s[i] == '.') {
		size_t j = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == j || i - j > 9)
			return 0;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
		return 1;
	return (s[i] == '+' || s[i] == '-') && n - i == 6 &&
	    digits(s + i + 1, 2) && s[i + 3] == ':' && digits(s + i + 4, 2) &&
	    atoi(s + i + 1) <= 23 && atoi(s + i + 4) <= 59;
}

static const char *const audit_services[] = {"auth", "enterprise", "orders",
    "payments", "issuance", NULL};

/* Reads the filters, the cursor and (list: limit; export: format) of the
 * query string into a new state attached to req. Answers 422 itself. */
static struct audit_req *
audit_read_query(struct http_req *req, int export)
{
	static const char *const names[] = {"uscc", "actor", "action",
	    "service", "object_id", "from", "to"};
	struct audit_req *st = xcalloc(1, sizeof(*st));
	char *v;

	st->req = req;
	http_req_attach(req, st, audit_req_free);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		v = st->values[i] = http_query_param(req, names[i]);
		if (v == NULL)
			continue;
		if (*v == '\0' || strlen(v) > AUDIT_FILTER_MAX) {
			reply_invalid(req, names[i], "筛选条件无效");
			return NULL;
		}
		if (i >= 5 && !rfc3339_ok(v)) {
			reply_invalid(req, names[i],
			    "时间须为 RFC 3339 格式，如 2024-05-01T08:00:00Z");
			return NULL;
		}
	}
	if (st->values[3] != NULL) {
		int known = 0;
		for (size_t i = 0; audit_services[i] != NULL; i++)
			known |= strcmp(st->values[3], audit_services[i]) == 0;
		if (!known) {
			reply_invalid(req, "service", "服务名称无效");
			return NULL;
		}
	}
	st->f =
	    (struct audit_filter){st->values[0], st->values[1], st->values[2],
	        st->values[3], st->values[4], st->values[5], st->values[6]};

	v = http_query_param(req, "cursor");
	if (v != NULL) {
		size_t n = strlen(v);
		int ok = n > 0 && n < 19 && digits(v, n);
		if (ok)
			snprintf(st->after, sizeof(st->after), "%s", v);
		free(v);
		if (!ok) {
			reply_invalid(req, "cursor", "分页游标无效");
			return NULL;
		}
	}
	st->limit = export ? AUDIT_EXPORT_PAGE : AUDIT_LIST_DEFAULT;
	v = http_query_param(req, export ? "format" : "limit");
	if (v != NULL && export) {
		st->csv = strcmp(v, "csv") == 0;
		int ok = st->csv || strcmp(v, "jsonl") == 0;
		free(v);
		if (!ok) {
			reply_invalid(req, "format",
			    "format 须为 csv 或 jsonl");
			return NULL;
		}
	} else if (v != NULL) {
		char *end;
		long n = strtol(v, &end, 10);
		int ok =
		    *v != '\0' && *end == '\0' && n >= 1 && n <= AUDIT_LIST_MAX;
		free(v);
		if (!ok) {
			reply_invalid(req, "limit",
			    "limit 须为 1 至 200 的整数");
			return NULL;
		}
		st->limit = (int)n;
	} else if (export) {
		st->csv = 1; /* the default format */
	}
	return st;
}

/* ---- GET /api/v1/audit --------------------------------------------------- */

static void list_on_page(void *arg, const struct db_result *res);

static void
list_load(struct http_req *req)
{
	struct audit_req *st;
	struct db_batch *b;

	if (access_require(req, ACCESS_AUDIT, ACCESS_PLATFORM) == ACCESS_NONE)
		return;
	if ((st = audit_read_query(req, 0)) == NULL)
		return;
	b = db_batch_new();
	/* One more than asked tells whether a next page exists. */
	store_audit_page(b, &st->f, AUDIT_PAGE_NEWEST,
	    st->after[0] ? st->after : NULL, st->limit + 1);
	db_batch_run(auth.svc.db, b, list_on_page, st);
}

static void
list_on_page(void *arg, const struct db_result *res)
{
	struct audit_req *st = arg;
	json_t *items = json_array(), *next = json_null();
	int n;

	if (res->status != DB_OK) {
		json_decref(items);
		http_reply_db_error(st->req, res);
		return;
	}
	n = db_rows(res, 0);
	for (int i = 0; i < n && i < st->limit; i++) {
		json_t *item = json_loads(db_value(res, 0, i, 1), 0, NULL);
		if (item == NULL)
			fatal("audit entry JSON unreadable");
		json_array_append_new(items, item);
	}
	if (n > st->limit) {
		json_decref(next);
		next = json_string(db_value(res, 0, st->limit - 1, 0));
	}
	http_reply_json(st->req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void
auth_audit_list(struct http_req *req)
{
	session_require(req, list_load);
}

/* ---- GET /api/v1/audit/export -------------------------------------------- */

static const char csv_header[] =
    "seq,event_id,service,action,actor_type,actor_id,identity_id,role,ip,"
    "request_id,object_type,object_id,uscc,before,after,occurred_at,"
    "recorded_at,hash\r\n";

static void export_fetch(struct http_req *req);
static void export_on_page(void *arg, const struct db_result *res);
static void export_finish(struct http_req *req);

static void export_on_audited(void *arg, const struct db_result *res);

/* An export takes the trail out of the platform: it is itself audited
 * (action audit.exported, with its format and filters) before the first
 * byte is sent. */
static void
export_start(struct http_req *req)
{
	static const char *const names[] = {"uscc", "actor", "action",
	    "service", "object_id", "from", "to"};
	struct audit_req *st;
	struct db_batch *b;

	if (access_require(req, ACCESS_AUDIT, ACCESS_PLATFORM) == ACCESS_NONE)
		return;
	if ((st = audit_read_query(req, 1)) == NULL)
		return;
	json_t *filters = json_object();
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (st->values[i] != NULL)
			json_object_set_new(filters, names[i],
			    json_string(st->values[i]));
	json_t *after = json_pack("{s:s, s:o}", "format",
	    st->csv ? "csv" : "jsonl", "filters", filters);
	const struct audit_entry e = {"audit.exported", "audit_export", req->id,
	    NULL, NULL, after};
	b = db_batch_new();
	audit_add(b, req, &e);
	json_decref(after);
	db_batch_run(auth.svc.db, b, export_on_audited, st);
}

static void
export_on_audited(void *arg, const struct db_result *res)
{
	struct audit_req *st = arg;
	struct http_req *req = st->req;
	char disposition[96];

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	snprintf(disposition, sizeof(disposition),
	    "attachment; filename=\"caplat-audit.%s\"",
	    st->csv ? "csv" : "jsonl");
	http_add_header(req, "Content-Disposition", disposition);
	log_info(req->id, "msg=audit_export_started staff=%s format=%s",
	    req->session->staff_id, st->csv ? "csv" : "jsonl");
	http_stream_start(req, 200,
	    st->csv ? "text/csv; charset=utf-8"
	            : "application/jsonl; charset=utf-8");
	if (st->csv) {
		struct evbuffer *buf = evbuffer_new();
		evbuffer_add(buf, csv_header, sizeof(csv_header) - 1);
		http_stream_chunk(req, buf, export_fetch);
		evbuffer_free(buf);
		return;
	}
	export_fetch(req);
}

/* The previous chunk is written: read the next page (or stop). */
static void
export_fetch(struct http_req *req)
{
	struct audit_req *st = req->data;
	struct db_batch *b;

	if (http_stream_gone(req)) {
		log_info(req->id, "msg=audit_export_stopped rows=%lld",
		    st->rows);
		http_stream_end(req, 0);
		return;
	}
	b = db_batch_new();
	store_audit_page(b, &st->f,
	    st->csv ? AUDIT_PAGE_COLUMNS : AUDIT_PAGE_JSON,
	    st->after[0] ? st->after : NULL, st->limit);
	db_batch_run(auth.svc.db, b, export_on_page, st);
}

/* RFC 4180: a field with a comma, quote or line break is quoted, quotes
 * doubled; NULL is an empty field. A field starting with = + - @, a tab or
 * a carriage return is written after a ' so that a spreadsheet shows it as
 * text and never runs it as a formula (an actor's request id, an object id
 * or a value in before/after may come from outside). */
static void
csv_field(struct evbuffer *out, const char *v)
{
	int guard;

	if (v == NULL)
		return;
	guard = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
	if (strpbrk(v, ",\"\r\n") == NULL) {
		if (guard)
			evbuffer_add(out, "'", 1);
		evbuffer_add(out, v, strlen(v));
		return;
	}
	evbuffer_add(out, "\"", 1);
	if (guard)
		evbuffer_add(out, "'", 1);
	for (const char *q; (q = strchr(v, '"')) != NULL; v = q + 1) {
		evbuffer_add(out, v, (size_t)(q - v));
		evbuffer_add(out, "\"\"", 2);
	}
	evbuffer_add(out, v, strlen(v));
	evbuffer_add(out, "\"", 1);
}

static void
export_on_page(void *arg, const struct db_result *res)
{
	struct audit_req *st = arg;
	struct http_req *req = st->req;
	struct evbuffer *buf;
	int n;

	if (res->status != DB_OK) {
		log_error(req->id, "msg=audit_export_failed rows=%lld",
		    st->rows);
		http_stream_end(req, 0);
		return;
	}
	if (http_stream_gone(req)) {
		export_fetch(req);
		return;
	}
	n = db_rows(res, 0);
	buf = evbuffer_new();
	for (int i = 0; i < n; i++) {
		if (st->csv) {
			for (int c = 0; c < 18; c++) {
				if (c > 0)
					evbuffer_add(buf, ",", 1);
				csv_field(buf, db_value(res, 0, i, c));
			}
			evbuffer_add(buf, "\r\n", 2);
		} else {
			const char *line = db_value(res, 0, i, 1);
			evbuffer_add(buf, line, strlen(line));
			evbuffer_add(buf, "\n", 1);
		}
	}
	st->rows += n;
	if (n > 0)
		snprintf(st->after, sizeof(st->after), "%s",
		    db_value(res, 0, n - 1, 0));
	if (n < st->limit) {
		/* The last page: send it, then end. */
		if (evbuffer_get_length(buf) > 0) {
			http_stream_chunk(req, buf, export_finish);
		} else {
			log_info(req->id, "msg=audit_export_done rows=%lld",
			    st->rows);
			http_stream_end(req, 1);
		}
		evbuffer_free(buf);
		return;
	}
	http_stream_chunk(req, buf, export_fetch);
	evbuffer_free(buf);
}

/* The last chunk is written (or the client went away meanwhile). */
static void
export_finish(struct http_req *req)
{
	struct audit_req *st = req->data;

	log_info(req->id, "msg=audit_export_done rows=%lld", st->rows);
	http_stream_end(req, !http_stream_gone(req));
}

void
auth_audit_export(struct http_req *req)
{
	session_require(req, export_start);
}

/* ---- entries of auth's own actions ---------------------------------------- */

void
auth_audit_add_as(struct db_batch *b, const struct http_req *req,
    const char *actor_type, const char *actor_id, const struct audit_entry *e)
{
	json_t *d = audit_event_data(req, e);
	json_t *actor = json_object_get(d, "actor");

	json_object_set_new(actor, "type", json_string(actor_type));
	json_object_set_new(actor, "id", json_string(actor_id));
	bus_outbox_add(b, "auth.audit.recorded", e->object_id, d);
	json_decref(d);
}
