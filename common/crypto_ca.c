/* crypto_ca — what a certificate authority does (issuance's local CA):
 * random serials, X.509 v3 certificates for a key or a checked CSR, and v2
 * CRLs with their verification (SM2: SM3 and CRYPTO_SM2_DISTID). */
#include "crypto_int.h"
#include "hist.h"

#include "util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Issuing certificates and CRLs (the local CA of issuance) ---------- */

void
crypto_random_serial(char out[CRYPTO_SERIAL_HEX_SIZE])
{
	static const char digits[] = "0123456789ABCDEF";
	unsigned char b[16];

	crypto_random_bytes(b, sizeof(b));
	b[0] = (unsigned char)(0x10 + b[0] % 0x70);
	for (size_t i = 0; i < sizeof(b); i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * sizeof(b)] = '\0';
}

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
	int64_t t0 = hist_now();
	int ok = 0;

	if (!issuer_key->has_private || issuer_key->type == CRYPTO_KEY_OTHER ||
	    spec->not_after <= spec->not_before)
		return -1;
	if (issuer != NULL &&
	    !issue_key_matches(issuer_key, issuer->spki_sha256))
		return -1;
	if ((serial = issue_serial(spec->serial)) == NULL)
		return crypto_fail();
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
	/* crypto_digest_init() puts SM3 and the SM2 ID on the signing context. */
	mdctx = crypto_md_ctx_new();
	if (crypto_digest_init(mdctx, issuer_key, 1) != 0 ||
	    X509_sign_ctx(x, mdctx) <= 0)
		goto out;
	{
		BIO *bio = crypto_bio_new();

		if (PEM_write_bio_X509(bio, x) == 1)
			pem = crypto_bio_string(bio);
		BIO_free(bio);
	}
	ok = pem != NULL;
out:
	free(cdp);
	EVP_MD_CTX_free(mdctx);
	ASN1_INTEGER_free(serial);
	X509_free(x);
	hist_step(STEP_CA_SIGN, t0);
	if (!ok)
		return crypto_fail();
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
		return crypto_fail();
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
	mdctx = crypto_md_ctx_new();
	if (crypto_digest_init(mdctx, issuer_key, 1) != 0 ||
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
	return ok ? 0 : crypto_fail();
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
	return ok ? 0 : crypto_fail();
}

int
crypto_csr_create_subject(char **out_pem, const struct crypto_key *key,
    const struct crypto_subject *subject)
{
	X509_REQ *req;
	X509_NAME *name;
	EVP_MD_CTX *mdctx;
	BIO *bio;
	char *pem = NULL;

	if (!key->has_private || key->type == CRYPTO_KEY_OTHER)
		return -1;
	if ((name = issue_name(subject)) == NULL)
		return crypto_fail();
	req = X509_REQ_new();
	if (req == NULL)
		fatal("out of memory (X509_REQ)");
	mdctx = crypto_md_ctx_new();
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 ||
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
	X509_NAME_free(name);
	if (pem == NULL)
		return crypto_fail();
	*out_pem = pem;
	return 0;
}
