/* challenge — single-use challenges in Redis (challenge.h): issue with
 * SET … EX … NX, take with GETDEL; the value is a small JSON object naming
 * its scope, the nonce and the bound facts. */
#include "challenge.h"

#include "crypto.h"
#include "kv.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
challenge_new(struct challenge *c, long ttl, int64_t now_ms)
{
	unsigned char nonce[CHALLENGE_NONCE_LEN];
	char *b64;

	crypto_random_bytes(nonce, sizeof(nonce));
	b64 = crypto_base64_encode(nonce, sizeof(nonce));
	snprintf(c->nonce_b64, sizeof(c->nonce_b64), "%s", b64);
	free(b64);
	uuid_v4(c->id);
	c->expires_ms = now_ms + (int64_t)ttl * 1000;
}

int
challenge_key(const struct challenge_scope *scope, const char *id, char *out,
    size_t size)
{
	int n;

	if (id == NULL || !uuid_valid(id))
		return -1;
	n = snprintf(out, size, "%s%s", scope->key_prefix, id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

char *
challenge_encode(const struct challenge_scope *scope, const char *nonce_b64,
    json_t *facts)
{
	json_t *f = facts != NULL ? json_incref(facts) : json_object();
	json_t *v = json_pack("{s:s, s:s, s:o}", "scope", scope->name, "nonce",
	    nonce_b64, "facts", f);
	char *text = json_dumps(v, JSON_COMPACT);

	json_decref(v);
	return text;
}

int
challenge_decode(const struct challenge_scope *scope, const char *text,
    size_t len, json_t **facts, unsigned char nonce[CHALLENGE_NONCE_LEN])
{
	json_t *v = json_loadb(text, len, 0, NULL);
	const char *name = json_string_value(json_object_get(v, "scope"));
	const char *b64 = json_string_value(json_object_get(v, "nonce"));
	json_t *f = json_object_get(v, "facts");
	unsigned char *raw = NULL;
	size_t raw_len = 0;
	int rc = -1;

	if (name != NULL && strcmp(name, scope->name) == 0 && b64 != NULL &&
	    json_is_object(f) &&
	    crypto_base64_decode(&raw, &raw_len, b64, strlen(b64)) == 0 &&
	    raw_len == CHALLENGE_NONCE_LEN) {
		memcpy(nonce, raw, CHALLENGE_NONCE_LEN);
		*facts = json_incref(f);
		rc = 0;
	}
	free(raw);
	json_decref(v);
	return rc;
}

json_t *
challenge_json(const struct challenge *c)
{
	char expires[48];

	time_rfc3339(c->expires_ms, expires);
	return json_pack("{s:s, s:s, s:s}", "challenge_id", c->id, "nonce",
	    c->nonce_b64, "expires_at", expires);
}

int
challenge_signature_ok(const struct crypto_key *key,
    const unsigned char nonce[CHALLENGE_NONCE_LEN], const char *signature_b64)
{
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int ok;

	if (key == NULL || signature_b64 == NULL ||
	    crypto_base64_decode(&sig, &sig_len, signature_b64,
	        strlen(signature_b64)) != 0)
		return 0;
	ok = crypto_verify_sig(key, nonce, CHALLENGE_NONCE_LEN, sig, sig_len) ==
	    0;
	free(sig);
	return ok;
}

/* ---- issue --------------------------------------------------------------- */

struct issue {
	struct challenge c;
	challenge_issued_fn cb;
	void *arg;
};

static void
issue_on_stored(void *arg, const struct kv_reply *reply)
{
	struct issue *is = arg;
	int ok = reply != NULL && kv_reply_type(reply) == KV_STATUS;

	is->cb(is->arg, ok ? &is->c : NULL);
	free(is);
}

void
challenge_issue(struct kv *kv, const struct challenge_scope *scope, long ttl,
    json_t *facts, challenge_issued_fn cb, void *arg)
{
	struct issue *is = xcalloc(1, sizeof(*is));
	char key[CHALLENGE_KEY_SIZE], secs[24], *value;

	is->cb = cb;
	is->arg = arg;
	challenge_new(&is->c, ttl, now_wall_ms());
	if (challenge_key(scope, is->c.id, key, sizeof(key)) != 0)
		fatal("challenge: key prefix too long: %s", scope->key_prefix);
	value = challenge_encode(scope, is->c.nonce_b64, facts);
	snprintf(secs, sizeof(secs), "%ld", ttl);
	const char *argv[] = {"SET", key, value, "EX", secs, "NX"};
	kv_command(kv, issue_on_stored, is, 6, argv, NULL);
	free(value);
}

/* ---- take ---------------------------------------------------------------- */

struct take {
	const struct challenge_scope *scope;
	challenge_taken_fn cb;
	void *arg;
};

static void
take_on_reply(void *arg, const struct kv_reply *reply)
{
	struct take *tk = arg;
	struct challenge_taken t = {NULL, {0}};
	const char *text;
	size_t len;

	if (reply == NULL) {
		tk->cb(tk->arg, CHALLENGE_UNAVAILABLE, NULL);
	} else if (kv_reply_type(reply) == KV_STR &&
	    (text = kv_reply_str(reply, &len)) != NULL &&
	    challenge_decode(tk->scope, text, len, &t.facts, t.nonce) == 0) {
		tk->cb(tk->arg, CHALLENGE_OK, &t);
		json_decref(t.facts);
	} else {
		tk->cb(tk->arg, CHALLENGE_NOT_FOUND, NULL);
	}
	free(tk);
}

void
challenge_take(struct kv *kv, const struct challenge_scope *scope,
    const char *id, challenge_taken_fn cb, void *arg)
{
	char key[CHALLENGE_KEY_SIZE];
	struct take *tk;

	if (challenge_key(scope, id, key, sizeof(key)) != 0) {
		cb(arg, CHALLENGE_NOT_FOUND, NULL);
		return;
	}
	tk = xcalloc(1, sizeof(*tk));
	tk->scope = scope;
	tk->cb = cb;
	tk->arg = arg;
	const char *argv[] = {"GETDEL", key};
	kv_command(kv, take_on_reply, tk, 2, argv, NULL);
}
