/* handlers — the registry list, revocation (operator), the local CA's
 * CRLs, the downstream platforms' interop status, and the route table. The
 * renewal calls live in renew.c. Each handler is a chain of named
 * continuations; the last one replies. */
#include "issuance.h"

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

#define LIST_DEFAULT 20
#define LIST_MAX 100

static json_t *
nullable(const char *v)
{
	return v ? json_string(v) : json_null();
}

static json_t *
time_json(const char *epoch)
{
	char buf[48];

	time_rfc3339(atoll(epoch) * 1000, buf);
	return json_string(buf);
}

/* ---- GET /api/v1/certs ------------------------------------------------- */

struct list {
	struct http_req *req;
	long limit;
};

static void
list_free(void *p)
{
	free(p);
}

static void list_on_rows(void *arg, const struct db_result *res);

/* The cursor is base64url("<notAfter seconds>.<cert id>"). */
static int
cursor_decode(const char *cursor, char epoch[24], char id[37])
{
	unsigned char *raw;
	size_t len;
	char *dot;
	int rc = -1;

	if (crypto_base64url_decode(&raw, &len, cursor, strlen(cursor)) != 0)
		return -1;
	raw = xrealloc(raw, len + 1);
	raw[len] = '\0';
	dot = strchr((char *)raw, '.');
	if (dot != NULL && dot - (char *)raw > 0 && dot - (char *)raw < 20 &&
	    strspn((char *)raw, "0123456789") == (size_t)(dot - (char *)raw) &&
	    uuid_valid(dot + 1)) {
		snprintf(epoch, 24, "%.*s", (int)(dot - (char *)raw),
		    (char *)raw);
		snprintf(id, 37, "%s", dot + 1);
		rc = 0;
	}
	free(raw);
	return rc;
}

static void
list_start(struct http_req *req)
{
	const struct session *s = req->session;
	const char *uscc = NULL, *account = NULL;
	char *limit_text = http_query_param(req, "limit");
	char *cursor = http_query_param(req, "cursor");
	char epoch[24], id[37], limit[24];
	struct list *l = xcalloc(1, sizeof(*l));
	int ok = 1;

	l->req = req;
	l->limit = LIST_DEFAULT;
	http_req_attach(req, l, list_free);
	if (limit_text != NULL) {
		char *end;
		l->limit = strtol(limit_text, &end, 10);
		ok = *limit_text && *end == '\0' && l->limit >= 1 &&
		    l->limit <= LIST_MAX;
	}
	free(limit_text);
	if (!ok) {
		free(cursor);
		http_reply_error(req, 400, "BAD_REQUEST", "limit",
		    "limit 须为 1 至 100 的整数");
		return;
	}
	if (cursor != NULL && cursor_decode(cursor, epoch, id) != 0) {
		free(cursor);
		http_reply_error(req, 400, "BAD_REQUEST", "cursor",
		    "cursor 无效");
		return;
	}
	if (s->staff_id != NULL) {
		/* Operators see the whole registry (to find what to revoke). */
		if (session_require_staff(req, "operator") != 0) {
			free(cursor);
			return;
		}
	} else if (s->role != NULL && strcmp(s->role, "admin") == 0 &&
	    s->uscc != NULL) {
		uscc = s->uscc; /* the enterprise's certificates */
	} else {
		account = s->account_id; /* one's own */
	}
	snprintf(limit, sizeof(limit), "%ld", l->limit + 1);
	const char *p[] = {uscc, account, cursor ? epoch : NULL,
	    cursor ? id : NULL, limit};
	free(cursor);
	db_query(issuance.svc.db, store_cert_list_sql, 5, p, list_on_rows, l);
}

/* One item of the list from row i of store_cert_list_sql. */
static json_t *
cert_item_json(const struct db_result *res, int i, time_t now)
{
	time_t not_after = (time_t)atoll(db_value(res, 0, i, 9));
	int revoked = db_bool(res, 0, i, 11);
	const char *reason = cert_not_renewable_reason(&issuance.window,
	    not_after, now, revoked, db_bool(res, 0, i, 12));
	/* NULL: the associations are unknown (first seen at a login). */
	const char *platforms_text = db_value(res, 0, i, 10);
	json_t *platforms =
	    platforms_text ? json_loads(platforms_text, 0, NULL) : NULL;
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(db_value(res, 0, i, 0)));
	json_object_set_new(o, "serial", json_string(db_value(res, 0, i, 1)));
	json_object_set_new(o, "type", json_string(db_value(res, 0, i, 2)));
	json_object_set_new(o, "holder", json_string(db_value(res, 0, i, 3)));
	json_object_set_new(o, "vendor", json_string(db_value(res, 0, i, 4)));
	json_object_set_new(o, "lock_kind",
	    json_string(db_value(res, 0, i, 5)));
	json_object_set_new(o, "enterprise_name",
	    nullable(db_value(res, 0, i, 6)));
	json_object_set_new(o, "uscc", nullable(db_value(res, 0, i, 7)));
	json_object_set_new(o, "not_before", time_json(db_value(res, 0, i, 8)));
	json_object_set_new(o, "not_after", time_json(db_value(res, 0, i, 9)));
	json_object_set_new(o, "days_left",
	    json_integer(cert_days_left(not_after, now)));
	json_object_set_new(o, "renewable", json_boolean(reason == NULL));
	json_object_set_new(o, "not_renewable_reason", nullable(reason));
	json_object_set_new(o, "not_renewable_message",
	    nullable(cert_reason_message(reason)));
	json_object_set_new(o, "platforms",
	    platforms_text == NULL ? json_null()
	                           : (platforms ? platforms : json_array()));
	json_object_set_new(o, "platforms_known",
	    json_boolean(platforms_text != NULL));
	json_object_set_new(o, "status",
	    json_string(cert_status_name(not_after, now, revoked)));
	json_object_set_new(o, "renewal_paid",
	    json_boolean(db_bool(res, 0, i, 13)));
	json_object_set_new(o, "issuer", json_string(db_value(res, 0, i, 14)));
	json_object_set_new(o, "account_id", nullable(db_value(res, 0, i, 15)));
	json_object_set_new(o, "previous_serial",
	    nullable(db_value(res, 0, i, 16)));
	return o;
}

static void
list_on_rows(void *arg, const struct db_result *res)
{
	struct list *l = arg;
	struct http_req *req = l->req;
	time_t now = time(NULL);
	json_t *items, *next = json_null();
	int n;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	n = db_rows(res, 0);
	items = json_array();
	for (int i = 0; i < n && i < l->limit; i++)
		json_array_append_new(items, cert_item_json(res, i, now));
	if (n > l->limit) {
		int last = (int)l->limit - 1;
		char *raw = xasprintf("%s.%s", db_value(res, 0, last, 9),
		    db_value(res, 0, last, 0));
		char *cursor = crypto_base64url_encode(raw, strlen(raw));

		json_decref(next);
		next = json_string(cursor);
		free(raw);
		free(cursor);
	}
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

static void
cert_list(struct http_req *req)
{
	session_require(req, list_start);
}

/* ---- POST /api/v1/certs/{id}/revoke (operator) -------------------------- */

static const char *const revoke_reasons[] = {"unspecified", "key_compromise",
    "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", NULL};

struct revoke {
	struct http_req *req;
	json_t *body;
	const char *reason;
};

static void
revoke_free(void *p)
{
	struct revoke *rv = p;

	json_decref(rv->body);
	free(rv);
}

static void revoke_on_done(void *arg, const struct db_result *res);

static void
revoke_start(struct http_req *req)
{
	struct json_field_err err;
	char event[37], job[37], *forward;
	json_t *body;

	if (session_require_staff(req, "operator") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		issuance_refuse(req, "CERT_NOT_FOUND");
		return;
	}
	if (http_read_json(req, &body) != 0)
		return;
	struct revoke *rv = xcalloc(1, sizeof(*rv));
	rv->req = req;
	rv->body = body;
	http_req_attach(req, rv, revoke_free);
	if (json_field_enum(body, "reason", JSON_FIELD_REQUIRED, revoke_reasons,
	        &rv->reason, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	uuid_v4(event);
	uuid_v4(job);
	forward = vendor_forward_names();
	const char *p[] = {req->params[0], rv->reason, event, job, forward};
	db_query(issuance.svc.db, store_revoke_sql, 5, p, revoke_on_done, rv);
	free(forward);
}

static void
revoke_on_done(void *arg, const struct db_result *res)
{
	struct revoke *rv = arg;
	struct http_req *req = rv->req;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		issuance_reply_batch_error(req, res);
		return;
	}
	log_info(req->id,
	    "msg=cert_revoked cert_id=%s serial=%s reason=%s staff=%s",
	    req->params[0], db_value(res, 0, 0, 0), rv->reason,
	    req->session->staff_id);
	issuance_count("revoked");
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "cert_id",
	        req->params[0], "serial", db_value(res, 0, 0, 0), "issuer",
	        db_value(res, 0, 0, 1), "status", "revoked", "reason",
	        rv->reason, "revoked_at", time_json(db_value(res, 0, 0, 2)),
	        "vendor_notified", !db_bool(res, 0, 0, 4)));
}

static void
cert_revoke(struct http_req *req)
{
	session_require(req, revoke_start);
}

/* ---- GET /api/v1/certs/crl/{ca}.crl ------------------------------------ */

/* The last CRL this process made per issuing CA, reused while nothing was
 * revoked since and it is less than an hour old. Loop thread only. */
static struct crl_cache {
	char name[8];
	char digest[CRYPTO_SHA256_HEX_SIZE];
	unsigned char *der;
	size_t len;
	time_t made;
} crl_cache[2];

struct crl {
	struct http_req *req;
	const struct localca_ca *ca;
	struct crypto_crl_entry *entries;
	char **serials;
	size_t n;
	char digest[CRYPTO_SHA256_HEX_SIZE];
	time_t now;
	unsigned char *der;
	size_t len;
	int rc;
};

static void
crl_free(void *p)
{
	struct crl *c = p;

	for (size_t i = 0; i < c->n; i++)
		free(c->serials[i]);
	free(c->serials);
	free(c->entries);
	free(c->der);
	free(c);
}

static void crl_on_entries(void *arg, const struct db_result *res);
static void crl_sign(void *arg);
static void crl_on_signed(void *arg);

static enum crypto_crl_reason
crl_reason(const char *reason)
{
	static const char *const names[] = {"unspecified", "key_compromise",
	    "ca_compromise", "affiliation_changed", "superseded",
	    "cessation_of_operation"};

	for (size_t i = 0; reason && i < ARRAY_LEN(names); i++)
		if (strcmp(reason, names[i]) == 0)
			return (enum crypto_crl_reason)i;
	return CRYPTO_CRL_UNSPECIFIED;
}

static struct crl_cache *
crl_cache_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(crl_cache); i++) {
		if (crl_cache[i].name[0] == '\0')
			snprintf(crl_cache[i].name, sizeof(crl_cache[i].name),
			    "%s", name);
		if (strcmp(crl_cache[i].name, name) == 0)
			return &crl_cache[i];
	}
	return NULL;
}

static void
cert_crl(struct http_req *req)
{
	char name[8];
	size_t len = strlen(req->params[0]);
	const struct localca_ca *ca = NULL;

	if (len > 4 && len < 4 + sizeof(name) &&
	    strcmp(req->params[0] + len - 4, ".crl") == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4),
		    req->params[0]);
		ca = localca_find(issuance.localca, name);
	}
	if (ca == NULL) {
		http_reply_error(req, 404, "NOT_FOUND", NULL,
		    "没有该签发机构的证书吊销列表");
		return;
	}
	struct crl *c = xcalloc(1, sizeof(*c));
	c->req = req;
	c->ca = ca;
	http_req_attach(req, c, crl_free);
	const char *p[] = {ca->ca->subject_dn};
	db_query(issuance.svc.db, store_crl_entries_sql, 1, p, crl_on_entries,
	    c);
}

static void
crl_on_entries(void *arg, const struct db_result *res)
{
	struct crl *c = arg;
	struct crl_cache *cache;
	char *all = xstrdup("");

	if (res->status != DB_OK) {
		free(all);
		http_reply_db_error(c->req, res);
		return;
	}
	c->n = (size_t)db_rows(res, 0);
	c->entries = xcalloc(c->n + 1, sizeof(*c->entries));
	c->serials = xcalloc(c->n + 1, sizeof(*c->serials));
	for (size_t i = 0; i < c->n; i++) {
		c->serials[i] = xstrdup(db_value(res, 0, (int)i, 0));
		c->entries[i].serial = c->serials[i];
		c->entries[i].revoked_at =
		    (time_t)atoll(db_value(res, 0, (int)i, 1));
		c->entries[i].reason = crl_reason(db_value(res, 0, (int)i, 2));
		char *more = xasprintf("%s%s/%lld/%d;", all, c->serials[i],
		    (long long)c->entries[i].revoked_at,
		    (int)c->entries[i].reason);
		free(all);
		all = more;
	}
	crypto_sha256_hex(all, strlen(all), c->digest);
	free(all);
	c->now = time(NULL);
	cache = crl_cache_of(c->ca->name);
	if (cache != NULL && cache->der != NULL &&
	    strcmp(cache->digest, c->digest) == 0 &&
	    c->now - cache->made < 3600) {
		http_reply_raw(c->req, 200, "application/pkix-crl", cache->der,
		    cache->len);
		return;
	}
	work_submit(crl_sign, crl_on_signed, c);
}

static void
crl_sign(void *arg)
{
	struct crl *c = arg;

	c->rc = localca_crl(c->ca, c->entries, c->n, c->now,
	    issuance.cfg.crl_hours, &c->der, &c->len);
}

static void
crl_on_signed(void *arg)
{
	struct crl *c = arg;
	struct crl_cache *cache = crl_cache_of(c->ca->name);

	if (c->rc != 0) {
		log_error(c->req->id, "msg=crl_failed ca=%s", c->ca->name);
		http_reply_error(c->req, 500, "INTERNAL", NULL,
		    "服务器内部错误");
		return;
	}
	if (cache != NULL) {
		free(cache->der);
		cache->der = xmalloc(c->len);
		memcpy(cache->der, c->der, c->len);
		cache->len = c->len;
		cache->made = c->now;
		snprintf(cache->digest, sizeof(cache->digest), "%s", c->digest);
	}
	http_reply_raw(c->req, 200, "application/pkix-crl", c->der, c->len);
}

/* ---- GET /api/v1/interop/certs/{serial}/status -------------------------- */

static void interop_on_row(void *arg, const struct db_result *res);

static void
interop_status(struct http_req *req)
{
	const char *platform = http_header(req, "X-Platform");
	const char *ts = http_header(req, "X-Timestamp");
	const char *sig = http_header(req, "X-Signature");
	const char *secret;
	char serial[65], *canonical, *query_platform;
	size_t n = strlen(req->params[0]);
	int sig_ok;

	if (ts == NULL ||
	    cert_interop_timestamp_ok(ts, time(NULL),
	        issuance.cfg.interop_skew) != 0) {
		http_reply_error(req, 401, "TIMESTAMP_INVALID", NULL,
		    "X-Timestamp 缺失或与服务器时间相差过大");
		return;
	}
	if (platform == NULL ||
	    (secret = cert_platform_secret(issuance.secrets, issuance.nsecrets,
	         platform)) == NULL) {
		http_reply_error(req, 401, "PLATFORM_UNKNOWN", NULL,
		    "未知的平台");
		return;
	}
	canonical =
	    cert_interop_canonical(req->method, req->path, req->query, ts);
	sig_ok = sig != NULL &&
	    cert_interop_signature_ok(secret, canonical, sig) == 0;
	free(canonical);
	if (!sig_ok) {
		log_info(req->id, "msg=interop_bad_signature platform=%s",
		    platform);
		http_reply_error(req, 401, "BAD_SIGNATURE", NULL,
		    "签名验证失败");
		return;
	}
	query_platform = http_query_param(req, "platform");
	if (query_platform == NULL) {
		http_reply_error(req, 400, "BAD_REQUEST", "platform",
		    "缺少 platform 参数");
		return;
	}
	if (strcmp(query_platform, platform) != 0) {
		free(query_platform);
		http_reply_error(req, 403, "PLATFORM_MISMATCH", "platform",
		    "platform 参数与 X-Platform 不一致");
		return;
	}
	free(query_platform);
	if (n == 0 || n > 64 ||
	    strspn(req->params[0], "0123456789abcdefABCDEF") != n) {
		issuance_refuse(req, "INTEROP_CERT_NOT_FOUND");
		return;
	}
	for (size_t i = 0; i <= n; i++)
		serial[i] =
		    (char)(req->params[0][i] >= 'a' && req->params[0][i] <= 'f'
		            ? req->params[0][i] - 'a' + 'A'
		            : req->params[0][i]);
	const char *p[] = {serial, platform};
	db_query(issuance.svc.db, store_interop_sql, 2, p, interop_on_row, req);
}

static void
interop_on_row(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	const char *reason;
	json_t *platforms;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		issuance_refuse(req, "INTEROP_CERT_NOT_FOUND");
		return;
	}
	reason = cert_interop_reason((time_t)atoll(db_value(res, 0, 0, 0)),
	    (time_t)atoll(db_value(res, 0, 0, 1)), time(NULL),
	    db_bool(res, 0, 0, 2), db_bool(res, 0, 0, 3),
	    db_bool(res, 0, 0, 5));
	platforms = json_loads(db_value(res, 0, 0, 4), 0, NULL);
	http_reply_json(req, 200,
	    json_pack("{s:b, s:s?, s:o, s:o}", "valid", reason == NULL,
	        "reason", reason, "not_after",
	        time_json(db_value(res, 0, 0, 1)), "platforms",
	        platforms ? platforms : json_array()));
}

/* ---- the route table --------------------------------------------------- */

const struct http_route issuance_routes[] = {
    {"GET", "/api/v1/certs", cert_list, 0},
    {"GET", "/api/v1/certs/crl/{ca}", cert_crl, 0},
    {"POST", "/api/v1/certs/imports", cert_import, ISSUANCE_IMPORT_MAX_BODY},
    {"GET", "/api/v1/certs/imports/{id}", cert_import_get, 0},
    {"POST", "/api/v1/certs/{id}/renewal/challenge", cert_renewal_challenge, 0},
    {"POST", "/api/v1/certs/{id}/renewal", cert_renewal, 64 * 1024},
    {"POST", "/api/v1/certs/{id}/revoke", cert_revoke, 0},
    {"GET", "/api/v1/interop/certs/{serial}/status", interop_status, 0},
};
const size_t issuance_nroutes = ARRAY_LEN(issuance_routes);
