/* audit — the producer side of the tamper-evident audit trail: who did what,
 * to which object, when. A service adds an entry to the same db_batch (one
 * transaction) as the action it records, as an outbox event of type
 * "<service>.audit.recorded" (proto/events/audit.recorded.json), so an
 * action never commits without its entry and a rolled-back action leaves
 * none. auth consumes every such event once and appends it to one SHA-256
 * chain (the consumer side: services/auth, deploy/sql/auth). */
#ifndef CAPLAT_AUDIT_H
#define CAPLAT_AUDIT_H

#include <jansson.h>

struct db_batch;
struct bus_tx;
struct http_req;

/* What happened. Strings are borrowed for the call; before and after are
 * borrowed JSON (NULL when not useful). Never put secrets, codes or full ID
 * numbers in them. */
struct audit_entry {
	const char *action;      /* stable dotted name: "identity.granted" */
	const char *object_type; /* "identity", "order", "certificate", … */
	const char *object_id;   /* the object's id */
	const char *uscc;        /* the enterprise concerned, or NULL */
	json_t *before;
	json_t *after;
};

/* Names the producing service (the event type's first token). svc_init
 * calls it; call it yourself only in tools and tests. */
void audit_setup(const char *service);

/* Returns a new JSON object: the event data for e with the actor taken from
 * req (its session's account or staff id, identity, role, the client's
 * address and the request id), or the system actor "system:<service>" when
 * req is NULL or has no session. Caller decrefs. */
json_t *audit_event_data(const struct http_req *req,
    const struct audit_entry *e);

/* Adds the entry's outbox row to b (same transaction as the action). */
void audit_add(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e);

/* audit_add() for an entry whose row is written by the caller's own
 * statement sql (its store.c): $1 id, $2 type, $3 subject, $4 data (JSON
 * text) as audit_held_insert_sql, and $5 p5. For an audited read whose
 * entry needs a value of the row read (an INSERT … SELECT in the read's own
 * batch: no second round trip, and no entry when nothing was read). */
void audit_add_sql(struct db_batch *b, const struct http_req *req,
    const struct audit_entry *e, const char *sql, const char *p5);

/* The same inside a consumer's transaction (an action caused by an event);
 * the actor is "system:<service>". Returns 0, or -1 (the handler fails). */
int audit_tx_emit(struct bus_tx *tx, const struct audit_entry *e);

/* ---- the flush (deploy/sql/common/050_audit_batch.sql) ----
 * An entry's outbox row is held, not published on its own; every process
 * flushes held rows of its schema as "<svc>.audit.batch" events of up to
 * AUDIT_FLUSH_ROWS entries (deleting the rows the batch now carries, 096;
 * the view audit_outbox shows an entry held or flushed): every every_ms while there is work (a batch of
 * this process with an audit_add*() entry committed, it called
 * audit_flush_notified(), or the relay heard the NOTIFY caplat_audit of a
 * row held by the trigger: 095_audit_notify_held.sql), at start, and once
 * a minute otherwise. */
#define AUDIT_FLUSH_ROWS 200
struct event_base;
struct db_pool;
extern const char audit_flush_sql[]; /* audit_store.c */
/* The entry's outbox row, written held (published_at 'infinity') by the
 * statement itself: the hold trigger of 050 is then not run for it. */
extern const char audit_held_insert_sql[]; /* audit_store.c */
void audit_flush_start(struct event_base *base, struct db_pool *db,
    long every_ms);
/* Stops the timer (before the pool is freed). */
void audit_flush_stop(void);
/* An entry was committed held into this schema's outbox (any thread; the
 * bus relay's hook, a committed audit_add*() batch, or the caller of a
 * statement whose SQL wrote entries with audit_emit(), once it committed):
 * the next tick flushes. */
void audit_flush_notified(void);

#endif
