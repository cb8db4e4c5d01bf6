/* review — the reviewers' side (staff role reviewer): the queue of pending
 * records and administrator applications (applications.c), oldest first,
 * with the time waited against the one-working-day target and the secrets
 * masked; a record in full (reviewers and operators, each read audited);
 * claim and release, so that two reviewers never work on (and never decide)
 * the same record; approve, and reject with an opinion. Decisions are
 * record_decide() in the store: status, history and event in one statement,
 * with the decision's audit entry in the same transaction. */
#include "enterprise.h"

#include "access.h"
#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "util.h"
#include "workday.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_LIMIT_DEFAULT 20
#define QUEUE_LIMIT_MAX 100
#define CURSOR_TIME_LEN 27 /* 2026-11-26T09:00:00.123456Z */
#define MAX_EXCEPTIONS 800

/* RFC 3339 UTC to the second, like every time the API answers. */
static void
time_seconds(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The queue and the decisions: reviewers (access.h). */
static int
require_reviewer(struct http_req *req)
{
	return access_require(req, ACCESS_REVIEW, ACCESS_PLATFORM) ==
	        ACCESS_NONE
	    ? -1
	    : 0;
}

/* A masked copy of a secret for a list, or JSON null. */
static json_t *
masked(const char *s)
{
	char out[64];

	if (s == NULL)
		return json_null();
	access_mask(s, out, sizeof(out));
	return json_string(out);
}

/* ---- GET /api/v1/review/queue ------------------------------------------ */

/* The queue's cursor is base64url("<submitted_at µs>|<record id>"). */
static int
cursor_decode(const char *cursor, char at[CURSOR_TIME_LEN + 1], char id[37])
{
	unsigned char *raw = NULL;
	size_t len = 0;
	int ok;

	if (strlen(cursor) > 128 ||
	    crypto_base64url_decode(&raw, &len, cursor, strlen(cursor)) != 0)
		return -1;
	ok = len == CURSOR_TIME_LEN + 1 + 36 && raw[CURSOR_TIME_LEN] == '|' &&
	    strspn((const char *)raw, "0123456789-T:.Z") == CURSOR_TIME_LEN;
	if (ok) {
		memcpy(at, raw, CURSOR_TIME_LEN);
		at[CURSOR_TIME_LEN] = '\0';
		memcpy(id, raw + CURSOR_TIME_LEN + 1, 36);
		id[36] = '\0';
		ok = uuid_valid(id);
	}
	free(raw);
	return ok ? 0 : -1;
}

static char *
cursor_encode(const char *at, const char *id)
{
	char raw[CURSOR_TIME_LEN + 1 + 37];

	snprintf(raw, sizeof(raw), "%s|%s", at, id);
	return crypto_base64url_encode(raw, strlen(raw));
}

struct queue_op {
	int limit;
};

static json_int_t
int_at(const struct db_result *res, int row, int col)
{
	return strtoll(db_value(res, 0, row, col), NULL, 10);
}

/* The licence comparison of a record row, null for an application. */
static json_t *
licence_check_at(const struct db_result *res, int i)
{
	json_t *data, *check;

	if (db_value(res, 0, i, 18) == NULL)
		return json_null();
	data = json_loads(db_value(res, 0, i, 18), 0, NULL);
	check = ent_licence_check(db_value(res, 0, i, 17), data);
	json_decref(data);
	return check;
}

static void
queue_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct queue_op *op = req->data;
	struct ent_day_exception ex[MAX_EXCEPTIONS];
	size_t nex = 0;
	json_t *items, *next = json_null();
	int rows;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	for (int i = 0; i < db_rows(res, 1) && nex < MAX_EXCEPTIONS; i++)
		if (ent_workday_parse_date(db_value(res, 1, i, 0),
		        &ex[nex].day) == 0)
			ex[nex++].workday = db_bool(res, 1, i, 1);
	rows = db_rows(res, 0);
	items = json_array();
	for (int i = 0; i < rows && i < op->limit; i++) {
		int64_t submitted = int_at(res, i, 4);
		int64_t now = int_at(res, i, 12);
		int64_t due = ent_workday_due_ms(ex, nex, submitted);
		char due_at[32];

		time_seconds(due, due_at);
		json_t *item = json_object();

		json_object_set_new(item, "id",
		    json_string(db_value(res, 0, i, 0)));
		json_object_set_new(item, "kind",
		    json_string(db_value(res, 0, i, 13)));
		json_object_set_new(item, "name",
		    ent_json_str(db_value(res, 0, i, 1)));
		json_object_set_new(item, "uscc",
		    json_string(db_value(res, 0, i, 2)));
		json_object_set_new(item, "status", json_string("pending"));
		json_object_set_new(item, "submitted_at",
		    json_string(db_value(res, 0, i, 3)));
		json_object_set_new(item, "resubmission",
		    json_boolean(db_bool(res, 0, i, 6)));
		json_object_set_new(item, "change",
		    json_boolean(db_bool(res, 0, i, 7)));
		json_object_set_new(item, "seq",
		    json_integer(int_at(res, i, 8)));
		json_object_set_new(item, "waited_seconds",
		    json_integer(int_at(res, i, 11)));
		json_object_set_new(item, "due_at", json_string(due_at));
		json_object_set_new(item, "overdue", json_boolean(now > due));
		json_object_set_new(item, "claimed_by",
		    ent_json_str(db_value(res, 0, i, 9)));
		json_object_set_new(item, "claimed_until",
		    ent_json_str(db_value(res, 0, i, 10)));
		/* Secrets appear in lists only masked. */
		json_object_set_new(item, "legal_rep_id_number",
		    masked(db_value(res, 0, i, 14)));
		json_object_set_new(item, "legal_rep_phone",
		    masked(db_value(res, 0, i, 15)));
		json_object_set_new(item, "applicant_id_number",
		    ent_json_str(db_value(res, 0, i, 16)));
		json_object_set_new(item, "licence_check",
		    licence_check_at(res, i));
		json_array_append_new(items, item);
	}
	if (rows > op->limit) {
		char *c = cursor_encode(db_value(res, 0, op->limit - 1, 5),
		    db_value(res, 0, op->limit - 1, 0));
		json_decref(next);
		next = json_string(c);
		free(c);
	}
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

static void
queue(struct http_req *req)
{
	char *limit_s, *cursor, *kind_s, after[CURSOR_TIME_LEN + 1], id[37];
	const char *kind = NULL;
	struct queue_op *op;
	struct db_batch *b;
	long limit = QUEUE_LIMIT_DEFAULT;
	int have_cursor = 0;

	if (require_reviewer(req) != 0)
		return;
	limit_s = http_query_param(req, "limit");
	if (limit_s != NULL) {
		char *end;
		limit = strtol(limit_s, &end, 10);
		int bad = *limit_s == '\0' || *end != '\0' || limit < 1 ||
		    limit > QUEUE_LIMIT_MAX;
		free(limit_s);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "limit",
			    "limit 应为 1 至 100 的整数");
			return;
		}
	}
	cursor = http_query_param(req, "cursor");
	if (cursor != NULL) {
		int bad = cursor_decode(cursor, after, id) != 0;
		free(cursor);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "cursor",
			    "cursor 无效");
			return;
		}
		have_cursor = 1;
	}
	kind_s = http_query_param(req, "kind");
	if (kind_s != NULL) {
		if (strcmp(kind_s, "record") == 0)
			kind = "record";
		else if (strcmp(kind_s, "admin_application") == 0)
			kind = "admin_application";
		free(kind_s);
		if (kind == NULL) {
			http_reply_error(req, 400, "BAD_REQUEST", "kind",
			    "kind 应为 record 或 admin_application");
			return;
		}
	}
	op = xcalloc(1, sizeof(*op));
	op->limit = (int)limit;
	http_req_attach(req, op, free);
	b = db_batch_new();
	store_queue(b, op->limit, have_cursor ? after : NULL,
	    have_cursor ? id : NULL, kind);
	store_workday_exceptions(b);
	db_batch_run(ent.svc.db, b, queue_on_loaded, req);
}

void
ent_review_queue(struct http_req *req)
{
	session_require(req, queue);
}

/* ---- GET /api/v1/review/records/{id} ----------------------------------- */

static void
reply_not_found(struct http_req *req)
{
	http_reply_error(req, 404, "NOT_FOUND", NULL, "企业信息不存在");
}

/* Replies the record of statements rec/hist with the claim fields. */
static void
reply_record(struct http_req *req, const struct db_result *res, int rec,
    int hist)
{
	json_t *o;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	o = ent_record_json(res, rec, hist, 1);
	if (o == NULL) {
		reply_not_found(req);
		return;
	}
	http_reply_json(req, 200, o);
}

/* GET: record → record_on_loaded. Reviewers and operators read any record
 * in full; each read is audited (with the enterprise's USCC) in the read's
 * own batch, one transaction: no answer goes out when the audit entry could
 * not be written, and a record that does not exist records nothing. */

static void
record_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	json_t *o;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	o = ent_record_json(res, 0, 1, 1);
	if (o == NULL) {
		reply_not_found(req);
		return;
	}
	http_reply_json(req, 200, o);
}

static void
record(struct http_req *req)
{
	struct db_batch *b;

	if (access_require(req, ACCESS_ENTERPRISE_FULL, ACCESS_PLATFORM) ==
	    ACCESS_NONE)
		return;
	if (!uuid_valid(req->params[0])) {
		reply_not_found(req);
		return;
	}
	const struct audit_entry e = {"enterprise.record.read_full", "record",
	    req->params[0], NULL, NULL, NULL};
	b = db_batch_new();
	store_record_by_id(b, req->params[0]);
	store_history_by_id(b, req->params[0]);
	audit_add_sql(b, req, &e, store_record_read_audit_sql, req->params[0]);
	db_batch_run(ent.svc.db, b, record_on_loaded, req);
}

void
ent_review_record(struct http_req *req)
{
	session_require(req, record);
}

/* ---- claim, release, approve, reject ----------------------------------- */

/* One action on a record: action_start (checks) → action_on_loaded (the
 * record's USCC, which never changes, for the audit entry) → the action,
 * the record, its history and the audit entry in one transaction →
 * action_on_done. The answer is the full record, so a claim or release is
 * audited as a full read; approve and reject as the decision. */
enum review_action { ACT_CLAIM, ACT_RELEASE, ACT_APPROVE, ACT_REJECT };

struct action_op {
	enum review_action act;
	json_t *body;        /* approve, reject */
	const char *opinion; /* borrowed from body */
};

static void
action_op_free(void *p)
{
	struct action_op *op = p;

	json_decref(op->body);
	free(op);
}

/* The action's statement is 0; the record 1, its history 2. */
static void
action_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (ent_reply_refused(req, res))
		return;
	if (res->status == DB_OK)
		log_info(req->id, "msg=review_action path=%s staff=%s",
		    req->path, req->session->staff_id);
	reply_record(req, res, 1, 2);
}

static void
action_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	struct action_op *op = req->data;
	const char *id = req->params[0], *staff = req->session->staff_id;
	const char *action = "enterprise.record.read_full";
	char event_id[37];

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		reply_not_found(req);
		return;
	}
	struct db_batch *b = db_batch_new();
	switch (op->act) {
	case ACT_CLAIM:
		store_record_claim(b, id, staff, ent.cfg.claim_ttl);
		break;
	case ACT_RELEASE:
		store_record_release(b, id, staff);
		break;
	case ACT_APPROVE:
	case ACT_REJECT:
		uuid_v4(event_id);
		store_record_decide(b, id, staff, op->act == ACT_APPROVE,
		    op->opinion, event_id);
		action = op->act == ACT_APPROVE ? "enterprise.record.approved"
		                                : "enterprise.record.rejected";
		break;
	}
	json_t *after = op->opinion != NULL
	    ? json_pack("{s:s}", "opinion", op->opinion)
	    : NULL;
	const struct audit_entry e = {action, "record", id,
	    db_value(res, 0, 0, REC_USCC), NULL, after};
	store_record_by_id(b, id);
	store_history_by_id(b, id);
	audit_add(b, req, &e);
	json_decref(after);
	db_batch_run(ent.svc.db, b, action_on_done, req);
}

/* Checks the caller, the record id and (approve, reject) the opinion, then
 * loads the record. */
static void
action_start(struct http_req *req, enum review_action act)
{
	struct action_op *op;
	struct ent_err err;
	json_t *body = NULL;

	if (require_reviewer(req) != 0)
		return;
	if ((act == ACT_APPROVE || act == ACT_REJECT) &&
	    http_read_json(req, &body) != 0)
		return;
	op = xcalloc(1, sizeof(*op));
	op->act = act;
	op->body = body;
	http_req_attach(req, op, action_op_free);
	if (body != NULL &&
	    ent_opinion_parse(body, act == ACT_REJECT, &op->opinion, &err) !=
	        0) {
		ent_reply_err(req, &err);
		return;
	}
	if (!uuid_valid(req->params[0]) ||
	    !uuid_valid(req->session->staff_id)) {
		reply_not_found(req);
		return;
	}
	struct db_batch *b = db_batch_new();
	store_record_by_id(b, req->params[0]);
	db_batch_run(ent.svc.db, b, action_on_loaded, req);
}

static void
claim(struct http_req *req)
{
	action_start(req, ACT_CLAIM);
}

void
ent_review_claim(struct http_req *req)
{
	session_require(req, claim);
}

static void
release(struct http_req *req)
{
	action_start(req, ACT_RELEASE);
}

void
ent_review_release(struct http_req *req)
{
	session_require(req, release);
}

static void
decide(struct http_req *req, int approve)
{
	action_start(req, approve ? ACT_APPROVE : ACT_REJECT);
}

static void
approve(struct http_req *req)
{
	decide(req, 1);
}

void
ent_review_approve(struct http_req *req)
{
	session_require(req, approve);
}

static void
reject(struct http_req *req)
{
	decide(req, 0);
}

void
ent_review_reject(struct http_req *req)
{
	session_require(req, reject);
}
