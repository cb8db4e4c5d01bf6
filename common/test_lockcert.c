/* Unit tests for certificate profiles: the API.md default and a
 * CFCA-style layout from configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lockcert.h"

static const char cfca[] =
    "[{\"vendor\": \"CFCA\", \"issuer_contains\": \"O=China Financial Certification Authority\","
    " \"separator\": \"@\", \"kind\": \"ou\", \"holder\": \"cn:1\", \"uscc\": \"cn:2\","
    " \"enterprise_name\": \"o\"}]";

static void
test_default_profile(void **state)
{
	json_t *profiles = json_loads(cfca, 0, NULL);
	struct lock_fields f;

	assert_int_equal(profile_apply(profiles,
	                     "CN=caplat test RSA issuing CA,O=caplat test,C=CN",
	                     "CN", "某某公司", "master", "张三",
	                     "91350100M000100Y43", &f),
	    0);
	assert_null(f.vendor);
	assert_string_equal(f.kind_text, "master");
	assert_string_equal(f.holder, "张三");
	assert_string_equal(f.enterprise_name, "某某公司");
	assert_string_equal(f.uscc, "91350100M000100Y43");
	lock_fields_clear(&f);
	/* A personal certificate: no O, no organizationIdentifier. */
	assert_int_equal(profile_apply(profiles, "CN=x", "CN", NULL, "personal",
	                     "赵六", NULL, &f),
	    0);
	assert_null(f.enterprise_name);
	assert_null(f.uscc);
	lock_fields_clear(&f);
	json_decref(profiles);
}

static void
test_cfca_profile(void **state)
{
	json_t *profiles = json_loads(cfca, 0, NULL);
	struct lock_fields f;

	assert_int_equal(
	    profile_apply(profiles,
	        "CN=CFCA OCA1,O=China Financial Certification Authority,C=CN",
	        "CN", "某某公司", "单位主锁", "051@张三@91350100M000100Y43@1",
	        NULL, &f),
	    0);
	assert_string_equal(f.vendor, "CFCA");
	assert_string_equal(f.kind_text, "单位主锁");
	assert_string_equal(f.holder, "张三");
	assert_string_equal(f.uscc, "91350100M000100Y43");
	lock_fields_clear(&f);
	/* Too few parts: the field is absent, not garbage. */
	assert_int_equal(
	    profile_apply(profiles,
	        "CN=CFCA OCA1,O=China Financial Certification Authority,C=CN",
	        "CN", "某某公司", "单位主锁", "051@张三", NULL, &f),
	    0);
	assert_string_equal(f.holder, "张三");
	assert_null(f.uscc);
	lock_fields_clear(&f);
	json_decref(profiles);
}

static void
test_check(void **state)
{
	char err[128];
	static const char *const bad[] = {
	    "{}",
	    "[{\"kind\": \"ou\"}]",
	    "[{\"issuer_contains\": \"X\", \"holder\": \"street\"}]",
	    "[{\"issuer_contains\": \"X\", \"holder\": \"cn:x\", \"separator\": \"@\"}]",
	    "[{\"issuer_contains\": \"X\", \"holder\": \"cn:1\"}]",
	    "[{\"issuer_contains\": \"X\", \"holder\": 3}]",
	};
	json_t *good = json_loads(cfca, 0, NULL);

	assert_int_equal(profile_check(good, err, sizeof(err)), 0);
	json_decref(good);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		json_t *p = json_loads(bad[i], 0, NULL);
		assert_int_equal(profile_check(p, err, sizeof(err)), -1);
		json_decref(p);
	}
}

/* The kind map: the defaults, then CAPLAT_LOCK_KIND_MAP's pairs. */
static void
test_kind_map(void **state)
{
	setenv("CAPLAT_LOCK_KIND_MAP", "法人锁=master,经办人=agent", 1);
	unsetenv("CAPLAT_VENDOR_PROFILES");
	lockcert_init();
	assert_string_equal(lockcert_kind("master"), "master");
	assert_string_equal(lockcert_kind("单位主锁"), "master");
	assert_string_equal(lockcert_kind("造价师锁"), "cost_engineer");
	assert_string_equal(lockcert_kind("法人锁"), "master");
	assert_string_equal(lockcert_kind("经办人"), "agent");
	assert_null(lockcert_kind("主锁?"));
	assert_null(lockcert_kind(NULL));
	for (const char *const *k = lockcert_kinds; *k; k++)
		assert_true(lockcert_kind_valid(*k));
	assert_false(lockcert_kind_valid("单位主锁")); /* OU text, not a kind */
	assert_false(lockcert_kind_valid("Master"));
	assert_false(lockcert_kind_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_profile),
	    cmocka_unit_test(test_cfca_profile),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_kind_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
