/* Unit tests for http's pure parts: route matching with {parameters}, the
 * UTF-8 text check, parameter names and the Allow list. */
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

static void
test_text_valid(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int ok;
	} t[] = {
	    {"", 0, 1}, {"plain ascii", 11, 1},
	    {"\xe4\xb8\xad\xe6\x96\x87", 6, 1}, /* 中文 */
	    {"\xf0\x9f\x98\x80", 4, 1},         /* U+1F600 */
	    {"\xc2\x80", 2, 1},                 /* U+0080 */
	    {"\xef\xbf\xbf", 3, 1},             /* U+FFFF */
	    {"\xf4\x8f\xbf\xbf", 4, 1},         /* U+10FFFF */
	    {"\xff\xfe", 2, 0},                 /* the finding */
	    {"a\0b", 3, 0},                     /* NUL */
	    {"\xc0\xaf", 2, 0},                 /* overlong '/' */
	    {"\xe0\x80\xaf", 3, 0},             /* overlong '/' */
	    {"\xf0\x80\x80\xaf", 4, 0},         /* overlong '/' */
	    {"\xed\xa0\x80", 3, 0},             /* surrogate D800 */
	    {"\xed\xbf\xbf", 3, 0},             /* surrogate DFFF */
	    {"\xf4\x90\x80\x80", 4, 0},         /* U+110000 */
	    {"\xe4\xb8", 2, 0},                 /* truncated */
	    {"\x80", 1, 0},                     /* lone continuation */
	    {"\xe4\x41\xad", 3, 0},             /* bad continuation */
	    {"\xf8\x88\x80\x80\x80", 5, 0},     /* 5-byte form */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++)
		assert_int_equal(http_text_valid(t[i].s, t[i].len), t[i].ok);
}

static void
test_route_params_not_text(void **state)
{
	char *params[HTTP_MAX_PARAMS] = {0};

	/* the finding: GET /api/v1/platforms/%ff%fe/prices */
	assert_int_equal(http_route_match("/p/{code}/prices",
	                     "/p/%ff%fe/prices", params),
	    1);
	assert_false(http_text_valid(params[0], strlen(params[0])));
	free(params[0]);
	params[0] = NULL;
	/* a decoded %00 does not cut the value short: it stays invalid */
	assert_int_equal(http_route_match("/p/{code}", "/p/ab%00cd", params),
	    1);
	assert_int_equal(strlen(params[0]), 5);
	assert_false(http_text_valid(params[0], strlen(params[0])));
	free(params[0]);
}

static void
test_param_name(void **state)
{
	char buf[32];

	assert_string_equal(http_param_name("/a/{id}/b/{item}", 0, buf,
	                        sizeof(buf)),
	    "id");
	assert_string_equal(http_param_name("/a/{id}/b/{item}", 1, buf,
	                        sizeof(buf)),
	    "item");
	assert_string_equal(http_param_name("/a/b", 0, buf, sizeof(buf)),
	    "path");
}

static void
test_allow_list(void **state)
{
	char allow[64] = "";

	http_allow_add(allow, sizeof(allow), "GET");
	http_allow_add(allow, sizeof(allow), "PUT");
	http_allow_add(allow, sizeof(allow), "GET");
	assert_string_equal(allow, "GET, HEAD, PUT");
	allow[0] = '\0';
	http_allow_add(allow, sizeof(allow), "POST");
	http_allow_add(allow, sizeof(allow), "PUT");
	http_allow_add(allow, sizeof(allow), "POST");
	assert_string_equal(allow, "POST, PUT");
}

static void
test_params_invalid(void **state)
{
	static const struct http_route route = {"GET", "/p/{code}/x/{item}",
	    NULL, 0};
	struct http_req req = {.route = &route};
	char field[64];
	char p0[] = "ok", p1[] = "\xff\xfe";

	req.params[0] = p0;
	assert_null(http_params_invalid(&req, field, sizeof(field)));
	req.params[1] = p1;
	assert_string_equal(http_params_invalid(&req, field, sizeof(field)),
	    "item");
	req.params[1] = NULL;
	static const struct {
		const char *query, *field;
	} q[] = {
	    {"a=1&lock_kind=%E4%B8%AD", NULL},
	    {"a=1&lock_kind=%ff", "lock_kind"},
	    {"cursor=%c0%af", "cursor"},
	    {"id=ab%00cd", "id"},
	    {"%ff=1", "query"},
	    {"a%00b=1", "query"},
	    {"a=%e4%b8", "a"},
	};
	for (size_t i = 0; i < sizeof(q) / sizeof(*q); i++) {
		req.query = (char *)(uintptr_t)q[i].query;
		const char *got =
		    http_params_invalid(&req, field, sizeof(field));
		if (q[i].field == NULL)
			assert_null(got);
		else
			assert_string_equal(got, q[i].field);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_match),
	    cmocka_unit_test(test_request_id_ok),
	    cmocka_unit_test(test_text_valid),
	    cmocka_unit_test(test_route_params_not_text),
	    cmocka_unit_test(test_param_name),
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_params_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
