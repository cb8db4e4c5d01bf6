/* Unit tests for the local SMS provider: one line per message in
 * <dir>/<phone>.log, only for well-formed phones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sms.h"

static void
test_local_provider(void **state)
{
	char dir[] = "/tmp/caplat-sms-XXXXXX", path[128], buf[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(buf, sizeof(buf), "local:%s", dir);
	assert_int_equal(sms_provider_init(buf), 0);
	assert_int_equal(sms_provider_send("13800138000",
	                     "purpose=bind code=123456"),
	    0);
	assert_int_equal(sms_provider_send("13800138000", "审核通过"), 0);
	snprintf(path, sizeof(path), "%s/13800138000.log", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "purpose=bind code=123456\n");
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "审核通过\n");
	fclose(f);
	/* A phone that could name another file is refused. */
	assert_int_equal(sms_provider_send("../../etc/x", "hi"), -1);
	assert_int_equal(sms_provider_send("1380013800", "hi"), -1);
	unlink(path);
	rmdir(dir);
}

static void
test_bad_spec(void **state)
{
	assert_int_equal(sms_provider_init("aliyun:key"), -1);
	assert_int_equal(sms_provider_init("local:"), -1);
	/* a good URL but none of the keys in the environment */
	unsetenv("CAPLAT_SMS_ACCESS_KEY_ID");
	assert_int_equal(sms_provider_init("aliyun:https://sms.example.com"),
	    -1);
}

/* Alibaba Cloud's percent-encoding: RFC 3986 unreserved kept, UTF-8 bytes
 * and '*', ' ', '/' encoded upper-case. */
static void
test_alibaba_encode(void **state)
{
	char *e = sms_alibaba_encode("a b*~/-_.中");

	assert_string_equal(e, "a%20b%2A~%2F-_.%E4%B8%AD");
	free(e);
}

/* The signature of a SendSms call, against the one tests/smssim/smssim.py
 * computes (whose code reproduces Alibaba's documented example,
 * OLeaidS1JvxuMvnyHOwuJ+uX5qY= for DescribeRegions with "testsecret"). */
static void
test_alibaba_signature(void **state)
{
	const char *params[] = {"Version", "2017-05-25", "AccessKeyId",
	    "LTAI-test", "Action", "SendSms", "Format", "JSON", "PhoneNumbers",
	    "13800138000", "RegionId", "cn-hangzhou", "SignName", "CA互联互通",
	    "SignatureMethod", "HMAC-SHA1", "SignatureNonce", "nonce-1",
	    "SignatureVersion", "1.0", "TemplateCode", "SMS_1", "TemplateParam",
	    "{\"code\":\"123456\"}", "Timestamp", "2026-12-06T03:00:00Z",
	    "OutId", "n:1 *~", NULL};
	char *body = sms_alibaba_signed_body(params, "secret-key");
	const char *sig = strstr(body, "&Signature=");

	assert_non_null(sig);
	assert_string_equal(sig, "&Signature=EDm9Sjbu2OFsKRXPTX%2FLttMNXig%3D");
	/* sorted: AccessKeyId first, Version last before the signature */
	assert_memory_equal(body, "AccessKeyId=LTAI-test&Action=SendSms", 36);
	assert_non_null(strstr(body, "&OutId=n%3A1%20%2A~&"));
	free(body);
}

static void
test_classify(void **state)
{
	assert_int_equal(sms_classify("OK"), SMS_SENT);
	assert_int_equal(sms_classify("isv.BUSINESS_LIMIT_CONTROL"),
	    SMS_THROTTLED);
	assert_int_equal(sms_classify("isv.SMS_TEMPLATE_ILLEGAL"),
	    SMS_PERMANENT);
	assert_int_equal(sms_classify("isv.SMS_SIGNATURE_ILLEGAL"),
	    SMS_PERMANENT);
	assert_int_equal(sms_classify("SignatureDoesNotMatch"), SMS_PERMANENT);
	assert_int_equal(sms_classify("InvalidAccessKeyId.NotFound"),
	    SMS_PERMANENT);
	assert_int_equal(sms_classify("isv.MOBILE_NUMBER_ILLEGAL"),
	    SMS_PERMANENT);
	assert_int_equal(sms_classify("isp.SYSTEM_ERROR"), SMS_RETRY);
	assert_int_equal(sms_classify(NULL), SMS_RETRY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_local_provider),
	    cmocka_unit_test(test_bad_spec),
	    cmocka_unit_test(test_alibaba_encode),
	    cmocka_unit_test(test_alibaba_signature),
	    cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
