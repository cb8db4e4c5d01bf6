/* Unit tests for util: UUIDs, RFC 3339 times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util.h"

static void
test_uuid(void **state)
{
	char a[37], b[37];

	uuid_v4(a);
	uuid_v4(b);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_true(uuid_valid(a));
	assert_true(uuid_valid("00000000-0000-4000-8000-00000000000A"));
	assert_false(uuid_valid("00000000-0000-4000-8000-00000000000"));
	assert_false(uuid_valid("00000000-0000-4000-8000-0000000000000"));
	assert_false(uuid_valid("00000000x0000-4000-8000-000000000000"));
	assert_false(uuid_valid("g0000000-0000-4000-8000-000000000000"));
	assert_false(uuid_valid(""));
}

static void
test_rfc3339(void **state)
{
	char out[48];

	time_rfc3339(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	time_rfc3339(1795000000123LL, out);
	assert_string_equal(out, "2026-11-18T11:06:40.123Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_rfc3339),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
