/* bus_int.h — the bus's private header: the state shared by bus.c (public
 * API, lifecycle, metrics), bus_envelope.c (names and CloudEvents rules),
 * bus_thread.c (what the threads share), bus_relay.c (outbox relay),
 * bus_consume.c (consumers and inbox) and bus_store.c (every SQL statement
 * of the bus). Callers outside the bus use bus.h only. */
#ifndef CAPLAT_BUS_INT_H
#define CAPLAT_BUS_INT_H

#include "bus.h"
#include "fault.h"

#include <libpq-fe.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RELAY_BATCH 256
#define RELAY_ACK_WAIT_MS 5000
#define RELAY_SWEEP_MS 1000
#define RELAY_CLEANUP_EVERY_MS (10 * 60 * 1000)
#define RELAY_CLEANUP_CHUNK 10000           /* in bus_store_outbox_cleanup */
#define RELAY_PENDING_MAX (2 * RELAY_BATCH) /* published, not marked */
#define FETCH_BATCH 64
#define FETCH_WAIT_MS 1000
#define GROUP_MAX_MS 200
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define NAK_DELAY_MAX_MS 60000
#define DEDUP_WINDOW_NS (120LL * 1000 * 1000 * 1000)
#define ERROR_TEXT_MAX 256
#define MSG_ID_HEADER "Nats-Msg-Id"

/* The bus's fault points (fault.h), numbered as in bus_fault_names. */
enum bus_fault {
	BUS_FAULT_NONE,
	BUS_FAULT_RELAY_CRASH_AFTER_PUBLISH,
	BUS_FAULT_CONSUMER_CRASH_BEFORE_COMMIT,
};

enum relay_row_state {
	ROW_SENT,   /* handed to nats.c, acked unless marked otherwise */
	ROW_FAILED, /* refused or unacknowledged: stays unpublished */
	ROW_BAD,    /* can never be published: logged, counted, set aside */
};

/* One claimed outbox row of the relay's current batch. */
struct relay_row {
	char id[37];
	int64_t seq;
	enum relay_row_state state;
};

/* The relay's batch, shared with nats.c's publish-error callback thread. */
struct relay_batch {
	pthread_mutex_t mu;
	struct relay_row rows[RELAY_BATCH];
	int count;
	int hint;
	char error[ERROR_TEXT_MAX];
};

struct bus_consumer {
	struct bus *bus;
	char *durable;
	char *filter;
	char *dlq_subject;
	char *advisory_subject;
	int max_deliver;
	bus_handler_fn handler;
	void *arg;
	int data_as_text; /* bus_subscribe_text: data left unparsed */
	pthread_t thread;
	atomic_ullong consumed;
	atomic_ullong duplicates;
	atomic_ullong handler_errors;
	atomic_ullong dead_letters;
	atomic_ullong lag; /* messages after the last one fetched */
	struct bus_consumer *next;
};

struct bus {
	char *nats_url;
	char *db_url;
	char *schema;
	char *service;
	char *source;
	int ack_wait_ms;
	int nak_delay_ms;
	int stream_replicas;
	int stream_max_age_h;
	int relay_mark_ms;
	int gather_ms;
	void (*audit_notified)(void);
	struct fault fault; /* at an enum bus_fault point */

	natsOptions *opts;
	natsConnection *nc;
	pthread_t relay;
	bool relay_started;
	struct relay_batch batch;
	int wake[2]; /* self-pipe: bus_close wakes the relay's poll() */

	pthread_mutex_t mu; /* guards consumers and the stop condition */
	pthread_cond_t stop_cond;
	struct bus_consumer *consumers;

	atomic_int stopping;
	atomic_int stream_ready;
	atomic_ullong published;
	atomic_ullong publish_errors;
	atomic_llong backlog;
	atomic_llong backlog_oldest; /* Unix seconds of the oldest, or 0 */
};

/* A registered after-commit action (bus_tx_after_commit). */
struct bus_after {
	bus_after_fn fn;
	void *arg;
	struct bus_after *next;
};

struct bus_tx {
	PGconn *pg;
	char error[ERROR_TEXT_MAX];
	/* the consumer's list of after-commit actions, NULL outside one */
	struct bus_after **after;
};

struct bus_rows {
	PGresult *res;
};

/* What one thread knows about its dependencies, to log state changes once. */
struct bus_link {
	const char *who; /* "relay" or the durable name */
	bool pg_down;
	bool nats_down;
	int64_t backoff_ms;
};

static inline bool
bus_stopping(struct bus *bus)
{
	return atomic_load(&bus->stopping) != 0;
}

/* ---- bus_envelope.c: names and the CloudEvents envelope (pure) ---- */

/* Each returns true when s is a valid: UUID text; durable consumer name
 * ([A-Za-z0-9_-]{1,64}); schema name ([a-z_][a-z0-9_]{0,62}, usable unquoted
 * in SQL); service name ([a-z0-9_-]{1,63}); consumer filter ("caplat." then
 * tokens, '*' and a final '>' allowed, never matching caplat.dlq.>). */
bool bus_uuid_valid(const char *s);
bool bus_durable_valid(const char *s);
bool bus_ident_valid(const char *s);
bool bus_service_valid(const char *s);
bool bus_filter_valid(const char *f);

/* Returns a new NUL-terminated copy of len bytes that is valid UTF-8 with no
 * NUL inside (bad bytes become '?'), fit for a PostgreSQL text column. */
char *bus_text_sanitize(const char *s, size_t len);

/* Returns a new CloudEvents 1.0 JSON text (caller frees with free()) for one
 * event; data_text is spliced in as is (it comes from a jsonb column), and
 * subject, time and data are left out when NULL. Returns NULL when a string
 * is not valid UTF-8. */
char *bus_envelope_build(const char *source, const char *id, const char *type,
    const char *subject, const char *time, const char *data_text);

/* Parses a CloudEvents envelope into ev (whose strings borrow from *root,
 * which the caller releases with json_decref()). Returns 0, or -1 with a
 * reason in err and *root NULL. Leaves nats_subject and deliveries to the
 * caller. */
int bus_envelope_parse(struct bus_event *ev, json_t **root, const char *payload,
    size_t len, char *err, size_t err_size);
/* bus_envelope_parse() without the data member when it is the envelope's
 * last one (bus_envelope_build): ev->data is NULL. Otherwise the same as
 * bus_envelope_parse(). */
int bus_envelope_parse_head(struct bus_event *ev, json_t **root,
    const char *payload, size_t len, char *err, size_t err_size);

/* ---- bus_thread.c: what the relay and consumer threads share ---- */

/* Sleeps ms unless the bus is closing. Returns -1 when it is. */
int bus_sleep(struct bus *bus, int64_t ms);
/* The next backoff delay of link: 100 ms doubling to cap_ms. */
int64_t bus_backoff(struct bus_link *link, int64_t cap_ms);
/* True when the NATS connection is up. */
bool bus_nats_up(struct bus *bus);
/* Logs a change of link's NATS state (once per outage). */
void bus_link_nats(struct bus_link *link, bool up, natsStatus s);
/* Creates the stream when missing; "already exists" is success. Returns 0,
 * or -1 (logged through link). */
int bus_ensure_stream(struct bus *bus, jsCtx *js, struct bus_link *link);

/* ---- bus_relay.c ---- */

/* The relay thread (arg is the bus): publishes the outbox until bus_close. */
void *bus_relay_main(void *arg);

/* ---- bus_consume.c ---- */

/* A consumer thread (arg is its struct bus_consumer), until bus_close. */
void *bus_consume_main(void *arg);
/* Redelivery delay after the handler failed on delivery `deliveries`:
 * base, 2*base, 4*base, … capped at NAK_DELAY_MAX_MS. */
int64_t bus_nak_delay_ms(int base_ms, int deliveries);

/* ---- bus_store.c: the threads' PostgreSQL code, every SQL string ---- */

/* Opens a thread's connection with search_path set to the service schema,
 * or returns NULL (logged once per outage through link). */
PGconn *bus_store_connect(struct bus *bus, struct bus_link *link);
/* Notes a failed statement: a broken connection is closed and *pg cleared
 * so the thread reconnects; a live one is left for the caller to roll
 * back. */
void bus_store_check(PGconn **pg, struct bus_link *link);
/* BEGIN, ROLLBACK, LISTEN caplat_outbox: 0, or -1 on error. */
int bus_store_begin(PGconn *pg);
int bus_store_rollback(PGconn *pg);
int bus_store_listen(PGconn *pg);
/* COMMIT; returns -1 with tx->error set when it failed or rolled back. */
int bus_store_commit(struct bus_tx *tx);

/* Starts waiting (PQsendQuery) for the session advisory lock that makes
 * this connection's relay the one publishing its schema's outbox. Returns
 * 0, or -1 when it could not be sent. */
int bus_store_relay_lead_send(PGconn *pg);
/* After input arrived: 1 when the lock is held, 0 while still waiting, -1
 * on error. */
int bus_store_relay_lead_poll(PGconn *pg);
/* Reads up to RELAY_BATCH unpublished outbox rows (seq, id, type, subject,
 * data, created_at as RFC 3339) other than those of skip (a bigint[]
 * literal: published, not marked yet), with no lock and no transaction:
 * only the relay holding the lead reads them. Returns a result the caller
 * frees with PQclear(), or NULL on error. */
PGresult *bus_store_outbox_claim(PGconn *pg, const char *skip);
/* Marks the rows of seqs (a bigint[] literal "{1,2}") published, in one
 * transaction of its own. */
int bus_store_outbox_mark(PGconn *pg, const char *seqs);
/* Counts the unpublished rows into *out and the oldest one's creation time
 * (Unix seconds, 0 when none) into *oldest. Returns 0, or -1. */
int bus_store_outbox_backlog(PGconn *pg, long long *out, long long *oldest);
/* Deletes rows published over a day ago among the RELAY_CLEANUP_CHUNK
 * oldest; returns how many (0 on error). */
long bus_store_outbox_cleanup(PGconn *pg);
/* Deletes inbox ids processed over `hours` ago; best effort. */
void bus_store_inbox_cleanup(PGconn *pg, int hours);

/* Inside the consumer's transaction: records (durable, event_id) in the
 * inbox, *duplicate when it was there already. Returns 0, or -1 with
 * tx->error set. */
int bus_store_inbox_add(struct bus_tx *tx, const char *durable,
    const char *event_id, bool *duplicate);
/* Returns 1 when (durable, event_id) is in the inbox, else 0. */
int bus_store_inbox_has(PGconn *pg, const char *durable, const char *event_id);
/* Writes a dead_letter row (once per consumer and event id while not
 * replayed; event_id may be NULL). Returns 0, or -1 on error. */
int bus_store_dead_letter(PGconn *pg, const char *durable, const char *event_id,
    const char *subject, const char *payload_text, const char *error,
    int deliveries);

#endif
