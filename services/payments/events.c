/* events — the payments service on the bus.
 *
 * Consumes (read models, on the bus's consumer threads inside the inbox
 * transaction, touching only that transaction):
 *   caplat.orders.order.created        → orders (amount, account, enterprise)
 *                                        and order_certs (the holders)
 *   caplat.orders.order.cancelled      → the order's end; its pending
 *                                        payments closed
 *   caplat.enterprise.record.approved  → enterprises (the invoice title)
 *   caplat.enterprise.profile.completed → persons (a personal invoice's
 *                                        title: the verified name)
 * Emits (written into the outbox by the SQL functions of
 * deploy/sql/payments, in the same statement as the change):
 *   caplat.payments.payment.succeeded  payment_succeed()
 *   caplat.payments.payment.refunded   refund_succeed()
 *   caplat.payments.invoice.issued     invoice_issue()
 *   caplat.payments.invoice.posted     invoice_post() (011_invoice_post.sql) */
#include "payments.h"

#include "bus.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
bad_event(const struct bus_event *ev, const char *missing)
{
	log_error(NULL, "msg=bad_event type=%s id=%s missing=%s", ev->type,
	    ev->id, missing);
	return -1; /* dead-lettered after max_deliver: visible, not lost */
}

static int
on_order_created(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	json_t *total = json_object_get(d, "total_fen");
	char total_text[24];

	if (str(d, "order_id") == NULL || str(d, "number") == NULL ||
	    str(d, "account_id") == NULL || !json_is_integer(total) ||
	    json_integer_value(total) < 0 || str(d, "expires_at") == NULL)
		return bad_event(ev,
		    "order_id/number/account_id/total_fen/expires_at");
	snprintf(total_text, sizeof(total_text), "%lld",
	    (long long)json_integer_value(total));
	const char *p[] = {str(d, "order_id"), str(d, "number"),
	    str(d, "account_id"), str(d, "identity_id"), str(d, "uscc"),
	    total_text, str(d, "expires_at"),
	    str(d, "created_at") ? str(d, "created_at") : ev->time};
	if (bus_tx_exec(tx, store_order_upsert_sql, 8, p) < 0)
		return -1;
	/* Its certificates' holders: who else sees its payments and
	 * invoices (access_viewer). */
	json_t *items = json_object_get(d, "items");
	if (!json_is_array(items))
		return 0;
	char *text = json_dumps(items, JSON_COMPACT);
	const char *pc[] = {str(d, "order_id"), text};
	int rc = bus_tx_exec(tx, store_order_certs_sql, 2, pc) < 0 ? -1 : 0;
	free(text);
	return rc;
}

static int
on_order_cancelled(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *id = str(ev->data, "order_id");

	if (id == NULL)
		return bad_event(ev, "order_id");
	const char *p[] = {id};
	if (bus_tx_exec(tx, store_order_cancel_sql, 1, p) < 0 ||
	    bus_tx_exec(tx, store_order_cancel_payments_sql, 1, p) < 0)
		return -1;
	return 0;
}

static int
on_record_approved(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *inv = json_object_get(d, "invoice");
	json_t *seq = json_object_get(d, "seq");
	char seq_text[24];

	if (str(d, "uscc") == NULL || str(d, "record_id") == NULL ||
	    str(d, "name") == NULL || str(d, "taxpayer_type") == NULL ||
	    !json_is_integer(seq) || !json_is_object(inv))
		return bad_event(ev,
		    "uscc/record_id/name/taxpayer_type/seq/invoice");
	snprintf(seq_text, sizeof(seq_text), "%lld",
	    (long long)json_integer_value(seq));
	const char *p[] = {str(d, "uscc"), str(d, "record_id"), seq_text,
	    str(d, "name"), str(d, "taxpayer_type"),
	    str(inv, "title") ? str(inv, "title") : str(d, "name"),
	    str(inv, "taxpayer_id") ? str(inv, "taxpayer_id") : str(d, "uscc"),
	    str(inv, "invoice_address"), str(inv, "invoice_phone"),
	    str(inv, "bank_name"), str(inv, "bank_account"),
	    str(d, "approved_at") ? str(d, "approved_at") : ev->time};
	return bus_tx_exec(tx, store_enterprise_upsert_sql, 12, p) < 0 ? -1 : 0;
}

static int
on_profile_completed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;

	if (str(d, "account_id") == NULL || str(d, "name") == NULL)
		return bad_event(ev, "account_id/name");
	const char *p[] = {str(d, "account_id"), str(d, "name"),
	    str(d, "completed_at") ? str(d, "completed_at") : ev->time};
	return bus_tx_exec(tx, store_person_upsert_sql, 3, p) < 0 ? -1 : 0;
}

void
pay_events_subscribe(void)
{
	if (bus_subscribe(pay.svc.bus, "payments-order-created",
	        "caplat.orders.order.created", 5, on_order_created,
	        NULL) != 0 ||
	    bus_subscribe(pay.svc.bus, "payments-order-cancelled",
	        "caplat.orders.order.cancelled", 5, on_order_cancelled,
	        NULL) != 0 ||
	    bus_subscribe(pay.svc.bus, "payments-record-approved",
	        "caplat.enterprise.record.approved", 5, on_record_approved,
	        NULL) != 0 ||
	    bus_subscribe(pay.svc.bus, "payments-profile-completed",
	        "caplat.enterprise.profile.completed", 5, on_profile_completed,
	        NULL) != 0)
		log_error(NULL, "msg=subscribe_failed");
}
