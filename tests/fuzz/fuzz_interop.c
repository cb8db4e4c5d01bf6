/* fuzz_interop — a downstream platform's signed status request as
 * issuance/handlers.c reads it: X-Timestamp, X-Platform (looked up in the
 * secrets configured as "CODE=secret,…"), X-Nonce, X-Signature and the
 * canonical string of method, path and query. Input: timestamp, platform,
 * nonce, signature, path, query, secrets spec — one a line. */
#include "fuzz.h"

#include "../../services/issuance/issuance.h"
#include "crypto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[7];
	char *buf = fuzz_split(data, size, f, 7, NULL);
	struct cert_platform_secret *secrets = NULL;
	size_t n = 0;
	const char *secret;

	if (cert_interop_timestamp_ok(f[0], 1780000000, 300) == 0)
		FUZZ_CHECK(strspn(f[0], "0123456789") == strlen(f[0]));
	if (cert_interop_nonce_ok(f[2]))
		FUZZ_CHECK(strlen(f[2]) >= 16 && strlen(f[2]) <= 64);
	if (cert_platform_code_ok(f[1]))
		FUZZ_CHECK(strlen(f[1]) >= 2 && strlen(f[1]) <= 32);
	if (cert_platform_secrets_parse(f[6], &secrets, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(cert_platform_code_ok(secrets[i].code));
			FUZZ_CHECK(strlen(secrets[i].secret) >= 16);
		}
		secret = cert_platform_secret(secrets, n, f[1]);
		if (secret == NULL && n > 0)
			secret = secrets[0].secret;
		if (secret != NULL) {
			char *canonical = cert_interop_canonical("GET", f[4],
			    f[5][0] ? f[5] : NULL, f[0], f[2]);
			cert_interop_signature_ok(secret, canonical, f[3]);
			free(canonical);
		}
		cert_platform_secrets_free(secrets, n);
	}
	free(buf);
	return 0;
}
