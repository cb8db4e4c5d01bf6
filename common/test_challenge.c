/* Unit tests for challenge's pure parts: the id and nonce formats, key
 * building, the stored value (scope, nonce, facts), and the callbacks while
 * Redis is down. Issue and take against a real Redis are proved by the
 * integration tests (CA login, renewal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"
#include "crypto.h"
#include "kv.h"
#include "util.h"

static const struct challenge_scope login = {"auth.login", "auth:challenge:"};
static const struct challenge_scope renewal = {"issuance.renewal",
    "issuance:challenge:"};

static void
test_new_id_and_nonce(void **state)
{
	struct challenge a, b;
	unsigned char *raw;
	size_t len;

	challenge_new(&a, 120, 1000);
	challenge_new(&b, 120, 1000);
	assert_true(uuid_valid(a.id));
	assert_int_equal(strlen(a.id), 36);
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(strlen(a.nonce_b64), 44); /* the contract's length */
	assert_int_equal(crypto_base64_decode(&raw, &len, a.nonce_b64, 44), 0);
	assert_int_equal(len, CHALLENGE_NONCE_LEN);
	free(raw);
	assert_string_not_equal(a.nonce_b64, b.nonce_b64);
	assert_int_equal(a.expires_ms, 1000 + 120 * 1000);
}

static void
test_key(void **state)
{
	static const struct {
		const char *id;
		int rc;
	} cases[] = {
	    {"0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c", 0},
	    {"0B7E2C4A-1F3D-4E5A-9B8C-7D6E5F4A3B2C", 0},
	    {"nope", -1},
	    {"", -1},
	    {"0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c0", -1},
	    {"0b7e2c4a1f3d4e5a9b8c7d6e5f4a3b2c", -1},
	    {"AAAAAAAAAAAAAAAAAAAAAA", -1}, /* the old 22-character token */
	    {"0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c:x", -1},
	};
	char key[CHALLENGE_KEY_SIZE], small[20];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(challenge_key(&login, cases[i].id, key,
		                     sizeof(key)),
		    cases[i].rc);
	assert_int_equal(challenge_key(&login, NULL, key, sizeof(key)), -1);
	assert_int_equal(challenge_key(&login, cases[0].id, key, sizeof(key)),
	    0);
	assert_string_equal(key,
	    "auth:challenge:0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c");
	assert_int_equal(challenge_key(&renewal, cases[0].id, key, sizeof(key)),
	    0);
	assert_string_equal(key,
	    "issuance:challenge:0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c");
	assert_int_equal(challenge_key(&login, cases[0].id, small,
	                     sizeof(small)),
	    -1);
}

static void
test_encode_decode_facts(void **state)
{
	struct challenge c;
	unsigned char nonce[CHALLENGE_NONCE_LEN], *raw;
	size_t len;
	json_t *facts =
	    json_pack("{s:s, s:s}", "cert_id", "c1", "account", "a1");
	json_t *got = NULL;
	char *text;

	challenge_new(&c, 60, 0);
	text = challenge_encode(&renewal, c.nonce_b64, facts);
	assert_int_equal(challenge_decode(&renewal, text, strlen(text), &got,
	                     nonce),
	    0);
	assert_true(json_equal(got, facts));
	assert_int_equal(crypto_base64_decode(&raw, &len, c.nonce_b64, 44), 0);
	assert_memory_equal(raw, nonce, CHALLENGE_NONCE_LEN);
	free(raw);
	json_decref(got);
	/* Another scope cannot read it. */
	got = NULL;
	assert_int_equal(challenge_decode(&login, text, strlen(text), &got,
	                     nonce),
	    -1);
	assert_null(got);
	free(text);
	json_decref(facts);

	/* No facts: an empty object. */
	text = challenge_encode(&login, c.nonce_b64, NULL);
	assert_int_equal(challenge_decode(&login, text, strlen(text), &got,
	                     nonce),
	    0);
	assert_true(json_is_object(got) && json_object_size(got) == 0);
	json_decref(got);
	free(text);
}

static void
test_decode_refuses_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    /* the old auth value: a bare nonce */
	    "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
	    "{\"nonce\":\"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\","
	    "\"facts\":{}}",
	    "{\"scope\":\"auth.login\",\"facts\":{}}",
	    "{\"scope\":\"auth.login\",\"nonce\":\"AAAA\",\"facts\":{}}",
	    "{\"scope\":\"auth.login\",\"nonce\":\"%%%\",\"facts\":{}}",
	    "{\"scope\":\"auth.login\","
	    "\"nonce\":\"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\"}",
	    "{\"scope\":\"auth.login\","
	    "\"nonce\":\"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\","
	    "\"facts\":[]}",
	};
	unsigned char nonce[CHALLENGE_NONCE_LEN];
	json_t *got;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = NULL;
		assert_int_equal(challenge_decode(&login, bad[i],
		                     strlen(bad[i]), &got, nonce),
		    -1);
		assert_null(got);
	}
	const char *good =
	    "{\"scope\":\"auth.login\","
	    "\"nonce\":\"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\","
	    "\"facts\":{}}";
	assert_int_equal(challenge_decode(&login, good, strlen(good), &got,
	                     nonce),
	    0);
	json_decref(got);
}

static void
test_json(void **state)
{
	struct challenge c;
	json_t *o;

	challenge_new(&c, 120, 1700000000000LL);
	o = challenge_json(&c);
	assert_int_equal(json_object_size(o), 3);
	assert_string_equal(json_string_value(
	                        json_object_get(o, "challenge_id")),
	    c.id);
	assert_string_equal(json_string_value(json_object_get(o, "nonce")),
	    c.nonce_b64);
	assert_string_equal(json_string_value(json_object_get(o, "expires_at")),
	    "2023-11-14T22:15:20.000Z");
	json_decref(o);
}

static void
test_signature(void **state)
{
	static const enum crypto_key_type types[] = {CRYPTO_KEY_EC_P256,
	    CRYPTO_KEY_SM2};
	unsigned char nonce[CHALLENGE_NONCE_LEN], other[CHALLENGE_NONCE_LEN];

	memset(nonce, 0x5a, sizeof(nonce));
	memset(other, 0x5b, sizeof(other));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct crypto_key *key, *stranger;
		unsigned char *sig;
		size_t len;
		char *b64;

		assert_int_equal(crypto_key_generate(&key, types[i]), 0);
		assert_int_equal(crypto_key_generate(&stranger, types[i]), 0);
		assert_int_equal(crypto_sign(key, nonce, sizeof(nonce), &sig,
		                     &len),
		    0);
		b64 = crypto_base64_encode(sig, len);
		assert_true(challenge_signature_ok(key, nonce, b64));
		assert_false(challenge_signature_ok(key, other, b64));
		assert_false(challenge_signature_ok(stranger, nonce, b64));
		assert_false(challenge_signature_ok(key, nonce, "%%%"));
		assert_false(challenge_signature_ok(key, nonce, ""));
		assert_false(challenge_signature_ok(key, nonce, NULL));
		assert_false(challenge_signature_ok(NULL, nonce, b64));
		free(b64);
		free(sig);
		crypto_key_free(key);
		crypto_key_free(stranger);
	}
}

static int issued_calls, taken_calls;
static const struct challenge *issued_seen;
static enum challenge_status taken_status;

static void
on_issued(void *arg, const struct challenge *c)
{
	issued_calls++;
	issued_seen = c;
}

static void
on_taken(void *arg, enum challenge_status status,
    const struct challenge_taken *t)
{
	taken_calls++;
	taken_status = status;
	assert_null(t);
}

static void
test_redis_down_and_bad_id(void **state)
{
	struct event_base *base = event_base_new();
	struct kv *kv;

	/* Nothing listens on port 1: each call answers at once. */
	assert_int_equal(kv_new(&kv, base, "redis://127.0.0.1:1", 100), 0);
	issued_seen = (const struct challenge *)1;
	challenge_issue(kv, &login, 60, NULL, on_issued, NULL);
	assert_int_equal(issued_calls, 1);
	assert_null(issued_seen);
	challenge_take(kv, &login, "0b7e2c4a-1f3d-4e5a-9b8c-7d6e5f4a3b2c",
	    on_taken, NULL);
	assert_int_equal(taken_calls, 1);
	assert_int_equal(taken_status, CHALLENGE_UNAVAILABLE);
	/* A malformed id is not found without asking Redis. */
	challenge_take(kv, &login, "nope", on_taken, NULL);
	assert_int_equal(taken_calls, 2);
	assert_int_equal(taken_status, CHALLENGE_NOT_FOUND);
	kv_free(kv);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_id_and_nonce),
	    cmocka_unit_test(test_key),
	    cmocka_unit_test(test_encode_decode_facts),
	    cmocka_unit_test(test_decode_refuses_malformed),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_signature),
	    cmocka_unit_test(test_redis_down_and_bad_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
