/* events — what auth consumes and emits on the bus.
 *
 * Consumes: caplat.issuance.cert.revoked (kept to refuse the certificate at
 *   CA login) and caplat.issuance.cert.renewed (a renewed certificate stays
 *   on its lock).
 * Emits (through the outbox, in the same transaction as the change):
 *   auth.account.registered and auth.identity.added (handlers.c, and
 *   bind_lock() for a new account), auth.lock.bound (bind_lock(),
 *   deploy/sql/auth/003_lock_bound_event.sql).
 *
 * Handlers run on the bus's consumer threads inside the inbox transaction;
 * they touch only their transaction. */
#include "auth.h"

#include "bus.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int
on_cert_revoked(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *issuer =
	    json_string_value(json_object_get(ev->data, "issuer"));
	const char *serial =
	    json_string_value(json_object_get(ev->data, "serial"));
	const char *reason =
	    json_string_value(json_object_get(ev->data, "reason"));
	const char *at =
	    json_string_value(json_object_get(ev->data, "revoked_at"));

	if (issuer == NULL || serial == NULL) {
		log_error(NULL,
		    "msg=bad_event type=%s id=%s missing=issuer/serial",
		    ev->type, ev->id);
		return -1; /* dead-lettered after max_deliver: visible, not lost */
	}
	const char *p[] = {issuer, serial, reason, at ? at : ev->time};
	return bus_tx_exec(tx, store_revoked_insert_sql, 4, p) < 0 ? -1 : 0;
}

/* A renewed certificate joins the lock of the certificate it replaces. The
 * holder may have tried the new certificate before this event arrived: that
 * login saw an unknown certificate and gave it a fresh, unbound lock. Such a
 * lock is folded into the lineage's lock here (a bound one is left alone). */
static int
on_cert_renewed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *issuer = json_string_value(json_object_get(d, "issuer"));
	const char *serial = json_string_value(json_object_get(d, "serial"));
	const char *prev_issuer =
	    json_string_value(json_object_get(d, "previous_issuer"));
	const char *prev_serial =
	    json_string_value(json_object_get(d, "previous_serial"));
	const char *not_after =
	    json_string_value(json_object_get(d, "not_after"));
	struct bus_rows *rows = NULL;
	char *stray = NULL;

	if (issuer == NULL || serial == NULL || prev_serial == NULL ||
	    not_after == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const char *q[] = {issuer, serial};
	if (bus_tx_query(tx, store_unbound_lock_of_cert_sql, 2, q, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) == 1)
		stray = xstrdup(bus_rows_value(rows, 0, 0));
	bus_rows_free(rows);
	const char *p[] = {issuer, serial, prev_issuer ? prev_issuer : issuer,
	    prev_serial, not_after};
	long n = bus_tx_exec(tx, store_lock_cert_renewed_sql, 5, p);
	if (n > 0 && stray != NULL) {
		const char *sp[] = {stray};
		n = bus_tx_exec(tx, store_stray_lock_delete_sql, 1, sp);
		if (n > 0)
			log_info(NULL,
			    "msg=stray_lock_folded lock=%s serial=%s", stray,
			    serial);
	}
	free(stray);
	return n < 0 ? -1 : 0;
}

void
auth_events_subscribe(void)
{
	if (bus_subscribe(auth.svc.bus, "auth-cert-revoked",
	        "caplat.issuance.cert.revoked", 5, on_cert_revoked,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-cert-renewed",
	        "caplat.issuance.cert.renewed", 5, on_cert_renewed, NULL) != 0)
		log_error(NULL, "msg=subscribe_failed");
}
