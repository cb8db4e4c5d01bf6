/* fuzz_x509 — the certificates and CSRs a holder sends at login
 * (auth/ca.c) and renewal (issuance/renew.c): crypto_cert_parse with its
 * carried chain, crypto_cert_verify against the test PKI's roots
 * (tests/fuzz/x509-roots.pem, or $FUZZ_X509_ROOTS), crypto_verify_sig with
 * the certificate's key, and crypto_csr_parse_verify. An input starting
 * "-----BEGIN" is taken as PEM; anything else as DER, wrapped as both a
 * CERTIFICATE and a CERTIFICATE REQUEST. Every string parsed out must be
 * text PostgreSQL accepts: it is stored and answered as is. */
#include "fuzz.h"

#include "crypto.h"
#include "http.h"

#include <time.h>

static struct crypto_trust *trust;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *roots = getenv("FUZZ_X509_ROOTS");

	if (crypto_trust_load(&trust,
	        roots ? roots : "tests/fuzz/x509-roots.pem") != 0)
		trust = NULL;
	return 0;
}

static int
text_ok(const char *s)
{
	return s == NULL || http_text_valid(s, strlen(s));
}

static void
subject_ok(const struct crypto_subject *s)
{
	FUZZ_CHECK(text_ok(s->c) && text_ok(s->o) && text_ok(s->ou) &&
	    text_ok(s->cn) && text_ok(s->org_id));
}

static void
one_cert(const char *pem, const uint8_t *data, size_t size)
{
	struct crypto_cert *cert;

	if (crypto_cert_parse(&cert, pem, NULL) != 0)
		return;
	FUZZ_CHECK(
	    cert->serial != NULL && cert->pem != NULL && cert->key != NULL);
	FUZZ_CHECK(text_ok(cert->serial) && text_ok(cert->issuer_dn) &&
	    text_ok(cert->subject_dn));
	subject_ok(&cert->subject);
	FUZZ_CHECK(strlen(cert->fingerprint_sha256) == 64 &&
	    strlen(cert->spki_sha256) == 64);
	if (trust != NULL) {
		char why[256];
		crypto_cert_verify_explain(trust, cert, time(NULL), why,
		    sizeof(why));
	}
	crypto_verify_sig(cert->key, "challenge", 9, data,
	    size < 128 ? size : 128);
	crypto_cert_free(cert);
}

static void
one_csr(const char *pem)
{
	struct crypto_csr *csr;

	if (crypto_csr_parse_verify(&csr, pem) != 0)
		return;
	FUZZ_CHECK(csr->pem != NULL && csr->key != NULL);
	FUZZ_CHECK(text_ok(csr->subject_dn));
	subject_ok(&csr->subject);
	crypto_csr_free(csr);
}

/* Wraps der as PEM of label, 64 characters a line. */
static char *
wrap(const char *label, const uint8_t *der, size_t len)
{
	char *b64 = crypto_base64_encode(der, len);
	size_t n = strlen(b64), used = 0;
	char *pem = malloc(n + n / 64 + 2 * strlen(label) + 64);

	used += (size_t)sprintf(pem, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;
		memcpy(pem + used, b64 + i, k);
		used += k;
		pem[used++] = '\n';
	}
	sprintf(pem + used, "-----END %s-----\n", label);
	free(b64);
	return pem;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		char *pem = malloc(size + 1);
		memcpy(pem, data, size);
		pem[size] = '\0';
		one_cert(pem, data, size);
		one_csr(pem);
		free(pem);
	} else {
		char *pem = wrap("CERTIFICATE", data, size);
		one_cert(pem, data, size);
		free(pem);
		pem = wrap("CERTIFICATE REQUEST", data, size);
		one_csr(pem);
		free(pem);
	}
	return 0;
}
