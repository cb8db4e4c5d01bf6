/* notices — accepting a notice (proto/events/notice.requested.json) inside a
 * consumer's transaction, the in-app inbox (GET /api/v1/messages, mark
 * read) and the operators' view of the SMS dead letters (list, resend).
 * The texts are notice_text.c's; delivery is deliver.c's. */
#include "auth.h"

#include "bus.h"
#include "db.h"
#include "log.h"
#include "notice_text.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_DEFAULT 20
#define PAGE_MAX 100

/* ---- accepting a notice (consumer threads) ------------------------------ */

static int
notice_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || strchr("_.:-", s[i])))
			return 0;
	return 1;
}

static int
channel_on(json_t *channels, const char *name)
{
	size_t i;
	json_t *v;

	if (!json_is_array(channels))
		return 1; /* default both */
	json_array_foreach(channels, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), name) == 0)
			return 1;
	}
	return 0;
}

/* 1 when the RFC 3339 time t is more than max_age seconds ago. */
static int
stale(const char *t, long max_age)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || strptime(t, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return (long)(time(NULL) - timegm(&tm)) > max_age;
}

/* The SMS round can claim a queued row once the consumer's transaction has
 * committed it: a kick before the commit found nothing and rested. */
static void
kick_after_commit(void *arg, int committed)
{
	if (committed)
		auth_sweep_kick_sms();
}

int
auth_notice_accept(struct bus_tx *tx, const char *source,
    const char *event_time, json_t *data)
{
	const char *notice =
	    json_string_value(json_object_get(data, "notice_id"));
	const char *kind = json_string_value(json_object_get(data, "kind"));
	json_t *recipient = json_object_get(data, "recipient");
	json_t *params = json_object_get(data, "params");
	json_t *channels = json_object_get(data, "channels");
	struct notice_text *t = xcalloc(1, sizeof(*t));
	const char *missing = NULL;
	char reason[96];
	int rc = 0;

	if (!notice_id_ok(notice) || kind == NULL ||
	    !json_is_object(recipient)) {
		/* a producer's bug: logged, acknowledged, never retried */
		log_error(NULL, "msg=notice_malformed source=%s", source);
		free(t);
		return 0;
	}
	char *rtext = json_dumps(recipient, JSON_COMPACT);
	int old = stale(event_time, auth.cfg.notice_max_age_s);
	if (old || notice_render(kind, notice, params, t, &missing) != 0) {
		if (old)
			snprintf(reason, sizeof(reason), "stale");
		else
			snprintf(reason, sizeof(reason), "bad_params:%s",
			    missing);
		const char *p[] = {notice, kind, source, rtext, reason};
		rc = bus_tx_exec(tx, store_notice_undeliverable_sql, 5, p) < 0
		    ? -1
		    : 0;
		log_warn(NULL,
		    "msg=notice_undeliverable notice=%s kind=%s reason=%s",
		    notice, kind, reason);
		free(rtext);
		free(t);
		return rc;
	}
	json_t *sp = notice_sms_params(params, t);
	char *ptext = json_dumps(params, JSON_COMPACT);
	char *sptext = json_dumps(sp, JSON_COMPACT);
	int sms = channel_on(channels, "sms");
	const char *p[] = {notice, kind, source, rtext, t->title, t->body,
	    ptext, sptext, t->sms,
	    channel_on(channels, "inbox") ? "true" : "false",
	    sms ? "true" : "false"};
	struct bus_rows *rows = NULL;
	if (bus_tx_query(tx, store_notice_accept_sql, 11, p, &rows) != 0 ||
	    bus_rows_count(rows) != 1) {
		rc = -1;
	} else {
		const char *outcome = bus_rows_value(rows, 0, 0);
		log_info(NULL, "msg=notice_%s notice=%s kind=%s%s%s", outcome,
		    notice, kind, bus_rows_value(rows, 0, 2) ? " reason=" : "",
		    bus_rows_value(rows, 0, 2) ? bus_rows_value(rows, 0, 2)
		                               : "");
		if (sms && strcmp(outcome, "delivered") == 0)
			bus_tx_after_commit(tx, kick_after_commit, NULL);
	}
	bus_rows_free(rows);
	free(ptext);
	free(sptext);
	json_decref(sp);
	free(rtext);
	free(t);
	return rc;
}

/* ---- paging helpers ------------------------------------------------------ */

struct page_req {
	struct http_req *req;
	char cursor[24];
	int limit;
	int unread_only;
};

/* Reads cursor (a seq) and limit; answers 422 itself. */
static struct page_req *
page_read(struct http_req *req)
{
	struct page_req *st = xcalloc(1, sizeof(*st));
	char *v, *end;

	st->req = req;
	st->limit = PAGE_DEFAULT;
	http_req_attach(req, st, free);
	v = http_query_param(req, "cursor");
	if (v != NULL) {
		size_t n = strlen(v);
		int ok = n > 0 && n < 19 && strspn(v, "0123456789") == n;
		if (ok)
			snprintf(st->cursor, sizeof(st->cursor), "%s", v);
		free(v);
		if (!ok) {
			http_reply_error(req, 422, "FIELD_INVALID", "cursor",
			    "分页游标无效");
			return NULL;
		}
	}
	v = http_query_param(req, "limit");
	if (v != NULL) {
		long n = strtol(v, &end, 10);
		int ok = *v != '\0' && *end == '\0' && n >= 1 && n <= PAGE_MAX;
		free(v);
		if (!ok) {
			http_reply_error(req, 422, "FIELD_INVALID", "limit",
			    "limit 须为 1 至 100 的整数");
			return NULL;
		}
		st->limit = (int)n;
	}
	return st;
}

/* items and next_cursor of a page read with limit + 1 rows (seq, JSON). */
static json_t *
page_items(const struct db_result *res, int stmt, int limit, json_t **next)
{
	json_t *items = json_array();
	int n = db_rows(res, stmt);

	for (int i = 0; i < n && i < limit; i++) {
		json_t *item = json_loads(db_value(res, stmt, i, 1), 0, NULL);
		if (item == NULL)
			fatal("notice item JSON unreadable");
		json_array_append_new(items, item);
	}
	*next = n > limit ? json_string(db_value(res, stmt, limit - 1, 0))
	                  : json_null();
	return items;
}

/* ---- GET /api/v1/messages ------------------------------------------------ */

static void messages_on_page(void *arg, const struct db_result *res);

static void
messages_load(struct http_req *req)
{
	struct page_req *st;
	struct db_batch *b;
	char *v;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return;
	}
	if ((st = page_read(req)) == NULL)
		return;
	v = http_query_param(req, "unread");
	if (v != NULL) {
		int ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
		st->unread_only = strcmp(v, "true") == 0;
		free(v);
		if (!ok) {
			http_reply_error(req, 422, "FIELD_INVALID", "unread",
			    "unread 须为 true 或 false");
			return;
		}
	}
	b = db_batch_new();
	store_messages_page(b, req->session->account_id,
	    st->cursor[0] ? st->cursor : NULL, st->limit + 1, st->unread_only);
	store_messages_unread(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, messages_on_page, st);
}

static void
messages_on_page(void *arg, const struct db_result *res)
{
	struct page_req *st = arg;
	json_t *next, *items;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	items = page_items(res, 0, st->limit, &next);
	http_reply_json(st->req, 200,
	    json_pack("{s:o, s:o, s:I}", "items", items, "next_cursor", next,
	        "unread", (json_int_t)atoll(db_value(res, 1, 0, 0))));
}

void
auth_messages_list(struct http_req *req)
{
	session_require(req, messages_load);
}

/* ---- POST /api/v1/messages/{id}/read and /read-all ----------------------- */

static void message_on_read(void *arg, const struct db_result *res);

static void
message_read(struct http_req *req)
{
	struct db_batch *b;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "消息不存在");
		return;
	}
	b = db_batch_new();
	store_message_read(b, req->session->account_id, req->params[0]);
	store_messages_unread(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, message_on_read, req);
}

static void
message_on_read(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "消息不存在");
		return;
	}
	json_t *item = json_loads(db_value(res, 0, 0, 0), 0, NULL);
	if (item == NULL)
		fatal("message JSON unreadable");
	http_reply_json(req, 200,
	    json_pack("{s:o, s:I}", "message", item, "unread",
	        (json_int_t)atoll(db_value(res, 1, 0, 0))));
}

void
auth_message_read(struct http_req *req)
{
	session_require(req, message_read);
}

static void read_all_on_done(void *arg, const struct db_result *res);

static void
read_all(struct http_req *req)
{
	struct db_batch *b;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return;
	}
	b = db_batch_new();
	store_messages_read_all(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, read_all_on_done, req);
}

static void
read_all_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	http_reply_json(req, 200,
	    json_pack("{s:I, s:i}", "marked", (json_int_t)db_affected(res, 0),
	        "unread", 0));
}

void
auth_messages_read_all(struct http_req *req)
{
	session_require(req, read_all);
}

/* ---- operators: GET /api/v1/sms/dead-letters, resend --------------------- */

static void dead_on_page(void *arg, const struct db_result *res);

static void
dead_load(struct http_req *req)
{
	struct page_req *st;
	struct db_batch *b;

	if (session_require_staff(req, "operator") != 0)
		return;
	if ((st = page_read(req)) == NULL)
		return;
	b = db_batch_new();
	store_sms_dead_page(b, st->cursor[0] ? st->cursor : NULL,
	    st->limit + 1);
	db_batch_run(auth.svc.db, b, dead_on_page, st);
}

static void
dead_on_page(void *arg, const struct db_result *res)
{
	struct page_req *st = arg;
	json_t *next, *items;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	items = page_items(res, 0, st->limit, &next);
	http_reply_json(st->req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void
auth_sms_dead_list(struct http_req *req)
{
	session_require(req, dead_load);
}

static void resend_on_done(void *arg, const struct db_result *res);

static void
resend(struct http_req *req)
{
	struct db_batch *b;

	if (session_require_staff(req, "operator") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "短信不存在");
		return;
	}
	b = db_batch_new();
	store_sms_resend(b, req->params[0]);
	db_batch_run(auth.svc.db, b, resend_on_done, req);
}

static void
resend_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL,
		    "短信不存在或不在死信中");
		return;
	}
	json_t *item = json_loads(db_value(res, 0, 0, 0), 0, NULL);
	if (item == NULL)
		fatal("dead letter JSON unreadable");
	log_info(req->id, "msg=sms_resend id=%s staff=%s", req->params[0],
	    req->session->staff_id);
	auth_sweep_kick_sms();
	http_reply_json(req, 200, item);
}

void
auth_sms_dead_resend(struct http_req *req)
{
	session_require(req, resend);
}
