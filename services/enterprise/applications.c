/* applications — administrator applications (管理员申请, issue 12): any
 * logged-in account files one (enterprise name, USCC, the applicant's ID
 * number, an uploaded 授权委托书 bearing the company seal) and lists its
 * own with their status, decision time and opinion; a reviewer reads one
 * from the review queue (review.c lists them beside the records), claims
 * it (so that no other reviewer decides it while the claim runs, as with
 * records) and approves or rejects it with an opinion. The ID number is kept only as a
 * keyed hash and a masked copy; it must be the applicant's own when the
 * personal info names one. A pending or rejected application grants
 * nothing: auth grants the admin identity on
 * enterprise.admin_application.approved. Every submission and decision is
 * audited in its own transaction. */
#include "enterprise.h"

#include "access.h"
#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One submission or decision, freed with the request. */
struct app_op {
	struct http_req *req;
	json_t *body;
	struct ent_admin_application app;
	const char *opinion; /* borrowed from body */
	int approve;
	char id[37];
};

static void
app_op_free(void *p)
{
	struct app_op *op = p;

	crypto_wipe(op->app.id_number, sizeof(op->app.id_number));
	json_decref(op->body);
	free(op);
}

static struct app_op *
app_op_new(struct http_req *req, json_t *body)
{
	struct app_op *op = xcalloc(1, sizeof(*op));

	op->req = req;
	op->body = body;
	http_req_attach(req, op, app_op_free);
	return op;
}

static void
reply_not_found(struct http_req *req)
{
	http_reply_error(req, 404, "NOT_FOUND", NULL, "管理员申请不存在");
}

/* The application of statement stmt, row: what its applicant sees
 * (staff adds what a reviewer needs). */
static json_t *
app_json(const struct db_result *res, int stmt, int row, int staff)
{
	json_t *o = json_object();
	const char *matches = db_value(res, stmt, row, APP_ID_MATCHES);

	json_object_set_new(o, "id",
	    json_string(db_value(res, stmt, row, APP_ID)));
	json_object_set_new(o, "enterprise_name",
	    json_string(db_value(res, stmt, row, APP_NAME)));
	json_object_set_new(o, "uscc",
	    json_string(db_value(res, stmt, row, APP_USCC)));
	json_object_set_new(o, "id_number",
	    json_string(db_value(res, stmt, row, APP_ID_MASKED)));
	json_object_set_new(o, "authorization_file_id",
	    json_string(db_value(res, stmt, row, APP_FILE)));
	json_object_set_new(o, "status",
	    json_string(db_value(res, stmt, row, APP_STATUS)));
	json_object_set_new(o, "opinion",
	    ent_json_str(db_value(res, stmt, row, APP_OPINION)));
	json_object_set_new(o, "submitted_at",
	    json_string(db_value(res, stmt, row, APP_SUBMITTED_AT)));
	json_object_set_new(o, "decided_at",
	    ent_json_str(db_value(res, stmt, row, APP_DECIDED_AT)));
	if (!staff)
		return o;
	const char *phone = db_value(res, stmt, row, APP_PHONE);
	char phone_masked[16];
	if (phone != NULL)
		access_mask(phone, phone_masked, sizeof(phone_masked));
	json_object_set_new(o, "account_id",
	    json_string(db_value(res, stmt, row, APP_ACCOUNT)));
	json_object_set_new(o, "applicant_phone",
	    phone != NULL ? json_string(phone_masked) : json_null());
	json_object_set_new(o, "id_matches_profile",
	    matches != NULL ? json_boolean(strcmp(matches, "t") == 0)
	                    : json_null());
	json_object_set_new(o, "reviewer_id",
	    ent_json_str(db_value(res, stmt, row, APP_REVIEWER)));
	json_object_set_new(o, "lock_admin_exists",
	    json_boolean(db_bool(res, stmt, row, APP_LOCK_ADMIN)));
	json_object_set_new(o, "claimed_by",
	    ent_json_str(db_value(res, stmt, row, APP_CLAIMED_BY)));
	json_object_set_new(o, "claimed_until",
	    ent_json_str(db_value(res, stmt, row, APP_CLAIMED_UNTIL)));
	return o;
}

static void
audit_application(struct db_batch *b, struct http_req *req, const char *action,
    const char *id, const char *uscc, json_t *after)
{
	const struct audit_entry e = {action, "admin_application", id, uscc,
	    NULL, after};

	audit_add(b, req, &e);
}

/* ---- POST /api/v1/enterprise/admin-applications: create →
 * create_on_profile (the ID number against the personal info) →
 * create_on_done ---- */

static void create_on_profile(void *arg, const struct db_result *res);
static void create_on_done(void *arg, const struct db_result *res);

static void
create(struct http_req *req)
{
	struct ent_err err;
	json_t *body;

	if (ent_require_account(req) != 0 || http_read_json(req, &body) != 0)
		return;
	struct app_op *op = app_op_new(req, body);
	if (ent_admin_application_parse(body, &op->app, &err) != 0) {
		ent_reply_err(req, &err);
		return;
	}
	struct db_batch *b = db_batch_new();
	store_profile_get(b, req->session->account_id);
	db_batch_run(ent.svc.db, b, create_on_profile, op);
}

static void
create_on_profile(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;
	const char *known, *matches = NULL;
	unsigned char mac[32];
	char hmac[65], masked[24], event_id[37];

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	/* The applicant's own ID number, when the personal info names one. */
	known = db_rows(res, 0) == 1 ? db_value(res, 0, 0, 1) : NULL;
	if (known != NULL) {
		if (strcmp(known, op->app.id_number) != 0) {
			http_reply_error(req, 422, "ID_NUMBER_MISMATCH",
			    "id_number", "身份证号码与您个人信息中的不一致");
			return;
		}
		matches = "t";
	}
	crypto_hmac_sha256(ent.cfg.id_hash_key, strlen(ent.cfg.id_hash_key),
	    op->app.id_number, strlen(op->app.id_number), mac);
	for (int i = 0; i < 32; i++)
		snprintf(hmac + 2 * i, 3, "%02x", mac[i]);
	access_mask(op->app.id_number, masked, sizeof(masked));
	crypto_wipe(op->app.id_number, sizeof(op->app.id_number));
	uuid_v4(op->id);
	uuid_v4(event_id);
	json_t *after = json_pack("{s:s, s:s, s:s}", "status", "pending",
	    "enterprise_name", op->app.enterprise_name, "authorization_file_id",
	    op->app.authorization_file_id);
	struct db_batch *b = db_batch_new();
	store_application_submit(b, op->id, req->session->account_id, &op->app,
	    hmac, masked, matches, event_id);
	store_application_by_id(b, op->id);
	audit_application(b, req, "enterprise.admin_application.submitted",
	    op->id, op->app.uscc, after);
	json_decref(after);
	db_batch_run(ent.svc.db, b, create_on_done, op);
}

static void
create_on_done(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;

	if (ent_reply_refused(req, res))
		return;
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 1) != 1) {
		log_error(req->id, "msg=application_missing application=%s",
		    op->id);
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	log_info(req->id, "msg=admin_application_submitted application=%s",
	    op->id);
	http_reply_json(req, 201, app_json(res, 1, 0, 0));
}

void
ent_application_create(struct http_req *req)
{
	session_require(req, create);
}

/* ---- GET /api/v1/enterprise/admin-applications: the caller's own ---- */

static void
list_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	json_t *items;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	items = json_array();
	for (int i = 0; i < db_rows(res, 0); i++)
		json_array_append_new(items, app_json(res, 0, i, 0));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

static void
list(struct http_req *req)
{
	if (ent_require_account(req) != 0)
		return;
	struct db_batch *b = db_batch_new();
	store_applications_by_account(b, req->session->account_id);
	db_batch_run(ent.svc.db, b, list_on_loaded, req);
}

void
ent_application_list(struct http_req *req)
{
	session_require(req, list);
}

/* ---- the reviewers' side ----------------------------------------------- */

static int
require_reviewer(struct http_req *req)
{
	if (access_require(req, ACCESS_REVIEW, ACCESS_PLATFORM) == ACCESS_NONE)
		return -1;
	if (!uuid_valid(req->params[0]) ||
	    !uuid_valid(req->session->staff_id)) {
		reply_not_found(req);
		return -1;
	}
	return 0;
}

/* GET /api/v1/review/admin-applications/{id} */

static void
review_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		reply_not_found(req);
		return;
	}
	http_reply_json(req, 200, app_json(res, 0, 0, 1));
}

static void
review(struct http_req *req)
{
	if (require_reviewer(req) != 0)
		return;
	struct db_batch *b = db_batch_new();
	store_application_by_id(b, req->params[0]);
	db_batch_run(ent.svc.db, b, review_on_loaded, req);
}

void
ent_review_application(struct http_req *req)
{
	session_require(req, review);
}

/* POST …/approve, …/reject: decide → decide_on_loaded (the USCC the audit
 * entry names) → decide_on_done. The decision, its event, the applicant's
 * SMS and the audit entry are one transaction. */

static void decide_on_loaded(void *arg, const struct db_result *res);
static void decide_on_done(void *arg, const struct db_result *res);

static void
decide(struct http_req *req, int approve)
{
	struct ent_err err;
	json_t *body;

	if (require_reviewer(req) != 0 || http_read_json(req, &body) != 0)
		return;
	struct app_op *op = app_op_new(req, body);
	op->approve = approve;
	if (ent_opinion_parse(body, !approve, &op->opinion, &err) != 0) {
		ent_reply_err(req, &err);
		return;
	}
	struct db_batch *b = db_batch_new();
	store_application_by_id(b, req->params[0]);
	db_batch_run(ent.svc.db, b, decide_on_loaded, op);
}

static void
decide_on_loaded(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;
	char event_id[37];

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		reply_not_found(req);
		return;
	}
	json_t *after = json_pack("{s:s, s:s?}", "status",
	    op->approve ? "approved" : "rejected", "opinion", op->opinion);
	uuid_v4(event_id);
	struct db_batch *b = db_batch_new();
	store_application_decide(b, req->params[0], req->session->staff_id,
	    op->approve, op->opinion, event_id);
	store_application_by_id(b, req->params[0]);
	audit_application(b, req,
	    op->approve ? "enterprise.admin_application.approved"
	                : "enterprise.admin_application.rejected",
	    req->params[0], db_value(res, 0, 0, APP_USCC), after);
	json_decref(after);
	db_batch_run(ent.svc.db, b, decide_on_done, op);
}

/* The answer of a decision's or a claim's batch when it changed nothing:
 * the application gone (NOT_FOUND), a refusal of its rules (not pending,
 * claimed by another), or the database failing. Returns 1 when it replied. */
static int
app_change_refused(struct http_req *req, const struct db_result *res)
{
	if (res->status == DB_REFUSED && res->message != NULL &&
	    strcmp(res->message, "NOT_FOUND") == 0) {
		reply_not_found(req);
		return 1;
	}
	if (ent_reply_refused(req, res))
		return 1;
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return 1;
	}
	return 0;
}

static void
decide_on_done(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;

	if (app_change_refused(req, res))
		return;
	log_info(req->id,
	    "msg=admin_application_decided application=%s "
	    "result=%s staff=%s",
	    req->params[0], db_value(res, 0, 0, 0), req->session->staff_id);
	http_reply_json(req, 200, app_json(res, 1, 0, 1));
}

static void
approve(struct http_req *req)
{
	decide(req, 1);
}

void
ent_review_application_approve(struct http_req *req)
{
	session_require(req, approve);
}

static void
reject(struct http_req *req)
{
	decide(req, 0);
}

void
ent_review_application_reject(struct http_req *req)
{
	session_require(req, reject);
}

/* POST …/claim, …/release: claim_start → claim_on_loaded (the USCC the
 * audit entry names) → the claim or release, the application and the audit
 * entry (enterprise.admin_application.claimed / .released) in one
 * transaction → claim_on_done. Like records (review.c), the claim holds
 * CAPLAT_REVIEW_CLAIM_TTL seconds; another reviewer's running claim is
 * refused with RECORD_CLAIMED. */

static void
claim_on_done(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;

	if (app_change_refused(req, res))
		return;
	if (db_rows(res, 1) != 1) {
		reply_not_found(req);
		return;
	}
	log_info(req->id, "msg=admin_application_%s application=%s staff=%s",
	    op->approve ? "claimed" : "released", req->params[0],
	    req->session->staff_id);
	http_reply_json(req, 200, app_json(res, 1, 0, 1));
}

static void
claim_on_loaded(void *arg, const struct db_result *res)
{
	struct app_op *op = arg;
	struct http_req *req = op->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		reply_not_found(req);
		return;
	}
	struct db_batch *b = db_batch_new();
	if (op->approve)
		store_application_claim(b, req->params[0],
		    req->session->staff_id, ent.cfg.claim_ttl);
	else
		store_application_release(b, req->params[0],
		    req->session->staff_id);
	store_application_by_id(b, req->params[0]);
	audit_application(b, req,
	    op->approve ? "enterprise.admin_application.claimed"
	                : "enterprise.admin_application.released",
	    req->params[0], db_value(res, 0, 0, APP_USCC), NULL);
	db_batch_run(ent.svc.db, b, claim_on_done, op);
}

/* claim: 1 claims, 0 releases (kept in op->approve). */
static void
claim_start(struct http_req *req, int claim)
{
	if (require_reviewer(req) != 0)
		return;
	struct app_op *op = app_op_new(req, NULL);
	op->approve = claim;
	struct db_batch *b = db_batch_new();
	store_application_by_id(b, req->params[0]);
	db_batch_run(ent.svc.db, b, claim_on_loaded, op);
}

static void
claim(struct http_req *req)
{
	claim_start(req, 1);
}

void
ent_review_application_claim(struct http_req *req)
{
	session_require(req, claim);
}

static void
release(struct http_req *req)
{
	claim_start(req, 0);
}

void
ent_review_application_release(struct http_req *req)
{
	session_require(req, release);
}
