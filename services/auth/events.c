/* events — what auth learns from other services: the registry's
 * revocations (checked at CA login) and renewals (a renewed certificate
 * stays on its lock). Handlers run on the bus's consumer threads inside the
 * inbox transaction; they touch only their transaction. */
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
	return bus_tx_exec(tx,
	           "INSERT INTO revoked_certs (issuer, serial, reason, revoked_at)"
	           " VALUES ($1, $2, $3, COALESCE($4::timestamptz, now()))"
	           " ON CONFLICT (issuer, serial) DO NOTHING",
	           4, p) < 0
	    ? -1
	    : 0;
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
	if (bus_tx_query(tx,
	        "SELECT c.lock_id FROM lock_certs c JOIN locks l ON l.id = c.lock_id"
	        " WHERE c.issuer = $1 AND c.serial = $2 AND l.account_id IS NULL",
	        2, q, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) == 1)
		stray = xstrdup(bus_rows_value(rows, 0, 0));
	bus_rows_free(rows);
	const char *p[] = {issuer, serial, prev_issuer ? prev_issuer : issuer,
	    prev_serial, not_after};
	long n = bus_tx_exec(tx,
	    "INSERT INTO lock_certs (issuer, serial, lock_id, not_after)"
	    " SELECT $1, $2, lock_id, $5::timestamptz FROM lock_certs"
	    " WHERE issuer = $3 AND serial = $4"
	    " ON CONFLICT (issuer, serial) DO UPDATE SET lock_id = EXCLUDED.lock_id"
	    " WHERE lock_certs.lock_id <> EXCLUDED.lock_id"
	    " AND (SELECT account_id FROM locks WHERE id = lock_certs.lock_id) IS NULL",
	    5, p);
	if (n > 0 && stray != NULL) {
		const char *sp[] = {stray};
		n = bus_tx_exec(tx,
		    "DELETE FROM locks l WHERE l.id = $1 AND l.account_id IS NULL"
		    " AND NOT EXISTS (SELECT 1 FROM lock_certs c WHERE c.lock_id = l.id)",
		    1, sp);
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
