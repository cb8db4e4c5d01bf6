/* bus — the public side of the event bus (bus.h): opening and closing it,
 * starting the relay and consumer threads, producing events into the
 * outbox, and the metrics text. The threads live in bus_relay.c and
 * bus_consume.c, their SQL in bus_store.c, the envelope rules in
 * bus_envelope.c (see bus_int.h). */
#include "bus_int.h"

#include "db.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CAPLAT_FAULT values of the bus, in enum bus_fault order. */
static const char *const bus_fault_names[] = {
    "relay_crash_after_publish",
    "consumer_crash_before_commit",
    NULL,
};

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
	fault_clear(&bus->fault);
	free(bus);
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
	    cfg->nak_delay_ms < 0 || cfg->relay_mark_ms < 0 ||
	    cfg->gather_ms < 0) {
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
	bus->relay_mark_ms = cfg->relay_mark_ms;
	bus->gather_ms = cfg->gather_ms;
	bus->audit_notified = cfg->audit_notified;
	bus->wake[0] = bus->wake[1] = -1;
	fault_arm(&bus->fault, bus_fault_names);
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
	if (pthread_create(&bus->relay, NULL, bus_relay_main, bus) != 0)
		fatal("bus: cannot start the relay thread");
	bus->relay_started = true;
	*out = bus;
	return 0;
}

static int
subscribe(struct bus *bus, const char *durable, const char *filter_subject,
    int max_deliver, bus_handler_fn handler, void *arg, int data_as_text)
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
	c->data_as_text = data_as_text;
	if (pthread_create(&c->thread, NULL, bus_consume_main, c) != 0)
		fatal("bus: cannot start a consumer thread");
	for (tail = &bus->consumers; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = c;
	pthread_mutex_unlock(&bus->mu);
	return 0;
}

int
bus_subscribe(struct bus *bus, const char *durable, const char *filter_subject,
    int max_deliver, bus_handler_fn handler, void *arg)
{
	return subscribe(bus, durable, filter_subject, max_deliver, handler,
	    arg, 0);
}

int
bus_subscribe_text(struct bus *bus, const char *durable,
    const char *filter_subject, int max_deliver, bus_handler_fn handler,
    void *arg)
{
	return subscribe(bus, durable, filter_subject, max_deliver, handler,
	    arg, 1);
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
	long long oldest = atomic_load(&bus->backlog_oldest);
	long long now = (long long)time(NULL);

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
	    "# HELP caplat_bus_outbox_oldest_age_seconds Age of the oldest "
	    "unpublished outbox row (0 when none).\n"
	    "# TYPE caplat_bus_outbox_oldest_age_seconds gauge\n"
	    "caplat_bus_outbox_oldest_age_seconds %lld\n"
	    "# HELP caplat_bus_nats_connected 1 when the NATS connection is "
	    "up.\n"
	    "# TYPE caplat_bus_nats_connected gauge\n"
	    "caplat_bus_nats_connected %d\n",
	    atomic_load(&bus->published), atomic_load(&bus->publish_errors),
	    atomic_load(&bus->backlog),
	    oldest > 0 && now > oldest ? now - oldest : 0,
	    bus->nc ? bus_ready(bus) : 0);
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
	if (bus->consumers != NULL)
		bus_textbuf_printf(&t,
		    "# HELP caplat_bus_consumer_lag Stream messages after the "
		    "last one the consumer fetched.\n"
		    "# TYPE caplat_bus_consumer_lag gauge\n");
	for (struct bus_consumer *c = bus->consumers; c != NULL; c = c->next)
		bus_textbuf_printf(&t,
		    "caplat_bus_consumer_lag{consumer=\"%s\"} %llu\n",
		    c->durable, atomic_load(&c->lag));
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
