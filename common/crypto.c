/* crypto — OpenSSL 3 (EVP, provider APIs only) behind caplat's own types:
 * random, base64, SHA-256/HMAC, scrypt, keys and signatures, certificates,
 * chains and CSRs. SM2 rules of DOMAIN.md §1: SM3 and the distinguishing ID
 * 1234567812345678 on every SM2 signature and every SM2-signed certificate. */
#include "crypto.h"

#include "util.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEM_FILE (1024 * 1024)
#define MAX_CARRIED_CHAIN 8

struct crypto_key {
	EVP_PKEY *pkey;
	enum crypto_key_type type;
	int has_private;
};

struct crypto_x509 {
	X509 *cert;
	STACK_OF(X509) * chain; /* carried intermediates, may be empty */
};

struct crypto_x509_req {
	X509_REQ *req;
};

struct crypto_trust {
	X509_STORE *store;              /* self-signed roots: trust anchors */
	STACK_OF(X509) * intermediates; /* untrusted, for building chains */
};

/* OSSL_PARAM constructors take void * for buffers they only read. */
static void *
unconst(const void *p)
{
	return (void *)(uintptr_t)p;
}

/* A library that returns -1 leaves nothing behind in the thread's OpenSSL
 * error queue for the next, unrelated caller to trip on. */
static int
ossl_fail(void)
{
	ERR_clear_error();
	return -1;
}

static BIO *
mem_bio_new(void)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (bio == NULL)
		fatal("out of memory (BIO)");
	return bio;
}

static BIO *
mem_bio_reader(const char *s)
{
	BIO *bio = BIO_new_mem_buf(s, -1);

	if (bio == NULL)
		fatal("out of memory (BIO)");
	return bio;
}

/* Returns a new string with everything written to the memory BIO. */
static char *
mem_bio_string(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	return xstrndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
}

/* Never prompts for a PEM pass phrase: encrypted keys are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int
read_file(char **out, const char *path)
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
	return rc == 0 ? 0 : ossl_fail();
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
static struct crypto_key *
key_wrap(EVP_PKEY *pkey, int has_private)
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
	return key;
}

/* Returns a new public-only key for pkey (borrowed), or NULL. */
static struct crypto_key *
key_wrap_public(EVP_PKEY *pkey)
{
	if (pkey == NULL || EVP_PKEY_up_ref(pkey) != 1)
		return NULL;
	return key_wrap(pkey, 0);
}

int
crypto_key_load_pem(struct crypto_key **out, const char *pem)
{
	struct crypto_key *key;
	EVP_PKEY *pkey;
	X509 *cert;
	BIO *bio;

	bio = mem_bio_reader(pem);
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey != NULL) {
		key = key_wrap(pkey, 1);
		goto done;
	}
	bio = mem_bio_reader(pem);
	pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey != NULL) {
		key = key_wrap(pkey, 0);
		goto done;
	}
	bio = mem_bio_reader(pem);
	cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	key = cert ? key_wrap_public(X509_get0_pubkey(cert)) : NULL;
	X509_free(cert);
done:
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

	if (read_file(&pem, path) != 0)
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
		return ossl_fail();
	}
	EVP_PKEY_CTX_free(ctx);
	key = key_wrap(pkey, 1);
	if (key == NULL)
		return ossl_fail();
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
	bio = mem_bio_new();
	if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL,
	        NULL) == 1)
		pem = mem_bio_string(bio);
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
	BIO *bio = mem_bio_new();
	char *pem;

	if (PEM_write_bio_PUBKEY(bio, key->pkey) != 1)
		fatal("PEM_write_bio_PUBKEY failed");
	pem = mem_bio_string(bio);
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
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key->pkey, &der);

	if (n <= 0)
		fatal("i2d_PUBKEY failed");
	crypto_sha256_hex(der, (size_t)n, out);
	OPENSSL_free(der);
}

void
crypto_key_free(struct crypto_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

/* Starts a DigestSign or DigestVerify with the rules of the key's type and
 * returns 0, or -1 for a key that may not sign. The EVP_PKEY_CTX belongs to
 * mdctx. */
static int
digest_init(EVP_MD_CTX *mdctx, const struct crypto_key *key, int signing)
{
	EVP_PKEY_CTX *pctx = NULL;
	const char *md;
	int rc;

	switch (key->type) {
	case CRYPTO_KEY_RSA:
	case CRYPTO_KEY_EC_P256:
		md = "SHA256";
		break;
	case CRYPTO_KEY_SM2:
		md = "SM3";
		break;
	default:
		return -1;
	}
	if (signing)
		rc = EVP_DigestSignInit_ex(mdctx, &pctx, md, NULL, NULL,
		    key->pkey, NULL);
	else
		rc = EVP_DigestVerifyInit_ex(mdctx, &pctx, md, NULL, NULL,
		    key->pkey, NULL);
	if (rc != 1)
		return ossl_fail();
	if (key->type == CRYPTO_KEY_RSA &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		return ossl_fail();
	/* Before the first update: the ID goes into the Z digest. */
	if (key->type == CRYPTO_KEY_SM2 &&
	    EVP_PKEY_CTX_set1_id(pctx, CRYPTO_SM2_DISTID,
	        (int)strlen(CRYPTO_SM2_DISTID)) <= 0)
		return ossl_fail();
	return 0;
}

static EVP_MD_CTX *
md_ctx_new(void)
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
	mdctx = md_ctx_new();
	/* The largest signature the key makes; ECDSA and SM2 DER come out
	 * shorter. (Asking EVP_DigestSign for the size would hash msg once
	 * too often.) */
	len = (size_t)EVP_PKEY_get_size(key->pkey);
	buf = xmalloc(len);
	if (digest_init(mdctx, key, 1) != 0 ||
	    EVP_DigestSign(mdctx, buf, &len, msg, msg_len) != 1)
		goto out;
	*sig = buf;
	*sig_len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(mdctx);
	return rc == 0 ? 0 : ossl_fail();
}

int
crypto_verify_sig(const struct crypto_key *key, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *mdctx;
	int ok = 0;

	if (key == NULL || sig_len == 0)
		return -1;
	mdctx = md_ctx_new();
	if (digest_init(mdctx, key, 0) == 0)
		ok = EVP_DigestVerify(mdctx, sig, sig_len, msg, msg_len) == 1;
	EVP_MD_CTX_free(mdctx);
	return ok ? 0 : ossl_fail();
}

/* ---- Certificates ---- */

/* The ID goes on the object whose signature is checked, so on every
 * SM2-signed certificate: the leaf and each issuing CA (DOMAIN.md §1). */
/* Returns a new octet string holding CRYPTO_SM2_DISTID, or NULL. */
static ASN1_OCTET_STRING *
sm2_distid_new(void)
{
	ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();

	if (id == NULL ||
	    ASN1_OCTET_STRING_set(id, (const unsigned char *)CRYPTO_SM2_DISTID,
	        (int)strlen(CRYPTO_SM2_DISTID)) != 1) {
		ASN1_OCTET_STRING_free(id);
		return NULL;
	}
	return id;
}

static int
x509_set_distid(X509 *x)
{
	ASN1_OCTET_STRING *id;

	if (X509_get_signature_nid(x) != NID_SM2_with_SM3)
		return 0;
	if ((id = sm2_distid_new()) == NULL)
		return ossl_fail();
	X509_set0_distinguishing_id(x, id);
	return 0;
}

static int
x509_req_set_distid(X509_REQ *req)
{
	ASN1_OCTET_STRING *id;

	if (X509_REQ_get_signature_nid(req) != NID_SM2_with_SM3)
		return 0;
	if ((id = sm2_distid_new()) == NULL)
		return ossl_fail();
	X509_REQ_set0_distinguishing_id(req, id);
	return 0;
}

/* Appends every certificate of pem to certs, at most max of them (0: no
 * limit). Returns how many were read, or -1 on bad PEM or too many. */
static int
pem_read_certs(STACK_OF(X509) * certs, const char *pem, int max)
{
	BIO *bio = mem_bio_reader(pem);
	int count = 0;
	X509 *x;

	for (;;) {
		unsigned long err;

		x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
		if (x == NULL) {
			err = ERR_peek_last_error();
			if (ERR_GET_LIB(err) == ERR_LIB_PEM &&
			    ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
				break; /* no more certificates */
			count = -1;
			break;
		}
		if ((max > 0 && count == max) || x509_set_distid(x) != 0 ||
		    !sk_X509_push(certs, x)) {
			X509_free(x);
			count = -1;
			break;
		}
		count++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return count;
}

static char *
name_rfc2253(const X509_NAME *name)
{
	/* RFC 2253, but UTF-8 stays readable instead of \XX escapes. */
	unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
	BIO *bio = mem_bio_new();
	char *s = NULL;

	if (X509_NAME_print_ex(bio, name, 0, flags) >= 0)
		s = mem_bio_string(bio);
	BIO_free(bio);
	if (s == NULL)
		ERR_clear_error();
	return s;
}

/* Sets *out to a new UTF-8 string with the first value of nid in name, or to
 * NULL when there is none. Returns -1 for a value that is not text. */
static int
name_value(char **out, const X509_NAME *name, int nid)
{
	const ASN1_STRING *v;
	unsigned char *utf8;
	int i, n;

	*out = NULL;
	i = X509_NAME_get_index_by_NID(name, nid, -1);
	if (i < 0)
		return 0;
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	n = ASN1_STRING_to_UTF8(&utf8, v);
	if (n < 0)
		return ossl_fail();
	/* An embedded NUL would let "master\0x" pass for "master". */
	if (memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_free(utf8);
		return -1;
	}
	*out = xstrndup((const char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return 0;
}

static int
subject_fill(struct crypto_subject *subject, const X509_NAME *name)
{
	if (name_value(&subject->c, name, NID_countryName) != 0 ||
	    name_value(&subject->o, name, NID_organizationName) != 0 ||
	    name_value(&subject->ou, name, NID_organizationalUnitName) != 0 ||
	    name_value(&subject->cn, name, NID_commonName) != 0 ||
	    name_value(&subject->org_id, name, NID_organizationIdentifier) != 0)
		return -1;
	return 0;
}

static void
subject_free(struct crypto_subject *subject)
{
	free(subject->c);
	free(subject->o);
	free(subject->ou);
	free(subject->cn);
	free(subject->org_id);
}

static int
asn1_time_get(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return ossl_fail();
	*out = timegm(&tm);
	return 0;
}

static char *
serial_hex(const X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL, *s = NULL;

	if (hex != NULL)
		s = xstrdup(hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return s;
}

/* Fills cert from its x509 member. Returns 0, or -1 with fields half set
 * (crypto_cert_free() cleans up). */
static int
cert_fill(struct crypto_cert *cert)
{
	X509 *x = cert->x509->cert;
	unsigned char *der = NULL;
	BIO *bio;
	int n;

	cert->serial = serial_hex(x);
	cert->issuer_dn = name_rfc2253(X509_get_issuer_name(x));
	cert->subject_dn = name_rfc2253(X509_get_subject_name(x));
	if (cert->serial == NULL || cert->issuer_dn == NULL ||
	    cert->subject_dn == NULL)
		return ossl_fail();
	if (subject_fill(&cert->subject, X509_get_subject_name(x)) != 0)
		return -1;
	if (asn1_time_get(X509_get0_notBefore(x), &cert->not_before) != 0 ||
	    asn1_time_get(X509_get0_notAfter(x), &cert->not_after) != 0)
		return -1;
	cert->key = key_wrap_public(X509_get0_pubkey(x));
	if (cert->key == NULL)
		return ossl_fail();
	cert->key_type = cert->key->type;
	crypto_key_spki_sha256_hex(cert->key, cert->spki_sha256);
	n = i2d_X509(x, &der);
	if (n <= 0)
		return ossl_fail();
	crypto_sha256_hex(der, (size_t)n, cert->fingerprint_sha256);
	OPENSSL_free(der);
	bio = mem_bio_new();
	if (PEM_write_bio_X509(bio, x) == 1)
		cert->pem = mem_bio_string(bio);
	BIO_free(bio);
	return cert->pem ? 0 : ossl_fail();
}

int
crypto_cert_parse(struct crypto_cert **out, const char *pem,
    const char *extra_chain_pem)
{
	struct crypto_cert *cert = xcalloc(1, sizeof(*cert));
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (certs == NULL)
		fatal("out of memory (STACK_OF(X509))");
	cert->x509 = xcalloc(1, sizeof(*cert->x509));
	if (pem_read_certs(certs, pem, MAX_CARRIED_CHAIN + 1) < 1 ||
	    (extra_chain_pem != NULL &&
	        pem_read_certs(certs, extra_chain_pem, 0) < 0) ||
	    sk_X509_num(certs) > MAX_CARRIED_CHAIN + 1) {
		sk_X509_pop_free(certs, X509_free);
		crypto_cert_free(cert);
		return -1;
	}
	cert->x509->cert = sk_X509_shift(certs);
	cert->x509->chain = certs;
	if (cert_fill(cert) != 0) {
		crypto_cert_free(cert);
		return -1;
	}
	*out = cert;
	return 0;
}

void
crypto_cert_free(struct crypto_cert *cert)
{
	if (cert == NULL)
		return;
	free(cert->serial);
	free(cert->issuer_dn);
	free(cert->subject_dn);
	subject_free(&cert->subject);
	free(cert->pem);
	crypto_key_free(cert->key);
	if (cert->x509 != NULL) {
		X509_free(cert->x509->cert);
		sk_X509_pop_free(cert->x509->chain, X509_free);
		free(cert->x509);
	}
	free(cert);
}

/* ---- Trust store and chain verification ---- */

int
crypto_trust_load_pem(struct crypto_trust **out, const char *pem_bundle)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct crypto_trust *trust;
	int roots = 0;

	if (certs == NULL)
		fatal("out of memory (STACK_OF(X509))");
	if (pem_read_certs(certs, pem_bundle, 0) < 1) {
		sk_X509_pop_free(certs, X509_free);
		return -1;
	}
	trust = xcalloc(1, sizeof(*trust));
	trust->store = X509_STORE_new();
	trust->intermediates = sk_X509_new_null();
	if (trust->store == NULL || trust->intermediates == NULL)
		fatal("out of memory (X509_STORE)");
	/* The store and the stack keep these very objects, and with them the
	 * distinguishing IDs pem_read_certs() set. */
	while (sk_X509_num(certs) > 0) {
		X509 *x = sk_X509_shift(certs);

		if (X509_self_signed(x, 0) == 1) {
			if (X509_STORE_add_cert(trust->store, x) != 1) {
				X509_free(x);
				goto err;
			}
			X509_free(x);
			roots++;
		} else if (!sk_X509_push(trust->intermediates, x)) {
			X509_free(x);
			goto err;
		}
	}
	sk_X509_free(certs);
	if (roots == 0) {
		crypto_trust_free(trust);
		return -1;
	}
	*out = trust;
	return 0;
err:
	sk_X509_pop_free(certs, X509_free);
	crypto_trust_free(trust);
	return ossl_fail();
}

int
crypto_trust_load(struct crypto_trust **out, const char *pem_bundle_path)
{
	char *pem;
	int rc;

	if (read_file(&pem, pem_bundle_path) != 0)
		return -1;
	rc = crypto_trust_load_pem(out, pem);
	free(pem);
	return rc;
}

void
crypto_trust_free(struct crypto_trust *trust)
{
	if (trust == NULL)
		return;
	X509_STORE_free(trust->store);
	sk_X509_pop_free(trust->intermediates, X509_free);
	free(trust);
}

const char *
crypto_cert_status_name(enum crypto_cert_status status)
{
	switch (status) {
	case CRYPTO_CERT_OK:
		return "ok";
	case CRYPTO_CERT_UNTRUSTED:
		return "untrusted";
	case CRYPTO_CERT_EXPIRED:
		return "expired";
	case CRYPTO_CERT_NOT_YET_VALID:
		return "not_yet_valid";
	}
	return "untrusted";
}

struct verify_outcome {
	int time_error; /* first date error, verification went on */
	int error;      /* first other error, verification stopped */
	int error_depth;
	int time_depth;
};

/* Lets date errors pass and records them, so that an untrusted chain is
 * reported as untrusted even when it has also expired. */
static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
	struct verify_outcome *outcome = X509_STORE_CTX_get_app_data(ctx);
	int err;

	if (ok)
		return 1;
	err = X509_STORE_CTX_get_error(ctx);
	if (err == X509_V_ERR_CERT_HAS_EXPIRED ||
	    err == X509_V_ERR_CERT_NOT_YET_VALID) {
		if (outcome->time_error == 0) {
			outcome->time_error = err;
			outcome->time_depth =
			    X509_STORE_CTX_get_error_depth(ctx);
		}
		return 1;
	}
	if (outcome->error == 0) {
		outcome->error = err;
		outcome->error_depth = X509_STORE_CTX_get_error_depth(ctx);
	}
	return 0;
}

enum crypto_cert_status
crypto_cert_verify_explain(const struct crypto_trust *trust,
    const struct crypto_cert *cert, time_t at, char *why, size_t why_size)
{
	struct verify_outcome outcome = {0};
	enum crypto_cert_status status = CRYPTO_CERT_UNTRUSTED;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int rc, i;

	if (why_size > 0)
		why[0] = '\0';
	if (ctx == NULL || untrusted == NULL)
		fatal("out of memory (X509_STORE_CTX)");
	/* Borrowed pointers: the same objects, with their SM2 IDs. */
	for (i = 0; i < sk_X509_num(cert->x509->chain); i++)
		if (!sk_X509_push(untrusted,
		        sk_X509_value(cert->x509->chain, i)))
			fatal("out of memory (STACK_OF(X509))");
	for (i = 0; i < sk_X509_num(trust->intermediates); i++)
		if (!sk_X509_push(untrusted,
		        sk_X509_value(trust->intermediates, i)))
			fatal("out of memory (STACK_OF(X509))");
	if (X509_STORE_CTX_init(ctx, trust->store, cert->x509->cert,
	        untrusted) != 1) {
		if (why_size > 0)
			snprintf(why, why_size, "X509_STORE_CTX_init failed");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, at);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	X509_STORE_CTX_set_app_data(ctx, &outcome);
	rc = X509_verify_cert(ctx);
	if (rc == 1 && outcome.error == 0) {
		if (outcome.time_error == X509_V_ERR_CERT_HAS_EXPIRED)
			status = CRYPTO_CERT_EXPIRED;
		else if (outcome.time_error == X509_V_ERR_CERT_NOT_YET_VALID)
			status = CRYPTO_CERT_NOT_YET_VALID;
		else
			status = CRYPTO_CERT_OK;
		if (status != CRYPTO_CERT_OK && why_size > 0)
			snprintf(why, why_size, "%s (depth %d)",
			    X509_verify_cert_error_string(outcome.time_error),
			    outcome.time_depth);
	} else if (why_size > 0) {
		int err = outcome.error ? outcome.error
		                        : X509_STORE_CTX_get_error(ctx);

		snprintf(why, why_size, "%s (depth %d)",
		    X509_verify_cert_error_string(err),
		    outcome.error ? outcome.error_depth
		                  : X509_STORE_CTX_get_error_depth(ctx));
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	return status;
}

enum crypto_cert_status
crypto_cert_verify(const struct crypto_trust *trust,
    const struct crypto_cert *cert, time_t at)
{
	return crypto_cert_verify_explain(trust, cert, at, NULL, 0);
}

/* ---- Certificate signing requests ---- */

int
crypto_csr_parse_verify(struct crypto_csr **out, const char *csr_pem)
{
	struct crypto_csr *csr = xcalloc(1, sizeof(*csr));
	BIO *bio = mem_bio_reader(csr_pem);
	X509_REQ *req;
	EVP_PKEY *pkey;

	req = PEM_read_bio_X509_REQ(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	csr->req = xcalloc(1, sizeof(*csr->req));
	csr->req->req = req;
	if (req == NULL || x509_req_set_distid(req) != 0)
		goto err;
	pkey = X509_REQ_get0_pubkey(req);
	if (pkey == NULL || X509_REQ_verify(req, pkey) != 1)
		goto err;
	csr->subject_dn = name_rfc2253(X509_REQ_get_subject_name(req));
	if (csr->subject_dn == NULL ||
	    subject_fill(&csr->subject, X509_REQ_get_subject_name(req)) != 0)
		goto err;
	csr->key = key_wrap_public(pkey);
	if (csr->key == NULL)
		goto err;
	csr->key_type = csr->key->type;
	crypto_key_spki_sha256_hex(csr->key, csr->spki_sha256);
	bio = mem_bio_new();
	if (PEM_write_bio_X509_REQ(bio, req) == 1)
		csr->pem = mem_bio_string(bio);
	BIO_free(bio);
	if (csr->pem == NULL)
		goto err;
	*out = csr;
	return 0;
err:
	crypto_csr_free(csr);
	return ossl_fail();
}

void
crypto_csr_free(struct crypto_csr *csr)
{
	if (csr == NULL)
		return;
	free(csr->subject_dn);
	subject_free(&csr->subject);
	free(csr->pem);
	crypto_key_free(csr->key);
	if (csr->req != NULL) {
		X509_REQ_free(csr->req->req);
		free(csr->req);
	}
	free(csr);
}

int
crypto_csr_create(char **out_pem, const struct crypto_key *key,
    const struct crypto_cert *subject_from)
{
	X509_REQ *req;
	EVP_MD_CTX *mdctx;
	BIO *bio;
	char *pem = NULL;

	if (!key->has_private || key->type == CRYPTO_KEY_OTHER)
		return -1;
	req = X509_REQ_new();
	if (req == NULL)
		fatal("out of memory (X509_REQ)");
	mdctx = md_ctx_new();
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req,
	        X509_get_subject_name(subject_from->x509->cert)) != 1 ||
	    X509_REQ_set_pubkey(req, key->pkey) != 1 ||
	    digest_init(mdctx, key, 1) != 0 ||
	    X509_REQ_sign_ctx(req, mdctx) <= 0)
		goto out;
	bio = mem_bio_new();
	if (PEM_write_bio_X509_REQ(bio, req) == 1)
		pem = mem_bio_string(bio);
	BIO_free(bio);
out:
	EVP_MD_CTX_free(mdctx);
	X509_REQ_free(req);
	if (pem == NULL)
		return ossl_fail();
	*out_pem = pem;
	return 0;
}

char *
crypto_key_private_pem_encrypted(const struct crypto_key *key,
    const char *passphrase)
{
	BIO *bio;
	char *pem = NULL;

	if (!key->has_private)
		return NULL;
	bio = mem_bio_new();
	/* With no callback, u is the NUL-terminated passphrase. */
	if (PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, EVP_aes_256_cbc(),
	        NULL, 0, NULL, (void *)(uintptr_t)passphrase) == 1)
		pem = mem_bio_string(bio);
	else
		ERR_clear_error();
	BIO_free(bio);
	return pem;
}

int
crypto_key_load_pem_encrypted(struct crypto_key **out, const char *pem,
    const char *passphrase)
{
	BIO *bio = mem_bio_reader(pem);
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL,
	    (void *)(uintptr_t)passphrase);

	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return -1;
	*out = key_wrap(pkey, 1);
	return *out ? 0 : -1;
}

void
crypto_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

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
		return ossl_fail();
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
		return ossl_fail();
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

/* ---- Issuing certificates and CRLs (the local CA of issuance) ---------- */

/* Returns a new ASN1_INTEGER for an upper-case hex serial, or NULL. */
static ASN1_INTEGER *
issue_serial(const char *hex)
{
	size_t n = hex ? strlen(hex) : 0;
	ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;

	if (n == 0 || n > 40 || strspn(hex, "0123456789ABCDEF") != n)
		return NULL;
	if (BN_hex2bn(&bn, hex) != (int)n || BN_is_zero(bn)) {
		BN_free(bn);
		return NULL;
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

/* Adds an extension written in the openssl.cnf syntax; issuer and subject
 * give the key identifiers. Returns 0 or -1. */
static int
issue_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509_NAME *
issue_name(const struct crypto_subject *s)
{
	const struct {
		int nid;
		const char *v;
	} rdns[] = {
	    {NID_countryName, s->c},
	    {NID_organizationName, s->o},
	    {NID_organizationalUnitName, s->ou},
	    {NID_commonName, s->cn},
	    {NID_organizationIdentifier, s->org_id},
	};
	X509_NAME *name = X509_NAME_new();

	if (name == NULL)
		fatal("out of memory (X509_NAME)");
	for (size_t i = 0; i < ARRAY_LEN(rdns); i++) {
		if (rdns[i].v == NULL)
			continue;
		if (X509_NAME_add_entry_by_NID(name, rdns[i].nid, MBSTRING_UTF8,
		        (const unsigned char *)rdns[i].v, -1, -1, 0) != 1) {
			X509_NAME_free(name);
			return NULL;
		}
	}
	return name;
}

/* 1 when key is the private key of cert (same SubjectPublicKeyInfo). */
static int
issue_key_matches(const struct crypto_key *key, const char *spki_sha256)
{
	char spki[CRYPTO_SHA256_HEX_SIZE];

	crypto_key_spki_sha256_hex(key, spki);
	return strcmp(spki, spki_sha256) == 0;
}

/* The one signing path of issued certificates: builds, signs and writes the
 * PEM. pub is the subject's public key (borrowed), name its subject. */
static int
issue_cert(char **out_pem, EVP_PKEY *pub, const X509_NAME *name,
    const struct crypto_cert *issuer, const struct crypto_key *issuer_key,
    const struct crypto_issue_spec *spec)
{
	ASN1_INTEGER *serial = NULL;
	EVP_MD_CTX *mdctx = NULL;
	X509 *x = NULL, *signer;
	char bc[64], *pem = NULL, *cdp = NULL;
	int ok = 0;

	if (!issuer_key->has_private || issuer_key->type == CRYPTO_KEY_OTHER ||
	    spec->not_after <= spec->not_before)
		return -1;
	if (issuer != NULL &&
	    !issue_key_matches(issuer_key, issuer->spki_sha256))
		return -1;
	if ((serial = issue_serial(spec->serial)) == NULL)
		return ossl_fail();
	if ((x = X509_new()) == NULL)
		fatal("out of memory (X509)");
	signer = issuer ? issuer->x509->cert : x;
	if (spec->ca && spec->path_len >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d",
		    spec->path_len);
	else
		snprintf(bc, sizeof(bc), "critical,CA:%s",
		    spec->ca ? "TRUE" : "FALSE");
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_serialNumber(x, serial) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(signer)) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), spec->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), spec->not_after) == NULL ||
	    X509_set_pubkey(x, pub) != 1 ||
	    issue_add_ext(x, signer, NID_basic_constraints, bc) != 0 ||
	    issue_add_ext(x, signer, NID_key_usage,
	        spec->ca ? "critical,keyCertSign,cRLSign"
	                 : "critical,digitalSignature,nonRepudiation") != 0 ||
	    (!spec->ca &&
	        issue_add_ext(x, signer, NID_ext_key_usage, "clientAuth") !=
	            0) ||
	    issue_add_ext(x, signer, NID_subject_key_identifier, "hash") != 0 ||
	    (issuer != NULL &&
	        issue_add_ext(x, signer, NID_authority_key_identifier,
	            "keyid:always") != 0))
		goto out;
	if (!spec->ca && spec->crl_url != NULL && *spec->crl_url) {
		cdp = xasprintf("URI:%s", spec->crl_url);
		if (issue_add_ext(x, signer, NID_crl_distribution_points,
		        cdp) != 0)
			goto out;
	}
	/* digest_init() puts SM3 and the SM2 ID on the signing context. */
	mdctx = md_ctx_new();
	if (digest_init(mdctx, issuer_key, 1) != 0 ||
	    X509_sign_ctx(x, mdctx) <= 0)
		goto out;
	{
		BIO *bio = mem_bio_new();

		if (PEM_write_bio_X509(bio, x) == 1)
			pem = mem_bio_string(bio);
		BIO_free(bio);
	}
	ok = pem != NULL;
out:
	free(cdp);
	EVP_MD_CTX_free(mdctx);
	ASN1_INTEGER_free(serial);
	X509_free(x);
	if (!ok)
		return ossl_fail();
	*out_pem = pem;
	return 0;
}

int
crypto_cert_create(char **out_pem, const struct crypto_key *subject_key,
    const struct crypto_subject *subject, const struct crypto_cert *issuer,
    const struct crypto_key *issuer_key, const struct crypto_issue_spec *spec)
{
	char spki[CRYPTO_SHA256_HEX_SIZE];
	X509_NAME *name;
	int rc;

	if (issuer == NULL) {
		/* Self-signed: the issuer key is the subject's own. */
		crypto_key_spki_sha256_hex(subject_key, spki);
		if (!issue_key_matches(issuer_key, spki))
			return -1;
	}
	if ((name = issue_name(subject)) == NULL)
		return ossl_fail();
	rc = issue_cert(out_pem, subject_key->pkey, name, issuer, issuer_key,
	    spec);
	X509_NAME_free(name);
	return rc;
}

int
crypto_cert_issue(char **out_pem, const struct crypto_csr *csr,
    const struct crypto_cert *subject_from, const struct crypto_cert *issuer,
    const struct crypto_key *issuer_key, const struct crypto_issue_spec *spec)
{
	const X509_NAME *name = subject_from
	    ? X509_get_subject_name(subject_from->x509->cert)
	    : X509_REQ_get_subject_name(csr->req->req);

	if (issuer == NULL)
		return -1;
	return issue_cert(out_pem, csr->key->pkey, name, issuer, issuer_key,
	    spec);
}

int
crypto_key_bits(const struct crypto_key *key)
{
	return EVP_PKEY_get_bits(key->pkey);
}

int
crypto_crl_create(unsigned char **out_der, size_t *out_len,
    const struct crypto_cert *issuer, const struct crypto_key *issuer_key,
    const struct crypto_crl_entry *entries, size_t n, time_t this_update,
    time_t next_update, long number)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t_this = ASN1_TIME_set(NULL, this_update);
	ASN1_TIME *t_next = ASN1_TIME_set(NULL, next_update);
	ASN1_INTEGER *crl_number = ASN1_INTEGER_new();
	EVP_MD_CTX *mdctx = NULL;
	X509_EXTENSION *aki = NULL;
	unsigned char *der = NULL;
	X509V3_CTX v3;
	int ok = 0, len;

	if (crl == NULL || t_this == NULL || t_next == NULL ||
	    crl_number == NULL)
		fatal("out of memory (X509_CRL)");
	if (!issuer_key->has_private || issuer_key->type == CRYPTO_KEY_OTHER ||
	    !issue_key_matches(issuer_key, issuer->spki_sha256))
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl,
	        X509_get_subject_name(issuer->x509->cert)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, t_this) != 1 ||
	    X509_CRL_set1_nextUpdate(crl, t_next) != 1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		ASN1_INTEGER *serial = issue_serial(entries[i].serial);
		ASN1_TIME *when = ASN1_TIME_set(NULL, entries[i].revoked_at);
		X509_REVOKED *r = X509_REVOKED_new();
		int added = 0;

		if (serial != NULL && when != NULL && r != NULL &&
		    X509_REVOKED_set_serialNumber(r, serial) == 1 &&
		    X509_REVOKED_set_revocationDate(r, when) == 1) {
			added = 1;
			if (entries[i].reason != CRYPTO_CRL_UNSPECIFIED) {
				ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();

				added = e != NULL &&
				    ASN1_ENUMERATED_set(e, entries[i].reason) ==
				        1 &&
				    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason,
				        e, 0, 0) == 1;
				ASN1_ENUMERATED_free(e);
			}
		}
		ASN1_INTEGER_free(serial);
		ASN1_TIME_free(when);
		if (!added || X509_CRL_add0_revoked(crl, r) != 1) {
			X509_REVOKED_free(r);
			goto out;
		}
	}
	X509_CRL_sort(crl);
	X509V3_set_ctx(&v3, issuer->x509->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier,
	    "keyid:always");
	if (ASN1_INTEGER_set(crl_number, number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) != 1 ||
	    aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1)
		goto out;
	mdctx = md_ctx_new();
	if (digest_init(mdctx, issuer_key, 1) != 0 ||
	    X509_CRL_sign_ctx(crl, mdctx) <= 0)
		goto out;
	len = i2d_X509_CRL(crl, &der);
	if (len <= 0)
		goto out;
	*out_der = xmalloc((size_t)len);
	memcpy(*out_der, der, (size_t)len);
	*out_len = (size_t)len;
	OPENSSL_free(der);
	ok = 1;
out:
	X509_EXTENSION_free(aki);
	EVP_MD_CTX_free(mdctx);
	ASN1_INTEGER_free(crl_number);
	ASN1_TIME_free(t_this);
	ASN1_TIME_free(t_next);
	X509_CRL_free(crl);
	return ok ? 0 : ossl_fail();
}

int
crypto_crl_verify(const unsigned char *der, size_t len,
    const struct crypto_cert *issuer)
{
	const unsigned char *p = der;
	X509_CRL *crl;
	int ok = 0;

	if (len == 0 || len > LONG_MAX)
		return -1;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (crl == NULL || p != der + len)
		goto out;
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	        X509_get_subject_name(issuer->x509->cert)) != 0)
		goto out;
	if (X509_CRL_get_signature_nid(crl) == NID_SM2_with_SM3) {
		const ASN1_BIT_STRING *sig;
		const X509_ALGOR *alg;
		unsigned char *tbs = NULL;
		int n = i2d_re_X509_CRL_tbs(crl, &tbs);

		X509_CRL_get0_signature(crl, &sig, &alg);
		ok = n > 0 && issuer->key_type == CRYPTO_KEY_SM2 &&
		    crypto_verify_sig(issuer->key, tbs, (size_t)n, sig->data,
		        (size_t)sig->length) == 0;
		OPENSSL_free(tbs);
	} else {
		ok = X509_CRL_verify(crl,
		         X509_get0_pubkey(issuer->x509->cert)) == 1;
	}
out:
	X509_CRL_free(crl);
	return ok ? 0 : ossl_fail();
}
