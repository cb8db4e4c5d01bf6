/* request — what the handler files (handlers.c, ca.c) share: reading a
 * required field, the SMS refusal replies, and the session object from the
 * store's session view, the audit base, the rewrite of sessions whose
 * identity ended and the session_drops round that retries a rewrite which
 * did not happen. A leaf: it calls only the store (and common/). */
#include "auth.h"

#include "audit.h"
#include "db.h"
#include "fault.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "sweep.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

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

enum request_fault {
	REQUEST_CRASH_BEFORE_SESSIONS_DROP = 1,
};

static const char *const request_fault_names[] = {
    "auth_crash_before_sessions_drop",
    NULL,
};

static struct fault request_fault;

void
auth_request_init(void)
{
	fault_arm(&request_fault, request_fault_names);
}

/* A removal's own rewrite runs right after its commit: the sweep leaves it
 * that long before it steps in. */
#define DROP_GRACE_MS 5000
#define DROP_BATCH 100

static struct {
	struct sweep *sweep;
	int outstanding, claimed;
} drops;

struct sessions_op {
	auth_sessions_fn cb;
	void *arg;
	char account[37];
	char identity[37];
};

static void
sessions_on_marked(void *arg, const struct db_result *res)
{
	char *identity = arg;

	/* Unmarked, the sweep rewrites them once more: harmless. */
	if (res->status != DB_OK)
		log_warn(NULL, "msg=sessions_drop_not_marked identity=%s",
		    identity);
	free(identity);
}

static void
sessions_on_rewritten(void *arg, const struct kv_reply *reply)
{
	struct sessions_op *op = arg;
	int failed = reply == NULL || kv_reply_type(reply) == KV_ERROR;

	if (failed) {
		log_error(NULL, "msg=sessions_not_rewritten account=%s",
		    op->account);
		/* the sweep retries it once its grace is over (before the
		 * sweep's first round, that round finds it) */
		if (drops.sweep != NULL)
			sweep_due(drops.sweep, DROP_GRACE_MS);
	} else {
		struct db_batch *b = db_batch_new();

		store_sessions_dropped(b, op->identity);
		db_batch_run(auth.svc.db, b, sessions_on_marked,
		    xstrdup(op->identity));
	}
	if (op->cb != NULL)
		op->cb(op->arg, failed ? -1 : 0);
	free(op);
}

void
auth_sessions_drop_identity(const char *account_id, const char *identity_id,
    json_t *replacement, auth_sessions_fn cb, void *arg)
{
	struct sessions_op *op = xcalloc(1, sizeof(*op));
	char key[128];
	char *repl =
	    replacement ? json_dumps(replacement, JSON_COMPACT) : xstrdup("");

	/* the identity's end is committed; its sessions not yet rewritten */
	fault_point(&request_fault, REQUEST_CRASH_BEFORE_SESSIONS_DROP);
	auth_me_changed(account_id);
	op->cb = cb;
	op->arg = arg;
	snprintf(op->account, sizeof(op->account), "%s", account_id);
	snprintf(op->identity, sizeof(op->identity), "%s", identity_id);
	store_sessions_key(key, sizeof(key), account_id);
	const char *argv[] = {"EVAL", store_session_identity_lua, "1", key,
	    identity_id, repl};
	kv_command(auth.svc.kv, sessions_on_rewritten, op, 6, argv, NULL);
	free(repl);
}

/* ---- the session_drops sweep (080_session_drops.sql) ------------------- */

static void
drop_one_done(void *arg, int status)
{
	(void)arg;
	(void)status; /* a failure stays unmarked: the next round retries */
	if (--drops.outstanding > 0)
		return;
	if (drops.claimed == DROP_BATCH)
		sweep_again(drops.sweep);
	else
		sweep_done(drops.sweep, -1);
}

static void
drop_on_listed(void *arg, const struct db_result *res)
{
	(void)arg;
	if (res->status != DB_OK) {
		sweep_done(drops.sweep, -1);
		return;
	}
	const char *next = db_value(res, 1, 0, 0);
	if (next != NULL)
		sweep_due(drops.sweep, atol(next)); /* overdue: now */
	drops.claimed = db_rows(res, 0);
	drops.outstanding = drops.claimed;
	if (drops.claimed == 0) {
		sweep_done(drops.sweep, -1);
		return;
	}
	for (int i = 0; i < drops.claimed; i++) {
		log_warn(NULL,
		    "msg=sessions_drop_retried identity=%s account=%s",
		    db_value(res, 0, i, 0), db_value(res, 0, i, 1));
		auth_sessions_drop_identity(db_value(res, 0, i, 1),
		    db_value(res, 0, i, 0), NULL, drop_one_done, NULL);
	}
}

void
auth_sessions_drop_round(struct sweep *s)
{
	struct db_batch *b = db_batch_new();

	drops.sweep = s;
	store_sessions_to_drop(b, DROP_BATCH, DROP_GRACE_MS);
	db_batch_run(auth.svc.db, b, drop_on_listed, NULL);
}

/* ---- the cached /me answer (issue 16) --------------------------------- */

/* The body lives shorter than the version key, and every store refreshes
 * the version key's TTL: a version key never vanishes (restarting at 0)
 * while a body stored under an older count is still there. */
#define ME_BODY_TTL "3600"
#define ME_VERSION_TTL "86400"

void
auth_me_changed(const char *account_id)
{
	char ver[96], body[96];

	store_me_keys(ver, body, sizeof(ver), account_id);
	const char *incr[] = {"INCR", ver};
	const char *ttl[] = {"EXPIRE", ver, ME_VERSION_TTL};
	kv_command(auth.svc.kv, NULL, NULL, 2, incr, NULL);
	kv_command(auth.svc.kv, NULL, NULL, 3, ttl, NULL);
}

struct me_get {
	auth_me_cached_fn cb;
	void *arg;
};

static void
me_on_got(void *arg, const struct kv_reply *r)
{
	struct me_get *g = arg;
	const char *version = NULL, *body = NULL, *nl;
	size_t vlen = 0, blen = 0;
	char vbuf[32];

	if (r != NULL && kv_reply_type(r) == KV_ARRAY &&
	    kv_reply_count(r) == 2) {
		const struct kv_reply *v = kv_reply_elem(r, 0);
		const struct kv_reply *b = kv_reply_elem(r, 1);
		version = "0";
		vlen = 1;
		if (kv_reply_type(v) == KV_STR)
			version = kv_reply_str(v, &vlen);
		if (vlen >= sizeof(vbuf)) {
			version = NULL;
		} else {
			memcpy(vbuf, version, vlen);
			vbuf[vlen] = '\0';
			version = vbuf;
		}
		if (version != NULL && kv_reply_type(b) == KV_STR) {
			body = kv_reply_str(b, &blen);
			nl = memchr(body, '\n', blen);
			if (nl != NULL && (size_t)(nl - body) == vlen &&
			    memcmp(body, version, vlen) == 0) {
				blen -= vlen + 1;
				body = nl + 1;
			} else {
				body = NULL;
			}
		}
	}
	g->cb(g->arg, body, body ? blen : 0, version);
	free(g);
}

void
auth_me_cached(const char *account_id, auth_me_cached_fn cb, void *arg)
{
	struct me_get *g = xcalloc(1, sizeof(*g));
	char ver[96], body[96];

	g->cb = cb;
	g->arg = arg;
	store_me_keys(ver, body, sizeof(ver), account_id);
	const char *argv[] = {"MGET", ver, body};
	kv_command(auth.svc.kv, me_on_got, g, 3, argv, NULL);
}

void
auth_me_cache_put(const char *account_id, const char *version,
    const char *answer)
{
	char ver[96], body[96];
	size_t n = strlen(version) + 1 + strlen(answer) + 1;
	char *text = xcalloc(1, n);

	snprintf(text, n, "%s\n%s", version, answer);
	store_me_keys(ver, body, sizeof(ver), account_id);
	const char *ttl[] = {"EXPIRE", ver, ME_VERSION_TTL};
	const char *set[] = {"SET", body, text, "EX", ME_BODY_TTL};
	kv_command(auth.svc.kv, NULL, NULL, 3, ttl, NULL);
	kv_command(auth.svc.kv, NULL, NULL, 5, set, NULL);
	free(text);
}

char *
auth_audit_base(const struct http_req *req)
{
	const struct audit_entry e = {"", "", "", NULL, NULL, NULL};
	json_t *d = audit_event_data(req, &e);
	char *text;

	/* ident_audit() sets these per entry. */
	json_object_del(d, "action");
	json_object_del(d, "object_type");
	json_object_del(d, "object_id");
	json_object_del(d, "uscc");
	json_object_del(d, "before");
	json_object_del(d, "after");
	text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return text;
}
