/* Unit tests for log: level names and masking of identifiers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "log.h"

static void
test_levels(void **state)
{
	enum log_level l;

	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("verbose", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
}

static void
test_mask(void **state)
{
	char out[64];

	log_mask_id("13800138000", out, sizeof(out));
	assert_string_equal(out, "138******00");
	log_mask_id("11010519491231002X", out, sizeof(out));
	assert_string_equal(out, "110*************2X");
	/* Too short to show anything. */
	log_mask_id("12345", out, sizeof(out));
	assert_string_equal(out, "*****");
	/* Truncated to the buffer, never overflowing it. */
	log_mask_id("11010519491231002X", out, 8);
	assert_int_equal(strlen(out), 7);
	assert_null(strstr(out, "0519"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
