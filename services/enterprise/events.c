/* events — the enterprise service on the bus.
 *
 * Consumes (read models, on the bus's consumer threads inside the inbox
 * transaction, touching only that transaction and never loop objects; both
 * idempotent upserts):
 *   caplat.auth.account.registered  → accounts (phones; the review SMS
 *                                     is auth's notice since issue 17)
 *   caplat.auth.identity.added      → members (whose uploads an enterprise's
 *                                     admin may read; `source` "lock" marks
 *                                     a lock-proven admin, which refuses
 *                                     approving an admin application)
 *   caplat.auth.identity.removed    → members (the identity ends: removed,
 *                                     replaced, superseded, handed over)
 * Emits (written into the outbox by the SQL functions of
 * deploy/sql/enterprise, in the same statement as the change):
 *   caplat.enterprise.profile.completed   profile_save()
 *   caplat.enterprise.record.submitted    record_submit()
 *   caplat.enterprise.record.approved     record_decide(), approve
 *   caplat.enterprise.record.rejected     record_decide(), reject
 *   caplat.enterprise.admin_application.submitted  admin_application_submit()
 *   caplat.enterprise.admin_application.approved   admin_application_decide()
 *   caplat.enterprise.admin_application.rejected   admin_application_decide()
 *   caplat.enterprise.audit.recorded      audit_add() beside every submission,
 *                                         decision and staff read of full data */
#include "enterprise.h"

#include "bus.h"
#include "log.h"
#include "util.h"
#include "validate.h"

#include <string.h>

static const char *
data_str(const struct bus_event *ev, const char *key)
{
	return json_string_value(json_object_get(ev->data, key));
}

static int
on_account_registered(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *account = data_str(ev, "account_id");
	const char *phone = data_str(ev, "phone");
	char mobile[12];

	if (account == NULL || !uuid_valid(account) || phone == NULL ||
	    validate_mobile(phone, mobile) != 0) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1; /* dead-lettered after max_deliver: visible, not lost */
	}
	const char *p[] = {account, mobile};
	return bus_tx_exec(tx, store_account_upsert_sql, 2, p) < 0 ? -1 : 0;
}

static int
on_identity_added(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *type = data_str(ev, "type");
	const char *identity = data_str(ev, "identity_id");
	const char *account = data_str(ev, "account_id");
	const char *uscc = data_str(ev, "uscc");
	const char *role = data_str(ev, "role");
	const char *source = data_str(ev, "source");

	if (type != NULL && strcmp(type, "personal") == 0)
		return 0;
	if (type == NULL || identity == NULL || account == NULL ||
	    uscc == NULL || role == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const char *p[] = {identity, account, uscc, role, source};
	return bus_tx_exec(tx, store_member_upsert_sql, 5, p) < 0 ? -1 : 0;
}

static int
on_identity_removed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *identity = data_str(ev, "identity_id");

	if (identity == NULL || !uuid_valid(identity)) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const char *p[] = {identity};
	return bus_tx_exec(tx, store_member_delete_sql, 1, p) < 0 ? -1 : 0;
}

void
ent_events_subscribe(void)
{
	if (bus_subscribe(ent.svc.bus, "enterprise-accounts",
	        "caplat.auth.account.registered", 10, on_account_registered,
	        NULL) != 0 ||
	    bus_subscribe(ent.svc.bus, "enterprise-members",
	        "caplat.auth.identity.added", 10, on_identity_added,
	        NULL) != 0 ||
	    bus_subscribe(ent.svc.bus, "enterprise-members-removed",
	        "caplat.auth.identity.removed", 10, on_identity_removed,
	        NULL) != 0)
		fatal("bus: cannot subscribe the enterprise consumers");
}
