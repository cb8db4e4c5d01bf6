/* Unit tests for workday: dates, weekends, exceptions (holidays and 调休
 * working weekends), and the one-working-day review target in China
 * Standard Time across days, weekends, holidays and the UTC day boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "workday.h"

static int32_t
day_of(const char *s)
{
	int32_t d;

	if (ent_workday_parse_date(s, &d) != 0)
		fail_msg("bad date %s", s);
	return d;
}

/* ms since the epoch of a CST wall time "YYYY-MM-DD HH:MM". */
static int64_t
cst(const char *date, int hour, int minute)
{
	return (int64_t)day_of(date) * 86400000LL + (hour - 8) * 3600000LL +
	    minute * 60000LL;
}

static void
test_parse_date(void **state)
{
	int32_t d = -1;

	assert_int_equal(ent_workday_parse_date("1970-01-01", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(ent_workday_parse_date("2026-11-26", &d), 0);
	assert_int_equal(d, 20783);
	assert_int_equal(ent_workday_parse_date("2024-02-29", &d), 0);
	assert_int_equal(ent_workday_parse_date("2025-02-29", &d), -1);
	assert_int_equal(ent_workday_parse_date("2025-13-01", &d), -1);
	assert_int_equal(ent_workday_parse_date("2025-04-31", &d), -1);
	assert_int_equal(ent_workday_parse_date("2025-4-30", &d), -1);
	assert_int_equal(ent_workday_parse_date("2025-04-3x", &d), -1);
	assert_int_equal(ent_workday_parse_date("", &d), -1);
}

static void
test_weekdays(void **state)
{
	/* 2026-11-23 is a Monday. */
	assert_true(ent_workday_is(NULL, 0, day_of("2026-11-23")));
	assert_true(ent_workday_is(NULL, 0, day_of("2026-11-27")));
	assert_false(ent_workday_is(NULL, 0, day_of("2026-11-28")));
	assert_false(ent_workday_is(NULL, 0, day_of("2026-11-29")));
	assert_true(ent_workday_is(NULL, 0, day_of("1970-01-01")));
	assert_true(ent_workday_is(NULL, 0, -3));  /* 1969-12-29, a Monday */
	assert_false(ent_workday_is(NULL, 0, -4)); /* 1969-12-28, a Sunday */

	struct ent_day_exception ex[] = {
	    {day_of("2026-10-01"), 0}, /* National Day, a Thursday */
	    {day_of("2026-10-10"), 1}, /* a working Saturday */
	};
	assert_false(ent_workday_is(ex, 2, day_of("2026-10-01")));
	assert_true(ent_workday_is(ex, 2, day_of("2026-10-10")));
	assert_true(ent_workday_is(ex, 2, day_of("2026-10-09")));
}

struct due_case {
	const char *date;
	int hour, minute;
	const char *want; /* RFC 3339 UTC */
};

static void
test_due(void **state)
{
	static const struct due_case plain[] = {
	    /* Monday 10:00 → Tuesday 10:00 CST = 02:00Z */
	    {"2026-11-23", 10, 0, "2026-11-24T02:00:00.000Z"},
	    /* Friday 16:30 → Monday 16:30 */
	    {"2026-11-27", 16, 30, "2026-11-30T08:30:00.000Z"},
	    /* Saturday → end of Monday (Tuesday 00:00 CST) */
	    {"2026-11-28", 11, 0, "2026-11-30T16:00:00.000Z"},
	    /* Sunday 23:59 → the same */
	    {"2026-11-29", 23, 59, "2026-11-30T16:00:00.000Z"},
	    /* Thursday 07:00 CST is Wednesday 23:00Z: the CST day counts */
	    {"2026-11-26", 7, 0, "2026-11-26T23:00:00.000Z"},
	};
	static const struct due_case holidays[] = {
	    /* Wednesday before the holiday (10-01 to 10-08 off) → Friday 10-09 */
	    {"2026-09-30", 9, 0, "2026-10-09T01:00:00.000Z"},
	    /* On the holiday itself → end of 10-09 */
	    {"2026-10-02", 9, 0, "2026-10-09T16:00:00.000Z"},
	    {"2026-10-08", 23, 0, "2026-10-09T16:00:00.000Z"},
	    /* Friday 10-09 → the working Saturday 10-10 */
	    {"2026-10-09", 10, 0, "2026-10-10T02:00:00.000Z"},
	    /* The working Saturday → Monday 10-12 */
	    {"2026-10-10", 14, 0, "2026-10-12T06:00:00.000Z"},
	};
	struct ent_day_exception ex[10];
	size_t n = 0;
	char got[48];

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		time_rfc3339(ent_workday_due_ms(NULL, 0,
		                 cst(plain[i].date, plain[i].hour,
		                     plain[i].minute)),
		    got);
		if (strcmp(got, plain[i].want) != 0)
			fail_msg("plain case %zu: got %s want %s", i, got,
			    plain[i].want);
	}
	for (; n < 8; n++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "2026-10-%02zu", n + 1);
		ex[n].day = day_of(buf);
		ex[n].workday = 0;
	}
	ex[n].day = day_of("2026-10-10");
	ex[n++].workday = 1;
	for (size_t i = 0; i < sizeof(holidays) / sizeof(holidays[0]); i++) {
		time_rfc3339(ent_workday_due_ms(ex, n,
		                 cst(holidays[i].date, holidays[i].hour,
		                     holidays[i].minute)),
		    got);
		if (strcmp(got, holidays[i].want) != 0)
			fail_msg("holiday case %zu: got %s want %s", i, got,
			    holidays[i].want);
	}
	/* Every day off: the search gives up after a year instead of looping. */
	struct ent_day_exception none[1] = {{0, 0}};
	(void)ent_workday_due_ms(none, 0, cst("2026-11-28", 9, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_date),
	    cmocka_unit_test(test_weekdays),
	    cmocka_unit_test(test_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
