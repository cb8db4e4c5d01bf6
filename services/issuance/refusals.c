/* refusals — the certificate rules issuance refuses by, in one table: the
 * rule's name (raised by our PL/pgSQL functions as RAISE EXCEPTION 'RULE',
 * or found by a handler before the database) → status, the API's stable
 * code, field and message. A leaf: it calls nothing else of the service. */
#include "issuance.h"

#include "db.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const struct refusal {
	const char *rule;
	int status;
	const char *code; /* the API's code */
	const char *field;
	const char *message;
	int retry_after_lease; /* Retry-After: the lease of an attempt */
} refusals[] = {
    {"CERT_NOT_FOUND", 404, "NOT_FOUND", NULL, "证书不存在", 0},
    {"INTEROP_CERT_NOT_FOUND", 404, "CERT_NOT_FOUND", NULL, "证书不存在", 0},
    {"STAFF_CANNOT_RENEW", 403, "FORBIDDEN", NULL, "工作人员账号不能更新证书",
        0},
    {"CHALLENGE_INVALID", 401, "CHALLENGE_INVALID", "challenge_id",
        "更新挑战无效或已过期，请重新读取证书", 0},
    {"CERT_REVOKED", 409, "CERT_REVOKED", NULL, "证书已被吊销", 0},
    {"CERT_SUPERSEDED", 409, "CERT_SUPERSEDED", NULL,
        "该证书已更新过，请读取证书锁中的最新证书", 0},
    {"CERT_NOT_RENEWABLE", 409, "CERT_NOT_RENEWABLE", NULL,
        "平台未保存该证书，请重新使用证书锁登录后再试", 0},
    {"NO_PAID_RENEWAL", 409, "NO_PAID_RENEWAL", NULL,
        "该证书没有已支付的延期年检订单，请先下单支付", 0},
    {"NOT_IN_RENEWAL_WINDOW", 409, "NOT_IN_RENEWAL_WINDOW", NULL,
        "未到年检时间", 0},
    {"EXPIRED_TOO_LONG", 409, "EXPIRED_TOO_LONG", NULL,
        "证书过期时间过长，请重新申请证书", 0},
    {"RENEWAL_PENDING", 409, "RENEWAL_PENDING", "csr",
        "上次证书更新尚未完成，请使用同一证书锁重试", 0},
    {"RENEWAL_IN_PROGRESS", 409, "RENEWAL_IN_PROGRESS", NULL,
        "证书更新正在进行中，请稍后重试", 1},
    {"NO_CHANGE", 409, "NO_CHANGE", NULL,
        "证书信息与审核通过的单位信息一致，无需变更", 0},
    {"APPLICATION_NOT_FOUND", 404, "NOT_FOUND", NULL, "证书申请不存在", 0},
    {"APPLICATION_NOT_PAID", 409, "APPLICATION_NOT_PAID", NULL,
        "该证书申请尚未支付，请先支付订单", 0},
    {"APPLICATION_ISSUED", 409, "APPLICATION_ISSUED", "csr",
        "该申请的证书已为另一密钥签发", 0},
    {"APPLICATION_PENDING", 409, "APPLICATION_PENDING", "csr",
        "该申请的证书尚未签发完成，请使用同一证书请求重试", 0},
    {"APPLICATION_CLOSED", 409, "APPLICATION_CLOSED", NULL,
        "该证书申请已关闭（订单已取消、过期或已退款，或证书已吊销、注销，或持锁人已不在该身份），请重新申请",
        0},
};

/* EXPIRED_TOO_LONG on a certificate's route (issue 19): not a dead end —
 * the answer points to a new application for the same holder and lock kind,
 * whose platforms orders carries over from the certificate. */
static int
refuse_expired_too_long(struct http_req *req, const struct refusal *r)
{
	if (strcmp(r->rule, "EXPIRED_TOO_LONG") != 0 ||
	    req->params[0] == NULL || !uuid_valid(req->params[0]))
		return -1;
	http_reply_json(req, r->status,
	    json_pack("{s:{s:s, s:s, s:{s:s, s:s, s:{s:s}}}}", "error", "code",
	        r->code, "message",
	        "证书过期时间过长，不能延期：请重新申请证书（已为您预填）",
	        "new_application", "method", "POST", "path",
	        "/api/v1/orders/new-certificate", "body", "replaces_cert_id",
	        req->params[0]));
	return 0;
}

void
issuance_refuse(struct http_req *req, const char *rule)
{
	for (size_t i = 0; rule != NULL && i < ARRAY_LEN(refusals); i++) {
		const struct refusal *r = &refusals[i];
		char secs[24];

		if (strcmp(r->rule, rule) != 0)
			continue;
		if (refuse_expired_too_long(req, r) == 0)
			return;
		if (r->retry_after_lease) {
			snprintf(secs, sizeof(secs), "%ld",
			    issuance.cfg.lease_seconds);
			http_add_header(req, "Retry-After", secs);
		}
		http_reply_error(req, r->status, r->code, r->field, r->message);
		return;
	}
	log_error(req->id, "msg=unknown_refusal rule=%s",
	    rule ? rule : "(null)");
	http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
}

void
issuance_reply_batch_error(struct http_req *req, const struct db_result *res)
{
	if (res->status == DB_REFUSED && res->message != NULL)
		issuance_refuse(req, res->message);
	else
		http_reply_db_error(req, res);
}
