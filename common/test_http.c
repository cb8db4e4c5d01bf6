/* Unit tests for http's pure parts: route matching with {parameters}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "http.c"

struct match_case {
	const char *pattern, *path;
	int match;
	const char *p0, *p1;
};

static const struct match_case cases[] = {
    {"/a/b", "/a/b", 1, NULL, NULL},
    {"/a/b", "/a/bc", 0, NULL, NULL},
    {"/a/b", "/a", 0, NULL, NULL},
    {"/a/{id}", "/a/42", 1, "42", NULL},
    {"/a/{id}", "/a/", 0, NULL, NULL},
    {"/a/{id}/switch", "/a/42/switch", 1, "42", NULL},
    {"/a/{id}/switch", "/a/42/other", 0, NULL, NULL},
    {"/a/{id}/switch", "/a/42", 0, NULL, NULL},
    {"/a/{x}/b/{y}", "/a/1/b/2", 1, "1", "2"},
    {"/a/{x}", "/a/%E4%B8%AD", 1, "\xe4\xb8\xad", NULL},
    {"/a/{x}", "/a/1/2", 0, NULL, NULL},
};

static void
test_route_match(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *params[HTTP_MAX_PARAMS] = {0};
		int m =
		    http_route_match(cases[i].pattern, cases[i].path, params);
		assert_int_equal(m, cases[i].match);
		if (cases[i].p0)
			assert_string_equal(params[0], cases[i].p0);
		else
			assert_null(params[0]);
		if (cases[i].p1)
			assert_string_equal(params[1], cases[i].p1);
		for (int k = 0; k < HTTP_MAX_PARAMS; k++)
			free(params[k]);
	}
}

static void
test_request_id_ok(void **state)
{
	assert_true(http_request_id_ok("abc-123_x.y"));
	assert_false(http_request_id_ok(""));
	assert_false(http_request_id_ok("has space"));
	assert_false(http_request_id_ok("new\nline"));
	assert_false(http_request_id_ok(
	    "0123456789012345678901234567890123456789012345678"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_match),
	    cmocka_unit_test(test_request_id_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
