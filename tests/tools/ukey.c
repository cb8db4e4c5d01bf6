/* ukey — a USB-key simulator for tests and demos, built on common/crypto: it
 * signs login and renewal challenges and makes renewal CSRs the way a
 * Chinese CA's USB key does (RSA/SHA-256, ECDSA P-256/SHA-256, SM2/SM3 with
 * the ID 1234567812345678). Keys and certificates: tests/ukey/mkpki.sh. */
#include "crypto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: ukey sign KEY.pem NONCE_BASE64\n"
    "           print the base64 signature over the decoded nonce bytes\n"
    "       ukey csr KEY.pem NEWKEY.pem CERT.pem\n"
    "           print a PEM CSR for NEWKEY with CERT's subject; KEY must be\n"
    "           the key of CERT (the holder renews their own certificate)\n"
    "       ukey verify CERT.pem NONCE_BASE64 SIGNATURE_BASE64\n"
    "           exit 0 when the signature is CERT's over the nonce\n";

/* Reads a whole (PEM) file into a new string, or dies. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		fatal("%s: cannot open", path);
	do {
		if (cap - len < 4096)
			buf = xrealloc(buf, cap = cap * 2 + 4096);
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0 && len < 1024 * 1024);
	if (ferror(f))
		fatal("%s: read error", path);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static struct crypto_key *
load_key(const char *path)
{
	struct crypto_key *key;

	if (crypto_key_load_file(&key, path) != 0)
		fatal("%s: not a PEM key", path);
	if (crypto_key_type_of(key) == CRYPTO_KEY_OTHER)
		fatal("%s: not an RSA, P-256 or SM2 key", path);
	return key;
}

static struct crypto_cert *
load_cert(const char *path)
{
	struct crypto_cert *cert;
	char *pem = slurp(path);

	if (crypto_cert_parse(&cert, pem, NULL) != 0)
		fatal("%s: not a PEM certificate", path);
	free(pem);
	return cert;
}

/* The API sends standard base64; base64url is accepted too for hand use. */
static unsigned char *
decode_arg(const char *what, const char *s, size_t *len)
{
	unsigned char *out;

	if (crypto_base64_decode(&out, len, s, strlen(s)) != 0 &&
	    crypto_base64url_decode(&out, len, s, strlen(s)) != 0)
		fatal("%s: not base64", what);
	return out;
}

static int
cmd_sign(const char *key_path, const char *nonce64)
{
	struct crypto_key *key = load_key(key_path);
	unsigned char *nonce, *sig;
	size_t nonce_len, sig_len;
	char *sig64;

	nonce = decode_arg("nonce", nonce64, &nonce_len);
	if (crypto_sign(key, nonce, nonce_len, &sig, &sig_len) != 0)
		fatal("%s: cannot sign (a public key?)", key_path);
	sig64 = crypto_base64_encode(sig, sig_len);
	printf("%s\n", sig64);
	free(sig64);
	free(sig);
	free(nonce);
	crypto_key_free(key);
	return 0;
}

static int
cmd_csr(const char *key_path, const char *new_key_path, const char *cert_path)
{
	struct crypto_key *key = load_key(key_path);
	struct crypto_key *new_key = load_key(new_key_path);
	struct crypto_cert *cert = load_cert(cert_path);
	char key_id[CRYPTO_SHA256_HEX_SIZE];
	char *csr;

	crypto_key_spki_sha256_hex(key, key_id);
	if (strcmp(key_id, cert->spki_sha256) != 0)
		fatal("%s is not the key of %s", key_path, cert_path);
	if (crypto_csr_create(&csr, new_key, cert) != 0)
		fatal("%s: cannot sign a CSR (a public key?)", new_key_path);
	fputs(csr, stdout);
	free(csr);
	crypto_cert_free(cert);
	crypto_key_free(new_key);
	crypto_key_free(key);
	return 0;
}

static int
cmd_verify(const char *cert_path, const char *nonce64, const char *sig64)
{
	struct crypto_cert *cert = load_cert(cert_path);
	unsigned char *nonce, *sig;
	size_t nonce_len, sig_len;
	int rc;

	nonce = decode_arg("nonce", nonce64, &nonce_len);
	sig = decode_arg("signature", sig64, &sig_len);
	rc = crypto_verify_sig(cert->key, nonce, nonce_len, sig, sig_len);
	puts(rc == 0 ? "ok" : "bad signature");
	free(nonce);
	free(sig);
	crypto_cert_free(cert);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "sign") == 0)
		return cmd_sign(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "csr") == 0)
		return cmd_csr(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2], argv[3], argv[4]);
	fputs(usage, stderr);
	return 2;
}
