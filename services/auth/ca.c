/* ca — USB-key (CA 锁) login by challenge-response, and binding a lock to
 * an account: one lock, one person, one account.
 *
 * Login checks, in this order, answering the first failure: the challenge
 * exists and is consumed atomically (GETDEL); the certificate chains to a
 * vendor root and is within its validity; it is not revoked; the signature
 * over the nonce verifies with the certificate's key. The chain and the
 * signature are checked on a worker thread (an SM2 chain costs ~1 ms). */
#include "auth.h"

#include "challenge.h"
#include "crypto.h"
#include "db.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "lockcert.h"
#include "session.h"
#include "util.h"
#include "validate.h"
#include "work.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
auth_ca_init(void)
{
	lockcert_init();
	if (auth.cfg.vendor_roots[0] == '\0') {
		log_warn(NULL,
		    "msg=no_vendor_roots detail=\"CAPLAT_VENDOR_ROOTS unset: every CA login is refused\"");
		return;
	}
	if (crypto_trust_load(&auth.roots, auth.cfg.vendor_roots) != 0)
		fatal("bad configuration: CAPLAT_VENDOR_ROOTS: cannot load %s",
		    auth.cfg.vendor_roots);
}

/* ---- chain cache --------------------------------------------------------
 * A chain check costs two signature verifications (≈0.6 ms for SM2); the
 * answer for one certificate does not change while the trust bundle does
 * not, except through time, so a trusted chain is remembered per
 * certificate fingerprint for a while and its dates are checked each time.
 * Shared by the worker threads. */
#define CHAIN_CACHE_SIZE 4096
#define CHAIN_CACHE_SECONDS 600

static struct {
	char fingerprint[CRYPTO_SHA256_HEX_SIZE];
	time_t until;
} chain_cache[CHAIN_CACHE_SIZE];
static pthread_mutex_t chain_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned
chain_slot(const char *fingerprint)
{
	return (unsigned)strtoul(fingerprint + 56, NULL, 16) % CHAIN_CACHE_SIZE;
}

static int
chain_cached(const struct crypto_cert *cert, time_t now)
{
	unsigned i = chain_slot(cert->fingerprint_sha256);
	int hit;

	pthread_mutex_lock(&chain_cache_mu);
	hit = chain_cache[i].until > now &&
	    strcmp(chain_cache[i].fingerprint, cert->fingerprint_sha256) == 0;
	pthread_mutex_unlock(&chain_cache_mu);
	return hit && cert->not_before <= now && now < cert->not_after;
}

static void
chain_remember(const struct crypto_cert *cert, time_t now)
{
	unsigned i = chain_slot(cert->fingerprint_sha256);

	pthread_mutex_lock(&chain_cache_mu);
	memcpy(chain_cache[i].fingerprint, cert->fingerprint_sha256,
	    CRYPTO_SHA256_HEX_SIZE);
	chain_cache[i].until = now + CHAIN_CACHE_SECONDS;
	pthread_mutex_unlock(&chain_cache_mu);
}

/* ---- POST /api/v1/auth/ca/challenge ------------------------------------ */

static void
challenge_on_issued(void *arg, const struct challenge *c)
{
	struct http_req *req = arg;

	if (c == NULL) {
		http_reply_unavailable(req, "redis");
		return;
	}
	http_reply_json(req, 200, challenge_json(c));
}

/* A login challenge binds nothing: whoever answers it proves a key. */
void
auth_ca_challenge(struct http_req *req)
{
	challenge_issue(auth.svc.kv, &store_login_challenge,
	    auth.cfg.challenge_ttl, NULL, challenge_on_issued, req);
}

/* ---- POST /api/v1/auth/ca/login ---------------------------------------- */

struct login {
	struct http_req *req;
	json_t *body;
	const char *certificate, *signature;
	unsigned char nonce[CHALLENGE_NONCE_LEN];
	/* Set by the worker: */
	struct crypto_cert *cert;
	enum crypto_cert_status status;
	int parsed, sig_ok;
	char why[256];
	/* Set after the database: */
	json_t *session_data;
	json_t *lock;
	char *bind_token;
};

static void
login_free(void *p)
{
	struct login *l = p;

	json_decref(l->body);
	crypto_cert_free(l->cert);
	json_decref(l->session_data);
	json_decref(l->lock);
	free(l->bind_token);
	free(l);
}

static void login_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t);
static void login_verify_cert(void *arg);
static void login_on_verified(void *arg);
static void login_on_db(void *arg, const struct db_result *res);
static void login_on_session(void *arg, const char *token);
static void login_on_bind_token(void *arg, const struct kv_reply *reply);
static void login_on_view(void *arg, const struct db_result *res);

void
auth_ca_login(struct http_req *req)
{
	const char *challenge_id;
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct login *l = xcalloc(1, sizeof(*l));
	l->req = req;
	l->body = body;
	http_req_attach(req, l, login_free);
	if (auth_field(req, body, "challenge_id", 64, &challenge_id) != 0 ||
	    auth_field(req, body, "certificate", 32768, &l->certificate) != 0 ||
	    auth_field(req, body, "signature", 4096, &l->signature) != 0)
		return;
	challenge_take(auth.svc.kv, &store_login_challenge, challenge_id,
	    login_on_challenge, l);
}

static void
login_on_challenge(void *arg, enum challenge_status status,
    const struct challenge_taken *t)
{
	struct login *l = arg;

	if (status == CHALLENGE_UNAVAILABLE) {
		http_reply_unavailable(l->req, "redis");
		return;
	}
	if (status != CHALLENGE_OK) {
		http_reply_error(l->req, 401, "CHALLENGE_INVALID",
		    "challenge_id", "登录挑战无效或已过期，请重新读取证书");
		return;
	}
	memcpy(l->nonce, t->nonce, sizeof(l->nonce));
	work_submit(login_verify_cert, login_on_verified, l);
}

/* On a worker: parse, chain, signature. Touches only l and auth.roots
 * (read-only after start). */
static void
login_verify_cert(void *arg)
{
	struct login *l = arg;

	/* The same key logging in again reuses its parsed certificate (and
	 * the key's prepared verify context): crypto_cert_parse_cached. */
	if (crypto_cert_parse_cached(&l->cert, l->certificate) != 0) {
		l->status = CRYPTO_CERT_UNTRUSTED;
		snprintf(l->why, sizeof(l->why), "unparsable certificate");
		return;
	}
	l->parsed = 1;
	time_t now = time(NULL);
	if (auth.roots == NULL) {
		l->status = CRYPTO_CERT_UNTRUSTED;
		snprintf(l->why, sizeof(l->why), "no vendor roots configured");
	} else if (chain_cached(l->cert, now)) {
		l->status = CRYPTO_CERT_OK;
	} else {
		l->status = crypto_cert_verify_explain(auth.roots, l->cert, now,
		    l->why, sizeof(l->why));
		if (l->status == CRYPTO_CERT_OK)
			chain_remember(l->cert, now);
	}
	l->sig_ok =
	    challenge_signature_ok(l->cert->key, l->nonce, l->signature);
}

static void
login_on_verified(void *arg)
{
	struct login *l = arg;
	struct http_req *req = l->req;
	const char *kind;
	char new_lock[37], not_after[24];

	if (l->status != CRYPTO_CERT_OK) {
		log_info(req->id, "msg=ca_login_refused status=%s why=\"%s\"",
		    crypto_cert_status_name(l->status), l->why);
		if (l->status == CRYPTO_CERT_UNTRUSTED)
			http_reply_error(req, 401, "CERT_UNTRUSTED",
			    "certificate", "证书不是受信任的 CA 签发的");
		else
			http_reply_error(req, 401, "CERT_EXPIRED",
			    "certificate", "证书不在有效期内");
		return;
	}
	struct lock_fields f;
	if (lockcert_read(l->cert, &f, &kind) != 0) {
		http_reply_error(req, 401, "CERT_UNTRUSTED", "certificate",
		    "证书格式不受支持（无法识别锁类型或持有人）");
		return;
	}
	char uscc[19];
	if (f.uscc != NULL) {
		if (validate_uscc(f.uscc, uscc) != 0) {
			lock_fields_clear(&f);
			http_reply_error(req, 401, "CERT_UNTRUSTED",
			    "certificate", "证书中的统一社会信用代码无效");
			return;
		}
		free(f.uscc);
		f.uscc = xstrdup(uscc);
	}
	/* Revocation first (its answer outranks the signature's), and the lock
	 * only for a proven holder: nothing is written for a bad signature. */
	struct db_batch *b = db_batch_new();
	store_cert_revoked(b, l->cert->issuer_dn, l->cert->serial);
	if (l->sig_ok) {
		uuid_v4(new_lock);
		snprintf(not_after, sizeof(not_after), "%lld",
		    (long long)l->cert->not_after);
		store_lock_for_cert(b, l->cert->issuer_dn, l->cert->serial,
		    new_lock, kind, f.holder, f.enterprise_name, f.uscc,
		    not_after);
	}
	l->lock = json_pack("{s:s, s:s, s:s*, s:s*, s:s, s:s*}", "kind", kind,
	    "holder", f.holder, "enterprise_name", f.enterprise_name, "uscc",
	    f.uscc, "serial", l->cert->serial, "vendor", f.vendor);
	lock_fields_clear(&f);
	db_batch_run(auth.svc.db, b, login_on_db, l);
}

static void
login_on_db(void *arg, const struct db_result *res)
{
	struct login *l = arg;
	struct http_req *req = l->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) > 0) {
		http_reply_error(req, 401, "CERT_REVOKED", "certificate",
		    "证书已被吊销");
		return;
	}
	if (!l->sig_ok) {
		http_reply_error(req, 401, "BAD_SIGNATURE", "signature",
		    "签名验证失败");
		return;
	}
	if (db_rows(res, 1) != 1) {
		http_reply_unavailable(req, "postgres");
		return;
	}
	const char *lock_id = db_value(res, 1, 0, 0);
	const char *account_id = db_value(res, 1, 0, 1);
	json_object_set_new(l->lock, "id", json_string(lock_id));
	if (account_id != NULL) {
		const char *p[] = {account_id};
		l->session_data = json_pack("{s:s}", "account_id", account_id);
		db_query(auth.svc.db, store_session_view_sql, 1, p,
		    login_on_view, l);
		return;
	}
	/* Unbound: a short-lived bind token carries the proven lock. */
	char key[80], ttl[24];
	l->bind_token = crypto_random_token(32);
	json_t *c = l->lock;
	char nb[48], na[48];
	time_rfc3339((int64_t)l->cert->not_before * 1000, nb);
	time_rfc3339((int64_t)l->cert->not_after * 1000, na);
	json_t *bind = json_pack("{s:s, s:O, s:{s:s, s:s, s:s, s:s, s:s, s:s}}",
	    "lock_id", lock_id, "lock", c, "certificate", "serial",
	    l->cert->serial, "issuer", l->cert->issuer_dn, "not_before", nb,
	    "not_after", na, "fingerprint_sha256", l->cert->fingerprint_sha256,
	    "certificate_pem", l->cert->pem);
	char *text = json_dumps(bind, JSON_COMPACT);
	json_decref(bind);
	char hash[CRYPTO_SHA256_HEX_SIZE];
	crypto_sha256_hex(l->bind_token, strlen(l->bind_token), hash);
	store_bind_key(key, sizeof(key), hash);
	snprintf(ttl, sizeof(ttl), "%ld", auth.cfg.bind_ttl);
	const char *argv[] = {"SET", key, text, "EX", ttl};
	kv_command(auth.svc.kv, login_on_bind_token, l, 5, argv, NULL);
	free(text);
}

static void
login_on_bind_token(void *arg, const struct kv_reply *reply)
{
	struct login *l = arg;

	if (reply == NULL || kv_reply_type(reply) != KV_STATUS) {
		http_reply_unavailable(l->req, "redis");
		return;
	}
	http_reply_json(l->req, 200,
	    json_pack("{s:s, s:s, s:O}", "status", "binding_required",
	        "bind_token", l->bind_token, "lock", l->lock));
}

static void
login_on_session(void *arg, const char *token)
{
	struct login *l = arg;
	json_t *d = l->session_data, *identity = json_null();

	if (token == NULL) {
		http_reply_unavailable(l->req, "redis");
		return;
	}
	if (json_object_get(d, "identity_id") != NULL)
		identity = json_pack("{s:O, s:O, s:O?, s:O?, s:O?}", "id",
		    json_object_get(d, "identity_id"), "type",
		    json_object_get(d, "identity_type"), "role",
		    json_object_get(d, "role"), "uscc",
		    json_object_get(d, "uscc"), "enterprise_name",
		    json_object_get(d, "enterprise_name"));
	http_reply_json(l->req, 200,
	    json_pack("{s:s, s:s, s:{s:O, s:O}, s:o, s:O}", "status", "ok",
	        "token", token, "account", "id",
	        json_object_get(d, "account_id"), "phone",
	        json_object_get(d, "phone"), "identity", identity, "lock",
	        l->lock));
}

/* ---- POST /api/v1/auth/ca/bind ----------------------------------------- */

struct bind {
	struct http_req *req;
	json_t *body;
	char phone[12];
	char id_number[19];
	const char *code;
	char token_hash[CRYPTO_SHA256_HEX_SIZE];
	json_t *lock; /* from the bind token */
	json_t *session_data;
	char account_id[37];
};

static void
bind_free(void *p)
{
	struct bind *b = p;

	json_decref(b->body);
	json_decref(b->lock);
	json_decref(b->session_data);
	crypto_wipe(b->id_number, sizeof(b->id_number));
	free(b);
}

static void bind_on_token(void *arg, const struct kv_reply *reply);
static void bind_on_code(struct http_req *req, enum sms_result r);
static void bind_on_db(void *arg, const struct db_result *res);
static void bind_on_session(void *arg, const char *token);

void
auth_ca_bind(struct http_req *req)
{
	const char *token, *phone;
	char key[80];
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct bind *b = xcalloc(1, sizeof(*b));
	b->req = req;
	b->body = body;
	http_req_attach(req, b, bind_free);
	if (auth_field(req, body, "bind_token", 128, &token) != 0 ||
	    auth_field(req, body, "phone", 16, &phone) != 0 ||
	    auth_field(req, body, "sms_code", 16, &b->code) != 0)
		return;
	if (validate_mobile(phone, b->phone) != 0) {
		http_reply_error(req, 422, "PHONE_INVALID", "phone",
		    "手机号码格式不正确");
		return;
	}
	crypto_sha256_hex(token, strlen(token), b->token_hash);
	store_bind_key(key, sizeof(key), b->token_hash);
	const char *argv[] = {"GET", key};
	kv_command(auth.svc.kv, bind_on_token, b, 2, argv, NULL);
}

static void
bind_on_token(void *arg, const struct kv_reply *reply)
{
	struct bind *b = arg;
	struct http_req *req = b->req;
	const char *text, *kind;
	size_t len;

	if (reply == NULL) {
		http_reply_unavailable(req, "redis");
		return;
	}
	if (kv_reply_type(reply) != KV_STR ||
	    (text = kv_reply_str(reply, &len)) == NULL ||
	    (b->lock = json_loadb(text, len, 0, NULL)) == NULL) {
		http_reply_error(req, 401, "BIND_TOKEN_INVALID", "bind_token",
		    "绑定凭证无效或已过期，请重新读取证书登录");
		return;
	}
	kind = json_string_value(
	    json_object_get(json_object_get(b->lock, "lock"), "kind"));
	if (kind != NULL && strcmp(kind, "master") == 0) {
		const char *id_number;
		if (auth_field(req, b->body, "id_number", 32, &id_number) != 0)
			return;
		if (validate_id_number(id_number, b->id_number) != 0) {
			http_reply_error(req, 422, "ID_NUMBER_INVALID",
			    "id_number", "身份证号码不正确");
			return;
		}
	}
	sms_check(req, b->phone, "bind", b->code, bind_on_code);
}

static void
bind_on_code(struct http_req *req, enum sms_result r)
{
	struct bind *b = req->data;
	char hmac_hex[65] = "", masked[24] = "";
	const char *hmac = NULL, *mask = NULL;

	if (r != SMS_OK) {
		auth_reply_sms_refused(req, r);
		return;
	}
	if (b->id_number[0] != '\0') {
		/* Kept as a keyed hash (to compare later) and masked (to show). */
		unsigned char mac[32];
		crypto_hmac_sha256(auth.cfg.sms_secret,
		    strlen(auth.cfg.sms_secret), b->id_number,
		    strlen(b->id_number), mac);
		for (int i = 0; i < 32; i++)
			snprintf(hmac_hex + 2 * i, 3, "%02x", mac[i]);
		log_mask_id(b->id_number, masked, sizeof(masked));
		hmac = hmac_hex;
		mask = masked;
	}
	char *cert =
	    json_dumps(json_object_get(b->lock, "certificate"), JSON_COMPACT);
	char *audit = auth_audit_base(req);
	struct db_batch *batch = db_batch_new();
	store_bind_lock(batch,
	    json_string_value(json_object_get(b->lock, "lock_id")), b->phone,
	    hmac, mask, cert, audit);
	const char *vp[] = {b->phone};
	db_batch_add(batch, store_session_view_by_phone_sql, 1, vp);
	free(cert);
	free(audit);
	db_batch_run(auth.svc.db, batch, bind_on_db, b);
}

/* The refusals of bind_lock() (RAISE EXCEPTION 'RULE'): rule → code,
 * field, message; all 409. Another rule answers BIND_REFUSED. */
static const struct {
	const char *rule, *field, *message;
} bind_refusals[] = {
    {"LOCK_ALREADY_BOUND", NULL, "该证书锁已绑定其他账号"},
    {"ACCOUNT_HAS_LOCK", "phone", "该手机号已绑定其他证书锁"},
    {"ADMIN_EXISTS", NULL, "该企业已有管理员"},
};

static void
bind_refuse(struct http_req *req, const char *rule)
{
	for (size_t i = 0; rule != NULL && i < ARRAY_LEN(bind_refusals); i++)
		if (strcmp(bind_refusals[i].rule, rule) == 0) {
			http_reply_error(req, 409, rule, bind_refusals[i].field,
			    bind_refusals[i].message);
			return;
		}
	http_reply_error(req, 409, "BIND_REFUSED", NULL, "绑定失败");
}

/* A master lock replaced an administrator (granted by application or an
 * earlier lock): both are told by SMS, and the replaced one's open sessions
 * lose the identity at once (before this request's own session exists). */
static void
bind_replaced_admin(struct http_req *req, struct bind *b,
    const struct db_result *res)
{
	const char *name = db_value(res, 0, 0, 5);
	const char *old_phone = db_value(res, 0, 0, 4);
	char text[512];

	log_info(req->id,
	    "msg=admin_replaced_by_master_lock old_account=%s "
	    "new_account=%s",
	    db_value(res, 0, 0, 3), b->account_id);
	auth_sessions_drop_identity(db_value(res, 0, 0, 3),
	    db_value(res, 0, 0, 6), NULL, NULL, NULL);
	snprintf(text, sizeof(text),
	    "【CA平台】%s 的单位主锁持有人已绑定主锁，您的单位管理员身份已被取代。"
	    "如有疑问请联系单位。",
	    name ? name : "");
	if (old_phone != NULL)
		sms_notify(old_phone, text);
	snprintf(text, sizeof(text),
	    "【CA平台】您已凭单位主锁成为 %s 的单位管理员，原经申请取得的管理员身份已被取代。",
	    name ? name : "");
	sms_notify(b->phone, text);
}

static void
bind_on_db(void *arg, const struct db_result *res)
{
	struct bind *b = arg;
	struct http_req *req = b->req;

	if (res->status == DB_REFUSED || res->status == DB_CONFLICT) {
		/* a unique violation is a phone bound meanwhile */
		bind_refuse(req,
		    res->status == DB_CONFLICT ? "ACCOUNT_HAS_LOCK"
		                               : res->message);
		return;
	}
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	char key[80];
	store_bind_key(key, sizeof(key), b->token_hash);
	const char *argv[] = {"DEL", key};
	kv_command(auth.svc.kv, NULL, NULL, 2, argv, NULL); /* expires anyway */
	snprintf(b->account_id, sizeof(b->account_id), "%s",
	    db_value(res, 0, 0, 0));
	auth_me_changed(b->account_id); /* the lock, maybe an identity */
	if (db_value(res, 0, 0, 3) != NULL)
		bind_replaced_admin(req, b, res);
	b->session_data = auth_session_from_view(res, 1);
	{
		char masked[16];
		log_mask_id(b->phone, masked, sizeof(masked));
		log_info(req->id, "msg=lock_bound account=%s phone=%s",
		    b->account_id, masked);
	}
	session_create(b->session_data, bind_on_session, b);
}

static void
bind_on_session(void *arg, const char *token)
{
	struct bind *b = arg;

	if (token == NULL) {
		http_reply_unavailable(b->req, "redis");
		return;
	}
	http_reply_json(b->req, 200,
	    json_pack("{s:s, s:{s:s, s:s}}", "token", token, "account", "id",
	        b->account_id, "phone", b->phone));
}

/* ---- the bound-account continuation of login --------------------------- */

static void
login_on_view(void *arg, const struct db_result *res)
{
	struct login *l = arg;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		http_reply_db_error(l->req, res);
		return;
	}
	json_decref(l->session_data);
	l->session_data = auth_session_from_view(res, 0);
	session_create(l->session_data, login_on_session, l);
}
