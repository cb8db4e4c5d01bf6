/* Unit tests for the access table: each role's scope on each area, staff
 * roles combined, sessions without an enterprise identity, the 403. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "access.h"
#include "http.h"
#include "session.h"

static struct session
member(const char *role)
{
	struct session s = {.account_id = "acc",
	    .identity_id = "idn",
	    .identity_type = "enterprise",
	    .role = role,
	    .uscc = "91210000MA0000000X"};
	return s;
}

static void
test_enterprise_roles(void **state)
{
	struct session admin = member("admin");
	struct session lead = member("project_lead");
	struct session agent = member("agent");
	struct session cost = member("cost_engineer");

	for (int a = 0; a < ACCESS_AREAS; a++) {
		int staff_only = a == ACCESS_REVIEW || a == ACCESS_FINANCE ||
		    a == ACCESS_AUDIT;
		assert_int_equal(access_scope(&admin, a),
		    staff_only ? ACCESS_NONE : ACCESS_ENTERPRISE);
	}
	struct session *members[] = {&lead, &agent, &cost};
	for (size_t i = 0; i < 3; i++) {
		struct session *m = members[i];
		assert_int_equal(access_scope(m, ACCESS_ENTERPRISE_PUBLIC),
		    ACCESS_ENTERPRISE);
		assert_int_equal(access_scope(m, ACCESS_ENTERPRISE_FULL),
		    ACCESS_NONE);
		assert_int_equal(access_scope(m, ACCESS_ENTERPRISE_EDIT),
		    ACCESS_NONE);
		assert_int_equal(access_scope(m, ACCESS_MEMBERS), ACCESS_NONE);
		assert_int_equal(access_scope(m, ACCESS_CERTS), ACCESS_OWN);
		assert_int_equal(access_scope(m, ACCESS_ORDERS), ACCESS_OWN);
		assert_int_equal(access_scope(m, ACCESS_PAYMENTS), ACCESS_OWN);
		assert_int_equal(access_scope(m, ACCESS_AUDIT), ACCESS_NONE);
	}
}

static void
test_no_enterprise_identity(void **state)
{
	struct session personal = {.account_id = "acc",
	    .identity_id = "idn",
	    .identity_type = "personal"};
	struct session unknown_role = member("owner");
	struct session no_uscc = member("admin");

	no_uscc.uscc = NULL;
	for (int a = 0; a < ACCESS_AREAS; a++) {
		assert_int_equal(access_scope(&personal, a), ACCESS_NONE);
		assert_int_equal(access_scope(&unknown_role, a), ACCESS_NONE);
		assert_int_equal(access_scope(&no_uscc, a), ACCESS_NONE);
		assert_int_equal(access_scope(NULL, a), ACCESS_NONE);
	}
	assert_int_equal(access_scope(&personal, ACCESS_AREAS), ACCESS_NONE);
}

static void
test_staff_roles(void **state)
{
	json_t *d = json_pack("{s:s, s:[s, s]}", "staff_id", "st", "roles",
	    "reviewer", "finance");
	struct session s = {.staff_id = "st", .data = d};

	assert_int_equal(access_scope(&s, ACCESS_REVIEW), ACCESS_PLATFORM);
	assert_int_equal(access_scope(&s, ACCESS_FINANCE), ACCESS_PLATFORM);
	assert_int_equal(access_scope(&s, ACCESS_ENTERPRISE_FULL),
	    ACCESS_PLATFORM);
	assert_int_equal(access_scope(&s, ACCESS_AUDIT), ACCESS_NONE);
	assert_int_equal(access_scope(&s, ACCESS_ENTERPRISE_EDIT), ACCESS_NONE);
	/* A staff session never acts as an enterprise role. */
	s.role = "admin";
	s.uscc = "91210000MA0000000X";
	s.identity_type = "enterprise";
	assert_int_equal(access_scope(&s, ACCESS_ENTERPRISE_EDIT), ACCESS_NONE);
	json_decref(d);

	d = json_pack("{s:s, s:[s]}", "staff_id", "op", "roles", "operator");
	struct session op = {.staff_id = "op", .data = d};
	assert_int_equal(access_scope(&op, ACCESS_AUDIT), ACCESS_PLATFORM);
	assert_int_equal(access_scope(&op, ACCESS_REVIEW), ACCESS_NONE);
	json_decref(d);
}

static void
test_mask(void **state)
{
	char out[32];

	access_mask("13812345678", out, sizeof(out));
	assert_string_equal(out, "138****5678");
	access_mask("21010219900101123X", out, sizeof(out));
	assert_string_equal(out, "210***********123X");
	access_mask("12345678", out, sizeof(out));
	assert_string_equal(out, "********");
	access_mask("", out, sizeof(out));
	assert_string_equal(out, "");
}

/* access_viewer: the scope and parameters of who sees which order (the
 * refusals answer through the HTTP server and are proved end to end). */
static void
test_viewer(void **state)
{
	struct session admin = member("admin");
	struct session lead = member("project_lead");
	struct session personal = {.account_id = "acc",
	    .identity_id = "idn",
	    .identity_type = "personal"};
	json_t *d =
	    json_pack("{s:s, s:[s]}", "staff_id", "st", "roles", "finance");
	struct session fin = {.staff_id = "st", .data = d};
	struct http_req req = {0};
	struct access_viewer v;

	req.session = &admin;
	assert_int_equal(access_viewer(&req, ACCESS_ORDERS, &v), 0);
	assert_string_equal(v.scope, "enterprise");
	assert_string_equal(v.uscc, "91210000MA0000000X");
	assert_string_equal(v.account, "acc");
	req.session = &lead;
	assert_int_equal(access_viewer(&req, ACCESS_PAYMENTS, &v), 0);
	assert_string_equal(v.scope, "own");
	assert_string_equal(v.uscc, "91210000MA0000000X");
	req.session = &personal;
	assert_int_equal(access_viewer(&req, ACCESS_ORDERS, &v), 0);
	assert_string_equal(v.scope, "own");
	assert_null(v.uscc);
	assert_string_equal(v.account, "acc");
	req.session = &fin;
	assert_int_equal(access_viewer(&req, ACCESS_PAYMENTS, &v), 0);
	assert_string_equal(v.scope, "platform");
	assert_null(v.account);
	json_decref(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enterprise_roles),
	    cmocka_unit_test(test_no_enterprise_identity),
	    cmocka_unit_test(test_staff_roles),
	    cmocka_unit_test(test_mask),
	    cmocka_unit_test(test_viewer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
