/* crypto — caplat's one door to OpenSSL: random bytes and tokens, base64,
 * SHA-256 and HMAC, scrypt password hashes, keys and signatures (RSA, ECDSA
 * P-256, SM2 with SM3), certificates, CSRs and the trusted vendor roots.
 * Services include this header, never OpenSSL's; the OpenSSL objects stay
 * behind opaque structs. Made of crypto.c (keys, signatures, hashing,
 * random, base64), crypto_x509.c (certificates, chains, CSRs), crypto_ca.c
 * (issuing, serials, CRLs) and crypto_aead.c (AES-GCM); see crypto_int.h. */
#ifndef CAPLAT_CRYPTO_H
#define CAPLAT_CRYPTO_H

#include <stddef.h>
#include <time.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_SIZE 65 /* 64 lower-case hex digits + NUL */

/* The GM/T 0009 default distinguishing ID, used for every SM2 signature made
 * or checked here (OpenSSL 3.0's own default of no ID gives other results). */
#define CRYPTO_SM2_DISTID "1234567812345678"

/* ---- Random ---- */

/* Fills buf with n bytes from the OpenSSL CSPRNG. A failing RNG is fatal. */
void crypto_random_bytes(void *buf, size_t n);

/* Returns a new string holding nbytes random bytes as base64url without
 * padding (for session tokens, nonces, ids); caller frees with free(). */
char *crypto_random_token(size_t nbytes);

/* ---- Base64 ---- */

/* Returns a new NUL-terminated string: data in standard base64 with "="
 * padding and no line breaks; caller frees with free(). */
char *crypto_base64_encode(const void *data, size_t len);

/* Same with the URL-safe alphabet ("-", "_") and no padding. */
char *crypto_base64url_encode(const void *data, size_t len);

/* Decodes the len characters at s, which must be standard base64 with the
 * exact padding and nothing else: no whitespace, no line breaks, no
 * characters outside the alphabet, zero unused bits. On success sets *out to
 * a new buffer (caller frees with free()) and *out_len to its length, and
 * returns 0; "" decodes to zero bytes. On error returns -1 and leaves *out and
 * *out_len untouched. */
int crypto_base64_decode(unsigned char **out, size_t *out_len, const char *s,
    size_t len);

/* crypto_base64_decode for the URL-safe alphabet without padding ("=" is an
 * error). */
int crypto_base64url_decode(unsigned char **out, size_t *out_len, const char *s,
    size_t len);

/* ---- Digests and MACs ---- */

void crypto_sha256(const void *data, size_t len,
    unsigned char out[CRYPTO_SHA256_LEN]);

/* Writes the SHA-256 of data as 64 lower-case hex digits and a NUL. */
void crypto_sha256_hex(const void *data, size_t len,
    char out[CRYPTO_SHA256_HEX_SIZE]);
/* The same over data given in pieces: begin, update for each piece, then
 * end_hex (which frees the context). */
struct crypto_sha256_ctx;
struct crypto_sha256_ctx *crypto_sha256_begin(void);
void crypto_sha256_update(struct crypto_sha256_ctx *c, const void *data,
    size_t len);
void crypto_sha256_end_hex(struct crypto_sha256_ctx *c,
    char out[CRYPTO_SHA256_HEX_SIZE]);

void crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN]);
/* HMAC-SHA1 (20 bytes): only for peers whose protocol fixes it (Alibaba
 * Cloud's RPC signature, common/sms_alibaba.c). */
void crypto_hmac_sha1(const void *key, size_t key_len, const void *data,
    size_t len, unsigned char out[20]);

/* Returns 1 when the n bytes at a and b are equal and 0 otherwise, in time
 * that depends on n only. For comparing MACs, tokens and hashes. */
int crypto_ct_equal(const void *a, const void *b, size_t n);

/* ---- Passwords ---- */

/* Returns a new string "scrypt$N$r$p$<salt base64>$<hash base64>" for the
 * password, with N=16384, r=8, p=1, a 16-byte random salt and a 32-byte
 * hash; caller frees with free(). Failure of the KDF is fatal. */
char *crypto_password_hash(const char *password);

/* Returns 0 when password matches stored (a crypto_password_hash string,
 * whose own parameters are used), -1 when it does not or when stored is not
 * such a string (or asks for more than N=2^20, r=16, p=16). */
int crypto_password_verify(const char *password, const char *stored);

/* ---- Keys and signatures ---- */

/* The key types caplat signs and verifies with. An EC key on the SM2 curve is
 * CRYPTO_KEY_SM2, whatever OpenSSL calls it. */
enum crypto_key_type {
	CRYPTO_KEY_OTHER,   /* anything else: never signs nor verifies */
	CRYPTO_KEY_RSA,     /* PKCS#1 v1.5 with SHA-256 */
	CRYPTO_KEY_EC_P256, /* ECDSA with SHA-256, DER signatures */
	CRYPTO_KEY_SM2,     /* SM2, SM3, CRYPTO_SM2_DISTID, DER signatures */
};

/* Returns "rsa", "ec_p256", "sm2" or "other" (static strings). */
const char *crypto_key_type_name(enum crypto_key_type type);

/* A public key, or a key pair. */
struct crypto_key;

/* Reads the first key in pem: a private key ("PRIVATE KEY", "RSA PRIVATE
 * KEY", "EC PRIVATE KEY"; encrypted keys are refused), else a public key
 * ("PUBLIC KEY"), else the public key of a "CERTIFICATE". On success sets *out
 * to a new key (caller frees with crypto_key_free()) and returns 0; on error
 * returns -1. */
int crypto_key_load_pem(struct crypto_key **out, const char *pem);

/* crypto_key_load_pem on the contents of the file at path (at most 1 MiB). */
int crypto_key_load_file(struct crypto_key **out, const char *path);

/* Generates a key pair: RSA-2048, P-256 or SM2. On success sets *out to a new
 * key (caller frees with crypto_key_free()) and returns 0; -1 for
 * CRYPTO_KEY_OTHER or a failure of OpenSSL. */
int crypto_key_generate(struct crypto_key **out, enum crypto_key_type type);

/* Returns a new PKCS#8 PEM string of the private key, or NULL when key holds
 * a public key only; caller frees with free(). */
char *crypto_key_private_pem(const struct crypto_key *key);

/* Returns a new "PUBLIC KEY" PEM string; caller frees with free(). */
char *crypto_key_public_pem(const struct crypto_key *key);

enum crypto_key_type crypto_key_type_of(const struct crypto_key *key);

/* Writes the SHA-256 (hex) of the key's SubjectPublicKeyInfo DER: the key's
 * identity, equal to spki_sha256 of its certificates and CSRs. */
void crypto_key_spki_sha256_hex(const struct crypto_key *key,
    char out[CRYPTO_SHA256_HEX_SIZE]);

void crypto_key_free(struct crypto_key *key);

/* Signs msg with the private key by the rules of its type (see enum
 * crypto_key_type). On success sets *sig to a new buffer (caller frees with
 * free()) and *sig_len to its length, and returns 0. On error (public key
 * only, type OTHER, OpenSSL failure) returns -1 and leaves *sig untouched. */
int crypto_sign(const struct crypto_key *key, const void *msg, size_t msg_len,
    unsigned char **sig, size_t *sig_len);

/* Returns 0 when sig is a valid signature of msg by key under the rules of the
 * key's type, -1 otherwise (bad signature, malformed DER, type OTHER). For a
 * certificate's key pass cert->key. */
int crypto_verify_sig(const struct crypto_key *key, const void *msg,
    size_t msg_len, const unsigned char *sig, size_t sig_len);

/* ---- Certificates ---- */

/* The subject attributes of the API.md certificate profile, each the first
 * value of its type in UTF-8, or NULL when the subject has none. */
struct crypto_subject {
	char *c;      /* countryName, "CN" */
	char *o;      /* organizationName: the enterprise */
	char *ou;     /* organizationalUnitName: the lock kind ("master") */
	char *cn;     /* commonName: the holder */
	char *org_id; /* organizationIdentifier (2.5.4.97): the USCC */
};

/* A parsed certificate. The fields are read-only; the struct owns them all. */
struct crypto_cert {
	char *serial;     /* upper-case hex of whole bytes ("0A1B2C"), or "0" */
	char *issuer_dn;  /* RFC 2253, UTF-8 */
	char *subject_dn; /* RFC 2253, UTF-8 */
	struct crypto_subject subject;
	time_t not_before, not_after; /* UTC */
	enum crypto_key_type key_type;
	char fingerprint_sha256[CRYPTO_SHA256_HEX_SIZE]; /* of the DER, hex */
	char spki_sha256[CRYPTO_SHA256_HEX_SIZE]; /* of the key: its identity */
	char *pem;                /* the certificate alone, PEM */
	struct crypto_key *key;   /* public key, for crypto_verify_sig() */
	struct crypto_x509 *x509; /* OpenSSL objects: certificate and chain */
};

/* Parses the first certificate in pem. Any further certificates in pem and
 * every certificate in extra_chain_pem (may be NULL) are kept as the chain
 * the holder carries, used by crypto_cert_verify() to reach a root; at most 8.
 * SM2-signed certificates get CRYPTO_SM2_DISTID. On success sets *out to a new
 * cert (caller frees with crypto_cert_free()) and returns 0. On error
 * (no certificate, bad PEM or DER, a subject value with a NUL) returns -1. */
int crypto_cert_parse(struct crypto_cert **out, const char *pem,
    const char *extra_chain_pem);

/* crypto_cert_parse(out, pem, NULL) through a small per-process cache keyed
 * by the SHA-256 of pem (256 entries, each kept CRYPTO_CERT_CACHE_SECONDS):
 * the same certificate text parsed again (a holder logging in again) gives
 * the same read-only cert, shared between threads, whose key keeps its
 * prepared verify context. Free it with crypto_cert_free() as usual. Parsing
 * depends on the text alone, so a cached answer is the answer. */
#define CRYPTO_CERT_CACHE_SECONDS 600
int crypto_cert_parse_cached(struct crypto_cert **out, const char *pem);

void crypto_cert_free(struct crypto_cert *cert);

/* The trusted roots, and intermediates to build chains with. */
struct crypto_trust;

/* Loads a PEM bundle: self-signed certificates become trust anchors, the
 * others (issuing CAs) only help to build chains and are not trusted by
 * themselves. SM2-signed certificates get CRYPTO_SM2_DISTID. On success sets
 * *out to a new store (caller frees with crypto_trust_free()) and returns 0;
 * on error (unreadable file, bad PEM, no self-signed root) returns -1. */
int crypto_trust_load(struct crypto_trust **out, const char *pem_bundle_path);

/* crypto_trust_load from a PEM string. */
int crypto_trust_load_pem(struct crypto_trust **out, const char *pem_bundle);

void crypto_trust_free(struct crypto_trust *trust);

enum crypto_cert_status {
	CRYPTO_CERT_OK,
	CRYPTO_CERT_UNTRUSTED,     /* no chain to a root, bad signature, ... */
	CRYPTO_CERT_EXPIRED,       /* trusted chain, a certificate expired */
	CRYPTO_CERT_NOT_YET_VALID, /* trusted chain, a certificate too new */
};

/* Returns "ok", "untrusted", "expired" or "not_yet_valid" (static strings). */
const char *crypto_cert_status_name(enum crypto_cert_status status);

/* Checks that cert chains to a root of trust through the intermediates of the
 * trust bundle or of the cert, with every certificate valid at time at.
 * Anything wrong besides the dates outranks them: a chain that is untrusted
 * and expired is CRYPTO_CERT_UNTRUSTED. No revocation check. */
enum crypto_cert_status crypto_cert_verify(const struct crypto_trust *trust,
    const struct crypto_cert *cert, time_t at);

/* crypto_cert_verify that also writes OpenSSL's reason and the depth of the
 * failing certificate into why (for logs) when the result is not OK. */
enum crypto_cert_status
crypto_cert_verify_explain(const struct crypto_trust *trust,
    const struct crypto_cert *cert, time_t at, char *why, size_t why_size);

/* ---- Certificate signing requests ---- */

/* A CSR whose self-signature has been checked. Read-only fields, all owned. */
struct crypto_csr {
	char *subject_dn; /* RFC 2253, UTF-8 */
	struct crypto_subject subject;
	enum crypto_key_type key_type;
	char spki_sha256[CRYPTO_SHA256_HEX_SIZE];
	char *pem;              /* the request, PEM */
	struct crypto_key *key; /* the requested public key */
	struct crypto_x509_req *req;
};

/* Parses the first CSR in csr_pem and checks its self-signature (SM2 with
 * CRYPTO_SM2_DISTID). On success sets *out to a new CSR (caller frees with
 * crypto_csr_free()) and returns 0. On error (bad PEM, bad signature, a
 * subject value with a NUL) returns -1. */
int crypto_csr_parse_verify(struct crypto_csr **out, const char *csr_pem);

void crypto_csr_free(struct crypto_csr *csr);

/* Makes a CSR for key's public key with the subject of subject_from, signed
 * with key's private key (SM2: SM3 and CRYPTO_SM2_DISTID). On success sets
 * *out_pem to a new PEM string (caller frees with free()) and returns 0; on
 * error (public key only, type OTHER) returns -1. */
int crypto_csr_create(char **out_pem, const struct crypto_key *key,
    const struct crypto_cert *subject_from);

/* The same with the subject given field by field (C, O, OU, CN,
 * organizationIdentifier in that order; NULL fields left out): a first
 * application's CSR, whose subject the platform dictates (issue 19). */
int crypto_csr_create_subject(char **out_pem, const struct crypto_key *key,
    const struct crypto_subject *subject);

/* ---- Keys under a passphrase (the USB-key simulator's PIN) ---- */

/* Returns a new PEM string of the private key as encrypted PKCS#8
 * (AES-256-CBC, key derived from passphrase), or NULL for a public key;
 * caller frees with free(). */
char *crypto_key_private_pem_encrypted(const struct crypto_key *key,
    const char *passphrase);

/* Reads an encrypted PKCS#8 private key. On success sets *out to a new key
 * (caller frees with crypto_key_free()) and returns 0; a wrong passphrase or
 * a bad PEM returns -1. */
int crypto_key_load_pem_encrypted(struct crypto_key **out, const char *pem,
    const char *passphrase);

/* ---- Secrets ---- */

/* Overwrites the n bytes at p with zeros in a way the compiler cannot
 * optimise away (OPENSSL_cleanse): for passwords, codes and keys after use. */
void crypto_wipe(void *p, size_t n);

/* ---- Authenticated encryption (payments: WeChat Pay API v3) ---- */

#define CRYPTO_GCM_TAG_LEN 16

/* AES-256-GCM decryption of in (in_len bytes: the ciphertext followed by
 * its 16-byte tag) with the 32-byte key, the iv (iv_len > 0 bytes, 12 for
 * WeChat Pay) and the additional data aad (aad_len may be 0, aad NULL). On
 * success sets *out to a new NUL-terminated buffer of in_len - 16 bytes
 * (caller frees with free(); wipe it when secret) and *out_len to that
 * length, and returns 0. When the tag does not verify, or in is shorter
 * than the tag, returns -1 and leaves *out untouched. */
int crypto_aes256gcm_decrypt(unsigned char **out, size_t *out_len,
    const unsigned char key[32], const void *iv, size_t iv_len, const void *aad,
    size_t aad_len, const unsigned char *in, size_t in_len);

/* AES-256-GCM encryption: sets *out to a new buffer of in_len + 16 bytes,
 * the ciphertext followed by the tag, and *out_len to its length; returns 0.
 * Returns -1 only for iv_len 0. For tests and simulators. */
int crypto_aes256gcm_encrypt(unsigned char **out, size_t *out_len,
    const unsigned char key[32], const void *iv, size_t iv_len, const void *aad,
    size_t aad_len, const unsigned char *in, size_t in_len);

/* ---- Issuing certificates and CRLs (issuance: the local CA) ---- */

/* A certificate serial as hex: 32 upper-case digits and a NUL. */
#define CRYPTO_SERIAL_HEX_SIZE 33

/* Writes a new random serial into out: 16 bytes from the CSPRNG, the first
 * one 0x10..0x7F (positive and without a leading zero digit, so it reads
 * back the same from the certificate), as upper-case hex with a NUL. Fit for
 * crypto_issue_spec.serial. A failing RNG is fatal. */
void crypto_random_serial(char out[CRYPTO_SERIAL_HEX_SIZE]);

/* What crypto_cert_create() and crypto_cert_issue() put in a certificate
 * besides subject, key and issuer. */
struct crypto_issue_spec {
	const char *serial; /* upper-case hex, 1..40 digits, not zero */
	time_t not_before, not_after; /* UTC, not_before < not_after */
	int ca;                       /* 1: CA:TRUE, keyCertSign and cRLSign;
	                         * 0: CA:FALSE, digitalSignature and
	                         * nonRepudiation, extKeyUsage clientAuth */
	int path_len;        /* CA only: pathLenConstraint, -1 for none */
	const char *crl_url; /* leaf only: a CRL distribution point (URI),
	                         * or NULL */
};

/* Makes an X.509 v3 certificate for subject_key's public key with the
 * subject attributes given (C, O, OU, CN, organizationIdentifier, in that
 * order; NULL ones are left out), signed by issuer_key as issuer (the
 * issuer's subject becomes the issuer name and its key identifier the
 * authority key identifier). issuer NULL makes a self-signed certificate,
 * and then issuer_key must be subject_key's own private key. The signature
 * follows issuer_key's type: RSA PKCS#1 v1.5 with SHA-256, ECDSA with
 * SHA-256, or SM2 with SM3 and CRYPTO_SM2_DISTID. On success sets *out_pem
 * to a new PEM string (caller frees with free()) and returns 0. On error (a
 * public issuer key, type OTHER, an issuer key that is not the issuer's, a
 * bad serial or dates) returns -1 and leaves *out_pem untouched. */
int crypto_cert_create(char **out_pem, const struct crypto_key *subject_key,
    const struct crypto_subject *subject, const struct crypto_cert *issuer,
    const struct crypto_key *issuer_key, const struct crypto_issue_spec *spec);

/* Issues a certificate for the key of a checked CSR (see
 * crypto_csr_parse_verify()). The subject is subject_from's subject name,
 * byte for byte (a renewal keeps the subject), or the CSR's own when
 * subject_from is NULL; nothing else of the CSR (attributes, requested
 * extensions) is copied. Otherwise as crypto_cert_create() with a non-NULL
 * issuer. */
int crypto_cert_issue(char **out_pem, const struct crypto_csr *csr,
    const struct crypto_cert *subject_from, const struct crypto_cert *issuer,
    const struct crypto_key *issuer_key, const struct crypto_issue_spec *spec);

/* Returns the key size in bits (2048 for RSA-2048, 256 for P-256 and SM2). */
int crypto_key_bits(const struct crypto_key *key);

/* RFC 5280 CRLReason codes used in CRL entries. */
enum crypto_crl_reason {
	CRYPTO_CRL_UNSPECIFIED = 0,
	CRYPTO_CRL_KEY_COMPROMISE = 1,
	CRYPTO_CRL_CA_COMPROMISE = 2,
	CRYPTO_CRL_AFFILIATION_CHANGED = 3,
	CRYPTO_CRL_SUPERSEDED = 4,
	CRYPTO_CRL_CESSATION_OF_OPERATION = 5,
};

struct crypto_crl_entry {
	const char *serial; /* upper-case hex */
	time_t revoked_at;
	enum crypto_crl_reason reason; /* UNSPECIFIED: no reasonCode */
};

/* Makes a v2 CRL of issuer listing the n entries, with thisUpdate,
 * nextUpdate, the CRL number and the authority key identifier, signed by
 * issuer_key like crypto_cert_create() signs (SM2: SM3 and
 * CRYPTO_SM2_DISTID). On success sets *out_der to a new DER buffer (caller
 * frees with free()) and *out_len to its length, and returns 0; on error (an
 * issuer key that is not the issuer's, a bad serial) returns -1. */
int crypto_crl_create(unsigned char **out_der, size_t *out_len,
    const struct crypto_cert *issuer, const struct crypto_key *issuer_key,
    const struct crypto_crl_entry *entries, size_t n, time_t this_update,
    time_t next_update, long number);

/* Returns 0 when der is a CRL issued (by name) and signed by issuer, -1
 * otherwise. SM2 CRLs are checked over their TBS bytes with SM3 and
 * CRYPTO_SM2_DISTID (X509_CRL_verify cannot take the ID, DOMAIN.md §1). */
int crypto_crl_verify(const unsigned char *der, size_t len,
    const struct crypto_cert *issuer);

#endif
