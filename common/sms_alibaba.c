/* sms_alibaba — Alibaba Cloud SMS (dysmsapi 2017-05-25 SendSms) as an SMS
 * provider: an RPC-style POST whose parameters are signed with HMAC-SHA1
 * (SignatureVersion 1.0) over "POST&%2F&" + the percent-encoded, sorted
 * canonical query, with the AccessKey secret + "&" as the key; the answer is
 * JSON {Code, Message, BizId, RequestId}. OutId carries our idempotency key.
 * Sent over common/httpc.h on the loop; never logs the key, the text or the
 * parameters. */
#include "sms_int.h"

#include "crypto.h"
#include "httpc.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	struct httpc_url url;
	char *key_id, *secret, *sign_name, *region;
	json_t *templates; /* our name → TemplateCode */
	long timeout_ms;
	struct httpc *hc;
} ali;

static char *
env_dup(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		return dflt ? xstrdup(dflt) : NULL;
	return xstrdup(v);
}

int
sms_alibaba_init(const char *url)
{
	char *tpl, *save = NULL, *tok, *timeout;

	if (httpc_url_parse(url, &ali.url) != HTTPC_URL_OK) {
		log_error(NULL, "msg=sms_config_bad what=url");
		return -1;
	}
	ali.key_id = env_dup("CAPLAT_SMS_ACCESS_KEY_ID", NULL);
	ali.secret = env_dup("CAPLAT_SMS_ACCESS_KEY_SECRET", NULL);
	ali.sign_name = env_dup("CAPLAT_SMS_SIGN_NAME", NULL);
	ali.region = env_dup("CAPLAT_SMS_REGION", "cn-hangzhou");
	tpl = env_dup("CAPLAT_SMS_TEMPLATES", NULL);
	timeout = env_dup("CAPLAT_SMS_TIMEOUT_MS", "5000");
	ali.timeout_ms = atol(timeout);
	free(timeout);
	if (ali.key_id == NULL || ali.secret == NULL || ali.sign_name == NULL ||
	    tpl == NULL || ali.timeout_ms < 100 || ali.timeout_ms > 60000) {
		log_error(NULL,
		    "msg=sms_config_bad what=\"CAPLAT_SMS_ACCESS_KEY_ID, "
		    "CAPLAT_SMS_ACCESS_KEY_SECRET, CAPLAT_SMS_SIGN_NAME and "
		    "CAPLAT_SMS_TEMPLATES are needed; CAPLAT_SMS_TIMEOUT_MS "
		    "100..60000\"");
		free(tpl);
		return -1;
	}
	ali.templates = json_object();
	for (tok = strtok_r(tpl, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL || eq == tok || eq[1] == '\0') {
			log_error(NULL, "msg=sms_config_bad what=templates");
			free(tpl);
			return -1;
		}
		*eq = '\0';
		json_object_set_new(ali.templates, tok, json_string(eq + 1));
	}
	free(tpl);
	if (json_object_get(ali.templates, "otp") == NULL ||
	    json_object_get(ali.templates, "notice") == NULL) {
		log_error(NULL,
		    "msg=sms_config_bad what=\"templates need otp and notice\"");
		return -1;
	}
	return 0;
}

void
sms_alibaba_start(struct event_base *base)
{
	if (ali.hc == NULL)
		ali.hc = httpc_new(base);
}

char *
sms_alibaba_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

struct kv_pair {
	const char *k, *v;
};

static int
pair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv_pair *)a)->k,
	    ((const struct kv_pair *)b)->k);
}

/* Appends s to a growing buffer. */
static void
buf_add(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

char *
sms_alibaba_signed_body(const char *const *params, const char *secret)
{
	struct kv_pair pairs[32];
	size_t n = 0, len = 0, cap = 256, slen = 0, scap = 256;
	char *q = xmalloc(cap), *sts = xmalloc(scap), *enc, *key;
	unsigned char mac[20];

	q[0] = sts[0] = '\0';
	for (; params[2 * n] != NULL && n < ARRAY_LEN(pairs); n++)
		pairs[n] = (struct kv_pair){params[2 * n], params[2 * n + 1]};
	qsort(pairs, n, sizeof(pairs[0]), pair_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_add(&q, &len, &cap, "&");
		enc = sms_alibaba_encode(pairs[i].k);
		buf_add(&q, &len, &cap, enc);
		free(enc);
		buf_add(&q, &len, &cap, "=");
		enc = sms_alibaba_encode(pairs[i].v);
		buf_add(&q, &len, &cap, enc);
		free(enc);
	}
	buf_add(&sts, &slen, &scap, "POST&%2F&");
	enc = sms_alibaba_encode(q);
	buf_add(&sts, &slen, &scap, enc);
	free(enc);
	size_t klen = strlen(secret);
	key = xmalloc(klen + 2);
	memcpy(key, secret, klen);
	key[klen] = '&';
	key[klen + 1] = '\0';
	crypto_hmac_sha1(key, klen + 1, sts, slen, mac);
	crypto_wipe(key, klen + 1);
	free(key);
	free(sts);
	char *b64 = crypto_base64_encode(mac, sizeof(mac));
	enc = sms_alibaba_encode(b64);
	free(b64);
	buf_add(&q, &len, &cap, "&Signature=");
	buf_add(&q, &len, &cap, enc);
	free(enc);
	return q;
}

enum sms_outcome
sms_classify(const char *code)
{
	static const char *const permanent[] = {"isv.MOBILE_NUMBER_ILLEGAL",
	    "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL",
	    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.TEMPLATE_PARAMS_ILLEGAL",
	    "isv.INVALID_PARAMETERS", "isv.INVALID_JSON_PARAM",
	    "isv.PARAM_LENGTH_LIMIT", "isv.SMS_CONTENT_ILLEGAL",
	    "isv.SMS_SIGN_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT",
	    "isv.BLACK_KEY_CONTROL_LIMIT", "isv.ACCOUNT_NOT_EXISTS",
	    "isv.ACCOUNT_ABNORMAL", "isv.AMOUNT_NOT_ENOUGH",
	    "SignatureDoesNotMatch", "InvalidAccessKeyId",
	    "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
	    "isp.RAM_PERMISSION_DENY", "Forbidden.RAM",
	    "template_not_configured", NULL};

	if (code == NULL)
		return SMS_RETRY;
	if (strcmp(code, "OK") == 0)
		return SMS_SENT;
	if (strcmp(code, "isv.BUSINESS_LIMIT_CONTROL") == 0 ||
	    strcmp(code, "Throttling.User") == 0 ||
	    strcmp(code, "Throttling") == 0 ||
	    strcmp(code, "isv.DAY_LIMIT_CONTROL") == 0)
		return SMS_THROTTLED;
	for (size_t i = 0; permanent[i] != NULL; i++)
		if (strcmp(code, permanent[i]) == 0)
			return SMS_PERMANENT;
	return SMS_RETRY;
}

struct ali_call {
	sms_done_fn fn;
	void *arg;
};

static void
ali_on_answer(void *arg, const struct httpc_answer *a)
{
	struct ali_call *c = arg;
	struct sms_status st = {SMS_RETRY, NULL, NULL};
	json_t *j = NULL;
	char code[96];

	if (a->status == 0) {
		snprintf(code, sizeof(code), "%s",
		    a->error && strstr(a->error, "timeout") ? "timeout"
		                                            : "transport");
		st.code = code;
	} else {
		j = a->body ? json_loadb(a->body, a->body_len, 0, NULL) : NULL;
		const char *cv = json_string_value(json_object_get(j, "Code"));
		if (cv != NULL) {
			snprintf(code, sizeof(code), "%s", cv);
			st.code = code;
			st.outcome = sms_classify(code);
			st.biz_id =
			    json_string_value(json_object_get(j, "BizId"));
		} else {
			snprintf(code, sizeof(code), "http_%d", a->status);
			st.code = code;
		}
	}
	if (st.outcome != SMS_SENT)
		log_warn(NULL,
		    "msg=sms_provider_refused provider=aliyun code=%s",
		    st.code);
	c->fn(c->arg, &st);
	json_decref(j);
	free(c);
}

void
sms_alibaba_deliver(const struct sms_message *m, sms_done_fn fn, void *arg)
{
	const char *code =
	    json_string_value(json_object_get(ali.templates, m->template));
	char nonce[37], ts[32], path[HTTPC_PATH_MAX + 2];
	time_t now = time(NULL);
	struct tm tm;

	if (code == NULL && strcmp(m->template, "otp") != 0)
		code =
		    json_string_value(json_object_get(ali.templates, "notice"));
	if (code == NULL || ali.hc == NULL) {
		const struct sms_status st = {SMS_PERMANENT,
		    "template_not_configured", NULL};
		fn(arg, &st);
		return;
	}
	uuid_v4(nonce);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *params[] = {"AccessKeyId", ali.key_id, "Action", "SendSms",
	    "Format", "JSON", "PhoneNumbers", m->phone, "RegionId", ali.region,
	    "SignName", ali.sign_name, "SignatureMethod", "HMAC-SHA1",
	    "SignatureNonce", nonce, "SignatureVersion", "1.0", "TemplateCode",
	    code, "TemplateParam", m->params ? m->params : "{}", "Timestamp",
	    ts, "Version", "2017-05-25", m->out_id ? "OutId" : NULL, m->out_id,
	    NULL, NULL};
	char *body = sms_alibaba_signed_body(params, ali.secret);
	static const char *const headers[] = {"Content-Type",
	    "application/x-www-form-urlencoded", "Accept", "application/json",
	    NULL};
	struct ali_call *c = xcalloc(1, sizeof(*c));

	c->fn = fn;
	c->arg = arg;
	snprintf(path, sizeof(path), "%s/", ali.url.path);
	const struct httpc_call call = {&ali.url, "POST", path, headers, body,
	    strlen(body), ali.timeout_ms, 0, NULL};
	httpc_send(ali.hc, &call, ali_on_answer, c);
	free(body);
}
