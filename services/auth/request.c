/* request — what the handler files (handlers.c, ca.c) share: reading a
 * required field, the SMS refusal replies, and the session object from the
 * store's session view, the audit base and the rewrite of sessions whose
 * identity ended. A leaf: it calls only the store. */
#include "auth.h"

#include "audit.h"
#include "db.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>

int
auth_field(struct http_req *req, json_t *body, const char *field, size_t max,
    const char **out)
{
	struct json_field_err err;

	if (json_field_str(body, field, JSON_FIELD_REQUIRED, max, out, &err) !=
	    0) {
		http_reply_field_error(req, &err);
		return -1;
	}
	return 0;
}

void
auth_reply_sms_refused(struct http_req *req, enum sms_result r)
{
	if (r == SMS_UNAVAILABLE)
		http_reply_unavailable(req, "redis");
	else
		http_reply_error(req, 401, "SMS_CODE_INVALID", "sms_code",
		    "短信验证码错误或已失效");
}

json_t *
auth_session_from_view(const struct db_result *res, int stmt)
{
	json_t *s = json_pack("{s:s, s:s}", "account_id",
	    db_value(res, stmt, 0, 0), "phone", db_value(res, stmt, 0, 1));
	const char *identity = db_value(res, stmt, 0, 2);

	if (identity != NULL) {
		json_object_set_new(s, "identity_id", json_string(identity));
		json_object_set_new(s, "identity_type",
		    json_string(db_value(res, stmt, 0, 3)));
		if (db_value(res, stmt, 0, 4) != NULL) {
			json_object_set_new(s, "role",
			    json_string(db_value(res, stmt, 0, 4)));
			json_object_set_new(s, "enterprise_id",
			    json_string(db_value(res, stmt, 0, 5)));
			json_object_set_new(s, "uscc",
			    json_string(db_value(res, stmt, 0, 5)));
			json_object_set_new(s, "enterprise_name",
			    json_string(db_value(res, stmt, 0, 6)));
		}
	}
	return s;
}

struct sessions_op {
	auth_sessions_fn cb;
	void *arg;
	char account[37];
};

static void
sessions_on_rewritten(void *arg, const struct kv_reply *reply)
{
	struct sessions_op *op = arg;
	int failed = reply == NULL || kv_reply_type(reply) == KV_ERROR;

	if (failed)
		log_error(NULL, "msg=sessions_not_rewritten account=%s",
		    op->account);
	if (op->cb != NULL)
		op->cb(op->arg, failed ? -1 : 0);
	free(op);
}

void
auth_sessions_drop_identity(const char *account_id, const char *identity_id,
    json_t *replacement, auth_sessions_fn cb, void *arg)
{
	struct sessions_op *op = xcalloc(1, sizeof(*op));
	char key[128];
	char *repl =
	    replacement ? json_dumps(replacement, JSON_COMPACT) : xstrdup("");

	op->cb = cb;
	op->arg = arg;
	snprintf(op->account, sizeof(op->account), "%s", account_id);
	store_sessions_key(key, sizeof(key), account_id);
	const char *argv[] = {"EVAL", store_session_identity_lua, "1", key,
	    identity_id, repl};
	kv_command(auth.svc.kv, sessions_on_rewritten, op, 6, argv, NULL);
	free(repl);
}

char *
auth_audit_base(const struct http_req *req)
{
	const struct audit_entry e = {"", "", "", NULL, NULL, NULL};
	json_t *d = audit_event_data(req, &e);
	char *text;

	/* ident_audit() sets these per entry. */
	json_object_del(d, "action");
	json_object_del(d, "object_type");
	json_object_del(d, "object_id");
	json_object_del(d, "uscc");
	json_object_del(d, "before");
	json_object_del(d, "after");
	text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return text;
}
