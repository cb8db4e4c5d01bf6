/* handlers — personal info (profile), the enterprise record of the current
 * identity (read, save a draft, submit), the handling-point catalogue, and
 * the route table. Attachments live in files.c, the reviewers' side in
 * review.c, the helpers they share in enterprise.c. Each handler is a chain
 * of named continuations; the last one replies. */
#include "enterprise.h"

#include "access.h"
#include "audit.h"
#include "db.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* A record save or submit that lost a race with another writer starts over
 * this many times before answering 409. */
#define RECORD_TRIES 3

/* ---- GET, PUT /api/v1/profile ------------------------------------------ */

/* The profile answer from a store_profile_* statement; every field null and
 * status incomplete when the account has no profile yet. */
static json_t *
profile_json(const struct db_result *res, int stmt)
{
	static const char *const fields[] = {"name", "id_number", "email",
	    "id_card_front_file", "id_card_back_file"};
	json_t *o = json_object();

	for (int i = 0; i < (int)ARRAY_LEN(fields); i++)
		json_object_set_new(o, fields[i],
		    ent_json_str(db_value(res, stmt, 0, i)));
	json_object_set_new(o, "status",
	    json_string(db_bool(res, stmt, 0, 5) ? "completed" : "incomplete"));
	return o;
}

static void
profile_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	http_reply_json(req, 200, profile_json(res, 0));
}

static void
profile_get(struct http_req *req)
{
	struct db_batch *b;

	if (ent_require_account(req) != 0)
		return;
	b = db_batch_new();
	store_profile_get(b, req->session->account_id);
	db_batch_run(ent.svc.db, b, profile_on_loaded, req);
}

static void
ent_profile_get(struct http_req *req)
{
	session_require(req, profile_get);
}

static void
profile_on_saved(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (ent_reply_refused(req, res))
		return;
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	http_reply_json(req, 200, profile_json(res, 0));
}

static void
profile_put(struct http_req *req)
{
	struct ent_profile_update u;
	struct ent_err err;
	char event_id[37];
	json_t *body;

	if (ent_require_account(req) != 0 || http_read_json(req, &body) != 0)
		return;
	http_req_attach(req, body, ent_json_free);
	if (ent_profile_parse(body, &u, &err) != 0) {
		ent_reply_err(req, &err);
		return;
	}
	uuid_v4(event_id);
	struct db_batch *b = db_batch_new();
	store_profile_save(b, req->session->account_id, &u, event_id);
	db_batch_run(ent.svc.db, b, profile_on_saved, req);
}

static void
ent_profile_put(struct http_req *req)
{
	session_require(req, profile_put);
}

/* ---- the enterprise record of the current identity --------------------- */

/* One GET, PUT or submit of the record, freed with the request. */
struct rec_op {
	struct http_req *req;
	json_t *patch;        /* PUT: the checked update */
	struct ent_refs refs; /* PUT: what the update refers to */
	char new_id[37];      /* the id if this request creates the record */
	char record_id[37];
	char version[24];
	int tries;
	int public_only;   /* GET by a member: the public part only */
	int licence_named; /* PUT: the update names the business licence */
	void (*loaded)(void *arg, const struct db_result *res);
};

static void
rec_op_free(void *p)
{
	struct rec_op *op = p;

	json_decref(op->patch);
	free(op);
}

static struct rec_op *
rec_op_new(struct http_req *req,
    void (*loaded)(void *, const struct db_result *))
{
	struct rec_op *op = xcalloc(1, sizeof(*op));

	op->req = req;
	op->loaded = loaded;
	http_req_attach(req, op, rec_op_free);
	return op;
}

/* Loads the identity's record (created as a skeleton on first sight):
 * statement 1 the record, 2 its history, then for a PUT 3 the owned files
 * and 4 the handling point (store_refs_check). */
static void
rec_load(struct rec_op *op)
{
	const struct session *s = op->req->session;
	struct db_batch *b = db_batch_new();
	json_t *skeleton = ent_record_skeleton(s->uscc,
	    json_string_value(json_object_get(s->data, "enterprise_name")));
	char *text = json_dumps(skeleton, JSON_COMPACT);

	uuid_v4(op->new_id);
	store_record_ensure(b, op->new_id, s->uscc, text);
	store_record_by_uscc(b, s->uscc);
	store_history_by_uscc(b, s->uscc);
	if (op->patch != NULL)
		store_refs_check(b, s->account_id, &op->refs);
	free(text);
	json_decref(skeleton);
	op->tries++;
	db_batch_run(ent.svc.db, b, op->loaded, op);
}

/* Replies the record of statements rec/hist (its public part when
 * public_only), or the DB error. */
static void
rec_reply_view(struct http_req *req, const struct db_result *res, int rec,
    int hist, int public_only)
{
	json_t *o;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	o = ent_record_json(res, rec, hist, 0);
	if (o == NULL) {
		log_error(req->id, "msg=record_missing");
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	if (public_only) {
		json_t *pub = ent_record_public(o);
		json_decref(o);
		o = pub;
	}
	http_reply_json(req, 200, o);
}

static void
rec_reply(struct http_req *req, const struct db_result *res, int rec, int hist)
{
	rec_reply_view(req, res, rec, hist, 0);
}

/* Keeps the loaded record's id and version; 0, or -1 after replying. */
static int
rec_take(struct rec_op *op, const struct db_result *res)
{
	if (res->status != DB_OK) {
		http_reply_db_error(op->req, res);
		return -1;
	}
	if (db_rows(res, 1) != 1) {
		log_error(op->req->id, "msg=record_missing");
		http_reply_error(op->req, 500, "INTERNAL", NULL,
		    "服务器内部错误");
		return -1;
	}
	snprintf(op->record_id, sizeof(op->record_id), "%s",
	    db_value(res, 1, 0, REC_ID));
	snprintf(op->version, sizeof(op->version), "%s",
	    db_value(res, 1, 0, REC_VERSION));
	return 0;
}

static void
reply_changed(struct http_req *req)
{
	http_reply_error(req, 409, "RECORD_CHANGED", NULL,
	    "企业信息正在被修改，请刷新后重试");
}

/* GET /api/v1/enterprise: the administrator reads the whole record, the
 * enterprise's members its public part (access.h, rules.h). */

static void
record_get_on_loaded(void *arg, const struct db_result *res)
{
	struct rec_op *op = arg;

	rec_reply_view(op->req, res, 1, 2, op->public_only);
}

static void
record_get(struct http_req *req)
{
	int full;

	if (ent_require_enterprise(req, 0) != 0)
		return;
	full = access_scope(req->session, ACCESS_ENTERPRISE_FULL) >=
	    ACCESS_ENTERPRISE;
	if (!full &&
	    access_require(req, ACCESS_ENTERPRISE_PUBLIC, ACCESS_ENTERPRISE) ==
	        ACCESS_NONE)
		return;
	struct rec_op *op = rec_op_new(req, record_get_on_loaded);
	op->public_only = !full;
	rec_load(op);
}

static void
ent_record_get(struct http_req *req)
{
	session_require(req, record_get);
}

/* PUT /api/v1/enterprise: record_put → record_put_on_loaded (checks what
 * needs the record and the store) → record_put_on_saved. */

static void record_put_on_loaded(void *arg, const struct db_result *res);
static void record_put_on_saved(void *arg, const struct db_result *res);

static void
record_put(struct http_req *req)
{
	struct ent_err err;
	json_t *body;

	if (ent_require_enterprise(req, 1) != 0 ||
	    http_read_json(req, &body) != 0)
		return;
	struct rec_op *op = rec_op_new(req, record_put_on_loaded);
	int rc = ent_record_parse(body, req->session->uscc, &op->patch,
	    &op->refs, &err);
	json_decref(body);
	if (rc != 0) {
		ent_reply_err(req, &err);
		return;
	}
	rec_load(op);
}

/* The update's files must be the caller's uploads (the licence an image),
 * its handling point an active one. */
static int
refs_ok(struct rec_op *op, const struct db_result *res, struct ent_err *err)
{
	for (size_t i = 0; i < op->refs.nfiles; i++) {
		const struct ent_file_ref *ref = &op->refs.files[i];
		const char *type = NULL;

		for (int row = 0; row < db_rows(res, 3); row++)
			if (strcmp(db_value(res, 3, row, 0), ref->id) == 0)
				type = db_value(res, 3, row, 1);
		if (type == NULL)
			return ent_err_set(err, 422, "FILE_NOT_FOUND",
			    ref->path,
			    "附件不存在或不是本账号上传的，请重新上传");
		if (ref->images_only && strcmp(type, "application/pdf") == 0)
			return ent_err_set(err, 422, "FIELD_INVALID", ref->path,
			    "营业执照扫描件须为 JPG 或 PNG 图片");
	}
	if (op->refs.handling_point[0] != '\0' && db_rows(res, 4) != 1)
		return ent_err_set(err, 422, "FIELD_INVALID",
		    "basic.handling_point", "办理点不存在");
	return 0;
}

static void
record_put_on_loaded(void *arg, const struct db_result *res)
{
	struct rec_op *op = arg;
	struct http_req *req = op->req;
	struct ent_err err;

	if (rec_take(op, res) != 0)
		return;
	if (strcmp(db_value(res, 1, 0, REC_WORK_STATUS), "pending") == 0) {
		http_reply_error(req, 409, "RECORD_NOT_EDITABLE", NULL,
		    "企业信息正在审核中，审核完成前不能修改");
		return;
	}
	if (refs_ok(op, res, &err) != 0) {
		ent_reply_err(req, &err);
		return;
	}
	json_t *data = json_loads(db_value(res, 1, 0, REC_DATA), 0, NULL);
	json_t *merged = ent_record_merge(data, op->patch);
	json_decref(data);
	if (ent_record_check(merged, op->patch, &err) != 0) {
		json_decref(merged);
		ent_reply_err(req, &err);
		return;
	}
	char *text = json_dumps(merged, JSON_COMPACT);
	json_decref(merged);
	struct db_batch *b = db_batch_new();
	store_record_update(b, op->record_id, op->version, text);
	store_record_by_id(b, op->record_id);
	store_history_by_id(b, op->record_id);
	/* A licence uploaded without ?purpose=business_license is queued for
	 * recognition when the record names it (statement 3, after those the
	 * answer reads). */
	for (size_t i = 0; i < op->refs.nfiles; i++)
		if (strcmp(op->refs.files[i].path,
		        "basic.files.business_license") == 0) {
			store_licence_ocr_ensure(b, op->refs.files[i].id);
			op->licence_named = 1;
		}
	free(text);
	db_batch_run(ent.svc.db, b, record_put_on_saved, op);
}

static void
record_put_on_saved(void *arg, const struct db_result *res)
{
	struct rec_op *op = arg;

	if (res->status == DB_OK && db_rows(res, 0) == 0) {
		/* Another save or a submission came first: start over. */
		if (op->tries < RECORD_TRIES)
			rec_load(op);
		else
			reply_changed(op->req);
		return;
	}
	if (res->status == DB_OK && op->licence_named &&
	    db_affected(res, 3) > 0)
		ent_sweep_kick_ocr(); /* a recognition was queued: start it now */
	rec_reply(op->req, res, 1, 2);
}

static void
ent_record_put(struct http_req *req)
{
	session_require(req, record_put);
}

/* POST /api/v1/enterprise/submit: record_submit → record_submit_on_loaded
 * (completeness) → record_submit_on_done. */

static void record_submit_on_loaded(void *arg, const struct db_result *res);
static void record_submit_on_done(void *arg, const struct db_result *res);

static void
record_submit(struct http_req *req)
{
	if (ent_require_enterprise(req, 1) != 0)
		return;
	rec_load(rec_op_new(req, record_submit_on_loaded));
}

static void
reply_not_editable(struct http_req *req, const char *work_status)
{
	http_reply_error(req, 409, "RECORD_NOT_EDITABLE", NULL,
	    strcmp(work_status, "pending") == 0
	        ? "企业信息正在审核中，请勿重复提交"
	        : "企业信息已审核通过，如需变更请先修改后再提交");
}

static void
record_submit_on_loaded(void *arg, const struct db_result *res)
{
	struct rec_op *op = arg;
	struct http_req *req = op->req;
	const char *work;

	if (rec_take(op, res) != 0)
		return;
	work = db_value(res, 1, 0, REC_WORK_STATUS);
	if (strcmp(work, "pending") == 0 || strcmp(work, "approved") == 0) {
		reply_not_editable(req, work);
		return;
	}
	json_t *data = json_loads(db_value(res, 1, 0, REC_DATA), 0, NULL);
	json_t *missing = ent_record_missing(data);
	json_decref(data);
	if (json_array_size(missing) > 0) {
		http_reply_json(req, 422,
		    json_pack("{s:{s:s, s:s, s:o}}", "error", "code",
		        "RECORD_INCOMPLETE", "message",
		        "企业信息不完整，请补充后再提交", "missing_fields",
		        missing));
		return;
	}
	json_decref(missing);
	char event_id[37];
	uuid_v4(event_id);
	struct db_batch *b = db_batch_new();
	store_record_submit(b, op->record_id, op->version,
	    req->session->account_id, event_id);
	store_record_by_id(b, op->record_id);
	store_history_by_id(b, op->record_id);
	/* Audited with the submission: both or neither. */
	const struct audit_entry e = {"enterprise.record.submitted", "record",
	    op->record_id, req->session->uscc, NULL, NULL};
	audit_add(b, req, &e);
	db_batch_run(ent.svc.db, b, record_submit_on_done, op);
}

static void
record_submit_on_done(void *arg, const struct db_result *res)
{
	struct rec_op *op = arg;
	struct http_req *req = op->req;

	if (res->status == DB_REFUSED && res->message != NULL &&
	    strcmp(res->message, "VERSION_CHANGED") == 0) {
		if (op->tries < RECORD_TRIES)
			rec_load(op);
		else
			reply_changed(req);
		return;
	}
	if (ent_reply_refused(req, res))
		return;
	if (res->status == DB_OK)
		log_info(req->id, "msg=record_submitted record=%s seq=%s",
		    op->record_id, db_value(res, 0, 0, 0));
	rec_reply(req, res, 1, 2);
}

static void
ent_record_submit(struct http_req *req)
{
	session_require(req, record_submit);
}

/* ---- GET /api/v1/enterprise/handling-points ---------------------------- */

static void
handling_points_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	json_t *items = json_array();

	if (res->status != DB_OK) {
		json_decref(items);
		http_reply_db_error(req, res);
		return;
	}
	for (int i = 0; i < db_rows(res, 0); i++)
		json_array_append_new(items,
		    json_pack("{s:s, s:s, s:s}", "code", db_value(res, 0, i, 0),
		        "name", db_value(res, 0, i, 1), "region",
		        db_value(res, 0, i, 2)));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

static void
handling_points(struct http_req *req)
{
	struct db_batch *b = db_batch_new();

	store_handling_points(b);
	db_batch_run(ent.svc.db, b, handling_points_on_loaded, req);
}

static void
ent_handling_points(struct http_req *req)
{
	session_require(req, handling_points);
}

/* ---- the route table --------------------------------------------------- */

const struct http_route ent_routes[] = {
    {"POST", "/api/v1/files", ent_file_upload, ENT_FILE_MAX},
    {"GET", "/api/v1/files/{id}", ent_file_get, 0},
    {"GET", "/api/v1/profile", ent_profile_get, 0},
    {"PUT", "/api/v1/profile", ent_profile_put, 0},
    {"GET", "/api/v1/enterprise", ent_record_get, 0},
    {"PUT", "/api/v1/enterprise", ent_record_put, 0},
    {"POST", "/api/v1/enterprise/submit", ent_record_submit, 0},
    {"GET", "/api/v1/enterprise/handling-points", ent_handling_points, 0},
    {"POST", "/api/v1/enterprise/admin-applications", ent_application_create,
        0},
    {"GET", "/api/v1/enterprise/admin-applications", ent_application_list, 0},
    {"GET", "/api/v1/review/queue", ent_review_queue, 0},
    {"GET", "/api/v1/review/records/{id}", ent_review_record, 0},
    {"POST", "/api/v1/review/records/{id}/claim", ent_review_claim, 0},
    {"POST", "/api/v1/review/records/{id}/release", ent_review_release, 0},
    {"POST", "/api/v1/review/records/{id}/approve", ent_review_approve, 0},
    {"POST", "/api/v1/review/records/{id}/reject", ent_review_reject, 0},
    {"GET", "/api/v1/review/admin-applications/{id}", ent_review_application,
        0},
    {"POST", "/api/v1/review/admin-applications/{id}/approve",
        ent_review_application_approve, 0},
    {"POST", "/api/v1/review/admin-applications/{id}/reject",
        ent_review_application_reject, 0},
    {"POST", "/api/v1/review/admin-applications/{id}/claim",
        ent_review_application_claim, 0},
    {"POST", "/api/v1/review/admin-applications/{id}/release",
        ent_review_application_release, 0},
};
const size_t ent_nroutes = ARRAY_LEN(ent_routes);
