/* Unit tests for cfg: defaults, parsing, bounds and required variables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

static const char *str_val;
static long int_val;
static int bool_val;

static const struct cfg_var table[] = {
    {"T_STR", CFG_STR, "dflt", 0, 0, &str_val, "a string"},
    {"T_INT", CFG_INT, "8080", 1, 65535, &int_val, "a port"},
    {"T_BOOL", CFG_BOOL, "false", 0, 0, &bool_val, "a flag"},
};

static void
test_defaults(void **state)
{
	char err[128];
	unsetenv("T_STR");
	unsetenv("T_INT");
	unsetenv("T_BOOL");
	assert_int_equal(cfg_load(table, 3, err, sizeof(err)), 0);
	assert_string_equal(str_val, "dflt");
	assert_int_equal(int_val, 8080);
	assert_int_equal(bool_val, 0);
}

static void
test_values(void **state)
{
	char err[128];
	setenv("T_STR", "x", 1);
	setenv("T_INT", "1", 1);
	setenv("T_BOOL", "yes", 1);
	assert_int_equal(cfg_load(table, 3, err, sizeof(err)), 0);
	assert_string_equal(str_val, "x");
	assert_int_equal(int_val, 1);
	assert_int_equal(bool_val, 1);
}

static void
test_bad_values(void **state)
{
	char err[128];
	static const char *bad_ints[] = {"0", "65536", "12x", "abc", "-1"};
	unsetenv("T_BOOL");
	for (size_t i = 0; i < sizeof(bad_ints) / sizeof(*bad_ints); i++) {
		setenv("T_INT", bad_ints[i], 1);
		assert_int_equal(cfg_load(table, 3, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "T_INT"));
	}
	setenv("T_INT", "80", 1);
	setenv("T_BOOL", "maybe", 1);
	assert_int_equal(cfg_load(table, 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "T_BOOL"));
}

static void
test_required(void **state)
{
	char err[128];
	const char *v;
	struct cfg_var req[] = {
	    {"T_REQUIRED", CFG_STR, NULL, 0, 0, &v, "needed"}};
	unsetenv("T_REQUIRED");
	assert_int_equal(cfg_load(req, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "T_REQUIRED: required"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_required),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
