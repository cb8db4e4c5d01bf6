/* provider — the Alipay open-platform and WeChat Pay API v3 calls we make:
 * create a QR-code trade (alipay.trade.precreate / Native pay), query a
 * trade, refund, find and download the day's bill (streamed). Requests are signed (RSA2; WECHATPAY2-SHA256-RSA2048) on a
 * worker thread, sent with libevent's async evhttp client on the loop, and
 * the answers' signatures are verified before anything in them is believed.
 *
 * The transport is common/httpc (TLS with certificate and hostname checks,
 * kept-alive connections; queries are idempotent and retried). Answers are
 * checked as strictly as notifications: a WeChat Pay answer signed more
 * than 300 s from now is refused like a stale notification. */
#include "payments.h"

#include "crypto.h"
#include "domain.h"
#include "httpc.h"
#include "log.h"
#include "util.h"
#include "work.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ANSWER (1024 * 1024)

enum provider_op { OP_CREATE, OP_QUERY, OP_REFUND, OP_BILL_URL, OP_DOWNLOAD };

/* path: Alipay: the gateway's path; WeChat: "" or a prefix */
static struct httpc_url alipay_ep, wechat_ep;
static struct httpc *hc;

/* One request in flight, owned by itself until cb has been called. */
struct preq {
	int wechat;
	enum provider_op op;
	provider_cb cb;
	void *arg;
	char *out_trade_no;
	int64_t amount_fen;
	/* Alipay */
	const char *alipay_method;
	char *biz_content;
	/* WeChat */
	const char *http_method;
	char *url;  /* path and query */
	char *json; /* request body, "" for GET */
	/* Made on the worker */
	char *body; /* what is sent */
	char *authorization;
	int sign_failed;
	/* The answer */
	int status;
	char *answer;
	size_t answer_len;
	char *wx_ts, *wx_nonce, *wx_sig, *wx_serial;
	/* OP_DOWNLOAD: where (url is its path and query), the body's reader */
	struct httpc_url dl;
	httpc_body_fn on_body;
	struct preq *next; /* in downloads */
};

static struct preq *downloads; /* OP_DOWNLOAD in flight */

static void
preq_free(struct preq *p)
{
	for (struct preq **pp = &downloads; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p->out_trade_no);
	free(p->biz_content);
	free(p->url);
	free(p->json);
	free(p->body);
	free(p->authorization);
	free(p->answer);
	free(p->wx_ts);
	free(p->wx_nonce);
	free(p->wx_sig);
	free(p->wx_serial);
	free(p);
}

static void
answer(struct preq *p, struct provider_answer *a)
{
	if (a->status != PROVIDER_OK)
		log_warn(NULL,
		    "msg=provider_answer channel=%s op=%d trade=%s status=%d detail=\"%s\"",
		    p->wechat ? "wechat" : "alipay", (int)p->op,
		    p->out_trade_no, (int)a->status,
		    a->message ? a->message : "");
	p->cb(p->arg, a);
	preq_free(p);
}

static void
answer_status(struct preq *p, enum provider_status s, const char *message)
{
	struct provider_answer a = {.status = s, .message = message};

	answer(p, &a);
}

/* ---- configuration ----------------------------------------------------- */

/* The providers' endpoints: https://, or http:// to a loopback host
 * (tests); anything else stops the service, naming the variable. */
static void
endpoint_parse(struct httpc_url *ep, const char *url, const char *var)
{
	switch (httpc_url_parse(url, ep)) {
	case HTTPC_URL_OK:
		return;
	case HTTPC_URL_PLAIN_HTTP:
		fatal("bad configuration: %s: \"%s\" must be https:// (http:// "
		      "only to a loopback host)",
		    var, url);
	default:
		fatal("bad configuration: %s: \"%s\" is not a URL", var, url);
	}
}

/* The notify URLs we hand the providers: WeChat Pay refuses plain http,
 * so must we (loopback excepted, for tests). */
static void
notify_base_check(const char *url)
{
	struct httpc_url u;

	switch (httpc_url_parse(url, &u)) {
	case HTTPC_URL_OK:
		return;
	case HTTPC_URL_PLAIN_HTTP:
		fatal("bad configuration: CAPLAT_PAY_NOTIFY_BASE: \"%s\" must "
		      "be https:// (the providers refuse plain http notify "
		      "URLs; http:// only to a loopback host)",
		    url);
	default:
		fatal("bad configuration: CAPLAT_PAY_NOTIFY_BASE: \"%s\" is "
		      "not a URL",
		    url);
	}
}

static void
load_key(struct crypto_key **out, const char *path, const char *what)
{
	if (crypto_key_load_file(out, path) != 0 ||
	    crypto_key_type_of(*out) != CRYPTO_KEY_RSA)
		fatal("bad configuration: %s: cannot load an RSA key from %s",
		    what, path);
}

void
provider_init(void)
{
	const struct pay_config *c = &pay.cfg;

	hc = httpc_new(pay.svc.base);
	notify_base_check(c->notify_base);
	if (c->alipay_gateway[0] != '\0') {
		if (!c->alipay_app_id[0] || !c->alipay_seller_id[0] ||
		    !c->alipay_private_key[0] || !c->alipay_public_key[0])
			fatal(
			    "bad configuration: CAPLAT_ALIPAY_*: gateway set but app_id, seller_id or keys missing");
		load_key(&pay.alipay_merchant, c->alipay_private_key,
		    "CAPLAT_ALIPAY_PRIVATE_KEY");
		load_key(&pay.alipay_public, c->alipay_public_key,
		    "CAPLAT_ALIPAY_PUBLIC_KEY");
		endpoint_parse(&alipay_ep, c->alipay_gateway,
		    "CAPLAT_ALIPAY_GATEWAY");
		pay.alipay_ready = 1;
	} else {
		log_warn(NULL,
		    "msg=provider_disabled channel=alipay detail=\"CAPLAT_ALIPAY_GATEWAY unset\"");
	}
	if (c->wechat_api[0] != '\0') {
		char *pem;
		FILE *f;
		size_t n;

		if (!c->wechat_mchid[0] || !c->wechat_appid[0] ||
		    !c->wechat_serial[0] || !c->wechat_private_key[0] ||
		    !c->wechat_platform_certs[0] ||
		    !c->wechat_apiv3_key_file[0])
			fatal(
			    "bad configuration: CAPLAT_WECHAT_*: API set but ids, keys or certificates missing");
		load_key(&pay.wechat_merchant, c->wechat_private_key,
		    "CAPLAT_WECHAT_PRIVATE_KEY");
		f = fopen(c->wechat_platform_certs, "r");
		if (f == NULL)
			fatal(
			    "bad configuration: CAPLAT_WECHAT_PLATFORM_CERTS: cannot read %s",
			    c->wechat_platform_certs);
		pem = xmalloc(MAX_ANSWER + 1);
		n = fread(pem, 1, MAX_ANSWER, f);
		pem[n] = '\0';
		fclose(f);
		if (wechat_platform_certs_load_pem(&pay.wechat_platform, pem) <
		    0)
			fatal(
			    "bad configuration: CAPLAT_WECHAT_PLATFORM_CERTS: no RSA certificate in %s",
			    c->wechat_platform_certs);
		free(pem);
		f = fopen(c->wechat_apiv3_key_file, "r");
		if (f == NULL)
			fatal(
			    "bad configuration: CAPLAT_WECHAT_APIV3_KEY_FILE: cannot read %s",
			    c->wechat_apiv3_key_file);
		n = fread(pay.wechat_apiv3_key, 1, 32, f);
		fclose(f);
		pay.wechat_apiv3_key[n] = '\0';
		if (n != 32)
			fatal(
			    "bad configuration: CAPLAT_WECHAT_APIV3_KEY_FILE: the APIv3 key is 32 bytes");
		endpoint_parse(&wechat_ep, c->wechat_api, "CAPLAT_WECHAT_API");
		pay.wechat_ready = 1;
	} else {
		log_warn(NULL,
		    "msg=provider_disabled channel=wechat detail=\"CAPLAT_WECHAT_API unset\"");
	}
}

void
provider_free(void)
{
	httpc_free(hc);
	hc = NULL;
}

/* ---- signing (worker thread) -------------------------------------------- */

/* "yyyy-MM-dd HH:mm:ss" in Asia/Shanghai (UTC+8, no DST). */
static void
shanghai_time(char out[20])
{
	time_t t = time(NULL) + 8 * 3600;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

static void
preq_sign(void *arg)
{
	struct preq *p = arg;

	if (!p->wechat && p->op == OP_DOWNLOAD)
		return; /* Alipay's download URL is signed by Alipay */
	if (!p->wechat) {
		char ts[20],
		    *notify =
		        xasprintf("%s/notify/alipay", pay.cfg.notify_base);
		shanghai_time(ts);
		const char *kv[] = {"app_id", pay.cfg.alipay_app_id, "method",
		    p->alipay_method, "format", "JSON", "charset", "utf-8",
		    "sign_type", "RSA2", "timestamp", ts, "version", "1.0",
		    "notify_url", notify, "biz_content", p->biz_content, NULL};
		p->body = alipay_request_body(pay.alipay_merchant, kv);
		p->sign_failed = p->body == NULL;
		free(notify);
		return;
	}
	char ts[24], *nonce = crypto_random_token(16);
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	p->authorization = wechat_authorization(pay.wechat_merchant,
	    pay.cfg.wechat_mchid, pay.cfg.wechat_serial, p->http_method, p->url,
	    ts, nonce, p->json);
	p->sign_failed = p->authorization == NULL;
	free(nonce);
}

/* ---- the HTTP exchange (loop) ------------------------------------------ */

static void interpret(struct preq *p);

static char *
header_dup(struct evkeyvalq *h, const char *name)
{
	const char *v = evhttp_find_header(h, name);

	return v ? xstrdup(v) : NULL;
}

static void
on_http_done(void *arg, const struct httpc_answer *r)
{
	struct preq *p = arg;

	if (r->status == 0) {
		char why[300];
		snprintf(why, sizeof(why), "no answer: %s", r->error);
		answer_status(p, PROVIDER_UNAVAILABLE, why);
		return;
	}
	if (p->op == OP_DOWNLOAD) {
		char why[64];
		snprintf(why, sizeof(why), "download answered %d", r->status);
		answer_status(p,
		    r->status == 200 ? PROVIDER_OK : PROVIDER_REFUSED,
		    r->status == 200 ? NULL : why);
		return;
	}
	p->status = r->status;
	p->answer = xmalloc(r->body_len + 1);
	memcpy(p->answer, r->body, r->body_len);
	p->answer[r->body_len] = '\0';
	p->answer_len = r->body_len;
	if (p->wechat) {
		p->wx_ts = header_dup(r->headers, "Wechatpay-Timestamp");
		p->wx_nonce = header_dup(r->headers, "Wechatpay-Nonce");
		p->wx_sig = header_dup(r->headers, "Wechatpay-Signature");
		p->wx_serial = header_dup(r->headers, "Wechatpay-Serial");
	}
	interpret(p);
}

/* httpc_body_fn of a download: a 200 answer's body to the caller's
 * reader, any other answer's dropped. */
static int
dl_body(void *arg, int status, const char *data, size_t len)
{
	struct preq *p = arg;

	return status == 200 ? p->on_body(p->arg, status, data, len)
	                     : HTTPC_BODY_DROP;
}

static void
preq_send(void *arg)
{
	struct preq *p = arg;
	const struct httpc_url *ep = p->wechat ? &wechat_ep : &alipay_ep;
	struct httpc_call call = {.to = ep,
	    .timeout_ms = pay.cfg.provider_timeout * 1000L,
	    .idempotent = p->op == OP_QUERY};
	char *path;

	if (p->sign_failed) {
		answer_status(p, PROVIDER_UNAVAILABLE, "signing failed");
		return;
	}
	if (p->op == OP_DOWNLOAD) {
		const char *h[] = {"Accept", "*/*", "User-Agent",
		    "caplat-payments/1.0",
		    p->authorization ? "Authorization" : NULL, p->authorization,
		    NULL};
		call.to = &p->dl;
		call.method = "GET";
		call.path = p->url;
		call.headers = h;
		call.on_body = dl_body;
		call.timeout_ms = pay.cfg.provider_timeout * 1000L;
		p->next = downloads;
		downloads = p;
		httpc_send(hc, &call, on_http_done, p);
		return;
	}
	if (p->wechat) {
		int post = strcmp(p->http_method, "POST") == 0;
		const char *h[] = {"Accept", "application/json", "User-Agent",
		    "caplat-payments/1.0", "Authorization", p->authorization,
		    post ? "Content-Type" : NULL, "application/json", NULL};
		path = xasprintf("%s%s",
		    ep->path[0] == '/' && ep->path[1] ? ep->path : "", p->url);
		call.method = post ? "POST" : "GET";
		call.path = path;
		call.headers = h;
		call.body = post ? p->json : NULL;
		call.body_len = post ? strlen(p->json) : 0;
		httpc_send(hc, &call, on_http_done, p);
	} else {
		const char *h[] = {"Accept", "application/json", "User-Agent",
		    "caplat-payments/1.0", "Content-Type",
		    "application/x-www-form-urlencoded;charset=utf-8", NULL};
		path = xstrdup(ep->path[0] ? ep->path : "/");
		call.method = "POST";
		call.path = path;
		call.headers = h;
		call.body = p->body;
		call.body_len = strlen(p->body);
		httpc_send(hc, &call, on_http_done, p);
	}
	free(path);
}

static struct preq *
preq_new(const char *channel, enum provider_op op, const char *out_trade_no,
    provider_cb cb, void *arg)
{
	struct preq *p = xcalloc(1, sizeof(*p));

	p->wechat = strcmp(channel, "wechat") == 0;
	p->op = op;
	p->cb = cb;
	p->arg = arg;
	p->out_trade_no = xstrdup(out_trade_no);
	return p;
}

/* Sends p, or answers UNAVAILABLE at once when its channel is off. */
static void
preq_start(struct preq *p)
{
	if (p->wechat ? !pay.wechat_ready : !pay.alipay_ready) {
		answer_status(p, PROVIDER_UNAVAILABLE,
		    "channel not configured");
		return;
	}
	work_submit(preq_sign, preq_send, p);
}

/* ---- the calls --------------------------------------------------------- */

void
provider_create(const char *channel, const char *out_trade_no,
    int64_t amount_fen, const char *subject, provider_cb cb, void *arg)
{
	struct preq *p = preq_new(channel, OP_CREATE, out_trade_no, cb, arg);
	char yuan[32];

	p->amount_fen = amount_fen;
	if (!p->wechat) {
		money_fen_to_yuan(amount_fen, yuan);
		json_t *biz = json_pack("{s:s, s:s, s:s, s:s}", "out_trade_no",
		    out_trade_no, "total_amount", yuan, "subject", subject,
		    "timeout_express", "120m");
		p->alipay_method = "alipay.trade.precreate";
		p->biz_content = json_dumps(biz, JSON_COMPACT);
		json_decref(biz);
	} else {
		char *notify =
		    xasprintf("%s/notify/wechat", pay.cfg.notify_base);
		json_t *body =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:s}}",
		        "appid", pay.cfg.wechat_appid, "mchid",
		        pay.cfg.wechat_mchid, "description", subject,
		        "out_trade_no", out_trade_no, "notify_url", notify,
		        "amount", "total", (json_int_t)amount_fen, "currency",
		        "CNY");
		p->http_method = "POST";
		p->url = xstrdup("/v3/pay/transactions/native");
		p->json = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		free(notify);
	}
	preq_start(p);
}

void
provider_query(const char *channel, const char *out_trade_no, provider_cb cb,
    void *arg)
{
	struct preq *p = preq_new(channel, OP_QUERY, out_trade_no, cb, arg);

	if (!p->wechat) {
		json_t *biz = json_pack("{s:s}", "out_trade_no", out_trade_no);
		p->alipay_method = "alipay.trade.query";
		p->biz_content = json_dumps(biz, JSON_COMPACT);
		json_decref(biz);
	} else {
		p->http_method = "GET";
		p->url =
		    xasprintf("/v3/pay/transactions/out-trade-no/%s?mchid=%s",
		        out_trade_no, pay.cfg.wechat_mchid);
		p->json = xstrdup("");
	}
	preq_start(p);
}

void
provider_refund(const char *channel, const char *out_trade_no,
    const char *out_refund_no, int64_t refund_fen, int64_t total_fen,
    const char *reason, provider_cb cb, void *arg)
{
	struct preq *p = preq_new(channel, OP_REFUND, out_trade_no, cb, arg);
	char yuan[32];

	if (!p->wechat) {
		money_fen_to_yuan(refund_fen, yuan);
		json_t *biz = json_pack("{s:s, s:s, s:s, s:s}", "out_trade_no",
		    out_trade_no, "refund_amount", yuan, "out_request_no",
		    out_refund_no, "refund_reason", reason);
		p->alipay_method = "alipay.trade.refund";
		p->biz_content = json_dumps(biz, JSON_COMPACT);
		json_decref(biz);
	} else {
		json_t *body = json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:s}}",
		    "out_trade_no", out_trade_no, "out_refund_no",
		    out_refund_no, "reason", reason, "amount", "refund",
		    (json_int_t)refund_fen, "total", (json_int_t)total_fen,
		    "currency", "CNY");
		p->http_method = "POST";
		p->url = xstrdup("/v3/refund/domestic/refunds");
		p->json = json_dumps(body, JSON_COMPACT);
		json_decref(body);
	}
	preq_start(p);
}

void
provider_bill_url(const char *channel, const char *date, provider_cb cb,
    void *arg)
{
	struct preq *p = preq_new(channel, OP_BILL_URL, date, cb, arg);

	if (!p->wechat) {
		json_t *biz = json_pack("{s:s, s:s}", "bill_type", "trade",
		    "bill_date", date);
		p->alipay_method =
		    "alipay.data.dataservice.bill.downloadurl.query";
		p->biz_content = json_dumps(biz, JSON_COMPACT);
		json_decref(biz);
	} else {
		p->http_method = "GET";
		p->url =
		    xasprintf("/v3/bill/tradebill?bill_date=%s&bill_type=ALL",
		        date);
		p->json = xstrdup("");
	}
	preq_start(p);
}

void
provider_bill_download(const char *channel, const char *url,
    httpc_body_fn on_body, provider_cb done, void *arg)
{
	struct preq *p = preq_new(channel, OP_DOWNLOAD, "bill", done, arg);
	const char *q = strchr(url, '?');
	char *base = xstrndup(url, q ? (size_t)(q - url) : strlen(url));

	p->on_body = on_body;
	if (httpc_url_parse(base, &p->dl) != HTTPC_URL_OK) {
		free(base);
		answer_status(p, PROVIDER_UNAVAILABLE, "bad download URL");
		return;
	}
	free(base);
	p->url =
	    xasprintf("%s%s", p->dl.path[0] ? p->dl.path : "/", q ? q : "");
	p->http_method = "GET";
	p->json = xstrdup("");
	preq_start(p);
}

void
provider_bill_resume(void *arg)
{
	for (struct preq *p = downloads; p != NULL; p = p->next)
		if (p->arg == arg)
			httpc_resume(hc, p);
}

/* ---- reading the answers ----------------------------------------------- */

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
interpret_alipay(struct preq *p)
{
	struct provider_answer a = {.status = PROVIDER_UNAVAILABLE};
	const char *content, *sign;
	size_t content_len;
	json_t *root, *resp;
	char *paid_at = NULL;

	if (p->status != 200 ||
	    alipay_response_split(p->answer, p->answer_len, p->alipay_method,
	        &content, &content_len, &root, &sign) != 0) {
		answer_status(p, PROVIDER_UNAVAILABLE, "malformed answer");
		return;
	}
	if (alipay_response_verify(pay.alipay_public, content, content_len,
	        sign) != 0) {
		json_decref(root);
		answer_status(p, PROVIDER_UNAVAILABLE,
		    "answer signature does not verify");
		return;
	}
	char key[64];
	snprintf(key, sizeof(key), "%s_response", p->alipay_method);
	for (char *c = key; *c; c++)
		if (*c == '.')
			*c = '_';
	resp = json_object_get(root, key);
	const char *code = jstr(resp, "code"), *sub = jstr(resp, "sub_code");
	a.message =
	    jstr(resp, "sub_msg") ? jstr(resp, "sub_msg") : jstr(resp, "msg");
	int ok = code && strcmp(code, "10000") == 0;
	switch (p->op) {
	case OP_CREATE:
		a.qr_code = jstr(resp, "qr_code");
		a.status = ok && a.qr_code ? PROVIDER_OK : PROVIDER_REFUSED;
		break;
	case OP_QUERY:
		if (ok) {
			const char *st = jstr(resp, "trade_status"),
			           *amt = jstr(resp, "total_amount");
			a.status = PROVIDER_OK;
			a.paid = st &&
			    (strcmp(st, "TRADE_SUCCESS") == 0 ||
			        strcmp(st, "TRADE_FINISHED") == 0);
			a.closed = st && strcmp(st, "TRADE_CLOSED") == 0;
			a.trade_no = jstr(resp, "trade_no");
			paid_at = alipay_time_timestamptz(
			    jstr(resp, "send_pay_date"));
			a.paid_at = paid_at;
			if (a.paid &&
			    (amt == NULL || a.trade_no == NULL ||
			        money_yuan_to_fen(amt, strlen(amt), 0,
			            &a.amount_fen) != 0)) {
				a.status = PROVIDER_UNAVAILABLE;
				a.message =
				    "paid trade without amount or trade_no";
			}
		} else if (sub && strcmp(sub, "ACQ.TRADE_NOT_EXIST") == 0) {
			a.status = PROVIDER_OK;
			a.closed = 1;
		} else {
			a.status = PROVIDER_REFUSED;
		}
		break;
	case OP_REFUND:
		a.status = ok ? PROVIDER_OK : PROVIDER_REFUSED;
		a.trade_no = jstr(resp, "trade_no");
		break;
	case OP_BILL_URL:
		a.url = jstr(resp, "bill_download_url");
		a.status = ok && a.url ? PROVIDER_OK : PROVIDER_REFUSED;
		break;
	case OP_DOWNLOAD:
		break;
	}
	answer(p, &a);
	free(paid_at);
	json_decref(root);
}

static void
interpret_wechat(struct preq *p)
{
	struct provider_answer a = {.status = PROVIDER_UNAVAILABLE};
	const struct crypto_key *key =
	    wechat_platform_key(pay.wechat_platform, p->wx_serial);
	json_t *root;

	/* Every answer, errors included, is signed like a notification. */
	if (key == NULL || p->wx_ts == NULL || p->wx_nonce == NULL ||
	    p->wx_sig == NULL ||
	    wechat_verify(key, p->wx_ts, p->wx_nonce, p->answer, p->answer_len,
	        p->wx_sig) != 0) {
		answer_status(p, PROVIDER_UNAVAILABLE,
		    "answer signature does not verify");
		return;
	}
	/* A replayed or delayed answer is refused like a stale notification:
	 * a query could otherwise mark a payment succeeded from an old one. */
	if (!wechat_timestamp_fresh(p->wx_ts, time(NULL))) {
		answer_status(p, PROVIDER_UNAVAILABLE,
		    "answer timestamp outside 300 s");
		return;
	}
	root = json_loadb(p->answer, p->answer_len, 0, NULL);
	if (root == NULL) {
		answer_status(p,
		    p->status >= 500 ? PROVIDER_UNAVAILABLE : PROVIDER_REFUSED,
		    "answer is not JSON");
		return;
	}
	a.message = jstr(root, "message");
	if (p->status >= 500) {
		answer(p, &a);
		json_decref(root);
		return;
	}
	switch (p->op) {
	case OP_CREATE:
		a.qr_code = jstr(root, "code_url");
		a.status = p->status == 200 && a.qr_code ? PROVIDER_OK
		                                         : PROVIDER_REFUSED;
		break;
	case OP_QUERY:
		if (p->status == 200) {
			const char *st = jstr(root, "trade_state");
			json_t *total =
			    json_object_get(json_object_get(root, "amount"),
			        "total");
			a.status = PROVIDER_OK;
			a.paid = st && strcmp(st, "SUCCESS") == 0;
			a.closed = st &&
			    (strcmp(st, "CLOSED") == 0 ||
			        strcmp(st, "REVOKED") == 0 ||
			        strcmp(st, "PAYERROR") == 0);
			a.trade_no = jstr(root, "transaction_id");
			a.paid_at = jstr(root, "success_time");
			if (a.paid_at != NULL && !wechat_time_valid(a.paid_at))
				a.paid_at = NULL; /* unreadable: paid now */
			if (a.paid &&
			    (!json_is_integer(total) || a.trade_no == NULL ||
			        strcmp(jstr(root, "mchid") ? jstr(root, "mchid")
			                                   : "",
			            pay.cfg.wechat_mchid) != 0)) {
				a.status = PROVIDER_UNAVAILABLE;
				a.message =
				    "paid trade without amount, transaction_id or our mchid";
			} else if (a.paid) {
				a.amount_fen = json_integer_value(total);
			}
		} else if (p->status == 404) {
			a.status = PROVIDER_OK;
			a.closed = 1;
		} else {
			a.status = PROVIDER_REFUSED;
		}
		break;
	case OP_REFUND: {
		const char *st = jstr(root, "status");
		a.trade_no = jstr(root, "refund_id");
		if (p->status == 200 && st && strcmp(st, "SUCCESS") == 0)
			a.status = PROVIDER_OK;
		else if (p->status == 200 && st &&
		    strcmp(st, "PROCESSING") == 0)
			a.status =
			    PROVIDER_UNAVAILABLE; /* not yet: asked again later */
		else
			a.status = PROVIDER_REFUSED;
		break;
	}
	case OP_BILL_URL:
		a.url = jstr(root, "download_url");
		a.status =
		    p->status == 200 && a.url ? PROVIDER_OK : PROVIDER_REFUSED;
		break;
	case OP_DOWNLOAD:
		break;
	}
	answer(p, &a);
	json_decref(root);
}

static void
interpret(struct preq *p)
{
	if (p->wechat)
		interpret_wechat(p);
	else
		interpret_alipay(p);
}
