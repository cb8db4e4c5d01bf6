/* taxplat — the invoice provider of a 数电票 (fully digitalised e-invoice)
 * platform: its JSON API over HTTPS through common/httpc (on the loop,
 * never blocking; certificate and hostname checked, CAPLAT_TLS_CA_FILE
 * trusted). Every call carries our invoice id as the request id, on which
 * the platform dedupes: asking again after a lost answer returns the same
 * invoice, never a second one.
 *
 *   POST {base}/v1/invoices          issue a blue invoice
 *   POST {base}/v1/invoices/red      red-reverse a blue one (红字)
 *   GET  {base}/v1/requests/{id}     what became of a request (404: none)
 *   GET  {base}/v1/invoices/{no}/pdf the invoice file
 *
 * Answers: 200 {"code":"0000","data":{"invoice_number","issue_date",
 * "check_code"}}; a refusal is 200 (or 4xx) {"code":"<not 0000>",
 * "message"}; anything else (5xx, no answer, not JSON) is unavailable.
 * Authorization: Bearer <CAPLAT_TAXPLAT_KEY file's first line>. */
#include "payments.h"

#include "httpc.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct httpc *hc;
static struct httpc_url ep;
static char *api_key;
static int ready;

struct tcall {
	invoice_fn cb;
	void *arg;
	int download;
};

static void
answer(struct tcall *t, const struct invoice_answer *a)
{
	t->cb(t->arg, a);
	free(t);
}

static void
fail(struct tcall *t, enum invoice_outcome outcome, const char *reason)
{
	struct invoice_answer a = {.outcome = outcome, .reason = reason};

	answer(t, &a);
}

static void
on_answer(void *arg, const struct httpc_answer *r)
{
	struct tcall *t = arg;
	char why[300];

	if (r->status == 0) {
		snprintf(why, sizeof(why), "税务平台无应答：%s", r->error);
		fail(t, INVOICE_UNAVAILABLE, why);
		return;
	}
	if (t->download) {
		if (r->status != 200 || r->body_len < 5 ||
		    memcmp(r->body, "%PDF-", 5) != 0) {
			snprintf(why, sizeof(why),
			    "税务平台未返回发票文件（HTTP %d）", r->status);
			fail(t, INVOICE_UNAVAILABLE, why);
			return;
		}
		struct invoice_answer a = {.outcome = INVOICE_OK,
		    .file = r->body,
		    .file_len = r->body_len};
		answer(t, &a);
		return;
	}
	if (r->status == 404) {
		fail(t, INVOICE_UNKNOWN, "税务平台无此请求");
		return;
	}
	if (r->status >= 500) {
		snprintf(why, sizeof(why), "税务平台暂不可用（HTTP %d）",
		    r->status);
		fail(t, INVOICE_UNAVAILABLE, why);
		return;
	}
	json_error_t jerr;
	json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
	const char *code = json_string_value(json_object_get(j, "code"));
	if (code == NULL) {
		json_decref(j);
		fail(t, INVOICE_UNAVAILABLE, "税务平台应答无法解析");
		return;
	}
	if (strcmp(code, "0000") != 0) {
		const char *msg =
		    json_string_value(json_object_get(j, "message"));
		snprintf(why, sizeof(why), "%s：%s", code,
		    msg ? msg : "拒绝开具");
		json_decref(j);
		fail(t, INVOICE_REFUSED, why);
		return;
	}
	json_t *d = json_object_get(j, "data");
	struct invoice_answer a = {.outcome = INVOICE_OK,
	    .number = json_string_value(json_object_get(d, "invoice_number")),
	    .issue_date = json_string_value(json_object_get(d, "issue_date")),
	    .check_code = json_string_value(json_object_get(d, "check_code"))};
	/* 数电票 numbers are 20 digits; anything else is not an answer. */
	if (a.number == NULL || strlen(a.number) != 20 ||
	    strspn(a.number, "0123456789") != 20) {
		json_decref(j);
		fail(t, INVOICE_UNAVAILABLE, "税务平台应答缺少发票号码");
		return;
	}
	answer(t, &a);
	json_decref(j);
}

static void
send_call(const char *method, const char *path, const char *body, invoice_fn cb,
    void *arg, int download)
{
	struct tcall *t = xcalloc(1, sizeof(*t));
	char *full = xasprintf("%s%s", ep.path, path);
	char *auth = xasprintf("Bearer %s", api_key);
	const char *h[] = {"Accept",
	    download ? "application/pdf" : "application/json", "User-Agent",
	    "caplat-payments/1.0", "Authorization", auth,
	    body ? "Content-Type" : NULL, "application/json", NULL};
	struct httpc_call call = {.to = &ep,
	    .method = method,
	    .path = full,
	    .headers = h,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .timeout_ms = pay.cfg.taxplat_timeout * 1000L,
	    .idempotent = 1}; /* the request id makes every call idempotent */

	t->cb = cb;
	t->arg = arg;
	t->download = download;
	httpc_send(hc, &call, on_answer, t);
	free(full);
	free(auth);
}

static json_t *
request_json(const struct invoice_request *req)
{
	json_t *lines = json_array();

	for (int i = 0; i < req->nlines; i++) {
		const struct invoice_line *l = &req->lines[i];
		json_array_append_new(lines,
		    json_pack("{s:s, s:I, s:I, s:I, s:i}", "name", l->name,
		        "amount_fen", (json_int_t)l->amount_fen, "tax_fen",
		        (json_int_t)l->tax_fen, "net_fen",
		        (json_int_t)(l->amount_fen - l->tax_fen), "rate_bp",
		        (int)req->rate_bp));
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s?}, s:o, s:I, s:I, s:s?, s:s?}",
	    "request_id", req->id, "invoice_type",
	    strcmp(req->type, "paper_special") == 0 ? "special" : "normal",
	    "buyer", "name", req->title, "taxpayer_id", req->taxpayer_id,
	    "lines", lines, "total_fen", (json_int_t)req->amount_fen, "tax_fen",
	    (json_int_t)req->tax_fen, "original_number", req->original_number,
	    "reason", req->reason);
}

static void
tp_post(const char *path, const struct invoice_request *req, invoice_fn cb,
    void *arg)
{
	json_t *j = request_json(req);
	char *body = json_dumps(j, JSON_COMPACT);

	send_call("POST", path, body, cb, arg, 0);
	free(body);
	json_decref(j);
}

static void
tp_issue(const struct invoice_request *req, invoice_fn cb, void *arg)
{
	tp_post("/v1/invoices", req, cb, arg);
}

static void
tp_red(const struct invoice_request *req, invoice_fn cb, void *arg)
{
	tp_post("/v1/invoices/red", req, cb, arg);
}

static void
tp_query(const char *request_id, invoice_fn cb, void *arg)
{
	char *path = xasprintf("/v1/requests/%s", request_id);

	send_call("GET", path, NULL, cb, arg, 0);
	free(path);
}

static void
tp_download(const char *number, invoice_fn cb, void *arg)
{
	char *path = xasprintf("/v1/invoices/%s/pdf", number);

	send_call("GET", path, NULL, cb, arg, 1);
	free(path);
}

static const struct invoice_provider taxplat = {"taxplat", tp_issue, tp_red,
    tp_query, tp_download};

static void
taxplat_init(void)
{
	const char *url = pay.cfg.taxplat_url;

	ready = -1;
	if (url == NULL || url[0] == '\0')
		return;
	switch (httpc_url_parse(url, &ep)) {
	case HTTPC_URL_OK:
		break;
	case HTTPC_URL_PLAIN_HTTP:
		fatal("bad configuration: CAPLAT_TAXPLAT_URL: \"%s\" must be "
		      "https:// (http:// only to a loopback host)",
		    url);
	default:
		fatal("bad configuration: CAPLAT_TAXPLAT_URL: \"%s\" is not a "
		      "URL",
		    url);
	}
	if (strcmp(ep.path, "/") == 0)
		ep.path[0] = '\0';
	api_key = xstrdup("");
	if (pay.cfg.taxplat_key[0] != '\0') {
		FILE *f = fopen(pay.cfg.taxplat_key, "r");
		char line[256];
		if (f == NULL || fgets(line, sizeof(line), f) == NULL)
			fatal("bad configuration: CAPLAT_TAXPLAT_KEY: cannot "
			      "read %s",
			    pay.cfg.taxplat_key);
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		free(api_key);
		api_key = xstrdup(line);
	}
	hc = httpc_new(pay.svc.base);
	ready = 1;
	log_info(NULL, "msg=invoice_provider provider=taxplat host=%s",
	    ep.host);
}

const struct invoice_provider *
taxplat_provider(void)
{
	if (ready == 0)
		taxplat_init();
	return ready == 1 ? &taxplat : NULL;
}

void
taxplat_free(void)
{
	if (hc != NULL)
		httpc_free(hc);
	hc = NULL;
	free(api_key);
	api_key = NULL;
}
