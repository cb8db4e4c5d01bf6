/* Unit tests for the notice texts: every kind renders, required params are
 * named when missing, user text is cleaned and cut on a character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "notice_text.h"

static const struct {
	const char *kind;
	const char *params;
	const char *title_has;
	const char *body_has;
	const char *sms_has;
} cases[] = {
    {"cert.expiring",
        "{\"serial\":\"0A1B\",\"not_after\":\"2027-01-31T00:00:00Z\","
        "\"days_left\":30,\"holder_name\":\"张三\"}",
        "即将到期", "还剩 30 天", "purpose=notice kind=cert.expiring"},
    {"cert.expiring",
        "{\"serial\":\"0A1B\",\"not_after\":\"2027-01-31\",\"days_left\":0}",
        "今天到期", "今天（2027-01-31）", "serial=0A1B"},
    {"cert.expiring",
        "{\"serial\":\"0A1B\",\"not_after\":\"2027-01-31\",\"days_left\":-30}",
        "已过期", "过期 30 天", "serial=0A1B"},
    {"cert.expiry_digest",
        "{\"quote_id\":\"q-1\",\"total_fen\":12345,\"valid_until\":"
        "\"2027-01-08T00:00:00Z\",\"certificates\":[{\"holder_name\":"
        "\"张三\",\"not_after\":\"2027-01-31\"},{\"holder_name\":\"李四\","
        "\"not_after\":\"2027-02-01\"}]}",
        "到期提醒", "有效期至 2027-01-08", "quote=q-1"},
    {"renewal.ready",
        "{\"serial\":\"77\",\"holder_name\":\"张三\",\"order_number\":"
        "\"PL1\",\"platforms\":[\"LN_JSGC\"]}",
        "请更新", "（订单 PL1）", "kind=renewal.ready"},
    {"renewal.ready", "{\"order_number\":\"PL2\"}", "请更新",
        "您的数字证书已付款延期（订单 PL2）", "kind=renewal.ready"},
    {"renewal.unused", "{\"serial\":\"77\",\"days_since_paid\":3}", "尚未更新",
        "3 天", "kind=renewal.unused"},
    {"order.expiring",
        "{\"order_number\":\"CO2027\",\"total_fen\":50000,\"expires_at\":"
        "\"2027-01-01T10:00:00Z\"}",
        "失效", "500.00 元", "order=CO2027"},
    {"payment.succeeded", "{\"order_id\":\"o-1\",\"amount_fen\":1}", "支付成功",
        "0.01 元", "kind=payment.succeeded"},
    {"invoice.issued", "{\"invoice_number\":\"N1\",\"amount_fen\":-250}",
        "发票已开具", "-2.50 元", "invoice=N1"},
    {"invoice.posted",
        "{\"invoice_number\":\"N1\",\"express_company\":\"顺丰\","
        "\"tracking_number\":\"SF1\"}",
        "寄出", "顺丰 运单号 SF1", "invoice=N1"},
    {"review.decided",
        "{\"record_id\":\"r1\",\"result\":\"rejected\",\"name\":\"某公司\","
        "\"opinion\":\"营业执照不清晰\"}",
        "审核不通过", "营业执照不清晰",
        "purpose=review_result record=r1 "
        "result=rejected"},
    {"review.decided",
        "{\"record_id\":\"r1\",\"result\":\"approved\",\"change\":true}",
        "变更审核通过", "已生效", "result=approved"},
    {"admin_application.decided",
        "{\"application_id\":\"a1\",\"result\":\"approved\",\"name\":\"某公司\"}",
        "已通过", "管理员身份", "purpose=admin_application application=a1"},
    {"member_application.decided",
        "{\"enterprise_name\":\"某公司\",\"result\":\"rejected\",\"opinion\":"
        "\"不认识\"}",
        "未通过", "意见：不认识", "result=rejected"},
    {"cert.issued", "{\"serial\":\"99\"}", "已更新", "99", "serial=99"},
    {"cert.cancelled", "{\"serial\":\"99\"}", "注销", "99", "serial=99"},
};

static void
test_every_kind(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = json_loads(cases[i].params, 0, NULL);
		struct notice_text t;
		const char *missing;
		assert_non_null(p);
		assert_int_equal(notice_render(cases[i].kind, "n-1", p, &t,
		                     &missing),
		    0);
		assert_non_null(strstr(t.title, cases[i].title_has));
		assert_non_null(strstr(t.body, cases[i].body_has));
		assert_non_null(strstr(t.sms, cases[i].sms_has));
		assert_non_null(strstr(t.sms, "notice=n-1 【CA互联互通】"));
		json_decref(p);
	}
}

static void
test_missing_and_unknown(void **state)
{
	json_t *p = json_loads("{\"serial\":\"1\"}", 0, NULL);
	struct notice_text t;
	const char *missing;

	assert_int_equal(notice_render("cert.expiring", "n", p, &t, &missing),
	    -1);
	assert_string_equal(missing, "days_left");
	assert_int_equal(notice_render("nope", "n", p, &t, &missing), -1);
	assert_string_equal(missing, "kind");
	json_decref(p);
}

static void
test_cleaned_and_cut(void **state)
{
	char opinion[1200] = "";
	struct notice_text t;
	const char *missing;

	for (int i = 0; i < 100; i++)
		strcat(opinion, "意");
	json_t *p = json_pack("{s:s, s:s, s:s}", "record_id", "r", "result",
	    "rejected", "opinion", opinion);
	assert_int_equal(notice_render("review.decided", "n", p, &t, &missing),
	    0);
	/* 200 bytes at most: 66 whole characters, never a broken one */
	assert_non_null(strstr(t.body, "处理意见：意"));
	assert_null(strstr(t.body,
	    "意意意意意意意意意意意意意意意意意意意意意意意意意"
	    "意意意意意意意意意意意意意意意意意意意意意意意意意"
	    "意意意意意意意意意意意意意意意意意意意"));
	json_decref(p);
	p = json_pack("{s:s, s:s, s:s}", "record_id", "r\n1", "result",
	    "approved", "name",
	    "A\x01"
	    "B");
	assert_int_equal(notice_render("review.decided", "n", p, &t, &missing),
	    0);
	assert_non_null(strstr(t.body, "（AB）"));
	assert_non_null(strstr(t.sms, "record=r1 "));
	json_decref(p);
}

static void
test_sms_params(void **state)
{
	json_t *p = json_pack("{s:s, s:i, s:b, s:[]}", "serial", "1", "days", 7,
	    "change", 1, "certs");
	struct notice_text t = {"标题", "正文", ""};
	json_t *o = notice_sms_params(p, &t);

	assert_string_equal(json_string_value(json_object_get(o, "days")), "7");
	assert_string_equal(json_string_value(json_object_get(o, "change")),
	    "true");
	assert_null(json_object_get(o, "certs"));
	assert_string_equal(json_string_value(json_object_get(o, "text")),
	    "正文");
	json_decref(o);
	json_decref(p);
}

static void
test_china_time(void **state)
{
	char out[32];

	notice_china_time("2027-01-31T16:30:00Z", 1, out, sizeof(out));
	assert_string_equal(out, "2027-02-01 00:30");
	notice_china_time("2027-01-31T16:30:00.123456Z", 0, out, sizeof(out));
	assert_string_equal(out, "2027-02-01");
	notice_china_time("2027-01-31T16:30:00+08:00", 1, out, sizeof(out));
	assert_string_equal(out, "2027-01-31 16:30");
	notice_china_time("2027-01-31T01:00:00-05:30", 1, out, sizeof(out));
	assert_string_equal(out, "2027-01-31 14:30");
	notice_china_time("2027-01-31", 0, out, sizeof(out));
	assert_string_equal(out, "2027-01-31");
	notice_china_time("soon", 1, out, sizeof(out));
	assert_string_equal(out, "soon");
}

static void
test_backoff(void **state)
{
	/* attempt 1: [base/2, base); doubling; capped */
	for (unsigned r = 0; r < 1000; r += 37) {
		long d1 = notice_backoff_ms(1, 1000, 60000, r);
		long d3 = notice_backoff_ms(3, 1000, 60000, r);
		long d20 = notice_backoff_ms(20, 1000, 60000, r);
		assert_true(d1 >= 500 && d1 < 1000);
		assert_true(d3 >= 2000 && d3 < 4000);
		assert_true(d20 >= 30000 && d20 < 60000);
	}
	assert_int_not_equal(notice_backoff_ms(2, 1000, 60000, 1),
	    notice_backoff_ms(2, 1000, 60000, 700));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_kind),
	    cmocka_unit_test(test_missing_and_unknown),
	    cmocka_unit_test(test_cleaned_and_cut),
	    cmocka_unit_test(test_sms_params),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_china_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
