/* sms — the SMS provider interface every service sends texts through
 * (codes from auth, notices from auth's delivery worker, …). The provider
 * is chosen by its spec (CAPLAT_SMS_PROVIDER):
 *
 *   local:<dir>            the default: appends one line per message to
 *                          <dir>/<phone>.log (what the tests and `make run`
 *                          users read)
 *   aliyun:<https://host[:port]>
 *                          Alibaba Cloud SMS (dysmsapi SendSms, signed
 *                          RPC request; sms_alibaba.c) over common/httpc.h,
 *                          configured by CAPLAT_SMS_ACCESS_KEY_ID,
 *                          CAPLAT_SMS_ACCESS_KEY_SECRET (never logged),
 *                          CAPLAT_SMS_SIGN_NAME, CAPLAT_SMS_TEMPLATES
 *                          ("otp=SMS_1,notice=SMS_2,<kind>=SMS_3": our
 *                          template names → the provider's TemplateCode;
 *                          a notice kind without its own uses "notice"),
 *                          CAPLAT_SMS_TIMEOUT_MS (5000)
 */
#ifndef CAPLAT_SMS_H
#define CAPLAT_SMS_H

#include <stddef.h>

struct event_base;

/* Chooses the provider. Returns 0, or -1 on a bad spec or a missing
 * setting of the provider. Call at start, before threads. */
int sms_provider_init(const char *spec);
/* Gives a remote provider the loop it sends on (after svc_init). */
void sms_provider_start(struct event_base *base);
/* 1 when the provider is the local file provider. */
int sms_provider_is_local(void);

/* One message. Every string is borrowed for the call. */
struct sms_message {
	const char *phone;    /* 11 digits */
	const char *template; /* our template name: "otp", "notice" or a
	                         notice kind */
	const char *params;   /* the template's parameters, a JSON object of
	                         strings (the provider's TemplateParam) */
	const char *text;     /* the whole text (what the local provider
	                         writes) */
	const char *out_id;   /* idempotency key the provider keeps (OutId);
	                         NULL: none */
};

enum sms_outcome {
	SMS_SENT,      /* accepted by the provider */
	SMS_RETRY,     /* a transient failure: try again later */
	SMS_THROTTLED, /* the provider's rate limit: try again later */
	SMS_PERMANENT, /* a template, signature, key or number error: sending
	                  again will not help */
};

struct sms_status {
	enum sms_outcome outcome;
	const char *code;   /* the provider's code ("OK",
	                       "isv.SMS_TEMPLATE_ILLEGAL", "timeout", …) */
	const char *biz_id; /* the provider's id of the message, or NULL */
};

/* Called once with the result; the status is borrowed for the call. */
typedef void (*sms_done_fn)(void *arg, const struct sms_status *st);

/* Sends m; on the loop thread only. fn is called exactly once, possibly
 * before sms_deliver returns (the local provider). Never logs the text or
 * the parameters. */
void sms_deliver(const struct sms_message *m, sms_done_fn fn, void *arg);

/* (sms_alibaba.c) Classifies a provider answer code: SMS_SENT for "OK", SMS_THROTTLED for
 * the rate limits, SMS_PERMANENT for template, signature, key and number
 * errors, SMS_RETRY for everything else. */
enum sms_outcome sms_classify(const char *code);

/* Sends a plain text to phone, fire and forget, from any thread: the local
 * provider writes it at once; a remote one hands it to the loop and sends
 * it with the "notice" template ({"title":"","text":text}). Returns 0, or
 * -1 when the phone is malformed or the local write failed (logged). */
int sms_provider_send(const char *phone, const char *text);

/* ---- sms_alibaba.c: the Alibaba Cloud request ---- */

/* RFC 3986 percent-encoding as Alibaba's signature wants it (unreserved
 * characters A-Z a-z 0-9 - _ . ~ kept, everything else %XX upper-case).
 * Returns a new string; free(). */
char *sms_alibaba_encode(const char *s);
/* The signed form body of a SendSms call: the parameters (name, value, …,
 * NULL; Signature excluded) sorted, encoded and signed with HMAC-SHA1 over
 * "POST&%2F&" + encode(canonical query), key secret + "&". Returns a new
 * string "k=v&…&Signature=…"; free(). */
char *sms_alibaba_signed_body(const char *const *params, const char *secret);

#endif
