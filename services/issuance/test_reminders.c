/* Unit tests for reminders.c: the stage lists of the configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "reminders.c"

static void
test_days_literal(void **state)
{
	static const struct {
		const char *spec;
		size_t min;
		const char *want; /* NULL: refused */
	} cases[] = {
	    {"90,30,7,0,-30", 1, "{90,30,7,0,-30}"},
	    {" 3, 10 ", 0, "{3,10}"},
	    {"", 0, "{}"},
	    {"", 1, NULL},
	    {"90,,30", 1, NULL},
	    {"90,", 1, NULL},
	    {"90,90", 1, NULL},
	    {"x", 1, NULL},
	    {"3651", 1, NULL},
	    {"-3650", 1, "{-3650}"},
	    {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", 1,
	        "{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}"},
	    {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", 1, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = cert_days_literal(cases[i].spec, cases[i].min);

		if (cases[i].want == NULL)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].want);
		free(got);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_days_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
