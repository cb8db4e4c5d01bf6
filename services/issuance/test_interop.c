/* Unit tests for interop.c: the canonical string of openapi.yaml's example,
 * a known HMAC, the ±300 s timestamp window, platform codes and secrets,
 * and the precedence of the answer's reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "interop.c"

#define NOW ((time_t)1714550400)
#define SECRET "0123456789abcdef0123456789abcdef"
#define CANONICAL                                                                  \
	"GET\n/api/v1/interop/certs/1A2B3C/status\nplatform=LN_JSGC\n1714550400\n" \
	"0f3c9a7e-5b1d-4c2a"
/* python3: hmac.new(SECRET, CANONICAL, sha256).hexdigest() */
#define SIG "1959f1f3f261607471282cf1210d32a8da161d3689961160c89f70cc632b7a8c"

static void
test_canonical_and_signature(void **state)
{
	char *c =
	    cert_interop_canonical("GET", "/api/v1/interop/certs/1A2B3C/status",
	        "platform=LN_JSGC", "1714550400", "0f3c9a7e-5b1d-4c2a");
	char *bad = xstrdup(SIG), *upper = xstrdup(SIG);

	assert_string_equal(c, CANONICAL);
	assert_int_equal(cert_interop_signature_ok(SECRET, c, SIG), 0);
	bad[10] = bad[10] == '0' ? '1' : '0';
	assert_int_equal(cert_interop_signature_ok(SECRET, c, bad), -1);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(cert_interop_signature_ok(SECRET, c, upper), -1);
	assert_int_equal(cert_interop_signature_ok(SECRET, c, ""), -1);
	assert_int_equal(cert_interop_signature_ok(SECRET "x", c, SIG), -1);
	free(c);
	/* no query: an empty line */
	c = cert_interop_canonical("GET", "/p", NULL, "1", "n");
	assert_string_equal(c, "GET\n/p\n\n1\nn");
	free(c);
	/* nonces */
	assert_int_equal(cert_interop_nonce_ok("0f3c9a7e-5b1d-4c2a"), 1);
	assert_int_equal(cert_interop_nonce_ok("short"), 0);
	assert_int_equal(cert_interop_nonce_ok(NULL), 0);
	assert_int_equal(cert_interop_nonce_ok("0f3c9a7e 5b1d-4c2a"), 0);
	c = xstrdup("");
	free(c);
	free(bad);
	free(upper);
}

static void
test_timestamps(void **state)
{
	static const struct {
		const char *ts;
		int want;
	} cases[] = {
	    {"1714550400", 0},
	    {"1714550700", 0},
	    {"1714550701", -1},
	    {"1714550100", 0},
	    {"1714550099", -1},
	    {"", -1},
	    {"17145504OO", -1},
	    {"-1714550400", -1},
	    {"+1714550400", -1},
	    {"1714550400000", -1},
	    {" 1714550400", -1},
	    {"0", -1},
	    {"001714550400", 0},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (cert_interop_timestamp_ok(cases[i].ts, NOW, 300) !=
		    cases[i].want)
			fail_msg("ts-%zu \"%s\": want %d", i + 1, cases[i].ts,
			    cases[i].want);
}

static void
test_platform_codes_and_secrets(void **state)
{
	static const struct {
		const char *code;
		int ok;
	} codes[] = {
	    {"LN_JSGC", 1},
	    {"SY_GGZY", 1},
	    {"A1", 1},
	    {"A", 0},
	    {"1A", 0},
	    {"ln_jsgc", 0},
	    {"AB-C", 0},
	    {"", 0},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 1},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", 0},
	};
	static const struct {
		const char *spec;
		int rc;
		size_t n;
	} specs[] = {
	    {"", 0, 0},
	    {"LN_JSGC=0123456789abcdef", 0, 1},
	    {"LN_JSGC=0123456789abcdef,SY_GGZY=fedcba9876543210xyz", 0, 2},
	    {"LN_JSGC=short", -1, 0},
	    {"ln_jsgc=0123456789abcdef", -1, 0},
	    {"LN_JSGC", -1, 0},
	    {"LN_JSGC=0123456789abcdef,LN_JSGC=0123456789abcdef", -1, 0},
	    {"=0123456789abcdef", -1, 0},
	};
	struct cert_platform_secret *s;
	size_t n;

	for (size_t i = 0; i < ARRAY_LEN(codes); i++)
		if (cert_platform_code_ok(codes[i].code) != codes[i].ok)
			fail_msg("code-%zu \"%s\"", i + 1, codes[i].code);
	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		s = NULL;
		n = 99;
		if (cert_platform_secrets_parse(specs[i].spec, &s, &n) !=
		    specs[i].rc)
			fail_msg("secrets-%zu \"%s\"", i + 1, specs[i].spec);
		if (specs[i].rc == 0) {
			assert_int_equal(n, specs[i].n);
			cert_platform_secrets_free(s, n);
		}
	}
	assert_int_equal(
	    cert_platform_secrets_parse(
	        "LN_JSGC=0123456789abcdef,SY_GGZY=fedcba9876543210xyz", &s, &n),
	    0);
	assert_string_equal(cert_platform_secret(s, n, "SY_GGZY"),
	    "fedcba9876543210xyz");
	assert_null(cert_platform_secret(s, n, "DL_GGZY"));
	cert_platform_secrets_free(s, n);
}

static void
test_reasons(void **state)
{
	static const struct {
		long long nb, na; /* offsets from NOW */
		int revoked, superseded, associated;
		const char *want;
	} cases[] = {
	    {-10, 10, 0, 0, 1, NULL},
	    {-10, 10, 0, 0, 0, "PLATFORM_NOT_ASSOCIATED"},
	    {-10, 0, 0, 0, 1, "CERT_EXPIRED"},
	    {5, 10, 0, 0, 1, "CERT_NOT_YET_VALID"},
	    {-10, 10, 0, 1, 1, "CERT_SUPERSEDED"},
	    {-10, -5, 0, 1, 0, "CERT_SUPERSEDED"},
	    {-10, 10, 1, 1, 0, "CERT_REVOKED"},
	    {-10, -5, 0, 0, 0, "CERT_EXPIRED"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *got = cert_interop_reason(NOW + (time_t)cases[i].nb,
		    NOW + (time_t)cases[i].na, NOW, cases[i].revoked,
		    cases[i].superseded, cases[i].associated);
		if ((got == NULL) != (cases[i].want == NULL) ||
		    (got && strcmp(got, cases[i].want) != 0))
			fail_msg("reason-%zu: got %s", i + 1,
			    got ? got : "null");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canonical_and_signature),
	    cmocka_unit_test(test_timestamps),
	    cmocka_unit_test(test_platform_codes_and_secrets),
	    cmocka_unit_test(test_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
