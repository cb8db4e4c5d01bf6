/* crypto_int.h — private to crypto.c (keys, signatures, hashing, random,
 * base64), crypto_x509.c (certificates, chains, CSRs), crypto_ca.c (issuing
 * and CRLs) and crypto_aead.c (AES-GCM): the OpenSSL objects behind the
 * opaque structs of crypto.h and the helpers they share. Callers outside
 * crypto use crypto.h only. */
#ifndef CAPLAT_CRYPTO_INT_H
#define CAPLAT_CRYPTO_INT_H

#include "crypto.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define MAX_PEM_FILE (1024 * 1024)
#define MAX_CARRIED_CHAIN 8

/* What a key keeps once worked out (crypto.c), so that a key used again (a
 * CA key, a vendor's) does it once: the SHA-256 of its SubjectPublicKeyInfo,
 * and from its second signature or check on, a prepared DigestSign and
 * DigestVerify context (algorithms fetched, SM3 and the SM2 ID set) that
 * each use copies (EVP_MD_CTX_copy_ex). Filled lock-free (atomics): the
 * key itself is read-only and may be shared between threads. */
struct crypto_key_cache {
	char spki_sha256[CRYPTO_SHA256_HEX_SIZE]; /* valid when spki_set */
	int spki_set;
	unsigned uses[2];        /* [signing] inits so far */
	EVP_MD_CTX *prepared[2]; /* [signing], from the second use */
};

struct crypto_key {
	EVP_PKEY *pkey;
	enum crypto_key_type type;
	int has_private;
	struct crypto_key_cache *cache; /* never NULL */
};

struct crypto_x509 {
	X509 *cert;
	STACK_OF(X509) * chain; /* carried intermediates, may be empty */
	int cached;             /* went into crypto_cert_parse_cached's cache */
	int refs; /* holders beyond the first, under the cache's lock */
};

struct crypto_x509_req {
	X509_REQ *req;
};

struct crypto_trust {
	X509_STORE *store;              /* self-signed roots: trust anchors */
	STACK_OF(X509) * intermediates; /* untrusted, for building chains */
};

/* ---- crypto.c ---- */

/* Clears the thread's OpenSSL error queue and returns -1: a library that
 * fails leaves nothing behind for the next, unrelated caller to trip on. */
int crypto_fail(void);

/* A new memory BIO to write into, or one reading the NUL-terminated s
 * (borrowed while the BIO lives). Out of memory is fatal. */
BIO *crypto_bio_new(void);
BIO *crypto_bio_reader(const char *s);
/* Returns a new string with everything written to the memory BIO. */
char *crypto_bio_string(BIO *bio);

/* A PEM pass phrase callback that never prompts: encrypted keys are
 * refused. */
int crypto_no_passphrase(char *buf, int size, int rwflag, void *u);

/* Sets *out to a new NUL-terminated copy of the file at path (at most
 * MAX_PEM_FILE bytes) and returns 0, or returns -1. */
int crypto_read_file(char **out, const char *path);

/* Returns a new key that owns pkey (stolen, also on error), a key pair when
 * has_private, else its public half only; an EC key on the SM2 curve becomes
 * an SM2 key. Returns NULL on failure. */
struct crypto_key *crypto_key_wrap(EVP_PKEY *pkey, int has_private);
/* Wraps a new reference to pkey's public half, or returns NULL. */
struct crypto_key *crypto_key_wrap_public(EVP_PKEY *pkey);

/* Initialises mdctx to sign (signing 1) or verify with key by the rules of
 * its type (SHA-256, or SM3 with CRYPTO_SM2_DISTID). Returns 0 or -1. */
int crypto_digest_init(EVP_MD_CTX *mdctx, const struct crypto_key *key,
    int signing);
/* The digests of caplat's signatures, fetched once per process. */
enum crypto_md { CRYPTO_MD_SHA256, CRYPTO_MD_SM3 };
const EVP_MD *crypto_md(enum crypto_md which);
/* A new digest context; out of memory is fatal. */
EVP_MD_CTX *crypto_md_ctx_new(void);

/* ---- crypto_x509.c ---- */

/* Puts CRYPTO_SM2_DISTID on an SM2-signed certificate (nothing for other
 * signatures), so its signature verifies. Returns 0 or -1. */
int crypto_x509_set_distid(X509 *x);

#endif
