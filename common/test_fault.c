/* Unit tests for fault: parsing CAPLAT_FAULT against a module's points,
 * arming from the environment, and the crash itself (in forked children):
 * exit status 137, only the armed point, only once with CAPLAT_FAULT_ONCE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const names[] = {
    "relay_crash_after_publish",
    "consumer_crash_before_commit",
    NULL,
};

static void
test_parse(void **state)
{
	static const struct {
		const char *value;
		int want;
	} cases[] = {
	    {"relay_crash_after_publish", 1},
	    {"consumer_crash_before_commit", 2},
	    {NULL, 0},
	    {"", 0},
	    {"issuance_crash_before_vendor", 0}, /* another module's */
	    {"relay_crash_after_publish ", 0},
	    {"RELAY_CRASH_AFTER_PUBLISH", 0},
	    {"relay_crash", 0},
	};
	static const char *const none[] = {NULL};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		assert_int_equal(fault_parse(cases[i].value, names),
		    cases[i].want);
	assert_int_equal(fault_parse("relay_crash_after_publish", none), 0);
}

static void
test_arm(void **state)
{
	struct fault f;

	unsetenv("CAPLAT_FAULT");
	unsetenv("CAPLAT_FAULT_ONCE");
	fault_arm(&f, names);
	assert_int_equal(f.point, 0);
	assert_null(f.once);

	setenv("CAPLAT_FAULT", "consumer_crash_before_commit", 1);
	fault_arm(&f, names);
	assert_int_equal(f.point, 2);
	assert_string_equal(f.name, "consumer_crash_before_commit");
	assert_null(f.once);
	fault_clear(&f);
	assert_int_equal(f.point, 0);

	setenv("CAPLAT_FAULT_ONCE", "", 1); /* empty: no once file */
	fault_arm(&f, names);
	assert_null(f.once);
	fault_clear(&f);

	setenv("CAPLAT_FAULT_ONCE", "/tmp/x.once", 1);
	fault_arm(&f, names);
	assert_string_equal(f.once, "/tmp/x.once");
	fault_clear(&f);

	setenv("CAPLAT_FAULT", "issuance_crash_after_vendor", 1);
	fault_arm(&f, names);
	assert_int_equal(f.point, 0);
	assert_null(f.once);
	unsetenv("CAPLAT_FAULT");
	unsetenv("CAPLAT_FAULT_ONCE");
}

/* Runs fault_point(f, point) in a child; returns its exit status (0 when
 * fault_point returned). */
static int
child_status(const struct fault *f, int point)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		fault_point(f, point);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_point(void **state)
{
	struct fault f = {0};

	/* Disarmed: nothing happens, in this process too. */
	fault_point(&f, 0);
	fault_point(&f, 1);
	assert_int_equal(child_status(&f, 1), 0);

	f.point = 1;
	f.name = names[0];
	assert_int_equal(child_status(&f, 2), 0); /* another point */
	assert_int_equal(child_status(&f, 1), 137);
	assert_int_equal(child_status(&f, 1), 137); /* every time */
}

static void
test_point_once(void **state)
{
	char dir[] = "/tmp/caplat-test-fault-XXXXXX";
	char path[64];
	struct fault f = {1, "relay_crash_after_publish", NULL};
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/once", dir);
	f.once = path;
	assert_int_equal(child_status(&f, 1), 137); /* creates the file */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(child_status(&f, 1), 0); /* file there: no crash */
	assert_int_equal(unlink(path), 0);

	/* A file that cannot be created: no crash either. */
	snprintf(path, sizeof(path), "%s/missing/once", dir);
	assert_int_equal(child_status(&f, 1), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_arm),
	    cmocka_unit_test(test_point),
	    cmocka_unit_test(test_point_once),
	};

	log_min_level = (enum log_level)(LOG_ERROR + 1); /* expected warnings */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
