/* Unit tests for rules: every field of every part of the enterprise record
 * with good and bad values (table-driven: body, expected code and field, or
 * the normalized value), merging, the ID type / number check, completeness,
 * personal info, reviewer opinions and attachment types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define USCC "91350100M000100Y43"
#define FILE_ID "3f2a6c1e-8b7d-4c2a-9e1f-0a1b2c3d4e5f"

static json_t *
parse_json(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (v == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return v;
}

struct record_case {
	const char *body; /* an EnterpriseRecordUpdate */
	int status;       /* 0: accepted */
	const char *code;
	const char *field;
	const char *path; /* accepted: "part.field" or "part.files.field" */
	const char *want; /* accepted: the normalized value as JSON */
};

static const struct record_case record_cases[] = {
    /* basic.name */
    {"{\"basic\":{\"name\":\"辽宁演示科技有限公司\"}}", 0, NULL, NULL,
        "basic.name", "\"辽宁演示科技有限公司\""},
    {"{\"basic\":{\"name\":\"\"}}", 0, NULL, NULL, "basic.name", "null"},
    {"{\"basic\":{\"name\":null}}", 0, NULL, NULL, "basic.name", "null"},
    {"{\"basic\":{\"name\":\" 前导空格\"}}", 422, "FIELD_INVALID", "basic.name",
        NULL, NULL},
    {"{\"basic\":{\"name\":\"尾随空格　\"}}", 422, "FIELD_INVALID",
        "basic.name", NULL, NULL},
    {"{\"basic\":{\"name\":\"换\\n行\"}}", 422, "FIELD_INVALID", "basic.name",
        NULL, NULL},
    {"{\"basic\":{\"name\":12}}", 400, "FIELD_TYPE", "basic.name", NULL, NULL},
    /* basic.uscc */
    {"{\"basic\":{\"uscc\":\"91350100M000100Y43\"}}", 0, NULL, NULL,
        "basic.uscc", "\"91350100M000100Y43\""},
    {"{\"basic\":{\"uscc\":\"91350100m000100y43\"}}", 0, NULL, NULL,
        "basic.uscc", "\"91350100M000100Y43\""},
    {"{\"basic\":{\"uscc\":\"91350100M000100Y44\"}}", 422, "USCC_INVALID",
        "basic.uscc", NULL, NULL},
    {"{\"basic\":{\"uscc\":\"91350100M000100Y4\"}}", 422, "USCC_INVALID",
        "basic.uscc", NULL, NULL},
    {"{\"basic\":{\"uscc\":\"91110108551385082Q\"}}", 422, "FIELD_INVALID",
        "basic.uscc", NULL, NULL},
    {"{\"basic\":{\"uscc\":null}}", 422, "FIELD_INVALID", "basic.uscc", NULL,
        NULL},
    {"{\"basic\":{\"uscc\":\"\"}}", 422, "FIELD_INVALID", "basic.uscc", NULL,
        NULL},
    {"{\"basic\":{\"uscc\":91350100}}", 400, "FIELD_TYPE", "basic.uscc", NULL,
        NULL},
    /* basic.registered_capital_fen */
    {"{\"basic\":{\"registered_capital_fen\":100000000}}", 0, NULL, NULL,
        "basic.registered_capital_fen", "100000000"},
    {"{\"basic\":{\"registered_capital_fen\":0}}", 0, NULL, NULL,
        "basic.registered_capital_fen", "0"},
    {"{\"basic\":{\"registered_capital_fen\":100000000000000000}}", 0, NULL,
        NULL, "basic.registered_capital_fen", "100000000000000000"},
    {"{\"basic\":{\"registered_capital_fen\":100000000000000001}}", 422,
        "FIELD_INVALID", "basic.registered_capital_fen", NULL, NULL},
    {"{\"basic\":{\"registered_capital_fen\":-1}}", 422, "FIELD_INVALID",
        "basic.registered_capital_fen", NULL, NULL},
    {"{\"basic\":{\"registered_capital_fen\":1.5}}", 400, "FIELD_TYPE",
        "basic.registered_capital_fen", NULL, NULL},
    {"{\"basic\":{\"registered_capital_fen\":\"100\"}}", 400, "FIELD_TYPE",
        "basic.registered_capital_fen", NULL, NULL},
    {"{\"basic\":{\"registered_capital_fen\":\"\"}}", 400, "FIELD_TYPE",
        "basic.registered_capital_fen", NULL, NULL},
    {"{\"basic\":{\"registered_capital_fen\":null}}", 0, NULL, NULL,
        "basic.registered_capital_fen", "null"},
    /* basic.legal_rep_name */
    {"{\"basic\":{\"legal_rep_name\":\"张三\"}}", 0, NULL, NULL,
        "basic.legal_rep_name", "\"张三\""},
    {"{\"basic\":{\"legal_rep_name\":\"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五\"}}",
        422, "FIELD_INVALID", "basic.legal_rep_name", NULL, NULL},
    {"{\"basic\":{\"legal_rep_name\":true}}", 400, "FIELD_TYPE",
        "basic.legal_rep_name", NULL, NULL},
    /* basic.legal_rep_id_number: format checked with the type (check_cases) */
    {"{\"basic\":{\"legal_rep_id_number\":\"11010519491231002x\"}}", 0, NULL,
        NULL, "basic.legal_rep_id_number", "\"11010519491231002x\""},
    {"{\"basic\":{\"legal_rep_id_number\":\"123456789012345678901234567890123\"}}",
        422, "ID_NUMBER_INVALID", "basic.legal_rep_id_number", NULL, NULL},
    {"{\"basic\":{\"legal_rep_id_number\":110105}}", 400, "FIELD_TYPE",
        "basic.legal_rep_id_number", NULL, NULL},
    /* basic.legal_rep_phone */
    {"{\"basic\":{\"legal_rep_phone\":\"13912345678\"}}", 0, NULL, NULL,
        "basic.legal_rep_phone", "\"13912345678\""},
    {"{\"basic\":{\"legal_rep_phone\":\"+8613912345678\"}}", 0, NULL, NULL,
        "basic.legal_rep_phone", "\"13912345678\""},
    {"{\"basic\":{\"legal_rep_phone\":\"12912345678\"}}", 422, "PHONE_INVALID",
        "basic.legal_rep_phone", NULL, NULL},
    {"{\"basic\":{\"legal_rep_phone\":\"024-12345678\"}}", 422, "PHONE_INVALID",
        "basic.legal_rep_phone", NULL, NULL},
    {"{\"basic\":{\"legal_rep_phone\":\"1391234567\"}}", 422, "PHONE_INVALID",
        "basic.legal_rep_phone", NULL, NULL},
    /* basic.domicile, basic.address */
    {"{\"basic\":{\"domicile\":\"辽宁省沈阳市和平区南京北街1号\"}}", 0, NULL,
        NULL, "basic.domicile", "\"辽宁省沈阳市和平区南京北街1号\""},
    {"{\"basic\":{\"domicile\":\"\\t住所\"}}", 422, "FIELD_INVALID",
        "basic.domicile", NULL, NULL},
    {"{\"basic\":{\"address\":\"沈阳市和平区南京北街1号\"}}", 0, NULL, NULL,
        "basic.address", "\"沈阳市和平区南京北街1号\""},
    {"{\"basic\":{\"address\":[\"x\"]}}", 400, "FIELD_TYPE", "basic.address",
        NULL, NULL},
    /* basic.region */
    {"{\"basic\":{\"region\":{\"province\":\"辽宁省\",\"city\":\"沈阳市\",\"district\":\"和平区\"}}}",
        0, NULL, NULL, "basic.region",
        "{\"province\":\"辽宁省\",\"city\":\"沈阳市\",\"district\":\"和平区\"}"},
    {"{\"basic\":{\"region\":null}}", 0, NULL, NULL, "basic.region", "null"},
    {"{\"basic\":{\"region\":{\"province\":\"辽东省\",\"city\":\"沈阳市\",\"district\":\"和平区\"}}}",
        422, "FIELD_INVALID", "basic.region.province", NULL, NULL},
    {"{\"basic\":{\"region\":{\"province\":\"辽宁省\",\"district\":\"和平区\"}}}",
        422, "FIELD_REQUIRED", "basic.region.city", NULL, NULL},
    {"{\"basic\":{\"region\":{\"province\":\"辽宁省\",\"city\":\"沈阳市\",\"district\":\"\"}}}",
        422, "FIELD_REQUIRED", "basic.region.district", NULL, NULL},
    {"{\"basic\":{\"region\":{\"province\":\"辽宁省\",\"city\":1,\"district\":\"和平区\"}}}",
        400, "FIELD_TYPE", "basic.region.city", NULL, NULL},
    {"{\"basic\":{\"region\":{\"province\":\"辽宁省\",\"city\":\"沈阳市\",\"district\":\"和平区\",\"street\":\"x\"}}}",
        422, "FIELD_INVALID", "basic.region", NULL, NULL},
    {"{\"basic\":{\"region\":\"辽宁省沈阳市\"}}", 400, "FIELD_TYPE",
        "basic.region", NULL, NULL},
    /* basic.subject_types */
    {"{\"basic\":{\"subject_types\":[\"bidder\"]}}", 0, NULL, NULL,
        "basic.subject_types", "[\"bidder\"]"},
    {"{\"basic\":{\"subject_types\":[\"tenderer\",\"bidder\",\"agency\"]}}", 0,
        NULL, NULL, "basic.subject_types",
        "[\"tenderer\",\"bidder\",\"agency\"]"},
    {"{\"basic\":{\"subject_types\":[]}}", 0, NULL, NULL, "basic.subject_types",
        "null"},
    {"{\"basic\":{\"subject_types\":[\"bidder\",\"bidder\"]}}", 422,
        "FIELD_INVALID", "basic.subject_types", NULL, NULL},
    {"{\"basic\":{\"subject_types\":[\"supplier\"]}}", 422, "FIELD_INVALID",
        "basic.subject_types", NULL, NULL},
    {"{\"basic\":{\"subject_types\":[1]}}", 400, "FIELD_TYPE",
        "basic.subject_types", NULL, NULL},
    {"{\"basic\":{\"subject_types\":\"bidder\"}}", 400, "FIELD_TYPE",
        "basic.subject_types", NULL, NULL},
    /* basic.legal_rep_id_type */
    {"{\"basic\":{\"legal_rep_id_type\":\"passport\"}}", 0, NULL, NULL,
        "basic.legal_rep_id_type", "\"passport\""},
    {"{\"basic\":{\"legal_rep_id_type\":\"driving_licence\"}}", 422,
        "FIELD_INVALID", "basic.legal_rep_id_type", NULL, NULL},
    /* basic.handling_point (existence is the store's) */
    {"{\"basic\":{\"handling_point\":\"LN_SY\"}}", 0, NULL, NULL,
        "basic.handling_point", "\"LN_SY\""},
    {"{\"basic\":{\"handling_point\":\"沈阳市办理点\"}}", 422, "FIELD_INVALID",
        "basic.handling_point", NULL, NULL},
    {"{\"basic\":{\"handling_point\":\"ln_sy\"}}", 422, "FIELD_INVALID",
        "basic.handling_point", NULL, NULL},
    /* basic.files.* */
    {"{\"basic\":{\"files\":{\"business_license\":\"3F2A6C1E-8B7D-4C2A-9E1F-0A1B2C3D4E5F\"}}}",
        0, NULL, NULL, "basic.files.business_license", "\"" FILE_ID "\""},
    {"{\"basic\":{\"files\":{\"legal_rep_id_front\":\"" FILE_ID "\"}}}", 0,
        NULL, NULL, "basic.files.legal_rep_id_front", "\"" FILE_ID "\""},
    {"{\"basic\":{\"files\":{\"legal_rep_id_back\":null}}}", 0, NULL, NULL,
        "basic.files.legal_rep_id_back", "null"},
    {"{\"basic\":{\"files\":{\"legal_rep_id_back\":\"not-a-file\"}}}", 422,
        "FILE_NOT_FOUND", "basic.files.legal_rep_id_back", NULL, NULL},
    {"{\"basic\":{\"files\":{\"photo\":\"" FILE_ID "\"}}}", 422,
        "FIELD_INVALID", "basic.files.photo", NULL, NULL},
    {"{\"basic\":{\"files\":[]}}", 400, "FIELD_TYPE", "basic.files", NULL,
        NULL},
    /* invoice.* */
    {"{\"invoice\":{\"taxpayer_type\":\"general\"}}", 0, NULL, NULL,
        "invoice.taxpayer_type", "\"general\""},
    {"{\"invoice\":{\"taxpayer_type\":\"public_institution\"}}", 0, NULL, NULL,
        "invoice.taxpayer_type", "\"public_institution\""},
    {"{\"invoice\":{\"taxpayer_type\":\"big\"}}", 422, "FIELD_INVALID",
        "invoice.taxpayer_type", NULL, NULL},
    {"{\"invoice\":{\"bank_name\":\"中国工商银行沈阳分行\"}}", 0, NULL, NULL,
        "invoice.bank_name", "\"中国工商银行沈阳分行\""},
    {"{\"invoice\":{\"bank_name\":\" \"}}", 422, "FIELD_INVALID",
        "invoice.bank_name", NULL, NULL},
    {"{\"invoice\":{\"bank_account\":\"6222020200112233445\"}}", 0, NULL, NULL,
        "invoice.bank_account", "\"6222020200112233445\""},
    {"{\"invoice\":{\"bank_account\":\"6222 0202 0011\"}}", 422,
        "FIELD_INVALID", "invoice.bank_account", NULL, NULL},
    {"{\"invoice\":{\"bank_account\":\"12345\"}}", 422, "FIELD_INVALID",
        "invoice.bank_account", NULL, NULL},
    {"{\"invoice\":{\"bank_account\":\"123456789012345678901234567890123\"}}",
        422, "FIELD_INVALID", "invoice.bank_account", NULL, NULL},
    {"{\"invoice\":{\"invoice_phone\":\"024-12345678\"}}", 0, NULL, NULL,
        "invoice.invoice_phone", "\"024-12345678\""},
    {"{\"invoice\":{\"invoice_phone\":\"0411-8765432-123\"}}", 0, NULL, NULL,
        "invoice.invoice_phone", "\"0411-8765432-123\""},
    {"{\"invoice\":{\"invoice_phone\":\"02412345678\"}}", 0, NULL, NULL,
        "invoice.invoice_phone", "\"02412345678\""},
    {"{\"invoice\":{\"invoice_phone\":\"400-123-4567\"}}", 0, NULL, NULL,
        "invoice.invoice_phone", "\"400-123-4567\""},
    {"{\"invoice\":{\"invoice_phone\":\"+8613912345678\"}}", 0, NULL, NULL,
        "invoice.invoice_phone", "\"13912345678\""},
    {"{\"invoice\":{\"invoice_phone\":\"24-12345678\"}}", 422, "PHONE_INVALID",
        "invoice.invoice_phone", NULL, NULL},
    {"{\"invoice\":{\"invoice_phone\":\"024-123456\"}}", 422, "PHONE_INVALID",
        "invoice.invoice_phone", NULL, NULL},
    {"{\"invoice\":{\"invoice_phone\":\"024-12345678-\"}}", 422,
        "PHONE_INVALID", "invoice.invoice_phone", NULL, NULL},
    {"{\"invoice\":{\"invoice_phone\":\"400-123-456\"}}", 422, "PHONE_INVALID",
        "invoice.invoice_phone", NULL, NULL},
    {"{\"invoice\":{\"invoice_address\":\"沈阳市和平区南京北街1号\"}}", 0, NULL,
        NULL, "invoice.invoice_address", "\"沈阳市和平区南京北街1号\""},
    {"{\"invoice\":{\"invoice_address\":\"\\r\"}}", 422, "FIELD_INVALID",
        "invoice.invoice_address", NULL, NULL},
    {"{\"invoice\":{\"contact_name\":\"李四\"}}", 0, NULL, NULL,
        "invoice.contact_name", "\"李四\""},
    {"{\"invoice\":{\"contact_name\":{}}}", 400, "FIELD_TYPE",
        "invoice.contact_name", NULL, NULL},
    {"{\"invoice\":{\"contact_phone\":\"15012345678\"}}", 0, NULL, NULL,
        "invoice.contact_phone", "\"15012345678\""},
    {"{\"invoice\":{\"contact_phone\":\"024-12345678\"}}", 422, "PHONE_INVALID",
        "invoice.contact_phone", NULL, NULL},
    {"{\"invoice\":{\"files\":{\"authorization_letter\":\"" FILE_ID "\"}}}", 0,
        NULL, NULL, "invoice.files.authorization_letter", "\"" FILE_ID "\""},
    {"{\"invoice\":{\"files\":{\"special_invoice_info\":\"" FILE_ID "\"}}}", 0,
        NULL, NULL, "invoice.files.special_invoice_info", "\"" FILE_ID "\""},
    {"{\"invoice\":{\"files\":{\"special_invoice_info\":7}}}", 400,
        "FIELD_TYPE", "invoice.files.special_invoice_info", NULL, NULL},
    {"{\"invoice\":{\"title\":\"x\"}}", 422, "FIELD_INVALID", "invoice.title",
        NULL, NULL},
    /* seal */
    {"{\"seal\":{\"files\":{\"seal_form\":\"" FILE_ID "\"}}}", 0, NULL, NULL,
        "seal.files.seal_form", "\"" FILE_ID "\""},
    {"{\"seal\":{\"files\":{\"seal_form\":\"" FILE_ID "x\"}}}", 422,
        "FILE_NOT_FOUND", "seal.files.seal_form", NULL, NULL},
    {"{\"seal\":{\"image\":\"x\"}}", 422, "FIELD_INVALID", "seal.image", NULL,
        NULL},
    /* the body itself */
    {"{}", 422, "FIELD_REQUIRED", "", NULL, NULL},
    {"{\"id\":\"x\",\"status\":\"approved\",\"history\":[]}", 422,
        "FIELD_REQUIRED", "", NULL, NULL},
    {"{\"basic\":[]}", 400, "FIELD_TYPE", "basic", NULL, NULL},
    {"{\"basic\":null}", 400, "FIELD_TYPE", "basic", NULL, NULL},
    {"{\"extra\":{}}", 422, "FIELD_INVALID", "extra", NULL, NULL},
    {"{\"status\":\"approved\",\"basic\":{\"name\":\"某公司\"}}", 0, NULL, NULL,
        "basic.name", "\"某公司\""},
};

/* The value at a dotted path of a record body (borrowed). */
static json_t *
at_path(json_t *body, const char *path)
{
	char buf[128], *save = NULL;
	json_t *v = body;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = strtok_r(buf, ".", &save); tok && v;
	     tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	return v;
}

static void
test_record_fields(void **state)
{
	for (size_t i = 0; i < sizeof(record_cases) / sizeof(record_cases[0]);
	     i++) {
		const struct record_case *c = &record_cases[i];
		json_t *body = parse_json(c->body), *patch = NULL;
		struct ent_refs refs;
		struct ent_err err;
		int rc = ent_record_parse(body, USCC, &patch, &refs, &err);

		if (c->status == 0) {
			if (rc != 0)
				fail_msg("case %zu %s: refused %s %s", i,
				    c->body, err.code, err.field);
			json_t *want =
			    json_loads(c->want, JSON_DECODE_ANY, NULL);
			json_t *got = at_path(patch, c->path);
			if (got == NULL || !json_equal(got, want)) {
				char *t = json_dumps(patch, JSON_COMPACT);
				fail_msg("case %zu %s: got %s", i, c->body, t);
			}
			json_decref(want);
			json_decref(patch);
		} else {
			if (rc != -1)
				fail_msg("case %zu %s: accepted", i, c->body);
			if (err.status != c->status ||
			    strcmp(err.code, c->code) != 0 ||
			    strcmp(err.field, c->field) != 0)
				fail_msg("case %zu %s: got %d %s %s", i,
				    c->body, err.status, err.code, err.field);
			assert_true(strlen(err.message) > 0);
		}
		json_decref(body);
	}
}

static void
test_record_refs(void **state)
{
	json_t *body =
	    parse_json("{\"basic\":{\"handling_point\":\"LN_DL\",\"files\":{"
	               "\"business_license\":\"" FILE_ID
	               "\",\"legal_rep_id_front\":\"" FILE_ID "\"}},"
	               "\"seal\":{\"files\":{\"seal_form\":null}}}");
	json_t *patch;
	struct ent_refs refs;
	struct ent_err err;

	assert_int_equal(ent_record_parse(body, USCC, &patch, &refs, &err), 0);
	assert_string_equal(refs.handling_point, "LN_DL");
	assert_int_equal(refs.nfiles, 2);
	for (size_t i = 0; i < refs.nfiles; i++) {
		assert_string_equal(refs.files[i].id, FILE_ID);
		assert_int_equal(refs.files[i].images_only,
		    strcmp(refs.files[i].path,
		        "basic.files.business_license") == 0);
	}
	json_decref(patch);
	json_decref(body);
}

/* Merges body into a skeleton and checks the ID type / number pair. */
static int
merge_check(json_t *data, const char *update, json_t **merged,
    struct ent_err *err)
{
	json_t *body = parse_json(update), *patch;
	struct ent_refs refs;
	int rc;

	rc = ent_record_parse(body, USCC, &patch, &refs, err);
	json_decref(body);
	if (rc != 0)
		fail_msg("%s refused: %s", update, err->code);
	*merged = ent_record_merge(data, patch);
	rc = ent_record_check(*merged, patch, err);
	json_decref(patch);
	return rc;
}

static void
test_id_number_against_type(void **state)
{
	static const struct {
		const char *update;
		int ok;
		const char *want; /* stored number when ok */
	} cases[] = {
	    {"{\"basic\":{\"legal_rep_id_number\":\"11010519491231002x\"}}", 1,
	        "11010519491231002X"},
	    {"{\"basic\":{\"legal_rep_id_number\":\"440524188001010014\"}}", 1,
	        "440524188001010014"},
	    {"{\"basic\":{\"legal_rep_id_number\":\"110105194912310029\"}}", 0,
	        NULL},
	    {"{\"basic\":{\"legal_rep_id_number\":\"110101199002300014\"}}", 0,
	        NULL},
	    {"{\"basic\":{\"legal_rep_id_number\":\"E12345678\"}}", 0, NULL},
	    {"{\"basic\":{\"legal_rep_id_type\":\"passport\",\"legal_rep_id_number\":\"E12345678\"}}",
	        1, "E12345678"},
	    {"{\"basic\":{\"legal_rep_id_type\":\"passport\",\"legal_rep_id_number\":\"E1\"}}",
	        0, NULL},
	    {"{\"basic\":{\"legal_rep_id_type\":\"hk_macao_permit\",\"legal_rep_id_number\":\"H1234567 8\"}}",
	        0, NULL},
	    {"{\"basic\":{\"legal_rep_id_type\":null,\"legal_rep_id_number\":\"E12345678\"}}",
	        0, NULL},
	};
	json_t *skeleton = ent_record_skeleton(USCC, "某公司");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ent_err err;
		json_t *merged;
		int rc = merge_check(skeleton, cases[i].update, &merged, &err);

		if (cases[i].ok) {
			if (rc != 0)
				fail_msg("case %zu refused: %s", i,
				    err.message);
			assert_string_equal(json_string_value(json_object_get(
			                        json_object_get(merged,
			                            "basic"),
			                        "legal_rep_id_number")),
			    cases[i].want);
		} else {
			if (rc == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err.code, "ID_NUMBER_INVALID");
			assert_string_equal(err.field,
			    "basic.legal_rep_id_number");
		}
		json_decref(merged);
	}

	/* A stored passport number is re-checked when the type changes. */
	struct ent_err err;
	json_t *step1, *step2;
	assert_int_equal(merge_check(skeleton,
	                     "{\"basic\":{\"legal_rep_id_type\":\"passport\","
	                     "\"legal_rep_id_number\":\"E12345678\"}}",
	                     &step1, &err),
	    0);
	assert_int_equal(
	    merge_check(step1,
	        "{\"basic\":{\"legal_rep_id_type\":\"resident_id_card\"}}",
	        &step2, &err),
	    -1);
	assert_string_equal(err.code, "ID_NUMBER_INVALID");
	json_decref(step2);
	/* ... but not when an unrelated field changes. */
	assert_int_equal(merge_check(step1, "{\"basic\":{\"name\":\"新名称\"}}",
	                     &step2, &err),
	    0);
	json_decref(step2);
	json_decref(step1);
	json_decref(skeleton);
}

static void
test_merge_keeps_other_fields(void **state)
{
	json_t *skeleton = ent_record_skeleton(USCC, NULL), *a, *b;
	struct ent_err err;

	assert_null(json_string_value(at_path(skeleton, "basic.name")));
	assert_string_equal(json_string_value(at_path(skeleton, "basic.uscc")),
	    USCC);
	assert_int_equal(merge_check(skeleton,
	                     "{\"basic\":{\"name\":\"甲\",\"files\":{"
	                     "\"business_license\":\"" FILE_ID
	                     "\"}},\"invoice\":{\"bank_name\":\"乙\"}}",
	                     &a, &err),
	    0);
	assert_int_equal(
	    merge_check(a,
	        "{\"basic\":{\"files\":{\"legal_rep_id_front\":\"" FILE_ID
	        "\"}},\"invoice\":{\"bank_name\":null}}",
	        &b, &err),
	    0);
	assert_string_equal(json_string_value(at_path(b, "basic.name")), "甲");
	assert_string_equal(json_string_value(
	                        at_path(b, "basic.files.business_license")),
	    FILE_ID);
	assert_string_equal(json_string_value(
	                        at_path(b, "basic.files.legal_rep_id_front")),
	    FILE_ID);
	assert_true(json_is_null(at_path(b, "invoice.bank_name")));
	assert_string_equal(json_string_value(
	                        at_path(b, "basic.legal_rep_id_type")),
	    "resident_id_card");
	/* The record's shape: every field present, null where not filled. */
	assert_true(json_is_null(at_path(b, "seal.files.seal_form")));
	assert_true(
	    json_is_null(at_path(b, "invoice.files.special_invoice_info")));
	json_decref(a);
	json_decref(b);
	json_decref(skeleton);
}

static const char complete_record[] =
    "{\"basic\":{\"name\":\"辽宁演示科技有限公司\",\"uscc\":\"" USCC "\","
    "\"registered_capital_fen\":100000000,\"legal_rep_name\":\"张三\","
    "\"legal_rep_id_type\":\"resident_id_card\",\"legal_rep_id_number\":\"11010519491231002X\","
    "\"legal_rep_phone\":\"13912345678\",\"domicile\":\"沈阳市和平区\",\"region\":{"
    "\"province\":\"辽宁省\",\"city\":\"沈阳市\",\"district\":\"和平区\"},\"address\":\"沈阳市和平区\","
    "\"subject_types\":[\"bidder\"],\"handling_point\":\"LN_SY\",\"files\":{"
    "\"legal_rep_id_front\":\"" FILE_ID "\",\"legal_rep_id_back\":\"" FILE_ID
    "\","
    "\"business_license\":\"" FILE_ID "\"}},"
    "\"invoice\":{\"taxpayer_type\":\"small_scale\",\"bank_name\":\"工商银行\","
    "\"bank_account\":\"6222020200112233445\",\"invoice_phone\":\"024-12345678\","
    "\"invoice_address\":\"沈阳市\",\"contact_name\":\"李四\",\"contact_phone\":\"15012345678\","
    "\"files\":{\"authorization_letter\":\"" FILE_ID
    "\",\"special_invoice_info\":null}},"
    "\"seal\":{\"files\":{\"seal_form\":\"" FILE_ID "\"}}}";

static int
missing_has(json_t *missing, const char *path)
{
	size_t i;
	json_t *v;

	json_array_foreach(missing, i,
	    v) if (strcmp(json_string_value(v), path) == 0) return 1;
	return 0;
}

static void
test_missing(void **state)
{
	json_t *skeleton = ent_record_skeleton(USCC, "辽宁演示科技有限公司");
	json_t *missing = ent_record_missing(skeleton);
	static const char *const all[] = {"basic.registered_capital_fen",
	    "basic.legal_rep_name", "basic.legal_rep_id_number",
	    "basic.legal_rep_phone", "basic.domicile", "basic.region",
	    "basic.address", "basic.subject_types", "basic.handling_point",
	    "basic.files.legal_rep_id_front", "basic.files.legal_rep_id_back",
	    "basic.files.business_license", "invoice.taxpayer_type",
	    "invoice.bank_name", "invoice.bank_account",
	    "invoice.invoice_phone", "invoice.invoice_address",
	    "invoice.contact_name", "invoice.contact_phone",
	    "invoice.files.authorization_letter", "seal.files.seal_form"};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!missing_has(missing, all[i]))
			fail_msg("%s not reported missing", all[i]);
	assert_int_equal(json_array_size(missing),
	    sizeof(all) / sizeof(all[0]));
	assert_false(missing_has(missing, "basic.name"));
	assert_false(
	    missing_has(missing, "invoice.files.special_invoice_info"));
	json_decref(missing);

	json_t *full = parse_json(complete_record);
	missing = ent_record_missing(full);
	assert_int_equal(json_array_size(missing), 0);
	json_decref(missing);

	/* A general taxpayer (专票) also needs the special invoice info. */
	json_object_set_new(json_object_get(full, "invoice"), "taxpayer_type",
	    json_string("general"));
	missing = ent_record_missing(full);
	assert_int_equal(json_array_size(missing), 1);
	assert_true(missing_has(missing, "invoice.files.special_invoice_info"));
	json_decref(missing);

	/* An empty subject type list counts as missing. */
	json_object_set_new(json_object_get(full, "basic"), "subject_types",
	    json_array());
	missing = ent_record_missing(full);
	assert_true(missing_has(missing, "basic.subject_types"));
	json_decref(missing);
	json_decref(full);
	json_decref(skeleton);
}

struct profile_case {
	const char *body;
	int status;
	const char *code;
	const char *field;
};

static const struct profile_case profile_cases[] = {
    {"{\"name\":\"张三\"}", 0, NULL, NULL},
    {"{\"name\":\"张三\",\"id_number\":\"11010519491231002x\",\"email\":\"zhang.san@example.com\","
     "\"id_card_front_file\":\"" FILE_ID "\",\"id_card_back_file\":\"" FILE_ID
     "\"}",
        0, NULL, NULL},
    {"{\"name\":\"张三\",\"status\":\"completed\",\"email\":null}", 0, NULL,
        NULL},
    {"{}", 422, "FIELD_REQUIRED", ""},
    {"{\"email\":null}", 422, "FIELD_REQUIRED", ""},
    {"{\"name\":\"\"}", 422, "FIELD_REQUIRED", "name"},
    {"{\"name\":\" 张三\"}", 422, "FIELD_INVALID", "name"},
    {"{\"name\":5}", 400, "FIELD_TYPE", "name"},
    {"{\"id_number\":\"110105194912310029\"}", 422, "ID_NUMBER_INVALID",
        "id_number"},
    {"{\"id_number\":\"110101199002300014\"}", 422, "ID_NUMBER_INVALID",
        "id_number"},
    {"{\"id_number\":\"11010519491231002\"}", 422, "ID_NUMBER_INVALID",
        "id_number"},
    {"{\"email\":\"zhang@\"}", 422, "EMAIL_INVALID", "email"},
    {"{\"email\":\"zhang san@example.com\"}", 422, "EMAIL_INVALID", "email"},
    {"{\"id_card_front_file\":\"12345\"}", 422, "FILE_NOT_FOUND",
        "id_card_front_file"},
    {"{\"id_card_back_file\":[]}", 400, "FIELD_TYPE", "id_card_back_file"},
    {"{\"phone\":\"13912345678\"}", 422, "FIELD_INVALID", "phone"},
};

static void
test_profile(void **state)
{
	for (size_t i = 0; i < sizeof(profile_cases) / sizeof(profile_cases[0]);
	     i++) {
		const struct profile_case *c = &profile_cases[i];
		json_t *body = parse_json(c->body);
		struct ent_profile_update u;
		struct ent_err err;
		int rc = ent_profile_parse(body, &u, &err);

		if (c->status == 0 && rc != 0)
			fail_msg("case %zu %s: refused %s", i, c->body,
			    err.code);
		if (c->status != 0 &&
		    (rc == 0 || err.status != c->status ||
		        strcmp(err.code, c->code) != 0 ||
		        strcmp(err.field, c->field) != 0))
			fail_msg("case %zu %s: got rc %d %d %s %s", i, c->body,
			    rc, err.status, rc ? err.code : "-",
			    rc ? err.field : "-");
		json_decref(body);
	}
	json_t *body = parse_json(
	    "{\"id_number\":\"11010519491231002x\",\"id_card_front_file\":"
	    "\"3F2A6C1E-8B7D-4C2A-9E1F-0A1B2C3D4E5F\"}");
	struct ent_profile_update u;
	struct ent_err err;
	assert_int_equal(ent_profile_parse(body, &u, &err), 0);
	assert_string_equal(u.id_number, "11010519491231002X");
	assert_string_equal(u.id_card_front_file, FILE_ID);
	assert_null(u.name);
	assert_string_equal(u.id_card_back_file, "");
	json_decref(body);
}

static void
test_opinion(void **state)
{
	static const struct {
		const char *body;
		int required;
		const char *code; /* NULL: accepted */
		int present;
	} cases[] = {
	    {"{\"opinion\":\"统一社会信用代码与营业执照不一致\"}", 1, NULL, 1},
	    {"{\"opinion\":\"第一行\\n第二行\"}", 1, NULL, 1},
	    {"{}", 1, "OPINION_REQUIRED", 0},
	    {"{\"opinion\":null}", 1, "OPINION_REQUIRED", 0},
	    {"{\"opinion\":\"\"}", 1, "OPINION_REQUIRED", 0},
	    {"{\"opinion\":\" \\n\\t　\"}", 1, "OPINION_REQUIRED", 0},
	    {"{\"opinion\":42}", 1, "FIELD_TYPE", 0},
	    {"{\"opinion\":\"a\\u0001b\"}", 1, "FIELD_INVALID", 0},
	    {"{}", 0, NULL, 0},
	    {"{\"opinion\":\"  \"}", 0, NULL, 0},
	    {"{\"opinion\":\"同意\"}", 0, NULL, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *body = parse_json(cases[i].body);
		const char *out;
		struct ent_err err;
		int rc = ent_opinion_parse(body, cases[i].required, &out, &err);

		if (cases[i].code == NULL) {
			if (rc != 0)
				fail_msg("case %zu refused: %s", i, err.code);
			assert_int_equal(out != NULL, cases[i].present);
		} else {
			if (rc == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err.code, cases[i].code);
			assert_string_equal(err.field, "opinion");
		}
		json_decref(body);
	}
	/* 1000 characters pass, 1001 do not. */
	char *text = malloc(1001 * 3 + 1);
	for (int i = 0; i < 1001; i++)
		memcpy(text + 3 * i, "审", 3);
	text[1000 * 3] = '\0';
	json_t *body = json_pack("{s:s}", "opinion", text);
	const char *out;
	struct ent_err err;
	assert_int_equal(ent_opinion_parse(body, 1, &out, &err), 0);
	json_decref(body);
	for (int i = 0; i < 1001; i++)
		memcpy(text + 3 * i, "审", 3);
	text[1001 * 3] = '\0';
	body = json_pack("{s:s}", "opinion", text);
	assert_int_equal(ent_opinion_parse(body, 1, &out, &err), -1);
	assert_string_equal(err.code, "FIELD_INVALID");
	json_decref(body);
	free(text);
}

static void
test_file_types(void **state)
{
	static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10,
	    'J', 'F', 'I', 'F'};
	static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1A, '\n', 0, 0};
	static const char pdf[] = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
	static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a'};

	assert_string_equal(ent_file_content_type("image/jpeg"), "image/jpeg");
	assert_string_equal(ent_file_content_type("IMAGE/PNG"), "image/png");
	assert_string_equal(ent_file_content_type(
	                        "application/pdf; charset=binary"),
	    "application/pdf");
	assert_string_equal(ent_file_content_type(" image/jpeg ;x=y"),
	    "image/jpeg");
	assert_null(ent_file_content_type("image/jpg"));
	assert_null(ent_file_content_type("image/gif"));
	assert_null(ent_file_content_type("image/jpegx"));
	assert_null(ent_file_content_type(""));
	assert_null(ent_file_content_type(NULL));

	assert_string_equal(ent_file_sniff(jpeg, sizeof(jpeg)), "image/jpeg");
	assert_string_equal(ent_file_sniff(png, sizeof(png)), "image/png");
	assert_string_equal(ent_file_sniff(pdf, strlen(pdf)),
	    "application/pdf");
	assert_null(ent_file_sniff(gif, sizeof(gif)));
	assert_null(ent_file_sniff(jpeg, 2));
	assert_null(ent_file_sniff(png, 7));
	assert_null(ent_file_sniff("%PDF", 4));
	assert_null(ent_file_sniff("", 0));
}

static void
test_review_sms_text(void **state)
{
	char text[1024], opinion[1200];

	ent_review_sms_text(text, sizeof(text), FILE_ID, 1, 0,
	    "辽宁演示科技有限公司", NULL);
	assert_non_null(strstr(text,
	    "purpose=review_result record=" FILE_ID " result=approved "));
	assert_non_null(strstr(text, "（辽宁演示科技有限公司）已审核通过"));
	ent_review_sms_text(text, sizeof(text), FILE_ID, 0, 1, "某公司",
	    "第一行\n第二行\t!");
	assert_non_null(strstr(text, "result=rejected"));
	assert_non_null(strstr(text,
	    "企业信息变更（某公司）审核不通过，处理意见：第一行 第二行 !。"));
	assert_null(strchr(text, '\n'));
	/* A long opinion is cut on a character boundary: "x" + 399 × "长"
	 * keeps "x" and 99 characters (298 bytes) of the 300 allowed. */
	opinion[0] = 'x';
	for (int i = 0; i < 399; i++)
		memcpy(opinion + 1 + 3 * i, "长", 3);
	opinion[1 + 399 * 3] = '\0';
	ent_review_sms_text(text, sizeof(text), FILE_ID, 0, 0, "某公司",
	    opinion);
	const char *start = strstr(text, "处理意见：") + strlen("处理意见：");
	const char *end = strstr(start, "。请登录");
	assert_non_null(end);
	assert_int_equal(end - start, 298);
	assert_true(strlen(text) < sizeof(text) - 1);
}

/* ---- administrator applications ---- */

static const struct app_case {
	const char *body;
	int status; /* 0: accepted */
	const char *code, *field;
} app_cases[] = {
    {"{\"enterprise_name\":\"辽宁演示科技有限公司\",\"uscc\":\"91350100m000100y43\","
     "\"id_number\":\"11010519491231002x\",\"authorization_file_id\":\"3F2A6C1E-8B7D-4C2A-9E1F-0A1B2C3D4E5F\"}",
        0, NULL, NULL},
    {"{\"uscc\":\"" USCC "\",\"id_number\":\"11010519491231002X\","
     "\"authorization_file_id\":\"" FILE_ID "\"}",
        422, "FIELD_REQUIRED", "enterprise_name"},
    {"{\"enterprise_name\":\" 某公司\",\"uscc\":\"" USCC "\","
     "\"id_number\":\"11010519491231002X\",\"authorization_file_id\":\"" FILE_ID
     "\"}",
        422, "FIELD_INVALID", "enterprise_name"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":\"91350100M000100Y44\","
     "\"id_number\":\"11010519491231002X\",\"authorization_file_id\":\"" FILE_ID
     "\"}",
        422, "USCC_INVALID", "uscc"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":7,"
     "\"id_number\":\"11010519491231002X\",\"authorization_file_id\":\"" FILE_ID
     "\"}",
        400, "FIELD_TYPE", "uscc"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":\"" USCC "\","
     "\"id_number\":\"110105194912310029\",\"authorization_file_id\":\"" FILE_ID
     "\"}",
        422, "ID_NUMBER_INVALID", "id_number"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":\"" USCC "\","
     "\"id_number\":\"11010519491231002X\",\"authorization_file_id\":\"x\"}",
        422, "FILE_NOT_FOUND", "authorization_file_id"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":\"" USCC "\","
     "\"id_number\":\"11010519491231002X\"}",
        422, "FIELD_REQUIRED", "authorization_file_id"},
    {"{\"enterprise_name\":\"某公司\",\"uscc\":\"" USCC "\","
     "\"id_number\":\"11010519491231002X\",\"authorization_file_id\":\"" FILE_ID
     "\","
     "\"role\":\"admin\"}",
        422, "FIELD_INVALID", "role"},
};

static void
test_admin_application(void **state)
{
	for (size_t i = 0; i < sizeof(app_cases) / sizeof(app_cases[0]); i++) {
		const struct app_case *c = &app_cases[i];
		struct ent_admin_application a;
		struct ent_err err;
		json_t *body = parse_json(c->body);
		int rc = ent_admin_application_parse(body, &a, &err);

		if (c->status == 0) {
			assert_int_equal(rc, 0);
			assert_string_equal(a.uscc, USCC);
			assert_string_equal(a.id_number, "11010519491231002X");
			assert_string_equal(a.authorization_file_id, FILE_ID);
			assert_string_equal(a.enterprise_name,
			    "辽宁演示科技有限公司");
		} else {
			if (rc != -1 || err.status != c->status ||
			    strcmp(err.code, c->code) != 0 ||
			    strcmp(err.field, c->field) != 0)
				fail_msg("case %zu: %d %s %s", i, err.status,
				    rc ? err.code : "accepted", err.field);
		}
		json_decref(body);
	}
}

static void
test_record_public(void **state)
{
	json_t *full = parse_json(
	    "{\"id\":\"" FILE_ID "\",\"uscc\":\"" USCC
	    "\",\"status\":\"approved\","
	    "\"basic\":{\"name\":\"某公司\",\"handling_point\":\"LN_SY\","
	    "\"legal_rep_id_number\":\"11010519491231002X\",\"files\":{}},"
	    "\"invoice\":{\"bank_account\":\"3301001234567890123\"},"
	    "\"history\":[],\"approved_at\":\"2026-01-01T00:00:00Z\"}");
	json_t *want = parse_json(
	    "{\"id\":\"" FILE_ID "\",\"uscc\":\"" USCC
	    "\",\"status\":\"approved\","
	    "\"name\":\"某公司\",\"handling_point\":\"LN_SY\",\"invoice_title\":\"某公司\","
	    "\"taxpayer_id\":\"" USCC
	    "\",\"approved_at\":\"2026-01-01T00:00:00Z\"}");
	json_t *pub = ent_record_public(full);

	assert_true(json_equal(pub, want));
	json_decref(pub);
	json_decref(want);
	json_decref(full);
}

static void
test_admin_application_sms_text(void **state)
{
	char text[1024];

	ent_admin_application_sms_text(text, sizeof(text), FILE_ID, 1, "某公司",
	    NULL);
	assert_non_null(strstr(text,
	    "purpose=admin_application application=" FILE_ID
	    " result=approved "));
	ent_admin_application_sms_text(text, sizeof(text), FILE_ID, 0, "某公司",
	    "未盖章\n请重传");
	assert_non_null(strstr(text, "result=rejected"));
	assert_non_null(strstr(text, "处理意见：未盖章 请重传"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_fields),
	    cmocka_unit_test(test_record_refs),
	    cmocka_unit_test(test_id_number_against_type),
	    cmocka_unit_test(test_merge_keeps_other_fields),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_profile),
	    cmocka_unit_test(test_opinion),
	    cmocka_unit_test(test_file_types),
	    cmocka_unit_test(test_review_sms_text),
	    cmocka_unit_test(test_admin_application),
	    cmocka_unit_test(test_record_public),
	    cmocka_unit_test(test_admin_application_sms_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
