/* ukey — a USB-key simulator for tests and demos, built on common/crypto: it
 * signs login and renewal challenges and makes renewal CSRs the way a
 * Chinese CA's USB key does (RSA/SHA-256, ECDSA P-256/SHA-256, SM2/SM3 with
 * the ID 1234567812345678). Keys and certificates: tests/ukey/mkpki.sh. */
#include "crypto.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: ukey sign KEY.pem NONCE_BASE64\n"
    "           print the base64 signature over the decoded nonce bytes\n"
    "       ukey csr KEY.pem NEWKEY.pem CERT.pem\n"
    "           print a PEM CSR for NEWKEY with CERT's subject; KEY must be\n"
    "           the key of CERT (the holder renews their own certificate)\n"
    "       ukey verify CERT.pem NONCE_BASE64 SIGNATURE_BASE64\n"
    "           exit 0 when the signature is CERT's over the nonce\n"
    "  virtual keys in a folder (private key encrypted under the PIN, from\n"
    "  $UKEY_PIN, initially 111111):\n"
    "       ukey -d DIR import NAME KEY.pem CERT.pem   put a key and its certificate on key NAME\n"
    "       ukey -d DIR cert NAME                     print the certificate\n"
    "       ukey -d DIR sign NAME NONCE_BASE64        sign a challenge (needs the PIN)\n"
    "       ukey -d DIR csr NAME                      make a new key pair on the key, print its CSR\n"
    "       ukey -d DIR install NAME CERT.pem         install the renewed certificate (for the new key)\n"
    "       ukey -d DIR pin NAME NEW_PIN              change the PIN\n"
    "       ukey -d DIR keygen NAME rsa|sm2           generate a key pair on a blank key\n"
    "                                                 (under the PIN; it never leaves)\n"
    "       ukey -d DIR request NAME SUBJECT_JSON     print a CSR of the key's key for\n"
    "                                                 {c, o, ou, cn, organization_identifier}\n";

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

/* ---- virtual keys: DIR/NAME/{key.pem, cert.pem, pending.key.pem} ---- */

static const char *
ukey_pin(void)
{
	const char *pin = getenv("UKEY_PIN");

	return pin && *pin ? pin : "111111";
}

static char *
key_path(const char *dir, const char *name, const char *file)
{
	return xasprintf("%s/%s/%s", dir, name, file);
}

static void
write_file(const char *path, const char *text, int mode)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "wb");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fatal("%s: cannot write", tmp);
	if (chmod(tmp, (mode_t)mode) != 0 || rename(tmp, path) != 0)
		fatal("%s: cannot install", path);
	free(tmp);
}

/* Unlocks the key's private key with the PIN, or exits 3. */
static struct crypto_key *
unlock(const char *dir, const char *name, const char *file)
{
	char *path = key_path(dir, name, file);
	char *pem = slurp(path);
	struct crypto_key *key;

	if (crypto_key_load_pem_encrypted(&key, pem, ukey_pin()) != 0) {
		fprintf(stderr, "ukey: wrong PIN for %s\n", name);
		exit(3);
	}
	crypto_wipe(pem, strlen(pem));
	free(pem);
	free(path);
	return key;
}

static void
store_key(const char *dir, const char *name, const char *file,
    const struct crypto_key *key)
{
	char *pem = crypto_key_private_pem_encrypted(key, ukey_pin());
	char *path = key_path(dir, name, file);

	if (pem == NULL)
		fatal("cannot encrypt the key");
	write_file(path, pem, 0600);
	free(pem);
	free(path);
}

static int
cmd_import(const char *dir, const char *name, const char *key_file,
    const char *cert_file)
{
	struct crypto_key *key = load_key(key_file);
	struct crypto_cert *cert = load_cert(cert_file);
	char id[CRYPTO_SHA256_HEX_SIZE],
	    *folder = xasprintf("%s/%s", dir, name);
	char *path;

	crypto_key_spki_sha256_hex(key, id);
	if (strcmp(id, cert->spki_sha256) != 0)
		fatal("%s is not the key of %s", key_file, cert_file);
	mkdir(dir, 0700);
	mkdir(folder, 0700);
	store_key(dir, name, "key.pem", key);
	path = key_path(dir, name, "cert.pem");
	write_file(path, cert->pem, 0644);
	free(path);
	free(folder);
	crypto_cert_free(cert);
	crypto_key_free(key);
	return 0;
}

static int
cmd_cert(const char *dir, const char *name)
{
	char *path = key_path(dir, name, "cert.pem");
	char *pem = slurp(path);

	fputs(pem, stdout);
	free(pem);
	free(path);
	return 0;
}

static int
cmd_key_sign(const char *dir, const char *name, const char *nonce64)
{
	struct crypto_key *key = unlock(dir, name, "key.pem");
	unsigned char *nonce, *sig;
	size_t nonce_len, sig_len;
	char *sig64;

	nonce = decode_arg("nonce", nonce64, &nonce_len);
	if (crypto_sign(key, nonce, nonce_len, &sig, &sig_len) != 0)
		fatal("cannot sign");
	sig64 = crypto_base64_encode(sig, sig_len);
	printf("%s\n", sig64);
	free(sig64);
	free(sig);
	free(nonce);
	crypto_key_free(key);
	return 0;
}

/* A new key pair of the same type, kept pending until its certificate is
 * installed; the CSR carries the current certificate's subject. */
static int
cmd_key_csr(const char *dir, const char *name)
{
	struct crypto_key *cur = unlock(dir, name, "key.pem"), *fresh;
	char *cert_path = key_path(dir, name, "cert.pem");
	struct crypto_cert *cert = load_cert(cert_path);
	char *csr;

	if (crypto_key_generate(&fresh, crypto_key_type_of(cur)) != 0)
		fatal("cannot generate a key");
	store_key(dir, name, "pending.key.pem", fresh);
	if (crypto_csr_create(&csr, fresh, cert) != 0)
		fatal("cannot make the CSR");
	fputs(csr, stdout);
	free(csr);
	free(cert_path);
	crypto_cert_free(cert);
	crypto_key_free(fresh);
	crypto_key_free(cur);
	return 0;
}

static int
cmd_install(const char *dir, const char *name, const char *cert_file)
{
	struct crypto_cert *cert = load_cert(cert_file);
	char *pending = key_path(dir, name, "pending.key.pem");
	char *keyp = key_path(dir, name, "key.pem");
	char *certp = key_path(dir, name, "cert.pem");
	char id[CRYPTO_SHA256_HEX_SIZE];
	struct crypto_key *key;

	if (access(pending, F_OK) == 0) {
		key = unlock(dir, name, "pending.key.pem");
		crypto_key_spki_sha256_hex(key, id);
		crypto_key_free(key);
		if (strcmp(id, cert->spki_sha256) == 0) {
			if (rename(pending, keyp) != 0)
				fatal("cannot install the new key");
			write_file(certp, cert->pem, 0644);
			goto done;
		}
	}
	key = unlock(dir, name, "key.pem");
	crypto_key_spki_sha256_hex(key, id);
	crypto_key_free(key);
	if (strcmp(id, cert->spki_sha256) != 0)
		fatal("%s is not for a key on %s", cert_file, name);
	write_file(certp, cert->pem, 0644);
done:
	free(pending);
	free(keyp);
	free(certp);
	crypto_cert_free(cert);
	return 0;
}

static int
cmd_pin(const char *dir, const char *name, const char *new_pin)
{
	struct crypto_key *key = unlock(dir, name, "key.pem");

	if (strlen(new_pin) < 6)
		fatal("a PIN has at least 6 characters");
	setenv("UKEY_PIN", new_pin, 1);
	store_key(dir, name, "key.pem", key);
	crypto_key_free(key);
	return 0;
}

/* On-device key generation for a first application (issue 19): a blank
 * key (no key pair yet) makes an RSA-2048 or SM2 key pair and keeps the
 * private key under the PIN in its folder; nothing but the CSR leaves. */
static int
cmd_keygen(const char *dir, const char *name, const char *alg)
{
	enum crypto_key_type type;
	struct crypto_key *key;
	char *folder = xasprintf("%s/%s", dir, name);
	char *path = key_path(dir, name, "key.pem");

	if (strcmp(alg, "rsa") == 0)
		type = CRYPTO_KEY_RSA;
	else if (strcmp(alg, "sm2") == 0)
		type = CRYPTO_KEY_SM2;
	else
		fatal("the algorithm is rsa or sm2");
	if (access(path, F_OK) == 0)
		fatal("%s already holds a key pair", name);
	if (crypto_key_generate(&key, type) != 0)
		fatal("cannot generate a key");
	mkdir(dir, 0700);
	mkdir(folder, 0700);
	store_key(dir, name, "key.pem", key);
	crypto_key_free(key);
	free(path);
	free(folder);
	return 0;
}

/* The CSR of the key's key pair (needs the PIN) for the subject the
 * platform dictates: {c, o, ou, cn, organization_identifier}. */
static int
cmd_request(const char *dir, const char *name, const char *subject_json)
{
	json_error_t jerr;
	json_t *j = json_loads(subject_json, 0, &jerr);
	struct crypto_key *key;
	char *csr;

	if (!json_is_object(j))
		fatal("SUBJECT_JSON is not a JSON object");
	const struct crypto_subject subject = {
	    (char *)(uintptr_t)json_string_value(json_object_get(j, "c")),
	    (char *)(uintptr_t)json_string_value(json_object_get(j, "o")),
	    (char *)(uintptr_t)json_string_value(json_object_get(j, "ou")),
	    (char *)(uintptr_t)json_string_value(json_object_get(j, "cn")),
	    (char *)(uintptr_t)json_string_value(
	        json_object_get(j, "organization_identifier")),
	};
	key = unlock(dir, name, "key.pem");
	if (crypto_csr_create_subject(&csr, key, &subject) != 0)
		fatal("cannot make the CSR");
	fputs(csr, stdout);
	free(csr);
	crypto_key_free(key);
	json_decref(j);
	return 0;
}

static int
key_main(int argc, char **argv)
{
	const char *dir = argv[2], *cmd = argv[3];

	if (argc == 7 && strcmp(cmd, "import") == 0)
		return cmd_import(dir, argv[4], argv[5], argv[6]);
	if (argc == 5 && strcmp(cmd, "cert") == 0)
		return cmd_cert(dir, argv[4]);
	if (argc == 6 && strcmp(cmd, "sign") == 0)
		return cmd_key_sign(dir, argv[4], argv[5]);
	if (argc == 5 && strcmp(cmd, "csr") == 0)
		return cmd_key_csr(dir, argv[4]);
	if (argc == 6 && strcmp(cmd, "install") == 0)
		return cmd_install(dir, argv[4], argv[5]);
	if (argc == 6 && strcmp(cmd, "pin") == 0)
		return cmd_pin(dir, argv[4], argv[5]);
	if (argc == 6 && strcmp(cmd, "keygen") == 0)
		return cmd_keygen(dir, argv[4], argv[5]);
	if (argc == 6 && strcmp(cmd, "request") == 0)
		return cmd_request(dir, argv[4], argv[5]);
	fputs(usage, stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "-d") == 0)
		return key_main(argc, argv);
	if (argc == 4 && strcmp(argv[1], "sign") == 0)
		return cmd_sign(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "csr") == 0)
		return cmd_csr(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2], argv[3], argv[4]);
	fputs(usage, stderr);
	return 2;
}
