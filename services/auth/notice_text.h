/* notice_text — the Chinese texts of the notices (issue 17): the inbox
 * message's title and body, the SMS text the local provider writes, and the
 * provider template's parameters, rendered from a notice's kind and params
 * (proto/events/notice.requested.json). Pure code, no I/O. */
#ifndef CAPLAT_AUTH_NOTICE_TEXT_H
#define CAPLAT_AUTH_NOTICE_TEXT_H

#include <jansson.h>
#include <stddef.h>

#define NOTICE_TITLE_MAX 96
#define NOTICE_BODY_MAX 1536
#define NOTICE_SMS_MAX 2400

struct notice_text {
	char title[NOTICE_TITLE_MAX];
	char body[NOTICE_BODY_MAX];
	char sms[NOTICE_SMS_MAX]; /* the whole SMS: a machine tag, the
	                             signature and the text */
};

/* Renders kind from params (a JSON object, borrowed). Returns 0; -1 when
 * the kind is unknown or a required parameter is missing or of the wrong
 * type (*missing then names it, a static string). */
int notice_render(const char *kind, const char *notice_id, json_t *params,
    struct notice_text *out, const char **missing);

/* The provider template's parameters (Alibaba TemplateParam): every scalar
 * param as a string, plus "title" and "text". Returns a new object. */
json_t *notice_sms_params(json_t *params, const struct notice_text *t);

/* "123.45" for 12345 fen (negative amounts keep their sign). */
void notice_yuan(long long fen, char *out, size_t size);

/* An RFC 3339 time as users read it: in Asia/Shanghai, "2027-01-31" or
 * with_time "2027-01-31 08:00"; anything unparsable is shown as given. */
void notice_china_time(const char *in, int with_time, char *out, size_t size);

/* The wait before the next try after the attempt-th failed one (1, 2, …):
 * base doubling, at most cap, with jitter: a value in [d/2, d) chosen by
 * r (any random number). */
long notice_backoff_ms(int attempt, long base_ms, long cap_ms, unsigned r);

#endif
