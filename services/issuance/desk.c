/* desk — the local CA's counter: a first application issued by the local
 * CA outside any renewal (`caplat-issuance ca-issue`), recorded in its
 * directory (localca_directory_add) for the vendor directory sync to bring
 * into the registry. An operator's command, run once, off any loop.
 *
 *   caplat-issuance ca-issue --csr FILE [--days N] [--key-serial S]
 *       [--key-vendor V] [--platforms A,B] [--applied-at RFC3339]
 *
 * The certificate carries the CSR's subject (CN the holder, OU the lock
 * kind, organizationIdentifier the USCC); it is printed as PEM. */
#include "issuance.h"

#include "crypto.h"
#include "util.h"
#include "vendor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
usage(void)
{
	fprintf(stderr,
	    "usage: caplat-issuance ca-issue --csr FILE [--days N]"
	    " [--key-serial S] [--key-vendor V] [--platforms A,B]"
	    " [--applied-at RFC3339]\n");
	return 2;
}

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int c;

	if (f == NULL)
		return NULL;
	while ((c = fgetc(f)) != EOF) {
		if (n + 2 > cap)
			buf = xrealloc(buf, cap = cap ? cap * 2 : 4096);
		buf[n++] = (char)c;
	}
	fclose(f);
	if (buf == NULL)
		return xstrdup("");
	buf[n] = '\0';
	return buf;
}

int
issuance_ca_issue(int argc, char **argv)
{
	const char *csr_path = NULL, *key_serial = NULL, *key_vendor = NULL,
	           *platforms = NULL, *applied_at = NULL;
	long days = 365;
	char serial[CRYPTO_SERIAL_HEX_SIZE], err[256];
	char *csr, *cert_pem = NULL, *chain_pem = NULL;
	struct crypto_cert *cert = NULL;
	time_t now = time(NULL);
	json_t *meta, *codes;

	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--csr") == 0)
			csr_path = argv[i + 1];
		else if (strcmp(argv[i], "--days") == 0)
			days = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--key-serial") == 0)
			key_serial = argv[i + 1];
		else if (strcmp(argv[i], "--key-vendor") == 0)
			key_vendor = argv[i + 1];
		else if (strcmp(argv[i], "--platforms") == 0)
			platforms = argv[i + 1];
		else if (strcmp(argv[i], "--applied-at") == 0)
			applied_at = argv[i + 1];
		else
			return usage();
	}
	if (csr_path == NULL || argc % 2 != 0 || days < 1 || days > 3650)
		return usage();
	if ((csr = read_all(csr_path)) == NULL) {
		fprintf(stderr, "ca-issue: cannot read %s\n", csr_path);
		return 1;
	}
	crypto_random_serial(serial);
	const struct vendor_cert_request r = {serial, serial, csr, NULL,
	    now - 300, now + days * DAY_SECONDS};
	if (localca_issue(issuance.localca, &r, &cert_pem, &chain_pem, err,
	        sizeof(err)) != 0 ||
	    crypto_cert_parse(&cert, cert_pem, NULL) != 0) {
		fprintf(stderr, "ca-issue: %s\n", err);
		free(csr);
		return 1;
	}
	meta = json_object();
	codes = json_array();
	for (const char *p = platforms; p != NULL && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(codes, json_stringn(p, len));
		p = comma ? comma + 1 : p + len;
	}
	json_object_set_new(meta, "key_serial",
	    key_serial ? json_string(key_serial) : json_null());
	json_object_set_new(meta, "key_vendor",
	    key_vendor ? json_string(key_vendor) : json_null());
	json_object_set_new(meta, "applied_at",
	    applied_at ? json_string(applied_at) : json_null());
	json_object_set_new(meta, "platforms", codes);
	if (localca_directory_add(issuance.localca, cert_pem,
	        cert->subject.org_id, meta, err, sizeof(err)) != 0) {
		fprintf(stderr, "ca-issue: %s\n", err);
		json_decref(meta);
		crypto_cert_free(cert);
		free(cert_pem);
		free(chain_pem);
		free(csr);
		return 1;
	}
	fputs(cert_pem, stdout);
	json_decref(meta);
	crypto_cert_free(cert);
	free(cert_pem);
	free(chain_pem);
	free(csr);
	return 0;
}
