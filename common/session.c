/* session — bearer-token sessions in Redis; see session.h. */
#include "session.h"

#include "crypto.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kv *session_kv;
static int session_ttl = 1800;

void
session_setup(struct kv *kv, int ttl_seconds)
{
	session_kv = kv;
	session_ttl = ttl_seconds > 0 ? ttl_seconds : 1800;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	json_decref(s->data);
	free(s);
}

static const char *
session_str(json_t *data, const char *key)
{
	return json_string_value(json_object_get(data, key));
}

static struct session *
session_from_json(const char *hash, json_t *data)
{
	struct session *s = xcalloc(1, sizeof(*s));

	snprintf(s->token_hash, sizeof(s->token_hash), "%s", hash);
	s->data = data;
	s->account_id = session_str(data, "account_id");
	s->staff_id = session_str(data, "staff_id");
	s->identity_id = session_str(data, "identity_id");
	s->identity_type = session_str(data, "identity_type");
	s->role = session_str(data, "role");
	s->enterprise_id = session_str(data, "enterprise_id");
	s->uscc = session_str(data, "uscc");
	return s;
}

struct session_check {
	struct http_req *req;
	void (*next)(struct http_req *req);
	char hash[65];
};

static void
session_on_loaded(void *arg, const struct kv_reply *reply)
{
	struct session_check *sc = arg;
	struct http_req *req = sc->req;
	void (*next)(struct http_req *) = sc->next;
	json_t *data = NULL;
	size_t len;
	const char *text;

	if (reply == NULL) {
		free(sc);
		http_reply_unavailable(req, "redis");
		return;
	}
	if (kv_reply_type(reply) == KV_STR &&
	    (text = kv_reply_str(reply, &len)) != NULL)
		data = json_loadb(text, len, 0, NULL);
	if (data == NULL || !json_is_object(data)) {
		json_decref(data);
		free(sc);
		http_reply_error(req, 401, "UNAUTHENTICATED", NULL,
		    "未登录或登录已过期，请重新登录");
		return;
	}
	req->session = session_from_json(sc->hash, data);
	req->session_free = session_free;
	free(sc);
	next(req);
}

void
session_require(struct http_req *req, void (*next)(struct http_req *req))
{
	const char *auth = http_header(req, "Authorization");
	char ttl[24], key[80];
	struct session_check *sc;

	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
	    strlen(auth + 7) < 16 || strlen(auth + 7) > 128) {
		http_reply_error(req, 401, "UNAUTHENTICATED", NULL,
		    "未登录或登录已过期，请重新登录");
		return;
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->req = req;
	sc->next = next;
	crypto_sha256_hex(auth + 7, strlen(auth + 7), sc->hash);
	snprintf(key, sizeof(key), "sess:%s", sc->hash);
	snprintf(ttl, sizeof(ttl), "%d", session_ttl);
	const char *argv[] = {"GETEX", key, "EX", ttl};
	kv_command(session_kv, session_on_loaded, sc, 4, argv, NULL);
}

int
session_has_role(const struct session *s, const char *role)
{
	json_t *roles = json_object_get(s->data, "roles");
	size_t i;
	json_t *r;

	if (s->staff_id == NULL)
		return 0;
	json_array_foreach(roles, i, r)
	{
		if (json_is_string(r) &&
		    strcmp(json_string_value(r), role) == 0)
			return 1;
	}
	return 0;
}

int
session_require_staff(struct http_req *req, const char *role)
{
	if (session_has_role(req->session, role))
		return 0;
	http_reply_error(req, 403, "FORBIDDEN", NULL, "无权执行此操作");
	return -1;
}

/* A few Redis commands sent back to back on the one connection (so they
 * arrive in order); the caller hears once, after the last reply. */
struct session_op {
	int pending, failed;
	char *token;
	session_created_fn created;
	session_done_fn done;
	void *arg;
};

static void
session_op_reply(void *arg, const struct kv_reply *reply)
{
	struct session_op *op = arg;

	if (reply == NULL || kv_reply_type(reply) == KV_ERROR)
		op->failed = 1;
	if (--op->pending > 0)
		return;
	if (op->created != NULL)
		op->created(op->arg, op->failed ? NULL : op->token);
	else if (op->done != NULL)
		op->done(op->arg, op->failed ? -1 : 0);
	free(op->token);
	free(op);
}

static void
session_send(struct session_op *op, int n, const char *const *cmds[],
    const int argcs[])
{
	op->pending = n;
	for (int i = 0; i < n; i++)
		kv_command(session_kv, session_op_reply, op, argcs[i], cmds[i],
		    NULL);
}

void
session_create(json_t *data, session_created_fn cb, void *arg)
{
	struct session_op *op = xcalloc(1, sizeof(*op));
	const char *owner = session_str(data, "account_id");
	char hash[65], key[80], owner_key[128], ttl[16];
	char *text = json_dumps(data, JSON_COMPACT);

	if (owner == NULL)
		owner = session_str(data, "staff_id");
	op->token = crypto_random_token(32);
	op->created = cb;
	op->arg = arg;
	crypto_sha256_hex(op->token, strlen(op->token), hash);
	snprintf(key, sizeof(key), "sess:%s", hash);
	snprintf(owner_key, sizeof(owner_key), "sessions:%s",
	    owner ? owner : "-");
	snprintf(ttl, sizeof(ttl), "%d", session_ttl);
	const char *set[] = {"SET", key, text, "EX", ttl};
	const char *sadd[] = {"SADD", owner_key, hash};
	/* The account's list outlives any one session; stale hashes in it
	 * only name keys that have expired. */
	char list_ttl[24];
	snprintf(list_ttl, sizeof(list_ttl), "%d", session_ttl * 48);
	const char *expire[] = {"EXPIRE", owner_key, list_ttl};
	const char *const *cmds[] = {set, sadd, expire};
	const int argcs[] = {5, 3, 3};
	session_send(op, 3, cmds, argcs);
	free(text);
}

void
session_update(const char *token_hash, json_t *data, session_done_fn cb,
    void *arg)
{
	struct session_op *op = xcalloc(1, sizeof(*op));
	char key[80], ttl[24];
	char *text = json_dumps(data, JSON_COMPACT);

	op->done = cb;
	op->arg = arg;
	snprintf(key, sizeof(key), "sess:%s", token_hash);
	snprintf(ttl, sizeof(ttl), "%d", session_ttl);
	const char *set[] = {"SET", key, text, "EX", ttl, "XX"};
	const char *const *cmds[] = {set};
	const int argcs[] = {6};
	session_send(op, 1, cmds, argcs);
	free(text);
}

void
session_delete(const char *token_hash, session_done_fn cb, void *arg)
{
	struct session_op *op = xcalloc(1, sizeof(*op));
	char key[80];

	op->done = cb;
	op->arg = arg;
	snprintf(key, sizeof(key), "sess:%s", token_hash);
	const char *del[] = {"DEL", key};
	const char *const *cmds[] = {del};
	const int argcs[] = {2};
	session_send(op, 1, cmds, argcs);
}

/* Deletes every session listed for the account, then the list, atomically
 * on the server (one script, one round trip). */
static const char session_delete_all_lua[] =
    "local hs = redis.call('SMEMBERS', KEYS[1]) "
    "for _, h in ipairs(hs) do redis.call('DEL', 'sess:' .. h) end "
    "redis.call('DEL', KEYS[1]) return #hs";

void
session_delete_all(const char *account_id, session_done_fn cb, void *arg)
{
	struct session_op *op = xcalloc(1, sizeof(*op));
	char owner_key[128];

	op->done = cb;
	op->arg = arg;
	snprintf(owner_key, sizeof(owner_key), "sessions:%s", account_id);
	const char *eval[] = {"EVAL", session_delete_all_lua, "1", owner_key};
	const char *const *cmds[] = {eval};
	const int argcs[] = {4};
	session_send(op, 1, cmds, argcs);
}
