/* crypto_x509 — certificates, the chains a holder carries, the trusted
 * roots and chain verification, and certificate signing requests. SM2 rule
 * of DOMAIN.md §1: CRYPTO_SM2_DISTID on every SM2-signed certificate and
 * CSR, so their signatures verify. */
#include "crypto_int.h"
#include "hist.h"

#include "util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int
crypto_x509_set_distid(X509 *x)
{
	ASN1_OCTET_STRING *id;

	if (X509_get_signature_nid(x) != NID_SM2_with_SM3)
		return 0;
	if ((id = sm2_distid_new()) == NULL)
		return crypto_fail();
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
		return crypto_fail();
	X509_REQ_set0_distinguishing_id(req, id);
	return 0;
}

/* Appends every certificate of pem to certs, at most max of them (0: no
 * limit). Returns how many were read, or -1 on bad PEM or too many. */
static int
pem_read_certs(STACK_OF(X509) * certs, const char *pem, int max)
{
	BIO *bio = crypto_bio_reader(pem);
	int count = 0;
	X509 *x;

	for (;;) {
		unsigned long err;

		x = PEM_read_bio_X509(bio, NULL, crypto_no_passphrase, NULL);
		if (x == NULL) {
			err = ERR_peek_last_error();
			if (ERR_GET_LIB(err) == ERR_LIB_PEM &&
			    ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
				break; /* no more certificates */
			count = -1;
			break;
		}
		if ((max > 0 && count == max) ||
		    crypto_x509_set_distid(x) != 0 || !sk_X509_push(certs, x)) {
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
	BIO *bio = crypto_bio_new();
	char *s = NULL;

	if (X509_NAME_print_ex(bio, name, 0, flags) >= 0)
		s = crypto_bio_string(bio);
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
		return crypto_fail();
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
		return crypto_fail();
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
		return crypto_fail();
	if (subject_fill(&cert->subject, X509_get_subject_name(x)) != 0)
		return -1;
	if (asn1_time_get(X509_get0_notBefore(x), &cert->not_before) != 0 ||
	    asn1_time_get(X509_get0_notAfter(x), &cert->not_after) != 0)
		return -1;
	cert->key = crypto_key_wrap_public(X509_get0_pubkey(x));
	if (cert->key == NULL)
		return crypto_fail();
	cert->key_type = cert->key->type;
	crypto_key_spki_sha256_hex(cert->key, cert->spki_sha256);
	n = i2d_X509(x, &der);
	if (n <= 0)
		return crypto_fail();
	crypto_sha256_hex(der, (size_t)n, cert->fingerprint_sha256);
	OPENSSL_free(der);
	bio = crypto_bio_new();
	if (PEM_write_bio_X509(bio, x) == 1)
		cert->pem = crypto_bio_string(bio);
	BIO_free(bio);
	return cert->pem ? 0 : crypto_fail();
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

/* The parsed-certificate cache: direct-mapped on the PEM's SHA-256. */
#define CERT_CACHE_SLOTS 256
static struct {
	unsigned char sha[CRYPTO_SHA256_LEN];
	struct crypto_cert *cert; /* holds one reference */
	time_t until;
} cert_cache[CERT_CACHE_SLOTS];
static pthread_mutex_t cert_cache_mu = PTHREAD_MUTEX_INITIALIZER;

int
crypto_cert_parse_cached(struct crypto_cert **out, const char *pem)
{
	unsigned char sha[CRYPTO_SHA256_LEN];
	struct crypto_cert *cert = NULL, *old = NULL;
	time_t now = time(NULL);
	unsigned i;

	crypto_sha256(pem, strlen(pem), sha);
	i = ((unsigned)sha[0] | (unsigned)sha[1] << 8) % CERT_CACHE_SLOTS;
	pthread_mutex_lock(&cert_cache_mu);
	if (cert_cache[i].cert != NULL && cert_cache[i].until > now &&
	    memcmp(cert_cache[i].sha, sha, sizeof(sha)) == 0) {
		cert = cert_cache[i].cert;
		cert->x509->refs++;
	}
	pthread_mutex_unlock(&cert_cache_mu);
	if (cert != NULL) {
		*out = cert;
		return 0;
	}
	if (crypto_cert_parse(&cert, pem, NULL) != 0)
		return -1;
	cert->x509->cached = 1;
	pthread_mutex_lock(&cert_cache_mu);
	old = cert_cache[i].cert;
	memcpy(cert_cache[i].sha, sha, sizeof(sha));
	cert_cache[i].cert = cert;
	cert_cache[i].until = now + CRYPTO_CERT_CACHE_SECONDS;
	cert->x509->refs++; /* the caller's, beside the cache's */
	pthread_mutex_unlock(&cert_cache_mu);
	crypto_cert_free(old);
	*out = cert;
	return 0;
}

void
crypto_cert_free(struct crypto_cert *cert)
{
	int shared;

	if (cert == NULL)
		return;
	/* Only a cert that went into the cache is ever shared. */
	if (cert->x509 != NULL && cert->x509->cached) {
		pthread_mutex_lock(&cert_cache_mu);
		shared = cert->x509->refs > 0;
		if (shared)
			cert->x509->refs--;
		pthread_mutex_unlock(&cert_cache_mu);
		if (shared)
			return;
	}
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
	return crypto_fail();
}

int
crypto_trust_load(struct crypto_trust **out, const char *pem_bundle_path)
{
	char *pem;
	int rc;

	if (crypto_read_file(&pem, pem_bundle_path) != 0)
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
	int64_t t0 = hist_now();
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
	hist_step(STEP_CHAIN_VERIFY, t0);
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
	BIO *bio = crypto_bio_reader(csr_pem);
	int64_t t0 = hist_now();
	X509_REQ *req;
	EVP_PKEY *pkey;

	req = PEM_read_bio_X509_REQ(bio, NULL, crypto_no_passphrase, NULL);
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
	csr->key = crypto_key_wrap_public(pkey);
	if (csr->key == NULL)
		goto err;
	csr->key_type = csr->key->type;
	crypto_key_spki_sha256_hex(csr->key, csr->spki_sha256);
	bio = crypto_bio_new();
	if (PEM_write_bio_X509_REQ(bio, req) == 1)
		csr->pem = crypto_bio_string(bio);
	BIO_free(bio);
	if (csr->pem == NULL)
		goto err;
	*out = csr;
	hist_step(STEP_CSR_VERIFY, t0);
	return 0;
err:
	crypto_csr_free(csr);
	hist_step(STEP_CSR_VERIFY, t0);
	return crypto_fail();
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
	mdctx = crypto_md_ctx_new();
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req,
	        X509_get_subject_name(subject_from->x509->cert)) != 1 ||
	    X509_REQ_set_pubkey(req, key->pkey) != 1 ||
	    crypto_digest_init(mdctx, key, 1) != 0 ||
	    X509_REQ_sign_ctx(req, mdctx) <= 0)
		goto out;
	bio = crypto_bio_new();
	if (PEM_write_bio_X509_REQ(bio, req) == 1)
		pem = crypto_bio_string(bio);
	BIO_free(bio);
out:
	EVP_MD_CTX_free(mdctx);
	X509_REQ_free(req);
	if (pem == NULL)
		return crypto_fail();
	*out_pem = pem;
	return 0;
}
