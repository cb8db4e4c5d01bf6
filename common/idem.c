/* idem — Idempotency-Key: key check, canonical request hash, the claim's
 * answers, storing and releasing the first response, the purge. See idem.h;
 * the SQL is in idem_store.c. */
#include "idem.h"

#include "cfg.h"
#include "http.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_FIELD "Idempotency-Key"

void
idem_config_load(struct idem_config *c)
{
	const struct cfg_var vars[] = {
	    {"CAPLAT_IDEMPOTENCY_LOCK_SECONDS", CFG_INT, "60", 5, 3600,
	        &c->lock_seconds,
	        "seconds before a retry may take over an unfinished request's "
	        "Idempotency-Key"},
	    {"CAPLAT_IDEMPOTENCY_RETENTION_HOURS", CFG_INT, "48", 1, 24 * 365,
	        &c->retention_hours,
	        "hours an Idempotency-Key and its first response are kept"},
	    {"CAPLAT_IDEMPOTENCY_PURGE_SECONDS", CFG_INT, "3600", 1, 86400,
	        &c->purge_seconds,
	        "seconds between two purges of expired Idempotency-Keys"},
	};

	cfg_load_or_die(vars, ARRAY_LEN(vars));
}

/* ---- pure ---------------------------------------------------------------- */

enum idem_key_check
idem_key_check(const char *key)
{
	size_t n;

	if (key == NULL || key[0] == '\0')
		return IDEM_KEY_MISSING;
	for (n = 0; key[n] != '\0'; n++) {
		unsigned char c = (unsigned char)key[n];

		if (n >= IDEM_KEY_MAX || c < 0x21 || c > 0x7e)
			return IDEM_KEY_INVALID;
	}
	return IDEM_KEY_OK;
}

void
idem_request_hash(const char *method, const char *path, const json_t *body,
    char out[CRYPTO_SHA256_HEX_SIZE])
{
	char body_hash[CRYPTO_SHA256_HEX_SIZE];
	char *canon = NULL, *material;

	/* The body's own hash first: a stored key's hash can then be derived
	 * from a hash of the body alone (orders' keys before this module). */
	if (body != NULL)
		canon = json_dumps(body,
		    JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	if (canon == NULL)
		canon = xstrdup("null");
	crypto_sha256_hex(canon, strlen(canon), body_hash);
	free(canon);
	material = xasprintf("%s %s\n%s", method, path, body_hash);
	crypto_sha256_hex(material, strlen(material), out);
	free(material);
}

/* ---- the request ---------------------------------------------------------- */

int
idem_read(struct http_req *req, const char *scope, struct idem *out)
{
	const char *key = http_header(req, KEY_FIELD);

	switch (idem_key_check(key)) {
	case IDEM_KEY_OK:
		break;
	case IDEM_KEY_MISSING:
		http_reply_error(req, 400, "IDEMPOTENCY_KEY_MISSING", KEY_FIELD,
		    "缺少 Idempotency-Key 请求头");
		return -1;
	case IDEM_KEY_INVALID:
		http_reply_error(req, 400, "BAD_REQUEST", KEY_FIELD,
		    "Idempotency-Key 须为 1 至 128 个可见 ASCII 字符");
		return -1;
	}
	snprintf(out->scope, sizeof(out->scope), "%s", scope);
	snprintf(out->key, sizeof(out->key), "%s", key);
	out->hash[0] = '\0';
	return 0;
}

void
idem_hash(struct idem *i, const struct http_req *req, const json_t *body)
{
	idem_request_hash(req->method, req->path, body, i->hash);
}

enum idem_claim
idem_claim_result(struct http_req *req, const struct db_result *res, int stmt,
    const struct idem *i)
{
	const char *hash, *status, *body;

	if (db_rows(res, stmt) == 1)
		return IDEM_CLAIMED;
	hash = db_value(res, stmt + 1, 0, 0);
	status = db_value(res, stmt + 1, 0, 1);
	body = db_value(res, stmt + 1, 0, 2);
	if (hash != NULL && strcmp(hash, i->hash) != 0) {
		http_reply_error(req, 409, "IDEMPOTENCY_KEY_REUSED", KEY_FIELD,
		    "该 Idempotency-Key 已用于另一个请求");
		return IDEM_REFUSED;
	}
	/* No row: freed between the two statements; the client retries. */
	if (hash == NULL || status == NULL) {
		http_reply_error(req, 409, "IDEMPOTENCY_IN_PROGRESS", NULL,
		    "相同 Idempotency-Key 的请求正在处理，请稍后重试");
		return IDEM_REFUSED;
	}
	http_add_header(req, "Idempotent-Replayed", "true");
	http_reply_raw(req, atoi(status), "application/json; charset=utf-8",
	    body ? body : "", body ? strlen(body) : 0);
	return IDEM_REPLAYED;
}

/* A reply that waits for the key's statement. */
struct idem_done {
	struct http_req *req;
	int status;
	json_t *body;
};

static void
idem_on_stored(void *arg, const struct db_result *res)
{
	struct idem_done *d = arg;

	if (res->status != DB_OK)
		log_warn(d->req->id, "msg=idempotency_not_stored detail=\"%s\"",
		    res->message ? res->message : "");
	http_reply_json(d->req, d->status, d->body);
	free(d);
}

void
idem_finish(struct db_pool *db, struct http_req *req, const struct idem *i,
    int status, json_t *body)
{
	struct idem_done *d = xcalloc(1, sizeof(*d));
	struct db_batch *b = db_batch_new();
	char *text = json_dumps(body, JSON_COMPACT);

	d->req = req;
	d->status = status;
	d->body = body;
	idem_save_add(b, i, status, text);
	free(text);
	db_batch_run(db, b, idem_on_stored, d);
}

void
idem_finish_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, int status, const char *code, const char *field,
    const char *message)
{
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (field != NULL)
		json_object_set_new(e, "field", json_string(field));
	idem_finish(db, req, i, status, json_pack("{s:o}", "error", e));
}

/* An error answered once its key is released. */
struct idem_release {
	struct http_req *req;
	int status;
	char *code, *field, *message;
};

static void
idem_on_released(void *arg, const struct db_result *res)
{
	struct idem_release *r = arg;

	if (res->status != DB_OK)
		log_warn(r->req->id, "msg=idempotency_release_failed");
	http_reply_error(r->req, r->status, r->code, r->field, r->message);
	free(r->code);
	free(r->field);
	free(r->message);
	free(r);
}

void
idem_release_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, int status, const char *code, const char *field,
    const char *message)
{
	struct idem_release *r = xcalloc(1, sizeof(*r));
	struct db_batch *b = db_batch_new();

	r->req = req;
	r->status = status;
	r->code = xstrdup(code);
	r->field = field ? xstrdup(field) : NULL;
	r->message = xstrdup(message);
	idem_release_add(b, i);
	db_batch_run(db, b, idem_on_released, r);
}

void
idem_release_db_error(struct db_pool *db, struct http_req *req,
    const struct idem *i, const struct db_result *res)
{
	int status;
	const char *code, *message;

	http_db_error_answer(req, res, &status, &code, &message);
	idem_release_error(db, req, i, status, code, NULL, message);
}

/* A purge's caller, told when it is done. */
struct idem_purge {
	db_cb done;
	void *arg;
};

static void
idem_on_purged(void *arg, const struct db_result *res)
{
	struct idem_purge *p = arg;

	if (res->status != DB_OK)
		log_warn(NULL, "msg=idempotency_purge_failed detail=\"%s\"",
		    res->message ? res->message : "");
	else if (db_affected(res, 0) > 0)
		log_info(NULL, "msg=idempotency_keys_purged count=%ld",
		    db_affected(res, 0));
	if (p->done != NULL)
		p->done(p->arg, res);
	free(p);
}

void
idem_purge(struct db_pool *db, long retention_hours, db_cb done, void *arg)
{
	struct idem_purge *p = xcalloc(1, sizeof(*p));
	struct db_batch *b = db_batch_new();

	p->done = done;
	p->arg = arg;
	idem_purge_add(b, retention_hours);
	db_batch_run(db, b, idem_on_purged, p);
}
