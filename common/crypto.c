/* crypto — OpenSSL 3 (EVP, provider APIs only) behind caplat's own types:
 * random, base64, SHA-256/HMAC, scrypt, keys and signatures (RSA, P-256, SM2
 * with SM3 and the distinguishing ID 1234567812345678 of DOMAIN.md §1), keys
 * under a passphrase. Certificates live in crypto_x509.c, issuing in
 * crypto_ca.c, AES-GCM in crypto_aead.c. */
#include "crypto_int.h"
#include "hist.h"

#include "util.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OSSL_PARAM constructors take void * for buffers they only read. */
static void *
unconst(const void *p)
{
	return (void *)(uintptr_t)p;
}

/* A library that returns -1 leaves nothing behind in the thread's OpenSSL
 * error queue for the next, unrelated caller to trip on. */
int
crypto_fail(void)
{
	ERR_clear_error();
	return -1;
}

BIO *
crypto_bio_new(void)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (bio == NULL)
		fatal("out of memory (BIO)");
	return bio;
}

BIO *
crypto_bio_reader(const char *s)
{
	BIO *bio = BIO_new_mem_buf(s, -1);

	if (bio == NULL)
		fatal("out of memory (BIO)");
	return bio;
}

/* Returns a new string with everything written to the memory BIO. */
char *
crypto_bio_string(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	return xstrndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
}

/* Never prompts for a PEM pass phrase: encrypted keys are refused. */
int
crypto_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
crypto_read_file(char **out, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return -1;
	buf = xmalloc(MAX_PEM_FILE + 1);
	n = fread(buf, 1, MAX_PEM_FILE + 1, f);
	if (ferror(f) || n > MAX_PEM_FILE) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	buf = xrealloc(buf, n + 1);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* ---- Random ---- */

void
crypto_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1)
			fatal("RAND_bytes failed");
		p += chunk;
		n -= (size_t)chunk;
	}
}

char *
crypto_random_token(size_t nbytes)
{
	unsigned char *buf = xmalloc(nbytes);
	char *token;

	crypto_random_bytes(buf, nbytes);
	token = crypto_base64url_encode(buf, nbytes);
	OPENSSL_cleanse(buf, nbytes);
	free(buf);
	return token;
}

/* ---- Base64 ---- */

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
b64_encode(const unsigned char *in, size_t len, const char *alphabet, int pad)
{
	char *out, *o;
	size_t i;
	uint32_t v;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		fatal("base64: input too large (%zu bytes)", len);
	out = o = xmalloc((len + 2) / 3 * 4 + 1);
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int
b64_sextet(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int
b64_decode(unsigned char **out, size_t *out_len, const char *s, size_t len,
    int url)
{
	size_t n = len, o = 0;
	unsigned char *buf;
	uint32_t acc = 0;
	int bits = 0;

	if (!url) {
		/* Padding makes the length a multiple of 4 and says how many
		 * characters the last group has: 4, 3 ("x=") or 2 ("=="). */
		if (len % 4 != 0)
			return -1;
		if (n > 0 && s[n - 1] == '=')
			n--;
		if (n > 0 && s[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1)
		return -1;
	buf = xmalloc(n / 4 * 3 + 2);
	for (size_t i = 0; i < n; i++) {
		int v = b64_sextet((unsigned char)s[i], url);

		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) { /* unused low bits of the last character must be 0 */
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = o;
	return 0;
}

char *
crypto_base64_encode(const void *data, size_t len)
{
	return b64_encode(data, len, b64_std, 1);
}

char *
crypto_base64url_encode(const void *data, size_t len)
{
	return b64_encode(data, len, b64_url, 0);
}

int
crypto_base64_decode(unsigned char **out, size_t *out_len, const char *s,
    size_t len)
{
	return b64_decode(out, out_len, s, len, 0);
}

int
crypto_base64url_decode(unsigned char **out, size_t *out_len, const char *s,
    size_t len)
{
	return b64_decode(out, out_len, s, len, 1);
}

/* ---- Digests and MACs ---- */

void
crypto_sha256(const void *data, size_t len,
    unsigned char out[CRYPTO_SHA256_LEN])
{
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
		fatal("SHA-256 failed");
}

static void
hex_lower(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void
crypto_sha256_hex(const void *data, size_t len,
    char out[CRYPTO_SHA256_HEX_SIZE])
{
	unsigned char md[CRYPTO_SHA256_LEN];

	crypto_sha256(data, len, md);
	hex_lower(md, sizeof(md), out);
}

struct crypto_sha256_ctx *
crypto_sha256_begin(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		fatal("SHA-256 failed");
	return (struct crypto_sha256_ctx *)c;
}

void
crypto_sha256_update(struct crypto_sha256_ctx *c, const void *data, size_t len)
{
	if (EVP_DigestUpdate((EVP_MD_CTX *)c, data, len) != 1)
		fatal("SHA-256 failed");
}

void
crypto_sha256_end_hex(struct crypto_sha256_ctx *c,
    char out[CRYPTO_SHA256_HEX_SIZE])
{
	unsigned char md[CRYPTO_SHA256_LEN];

	if (EVP_DigestFinal_ex((EVP_MD_CTX *)c, md, NULL) != 1)
		fatal("SHA-256 failed");
	EVP_MD_CTX_free((EVP_MD_CTX *)c);
	hex_lower(md, sizeof(md), out);
}

void
crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	size_t out_len = 0;

	/* A NULL key makes EVP_MAC fail; an empty HMAC key is legal. */
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key ? key : "",
	        key_len, data, len, out, CRYPTO_SHA256_LEN, &out_len) == NULL ||
	    out_len != CRYPTO_SHA256_LEN)
		fatal("HMAC-SHA256 failed");
}

void
crypto_hmac_sha1(const void *key, size_t key_len, const void *data, size_t len,
    unsigned char out[20])
{
	size_t out_len = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, key ? key : "", key_len,
	        data, len, out, 20, &out_len) == NULL ||
	    out_len != 20)
		fatal("HMAC-SHA1 failed");
}

int
crypto_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- Passwords ---- */

#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_SALT_LEN 16
#define SCRYPT_HASH_LEN 32
#define SCRYPT_MAX_N (1u << 20)
#define SCRYPT_MAX_R 16
#define SCRYPT_MAX_P 16
/* 128·r·N bytes for N=2^20, r=16 is 2 GiB: cap memory, refuse beyond. */
#define SCRYPT_MAXMEM ((uint64_t)512 * 1024 * 1024)

static int
scrypt_derive(const char *password, const unsigned char *salt, size_t salt_len,
    uint64_t n, uint32_t r, uint32_t p, unsigned char *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t maxmem = SCRYPT_MAXMEM;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	        unconst(password), strlen(password)),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	        unconst(salt), salt_len),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
	    OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
	    OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
	    OSSL_PARAM_construct_end(),
	};
	int rc = -1;

	if (kctx != NULL && EVP_KDF_derive(kctx, out, out_len, params) == 1)
		rc = 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc == 0 ? 0 : crypto_fail();
}

char *
crypto_password_hash(const char *password)
{
	unsigned char salt[SCRYPT_SALT_LEN], hash[SCRYPT_HASH_LEN];
	char *salt64, *hash64, *stored;

	crypto_random_bytes(salt, sizeof(salt));
	if (scrypt_derive(password, salt, sizeof(salt), SCRYPT_N, SCRYPT_R,
	        SCRYPT_P, hash, sizeof(hash)) != 0)
		fatal("scrypt failed");
	salt64 = crypto_base64_encode(salt, sizeof(salt));
	hash64 = crypto_base64_encode(hash, sizeof(hash));
	stored = xasprintf("scrypt$%u$%u$%u$%s$%s", SCRYPT_N, SCRYPT_R,
	    SCRYPT_P, salt64, hash64);
	OPENSSL_cleanse(hash, sizeof(hash));
	free(salt64);
	free(hash64);
	return stored;
}

/* Parses decimal digits up to the next '$' into *out (1..max) and moves *s
 * past the '$'. */
static int
parse_field_u32(const char **s, uint32_t max, uint32_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '1' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
	}
	if (*p != '$')
		return -1;
	*out = (uint32_t)v;
	*s = p + 1;
	return 0;
}

int
crypto_password_verify(const char *password, const char *stored)
{
	const char *p = stored, *salt64, *hash64;
	unsigned char *salt = NULL, *want = NULL, got[64];
	size_t salt_len, want_len;
	uint32_t n, r, par;
	int rc = -1;

	if (strncmp(p, "scrypt$", 7) != 0)
		return -1;
	p += 7;
	if (parse_field_u32(&p, SCRYPT_MAX_N, &n) != 0 || n < 2 ||
	    (n & (n - 1)) != 0 || parse_field_u32(&p, SCRYPT_MAX_R, &r) != 0 ||
	    parse_field_u32(&p, SCRYPT_MAX_P, &par) != 0)
		return -1;
	salt64 = p;
	hash64 = strchr(salt64, '$');
	if (hash64 == NULL)
		return -1;
	hash64++;
	if (crypto_base64_decode(&salt, &salt_len, salt64,
	        (size_t)(hash64 - 1 - salt64)) != 0 ||
	    crypto_base64_decode(&want, &want_len, hash64, strlen(hash64)) != 0)
		goto out;
	if (salt_len == 0 || want_len < 16 || want_len > sizeof(got))
		goto out;
	if (scrypt_derive(password, salt, salt_len, n, r, par, got, want_len) !=
	    0)
		goto out;
	rc = crypto_ct_equal(got, want, want_len) ? 0 : -1;
out:
	OPENSSL_cleanse(got, sizeof(got));
	free(salt);
	free(want);
	return rc;
}

/* ---- Keys and signatures ---- */

const char *
crypto_key_type_name(enum crypto_key_type type)
{
	switch (type) {
	case CRYPTO_KEY_RSA:
		return "rsa";
	case CRYPTO_KEY_EC_P256:
		return "ec_p256";
	case CRYPTO_KEY_SM2:
		return "sm2";
	case CRYPTO_KEY_OTHER:
		break;
	}
	return "other";
}

static enum crypto_key_type
pkey_type(const EVP_PKEY *pkey)
{
	char group[64];
	int nid;

	if (EVP_PKEY_is_a(pkey, "RSA"))
		return CRYPTO_KEY_RSA;
	if (EVP_PKEY_is_a(pkey, "SM2"))
		return CRYPTO_KEY_SM2;
	if (!EVP_PKEY_is_a(pkey, "EC"))
		return CRYPTO_KEY_OTHER;
	/* Named curves only: explicit parameters are OTHER. */
	if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) {
		ERR_clear_error();
		return CRYPTO_KEY_OTHER;
	}
	nid = OBJ_sn2nid(group);
	if (nid == NID_X9_62_prime256v1)
		return CRYPTO_KEY_EC_P256;
	if (nid == NID_sm2)
		return CRYPTO_KEY_SM2;
	return CRYPTO_KEY_OTHER;
}

/* An "EC" key on the SM2 curve would sign and verify as ECDSA: rebuild it
 * as an "SM2" key so that the SM2 signature algorithm is chosen. Steals ec.
 * Returns the SM2 key, or NULL on error. */
static EVP_PKEY *
pkey_ec_to_sm2(EVP_PKEY *ec, int has_private)
{
	int selection = has_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *sm2 = NULL;

	if (EVP_PKEY_todata(ec, selection, &params) != 1)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &sm2, selection, params) != 1)
		sm2 = NULL;
out:
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(ec);
	if (sm2 == NULL)
		ERR_clear_error();
	return sm2;
}

/* Returns a new key that owns pkey (stolen, also on error), or NULL. */
struct crypto_key *
crypto_key_wrap(EVP_PKEY *pkey, int has_private)
{
	struct crypto_key *key;
	enum crypto_key_type type;

	if (pkey == NULL)
		return NULL;
	type = pkey_type(pkey);
	if (type == CRYPTO_KEY_SM2 && !EVP_PKEY_is_a(pkey, "SM2")) {
		pkey = pkey_ec_to_sm2(pkey, has_private);
		if (pkey == NULL)
			return NULL;
	}
	key = xcalloc(1, sizeof(*key));
	key->pkey = pkey;
	key->type = type;
	key->has_private = has_private;
	key->cache = xcalloc(1, sizeof(*key->cache));
	return key;
}

/* Returns a new public-only key for pkey (borrowed), or NULL. */
struct crypto_key *
crypto_key_wrap_public(EVP_PKEY *pkey)
{
	if (pkey == NULL || EVP_PKEY_up_ref(pkey) != 1)
		return NULL;
	return crypto_key_wrap(pkey, 0);
}

/* Returns the first key pem holds for one of OpenSSL's PEM key readers, or
 * NULL. */
static EVP_PKEY *
pem_read_pkey(const char *pem,
    EVP_PKEY *(*read)(BIO *, EVP_PKEY **, pem_password_cb *, void *))
{
	BIO *bio = crypto_bio_reader(pem);
	EVP_PKEY *pkey = read(bio, NULL, crypto_no_passphrase, NULL);

	BIO_free(bio);
	return pkey;
}

int
crypto_key_load_pem(struct crypto_key **out, const char *pem)
{
	struct crypto_key *key;
	EVP_PKEY *pkey;
	X509 *cert;
	BIO *bio;

	if ((pkey = pem_read_pkey(pem, PEM_read_bio_PrivateKey)) != NULL) {
		key = crypto_key_wrap(pkey, 1);
	} else if ((pkey = pem_read_pkey(pem, PEM_read_bio_PUBKEY)) != NULL) {
		key = crypto_key_wrap(pkey, 0);
	} else {
		bio = crypto_bio_reader(pem);
		cert = PEM_read_bio_X509(bio, NULL, crypto_no_passphrase, NULL);
		BIO_free(bio);
		key = cert ? crypto_key_wrap_public(X509_get0_pubkey(cert))
		           : NULL;
		X509_free(cert);
	}
	ERR_clear_error(); /* the attempts that failed */
	if (key == NULL)
		return -1;
	*out = key;
	return 0;
}

int
crypto_key_load_file(struct crypto_key **out, const char *path)
{
	char *pem;
	int rc;

	if (crypto_read_file(&pem, path) != 0)
		return -1;
	rc = crypto_key_load_pem(out, pem);
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	return rc;
}

int
crypto_key_generate(struct crypto_key **out, enum crypto_key_type type)
{
	static const char *const names[] = {
	    [CRYPTO_KEY_RSA] = "RSA",
	    [CRYPTO_KEY_EC_P256] = "EC",
	    [CRYPTO_KEY_SM2] = "SM2",
	};
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	struct crypto_key *key;

	if (type == CRYPTO_KEY_OTHER || (size_t)type >= ARRAY_LEN(names))
		return -1;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, names[type], NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    (type == CRYPTO_KEY_RSA &&
	        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) != 1) ||
	    (type == CRYPTO_KEY_EC_P256 &&
	        EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1) ||
	    EVP_PKEY_generate(ctx, &pkey) != 1) {
		EVP_PKEY_CTX_free(ctx);
		EVP_PKEY_free(pkey);
		return crypto_fail();
	}
	EVP_PKEY_CTX_free(ctx);
	key = crypto_key_wrap(pkey, 1);
	if (key == NULL)
		return crypto_fail();
	assert(key->type == type);
	*out = key;
	return 0;
}

char *
crypto_key_private_pem(const struct crypto_key *key)
{
	BIO *bio;
	char *pem = NULL;

	if (!key->has_private)
		return NULL;
	bio = crypto_bio_new();
	if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL,
	        NULL) == 1)
		pem = crypto_bio_string(bio);
	else
		ERR_clear_error();
	{ /* a memory BIO frees its buffer without wiping it */
		char *data;
		long n = BIO_get_mem_data(bio, &data);

		if (n > 0)
			OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(bio);
	return pem;
}

char *
crypto_key_public_pem(const struct crypto_key *key)
{
	BIO *bio = crypto_bio_new();
	char *pem;

	if (PEM_write_bio_PUBKEY(bio, key->pkey) != 1)
		fatal("PEM_write_bio_PUBKEY failed");
	pem = crypto_bio_string(bio);
	BIO_free(bio);
	return pem;
}

enum crypto_key_type
crypto_key_type_of(const struct crypto_key *key)
{
	return key->type;
}

void
crypto_key_spki_sha256_hex(const struct crypto_key *key,
    char out[CRYPTO_SHA256_HEX_SIZE])
{
	struct crypto_key_cache *c = key->cache;
	unsigned char *der = NULL;
	int n;

	/* Encoding a provider key's SPKI looks its encoder up every time:
	 * once per key is enough. Racing threads write the same bytes. */
	if (__atomic_load_n(&c->spki_set, __ATOMIC_ACQUIRE) == 1) {
		memcpy(out, c->spki_sha256, CRYPTO_SHA256_HEX_SIZE);
		return;
	}
	n = i2d_PUBKEY(key->pkey, &der);
	if (n <= 0)
		fatal("i2d_PUBKEY failed");
	crypto_sha256_hex(der, (size_t)n, out);
	OPENSSL_free(der);
	int unset = 0; /* 0 unset, 2 being written, 1 set */
	if (__atomic_compare_exchange_n(&c->spki_set, &unset, 2, 0,
	        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		memcpy(c->spki_sha256, out, CRYPTO_SHA256_HEX_SIZE);
		__atomic_store_n(&c->spki_set, 1, __ATOMIC_RELEASE);
	}
}

void
crypto_key_free(struct crypto_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	EVP_MD_CTX_free(key->cache->prepared[0]);
	EVP_MD_CTX_free(key->cache->prepared[1]);
	free(key->cache);
	free(key);
}

/* Starts a DigestSign or DigestVerify with the rules of the key's type and
 * returns 0, or -1 for a key that may not sign. The EVP_PKEY_CTX belongs to
 * mdctx. */
static EVP_MD *fetched_mds[2];
static pthread_once_t fetched_mds_once = PTHREAD_ONCE_INIT;

static void
fetch_mds(void)
{
	fetched_mds[CRYPTO_MD_SHA256] = EVP_MD_fetch(NULL, "SHA256", NULL);
	fetched_mds[CRYPTO_MD_SM3] = EVP_MD_fetch(NULL, "SM3", NULL);
	if (fetched_mds[CRYPTO_MD_SHA256] == NULL ||
	    fetched_mds[CRYPTO_MD_SM3] == NULL)
		fatal("OpenSSL has no SHA256 or SM3 digest");
}

const EVP_MD *
crypto_md(enum crypto_md which)
{
	pthread_once(&fetched_mds_once, fetch_mds);
	return fetched_mds[which];
}

static int
digest_init_fresh(EVP_MD_CTX *mdctx, const struct crypto_key *key, int signing)
{
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	int rc;

	switch (key->type) {
	case CRYPTO_KEY_RSA:
	case CRYPTO_KEY_EC_P256:
		md = crypto_md(CRYPTO_MD_SHA256);
		break;
	case CRYPTO_KEY_SM2:
		md = crypto_md(CRYPTO_MD_SM3);
		break;
	default:
		return -1;
	}
	/* The digest fetched once per process (crypto_md); the signature
	 * algorithm is still looked up per init, hence the prepared contexts
	 * below for keys used again. */
	if (signing)
		rc = EVP_DigestSignInit(mdctx, &pctx, md, NULL, key->pkey);
	else
		rc = EVP_DigestVerifyInit(mdctx, &pctx, md, NULL, key->pkey);
	if (rc != 1)
		return crypto_fail();
	if (key->type == CRYPTO_KEY_RSA &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		return crypto_fail();
	/* Before the first update: the ID goes into the Z digest. */
	if (key->type == CRYPTO_KEY_SM2 &&
	    EVP_PKEY_CTX_set1_id(pctx, CRYPTO_SM2_DISTID,
	        (int)strlen(CRYPTO_SM2_DISTID)) <= 0)
		return crypto_fail();
	return 0;
}

/* A fresh init fetches the digest and the signature algorithm and sets the
 * key up in the provider each time (method-store look-ups under a lock). A
 * key used a second time gets a prepared context, made once, which every
 * later use copies: the copy carries the algorithms, the padding, SM3 and
 * the SM2 ID (the Z digest is still computed per message). A key used once
 * (a certificate's key checked for one login) pays for no preparation. */
int
crypto_digest_init(EVP_MD_CTX *mdctx, const struct crypto_key *key, int signing)
{
	struct crypto_key_cache *c = key->cache;
	EVP_MD_CTX *prep;

	signing = signing ? 1 : 0;
	prep = __atomic_load_n(&c->prepared[signing], __ATOMIC_ACQUIRE);
	if (prep == NULL &&
	    __atomic_add_fetch(&c->uses[signing], 1, __ATOMIC_RELAXED) >= 2) {
		EVP_MD_CTX *fresh = crypto_md_ctx_new(), *none = NULL;

		if (digest_init_fresh(fresh, key, signing) != 0) {
			EVP_MD_CTX_free(fresh);
			return -1;
		}
		if (__atomic_compare_exchange_n(&c->prepared[signing], &none,
		        fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			prep = fresh;
		else {
			EVP_MD_CTX_free(fresh); /* another thread's won */
			prep = none;
		}
	}
	if (prep == NULL)
		return digest_init_fresh(mdctx, key, signing);
	if (EVP_MD_CTX_copy_ex(mdctx, prep) != 1)
		return crypto_fail();
	return 0;
}

EVP_MD_CTX *
crypto_md_ctx_new(void)
{
	EVP_MD_CTX *mdctx = EVP_MD_CTX_new();

	if (mdctx == NULL)
		fatal("out of memory (EVP_MD_CTX)");
	return mdctx;
}

int
crypto_sign(const struct crypto_key *key, const void *msg, size_t msg_len,
    unsigned char **sig, size_t *sig_len)
{
	EVP_MD_CTX *mdctx;
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (!key->has_private)
		return -1;
	mdctx = crypto_md_ctx_new();
	/* The largest signature the key makes; ECDSA and SM2 DER come out
	 * shorter. (Asking EVP_DigestSign for the size would hash msg once
	 * too often.) */
	len = (size_t)EVP_PKEY_get_size(key->pkey);
	buf = xmalloc(len);
	if (crypto_digest_init(mdctx, key, 1) != 0 ||
	    EVP_DigestSign(mdctx, buf, &len, msg, msg_len) != 1)
		goto out;
	*sig = buf;
	*sig_len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(mdctx);
	return rc == 0 ? 0 : crypto_fail();
}

int
crypto_verify_sig(const struct crypto_key *key, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *mdctx;
	int ok = 0;

	if (key == NULL || sig_len == 0)
		return -1;
	int64_t t0 = hist_now();
	mdctx = crypto_md_ctx_new();
	if (crypto_digest_init(mdctx, key, 0) == 0)
		ok = EVP_DigestVerify(mdctx, sig, sig_len, msg, msg_len) == 1;
	EVP_MD_CTX_free(mdctx);
	hist_step(STEP_SIG_VERIFY, t0);
	return ok ? 0 : crypto_fail();
}

char *
crypto_key_private_pem_encrypted(const struct crypto_key *key,
    const char *passphrase)
{
	BIO *bio;
	char *pem = NULL;

	if (!key->has_private)
		return NULL;
	bio = crypto_bio_new();
	/* With no callback, u is the NUL-terminated passphrase. */
	if (PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, EVP_aes_256_cbc(),
	        NULL, 0, NULL, (void *)(uintptr_t)passphrase) == 1)
		pem = crypto_bio_string(bio);
	else
		ERR_clear_error();
	BIO_free(bio);
	return pem;
}

int
crypto_key_load_pem_encrypted(struct crypto_key **out, const char *pem,
    const char *passphrase)
{
	BIO *bio = crypto_bio_reader(pem);
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL,
	    (void *)(uintptr_t)passphrase);

	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return -1;
	*out = crypto_key_wrap(pkey, 1);
	return *out ? 0 : -1;
}

void
crypto_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

int
crypto_key_bits(const struct crypto_key *key)
{
	return EVP_PKEY_get_bits(key->pkey);
}
