/* Unit tests for audit's event data: the actor from the session (account
 * with identity, staff) or the system, the object, before/after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "audit.h"
#include "http.h"
#include "session.h"

static const char *
str(json_t *o, const char *path0, const char *path1)
{
	json_t *v = json_object_get(o, path0);

	if (path1 != NULL)
		v = json_object_get(v, path1);
	return json_string_value(v);
}

static void
test_account_actor(void **state)
{
	struct session s = {.account_id = "acc-1",
	    .identity_id = "id-1",
	    .role = "admin"};
	struct http_req req = {.session = &s};
	json_t *before = json_pack("{s:s}", "status", "pending");
	struct audit_entry e = {.action = "identity.approved",
	    .object_type = "identity",
	    .object_id = "id-9",
	    .uscc = "91210000MA0000000X",
	    .before = before};

	strcpy(req.id, "req-7");
	strcpy(req.peer, "10.1.2.3");
	audit_setup("auth");
	json_t *d = audit_event_data(&req, &e);
	assert_string_equal(str(d, "actor", "type"), "account");
	assert_string_equal(str(d, "actor", "id"), "acc-1");
	assert_string_equal(str(d, "actor", "identity_id"), "id-1");
	assert_string_equal(str(d, "actor", "role"), "admin");
	assert_string_equal(str(d, "actor", "ip"), "10.1.2.3");
	assert_string_equal(str(d, "actor", "request_id"), "req-7");
	assert_string_equal(str(d, "service", NULL), "auth");
	assert_string_equal(str(d, "action", NULL), "identity.approved");
	assert_string_equal(str(d, "object_id", NULL), "id-9");
	assert_string_equal(str(d, "uscc", NULL), "91210000MA0000000X");
	assert_string_equal(str(d, "before", "status"), "pending");
	assert_true(json_is_null(json_object_get(d, "after")));
	json_decref(d);
	json_decref(before);
}

static void
test_staff_and_system_actors(void **state)
{
	struct session s = {.staff_id = "staff-1"};
	struct http_req req = {.session = &s};
	struct audit_entry e = {.action = "refund.created",
	    .object_type = "refund",
	    .object_id = "r-1"};

	audit_setup("payments");
	json_t *d = audit_event_data(&req, &e);
	assert_string_equal(str(d, "actor", "type"), "staff");
	assert_string_equal(str(d, "actor", "id"), "staff-1");
	assert_true(json_is_null(json_object_get(d, "uscc")));
	json_decref(d);

	d = audit_event_data(NULL, &e);
	assert_string_equal(str(d, "actor", "type"), "system");
	assert_string_equal(str(d, "actor", "id"), "system:payments");
	assert_null(json_object_get(json_object_get(d, "actor"), "ip"));
	json_decref(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_account_actor),
	    cmocka_unit_test(test_staff_and_system_actors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
