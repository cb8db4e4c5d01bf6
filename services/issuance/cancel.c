/* cancel — 注销: the holder, or the enterprise's administrator for a
 * certificate of the enterprise (a member left), cancels a certificate. One
 * statement (cancel_certificate(), 040_cancel.sql) revokes it with reason
 * cessation_of_operation (the CRL and the interop API follow), emits
 * issuance.cert.cancelled (auth unbinds the key and ends the rights it
 * gave) and the audit entry. Anyone else's certificate answers 404. */
#include "issuance.h"

#include "access.h"
#include "audit.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "vendor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cancel_on_done(void *arg, const struct db_result *res);

static void
cancel_start(struct http_req *req)
{
	const struct session *s = req->session;
	char event[37], job[37], cancel_event[37], *forward;
	const char *uscc = NULL;

	if (s->staff_id != NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能注销证书，请使用吊销");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	/* The administrator (scope enterprise) any certificate of the
	 * enterprise; everyone their own, by the key's account. */
	if (access_scope(s, ACCESS_CERTS) == ACCESS_ENTERPRISE)
		uscc = s->uscc;
	uuid_v4(event);
	uuid_v4(job);
	uuid_v4(cancel_event);
	forward = vendor_forward_names();
	const struct audit_entry e = {.action = "cert.cancelled",
	    .object_type = "certificate",
	    .object_id = req->params[0]};
	json_t *audit = audit_event_data(req, &e);
	char *audit_text = json_dumps(audit, JSON_COMPACT);
	const char *p[] = {req->params[0], uscc, s->account_id, event, job,
	    forward, cancel_event, audit_text};
	db_query(issuance.svc.db, store_cancel_sql, 8, p, cancel_on_done, req);
	free(audit_text);
	json_decref(audit);
	free(forward);
}

static json_t *
cancel_time_json(const char *epoch)
{
	char buf[48];

	time_rfc3339(atoll(epoch) * 1000, buf);
	return json_string(buf);
}

static void
cancel_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	log_info(req->id, "msg=cert_cancelled cert_id=%s serial=%s by=%s",
	    req->params[0], db_value(res, 0, 0, 0), db_value(res, 0, 0, 5));
	issuance_count("revoked");
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:s}", "cert_id",
	        req->params[0], "serial", db_value(res, 0, 0, 0), "issuer",
	        db_value(res, 0, 0, 1), "status", "revoked", "reason",
	        "cessation_of_operation", "revoked_at",
	        cancel_time_json(db_value(res, 0, 0, 2)), "vendor_notified",
	        !db_bool(res, 0, 0, 4), "cancelled_by",
	        db_value(res, 0, 0, 5)));
}

void
cert_cancel(struct http_req *req)
{
	session_require(req, cancel_start);
}
