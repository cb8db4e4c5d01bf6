/* bus_relay — the outbox relay thread: reads unpublished outbox rows,
 * publishes them to JetStream as CloudEvents (the event id is the NATS
 * message id, so the stream drops duplicates), marks the acknowledged rows
 * published, wakes on the outbox trigger's NOTIFY, and trims old rows.
 * One relay per schema leads (a session advisory lock; the relays of
 * further processes wait on it, sending nothing), so rows are read without
 * a lock or a transaction, published at once, and marked lazily: the rows
 * acked within relay_mark_ms (or a full batch of them) share one marking
 * transaction (issue 16: a renewal's event costs the relay a fraction of a
 * commit under load, not one). A crash before the mark republishes those
 * rows; the stream's dedup (Nats-Msg-Id) and the consumers' inboxes absorb
 * that. While the outbox is empty and everything is marked it waits on the
 * NOTIFY alone and sends PostgreSQL no statement at all. A notification
 * is not lost while the connection lives (PostgreSQL queues it for the
 * listener); after a reconnect the relay runs a pass before it waits. The
 * trimming of old outbox and inbox rows runs after a pass that published
 * something, at most every RELAY_CLEANUP_EVERY_MS: an idle service has
 * nothing new to trim. */
#include "bus_int.h"

#include "hist.h"
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	int acked;  /* published, to be marked */
	int failed; /* left unpublished for the next pass */
	int bad;    /* set aside as published, never sent */
};

/* The relay's rows published but not marked yet (marked lazily, many in
 * one transaction), and whether it holds its schema's lead. */
struct relay_state {
	int64_t pending[RELAY_PENDING_MAX];
	int npending;
	int64_t pending_since_ms; /* when the oldest unmarked one was acked */
	bool lead;
};

/* A bigint[] literal "{1,2,3}" of n seqs (caller frees). */
static char *
relay_seqs_literal(const int64_t *seqs, int n)
{
	char *text = xmalloc((size_t)n * 21 + 3);
	size_t len = 0;

	text[len++] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%s%" PRId64,
		    i > 0 ? "," : "", seqs[i]);
	text[len++] = '}';
	text[len] = '\0';
	return text;
}

/* One pass: read up to RELAY_BATCH unpublished rows not published already,
 * publish them, wait for the acks, and note the acknowledged ones for the
 * next mark. No transaction: reading writes nothing, and only the lead
 * relay reads. Returns 0 with counts in r, or -1 when PostgreSQL failed. */
static int
relay_pass(struct bus *bus, PGconn *pg, jsCtx *js, struct relay_state *st,
    struct relay_result *r)
{
	struct relay_batch *b = &bus->batch;
	int64_t t0 = now_mono_us(), t_claim, t_sent, t_acked;
	jsPubOptions wait;
	PGresult *res;
	char *skip;
	int n;

	memset(r, 0, sizeof(*r));
	skip = relay_seqs_literal(st->pending, st->npending);
	res = bus_store_outbox_claim(pg, skip);
	free(skip);
	if (res == NULL)
		return -1;
	n = r->claimed = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return 0;
	}
	t_claim = now_mono_us();
	int64_t h0 = hist_now(); /* the bus_publish step: sent to acked */

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
	hist_step(STEP_BUS_PUBLISH, h0);

	pthread_mutex_lock(&b->mu);
	if (st->npending == 0)
		st->pending_since_ms = t_acked / 1000;
	for (int i = 0; i < n; i++) {
		if (b->rows[i].state == ROW_FAILED) {
			r->failed++;
			continue;
		}
		/* n <= RELAY_BATCH and the caller marks at RELAY_BATCH
		 * pending, so this fits. */
		st->pending[st->npending++] = b->rows[i].seq;
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
	atomic_fetch_add(&bus->publish_errors,
	    (unsigned long long)(r->failed + r->bad));
	atomic_fetch_add(&bus->published, (unsigned long long)r->acked);
	log_debug(NULL,
	    "msg=bus_relay_batch claimed=%d acked=%d failed=%d"
	    " claim_us=%" PRId64 " send_us=%" PRId64 " ack_us=%" PRId64,
	    n, r->acked, r->failed, t_claim - t0, t_sent - t_claim,
	    t_acked - t_sent);
	return 0;
}

/* Milliseconds until the unmarked rows are due for their mark: 0 now (a
 * full batch of them, or relay_mark_ms passed), -1 when there are none. */
static int64_t
relay_mark_due_in(struct bus *bus, const struct relay_state *st)
{
	int64_t left;

	if (st->npending == 0)
		return -1;
	if (st->npending >= RELAY_BATCH)
		return 0;
	left = st->pending_since_ms + bus->relay_mark_ms - now_mono_us() / 1000;
	return left > 0 ? left : 0;
}

/* Marks the published rows in one transaction (a crash before it only
 * republishes them: JetStream's dedup and the inboxes absorb that).
 * Returns 0, or -1 when PostgreSQL failed (they stay pending). */
static int
relay_mark(struct bus *bus, PGconn *pg, struct relay_state *st)
{
	char *seqs;
	int rc;

	if (st->npending == 0)
		return 0;
	fault_point(&bus->fault, BUS_FAULT_RELAY_CRASH_AFTER_PUBLISH);
	seqs = relay_seqs_literal(st->pending, st->npending);
	rc = bus_store_outbox_mark(pg, seqs);
	free(seqs);
	if (rc == 0) {
		log_debug(NULL, "msg=bus_relay_marked rows=%d", st->npending);
		st->npending = 0;
	}
	return rc;
}

/* Counts the backlog (rows and the oldest one's creation time) for
 * /metrics. Called only when a pass may have left rows behind, never while
 * idle: an idle relay sends PostgreSQL nothing. */
static void
relay_count_backlog(struct bus *bus, PGconn *pg)
{
	long long backlog, oldest;

	if (bus_store_outbox_backlog(pg, &backlog, &oldest) == 0) {
		atomic_store(&bus->backlog, backlog);
		atomic_store(&bus->backlog_oldest, backlog > 0 ? oldest : 0);
	}
}

/* After a pass that did work, now and then, deletes rows published over a
 * day ago, a bounded range of the oldest rows at a time (an idle relay has
 * nothing new to delete, so it does not run then). */
static void
relay_housekeeping(struct bus *bus, PGconn *pg, int64_t now_ms,
    int64_t *next_cleanup)
{
	if (now_ms >= *next_cleanup) {
		long total = 0, n;

		*next_cleanup = now_ms + RELAY_CLEANUP_EVERY_MS;
		do {
			n = bus_store_outbox_cleanup(pg);
			total += n;
		} while (n > 0 && total < 100L * RELAY_CLEANUP_CHUNK &&
		    !bus_stopping(bus));
		if (total > 0)
			log_info(NULL, "msg=bus_outbox_cleanup deleted=%ld",
			    total);
		/* Inbox ids outlive the stream's retention twice over. */
		bus_store_inbox_cleanup(pg, 2 * bus->stream_max_age_h);
	}
}

/* Consumes queued notifications; returns 1 when one was for this schema's
 * outbox (the trigger sends the schema name; an empty payload counts too).
 * One of caplat_audit for this schema (an entry written held) is handed to
 * the audit hook instead: no relay pass publishes held rows. */
static int
relay_notified(struct bus *bus, PGconn *pg)
{
	PGnotify *note;
	int mine = 0;

	while ((note = PQnotifies(pg)) != NULL) {
		int here = note->extra[0] == '\0' ||
		    strcmp(note->extra, bus->schema) == 0;

		if (strcmp(note->relname, "caplat_audit") != 0)
			mine |= here;
		else if (here && bus->audit_notified != NULL)
			bus->audit_notified();
		PQfreemem(note);
	}
	return mine;
}

/* Waits until this schema's outbox is notified, timeout_ms pass (-1: no
 * timeout) or bus_close. Returns -1 when the connection broke. */
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
		int64_t left =
		    timeout_ms < 0 ? -1 : deadline - now_mono_us() / 1000;

		if ((timeout_ms >= 0 && left <= 0) ||
		    poll(fds, pg != NULL ? 2 : 1, (int)left) <= 0)
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

/* Waits for the lead of this schema's outbox (the advisory lock asked for
 * by bus_store_relay_lead_send): one relay per schema publishes, the others
 * of further processes wait here sending nothing, and the lock passes on
 * the moment the lead's connection ends. Returns 1 with the lead, 0 when
 * the bus is closing, -1 when the connection broke. */
static int
relay_wait_lead(struct bus *bus, PGconn *pg)
{
	struct pollfd fds[2] = {{bus->wake[0], POLLIN, 0},
	    {PQsocket(pg), POLLIN, 0}};
	int64_t t0 = now_mono_us();
	int rc;

	while ((rc = bus_store_relay_lead_poll(pg)) == 0) {
		/* The lead publishes what they announce; the pass after the
		 * lead is taken reads every row anyway: drop them, so a long
		 * wait does not pile them up in libpq. */
		relay_notified(bus, pg);
		if (bus_stopping(bus))
			return 0;
		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[0].revents & POLLIN)
			return 0;
	}
	if (rc == 1 && now_mono_us() - t0 > 100000)
		log_info(NULL,
		    "msg=bus_relay_lead schema=%s waited_ms=%" PRId64,
		    bus->schema, (now_mono_us() - t0) / 1000);
	return rc;
}

void *
bus_relay_main(void *arg)
{
	struct bus *bus = arg;
	struct bus_link link = {.who = "relay"};
	int64_t next_cleanup = 0;
	struct relay_state *st = xcalloc(1, sizeof(*st));
	PGconn *pg = NULL;
	jsCtx *js = NULL;
	jsOptions jo;

	jsOptions_Init(&jo);
	jo.PublishAsync.ErrHandler = relay_on_publish_error;
	jo.PublishAsync.ErrHandlerClosure = bus;
	if (natsConnection_JetStream(&js, bus->nc, &jo) != NATS_OK)
		fatal("bus: cannot create a JetStream context: %s",
		    nats_GetLastError(NULL));
	log_info(NULL, "msg=bus_relay_started schema=%s mark_ms=%d",
	    bus->schema, bus->relay_mark_ms);

	while (!bus_stopping(bus)) {
		struct relay_result r;
		int64_t due;

		if (pg == NULL) {
			pg = bus_store_connect(bus, &link);
			st->lead = false;
			if (pg != NULL &&
			    (bus_store_listen(pg) != 0 ||
			        bus_store_relay_lead_send(pg) != 0))
				bus_store_check(&pg, &link);
			if (pg == NULL) {
				bus_sleep(bus,
				    bus_backoff(&link, BACKOFF_MAX_MS));
				continue;
			}
		}
		if (!st->lead) {
			int rc = relay_wait_lead(bus, pg);

			if (rc == 0)
				break;
			if (rc < 0) {
				bus_store_check(&pg, &link);
				if (pg != NULL) { /* refused: start over */
					PQfinish(pg);
					pg = NULL;
				}
				bus_sleep(bus,
				    bus_backoff(&link, BACKOFF_MAX_MS));
				continue;
			}
			st->lead = true;
			/* Rows written while nobody led: one pass. */
		}
		if (relay_mark_due_in(bus, st) == 0 &&
		    relay_mark(bus, pg, st) != 0) {
			bus_store_check(&pg, &link);
			bus_sleep(bus, bus_backoff(&link, BACKOFF_MAX_MS));
			continue;
		}
		if (!bus_nats_up(bus) ||
		    bus_ensure_stream(bus, js, &link) != 0) {
			/* An outage, not idleness: keep the backlog gauges
			 * true while the rows wait. */
			relay_count_backlog(bus, pg);
			if (relay_wait(bus, pg,
			        (int)bus_backoff(&link, RELAY_SWEEP_MS)) != 0)
				bus_store_check(&pg, &link);
			continue;
		}
		if (relay_pass(bus, pg, js, st, &r) != 0) {
			bus_store_check(&pg, &link);
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
			relay_count_backlog(bus, pg);
			bus_sleep(bus, bus_backoff(&link, BACKOFF_MAX_MS));
			continue;
		}
		link.backoff_ms = 0;
		bus_link_nats(&link, true, NATS_OK);
		if (r.claimed == RELAY_BATCH) {
			relay_count_backlog(bus, pg);
			continue;
		}
		/* Everything claimed was published: no backlog but what a
		 * notification (already queued or coming) brings. */
		atomic_store(&bus->backlog, 0);
		atomic_store(&bus->backlog_oldest, 0);
		if (r.claimed > 0)
			relay_housekeeping(bus, pg, now_mono_us() / 1000,
			    &next_cleanup);
		/* Until the NOTIFY of the next row (sent at the commit of the
		 * transaction that wrote it), or the due mark of the rows
		 * published; idle, no statement at all. */
		due = relay_mark_due_in(bus, st);
		if (due == 0)
			continue;
		if (relay_wait(bus, pg, (int)due) != 0)
			bus_store_check(&pg, &link);
	}
	/* Closing: the published rows get their mark now; publishes still in
	 * flight are dropped with the context, their rows were not marked, so
	 * the next relay publishes them again. */
	if (pg != NULL && st->lead)
		relay_mark(bus, pg, st);
	jsCtx_Destroy(js);
	PQfinish(pg);
	free(st);
	return NULL;
}
