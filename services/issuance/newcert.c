/* newcert — a new certificate's issue on the USB key (issue 19): the
 * holder of a paid application (orders' product new_certificate; issuance
 * learns it from orders.order.created) asks a challenge, which names the
 * subject the platform dictates (the approved record or the verified
 * profile: never typed), generates the key pair on the key, and sends the
 * CSR with the challenge signed by the new key (proof of possession beyond
 * the CSR's self-signature). As for renewals, the intent is recorded before
 * the vendor is asked (application_begin, 040_new_application.sql), so a
 * retry with the same CSR resumes or replays and nothing is issued twice;
 * the resumer in sweep.c finishes what a crash left. */
#include "issuance.h"

#include "challenge.h"
#include "crypto.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "vendor.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- POST /api/v1/certs/{id}/issue/challenge -------------------------- */

static void issue_challenge_on_loaded(void *arg, const struct db_result *res);
static void issue_challenge_on_issued(void *arg, const struct challenge *c);

/* The application's answer beside the challenge: subject, lock kind,
 * platforms. Attached to the request. */
struct issue_challenge {
	json_t *extra;
};

static void
issue_challenge_free(void *p)
{
	struct issue_challenge *ic = p;

	json_decref(ic->extra);
	free(ic);
}

static int
newcert_caller_ok(struct http_req *req)
{
	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能申请证书");
		return -1;
	}
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "APPLICATION_NOT_FOUND");
		return -1;
	}
	return 0;
}

static void
issue_challenge_start(struct http_req *req)
{
	if (newcert_caller_ok(req) != 0)
		return;
	const char *p[] = {req->params[0]};
	db_query(issuance.svc.db, store_application_get_sql, 1, p,
	    issue_challenge_on_loaded, req);
}

static void
issue_challenge_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1 ||
	    strcmp(db_value(res, 0, 0, 0), req->session->account_id) != 0) {
		issuance_refuse(req, "APPLICATION_NOT_FOUND");
		return;
	}
	if (strcmp(db_value(res, 0, 0, 1), "closed") == 0) {
		issuance_refuse(req, "APPLICATION_CLOSED");
		return;
	}
	if (strcmp(db_value(res, 0, 0, 1), "issued") != 0 &&
	    strcmp(db_value(res, 0, 0, 6), "change") != 0 &&
	    !db_bool(res, 0, 0, 3)) {
		issuance_refuse(req, "APPLICATION_NOT_PAID");
		return;
	}
	struct issue_challenge *ic = xcalloc(1, sizeof(*ic));
	ic->extra = json_pack("{s:o, s:s, s:o}", "subject",
	    json_loads(db_value(res, 0, 0, 2), 0, NULL), "lock_kind",
	    db_value(res, 0, 0, 4), "platforms",
	    json_loads(db_value(res, 0, 0, 5), 0, NULL));
	http_req_attach(req, ic, issue_challenge_free);
	json_t *facts = json_pack("{s:s, s:s}", "app", req->params[0],
	    "account", req->session->account_id);
	challenge_issue(issuance.svc.kv, &store_application_challenge,
	    issuance.cfg.challenge_ttl, facts, issue_challenge_on_issued, req);
	json_decref(facts);
}

static void
issue_challenge_on_issued(void *arg, const struct challenge *c)
{
	struct http_req *req = arg;
	struct issue_challenge *ic = req->data;
	json_t *o;

	if (c == NULL) {
		http_reply_unavailable(req, "redis");
		return;
	}
	o = challenge_json(c);
	json_object_update(o, ic->extra);
	http_reply_json(req, 200, o);
}

void
cert_issue_challenge(struct http_req *req)
{
	session_require(req, issue_challenge_start);
}

/* ---- POST /api/v1/certs/{id}/issue ------------------------------------ */

struct issue {
	struct http_req *req;
	json_t *body;
	const char *csr_pem, *signature;
	unsigned char nonce[CHALLENGE_NONCE_LEN];
	json_t *subject; /* the application's */
	/* set by the worker */
	int sig_ok;
	const char *csr_code, *csr_message;
	char csr_spki[CRYPTO_SHA256_HEX_SIZE];
	/* the intent */
	char serial[65], adapter[32];
	char *intent_csr;
	time_t not_before, not_after;
	int attempts;
	struct vendor *vendor;
};

static void
issue_free(void *p)
{
	struct issue *is = p;

	json_decref(is->body);
	json_decref(is->subject);
	free(is->intent_csr);
	free(is);
}

static void issue_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t);
static void issue_on_loaded(void *arg, const struct db_result *res);
static void issue_verify(void *arg);
static void issue_on_verified(void *arg);
static void issue_on_begun(void *arg, const struct db_result *res);
static void issue_on_issued(void *arg, const struct vendor_cert_result *res);
static void issue_on_recorded(void *arg, const struct db_result *res);
static void issue_on_failed(void *arg, const struct db_result *res);
static void issue_on_replay(void *arg, const struct db_result *res);

/* The holder is answered the certificate: for a change (自主变更) the
 * certificate it replaces is revoked now, and forwarded to its vendor CA
 * when that is a remote one (change_collected; nothing for a new
 * certificate). Added to the batch that reads the answer. */
static void
issue_collected_add(struct db_batch *b, const char *app)
{
	char event[37], job[37], *forward = vendor_forward_names();

	uuid_v4(event);
	uuid_v4(job);
	const char *p[] = {app, event, job, forward};
	db_batch_add(b, store_change_collected_sql, 4, p);
	free(forward);
}

static void
issue_start(struct http_req *req)
{
	struct json_field_err err;
	const char *challenge_id;
	json_t *body;

	if (newcert_caller_ok(req) != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct issue *is = xcalloc(1, sizeof(*is));
	is->req = req;
	is->body = body;
	http_req_attach(req, is, issue_free);
	if (json_field_str(body, "challenge_id", JSON_FIELD_REQUIRED, 64,
	        &challenge_id, &err) != 0 ||
	    json_field_str(body, "csr", JSON_FIELD_REQUIRED, 32768,
	        &is->csr_pem, &err) != 0 ||
	    json_field_str(body, "signature", JSON_FIELD_REQUIRED, 4096,
	        &is->signature, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	challenge_take(issuance.svc.kv, &store_application_challenge,
	    challenge_id, issue_on_challenge, is);
}

/* The challenge is spent whatever it says; it counts only for the
 * application and the account it was issued to. */
static void
issue_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t)
{
	struct issue *is = arg;
	struct http_req *req = is->req;
	const char *app, *account;

	if (status == CHALLENGE_UNAVAILABLE) {
		http_reply_unavailable(req, "redis");
		return;
	}
	if (status != CHALLENGE_OK) {
		issuance_refuse(req, "CHALLENGE_INVALID");
		return;
	}
	app = json_string_value(json_object_get(t->facts, "app"));
	account = json_string_value(json_object_get(t->facts, "account"));
	if (app == NULL || account == NULL ||
	    strcmp(app, req->params[0]) != 0 ||
	    strcmp(account, req->session->account_id) != 0) {
		issuance_refuse(req, "CHALLENGE_INVALID");
		return;
	}
	memcpy(is->nonce, t->nonce, sizeof(is->nonce));
	const char *p[] = {req->params[0]};
	db_query(issuance.svc.db, store_application_get_sql, 1, p,
	    issue_on_loaded, is);
}

static void
issue_on_loaded(void *arg, const struct db_result *res)
{
	struct issue *is = arg;
	struct http_req *req = is->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1 ||
	    strcmp(db_value(res, 0, 0, 0), req->session->account_id) != 0) {
		issuance_refuse(req, "APPLICATION_NOT_FOUND");
		return;
	}
	is->subject = json_loads(db_value(res, 0, 0, 2), 0, NULL);
	work_submit(issue_verify, issue_on_verified, is);
}

static int
same_field(const char *csr_value, json_t *subject, const char *key)
{
	const char *want = json_string_value(json_object_get(subject, key));

	if (csr_value == NULL || want == NULL)
		return csr_value == NULL && want == NULL;
	return strcmp(csr_value, want) == 0;
}

/* On a worker: the CSR and the proof of possession. Touches only is. */
static void
issue_verify(void *arg)
{
	struct issue *is = arg;
	struct crypto_csr *csr = NULL;

	if (crypto_csr_parse_verify(&csr, is->csr_pem) != 0) {
		is->csr_code = "CSR_INVALID";
		is->csr_message = "证书请求（CSR）格式不正确或签名无效";
		return;
	}
	is->sig_ok = challenge_signature_ok(csr->key, is->nonce, is->signature);
	if (!same_field(csr->subject.c, is->subject, "c") ||
	    !same_field(csr->subject.o, is->subject, "o") ||
	    !same_field(csr->subject.ou, is->subject, "ou") ||
	    !same_field(csr->subject.cn, is->subject, "cn") ||
	    !same_field(csr->subject.org_id, is->subject,
	        "organization_identifier")) {
		is->csr_code = "CSR_SUBJECT_MISMATCH";
		is->csr_message = "证书请求的主题与审核通过的信息不一致";
	} else if (csr->key_type == CRYPTO_KEY_OTHER ||
	    (csr->key_type == CRYPTO_KEY_RSA &&
	        crypto_key_bits(csr->key) < 2048)) {
		is->csr_code = "CSR_KEY_UNSUPPORTED";
		is->csr_message =
		    "不支持该密钥类型或长度（支持 RSA 2048 位以上、ECDSA P-256、SM2）";
	} else {
		snprintf(is->csr_spki, sizeof(is->csr_spki), "%s",
		    csr->spki_sha256);
	}
	crypto_csr_free(csr);
}

static void
issue_on_verified(void *arg)
{
	struct issue *is = arg;
	struct http_req *req = is->req;
	time_t now = time(NULL);
	char serial[33], nb[24], na[24], lease[24];
	struct vendor *v;

	if (is->csr_code != NULL && strcmp(is->csr_code, "CSR_INVALID") == 0) {
		http_reply_error(req, 422, is->csr_code, "csr",
		    is->csr_message);
		return;
	}
	if (!is->sig_ok) {
		http_reply_error(req, 401, "BAD_SIGNATURE", "signature",
		    "签名验证失败：请使用证书锁中新生成的密钥签名");
		return;
	}
	if (is->csr_code != NULL) {
		http_reply_error(req, 422, is->csr_code, "csr",
		    is->csr_message);
		return;
	}
	v = vendor_by_adapter(issuance.cfg.default_adapter);
	if (v == NULL) {
		http_add_header(req, "Retry-After", "5");
		http_reply_error(req, 503, "VENDOR_CA_UNAVAILABLE", NULL,
		    "证书签发机构暂时无法签发，请稍后重试");
		return;
	}
	crypto_random_serial(serial);
	snprintf(nb, sizeof(nb), "%lld",
	    (long long)(now - issuance.window.backdate_seconds));
	snprintf(na, sizeof(na), "%lld",
	    (long long)cert_add_months(now, issuance.window.term_months));
	snprintf(lease, sizeof(lease), "%ld", issuance.cfg.lease_seconds);
	const char *p[] = {req->params[0], req->session->account_id,
	    is->csr_spki, is->csr_pem, serial, v->adapter, nb, na, lease};
	db_query(issuance.svc.db, store_application_begin_sql, 9, p,
	    issue_on_begun, is);
}

static void
issue_on_begun(void *arg, const struct db_result *res)
{
	struct issue *is = arg;
	struct http_req *req = is->req;
	const char *outcome;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	outcome = db_value(res, 0, 0, 0);
	snprintf(is->serial, sizeof(is->serial), "%s", db_value(res, 0, 0, 1));
	is->not_before = (time_t)atoll(db_value(res, 0, 0, 2));
	is->not_after = (time_t)atoll(db_value(res, 0, 0, 3));
	snprintf(is->adapter, sizeof(is->adapter), "%s",
	    db_value(res, 0, 0, 4));
	is->attempts = atoi(db_value(res, 0, 0, 5));
	is->intent_csr = xstrdup(db_value(res, 0, 0, 6));
	if (strcmp(outcome, "replay") == 0) {
		log_info(req->id, "msg=issue_replayed app=%s serial=%s",
		    req->params[0], is->serial);
		struct db_batch *b = db_batch_new();
		const char *p[] = {req->params[0]};
		db_batch_add(b, store_application_result_sql, 1, p);
		issue_collected_add(b, req->params[0]);
		db_batch_run(issuance.svc.db, b, issue_on_replay, is);
		return;
	}
	log_info(req->id, "msg=issue_%s app=%s serial=%s adapter=%s attempt=%d",
	    strcmp(outcome, "new") == 0 ? "started" : "resumed", req->params[0],
	    is->serial, is->adapter, is->attempts);
	issuance_fault_point(ISSUANCE_FAULT_CRASH_BEFORE_VENDOR);
	is->vendor = vendor_by_adapter(is->adapter);
	if (is->vendor == NULL) {
		const struct vendor_cert_result none = {VENDOR_UNAVAILABLE,
		    NULL, NULL, "adapter not configured"};
		issue_on_issued(is, &none);
		return;
	}
	/* The application's id is the vendor request's idempotency key. */
	const struct vendor_cert_request vr = {req->params[0], is->serial,
	    is->intent_csr, NULL, is->not_before, is->not_after};
	vendor_create(is->vendor, &vr, issue_on_issued, is);
}

static void
issue_on_issued(void *arg, const struct vendor_cert_result *res)
{
	struct issue *is = arg;
	struct http_req *req = is->req;
	struct vendor_cert_result bad;
	char err[256];
	struct db_batch *b;
	int final = res->status == VENDOR_REJECTED;

	issuance_count(res->status == VENDOR_OK ? "vendor_ok"
	        : final                         ? "vendor_rejected"
	                                        : "vendor_unavailable");
	if (res->status == VENDOR_OK) {
		issuance_fault_point(ISSUANCE_FAULT_CRASH_AFTER_VENDOR);
		b = db_batch_new();
		if (cert_application_record(b, req->params[0], is->vendor->name,
		        is->csr_spki, is->serial, res->certificate, res->chain,
		        err, sizeof(err)) == 0) {
			issue_collected_add(b, req->params[0]);
			db_batch_run(issuance.svc.db, b, issue_on_recorded, is);
			return;
		}
		db_batch_free(b);
		log_error(req->id,
		    "msg=vendor_certificate_refused app=%s error=\"%s\"",
		    req->params[0], err);
		issuance_count("vendor_bad_certificate");
		final = 0;
		bad = (struct vendor_cert_result){VENDOR_UNAVAILABLE, NULL,
		    NULL, err};
		res = &bad;
	}
	is->csr_code = final ? "CSR_REJECTED" : NULL;
	cert_vendor_failed(req->id, 1, req->params[0], is->adapter,
	    is->attempts, final, res->error, issue_on_failed, is);
	if (!final)
		issuance_sweep_kick(); /* the application stays pending */
}

static void
issue_on_failed(void *arg, const struct db_result *res)
{
	struct issue *is = arg;

	if (is->csr_code != NULL) {
		http_reply_error(is->req, 422, "CSR_REJECTED", "csr",
		    "证书签发机构拒绝了该证书请求");
		return;
	}
	http_add_header(is->req, "Retry-After", "5");
	http_reply_error(is->req, 503, "VENDOR_CA_UNAVAILABLE", NULL,
	    "证书签发机构暂时无法签发，请稍后使用同一证书请求重试");
}

static void
issue_on_recorded(void *arg, const struct db_result *res)
{
	struct issue *is = arg;
	struct http_req *req = is->req;

	if (res->status != DB_OK || db_rows(res, 1) != 1) {
		/* Issued but not recorded: the application stays pending and
		 * leased; the resumer asks again with the same id. */
		log_error(req->id,
		    "msg=issue_record_failed app=%s status=%d error=\"%s\"",
		    req->params[0], res->status,
		    res->message ? res->message : "");
		issuance_sweep_kick();
		http_reply_db_error(req, res);
		return;
	}
	if (db_bool(res, 0, 0, 1))
		issuance_count("issued");
	if (db_rows(res, 2) == 1 && db_bool(res, 2, 0, 0))
		issuance_sweep_kick(); /* the replaced one's revocation job */
	log_info(req->id, "msg=issued app=%s serial=%s", req->params[0],
	    is->serial);
	http_reply_json(req, 201, cert_issued_json(res, 1));
}

static void
issue_on_replay(void *arg, const struct db_result *res)
{
	struct issue *is = arg;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		http_reply_db_error(is->req, res);
		return;
	}
	if (db_rows(res, 1) == 1 && db_bool(res, 1, 0, 0))
		issuance_sweep_kick(); /* the replaced one's revocation job */
	http_reply_json(is->req, 201, cert_issued_json(res, 0));
}

void
cert_issue(struct http_req *req)
{
	session_require(req, issue_start);
}
