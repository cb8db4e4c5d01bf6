/* crypto_aead — AES-256-GCM, for the resources WeChat Pay API v3 encrypts
 * (payments) and the simulators that encrypt them. */
#include "crypto_int.h"

#include "util.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- AES-256-GCM (WeChat Pay API v3 resources) ------------------------- */

static EVP_CIPHER_CTX *
gcm_ctx_new(int enc, const unsigned char key[32], size_t iv_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL)
		fatal("out of memory (EVP_CIPHER_CTX)");
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) !=
	        1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len,
	        NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	(void)key;
	return ctx;
}

int
crypto_aes256gcm_decrypt(unsigned char **out, size_t *out_len,
    const unsigned char key[32], const void *iv, size_t iv_len, const void *aad,
    size_t aad_len, const unsigned char *in, size_t in_len)
{
	EVP_CIPHER_CTX *ctx;
	unsigned char *buf, tag[CRYPTO_GCM_TAG_LEN];
	size_t n;
	int len, fin, ok = 0;

	if (in_len < CRYPTO_GCM_TAG_LEN || iv_len == 0 || iv_len > INT_MAX ||
	    aad_len > INT_MAX || in_len > INT_MAX)
		return -1;
	n = in_len - CRYPTO_GCM_TAG_LEN;
	memcpy(tag, in + n, CRYPTO_GCM_TAG_LEN);
	ctx = gcm_ctx_new(0, key, iv_len);
	if (ctx == NULL)
		return crypto_fail();
	buf = xmalloc(n + 1);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, 0) == 1 &&
	    (aad_len == 0 ||
	        EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1) &&
	    EVP_CipherUpdate(ctx, buf, &len, in, (int)n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_GCM_TAG_LEN,
	        tag) == 1 &&
	    EVP_CipherFinal_ex(ctx, buf + len, &fin) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(buf, n + 1);
		free(buf);
		ERR_clear_error();
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
}

int
crypto_aes256gcm_encrypt(unsigned char **out, size_t *out_len,
    const unsigned char key[32], const void *iv, size_t iv_len, const void *aad,
    size_t aad_len, const unsigned char *in, size_t in_len)
{
	EVP_CIPHER_CTX *ctx;
	unsigned char *buf;
	int len, fin;

	if (iv_len == 0 || iv_len > INT_MAX || aad_len > INT_MAX ||
	    in_len > INT_MAX - CRYPTO_GCM_TAG_LEN)
		return -1;
	ctx = gcm_ctx_new(1, key, iv_len);
	if (ctx == NULL)
		return crypto_fail();
	buf = xmalloc(in_len + CRYPTO_GCM_TAG_LEN + 1);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, 1) != 1 ||
	    (aad_len != 0 &&
	        EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1) ||
	    EVP_CipherUpdate(ctx, buf, &len, in, (int)in_len) != 1 ||
	    EVP_CipherFinal_ex(ctx, buf + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_GCM_TAG_LEN,
	        buf + in_len) != 1)
		fatal("AES-256-GCM encryption failed");
	EVP_CIPHER_CTX_free(ctx);
	*out = buf;
	*out_len = in_len + CRYPTO_GCM_TAG_LEN;
	return 0;
}
