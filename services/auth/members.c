/* members — 人员管理, the enterprise administrator's view of its people
 * (common/access.h ACCESS_MEMBERS): the active members with their locks,
 * the member claims (applications) to approve or reject with an opinion,
 * removal of a member, and the handover of the administrator role. Every
 * decision is audited in its own transaction; removal and handover rewrite
 * the affected open sessions right after the commit, so a removed member's
 * next request acts without the identity (403 on the enterprise's data). */
#include "auth.h"

#include "access.h"
#include "audit.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The enterprise of an administrator session, or 403 answered. */
static const char *
members_enterprise(struct http_req *req)
{
	if (access_require(req, ACCESS_MEMBERS, ACCESS_ENTERPRISE) ==
	    ACCESS_NONE)
		return NULL;
	if (req->session->uscc == NULL || req->session->identity_id == NULL) {
		/* Staff (operators) have no enterprise of their own here. */
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return NULL;
	}
	return req->session->uscc;
}

/* A member or application row of statement 1 (see auth.h for the
 * columns; statement 0 is store_admin_check). */
static json_t *
member_json(const struct db_result *res, int row, int application)
{
	char masked[24];
	const char *phone = db_value(res, 1, row, 6);
	json_t *lock = json_null();

	access_mask(phone ? phone : "", masked, sizeof(masked));
	if (db_value(res, 1, row, 8) != NULL)
		lock = json_pack("{s:s, s:s?, s:s?, s:s?}", "kind",
		    db_value(res, 1, row, 8), "serial",
		    db_value(res, 1, row, 9), "not_after",
		    db_value(res, 1, row, 10), "bound_at",
		    db_value(res, 1, row, 11));
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:o, s:b}",
	    "identity_id", db_value(res, 1, row, 0), "account_id",
	    db_value(res, 1, row, 1), "name", db_value(res, 1, row, 7), "role",
	    db_value(res, 1, row, 2), "phone_masked", masked, "status",
	    db_value(res, 1, row, 3), "source", db_value(res, 1, row, 4),
	    "lock", lock, "lock_bound", db_value(res, 1, row, 8) != NULL);
	if (application) {
		json_object_set_new(o, "applied_at",
		    json_string(db_value(res, 1, row, 14)));
		json_object_set_new(o, "decided_at",
		    db_value(res, 1, row, 12)
		        ? json_string(db_value(res, 1, row, 12))
		        : json_null());
		json_object_set_new(o, "opinion",
		    db_value(res, 1, row, 13)
		        ? json_string(db_value(res, 1, row, 13))
		        : json_null());
	} else {
		json_object_set_new(o, "since",
		    json_string(db_value(res, 1, row, 5)));
	}
	return o;
}

static void
on_listed(struct http_req *req, const struct db_result *res, const char *key,
    int application)
{
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "您已不是本单位管理员");
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < db_rows(res, 1); i++)
		json_array_append_new(items, member_json(res, i, application));
	http_reply_json(req, 200, json_pack("{s:o}", key, items));
}

/* ---- GET /api/v1/auth/members ------------------------------------------ */

static void
members_on_loaded(void *arg, const struct db_result *res)
{
	on_listed(arg, res, "members", 0);
}

static void
members_list(struct http_req *req)
{
	const char *uscc = members_enterprise(req);

	if (uscc == NULL)
		return;
	struct db_batch *b = db_batch_new();
	store_admin_check(b, req->session->identity_id, uscc);
	store_members(b, uscc);
	db_batch_run(auth.svc.db, b, members_on_loaded, req);
}

void
auth_members_list(struct http_req *req)
{
	session_require(req, members_list);
}

/* ---- GET /api/v1/auth/member-applications?status= ---------------------- */

static void
applications_on_loaded(void *arg, const struct db_result *res)
{
	on_listed(arg, res, "applications", 1);
}

static const char *const application_statuses[] = {"pending", "active",
    "rejected", "removed", "all", NULL};

static void
applications_list(struct http_req *req)
{
	const char *uscc = members_enterprise(req);
	const char *status = NULL;

	if (uscc == NULL)
		return;
	char *given = http_query_param(req, "status");
	if (given != NULL) {
		for (size_t i = 0; application_statuses[i] != NULL; i++)
			if (strcmp(given, application_statuses[i]) == 0)
				status = application_statuses[i];
		free(given);
		if (status == NULL) {
			http_reply_error(req, 422, "FIELD_INVALID", "status",
			    "status 须为 pending、active、rejected、removed 或 all");
			return;
		}
	} else {
		status = "pending";
	}
	struct db_batch *b = db_batch_new();
	store_admin_check(b, req->session->identity_id, uscc);
	store_member_applications(b, uscc,
	    strcmp(status, "all") == 0 ? NULL : status);
	db_batch_run(auth.svc.db, b, applications_on_loaded, req);
}

void
auth_member_applications(struct http_req *req)
{
	session_require(req, applications_list);
}

/* ---- approve / reject, remove, handover: the refusals ------------------ */

static void
reply_refused(struct http_req *req, const struct db_result *res)
{
	if (res->status == DB_REFUSED && res->message != NULL) {
		if (strcmp(res->message, "NOT_FOUND") == 0) {
			http_reply_error(req, 404, "NOT_FOUND", NULL,
			    "该人员或申请不存在");
			return;
		}
		if (strcmp(res->message, "NOT_ADMIN") == 0) {
			http_reply_error(req, 403, "FORBIDDEN", NULL,
			    "您已不是本单位管理员");
			return;
		}
		if (strcmp(res->message, "CANNOT_REMOVE_ADMIN") == 0) {
			http_reply_error(req, 409, "CANNOT_REMOVE_ADMIN", NULL,
			    "不能移除单位管理员本人，请先移交管理员");
			return;
		}
	}
	http_reply_db_error(req, res);
}

/* ---- POST /api/v1/auth/member-applications/{id}/approve|reject --------- */

struct decide {
	struct http_req *req;
	json_t *body;
	int approve;
	const char *opinion;
};

static void
decide_free(void *p)
{
	struct decide *d = p;

	json_decref(d->body);
	free(d);
}

static void
decide_on_done(void *arg, const struct db_result *res)
{
	struct decide *d = arg;
	struct http_req *req = d->req;

	if (res->status != DB_OK) {
		reply_refused(req, res);
		return;
	}
	if (db_rows(res, 0) == 1 && db_value(res, 0, 0, 0) != NULL)
		auth_me_changed(db_value(res, 0, 0, 0)); /* the applicant's */
	log_info(req->id, "msg=member_%s identity=%s",
	    d->approve ? "approved" : "rejected", req->params[0]);
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id", req->params[0],
	        "account_id", db_value(res, 0, 0, 0), "role",
	        db_value(res, 0, 0, 2), "status", db_value(res, 0, 0, 3),
	        "opinion", d->opinion));
}

static void
member_decide(struct http_req *req, int approve)
{
	struct json_field_err err;
	const char *uscc = members_enterprise(req);
	json_t *body;

	if (uscc == NULL)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct decide *d = xcalloc(1, sizeof(*d));
	d->req = req;
	d->body = body;
	d->approve = approve;
	http_req_attach(req, d, decide_free);
	if (json_field_str(body, "opinion",
	        approve ? JSON_FIELD_OPTIONAL : JSON_FIELD_REQUIRED, 500,
	        &d->opinion, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (!approve && d->opinion[0] == '\0') {
		http_reply_error(req, 422, "FIELD_REQUIRED", "opinion",
		    "驳回须填写审批意见");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL,
		    "该人员或申请不存在");
		return;
	}
	struct db_batch *b = db_batch_new();
	store_member_decide(b, req->params[0], uscc, approve, d->opinion,
	    req->session->identity_id);
	/* the applicant's notice commits with the decision (issue 17) */
	store_member_notice(b, req->params[0], approve, d->opinion);
	json_t *after = json_pack("{s:s, s:s?}", "status",
	    approve ? "active" : "rejected", "opinion", d->opinion);
	const struct audit_entry e = {approve ? "member.approved"
	                                      : "member.rejected",
	    "identity", req->params[0], uscc,
	    json_pack("{s:s}", "status", "pending"), after};
	audit_add(b, req, &e);
	json_decref(e.before);
	json_decref(after);
	db_batch_run(auth.svc.db, b, decide_on_done, d);
}

static void
approve(struct http_req *req)
{
	member_decide(req, 1);
}

static void
reject(struct http_req *req)
{
	member_decide(req, 0);
}

void
auth_member_approve(struct http_req *req)
{
	session_require(req, approve);
}

void
auth_member_reject(struct http_req *req)
{
	session_require(req, reject);
}

/* ---- DELETE /api/v1/auth/members/{id} ---------------------------------- */

static void
remove_on_sessions(void *arg, int status)
{
	struct http_req *req = arg;

	/* The identity is removed (committed) either way; a Redis failure is
	 * logged by auth_sessions_drop_identity. */
	(void)status;
	http_reply_empty(req, 204);
}

static void
remove_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		reply_refused(req, res);
		return;
	}
	log_info(req->id, "msg=member_removed identity=%s account=%s",
	    req->params[0], db_value(res, 0, 0, 0));
	auth_sessions_drop_identity(db_value(res, 0, 0, 0), req->params[0],
	    NULL, remove_on_sessions, req);
}

static void
member_remove(struct http_req *req)
{
	const char *uscc = members_enterprise(req);

	if (uscc == NULL)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL,
		    "该人员或申请不存在");
		return;
	}
	char *audit = auth_audit_base(req);
	struct db_batch *b = db_batch_new();
	store_member_remove(b, req->params[0], uscc, req->session->identity_id,
	    audit);
	free(audit);
	db_batch_run(auth.svc.db, b, remove_on_done, req);
}

void
auth_member_remove(struct http_req *req)
{
	session_require(req, member_remove);
}

/* ---- POST /api/v1/auth/admin/handover ---------------------------------- */

/* The old administrator stays in the enterprise as a project lead (source
 * handover): the role moves, nobody loses access they did not hand over. */
struct handover {
	struct http_req *req;
	json_t *body;
	char target[37], new_admin[37], new_member[37];
	int pending;
	json_t *reply;
};

static void
handover_free(void *p)
{
	struct handover *h = p;

	json_decref(h->body);
	json_decref(h->reply);
	free(h);
}

static void
handover_on_session(void *arg, int status)
{
	struct handover *h = arg;

	(void)status;
	if (--h->pending > 0)
		return;
	json_t *reply = h->reply;
	h->reply = NULL;
	http_reply_json(h->req, 200, reply);
}

static json_t *
session_identity(const struct session *s, const char *identity,
    const char *role)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O?}", "identity_id",
	    identity, "identity_type", "enterprise", "role", role,
	    "enterprise_id", s->uscc, "uscc", s->uscc, "enterprise_name",
	    json_object_get(s->data, "enterprise_name"));
}

static void
handover_on_done(void *arg, const struct db_result *res)
{
	struct handover *h = arg;
	struct http_req *req = h->req;
	const struct session *s = req->session;
	const char *name =
	    json_string_value(json_object_get(s->data, "enterprise_name"));
	char text[400];

	if (res->status != DB_OK) {
		reply_refused(req, res);
		return;
	}
	snprintf(text, sizeof(text),
	    "【CA平台】%s 的单位管理员已移交给您，请登录后在人员管理中查看。",
	    name ? name : "");
	if (db_value(res, 0, 0, 1) != NULL)
		sms_notify(db_value(res, 0, 0, 1), text);
	snprintf(text, sizeof(text),
	    "【CA平台】您已将 %s 的单位管理员移交他人，您现为该单位项目负责人。",
	    name ? name : "");
	if (db_value(res, 0, 0, 3) != NULL)
		sms_notify(db_value(res, 0, 0, 3), text);
	log_info(req->id, "msg=admin_handover uscc=%s from=%s to=%s", s->uscc,
	    db_value(res, 0, 0, 2), db_value(res, 0, 0, 0));
	h->reply = json_pack("{s:s, s:s, s:s, s:s}", "admin_identity_id",
	    h->new_admin, "admin_account_id", db_value(res, 0, 0, 0),
	    "previous_admin_identity_id", h->new_member, "previous_admin_role",
	    "project_lead");
	json_t *as_admin = session_identity(s, h->new_admin, "admin");
	json_t *as_member = session_identity(s, h->new_member, "project_lead");
	h->pending = 2;
	auth_sessions_drop_identity(db_value(res, 0, 0, 0), h->target, as_admin,
	    handover_on_session, h);
	auth_sessions_drop_identity(db_value(res, 0, 0, 2), s->identity_id,
	    as_member, handover_on_session, h);
	json_decref(as_admin);
	json_decref(as_member);
}

static void
admin_handover(struct http_req *req)
{
	const char *uscc = members_enterprise(req);
	const char *target;
	json_t *body;

	if (uscc == NULL)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct handover *h = xcalloc(1, sizeof(*h));
	h->req = req;
	h->body = body;
	http_req_attach(req, h, handover_free);
	if (auth_field(req, body, "identity_id", 64, &target) != 0)
		return;
	if (!uuid_valid(target)) {
		http_reply_error(req, 404, "NOT_FOUND", "identity_id",
		    "该人员或申请不存在");
		return;
	}
	snprintf(h->target, sizeof(h->target), "%s", target);
	uuid_v4(h->new_admin);
	uuid_v4(h->new_member);
	char *audit = auth_audit_base(req);
	struct db_batch *b = db_batch_new();
	store_admin_handover(b, req->session->identity_id, h->target, uscc,
	    h->new_admin, h->new_member, audit);
	free(audit);
	json_t *before = json_pack("{s:s, s:s}", "admin_identity_id",
	    req->session->identity_id, "member_identity_id", h->target);
	json_t *after = json_pack("{s:s, s:s, s:s}", "admin_identity_id",
	    h->new_admin, "previous_admin_identity_id", h->new_member,
	    "previous_admin_role", "project_lead");
	const struct audit_entry e = {"admin.handover", "identity",
	    h->new_admin, uscc, before, after};
	audit_add(b, req, &e);
	json_decref(before);
	json_decref(after);
	db_batch_run(auth.svc.db, b, handover_on_done, h);
}

void
auth_admin_handover(struct http_req *req)
{
	session_require(req, admin_handover);
}
