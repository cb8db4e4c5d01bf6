/* Unit tests for alipay: form decoding, the RSA2 sign content of DOMAIN.md §3
 * (sorted, sign and sign_type left out, empty values kept), verification of
 * a notification signed by openssl, signed requests and answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "domain.h"
#include "util.h"

/* Vector: an Alipay notification signed with openssl dgst -sha256 -sign by a
 * test "Alipay" key (its public key below), form-encoded as sent. */
static const char alipay_test_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkc3QR9nbJMkGtk6cInZN\n"
    "szXgts+GN+m00F+fMUX+GDsLAor+ZBHliAB7gsC31JzRqr+COf2WxqSwvrs2p1v3\n"
    "ZZduKQfKHwA8ronr/AaPJvNgRqDJyrYT+xaOTmkxpPKElQoTtGZF7iMiPiM4BbcM\n"
    "Gez+aFP4dIJ0V+MzNAHKfP/5gE7WVhLpnA0wAsbbmsklWWJlMZ3cTh40Ix8sZB1P\n"
    "HXF43u2aYX2X6l36WeC8Ppe+/4DO0FBCp/SedgRtbEgUGo08KSumt2lnD2uUMsEo\n"
    "VdN4nfEnY/yZdYr4EvG9X3HYr0d9l7/XHQ090FEJRwBHvd/BlXXYLNwWqig2A6Ks\n"
    "cwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char alipay_test_body[] =
    "gmt_create=2024-05-01+10%3A00%3A00&charset=utf-8&seller_id=20881011179"
    "55611&subject=CA%E5%BB%B6%E6%9C%9F%E5%B9%B4%E6%A3%80&buyer_id=20881021"
    "16773037&invoice_amount=0.01&notify_id=2024050100222100005011111111111"
    "111&fund_bill_list=%5B%7B%22amount%22%3A%220.01%22%2C%22fundChannel%22"
    "%3A%22ALIPAYACCOUNT%22%7D%5D&notify_type=trade_status_sync&trade_statu"
    "s=TRADE_SUCCESS&receipt_amount=0.01&app_id=2021000000000001&buyer_pay_"
    "amount=0.01&sign_type=RSA2&gmt_payment=2024-05-01+10%3A00%3A05&notify_"
    "time=2024-05-01+10%3A00%3A06&version=1.0&out_trade_no=T1&total_amount="
    "0.01&trade_no=2024050122001411111111111111&auth_app_id=202100000000000"
    "1&passback_params=&sign=h4WC57XxpLMPckN4Ayn2Kgezz792C93xy1IkEwphSdDlSp"
    "ChsOEG6ftHsdb3Eg0S6d3JI2%2FxdzdoBph01ojaJe%2BcrZ8hAfdyzO6vfh%2BlUd500b"
    "cXRpX2TTTWsdCI8hF1ogrbKUkkfGYJvErPUpGJ8jvWCmuHnsrVEVhE%2BpGjKMfrTU4VBt"
    "Yk5fw9Fuv2l99a2eNloyiSz%2F51IoXCBiI95hPQ9xdKLqXyyNWRJEDgZlXMh4kbu6sT6L"
    "UzLstgqXiJg0On2VTiXVM8QPogC5giTl5sMxlfePTyE%2BAfXWbTIRpl3Y1248l6Cd1gEM"
    "aZQOllcblYhNYZL3T7k2gFzcB8Wg%3D%3D";

static const char expected_content[] =
    "app_id=2021000000000001&auth_app_id=2021000000000001&buyer_id=2088102116773037"
    "&buyer_pay_amount=0.01&charset=utf-8"
    "&fund_bill_list=[{\"amount\":\"0.01\",\"fundChannel\":\"ALIPAYACCOUNT\"}]"
    "&gmt_create=2024-05-01 10:00:00&gmt_payment=2024-05-01 10:00:05"
    "&invoice_amount=0.01&notify_id=2024050100222100005011111111111111"
    "&notify_time=2024-05-01 10:00:06&notify_type=trade_status_sync&out_trade_no=T1"
    "&passback_params=&receipt_amount=0.01&seller_id=2088101117955611"
    "&subject=CA延期年检&total_amount=0.01&trade_no=2024050122001411111111111111"
    "&trade_status=TRADE_SUCCESS&version=1.0";

static struct crypto_key *alipay_pub;

static int
setup(void **state)
{
	return crypto_key_load_pem(&alipay_pub, alipay_test_public_pem);
}

static int
teardown(void **state)
{
	crypto_key_free(alipay_pub);
	return 0;
}

static void
test_form_parse(void **state)
{
	struct alipay_form f;
	const char body[] = "a=1&b=x+y%20z&c=&d=%E4%B8%AD&&e=%2B";

	assert_int_equal(alipay_form_parse(&f, body, strlen(body)), 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(alipay_form_get(&f, "a"), "1");
	assert_string_equal(alipay_form_get(&f, "b"), "x y z");
	assert_string_equal(alipay_form_get(&f, "c"), "");
	assert_string_equal(alipay_form_get(&f, "d"), "中");
	assert_string_equal(alipay_form_get(&f, "e"), "+");
	assert_null(alipay_form_get(&f, "z"));
	alipay_form_clear(&f);

	static const char *const bad[] = {"a=%4", "a=%zz", "=1", "a", "a=1&a=2",
	    "a=%00", "a=%"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(alipay_form_parse(&f, bad[i], strlen(bad[i])),
		    -1);
		assert_int_equal(f.n, 0);
	}
}

static void
test_sign_content(void **state)
{
	struct alipay_form f;
	char *content;

	assert_int_equal(alipay_form_parse(&f, alipay_test_body,
	                     strlen(alipay_test_body)),
	    0);
	content = alipay_sign_content(&f);
	assert_string_equal(content, expected_content);
	free(content);
	alipay_form_clear(&f);

	/* Byte order, not locale: upper case before lower, '_' after letters. */
	const char body[] = "b=2&a_b=3&a=1&B=0&sign=x&sign_type=RSA2&aa=";
	assert_int_equal(alipay_form_parse(&f, body, strlen(body)), 0);
	content = alipay_sign_content(&f);
	assert_string_equal(content, "B=0&a=1&a_b=3&aa=&b=2");
	free(content);
	alipay_form_clear(&f);
}

static void
test_verify_vector(void **state)
{
	struct alipay_form f;

	assert_int_equal(alipay_form_parse(&f, alipay_test_body,
	                     strlen(alipay_test_body)),
	    0);
	assert_int_equal(alipay_verify(&f, alipay_pub), ALIPAY_VERIFY_OK);
	alipay_form_clear(&f);
}

/* Replaces the first "from" in the vector body with "to" and verifies. */
static enum alipay_verify_result
verify_modified(const char *from, const char *to)
{
	struct alipay_form f;
	const char *at = strstr(alipay_test_body, from);
	enum alipay_verify_result r;
	char *body;

	assert_non_null(at);
	body = xasprintf("%.*s%s%s", (int)(at - alipay_test_body),
	    alipay_test_body, to, at + strlen(from));
	assert_int_equal(alipay_form_parse(&f, body, strlen(body)), 0);
	r = alipay_verify(&f, alipay_pub);
	alipay_form_clear(&f);
	free(body);
	return r;
}

static void
test_verify_refuses(void **state)
{
	/* Any changed value, an added parameter, a changed sign_type. */
	assert_int_equal(verify_modified("total_amount=0.01",
	                     "total_amount=0.02"),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	assert_int_equal(verify_modified("out_trade_no=T1", "out_trade_no=T2"),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	assert_int_equal(verify_modified("passback_params=",
	                     "passback_params=x"),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	assert_int_equal(verify_modified("version=1.0", "version=1.0&extra=1"),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	/* Dropping the empty parameter changes the content too. */
	assert_int_equal(verify_modified("&passback_params=", ""),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	assert_int_equal(verify_modified("sign_type=RSA2", "sign_type=RSA"),
	    ALIPAY_VERIFY_BAD_SIGN_TYPE);
	assert_int_equal(verify_modified("sign_type=RSA2&", ""),
	    ALIPAY_VERIFY_BAD_SIGN_TYPE);
	assert_int_equal(verify_modified("&sign=", "&nosign="),
	    ALIPAY_VERIFY_NO_SIGN);
	assert_int_equal(verify_modified("&sign=", "&sign=%21"),
	    ALIPAY_VERIFY_NO_SIGN);
	/* sign_type is not part of the content: its position does not matter,
	 * and the parameters' order in the body does not either. */
	assert_int_equal(verify_modified("charset=utf-8&", ""),
	    ALIPAY_VERIFY_BAD_SIGNATURE);
	assert_int_equal(
	    verify_modified("gmt_create=2024-05-01+10%3A00%3A00&charset=utf-8",
	        "charset=utf-8&gmt_create=2024-05-01%2010%3A00%3A00"),
	    ALIPAY_VERIFY_OK);

	/* The merchant's own key (any other key) does not verify. */
	struct crypto_key *other;
	struct alipay_form f;
	assert_int_equal(crypto_key_generate(&other, CRYPTO_KEY_RSA), 0);
	assert_int_equal(alipay_form_parse(&f, alipay_test_body,
	                     strlen(alipay_test_body)),
	    0);
	assert_int_equal(alipay_verify(&f, other), ALIPAY_VERIFY_BAD_SIGNATURE);
	alipay_form_clear(&f);
	crypto_key_free(other);
}

static void
test_request_signed(void **state)
{
	struct crypto_key *merchant, *pub;
	struct alipay_form f;
	char *body, *pem, *content;
	unsigned char *sig;
	size_t sig_len;
	const char *kv[] = {"app_id", "2021000000000001", "method",
	    "alipay.trade.precreate", "charset", "utf-8", "sign_type", "RSA2",
	    "timestamp", "2024-05-01 10:00:00", "version", "1.0", "biz_content",
	    "{\"out_trade_no\":\"T1\",\"subject\":\"CA延期\"}", NULL};

	assert_int_equal(crypto_key_generate(&merchant, CRYPTO_KEY_RSA), 0);
	body = alipay_request_body(merchant, kv);
	assert_non_null(body);
	assert_non_null(strstr(body, "timestamp=2024-05-01%2010%3A00%3A00"));
	assert_int_equal(alipay_form_parse(&f, body, strlen(body)), 0);
	assert_int_equal(f.n, 8);
	assert_string_equal(alipay_form_get(&f, "biz_content"), kv[13]);
	/* The request's content includes sign_type (only "sign" is left out). */
	content = xasprintf(
	    "app_id=2021000000000001&biz_content=%s&charset=utf-8"
	    "&method=alipay.trade.precreate&sign_type=RSA2&timestamp=2024-05-01 10:00:00"
	    "&version=1.0",
	    kv[13]);
	const char *sign = alipay_form_get(&f, "sign");
	assert_int_equal(crypto_base64_decode(&sig, &sig_len, sign,
	                     strlen(sign)),
	    0);
	pem = crypto_key_public_pem(merchant);
	assert_int_equal(crypto_key_load_pem(&pub, pem), 0);
	assert_int_equal(crypto_verify_sig(pub, content, strlen(content), sig,
	                     sig_len),
	    0);
	free(sig);
	free(pem);
	free(content);
	crypto_key_free(pub);
	alipay_form_clear(&f);
	free(body);
	crypto_key_free(merchant);
}

static void
test_response_split(void **state)
{
	const char *content, *sign;
	size_t n;
	json_t *root;
	const char body[] =
	    "{\"alipay_trade_precreate_response\":{\"code\":\"10000\","
	    "\"msg\":\"Success\",\"out_trade_no\":\"T}1\\\"\",\"qr_code\":\"https://qr.alipay.com/x\","
	    "\"nested\":{\"a\":[1,{\"b\":2}]}},\"alipay_cert_sn\":\"abc\",\"sign\":\"c2ln\"}";

	assert_int_equal(alipay_response_split(body, strlen(body),
	                     "alipay.trade.precreate", &content, &n, &root,
	                     &sign),
	    0);
	assert_int_equal(strncmp(content, "{\"code\":\"10000\"", 15), 0);
	assert_int_equal(content[n - 1], '}');
	assert_int_equal(content[n], ',');
	assert_string_equal(sign, "c2ln");
	json_decref(root);
	/* The key after another one, with spaces. */
	const char body2[] =
	    "{ \"sign\" : \"c2ln\" , \"alipay_trade_query_response\" : {\"code\":\"40004\"} }";
	assert_int_equal(alipay_response_split(body2, strlen(body2),
	                     "alipay.trade.query", &content, &n, &root, &sign),
	    0);
	assert_int_equal(n, strlen("{\"code\":\"40004\"}"));
	json_decref(root);
	assert_int_equal(alipay_response_split(body2, strlen(body2),
	                     "alipay.trade.refund", &content, &n, &root, &sign),
	    -1);
	const char body3[] =
	    "{\"alipay_trade_query_response\":{\"code\":\"1\"}}";
	assert_int_equal(alipay_response_split(body3, strlen(body3),
	                     "alipay.trade.query", &content, &n, &root, &sign),
	    -1);
}

/* gmt_payment / send_pay_date: only the exact Beijing-time form becomes a
 * timestamptz; anything else is refused (the caller takes now()), so a
 * signed but odd time never reaches SQL as a failing cast. */
static void
test_time_timestamptz(void **state)
{
	char *t = alipay_time_timestamptz("2024-05-01 10:00:05");

	assert_string_equal(t, "2024-05-01 10:00:05+08");
	free(t);
	const char *bad[] = {"", "2024-05-01", "2024-05-01T10:00:05",
	    "2024-13-01 10:00:05", "2024-05-00 10:00:05", "2024-05-01 24:00:05",
	    "2024-05-01 10:60:05", "2024-05-01 10:00:05+08",
	    "2024-05-01 10:00:0x", "2024/05/01 10:00:05",
	    "'; DROP TABLE x; --     "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(alipay_time_timestamptz(bad[i]));
	assert_null(alipay_time_timestamptz(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_form_parse),
	    cmocka_unit_test(test_sign_content),
	    cmocka_unit_test(test_verify_vector),
	    cmocka_unit_test(test_verify_refuses),
	    cmocka_unit_test(test_request_signed),
	    cmocka_unit_test(test_response_split),
	    cmocka_unit_test(test_time_timestamptz),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
