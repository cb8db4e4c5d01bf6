/* Unit tests for keys under a passphrase (the USB-key simulator's PIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static void
roundtrip(enum crypto_key_type type)
{
	struct crypto_key *key, *back, *pub;
	char a[CRYPTO_SHA256_HEX_SIZE], b[CRYPTO_SHA256_HEX_SIZE];
	unsigned char *sig;
	size_t sig_len;

	assert_int_equal(crypto_key_generate(&key, type), 0);
	char *pem = crypto_key_private_pem_encrypted(key, "111111");
	assert_non_null(pem);
	assert_non_null(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
	/* Not readable without the PIN, nor with a wrong one. */
	assert_int_equal(crypto_key_load_pem(&back, pem), -1);
	assert_int_equal(crypto_key_load_pem_encrypted(&back, pem, "111112"),
	    -1);
	assert_int_equal(crypto_key_load_pem_encrypted(&back, pem, "111111"),
	    0);
	assert_int_equal(crypto_key_type_of(back), type);
	crypto_key_spki_sha256_hex(key, a);
	crypto_key_spki_sha256_hex(back, b);
	assert_string_equal(a, b);
	/* The unlocked key signs what the original key verifies. */
	assert_int_equal(crypto_sign(back, "nonce", 5, &sig, &sig_len), 0);
	assert_int_equal(crypto_verify_sig(key, "nonce", 5, sig, sig_len), 0);
	/* A public key has nothing to encrypt. */
	char *pub_pem = crypto_key_public_pem(key);
	assert_int_equal(crypto_key_load_pem(&pub, pub_pem), 0);
	assert_null(crypto_key_private_pem_encrypted(pub, "111111"));
	crypto_key_free(pub);
	free(pub_pem);
	free(sig);
	free(pem);
	crypto_key_free(back);
	crypto_key_free(key);
}

static void
test_rsa(void **state)
{
	roundtrip(CRYPTO_KEY_RSA);
}
static void
test_p256(void **state)
{
	roundtrip(CRYPTO_KEY_EC_P256);
}
static void
test_sm2(void **state)
{
	roundtrip(CRYPTO_KEY_SM2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rsa),
	    cmocka_unit_test(test_p256),
	    cmocka_unit_test(test_sm2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
