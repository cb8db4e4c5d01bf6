/* Unit tests for renewal: the window of DOMAIN.md §6 (renewable from 90
 * days before notAfter until 365 days after it, both ends included; not yet
 * before, too late after), configurable widths down to {0, 0}, and a paid
 * renewal across the window's end. The vectors of issuance's and orders'
 * former copies of the rule are all here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "renewal.h"
#include "util.h"

#define D ((int64_t)RENEWAL_DAY_SECONDS)
/* 2025-06-30T00:00:00Z and 2027-01-15T08:00:00Z: two notAfters. */
#define T ((int64_t)1751241600)
#define NA ((int64_t)1800000000)

/* DOMAIN.md §6's defaults. */
static const struct renewal_window std = {90, 365};
static const struct renewal_window narrow = {30, 0};
static const struct renewal_window none = {0, 0};

static void
test_window(void **state)
{
	static const struct {
		const char *what;
		const struct renewal_window *w;
		int64_t not_after;
		int64_t offset; /* at = not_after + offset */
		enum renewal_window_state want;
	} cases[] = {
	    /* DOMAIN.md §6 with its defaults. */
	    {"a year before", &std, T, -365 * D, RENEWAL_WINDOW_NOT_YET},
	    {"91 days before", &std, T, -91 * D, RENEWAL_WINDOW_NOT_YET},
	    {"a second before it opens", &std, T, -90 * D - 1,
	        RENEWAL_WINDOW_NOT_YET},
	    {"opens 90 days before", &std, T, -90 * D, RENEWAL_WINDOW_OPEN},
	    {"30 days before", &std, T, -30 * D, RENEWAL_WINDOW_OPEN},
	    {"at notAfter", &std, T, 0, RENEWAL_WINDOW_OPEN},
	    {"expired yesterday", &std, T, D, RENEWAL_WINDOW_OPEN},
	    {"expired 365 days ago", &std, T, 365 * D, RENEWAL_WINDOW_OPEN},
	    {"a second too late", &std, T, 365 * D + 1,
	        RENEWAL_WINDOW_TOO_LATE},
	    {"two years late", &std, T, 730 * D, RENEWAL_WINDOW_TOO_LATE},
	    /* The same edges at another notAfter (orders' vectors). */
	    {"orders: a second early", &std, NA, -90 * D - 1,
	        RENEWAL_WINDOW_NOT_YET},
	    {"orders: first second", &std, NA, -90 * D, RENEWAL_WINDOW_OPEN},
	    {"orders: 30 days before", &std, NA, -30 * D, RENEWAL_WINDOW_OPEN},
	    {"orders: at notAfter", &std, NA, 0, RENEWAL_WINDOW_OPEN},
	    {"orders: last second", &std, NA, 365 * D, RENEWAL_WINDOW_OPEN},
	    {"orders: a second late", &std, NA, 365 * D + 1,
	        RENEWAL_WINDOW_TOO_LATE},
	    /* Configured widths. */
	    {"narrow: 31 days before", &narrow, T, -31 * D,
	        RENEWAL_WINDOW_NOT_YET},
	    {"narrow: 30 days before", &narrow, T, -30 * D,
	        RENEWAL_WINDOW_OPEN},
	    {"narrow: at notAfter", &narrow, T, 0, RENEWAL_WINDOW_OPEN},
	    {"narrow: a second after", &narrow, T, 1, RENEWAL_WINDOW_TOO_LATE},
	    {"none: at notAfter", &none, NA, 0, RENEWAL_WINDOW_OPEN},
	    {"none: a second before", &none, NA, -1, RENEWAL_WINDOW_NOT_YET},
	    {"none: a second after", &none, NA, 1, RENEWAL_WINDOW_TOO_LATE},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		enum renewal_window_state got = renewal_window_at(cases[i].w,
		    cases[i].not_after, cases[i].not_after + cases[i].offset);
		if (got != cases[i].want)
			fail_msg("window-%zu %s: got %d, want %d", i + 1,
			    cases[i].what, got, cases[i].want);
	}
}

static void
test_allowed(void **state)
{
	static const struct {
		const char *what;
		int64_t now, paid_at; /* offsets from T; paid_at 0: none */
		int paid;
		enum renewal_window_state want;
	} cases[] = {
	    {"in the window", -10 * D, 0, 0, RENEWAL_WINDOW_OPEN},
	    {"too early, nothing paid", -100 * D, 0, 0, RENEWAL_WINDOW_NOT_YET},
	    {"too early, paid too early", -100 * D, -120 * D, 1,
	        RENEWAL_WINDOW_NOT_YET},
	    {"too late, paid in the window", 366 * D, 360 * D, 1,
	        RENEWAL_WINDOW_OPEN},
	    {"too late, paid on the last second", 366 * D, 365 * D, 1,
	        RENEWAL_WINDOW_OPEN},
	    {"too late, paid too late", 400 * D, 390 * D, 1,
	        RENEWAL_WINDOW_TOO_LATE},
	    {"paid in the future does not count", 366 * D, 367 * D, 1,
	        RENEWAL_WINDOW_TOO_LATE},
	    {"in the window, paid too early", -10 * D, -120 * D, 1,
	        RENEWAL_WINDOW_OPEN},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t paid = cases[i].paid ? T + cases[i].paid_at : 0;
		enum renewal_window_state got =
		    renewal_window_allowed(&std, T, T + cases[i].now, paid);
		if (got != cases[i].want)
			fail_msg("allowed-%zu %s: got %d, want %d", i + 1,
			    cases[i].what, got, cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
