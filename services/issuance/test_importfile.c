/* Unit tests for importfile.c: the UTF-8 check, CSV records (quotes,
 * doubled quotes, newlines inside quotes, CRLF, blank lines, an unterminated
 * quote), JSON Lines records, dates, platform sets and COPY fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "importfile.c"

static void
test_utf8(void **state)
{
	size_t bad = 0;
	const unsigned char ok[] = "holder\n张三,主锁\n\xF0\x9F\x94\x91";
	const unsigned char gbk[] = "a\nb\n\xD5\xC5\xC8\xFD";
	const unsigned char overlong[] = "ab\xC0\xAF";
	const unsigned char surrogate[] = "\xED\xA0\x80";
	const unsigned char truncated[] = "ok\xE5\xBC";

	assert_int_equal(importfile_utf8_check(ok, sizeof(ok) - 1, &bad), 0);
	assert_int_equal(importfile_utf8_check(gbk, sizeof(gbk) - 1, &bad), -1);
	assert_int_equal(bad, 4);
	assert_int_equal(importfile_line_of(gbk, bad), 3);
	assert_int_equal(importfile_utf8_check(overlong, sizeof(overlong) - 1,
	                     &bad),
	    -1);
	assert_int_equal(bad, 2);
	assert_int_equal(importfile_utf8_check(surrogate, sizeof(surrogate) - 1,
	                     &bad),
	    -1);
	assert_int_equal(importfile_utf8_check(truncated, sizeof(truncated) - 1,
	                     &bad),
	    -1);
	assert_int_equal(bad, 2);
}

static void
test_csv(void **state)
{
	const char *text =
	    "a,b,c\r\n"
	    "\r\n"
	    "1,\"x,\"\"y\"\"\",\"-----BEGIN\nAB\n-----END\n\"\r\n"
	    "2,,last";
	struct importfile_reader rd = {text, text + strlen(text), 1};
	struct importfile_record r = {0};

	assert_int_equal(importfile_csv_next(&rd, &r), 1);
	assert_int_equal(r.line, 1);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.fields[2], "c");
	assert_int_equal(importfile_csv_next(&rd, &r), 1);
	assert_int_equal(r.line, 3);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.fields[1], "x,\"y\"");
	assert_string_equal(r.fields[2], "-----BEGIN\nAB\n-----END\n");
	assert_int_equal(importfile_csv_next(&rd, &r), 1);
	assert_int_equal(r.line, 7);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.fields[1], "");
	assert_string_equal(r.fields[2], "last");
	assert_int_equal(importfile_csv_next(&rd, &r), 0);

	const char *open = "a\n\"never closed\n";
	struct importfile_reader rd2 = {open, open + strlen(open), 1};
	assert_int_equal(importfile_csv_next(&rd2, &r), 1);
	assert_int_equal(importfile_csv_next(&rd2, &r), -1);
	importfile_record_clear(&r);
	free(r.fields);
}

static void
test_jsonl(void **state)
{
	const char *text = "{\"holder\":\"张三\"}\n\n  \n[1]\n{bad\n{\"a\":1}";
	struct importfile_reader rd = {text, text + strlen(text), 1};
	struct importfile_record r = {0};

	assert_int_equal(importfile_jsonl_next(&rd, &r), 1);
	assert_int_equal(r.line, 1);
	assert_string_equal(json_string_value(json_object_get(r.obj, "holder")),
	    "张三");
	assert_int_equal(importfile_jsonl_next(&rd, &r), 1);
	assert_int_equal(r.line, 4);
	assert_null(r.obj); /* an array is no object */
	assert_int_equal(importfile_jsonl_next(&rd, &r), 1);
	assert_int_equal(r.line, 5);
	assert_null(r.obj);
	assert_int_equal(importfile_jsonl_next(&rd, &r), 1);
	assert_int_equal(r.line, 6);
	assert_non_null(r.obj);
	assert_int_equal(importfile_jsonl_next(&rd, &r), 0);
	importfile_record_clear(&r);
}

static void
test_times(void **state)
{
	time_t t;
	char buf[32];

	assert_int_equal(importfile_time("2026-01-31", &t, 1), 0);
	assert_int_equal(t, 1769817600);
	importfile_pg_time(t, buf);
	assert_string_equal(buf, "2026-01-31 00:00:00+00");
	assert_int_equal(importfile_time("2026-01-31T08:30:00Z", &t, 0), 0);
	assert_int_equal(t, 1769817600 + 8 * 3600 + 30 * 60);
	assert_int_equal(importfile_time("2026-01-31T08:30:00Z", &t, 1), -1);
	assert_int_equal(importfile_time("2019-02-29", &t, 1), -1);
	assert_int_equal(importfile_time("2020-02-29", &t, 1), 0);
	assert_int_equal(importfile_time("2026-13-01", &t, 1), -1);
	assert_int_equal(importfile_time("2026/01/31", &t, 1), -1);
	assert_int_equal(importfile_time("", &t, 1), -1);
}

static void
test_platforms(void **state)
{
	char *s;

	s = importfile_platforms("SY_GGZY, LN_JSGC|LN_JSGC;DL_GGZY");
	assert_string_equal(s, "{DL_GGZY,LN_JSGC,SY_GGZY}");
	free(s);
	s = importfile_platforms("");
	assert_string_equal(s, "{}");
	free(s);
	assert_null(importfile_platforms("LN_JSGC,ln_ztb"));
	assert_null(importfile_platforms("LN_JSGC,{X}"));
}

static void
test_copy_fields(void **state)
{
	struct importfile_buf b = {0};

	importfile_copy_field(&b, "a\tb\\c\r\nd", 0);
	importfile_copy_field(&b, NULL, 0);
	importfile_copy_field(&b, "张三", 1);
	assert_int_equal(b.len, strlen("a\\tb\\\\c\\r\\nd\t\\N\t张三\n"));
	assert_memory_equal(b.data, "a\\tb\\\\c\\r\\nd\t\\N\t张三\n", b.len);
	free(b.data);
}

/* The layout of import_uuid() (060): the same text for the same inputs. */
static void
test_uuid7(void **state)
{
	const unsigned char rnd[4] = {0x12, 0x34, 0xab, 0xcd};
	char out[37];

	importfile_uuid7(out, 1765000000000, 11, rnd);
	assert_string_equal(out, "019af232-b200-7000-8000-000b1234abcd");
	importfile_uuid7(out, 1765000000000, 4398046511103, rnd);
	assert_string_equal(out, "019af232-b200-7fff-bfff-ffff1234abcd");
	importfile_uuid7(out, 1765000000000, 3000000000000, rnd);
	assert_string_equal(out, "019af232-b200-7ae9-bdef-30001234abcd");
	assert_int_equal(uuid_valid(out), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_csv),
	    cmocka_unit_test(test_jsonl),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_platforms),
	    cmocka_unit_test(test_copy_fields),
	    cmocka_unit_test(test_uuid7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
