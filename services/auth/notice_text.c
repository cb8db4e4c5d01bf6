/* notice_text — one renderer per notice kind, from a table; each reads its
 * params, writes a title and a body. Values that come from users (names,
 * opinions) are cleaned of control characters and cut to a bounded length
 * so a text never grows past one SMS page set. */
#include "notice_text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SIGNATURE "【CA互联互通】"
#define VALUE_MAX 200

struct render_ctx {
	json_t *params;
	const char *missing;
};

/* A string param, cleaned into buf; NULL (and missing set) when required
 * and absent. An integer param is printed. */
static const char *
p_str(struct render_ctx *c, const char *key, int required, char *buf,
    size_t size)
{
	json_t *v = json_object_get(c->params, key);
	size_t n = 0;

	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (!json_is_string(v) || json_string_length(v) == 0) {
		if (required && c->missing == NULL)
			c->missing = key;
		snprintf(buf, size, "%s", "");
		return required ? NULL : buf;
	}
	const unsigned char *s = (const unsigned char *)json_string_value(v);
	for (; *s != '\0' && n + 1 < size && n < VALUE_MAX; s++)
		if (*s >= 0x20 && *s != 0x7f)
			buf[n++] = (char)*s;
	if (*s != '\0') { /* cut: never inside a UTF-8 sequence */
		size_t start = n;
		while (
		    start > 0 && ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
			start--;
		if (start > 0) {
			unsigned char lead = (unsigned char)buf[start - 1];
			size_t want = lead >= 0xf0 ? 4
			    : lead >= 0xe0         ? 3
			    : lead >= 0xc0         ? 2
			                           : 1;
			if (n - (start - 1) < want)
				n = start - 1;
		}
	}
	buf[n] = '\0';
	return buf;
}

void
notice_china_time(const char *in, int with_time, char *out, size_t size)
{
	struct tm tm;
	const char *rest;
	long off = 0;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(in, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL) {
		/* a date alone, or something else: shown as given */
		snprintf(out, size, "%.*s", with_time ? 16 : 10, in);
		return;
	}
	while (*rest == '.' || (*rest >= '0' && *rest <= '9'))
		rest++;
	if ((rest[0] == '+' || rest[0] == '-') && strlen(rest) >= 6)
		off = (rest[0] == '-' ? -1 : 1) *
		    ((rest[1] - '0') * 36000L + (rest[2] - '0') * 3600L +
		        (rest[4] - '0') * 600L + (rest[5] - '0') * 60L);
	time_t t = timegm(&tm) - off + 8 * 3600; /* Asia/Shanghai */
	gmtime_r(&t, &tm);
	strftime(out, size, with_time ? "%Y-%m-%d %H:%M" : "%Y-%m-%d", &tm);
}

/* A time param shown in China time (a date, or with_time a minute). */
static const char *
p_time(struct render_ctx *c, const char *key, int required, int with_time,
    char *buf, size_t size)
{
	char raw[64];

	if (p_str(c, key, required, raw, sizeof(raw)) == NULL ||
	    raw[0] == '\0') {
		snprintf(buf, size, "%s", "");
		return required ? NULL : buf;
	}
	notice_china_time(raw, with_time, buf, size);
	return buf;
}

static long long
p_int(struct render_ctx *c, const char *key, int required, long long dflt)
{
	json_t *v = json_object_get(c->params, key);

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (required && c->missing == NULL)
		c->missing = key;
	return dflt;
}

static int
p_approved(struct render_ctx *c)
{
	json_t *v = json_object_get(c->params, "result");

	if (!json_is_string(v)) {
		if (c->missing == NULL)
			c->missing = "result";
		return 0;
	}
	return strcmp(json_string_value(v), "approved") == 0;
}

void
notice_yuan(long long fen, char *out, size_t size)
{
	unsigned long long a =
	    fen < 0 ? (unsigned long long)-fen : (unsigned long long)fen;

	snprintf(out, size, "%s%llu.%02llu", fen < 0 ? "-" : "", a / 100,
	    a % 100);
}

typedef void (*render_fn)(struct render_ctx *c, struct notice_text *t,
    char *tag, size_t tag_size);

static void
r_cert_expiring(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char holder[256], serial[256], not_after[64];
	long long days = p_int(c, "days_left", 1, 0);

	p_str(c, "holder_name", 0, holder, sizeof(holder));
	p_str(c, "serial", 1, serial, sizeof(serial));
	p_time(c, "not_after", 1, 0, not_after, sizeof(not_after));
	if (days > 0) {
		snprintf(t->title, sizeof(t->title), "数字证书即将到期");
		snprintf(t->body, sizeof(t->body),
		    "%s%s的数字证书（序列号 %s）将于 %s 到期，还剩 %lld "
		    "天。请及时办理证书延期，到期后将无法登录各交易平台。",
		    holder[0] ? holder : "您", "", serial, not_after, days);
	} else if (days == 0) {
		snprintf(t->title, sizeof(t->title), "数字证书今天到期");
		snprintf(t->body, sizeof(t->body),
		    "%s%s的数字证书（序列号 %s）今天（%s）到期。请尽快办理证书延期。",
		    holder[0] ? holder : "您", "", serial, not_after);
	} else {
		snprintf(t->title, sizeof(t->title), "数字证书已过期");
		snprintf(t->body, sizeof(t->body),
		    "%s%s的数字证书（序列号 %s）已于 %s 过期 %lld "
		    "天，无法再登录各交易平台。请尽快办理证书延期。",
		    holder[0] ? holder : "您", "", serial, not_after, -days);
	}
	snprintf(tag, ts, "purpose=notice kind=cert.expiring serial=%s",
	    serial);
}

static void
r_expiry_digest(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	json_t *certs = json_object_get(c->params, "certificates");
	char quote[64], yuan[32], list[900], until[64];
	size_t len = 0, n;

	if (!json_is_array(certs)) /* the name of the first drafts */
		certs = json_object_get(c->params, "certs");
	if (!json_is_array(certs) && c->missing == NULL)
		c->missing = "certificates";
	n = json_array_size(certs);
	p_str(c, "quote_id", 0, quote, sizeof(quote));
	p_time(c, "valid_until", 0, 0, until, sizeof(until));
	notice_yuan(p_int(c, "total_fen", 0, 0), yuan, sizeof(yuan));
	list[0] = '\0';
	for (size_t i = 0; i < n && i < 5; i++) {
		json_t *e = json_array_get(certs, i);
		struct render_ctx ec = {e, NULL};
		char holder[128], na[64];
		p_str(&ec, "holder_name", 0, holder, sizeof(holder));
		p_time(&ec, "not_after", 0, 0, na, sizeof(na));
		int w = snprintf(list + len, sizeof(list) - len, "%s%s（%s）",
		    i ? "、" : "", holder[0] ? holder : "证书", na);
		if (w < 0 || (size_t)w >= sizeof(list) - len)
			break;
		len += (size_t)w;
	}
	snprintf(t->title, sizeof(t->title), "单位证书到期提醒");
	if (quote[0])
		snprintf(t->body, sizeof(t->body),
		    "贵单位有 %zu 张数字证书即将到期或已过期：%s%s。已为您生成续期报价（报价号 "
		    "%s，合计 %s 元%s%s），登录平台即可按此报价一次办理延期。",
		    n, list, n > 5 ? " 等" : "", quote, yuan,
		    until[0] ? "，有效期至 " : "", until);
	else
		snprintf(t->body, sizeof(t->body),
		    "贵单位有 %zu 张数字证书即将到期或已过期：%s%s。请登录平台办理延期。",
		    n, list, n > 5 ? " 等" : "");
	snprintf(tag, ts, "purpose=notice kind=cert.expiry_digest quote=%s",
	    quote);
}

static void
r_renewal(struct render_ctx *c, struct notice_text *t, char *tag, size_t ts,
    int reminder)
{
	char holder[256], serial[256], cert[300], order[128];
	long long days =
	    p_int(c, "days_since_paid", 0, p_int(c, "days_since", 0, 0));

	/* the serial is shown when the producer knows it (it may not yet) */
	p_str(c, "order_number", 0, order, sizeof(order));
	p_str(c, "holder_name", 0, holder, sizeof(holder));
	p_str(c, "serial", 0, serial, sizeof(serial));
	snprintf(cert, sizeof(cert), "%s%s%s", serial[0] ? "（序列号 " : "",
	    serial, serial[0] ? "）" : "");
	snprintf(t->title, sizeof(t->title),
	    reminder ? "证书延期尚未更新" : "请更新数字证书");
	if (reminder && days > 0)
		snprintf(t->body, sizeof(t->body),
		    "%s%s的数字证书%s已付款延期 %lld 天，仍未更新到 USB "
		    "Key。请插入 USB Key 登录平台，在“CA管理”中点击“更新数字证书”。",
		    holder[0] ? holder : "您", "", cert, days);
	else
		snprintf(t->body, sizeof(t->body),
		    "%s%s的数字证书%s已付款延期%s%s%s，请插入 USB Key "
		    "登录平台，在“CA管理”中点击“更新数字证书”完成更新。",
		    holder[0] ? holder : "您", "", cert,
		    order[0] ? "（订单 " : "", order, order[0] ? "）" : "");
	snprintf(tag, ts, "purpose=notice kind=%s serial=%s",
	    reminder ? "renewal.unused" : "renewal.ready", serial);
}

static void
r_renewal_ready(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	r_renewal(c, t, tag, ts, 0);
}

static void
r_renewal_unused(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	r_renewal(c, t, tag, ts, 1);
}

static void
r_order_expiring(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char order[128], expires[64], yuan[32];

	p_str(c, "order_number", 1, order, sizeof(order));
	p_time(c, "expires_at", 0, 1, expires, sizeof(expires));
	notice_yuan(p_int(c, "total_fen", 0, 0), yuan, sizeof(yuan));
	snprintf(t->title, sizeof(t->title), "订单即将失效");
	snprintf(t->body, sizeof(t->body),
	    "您的订单 %s（金额 %s 元）尚未支付，将于 %s 失效。请及时支付，失效后需重新下单。",
	    order, yuan, expires[0] ? expires : "近期");
	snprintf(tag, ts, "purpose=notice kind=order.expiring order=%s", order);
}

static void
r_payment_succeeded(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char order[128], yuan[32];

	p_str(c, "order_number", 0, order, sizeof(order));
	if (order[0] == '\0')
		p_str(c, "order_id", 1, order, sizeof(order));
	notice_yuan(p_int(c, "amount_fen", 1, 0), yuan, sizeof(yuan));
	snprintf(t->title, sizeof(t->title), "支付成功");
	snprintf(t->body, sizeof(t->body),
	    "您的订单 %s 已支付成功，金额 %s 元。证书延期可在“CA管理”中更新到 USB Key。",
	    order, yuan);
	snprintf(tag, ts, "purpose=notice kind=payment.succeeded order=%s",
	    order);
}

static void
r_invoice_issued(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char number[128], yuan[32];

	p_str(c, "invoice_number", 1, number, sizeof(number));
	notice_yuan(p_int(c, "amount_fen", 1, 0), yuan, sizeof(yuan));
	snprintf(t->title, sizeof(t->title), "发票已开具");
	snprintf(t->body, sizeof(t->body),
	    "您的发票已开具，发票号码 %s，金额 %s 元。可登录平台在订单中下载。",
	    number, yuan);
	snprintf(tag, ts, "purpose=notice kind=invoice.issued invoice=%s",
	    number);
}

static void
r_invoice_posted(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char number[128], company[128], tracking[128];

	p_str(c, "invoice_number", 1, number, sizeof(number));
	p_str(c, "express_company", 0, company, sizeof(company));
	p_str(c, "tracking_number", 1, tracking, sizeof(tracking));
	snprintf(t->title, sizeof(t->title), "纸质发票已寄出");
	snprintf(t->body, sizeof(t->body),
	    "您的纸质发票（发票号码 %s）已寄出：%s 运单号 %s。", number,
	    company[0] ? company : "快递", tracking);
	snprintf(tag, ts, "purpose=notice kind=invoice.posted invoice=%s",
	    number);
}

static void
r_review(struct render_ctx *c, struct notice_text *t, char *tag, size_t ts)
{
	char record[64], name[256], opinion[256];
	int approved = p_approved(c);
	int change = json_is_true(json_object_get(c->params, "change"));
	const char *what = change ? "企业信息变更" : "企业信息";

	p_str(c, "record_id", 1, record, sizeof(record));
	p_str(c, "name", 0, name, sizeof(name));
	p_str(c, "opinion", 0, opinion, sizeof(opinion));
	snprintf(t->title, sizeof(t->title), "%s审核%s", what,
	    approved ? "通过" : "不通过");
	if (approved)
		snprintf(t->body, sizeof(t->body),
		    "您提交的%s（%s）已审核通过，%s。", what, name,
		    change ? "变更后的信息已生效" : "可申请 CA 数字证书延期");
	else
		snprintf(t->body, sizeof(t->body),
		    "您提交的%s（%s）审核不通过，处理意见：%s。请登录平台修改后重新提交审核。",
		    what, name, opinion);
	snprintf(tag, ts, "purpose=review_result record=%s result=%s", record,
	    approved ? "approved" : "rejected");
}

static void
r_admin_application(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char app[64], name[256], opinion[256];
	int approved = p_approved(c);

	p_str(c, "application_id", 1, app, sizeof(app));
	p_str(c, "name", 0, name, sizeof(name));
	p_str(c, "opinion", 0, opinion, sizeof(opinion));
	snprintf(t->title, sizeof(t->title), "管理员申请%s",
	    approved ? "已通过" : "未通过");
	if (approved)
		snprintf(t->body, sizeof(t->body),
		    "您提交的%s管理员申请已审核通过，请登录平台切换到企业管理员身份。",
		    name);
	else
		snprintf(t->body, sizeof(t->body),
		    "您提交的%s管理员申请审核不通过，处理意见：%s。", name,
		    opinion);
	snprintf(tag, ts, "purpose=admin_application application=%s result=%s",
	    app, approved ? "approved" : "rejected");
}

static void
r_member_application(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char name[256], opinion[256], identity[64];
	int approved = p_approved(c);

	p_str(c, "enterprise_name", 0, name, sizeof(name));
	p_str(c, "opinion", 0, opinion, sizeof(opinion));
	p_str(c, "identity_id", 0, identity, sizeof(identity));
	snprintf(t->title, sizeof(t->title), "身份申请%s",
	    approved ? "已通过" : "未通过");
	snprintf(t->body, sizeof(t->body), "您在 %s 的身份申请%s%s%s", name,
	    approved ? "已通过" : "未通过", opinion[0] ? "，意见：" : "。",
	    opinion);
	snprintf(tag, ts,
	    "purpose=notice kind=member_application.decided identity=%s "
	    "result=%s",
	    identity, approved ? "approved" : "rejected");
}

static void
r_cert_issued(struct render_ctx *c, struct notice_text *t, char *tag, size_t ts)
{
	char serial[256], not_after[64];

	p_str(c, "serial", 1, serial, sizeof(serial));
	p_time(c, "not_after", 0, 0, not_after, sizeof(not_after));
	snprintf(t->title, sizeof(t->title), "数字证书已更新");
	snprintf(t->body, sizeof(t->body),
	    "您的数字证书已更新（新序列号 %s%s%s）。", serial,
	    not_after[0] ? "，有效期至 " : "", not_after);
	snprintf(tag, ts, "purpose=notice kind=cert.issued serial=%s", serial);
}

static void
r_cert_cancelled(struct render_ctx *c, struct notice_text *t, char *tag,
    size_t ts)
{
	char serial[256];

	p_str(c, "serial", 1, serial, sizeof(serial));
	snprintf(t->title, sizeof(t->title), "数字证书已注销");
	snprintf(t->body, sizeof(t->body),
	    "您的数字证书（序列号 %s）已注销，不能再用于登录和签名。", serial);
	snprintf(tag, ts, "purpose=notice kind=cert.cancelled serial=%s",
	    serial);
}

static const struct {
	const char *kind;
	render_fn fn;
} renderers[] = {
    {"cert.expiring", r_cert_expiring},
    {"cert.expiry_digest", r_expiry_digest},
    {"renewal.ready", r_renewal_ready},
    {"renewal.unused", r_renewal_unused},
    {"order.expiring", r_order_expiring},
    {"payment.succeeded", r_payment_succeeded},
    {"invoice.issued", r_invoice_issued},
    {"invoice.posted", r_invoice_posted},
    {"review.decided", r_review},
    {"admin_application.decided", r_admin_application},
    {"member_application.decided", r_member_application},
    {"cert.issued", r_cert_issued},
    {"cert.cancelled", r_cert_cancelled},
};

int
notice_render(const char *kind, const char *notice_id, json_t *params,
    struct notice_text *out, const char **missing)
{
	struct render_ctx c = {params, NULL};
	char tag[512];

	memset(out, 0, sizeof(*out));
	*missing = NULL;
	if (!json_is_object(params)) {
		*missing = "params";
		return -1;
	}
	for (size_t i = 0; i < sizeof(renderers) / sizeof(renderers[0]); i++) {
		if (strcmp(renderers[i].kind, kind) != 0)
			continue;
		renderers[i].fn(&c, out, tag, sizeof(tag));
		if (c.missing != NULL) {
			*missing = c.missing;
			return -1;
		}
		snprintf(out->sms, sizeof(out->sms),
		    "%s notice=%s " SIGNATURE "%s：%s", tag, notice_id,
		    out->title, out->body);
		return 0;
	}
	*missing = "kind";
	return -1;
}

json_t *
notice_sms_params(json_t *params, const struct notice_text *t)
{
	json_t *o = json_object(), *v;
	const char *key;
	char buf[64];

	json_object_foreach(params, key, v)
	{
		if (json_is_string(v))
			json_object_set(o, key, v);
		else if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld",
			    (long long)json_integer_value(v));
			json_object_set_new(o, key, json_string(buf));
		} else if (json_is_boolean(v))
			json_object_set_new(o, key,
			    json_string(json_is_true(v) ? "true" : "false"));
	}
	json_object_set_new(o, "title", json_string(t->title));
	json_object_set_new(o, "text", json_string(t->body));
	return o;
}

long
notice_backoff_ms(int attempt, long base_ms, long cap_ms, unsigned r)
{
	long d = base_ms;

	for (int i = 1; i < attempt && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	if (d < 2)
		return d;
	return d / 2 + (long)(r % (unsigned long)(d - d / 2));
}
