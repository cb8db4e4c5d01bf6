/* Unit tests for crypto. Chains root → issuing CA → leaf for RSA-2048,
 * P-256 and SM2/SM3 are built here with OpenSSL (group setup), plus one run
 * of tests/ukey/mkpki.sh to prove the CLI-made PKI and ours agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_int.h" /* the structs and crypto_digest_init() */
#include "util.h"

#define B64URL_ALPHABET \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

#define DAY (24L * 3600)
#define ENT_NAME "福州某某建设工程有限公司"
#define ENT_USCC "91350100M000100Y43"

static const enum crypto_key_type algs[] = {
    CRYPTO_KEY_RSA,
    CRYPTO_KEY_EC_P256,
    CRYPTO_KEY_SM2,
};

/* One algorithm's test PKI, all PEM. */
struct chain {
	enum crypto_key_type type;
	struct crypto_key *root_key, *ca_key, *leaf_key, *rogue_key;
	char *root, *ca, *leaf, *expired, *future, *rogue_root, *rogue_ca,
	    *rogue_leaf, *leaf_issued;
};

static struct chain chains[ARRAY_LEN(algs)];
static char *bundle_roots; /* the three roots */
static char *bundle_full;  /* roots and issuing CAs, like roots.pem */
static char *bundle_rogue; /* roots nobody should trust */
static time_t t0;          /* "now" of the fixtures */

/* ---- building certificates with OpenSSL ---- */

static X509_NAME *
make_name(const char *o, const char *ou, const char *cn, const char *org_id)
{
	X509_NAME *name = X509_NAME_new();
	const struct {
		int nid;
		const char *v;
	} rdns[] = {
	    {NID_countryName, "CN"},
	    {NID_organizationName, o},
	    {NID_organizationalUnitName, ou},
	    {NID_commonName, cn},
	    {NID_organizationIdentifier, org_id},
	};

	assert_non_null(name);
	for (size_t i = 0; i < ARRAY_LEN(rdns); i++) {
		const unsigned char *v = (const unsigned char *)rdns[i].v;

		if (v != NULL)
			assert_int_equal(X509_NAME_add_entry_by_NID(name,
			                     rdns[i].nid, MBSTRING_UTF8, v, -1,
			                     -1, 0),
			    1);
	}
	return name;
}

static X509_NAME *
enterprise_name(const char *ou, const char *cn)
{
	return make_name(ENT_NAME, ou, cn, ENT_USCC);
}

static X509_NAME *
ca_name(const char *alg, const char *what)
{
	char cn[64];

	snprintf(cn, sizeof(cn), "test %s %s", alg, what);
	return make_name("caplat test", NULL, cn, NULL);
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static char *
x509_pem(X509 *x)
{
	BIO *bio = crypto_bio_new();
	char *pem;

	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	pem = crypto_bio_string(bio);
	BIO_free(bio);
	return pem;
}

static X509 *
pem_x509(const char *pem)
{
	BIO *bio = crypto_bio_reader(pem);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

/* What make_cert() makes. */
struct cert_spec {
	const struct crypto_key *key; /* the subject's */
	X509_NAME *name;              /* stolen */
	const char *issuer;           /* PEM; NULL: self-signed */
	const struct crypto_key *issuer_key;
	time_t not_before, not_after;
	int is_ca;
	long serial;
};

/* Returns a new PEM certificate as spec says. */
static char *
make_cert(const struct cert_spec *spec)
{
	X509 *x = X509_new();
	X509 *issuer = spec->issuer ? pem_x509(spec->issuer) : NULL;
	X509 *signer = issuer ? issuer : x;
	EVP_MD_CTX *mdctx = crypto_md_ctx_new();
	char *pem;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x),
	                     spec->serial),
	    1);
	assert_int_equal(X509_set_subject_name(x, spec->name), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(signer)),
	    1);
	assert_non_null(
	    ASN1_TIME_set(X509_getm_notBefore(x), spec->not_before));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), spec->not_after));
	assert_int_equal(X509_set_pubkey(x, spec->key->pkey), 1);
	add_ext(x, signer, NID_basic_constraints,
	    spec->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, signer, NID_key_usage,
	    spec->is_ca ? "critical,keyCertSign,cRLSign"
	                : "critical,digitalSignature");
	add_ext(x, signer, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, issuer, NID_authority_key_identifier,
		    "keyid:always");
	/* crypto_digest_init() puts the SM2 ID on the signing context. */
	assert_int_equal(crypto_digest_init(mdctx, spec->issuer_key, 1), 0);
	assert_true(X509_sign_ctx(x, mdctx) > 0);
	pem = x509_pem(x);
	EVP_MD_CTX_free(mdctx);
	X509_NAME_free(spec->name);
	X509_free(issuer);
	X509_free(x);
	return pem;
}

static char *
concat(const char *a, const char *b)
{
	return xasprintf("%s%s", a, b);
}

static void
append(char **s, const char *more)
{
	char *t = concat(*s, more);

	free(*s);
	*s = t;
}

static void
make_chain(struct chain *c, enum crypto_key_type type)
{
	const char *alg = crypto_key_type_name(type);
	time_t ca_from = t0 - 1000 * DAY, ca_until = t0 + 3650 * DAY;

	c->type = type;
	assert_int_equal(crypto_key_generate(&c->root_key, type), 0);
	assert_int_equal(crypto_key_generate(&c->ca_key, type), 0);
	assert_int_equal(crypto_key_generate(&c->leaf_key, type), 0);
	assert_int_equal(crypto_key_generate(&c->rogue_key, type), 0);
	c->root = make_cert(&(struct cert_spec){c->root_key,
	    ca_name(alg, "root"), NULL, c->root_key, ca_from, ca_until, 1, 1});
	c->ca =
	    make_cert(&(struct cert_spec){c->ca_key, ca_name(alg, "issuing CA"),
	        c->root, c->root_key, ca_from, ca_until, 1, 2});
	c->leaf = make_cert(
	    &(struct cert_spec){c->leaf_key, enterprise_name("master", "张三"),
	        c->ca, c->ca_key, t0 - DAY, t0 + 365 * DAY, 0, 0x0A1B2C3D});
	c->expired = make_cert(
	    &(struct cert_spec){c->leaf_key, enterprise_name("master", "张三"),
	        c->ca, c->ca_key, t0 - 400 * DAY, t0 - 35 * DAY, 0, 4});
	c->future = make_cert(
	    &(struct cert_spec){c->leaf_key, enterprise_name("master", "张三"),
	        c->ca, c->ca_key, t0 + 10 * DAY, t0 + 400 * DAY, 0, 5});
	/* A leaf "issued" by a leaf: a right signature, but not by a CA. */
	c->leaf_issued = make_cert(
	    &(struct cert_spec){c->rogue_key, enterprise_name("agent", "王五"),
	        c->leaf, c->leaf_key, t0 - DAY, t0 + 365 * DAY, 0, 6});
	/* A rogue root and a rogue CA with the very names of the real ones. */
	c->rogue_root = make_cert(&(struct cert_spec){c->rogue_key,
	    ca_name(alg, "root"), NULL, c->rogue_key, ca_from, ca_until, 1, 7});
	c->rogue_ca = make_cert(
	    &(struct cert_spec){c->rogue_key, ca_name(alg, "issuing CA"),
	        c->rogue_root, c->rogue_key, ca_from, ca_until, 1, 8});
	c->rogue_leaf = make_cert(
	    &(struct cert_spec){c->leaf_key, enterprise_name("master", "张三"),
	        c->rogue_ca, c->rogue_key, t0 - DAY, t0 + 365 * DAY, 0, 9});
}

static int
setup_chains(void **state)
{
	t0 = time(NULL);
	bundle_roots = xstrdup("");
	bundle_full = xstrdup("");
	bundle_rogue = xstrdup("");
	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		make_chain(&chains[i], algs[i]);
		append(&bundle_roots, chains[i].root);
		append(&bundle_rogue, chains[i].rogue_root);
	}
	append(&bundle_full, bundle_roots);
	for (size_t i = 0; i < ARRAY_LEN(algs); i++)
		append(&bundle_full, chains[i].ca);
	return 0;
}

static int
teardown_chains(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		struct chain *c = &chains[i];

		crypto_key_free(c->root_key);
		crypto_key_free(c->ca_key);
		crypto_key_free(c->leaf_key);
		crypto_key_free(c->rogue_key);
		free(c->root);
		free(c->ca);
		free(c->leaf);
		free(c->expired);
		free(c->future);
		free(c->rogue_root);
		free(c->rogue_ca);
		free(c->rogue_leaf);
		free(c->leaf_issued);
	}
	free(bundle_roots);
	free(bundle_full);
	free(bundle_rogue);
	return 0;
}

/* ---- random, base64, digests ---- */

static void
test_random(void **state)
{
	unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
	char *t1, *t2;

	crypto_random_bytes(a, sizeof(a));
	crypto_random_bytes(b, sizeof(b));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	t1 = crypto_random_token(32);
	t2 = crypto_random_token(32);
	assert_int_equal(strlen(t1), 43);
	assert_int_equal(strspn(t1, B64URL_ALPHABET), 43);
	assert_string_not_equal(t1, t2);
	free(t1);
	free(t2);
	t1 = crypto_random_token(0);
	assert_string_equal(t1, "");
	free(t1);
}

/* Decodes s (standard or URL alphabet) and checks it gives raw. */
static void
assert_decodes(const char *s, int url, const char *raw, size_t raw_len)
{
	unsigned char *out;
	size_t len;
	int rc = url ? crypto_base64url_decode(&out, &len, s, strlen(s))
	             : crypto_base64_decode(&out, &len, s, strlen(s));

	if (rc != 0)
		fail_msg("\"%s\" does not decode", s);
	assert_int_equal(len, raw_len);
	assert_memory_equal(out, raw, raw_len);
	free(out);
}

static void
test_base64_vectors(void **state)
{
	static const struct {
		const char *raw, *std, *url;
	} cases[] = {
	    /* RFC 4648 §10 */
	    {"", "", ""},
	    {"f", "Zg==", "Zg"},
	    {"fo", "Zm8=", "Zm8"},
	    {"foo", "Zm9v", "Zm9v"},
	    {"foob", "Zm9vYg==", "Zm9vYg"},
	    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
	    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
	    /* the two alphabets differ */
	    {"\xfb\xff", "+/8=", "-_8"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		size_t n = strlen(cases[i].raw);
		char *s = crypto_base64_encode(cases[i].raw, n);

		assert_string_equal(s, cases[i].std);
		free(s);
		s = crypto_base64url_encode(cases[i].raw, n);
		assert_string_equal(s, cases[i].url);
		free(s);
		assert_decodes(cases[i].std, 0, cases[i].raw, n);
		assert_decodes(cases[i].url, 1, cases[i].raw, n);
	}
}

static void
test_base64_round_trip(void **state)
{
	char raw[257];

	crypto_random_bytes(raw, sizeof(raw));
	for (size_t n = 0; n <= sizeof(raw); n++) {
		char *std = crypto_base64_encode(raw, n);
		char *url = crypto_base64url_encode(raw, n);

		assert_int_equal(strlen(std), (n + 2) / 3 * 4);
		assert_decodes(std, 0, raw, n);
		assert_decodes(url, 1, raw, n);
		free(std);
		free(url);
	}
}

static void
test_base64_garbage(void **state)
{
	static const char *const bad_std[] = {
	    "Zg=",
	    "Zg",
	    "Z",
	    "Z===",
	    "====",
	    "=",
	    "==",
	    "Zm9v=",
	    "Zm9v====",
	    "Zm9v\n",
	    "Zm9v\r\n",
	    " Zm9v",
	    "Zm9v ",
	    "Zm 9v",
	    "\tZm9v",
	    "=Zm9",
	    "Zm=v",
	    "Zm==Zm9v",
	    "Zg==Zg==",
	    "Zm9v-_8=",
	    "Zm9v_w==",
	    "Zm9v*A==",
	    "Zm9v\xc3\xa9",
	    "Zm9v.",
	    /* unused low bits set */
	    "Zh==",
	    "Zm9=",
	    "Zm9vYh==",
	    "Zm9vYmF=",
	};
	static const char *const bad_url[] = {
	    "Zg==",
	    "Zm8=",
	    "Z",
	    "Zm9vY",
	    "+/8",
	    "Zh",
	    "Zm9",
	    "Zm9v\n",
	    " Zg",
	    "Zg ",
	    "Z g",
	    "Zm9v=",
	    "=",
	};
	unsigned char *out = NULL;
	size_t len = 12345;

	for (size_t i = 0; i < ARRAY_LEN(bad_std); i++) {
		const char *s = bad_std[i];

		if (crypto_base64_decode(&out, &len, s, strlen(s)) != -1)
			fail_msg("std base64 \"%s\" accepted", s);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad_url); i++) {
		const char *s = bad_url[i];

		if (crypto_base64url_decode(&out, &len, s, strlen(s)) != -1)
			fail_msg("url base64 \"%s\" accepted", s);
	}
	assert_null(out);
	assert_int_equal(len, 12345);
	/* The length counts: a NUL inside is a character like any other. */
	assert_int_equal(crypto_base64_decode(&out, &len, "Zm9v\0Zm9v", 9), -1);
	assert_int_equal(crypto_base64_decode(&out, &len, "Zm9vYmFy", 4), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "foo", 3);
	free(out);
}

static void
test_sha256_and_hmac(void **state)
{
	/* RFC 4231 test case 2 */
	static const unsigned char hmac_want[CRYPTO_SHA256_LEN] = {
	    0x5b,
	    0xdc,
	    0xc1,
	    0x46,
	    0xbf,
	    0x60,
	    0x75,
	    0x4e,
	    0x6a,
	    0x04,
	    0x24,
	    0x26,
	    0x08,
	    0x95,
	    0x75,
	    0xc7,
	    0x5a,
	    0x00,
	    0x3f,
	    0x08,
	    0x9d,
	    0x27,
	    0x39,
	    0x83,
	    0x9d,
	    0xec,
	    0x58,
	    0xb9,
	    0x64,
	    0xec,
	    0x38,
	    0x43,
	};
	const char *data = "what do ya want for nothing?";
	unsigned char mac[CRYPTO_SHA256_LEN], md[CRYPTO_SHA256_LEN];
	char hex[CRYPTO_SHA256_HEX_SIZE];

	/* FIPS 180-2 "abc", and the empty message */
	crypto_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	crypto_sha256_hex("", 0, hex);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	crypto_sha256("", 0, md);
	assert_int_equal(md[0], 0xe3);
	crypto_hmac_sha256("Jefe", 4, data, strlen(data), mac);
	assert_memory_equal(mac, hmac_want, sizeof(mac));
	/* RFC 4231 has no empty key: it must differ and not crash. */
	crypto_hmac_sha256(NULL, 0, data, strlen(data), mac);
	assert_memory_not_equal(mac, hmac_want, sizeof(mac));
}

static void
test_ct_equal(void **state)
{
	unsigned char a[64], b[64];

	crypto_random_bytes(a, sizeof(a));
	memcpy(b, a, sizeof(a));
	assert_int_equal(crypto_ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(crypto_ct_equal(a, b, 0), 1);
	b[0] ^= 1;
	assert_int_equal(crypto_ct_equal(a, b, sizeof(a)), 0);
	assert_int_equal(crypto_ct_equal(a + 1, b + 1, sizeof(a) - 1), 1);
	b[0] ^= 1;
	b[63] ^= 0x80;
	assert_int_equal(crypto_ct_equal(a, b, sizeof(a)), 0);
	assert_int_equal(crypto_ct_equal(a, b, 63), 1);
}

/* ---- passwords ---- */

static void
test_password_hash_verify(void **state)
{
	const char *pw = "正确的密码 horse battery";
	char *h1 = crypto_password_hash(pw);
	char *h2 = crypto_password_hash(pw);
	char *tampered;

	assert_true(strncmp(h1, "scrypt$16384$8$1$", 17) == 0);
	assert_string_not_equal(h1, h2); /* salted */
	assert_int_equal(crypto_password_verify(pw, h1), 0);
	assert_int_equal(crypto_password_verify(pw, h2), 0);
	assert_int_equal(crypto_password_verify("正确的密码 horse batterY", h1),
	    -1);
	assert_int_equal(crypto_password_verify("", h1), -1);
	tampered = xstrdup(h1);
	tampered[strlen(tampered) - 3] ^= 1; /* inside the hash, before "=" */
	assert_int_equal(crypto_password_verify(pw, tampered), -1);
	free(tampered);
	free(h1);
	free(h2);
	h1 = crypto_password_hash("");
	assert_int_equal(crypto_password_verify("", h1), 0);
	assert_int_equal(crypto_password_verify(" ", h1), -1);
	free(h1);
}

static void
test_password_known_answer(void **state)
{
	/* RFC 7914 §12, 2nd vector: "password", "NaCl", N=1024, r=8, p=16 */
	static const char stored[] =
	    "scrypt$1024$8$16$TmFDbA==$"
	    "/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSed"
	    "mDDaxyevuUqD7m2DYMvfoswGQA==";

	assert_int_equal(crypto_password_verify("password", stored), 0);
	assert_int_equal(crypto_password_verify("Password", stored), -1);
}

static void
test_password_malformed(void **state)
{
#define SALT "c2FsdHNhbHRzYWx0"         /* "saltsaltsalt" */
#define HASH "aGFzaGhhc2hoYXNoaGFzaA==" /* "hashhashhashhash" */
	static const char *const bad[] = {
	    "",
	    "scrypt",
	    "scrypt$",
	    "bcrypt$16384$8$1$" SALT "$" HASH,
	    "scrypt$16383$8$1$" SALT "$" HASH,
	    "scrypt$0$8$1$" SALT "$" HASH,
	    "scrypt$1$8$1$" SALT "$" HASH,
	    "scrypt$2097152$8$1$" SALT "$" HASH,
	    "scrypt$99999999999999999999$8$1$" SALT "$" HASH,
	    "scrypt$16384$0$1$" SALT "$" HASH,
	    "scrypt$16384$17$1$" SALT "$" HASH,
	    "scrypt$16384$8$0$" SALT "$" HASH,
	    "scrypt$16384$8$17$" SALT "$" HASH,
	    "scrypt$-16384$8$1$" SALT "$" HASH,
	    "scrypt$ 16384$8$1$" SALT "$" HASH,
	    "scrypt$016384$8$1$" SALT "$" HASH,
	    "scrypt$16384$8$1$" SALT,
	    "scrypt$16384$8$1$" SALT "$",
	    "scrypt$16384$8$1$$" HASH,
	    "scrypt$16384$8$1$" SALT "$aGFzaA==", /* hash too short */
	    "scrypt$16384$8$1$" SALT "$" HASH "$",
	    "scrypt$16384$8$1$" SALT "$" HASH " ",
	    "scrypt$16384$8$1$" SALT "$" HASH "\n",
	    "scrypt$16384$8$1$c2FsdH*hbHRzYWx0$" HASH,
	    "scrypt$16384$8$1$" SALT "$aGFzaGhhc2hoYXNoaGFzaA",
	    /* well-formed, but not the hash of "x" */
	    "scrypt$16384$8$1$" SALT "$" HASH,
	};
#undef SALT
#undef HASH

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (crypto_password_verify("x", bad[i]) != -1)
			fail_msg("stored password case %zu accepted", i);
}

/* ---- keys and signatures ---- */

static void
assert_spki(const struct crypto_key *key, const char *want)
{
	char got[CRYPTO_SHA256_HEX_SIZE];

	crypto_key_spki_sha256_hex(key, got);
	assert_string_equal(got, want);
}

static void
test_key_load(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		struct chain *c = &chains[i];
		char *priv = crypto_key_private_pem(c->leaf_key);
		char *pub = crypto_key_public_pem(c->leaf_key);
		char want[CRYPTO_SHA256_HEX_SIZE];
		struct crypto_key *k;

		crypto_key_spki_sha256_hex(c->leaf_key, want);
		assert_non_null(priv);
		assert_non_null(strstr(priv, "-----BEGIN PRIVATE KEY-----"));
		assert_int_equal(crypto_key_load_pem(&k, priv), 0);
		assert_int_equal(crypto_key_type_of(k), c->type);
		assert_true(k->has_private);
		assert_spki(k, want);
		crypto_key_free(k);

		assert_int_equal(crypto_key_load_pem(&k, pub), 0);
		assert_int_equal(crypto_key_type_of(k), c->type);
		assert_false(k->has_private);
		assert_null(crypto_key_private_pem(k));
		assert_spki(k, want);
		crypto_key_free(k);

		/* a certificate gives its public key */
		assert_int_equal(crypto_key_load_pem(&k, c->leaf), 0);
		assert_int_equal(crypto_key_type_of(k), c->type);
		assert_false(k->has_private);
		assert_spki(k, want);
		crypto_key_free(k);
		OPENSSL_cleanse(priv, strlen(priv));
		free(priv);
		free(pub);
	}
}

static void
test_key_load_bad(void **state)
{
	static const char *const bad[] = {
	    "",
	    "garbage",
	    "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n",
	    "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
	};
	struct crypto_key *k = NULL;
	BIO *bio = crypto_bio_new();
	char *encrypted;

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(crypto_key_load_pem(&k, bad[i]), -1);
	assert_int_equal(crypto_key_load_file(&k, "/nonexistent/key.pem"), -1);
	/* An encrypted key is refused without asking for a pass phrase. */
	assert_int_equal(PEM_write_bio_PrivateKey(bio, chains[1].leaf_key->pkey,
	                     EVP_aes_128_cbc(), (const unsigned char *)"secret",
	                     6, NULL, NULL),
	    1);
	encrypted = crypto_bio_string(bio);
	BIO_free(bio);
	assert_non_null(strstr(encrypted, "ENCRYPTED"));
	assert_int_equal(crypto_key_load_pem(&k, encrypted), -1);
	free(encrypted);
	assert_int_equal(crypto_key_generate(&k, CRYPTO_KEY_OTHER), -1);
	assert_null(k);
	assert_int_equal(ERR_peek_error(), 0); /* nothing left behind */
}

static int
verifies(const struct crypto_key *key, const unsigned char *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len)
{
	return crypto_verify_sig(key, msg, msg_len, sig, sig_len) == 0;
}

/* Flips every step-th bit of buf (the message or the signature) in turn:
 * none may verify. */
static void
flips_fail(const struct crypto_key *key, const unsigned char *msg, size_t n,
    const unsigned char *sig, size_t sig_len, unsigned char *buf, size_t len,
    size_t step, const char *name)
{
	for (size_t bit = 0; bit < len * 8; bit += step) {
		unsigned char mask = (unsigned char)(1u << bit % 8);

		buf[bit / 8] ^= mask;
		if (verifies(key, msg, n, sig, sig_len))
			fail_msg("%s: %s bit %zu flipped verifies", name,
			    buf == msg ? "message" : "signature", bit);
		buf[bit / 8] ^= mask;
	}
}

static void
sign_verify_one(size_t alg)
{
	const struct chain *c = &chains[alg];
	const char *name = crypto_key_type_name(c->type);
	unsigned char msg[32], *sig;
	size_t n = sizeof(msg), sig_len;
	struct crypto_cert *cert;

	crypto_random_bytes(msg, n);
	assert_int_equal(crypto_sign(c->leaf_key, msg, n, &sig, &sig_len), 0);
	if (c->type == CRYPTO_KEY_RSA)
		assert_int_equal(sig_len, 256);
	else /* DER SEQUENCE of two INTEGERs */
		assert_true(sig[0] == 0x30 && sig_len <= 72);
	assert_true(verifies(c->leaf_key, msg, n, sig, sig_len));
	/* with the certificate's key, as the login will */
	assert_int_equal(crypto_cert_parse(&cert, c->leaf, NULL), 0);
	assert_true(verifies(cert->key, msg, n, sig, sig_len));

	/* Any flipped bit, in the message or in the signature, fails. */
	flips_fail(cert->key, msg, n, sig, sig_len, sig, sig_len, 7, name);
	flips_fail(cert->key, msg, n, sig, sig_len, msg, n, 5, name);
	assert_false(verifies(cert->key, msg, n - 1, sig, sig_len));
	assert_false(verifies(cert->key, msg, n, sig, sig_len - 1));
	assert_false(verifies(cert->key, msg, n, sig, 0));
	/* another key of the same type, the keys of the other types */
	assert_false(verifies(c->ca_key, msg, n, sig, sig_len));
	for (size_t j = 0; j < ARRAY_LEN(algs); j++)
		if (j != alg)
			assert_false(
			    verifies(chains[j].leaf_key, msg, n, sig, sig_len));
	assert_true(verifies(cert->key, msg, n, sig, sig_len));
	free(sig);
	/* A public key cannot sign. */
	sig = NULL;
	assert_int_equal(crypto_sign(cert->key, msg, n, &sig, &sig_len), -1);
	assert_null(sig);
	crypto_cert_free(cert);
}

static void
test_sign_verify(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(algs); i++)
		sign_verify_one(i);
	assert_int_equal(ERR_peek_error(), 0);
}

/* Signs msg with SM3 through the raw OpenSSL API, with the ID set the way
 * DOMAIN.md spells it or (with_id 0) with OpenSSL's default of none. */
static size_t
raw_sm2_sign(EVP_PKEY *pkey, const char *msg, int with_id,
    unsigned char sig[80])
{
	EVP_MD_CTX *mdctx = crypto_md_ctx_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t sig_len = 80;

	if (with_id) {
		pctx = EVP_PKEY_CTX_new(pkey, NULL);
		assert_non_null(pctx);
		assert_true(
		    EVP_PKEY_CTX_set1_id(pctx, CRYPTO_SM2_DISTID, 16) > 0);
		EVP_MD_CTX_set_pkey_ctx(mdctx, pctx);
	}
	assert_int_equal(EVP_DigestSignInit(mdctx, NULL, EVP_sm3(), NULL, pkey),
	    1);
	assert_int_equal(EVP_DigestSign(mdctx, sig, &sig_len,
	                     (const unsigned char *)msg, strlen(msg)),
	    1);
	EVP_MD_CTX_free(mdctx);
	EVP_PKEY_CTX_free(pctx);
	return sig_len;
}

/* OpenSSL 3.0 signs SM2 with no distinguishing ID unless told: such a
 * signature must not pass for one made by a Chinese USB key. */
static void
test_sm2_distid_required(void **state)
{
	const struct crypto_key *key = chains[2].leaf_key;
	const char *msg = "challenge 8f2c1e";
	unsigned char sig[80];
	size_t sig_len;

	assert_int_equal(key->type, CRYPTO_KEY_SM2);
	sig_len = raw_sm2_sign(key->pkey, msg, 0, sig);
	assert_int_equal(crypto_verify_sig(key, msg, strlen(msg), sig, sig_len),
	    -1);
	sig_len = raw_sm2_sign(key->pkey, msg, 1, sig);
	assert_int_equal(crypto_verify_sig(key, msg, strlen(msg), sig, sig_len),
	    0);
}

/* A key used again signs and checks from a prepared context (issue 16):
 * the same rules as a fresh one, SM2 ID included, for every key type; the
 * SPKI hash is the same worked out once or again. */
static void
test_prepared_contexts_keep_the_rules(void **state)
{
	for (int c = 0; c < 3; c++) {
		const struct crypto_key *key = chains[c].leaf_key;
		char *pem = crypto_key_public_pem(key);
		char spki1[CRYPTO_SHA256_HEX_SIZE],
		    spki2[CRYPTO_SHA256_HEX_SIZE];
		struct crypto_key *pub;
		unsigned char *sig, raw[80];
		size_t sig_len;

		assert_int_equal(crypto_key_load_pem(&pub, pem), 0);
		for (int i = 0; i < 5; i++) {
			/* pub checks each time: fresh, then prepared */
			assert_int_equal(crypto_sign(key, "msg", 3, &sig,
			                     &sig_len),
			    0);
			assert_int_equal(crypto_verify_sig(pub, "msg", 3, sig,
			                     sig_len),
			    0);
			assert_int_equal(crypto_verify_sig(pub, "msh", 3, sig,
			                     sig_len),
			    -1);
			free(sig);
		}
		assert_non_null(pub->cache->prepared[0]);
		if (key->type == CRYPTO_KEY_SM2) {
			size_t n = raw_sm2_sign(key->pkey, "msg", 0, raw);
			assert_int_equal(crypto_verify_sig(pub, "msg", 3, raw,
			                     n),
			    -1);
			n = raw_sm2_sign(key->pkey, "msg", 1, raw);
			assert_int_equal(crypto_verify_sig(pub, "msg", 3, raw,
			                     n),
			    0);
		}
		crypto_key_spki_sha256_hex(pub, spki1);
		crypto_key_spki_sha256_hex(pub, spki2);
		assert_string_equal(spki1, spki2);
		crypto_key_spki_sha256_hex(key, spki2);
		assert_string_equal(spki1, spki2);
		crypto_key_free(pub);
		free(pem);
	}
}

/* The parsed-certificate cache: the same text gives the same read-only
 * cert, freed by each holder; other text another; bad text fails; a cached
 * key checks signatures as a fresh one does. */
static void
test_cert_parse_cached(void **state)
{
	struct crypto_cert *a, *b, *c, *fresh;
	unsigned char *sig;
	size_t sig_len;

	assert_int_equal(crypto_cert_parse_cached(&a, chains[2].leaf), 0);
	assert_int_equal(crypto_cert_parse_cached(&b, chains[2].leaf), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(crypto_cert_parse(&fresh, chains[2].leaf, NULL), 0);
	assert_ptr_not_equal(a, fresh);
	assert_string_equal(a->fingerprint_sha256, fresh->fingerprint_sha256);
	assert_string_equal(a->spki_sha256, fresh->spki_sha256);
	assert_string_equal(a->subject_dn, fresh->subject_dn);
	assert_int_equal(crypto_cert_parse_cached(&c, chains[0].leaf), 0);
	assert_ptr_not_equal(a, c);
	assert_int_equal(crypto_cert_parse_cached(&c, "not a certificate"), -1);
	crypto_cert_free(c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(crypto_sign(chains[2].leaf_key, "n", 1, &sig,
		                     &sig_len),
		    0);
		assert_int_equal(crypto_verify_sig(a->key, "n", 1, sig,
		                     sig_len),
		    0);
		assert_int_equal(crypto_verify_sig(b->key, "m", 1, sig,
		                     sig_len),
		    -1);
		free(sig);
	}
	crypto_cert_free(a);
	/* b (the same object) is still whole */
	assert_string_equal(b->fingerprint_sha256, fresh->fingerprint_sha256);
	crypto_cert_free(b);
	assert_int_equal(crypto_cert_parse_cached(&b, chains[2].leaf), 0);
	assert_string_equal(b->fingerprint_sha256, fresh->fingerprint_sha256);
	crypto_cert_free(b);
	crypto_cert_free(fresh);
	assert_int_equal(crypto_cert_parse_cached(&c, chains[0].leaf), 0);
	crypto_cert_free(c);
}

/* An "EC" key on the SM2 curve must still sign and verify as SM2, as a
 * key pair and as a public key. */
static void
test_sm2_key_typed_ec(void **state)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;
	struct crypto_key *key, *pub, *loaded;
	unsigned char *sig;
	size_t sig_len;
	char *pub_pem;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	if (EVP_PKEY_CTX_set_group_name(ctx, "SM2") != 1 ||
	    EVP_PKEY_generate(ctx, &pkey) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		skip();
	}
	EVP_PKEY_CTX_free(ctx);
	assert_false(EVP_PKEY_is_a(pkey, "SM2"));
	assert_int_equal(EVP_PKEY_up_ref(pkey), 1);
	key = crypto_key_wrap(pkey, 1);
	pub = crypto_key_wrap(pkey, 0); /* converts the public half only */
	assert_non_null(key);
	assert_non_null(pub);
	assert_int_equal(key->type, CRYPTO_KEY_SM2);
	assert_int_equal(pub->type, CRYPTO_KEY_SM2);
	assert_true(EVP_PKEY_is_a(key->pkey, "SM2"));
	assert_true(EVP_PKEY_is_a(pub->pkey, "SM2"));
	assert_int_equal(crypto_sign(key, "m", 1, &sig, &sig_len), 0);
	assert_int_equal(crypto_verify_sig(pub, "m", 1, sig, sig_len), 0);
	assert_int_equal(crypto_sign(pub, "m", 1, &sig, &sig_len), -1);
	pub_pem = crypto_key_public_pem(key);
	assert_int_equal(crypto_key_load_pem(&loaded, pub_pem), 0);
	assert_int_equal(loaded->type, CRYPTO_KEY_SM2);
	assert_int_equal(crypto_verify_sig(loaded, "m", 1, sig, sig_len), 0);
	assert_int_equal(crypto_verify_sig(chains[2].leaf_key, "m", 1, sig,
	                     sig_len),
	    -1);
	free(sig);
	free(pub_pem);
	crypto_key_free(loaded);
	crypto_key_free(pub);
	crypto_key_free(key);
}

/* ---- certificates ---- */

static void
assert_der_sha256(int n, unsigned char *der, const char *want)
{
	char hex[CRYPTO_SHA256_HEX_SIZE];

	assert_true(n > 0);
	crypto_sha256_hex(der, (size_t)n, hex);
	OPENSSL_free(der);
	assert_string_equal(hex, want);
}

static void
test_cert_parse_fields(void **state)
{
	static const char *const want_issuer[] = {
	    "CN=test rsa issuing CA,O=caplat test,C=CN",
	    "CN=test ec_p256 issuing CA,O=caplat test,C=CN",
	    "CN=test sm2 issuing CA,O=caplat test,C=CN",
	};

	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		struct chain *c = &chains[i];
		struct crypto_cert *cert;
		X509 *x = pem_x509(c->leaf);
		unsigned char *der = NULL;
		const ASN1_OCTET_STRING *id;
		int n;

		assert_int_equal(crypto_cert_parse(&cert, c->leaf, NULL), 0);
		assert_string_equal(cert->serial, "0A1B2C3D");
		assert_string_equal(cert->issuer_dn, want_issuer[i]);
		assert_string_equal(cert->subject_dn,
		    "organizationIdentifier=" ENT_USCC ",CN=张三,OU=master,"
		    "O=" ENT_NAME ",C=CN");
		assert_string_equal(cert->subject.c, "CN");
		assert_string_equal(cert->subject.o, ENT_NAME);
		assert_string_equal(cert->subject.ou, "master");
		assert_string_equal(cert->subject.cn, "张三");
		assert_string_equal(cert->subject.org_id, ENT_USCC);
		assert_int_equal(cert->not_before, t0 - DAY);
		assert_int_equal(cert->not_after, t0 + 365 * DAY);
		assert_int_equal(cert->key_type, c->type);
		assert_spki(c->leaf_key, cert->spki_sha256);
		/* the identity is the hash of the certificate's SPKI bytes */
		n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
		assert_der_sha256(n, der, cert->spki_sha256);
		der = NULL;
		n = i2d_X509(x, &der);
		assert_der_sha256(n, der, cert->fingerprint_sha256);
		assert_string_equal(cert->pem, c->leaf);
		assert_int_equal(sk_X509_num(cert->x509->chain), 0);
		/* SM2-signed certificates carry the ID, others none. */
		id = X509_get0_distinguishing_id(cert->x509->cert);
		if (c->type == CRYPTO_KEY_SM2)
			assert_non_null(id);
		else
			assert_null(id);
		X509_free(x);
		crypto_cert_free(cert);
	}
}

static void
test_cert_parse_absent_fields_and_chain(void **state)
{
	struct chain *c = &chains[2];
	struct crypto_cert *cert;
	char *personal = make_cert(&(struct cert_spec){c->leaf_key,
	    make_name(NULL, "personal", "赵六", NULL), c->ca, c->ca_key, t0,
	    t0 + DAY, 0, 0});
	char *with_chain = concat(personal, c->ca);

	assert_int_equal(crypto_cert_parse(&cert, with_chain, c->root), 0);
	assert_string_equal(cert->serial, "0");
	assert_null(cert->subject.o);
	assert_null(cert->subject.org_id);
	assert_string_equal(cert->subject.ou, "personal");
	assert_string_equal(cert->subject_dn, "CN=赵六,OU=personal,C=CN");
	assert_string_equal(cert->pem, personal); /* the leaf alone */
	assert_int_equal(sk_X509_num(cert->x509->chain), 2);
	for (int i = 0; i < 2; i++) /* the CA and the root are SM2-signed */
		assert_non_null(X509_get0_distinguishing_id(
		    sk_X509_value(cert->x509->chain, i)));
	crypto_cert_free(cert);
	free(with_chain);
	free(personal);
}

static void
test_cert_parse_bad(void **state)
{
	const struct chain *c = &chains[1];
	struct crypto_cert *cert = NULL;
	char *truncated = xstrdup(c->leaf), *many = xstrdup("");
	X509_NAME *name = X509_NAME_new();
	char *nul_cn;

	assert_int_equal(crypto_cert_parse(&cert, "", NULL), -1);
	assert_int_equal(crypto_cert_parse(&cert, "no cert", NULL), -1);
	truncated[strlen(truncated) / 2] = '\0';
	assert_int_equal(crypto_cert_parse(&cert, truncated, NULL), -1);
	assert_int_equal(crypto_cert_parse(&cert, c->leaf, truncated), -1);
	for (int i = 0; i < 10; i++)
		append(&many, c->ca);
	assert_int_equal(crypto_cert_parse(&cert, c->leaf, many), -1);
	/* A NUL inside the CN must not cut "master\0..." to "master". */
	assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName,
	                     V_ASN1_UTF8STRING, (const unsigned char *)"a\0b",
	                     3, -1, 0),
	    1);
	nul_cn = make_cert(&(struct cert_spec){c->leaf_key, name, c->ca,
	    c->ca_key, t0, t0 + DAY, 0, 1});
	assert_int_equal(crypto_cert_parse(&cert, nul_cn, NULL), -1);
	assert_null(cert);
	/* A chain without certificates is no chain: ignored. */
	assert_int_equal(crypto_cert_parse(&cert, c->leaf, "garbage"), 0);
	crypto_cert_free(cert);
	free(nul_cn);
	free(truncated);
	free(many);
}

/* Returns the PEM certificate with the last byte of its DER (inside the
 * signature) flipped. */
static char *
tamper_signature(const char *pem)
{
	X509 *x = pem_x509(pem), *y;
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_X509(x, &der);
	char *out;

	der[n - 1] ^= 0x01;
	p = der;
	y = d2i_X509(NULL, &p, n);
	assert_non_null(y);
	out = x509_pem(y);
	X509_free(x);
	X509_free(y);
	OPENSSL_free(der);
	return out;
}

enum bundle { ROOTS, FULL, ROGUE };
enum which { LEAF, EXPIRED, FUTURE, ROGUE_LEAF, LEAF_ISSUED, TAMPERED };
enum carried { NONE, CA, ROGUE_CA };

#define S_OK CRYPTO_CERT_OK
#define S_UNTRUSTED CRYPTO_CERT_UNTRUSTED
#define S_EXPIRED CRYPTO_CERT_EXPIRED
#define S_TOO_NEW CRYPTO_CERT_NOT_YET_VALID

static const struct verify_case {
	const char *what;
	enum bundle bundle;
	enum which cert;
	enum carried carry;
	long at; /* seconds from t0 */
	enum crypto_cert_status want;
} verify_cases[] = {
    {"full bundle", FULL, LEAF, NONE, 0, S_OK},
    {"roots only, CA carried", ROOTS, LEAF, CA, 0, S_OK},
    {"full bundle, CA carried", FULL, LEAF, CA, 0, S_OK},
    {"roots only, no CA", ROOTS, LEAF, NONE, 0, S_UNTRUSTED},
    {"wrong root", ROGUE, LEAF, CA, 0, S_UNTRUSTED},
    {"expired leaf", FULL, EXPIRED, NONE, 0, S_EXPIRED},
    {"expired, CA carried", ROOTS, EXPIRED, CA, 0, S_EXPIRED},
    {"not yet valid", FULL, FUTURE, NONE, 0, S_TOO_NEW},
    {"future leaf, later", FULL, FUTURE, NONE, 20 * DAY, S_OK},
    {"leaf, a year later", FULL, LEAF, NONE, 366 * DAY, S_EXPIRED},
    /* OpenSSL counts notAfter itself as expired */
    {"leaf, last second", FULL, LEAF, NONE, 365 * DAY - 1, S_OK},
    {"leaf, at notAfter", FULL, LEAF, NONE, 365 * DAY, S_EXPIRED},
    {"leaf, at notBefore", FULL, LEAF, NONE, -DAY, S_OK},
    {"leaf, before notBefore", FULL, LEAF, NONE, -DAY - 1, S_TOO_NEW},
    {"leaf, before the CA", FULL, LEAF, NONE, -1001 * DAY, S_TOO_NEW},
    {"expired, in its time", FULL, EXPIRED, NONE, -100 * DAY, S_OK},
    /* anything but the dates outranks the dates */
    {"wrong root and expired", ROGUE, EXPIRED, CA, 0, S_UNTRUSTED},
    {"rogue CA of the same name", FULL, ROGUE_LEAF, ROGUE_CA, 0, S_UNTRUSTED},
    {"rogue CA, roots only", ROOTS, ROGUE_LEAF, ROGUE_CA, 0, S_UNTRUSTED},
    {"rogue chain, rogue root", ROGUE, ROGUE_LEAF, ROGUE_CA, 0, S_OK},
    {"issued by a leaf", FULL, LEAF_ISSUED, NONE, 0, S_UNTRUSTED},
    {"tampered signature", FULL, TAMPERED, NONE, 0, S_UNTRUSTED},
    {"tampered and expired", FULL, TAMPERED, NONE, 366 * DAY, S_UNTRUSTED},
};

static void
verify_case_run(const struct chain *c, const char *tampered,
    const struct verify_case *vc, struct crypto_trust *const trusts[3])
{
	const char *pems[] = {
	    [LEAF] = c->leaf,
	    [EXPIRED] = c->expired,
	    [FUTURE] = c->future,
	    [ROGUE_LEAF] = c->rogue_leaf,
	    [LEAF_ISSUED] = c->leaf_issued,
	    [TAMPERED] = tampered,
	};
	const char *carried[] = {
	    [NONE] = NULL,
	    [CA] = c->ca,
	    [ROGUE_CA] = c->rogue_ca,
	};
	const struct crypto_trust *trust = trusts[vc->bundle];
	struct crypto_cert *cert;
	enum crypto_cert_status got;
	char why[256];

	assert_int_equal(crypto_cert_parse(&cert, pems[vc->cert],
	                     carried[vc->carry]),
	    0);
	got = crypto_cert_verify_explain(trust, cert, t0 + vc->at, why,
	    sizeof(why));
	if (got != vc->want)
		fail_msg("%s, %s: got %s (%s), want %s",
		    crypto_key_type_name(c->type), vc->what,
		    crypto_cert_status_name(got), why,
		    crypto_cert_status_name(vc->want));
	assert_int_equal(crypto_cert_verify(trust, cert, t0 + vc->at), got);
	if (got == CRYPTO_CERT_OK)
		assert_string_equal(why, "");
	else
		assert_true(why[0] != '\0');
	crypto_cert_free(cert);
}

static void
test_cert_verify_table(void **state)
{
	struct crypto_trust *trusts[3];

	assert_int_equal(crypto_trust_load_pem(&trusts[ROOTS], bundle_roots),
	    0);
	assert_int_equal(crypto_trust_load_pem(&trusts[FULL], bundle_full), 0);
	assert_int_equal(crypto_trust_load_pem(&trusts[ROGUE], bundle_rogue),
	    0);
	assert_int_equal(sk_X509_num(trusts[FULL]->intermediates), 3);
	assert_int_equal(sk_X509_num(trusts[ROOTS]->intermediates), 0);
	for (size_t a = 0; a < ARRAY_LEN(algs); a++) {
		char *tampered = tamper_signature(chains[a].leaf);

		for (size_t i = 0; i < ARRAY_LEN(verify_cases); i++)
			verify_case_run(&chains[a], tampered, &verify_cases[i],
			    trusts);
		free(tampered);
	}
	for (int i = 0; i < 3; i++)
		crypto_trust_free(trusts[i]);
	assert_int_equal(ERR_peek_error(), 0);
}

/* DOMAIN.md §1: the ID is needed on the leaf and on the issuing CA. */
static void
test_sm2_chain_needs_distid_on_every_link(void **state)
{
	struct chain *c = &chains[2];
	struct crypto_trust *trust;
	struct crypto_cert *cert;
	X509 *leaf, *ca;

	assert_int_equal(crypto_trust_load_pem(&trust, bundle_full), 0);
	assert_int_equal(crypto_cert_parse(&cert, c->leaf, NULL), 0);
	assert_int_equal(crypto_cert_verify(trust, cert, t0), S_OK);

	leaf = cert->x509->cert;
	X509_set0_distinguishing_id(leaf, NULL);
	assert_int_equal(crypto_cert_verify(trust, cert, t0), S_UNTRUSTED);
	assert_int_equal(crypto_x509_set_distid(leaf), 0);
	assert_int_equal(crypto_cert_verify(trust, cert, t0), S_OK);

	ca = sk_X509_value(trust->intermediates, 2);
	assert_int_equal(X509_get_signature_nid(ca), NID_SM2_with_SM3);
	X509_set0_distinguishing_id(ca, NULL);
	assert_int_equal(crypto_cert_verify(trust, cert, t0), S_UNTRUSTED);
	assert_int_equal(crypto_x509_set_distid(ca), 0);
	assert_int_equal(crypto_cert_verify(trust, cert, t0), S_OK);
	crypto_cert_free(cert);
	crypto_trust_free(trust);
}

static void
test_trust_load_bad(void **state)
{
	struct crypto_trust *trust = NULL;
	char *cas = concat(chains[0].ca, chains[1].ca);

	assert_int_equal(crypto_trust_load_pem(&trust, ""), -1);
	assert_int_equal(crypto_trust_load_pem(&trust, "garbage"), -1);
	assert_int_equal(crypto_trust_load_pem(&trust, cas), -1); /* no root */
	assert_int_equal(crypto_trust_load(&trust, "/nonexistent/roots.pem"),
	    -1);
	assert_null(trust);
	free(cas);
}

/* ---- CSRs ---- */

/* Returns the DER inside a PEM; caller frees with OPENSSL_free(). */
static unsigned char *
pem_der(const char *pem, size_t *len)
{
	BIO *bio = crypto_bio_reader(pem);
	char *name, *header;
	unsigned char *der;
	long n;

	assert_int_equal(PEM_read_bio(bio, &name, &header, &der, &n), 1);
	BIO_free(bio);
	OPENSSL_free(name);
	OPENSSL_free(header);
	*len = (size_t)n;
	return der;
}

static char *
csr_pem_from_der(const unsigned char *der, size_t len)
{
	BIO *bio = crypto_bio_new();
	char *pem;

	assert_true(
	    PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, (long)len) > 0);
	pem = crypto_bio_string(bio);
	BIO_free(bio);
	return pem;
}

/* A CSR with one byte flipped at pos does not verify. */
static void
assert_tampered_csr_fails(const char *pem, size_t pos)
{
	size_t len;
	unsigned char *der = pem_der(pem, &len);
	struct crypto_csr *csr = NULL;
	char *bad;

	der[pos < len ? pos : len - 1] ^= 0x01;
	bad = csr_pem_from_der(der, len);
	assert_int_equal(crypto_csr_parse_verify(&csr, bad), -1);
	assert_null(csr);
	free(bad);
	OPENSSL_free(der);
}

static void
csr_one(const struct chain *c)
{
	struct crypto_cert *cert;
	struct crypto_csr *csr;
	struct crypto_key *new_key;
	char *pem, *none = NULL;

	assert_int_equal(crypto_cert_parse(&cert, c->leaf, NULL), 0);
	assert_int_equal(crypto_key_generate(&new_key, c->type), 0);
	assert_int_equal(crypto_csr_create(&pem, new_key, cert), 0);
	assert_int_equal(crypto_csr_parse_verify(&csr, pem), 0);
	assert_string_equal(csr->subject_dn, cert->subject_dn);
	assert_string_equal(csr->subject.o, ENT_NAME);
	assert_string_equal(csr->subject.ou, "master");
	assert_string_equal(csr->subject.cn, "张三");
	assert_string_equal(csr->subject.org_id, ENT_USCC);
	assert_int_equal(csr->key_type, c->type);
	assert_spki(new_key, csr->spki_sha256);
	assert_string_not_equal(csr->spki_sha256, cert->spki_sha256);
	assert_string_equal(csr->pem, pem);
	if (c->type == CRYPTO_KEY_SM2)
		assert_int_equal(X509_REQ_get_signature_nid(csr->req->req),
		    NID_SM2_with_SM3);
	crypto_csr_free(csr);
	assert_tampered_csr_fails(pem, SIZE_MAX); /* in the signature */
	assert_tampered_csr_fails(pem, 60);       /* in the signed part */
	/* A public key cannot sign its request. */
	assert_int_equal(crypto_csr_create(&none, cert->key, cert), -1);
	assert_null(none);
	free(pem);
	crypto_key_free(new_key);
	crypto_cert_free(cert);
}

static void
test_csr(void **state)
{
	struct crypto_csr *csr = NULL;

	for (size_t i = 0; i < ARRAY_LEN(algs); i++)
		csr_one(&chains[i]);
	assert_int_equal(crypto_csr_parse_verify(&csr, ""), -1);
	assert_int_equal(crypto_csr_parse_verify(&csr, chains[0].leaf), -1);
	assert_null(csr);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_csr_sm2_without_distid(void **state)
{
	struct crypto_key *key = chains[2].leaf_key;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = enterprise_name("master", "张三");
	struct crypto_csr *csr = NULL;
	BIO *bio = crypto_bio_new();
	char *pem;

	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key->pkey), 1);
	/* X509_REQ_sign() sets no ID: OpenSSL's default */
	assert_true(X509_REQ_sign(req, key->pkey, EVP_sm3()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	pem = crypto_bio_string(bio);
	assert_int_equal(crypto_csr_parse_verify(&csr, pem), -1);
	assert_null(csr);
	free(pem);
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
}

/* ---- the CLI-made PKI of tests/ukey/mkpki.sh ---- */

static char pki_dir[64];

static const char *const pki_algs[] = {"rsa", "ec", "sm2"};

static char *
pki_read(const char *name, const char *ext)
{
	char path[256], *pem;

	snprintf(path, sizeof(path), "%s/%s.%s.pem", pki_dir, name, ext);
	if (crypto_read_file(&pem, path) != 0)
		fail_msg("cannot read %s", path);
	return pem;
}

static struct crypto_cert *
pki_cert(const char *name)
{
	char *pem = pki_read(name, "cert");
	struct crypto_cert *cert;

	if (crypto_cert_parse(&cert, pem, NULL) != 0)
		fail_msg("%s.cert.pem does not parse", name);
	free(pem);
	return cert;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static unsigned char *
read_binary(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = xmalloc(4096);

	assert_non_null(f);
	*len = fread(buf, 1, 4096, f);
	fclose(f);
	return buf;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
	va_list ap;
	char cmd[2048];

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Signatures over a nonce: ours checked by "openssl dgst -verify", the
 * CLI's ("openssl dgst -sign", DOMAIN.md's way for SM2) checked by us. */
static void
pki_signature_interop(const char *name, int sm2, const struct crypto_key *key,
    const struct crypto_cert *cert)
{
	const char *md = sm2 ? "-sm3" : "-sha256";
	const char *opt = sm2 ? "-sigopt distid:" CRYPTO_SM2_DISTID : "";
	char nonce_path[128], sig_path[128], pub_path[128];
	unsigned char nonce[32], *sig;
	size_t n = sizeof(nonce), sig_len;

	snprintf(nonce_path, sizeof(nonce_path), "%s/nonce", pki_dir);
	snprintf(sig_path, sizeof(sig_path), "%s/sig", pki_dir);
	snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", pki_dir);
	crypto_random_bytes(nonce, n);
	write_file(nonce_path, nonce, n);

	assert_int_equal(crypto_sign(key, nonce, n, &sig, &sig_len), 0);
	assert_true(verifies(cert->key, nonce, n, sig, sig_len));
	write_file(sig_path, sig, sig_len);
	free(sig);
	if (run("openssl x509 -in %s/%s.cert.pem -pubkey -noout >%s && "
	        "openssl dgst %s -verify %s %s -signature %s %s >/dev/null",
	        pki_dir, name, pub_path, md, pub_path, opt, sig_path,
	        nonce_path) != 0)
		fail_msg("%s: openssl dgst rejects our signature", name);

	if (run("openssl dgst %s -sign %s/%s.key.pem %s -out %s %s", md,
	        pki_dir, name, opt, sig_path, nonce_path) != 0)
		fail_msg("%s: openssl dgst -sign failed", name);
	sig = read_binary(sig_path, &sig_len);
	if (!verifies(cert->key, nonce, n, sig, sig_len))
		fail_msg("%s: the CLI's signature does not verify", name);
	free(sig);
}

/* One leaf of the default profile: chain, fields, key, signatures. */
static void
pki_leaf(const struct crypto_trust *trust, size_t alg, const char *kind)
{
	char name[64], spki[CRYPTO_SHA256_HEX_SIZE], *key_pem;
	struct crypto_cert *cert;
	struct crypto_key *key;

	snprintf(name, sizeof(name), "%s-%s", pki_algs[alg], kind);
	cert = pki_cert(name);
	assert_int_equal(cert->key_type, algs[alg]);
	if (crypto_cert_verify(trust, cert, time(NULL)) != CRYPTO_CERT_OK)
		fail_msg("%s does not verify", name);
	assert_string_equal(cert->subject.c, "CN");
	assert_string_equal(cert->subject.ou, kind);
	if (strcmp(kind, "personal") == 0) {
		assert_null(cert->subject.o);
		assert_null(cert->subject.org_id);
		assert_string_equal(cert->subject.cn, "赵六");
	} else {
		assert_non_null(cert->subject.o);
		assert_non_null(cert->subject.org_id);
	}
	if (strcmp(kind, "master") == 0) {
		assert_string_equal(cert->subject.o, ENT_NAME);
		assert_string_equal(cert->subject.cn, "张三");
		assert_string_equal(cert->subject.org_id, ENT_USCC);
	}
	key_pem = pki_read(name, "key");
	assert_int_equal(crypto_key_load_pem(&key, key_pem), 0);
	crypto_key_spki_sha256_hex(key, spki);
	assert_string_equal(spki, cert->spki_sha256);
	pki_signature_interop(name, algs[alg] == CRYPTO_KEY_SM2, key, cert);
	crypto_key_free(key);
	crypto_cert_free(cert);
	free(key_pem);
}

static void
pki_rejected(const struct crypto_trust *trust, size_t alg, const char *leaf,
    const char *want)
{
	char name[64];
	struct crypto_cert *cert;
	enum crypto_cert_status got;

	snprintf(name, sizeof(name), "%s-%s", pki_algs[alg], leaf);
	cert = pki_cert(name);
	got = crypto_cert_verify(trust, cert, time(NULL));
	assert_string_equal(crypto_cert_status_name(got), want);
	crypto_cert_free(cert);
}

/* A CSR of ours passes "openssl req -verify". */
static void
pki_csr(size_t alg)
{
	const char *opt = algs[alg] == CRYPTO_KEY_SM2
	    ? "-vfyopt distid:" CRYPTO_SM2_DISTID
	    : "";
	char name[64], path[256], *csr_pem;
	struct crypto_cert *cert;
	struct crypto_key *key;

	snprintf(name, sizeof(name), "%s-agent", pki_algs[alg]);
	cert = pki_cert(name);
	assert_int_equal(crypto_key_generate(&key, algs[alg]), 0);
	assert_int_equal(crypto_csr_create(&csr_pem, key, cert), 0);
	snprintf(path, sizeof(path), "%s/%s.csr.pem", pki_dir, name);
	write_file(path, csr_pem, strlen(csr_pem));
	if (run("openssl req -in %s -noout -verify %s >/dev/null 2>&1", path,
	        opt) != 0)
		fail_msg("%s: openssl req -verify rejects our CSR", name);
	free(csr_pem);
	crypto_key_free(key);
	crypto_cert_free(cert);
}

static void
test_mkpki_interop(void **state)
{
	static const char *const kinds[] = {
	    "master",
	    "project_lead",
	    "agent",
	    "personal",
	};
	const char *script = getenv("CAPLAT_MKPKI");
	struct crypto_trust *trust;
	char path[256];
	struct stat st;

	if (script == NULL)
		script = "tests/ukey/mkpki.sh";
	if (stat(script, &st) != 0) {
		print_message("no %s (run from the top or set CAPLAT_MKPKI)\n",
		    script);
		skip();
	}
	snprintf(pki_dir, sizeof(pki_dir), "/tmp/caplat-test-crypto-XXXXXX");
	assert_non_null(mkdtemp(pki_dir));
	assert_int_equal(run("bash %s %s", script, pki_dir), 0);
	/* idempotent: the second run finds the PKI complete */
	assert_int_equal(run("bash %s %s", script, pki_dir), 0);
	snprintf(path, sizeof(path), "%s/roots.pem", pki_dir);
	assert_int_equal(crypto_trust_load(&trust, path), 0);
	assert_int_equal(sk_X509_num(trust->intermediates), 3);
	for (size_t a = 0; a < ARRAY_LEN(pki_algs); a++) {
		for (size_t k = 0; k < ARRAY_LEN(kinds); k++)
			pki_leaf(trust, a, kinds[k]);
		pki_rejected(trust, a, "expired", "expired");
		pki_rejected(trust, a, "rogue", "untrusted");
		pki_csr(a);
	}
	crypto_trust_free(trust);
	assert_int_equal(run("rm -rf %s", pki_dir), 0);
}

/* ---- Issuing certificates and CRLs (the local CA of issuance) ---- */

static const struct crypto_subject root_subject = {"CN", "caplat local CA",
    NULL, "issue test root", NULL};
static const struct crypto_subject ca_subject = {"CN", "caplat local CA", NULL,
    "issue test issuing CA", NULL};

/* A root and issuing CA made by crypto_cert_create(), and a leaf made by
 * crypto_cert_issue() from a CSR that carries the subject of chains[a]. */
struct issued {
	struct crypto_key *root_key, *ca_key, *leaf_key;
	char *root, *ca, *leaf;
	struct crypto_cert *root_cert, *ca_cert, *leaf_cert, *subject_from;
};

static void
issued_make(struct issued *is, size_t a, const char *crl_url)
{
	struct crypto_issue_spec root_spec = {"01", t0 - DAY, t0 + 3650 * DAY,
	    1, -1, NULL};
	struct crypto_issue_spec ca_spec = {"7F01", t0 - DAY, t0 + 3000 * DAY,
	    1, 0, NULL};
	struct crypto_issue_spec leaf_spec = {"5A0B1C2D3E4F", t0 - 60,
	    t0 + 365 * DAY, 0, -1, crl_url};
	struct crypto_csr *csr;
	char *csr_pem;

	memset(is, 0, sizeof(*is));
	assert_int_equal(crypto_key_generate(&is->root_key, algs[a]), 0);
	assert_int_equal(crypto_key_generate(&is->ca_key, algs[a]), 0);
	assert_int_equal(crypto_key_generate(&is->leaf_key, algs[a]), 0);
	assert_int_equal(crypto_cert_create(&is->root, is->root_key,
	                     &root_subject, NULL, is->root_key, &root_spec),
	    0);
	assert_int_equal(crypto_cert_parse(&is->root_cert, is->root, NULL), 0);
	assert_int_equal(crypto_cert_create(&is->ca, is->ca_key, &ca_subject,
	                     is->root_cert, is->root_key, &ca_spec),
	    0);
	assert_int_equal(crypto_cert_parse(&is->ca_cert, is->ca, NULL), 0);
	assert_int_equal(crypto_cert_parse(&is->subject_from, chains[a].leaf,
	                     NULL),
	    0);
	assert_int_equal(crypto_csr_create(&csr_pem, is->leaf_key,
	                     is->subject_from),
	    0);
	assert_int_equal(crypto_csr_parse_verify(&csr, csr_pem), 0);
	assert_int_equal(crypto_cert_issue(&is->leaf, csr, is->subject_from,
	                     is->ca_cert, is->ca_key, &leaf_spec),
	    0);
	assert_int_equal(crypto_cert_parse(&is->leaf_cert, is->leaf, NULL), 0);
	crypto_csr_free(csr);
	free(csr_pem);
}

static void
issued_free(struct issued *is)
{
	crypto_key_free(is->root_key);
	crypto_key_free(is->ca_key);
	crypto_key_free(is->leaf_key);
	free(is->root);
	free(is->ca);
	free(is->leaf);
	crypto_cert_free(is->root_cert);
	crypto_cert_free(is->ca_cert);
	crypto_cert_free(is->leaf_cert);
	crypto_cert_free(is->subject_from);
}

static void
test_cert_issue_chain(void **state)
{
	for (size_t a = 0; a < ARRAY_LEN(algs); a++) {
		struct crypto_trust *trust;
		struct issued is;
		char *bundle;
		X509 *leaf;

		issued_make(&is, a, "http://gw.example/api/v1/certs/crl/x.crl");
		bundle = concat(is.root, is.ca);
		assert_int_equal(crypto_trust_load_pem(&trust, bundle), 0);
		assert_int_equal(sk_X509_num(trust->intermediates), 1);
		/* what was asked for */
		assert_string_equal(is.leaf_cert->serial, "5A0B1C2D3E4F");
		assert_int_equal(is.leaf_cert->not_before, t0 - 60);
		assert_int_equal(is.leaf_cert->not_after, t0 + 365 * DAY);
		assert_string_equal(is.leaf_cert->subject_dn,
		    is.subject_from->subject_dn);
		assert_string_equal(is.leaf_cert->issuer_dn,
		    is.ca_cert->subject_dn);
		assert_string_equal(is.leaf_cert->subject.org_id, ENT_USCC);
		assert_int_equal(is.leaf_cert->key_type, algs[a]);
		assert_spki(is.leaf_key, is.leaf_cert->spki_sha256);
		assert_string_equal(is.root_cert->issuer_dn,
		    is.root_cert->subject_dn);
		assert_string_equal(is.ca_cert->serial, "7F01");
		/* CA and leaf profiles */
		leaf = is.leaf_cert->x509->cert;
		assert_int_equal(X509_check_ca(leaf), 0);
		assert_true(X509_check_ca(is.ca_cert->x509->cert) > 0);
		assert_true(X509_check_ca(is.root_cert->x509->cert) > 0);
		assert_true(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE);
		assert_true(X509_get_ext_by_NID(leaf,
		                NID_crl_distribution_points, -1) >= 0);
		assert_int_equal(X509_get_ext_by_NID(is.ca_cert->x509->cert,
		                     NID_crl_distribution_points, -1),
		    -1);
		if (algs[a] == CRYPTO_KEY_SM2) {
			assert_int_equal(X509_get_signature_nid(leaf),
			    NID_SM2_with_SM3);
			assert_int_equal(X509_get_signature_nid(
			                     is.root_cert->x509->cert),
			    NID_SM2_with_SM3);
		}
		/* the chain holds, within the dates only */
		assert_int_equal(crypto_cert_verify(trust, is.leaf_cert, t0),
		    S_OK);
		assert_int_equal(crypto_cert_verify(trust, is.leaf_cert,
		                     t0 + 366 * DAY),
		    S_EXPIRED);
		assert_int_equal(crypto_cert_verify(trust, is.leaf_cert,
		                     t0 - 3600),
		    S_TOO_NEW);
		if (algs[a] == CRYPTO_KEY_SM2) {
			/* signed with the ID: without it the leaf fails */
			X509_set0_distinguishing_id(leaf, NULL);
			assert_int_equal(crypto_cert_verify(trust, is.leaf_cert,
			                     t0),
			    S_UNTRUSTED);
			assert_int_equal(crypto_x509_set_distid(leaf), 0);
		}
		/* the test vendor's roots do not trust our CA */
		crypto_trust_free(trust);
		assert_int_equal(crypto_trust_load_pem(&trust, bundle_full), 0);
		assert_int_equal(crypto_cert_verify(trust, is.leaf_cert, t0),
		    S_UNTRUSTED);
		crypto_trust_free(trust);
		free(bundle);
		issued_free(&is);
	}
	assert_int_equal(ERR_peek_error(), 0);
}

/* A CSR's own subject when no certificate gives one. */
static void
test_cert_issue_csr_subject(void **state)
{
	const struct chain *c = &chains[0];
	struct crypto_issue_spec spec = {"10", t0, t0 + DAY, 0, -1, NULL};
	X509_NAME *name = enterprise_name("agent", "王五");
	EVP_MD_CTX *mdctx = crypto_md_ctx_new();
	X509_REQ *req = X509_REQ_new();
	BIO *bio = crypto_bio_new();
	struct crypto_cert *ca, *got;
	struct crypto_csr *csr;
	struct crypto_key *key;
	char *csr_pem, *pem;

	assert_int_equal(crypto_key_generate(&key, CRYPTO_KEY_RSA), 0);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key->pkey), 1);
	assert_int_equal(crypto_digest_init(mdctx, key, 1), 0);
	assert_true(X509_REQ_sign_ctx(req, mdctx) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	csr_pem = crypto_bio_string(bio);
	assert_int_equal(crypto_cert_parse(&ca, c->ca, NULL), 0);
	assert_int_equal(crypto_csr_parse_verify(&csr, csr_pem), 0);
	assert_int_equal(crypto_cert_issue(&pem, csr, NULL, ca, c->ca_key,
	                     &spec),
	    0);
	assert_int_equal(crypto_cert_parse(&got, pem, NULL), 0);
	assert_string_equal(got->subject.ou, "agent");
	assert_string_equal(got->subject.cn, "王五");
	assert_string_equal(got->subject_dn, csr->subject_dn);
	assert_string_equal(got->serial, "10");
	crypto_cert_free(got);
	free(pem);
	crypto_csr_free(csr);
	free(csr_pem);
	crypto_key_free(key);
	crypto_cert_free(ca);
	BIO_free(bio);
	EVP_MD_CTX_free(mdctx);
	X509_REQ_free(req);
	X509_NAME_free(name);
}

static void
test_cert_issue_refusals(void **state)
{
	const struct chain *c = &chains[2];
	struct crypto_issue_spec ok = {"0ABC", t0, t0 + DAY, 0, -1, NULL};
	static const char *const bad_serials[] = {"", "0", "00", "0abc", "XYZ",
	    "12 34", "-1", "0123456789012345678901234567890123456789A"};
	struct crypto_cert *ca, *leaf;
	struct crypto_key *pub;
	struct crypto_csr *csr;
	char *csr_pem, *pem = NULL;

	assert_int_equal(crypto_cert_parse(&ca, c->ca, NULL), 0);
	assert_int_equal(crypto_cert_parse(&leaf, c->leaf, NULL), 0);
	assert_int_equal(crypto_csr_create(&csr_pem, c->rogue_key, leaf), 0);
	assert_int_equal(crypto_csr_parse_verify(&csr, csr_pem), 0);
	assert_int_equal(crypto_cert_issue(&pem, csr, leaf, ca, c->ca_key, &ok),
	    0);
	free(pem);
	pem = NULL;
	/* not the issuer's key, a public key, no issuer */
	assert_int_equal(crypto_cert_issue(&pem, csr, leaf, ca, c->root_key,
	                     &ok),
	    -1);
	assert_int_equal(crypto_cert_issue(&pem, csr, leaf, ca, ca->key, &ok),
	    -1);
	assert_int_equal(crypto_cert_issue(&pem, csr, leaf, NULL, c->ca_key,
	                     &ok),
	    -1);
	/* a key of another type cannot sign as this issuer */
	assert_int_equal(crypto_cert_issue(&pem, csr, leaf, ca,
	                     chains[0].ca_key, &ok),
	    -1);
	for (size_t i = 0; i < ARRAY_LEN(bad_serials); i++) {
		struct crypto_issue_spec s = ok;

		s.serial = bad_serials[i];
		if (crypto_cert_issue(&pem, csr, leaf, ca, c->ca_key, &s) != -1)
			fail_msg("serial \"%s\" accepted", bad_serials[i]);
	}
	{
		struct crypto_issue_spec s = ok;

		s.not_after = s.not_before;
		assert_int_equal(crypto_cert_issue(&pem, csr, leaf, ca,
		                     c->ca_key, &s),
		    -1);
	}
	/* self-signed needs the subject's own key */
	assert_int_equal(crypto_cert_create(&pem, c->leaf_key, &root_subject,
	                     NULL, c->root_key, &ok),
	    -1);
	assert_int_equal(crypto_key_load_pem(&pub, c->ca), 0);
	assert_int_equal(crypto_cert_create(&pem, pub, &root_subject, NULL, pub,
	                     &ok),
	    -1);
	assert_null(pem);
	assert_int_equal(ERR_peek_error(), 0);
	crypto_key_free(pub);
	crypto_csr_free(csr);
	free(csr_pem);
	crypto_cert_free(leaf);
	crypto_cert_free(ca);
}

/* The openssl CLI agrees, the way DOMAIN.md §1 checks an SM2 chain: each
 * link on its own. */
static void
test_cert_issue_openssl_verify(void **state)
{
	char dir[64] = "/tmp/caplat-test-issue-XXXXXX", path[128];

	assert_non_null(mkdtemp(dir));
	for (size_t a = 0; a < ARRAY_LEN(algs); a++) {
		const char *opt = algs[a] == CRYPTO_KEY_SM2
		    ? "-vfyopt distid:" CRYPTO_SM2_DISTID
		    : "";
		struct issued is;

		issued_make(&is, a, NULL);
		snprintf(path, sizeof(path), "%s/root.pem", dir);
		write_file(path, is.root, strlen(is.root));
		snprintf(path, sizeof(path), "%s/ca.pem", dir);
		write_file(path, is.ca, strlen(is.ca));
		snprintf(path, sizeof(path), "%s/leaf.pem", dir);
		write_file(path, is.leaf, strlen(is.leaf));
		if (run("openssl verify %s -CAfile %s/root.pem %s/ca.pem "
		        ">/dev/null 2>&1",
		        opt, dir, dir) != 0)
			fail_msg("%s: openssl rejects the issuing CA",
			    crypto_key_type_name(algs[a]));
		if (run("openssl verify %s -partial_chain -CAfile %s/ca.pem "
		        "%s/leaf.pem >/dev/null 2>&1",
		        opt, dir, dir) != 0)
			fail_msg("%s: openssl rejects the leaf",
			    crypto_key_type_name(algs[a]));
		if (algs[a] != CRYPTO_KEY_SM2 &&
		    run("openssl verify -CAfile %s/root.pem -untrusted %s/ca.pem "
		        "%s/leaf.pem >/dev/null 2>&1",
		        dir, dir, dir) != 0)
			fail_msg("%s: openssl rejects the whole chain",
			    crypto_key_type_name(algs[a]));
		issued_free(&is);
	}
	assert_int_equal(run("rm -rf %s", dir), 0);
}

/* 32 upper-case hex digits, first byte 0x10..0x7F, new each time, and the
 * same once read back from a certificate. */
static void
test_random_serial(void **state)
{
	static const struct crypto_subject subject = {"CN", "caplat", NULL,
	    "serial test", NULL};
	struct crypto_issue_spec spec = {NULL, t0 - DAY, t0 + DAY, 1, -1, NULL};
	char first[CRYPTO_SERIAL_HEX_SIZE], serial[CRYPTO_SERIAL_HEX_SIZE];
	struct crypto_key *key;
	struct crypto_cert *cert;
	int lowest = 0xff, highest = 0;
	char *pem;

	crypto_random_serial(first);
	for (int i = 0; i < 4000; i++) {
		unsigned int b0;

		crypto_random_serial(serial);
		assert_int_equal(strlen(serial), 32);
		assert_int_equal(strspn(serial, "0123456789ABCDEF"), 32);
		assert_int_equal(sscanf(serial, "%2x", &b0), 1);
		assert_in_range(b0, 0x10, 0x7f);
		lowest = (int)b0 < lowest ? (int)b0 : lowest;
		highest = (int)b0 > highest ? (int)b0 : highest;
		assert_string_not_equal(serial, first);
	}
	/* The whole range is used, not only part of it. */
	assert_true(lowest < 0x18 && highest > 0x77);

	assert_int_equal(crypto_key_generate(&key, CRYPTO_KEY_EC_P256), 0);
	spec.serial = serial;
	assert_int_equal(crypto_cert_create(&pem, key, &subject, NULL, key,
	                     &spec),
	    0);
	assert_int_equal(crypto_cert_parse(&cert, pem, NULL), 0);
	assert_string_equal(cert->serial, serial);
	crypto_cert_free(cert);
	crypto_key_free(key);
	free(pem);
}

static void
test_key_bits(void **state)
{
	static const int want[] = {2048, 256, 256};

	for (size_t a = 0; a < ARRAY_LEN(algs); a++)
		assert_int_equal(crypto_key_bits(chains[a].leaf_key), want[a]);
}

static void
test_crl(void **state)
{
	const struct crypto_crl_entry entries[] = {
	    {"5A0B1C2D3E4F", 0, CRYPTO_CRL_KEY_COMPROMISE},
	    {"0A", 0, CRYPTO_CRL_UNSPECIFIED},
	    {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 0, CRYPTO_CRL_SUPERSEDED},
	};
	struct crypto_crl_entry bad[] = {{"0xyz", 0, CRYPTO_CRL_UNSPECIFIED}};

	for (size_t a = 0; a < ARRAY_LEN(algs); a++) {
		struct crypto_crl_entry e[ARRAY_LEN(entries)];
		const unsigned char *p;
		unsigned char *der = NULL;
		size_t len = 0;
		struct issued is;
		X509_CRL *crl;

		memcpy(e, entries, sizeof(e));
		for (size_t i = 0; i < ARRAY_LEN(e); i++)
			e[i].revoked_at = t0 - (time_t)i * DAY;
		issued_make(&is, a, NULL);
		assert_int_equal(crypto_crl_create(&der, &len, is.ca_cert,
		                     is.ca_key, e, ARRAY_LEN(e), t0, t0 + DAY,
		                     42),
		    0);
		assert_int_equal(crypto_crl_verify(der, len, is.ca_cert), 0);
		/* another issuer (same name elsewhere does not help), a leaf */
		assert_int_equal(crypto_crl_verify(der, len, is.root_cert), -1);
		assert_int_equal(crypto_crl_verify(der, len, is.leaf_cert), -1);
		p = der;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		assert_non_null(crl);
		assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)),
		    3);
		for (int i = 0; i < 3; i++) {
			X509_REVOKED *r =
			    sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), i);
			BIGNUM *bn =
			    ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(
			                           r),
			        NULL);
			char *hex = BN_bn2hex(bn);
			ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r,
			    NID_crl_reason, NULL, NULL);
			int found = 0;

			for (size_t k = 0; k < ARRAY_LEN(e); k++) {
				if (strcmp(hex, e[k].serial) != 0)
					continue;
				found = 1;
				if (e[k].reason == CRYPTO_CRL_UNSPECIFIED)
					assert_null(reason);
				else
					assert_int_equal(ASN1_ENUMERATED_get(
					                     reason),
					    e[k].reason);
			}
			assert_true(found);
			ASN1_ENUMERATED_free(reason);
			OPENSSL_free(hex);
			BN_free(bn);
		}
		if (algs[a] == CRYPTO_KEY_SM2) {
			/* DOMAIN.md §1: OpenSSL's own check cannot take the ID */
			assert_int_not_equal(X509_CRL_verify(crl,
			                         X509_get0_pubkey(
			                             is.ca_cert->x509->cert)),
			    1);
			ERR_clear_error();
		}
		X509_CRL_free(crl);
		/* one flipped byte in the signed part */
		der[len / 2] ^= 0x01;
		assert_int_equal(crypto_crl_verify(der, len, is.ca_cert), -1);
		free(der);
		/* an empty CRL; refusals */
		assert_int_equal(crypto_crl_create(&der, &len, is.ca_cert,
		                     is.ca_key, NULL, 0, t0, t0 + DAY, 1),
		    0);
		assert_int_equal(crypto_crl_verify(der, len, is.ca_cert), 0);
		free(der);
		der = NULL;
		assert_int_equal(crypto_crl_create(&der, &len, is.ca_cert,
		                     is.root_key, e, 1, t0, t0 + DAY, 2),
		    -1);
		assert_int_equal(crypto_crl_create(&der, &len, is.ca_cert,
		                     is.ca_key, bad, 1, t0, t0 + DAY, 2),
		    -1);
		assert_null(der);
		assert_int_equal(crypto_crl_verify((const unsigned char *)"xx",
		                     2, is.ca_cert),
		    -1);
		issued_free(&is);
	}
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_base64_vectors),
	    cmocka_unit_test(test_base64_round_trip),
	    cmocka_unit_test(test_base64_garbage),
	    cmocka_unit_test(test_sha256_and_hmac),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_password_hash_verify),
	    cmocka_unit_test(test_password_known_answer),
	    cmocka_unit_test(test_password_malformed),
	    cmocka_unit_test(test_key_load),
	    cmocka_unit_test(test_key_load_bad),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_sm2_distid_required),
	    cmocka_unit_test(test_prepared_contexts_keep_the_rules),
	    cmocka_unit_test(test_cert_parse_cached),
	    cmocka_unit_test(test_sm2_key_typed_ec),
	    cmocka_unit_test(test_cert_parse_fields),
	    cmocka_unit_test(test_cert_parse_absent_fields_and_chain),
	    cmocka_unit_test(test_cert_parse_bad),
	    cmocka_unit_test(test_cert_verify_table),
	    cmocka_unit_test(test_sm2_chain_needs_distid_on_every_link),
	    cmocka_unit_test(test_trust_load_bad),
	    cmocka_unit_test(test_csr),
	    cmocka_unit_test(test_csr_sm2_without_distid),
	    cmocka_unit_test(test_mkpki_interop),
	    cmocka_unit_test(test_cert_issue_chain),
	    cmocka_unit_test(test_cert_issue_csr_subject),
	    cmocka_unit_test(test_cert_issue_refusals),
	    cmocka_unit_test(test_cert_issue_openssl_verify),
	    cmocka_unit_test(test_key_bits),
	    cmocka_unit_test(test_random_serial),
	    cmocka_unit_test(test_crl),
	};
	return cmocka_run_group_tests(tests, setup_chains, teardown_chains);
}
