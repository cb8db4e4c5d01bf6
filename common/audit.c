/* audit — audit entries as outbox events in the action's own transaction.
 * See audit.h; the chain itself is kept by auth. */
#include "audit.h"

#include "bus.h"
#include "http.h"
#include "session.h"
#include "util.h"

#include <stdio.h>

static char service_name[32] = "unknown";

void
audit_setup(const char *service)
{
	snprintf(service_name, sizeof(service_name), "%s", service);
}

static void
set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

json_t *
audit_event_data(const struct http_req *req, const struct audit_entry *e)
{
	const struct session *s = req != NULL ? req->session : NULL;
	json_t *actor = json_object();
	json_t *d = json_object();
	char system[48];

	if (s != NULL && s->staff_id != NULL) {
		set_str(actor, "type", "staff");
		set_str(actor, "id", s->staff_id);
	} else if (s != NULL && s->account_id != NULL) {
		set_str(actor, "type", "account");
		set_str(actor, "id", s->account_id);
		set_str(actor, "identity_id", s->identity_id);
		set_str(actor, "role", s->role);
	} else {
		snprintf(system, sizeof(system), "system:%s", service_name);
		set_str(actor, "type", "system");
		set_str(actor, "id", system);
	}
	if (req != NULL) {
		set_str(actor, "ip", req->peer[0] ? req->peer : NULL);
		set_str(actor, "request_id", req->id);
	}
	json_object_set_new(d, "actor", actor);
	set_str(d, "service", service_name);
	set_str(d, "action", e->action);
	set_str(d, "object_type", e->object_type);
	set_str(d, "object_id", e->object_id);
	set_str(d, "uscc", e->uscc);
	json_object_set(d, "before", e->before ? e->before : json_null());
	json_object_set(d, "after", e->after ? e->after : json_null());
	return d;
}

static void
audit_type(char *out, size_t size)
{
	snprintf(out, size, "%s.audit.recorded", service_name);
}

void
audit_add(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e)
{
	char type[64];
	json_t *d = audit_event_data(req, e);

	audit_type(type, sizeof(type));
	bus_outbox_add(b, type, e->object_id, d);
	json_decref(d);
}

int
audit_tx_emit(struct bus_tx *tx, const struct audit_entry *e)
{
	char type[64];
	json_t *d = audit_event_data(NULL, e);
	int rc;

	audit_type(type, sizeof(type));
	rc = bus_tx_emit(tx, type, e->object_id, d);
	json_decref(d);
	return rc;
}
