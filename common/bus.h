/* bus — events between services on NATS JetStream (ARCHITECTURE.md "Events"):
 * a transactional outbox published by a relay, and idempotent consumers that
 * record every event id in an inbox in the same transaction as its effect.
 *
 * Threading: nothing in bus*.c touches the caller's event loop. Every nats.c
 * call and every PostgreSQL call of this module runs on the module's own
 * threads: one relay thread per bus and one thread per consumer, each with its
 * own blocking libpq connection. Handlers run on their consumer's thread and
 * must not touch loop objects. Metrics are atomics, readable from any
 * thread. */
#ifndef CAPLAT_BUS_H
#define CAPLAT_BUS_H

#include <jansson.h>
#include <stddef.h>

/* The one stream, its subjects, and the dead-letter subject prefix. */
#define BUS_STREAM "CAPLAT"
#define BUS_SUBJECT_PREFIX "caplat."
#define BUS_DLQ_PREFIX "caplat.dlq."

struct bus;
struct bus_tx;
struct bus_rows;

struct bus_config {
	/* "nats://127.0.0.1:4222", or a comma-separated list */
	const char *nats_url;
	/* the service's own role */
	const char *db_url;
	/* the service schema holding outbox, inbox and dead_letter */
	const char *schema;
	/* CloudEvents source is "/caplat/<service>" */
	const char *service;
	/* consumers' AckWait, at least 1000; 0 means 30000 */
	int ack_wait_ms;
	/* redelivery delay after a first handler failure, doubled per
	 * delivery up to 60 s; 0 means 1000 */
	int nak_delay_ms;
	int stream_replicas;  /* when this bus creates the stream; 0 means 1
	                       * (3 in a NATS cluster) */
	int stream_max_age_h; /* stream retention in hours; 0 means 168 (a week);
	                       * inbox ids are kept twice as long */
	/* how long the relay may leave published rows unmarked, to mark
	 * many in one transaction (the stream's dedup and the inboxes absorb
	 * a republish after a crash); 0 marks after each publish */
	int relay_mark_ms;
	/* after a consumer's fetch brought fewer than a batch, how long it
	 * waits for more before applying them in one transaction (0: not) */
	int gather_ms;
	/* called on the relay's thread when an audit entry was written held
	 * into this schema's outbox (a committed transaction's NOTIFY
	 * caplat_audit, 090_audit_notify.sql): common/audit.c's flush then runs
	 * on the loop; NULL: ignored */
	void (*audit_notified)(void);
};

/* One consumed event. Every pointer is borrowed and valid only during the
 * handler call. */
struct bus_event {
	const char *id;           /* UUID, the inbox key */
	const char *type;         /* "enterprise.record.approved" */
	const char *source;       /* "/caplat/enterprise" */
	const char *subject;      /* CloudEvents subject, NULL when absent */
	const char *time;         /* RFC 3339, NULL when absent */
	json_t *data;             /* NULL when absent */
	const char *nats_subject; /* "caplat.enterprise.record.approved" */
	int deliveries;           /* 1 on the first delivery */
	/* The envelope as received (JSON text, NUL-terminated), for a handler
	 * that hands data on as text without rebuilding it; NULL when not at
	 * hand. */
	const char *envelope;
};

/* Applies one event inside the consumer's transaction (tx). Returns 0 to
 * commit and acknowledge, -1 to roll back and have the event redelivered
 * after a delay; when that was delivery max_deliver the event is
 * dead-lettered instead. Events of one fetch share a transaction (one commit
 * for many events); if any of them fails, they are redone one transaction
 * each. So a handler may run more than once for an event, but only one run
 * ever commits: act only through tx, never COMMIT or ROLLBACK there, and
 * have no other side effects. */
typedef int (
    *bus_handler_fn)(struct bus_tx *tx, const struct bus_event *ev, void *arg);

/* An action after a handler's transaction: called on the consumer's thread
 * with committed = 1 once the transaction that registered it committed, or
 * with committed = 0 when it was rolled back (release arg then; a redone
 * handler registers it again). */
typedef void (*bus_after_fn)(void *arg, int committed);

/* Opens the bus: connects to NATS (reconnecting forever, so NATS need not be
 * up yet), and starts the relay thread, which ensures the stream exists and
 * publishes this service's outbox. Copies every string of cfg. Returns 0 and
 * sets *out; on a bad config returns -1 and logs why. Blocks at most a NATS
 * connect timeout: call it at start, not from a loop callback. */
int bus_open(struct bus **out, const struct bus_config *cfg);

/* Stops and joins every thread of the bus, then frees it. Messages being
 * handled are finished first; messages fetched but not handled yet are
 * redelivered later. Accepts NULL. */
void bus_close(struct bus *bus);

/* Returns 1 when the NATS connection is up, else 0. Any thread. */
int bus_ready(struct bus *bus);

/* Starts a consumer thread on the durable pull consumer `durable` (letters,
 * digits, '-' and '_') of the stream, filtered on filter_subject (which must
 * not match caplat.dlq.>), created or updated with explicit ack, the bus's
 * AckWait and MaxDeliver = max_deliver (>= 1). Each event takes effect once:
 * its transaction also inserts (durable, event id) into inbox, an id already
 * there is acknowledged without calling the handler, and acks are sent only
 * after the commit. While PostgreSQL is unreachable, fetched events are held
 * (kept alive with InProgress), not redelivered. Dead events (handler failed
 * on the last delivery, unparsable envelope, or dropped by JetStream after
 * MaxDeliver, seen through its advisory) get a dead_letter row, a copy on
 * caplat.dlq.<durable>, an error log line and a metric. Works whether or not
 * NATS is reachable yet. Copies durable and filter_subject; arg is borrowed
 * until bus_close. Returns 0, or -1 on bad arguments or a durable already
 * subscribed on this bus. */
int bus_subscribe(struct bus *bus, const char *durable,
    const char *filter_subject, int max_deliver, bus_handler_fn handler,
    void *arg);

/* bus_subscribe() for events whose data the handler hands on as text (an
 * audit batch: up to 512 KiB that PostgreSQL parses anyway): the envelope's
 * other members are parsed, the data is not, so ev->data is NULL and the
 * data is only in ev->envelope (its last member, as bus_envelope_build
 * writes it; an envelope written otherwise is parsed whole and ev->data
 * set). The data is not checked to be JSON here: the handler's statement
 * refuses it if not. */
int bus_subscribe_text(struct bus *bus, const char *durable,
    const char *filter_subject, int max_deliver, bus_handler_fn handler,
    void *arg);

/* ---- producing: the outbox row goes in the caller's own transaction ---- */

/* INSERT into the unqualified outbox table (search_path = the service schema)
 * with $1 id (uuid text), $2 type, $3 subject (or NULL), $4 data (JSON text,
 * or NULL). */
extern const char bus_outbox_insert_sql[];

struct bus_event_row {
	char id[37];   /* new UUID v4 */
	char *type;    /* owned */
	char *subject; /* owned, NULL when none */
	char *data;    /* owned compact JSON text, NULL when data was NULL */
};

/* Fills out for one event: a new id, copies of type and subject, and data
 * (borrowed) serialized. Returns 0; returns -1 and leaves out cleared when the
 * type is not a valid subject tail (see bus_subject). Release with
 * bus_event_row_clear(). */
int bus_event_prepare(struct bus_event_row *out, const char *type,
    const char *subject, json_t *data);

/* Points params[0..3] at the row's fields in bus_outbox_insert_sql order.
 * The pointers are borrowed from row. */
void bus_event_row_params(const struct bus_event_row *row,
    const char *params[4]);

/* Frees the row's strings; the row may be prepared again. */
void bus_event_row_clear(struct bus_event_row *row);

struct db_batch;

/* Appends the outbox row of one event to b (common/db.h), so the event is
 * written in the same transaction as the state change of the batch. data is
 * borrowed. A type that is not a valid subject tail is a programming error:
 * fatal. */
void bus_outbox_add(struct db_batch *b, const char *type, const char *subject,
    json_t *data);

/* The same inside a consumer's transaction (an event caused by an event).
 * Returns 0, or -1 on a bad type or an SQL error (the handler returns -1). */
int bus_tx_emit(struct bus_tx *tx, const char *type, const char *subject,
    json_t *data);

/* Writes the NATS subject of an event type ("caplat." + type) into out.
 * Returns 0, or -1 when the type is empty, has an empty token, a wildcard,
 * whitespace, starts with "dlq." or does not fit. */
int bus_subject(const char *type, char *out, size_t size);

/* ---- SQL inside a handler, on the consumer's transaction ---- */

/* Has fn(arg, 1) run right after tx commits (several events of a fetch may
 * share that commit), or fn(arg, 0) if it rolls back: for what must not
 * happen before the change is visible, e.g. dropping a cached copy. In
 * registration order. */
void bus_tx_after_commit(struct bus_tx *tx, bus_after_fn fn, void *arg);

/* Runs one statement with text parameters (NULL pointer = SQL NULL). Returns
 * the number of rows affected (0 for statements without a count), or -1 on
 * error (see bus_tx_error); after an error the transaction is aborted and the
 * handler should return -1. */
long bus_tx_exec(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params);

/* Like bus_tx_exec for a statement returning rows. Returns 0 and sets *out to
 * a new result, caller frees with bus_rows_free(); or -1 on error. */
int bus_tx_query(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params, struct bus_rows **out);

/* The last error of this transaction, "" when none. Borrowed, valid until
 * the handler returns. */
const char *bus_tx_error(const struct bus_tx *tx);

int bus_rows_count(const struct bus_rows *rows);
/* Returns the text value at (row, col), NULL for SQL NULL or out of range.
 * Borrowed, valid until bus_rows_free(). */
const char *bus_rows_value(const struct bus_rows *rows, int row, int col);
/* Accepts NULL. */
void bus_rows_free(struct bus_rows *rows);

/* ---- metrics ---- */

/* Writes the bus counters in Prometheus text format into buf (always
 * NUL-terminated when size > 0): caplat_bus_published_total,
 * caplat_bus_publish_errors_total, caplat_bus_outbox_backlog,
 * caplat_bus_nats_connected and, per consumer, caplat_bus_consumed_total,
 * caplat_bus_duplicates_total, caplat_bus_handler_errors_total,
 * caplat_bus_dead_letters_total. Returns the length of the whole text, like
 * snprintf: a value >= size means buf was too small. Any thread. */
size_t bus_metrics_text(struct bus *bus, char *buf, size_t size);

#endif
