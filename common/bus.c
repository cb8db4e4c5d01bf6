/* bus — the event bus on NATS JetStream: a relay thread that publishes the
 * service's transactional outbox, and one thread per durable pull consumer
 * that applies each event exactly once in effect through the inbox table.
 * Each thread owns a blocking libpq connection; nothing here touches the
 * caller's event loop (see bus.h). */
#include "bus.h"

#include "db.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BATCH 256
#define RELAY_ACK_WAIT_MS 5000
#define RELAY_SWEEP_MS 1000
#define RELAY_CLEANUP_EVERY_MS (10 * 60 * 1000)
#define RELAY_CLEANUP_CHUNK 10000 /* in relay_cleanup_sql */
#define FETCH_BATCH 64
#define FETCH_WAIT_MS 1000
#define GROUP_MAX_MS 200
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define NAK_DELAY_MAX_MS 60000
#define DEDUP_WINDOW_NS (120LL * 1000 * 1000 * 1000)
#define ERROR_TEXT_MAX 256
#define MSG_ID_HEADER "Nats-Msg-Id"
#define STR_(x) #x
#define STR(x) STR_(x)

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
	pthread_t thread;
	atomic_ullong consumed;
	atomic_ullong duplicates;
	atomic_ullong handler_errors;
	atomic_ullong dead_letters;
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
	enum bus_fault fault;
	char *fault_once;

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
};

struct bus_tx {
	PGconn *pg;
	char error[ERROR_TEXT_MAX];
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

const char bus_outbox_insert_sql[] =
    "INSERT INTO outbox (id, type, subject, data) "
    "VALUES ($1::uuid, $2, $3, $4::jsonb)";

/* ---- pure helpers ------------------------------------------------------ */

static bool
bus_uuid_valid(const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (strchr(hex, s[i]) == NULL || s[i] == '\0') {
			return false;
		}
	}
	return true;
}

static bool
bus_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A dot-separated list of non-empty tokens of [A-Za-z0-9_-]. */
static bool
bus_dotted_valid(const char *s)
{
	bool token_empty = true;

	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (token_empty)
				return false;
			token_empty = true;
		} else if (bus_token_char(*p)) {
			token_empty = false;
		} else {
			return false;
		}
	}
	return !token_empty;
}

int
bus_subject(const char *type, char *out, size_t size)
{
	int n;

	if (!bus_dotted_valid(type) || strncmp(type, "dlq.", 4) == 0)
		return -1;
	n = snprintf(out, size, "%s%s", BUS_SUBJECT_PREFIX, type);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

/* Durable consumer names: [A-Za-z0-9_-]{1,64}. */
static bool
bus_durable_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bus_token_char(s[i]))
			return false;
	return true;
}

/* Schema and service names: [a-z_][a-z0-9_]{0,62}, usable unquoted in SQL. */
static bool
bus_ident_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Service names (the CloudEvents source): [a-z0-9_-]{1,63}. */
static bool
bus_service_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-'))
			return false;
	return true;
}

/* A consumer filter: "caplat." then tokens, where '*' and a final '>' are
 * allowed, but never one that can match the dead-letter subjects. */
static bool
bus_filter_valid(const char *f)
{
	const char *rest;
	size_t first;

	if (f == NULL ||
	    strncmp(f, BUS_SUBJECT_PREFIX, strlen(BUS_SUBJECT_PREFIX)))
		return false;
	rest = f + strlen(BUS_SUBJECT_PREFIX);
	first = strcspn(rest, ".");
	if (first == 0 || (first == 1 && (rest[0] == '*' || rest[0] == '>')) ||
	    (first == 3 && strncmp(rest, "dlq", 3) == 0))
		return false;
	for (const char *p = rest; *p != '\0';) {
		size_t len = strcspn(p, ".");

		if (len == 0)
			return false;
		if (len == 1 && (*p == '*' || *p == '>')) {
			if (*p == '>' && p[1] != '\0')
				return false;
		} else {
			for (size_t i = 0; i < len; i++)
				if (!bus_token_char(p[i]))
					return false;
		}
		p += len;
		if (*p == '.') {
			p++;
			if (*p == '\0')
				return false;
		}
	}
	return true;
}

/* Redelivery delay after the handler failed on delivery `deliveries`:
 * base, 2*base, 4*base, … capped at a minute. */
static int64_t
bus_nak_delay_ms(int base_ms, int deliveries)
{
	int64_t d = base_ms > 0 ? base_ms : 1;

	for (int i = 1; i < deliveries && d < NAK_DELAY_MAX_MS; i++)
		d *= 2;
	return d < NAK_DELAY_MAX_MS ? d : NAK_DELAY_MAX_MS;
}

/* Returns a new NUL-terminated copy of len bytes that is valid UTF-8 with no
 * NUL inside (bad bytes become '?'), fit for a PostgreSQL text column. */
static char *
bus_text_sanitize(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80      ? 1
		    : (c & 0xe0) == 0xc0 ? 2
		    : (c & 0xf0) == 0xe0 ? 3
		    : (c & 0xf8) == 0xf0 ? 4
		                         : 0;
		bool ok = n > 0 && i + n <= len && c != 0 && c != 0xc0 &&
		    c != 0xc1 && c <= 0xf4;

		for (size_t k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Returns a new CloudEvents 1.0 JSON text (caller frees with free()) for one
 * event; data_text is spliced in as is (it comes from a jsonb column), and
 * subject, time and data are left out when NULL. Returns NULL when a string
 * is not valid UTF-8. */
static char *
bus_envelope_build(const char *source, const char *id, const char *type,
    const char *subject, const char *time, const char *data_text)
{
	json_t *env = json_object();
	size_t n, data_len = data_text ? strlen(data_text) : 0;
	char *buf;
	int bad = 0;

	bad |= json_object_set_new(env, "specversion", json_string("1.0"));
	bad |= json_object_set_new(env, "id", json_string(id));
	bad |= json_object_set_new(env, "source", json_string(source));
	bad |= json_object_set_new(env, "type", json_string(type));
	if (time != NULL)
		bad |= json_object_set_new(env, "time", json_string(time));
	if (subject != NULL)
		bad |=
		    json_object_set_new(env, "subject", json_string(subject));
	if (data_text != NULL)
		bad |= json_object_set_new(env, "datacontenttype",
		    json_string("application/json"));
	if (bad) {
		json_decref(env);
		return NULL;
	}
	n = json_dumpb(env, NULL, 0, JSON_COMPACT);
	buf = xmalloc(n + data_len + sizeof(",\"data\":}"));
	json_dumpb(env, buf, n, JSON_COMPACT);
	json_decref(env);
	if (data_text != NULL) {
		/* Replace the object's closing '}' by the data member. */
		n--;
		memcpy(buf + n, ",\"data\":", 8);
		n += 8;
		memcpy(buf + n, data_text, data_len);
		n += data_len;
		buf[n++] = '}';
	}
	buf[n] = '\0';
	return buf;
}

static const char *
bus_json_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Parses a CloudEvents envelope into ev (whose strings borrow from *root,
 * which the caller releases with json_decref()). Returns 0, or -1 with a
 * reason in err and *root NULL. Leaves nats_subject and deliveries to the
 * caller. */
static int
bus_envelope_parse(struct bus_event *ev, json_t **root, const char *payload,
    size_t len, char *err, size_t err_size)
{
	json_error_t jerr;
	json_t *env, *v;
	const char *why = NULL;

	memset(ev, 0, sizeof(*ev));
	*root = NULL;
	env = json_loadb(payload, len, 0, &jerr);
	if (env == NULL) {
		snprintf(err, err_size, "envelope is not JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(env))
		why = "envelope is not an object";
	else if (!json_is_string(json_object_get(env, "specversion")) ||
	    strcmp(bus_json_str(env, "specversion"), "1.0") != 0)
		why = "specversion is not 1.0";
	else if (!bus_uuid_valid(bus_json_str(env, "id")))
		why = "id is not a UUID";
	else if (bus_json_str(env, "type") == NULL ||
	    !*bus_json_str(env, "type"))
		why = "type is missing";
	else if (bus_json_str(env, "source") == NULL)
		why = "source is missing";
	else if ((v = json_object_get(env, "time")) != NULL &&
	    !json_is_string(v))
		why = "time is not a string";
	else if ((v = json_object_get(env, "subject")) != NULL &&
	    !json_is_string(v) && !json_is_null(v))
		why = "subject is not a string";
	if (why != NULL) {
		snprintf(err, err_size, "%s", why);
		json_decref(env);
		return -1;
	}
	ev->id = bus_json_str(env, "id");
	ev->type = bus_json_str(env, "type");
	ev->source = bus_json_str(env, "source");
	ev->subject = bus_json_str(env, "subject");
	ev->time = bus_json_str(env, "time");
	ev->data = json_object_get(env, "data");
	*root = env;
	return 0;
}

/* Appends printf output to a Prometheus text buffer, counting what would
 * have been written when the buffer is full. */
struct bus_textbuf {
	char *buf;
	size_t size;
	size_t len;
};

static void bus_textbuf_printf(struct bus_textbuf *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
bus_textbuf_printf(struct bus_textbuf *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (t->len < t->size)
		n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

/* ---- producing --------------------------------------------------------- */

int
bus_event_prepare(struct bus_event_row *out, const char *type,
    const char *subject, json_t *data)
{
	char nats_subject[256];

	memset(out, 0, sizeof(*out));
	if (bus_subject(type, nats_subject, sizeof(nats_subject)) != 0)
		return -1;
	if (data != NULL) {
		size_t n =
		    json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);

		if (n == 0)
			return -1;
		out->data = xmalloc(n + 1);
		json_dumpb(data, out->data, n, JSON_COMPACT | JSON_ENCODE_ANY);
		out->data[n] = '\0';
	}
	uuid_v4(out->id);
	out->type = xstrdup(type);
	out->subject = subject ? xstrdup(subject) : NULL;
	return 0;
}

void
bus_event_row_params(const struct bus_event_row *row, const char *params[4])
{
	params[0] = row->id;
	params[1] = row->type;
	params[2] = row->subject;
	params[3] = row->data;
}

void
bus_event_row_clear(struct bus_event_row *row)
{
	free(row->type);
	free(row->subject);
	free(row->data);
	memset(row, 0, sizeof(*row));
}

/* ---- handler SQL ------------------------------------------------------- */

static void
bus_tx_set_error(struct bus_tx *tx, const PGresult *res)
{
	const char *primary =
	    res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state =
	    res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (primary == NULL)
		primary = PQerrorMessage(tx->pg);
	snprintf(tx->error, sizeof(tx->error), "%s (%s)", primary,
	    state ? state : "no sqlstate");
}

long
bus_tx_exec(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res =
	    PQexecParams(tx->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	long n = -1;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		const char *t = PQcmdTuples(res);

		n = *t ? strtol(t, NULL, 10) : 0;
	} else {
		bus_tx_set_error(tx, res);
	}
	PQclear(res);
	return n;
}

int
bus_tx_query(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params, struct bus_rows **out)
{
	PGresult *res =
	    PQexecParams(tx->pg, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		bus_tx_set_error(tx, res);
		PQclear(res);
		return -1;
	}
	*out = xmalloc(sizeof(**out));
	(*out)->res = res;
	return 0;
}

const char *
bus_tx_error(const struct bus_tx *tx)
{
	return tx->error;
}

int
bus_rows_count(const struct bus_rows *rows)
{
	return PQntuples(rows->res);
}

const char *
bus_rows_value(const struct bus_rows *rows, int row, int col)
{
	if (row < 0 || row >= PQntuples(rows->res) || col < 0 ||
	    col >= PQnfields(rows->res) || PQgetisnull(rows->res, row, col))
		return NULL;
	return PQgetvalue(rows->res, row, col);
}

void
bus_rows_free(struct bus_rows *rows)
{
	if (rows == NULL)
		return;
	PQclear(rows->res);
	free(rows);
}

/* ---- plumbing shared by the threads ------------------------------------ */

static bool
bus_stopping(struct bus *bus)
{
	return atomic_load(&bus->stopping) != 0;
}

/* Sleeps ms unless the bus is closing. Returns -1 when it is. */
static int
bus_sleep(struct bus *bus, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&bus->mu);
	while (!bus_stopping(bus))
		if (pthread_cond_timedwait(&bus->stop_cond, &bus->mu, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&bus->mu);
	return bus_stopping(bus) ? -1 : 0;
}

/* The next backoff delay: 100 ms doubling to cap_ms. */
static int64_t
bus_backoff(struct bus_link *link, int64_t cap_ms)
{
	link->backoff_ms =
	    link->backoff_ms ? link->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (link->backoff_ms > cap_ms)
		link->backoff_ms = cap_ms;
	return link->backoff_ms;
}

static bool
bus_nats_up(struct bus *bus)
{
	return natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

static void
bus_link_nats(struct bus_link *link, bool up, natsStatus s)
{
	if (!up && !link->nats_down)
		log_warn(NULL,
		    "msg=bus_nats_failed thread=%s status=\"%s\" error=\"%s\"",
		    link->who, natsStatus_GetText(s), nats_GetLastError(NULL));
	else if (up && link->nats_down)
		log_info(NULL, "msg=bus_nats_ok thread=%s", link->who);
	link->nats_down = !up;
}

/* libpq would print notices (and the server's goodbye on a terminated
 * connection) raw on stderr; keep them in the log's format instead. */
static void
bus_pg_notice(void *arg, const char *message)
{
	const struct bus_link *link = arg;

	log_debug(NULL, "msg=bus_pg_notice thread=%s text=\"%.200s\"",
	    link->who, message);
}

/* Opens this thread's connection with search_path set to the service schema,
 * or returns NULL (logged once per outage). */
static PGconn *
bus_pg_connect(struct bus *bus, struct bus_link *link)
{
	char app[96];
	const char *const keys[] = {"connect_timeout", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "dbname",
	    "application_name", NULL};
	const char *vals[] = {"5", "30", "10", "3", bus->db_url, app, NULL};
	const char *params[1] = {bus->schema};
	PGconn *pg;
	PGresult *res;

	snprintf(app, sizeof(app), "caplat-%s-bus-%s", bus->service, link->who);
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL)
		fatal("out of memory (PQconnectdbParams)");
	PQsetNoticeProcessor(pg, bus_pg_notice, link);
	if (PQstatus(pg) == CONNECTION_OK) {
		res = PQexecParams(pg,
		    "SELECT pg_catalog.set_config('search_path', $1, false)", 1,
		    NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			PQclear(res);
			if (link->pg_down)
				log_info(NULL, "msg=bus_pg_ok thread=%s",
				    link->who);
			link->pg_down = false;
			return pg;
		}
		PQclear(res);
	}
	if (!link->pg_down)
		log_warn(NULL, "msg=bus_pg_failed thread=%s error=\"%s\"",
		    link->who, PQerrorMessage(pg));
	link->pg_down = true;
	PQfinish(pg);
	return NULL;
}

/* Runs a statement without parameters that returns no rows. */
static int
bus_pg_command(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;

	PQclear(res);
	return rc;
}

/* Notes a failed statement: a broken connection is closed and cleared so
 * the thread reconnects; a live one is left for the caller to roll back. */
static void
bus_pg_check(PGconn **pg, struct bus_link *link)
{
	if (*pg == NULL || PQstatus(*pg) == CONNECTION_OK)
		return;
	log_warn(NULL, "msg=bus_pg_lost thread=%s error=\"%s\"", link->who,
	    PQerrorMessage(*pg));
	link->pg_down = true;
	PQfinish(*pg);
	*pg = NULL;
}

/* Crashes the process for the fault-injection tests, once when
 * CAPLAT_FAULT_ONCE names a file (created first; no crash if it exists). */
static void
bus_fault_crash(struct bus *bus, enum bus_fault fault)
{
	if (bus->fault != fault)
		return;
	if (bus->fault_once != NULL) {
		int fd =
		    open(bus->fault_once, O_WRONLY | O_CREAT | O_EXCL, 0644);

		if (fd < 0)
			return;
		close(fd);
	}
	log_warn(NULL, "msg=bus_fault_injected fault=%s",
	    fault == BUS_FAULT_RELAY_CRASH_AFTER_PUBLISH
	        ? "relay_crash_after_publish"
	        : "consumer_crash_before_commit");
	_exit(137);
}

/* Creates the stream when missing; "already exists" is success. */
static int
bus_ensure_stream(struct bus *bus, jsCtx *js, struct bus_link *link)
{
	const char *subjects[] = {BUS_SUBJECT_PREFIX ">"};
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	if (atomic_load(&bus->stream_ready))
		return 0;
	jsStreamConfig_Init(&cfg);
	cfg.Name = BUS_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = DEDUP_WINDOW_NS;
	/* Retention: a week of events (PostgreSQL is the source of truth; the
	 * inbox remembers ids for longer than any redelivery can come). */
	cfg.MaxAge = (int64_t)bus->stream_max_age_h * 3600 * 1000000000LL;
	cfg.Replicas = bus->stream_replicas;
	s = js_AddStream(NULL, js, &cfg, NULL, &jerr);
	if (s != NATS_OK && jerr != JSStreamNameExistErr) {
		bus_link_nats(link, false, s);
		return -1;
	}
	atomic_store(&bus->stream_ready, 1);
	return 0;
}

/* Connection callbacks get no closure: nats.c 3.4.1 runs them on its own
 * thread even after natsConnection_Destroy() returned, when the bus may be
 * freed already. They only log. */
static void
bus_on_connected(natsConnection *nc, void *closure)
{
	log_info(NULL, "msg=bus_nats_connected");
}

static void
bus_on_disconnected(natsConnection *nc, void *closure)
{
	if (!natsConnection_IsClosed(nc)) /* closed: bus_close, not an outage */
		log_warn(NULL, "msg=bus_nats_disconnected");
}

static void
bus_on_reconnected(natsConnection *nc, void *closure)
{
	log_info(NULL, "msg=bus_nats_reconnected");
}

static void
bus_on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *closure)
{
	log_warn(NULL, "msg=bus_nats_async_error status=\"%s\"",
	    natsStatus_GetText(err));
}

/* ---- relay ------------------------------------------------------------- */

static void
relay_batch_fail(struct relay_batch *b, const char *id, const char *why)
{
	pthread_mutex_lock(&b->mu);
	for (int k = 0; k < b->count; k++) {
		int i = (b->hint + k) % b->count;

		if (strcmp(b->rows[i].id, id) == 0) {
			if (b->rows[i].state == ROW_SENT)
				b->rows[i].state = ROW_FAILED;
			b->hint = i + 1 < b->count ? i + 1 : 0;
			break;
		}
	}
	if (why != NULL)
		snprintf(b->error, sizeof(b->error), "%s", why);
	pthread_mutex_unlock(&b->mu);
}

/* nats.c calls this on its own thread for each publish the server refused. */
static void
relay_on_publish_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct bus *bus = closure;
	const char *id = NULL;

	if (pae->Msg != NULL &&
	    natsMsgHeader_Get(pae->Msg, MSG_ID_HEADER, &id) == NATS_OK)
		relay_batch_fail(&bus->batch, id, pae->ErrText);
}

/* Takes back the publishes still unacknowledged after the wait: each is a
 * failure of this batch (the row stays unpublished; the stream's dedup and
 * the consumers' inbox absorb a late success). */
static void
relay_reclaim_pending(struct bus *bus, jsCtx *js)
{
	natsMsgList pending = {NULL, 0};
	jsPubOptions wait;

	if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) {
		for (int i = 0; i < pending.Count; i++) {
			const char *id = NULL;

			if (natsMsgHeader_Get(pending.Msgs[i], MSG_ID_HEADER,
			        &id) == NATS_OK)
				relay_batch_fail(&bus->batch, id,
				    "no acknowledgment in time");
		}
		natsMsgList_Destroy(&pending);
	}
	/* Let running error callbacks finish before the batch is read. */
	jsPubOptions_Init(&wait);
	wait.MaxWait = 1000;
	js_PublishAsyncComplete(js, &wait);
}

/* Publishes one claimed row. Returns 0 when nats.c took it, -1 when it could
 * not be sent now, -2 when the row itself can never be published. */
static int
relay_publish_row(struct bus *bus, jsCtx *js, PGresult *res, int i)
{
	const char *id = PQgetvalue(res, i, 1), *type = PQgetvalue(res, i, 2);
	const char *subject =
	    PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
	const char *data =
	    PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
	const char *time = PQgetvalue(res, i, 5);
	char nats_subject[256];
	natsMsg *msg = NULL;
	jsPubOptions po;
	char *env;
	natsStatus s;

	if (bus_subject(type, nats_subject, sizeof(nats_subject)) != 0) {
		log_error(NULL,
		    "msg=bus_outbox_bad_row id=%s error=\"type is not a "
		    "valid subject\"",
		    id);
		return -2;
	}
	env = bus_envelope_build(bus->source, id, type, subject, time, data);
	if (env == NULL) {
		log_error(NULL,
		    "msg=bus_outbox_bad_row id=%s error=\"not UTF-8\"", id);
		return -2;
	}
	jsPubOptions_Init(&po);
	po.MsgId = id;
	s = natsMsg_Create(&msg, nats_subject, NULL, env, (int)strlen(env));
	if (s == NATS_OK)
		s = js_PublishMsgAsync(js, &msg, &po);
	natsMsg_Destroy(msg); /* NULL when nats.c took it */
	free(env);
	return s == NATS_OK ? 0 : -1;
}

struct relay_result {
	int claimed;
	int acked;  /* marked published */
	int failed; /* left unpublished for the next pass */
	int bad;    /* set aside as published, never sent */
};

/* One pass: claim up to RELAY_BATCH unpublished rows, publish them, wait
 * for the acks, mark the acknowledged rows published, commit. Returns 0 with
 * counts in r, or -1 when PostgreSQL failed (the transaction is rolled back
 * or the connection is gone). */
static int
relay_pass(struct bus *bus, PGconn *pg, jsCtx *js, struct relay_result *r)
{
	static const char claim_sql[] =
	    "SELECT seq, id, type, subject, data::text, "
	    "to_char(created_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	    "FROM outbox WHERE published_at IS NULL ORDER BY seq "
	    "LIMIT " STR(RELAY_BATCH) " FOR UPDATE SKIP LOCKED";
	struct relay_batch *b = &bus->batch;
	int64_t t0 = now_mono_us(), t_claim, t_sent, t_acked;
	char *seqs = NULL;
	size_t seqs_len = 0;
	jsPubOptions wait;
	PGresult *res;
	bool ok;
	int n;

	memset(r, 0, sizeof(*r));
	if (bus_pg_command(pg, "BEGIN") != 0)
		return -1;
	res = PQexec(pg, claim_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		bus_pg_command(pg, "ROLLBACK");
		return -1;
	}
	n = r->claimed = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return bus_pg_command(pg, "COMMIT");
	}
	t_claim = now_mono_us();

	pthread_mutex_lock(&b->mu);
	b->count = n;
	b->hint = 0;
	b->error[0] = '\0';
	for (int i = 0; i < n; i++) {
		b->rows[i].seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(b->rows[i].id, sizeof(b->rows[i].id), "%s",
		    PQgetvalue(res, i, 1));
		b->rows[i].state = ROW_SENT;
	}
	pthread_mutex_unlock(&b->mu);

	for (int i = 0; i < n; i++) {
		int rc = relay_publish_row(bus, js, res, i);

		if (rc == -1) {
			relay_batch_fail(b, PQgetvalue(res, i, 1),
			    nats_GetLastError(NULL));
		} else if (rc == -2) {
			pthread_mutex_lock(&b->mu);
			b->rows[i].state = ROW_BAD;
			pthread_mutex_unlock(&b->mu);
		}
	}
	PQclear(res);
	t_sent = now_mono_us();

	jsPubOptions_Init(&wait);
	wait.MaxWait = RELAY_ACK_WAIT_MS;
	if (js_PublishAsyncComplete(js, &wait) != NATS_OK)
		relay_reclaim_pending(bus, js);
	t_acked = now_mono_us();

	/* The acknowledged rows, as a bigint[] literal "{1,2,3}". */
	seqs = xmalloc((size_t)n * 21 + 3);
	seqs[seqs_len++] = '{';
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < n; i++) {
		if (b->rows[i].state == ROW_FAILED) {
			r->failed++;
			continue;
		}
		seqs_len += (size_t)sprintf(seqs + seqs_len, "%s%" PRId64,
		    r->acked + r->bad ? "," : "", b->rows[i].seq);
		if (b->rows[i].state == ROW_BAD)
			r->bad++;
		else
			r->acked++;
	}
	if (r->failed > 0)
		log_warn(NULL,
		    "msg=bus_relay_publish_failed failed=%d acked=%d "
		    "error=\"%s\"",
		    r->failed, r->acked, b->error);
	b->count = 0;
	pthread_mutex_unlock(&b->mu);
	seqs[seqs_len++] = '}';
	seqs[seqs_len] = '\0';
	atomic_fetch_add(&bus->publish_errors,
	    (unsigned long long)(r->failed + r->bad));

	if (r->acked + r->bad > 0) {
		const char *params[1] = {seqs};

		if (r->acked > 0)
			bus_fault_crash(bus,
			    BUS_FAULT_RELAY_CRASH_AFTER_PUBLISH);
		res = PQexecParams(pg,
		    "UPDATE outbox SET published_at = now()"
		    " WHERE seq = ANY($1::bigint[])",
		    1, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (!ok) {
			free(seqs);
			bus_pg_command(pg, "ROLLBACK");
			return -1;
		}
	}
	free(seqs);
	if (bus_pg_command(pg, "COMMIT") != 0)
		return -1;
	atomic_fetch_add(&bus->published, (unsigned long long)r->acked);
	log_debug(NULL,
	    "msg=bus_relay_batch claimed=%d acked=%d failed=%d"
	    " claim_us=%" PRId64 " send_us=%" PRId64 " ack_us=%" PRId64
	    " mark_us=%" PRId64,
	    n, r->acked, r->failed, t_claim - t0, t_sent - t_claim,
	    t_acked - t_sent, now_mono_us() - t_acked);
	return 0;
}

/* Deletes rows published over a day ago among the RELAY_CLEANUP_CHUNK
 * oldest sequence numbers: a short range scan on the primary key. */
static const char relay_cleanup_sql[] =
    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox"
    " WHERE seq < (SELECT min(seq) FROM outbox) + 10000"
    " AND published_at < now() - interval '24 hours')";

/* Counts the backlog and, now and then, deletes rows published over a day
 * ago, a bounded range of the oldest rows at a time. */
static void
relay_housekeeping(struct bus *bus, PGconn *pg, int64_t now_ms,
    int64_t *next_count, int64_t *next_cleanup)
{
	PGresult *res;

	if (now_ms >= *next_count) {
		*next_count = now_ms + RELAY_SWEEP_MS;
		res = PQexec(pg,
		    "SELECT count(*) FROM outbox WHERE published_at IS NULL");
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			atomic_store(&bus->backlog,
			    strtoll(PQgetvalue(res, 0, 0), NULL, 10));
		PQclear(res);
	}
	if (now_ms >= *next_cleanup) {
		long total = 0, n;

		*next_cleanup = now_ms + RELAY_CLEANUP_EVERY_MS;
		do {
			res = PQexec(pg, relay_cleanup_sql);
			n = PQresultStatus(res) == PGRES_COMMAND_OK
			    ? strtol(PQcmdTuples(res), NULL, 10)
			    : 0;
			PQclear(res);
			total += n;
		} while (n > 0 && total < 100L * RELAY_CLEANUP_CHUNK &&
		    !bus_stopping(bus));
		if (total > 0)
			log_info(NULL, "msg=bus_outbox_cleanup deleted=%ld",
			    total);
		/* Inbox ids outlive the stream's retention twice over. */
		char sql[160];
		snprintf(sql, sizeof(sql),
		    "DELETE FROM inbox WHERE processed_at <"
		    " now() - make_interval(hours => %d)",
		    2 * bus->stream_max_age_h);
		PQclear(PQexec(pg, sql));
	}
}

/* Consumes queued notifications; returns 1 when one was for this schema
 * (the trigger sends the schema name; an empty payload counts too). */
static int
relay_notified(struct bus *bus, PGconn *pg)
{
	PGnotify *note;
	int mine = 0;

	while ((note = PQnotifies(pg)) != NULL) {
		if (note->extra[0] == '\0' ||
		    strcmp(note->extra, bus->schema) == 0)
			mine = 1;
		PQfreemem(note);
	}
	return mine;
}

/* Waits until this schema's outbox is notified, timeout_ms pass or bus_close.
 * Returns -1 when the connection broke. */
static int
relay_wait(struct bus *bus, PGconn *pg, int timeout_ms)
{
	struct pollfd fds[2] = {{bus->wake[0], POLLIN, 0}, {-1, POLLIN, 0}};
	int64_t deadline = now_mono_us() / 1000 + timeout_ms;

	/* Notifications read along with the last results need no waiting. */
	if (pg != NULL) {
		if (relay_notified(bus, pg))
			return 0;
		fds[1].fd = PQsocket(pg);
	}
	for (;;) {
		int64_t left = deadline - now_mono_us() / 1000;

		if (left <= 0 || poll(fds, pg != NULL ? 2 : 1, (int)left) <= 0)
			return 0;
		if (fds[0].revents & POLLIN) {
			char drain[64];

			while (read(bus->wake[0], drain, sizeof(drain)) > 0)
				;
			return 0;
		}
		if (pg != NULL && fds[1].revents != 0) {
			if (PQconsumeInput(pg) == 0)
				return -1;
			if (relay_notified(bus, pg))
				return 0;
		}
	}
}

static void *
relay_main(void *arg)
{
	struct bus *bus = arg;
	struct bus_link link = {.who = "relay"};
	int64_t next_count = 0, next_cleanup = 0;
	PGconn *pg = NULL;
	jsCtx *js = NULL;
	jsOptions jo;

	jsOptions_Init(&jo);
	jo.PublishAsync.ErrHandler = relay_on_publish_error;
	jo.PublishAsync.ErrHandlerClosure = bus;
	if (natsConnection_JetStream(&js, bus->nc, &jo) != NATS_OK)
		fatal("bus: cannot create a JetStream context: %s",
		    nats_GetLastError(NULL));
	log_info(NULL, "msg=bus_relay_started schema=%s", bus->schema);

	while (!bus_stopping(bus)) {
		struct relay_result r;

		if (pg == NULL) {
			pg = bus_pg_connect(bus, &link);
			if (pg != NULL &&
			    bus_pg_command(pg, "LISTEN caplat_outbox") != 0)
				bus_pg_check(&pg, &link);
			if (pg == NULL) {
				bus_sleep(bus,
				    bus_backoff(&link, BACKOFF_MAX_MS));
				continue;
			}
		}
		if (!bus_nats_up(bus) ||
		    bus_ensure_stream(bus, js, &link) != 0) {
			if (relay_wait(bus, pg,
			        (int)bus_backoff(&link, RELAY_SWEEP_MS)) != 0)
				bus_pg_check(&pg, &link);
			continue;
		}
		if (relay_pass(bus, pg, js, &r) != 0) {
			bus_pg_check(&pg, &link);
			if (pg != NULL)
				log_warn(NULL,
				    "msg=bus_relay_pass_failed error=\"%s\"",
				    PQerrorMessage(pg));
			bus_sleep(bus, bus_backoff(&link, BACKOFF_MAX_MS));
			continue;
		}
		if (r.failed > 0) {
			/* Maybe the stream is gone: create it again. */
			atomic_store(&bus->stream_ready, 0);
			bus_sleep(bus, bus_backoff(&link, BACKOFF_MAX_MS));
			continue;
		}
		link.backoff_ms = 0;
		bus_link_nats(&link, true, NATS_OK);
		relay_housekeeping(bus, pg, now_mono_us() / 1000, &next_count,
		    &next_cleanup);
		if (r.claimed == RELAY_BATCH)
			continue;
		if (relay_wait(bus, pg, RELAY_SWEEP_MS) != 0)
			bus_pg_check(&pg, &link);
	}
	/* Publishes still in flight are dropped with the context; their rows
	 * were not marked, so the next relay publishes them again. */
	jsCtx_Destroy(js);
	PQfinish(pg);
	return NULL;
}

/* ---- consumers --------------------------------------------------------- */

/* A consumer thread's state. */
struct consumer_run {
	struct bus_consumer *c;
	struct bus_link link;
	PGconn *pg;
	jsCtx *js;
	natsSubscription *sub;
	natsSubscription *advisories;
	int fetch_errors;
	/* nats.c's Fetch long-polls until the whole batch or the timeout: when
	 * the stream is idle a batch of 64 would hold the first new event for
	 * the full wait. Idle, ask for one (answered the moment it arrives);
	 * busy, for a batch (what is there, at once). */
	int want;
};

enum consumer_tx_result {
	TX_COMMITTED,
	TX_FAILED, /* rolled back; the error is in err */
	TX_LOST, /* the connection broke; nothing is known to have committed */
};

enum consumer_item_state {
	ITEM_NEW,
	ITEM_APPLIED,   /* handler ran in the current transaction */
	ITEM_DUPLICATE, /* already in the inbox */
	ITEM_ALONE,     /* bad envelope: settled on its own */
};

/* One fetched message, parsed once. */
struct consumer_item {
	natsMsg *msg;
	struct bus_event ev;
	json_t *root; /* NULL when the envelope is bad */
	char bad[ERROR_TEXT_MAX];
	enum consumer_item_state state;
	bool settled; /* acked, termed or naked */
};

/* Creates or updates the durable consumer and binds a pull subscription. */
static int
consumer_subscribe(struct consumer_run *run)
{
	struct bus_consumer *c = run->c;
	jsConsumerConfig cc;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	if (bus_ensure_stream(c->bus, run->js, &run->link) != 0)
		return -1;
	jsConsumerConfig_Init(&cc);
	cc.Durable = c->durable;
	cc.FilterSubject = c->filter;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = (int64_t)c->bus->ack_wait_ms * 1000000;
	cc.MaxDeliver = c->max_deliver;
	s = js_AddConsumer(NULL, run->js, BUS_STREAM, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		/* An existing durable with another config: bring it in line. */
		jerr = 0;
		s = js_UpdateConsumer(NULL, run->js, BUS_STREAM, &cc, NULL,
		    &jerr);
		if (s != NATS_OK)
			log_warn(NULL,
			    "msg=bus_consumer_config_kept consumer=%s "
			    "error=\"%s\" jserr=%d",
			    c->durable, nats_GetLastError(NULL), (int)jerr);
	}
	jsSubOptions_Init(&so);
	so.Stream = BUS_STREAM;
	so.Consumer = c->durable;
	s = js_PullSubscribe(&run->sub, run->js, c->filter, c->durable, NULL,
	    &so, &jerr);
	if (s != NATS_OK) {
		bus_link_nats(&run->link, false, s);
		run->sub = NULL;
		return -1;
	}
	s = natsConnection_SubscribeSync(&run->advisories, c->bus->nc,
	    c->advisory_subject);
	if (s != NATS_OK) {
		bus_link_nats(&run->link, false, s);
		natsSubscription_Destroy(run->sub);
		run->sub = NULL;
		run->advisories = NULL;
		return -1;
	}
	log_info(NULL,
	    "msg=bus_consumer_subscribed consumer=%s filter=%s max_deliver=%d",
	    c->durable, c->filter, c->max_deliver);
	return 0;
}

static int
consumer_deliveries(natsMsg *msg)
{
	jsMsgMetaData *meta = NULL;
	int n = 1;

	if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
		n = meta->NumDelivered > INT32_MAX ? INT32_MAX
		                                   : (int)meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	return n;
}

/* Inside an open transaction: the inbox row, then the handler unless the
 * event is already there. Sets item->state; returns 0, or -1 with err set
 * when the transaction must be rolled back. */
static int
consumer_apply(struct consumer_run *run, struct consumer_item *item, char *err,
    size_t err_size)
{
	struct bus_consumer *c = run->c;
	const char *params[2] = {c->durable, item->ev.id};
	struct bus_tx tx = {run->pg, ""};
	PGresult *res;
	bool duplicate;

	res = PQexecParams(run->pg,
	    "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2::uuid) "
	    "ON CONFLICT DO NOTHING",
	    2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		bus_tx_set_error(&tx, res);
		snprintf(err, err_size, "inbox insert failed: %s", tx.error);
		PQclear(res);
		return -1;
	}
	duplicate = strcmp(PQcmdTuples(res), "0") == 0;
	PQclear(res);
	if (duplicate) {
		item->state = ITEM_DUPLICATE;
		return 0;
	}
	if (c->handler(&tx, &item->ev, c->arg) != 0) {
		snprintf(err, err_size, "%s",
		    tx.error[0] ? tx.error : "handler failed");
		return -1;
	}
	if (PQtransactionStatus(run->pg) != PQTRANS_INTRANS) {
		snprintf(err, err_size,
		    "handler ended or aborted the transaction: %s",
		    tx.error[0] ? tx.error : "no error recorded");
		return -1;
	}
	item->state = ITEM_APPLIED;
	return 0;
}

static enum consumer_tx_result
consumer_commit(struct consumer_run *run, bool handlers_ran, char *err,
    size_t err_size)
{
	struct bus_tx tx = {run->pg, ""};
	PGresult *res;

	if (handlers_ran)
		bus_fault_crash(run->c->bus,
		    BUS_FAULT_CONSUMER_CRASH_BEFORE_COMMIT);
	res = PQexec(run->pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		bus_tx_set_error(&tx, res);
		snprintf(err, err_size, "COMMIT failed: %s", tx.error);
		PQclear(res);
		return TX_FAILED;
	}
	PQclear(res);
	return TX_COMMITTED;
}

static enum consumer_tx_result
consumer_rollback(struct consumer_run *run)
{
	if (PQstatus(run->pg) == CONNECTION_OK &&
	    PQtransactionStatus(run->pg) != PQTRANS_IDLE)
		bus_pg_command(run->pg, "ROLLBACK");
	return PQstatus(run->pg) == CONNECTION_OK ? TX_FAILED : TX_LOST;
}

/* One transaction for items[0..n), or for a prefix of them once
 * GROUP_MAX_MS is spent, so a commit's flush is shared by many events while
 * locks are not held long. Bad envelopes are left for settling alone.
 * *took is how many items the transaction covered (on TX_FAILED, up to and
 * including the one that failed). */
static enum consumer_tx_result
consumer_group_tx(struct consumer_run *run, struct consumer_item *items, int n,
    int *took)
{
	int64_t deadline = now_mono_us() + GROUP_MAX_MS * 1000;
	char err[ERROR_TEXT_MAX];
	bool handlers_ran = false;
	int j;

	*took = 0;
	if (bus_pg_command(run->pg, "BEGIN") != 0)
		return consumer_rollback(run);
	for (j = 0; j < n; j++) {
		items[j].state = ITEM_NEW;
		if (items[j].root == NULL) {
			items[j].state = ITEM_ALONE;
		} else if (consumer_apply(run, &items[j], err, sizeof(err)) !=
		    0) {
			*took = j + 1;
			return consumer_rollback(run);
		}
		handlers_ran |= items[j].state == ITEM_APPLIED;
		if (now_mono_us() >= deadline) {
			j++;
			break;
		}
	}
	*took = j;
	if (consumer_commit(run, handlers_ran, err, sizeof(err)) !=
	    TX_COMMITTED)
		return consumer_rollback(run);
	return TX_COMMITTED;
}

/* BEGIN; inbox insert; handler; COMMIT — one event in its own transaction. */
static enum consumer_tx_result
consumer_single_tx(struct consumer_run *run, struct consumer_item *item,
    char *err, size_t err_size)
{
	if (bus_pg_command(run->pg, "BEGIN") != 0) {
		snprintf(err, err_size, "BEGIN failed: %s",
		    PQerrorMessage(run->pg));
		return consumer_rollback(run);
	}
	item->state = ITEM_NEW;
	if (consumer_apply(run, item, err, err_size) != 0)
		return consumer_rollback(run);
	if (consumer_commit(run, item->state == ITEM_APPLIED, err, err_size) !=
	    TX_COMMITTED)
		return consumer_rollback(run);
	return TX_COMMITTED;
}

/* Publishes a dead event's payload on caplat.dlq.<durable>; best effort, the
 * dead_letter row is the record. */
static void
consumer_publish_dlq(struct consumer_run *run, const char *payload, int len,
    const char *event_id, uint64_t stream_seq, const char *error)
{
	struct bus_consumer *c = run->c;
	char msg_id[160], header[128];
	natsMsg *msg = NULL;
	jsPubOptions po;
	natsStatus s;
	size_t i;

	if (event_id != NULL)
		snprintf(msg_id, sizeof(msg_id), "dlq.%s.%s", c->durable,
		    event_id);
	else
		snprintf(msg_id, sizeof(msg_id), "dlq.%s.seq%" PRIu64,
		    c->durable, stream_seq);
	/* A header value must stay on one line. */
	snprintf(header, sizeof(header), "%s", error);
	for (i = 0; header[i] != '\0'; i++)
		if (header[i] == '\r' || header[i] == '\n')
			header[i] = ' ';
	jsPubOptions_Init(&po);
	po.MsgId = msg_id;
	po.MaxWait = 2000;
	s = natsMsg_Create(&msg, c->dlq_subject, NULL, payload, len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Caplat-Consumer", c->durable);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Caplat-Error", header);
	if (s == NATS_OK)
		s = js_PublishMsg(NULL, run->js, msg, &po, NULL);
	if (s != NATS_OK)
		log_warn(NULL,
		    "msg=bus_dlq_publish_failed consumer=%s event_id=%s "
		    "error=\"%s\"",
		    c->durable, event_id ? event_id : "-",
		    nats_GetLastError(NULL));
	natsMsg_Destroy(msg);
}

/* Records a dead event: the dead_letter row (once per consumer and event),
 * the DLQ message, one error line and the counter. Returns -1 when the row
 * could not be written (the caller keeps the message and retries). */
static int
consumer_dead_letter(struct consumer_run *run, const char *payload, int len,
    const char *event_id, const char *nats_subject, uint64_t stream_seq,
    int deliveries, const char *error)
{
	struct bus_consumer *c = run->c;
	char deliveries_text[16];
	char *text = bus_text_sanitize(payload, (size_t)len);
	const char *params[6] = {c->durable, event_id, nats_subject, text,
	    error, deliveries_text};
	PGresult *res;
	bool written;

	snprintf(deliveries_text, sizeof(deliveries_text), "%d", deliveries);
	res = PQexecParams(run->pg,
	    "INSERT INTO dead_letter (consumer, event_id, subject, payload,"
	    " error, deliveries) SELECT $1, $2, $3, $4, $5, $6::int"
	    " WHERE $2::text IS NULL "
	    "OR NOT EXISTS (SELECT 1 FROM dead_letter WHERE consumer = $1 "
	    "AND event_id = $2 AND replayed_at IS NULL)",
	    6, NULL, params, NULL, NULL, 0);
	written = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!written)
		log_error(NULL,
		    "msg=bus_dead_letter_write_failed consumer=%s event_id=%s "
		    "error=\"%s\"",
		    c->durable, event_id ? event_id : "-",
		    PQerrorMessage(run->pg));
	PQclear(res);
	free(text);
	if (!written)
		return -1;
	consumer_publish_dlq(run, payload, len, event_id, stream_seq, error);
	atomic_fetch_add(&c->dead_letters, 1);
	log_error(NULL,
	    "msg=bus_dead_letter consumer=%s event_id=%s subject=%s "
	    "deliveries=%d error=\"%s\"",
	    c->durable, event_id ? event_id : "-", nats_subject, deliveries,
	    error);
	return 0;
}

static void
consumer_item_parse(struct consumer_item *item, natsMsg *msg)
{
	memset(item, 0, sizeof(*item));
	item->msg = msg;
	if (bus_envelope_parse(&item->ev, &item->root, natsMsg_GetData(msg),
	        (size_t)natsMsg_GetDataLength(msg), item->bad,
	        sizeof(item->bad)) != 0)
		item->root = NULL;
	item->ev.nats_subject = natsMsg_GetSubject(msg);
	item->ev.deliveries = consumer_deliveries(msg);
}

/* Acks an item whose transaction committed. */
static void
consumer_ack(struct consumer_run *run, struct consumer_item *item)
{
	natsMsg_Ack(item->msg, NULL);
	item->settled = true;
	if (item->state == ITEM_DUPLICATE) {
		atomic_fetch_add(&run->c->duplicates, 1);
		log_debug(NULL, "msg=bus_duplicate consumer=%s event_id=%s",
		    run->c->durable, item->ev.id);
	} else {
		atomic_fetch_add(&run->c->consumed, 1);
	}
}

/* Handles one item in its own transaction with a live connection; this is
 * where handler failures are counted, naked or dead-lettered. Returns 0 when
 * the item is settled, -1 when PostgreSQL failed and it must be tried again
 * once the connection is back. */
static int
consumer_process(struct consumer_run *run, struct consumer_item *item)
{
	struct bus_consumer *c = run->c;
	const char *payload = natsMsg_GetData(item->msg);
	int len = natsMsg_GetDataLength(item->msg);
	struct bus_event *ev = &item->ev;
	char err[ERROR_TEXT_MAX];

	if (item->root == NULL) {
		/* It can never succeed: dead-letter it at once. */
		if (consumer_dead_letter(run, payload, len, NULL,
		        ev->nats_subject, 0, ev->deliveries, item->bad) != 0)
			return -1;
		atomic_fetch_add(&c->handler_errors, 1);
		natsMsg_Term(item->msg, NULL);
		item->settled = true;
		return 0;
	}
	switch (consumer_single_tx(run, item, err, sizeof(err))) {
	case TX_COMMITTED:
		consumer_ack(run, item);
		return 0;
	case TX_LOST:
		return -1;
	case TX_FAILED:
		break;
	}
	if (ev->deliveries >= c->max_deliver) {
		if (consumer_dead_letter(run, payload, len, ev->id,
		        ev->nats_subject, 0, ev->deliveries, err) != 0)
			return -1;
		atomic_fetch_add(&c->handler_errors, 1);
		natsMsg_Term(item->msg, NULL);
	} else {
		int64_t delay =
		    bus_nak_delay_ms(c->bus->nak_delay_ms, ev->deliveries);

		atomic_fetch_add(&c->handler_errors, 1);
		log_warn(NULL,
		    "msg=bus_handler_failed consumer=%s event_id=%s type=%s "
		    "deliveries=%d retry_ms=%" PRId64 " error=\"%s\"",
		    c->durable, ev->id, ev->type, ev->deliveries, delay, err);
		natsMsg_NakWithDelay(item->msg, delay, NULL);
	}
	item->settled = true;
	return 0;
}

/* Keeps the unsettled items from being redelivered while they wait. */
static void
consumer_keepalive(struct consumer_run *run, struct consumer_item *items, int n,
    int64_t *last_touch)
{
	int64_t now_ms = now_mono_us() / 1000;

	if (now_ms - *last_touch < run->c->bus->ack_wait_ms / 3)
		return;
	for (int k = 0; k < n; k++)
		if (!items[k].settled)
			natsMsg_InProgress(items[k].msg, NULL);
	*last_touch = now_ms;
}

/* Waits out a PostgreSQL outage (backoff, keepalives). Returns -1 when the
 * bus is closing. */
static int
consumer_hold(struct consumer_run *run, struct consumer_item *items, int n,
    int64_t *last_touch)
{
	struct bus *bus = run->c->bus;
	int64_t cap_ms = bus->ack_wait_ms / 3;

	bus_pg_check(&run->pg, &run->link);
	consumer_keepalive(run, items, n, last_touch);
	bus_sleep(bus,
	    bus_backoff(&run->link,
	        cap_ms < BACKOFF_MAX_MS ? cap_ms : BACKOFF_MAX_MS));
	return bus_stopping(bus) ? -1 : 0;
}

/* Settles items[k] on its own, holding it through PostgreSQL outages (a nak
 * would spend a delivery). Returns -1 when the bus is closing first. */
static int
consumer_settle_alone(struct consumer_run *run, struct consumer_item *items,
    int n, int k, int64_t *last_touch)
{
	while (!items[k].settled) {
		if (run->pg == NULL)
			run->pg = bus_pg_connect(run->c->bus, &run->link);
		if (run->pg != NULL && consumer_process(run, &items[k]) == 0)
			break;
		if (consumer_hold(run, items, n, last_touch) != 0)
			return -1;
	}
	run->link.backoff_ms = 0;
	return 0;
}

/* Handles one fetch: runs of events share a transaction (acked after its
 * commit); when anything in a run fails, the run is redone one event per
 * transaction so the failure is isolated, counted and redelivered or
 * dead-lettered. On close, whatever is unsettled is naked. */
static void
consumer_handle_batch(struct consumer_run *run, natsMsgList *list)
{
	struct bus *bus = run->c->bus;
	int n = list->Count, i = 0;
	struct consumer_item *items = xcalloc((size_t)n, sizeof(*items));
	int64_t last_touch = now_mono_us() / 1000;

	for (int k = 0; k < n; k++)
		consumer_item_parse(&items[k], list->Msgs[k]);
	while (i < n && !bus_stopping(bus)) {
		enum consumer_tx_result r = TX_FAILED;
		int took = 1;

		if (n - i > 1) {
			if (run->pg == NULL)
				run->pg = bus_pg_connect(bus, &run->link);
			if (run->pg == NULL) {
				consumer_hold(run, items, n, &last_touch);
				continue;
			}
			r = consumer_group_tx(run, items + i, n - i, &took);
			if (r == TX_LOST) {
				consumer_hold(run, items, n, &last_touch);
				continue;
			}
			if (took == 0)
				took = 1; /* BEGIN failed: go on one by one */
			run->link.backoff_ms = 0;
		}
		if (r == TX_COMMITTED)
			for (int k = i; k < i + took; k++)
				if (items[k].state != ITEM_ALONE)
					consumer_ack(run, &items[k]);
		for (int k = i; k < i + took; k++)
			if (!items[k].settled &&
			    consumer_settle_alone(run, items, n, k,
			        &last_touch) != 0)
				break;
		i += took;
		consumer_keepalive(run, items, n, &last_touch);
	}
	for (int k = 0; k < n; k++) {
		if (!items[k].settled)
			natsMsg_Nak(items[k].msg, NULL);
		json_decref(items[k].root);
	}
	free(items);
}

/* Dead-letters events JetStream dropped after MaxDeliver without any outcome
 * from us (a crash or a hang on the last delivery), from the server's
 * advisories. Runs only with a live connection; best effort. */
static void
consumer_drain_advisories(struct consumer_run *run)
{
	struct bus_consumer *c = run->c;
	natsMsg *adv = NULL;

	while (run->pg != NULL && run->advisories != NULL &&
	    natsSubscription_NextMsg(&adv, run->advisories, 0) == NATS_OK) {
		json_t *a = json_loadb(natsMsg_GetData(adv),
		    (size_t)natsMsg_GetDataLength(adv), 0, NULL);
		json_int_t seq =
		    json_integer_value(json_object_get(a, "stream_seq"));
		int deliveries =
		    (int)json_integer_value(json_object_get(a, "deliveries"));
		natsMsg *m = NULL;
		struct bus_event ev;
		json_t *root = NULL;
		char err[ERROR_TEXT_MAX];
		bool applied = false;

		json_decref(a);
		natsMsg_Destroy(adv);
		adv = NULL;
		if (seq <= 0)
			continue;
		if (js_GetMsg(&m, run->js, BUS_STREAM, (uint64_t)seq, NULL,
		        NULL) != NATS_OK) {
			log_error(NULL,
			    "msg=bus_max_deliveries_lost consumer=%s"
			    " stream_seq=%" PRId64 " error=\"%s\"",
			    c->durable, (int64_t)seq, nats_GetLastError(NULL));
			continue;
		}
		if (bus_envelope_parse(&ev, &root, natsMsg_GetData(m),
		        (size_t)natsMsg_GetDataLength(m), err,
		        sizeof(err)) == 0) {
			const char *params[2] = {c->durable, ev.id};
			PGresult *res = PQexecParams(run->pg,
			    "SELECT 1 FROM inbox"
			    " WHERE consumer = $1 AND event_id = $2::uuid",
			    2, NULL, params, NULL, NULL, 0);

			applied = PQresultStatus(res) == PGRES_TUPLES_OK &&
			    PQntuples(res) > 0;
			PQclear(res);
		}
		if (!applied)
			consumer_dead_letter(run, natsMsg_GetData(m),
			    natsMsg_GetDataLength(m), root ? ev.id : NULL,
			    natsMsg_GetSubject(m), (uint64_t)seq, deliveries,
			    "max deliveries reached without an outcome");
		json_decref(root);
		natsMsg_Destroy(m);
	}
}

static void
consumer_unsubscribe(struct consumer_run *run)
{
	/* Destroy only: since nats.c 3.4.0 the durable stays on the server. */
	natsSubscription_Destroy(run->sub);
	natsSubscription_Destroy(run->advisories);
	run->sub = NULL;
	run->advisories = NULL;
}

static void *
consumer_main(void *arg)
{
	struct consumer_run run = {.c = arg};
	struct bus *bus = run.c->bus;

	run.link.who = run.c->durable;
	if (natsConnection_JetStream(&run.js, bus->nc, NULL) != NATS_OK)
		fatal("bus: cannot create a JetStream context: %s",
		    nats_GetLastError(NULL));

	while (!bus_stopping(bus)) {
		natsMsgList list = {NULL, 0};
		natsStatus s;

		if (!bus_nats_up(bus)) {
			bus_sleep(bus, bus_backoff(&run.link, 1000));
			continue;
		}
		if (run.sub == NULL && consumer_subscribe(&run) != 0) {
			bus_sleep(bus, bus_backoff(&run.link, BACKOFF_MAX_MS));
			continue;
		}
		/* Connect first: fetched messages must not wait on it. */
		if (run.pg == NULL &&
		    (run.pg = bus_pg_connect(bus, &run.link)) == NULL) {
			bus_sleep(bus, bus_backoff(&run.link, BACKOFF_MAX_MS));
			continue;
		}
		s = natsSubscription_Fetch(&list, run.sub,
		    run.want ? run.want : FETCH_BATCH, FETCH_WAIT_MS, NULL);
		run.want = list.Count > 0 ? FETCH_BATCH : 1;
		if (list.Count > 0) {
			bus_link_nats(&run.link, true, NATS_OK);
			run.fetch_errors = 0;
			consumer_handle_batch(&run, &list);
		} else if (s != NATS_OK && s != NATS_TIMEOUT) {
			bus_link_nats(&run.link, false, s);
			/* A deleted consumer or stream: repeated errors. */
			if (++run.fetch_errors >= 3 && bus_nats_up(bus)) {
				consumer_unsubscribe(&run);
				atomic_store(&bus->stream_ready, 0);
				run.fetch_errors = 0;
			}
			bus_sleep(bus, bus_backoff(&run.link, BACKOFF_MAX_MS));
		} else {
			run.link.backoff_ms = 0;
		}
		if (list.Msgs != NULL)
			natsMsgList_Destroy(&list);
		consumer_drain_advisories(&run);
	}
	consumer_unsubscribe(&run);
	jsCtx_Destroy(run.js);
	PQfinish(run.pg);
	return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

static void
bus_free(struct bus *bus)
{
	struct bus_consumer *c, *next;

	natsConnection_Destroy(bus->nc);
	natsOptions_Destroy(bus->opts);
	for (c = bus->consumers; c != NULL; c = next) {
		next = c->next;
		free(c->durable);
		free(c->filter);
		free(c->dlq_subject);
		free(c->advisory_subject);
		free(c);
	}
	if (bus->wake[0] >= 0)
		close(bus->wake[0]);
	if (bus->wake[1] >= 0)
		close(bus->wake[1]);
	pthread_cond_destroy(&bus->stop_cond);
	pthread_mutex_destroy(&bus->mu);
	pthread_mutex_destroy(&bus->batch.mu);
	free(bus->nats_url);
	free(bus->db_url);
	free(bus->schema);
	free(bus->service);
	free(bus->source);
	free(bus->fault_once);
	free(bus);
}

static void
bus_read_fault(struct bus *bus)
{
	const char *fault = getenv("CAPLAT_FAULT");
	const char *once = getenv("CAPLAT_FAULT_ONCE");

	if (fault == NULL || *fault == '\0')
		return;
	if (strcmp(fault, "relay_crash_after_publish") == 0)
		bus->fault = BUS_FAULT_RELAY_CRASH_AFTER_PUBLISH;
	else if (strcmp(fault, "consumer_crash_before_commit") == 0)
		bus->fault = BUS_FAULT_CONSUMER_CRASH_BEFORE_COMMIT;
	if (bus->fault != BUS_FAULT_NONE && once != NULL && *once != '\0')
		bus->fault_once = xstrdup(once);
	if (bus->fault != BUS_FAULT_NONE)
		log_warn(NULL, "msg=bus_fault_armed fault=%s", fault);
}

int
bus_open(struct bus **out, const struct bus_config *cfg)
{
	pthread_condattr_t ca;
	struct bus *bus;
	natsStatus s;

	if (cfg->nats_url == NULL || !*cfg->nats_url || cfg->db_url == NULL ||
	    !*cfg->db_url || !bus_ident_valid(cfg->schema) ||
	    !bus_service_valid(cfg->service) ||
	    (cfg->ack_wait_ms != 0 && cfg->ack_wait_ms < 1000) ||
	    cfg->nak_delay_ms < 0) {
		log_error(NULL,
		    "msg=bus_bad_config error=\"nats_url and db_url are "
		    "required, schema must match [a-z_][a-z0-9_]*, "
		    "service [a-z0-9_-]+, "
		    "ack_wait_ms is 0 or at least 1000\"");
		return -1;
	}
	bus = xcalloc(1, sizeof(*bus));
	bus->nats_url = xstrdup(cfg->nats_url);
	bus->db_url = xstrdup(cfg->db_url);
	bus->schema = xstrdup(cfg->schema);
	bus->service = xstrdup(cfg->service);
	bus->source = xasprintf("/caplat/%s", cfg->service);
	bus->ack_wait_ms = cfg->ack_wait_ms ? cfg->ack_wait_ms : 30000;
	bus->nak_delay_ms = cfg->nak_delay_ms ? cfg->nak_delay_ms : 1000;
	bus->stream_replicas =
	    cfg->stream_replicas > 0 ? cfg->stream_replicas : 1;
	bus->stream_max_age_h =
	    cfg->stream_max_age_h > 0 ? cfg->stream_max_age_h : 168;
	bus->wake[0] = bus->wake[1] = -1;
	bus_read_fault(bus);
	pthread_mutex_init(&bus->mu, NULL);
	pthread_mutex_init(&bus->batch.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bus->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pipe2(bus->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		fatal("bus: pipe2: %s", strerror(errno));

	s = natsOptions_Create(&bus->opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(bus->opts, bus->nats_url);
	if (s == NATS_OK) {
		char name[96];

		snprintf(name, sizeof(name), "caplat-%s", bus->service);
		s = natsOptions_SetName(bus->opts, name);
	}
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(bus->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(bus->opts, 500);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(bus->opts, 10000);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(bus->opts, true,
		    bus_on_connected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(bus->opts,
		    bus_on_disconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(bus->opts, bus_on_reconnected,
		    NULL);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(bus->opts, bus_on_async_error,
		    NULL);
	if (s == NATS_OK) {
		s = natsConnection_Connect(&bus->nc, bus->opts);
		if (s == NATS_NOT_YET_CONNECTED) {
			log_warn(NULL,
			    "msg=bus_nats_not_yet_connected retrying=forever");
			s = NATS_OK;
		}
	}
	if (s != NATS_OK) {
		log_error(NULL, "msg=bus_open_failed error=\"%s\"",
		    nats_GetLastError(NULL));
		bus_free(bus);
		return -1;
	}
	if (pthread_create(&bus->relay, NULL, relay_main, bus) != 0)
		fatal("bus: cannot start the relay thread");
	bus->relay_started = true;
	*out = bus;
	return 0;
}

int
bus_subscribe(struct bus *bus, const char *durable, const char *filter_subject,
    int max_deliver, bus_handler_fn handler, void *arg)
{
	struct bus_consumer *c, **tail;

	if (!bus_durable_valid(durable) || !bus_filter_valid(filter_subject) ||
	    max_deliver < 1 || handler == NULL) {
		log_error(NULL,
		    "msg=bus_bad_subscription consumer=%s filter=%s "
		    "max_deliver=%d",
		    durable ? durable : "-",
		    filter_subject ? filter_subject : "-", max_deliver);
		return -1;
	}
	pthread_mutex_lock(&bus->mu);
	if (bus_stopping(bus)) {
		pthread_mutex_unlock(&bus->mu);
		return -1;
	}
	for (c = bus->consumers; c != NULL; c = c->next) {
		if (strcmp(c->durable, durable) == 0) {
			pthread_mutex_unlock(&bus->mu);
			log_error(NULL,
			    "msg=bus_duplicate_subscription consumer=%s",
			    durable);
			return -1;
		}
	}
	c = xcalloc(1, sizeof(*c));
	c->bus = bus;
	c->durable = xstrdup(durable);
	c->filter = xstrdup(filter_subject);
	c->dlq_subject = xasprintf("%s%s", BUS_DLQ_PREFIX, durable);
	c->advisory_subject =
	    xasprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s",
	        BUS_STREAM, durable);
	c->max_deliver = max_deliver;
	c->handler = handler;
	c->arg = arg;
	if (pthread_create(&c->thread, NULL, consumer_main, c) != 0)
		fatal("bus: cannot start a consumer thread");
	for (tail = &bus->consumers; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = c;
	pthread_mutex_unlock(&bus->mu);
	return 0;
}

void
bus_close(struct bus *bus)
{
	struct bus_consumer *c;
	ssize_t w;

	if (bus == NULL)
		return;
	pthread_mutex_lock(&bus->mu);
	atomic_store(&bus->stopping, 1);
	pthread_cond_broadcast(&bus->stop_cond);
	pthread_mutex_unlock(&bus->mu);
	w = write(bus->wake[1], "x", 1);
	(void)w;
	if (bus->relay_started)
		pthread_join(bus->relay, NULL);
	/* No consumer is added once stopping is set, so the list is final. */
	for (c = bus->consumers; c != NULL; c = c->next)
		pthread_join(c->thread, NULL);
	bus_free(bus);
}

int
bus_ready(struct bus *bus)
{
	return bus_nats_up(bus) ? 1 : 0;
}

size_t
bus_metrics_text(struct bus *bus, char *buf, size_t size)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} per_consumer[] = {
	    {"caplat_bus_consumed_total", "Events applied and acknowledged.",
	        offsetof(struct bus_consumer, consumed)},
	    {"caplat_bus_duplicates_total",
	        "Deliveries of events already in the inbox.",
	        offsetof(struct bus_consumer, duplicates)},
	    {"caplat_bus_handler_errors_total",
	        "Deliveries whose handler or transaction failed.",
	        offsetof(struct bus_consumer, handler_errors)},
	    {"caplat_bus_dead_letters_total", "Events parked in dead_letter.",
	        offsetof(struct bus_consumer, dead_letters)},
	};
	struct bus_textbuf t = {buf, size, 0};

	if (size > 0)
		buf[0] = '\0';
	bus_textbuf_printf(&t,
	    "# HELP caplat_bus_published_total Outbox events acknowledged "
	    "by JetStream.\n"
	    "# TYPE caplat_bus_published_total counter\n"
	    "caplat_bus_published_total %llu\n"
	    "# HELP caplat_bus_publish_errors_total Outbox publishes that "
	    "failed.\n"
	    "# TYPE caplat_bus_publish_errors_total counter\n"
	    "caplat_bus_publish_errors_total %llu\n"
	    "# HELP caplat_bus_outbox_backlog Unpublished outbox rows, last "
	    "count.\n"
	    "# TYPE caplat_bus_outbox_backlog gauge\n"
	    "caplat_bus_outbox_backlog %lld\n"
	    "# HELP caplat_bus_nats_connected 1 when the NATS connection is "
	    "up.\n"
	    "# TYPE caplat_bus_nats_connected gauge\n"
	    "caplat_bus_nats_connected %d\n",
	    atomic_load(&bus->published), atomic_load(&bus->publish_errors),
	    atomic_load(&bus->backlog), bus->nc ? bus_ready(bus) : 0);
	pthread_mutex_lock(&bus->mu);
	for (size_t m = 0; m < ARRAY_LEN(per_consumer); m++) {
		if (bus->consumers == NULL)
			break;
		bus_textbuf_printf(&t, "# HELP %s %s\n# TYPE %s counter\n",
		    per_consumer[m].name, per_consumer[m].help,
		    per_consumer[m].name);
		for (struct bus_consumer *c = bus->consumers; c != NULL;
		     c = c->next) {
			atomic_ullong *v = (atomic_ullong *)((char *)c +
			    per_consumer[m].offset);

			bus_textbuf_printf(&t, "%s{consumer=\"%s\"} %llu\n",
			    per_consumer[m].name, c->durable, atomic_load(v));
		}
	}
	pthread_mutex_unlock(&bus->mu);
	return t.len;
}

void
bus_outbox_add(struct db_batch *b, const char *type, const char *subject,
    json_t *data)
{
	struct bus_event_row row;
	const char *params[4];

	if (bus_event_prepare(&row, type, subject, data) != 0)
		fatal("bus: bad event type \"%s\"", type);
	bus_event_row_params(&row, params);
	db_batch_add(b, bus_outbox_insert_sql, 4, params);
	bus_event_row_clear(&row);
}

int
bus_tx_emit(struct bus_tx *tx, const char *type, const char *subject,
    json_t *data)
{
	struct bus_event_row row;
	const char *params[4];
	long n;

	if (bus_event_prepare(&row, type, subject, data) != 0)
		return -1;
	bus_event_row_params(&row, params);
	n = bus_tx_exec(tx, bus_outbox_insert_sql, 4, params);
	bus_event_row_clear(&row);
	return n < 0 ? -1 : 0;
}
