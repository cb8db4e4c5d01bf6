/* events — what orders consumes from the other services and what it emits.
 *
 * Consumes (durable consumers, subscribed by orders_events_subscribe):
 *   auth.identity.added, auth.identity.removed (045: the identity leaves
 *   identities, kept in removed_identities), enterprise.profile.completed,
 *   enterprise.record.approved, issuance.cert.registered (and
 *   issuance.certs.imported, the same for up to 500 certificates),
 *   issuance.cert.revoked  → the read models eligibility is checked against;
 *   issuance.cert.expiring → gathered for the enterprise's daily expiry
 *                            digest (digest.c);
 *   issuance.cert.renewed  → the item is renewed; the last one fulfils the
 *                            order;
 *   payments.payment.succeeded → the order is paid, or the payment is
 *                            recorded and flagged for refund when it cannot
 *                            be (late, duplicate, wrong amount, unknown);
 *   payments.payment.refunded  → the order (or the flagged payment) is
 *                            refunded.
 * Emits (outbox rows in the transaction of the change):
 *   orders.order.created   — handlers.c, with the new order (bus_outbox_add);
 *   orders.order.cancelled — store.c, in SQL through outbox_emit(): the
 *                            holder's cancel (status cancelled), the
 *                            sweep's expiry (status expired), and here the
 *                            unpaid applications of a removed identity;
 *   orders.order.paid      — here, when a payment pays the order;
 *   orders.order.fulfilled — here, when the last item is renewed;
 *   orders.order.refunded  — here, when a full refund of the applied payment
 *                            refunds a paid or fulfilled order (045);
 *   orders.notice.requested — in SQL (deploy/sql/orders/020_notices.sql):
 *                            the expiry digest (digest.c) and order.expiring
 *                            (sweep.c).
 * Handlers run on the bus's consumer threads inside the inbox transaction
 * and touch only that transaction (bus.h); events they emit are outbox rows
 * of the same transaction (bus_tx_emit). */
#include "orders.h"

#include "bus.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DELIVER 5

static const char *
str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Logs a malformed event; the handler then fails so that it ends in the
 * dead-letter table after MAX_DELIVER tries: visible, never silently lost. */
static int
bad_event(const struct bus_event *ev, const char *what)
{
	log_error(NULL, "msg=bad_event type=%s id=%s missing=%s", ev->type,
	    ev->id, what);
	return -1;
}

/* The time of the change: the data's own field, else the envelope's. */
static const char *
event_time(const struct bus_event *ev, const char *field)
{
	const char *t = ev->data ? str(ev->data, field) : NULL;

	return t != NULL ? t : ev->time;
}

/* bus_tx_exec for a handler's last statement: 0, or -1 on error. */
static int
exec_sql(struct bus_tx *tx, const char *sql, int n, const char *const *p)
{
	return bus_tx_exec(tx, sql, n, p) < 0 ? -1 : 0;
}

/* The JSON text of a string array field (borrowed check, new string). */
static char *
array_text(json_t *obj, const char *key)
{
	json_t *a = json_object_get(obj, key);

	return json_is_array(a) ? json_dumps(a, JSON_COMPACT) : NULL;
}

/* ---- read models ------------------------------------------------------- */

static int
on_identity_added(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *id = str(d, "identity_id"), *account = str(d, "account_id");
	const char *type = str(d, "type");

	if (id == NULL || account == NULL || type == NULL)
		return bad_event(ev, "identity_id/account_id/type");
	const char *pl[] = {id};
	if (exec_sql(tx, store_identity_lock_sql, 1, pl) != 0)
		return -1;
	const char *p[] = {id, account, type, str(d, "enterprise_name"),
	    str(d, "uscc"), str(d, "role"), event_time(ev, "added_at")};
	return exec_sql(tx, store_identity_upsert_sql, 7, p);
}

/* auth.identity.removed: the identity grants nothing from now on; an
 * application for that member is refused (MEMBER_NOT_FOUND), and their
 * unpaid applications for that enterprise's lock are cancelled. */
static int
on_identity_removed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *id = str(d, "identity_id"), *account = str(d, "account_id");
	const char *reason = str(d, "reason");

	if (id == NULL || account == NULL || reason == NULL)
		return bad_event(ev, "identity_id/account_id/reason");
	const char *pl[] = {id};
	if (exec_sql(tx, store_identity_lock_sql, 1, pl) != 0)
		return -1;
	const char *p[] = {id, account, str(d, "uscc"), str(d, "role"), reason,
	    event_time(ev, "removed_at")};
	if (exec_sql(tx, store_identity_removed_sql, 6, p) != 0)
		return -1;
	if (str(d, "uscc") == NULL || str(d, "role") == NULL)
		return 0; /* a personal identity: the person may still apply */
	const char *pc[] = {account, str(d, "uscc"), str(d, "role")};
	return exec_sql(tx, store_identity_orders_cancel_sql, 3, pc);
}

static int
on_profile_completed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *account = str(ev->data, "account_id"),
	           *name = str(ev->data, "name");

	if (account == NULL || name == NULL)
		return bad_event(ev, "account_id/name");
	const char *p[] = {account, name, event_time(ev, "completed_at")};
	return exec_sql(tx, store_profile_upsert_sql, 3, p);
}

static int
on_record_approved(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *uscc = str(d, "uscc"), *record = str(d, "record_id"),
	           *name = str(d, "name");
	json_t *seq = json_object_get(d, "seq");
	char seq_s[24];

	if (uscc == NULL || record == NULL || name == NULL ||
	    !json_is_integer(seq))
		return bad_event(ev, "uscc/record_id/name/seq");
	snprintf(seq_s, sizeof(seq_s), "%lld",
	    (long long)json_integer_value(seq));
	const char *p[] = {uscc, record, seq_s, name,
	    event_time(ev, "approved_at")};
	return exec_sql(tx, store_enterprise_approved_sql, 5, p);
}

static int order_maybe_fulfil(struct bus_tx *tx, const char *order_id);

/* A new certificate's application (issue 19) is done when its certificate
 * is registered: its item (cert_id = the new certificate's) is marked like a
 * renewed one and the order fulfilled when all its items are. registered_at
 * is when (RFC 3339). */
static int
new_cert_issued(struct bus_tx *tx, const char *cert, const char *serial,
    const char *registered_at)
{
	struct bus_rows *rows = NULL, *locked = NULL;
	char order[37];
	long n;

	const char *p[] = {cert};
	if (bus_tx_query(tx, store_new_cert_item_sql, 1, p, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) == 0) {
		bus_rows_free(rows);
		return 0;
	}
	snprintf(order, sizeof(order), "%s", bus_rows_value(rows, 0, 0));
	bus_rows_free(rows);
	const char *po[] = {order};
	if (bus_tx_query(tx, store_order_lock_sql, 1, po, &locked) != 0)
		return -1;
	bus_rows_free(locked);
	const char *pi[] = {order, cert, registered_at, serial};
	if ((n = bus_tx_exec(tx, store_item_renewed_sql, 4, pi)) <= 0)
		return n < 0 ? -1 : 0;
	return order_maybe_fulfil(tx, order);
}

/* The fields issuance.cert.registered (and each certificate of
 * issuance.certs.imported) must carry: 0 when they are there. */
static int
cert_registered_complete(json_t *d)
{
	json_t *platforms = json_object_get(d, "platforms");

	return str(d, "cert_id") != NULL && str(d, "serial") != NULL &&
	        str(d, "type") != NULL && str(d, "lock_kind") != NULL &&
	        str(d, "not_before") != NULL && str(d, "not_after") != NULL &&
	        (json_is_array(platforms) || json_is_null(platforms))
	    ? 0
	    : -1;
}

static int
on_cert_registered(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	char *platforms = array_text(d, "platforms");
	long n;

	/* platforms null: the associations are unknown (issue 13). */
	if (cert_registered_complete(d) != 0 ||
	    (platforms == NULL &&
	        !json_is_null(json_object_get(d, "platforms")))) {
		free(platforms);
		return bad_event(ev,
		    "cert_id/serial/type/lock_kind/validity/platforms");
	}
	const char *p[] = {str(d, "cert_id"), str(d, "serial"), str(d, "type"),
	    str(d, "holder"), str(d, "enterprise_name"), str(d, "uscc"),
	    str(d, "lock_kind"), str(d, "vendor"), str(d, "account_id"),
	    str(d, "not_before"), str(d, "not_after"), platforms};
	n = bus_tx_exec(tx, store_cert_registered_sql, 12, p);
	free(platforms);
	if (n < 0)
		return -1;
	return new_cert_issued(tx, str(d, "cert_id"), str(d, "serial"),
	    event_time(ev, "registered_at"));
}

/* An issuance.certs.imported of one array per field (issuance 091): each
 * field orders reads is an array of `count` elements, strings (or null
 * where issuance.cert.registered allows it; platforms arrays or null): 0
 * when they are. */
static int
certs_columns_complete(json_t *d)
{
	static const struct {
		const char *name;
		int nullable;
	} fields[] = {{"cert_id", 0}, {"serial", 0}, {"type", 0},
	    {"lock_kind", 0}, {"not_before", 0}, {"not_after", 0},
	    {"holder", 1}, {"enterprise_name", 1}, {"uscc", 1}, {"vendor", 1},
	    {"account_id", 1}, {"registered_at", 1}};
	json_int_t count = json_integer_value(json_object_get(d, "count"));
	json_t *a, *v;
	size_t i;

	if (count < 1)
		return -1;
	for (size_t f = 0; f < ARRAY_LEN(fields); f++) {
		a = json_object_get(d, fields[f].name);
		if (json_array_size(a) != (size_t)count)
			return -1;
		json_array_foreach(a, i, v)
		{
			if (!json_is_string(v) &&
			    !(fields[f].nullable && json_is_null(v)))
				return -1;
		}
	}
	a = json_object_get(d, "platforms");
	if (json_array_size(a) != (size_t)count)
		return -1;
	json_array_foreach(a, i, v)
	{
		if (!json_is_array(v) && !json_is_null(v))
			return -1;
	}
	return 0;
}

/* issuance.certs.imported of one array per field: as below, in one
 * statement. */
static int
on_certs_imported_columns(struct bus_tx *tx, const struct bus_event *ev)
{
	json_t *d = ev->data, *ids = json_object_get(d, "cert_id");
	struct bus_rows *rows = NULL;
	size_t i;
	char *text;
	int rc = 0;

	if (certs_columns_complete(d) != 0)
		return bad_event(ev,
		    "count/cert_id/serial/type/lock_kind/validity/platforms");
	text = json_dumps(d, JSON_COMPACT);
	const char *p[] = {text};
	if (bus_tx_exec(tx, store_certs_imported_cols_sql, 1, p) < 0 ||
	    bus_tx_query(tx, store_new_cert_items_cols_sql, 1, p, &rows) != 0)
		rc = -1;
	free(text);
	for (long r = 0; rc == 0 && r < bus_rows_count(rows); r++)
		for (i = 0; i < json_array_size(ids); i++) {
			const char *at = json_string_value(
			    json_array_get(json_object_get(d, "registered_at"),
			        i));

			if (strcmp(json_string_value(json_array_get(ids, i)),
			        bus_rows_value(rows, r, 0)) != 0)
				continue;
			rc = new_cert_issued(tx, bus_rows_value(rows, r, 0),
			    json_string_value(
			        json_array_get(json_object_get(d, "serial"),
			            i)),
			    at ? at : ev->time);
			break;
		}
	bus_rows_free(rows);
	return rc;
}

/* issuance.certs.imported: up to 500 certificates of an import, applied in
 * one statement; then the new-certificate items among them (usually none),
 * one by one. The data are one array per field (issuance 091); an event
 * written before it (in flight during an upgrade) has "certs", each as
 * issuance.cert.registered would carry it. */
static int
on_certs_imported(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *certs = json_object_get(ev->data, "certs"), *d;
	struct bus_rows *rows = NULL;
	size_t i;
	char *text;
	int rc = 0;

	if (!json_is_array(certs))
		return on_certs_imported_columns(tx, ev);
	json_array_foreach(certs, i, d)
	{
		if (cert_registered_complete(d) != 0)
			return bad_event(ev,
			    "certs[].cert_id/serial/type/"
			    "lock_kind/validity/platforms");
	}
	text = json_dumps(certs, JSON_COMPACT);
	const char *p[] = {text};
	if (bus_tx_exec(tx, store_certs_imported_sql, 1, p) < 0 ||
	    bus_tx_query(tx, store_new_cert_items_sql, 1, p, &rows) != 0)
		rc = -1;
	free(text);
	for (long r = 0; rc == 0 && r < bus_rows_count(rows); r++)
		json_array_foreach(certs, i, d)
		{
			if (strcmp(str(d, "cert_id"),
			        bus_rows_value(rows, r, 0)) != 0)
				continue;
			rc = new_cert_issued(tx, str(d, "cert_id"),
			    str(d, "serial"),
			    str(d, "registered_at") ? str(d, "registered_at")
			                            : ev->time);
			break;
		}
	bus_rows_free(rows);
	return rc;
}

static int
on_cert_revoked(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *cert = str(ev->data, "cert_id");

	if (cert == NULL)
		return bad_event(ev, "cert_id");
	const char *p[] = {cert, str(ev->data, "serial"),
	    str(ev->data, "reason"), event_time(ev, "revoked_at")};
	return exec_sql(tx, store_cert_revoked_sql, 4, p);
}

/* issuance.cert.expiring: an enterprise certificate entered a reminder
 * stage; the digest (digest.c) picks it up. */
static int
on_cert_expiring(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *stage = json_object_get(d, "stage");
	json_t *platforms = json_object_get(d, "platforms");
	char stage_s[24], *plat = NULL;
	int rc;

	if (str(d, "cert_id") == NULL || str(d, "uscc") == NULL ||
	    str(d, "serial") == NULL || str(d, "not_after") == NULL ||
	    !json_is_integer(stage))
		return bad_event(ev, "cert_id, uscc, serial, not_after, stage");
	snprintf(stage_s, sizeof(stage_s), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(stage));
	if (json_is_array(platforms))
		plat = json_dumps(platforms, JSON_COMPACT);
	const char *p[] = {str(d, "cert_id"), stage_s, str(d, "uscc"),
	    str(d, "serial"), str(d, "holder_name"), str(d, "not_after"), plat};
	rc = exec_sql(tx, store_expiring_insert_sql, 7, p);
	free(plat);
	if (rc == 0)
		order_digest_kick(); /* due in the gather time, after the commit */
	return rc;
}

/* ---- renewals: items done, orders fulfilled ---------------------------- */

/* Emits orders.order.fulfilled when every item of the (locked) order is
 * renewed now. */
static int
order_maybe_fulfil(struct bus_tx *tx, const char *order_id)
{
	const char *p[] = {order_id};
	struct bus_rows *done = NULL, *items = NULL;
	json_t *list, *data;
	int rc;

	if (bus_tx_query(tx, store_order_fulfilled_sql, 1, p, &done) != 0)
		return -1;
	if (bus_rows_count(done) == 0) {
		bus_rows_free(done);
		return 0;
	}
	if (bus_tx_query(tx, store_order_items_sql, 1, p, &items) != 0) {
		bus_rows_free(done);
		return -1;
	}
	list = json_array();
	for (int r = 0; r < bus_rows_count(items); r++)
		json_array_append_new(list,
		    json_pack("{s:s, s:s}", "cert_id",
		        bus_rows_value(items, r, 0), "serial",
		        bus_rows_value(items, r, 3)
		            ? bus_rows_value(items, r, 3)
		            : ""));
	data = json_pack("{s:s, s:s, s:o, s:s}", "order_id", order_id, "number",
	    bus_rows_value(done, 0, 0), "items", list, "fulfilled_at",
	    bus_rows_value(done, 0, 1));
	rc = bus_tx_emit(tx, "orders.order.fulfilled", order_id, data);
	if (rc == 0) {
		atomic_fetch_add(&orders.n.fulfilled, 1);
		log_info(NULL, "msg=order_fulfilled order=%s", order_id);
	}
	json_decref(data);
	bus_rows_free(done);
	bus_rows_free(items);
	return rc;
}

static int
on_cert_renewed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *cert = str(d, "cert_id"), *serial = str(d, "serial");
	const char *order = str(d, "order_id");
	char *platforms = array_text(d, "platforms");
	struct bus_rows *locked = NULL;
	long n;

	if (cert == NULL || serial == NULL || order == NULL ||
	    str(d, "lock_kind") == NULL || str(d, "not_before") == NULL ||
	    str(d, "not_after") == NULL || platforms == NULL) {
		free(platforms);
		return bad_event(ev,
		    "cert_id/serial/order_id/lock_kind/validity/platforms");
	}
	const char *pc[] = {cert, serial, str(d, "uscc"), str(d, "lock_kind"),
	    str(d, "account_id"), str(d, "not_before"), str(d, "not_after"),
	    platforms};
	n = bus_tx_exec(tx, store_cert_renewed_sql, 8, pc);
	free(platforms);
	if (n < 0)
		return -1;
	/* Lock the order first: two items renewed at once in two processes
	 * then see each other's renewal, and exactly one fulfils. */
	const char *po[] = {order};
	if (bus_tx_query(tx, store_order_lock_sql, 1, po, &locked) != 0)
		return -1;
	n = bus_rows_count(locked);
	bus_rows_free(locked);
	if (n == 0) {
		log_warn(NULL, "msg=renewal_for_unknown_order order=%s cert=%s",
		    order, cert);
		return 0;
	}
	const char *pi[] = {order, cert, event_time(ev, "renewed_at"), serial};
	if ((n = bus_tx_exec(tx, store_item_renewed_sql, 4, pi)) < 0)
		return -1;
	if (n == 0)
		return 0; /* not an item of this order, or renewed already */
	return order_maybe_fulfil(tx, order);
}

/* ---- payments ---------------------------------------------------------- */

/* Emits orders.order.paid with each certificate's platform set. */
static int
emit_paid(struct bus_tx *tx, const char *order_id, const char *number,
    const char *account_id, const char *payment_id, const char *total_fen,
    const char *paid_at)
{
	const char *p[] = {order_id};
	struct bus_rows *items = NULL;
	json_t *list, *data;
	int rc;

	if (bus_tx_query(tx, store_order_items_sql, 1, p, &items) != 0)
		return -1;
	list = json_array();
	for (int r = 0; r < bus_rows_count(items); r++)
		json_array_append_new(list,
		    json_pack("{s:s, s:o, s:I}", "cert_id",
		        bus_rows_value(items, r, 0), "platforms",
		        json_loads(bus_rows_value(items, r, 1), 0, NULL),
		        "price_fen",
		        (json_int_t)strtoll(bus_rows_value(items, r, 2), NULL,
		            10)));
	bus_rows_free(items);
	data = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s}", "order_id",
	    order_id, "number", number, "account_id", account_id, "payment_id",
	    payment_id, "total_fen", (json_int_t)strtoll(total_fen, NULL, 10),
	    "items", list, "paid_at", paid_at);
	rc = bus_tx_emit(tx, "orders.order.paid", order_id, data);
	json_decref(data);
	return rc;
}

/* What a payment does to its order, from the order's state. */
static const char *
payment_outcome(const char *status, const char *order_payment,
    const char *payment, int amount_ok)
{
	if (status == NULL)
		return "unknown_order";
	if (strcmp(status, "pending_payment") == 0)
		return amount_ok ? "applied" : "amount_mismatch";
	if (strcmp(status, "cancelled") == 0 || strcmp(status, "expired") == 0)
		return "late";
	if (order_payment != NULL && strcmp(order_payment, payment) == 0)
		return "applied"; /* the same payment told twice */
	return "duplicate";
}

static int
on_payment_succeeded(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *amount = json_object_get(d, "amount_fen");
	const char *payment = str(d, "payment_id"), *order = str(d, "order_id");
	const char *paid_at = str(d, "paid_at");
	const char *status = NULL, *outcome;
	struct bus_rows *o = NULL, *paid = NULL;
	char amount_s[24];
	int rc = -1;

	if (payment == NULL || order == NULL || paid_at == NULL ||
	    str(d, "channel") == NULL || str(d, "provider_trade_no") == NULL ||
	    !json_is_integer(amount))
		return bad_event(ev,
		    "payment_id/order_id/channel/amount_fen/provider_trade_no/paid_at");
	snprintf(amount_s, sizeof(amount_s), "%lld",
	    (long long)json_integer_value(amount));
	const char *po[] = {order};
	if (bus_tx_query(tx, store_order_lock_sql, 1, po, &o) != 0)
		return -1;
	if (bus_rows_count(o) == 1)
		status = bus_rows_value(o, 0, 0);
	outcome = payment_outcome(status,
	    status ? bus_rows_value(o, 0, 4) : NULL, payment,
	    status && strcmp(bus_rows_value(o, 0, 1), amount_s) == 0);
	int flagged = strcmp(outcome, "applied") != 0;
	const char *pr[] = {payment, order, str(d, "channel"), amount_s,
	    str(d, "provider_trade_no"), paid_at, outcome, status,
	    flagged ? "true" : "false"};
	if (bus_tx_exec(tx, store_payment_record_sql, 9, pr) < 0)
		goto out;
	if (flagged) {
		atomic_fetch_add(&orders.n.payments_flagged, 1);
		log_warn(NULL,
		    "msg=payment_flagged_for_refund payment=%s order=%s outcome=%s "
		    "order_status=%s amount_fen=%s",
		    payment, order, outcome, status ? status : "-", amount_s);
		rc = 0;
		goto out;
	}
	if (strcmp(status, "pending_payment") != 0) {
		rc = 0; /* already paid by this very payment */
		goto out;
	}
	const char *pp[] = {order, payment, paid_at};
	if (bus_tx_query(tx, store_order_paid_sql, 3, pp, &paid) != 0)
		goto out;
	if (bus_rows_count(paid) == 1) {
		rc = emit_paid(tx, order, bus_rows_value(o, 0, 2),
		    bus_rows_value(o, 0, 3), payment, bus_rows_value(o, 0, 1),
		    bus_rows_value(paid, 0, 0));
		if (rc == 0) {
			atomic_fetch_add(&orders.n.paid, 1);
			log_info(NULL, "msg=order_paid order=%s payment=%s",
			    order, payment);
			/* Renewals cannot precede payment, but if the events
			 * crossed, the order is complete now. */
			rc = order_maybe_fulfil(tx, order);
		}
	} else {
		rc = 0;
	}
out:
	bus_rows_free(paid);
	bus_rows_free(o);
	return rc;
}

/* Emits orders.order.refunded with the order's certificates: issuance
 * closes a new certificate's application not yet sent to the vendor. */
static int
emit_refunded(struct bus_tx *tx, const char *order_id, const char *payment_id,
    const char *total_fen, const char *refunded_at)
{
	const char *p[] = {order_id};
	struct bus_rows *items = NULL;
	json_t *list, *data;
	int rc;

	if (bus_tx_query(tx, store_order_items_sql, 1, p, &items) != 0)
		return -1;
	list = json_array();
	for (int r = 0; r < bus_rows_count(items); r++)
		json_array_append_new(list,
		    json_pack("{s:s}", "cert_id", bus_rows_value(items, r, 0)));
	bus_rows_free(items);
	data = json_pack("{s:s, s:s, s:I, s:o, s:s}", "order_id", order_id,
	    "payment_id", payment_id, "refunded_fen",
	    (json_int_t)strtoll(total_fen, NULL, 10), "items", list,
	    "refunded_at", refunded_at);
	rc = bus_tx_emit(tx, "orders.order.refunded", order_id, data);
	json_decref(data);
	return rc;
}

static int
on_payment_refunded(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *total = json_object_get(d, "refunded_total_fen");
	json_t *full = json_object_get(d, "full");
	const char *payment = str(d, "payment_id"), *order = str(d, "order_id");
	struct bus_rows *rows = NULL;
	char total_s[24];
	long n;

	if (payment == NULL || order == NULL || !json_is_integer(total) ||
	    !json_is_boolean(full))
		return bad_event(ev,
		    "payment_id/order_id/refunded_total_fen/full");
	snprintf(total_s, sizeof(total_s), "%lld",
	    (long long)json_integer_value(total));
	const char *pr[] = {payment, total_s,
	    json_is_true(full) ? "true" : "false"};
	if (bus_tx_query(tx, store_payment_refunded_sql, 3, pr, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) == 0) {
		bus_rows_free(rows);
		log_warn(NULL,
		    "msg=refund_of_unknown_payment payment=%s order=%s",
		    payment, order);
		return 0;
	}
	int applied = strcmp(bus_rows_value(rows, 0, 0), "applied") == 0;
	bus_rows_free(rows);
	if (!applied || !json_is_true(full))
		return 0; /* a flagged payment refunded, or a partial refund */
	const char *po[] = {order, payment};
	if ((n = bus_tx_exec(tx, store_order_refunded_sql, 2, po)) < 0)
		return -1;
	if (n == 0)
		return 0;
	atomic_fetch_add(&orders.n.refunded, 1);
	log_info(NULL, "msg=order_refunded order=%s payment=%s", order,
	    payment);
	return emit_refunded(tx, order, payment, total_s,
	    event_time(ev, "refunded_at"));
}

/* ---- subscriptions ----------------------------------------------------- */

void
orders_events_subscribe(void)
{
	static const struct {
		const char *durable, *subject;
		bus_handler_fn fn;
	} subs[] = {
	    {"orders-identity-added", "caplat.auth.identity.added",
	        on_identity_added},
	    {"orders-identity-removed", "caplat.auth.identity.removed",
	        on_identity_removed},
	    {"orders-profile-completed", "caplat.enterprise.profile.completed",
	        on_profile_completed},
	    {"orders-record-approved", "caplat.enterprise.record.approved",
	        on_record_approved},
	    {"orders-cert-registered", "caplat.issuance.cert.registered",
	        on_cert_registered},
	    {"orders-certs-imported", "caplat.issuance.certs.imported",
	        on_certs_imported},
	    {"orders-cert-renewed", "caplat.issuance.cert.renewed",
	        on_cert_renewed},
	    {"orders-cert-revoked", "caplat.issuance.cert.revoked",
	        on_cert_revoked},
	    {"orders-cert-expiring", "caplat.issuance.cert.expiring",
	        on_cert_expiring},
	    {"orders-payment-succeeded", "caplat.payments.payment.succeeded",
	        on_payment_succeeded},
	    {"orders-payment-refunded", "caplat.payments.payment.refunded",
	        on_payment_refunded},
	};

	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (bus_subscribe(orders.svc.bus, subs[i].durable,
		        subs[i].subject, MAX_DELIVER, subs[i].fn, NULL) != 0)
			log_error(NULL, "msg=subscribe_failed durable=%s",
			    subs[i].durable);
}
