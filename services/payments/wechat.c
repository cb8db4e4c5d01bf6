/* wechat — WeChat Pay API v3, pure (DOMAIN.md §4): the signed message of
 * notifications and answers, the Authorization header of our requests, the
 * AEAD_AES_256_GCM resource, and the platform certificates by serial. */
#include "domain.h"

#include "crypto.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WECHAT_MAX_SKEW 300
#define WECHAT_APIV3_KEY_LEN 32
#define WECHAT_NONCE_LEN 12

char *
wechat_message(const char *timestamp, const char *nonce, const char *body,
    size_t body_len)
{
	size_t tl = strlen(timestamp), nl = strlen(nonce);
	char *m = xmalloc(tl + nl + body_len + 4), *p = m;

	memcpy(p, timestamp, tl);
	p += tl;
	*p++ = '\n';
	memcpy(p, nonce, nl);
	p += nl;
	*p++ = '\n';
	memcpy(p, body, body_len);
	p += body_len;
	*p++ = '\n';
	*p = '\0';
	return m;
}

int
wechat_verify(const struct crypto_key *platform, const char *timestamp,
    const char *nonce, const char *body, size_t body_len,
    const char *signature_b64)
{
	unsigned char *sig;
	size_t sig_len;
	char *msg;
	int rc;

	if (crypto_key_type_of(platform) != CRYPTO_KEY_RSA ||
	    crypto_base64_decode(&sig, &sig_len, signature_b64,
	        strlen(signature_b64)) != 0)
		return -1;
	msg = wechat_message(timestamp, nonce, body, body_len);
	rc = crypto_verify_sig(platform, msg,
	    strlen(timestamp) + strlen(nonce) + body_len + 3, sig, sig_len);
	free(msg);
	free(sig);
	return rc;
}

int
wechat_timestamp_fresh(const char *timestamp, time_t now)
{
	long long ts = 0;
	size_t n = strlen(timestamp);

	if (n == 0 || n > 12)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (timestamp[i] < '0' || timestamp[i] > '9')
			return 0;
		ts = ts * 10 + (timestamp[i] - '0');
	}
	return llabs((long long)now - ts) < WECHAT_MAX_SKEW;
}

int
wechat_time_valid(const char *s)
{
	size_t i = 19;

	if (!pay_datetime_ok(s, 'T'))
		return 0;
	if (s[i] == '.') {
		size_t from = ++i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == from || i - from > 9)
			return 0;
	}
	if (s[i] == 'Z')
		return s[i + 1] == '\0';
	if ((s[i] != '+' && s[i] != '-') || strlen(s + i) != 6)
		return 0;
	return s[i + 1] >= '0' && s[i + 1] <= '9' && s[i + 2] >= '0' &&
	    s[i + 2] <= '9' && s[i + 3] == ':' && s[i + 4] >= '0' &&
	    s[i + 4] <= '5' && s[i + 5] >= '0' && s[i + 5] <= '9' &&
	    (s[i + 1] - '0') * 10 + (s[i + 2] - '0') <= 14;
}

int
wechat_decrypt_resource(json_t *resource, const char *apiv3_key, char **plain,
    size_t *plain_len)
{
	const char *alg =
	    json_string_value(json_object_get(resource, "algorithm"));
	const char *ct =
	    json_string_value(json_object_get(resource, "ciphertext"));
	const char *nonce =
	    json_string_value(json_object_get(resource, "nonce"));
	json_t *ad_json = json_object_get(resource, "associated_data");
	const char *ad = ad_json ? json_string_value(ad_json) : "";
	unsigned char *in, *out;
	size_t in_len, out_len;
	int rc;

	if (alg == NULL || strcmp(alg, "AEAD_AES_256_GCM") != 0 || ct == NULL ||
	    nonce == NULL || strlen(nonce) != WECHAT_NONCE_LEN || ad == NULL ||
	    strlen(apiv3_key) != WECHAT_APIV3_KEY_LEN)
		return -1;
	if (crypto_base64_decode(&in, &in_len, ct, strlen(ct)) != 0)
		return -1;
	rc = crypto_aes256gcm_decrypt(&out, &out_len,
	    (const unsigned char *)apiv3_key, nonce, WECHAT_NONCE_LEN, ad,
	    strlen(ad), in, in_len);
	free(in);
	if (rc != 0)
		return -1;
	if (memchr(out, '\0', out_len) != NULL) {
		free(out);
		return -1;
	}
	*plain = (char *)out;
	*plain_len = out_len;
	return 0;
}

char *
wechat_authorization(const struct crypto_key *merchant, const char *mchid,
    const char *serial_no, const char *method, const char *url,
    const char *timestamp, const char *nonce, const char *body)
{
	char *msg = xasprintf("%s\n%s\n%s\n%s\n%s\n", method, url, timestamp,
	    nonce, body);
	unsigned char *sig;
	size_t sig_len;
	char *b64, *header;

	if (crypto_sign(merchant, msg, strlen(msg), &sig, &sig_len) != 0) {
		free(msg);
		return NULL;
	}
	free(msg);
	b64 = crypto_base64_encode(sig, sig_len);
	free(sig);
	header =
	    xasprintf("WECHATPAY2-SHA256-RSA2048 mchid=\"%s\",nonce_str=\"%s\","
	              "timestamp=\"%s\",serial_no=\"%s\",signature=\"%s\"",
	        mchid, nonce, timestamp, serial_no, b64);
	free(b64);
	return header;
}

struct wechat_platform_certs {
	size_t n;
	struct crypto_cert **certs;
};

void
wechat_platform_certs_free(struct wechat_platform_certs *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		crypto_cert_free(c->certs[i]);
	free(c->certs);
	free(c);
}

int
wechat_platform_certs_load_pem(struct wechat_platform_certs **out,
    const char *pem)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	struct wechat_platform_certs *c = xcalloc(1, sizeof(*c));
	const char *p = pem;

	while ((p = strstr(p, begin)) != NULL) {
		const char *next = strstr(p + sizeof(begin) - 1, begin);
		size_t len = next ? (size_t)(next - p) : strlen(p);
		char *one = xstrndup(p, len);
		struct crypto_cert *cert;
		int rc = crypto_cert_parse(&cert, one, NULL);

		free(one);
		if (rc != 0 || cert->key_type != CRYPTO_KEY_RSA) {
			if (rc == 0)
				crypto_cert_free(cert);
			wechat_platform_certs_free(c);
			return -1;
		}
		c->certs = xrealloc(c->certs, (c->n + 1) * sizeof(*c->certs));
		c->certs[c->n++] = cert;
		p += len;
	}
	if (c->n == 0) {
		wechat_platform_certs_free(c);
		return -1;
	}
	*out = c;
	return (int)c->n;
}

const struct crypto_key *
wechat_platform_key(const struct wechat_platform_certs *c, const char *serial)
{
	if (c == NULL || serial == NULL)
		return NULL;
	/* Serials compare without leading zero bytes and case. */
	while (serial[0] == '0' && serial[1] == '0' && serial[2] != '\0')
		serial += 2;
	for (size_t i = 0; i < c->n; i++)
		if (strcasecmp(c->certs[i]->serial, serial) == 0)
			return c->certs[i]->key;
	return NULL;
}
