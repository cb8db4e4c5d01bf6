/* audit — audit entries as outbox events in the action's own transaction.
 * See audit.h; the chain itself is kept by auth. */
#include "audit.h"

#include "bus.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "util.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static char service_name[32] = "unknown";

/* The flush timer (one per process). dirty: an entry was added since the
 * last flush (set by consumer threads too). */
static struct {
	struct event *timer;
	struct db_pool *db;
	long every_ms;
	int64_t last_us;
	int busy; /* a flush is running */
	int more; /* the last flush was full */
	atomic_int dirty;
} flush;

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

static void
add_row(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e, const char *sql, int n, const char *p5)
{
	char type[64];
	json_t *d = audit_event_data(req, e);
	struct bus_event_row row;
	const char *params[5];

	audit_type(type, sizeof(type));
	if (bus_event_prepare(&row, type, e->object_id, d) != 0)
		fatal("audit: bad event type \"%s\"", type);
	json_decref(d);
	bus_event_row_params(&row, params);
	params[4] = p5;
	db_batch_add(b, sql, n, params);
	bus_event_row_clear(&row);
	/* Written held and announcing nothing (no NOTIFY woke every listener
	 * of the database): this process flushes it once it has committed. */
	db_batch_on_commit(b, audit_flush_notified);
}

void
audit_add(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e)
{
	add_row(b, req, e, audit_held_insert_sql, 4, NULL);
}

void
audit_add_sql(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e, const char *sql, const char *p5)
{
	add_row(b, req, e, sql, 5, p5);
}

int
audit_tx_emit(struct bus_tx *tx, const struct audit_entry *e)
{
	char type[64];
	json_t *d = audit_event_data(NULL, e);
	int rc;

	audit_type(type, sizeof(type));
	/* Written unpublished: the hold trigger holds it and announces it
	 * (NOTIFY caplat_audit at the consumer's commit), since this thread
	 * cannot tell the flush when that commit happens. */
	rc = bus_tx_emit(tx, type, e->object_id, d);
	json_decref(d);
	return rc;
}

/* Without a sign of work the flush still looks this often: entries a
 * process wrote and could not flush before it died (the next start looks at
 * once too). Every committed entry is otherwise signalled: an audit_add*()
 * batch of this process when it commits (db_batch_on_commit), a statement
 * of its own that wrote entries with audit_emit() (the caller calls
 * audit_flush_notified()), or, for a row the hold trigger held (outbox_emit
 * and audit_tx_emit), the NOTIFY caplat_audit that the relay leading this
 * schema's outbox receives (deploy/sql/common/095_audit_notify_held.sql). */
#define AUDIT_LOOK_US (60 * 1000000LL)

void
audit_flush_notified(void)
{
	atomic_store(&flush.dirty, 1);
}

static void
flush_schedule(long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(flush.timer, &tv);
}

static void
flush_done(void *arg, const struct db_result *res)
{
	const char *n;

	(void)arg;
	flush.busy = 0;
	if (res->status != DB_OK && flush.timer != NULL) {
		log_warn(NULL, "msg=audit_flush_failed status=%d error=\"%s\"",
		    (int)res->status, res->message ? res->message : "-");
		flush.more = 0;
		return;
	}
	n = db_value(res, 0, 0, 0);
	flush.more = n != NULL && atol(n) >= AUDIT_FLUSH_ROWS;
	if (flush.more && flush.timer != NULL)
		flush_schedule(0);
}

static void
flush_tick(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = now_mono_us();

	(void)fd;
	(void)what;
	(void)arg;
	if (!flush.busy &&
	    (flush.more || atomic_load(&flush.dirty) ||
	        now - flush.last_us >= AUDIT_LOOK_US)) {
		atomic_store(&flush.dirty, 0);
		flush.busy = 1;
		flush.last_us = now;
		db_query(flush.db, audit_flush_sql, 0, NULL, flush_done, NULL);
	}
	if (!evtimer_pending(flush.timer, NULL))
		flush_schedule(flush.every_ms);
}

void
audit_flush_start(struct event_base *base, struct db_pool *db, long every_ms)
{
	flush.db = db;
	flush.every_ms = every_ms;
	flush.timer = evtimer_new(base, flush_tick, NULL);
	flush_schedule(every_ms);
}

void
audit_flush_stop(void)
{
	if (flush.timer != NULL)
		event_free(flush.timer);
	flush.timer = NULL;
}
