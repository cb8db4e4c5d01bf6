/* renew — renewal on the USB key (更新数字证书): the challenge, then the
 * two proofs (the nonce signed by the current key, the CSR's own signature
 * for the new key), the paid entitlement and the window; renewal_begin()
 * records the intent with its reserved serial before the vendor CA is asked,
 * renewal_complete() records what it issued (services/issuance/README.md). */
#include "issuance.h"

#include "crypto.h"
#include "db.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "vendor.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 32
#define RETRY_CAP_SECONDS 300

/* ---- shared with resume.c ---------------------------------------------- */

long
cert_retry_seconds(int attempts)
{
	long s = issuance.cfg.retry_seconds;

	for (int i = 1; i < attempts && s < RETRY_CAP_SECONDS; i++)
		s *= 2;
	return s < RETRY_CAP_SECONDS ? s : RETRY_CAP_SECONDS;
}

int
cert_renewal_record(struct db_batch *b, const char *intent,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size)
{
	struct crypto_cert *cert;
	char cert_id[37], event_id[37], nb[24], na[24];

	if (cert_pem == NULL || crypto_cert_parse(&cert, cert_pem, NULL) != 0) {
		snprintf(err, err_size,
		    "the vendor's certificate does not parse");
		return -1;
	}
	if (strcmp(cert->spki_sha256, csr_spki) != 0) {
		snprintf(err, err_size,
		    "the vendor's certificate is not for the CSR's key");
		crypto_cert_free(cert);
		return -1;
	}
	if (strcmp(vendor_name, issuance.cfg.ca_vendor) == 0 &&
	    strcmp(cert->serial, serial) != 0) {
		snprintf(err, err_size,
		    "the local CA did not use the reserved serial");
		crypto_cert_free(cert);
		return -1;
	}
	uuid_v4(cert_id);
	uuid_v4(event_id);
	snprintf(nb, sizeof(nb), "%lld", (long long)cert->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)cert->not_after);
	const char *p[] = {intent, cert_id, event_id, cert->issuer_dn,
	    cert->serial, vendor_name, cert->subject_dn,
	    cert->fingerprint_sha256, cert->spki_sha256,
	    crypto_key_type_name(cert->key_type), nb, na, cert->pem,
	    chain ? chain : ""};
	db_batch_add(b, store_renewal_complete_sql, 14, p);
	const char *q[] = {intent};
	db_batch_add(b, store_renewal_result_sql, 1, q);
	crypto_cert_free(cert);
	return 0;
}

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

static void
reply_unavailable(struct http_req *req, const char *dep)
{
	http_server_dep_error(req->srv, dep);
	http_reply_error(req, 503, "UNAVAILABLE", NULL,
	    "服务暂时不可用，请稍后重试");
}

/* ---- POST /api/v1/certs/{id}/renewal/challenge ------------------------- */

struct challenge {
	struct http_req *req;
	char id[37];
	char *nonce_b64;
	char serial[65];
	int64_t expires_ms;
};

static void
challenge_free(void *p)
{
	struct challenge *c = p;

	free(c->nonce_b64);
	free(c);
}

static void challenge_on_loaded(void *arg, const struct db_result *res);
static void challenge_on_stored(void *arg, const struct kv_reply *reply);

static void
challenge_start(struct http_req *req)
{
	struct db_batch *b;
	char days[24];

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能更新证书");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "证书不存在");
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

static int
is_true(const char *v)
{
	return v != NULL && strcmp(v, "t") == 0;
}

static void
challenge_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	const char *account, *target, *serial;
	int revoked, has_pem, pending, collectable, paid;
	unsigned char nonce[NONCE_LEN];
	char key[80], ttl[24];

	if (res->status != DB_OK) {
		issuance_reply_db_error(req, res);
		return;
	}
	account = db_value(res, 0, 0, 0);
	if (db_rows(res, 0) != 1 || account == NULL ||
	    strcmp(account, req->session->account_id) != 0) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "证书不存在");
		return;
	}
	pending = db_rows(res, 1) == 1 &&
	    strcmp(db_value(res, 1, 0, 1), "pending") == 0;
	collectable = db_rows(res, 1) == 1 && is_true(db_value(res, 1, 0, 3));
	paid = atol(db_value(res, 2, 0, 0)) > 0;
	/* The certificate on the key: the latest, or the one a pending or
	 * uncollected renewal replaces. */
	if (pending || (!paid && collectable)) {
		target = db_value(res, 1, 0, 2);
		serial = db_value(res, 1, 0, 4);
		has_pem = is_true(db_value(res, 1, 0, 5));
		revoked = is_true(db_value(res, 1, 0, 6));
	} else {
		target = db_value(res, 0, 0, 1);
		serial = db_value(res, 0, 0, 4);
		revoked = is_true(db_value(res, 0, 0, 2));
		has_pem = is_true(db_value(res, 0, 0, 3));
	}
	if (revoked) {
		http_reply_error(req, 409, "CERT_REVOKED", NULL,
		    "证书已被吊销，不能更新");
		return;
	}
	if (!pending && !paid && !collectable) {
		http_reply_error(req, 409, "NO_PAID_RENEWAL", NULL,
		    "该证书没有已支付的延期年检订单，请先下单支付");
		return;
	}
	if (!has_pem) {
		http_reply_error(req, 409, "CERT_NOT_RENEWABLE", NULL,
		    "平台未保存该证书，请重新使用证书锁登录后再试");
		return;
	}
	struct challenge *c = xcalloc(1, sizeof(*c));
	c->req = req;
	http_req_attach(req, c, challenge_free);
	snprintf(c->serial, sizeof(c->serial), "%s", serial);
	crypto_random_bytes(nonce, sizeof(nonce));
	c->nonce_b64 = crypto_base64_encode(nonce, sizeof(nonce));
	uuid_v4(c->id);
	c->expires_ms = now_wall_ms() + issuance.cfg.challenge_ttl * 1000;
	json_t *v = json_pack("{s:s, s:s, s:s, s:s}", "cert_id", req->params[0],
	    "target", target, "account", req->session->account_id, "nonce",
	    c->nonce_b64);
	char *text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	snprintf(key, sizeof(key), STORE_CHALLENGE_KEY, c->id);
	snprintf(ttl, sizeof(ttl), "%ld", issuance.cfg.challenge_ttl);
	const char *argv[] = {"SET", key, text, "EX", ttl, "NX"};
	kv_command(issuance.svc.kv, challenge_on_stored, c, 6, argv, NULL);
	free(text);
}

static void
challenge_on_stored(void *arg, const struct kv_reply *reply)
{
	struct challenge *c = arg;
	char expires[48];

	if (reply == NULL || kv_reply_type(reply) != KV_STATUS) {
		reply_unavailable(c->req, "redis");
		return;
	}
	time_rfc3339(c->expires_ms, expires);
	http_reply_json(c->req, 200,
	    json_pack("{s:s, s:s, s:s, s:s}", "challenge_id", c->id, "nonce",
	        c->nonce_b64, "expires_at", expires, "serial", c->serial));
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
	unsigned char *nonce;
	size_t nonce_len;
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
	time_t not_before, not_after;
	int attempts;
	struct vendor *vendor;
};

static void
renewal_free(void *p)
{
	struct renewal *r = p;

	json_decref(r->body);
	free(r->nonce);
	free(r->target_pem);
	free(r->target_vendor);
	free(r->latest_pem);
	free(r->intent_csr);
	free(r);
}

static void renewal_on_challenge(void *arg, const struct kv_reply *reply);
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
		http_reply_error(req, err.status, err.code, err.field,
		    err.message);
		return -1;
	}
	return 0;
}

static void
renewal_start(struct http_req *req)
{
	const char *challenge_id;
	json_t *body;
	char key[80];

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能更新证书");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "证书不存在");
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
	if (!uuid_valid(challenge_id)) {
		http_reply_error(req, 401, "CHALLENGE_INVALID", "challenge_id",
		    "更新挑战无效或已过期，请重新读取证书");
		return;
	}
	snprintf(key, sizeof(key), STORE_CHALLENGE_KEY, challenge_id);
	const char *argv[] = {"GETDEL", key};
	kv_command(issuance.svc.kv, renewal_on_challenge, r, 2, argv, NULL);
}

static void
renewal_on_challenge(void *arg, const struct kv_reply *reply)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	const char *text, *cert_id, *target, *account, *nonce;
	json_t *c = NULL;
	size_t len;

	if (reply == NULL) {
		reply_unavailable(req, "redis");
		return;
	}
	if (kv_reply_type(reply) == KV_STR &&
	    (text = kv_reply_str(reply, &len)) != NULL)
		c = json_loadb(text, len, 0, NULL);
	cert_id = json_string_value(json_object_get(c, "cert_id"));
	target = json_string_value(json_object_get(c, "target"));
	account = json_string_value(json_object_get(c, "account"));
	nonce = json_string_value(json_object_get(c, "nonce"));
	if (cert_id == NULL || target == NULL || account == NULL ||
	    nonce == NULL || strcmp(cert_id, req->params[0]) != 0 ||
	    strcmp(account, req->session->account_id) != 0 ||
	    !uuid_valid(target) ||
	    crypto_base64_decode(&r->nonce, &r->nonce_len, nonce,
	        strlen(nonce)) != 0) {
		json_decref(c);
		http_reply_error(req, 401, "CHALLENGE_INVALID", "challenge_id",
		    "更新挑战无效或已过期，请重新读取证书");
		return;
	}
	snprintf(r->target, sizeof(r->target), "%s", target);
	json_decref(c);
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
		issuance_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1 ||
	    strcmp(db_value(res, 0, 0, 0), req->params[0]) != 0) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "证书不存在");
		return;
	}
	if (is_true(db_value(res, 0, 0, 3))) {
		http_reply_error(req, 409, "CERT_REVOKED", NULL,
		    "证书已被吊销，不能更新");
		return;
	}
	if (db_value(res, 0, 0, 1) == NULL) {
		http_reply_error(req, 409, "CERT_NOT_RENEWABLE", NULL,
		    "平台未保存该证书，请重新使用证书锁登录后再试");
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
	unsigned char *sig = NULL;
	size_t sig_len = 0;

	if (crypto_cert_parse(&cert, r->target_pem, NULL) != 0)
		return; /* sig_ok stays 0 */
	if (crypto_base64_decode(&sig, &sig_len, r->signature,
	        strlen(r->signature)) == 0) {
		r->sig_ok = crypto_verify_sig(cert->key, r->nonce, r->nonce_len,
		                sig, sig_len) == 0;
		/* Signed by the renewed certificate's key: the key already holds
		 * the new certificate, so this is a new renewal, and unpaid. */
		if (!r->sig_ok && r->latest_pem != NULL) {
			struct crypto_cert *latest = NULL;
			if (crypto_cert_parse(&latest, r->latest_pem, NULL) ==
			        0 &&
			    crypto_verify_sig(latest->key, r->nonce,
			        r->nonce_len, sig, sig_len) == 0)
				r->signed_by_latest = 1;
			crypto_cert_free(latest);
		}
		free(sig);
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
		http_reply_error(req, 409, "NO_PAID_RENEWAL", NULL,
		    "该证书没有已支付的延期年检订单，请先下单支付");
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
			http_reply_error(req, 409, "NO_PAID_RENEWAL", NULL,
			    "该证书没有已支付的延期年检订单，请先下单支付");
			return;
		}
		w = renewal_window_allowed(&issuance.window.window,
		    r->target_not_after, now, r->paid_at);
		if (w == RENEWAL_WINDOW_NOT_YET) {
			http_reply_error(req, 409, "NOT_IN_RENEWAL_WINDOW",
			    NULL, "未到年检时间");
			return;
		}
		if (w == RENEWAL_WINDOW_TOO_LATE) {
			http_reply_error(req, 409, "EXPIRED_TOO_LONG", NULL,
			    "证书过期时间过长，请重新申请证书");
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
reply_begin_refused(struct http_req *req, const char *rule)
{
	if (strcmp(rule, "CERT_NOT_FOUND") == 0)
		http_reply_error(req, 404, "NOT_FOUND", NULL, "证书不存在");
	else if (strcmp(rule, "CERT_REVOKED") == 0)
		http_reply_error(req, 409, "CERT_REVOKED", NULL,
		    "证书已被吊销，不能更新");
	else if (strcmp(rule, "CERT_SUPERSEDED") == 0)
		http_reply_error(req, 409, "CERT_SUPERSEDED", NULL,
		    "该证书已更新过，请读取证书锁中的最新证书");
	else if (strcmp(rule, "RENEWAL_PENDING") == 0)
		http_reply_error(req, 409, "RENEWAL_PENDING", "csr",
		    "上次证书更新尚未完成，请使用同一证书锁重试");
	else if (strcmp(rule, "RENEWAL_IN_PROGRESS") == 0) {
		char secs[24];
		snprintf(secs, sizeof(secs), "%ld", issuance.cfg.lease_seconds);
		http_add_header(req, "Retry-After", secs);
		http_reply_error(req, 409, "RENEWAL_IN_PROGRESS", NULL,
		    "证书更新正在进行中，请稍后重试");
	} else if (strcmp(rule, "NO_PAID_RENEWAL") == 0)
		http_reply_error(req, 409, "NO_PAID_RENEWAL", NULL,
		    "该证书没有已支付的延期年检订单，请先下单支付");
	else
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
}

static void
renewal_on_begun(void *arg, const struct db_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	const char *outcome;

	if (res->status == DB_REFUSED && res->message != NULL) {
		reply_begin_refused(req, res->message);
		return;
	}
	if (res->status == DB_CONFLICT) {
		/* a concurrent renewal of the same certificate won the race */
		reply_begin_refused(req, "RENEWAL_IN_PROGRESS");
		return;
	}
	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_db_error(req, res);
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
	vendor_renew(r->vendor, &vr, renewal_on_issued, r);
}

static void
renewal_on_issued(void *arg, const struct vendor_cert_result *res)
{
	struct renewal *r = arg;
	struct http_req *req = r->req;
	struct vendor_cert_result bad;
	char err[256], retry[24];
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
	log_warn(req->id,
	    "msg=renewal_vendor_failed intent=%s adapter=%s final=%d error=\"%s\"",
	    r->intent, r->adapter, final, res->error);
	snprintf(retry, sizeof(retry), "%ld",
	    final ? 0 : cert_retry_seconds(r->attempts));
	const char *p[] = {r->intent, res->error, retry,
	    final ? "true" : "false"};
	r->csr_code = final ? "CSR_REJECTED" : NULL;
	db_query(issuance.svc.db, store_renewal_failed_sql, 4, p,
	    renewal_on_failed, r);
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
		issuance_reply_db_error(req, res);
		return;
	}
	if (is_true(db_value(res, 0, 0, 1)))
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
		issuance_reply_db_error(r->req, res);
		return;
	}
	http_reply_json(r->req, 201, result_json(res, 0));
}

void
cert_renewal(struct http_req *req)
{
	session_require(req, renewal_start);
}
