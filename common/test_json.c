/* Unit tests for json field readers: each error names the field and has the
 * right status and code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "json.h"

static json_t *
parse(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);
	assert_non_null(v);
	return v;
}

static void
test_str(void **state)
{
	json_t *o = parse(
	    "{\"a\":\"x\",\"n\":1,\"e\":\"\",\"long\":\"abcdef\",\"z\":null}");
	struct json_field_err err;
	const char *s;

	assert_int_equal(json_field_str(o, "a", 1, 10, &s, &err), 0);
	assert_string_equal(s, "x");
	assert_int_equal(json_field_str(o, "missing", 0, 10, &s, &err), 0);
	assert_null(s);
	assert_int_equal(json_field_str(o, "missing", 1, 10, &s, &err), -1);
	assert_int_equal(err.status, 422);
	assert_string_equal(err.code, "FIELD_REQUIRED");
	assert_string_equal(err.field, "missing");
	assert_int_equal(json_field_str(o, "z", 1, 10, &s, &err), -1);
	assert_string_equal(err.code, "FIELD_REQUIRED");
	assert_int_equal(json_field_str(o, "n", 1, 10, &s, &err), -1);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.code, "FIELD_TYPE");
	assert_int_equal(json_field_str(o, "e", 1, 10, &s, &err), -1);
	assert_string_equal(err.code, "FIELD_REQUIRED");
	assert_int_equal(json_field_str(o, "long", 1, 5, &s, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	assert_string_equal(err.field, "long");
	json_decref(o);
}

static void
test_str_embedded_nul(void **state)
{
	json_t *o = json_loads("{\"a\":\"x\\u0000y\"}", JSON_ALLOW_NUL, NULL);
	struct json_field_err err;
	const char *s;

	assert_int_equal(json_field_str(o, "a", 1, 10, &s, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	json_decref(o);
}

static void
test_int(void **state)
{
	json_t *o = parse("{\"a\":5,\"s\":\"5\",\"f\":1.5}");
	struct json_field_err err;
	long long v;
	int present;

	assert_int_equal(json_field_int(o, "a", 1, 0, 10, &v, &present, &err),
	    0);
	assert_int_equal(v, 5);
	assert_int_equal(present, 1);
	assert_int_equal(json_field_int(o, "a", 1, 6, 10, &v, NULL, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	assert_int_equal(json_field_int(o, "s", 1, 0, 10, &v, NULL, &err), -1);
	assert_string_equal(err.code, "FIELD_TYPE");
	assert_int_equal(json_field_int(o, "f", 1, 0, 10, &v, NULL, &err), -1);
	assert_string_equal(err.code, "FIELD_TYPE");
	assert_int_equal(json_field_int(o, "none", 0, 0, 10, &v, &present,
	                     &err),
	    0);
	assert_int_equal(present, 0);
	json_decref(o);
}

static void
test_enum_and_array(void **state)
{
	static const char *const roles[] = {"admin", "agent", NULL};
	json_t *o = parse(
	    "{\"r\":\"admin\",\"bad\":\"root\",\"l\":[\"admin\",\"agent\"],"
	    "\"lb\":[\"admin\",\"x\"],\"empty\":[],\"ln\":[1]}");
	struct json_field_err err;
	const char *s;
	json_t *arr;

	assert_int_equal(json_field_enum(o, "r", 1, roles, &s, &err), 0);
	assert_string_equal(s, "admin");
	assert_int_equal(json_field_enum(o, "bad", 1, roles, &s, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	assert_string_equal(err.field, "bad");
	assert_int_equal(json_field_str_array(o, "l", 1, 5, roles, &arr, &err),
	    0);
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(json_field_str_array(o, "lb", 1, 5, roles, &arr, &err),
	    -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	assert_int_equal(json_field_str_array(o, "l", 1, 1, roles, &arr, &err),
	    -1);
	assert_int_equal(json_field_str_array(o, "empty", 1, 5, roles, &arr,
	                     &err),
	    -1);
	assert_string_equal(err.code, "FIELD_REQUIRED");
	assert_int_equal(json_field_str_array(o, "ln", 1, 5, NULL, &arr, &err),
	    -1);
	assert_string_equal(err.code, "FIELD_TYPE");
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_str),
	    cmocka_unit_test(test_str_embedded_nul),
	    cmocka_unit_test(test_int),
	    cmocka_unit_test(test_enum_and_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
