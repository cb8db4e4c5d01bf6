/* change — 自主变更 (issue 19): after an approved change of the enterprise
 * record (a new name), the holder of a certificate whose subject names the
 * old name asks for its change: change_application() (040_subject_change.sql)
 * answers the change application — the subject with the approved name —
 * which is issued with the same calls as a new certificate
 * (/certs/{application_id}/issue/challenge, /issue), not paid for; the new
 * certificate joins the lineage and the old one is revoked with
 * affiliation_changed once the holder has collected it. */
#include "issuance.h"

#include "db.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void
change_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	log_info(req->id, "msg=change_application cert_id=%s app=%s status=%s",
	    req->params[0], db_value(res, 0, 0, 0), db_value(res, 0, 0, 2));
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:o, s:s, s:s}", "application_id",
	        db_value(res, 0, 0, 0), "cert_id", req->params[0], "subject",
	        json_loads(db_value(res, 0, 0, 1), 0, NULL), "status",
	        db_value(res, 0, 0, 2), "previous_enterprise_name",
	        db_value(res, 0, 0, 3) ? db_value(res, 0, 0, 3) : ""));
}

static void
change_start(struct http_req *req)
{
	char app[37];

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能办理证书变更");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	uuid_v4(app);
	const char *p[] = {req->params[0], req->session->account_id, app};
	db_query(issuance.svc.db, store_change_application_sql, 3, p,
	    change_on_done, req);
}

void
cert_change(struct http_req *req)
{
	session_require(req, change_start);
}
