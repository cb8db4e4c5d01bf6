/* sync — the vendor directory sync: every adapter of this process with a
 * directory (vendor.h list) is read from its cursor, page by page, and the
 * certificates of a page enter the registry in one set-based sync_page()
 * (deploy/sql/issuance/101_sync_page.sql): a new key gets a lineage and
 * issuance.cert.registered, the same event a binding gives, with no account
 * yet, so orders and auth learn it; a known one takes what the vendor
 * lists now (holder, lock kind, key, platforms, a revocation at the vendor;
 * the rules: 100_sync_updates.sql), only what differs, audited
 * "certificate.synced"
 * (actor system:issuance) and announced again. A page and its new cursor
 * are one transaction: a crash reads the page again, which changes nothing.
 * The vendor calls are asynchronous (the adapters answer on the loop); the
 * certificates of a page (at most SYNC_PAGE) are parsed on the loop. The
 * timer is sweep.c's row "vendor_directory"; the holder's later binding
 * finds the certificate known (register_certificate fills in the account). */
#include "issuance.h"

#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "lockcert.h"
#include "log.h"
#include "util.h"
#include "vendor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYNC_PAGE 200

struct sync_run {
	size_t adapter; /* vendor_at() index */
	struct vendor *v;
	char *cursor;
	long certs;
	int more; /* the vendor has another page after the one being recorded */
	void (*done)(void);
	char *audit; /* JSON: audit_event_data() of "certificate.synced" */
};

/* The audit entry of a certificate the sync changed, without its object:
 * actor system:issuance; sync_page() adds object_id, uscc, before
 * and after. */
static char *
sync_audit_base(void)
{
	const struct audit_entry e = {"certificate.synced", "certificate", NULL,
	    NULL, NULL, NULL};
	json_t *d = audit_event_data(NULL, &e);
	char *text = json_dumps(d, JSON_COMPACT);

	json_decref(d);
	return text;
}

static void sync_next_adapter(struct sync_run *s);
static void sync_on_cursor(void *arg, const struct db_result *res);
static void sync_on_page(void *arg, const struct vendor_list_result *res);
static void sync_on_applied(void *arg, const struct db_result *res);
static void sync_on_logged(void *arg, const struct db_result *res);

static const char *
item_str(json_t *item, const char *key)
{
	const char *v = json_string_value(json_object_get(item, key));

	return v && *v ? v : NULL;
}

/* "{A,B}" of a JSON array of platform codes; *out NULL when absent (the
 * associations unknown, or unchanged for a known certificate); -1 when
 * malformed. */
static int
platforms_literal(json_t *arr, char **out)
{
	*out = NULL;
	if (arr == NULL || json_is_null(arr))
		return 0;
	*out = cert_platforms_literal(arr);
	return *out != NULL ? 0 : -1;
}

/* A listed revocation: reason one of issuance.cert.revoked's (absent:
 * unspecified), revoked_at an RFC 3339 time. 0 when absent or well formed. */
static int
revocation_ok(const char *at, const char *reason)
{
	static const char *const reasons[] = {"unspecified", "key_compromise",
	    "ca_compromise", "affiliation_changed", "superseded",
	    "cessation_of_operation"};
	struct tm tm;
	const char *end;
	size_t i;

	if (at == NULL)
		return reason == NULL ? 0 : -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(at, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	for (i = 0; reason != NULL && i < ARRAY_LEN(reasons); i++)
		if (strcmp(reason, reasons[i]) == 0)
			break;
	return reason == NULL || i < ARRAY_LEN(reasons) ? 0 : -1;
}

void
cert_sync_run(void (*done)(void))
{
	struct sync_run *s = xcalloc(1, sizeof(*s));

	s->done = done;
	s->adapter = (size_t)-1;
	s->audit = sync_audit_base();
	sync_next_adapter(s);
}

static void
sync_next_adapter(struct sync_run *s)
{
	s->adapter++;
	s->v = vendor_at(s->adapter);
	free(s->cursor);
	s->cursor = NULL;
	if (s->v == NULL) {
		void (*done)(void) = s->done;
		free(s->audit);
		free(s);
		done();
		return;
	}
	const char *p[] = {s->v->name};
	db_query(issuance.svc.db, store_sync_cursor_sql, 1, p, sync_on_cursor,
	    s);
}

static void
sync_ask(struct sync_run *s)
{
	const struct vendor_list_request r = {NULL, s->cursor, SYNC_PAGE};

	vendor_list(s->v, &r, sync_on_page, s);
}

static void
sync_on_cursor(void *arg, const struct db_result *res)
{
	struct sync_run *s = arg;

	if (res->status != DB_OK) {
		void (*done)(void) = s->done;
		free(s->cursor);
		free(s->audit);
		free(s);
		done(); /* the database is away: next tick */
		return;
	}
	if (db_rows(res, 0) == 1 && db_value(res, 0, 0, 0) != NULL)
		s->cursor = xstrdup(db_value(res, 0, 0, 0));
	sync_ask(s);
}

static void
put_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

/* Appends one listed item, parsed, to page (sync_page()'s p_items,
 * 101_sync_page.sql); -1 when malformed. */
static int
sync_add_item(json_t *page, const struct sync_run *s, json_t *item)
{
	const struct vendor *v = s->v;
	const char *pem = item_str(item, "certificate"), *kind, *holder, *uscc;
	char nb[48], na[48], lineage[37], cert_id[37], event_id[37];
	struct crypto_cert *cert = NULL;
	json_t *listed = json_object_get(item, "platforms"), *o;
	char *platforms;

	if (pem == NULL || crypto_cert_parse(&cert, pem, NULL) != 0)
		return -1;
	kind = item_str(item, "lock_kind") ? item_str(item, "lock_kind")
	                                   : cert->subject.ou;
	holder = item_str(item, "holder") ? item_str(item, "holder")
	                                  : cert->subject.cn;
	uscc = cert->subject.org_id;
	if (platforms_literal(listed, &platforms) != 0 ||
	    !lockcert_kind_valid(kind) || holder == NULL ||
	    revocation_ok(item_str(item, "revoked_at"),
	        item_str(item, "revocation_reason")) != 0) {
		free(platforms);
		crypto_cert_free(cert);
		return -1;
	}
	free(platforms); /* checked; the array itself goes along */
	if (strcmp(kind, "personal") == 0)
		uscc = NULL;
	time_rfc3339((int64_t)cert->not_before * 1000, nb);
	time_rfc3339((int64_t)cert->not_after * 1000, na);
	uuid_v4(lineage);
	uuid_v4(cert_id);
	uuid_v4(event_id);
	o = json_object();
	put_str(o, "lineage", lineage);
	put_str(o, "cert", cert_id);
	put_str(o, "event", event_id);
	put_str(o, "issuer", cert->issuer_dn);
	put_str(o, "serial", cert->serial);
	put_str(o, "vendor", v->name);
	put_str(o, "subject", cert->subject_dn);
	put_str(o, "fingerprint", cert->fingerprint_sha256);
	put_str(o, "spki", cert->spki_sha256);
	put_str(o, "key_type", crypto_key_type_name(cert->key_type));
	put_str(o, "not_before", nb);
	put_str(o, "not_after", na);
	put_str(o, "pem", cert->pem);
	put_str(o, "type", uscc ? "enterprise" : "personal");
	put_str(o, "lock_kind", kind);
	put_str(o, "holder", holder);
	put_str(o, "enterprise", uscc ? cert->subject.o : NULL);
	put_str(o, "uscc", uscc);
	json_object_set(o, "platforms",
	    json_is_array(listed) ? listed : json_null());
	put_str(o, "key_serial", item_str(item, "key_serial"));
	put_str(o, "key_vendor", item_str(item, "key_vendor"));
	put_str(o, "applied_at", item_str(item, "applied_at"));
	put_str(o, "revoked_at", item_str(item, "revoked_at"));
	put_str(o, "reason", item_str(item, "revocation_reason"));
	json_array_append_new(page, o);
	crypto_cert_free(cert);
	return 0;
}

static void
sync_on_page(void *arg, const struct vendor_list_result *res)
{
	struct sync_run *s = arg;
	struct db_batch *b;
	json_t *item, *page;
	size_t i, bad = 0;
	char n[24];

	if (res->status != VENDOR_OK) {
		if (res->status == VENDOR_UNAVAILABLE)
			log_warn(NULL,
			    "msg=vendor_sync_failed vendor=%s error=\"%s\"",
			    s->v->name, res->error);
		const char *p[] = {s->v->name, res->error};
		db_query(issuance.svc.db, store_sync_failed_sql, 2, p,
		    sync_on_logged, s);
		return;
	}
	b = db_batch_new();
	page = json_array();
	json_array_foreach(res->items, i, item)
	{
		if (sync_add_item(page, s, item) != 0)
			bad++;
	}
	if (json_array_size(page) > 0) {
		char *text = json_dumps(page, JSON_COMPACT);
		const char *pp[] = {text, s->audit};
		db_batch_add(b, store_sync_page_sql, 2, pp);
		free(text);
	}
	json_decref(page);
	if (bad > 0)
		log_warn(NULL, "msg=vendor_sync_skipped vendor=%s items=%zu",
		    s->v->name, bad);
	snprintf(n, sizeof(n), "%zu", json_array_size(res->items) - bad);
	s->certs += (long)(json_array_size(res->items) - bad);
	const char *p[] = {s->v->name,
	    res->next_cursor ? res->next_cursor : s->cursor, n};
	db_batch_add(b, store_sync_cursor_set_sql, 3, p);
	if (res->next_cursor != NULL) {
		free(s->cursor);
		s->cursor = xstrdup(res->next_cursor);
	}
	s->more = res->more && json_array_size(res->items) > 0;
	db_batch_run(issuance.svc.db, b, sync_on_applied, s);
}

static void
sync_on_applied(void *arg, const struct db_result *res)
{
	struct sync_run *s = arg;

	if (res->status != DB_OK) {
		log_error(NULL,
		    "msg=vendor_sync_record_failed vendor=%s error=\"%s\"",
		    s->v->name, res->message ? res->message : "");
		sync_next_adapter(s);
		return;
	}
	if (s->more) {
		sync_ask(s);
		return;
	}
	if (s->certs > 0)
		log_info(NULL, "msg=vendor_synced vendor=%s certs=%ld",
		    s->v->name, s->certs);
	s->certs = 0;
	sync_next_adapter(s);
}

static void
sync_on_logged(void *arg, const struct db_result *res)
{
	sync_next_adapter(arg);
}
