/* vendor — the adapter registry of this process and the local CA adapter
 * (see vendor.h). The local adapter signs on the work pool and answers on
 * the loop thread; a repeated request id signs the same serial, validity,
 * subject and key again, which the registry records only once. */
#include "vendor.h"

#include "crypto.h"
#include "hist.h"
#include "log.h"
#include "util.h"
#include "work.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ADAPTERS 8

static struct vendor *adapters[MAX_ADAPTERS];
static size_t nadapters;

/* A vendor call timed as the vendor_call step (hist.h). */
struct vendor_timed {
	vendor_cert_fn cb;
	void *arg;
	int64_t t0;
};

static void
vendor_timed_done(void *p, const struct vendor_cert_result *res)
{
	struct vendor_timed *t = p;

	hist_step(STEP_VENDOR_CALL, t->t0);
	t->cb(t->arg, res);
	free(t);
}

static struct vendor_timed *
vendor_timed_new(vendor_cert_fn cb, void *arg)
{
	struct vendor_timed *t = xmalloc(sizeof(*t));

	t->cb = cb;
	t->arg = arg;
	t->t0 = hist_now();
	return t;
}

void
vendor_create(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg)
{
	v->ops->create(v, r, vendor_timed_done, vendor_timed_new(cb, arg));
}

void
vendor_renew(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg)
{
	v->ops->renew(v, r, vendor_timed_done, vendor_timed_new(cb, arg));
}

void
vendor_revoke(struct vendor *v, const struct vendor_revoke_request *r,
    vendor_done_fn cb, void *arg)
{
	v->ops->revoke(v, r, cb, arg);
}

void
vendor_list(struct vendor *v, const struct vendor_list_request *r,
    vendor_list_fn cb, void *arg)
{
	if (v->ops->list == NULL) {
		const struct vendor_list_result none = {VENDOR_REJECTED, NULL,
		    NULL, 0, "this adapter has no directory"};
		cb(arg, &none);
		return;
	}
	v->ops->list(v, r, cb, arg);
}

struct vendor *
vendor_at(size_t i)
{
	return i < nadapters ? adapters[i] : NULL;
}

void
vendor_register(struct vendor *v)
{
	if (nadapters == MAX_ADAPTERS)
		fatal("too many vendor adapters");
	adapters[nadapters++] = v;
}

struct vendor *
vendor_by_adapter(const char *adapter)
{
	for (size_t i = 0; i < nadapters; i++)
		if (strcmp(adapters[i]->adapter, adapter) == 0)
			return adapters[i];
	return NULL;
}

struct vendor *
vendor_by_name(const char *name)
{
	for (size_t i = 0; i < nadapters; i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

/* Looks name up in "VENDOR=adapter,…"; returns the adapter or NULL. */
static struct vendor *
map_lookup(const char *map, const char *name)
{
	size_t len = strlen(name);
	const char *p = map;

	while (p != NULL && *p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));

		if (eq != NULL && (size_t)(eq - p) == len &&
		    strncmp(p, name, len) == 0) {
			char *adapter =
			    xstrndup(eq + 1, (size_t)(end - eq - 1));
			struct vendor *v = vendor_by_adapter(adapter);
			free(adapter);
			return v;
		}
		p = comma ? comma + 1 : end;
	}
	return NULL;
}

struct vendor *
vendor_for(const char *cert_vendor, const char *adapters_map,
    const char *default_adapter)
{
	struct vendor *v = map_lookup(adapters_map, cert_vendor);

	if (v == NULL)
		v = vendor_by_name(cert_vendor);
	if (v == NULL)
		v = vendor_by_adapter(default_adapter);
	return v;
}

char *
vendor_forward_names(void)
{
	char *s = xstrdup("{");

	for (size_t i = 0; i < nadapters; i++) {
		if (strcmp(adapters[i]->adapter, "local") == 0)
			continue;
		char *t = xasprintf("%s%s\"%s\"", s, s[1] ? "," : "",
		    adapters[i]->name);
		free(s);
		s = t;
	}
	char *t = xasprintf("%s}", s);
	free(s);
	return t;
}

void
vendor_free_all(void)
{
	for (size_t i = 0; i < nadapters; i++) {
		adapters[i]->ops->free(adapters[i]);
		free(adapters[i]->adapter);
		free(adapters[i]->name);
		free(adapters[i]);
	}
	nadapters = 0;
}

/* ---- the local CA adapter ---------------------------------------------- */

/* One signing job: copies of the request, the answer. */
struct local_job {
	struct localca *ca;
	char *request_id, *serial, *csr_pem, *renewed_pem;
	const struct crypto_csr *csr; /* parsed csr_pem (borrowed) or NULL */
	time_t not_before, not_after;
	char *cert_pem, *chain_pem;
	char error[256];
	int rc;
	vendor_cert_fn cb;
	void *arg;
};

static void
local_sign(void *p)
{
	struct local_job *j = p;
	const struct vendor_cert_request r = {j->request_id, j->serial,
	    j->csr_pem, j->renewed_pem, j->not_before, j->not_after};

	j->rc = localca_issue_csr(j->ca, &r, j->csr, &j->cert_pem,
	    &j->chain_pem, j->error, sizeof(j->error));
}

static void
local_signed(void *p)
{
	struct local_job *j = p;
	struct vendor_cert_result res = {VENDOR_OK, j->cert_pem, j->chain_pem,
	    ""};

	if (j->rc != 0) {
		res.status = VENDOR_REJECTED;
		res.certificate = res.chain = NULL;
		res.error = j->error;
	}
	j->cb(j->arg, &res);
	free(j->request_id);
	free(j->serial);
	free(j->csr_pem);
	free(j->renewed_pem);
	free(j->cert_pem);
	free(j->chain_pem);
	free(j);
}

static void
local_issue_csr(struct vendor *v, const struct vendor_cert_request *r,
    const struct crypto_csr *csr, vendor_cert_fn cb, void *arg)
{
	struct local_job *j = xcalloc(1, sizeof(*j));

	j->csr = csr;
	j->ca = v->impl;
	j->request_id = xstrdup(r->request_id);
	j->serial = xstrdup(r->serial);
	j->csr_pem = xstrdup(r->csr_pem);
	j->renewed_pem = r->renewed_pem ? xstrdup(r->renewed_pem) : NULL;
	j->not_before = r->not_before;
	j->not_after = r->not_after;
	j->cb = cb;
	j->arg = arg;
	work_submit(local_sign, local_signed, j);
}

static void
local_issue(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg)
{
	local_issue_csr(v, r, NULL, cb, arg);
}

/* The registry is the local CA's revocation list (its CRLs are made from
 * it), so there is nothing more to tell. */
static void
local_revoke(struct vendor *v, const struct vendor_revoke_request *r,
    vendor_done_fn cb, void *arg)
{
	cb(arg, VENDOR_OK, "");
}

/* The local CA's directory, read on the work pool. */
struct local_list {
	struct localca *ca;
	char *uscc, *since;
	long limit;
	json_t *items;
	char *next;
	int more, rc;
	char error[256];
	vendor_list_fn cb;
	void *arg;
};

static void
local_read(void *p)
{
	struct local_list *j = p;
	const struct vendor_list_request r = {j->uscc, j->since, j->limit};

	j->rc = localca_directory(j->ca, &r, &j->items, &j->next, &j->more,
	    j->error, sizeof(j->error));
}

static void
local_read_done(void *p)
{
	struct local_list *j = p;
	struct vendor_list_result res = {VENDOR_OK, j->items, j->next, j->more,
	    ""};

	if (j->rc != 0) {
		res.status = VENDOR_UNAVAILABLE;
		res.error = j->error;
	}
	j->cb(j->arg, &res);
	json_decref(j->items);
	free(j->next);
	free(j->uscc);
	free(j->since);
	free(j);
}

static void
local_list(struct vendor *v, const struct vendor_list_request *r,
    vendor_list_fn cb, void *arg)
{
	struct local_list *j = xcalloc(1, sizeof(*j));

	j->ca = v->impl;
	j->uscc = r->uscc ? xstrdup(r->uscc) : NULL;
	j->since = r->since ? xstrdup(r->since) : NULL;
	j->limit = r->limit;
	j->cb = cb;
	j->arg = arg;
	work_submit(local_read, local_read_done, j);
}

static void
local_free(struct vendor *v)
{
}

static const struct vendor_ops local_ops = {
    .create = local_issue,
    .renew = local_issue,
    .revoke = local_revoke,
    .list = local_list,
    .free = local_free,
};

struct vendor *
vendor_local_new(struct localca *ca, const char *name)
{
	struct vendor *v = xcalloc(1, sizeof(*v));

	v->ops = &local_ops;
	v->adapter = xstrdup("local");
	v->name = xstrdup(name);
	v->impl = ca;
	return v;
}

void
vendor_renew_csr(struct vendor *v, const struct vendor_cert_request *r,
    const struct crypto_csr *csr, vendor_cert_fn cb, void *arg)
{
	if (csr == NULL || v->ops != &local_ops) {
		vendor_renew(v, r, cb, arg);
		return;
	}
	local_issue_csr(v, r, csr, vendor_timed_done,
	    vendor_timed_new(cb, arg));
}
