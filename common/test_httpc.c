/* Unit tests for httpc's pure parts: URL parsing (https everywhere, http
 * only to loopback), the loopback and IP-literal checks, the backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "httpc.h"

static void
test_url_parse(void **state)
{
	struct httpc_url u;

	assert_int_equal(httpc_url_parse("https://api.mch.weixin.qq.com", &u),
	    HTTPC_URL_OK);
	assert_true(u.tls);
	assert_string_equal(u.host, "api.mch.weixin.qq.com");
	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "");
	assert_int_equal(
	    httpc_url_parse("https://openapi.alipay.com:8443/gateway.do", &u),
	    HTTPC_URL_OK);
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/gateway.do");
	assert_int_equal(httpc_url_parse("HTTPS://[::1]:9/v", &u),
	    HTTPC_URL_OK);
	assert_string_equal(u.host, "::1");
	/* http:// only to loopback */
	assert_int_equal(httpc_url_parse("http://127.0.0.1:18094/x", &u),
	    HTTPC_URL_OK);
	assert_false(u.tls);
	assert_int_equal(u.port, 18094);
	assert_int_equal(httpc_url_parse("http://localhost", &u), HTTPC_URL_OK);
	assert_int_equal(u.port, 80);
	assert_int_equal(httpc_url_parse("http://pay.example.com/notify", &u),
	    HTTPC_URL_PLAIN_HTTP);
	assert_int_equal(httpc_url_parse("http://10.0.0.1", &u),
	    HTTPC_URL_PLAIN_HTTP);
	/* malformed */
	assert_int_equal(httpc_url_parse(NULL, &u), HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("", &u), HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("ftp://host/x", &u),
	    HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("https://", &u), HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("https://user:pw@host/", &u),
	    HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("https://host/x?q=1", &u),
	    HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("https://host:99999/", &u),
	    HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("https://ho st/", &u),
	    HTTPC_URL_MALFORMED);
	assert_int_equal(httpc_url_parse("api.example.com", &u),
	    HTTPC_URL_MALFORMED);
}

static void
test_hosts(void **state)
{
	assert_true(httpc_host_is_loopback("127.0.0.1"));
	assert_true(httpc_host_is_loopback("127.9.9.9"));
	assert_true(httpc_host_is_loopback("LOCALHOST"));
	assert_true(httpc_host_is_loopback("::1"));
	assert_false(httpc_host_is_loopback("128.0.0.1"));
	assert_false(httpc_host_is_loopback("localhost.example.com"));
	assert_false(httpc_host_is_loopback("127.0.0.1.example.com"));
	assert_false(httpc_host_is_loopback("::2"));
	assert_true(httpc_host_is_ip("10.1.2.3"));
	assert_true(httpc_host_is_ip("fe80::1"));
	assert_false(httpc_host_is_ip("api.mch.weixin.qq.com"));
	assert_false(httpc_host_is_ip("1.2.3"));
}

static void
test_backoff(void **state)
{
	assert_int_equal(httpc_backoff_ms(0), 0);
	assert_int_equal(httpc_backoff_ms(1), 0);
	assert_int_equal(httpc_backoff_ms(2), 200);
	assert_int_equal(httpc_backoff_ms(3), 400);
	assert_int_equal(httpc_backoff_ms(4), 800);
	assert_int_equal(httpc_backoff_ms(6), 3200);
	assert_int_equal(httpc_backoff_ms(60), 3200);
	assert_int_equal(HTTPC_IDEMPOTENT_TRIES, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_parse),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
