/* Unit tests for idem's pure parts: which Idempotency-Keys are accepted, and
 * the request hash (the same request with its keys reordered or spaced
 * otherwise hashes alike; another value, method or path does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "idem.h"

static json_t *
parse(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);
	assert_non_null(v);
	return v;
}

/* Compares the hashes of two JSON texts under one method and path. */
static int
same_hash(const char *a, const char *b)
{
	char ha[CRYPTO_SHA256_HEX_SIZE], hb[CRYPTO_SHA256_HEX_SIZE];
	json_t *ja = parse(a), *jb = parse(b);

	idem_request_hash("POST", "/api/v1/orders", ja, ha);
	idem_request_hash("POST", "/api/v1/orders", jb, hb);
	json_decref(ja);
	json_decref(jb);
	return strcmp(ha, hb) == 0;
}

static void
test_key_check(void **state)
{
	static const struct {
		const char *key;
		enum idem_key_check want;
	} cases[] = {
	    {NULL, IDEM_KEY_MISSING},
	    {"", IDEM_KEY_MISSING},
	    {"a", IDEM_KEY_OK},
	    {"3f2b8c1e-9a7d-4e6b-8c2f-1a2b3c4d5e6f", IDEM_KEY_OK},
	    {"!~{}[]()<>", IDEM_KEY_OK}, /* every printable ASCII */
	    {"with space", IDEM_KEY_INVALID},
	    {"tab\there", IDEM_KEY_INVALID},
	    {"new\nline", IDEM_KEY_INVALID},
	    {"del\x7f", IDEM_KEY_INVALID},
	    {"中文", IDEM_KEY_INVALID},
	};
	char key[IDEM_KEY_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(idem_key_check(cases[i].key), cases[i].want);
	memset(key, 'k', IDEM_KEY_MAX);
	key[IDEM_KEY_MAX] = '\0';
	assert_int_equal(idem_key_check(key), IDEM_KEY_OK);
	key[IDEM_KEY_MAX] = 'k';
	key[IDEM_KEY_MAX + 1] = '\0';
	assert_int_equal(idem_key_check(key), IDEM_KEY_INVALID);
}

static void
test_hash_reordered_keys_equal(void **state)
{
	assert_true(
	    same_hash("{\"a\":1,\"b\":\"x\"}", "{\"b\":\"x\",\"a\":1}"));
	assert_true(same_hash("{\"a\":1,\"b\":\"x\"}",
	    "{ \"b\" : \"x\" ,\n  \"a\" : 1 }"));
	/* Nested objects are sorted too; arrays keep their order. */
	assert_true(same_hash(
	    "{\"items\":[{\"platforms\":[\"A\",\"B\"],\"cert_id\":\"c\"}],"
	    "\"invoice\":{\"type\":\"none\",\"email\":null}}",
	    "{\"invoice\":{\"email\":null,\"type\":\"none\"},"
	    "\"items\":[{\"cert_id\":\"c\",\"platforms\":[\"A\",\"B\"]}]}"));
}

static void
test_hash_different_requests_differ(void **state)
{
	char h1[CRYPTO_SHA256_HEX_SIZE], h2[CRYPTO_SHA256_HEX_SIZE];
	json_t *body = parse("{\"a\":1}");

	assert_false(same_hash("{\"a\":1}", "{\"a\":2}"));
	assert_false(same_hash("{\"a\":1}", "{\"a\":\"1\"}"));
	assert_false(same_hash("{\"a\":1}", "{\"a\":1,\"b\":null}"));
	assert_false(same_hash("{\"o\":{\"a\":1}}", "{\"o\":{\"a\":2}}"));
	assert_false(
	    same_hash("{\"l\":[\"A\",\"B\"]}", "{\"l\":[\"B\",\"A\"]}"));
	/* The method and the path are part of the request. */
	idem_request_hash("POST", "/api/v1/payments", body, h1);
	idem_request_hash("POST", "/api/v1/finance/refunds", body, h2);
	assert_string_not_equal(h1, h2);
	idem_request_hash("PUT", "/api/v1/payments", body, h2);
	assert_string_not_equal(h1, h2);
	json_decref(body);
}

static void
test_hash_known_value(void **state)
{
	char h[CRYPTO_SHA256_HEX_SIZE];
	json_t *body = parse("{\"b\":[{\"y\":\"中\",\"x\":2}],\"a\":1}");

	/* sha256("POST /api/v1/orders\n" + hex sha256 of the canonical body
	 * {"a":1,"b":[{"x":2,"y":"中"}]}), computed independently. */
	idem_request_hash("POST", "/api/v1/orders", body, h);
	assert_string_equal(h,
	    "272921ef3af416c74f59dbbff29ed57633c87401b0b3867ea4545cc25c1ae85a");
	json_decref(body);
	/* No body hashes like a JSON null. */
	char h2[CRYPTO_SHA256_HEX_SIZE];
	json_t *null = json_null();
	idem_request_hash("POST", "/x", NULL, h);
	idem_request_hash("POST", "/x", null, h2);
	assert_string_equal(h, h2);
	assert_int_equal(strlen(h), 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_check),
	    cmocka_unit_test(test_hash_reordered_keys_equal),
	    cmocka_unit_test(test_hash_different_requests_differ),
	    cmocka_unit_test(test_hash_known_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
