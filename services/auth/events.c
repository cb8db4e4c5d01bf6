/* events — what auth learns from other services: the registry's
 * revocations (checked at CA login) and renewals (a renewed certificate
 * stays on its lock). Handlers run on the bus's consumer threads inside the
 * inbox transaction; they touch only their transaction. */
#include "auth.h"

#include "bus.h"
#include "log.h"

#include <string.h>

static int
on_cert_revoked(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *issuer = json_string_value(json_object_get(ev->data, "issuer"));
	const char *serial = json_string_value(json_object_get(ev->data, "serial"));
	const char *reason = json_string_value(json_object_get(ev->data, "reason"));
	const char *at = json_string_value(json_object_get(ev->data, "revoked_at"));

	if (issuer == NULL || serial == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s missing=issuer/serial", ev->type, ev->id);
		return -1; /* dead-lettered after max_deliver: visible, not lost */
	}
	const char *p[] = {issuer, serial, reason, at ? at : ev->time};
	return bus_tx_exec(tx,
	    "INSERT INTO revoked_certs (issuer, serial, reason, revoked_at)"
	    " VALUES ($1, $2, $3, COALESCE($4::timestamptz, now()))"
	    " ON CONFLICT (issuer, serial) DO NOTHING", 4, p) < 0 ? -1 : 0;
}

/* A renewed certificate joins the lock of the certificate it replaces. */
static int
on_cert_renewed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *issuer = json_string_value(json_object_get(d, "issuer"));
	const char *serial = json_string_value(json_object_get(d, "serial"));
	const char *prev_issuer = json_string_value(json_object_get(d, "previous_issuer"));
	const char *prev_serial = json_string_value(json_object_get(d, "previous_serial"));
	const char *not_after = json_string_value(json_object_get(d, "not_after"));

	if (issuer == NULL || serial == NULL || prev_serial == NULL || not_after == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type, ev->id);
		return -1;
	}
	const char *p[] = {issuer, serial, prev_issuer ? prev_issuer : issuer, prev_serial, not_after};
	return bus_tx_exec(tx,
	    "INSERT INTO lock_certs (issuer, serial, lock_id, not_after)"
	    " SELECT $1, $2, lock_id, $5::timestamptz FROM lock_certs"
	    " WHERE issuer = $3 AND serial = $4"
	    " ON CONFLICT (issuer, serial) DO NOTHING", 5, p) < 0 ? -1 : 0;
}

void
auth_events_subscribe(void)
{
	if (bus_subscribe(auth.svc.bus, "auth-cert-revoked", "caplat.issuance.cert.revoked", 5,
	    on_cert_revoked, NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-cert-renewed", "caplat.issuance.cert.renewed", 5,
	    on_cert_renewed, NULL) != 0)
		log_error(NULL, "msg=subscribe_failed");
}
