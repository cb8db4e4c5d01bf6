/* Unit tests for wechat: the AEAD_AES_256_GCM vector of DOMAIN.md §4, the
 * signed message and its verification with a platform certificate chosen
 * by serial, the 300 s window, and the Authorization header we send. */
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

/* Vector: a WeChat Pay platform certificate (test key, serial
 * 5157F09EFDC096DE15EBE81A47057A7232F1B8E1) and its signature over
 * "1714528800\nsXk2Jw8aPqLm4tRv\n<body>\n" made with openssl dgst -sha256. */
static const char wx_test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDXzCCAkegAwIBAgIUUVfwnv3Alt4V6+gaRwV6cjLxuOEwDQYJKoZIhvcNAQEL\n"
    "BQAwPzELMAkGA1UEBhMCQ04xEzARBgNVBAoMClRlbnBheS5jb20xGzAZBgNVBAMM\n"
    "ElRlbnBheS5jb20gUm9vdCBDQTAeFw0yNjExMjYxMDEyNTdaFw0zNjExMjMxMDEy\n"
    "NTdaMD8xCzAJBgNVBAYTAkNOMRMwEQYDVQQKDApUZW5wYXkuY29tMRswGQYDVQQD\n"
    "DBJUZW5wYXkuY29tIFJvb3QgQ0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK\n"
    "AoIBAQCwj/psBuFnwUSNe66bfR5292DZdUt3Hz+ncz1vLrHxRlNx8HuPZyNC1KI6\n"
    "MWUnnjnP6nhWogagxGKFkgYbk4oDtssuYquytviodOObsaWP3rWsZdp10wdL2Z2H\n"
    "lSeKBfsBH66om2kzFmzjVZnCJKPhHEjvBCcJ5bZt71J2SA6Qzn57eDgl5sjgBl2Q\n"
    "dAiWwbIfbJyTW51efsWzcxn3Vbc2QIBugt1gRS9erZZe/By/AzyWdFG5K7bW9JcI\n"
    "/OZk5vW+ZzSKyZxRP53jIxoALp4kQxFNreiD6gsnYSV3FMi6w1A23QG7rnJCsq1a\n"
    "nJxp6fF9xbqKepE8uewD7WjEtnmzAgMBAAGjUzBRMB0GA1UdDgQWBBSNPeoX61ra\n"
    "gn/TPmMDAO/1Xy1nxDAfBgNVHSMEGDAWgBSNPeoX61ragn/TPmMDAO/1Xy1nxDAP\n"
    "BgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBERLccQqcJhO6qepSm\n"
    "cv22JDIh4cduJqAkTZtiOV1NPZNr3h9+o4M2xLMQ7c1j3e6KAHLO8knr3Zbj+nBX\n"
    "WiJA4BaNen2bj8JwXE4nkYwxu30Ij5QIXthBqBgqyMXa4m8fo81c7d5GVgtbfirq\n"
    "4p7bke4oR1eUrc3cgTCHICSTxC0kyccm/S/iP6PY/q7DQQiNpme+k0W7XYHstLTA\n"
    "/9C0KzZUsFq6m0DMlo2+JqBa8KMkJTeAab2YgR/GwO3ZOa+3Oiu3N3UoG99QB7vD\n"
    "3YafAFsr3g2WYc55W6bFpawdmvjvBe74yAo1hQju7ZlNGARRs3wnBk5vy3L2QO7i\n"
    "ALAY\n"
    "-----END CERTIFICATE-----\n";

static const char wx_test_body[] =
    "{\"id\":\"EV-2018022511223320873\",\"event_type\":\"TRANSACTION.SUCCESS\"}";
static const char wx_test_signature[] =
    "AyEhmsz8US+FckSQmeEDv3jpRRxghhCMfXUSQHh2zpsiqmenVUaWtZkiwygdO6012SPvjblx3MVuoNSj6gI5PahBQlXFSzDod28sVwAsrix7e5lB42sPn0j4DiiceRQ/u+A2JE5RW651K8FaUWu+tM7nL2XoZuoYMdY8v6T8tVoAgtSj6juCNRrIT6hzPQ6GVXOg74KY6XBj9o9EDqGO+Y2vsgtwL8xwAhpuQ8bKWEdE/0oPKrEmj22814EiNrwyexU0E7lbm6RZ1iq+0bPRsgYw5JMF0TfyEiR1DZ9v5LQ1EdezXwXHxnn8lUvrEOkmcF4BMZWqDBfhX1XBZfqKZg==";

/* DOMAIN.md §4 */
static const char gcm_key[] = "0123456789abcdef0123456789abcdef";
static const char gcm_ciphertext[] =
    "i1is0ebmSkGKa2LQdcBD+t+eemgc7qXoFitrVYB8OtQuB80mBvnJfX/9+Rs7qGi8R7rSVyPRBfh/"
    "xH3Re/chUdLKJ3DFyZw27PJBNt+JehwHNxRBl3q86hCaxd25LovHcqsz9NKp51lX5CFfGfZU0k+2";
static const char gcm_plain[] =
    "{\"out_trade_no\":\"T1\",\"transaction_id\":\"4200000001\",\"trade_state\":\"SUCCESS\","
    "\"amount\":{\"total\":100}}";

static json_t *
resource(const char *ct, const char *nonce, const char *ad)
{
	json_t *r = json_pack("{s:s, s:s, s:s}", "algorithm",
	    "AEAD_AES_256_GCM", "ciphertext", ct, "nonce", nonce);
	if (ad != NULL)
		json_object_set_new(r, "associated_data", json_string(ad));
	return r;
}

static void
test_gcm_domain_vector(void **state)
{
	json_t *r = resource(gcm_ciphertext, "abcdef123456", "transaction");
	char *plain;
	size_t n;

	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), 0);
	assert_int_equal(n, strlen(gcm_plain));
	assert_string_equal(plain, gcm_plain);
	free(plain);
	json_decref(r);
}

static void
test_gcm_refuses(void **state)
{
	char *plain, *ct;
	size_t n;
	json_t *r;

	/* Wrong AAD, missing AAD, wrong nonce, wrong key, flipped tag byte. */
	r = resource(gcm_ciphertext, "abcdef123456", "transactioN");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = resource(gcm_ciphertext, "abcdef123456", NULL);
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = resource(gcm_ciphertext, "abcdef123457", "transaction");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = resource(gcm_ciphertext, "abcdef123456", "transaction");
	assert_int_equal(wechat_decrypt_resource(r,
	                     "0123456789abcdef0123456789abcdeF", &plain, &n),
	    -1);
	assert_int_equal(wechat_decrypt_resource(r, "short", &plain, &n), -1);
	json_decref(r);
	ct = xstrdup(gcm_ciphertext);
	ct[strlen(ct) - 3] = ct[strlen(ct) - 3] == 'A' ? 'B' : 'A';
	r = resource(ct, "abcdef123456", "transaction");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	free(ct);
	/* Bad base64, short nonce, other algorithm, too short for a tag. */
	r = resource("!!", "abcdef123456", "transaction");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = resource(gcm_ciphertext, "abcdef", "transaction");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = resource("AAAA", "abcdef123456", "transaction");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
	r = json_pack("{s:s, s:s, s:s}", "algorithm", "AEAD_AES_128_GCM",
	    "ciphertext", gcm_ciphertext, "nonce", "abcdef123456");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), -1);
	json_decref(r);
}

static void
test_gcm_round_trip_empty_aad(void **state)
{
	unsigned char *ct, *pt;
	size_t ct_len, pt_len;
	char *b64, *plain;
	size_t n;

	assert_int_equal(crypto_aes256gcm_encrypt(&ct, &ct_len,
	                     (const unsigned char *)gcm_key, "0123456789ab", 12,
	                     NULL, 0, (const unsigned char *)"hello", 5),
	    0);
	assert_int_equal(ct_len, 5 + CRYPTO_GCM_TAG_LEN);
	assert_int_equal(crypto_aes256gcm_decrypt(&pt, &pt_len,
	                     (const unsigned char *)gcm_key, "0123456789ab", 12,
	                     "", 0, ct, ct_len),
	    0);
	assert_int_equal(pt_len, 5);
	assert_memory_equal(pt, "hello", 5);
	free(pt);
	b64 = crypto_base64_encode(ct, ct_len);
	json_t *r = resource(b64, "0123456789ab", "");
	assert_int_equal(wechat_decrypt_resource(r, gcm_key, &plain, &n), 0);
	assert_string_equal(plain, "hello");
	free(plain);
	json_decref(r);
	free(b64);
	free(ct);
}

static void
test_message(void **state)
{
	char *m = wechat_message("1714528800", "n0", "{}", 2);

	assert_string_equal(m, "1714528800\nn0\n{}\n");
	free(m);
}

static void
test_verify_by_serial(void **state)
{
	struct wechat_platform_certs *certs;
	const struct crypto_key *key;
	char body[sizeof(wx_test_body)];

	assert_int_equal(wechat_platform_certs_load_pem(&certs,
	                     wx_test_cert_pem),
	    1);
	key = wechat_platform_key(certs,
	    "5157F09EFDC096DE15EBE81A47057A7232F1B8E1");
	assert_non_null(key);
	assert_ptr_equal(wechat_platform_key(certs,
	                     "5157f09efdc096de15ebe81a47057a7232f1b8e1"),
	    key);
	assert_null(wechat_platform_key(certs,
	    "5157F09EFDC096DE15EBE81A47057A7232F1B8E2"));
	assert_null(wechat_platform_key(certs, ""));
	assert_int_equal(wechat_verify(key, "1714528800", "sXk2Jw8aPqLm4tRv",
	                     wx_test_body, strlen(wx_test_body),
	                     wx_test_signature),
	    0);
	/* Any other timestamp, nonce or body byte fails; so does a re-serialised body. */
	assert_int_equal(wechat_verify(key, "1714528801", "sXk2Jw8aPqLm4tRv",
	                     wx_test_body, strlen(wx_test_body),
	                     wx_test_signature),
	    -1);
	assert_int_equal(wechat_verify(key, "1714528800", "sXk2Jw8aPqLm4tRV",
	                     wx_test_body, strlen(wx_test_body),
	                     wx_test_signature),
	    -1);
	memcpy(body, wx_test_body, sizeof(body));
	body[7] = 'F';
	assert_int_equal(wechat_verify(key, "1714528800", "sXk2Jw8aPqLm4tRv",
	                     body, strlen(body), wx_test_signature),
	    -1);
	const char spaced[] =
	    "{\"id\": \"EV-2018022511223320873\", \"event_type\": \"TRANSACTION.SUCCESS\"}";
	assert_int_equal(wechat_verify(key, "1714528800", "sXk2Jw8aPqLm4tRv",
	                     spaced, strlen(spaced), wx_test_signature),
	    -1);
	assert_int_equal(wechat_verify(key, "1714528800", "sXk2Jw8aPqLm4tRv",
	                     wx_test_body, strlen(wx_test_body), "not base64!"),
	    -1);
	wechat_platform_certs_free(certs);

	assert_int_equal(wechat_platform_certs_load_pem(&certs,
	                     "no certificate"),
	    -1);
}

static void
test_timestamp_window(void **state)
{
	assert_true(wechat_timestamp_fresh("1714528800", 1714528800));
	assert_true(wechat_timestamp_fresh("1714528800", 1714528800 + 299));
	assert_true(wechat_timestamp_fresh("1714528800", 1714528800 - 299));
	assert_false(wechat_timestamp_fresh("1714528800", 1714528800 + 300));
	assert_false(wechat_timestamp_fresh("1714528800", 1714528800 - 300));
	assert_false(wechat_timestamp_fresh("", 0));
	assert_false(wechat_timestamp_fresh("17145288x0", 1714528800));
	assert_false(wechat_timestamp_fresh("-1714528800", 1714528800));
	assert_false(wechat_timestamp_fresh("9999999999999", 1714528800));
}

static void
test_authorization(void **state)
{
	struct crypto_key *merchant, *pub;
	unsigned char *sig;
	size_t sig_len;
	char *h, *pem;
	const char *s, *e;
	const char body[] = "{\"mchid\":\"1900000001\"}";
	const char msg[] =
	    "POST\n/v3/pay/transactions/native\n1714528800\nNONCE1\n"
	    "{\"mchid\":\"1900000001\"}\n";

	assert_int_equal(crypto_key_generate(&merchant, CRYPTO_KEY_RSA), 0);
	h = wechat_authorization(merchant, "1900000001", "ABC123", "POST",
	    "/v3/pay/transactions/native", "1714528800", "NONCE1", body);
	assert_non_null(h);
	const char prefix[] =
	    "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"NONCE1\","
	    "timestamp=\"1714528800\",serial_no=\"ABC123\",signature=\"";
	assert_int_equal(strncmp(h, prefix, strlen(prefix)), 0);
	s = strstr(h, "signature=\"") + 11;
	e = strrchr(h, '"');
	assert_int_equal(crypto_base64_decode(&sig, &sig_len, s,
	                     (size_t)(e - s)),
	    0);
	pem = crypto_key_public_pem(merchant);
	assert_int_equal(crypto_key_load_pem(&pub, pem), 0);
	assert_int_equal(crypto_verify_sig(pub, msg, strlen(msg), sig, sig_len),
	    0);
	free(sig);
	free(pem);
	free(h);
	crypto_key_free(pub);
	crypto_key_free(merchant);
}

/* success_time: RFC 3339 with an offset (or Z), an optional fraction. */
static void
test_time_valid(void **state)
{
	const char *good[] = {"2024-05-01T10:00:05+08:00",
	    "2024-05-01T10:00:05Z", "2024-05-01T10:00:05.123+08:00",
	    "2024-05-01T02:00:05-05:30"};
	const char *bad[] = {"", "2024-05-01 10:00:05+08:00",
	    "2024-05-01T10:00:05", "2024-05-01T10:00:05+8:00",
	    "2024-05-01T10:00:05+08:60", "2024-05-01T10:00:05+15:00",
	    "2024-05-01T10:00:05.+08:00", "2024-05-01T10:00:05Zx",
	    "2024-02-01T25:00:05Z", "2024-05-01T10:00:05+08:00'"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(wechat_time_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(wechat_time_valid(bad[i]));
	assert_false(wechat_time_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gcm_domain_vector),
	    cmocka_unit_test(test_gcm_refuses),
	    cmocka_unit_test(test_gcm_round_trip_empty_aad),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_verify_by_serial),
	    cmocka_unit_test(test_timestamp_window),
	    cmocka_unit_test(test_authorization),
	    cmocka_unit_test(test_time_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
