/* alipay — Alipay open platform, pure: form-encoded notifications and their
 * RSA2 verification (DOMAIN.md §3), signed requests, and the signed JSON
 * answers ("<method>_response" raw text + "sign"). */
#include "domain.h"

#include "crypto.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes len bytes of a form component; NULL on a bad escape or a NUL. */
static char *
form_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len) {
				free(out);
				return NULL;
			}
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '\0') {
			free(out);
			return NULL;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

void
alipay_form_clear(struct alipay_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->params[i].key);
		free(f->params[i].value);
	}
	free(f->params);
	f->params = NULL;
	f->n = 0;
}

const char *
alipay_form_get(const struct alipay_form *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->params[i].key, key) == 0)
			return f->params[i].value;
	return NULL;
}

int
alipay_form_parse(struct alipay_form *out, const char *body, size_t len)
{
	const char *p = body, *end = body + len;

	out->params = NULL;
	out->n = 0;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		char *k, *v;

		if (stop == p) { /* "a=1&&b=2": tolerate empty pairs */
			p = stop + 1;
			continue;
		}
		if (eq == NULL || eq == p)
			goto bad;
		k = form_decode(p, (size_t)(eq - p));
		v = form_decode(eq + 1, (size_t)(stop - eq - 1));
		if (k == NULL || v == NULL || *k == '\0' ||
		    alipay_form_get(out, k) != NULL) {
			free(k);
			free(v);
			goto bad;
		}
		out->params =
		    xrealloc(out->params, (out->n + 1) * sizeof(*out->params));
		out->params[out->n].key = k;
		out->params[out->n].value = v;
		out->n++;
		p = amp ? amp + 1 : end;
	}
	return 0;
bad:
	alipay_form_clear(out);
	return -1;
}

static int
param_cmp(const void *a, const void *b)
{
	const struct alipay_param *x = *(struct alipay_param *const *)a;
	const struct alipay_param *y = *(struct alipay_param *const *)b;

	return strcmp(x->key, y->key);
}

/* Sorted "k=v&…" over params, leaving out "sign" (and "sign_type" when
 * drop_sign_type). */
static char *
sign_content(const struct alipay_param *params, size_t n, int drop_sign_type)
{
	const struct alipay_param **sorted =
	    xcalloc(n ? n : 1, sizeof(*sorted));
	size_t m = 0, size = 1, used = 0;
	char *out;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(params[i].key, "sign") == 0 ||
		    (drop_sign_type && strcmp(params[i].key, "sign_type") == 0))
			continue;
		sorted[m++] = &params[i];
		size += strlen(params[i].key) + strlen(params[i].value) + 2;
	}
	qsort(sorted, m, sizeof(*sorted), param_cmp);
	out = xmalloc(size);
	out[0] = '\0';
	for (size_t i = 0; i < m; i++) {
		size_t kl = strlen(sorted[i]->key),
		       vl = strlen(sorted[i]->value);
		if (i > 0)
			out[used++] = '&';
		memcpy(out + used, sorted[i]->key, kl);
		used += kl;
		out[used++] = '=';
		memcpy(out + used, sorted[i]->value, vl);
		used += vl;
	}
	out[used] = '\0';
	free(sorted);
	return out;
}

char *
alipay_sign_content(const struct alipay_form *f)
{
	return sign_content(f->params, f->n, 1);
}

enum alipay_verify_result
alipay_verify(const struct alipay_form *f,
    const struct crypto_key *alipay_public)
{
	const char *sign = alipay_form_get(f, "sign");
	const char *sign_type = alipay_form_get(f, "sign_type");
	unsigned char *sig;
	size_t sig_len;
	char *content;
	int rc;

	if (sign_type == NULL || strcmp(sign_type, "RSA2") != 0)
		return ALIPAY_VERIFY_BAD_SIGN_TYPE;
	if (sign == NULL ||
	    crypto_base64_decode(&sig, &sig_len, sign, strlen(sign)) != 0)
		return ALIPAY_VERIFY_NO_SIGN;
	content = alipay_sign_content(f);
	rc = crypto_key_type_of(alipay_public) == CRYPTO_KEY_RSA
	    ? crypto_verify_sig(alipay_public, content, strlen(content), sig,
	          sig_len)
	    : -1;
	free(content);
	free(sig);
	return rc == 0 ? ALIPAY_VERIFY_OK : ALIPAY_VERIFY_BAD_SIGNATURE;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept) to the buffer. */
static void
form_append(char **buf, size_t *used, size_t *cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = strlen(s) * 3 + 2;

	if (*used + need >= *cap) {
		*cap = (*used + need) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.' || *p == '~') {
			(*buf)[(*used)++] = (char)*p;
		} else {
			(*buf)[(*used)++] = '%';
			(*buf)[(*used)++] = hex[*p >> 4];
			(*buf)[(*used)++] = hex[*p & 15];
		}
	}
	(*buf)[*used] = '\0';
}

static void
raw_append(char **buf, size_t *used, size_t *cap, char c)
{
	if (*used + 2 >= *cap) {
		*cap = (*used + 2) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	(*buf)[(*used)++] = c;
	(*buf)[*used] = '\0';
}

char *
alipay_request_body(const struct crypto_key *merchant, const char *const *kv)
{
	struct alipay_param *params;
	size_t n = 0, used = 0, cap = 256, sig_len;
	unsigned char *sig;
	char *content, *sign_b64, *body;

	while (kv[2 * n] != NULL)
		n++;
	params = xcalloc(n + 1, sizeof(*params));
	for (size_t i = 0; i < n; i++) {
		params[i].key = (char *)(uintptr_t)kv[2 * i];
		params[i].value = (char *)(uintptr_t)kv[2 * i + 1];
	}
	/* Requests sign every parameter but "sign", sign_type included. */
	content = sign_content(params, n, 0);
	if (crypto_sign(merchant, content, strlen(content), &sig, &sig_len) !=
	    0) {
		free(content);
		free(params);
		return NULL;
	}
	free(content);
	sign_b64 = crypto_base64_encode(sig, sig_len);
	free(sig);
	body = xmalloc(cap);
	body[0] = '\0';
	for (size_t i = 0; i <= n; i++) {
		const char *k = i < n ? params[i].key : "sign";
		const char *v = i < n ? params[i].value : sign_b64;
		if (i > 0)
			raw_append(&body, &used, &cap, '&');
		form_append(&body, &used, &cap, k);
		raw_append(&body, &used, &cap, '=');
		form_append(&body, &used, &cap, v);
	}
	free(sign_b64);
	free(params);
	return body;
}

/* Skips one JSON string starting at p (on the '"'); returns the byte after
 * its closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Skips one JSON object starting at p (on the '{'); returns the byte after
 * its closing brace, or NULL. */
static const char *
skip_object(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '"') {
			p = skip_string(p, end);
			if (p == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

int
alipay_response_split(const char *body, size_t len, const char *method,
    const char **content, size_t *content_len, json_t **root, const char **sign)
{
	char key[128];
	const char *p, *end = body + len, *stop;
	size_t kl;

	if (snprintf(key, sizeof(key), "\"%s_response\"", method) >=
	    (int)sizeof(key))
		return -1;
	for (char *c = key; *c; c++)
		if (*c == '.')
			*c = '_';
	kl = strlen(key);
	/* Find the key at the top level of the answer object. */
	p = body;
	while (p < end && *p != '{')
		p++;
	if (p == end)
		return -1;
	p++;
	for (;;) {
		while (p < end &&
		    (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' ||
		        *p == ','))
			p++;
		if (p >= end || *p != '"')
			return -1;
		int match = (size_t)(end - p) >= kl && memcmp(p, key, kl) == 0;
		p = skip_string(p, end);
		while (p != NULL && p < end &&
		    (*p == ' ' || *p == ':' || *p == '\t'))
			p++;
		if (p == NULL || p >= end)
			return -1;
		if (*p == '{')
			stop = skip_object(p, end);
		else if (*p == '"')
			stop = skip_string(p, end);
		else {
			stop = p;
			while (stop < end && *stop != ',' && *stop != '}')
				stop++;
		}
		if (stop == NULL)
			return -1;
		if (match && *p == '{') {
			*content = p;
			*content_len = (size_t)(stop - p);
			break;
		}
		p = stop;
	}
	*root = json_loadb(body, len, 0, NULL);
	if (*root == NULL)
		return -1;
	*sign = json_string_value(json_object_get(*root, "sign"));
	if (*sign == NULL) {
		json_decref(*root);
		*root = NULL;
		return -1;
	}
	return 0;
}

int
alipay_response_verify(const struct crypto_key *alipay_public,
    const char *content, size_t content_len, const char *sign_b64)
{
	unsigned char *sig;
	size_t sig_len;
	int rc;

	if (crypto_base64_decode(&sig, &sig_len, sign_b64, strlen(sign_b64)) !=
	    0)
		return -1;
	rc = crypto_verify_sig(alipay_public, content, content_len, sig,
	    sig_len);
	free(sig);
	return rc;
}

int
pay_datetime_ok(const char *s, char sep)
{
	static const char form[] = "dddd-dd-dd?dd:dd:dd";
	int mon, day, hour, min, sec;

	if (s == NULL || strlen(s) < sizeof(form) - 1)
		return 0;
	for (size_t i = 0; i < sizeof(form) - 1; i++) {
		if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9')
		                   : s[i] != (form[i] == '?' ? sep : form[i]))
			return 0;
	}
	mon = (s[5] - '0') * 10 + (s[6] - '0');
	day = (s[8] - '0') * 10 + (s[9] - '0');
	hour = (s[11] - '0') * 10 + (s[12] - '0');
	min = (s[14] - '0') * 10 + (s[15] - '0');
	sec = (s[17] - '0') * 10 + (s[18] - '0');
	return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour <= 23 &&
	    min <= 59 && sec <= 59;
}

char *
alipay_time_timestamptz(const char *s)
{
	if (s == NULL || strlen(s) != 19 || !pay_datetime_ok(s, ' '))
		return NULL;
	return xasprintf("%s+08", s);
}
