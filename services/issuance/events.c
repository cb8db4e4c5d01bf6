/* events — what issuance consumes and emits on the bus.
 *
 * Consumes: caplat.auth.lock.bound (the certificate on a newly bound key
 *   joins the registry), caplat.orders.order.paid (renewal entitlements),
 *   caplat.orders.order.created and .cancelled (orders awaiting payment;
 *   an item carrying `application` is a new certificate's application,
 *   issue 19: recorded in applications for newcert.c; cancelled closes it,
 *   045), caplat.orders.order.refunded (an application not yet sent to the
 *   vendor closes, 045), caplat.auth.identity.removed (the holder's open
 *   application for that enterprise's lock closes, 045),
 *   caplat.enterprise.record.approved (the approved name, for 自主变更:
 *   enterprise_records), caplat.orders.platform.listed (the platform
 *   catalogue's codes, which an
 *   import may name: a read model).
 * Emits (through the outbox, written by the PL/pgSQL functions of
 *   deploy/sql/issuance/002_functions.sql in the same transaction as the
 *   change): issuance.cert.registered (register_certificate, and
 *   sync_certificate for a certificate a vendor directory lists, sync.c,
 *   and again when the vendor lists it changed, 100_sync_updates.sql, with
 *   issuance.audit.recorded certificate.synced, and issuance.cert.revoked
 *   for one listed revoked at the vendor),
 *   issuance.cert.renewed (renewal_complete), issuance.cert.revoked
 *   (revoke_certificate), issuance.cert.cancelled (cancel_certificate,
 *   040_cancel.sql), issuance.cert.registered for a new certificate
 *   (application_complete, 040_new_application.sql);
 *   issuance.notice.requested (renewal.ready with
 *   the entitlements of a paid order, renewal_ready; cert.expiring and
 *   renewal.unused from the reminder pass, sweep.c) and
 *   issuance.cert.expiring (reminder_claim, 020_reminders.sql); import_merge
 *   (deploy/sql/issuance/091_import_compact_events.sql) emits
 *   issuance.certs.imported (up to 500 certificates each, one array per
 *   field) and
 *   issuance.audit.recorded.
 *
 * Handlers run on the bus's consumer threads inside the inbox transaction
 * and touch nothing else. */
#include "issuance.h"

#include "bus.h"
#include "crypto.h"
#include "lockcert.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int
serial_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= 64 && strspn(s, "0123456789ABCDEF") == n;
}

static int
bad_event(const struct bus_event *ev, const char *why)
{
	/* Redelivered, then dead-lettered: visible, counted, never dropped. */
	log_error(NULL, "msg=bad_event type=%s id=%s why=\"%s\"", ev->type,
	    ev->id, why);
	return -1;
}

/* auth.lock.bound: the certificate on a newly bound key. The PEM, when
 * present, is the authority on issuer, serial, validity and subject. */
static int
on_lock_bound(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *nested = json_object_get(d, "certificate");
	const char *pem = str(d, "certificate_pem");
	const char *kind =
	    str(d, "lock_kind") ? str(d, "lock_kind") : str(d, "kind");
	const char *account = str(d, "account_id"), *lock = str(d, "lock_id");
	const char *issuer, *serial, *holder, *enterprise, *uscc, *nb, *na;
	char nb_buf[48], na_buf[48], lineage[37], cert_id[37], event_id[37];
	struct crypto_cert *cert = NULL;
	struct bus_rows *rows = NULL;
	char *vendor;
	int rc;

	if (pem == NULL)
		pem = str(nested, "certificate_pem")
		    ? str(nested, "certificate_pem")
		    : str(nested, "pem");
	if (pem != NULL && crypto_cert_parse(&cert, pem, NULL) != 0)
		return bad_event(ev, "certificate does not parse");
	if (cert != NULL) {
		issuer = cert->issuer_dn;
		serial = cert->serial;
		holder = cert->subject.cn ? cert->subject.cn : str(d, "holder");
		enterprise = cert->subject.o;
		uscc = cert->subject.org_id;
		time_rfc3339((int64_t)cert->not_before * 1000, nb_buf);
		time_rfc3339((int64_t)cert->not_after * 1000, na_buf);
		nb = nb_buf;
		na = na_buf;
	} else {
		issuer =
		    str(d, "issuer") ? str(d, "issuer") : str(nested, "issuer");
		serial =
		    str(d, "serial") ? str(d, "serial") : str(nested, "serial");
		holder = str(d, "holder");
		enterprise = str(d, "enterprise_name");
		uscc = str(d, "uscc");
		na = str(d, "not_after") ? str(d, "not_after")
		                         : str(nested, "not_after");
		nb = str(d, "not_before") ? str(d, "not_before")
		                          : str(nested, "not_before");
		if (nb == NULL)
			nb = ev->time; /* unknown: from the binding on */
	}
	if (!lockcert_kind_valid(kind) || !serial_ok(serial) ||
	    issuer == NULL || holder == NULL || na == NULL || nb == NULL ||
	    (account && !uuid_valid(account)) || (lock && !uuid_valid(lock))) {
		crypto_cert_free(cert);
		return bad_event(ev,
		    "missing or malformed lock_kind, serial, issuer, holder,"
		    " not_after, account_id or lock_id");
	}
	if (strcmp(kind, "personal") == 0)
		enterprise = uscc = NULL;
	vendor = str(d, "vendor") ? xstrdup(str(d, "vendor"))
	                          : issuance_vendor_of(issuer);
	uuid_v4(lineage);
	uuid_v4(cert_id);
	uuid_v4(event_id);
	const char *p[] = {lineage, cert_id, event_id, issuer, serial, vendor,
	    cert ? cert->subject_dn : NULL,
	    cert ? cert->fingerprint_sha256 : str(d, "fingerprint_sha256"),
	    cert ? cert->spki_sha256 : NULL,
	    cert ? crypto_key_type_name(cert->key_type) : NULL, nb, na,
	    cert ? cert->pem : NULL, uscc ? "enterprise" : "personal", kind,
	    holder, enterprise, uscc, lock, account,
	    NULL}; /* platforms: unknown until an import or a renewal */
	rc = bus_tx_query(tx, store_register_sql, 21, p, &rows);
	if (rc == 0 && bus_rows_count(rows) == 1 &&
	    strcmp(bus_rows_value(rows, 0, 1), "t") == 0)
		log_info(NULL,
		    "msg=cert_registered cert_id=%s serial=%s vendor=%s",
		    bus_rows_value(rows, 0, 0), serial, vendor);
	if (rc != 0)
		log_error(NULL, "msg=register_failed event=%s error=\"%s\"",
		    ev->id, bus_tx_error(tx));
	bus_rows_free(rows);
	free(vendor);
	crypto_cert_free(cert);
	return rc == 0 ? 0 : -1;
}

/* orders.order.paid: one renewal entitlement per item, with its platforms. */
static int
on_order_paid(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *items = json_object_get(d, "items"), *item;
	const char *order = str(d, "order_id"), *account = str(d, "account_id");
	const char *paid_at = str(d, "paid_at") ? str(d, "paid_at") : ev->time;
	size_t i;

	if (order == NULL || !uuid_valid(order) || !json_is_array(items) ||
	    json_array_size(items) == 0 || paid_at == NULL ||
	    (account != NULL && !uuid_valid(account)))
		return bad_event(ev,
		    "missing or malformed order_id, items or paid_at");
	json_array_foreach(items, i, item)
	{
		const char *cert = str(item, "cert_id");
		char *platforms =
		    cert_platforms_literal(json_object_get(item, "platforms"));

		if (cert == NULL || !uuid_valid(cert) || platforms == NULL) {
			free(platforms);
			return bad_event(ev,
			    "an item lacks cert_id or platforms");
		}
		const char *p[] = {order, str(d, "number"), account, cert,
		    platforms, paid_at};
		long rc = bus_tx_exec(tx, store_entitlement_insert_sql, 6, p);
		free(platforms);
		if (rc < 0)
			return -1;
	}
	const char *p[] = {order};
	if (bus_tx_exec(tx, store_open_order_delete_sql, 1, p) < 0)
		return -1;
	/* Each holder is told which certificate to update on the key. */
	if (bus_tx_exec(tx, store_renewal_ready_sql, 1, p) < 0)
		return -1;
	log_info(NULL, "msg=renewals_paid order=%s items=%zu", order,
	    json_array_size(items));
	return 0;
}

static int application_record(struct bus_tx *tx, const char *order,
    const char *placer, const char *cert, json_t *app, json_t *platforms);

static int
on_order_created(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *items = json_object_get(d, "items"), *item;
	const char *order = str(d, "order_id");
	size_t i;

	if (order == NULL || !uuid_valid(order) || !json_is_array(items))
		return bad_event(ev, "missing or malformed order_id or items");
	json_array_foreach(items, i, item)
	{
		const char *cert = str(item, "cert_id");

		if (cert == NULL || !uuid_valid(cert))
			return bad_event(ev, "an item lacks cert_id");
		const char *p[] = {order, cert};
		if (bus_tx_exec(tx, store_open_order_insert_sql, 2, p) < 0)
			return -1;
		if (json_is_object(json_object_get(item, "application")) &&
		    application_record(tx, order, str(d, "account_id"), cert,
		        json_object_get(item, "application"),
		        json_object_get(item, "platforms")) != 0)
			return -1;
	}
	return 0;
}

/* enterprise.record.approved (issue 19): the enterprise's approved name,
 * the subject a 自主变更 re-issue must carry (change.c). */
static int
on_record_approved(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *seq = json_object_get(d, "seq");
	const char *uscc = str(d, "uscc"), *record = str(d, "record_id"),
	           *name = str(d, "name");
	char seq_s[24];

	if (uscc == NULL || record == NULL || !uuid_valid(record) ||
	    name == NULL || !json_is_integer(seq))
		return bad_event(ev, "uscc/record_id/name/seq");
	snprintf(seq_s, sizeof(seq_s), "%lld",
	    (long long)json_integer_value(seq));
	const char *p[] = {uscc, record, seq_s, name, str(d, "approved_at")};
	return bus_tx_exec(tx, store_enterprise_record_sql, 5, p) < 0 ? -1 : 0;
}

/* The application of a new certificate (an orders.order.created item's
 * `application`, issue 19): recorded once, to be issued after payment. */
static int
application_record(struct bus_tx *tx, const char *order, const char *placer,
    const char *cert, json_t *app, json_t *platforms)
{
	json_t *subject = json_object_get(app, "subject");
	const char *holder_account = str(app, "holder_account_id");
	const char *replaces = str(app, "replaces_cert_id");
	char *subject_text, *literal;
	int rc;

	if (!json_is_object(subject) || holder_account == NULL ||
	    !uuid_valid(holder_account) ||
	    !lockcert_kind_valid(str(app, "lock_kind")) ||
	    str(app, "holder") == NULL || str(app, "type") == NULL ||
	    placer == NULL || !uuid_valid(placer) ||
	    (replaces != NULL && !uuid_valid(replaces)) ||
	    (literal = cert_platforms_literal(platforms)) == NULL) {
		log_error(NULL, "msg=bad_application order=%s cert_id=%s",
		    order, cert);
		return -1;
	}
	subject_text = json_dumps(subject, JSON_COMPACT);
	const char *p[] = {cert, order, placer, holder_account,
	    str(app, "type"), str(app, "lock_kind"), str(app, "holder"),
	    str(app, "enterprise_name"), str(app, "uscc"), subject_text,
	    literal, replaces};
	rc = bus_tx_exec(tx, store_application_insert_sql, 12, p) < 0 ? -1 : 0;
	free(subject_text);
	free(literal);
	return rc;
}

static int
on_order_cancelled(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *order = str(ev->data, "order_id");

	if (order == NULL || !uuid_valid(order))
		return bad_event(ev, "missing or malformed order_id");
	const char *p[] = {order};
	if (bus_tx_exec(tx, store_open_order_delete_sql, 1, p) < 0)
		return -1;
	/* a new certificate's application of that order closes (045) */
	const char *status = str(ev->data, "status");
	const char *pc[] = {order,
	    status && strcmp(status, "expired") == 0 ? "order_expired"
	                                             : "order_cancelled"};
	return bus_tx_exec(tx, store_application_close_sql, 2, pc) < 0 ? -1 : 0;
}

/* orders.order.refunded: refunded in full before the holder sent the CSR,
 * the application closes; pending at the vendor or issued, it stays (an
 * issued certificate is not revoked by a refund: 注销 ends it). */
static int
on_order_refunded(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *order = str(ev->data, "order_id");

	if (order == NULL || !uuid_valid(order))
		return bad_event(ev, "missing or malformed order_id");
	const char *p[] = {order, "order_refunded"};
	return bus_tx_exec(tx, store_application_close_sql, 2, p) < 0 ? -1 : 0;
}

/* auth.identity.removed: the holder no longer acts for the enterprise in
 * that role; their application for its lock closes (045). A personal
 * identity (no USCC) closes nothing. */
static int
on_identity_removed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *account = str(ev->data, "account_id");
	const char *uscc = str(ev->data, "uscc"), *role = str(ev->data, "role");

	if (account == NULL || !uuid_valid(account))
		return bad_event(ev, "missing or malformed account_id");
	if (uscc == NULL || role == NULL)
		return 0;
	const char *p[] = {account, uscc, role};
	return bus_tx_exec(tx, store_application_close_for_holder_sql, 3, p) < 0
	    ? -1
	    : 0;
}

/* orders.platform.listed: a platform of the catalogue, its code and
 * whether it is active. */
static int
on_platform_listed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *code = str(ev->data, "code"), *name = str(ev->data, "name");
	json_t *active = json_object_get(ev->data, "active");

	if (code == NULL || !cert_platform_code_ok(code) || name == NULL ||
	    !json_is_boolean(active))
		return bad_event(ev,
		    "missing or malformed code, name or active");
	const char *p[] = {code, name, json_is_true(active) ? "t" : "f"};
	return bus_tx_exec(tx, store_platform_listed_sql, 3, p) < 0 ? -1 : 0;
}

void
issuance_events_subscribe(void)
{
	static const struct {
		const char *durable, *subject;
		bus_handler_fn fn;
	} subs[] = {
	    {"issuance-lock-bound", "caplat.auth.lock.bound", on_lock_bound},
	    {"issuance-order-paid", "caplat.orders.order.paid", on_order_paid},
	    {"issuance-order-created", "caplat.orders.order.created",
	        on_order_created},
	    {"issuance-order-cancelled", "caplat.orders.order.cancelled",
	        on_order_cancelled},
	    {"issuance-order-refunded", "caplat.orders.order.refunded",
	        on_order_refunded},
	    {"issuance-identity-removed", "caplat.auth.identity.removed",
	        on_identity_removed},
	    {"issuance-platform-listed", "caplat.orders.platform.listed",
	        on_platform_listed},
	    {"issuance-record-approved", "caplat.enterprise.record.approved",
	        on_record_approved},
	};

	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (bus_subscribe(issuance.svc.bus, subs[i].durable,
		        subs[i].subject, 5, subs[i].fn, NULL) != 0)
			fatal("cannot subscribe %s", subs[i].durable);
}
