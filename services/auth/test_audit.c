/* Unit tests for the audit API's pure parts (audit.c): the RFC 3339 check
 * of the from/to filters and the CSV quoting of the export. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "audit.c"

static void
test_rfc3339(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
	    {"2024-05-01T08:00:00Z", 1},
	    {"2024-05-01T08:00:00.123456Z", 1},
	    {"2024-05-01T08:00:00.123456789Z", 1},
	    {"2024-05-01T08:00:00+08:00", 1},
	    {"2024-05-01t08:00:00z", 1},
	    {"2024-12-31T23:59:60-05:30", 1},
	    {"2024-05-01 08:00:00Z", 0},
	    {"2024-05-01T08:00:00", 0},
	    {"2024-05-01T08:00Z", 0},
	    {"2024-13-01T08:00:00Z", 0},
	    {"2024-05-32T08:00:00Z", 0},
	    {"2024-05-01T24:00:00Z", 0},
	    {"2024-05-01T08:00:00.Z", 0},
	    {"2024-05-01T08:00:00.1234567890Z", 0},
	    {"2024-05-01T08:00:00+0800", 0},
	    {"2024-05-01T08:00:00+08:00x", 0},
	    {"2024-05-01T08:00:00Zx", 0},
	    {"yesterday", 0},
	    {"", 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (rfc3339_ok(cases[i].s) != cases[i].ok)
			fail_msg("\"%s\" should be %s", cases[i].s,
			    cases[i].ok ? "accepted" : "refused");
}

static void
test_csv_field(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"", ""},
	    {"a,b", "\"a,b\""},
	    {"say \"hi\"", "\"say \"\"hi\"\"\""},
	    {"two\nlines", "\"two\nlines\""},
	    {"cr\r", "\"cr\r\""},
	    {"{\"a\": 1, \"b\": \"x\"}",
	        "\"{\"\"a\"\": 1, \"\"b\"\": \"\"x\"\"}\""},
	    {"示例,公司", "\"示例,公司\""},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct evbuffer *b = evbuffer_new();
		char out[128];
		size_t n;

		csv_field(b, cases[i].in);
		n = evbuffer_remove(b, out, sizeof(out) - 1);
		out[n] = '\0';
		assert_string_equal(out, cases[i].out);
		evbuffer_free(b);
	}
	struct evbuffer *b = evbuffer_new();
	csv_field(b, NULL); /* SQL NULL: an empty field */
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339),
	    cmocka_unit_test(test_csv_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
