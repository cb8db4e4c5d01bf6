/* Unit tests for licence: normalisation (full/half-width, spaces, dates,
 * terms, 万元 and 大写 amounts), field extraction from OCR lines (stray
 * marks, the USCC's check character, unreadable and non-licence verdicts)
 * and the per-field comparison with a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "licence.h"

static void
test_norm_text(void **state)
{
	char out[64];

	assert_int_equal(lic_norm_text("福州 华信　科技（有限）公司。", out,
	                     sizeof(out)),
	    0);
	assert_string_equal(out, "福州华信科技(有限)公司");
	assert_int_equal(lic_norm_text("ＡＢｃ１２ x", out, sizeof(out)), 0);
	assert_string_equal(out, "ABC12X");
	assert_int_equal(lic_norm_text("太长了太长了", out, 8), -1);
}

static void
test_norm_date(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"2020年1月2日", "2020-01-02"},
	    {"2020年01月02日", "2020-01-02"},
	    {"2020-01-02", "2020-01-02"},
	    {"２０２０.1.2", "2020-01-02"},
	    {"2020/01/02", "2020-01-02"},
	    {"2020 年 1 月 2 日", "2020-01-02"},
	    {"2020年2月30日", NULL},
	    {"2024年2月29日", "2024-02-29"},
	    {"2023年2月29日", NULL},
	    {"20年1月2日", NULL},
	    {"2020年1月2日起", NULL},
	    {"长期", NULL},
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = lic_norm_date(cases[i].in, out, sizeof(out));

		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("%s: accepted as %s", cases[i].in,
				    out);
		} else if (rc != 0 || strcmp(out, cases[i].want) != 0)
			fail_msg("%s: got %s", cases[i].in, rc ? "-1" : out);
	}
}

static void
test_norm_term(void **state)
{
	char out[48];

	assert_int_equal(lic_norm_term("2016年03月08日至长期", out,
	                     sizeof(out)),
	    0);
	assert_string_equal(out, "2016-03-08/长期");
	assert_int_equal(lic_norm_term("2016年3月8日 至 2046年3月7日", out,
	                     sizeof(out)),
	    0);
	assert_string_equal(out, "2016-03-08/2046-03-07");
	assert_int_equal(lic_norm_term("2016-03-08至永久", out, sizeof(out)),
	    0);
	assert_string_equal(out, "2016-03-08/长期");
	assert_int_equal(lic_norm_term("长期", out, sizeof(out)), 0);
	assert_string_equal(out, "长期");
	assert_int_equal(lic_norm_term("2016年3月8日", out, sizeof(out)), -1);
	assert_int_equal(lic_norm_term("至长期", out, sizeof(out)), -1);
}

static void
test_norm_capital(void **state)
{
	static const struct {
		const char *in;
		long long fen; /* -1 refused */
	} cases[] = {
	    {"500万元人民币", 500000000LL},
	    {"人民币500万元", 500000000LL},
	    {"人民币 500 万元整", 500000000LL},
	    {"500.5万元", 500500000LL},
	    {"1,000万元", 1000000000LL},
	    {"5000000元", 500000000LL},
	    {"１亿元", 10000000000LL},
	    {"人民币伍佰万元整", 500000000LL},
	    {"壹仟贰佰叁拾万元整", 1230000000LL},
	    {"叁亿零伍拾万元", 30050000000LL},
	    {"拾万元", 10000000LL},
	    {"伍拾元", 5000LL},
	    {"500万美元", -1},
	    {"500", -1},
	    {"五百万块", -1},
	    {"", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long fen = -7;
		int rc = lic_norm_capital(cases[i].in, &fen);

		if (cases[i].fen < 0) {
			if (rc != -1)
				fail_msg("%s: accepted as %lld", cases[i].in,
				    fen);
		} else if (rc != 0 || fen != cases[i].fen)
			fail_msg("%s: got rc %d fen %lld", cases[i].in, rc,
			    fen);
	}
}

/* What Tesseract returns for a clean licence, with its usual marks. */
static const struct lic_line clean[] = {
    {"营业执照", 90},
    {"(副 本)", 88},
    {"统一社会信用代码 ”911101055YY7AP2TTQ", 91},
    {"名    称 福州星河建设工程有限公司", 93},
    {"类    型”其他有限责任公司《国有独资〉", 90},
    {"住    所 “北京市朝阳区铜盘路244号科技园", 89},
    {"法定代表人 陈敏红", 92},
    {"注册资本   50万元人民币", 94},
    {"成立日期   2020年10月06日", 95},
    {"营业期限   2020年10月06日至2040年10月05日", 93},
    {"经营范围     软件开发; 信息系统集成服务", 88},
    {"2022年04月09日", 80},
};

static void
test_extract_clean(void **state)
{
	struct lic_read r;

	lic_extract(clean, sizeof(clean) / sizeof(clean[0]), &r);
	assert_null(lic_verdict(&r));
	assert_int_equal(r.labels, 8);
	assert_string_equal(r.value[LIC_NAME], "福州星河建设工程有限公司");
	assert_string_equal(r.value[LIC_USCC], "911101055YY7AP2TTQ");
	assert_string_equal(r.value[LIC_TYPE], "其他有限责任公司(国有独资)");
	assert_string_equal(r.value[LIC_LEGAL_REP], "陈敏红");
	assert_string_equal(r.value[LIC_CAPITAL], "50万元人民币");
	assert_string_equal(r.value[LIC_FOUNDED], "2020年10月06日");
	assert_string_equal(r.value[LIC_DOMICILE],
	    "北京市朝阳区铜盘路244号科技园");
	assert_string_equal(r.value[LIC_TERM],
	    "2020年10月06日至2040年10月05日");
	assert_int_equal(r.confidence[LIC_NAME], 93);
	assert_int_equal(r.uscc_invalid, 0);
}

static void
test_extract_uscc(void **state)
{
	struct lic_read r;
	/* O read for 0 is repaired; one wrong character fails the check. */
	struct lic_line ok[] = {{"统一社会信用代码:9111O1055YY7AP2TTQ", 70},
	    {"名称 某公司", 80}};
	struct lic_line bad[] = {{"统一社会信用代码 911101055YY7AP2TTR", 95},
	    {"名称 某公司", 80}};
	struct lic_line shortc[] = {{"信用代码 91110105", 95},
	    {"名称 某公司", 80}};

	lic_extract(ok, 2, &r);
	assert_string_equal(r.value[LIC_USCC], "911101055YY7AP2TTQ");
	lic_extract(bad, 2, &r);
	assert_string_equal(r.value[LIC_USCC], "");
	assert_int_equal(r.confidence[LIC_USCC], 0);
	assert_int_equal(r.uscc_invalid, 1);
	assert_int_equal(r.labels, 2);
	lic_extract(shortc, 2, &r);
	assert_string_equal(r.value[LIC_USCC], "");
	assert_int_equal(r.uscc_invalid, 1);
}

static void
test_uscc_second_read(void **state)
{
	struct lic_read r;
	/* chi_sim's 8 read as S fails the check; the code model's read holds */
	struct lic_line first[] = {{"统一社会信用代码 ”91350102RASWYWNKWJ", 86},
	    {"名称 某公司", 80}};
	struct lic_line good[] = {{"统一社会信用代码 911101055YY7AP2TTQ", 90},
	    {"名称 某公司", 80}};

	lic_extract(first, 2, &r);
	assert_string_equal(r.value[LIC_USCC], "");
	lic_uscc_read(&r, "91350102RA8WYWNKWJ\n", 91);
	assert_string_equal(r.value[LIC_USCC], "91350102RA8WYWNKWJ");
	assert_int_equal(r.confidence[LIC_USCC], 91);
	assert_int_equal(r.uscc_invalid, 0);
	/* an invalid second read changes nothing */
	lic_extract(good, 2, &r);
	lic_uscc_read(&r, "911101055YY7AP2TTR", 95);
	assert_string_equal(r.value[LIC_USCC], "911101055YY7AP2TTQ");
	/* agreeing reads stand */
	lic_uscc_read(&r, "911101055YY7AP2TTQ", 95);
	assert_string_equal(r.value[LIC_USCC], "911101055YY7AP2TTQ");
	/* two valid reads that disagree: unread, never a guess */
	lic_uscc_read(&r, "91350102RA8WYWNKWJ", 95);
	assert_string_equal(r.value[LIC_USCC], "");
	assert_int_equal(r.uscc_conflict, 1);
	lic_uscc_read(&r, "91350102RA8WYWNKWJ", 95);
	assert_string_equal(r.value[LIC_USCC], "");
}

static void
test_verdicts(void **state)
{
	struct lic_read r;
	struct lic_line blurred[] = {{"营 业 执", 30}, {"ee", 20}};
	struct lic_line other[] =
	    {{"中华人民共和国居民身份证签发机关福州市公安局", 90},
	        {"有效期限二〇一六年至二〇三六年", 90}};

	lic_extract(blurred, 2, &r);
	assert_string_equal(lic_verdict(&r), "unreadable");
	lic_extract(NULL, 0, &r);
	assert_string_equal(lic_verdict(&r), "unreadable");
	lic_extract(other, 2, &r);
	assert_string_equal(lic_verdict(&r), "not_a_licence");
}

static json_t *
record(const char *name, const char *uscc, long long fen)
{
	return json_pack("{s:{s:s, s:s, s:s, s:I, s:s}}", "basic", "name", name,
	    "uscc", uscc, "legal_rep_name", "陈敏红", "registered_capital_fen",
	    (json_int_t)fen, "domicile", "北京市朝阳区铜盘路244号科技园");
}

static const char *
result_of(json_t *check, const char *field)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(check, "fields"), i,
	    e) if (strcmp(json_string_value(json_object_get(e, "field")),
	               field) ==
	    0) return json_string_value(json_object_get(e, "result"));
	return NULL;
}

static void
test_compare(void **state)
{
	struct lic_read r;
	json_t *fields, *data, *check;

	lic_extract(clean, sizeof(clean) / sizeof(clean[0]), &r);
	fields = lic_read_json(&r);
	/* full-width and spaces in the record still match; 50万元 = 5000万分 */
	data = record("福州星河建设工程有限公司 ", "911101055yy7ap2ttq",
	    50000000LL);
	check = lic_compare("done", NULL, fields, data);
	assert_false(json_is_true(json_object_get(check, "flagged")));
	assert_string_equal(result_of(check, "name"), "match");
	assert_string_equal(result_of(check, "uscc"), "match");
	assert_string_equal(result_of(check, "legal_rep"), "match");
	assert_string_equal(result_of(check, "registered_capital"), "match");
	assert_string_equal(result_of(check, "domicile"), "match");
	assert_string_equal(result_of(check, "type"), "not_compared");
	assert_string_equal(result_of(check, "founded"), "not_compared");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(fields,
	                                            "founded"),
	                            "normalised")),
	    "2020-10-06");
	json_decref(check);
	json_decref(data);

	/* another name: mismatch with both values, flagged */
	data = record("福州星河科技有限公司", "911101055YY7AP2TTQ", 60000000LL);
	check = lic_compare("done", NULL, fields, data);
	assert_true(json_is_true(json_object_get(check, "flagged")));
	assert_string_equal(result_of(check, "name"), "mismatch");
	assert_string_equal(result_of(check, "registered_capital"), "mismatch");
	json_t *e = json_array_get(json_object_get(check, "fields"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "record")),
	    "福州星河科技有限公司");
	assert_string_equal(json_string_value(json_object_get(e, "recognised")),
	    "福州星河建设工程有限公司");
	json_decref(check);

	/* a low-confidence read is unreadable, never a mismatch */
	json_object_set_new(json_object_get(fields, "name"), "confidence",
	    json_integer(LIC_MIN_CONFIDENCE - 1));
	check = lic_compare("done", NULL, fields, data);
	assert_string_equal(result_of(check, "name"), "unreadable");
	json_decref(check);

	/* failed and pending recognitions */
	check = lic_compare("failed", "not_a_licence", NULL, data);
	assert_string_equal(result_of(check, "name"), "unreadable");
	assert_string_equal(json_string_value(json_object_get(check, "reason")),
	    "not_a_licence");
	assert_non_null(json_string_value(json_object_get(check, "message")));
	assert_false(json_is_true(json_object_get(check, "flagged")));
	json_decref(check);
	check = lic_compare(NULL, NULL, NULL, data);
	assert_string_equal(json_string_value(json_object_get(check, "status")),
	    "none");
	assert_string_equal(result_of(check, "uscc"), "pending");
	json_decref(check);
	json_decref(data);
	json_decref(fields);

	/* a USCC failing its check is unreadable */
	struct lic_line bad[] = {{"统一社会信用代码 911101055YY7AP2TTR", 95},
	    {"名称 福州星河建设工程有限公司", 90}};
	lic_extract(bad, 2, &r);
	fields = lic_read_json(&r);
	data = record("福州星河建设工程有限公司", "911101055YY7AP2TTQ", 1);
	check = lic_compare("done", NULL, fields, data);
	assert_string_equal(result_of(check, "uscc"), "unreadable");
	assert_string_equal(result_of(check, "name"), "match");
	json_decref(check);
	json_decref(data);
	json_decref(fields);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_norm_text),
	    cmocka_unit_test(test_norm_date),
	    cmocka_unit_test(test_norm_term),
	    cmocka_unit_test(test_norm_capital),
	    cmocka_unit_test(test_extract_clean),
	    cmocka_unit_test(test_extract_uscc),
	    cmocka_unit_test(test_uscc_second_read),
	    cmocka_unit_test(test_verdicts),
	    cmocka_unit_test(test_compare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
