/* Unit tests for session's pure part: the session object's views. The Redis
 * round trips are proved by the auth integration tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "session.c"

static void
test_views(void **state)
{
	json_t *d = json_loads(
	    "{\"account_id\":\"a\",\"identity_id\":\"i\",\"identity_type\":\"enterprise\","
	    "\"role\":\"admin\",\"enterprise_id\":\"91350100M000100Y43\",\"uscc\":\"91350100M000100Y43\"}",
	    0, NULL);
	struct session *s = session_from_json("abc", d);

	assert_string_equal(s->token_hash, "abc");
	assert_string_equal(s->account_id, "a");
	assert_string_equal(s->identity_type, "enterprise");
	assert_string_equal(s->role, "admin");
	assert_string_equal(s->uscc, "91350100M000100Y43");
	assert_null(s->staff_id);
	session_free(s); /* frees d too */
	session_free(NULL);

	d = json_loads(
	    "{\"staff_id\":\"s\",\"roles\":[\"reviewer\"],\"account_id\":7}", 0,
	    NULL);
	s = session_from_json("h", d);
	assert_string_equal(s->staff_id, "s");
	assert_null(s->account_id); /* not a string: absent, never trusted */
	session_free(s);
}

static void
test_has_role(void **state)
{
	json_t *d = json_loads(
	    "{\"staff_id\":\"s\",\"roles\":[\"reviewer\",7,\"finance\"]}", 0,
	    NULL);
	struct session *s = session_from_json("h", d);

	assert_int_equal(session_has_role(s, "reviewer"), 1);
	assert_int_equal(session_has_role(s, "finance"), 1);
	assert_int_equal(session_has_role(s, "operator"), 0);
	session_free(s);

	/* An account's session never holds a staff role, whatever it says. */
	d = json_loads("{\"account_id\":\"a\",\"roles\":[\"reviewer\"]}", 0,
	    NULL);
	s = session_from_json("h", d);
	assert_int_equal(session_has_role(s, "reviewer"), 0);
	session_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_views),
	    cmocka_unit_test(test_has_role),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
