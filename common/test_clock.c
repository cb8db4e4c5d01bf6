/* Unit tests for clock.c: the real time without an offset file, the
 * offset a file holds (read at each call), and no offset from a missing or
 * malformed file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_offsets(void **state)
{
	char path[] = "/tmp/caplat-clock-XXXXXX";
	int fd = mkstemp(path);
	time_t t;

	assert_true(fd >= 0);
	close(fd);
	clock_init(NULL);
	t = clock_now();
	assert_true(t >= time(NULL) - 1 && t <= time(NULL));
	clock_init(path);
	write_file(path, "86400\n");
	t = clock_now();
	assert_true(t >= time(NULL) + 86400 - 1 && t <= time(NULL) + 86400);
	write_file(path, "-3600");
	t = clock_now();
	assert_true(t >= time(NULL) - 3600 - 1 && t <= time(NULL) - 3600);
	write_file(path, "soon");
	t = clock_now();
	assert_true(t >= time(NULL) - 1 && t <= time(NULL));
	unlink(path);
	t = clock_now();
	assert_true(t >= time(NULL) - 1 && t <= time(NULL));
	clock_init("");
	assert_true(clock_now() <= time(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
