/* request — what the handler files (handlers.c, ca.c) share: reading a
 * required field, the SMS refusal replies, and the session object from the
 * store's session view. A leaf: it calls nothing else of the service. */
#include "auth.h"

#include "db.h"
#include "json.h"

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
