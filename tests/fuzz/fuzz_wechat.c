/* fuzz_wechat — a WeChat Pay notification as payments/notify.c reads it:
 * the Wechatpay-Timestamp check, the signed message and its verification
 * with the platform's RSA key, the body's "resource" decrypted
 * (wechat_decrypt_resource, crypto_aes256gcm_decrypt) and the transaction
 * inside read. Input: timestamp, nonce, signature (base64), body — one a
 * line. Since a random ciphertext never passes the GCM tag, the body is
 * also encrypted under the test APIv3 key as a resource and decrypted
 * again, so that the transaction reading sees fuzzed plaintext. */
#include "fuzz.h"

#include "../../services/payments/domain.h"
#include "crypto.h"
#include "http.h"

#include <time.h>

static const char apiv3_key[] = "0123456789abcdef0123456789abcdef";
static struct crypto_key *platform_key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (crypto_key_generate(&platform_key, CRYPTO_KEY_RSA) != 0)
		abort();
	return 0;
}

/* Reads a decrypted transaction the way notify.c does. */
static void
transaction(const char *plain, size_t len)
{
	json_t *tx = json_loadb(plain, len, 0, NULL);
	json_t *total = json_object_get(json_object_get(tx, "amount"), "total");

	json_string_value(json_object_get(tx, "out_trade_no"));
	json_string_value(json_object_get(tx, "trade_state"));
	if (json_is_integer(total))
		json_integer_value(total);
	json_decref(tx);
}

static void
resource(json_t *res)
{
	char *plain;
	size_t len;

	if (wechat_decrypt_resource(res, apiv3_key, &plain, &len) != 0)
		return;
	FUZZ_CHECK(strlen(plain) == len);
	transaction(plain, len);
	crypto_wipe(plain, len);
	free(plain);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[4];
	size_t body_len;
	char *buf = fuzz_split(data, size, f, 4, &body_len);
	json_t *body;
	unsigned char *ct;
	size_t ct_len;

	if (wechat_timestamp_fresh(f[0], time(NULL)))
		FUZZ_CHECK(strspn(f[0], "0123456789") == strlen(f[0]));
	if (http_text_valid(f[3], body_len))
		wechat_verify(platform_key, f[0], f[1], f[3], body_len, f[2]);
	body = json_loadb(f[3], body_len, 0, NULL);
	if (body != NULL) {
		resource(json_object_get(body, "resource"));
		json_decref(body);
	}
	/* The same bytes as the plaintext of a well-formed resource. */
	if (crypto_aes256gcm_encrypt(&ct, &ct_len,
	        (const unsigned char *)apiv3_key, "abcdef123456", 12,
	        "transaction", 11, (const unsigned char *)f[3],
	        body_len) == 0) {
		char *b64 = crypto_base64_encode(ct, ct_len);
		json_t *res = json_pack("{s:s, s:s, s:s, s:s}", "algorithm",
		    "AEAD_AES_256_GCM", "ciphertext", b64, "nonce",
		    "abcdef123456", "associated_data", "transaction");
		char *plain;
		size_t len;
		int rc = wechat_decrypt_resource(res, apiv3_key, &plain, &len);
		/* Refused only for a NUL in the plaintext. */
		FUZZ_CHECK(rc == 0 || memchr(f[3], '\0', body_len) != NULL);
		if (rc == 0) {
			FUZZ_CHECK(
			    len == body_len && memcmp(plain, f[3], len) == 0);
			transaction(plain, len);
			free(plain);
		}
		json_decref(res);
		free(b64);
		free(ct);
	}
	free(buf);
	return 0;
}
