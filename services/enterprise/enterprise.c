/* enterprise — the service's one state (struct ent) and the helpers every
 * handler file shares: JSON of a record and its history, the checks of who
 * may call, and the answers to domain and SQL refusals. A leaf: it calls
 * into no other file of the service, so that any of them may call it. */
#include "enterprise.h"

#include "access.h"
#include "audit.h"
#include "db.h"
#include "licence.h"
#include "rules.h"
#include "session.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* Filled by main.c; defined here so that the unit tests, which link every
 * object but main.o, link. */
struct ent ent;

void
ent_json_free(void *json)
{
	json_decref(json);
}

void
ent_reply_err(struct http_req *req, const struct ent_err *err)
{
	http_reply_error(req, err->status, err->code,
	    err->field[0] ? err->field : NULL, err->message);
}

/* The refusals of the SQL functions of deploy/sql/enterprise (RAISE
 * EXCEPTION '<rule>' or '<rule>:<field>'), answered alike wherever they come
 * back: the rule is the answer's code, the field the one it names. */
static const struct {
	const char *rule;
	int status;
	const char *message;
} refusals[] = {
    {"NOT_FOUND", 404, "企业信息不存在"},
    {"FILE_NOT_FOUND", 422, "附件不存在或不是本账号上传的，请重新上传"},
    {"RECORD_NOT_EDITABLE", 409, "企业信息正在审核中，请勿重复提交"},
    {"RECORD_NOT_PENDING", 409, "该企业信息不在待审核状态"},
    {"RECORD_CLAIMED", 409, "该企业信息已由其他审核员领取"},
    {"APPLICATION_PENDING", 409, "您已提交该企业的管理员申请，请等待审核结果"},
    {"APPLICATION_NOT_PENDING", 409, "该管理员申请不在待审核状态"},
    {"ADMIN_EXISTS", 409, "该企业已有通过单位主锁认证的管理员"},
};

int
ent_reply_refused(struct http_req *req, const struct db_result *res)
{
	const char *rule = res->message, *colon;
	size_t len;

	if (res->status != DB_REFUSED || rule == NULL)
		return 0;
	colon = strchr(rule, ':');
	len = colon != NULL ? (size_t)(colon - rule) : strlen(rule);
	for (size_t i = 0; i < ARRAY_LEN(refusals); i++) {
		if (strlen(refusals[i].rule) != len ||
		    strncmp(refusals[i].rule, rule, len) != 0)
			continue;
		http_reply_error(req, refusals[i].status, refusals[i].rule,
		    colon != NULL ? colon + 1 : NULL, refusals[i].message);
		return 1;
	}
	return 0;
}

int
ent_require_account(struct http_req *req)
{
	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能执行此操作");
		return -1;
	}
	return 0;
}

int
ent_require_enterprise(struct http_req *req, int admin)
{
	const struct session *s = req->session;
	char uscc[19];

	if (ent_require_account(req) != 0)
		return -1;
	if (s->identity_type == NULL ||
	    strcmp(s->identity_type, "enterprise") != 0 || s->uscc == NULL ||
	    validate_uscc(s->uscc, uscc) != 0 || strcmp(uscc, s->uscc) != 0) {
		http_reply_error(req, 403, "NOT_ENTERPRISE_IDENTITY", NULL,
		    "请先切换到企业身份");
		return -1;
	}
	if (admin &&
	    access_scope(s, ACCESS_ENTERPRISE_EDIT) < ACCESS_ENTERPRISE) {
		http_reply_error(req, 403, "NOT_ENTERPRISE_ADMIN", NULL,
		    "只有企业管理员可以编辑和提交企业信息");
		return -1;
	}
	return 0;
}

void
ent_audit_read(struct db_batch *b, const struct http_req *req,
    const char *action, const char *object_type, const char *object_id,
    const char *uscc)
{
	const struct audit_entry e = {action, object_type, object_id, uscc,
	    NULL, NULL};

	audit_add(b, req, &e);
}

json_t *
ent_json_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
history_json(const struct db_result *res, int stmt)
{
	json_t *items = json_array();

	for (int i = 0; i < db_rows(res, stmt); i++) {
		json_t *h = json_object();
		const char *seq = db_value(res, stmt, i, 0);

		json_object_set_new(h, "seq",
		    json_integer(strtoll(seq, NULL, 10)));
		json_object_set_new(h, "time",
		    json_string(db_value(res, stmt, i, 1)));
		json_object_set_new(h, "status",
		    json_string(db_value(res, stmt, i, 2)));
		json_object_set_new(h, "opinion",
		    ent_json_str(db_value(res, stmt, i, 3)));
		json_object_set_new(h, "type",
		    json_string(db_value(res, stmt, i, 4)));
		json_object_set_new(h, "change",
		    json_boolean(db_bool(res, stmt, i, 5)));
		json_array_append_new(items, h);
	}
	return items;
}

static void
set_parts(json_t *o, json_t *data)
{
	json_t *parts = ent_record_parts(data);

	json_object_update(o, parts);
	json_decref(parts);
}

json_t *
ent_licence_check(const char *licence, json_t *data)
{
	json_t *l = licence != NULL ? json_loads(licence, 0, NULL) : NULL;
	const char *status = json_string_value(json_object_get(l, "status"));
	json_t *check;

	/* running is the queue's business: the caller sees pending */
	if (status != NULL && strcmp(status, "running") == 0)
		status = "pending";
	check =
	    lic_compare(status, json_string_value(json_object_get(l, "reason")),
	        json_object_get(l, "fields"), data);
	json_decref(l);
	return check;
}

json_t *
ent_record_json(const struct db_result *res, int rec, int hist, int with_claim)
{
	if (db_rows(res, rec) != 1)
		return NULL;
	const char *work = db_value(res, rec, 0, REC_WORK_STATUS);
	json_t *data = json_loads(db_value(res, rec, 0, REC_DATA), 0, NULL);
	json_t *approved = NULL;
	json_t *o = json_pack("{s:s, s:s}", "id", db_value(res, rec, 0, REC_ID),
	    "uscc", db_value(res, rec, 0, REC_USCC));

	if (db_value(res, rec, 0, REC_APPROVED_DATA) != NULL)
		approved = json_loads(db_value(res, rec, 0, REC_APPROVED_DATA),
		    0, NULL);
	if (approved != NULL) {
		/* The approved data stays in force while a change is under way. */
		json_object_set_new(o, "status", json_string("approved"));
		set_parts(o, approved);
		if (strcmp(work, "approved") != 0) {
			json_t *change = json_pack("{s:s}", "status", work);
			set_parts(change, data);
			json_object_set_new(o, "change", change);
		} else {
			json_object_set_new(o, "change", json_null());
		}
	} else {
		json_object_set_new(o, "status", json_string(work));
		set_parts(o, data);
		json_object_set_new(o, "change", json_null());
	}
	json_object_set_new(o, "history", history_json(res, hist));
	json_object_set_new(o, "licence_check",
	    ent_licence_check(db_value(res, rec, 0, REC_LICENCE), data));
	json_object_set_new(o, "updated_at",
	    json_string(db_value(res, rec, 0, REC_UPDATED_AT)));
	json_object_set_new(o, "approved_at",
	    ent_json_str(db_value(res, rec, 0, REC_APPROVED_AT)));
	json_object_set_new(o, "submitted_at",
	    ent_json_str(db_value(res, rec, 0, REC_SUBMITTED_AT)));
	if (with_claim) {
		json_object_set_new(o, "claimed_by",
		    ent_json_str(db_value(res, rec, 0, REC_CLAIMED_BY)));
		json_object_set_new(o, "claimed_until",
		    ent_json_str(db_value(res, rec, 0, REC_CLAIMED_UNTIL)));
	}
	json_decref(data);
	json_decref(approved);
	return o;
}
