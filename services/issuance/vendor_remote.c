/* vendor_remote — a vendor CA's HTTP API as an adapter (vendor.h) on the
 * loop, through common/httpc (https with certificate and hostname checks;
 * http:// only to loopback; every call is idempotent — POSTs carry their
 * Idempotency-Key — so transport failures are retried with backoff). Protocol (also
 * what tests/issuance/vendor_sim.py serves): services/issuance/README.md.
 * Timeouts, refused connections, 408/425/429/5xx: VENDOR_UNAVAILABLE (ask
 * again, same id); another 4xx: VENDOR_REJECTED. */
#include "vendor.h"

#include "httpc.h"
#include "log.h"
#include "util.h"

#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct remote {
	struct httpc *hc;
	struct httpc_url to;
	char *prefix; /* path before /v1, without a trailing '/' */
	char *token;
	long timeout_ms;
};

/* One call in flight: answered exactly once, then freed. */
struct remote_call {
	struct remote *rm;
	vendor_cert_fn cert_cb;
	vendor_done_fn done_cb;
	vendor_list_fn list_cb;
	void *arg;
	char what[16];
	char request_id[64];
};

/* Answers a directory call from body (status VENDOR_OK) or with error. */
static void
list_answer(struct remote_call *c, enum vendor_status status, const char *body,
    size_t len, const char *error)
{
	struct vendor_list_result res = {status, NULL, NULL, 0,
	    error ? error : ""};
	json_t *root =
	    status == VENDOR_OK ? json_loadb(body, len, 0, NULL) : NULL;

	if (status == VENDOR_OK) {
		json_t *next = json_object_get(root, "next_cursor");
		res.items = json_object_get(root, "items");
		if (!json_is_array(res.items) ||
		    (next != NULL && !json_is_null(next) &&
		        !json_is_string(next))) {
			log_warn(NULL,
			    "msg=vendor_bad_answer adapter=remote call=list");
			res.status = VENDOR_UNAVAILABLE;
			res.items = NULL;
			res.error = "malformed answer";
		} else {
			res.next_cursor = json_string_value(next);
			res.more = json_is_true(json_object_get(root, "more"));
		}
	}
	c->list_cb(c->arg, &res);
	json_decref(root);
	free(c);
}

static void
call_answer(struct remote_call *c, enum vendor_status status, const char *cert,
    const char *chain, const char *error)
{
	if (c->list_cb != NULL) {
		list_answer(c, status, NULL, 0, error);
		return;
	}
	if (c->cert_cb != NULL) {
		struct vendor_cert_result res = {status, cert, chain,
		    error ? error : ""};
		c->cert_cb(c->arg, &res);
	} else {
		c->done_cb(c->arg, status, error ? error : "");
	}
	free(c);
}

/* Reads {certificate, chain} into new strings; -1 when malformed. */
static int
parse_cert_answer(const char *body, size_t len, char **cert, char **chain)
{
	json_t *root = json_loadb(body, len, 0, NULL), *ch;
	const char *pem;
	char *all;
	size_t i;

	if (root == NULL)
		return -1;
	pem = json_string_value(json_object_get(root, "certificate"));
	ch = json_object_get(root, "chain");
	if (pem == NULL || strstr(pem, "BEGIN CERTIFICATE") == NULL ||
	    (ch != NULL && !json_is_array(ch) && !json_is_string(ch))) {
		json_decref(root);
		return -1;
	}
	all = xstrdup("");
	if (json_is_string(ch)) {
		free(all);
		all = xstrdup(json_string_value(ch));
	} else if (ch != NULL) {
		json_t *v;
		json_array_foreach(ch, i, v)
		{
			const char *s = json_string_value(v);
			if (s == NULL)
				continue;
			char *more = xasprintf("%s%s%s", all, s,
			    s[0] && s[strlen(s) - 1] != '\n' ? "\n" : "");
			free(all);
			all = more;
		}
	}
	*cert = xstrdup(pem);
	*chain = all;
	json_decref(root);
	return 0;
}

static void
on_response(void *arg, const struct httpc_answer *r)
{
	struct remote_call *c = arg;
	int code = r->status;
	size_t len = r->body_len;
	char *body = xmalloc(len + 1), error[320];
	char *cert = NULL, *chain = NULL;

	if (len > 0)
		memcpy(body, r->body, len);
	body[len] = '\0';
	if (code == 200 || code == 201) {
		if (c->list_cb != NULL) {
			list_answer(c, VENDOR_OK, body, len, NULL);
		} else if (c->cert_cb == NULL) {
			call_answer(c, VENDOR_OK, NULL, NULL, NULL);
		} else if (parse_cert_answer(body, len, &cert, &chain) == 0) {
			call_answer(c, VENDOR_OK, cert, chain, NULL);
		} else {
			log_warn(NULL,
			    "msg=vendor_bad_answer adapter=remote call=%s request=%s",
			    c->what, c->request_id);
			call_answer(c, VENDOR_UNAVAILABLE, NULL, NULL,
			    "malformed answer");
		}
	} else if (code == 0 || code == 408 || code == 425 || code == 429 ||
	    code >= 500) {
		if (code)
			snprintf(error, sizeof(error), "HTTP %d", code);
		else
			snprintf(error, sizeof(error), "no answer: %s",
			    r->error ? r->error : "");
		log_warn(NULL,
		    "msg=vendor_unavailable adapter=remote call=%s request=%s error=\"%s\"",
		    c->what, c->request_id, error);
		call_answer(c, VENDOR_UNAVAILABLE, NULL, NULL, error);
	} else {
		json_t *root = json_loadb(body, len, 0, NULL);
		const char *msg =
		    json_string_value(json_object_get(root, "error"));
		snprintf(error, sizeof(error), "HTTP %d: %.200s", code,
		    msg ? msg : "refused");
		log_warn(NULL,
		    "msg=vendor_rejected adapter=remote call=%s request=%s error=\"%s\"",
		    c->what, c->request_id, error);
		json_decref(root);
		call_answer(c, VENDOR_REJECTED, NULL, NULL, error);
	}
	free(cert);
	free(chain);
	free(body);
}

/* Sends method to prefix + path with body (stolen; NULL for none);
 * answers through c. */
static void
remote_send(struct remote_call *c, const char *method, const char *path,
    json_t *body)
{
	struct remote *rm = c->rm;
	int post = strcmp(method, "POST") == 0;
	char *text = body ? json_dumps(body, JSON_COMPACT) : xstrdup(""), *full,
	     auth[600];
	const char *h[9];
	size_t n = 0;

	json_decref(body);
	if (text == NULL)
		fatal("json_dumps failed");
	full = xasprintf("%s%s", rm->prefix, path);
	if (post) {
		h[n++] = "Content-Type";
		h[n++] = "application/json";
		h[n++] = "Idempotency-Key";
		h[n++] = c->request_id;
	}
	if (rm->token[0] != '\0') {
		snprintf(auth, sizeof(auth), "Bearer %s", rm->token);
		h[n++] = "Authorization";
		h[n++] = auth;
	}
	h[n] = NULL;
	struct httpc_call call = {.to = &rm->to,
	    .method = method,
	    .path = full,
	    .headers = h,
	    .body = post ? text : NULL,
	    .body_len = post ? strlen(text) : 0,
	    .timeout_ms = rm->timeout_ms,
	    .idempotent = 1};
	httpc_send(rm->hc, &call, on_response, c);
	free(text);
	free(full);
}

static struct remote_call *
call_new(struct vendor *v, const char *what, const char *request_id)
{
	struct remote_call *c = xcalloc(1, sizeof(*c));

	c->rm = v->impl;
	snprintf(c->what, sizeof(c->what), "%s", what);
	snprintf(c->request_id, sizeof(c->request_id), "%s", request_id);
	return c;
}

static json_t *
cert_body(const struct vendor_cert_request *r)
{
	char nb[48], na[48];

	time_rfc3339((int64_t)r->not_before * 1000, nb);
	time_rfc3339((int64_t)r->not_after * 1000, na);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request_id",
	    r->request_id, "serial", r->serial, "csr", r->csr_pem, "not_before",
	    nb, "not_after", na);
	if (r->renewed_pem != NULL)
		json_object_set_new(body, "certificate",
		    json_string(r->renewed_pem));
	return body;
}

static void
remote_create(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg)
{
	struct remote_call *c = call_new(v, "create", r->request_id);

	c->cert_cb = cb;
	c->arg = arg;
	remote_send(c, "POST", "/v1/certificates", cert_body(r));
}

static void
remote_renew(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg)
{
	struct remote_call *c = call_new(v, "renew", r->request_id);

	c->cert_cb = cb;
	c->arg = arg;
	remote_send(c, "POST", "/v1/certificates/renew", cert_body(r));
}

static void
remote_revoke(struct vendor *v, const struct vendor_revoke_request *r,
    vendor_done_fn cb, void *arg)
{
	struct remote_call *c = call_new(v, "revoke", r->request_id);
	char at[48];

	c->done_cb = cb;
	c->arg = arg;
	time_rfc3339((int64_t)r->revoked_at * 1000, at);
	remote_send(c, "POST", "/v1/revocations",
	    json_pack("{s:s, s:s, s:s, s:s, s:s}", "request_id", r->request_id,
	        "serial", r->serial, "issuer", r->issuer, "reason", r->reason,
	        "revoked_at", at));
}

/* GET <url>/v1/directory?uscc=&since=&limit= */
static void
remote_list(struct vendor *v, const struct vendor_list_request *r,
    vendor_list_fn cb, void *arg)
{
	struct remote_call *c = call_new(v, "list", "-");
	char *uscc = r->uscc ? evhttp_encode_uri(r->uscc) : NULL;
	char *since = r->since ? evhttp_encode_uri(r->since) : NULL;
	char *path = xasprintf("/v1/directory?limit=%ld%s%s%s%s", r->limit,
	    uscc ? "&uscc=" : "", uscc ? uscc : "", since ? "&since=" : "",
	    since ? since : "");

	c->list_cb = cb;
	c->arg = arg;
	remote_send(c, "GET", path, NULL);
	free(path);
	free(uscc);
	free(since);
}

static void
remote_free(struct vendor *v)
{
	struct remote *rm = v->impl;

	httpc_free(rm->hc);
	free(rm->prefix);
	free(rm->token);
	free(rm);
}

static const struct vendor_ops remote_ops = {
    .create = remote_create,
    .renew = remote_renew,
    .revoke = remote_revoke,
    .list = remote_list,
    .free = remote_free,
};

struct vendor *
vendor_remote_new(struct event_base *base, const char *url, const char *name,
    const char *token, long timeout_ms)
{
	struct remote *rm = xcalloc(1, sizeof(*rm));
	struct vendor *v;

	/* https://, or http:// to a loopback host; anything else: NULL */
	if (httpc_url_parse(url, &rm->to) != HTTPC_URL_OK) {
		free(rm);
		return NULL;
	}
	rm->prefix = xstrdup(rm->to.path);
	while (rm->prefix[0] && rm->prefix[strlen(rm->prefix) - 1] == '/')
		rm->prefix[strlen(rm->prefix) - 1] = '\0';
	rm->token = xstrdup(token ? token : "");
	rm->timeout_ms = timeout_ms;
	rm->hc = httpc_new(base);
	v = xcalloc(1, sizeof(*v));
	v->ops = &remote_ops;
	v->adapter = xstrdup("remote");
	v->name = xstrdup(name);
	v->impl = rm;
	return v;
}
