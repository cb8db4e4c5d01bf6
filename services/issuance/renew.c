/* renew — renewal on the USB key (更新数字证书): the challenge, then the
 * two proofs (the nonce signed by the current key, the CSR's own signature
 * for the new key), the paid entitlement and the window; renewal_begin()
 * records the intent with its reserved serial before the vendor CA is asked,
 * renewal_complete() records what it issued (services/issuance/README.md). */
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

/* Splits a PEM bundle into a JSON array of PEM certificates. */
static json_t *
chain_json(const char *chain)
{
	static const char end_marker[] = "-----END CERTIFICATE-----";
	json_t *arr = json_array();
	const char *p = chain ? chain : "";

	for (;;) {
		const char *begin = strstr(p, "-----BEGIN CERTIFICATE-----");
		const char *end = begin ? strstr(begin, end_marker) : NULL;
		if (end == NULL)
			break;
		end += sizeof(end_marker) - 1;
		char *one = xasprintf("%.*s\n", (int)(end - begin), begin);
		json_array_append_new(arr, json_string(one));
		free(one);
		p = end;
	}
	return arr;
}

/* The 201 answer from a store_renewal_result_sql row. */
static json_t *
result_json(const struct db_result *res, int stmt)
{
	char nb[48], na[48];
	json_t *platforms = json_loads(db_value(res, stmt, 0, 5), 0, NULL);

	time_rfc3339(atoll(db_value(res, stmt, 0, 3)) * 1000, nb);
	time_rfc3339(atoll(db_value(res, stmt, 0, 4)) * 1000, na);
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o}", "cert_id",
	    db_value(res, stmt, 0, 6), "certificate", db_value(res, stmt, 0, 0),
	    "chain", chain_json(db_value(res, stmt, 0, 1)), "serial",
	    db_value(res, stmt, 0, 2), "not_before", nb, "not_after", na,
	    "platforms", platforms ? platforms : json_array());
}

/* ---- POST /api/v1/certs/{id}/renewal/challenge ------------------------- */

static void challenge_on_loaded(void *arg, const struct db_result *res);
static void challenge_on_issued(void *arg, const struct challenge *c);

static void
challenge_start(struct http_req *req)
{
	struct db_batch *b;
	char days[24];

	if (req->session->account_id == NULL) {
		issuance_refuse(req, "STAFF_CANNOT_RENEW");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	snprintf(days, sizeof(days), "%ld", issuance.cfg.replay_days);
	b = db_batch_new();
	const char *p[] = {req->params[0]};
	db_batch_add(b, store_challenge_lineage_sql, 1, p);
	const char *q[] = {req->params[0], days};
	db_batch_add(b, store_challenge_intent_sql, 2, q);
	db_batch_add(b, store_challenge_paid_sql, 1, p);
	db_batch_run(issuance.svc.db, b, challenge_on_loaded, req);
}

static void
challenge_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	const char *account, *target, *serial;
	int revoked, has_pem, pending, collectable, paid;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	account = db_value(res, 0, 0, 0);
	if (db_rows(res, 0) != 1 || account == NULL ||
	    strcmp(account, req->session->account_id) != 0) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	pending = db_rows(res, 1) == 1 &&
	    strcmp(db_value(res, 1, 0, 1), "pending") == 0;
	collectable = db_rows(res, 1) == 1 && db_bool(res, 1, 0, 3);
	paid = atol(db_value(res, 2, 0, 0)) > 0;
	/* The certificate on the key: the latest, or the one a pending or
	 * uncollected renewal replaces. */
	if (pending || (!paid && collectable)) {
		target = db_value(res, 1, 0, 2);
		serial = db_value(res, 1, 0, 4);
		has_pem = db_bool(res, 1, 0, 5);
		revoked = db_bool(res, 1, 0, 6);
	} else {
		target = db_value(res, 0, 0, 1);
		serial = db_value(res, 0, 0, 4);
		revoked = db_bool(res, 0, 0, 2);
		has_pem = db_bool(res, 0, 0, 3);
	}
	if (revoked) {
		issuance_refuse(req, "CERT_REVOKED");
		return;
	}
	if (!pending && !paid && !collectable) {
		issuance_refuse(req, "NO_PAID_RENEWAL");
		return;
	}
	if (!has_pem) {
		issuance_refuse(req, "CERT_NOT_RENEWABLE");
		return;
	}
	/* The serial of the certificate to sign with, kept for the answer. */
	http_req_attach(req, xstrdup(serial), free);
	json_t *facts = json_pack("{s:s, s:s, s:s}", "cert_id", req->params[0],
	    "target", target, "account", req->session->account_id);
	challenge_issue(issuance.svc.kv, &store_renewal_challenge,
	    issuance.cfg.challenge_ttl, facts, challenge_on_issued, req);
	json_decref(facts);
}

static void
challenge_on_issued(void *arg, const struct challenge *c)
{
	struct http_req *req = arg;
	json_t *o;

	if (c == NULL) {
		http_reply_unavailable(req, "redis");
		return;
	}
	o = challenge_json(c);
	json_object_set_new(o, "serial", json_string(req->data));
	http_reply_json(req, 200, o);
}

void
cert_renewal_challenge(struct http_req *req)
{
	session_require(req, challenge_start);
}

/* ---- POST /api/v1/certs/{id}/renewal ----------------------------------- */

struct renewal {
	struct http_req *req;
	json_t *body;
	const char *csr_pem, *signature;
	char target[37];
	unsigned char nonce[CHALLENGE_NONCE_LEN];
	/* loaded */
	char *target_pem, *target_vendor;
	char
	    *latest_pem; /* the renewed certificate, when the target is older */
	time_t target_not_after, paid_at;
	int has_intent;
	/* set by the worker */
	int sig_ok, signed_by_latest;
	const char *csr_code, *csr_message;
	char csr_spki[CRYPTO_SHA256_HEX_SIZE];
	/* the intent */
	char intent[37], serial[65], adapter[32];
	char *intent_csr;
	struct crypto_csr *csr; /* csr_pem parsed and verified by the worker */
	time_t not_before, not_after;
	int attempts;
	struct vendor *vendor;
};

static void
renewal_free(void *p)
{
	struct renewal *r = p;

	json_decref(r->body);
	free(r->target_pem);
	free(r->target_vendor);
	free(r->latest_pem);
	free(r->intent_csr);
	crypto_csr_free(r->csr);
	free(r);
}

static void renewal_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t);
static void renewal_on_loaded(void *arg, const struct db_result *res);
static void renewal_verify(void *arg);
static void renewal_on_verified(void *arg);
static void renewal_on_begun(void *arg, const struct db_result *res);
static void renewal_on_issued(void *arg, const struct vendor_cert_result *res);
static void renewal_on_recorded(void *arg, const struct db_result *res);
static void renewal_on_failed(void *arg, const struct db_result *res);
static void renewal_on_replay(void *arg, const struct db_result *res);

static int
field(struct http_req *req, json_t *body, const char *name, size_t max,
    const char **out)
{
	struct json_field_err err;

	if (json_field_str(body, name, JSON_FIELD_REQUIRED, max, out, &err) !=
	    0) {
		http_reply_field_error(req, &err);
		return -1;
	}
	return 0;
}

static void
renewal_start(struct http_req *req)
{
	const char *challenge_id;
	json_t *body;

	if (req->session->account_id == NULL) {
		issuance_refuse(req, "STAFF_CANNOT_RENEW");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	if (http_read_json(req, &body) != 0)
		return;
	struct renewal *r = xcalloc(1, sizeof(*r));
	r->req = req;
	r->body = body;
	http_req_attach(req, r, renewal_free);
	if (field(req, body, "challenge_id", 64, &challenge_id) != 0 ||
	    field(req, body, "csr", 32768, &r->csr_pem) != 0 ||
	    field(req, body, "signature", 4096, &r->signature) != 0)
		return;
	challenge_take(issuance.svc.kv, &store_renewal_challenge, challenge_id,
	    renewal_on_challenge, r);
}

/* The challenge is spent whatever it says; it counts only for the
 * certificate and the account it was issued to. */
static void
renewal_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	const char *cert_id, *target, *account;

	if (status == CHALLENGE_UNAVAILABLE) {
		http_reply_unavailable(req, "redis");
		return;
	}
	if (status != CHALLENGE_OK) {
		issuance_refuse(req, "CHALLENGE_INVALID");
		return;
	}
	cert_id = json_string_value(json_object_get(t->facts, "cert_id"));
	target = json_string_value(json_object_get(t->facts, "target"));
	account = json_string_value(json_object_get(t->facts, "account"));
	if (cert_id == NULL || target == NULL || account == NULL ||
	    strcmp(cert_id, req->params[0]) != 0 ||
	    strcmp(account, req->session->account_id) != 0 ||
	    !uuid_valid(target)) {
		issuance_refuse(req, "CHALLENGE_INVALID");
		return;
	}
	memcpy(r->nonce, t->nonce, sizeof(r->nonce));
	snprintf(r->target, sizeof(r->target), "%s", target);
	struct db_batch *b = db_batch_new();
	const char *p[] = {r->target};
	db_batch_add(b, store_renew_target_sql, 1, p);
	const char *q[] = {req->params[0]};
	db_batch_add(b, store_renew_paid_sql, 1, q);
	db_batch_add(b, store_renew_intent_sql, 1, p);
	db_batch_run(issuance.svc.db, b, renewal_on_loaded, r);
}

static void
renewal_on_loaded(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1 ||
	    strcmp(db_value(res, 0, 0, 0), req->params[0]) != 0) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	if (db_bool(res, 0, 0, 3)) {
		issuance_refuse(req, "CERT_REVOKED");
		return;
	}
	if (db_value(res, 0, 0, 1) == NULL) {
		issuance_refuse(req, "CERT_NOT_RENEWABLE");
		return;
	}
	r->target_pem = xstrdup(db_value(res, 0, 0, 1));
	r->target_not_after = (time_t)atoll(db_value(res, 0, 0, 2));
	r->target_vendor = xstrdup(db_value(res, 0, 0, 6));
	if (db_value(res, 0, 0, 8) != NULL)
		r->latest_pem = xstrdup(db_value(res, 0, 0, 8));
	r->paid_at =
	    db_rows(res, 1) == 1 ? (time_t)atoll(db_value(res, 1, 0, 0)) : 0;
	r->has_intent = db_rows(res, 2) == 1;
	work_submit(renewal_verify, renewal_on_verified, r);
}

/* On a worker: the two proofs. Touches only r. */
static void
renewal_verify(void *arg)
{
	struct renewal *r = arg;
	struct crypto_cert *cert = NULL;
	struct crypto_csr *csr = NULL;

	if (crypto_cert_parse(&cert, r->target_pem, NULL) != 0)
		return; /* sig_ok stays 0 */
	r->sig_ok = challenge_signature_ok(cert->key, r->nonce, r->signature);
	/* Signed by the renewed certificate's key: the key already holds the
	 * new certificate, so this is a new renewal, and unpaid. */
	if (!r->sig_ok && r->latest_pem != NULL) {
		struct crypto_cert *latest = NULL;
		if (crypto_cert_parse(&latest, r->latest_pem, NULL) == 0 &&
		    challenge_signature_ok(latest->key, r->nonce, r->signature))
			r->signed_by_latest = 1;
		crypto_cert_free(latest);
	}
	if (crypto_csr_parse_verify(&csr, r->csr_pem) != 0) {
		r->csr_code = "CSR_INVALID";
		r->csr_message = "证书请求（CSR）格式不正确或签名无效";
	} else if (strcmp(csr->subject_dn, cert->subject_dn) != 0) {
		r->csr_code = "CSR_SUBJECT_MISMATCH";
		r->csr_message = "证书请求的主题与当前证书不一致";
	} else if (strcmp(csr->spki_sha256, cert->spki_sha256) == 0) {
		r->csr_code = "CSR_KEY_REUSED";
		r->csr_message = "证书请求必须使用新的密钥对";
	} else if (csr->key_type == CRYPTO_KEY_OTHER ||
	    (csr->key_type == CRYPTO_KEY_RSA &&
	        crypto_key_bits(csr->key) < 2048)) {
		r->csr_code = "CSR_KEY_UNSUPPORTED";
		r->csr_message =
		    "不支持该密钥类型或长度（支持 RSA 2048 位以上、ECDSA P-256、SM2）";
	} else {
		snprintf(r->csr_spki, sizeof(r->csr_spki), "%s",
		    csr->spki_sha256);
		r->csr = csr; /* signed as it is: not parsed a second time */
		csr = NULL;
	}
	crypto_csr_free(csr);
	crypto_cert_free(cert);
}

static void
renewal_on_verified(void *arg)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	time_t now = time(NULL);
	char intent[37], serial[33], nb[24], na[24], lease[24];
	struct vendor *v;

	if (r->signed_by_latest) {
		issuance_refuse(req, "NO_PAID_RENEWAL");
		return;
	}
	if (!r->sig_ok) {
		http_reply_error(req, 401, "BAD_SIGNATURE", "signature",
		    "签名验证失败：请使用当前证书锁签名");
		return;
	}
	if (r->csr_code != NULL) {
		http_reply_error(req, 422, r->csr_code, "csr", r->csr_message);
		return;
	}
	if (!r->has_intent) {
		enum renewal_window_state w;

		if (r->paid_at == 0) {
			issuance_refuse(req, "NO_PAID_RENEWAL");
			return;
		}
		w = renewal_window_allowed(&issuance.window.window,
		    r->target_not_after, now, r->paid_at);
		if (w == RENEWAL_WINDOW_NOT_YET) {
			issuance_refuse(req, "NOT_IN_RENEWAL_WINDOW");
			return;
		}
		if (w == RENEWAL_WINDOW_TOO_LATE) {
			issuance_refuse(req, "EXPIRED_TOO_LONG");
			return;
		}
	}
	cert_renewal_validity(&issuance.window, r->target_not_after, now,
	    &r->not_before, &r->not_after);
	v = vendor_for(r->target_vendor, issuance.cfg.adapters,
	    issuance.cfg.default_adapter);
	uuid_v4(intent);
	crypto_random_serial(serial);
	snprintf(nb, sizeof(nb), "%lld", (long long)r->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)r->not_after);
	snprintf(lease, sizeof(lease), "%ld", issuance.cfg.lease_seconds);
	const char *p[] = {req->params[0], r->target, r->csr_spki, r->csr_pem,
	    intent, serial, v->adapter, nb, na, lease};
	db_query(issuance.svc.db, store_renewal_begin_sql, 10, p,
	    renewal_on_begun, r);
}

static void
renewal_on_begun(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	const char *outcome;

	if (res->status == DB_CONFLICT) {
		/* a concurrent renewal of the same certificate won the race */
		issuance_refuse(req, "RENEWAL_IN_PROGRESS");
		return;
	}
	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	outcome = db_value(res, 0, 0, 0);
	snprintf(r->intent, sizeof(r->intent), "%s", db_value(res, 0, 0, 1));
	snprintf(r->serial, sizeof(r->serial), "%s", db_value(res, 0, 0, 2));
	r->not_before = (time_t)atoll(db_value(res, 0, 0, 3));
	r->not_after = (time_t)atoll(db_value(res, 0, 0, 4));
	snprintf(r->adapter, sizeof(r->adapter), "%s", db_value(res, 0, 0, 6));
	r->attempts = atoi(db_value(res, 0, 0, 7));
	r->intent_csr = xstrdup(db_value(res, 0, 0, 9));
	if (strcmp(outcome, "replay") == 0) {
		log_info(req->id, "msg=renewal_replayed intent=%s serial=%s",
		    r->intent, r->serial);
		const char *p[] = {r->intent};
		db_query(issuance.svc.db, store_renewal_result_sql, 1, p,
		    renewal_on_replay, r);
		return;
	}
	log_info(req->id,
	    "msg=renewal_%s intent=%s cert_id=%s serial=%s adapter=%s attempt=%d",
	    strcmp(outcome, "new") == 0 ? "started" : "resumed", r->intent,
	    req->params[0], r->serial, r->adapter, r->attempts);
	issuance_fault_point(ISSUANCE_FAULT_CRASH_BEFORE_VENDOR);
	r->vendor = vendor_by_adapter(r->adapter);
	if (r->vendor == NULL) {
		const struct vendor_cert_result none = {VENDOR_UNAVAILABLE,
		    NULL, NULL, "adapter not configured"};
		renewal_on_issued(r, &none);
		return;
	}
	const struct vendor_cert_request vr = {r->intent, r->serial,
	    r->intent_csr, r->target_pem, r->not_before, r->not_after};
	/* A resumed intent signs its own CSR, perhaps not this request's. */
	vendor_renew_csr(r->vendor, &vr,
	    r->intent_csr != NULL && strcmp(r->intent_csr, r->csr_pem) == 0
	        ? r->csr
	        : NULL,
	    renewal_on_issued, r);
}

static void
renewal_on_issued(void *arg, const struct vendor_cert_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
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
		if (cert_renewal_record(b, r->intent, r->vendor->name,
		        r->csr_spki, r->serial, res->certificate, res->chain,
		        err, sizeof(err)) == 0) {
			db_batch_run(issuance.svc.db, b, renewal_on_recorded,
			    r);
			return;
		}
		db_batch_free(b);
		log_error(req->id,
		    "msg=vendor_certificate_refused intent=%s error=\"%s\"",
		    r->intent, err);
		issuance_count("vendor_bad_certificate");
		final = 0;
		bad = (struct vendor_cert_result){VENDOR_UNAVAILABLE, NULL,
		    NULL, err};
		res = &bad;
	}
	r->csr_code = final ? "CSR_REJECTED" : NULL;
	cert_vendor_failed(req->id, 0, r->intent, r->adapter, r->attempts,
	    final, res->error, renewal_on_failed, r);
	if (!final)
		issuance_sweep_kick(); /* the intent stays pending */
}

static void
renewal_on_failed(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;

	if (r->csr_code != NULL) {
		http_reply_error(r->req, 422, "CSR_REJECTED", "csr",
		    "证书签发机构拒绝了该证书请求");
		return;
	}
	http_add_header(r->req, "Retry-After", "5");
	http_reply_error(r->req, 503, "VENDOR_CA_UNAVAILABLE", NULL,
	    "证书签发机构暂时无法签发，请稍后使用同一证书锁重试");
}

static void
renewal_on_recorded(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;

	if (res->status != DB_OK || db_rows(res, 1) != 1) {
		/* Issued but not recorded: the intent stays pending, leased;
		 * the resumer records it after the lease (asking the vendor
		 * again with the same id). */
		log_error(req->id,
		    "msg=renewal_record_failed intent=%s status=%d error=\"%s\"",
		    r->intent, res->status, res->message ? res->message : "");
		http_reply_db_error(req, res);
		return;
	}
	if (db_bool(res, 0, 0, 1))
		issuance_count("renewed");
	log_info(req->id, "msg=renewed intent=%s cert_id=%s serial=%s",
	    r->intent, req->params[0], r->serial);
	http_reply_json(req, 201, result_json(res, 1));
}

static void
renewal_on_replay(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		http_reply_db_error(r->req, res);
		return;
	}
	http_reply_json(r->req, 201, result_json(res, 0));
}

void
cert_renewal(struct http_req *req)
{
	session_require(req, renewal_start);
}
