/* Unit tests for hist: the log buckets, the Prometheus text, the steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "hist.h"

static void
test_buckets_and_text(void **state)
{
	struct hist h = {0};
	char buf[8192];

	hist_observe(&h, 5000);        /* 5 µs: le 1e-05 */
	hist_observe(&h, 10000);       /* 10 µs: le 1e-05 (bounds inclusive) */
	hist_observe(&h, 15000);       /* le 2e-05 */
	hist_observe(&h, 3000000);     /* 3 ms: le 0.00512 */
	hist_observe(&h, -7);          /* counts as 0 */
	hist_observe(&h, 60000000000); /* 60 s: +Inf only */
	assert_int_equal(h.count, 6);
	size_t n = hist_text(&h, "x_seconds", "svc=\"a\",step=\"b\"", buf,
	    sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"1e-05\"} 3\n"));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"2e-05\"} 4\n"));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"0.00256\"} 4\n"));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"0.00512\"} 5\n"));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"5.24288\"} 5\n"));
	assert_non_null(strstr(buf,
	    "x_seconds_bucket{svc=\"a\",step=\"b\",le=\"+Inf\"} 6\n"));
	assert_non_null(
	    strstr(buf, "x_seconds_count{svc=\"a\",step=\"b\"} 6\n"));
	assert_non_null(
	    strstr(buf, "x_seconds_sum{svc=\"a\",step=\"b\"} 60.003030000\n"));
	/* a short buffer is cut, never overrun, and stays a string */
	n = hist_text(&h, "x_seconds", "a=\"b\"", buf, 40);
	assert_true(n < 40);
	assert_int_equal(strlen(buf), n);
}

static void
test_steps(void **state)
{
	char buf[65536];
	char name[] = "svc1";

	hist_steps_metrics(name, buf, sizeof(buf));
	assert_null(strstr(buf, "step=\"ca_sign\""));
	hist_step(STEP_CA_SIGN, hist_now() - 1000000);
	hist_steps_metrics(name, buf, sizeof(buf));
	assert_non_null(strstr(buf,
	    "# TYPE caplat_step_duration_seconds "
	    "histogram\n"));
	assert_non_null(strstr(buf,
	    "caplat_step_duration_seconds_count{"
	    "svc=\"svc1\",step=\"ca_sign\"} 1\n"));
	assert_null(strstr(buf, "step=\"db_batch\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets_and_text),
	    cmocka_unit_test(test_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
