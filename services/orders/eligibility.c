/* eligibility — the order request and the renewal rules: personal info
 * complete, enterprise approved, the caller's right to the certificate, the
 * renewal window, no other open order. See eligibility.h. */
#include "eligibility.h"

#include "pricing.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
order_error_set(struct order_error *err, int status, const char *code,
    const char *field, const char *message)
{
	err->status = status;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	err->message = message;
}

void
order_request_clear(struct order_request *rq)
{
	for (size_t i = 0; i < rq->nitems; i++) {
		free(rq->items[i].platforms);
		free(rq->items[i].current);
	}
	free(rq->items);
	memset(rq, 0, sizeof(*rq));
}

/* Copies a UUID in lower case; returns -1 when s is not one. */
static int
uuid_lower(const char *s, char out[37])
{
	if (!uuid_valid(s))
		return -1;
	for (int i = 0; i < 36; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[36] = '\0';
	return 0;
}

/* Reads items[i].platforms into it. */
static int
parse_platforms(struct order_item_req *it, json_t *item, size_t i,
    struct order_error *err)
{
	json_t *list = json_object_get(item, "platforms"), *v;
	char field[64];
	size_t k;

	snprintf(field, sizeof(field), "items[%zu].platforms", i);
	if (list == NULL || json_is_null(list) ||
	    (json_is_array(list) && json_array_size(list) == 0)) {
		order_error_set(err, 422, "ITEMS_EMPTY", field,
		    "请至少为每张证书选择一个应用平台");
		return -1;
	}
	if (!json_is_array(list)) {
		order_error_set(err, 400, "FIELD_TYPE", field,
		    "应用平台须为列表");
		return -1;
	}
	if (json_array_size(list) > ORDER_MAX_PLATFORMS) {
		order_error_set(err, 422, "FIELD_INVALID", field,
		    "选择的应用平台过多");
		return -1;
	}
	it->platforms = xcalloc(json_array_size(list), sizeof(*it->platforms));
	for (k = 0; k < json_array_size(list); k++) {
		v = json_array_get(list, k);
		const char *code = json_string_value(v);

		snprintf(field, sizeof(field), "items[%zu].platforms[%zu]", i,
		    k);
		if (code == NULL) {
			order_error_set(err, 400, "FIELD_TYPE", field,
			    "应用平台代码须为字符串");
			return -1;
		}
		if (!order_platform_code_valid(code)) {
			order_error_set(err, 422, "PLATFORM_UNKNOWN", field,
			    "未知的应用平台");
			return -1;
		}
		for (size_t j = 0; j < it->nplatforms; j++) {
			if (strcmp(it->platforms[j], code) == 0) {
				order_error_set(err, 422, "FIELD_INVALID",
				    field, "同一应用平台不能重复选择");
				return -1;
			}
		}
		it->platforms[it->nplatforms++] = code;
	}
	return 0;
}

/* Reads the optional items[i].current_platforms (may be empty). */
static int
parse_current(struct order_item_req *it, json_t *item, size_t i,
    struct order_error *err)
{
	json_t *list = json_object_get(item, "current_platforms");
	char field[64];

	snprintf(field, sizeof(field), "items[%d].current_platforms", (int)i);
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) ||
	    json_array_size(list) > ORDER_MAX_PLATFORMS) {
		order_error_set(err, 400, "FIELD_TYPE", field,
		    "当前关联平台须为列表");
		return -1;
	}
	it->current = xcalloc(json_array_size(list) + 1, sizeof(*it->current));
	for (size_t k = 0; k < json_array_size(list); k++) {
		const char *code = json_string_value(json_array_get(list, k));

		if (code == NULL || !order_platform_code_valid(code)) {
			snprintf(field, sizeof(field),
			    "items[%d].current_platforms[%d]", (int)i, (int)k);
			order_error_set(err, 422, "PLATFORM_UNKNOWN", field,
			    "未知的应用平台");
			return -1;
		}
		it->current[it->ncurrent++] = code;
	}
	return 0;
}

static int
parse_item(struct order_request *rq, json_t *item, size_t i,
    struct order_error *err)
{
	struct order_item_req *it = &rq->items[rq->nitems];
	json_t *id;
	char field[64];

	snprintf(field, sizeof(field), "items[%zu]", i);
	if (!json_is_object(item)) {
		order_error_set(err, 400, "FIELD_TYPE", field,
		    "订单项须为对象");
		return -1;
	}
	snprintf(field, sizeof(field), "items[%zu].cert_id", i);
	id = json_object_get(item, "cert_id");
	if (id == NULL || json_is_null(id) ||
	    (json_is_string(id) && json_string_length(id) == 0)) {
		order_error_set(err, 422, "FIELD_REQUIRED", field,
		    "请选择证书");
		return -1;
	}
	if (!json_is_string(id)) {
		order_error_set(err, 400, "FIELD_TYPE", field,
		    "证书编号须为字符串");
		return -1;
	}
	if (uuid_lower(json_string_value(id), it->cert_id) != 0) {
		order_error_set(err, 422, "FIELD_INVALID", field,
		    "证书编号格式不正确");
		return -1;
	}
	for (size_t j = 0; j < rq->nitems; j++) {
		if (strcmp(rq->items[j].cert_id, it->cert_id) == 0) {
			order_error_set(err, 422, "FIELD_INVALID", field,
			    "同一张证书不能在一个订单中出现两次");
			return -1;
		}
	}
	rq->nitems++; /* counted now so that clear frees its platforms */
	if (parse_platforms(it, item, i, err) != 0)
		return -1;
	return parse_current(it, item, i, err);
}

int
order_request_parse(struct order_request *out, json_t *body,
    struct order_error *err)
{
	struct order_request rq = {0};
	json_t *items = json_object_get(body, "items"), *item, *quote;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (items == NULL || json_is_null(items) ||
	    (json_is_array(items) && json_array_size(items) == 0)) {
		order_error_set(err, 422, "ITEMS_EMPTY", "items",
		    "请至少选择一张需要延期的证书");
		return -1;
	}
	if (!json_is_array(items)) {
		order_error_set(err, 400, "FIELD_TYPE", "items",
		    "订单项须为列表");
		return -1;
	}
	if (json_array_size(items) > ORDER_MAX_ITEMS) {
		order_error_set(err, 422, "FIELD_INVALID", "items",
		    "一个订单最多包含 200 张证书");
		return -1;
	}
	quote = json_object_get(body, "quote_id");
	if (quote != NULL && !json_is_null(quote)) {
		if (!json_is_string(quote)) {
			order_error_set(err, 400, "FIELD_TYPE", "quote_id",
			    "报价编号须为字符串");
			return -1;
		}
		if (uuid_lower(json_string_value(quote), rq.quote_id) != 0) {
			order_error_set(err, 422, "FIELD_INVALID", "quote_id",
			    "报价编号格式不正确");
			return -1;
		}
	}
	rq.items = xcalloc(json_array_size(items), sizeof(*rq.items));
	for (i = 0; i < json_array_size(items); i++) {
		item = json_array_get(items, i);
		if (parse_item(&rq, item, i, err) != 0) {
			order_request_clear(&rq);
			return -1;
		}
	}
	*out = rq;
	return 0;
}

char *
order_request_canonical(const struct order_request *rq)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < rq->nitems; i++) {
		len += 36 + 2;
		for (size_t k = 0; k < rq->items[i].nplatforms; k++)
			len += strlen(rq->items[i].platforms[k]) + 1;
	}
	p = s = xmalloc(len);
	for (size_t i = 0; i < rq->nitems; i++) {
		const struct order_item_req *it = &rq->items[i];

		p += sprintf(p, "%s:", it->cert_id);
		for (size_t k = 0; k < it->nplatforms; k++)
			p += sprintf(p, "%s%s", k ? "," : "", it->platforms[k]);
		*p++ = ';';
	}
	*p = '\0';
	return s;
}

enum order_refusal
order_caller_check(const struct order_caller *caller)
{
	if (!caller->profile_complete)
		return ORDER_PROFILE_INCOMPLETE;
	if (caller->uscc != NULL && !caller->enterprise_approved)
		return ORDER_ENTERPRISE_NOT_APPROVED;
	return ORDER_ELIGIBLE;
}

static int
same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

enum order_refusal
order_cert_check(const struct order_caller *caller,
    const struct order_cert_facts *cert, const struct renewal_window *w,
    int64_t now)
{
	enum renewal_window_state window;
	int own;

	if (!cert->found)
		return ORDER_CERT_NOT_FOUND;
	own = same(cert->account_id, caller->account_id);
	if (!own) {
		/* Another enterprise's or another person's certificate does not
		 * exist for the caller; one of the caller's own enterprise is
		 * the administrator's to order. */
		if (cert->uscc == NULL || !same(cert->uscc, caller->uscc))
			return ORDER_CERT_NOT_FOUND;
		if (!caller->admin)
			return ORDER_NOT_ENTERPRISE_ADMIN;
	}
	if (cert->uscc != NULL && !cert->enterprise_approved)
		return ORDER_ENTERPRISE_NOT_APPROVED;
	if (cert->revoked)
		return ORDER_CERT_REVOKED;
	window = renewal_window_at(w, cert->not_after, now);
	if (window == RENEWAL_WINDOW_NOT_YET)
		return ORDER_TOO_EARLY;
	if (window == RENEWAL_WINDOW_TOO_LATE)
		return ORDER_TOO_LATE;
	if (cert->in_open_order)
		return ORDER_IN_OPEN_ORDER;
	return ORDER_ELIGIBLE;
}

void
order_refusal_error(enum order_refusal r, const char *field,
    struct order_error *err)
{
	switch (r) {
	case ORDER_PROFILE_INCOMPLETE:
		order_error_set(err, 403, "PROFILE_INCOMPLETE", NULL,
		    "请先完善个人信息");
		return;
	case ORDER_ENTERPRISE_NOT_APPROVED:
		order_error_set(err, 403, "ENTERPRISE_NOT_APPROVED", field,
		    "企业信息尚未审核通过");
		return;
	case ORDER_CERT_NOT_FOUND:
		order_error_set(err, 404, "CERT_NOT_FOUND", field,
		    "证书不存在");
		return;
	case ORDER_NOT_ENTERPRISE_ADMIN:
		order_error_set(err, 403, "NOT_ENTERPRISE_ADMIN", field,
		    "只有企业管理员可以为本企业其他人员的证书办理延期");
		return;
	case ORDER_CERT_REVOKED:
		order_error_set(err, 409, "CERT_REVOKED", field,
		    "证书已吊销，不能延期");
		return;
	case ORDER_TOO_EARLY:
		order_error_set(err, 409, "NOT_IN_RENEWAL_WINDOW", field,
		    "未到年检时间");
		return;
	case ORDER_TOO_LATE:
		order_error_set(err, 409, "NOT_IN_RENEWAL_WINDOW", field,
		    "证书过期时间过长，不能延期，请重新申请");
		return;
	case ORDER_IN_OPEN_ORDER:
		order_error_set(err, 409, "CERT_IN_OPEN_ORDER", field,
		    "该证书已在其他未完成的订单中");
		return;
	case ORDER_ELIGIBLE:
		break;
	}
	order_error_set(err, 500, "INTERNAL", NULL, "服务器内部错误");
}

/* ---- times and numbers -------------------------------------------------- */

void
order_time_format(int64_t epoch, char out[32])
{
	time_t t = (time_t)epoch;
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

/* Reads exactly n digits at s into *v. */
static int
digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int
order_time_parse(const char *s, int64_t *out)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	struct tm tm = {0};
	const char *p;

	if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' ||
	    digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	p = s + 19;
	if (*p == '.') {
		int n = 0;
		while (p[1] >= '0' && p[1] <= '9' && n < 9) {
			p++;
			n++;
		}
		if (n == 0)
			return -1;
		p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' ||
		    digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 &&
	        !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) - sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

void
order_number_format(int64_t epoch, long long seq, char out[40])
{
	time_t t = (time_t)(epoch + 8 * 3600); /* China Standard Time, no DST */
	struct tm tm;
	char day[16];

	gmtime_r(&t, &tm);
	if (strftime(day, sizeof(day), "%Y%m%d", &tm) == 0)
		day[0] = '\0';
	snprintf(out, 40, "PL%.8s%08lld", day, seq);
}
