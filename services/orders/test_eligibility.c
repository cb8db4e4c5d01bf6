/* Unit tests for eligibility: the request parser's refusals (one case per
 * bad input), who may order which certificate, the order of the checks, and
 * the time and number formats. The renewal window's edges are
 * common/test_renewal.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eligibility.h"

#define CERT_A "0b7c1f3e-5a4d-4c1e-9a51-2f0d5e8c9b11"
#define CERT_B "1b7c1f3e-5a4d-4c1e-9a51-2f0d5e8c9b11"

struct parse_case {
	const char *name;
	const char *body;
	int status; /* 0: accepted */
	const char *code;
	const char *field;
};

static const struct parse_case parse_cases[] = {
    {"one item",
        "{\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"LN_JSGC\"]}]}",
        0, NULL, NULL},
    {"batch, upper-case id",
        "{\"items\":[{\"cert_id\":\"" CERT_A "\",\"platforms\":[\"LN_JSGC\"]},"
        "{\"cert_id\":\"1B7C1F3E-5A4D-4C1E-9A51-2F0D5E8C9B11\",\"platforms\":[\"LN_ZTB\",\"SY_GGZY\"]}]}",
        0, NULL, NULL},
    {"with quote_id",
        "{\"quote_id\":\"" CERT_B "\",\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"LN_JSGC\"]}]}",
        0, NULL, NULL},
    {"no items", "{}", 422, "ITEMS_EMPTY", "items"},
    {"items null", "{\"items\":null}", 422, "ITEMS_EMPTY", "items"},
    {"items empty", "{\"items\":[]}", 422, "ITEMS_EMPTY", "items"},
    {"items not a list", "{\"items\":{}}", 400, "FIELD_TYPE", "items"},
    {"item not an object", "{\"items\":[1]}", 400, "FIELD_TYPE", "items[0]"},
    {"cert_id missing", "{\"items\":[{\"platforms\":[\"LN_JSGC\"]}]}", 422,
        "FIELD_REQUIRED", "items[0].cert_id"},
    {"cert_id a number",
        "{\"items\":[{\"cert_id\":5,\"platforms\":[\"LN_JSGC\"]}]}", 400,
        "FIELD_TYPE", "items[0].cert_id"},
    {"cert_id not a uuid",
        "{\"items\":[{\"cert_id\":\"abc\",\"platforms\":[\"LN_JSGC\"]}]}", 422,
        "FIELD_INVALID", "items[0].cert_id"},
    {"platforms missing", "{\"items\":[{\"cert_id\":\"" CERT_A "\"}]}", 422,
        "ITEMS_EMPTY", "items[0].platforms"},
    {"platforms empty",
        "{\"items\":[{\"cert_id\":\"" CERT_A "\",\"platforms\":[]}]}", 422,
        "ITEMS_EMPTY", "items[0].platforms"},
    {"platforms a string",
        "{\"items\":[{\"cert_id\":\"" CERT_A "\",\"platforms\":\"LN_JSGC\"}]}",
        400, "FIELD_TYPE", "items[0].platforms"},
    {"platform a number",
        "{\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"LN_JSGC\",3]}]}",
        400, "FIELD_TYPE", "items[0].platforms[1]"},
    {"platform code malformed",
        "{\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"ln jsgc\"]}]}",
        422, "PLATFORM_UNKNOWN", "items[0].platforms[0]"},
    {"platform twice",
        "{\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"LN_JSGC\",\"LN_ZTB\",\"LN_JSGC\"]}]}",
        422, "FIELD_INVALID", "items[0].platforms[2]"},
    {"the same certificate twice",
        "{\"items\":[{\"cert_id\":\"" CERT_A "\",\"platforms\":[\"LN_JSGC\"]},"
        "{\"cert_id\":\"" CERT_B "\",\"platforms\":[\"LN_JSGC\"]},"
        "{\"cert_id\":\"0B7C1F3E-5A4D-4C1E-9A51-2F0D5E8C9B11\",\"platforms\":[\"LN_ZTB\"]}]}",
        422, "FIELD_INVALID", "items[2].cert_id"},
    {"second item without platforms",
        "{\"items\":[{\"cert_id\":\"" CERT_A "\",\"platforms\":[\"LN_JSGC\"]},"
        "{\"cert_id\":\"" CERT_B "\",\"platforms\":[]}]}",
        422, "ITEMS_EMPTY", "items[1].platforms"},
    {"quote_id not a uuid",
        "{\"quote_id\":\"q\",\"items\":[{\"cert_id\":\"" CERT_A
        "\",\"platforms\":[\"LN_JSGC\"]}]}",
        422, "FIELD_INVALID", "quote_id"},
    {"quote_id a number", "{\"quote_id\":1,\"items\":[]}", 422, "ITEMS_EMPTY",
        "items"},
};

static void
test_parse_cases(void **state)
{
	for (size_t c = 0; c < sizeof(parse_cases) / sizeof(parse_cases[0]);
	     c++) {
		const struct parse_case *pc = &parse_cases[c];
		json_t *body = json_loads(pc->body, 0, NULL);
		struct order_request rq;
		struct order_error err;
		int rc;

		assert_non_null(body);
		memset(&err, 0, sizeof(err));
		rc = order_request_parse(&rq, body, &err);
		if (pc->status == 0) {
			if (rc != 0)
				fail_msg("%s: refused %s %s", pc->name,
				    err.code, err.field);
			assert_true(rq.nitems >= 1);
			order_request_clear(&rq);
		} else {
			if (rc != -1)
				fail_msg("%s: accepted", pc->name);
			if (err.status != pc->status ||
			    strcmp(err.code, pc->code) != 0 ||
			    strcmp(err.field, pc->field) != 0)
				fail_msg("%s: %d %s %s, want %d %s %s",
				    pc->name, err.status, err.code, err.field,
				    pc->status, pc->code, pc->field);
			assert_non_null(err.message);
			assert_int_equal(rq.nitems, 0);
		}
		json_decref(body);
	}
}

static void
test_parse_limits_and_canonical(void **state)
{
	json_t *body = json_object(), *items = json_array();
	struct order_request rq;
	struct order_error err;
	char id[37];
	char *canon;

	for (int i = 0; i < ORDER_MAX_ITEMS + 1; i++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
		json_array_append_new(items,
		    json_pack("{s:s, s:[s]}", "cert_id", id, "platforms",
		        "LN_JSGC"));
	}
	json_object_set_new(body, "items", items);
	assert_int_equal(order_request_parse(&rq, body, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	json_array_remove(items, 0);
	assert_int_equal(order_request_parse(&rq, body, &err), 0);
	assert_int_equal(rq.nitems, ORDER_MAX_ITEMS);
	order_request_clear(&rq);
	json_decref(body);

	/* The canonical text is case-blind on ids and keeps the order. */
	body = json_loads(
	    "{\"items\":[{\"cert_id\":\"0B7C1F3E-5A4D-4C1E-9A51-2F0D5E8C9B11\","
	    "\"platforms\":[\"LN_ZTB\",\"LN_JSGC\"]}]}",
	    0, NULL);
	assert_int_equal(order_request_parse(&rq, body, &err), 0);
	canon = order_request_canonical(&rq);
	assert_string_equal(canon, CERT_A ":LN_ZTB,LN_JSGC;");
	free(canon);
	order_request_clear(&rq);
	json_decref(body);
}

#define DAY 86400

#define ME "a0000000-0000-4000-8000-000000000001"
#define OTHER "a0000000-0000-4000-8000-000000000002"
#define ENT "91110108551385082Q"
#define ENT2 "91350100M000100Y43"

struct cert_case {
	const char *name;
	struct order_caller caller;
	struct order_cert_facts cert;
	int64_t days_to_expiry; /* notAfter - now, in days */
	enum order_refusal want;
};

/* Callers: {account, uscc, admin, profile complete, enterprise approved}. */
#define admin                    \
	{                        \
		ME, ENT, 1, 1, 1 \
	}
#define lead                     \
	{                        \
		ME, ENT, 0, 1, 1 \
	}
#define person                    \
	{                         \
		ME, NULL, 0, 1, 0 \
	}

static const struct cert_case cert_cases[] = {
    {"admin orders an employee's certificate", admin,
        {1, ENT, OTHER, 1, 0, 0, 0}, 30, ORDER_ELIGIBLE},
    {"admin orders an unbound key's certificate", admin,
        {1, ENT, NULL, 1, 0, 0, 0}, 30, ORDER_ELIGIBLE},
    {"project lead orders own certificate", lead, {1, ENT, ME, 1, 0, 0, 0}, 30,
        ORDER_ELIGIBLE},
    {"project lead may not order a colleague's", lead,
        {1, ENT, OTHER, 1, 0, 0, 0}, 30, ORDER_NOT_ENTERPRISE_ADMIN},
    {"another enterprise's certificate does not exist", admin,
        {1, ENT2, OTHER, 1, 0, 0, 0}, 30, ORDER_CERT_NOT_FOUND},
    {"another person's personal certificate does not exist", admin,
        {1, NULL, OTHER, 0, 0, 0, 0}, 30, ORDER_CERT_NOT_FOUND},
    {"unknown certificate", admin, {0, NULL, NULL, 0, 0, 0, 0}, 30,
        ORDER_CERT_NOT_FOUND},
    {"a person orders a personal certificate", person,
        {1, NULL, ME, 0, 0, 0, 0}, 30, ORDER_ELIGIBLE},
    {"own certificate of an unapproved enterprise", person,
        {1, ENT2, ME, 0, 0, 0, 0}, 30, ORDER_ENTERPRISE_NOT_APPROVED},
    {"revoked", admin, {1, ENT, OTHER, 1, 1, 0, 0}, 30, ORDER_CERT_REVOKED},
    {"too early (未到年检时间)", admin, {1, ENT, OTHER, 1, 0, 0, 0}, 91,
        ORDER_TOO_EARLY},
    {"first day of the window", admin, {1, ENT, OTHER, 1, 0, 0, 0}, 90,
        ORDER_ELIGIBLE},
    {"expired, still renewable", admin, {1, ENT, OTHER, 1, 0, 0, 0}, -365,
        ORDER_ELIGIBLE},
    {"expired too long ago", admin, {1, ENT, OTHER, 1, 0, 0, 0}, -366,
        ORDER_TOO_LATE},
    {"in another open order", admin, {1, ENT, OTHER, 1, 0, 1, 0}, 30,
        ORDER_IN_OPEN_ORDER},
    {"visibility before the window", lead, {1, ENT, OTHER, 1, 0, 1, 0}, 400,
        ORDER_NOT_ENTERPRISE_ADMIN},
    {"revocation before the window", admin, {1, ENT, OTHER, 1, 1, 1, 0}, 400,
        ORDER_CERT_REVOKED},
    {"window before the open order", admin, {1, ENT, OTHER, 1, 0, 1, 0}, 400,
        ORDER_TOO_EARLY},
};

static void
test_cert_cases(void **state)
{
	const struct renewal_window w = {90, 365};
	const int64_t now = 1700000000;

	for (size_t c = 0; c < sizeof(cert_cases) / sizeof(cert_cases[0]);
	     c++) {
		struct order_cert_facts f = cert_cases[c].cert;
		enum order_refusal got;

		f.not_after = now + cert_cases[c].days_to_expiry * DAY;
		got = order_cert_check(&cert_cases[c].caller, &f, &w, now);
		if (got != cert_cases[c].want)
			fail_msg("%s: %d, want %d", cert_cases[c].name, got,
			    cert_cases[c].want);
	}
}

static void
test_caller_and_error_codes(void **state)
{
	struct order_caller c = {ME, ENT, 1, 0, 0};
	struct order_error err;

	assert_int_equal(order_caller_check(&c), ORDER_PROFILE_INCOMPLETE);
	c.profile_complete = 1;
	assert_int_equal(order_caller_check(&c), ORDER_ENTERPRISE_NOT_APPROVED);
	c.enterprise_approved = 1;
	assert_int_equal(order_caller_check(&c), ORDER_ELIGIBLE);
	c.uscc = NULL;
	c.enterprise_approved = 0;
	assert_int_equal(order_caller_check(&c), ORDER_ELIGIBLE); /* a person */

	static const struct {
		enum order_refusal r;
		int status;
		const char *code;
	} codes[] = {
	    {ORDER_PROFILE_INCOMPLETE, 403, "PROFILE_INCOMPLETE"},
	    {ORDER_ENTERPRISE_NOT_APPROVED, 403, "ENTERPRISE_NOT_APPROVED"},
	    {ORDER_CERT_NOT_FOUND, 404, "CERT_NOT_FOUND"},
	    {ORDER_NOT_ENTERPRISE_ADMIN, 403, "NOT_ENTERPRISE_ADMIN"},
	    {ORDER_CERT_REVOKED, 409, "CERT_REVOKED"},
	    {ORDER_TOO_EARLY, 409, "NOT_IN_RENEWAL_WINDOW"},
	    {ORDER_TOO_LATE, 409, "NOT_IN_RENEWAL_WINDOW"},
	    {ORDER_IN_OPEN_ORDER, 409, "CERT_IN_OPEN_ORDER"},
	};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		order_refusal_error(codes[i].r, "items[0].cert_id", &err);
		assert_int_equal(err.status, codes[i].status);
		assert_string_equal(err.code, codes[i].code);
		assert_non_null(err.message);
	}
	order_refusal_error(ORDER_PROFILE_INCOMPLETE, "x", &err);
	assert_string_equal(err.field, ""); /* about the caller, not a field */
}

static void
test_times_and_numbers(void **state)
{
	static const struct {
		const char *s;
		int64_t want; /* -1: refused */
	} cases[] = {
	    {"2024-05-01T08:00:00Z", 1714550400},
	    {"2024-05-01T08:00:00.123456Z", 1714550400},
	    {"2024-05-01T16:00:00+08:00", 1714550400},
	    {"2024-05-01T00:00:00-08:00", 1714550400},
	    {"2024-02-29T00:00:00Z", 1709164800},
	    {"2023-02-29T00:00:00Z", -1},
	    {"2024-05-01 08:00:00Z", -1},
	    {"2024-05-01T08:00:00", -1},
	    {"2024-13-01T08:00:00Z", -1},
	    {"2024-05-01T24:00:00Z", -1},
	    {"2024-05-01T08:00:00.Z", -1},
	    {"2024-05-01T08:00:00Zjunk", -1},
	    {"", -1},
	};
	char out[32], number[40];
	int64_t t;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = order_time_parse(cases[i].s, &t);
		if (cases[i].want < 0 ? rc != -1
		                      : (rc != 0 || t != cases[i].want))
			fail_msg("time \"%s\"", cases[i].s);
	}
	order_time_format(1714550400, out);
	assert_string_equal(out, "2024-05-01T08:00:00Z");
	/* 2024-05-01T20:00:00Z is already 2 May in China Standard Time. */
	order_number_format(1714593600, 123, number);
	assert_string_equal(number, "PL2024050200000123");
	order_number_format(1714550400, 123456789012LL, number);
	assert_string_equal(number, "PL20240501123456789012");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_cases),
	    cmocka_unit_test(test_parse_limits_and_canonical),
	    cmocka_unit_test(test_cert_cases),
	    cmocka_unit_test(test_caller_and_error_codes),
	    cmocka_unit_test(test_times_and_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
