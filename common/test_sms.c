/* Unit tests for the local SMS provider: one line per message in
 * <dir>/<phone>.log, only for well-formed phones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sms.h"

static void
test_local_provider(void **state)
{
	char dir[] = "/tmp/caplat-sms-XXXXXX", path[128], buf[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(buf, sizeof(buf), "local:%s", dir);
	assert_int_equal(sms_provider_init(buf), 0);
	assert_int_equal(sms_provider_send("13800138000",
	                     "purpose=bind code=123456"),
	    0);
	assert_int_equal(sms_provider_send("13800138000", "审核通过"), 0);
	snprintf(path, sizeof(path), "%s/13800138000.log", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "purpose=bind code=123456\n");
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "审核通过\n");
	fclose(f);
	/* A phone that could name another file is refused. */
	assert_int_equal(sms_provider_send("../../etc/x", "hi"), -1);
	assert_int_equal(sms_provider_send("1380013800", "hi"), -1);
	unlink(path);
	rmdir(dir);
}

static void
test_bad_spec(void **state)
{
	assert_int_equal(sms_provider_init("aliyun:key"), -1);
	assert_int_equal(sms_provider_init("local:"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_local_provider),
	    cmocka_unit_test(test_bad_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
