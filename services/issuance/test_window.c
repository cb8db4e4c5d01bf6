/* Unit tests for window.c: days left, calendar months, the validity of a
 * renewal (in time and expired), the reasons. The window's own edges and a
 * paid renewal across its end are common/test_renewal.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "window.c"

#define D DAY_SECONDS
/* 2025-06-30T00:00:00Z */
#define T ((time_t)1751241600)

static const struct cert_window std = {{90, 365}, 12, 300};
static const struct cert_window narrow = {{30, 0}, 24, 0};

/* "2024-02-29T12:00:00Z" → time_t */
static time_t
at(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return timegm(&tm);
}

static void
test_days_left(void **state)
{
	static const struct {
		long long offset; /* now = T + offset */
		long want;
	} cases[] = {
	    {-90 * D, 90},
	    {-D - 1, 1},
	    {-D, 1},
	    {-D + 1, 0},
	    {-1, 0},
	    {0, 0},
	    {1, -1},
	    {D, -1},
	    {D + 1, -2},
	    {-3650 * D, 3650},
	    {400 * D, -400},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		long got = cert_days_left(T, T + (time_t)cases[i].offset);
		if (got != cases[i].want)
			fail_msg("days-%zu offset %lld: got %ld, want %ld",
			    i + 1, cases[i].offset, got, cases[i].want);
	}
}

static void
test_add_months(void **state)
{
	static const struct {
		const char *from;
		long months;
		const char *want;
	} cases[] = {
	    {"2024-06-30T08:09:10Z", 12, "2025-06-30T08:09:10Z"},
	    {"2024-02-29T12:00:00Z", 12, "2025-02-28T12:00:00Z"},
	    {"2024-02-29T12:00:00Z", 24, "2026-02-28T12:00:00Z"},
	    {"2000-02-29T00:00:00Z", 48, "2004-02-29T00:00:00Z"},
	    {"2024-01-31T00:00:00Z", 1, "2024-02-29T00:00:00Z"},
	    {"2023-01-31T00:00:00Z", 1, "2023-02-28T00:00:00Z"},
	    {"2024-12-15T23:59:59Z", 1, "2025-01-15T23:59:59Z"},
	    {"2025-03-31T00:00:00Z", -1, "2025-02-28T00:00:00Z"},
	    {"2025-01-15T00:00:00Z", -13, "2023-12-15T00:00:00Z"},
	    {"2025-05-05T05:05:05Z", 0, "2025-05-05T05:05:05Z"},
	    {"2049-12-31T00:00:00Z", 12, "2050-12-31T00:00:00Z"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		time_t got =
		    cert_add_months(at(cases[i].from), cases[i].months);
		if (got != at(cases[i].want))
			fail_msg("months-%zu %s %+ld: got %lld, want %s", i + 1,
			    cases[i].from, cases[i].months, (long long)got,
			    cases[i].want);
	}
}

static void
test_renewal_validity(void **state)
{
	static const struct {
		const char *what;
		const struct cert_window *w;
		const char *old_not_after, *now, *want_not_after;
	} cases[] = {
	    {"in time: runs on from the old notAfter", &std,
	        "2025-06-30T00:00:00Z", "2025-05-01T10:00:00Z",
	        "2026-06-30T00:00:00Z"},
	    {"the last second before expiry", &std, "2025-06-30T00:00:00Z",
	        "2025-06-29T23:59:59Z", "2026-06-30T00:00:00Z"},
	    {"at notAfter it has expired: from now", &std,
	        "2025-06-30T00:00:00Z", "2025-06-30T00:00:00Z",
	        "2026-06-30T00:00:00Z"},
	    {"expired: from the day of renewal", &std, "2025-06-30T00:00:00Z",
	        "2025-09-10T08:30:00Z", "2026-09-10T08:30:00Z"},
	    {"expired almost a year", &std, "2024-07-01T00:00:00Z",
	        "2025-06-30T16:00:00Z", "2026-06-30T16:00:00Z"},
	    {"leap day notAfter", &std, "2024-02-29T12:00:00Z",
	        "2024-01-10T00:00:00Z", "2025-02-28T12:00:00Z"},
	    {"two-year term", &narrow, "2025-06-30T00:00:00Z",
	        "2025-06-15T00:00:00Z", "2027-06-30T00:00:00Z"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		time_t nb, na, now = at(cases[i].now);

		cert_renewal_validity(cases[i].w, at(cases[i].old_not_after),
		    now, &nb, &na);
		if (na != at(cases[i].want_not_after) ||
		    nb != now - cases[i].w->backdate_seconds)
			fail_msg("validity-%zu %s: got %lld..%lld", i + 1,
			    cases[i].what, (long long)nb, (long long)na);
	}
}

static void
test_reasons_and_status(void **state)
{
	static const struct {
		long long now;
		int revoked, in_order;
		const char *want, *status;
	} cases[] = {
	    {-10 * D, 0, 0, NULL, "valid"},
	    {-100 * D, 0, 0, "NOT_IN_RENEWAL_WINDOW", "valid"},
	    {400 * D, 0, 0, "EXPIRED_TOO_LONG", "expired"},
	    {10 * D, 0, 0, NULL, "expired"},
	    {-10 * D, 0, 1, "CERT_IN_OPEN_ORDER", "valid"},
	    {-100 * D, 0, 1, "CERT_IN_OPEN_ORDER", "valid"},
	    {-10 * D, 1, 1, "CERT_REVOKED", "revoked"},
	    {400 * D, 1, 0, "CERT_REVOKED", "revoked"},
	    {0, 0, 0, NULL, "expired"},
	    {-1, 0, 0, NULL, "valid"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		time_t now = T + (time_t)cases[i].now;
		const char *got = cert_not_renewable_reason(&std, T, now,
		    cases[i].revoked, cases[i].in_order);
		if ((got == NULL) != (cases[i].want == NULL) ||
		    (got && strcmp(got, cases[i].want) != 0))
			fail_msg("reason-%zu: got %s, want %s", i + 1,
			    got ? got : "null",
			    cases[i].want ? cases[i].want : "null");
		assert_string_equal(cert_status_name(T, now, cases[i].revoked),
		    cases[i].status);
		if (got != NULL)
			assert_non_null(cert_reason_message(got));
	}
}

static void
test_reason_messages(void **state)
{
	assert_string_equal(cert_reason_message("NOT_IN_RENEWAL_WINDOW"),
	    "未到年检时间");
	assert_null(cert_reason_message(NULL));
	assert_null(cert_reason_message("NOPE"));
}

static void
test_renewal_states(void **state)
{
	assert_string_equal(cert_renewal_state(NULL, 0, 0, 0), "renewable");
	assert_string_equal(cert_renewal_state(NULL, 0, 0, 1), "renewable");
	assert_string_equal(cert_renewal_state("CERT_IN_OPEN_ORDER", 1, 0, 0),
	    "in_order");
	assert_string_equal(cert_renewal_state("CERT_IN_OPEN_ORDER", 1, 1, 0),
	    "paid");
	assert_string_equal(cert_renewal_state("NOT_IN_RENEWAL_WINDOW", 0, 0,
	                        1),
	    "renewed");
	assert_string_equal(cert_renewal_state("NOT_IN_RENEWAL_WINDOW", 0, 0,
	                        0),
	    "not_due");
	assert_string_equal(cert_renewal_state("CERT_REVOKED", 0, 0, 1),
	    "not_due");
	assert_string_equal(cert_renewal_state("EXPIRED_TOO_LONG", 0, 0, 0),
	    "not_due");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_days_left),
	    cmocka_unit_test(test_add_months),
	    cmocka_unit_test(test_renewal_validity),
	    cmocka_unit_test(test_reasons_and_status),
	    cmocka_unit_test(test_reason_messages),
	    cmocka_unit_test(test_renewal_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
