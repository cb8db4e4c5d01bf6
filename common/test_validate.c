/* Unit tests for validate: every vector of DOMAIN.md §2, then the edges
 * (empty, whitespace, lengths, case, non-ASCII, dates, long strings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "validate.c" /* to reach validate_id_number_on() */

struct normalize_case {
	const char *in;
	const char *want; /* normalized output, NULL when invalid */
};

/* Runs one case of a validator that normalizes into out: a valid input
 * gives want, an invalid one -1 and out untouched. */
static void
check_normalize(const char *what, int (*validate)(const char *, char *),
    const struct normalize_case *c)
{
	char out[32] = "untouched";
	int rc = validate(c->in, out);

	if (c->want == NULL) {
		if (rc != -1)
			fail_msg("%s \"%s\" accepted", what, c->in);
		assert_string_equal(out, "untouched");
	} else {
		if (rc != 0)
			fail_msg("%s \"%s\" rejected", what, c->in);
		assert_string_equal(out, c->want);
	}
}

/* A string of n copies of c, for the long-input cases; caller frees. */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Appends the GB 32100 check character to a 17-character prefix, so that a
 * case can fail on something else than the check. */
static void
uscc_with_check(const char *prefix17, char out[19])
{
	int sum = 0;

	for (int i = 0; i < 17; i++) {
		const char *p = strchr(uscc_symbols, prefix17[i]);

		sum += (p ? (int)(p - uscc_symbols) : 0) * uscc_weights[i];
	}
	memcpy(out, prefix17, 17);
	out[17] = uscc_symbols[(31 - sum % 31) % 31];
	out[18] = '\0';
}

/* Same for GB 11643. */
static void
id_with_check(const char *prefix17, char out[19])
{
	static const int w[17] = {
	    7,
	    9,
	    10,
	    5,
	    8,
	    4,
	    2,
	    1,
	    6,
	    3,
	    7,
	    9,
	    10,
	    5,
	    8,
	    4,
	    2,
	};
	int sum = 0;

	for (int i = 0; i < 17; i++)
		sum += (prefix17[i] - '0') * w[i];
	memcpy(out, prefix17, 17);
	out[17] = "10X98765432"[sum % 11];
	out[18] = '\0';
}

static void
test_uscc_vectors(void **state)
{
	static const struct normalize_case cases[] = {
	    /* DOMAIN.md §2, valid */
	    {"91350100M000100Y43", "91350100M000100Y43"},
	    {"91440300708461136T", "91440300708461136T"},
	    {"91110108551385082Q", "91110108551385082Q"},
	    {"91110000802100433B", "91110000802100433B"},
	    {"91110105771583283D", "91110105771583283D"},
	    {"51610700305332460K", "51610700305332460K"},
	    {"11610923MB2900168E", "11610923MB2900168E"},
	    {"91341000MA2N0ABGXX", "91341000MA2N0ABGXX"},
	    /* DOMAIN.md §2, invalid */
	    {"91350100M000100Y44", NULL}, /* check */
	    {"91350200M000000510", NULL}, /* check */
	    {"91350128M00000019A", NULL}, /* check */
	    {"91350100M000100Y4", NULL},  /* 17 long */
	    {"91350100M000100YI3", NULL}, /* I is not a symbol */
	    /* lower case is upper-cased */
	    {"91341000ma2n0abgxx", "91341000MA2N0ABGXX"},
	    {"91350100m000100y43", "91350100M000100Y43"},
	    {"11610923Mb2900168e", "11610923MB2900168E"},
	    /* nothing is trimmed */
	    {"", NULL},
	    {" 91350100M000100Y43", NULL},
	    {"91350100M000100Y43 ", NULL},
	    {"91350100M000100Y43\n", NULL},
	    {"\t91350100M000100Y43", NULL},
	    {"91350100M000100Y 43", NULL},
	    {"9135 0100M000100Y43", NULL},
	    /* lengths and symbols */
	    {"91350100M000100Y430", NULL},
	    {"91350100M000100Y43X", NULL},
	    {"91350100M000100O43", NULL}, /* O */
	    {"91350100M000100Z43", NULL}, /* Z */
	    {"91350100M000100S43", NULL}, /* S */
	    {"91350100M000100V43", NULL}, /* V */
	    {"91350100M000100-43", NULL},
	    {"９1350100M000100Y43", NULL}, /* full-width digit, UTF-8 */
	    {"913501００M000100Y43", NULL},
	    {"91350100M000100Y4\xff", NULL},
	    /* sum 0, check 0 */
	    {"000000000000000000", "000000000000000000"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		check_normalize("uscc", validate_uscc, &cases[i]);
}

static void
test_uscc_region_must_be_digits(void **state)
{
	char code[19], out[19];

	/* A correct check character does not save a letter in the region. */
	uscc_with_check("91A50100M000100Y4", code);
	assert_int_equal(validate_uscc(code, out), -1);
	uscc_with_check("913501000000100Y4", code);
	assert_int_equal(validate_uscc(code, out), 0);
	assert_string_equal(out, code);
}

static void
test_uscc_long_input(void **state)
{
	char out[19];
	char *s = repeat('9', 100000);

	assert_int_equal(validate_uscc(s, out), -1);
	memcpy(s, "91350100M000100Y43", 18); /* a valid prefix, then more */
	assert_int_equal(validate_uscc(s, out), -1);
	free(s);
}

static void
test_id_number_vectors(void **state)
{
	static const struct normalize_case cases[] = {
	    /* DOMAIN.md §2, valid */
	    {"11010519491231002X", "11010519491231002X"},
	    {"440524188001010014", "440524188001010014"},
	    {"11010119900307803X", "11010119900307803X"},
	    {"110101199003074477", "110101199003074477"},
	    /* lower-case x is stored upper-case */
	    {"11010519491231002x", "11010519491231002X"},
	    {"11010119900307803x", "11010119900307803X"},
	    /* DOMAIN.md §2, invalid */
	    {"110105194912310029", NULL}, /* check should be X */
	    {"110101199003070000", NULL}, /* check should be 3 */
	    {"110101199002300014", NULL}, /* check right, 30 February */
	    /* shapes */
	    {"", NULL},
	    {"11010519491231002", NULL},
	    {"11010519491231002X0", NULL},
	    {"11010519491231002XX", NULL},
	    {" 11010519491231002X", NULL},
	    {"11010519491231002X ", NULL},
	    {"11010519491231002X\n", NULL},
	    {"1101051949123100 2X", NULL},
	    {"X10105194912310021", NULL},
	    {"1101051949123100X2", NULL},
	    {"11010519491231002Y", NULL},
	    {"11010519491231002-", NULL},
	    {"１1010519491231002X", NULL}, /* full-width digit */
	    {"110105194912310021", NULL},
	    {"110105194912310022", NULL},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		check_normalize("id", validate_id_number, &cases[i]);
}

/* Birth dates with a correct check digit, so only the date decides. */
static void
test_id_number_dates(void **state)
{
	static const struct {
		const char *birth; /* yyyymmdd */
		long today;
		int want;
	} cases[] = {
	    {"20000229", 20260101, 0},  /* leap year */
	    {"19000229", 20260101, -1}, /* 1900 is not a leap year */
	    {"20240229", 20260101, 0},
	    {"20230229", 20260101, -1},
	    {"19490431", 20260101, -1}, /* 30 days in April */
	    {"19491231", 20260101, 0},
	    {"19491232", 20260101, -1},
	    {"19491300", 20260101, -1},
	    {"19490001", 20260101, -1},
	    {"19490100", 20260101, -1},
	    {"18000101", 20260101, 0},
	    {"17991231", 20260101, -1},
	    {"00000101", 20260101, -1},
	    {"20260101", 20260101, 0},  /* born today */
	    {"20260102", 20260101, -1}, /* tomorrow */
	    {"20270101", 20260101, -1},
	    {"20251231", 20260101, 0},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char prefix[18], id[19], out[19];

		snprintf(prefix, sizeof(prefix), "110101%s123", cases[i].birth);
		id_with_check(prefix, id);
		if (validate_id_number_on(id, out, cases[i].today) !=
		    cases[i].want)
			fail_msg("id date case %zu (%s) wrong", i, id);
	}
}

static void
test_id_number_future_by_clock(void **state)
{
	char id[19], out[19];

	id_with_check("11010120990101123", id);
	assert_int_equal(validate_id_number(id, out), -1);
	id_with_check("11010120000101123", id);
	assert_int_equal(validate_id_number(id, out), 0);
}

static void
test_id_number_long_input(void **state)
{
	char out[19];
	char *s = repeat('1', 100000);

	assert_int_equal(validate_id_number(s, out), -1);
	memcpy(s, "11010519491231002X", 18);
	assert_int_equal(validate_id_number(s, out), -1);
	free(s);
}

static void
test_mobile(void **state)
{
	static const struct normalize_case cases[] = {
	    {"13800138000", "13800138000"},
	    {"19912345678", "19912345678"},
	    {"15000000000", "15000000000"},
	    {"+8613800138000", "13800138000"},
	    {"+8619912345678", "19912345678"},
	    {"", NULL},
	    {"+86", NULL},
	    {"1", NULL},
	    {"12800138000", NULL}, /* 1[3-9] */
	    {"10800138000", NULL},
	    {"23800138000", NULL},
	    {"1380013800", NULL},   /* 10 digits */
	    {"138001380000", NULL}, /* 12 digits */
	    {"8613800138000", NULL},
	    {"008613800138000", NULL},
	    {"+85213800138000", NULL},
	    {"+86 13800138000", NULL},
	    {"+86-13800138000", NULL},
	    {" 13800138000", NULL},
	    {"13800138000 ", NULL},
	    {"13800138000\n", NULL},
	    {"138 0013 8000", NULL},
	    {"138-0013-8000", NULL},
	    {"1380013800a", NULL},
	    {"+8612800138000", NULL},
	    {"+86+8613800138000", NULL},
	    {"１3800138000", NULL},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		check_normalize("mobile", validate_mobile, &cases[i]);
}

static void
test_email(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
	    {"a@b.cn", 0},
	    {"zhang.san@example.com", 0},
	    {"user+tag@mail.example.com.cn", 0},
	    {"Zhang_San-1@Example.COM", 0},
	    {"x@xn--fiqs8s.cn", 0},
	    {"a!#$%&'*+/=?^_`{|}~-b@ex-ample.org", 0},
	    {"1@163.com", 0},
	    {"", -1},
	    {"@", -1},
	    {"a", -1},
	    {"a@", -1},
	    {"@b.cn", -1},
	    {"a@b", -1}, /* one label */
	    {"a@localhost", -1},
	    {"a..b@x.cn", -1},
	    {".a@x.cn", -1},
	    {"a.@x.cn", -1},
	    {"a@-b.cn", -1},
	    {"a@b-.cn", -1},
	    {"a@b..cn", -1},
	    {"a@.b.cn", -1},
	    {"a@b.cn.", -1},
	    {"a@b.cn-", -1},
	    {"a b@x.cn", -1},
	    {"a@b c.cn", -1},
	    {" a@b.cn", -1},
	    {"a@b.cn ", -1},
	    {"a@b.cn\n", -1},
	    {"a@b@c.cn", -1},
	    {"\"a\"@b.cn", -1}, /* quoted local parts: not for people */
	    {"a(b)@x.cn", -1},
	    {"a@[127.0.0.1]", -1},
	    {"a@1.2.3.4", -1},
	    {"a@x.123", -1}, /* numeric top-level label */
	    {"a@b_c.cn", -1},
	    {"张三@example.cn", -1},
	    {"a@例子.中国", -1},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (validate_email(cases[i].in) != cases[i].want)
			fail_msg("email case %zu \"%s\" wrong", i, cases[i].in);
}

static void
test_email_lengths(void **state)
{
	char buf[400];
	char *label63 = repeat('d', 63), *label64 = repeat('d', 64);
	char *local64 = repeat('l', 64), *local65 = repeat('l', 65);
	char *huge = repeat('a', 100000);

	snprintf(buf, sizeof(buf), "%s@x.cn", local64);
	assert_int_equal(validate_email(buf), 0);
	snprintf(buf, sizeof(buf), "%s@x.cn", local65);
	assert_int_equal(validate_email(buf), -1);
	snprintf(buf, sizeof(buf), "a@%s.cn", label63);
	assert_int_equal(validate_email(buf), 0);
	snprintf(buf, sizeof(buf), "a@%s.cn", label64);
	assert_int_equal(validate_email(buf), -1);
	/* 254 characters is the limit of the whole address */
	snprintf(buf, sizeof(buf), "%s@%s.%s.%.*s.cn", local64, label63,
	    label63, 58, label63);
	assert_int_equal(strlen(buf), 254);
	assert_int_equal(validate_email(buf), 0);
	snprintf(buf, sizeof(buf), "%s@%s.%s.%.*s.cn", local64, label63,
	    label63, 59, label63);
	assert_int_equal(strlen(buf), 255);
	assert_int_equal(validate_email(buf), -1);
	huge[50] = '@';
	assert_int_equal(validate_email(huge), -1);
	free(label63);
	free(label64);
	free(local64);
	free(local65);
	free(huge);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uscc_vectors),
	    cmocka_unit_test(test_uscc_region_must_be_digits),
	    cmocka_unit_test(test_uscc_long_input),
	    cmocka_unit_test(test_id_number_vectors),
	    cmocka_unit_test(test_id_number_dates),
	    cmocka_unit_test(test_id_number_future_by_clock),
	    cmocka_unit_test(test_id_number_long_input),
	    cmocka_unit_test(test_mobile),
	    cmocka_unit_test(test_email),
	    cmocka_unit_test(test_email_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
