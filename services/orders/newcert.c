/* newcert — POST /api/v1/orders/new-certificate (issue 19): the product
 * "new certificate". An approved enterprise's administrator applies for
 * the master lock (for themselves) or a staff lock for a member (the member
 * identity must exist; its role is the lock kind), a person for their
 * personal lock. The subject is never typed: new_cert_order()
 * (040_new_certificate.sql) takes it from the approved record and the
 * holder's completed profile, prices each chosen platform at the
 * new-association price, and places the order with orders.order.created
 * (issuance learns the application from it); payment is as for renewals. */
#include "orders.h"

#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEWCERT_MAX_PLATFORMS 64

static const struct newcert_refusal {
	const char *rule;
	int status;
	const char *code;
	const char *field;
	const char *message;
} newcert_refusals[] = {
    {"NOT_ADMIN", 403, "NOT_ENTERPRISE_ADMIN", NULL,
        "只有单位管理员可以为他人申请证书锁"},
    {"MEMBER_NOT_FOUND", 404, "NOT_FOUND", "member_identity_id",
        "该人员不是本单位的成员"},
    {"ENTERPRISE_NOT_APPROVED", 403, "ENTERPRISE_NOT_APPROVED", NULL,
        "单位信息尚未审核通过，不能申请证书"},
    {"PROFILE_INCOMPLETE", 403, "PROFILE_INCOMPLETE", NULL,
        "持锁人尚未完善个人信息，不能申请证书"},
    {"PLATFORM_UNKNOWN", 422, "PLATFORM_UNKNOWN", "platforms",
        "平台不存在或已停用"},
    {"PLATFORMS_EMPTY", 422, "FIELD_REQUIRED", "platforms",
        "请至少选择一个平台"},
    {"CERT_NOT_FOUND", 404, "CERT_NOT_FOUND", "replaces_cert_id", "证书不存在"},
    {"CERT_STILL_RENEWABLE", 409, "CERT_STILL_RENEWABLE", "replaces_cert_id",
        "该证书仍可延期年检，请办理证书延期"},
};

static void
newcert_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	json_error_t jerr;
	json_t *order;

	if (res->status == DB_REFUSED && res->message != NULL) {
		for (size_t i = 0; i < ARRAY_LEN(newcert_refusals); i++) {
			const struct newcert_refusal *r = &newcert_refusals[i];

			if (strcmp(r->rule, res->message) == 0) {
				http_reply_error(req, r->status, r->code,
				    r->field, r->message);
				return;
			}
		}
	}
	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		http_reply_db_error(req, res);
		return;
	}
	order = json_loads(db_value(res, 0, 0, 0), 0, &jerr);
	if (order == NULL) {
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	log_info(req->id, "msg=new_cert_order order=%s number=%s",
	    json_string_value(json_object_get(order, "id")),
	    json_string_value(json_object_get(order, "number")));
	http_reply_json(req, 201, order);
}

static void
newcert_body_free(void *p)
{
	json_decref(p);
}

static void
newcert_start(struct http_req *req)
{
	const struct session *s = req->session;
	struct json_field_err err;
	const char *member = NULL, *replaces = NULL;
	json_t *body, *platforms = NULL, *v;
	char order[37], app[37], ttl[24], after[24], *literal, *p;
	size_t i, len = 2;

	if (orders_require_holder(req) != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	http_req_attach(req, body, newcert_body_free);
	if (json_field_str(body, "replaces_cert_id", JSON_FIELD_OPTIONAL, 36,
	        &replaces, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	/* Applying again for a long-expired certificate: its platforms are
	 * the default. */
	if (json_field_str_array(body, "platforms",
	        replaces ? JSON_FIELD_OPTIONAL : JSON_FIELD_REQUIRED,
	        NEWCERT_MAX_PLATFORMS, NULL, &platforms, &err) != 0 ||
	    json_field_str(body, "member_identity_id", JSON_FIELD_OPTIONAL, 36,
	        &member, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (member != NULL && !uuid_valid(member)) {
		http_reply_error(req, 422, "FIELD_INVALID",
		    "member_identity_id", "member_identity_id 格式不正确");
		return;
	}
	if (replaces != NULL && !uuid_valid(replaces)) {
		http_reply_error(req, 422, "FIELD_INVALID", "replaces_cert_id",
		    "replaces_cert_id 格式不正确");
		return;
	}
	json_array_foreach(platforms, i, v)
	{
		const char *code = json_string_value(v);

		if (!order_platform_code_valid(code)) {
			http_reply_error(req, 422, "PLATFORM_UNKNOWN",
			    "platforms", "平台不存在或已停用");
			return;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(code,
			        json_string_value(
			            json_array_get(platforms, j))) == 0) {
				http_reply_error(req, 422, "FIELD_INVALID",
				    "platforms", "平台不能重复");
				return;
			}
		len += strlen(code) + 1;
	}
	/* "{A,B}": the codes are [A-Z0-9_] only (checked above). */
	literal = p = xmalloc(len + 1);
	*p++ = '{';
	json_array_foreach(platforms, i, v)
	{
		p += sprintf(p, "%s%s", i ? "," : "", json_string_value(v));
	}
	*p++ = '}';
	*p = '\0';
	uuid_v4(order);
	uuid_v4(app);
	snprintf(ttl, sizeof(ttl), "%ld", orders.cfg.order_ttl);
	snprintf(after, sizeof(after), "%ld", orders.cfg.window.after_days);
	const char *params[] = {order, app, s->account_id, s->identity_id,
	    s->identity_type, s->role, s->uscc, member, literal, ttl, replaces,
	    after};
	db_query(orders.svc.db, store_new_cert_order_sql, 12, params,
	    newcert_on_done, req);
	free(literal);
}

void
orders_new_certificate(struct http_req *req)
{
	session_require(req, newcert_start);
}
