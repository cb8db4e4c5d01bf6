/* interop — the downstream platforms' signed status requests
 * (proto/openapi.yaml, interopCertStatus): the canonical string, the
 * timestamp window, the HMAC check, the platform secrets from configuration
 * and the answer's reason. Pure functions: no clock, no I/O. */
#include "issuance.h"

#include "crypto.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int
cert_platform_code_ok(const char *code)
{
	size_t n = strlen(code);

	if (n < 2 || n > 32 || code[0] < 'A' || code[0] > 'Z')
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = code[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '_'))
			return 0;
	}
	return 1;
}

/* Writes "{A,B}" of a JSON array of platform codes into a new string, or
 * returns NULL when it is not one. */
char *
cert_platforms_literal(json_t *arr)
{
	char *out;
	json_t *v;
	size_t i;

	if (!json_is_array(arr))
		return NULL;
	out = xstrdup("{");
	json_array_foreach(arr, i, v)
	{
		const char *code = json_string_value(v);
		if (code == NULL || !cert_platform_code_ok(code)) {
			free(out);
			return NULL;
		}
		char *more = xasprintf("%s%s%s", out, i ? "," : "", code);
		free(out);
		out = more;
	}
	char *done = xasprintf("%s}", out);
	free(out);
	return done;
}

void
cert_platform_secrets_free(struct cert_platform_secret *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].code);
		if (s[i].secret != NULL) {
			crypto_wipe(s[i].secret, strlen(s[i].secret));
			free(s[i].secret);
		}
	}
	free(s);
}

int
cert_platform_secrets_parse(const char *spec, struct cert_platform_secret **out,
    size_t *n)
{
	struct cert_platform_secret *s = NULL;
	size_t count = 0;
	const char *p = spec;

	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char *code;

		if (eq == NULL || end - eq - 1 < 16)
			goto err;
		code = xstrndup(p, (size_t)(eq - p));
		if (!cert_platform_code_ok(code) ||
		    cert_platform_secret(s, count, code) != NULL) {
			free(code);
			goto err;
		}
		s = xrealloc(s, (count + 1) * sizeof(*s));
		s[count].code = code;
		s[count].secret = xstrndup(eq + 1, (size_t)(end - eq - 1));
		count++;
		p = comma ? comma + 1 : end;
	}
	*out = s;
	*n = count;
	return 0;
err:
	cert_platform_secrets_free(s, count);
	return -1;
}

const char *
cert_platform_secret(const struct cert_platform_secret *s, size_t n,
    const char *code)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].code, code) == 0)
			return s[i].secret;
	return NULL;
}

char *
cert_interop_canonical(const char *method, const char *path, const char *query,
    const char *timestamp, const char *nonce)
{
	return xasprintf("%s\n%s\n%s\n%s\n%s", method, path, query ? query : "",
	    timestamp, nonce);
}

int
cert_interop_nonce_ok(const char *nonce)
{
	size_t n = nonce ? strlen(nonce) : 0;

	return n >= 16 && n <= 64 &&
	        strspn(nonce,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789-_") == n
	    ? 1
	    : 0;
}

int
cert_interop_timestamp_ok(const char *ts, time_t now, long skew)
{
	size_t n = strlen(ts);
	long long v = 0, d;

	if (n == 0 || n > 12 || strspn(ts, "0123456789") != n)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (ts[i] - '0');
	d = v - (long long)now;
	return d <= skew && d >= -skew ? 0 : -1;
}

int
cert_interop_signature_ok(const char *secret, const char *canonical,
    const char *sig_hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[CRYPTO_SHA256_LEN];
	char want[2 * CRYPTO_SHA256_LEN + 1];

	if (strlen(sig_hex) != 2 * CRYPTO_SHA256_LEN)
		return -1;
	crypto_hmac_sha256(secret, strlen(secret), canonical, strlen(canonical),
	    mac);
	for (size_t i = 0; i < sizeof(mac); i++) {
		want[2 * i] = digits[mac[i] >> 4];
		want[2 * i + 1] = digits[mac[i] & 15];
	}
	want[sizeof(want) - 1] = '\0';
	return crypto_ct_equal(want, sig_hex, sizeof(want) - 1) ? 0 : -1;
}

const char *
cert_interop_reason(time_t not_before, time_t not_after, time_t now,
    int revoked, int superseded, int associated)
{
	if (revoked)
		return "CERT_REVOKED";
	if (superseded)
		return "CERT_SUPERSEDED";
	if (now >= not_after)
		return "CERT_EXPIRED";
	if (now < not_before)
		return "CERT_NOT_YET_VALID";
	if (!associated)
		return "PLATFORM_NOT_ASSOCIATED";
	return NULL;
}
