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

/* mask_middle: head and tail kept, the rest starred; short values all
 * stars; truncated to the buffer. */
static void
test_mask_middle(void **state)
{
	char out[16];

	mask_middle("13812345678", out, sizeof(out), 3, 4);
	assert_string_equal(out, "138****5678");
	mask_middle("13812345678", out, sizeof(out), 3, 2);
	assert_string_equal(out, "138******78");
	mask_middle("12345678", out, sizeof(out), 3, 4);
	assert_string_equal(out, "********");
	mask_middle("123456789", out, sizeof(out), 3, 4);
	assert_string_equal(out, "123**6789");
	mask_middle("13812345678", out, 7, 3, 1);
	assert_string_equal(out, "138**3");
	mask_middle("", out, sizeof(out), 3, 4);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_mask_middle),
	    cmocka_unit_test(test_rfc3339),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
