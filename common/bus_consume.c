/* bus_consume — the consumer threads: one per durable pull consumer, each
 * with its own connection. A fetch's events (gathered for up to gather_ms
 * after the first arrives) share a transaction that also records every
 * event id in the inbox (the effect happens once), are acked after the
 * commit, which then runs the handlers' after-commit actions, and on
 * failure are redone one by one, naked with a growing delay, or
 * dead-lettered. */
#include "bus_int.h"

#include "hist.h"
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redelivery delay after the handler failed on delivery `deliveries`:
 * base, 2*base, 4*base, … capped at a minute. */
int64_t
bus_nak_delay_ms(int base_ms, int deliveries)
{
	int64_t d = base_ms > 0 ? base_ms : 1;

	for (int i = 1; i < deliveries && d < NAK_DELAY_MAX_MS; i++)
		d *= 2;
	return d < NAK_DELAY_MAX_MS ? d : NAK_DELAY_MAX_MS;
}

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
	/* after-commit actions of the open transaction (bus_tx_after_commit) */
	struct bus_after *after;
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

void
bus_tx_after_commit(struct bus_tx *tx, bus_after_fn fn, void *arg)
{
	struct bus_after **p, *a;

	if (tx->after == NULL) {
		log_error(NULL, "msg=bus_after_commit_outside_consumer");
		fn(arg, 0);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->fn = fn;
	a->arg = arg;
	for (p = tx->after; *p != NULL; p = &(*p)->next)
		;
	*p = a;
}

/* Runs (committed = 1) or releases (0) the transaction's after-commit
 * actions, in registration order. */
static void
consumer_after_run(struct consumer_run *run, int committed)
{
	while (run->after != NULL) {
		struct bus_after *a = run->after;

		run->after = a->next;
		a->fn(a->arg, committed);
		free(a);
	}
}

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
	struct bus_tx tx = {run->pg, "", &run->after};
	bool duplicate;

	if (bus_store_inbox_add(&tx, c->durable, item->ev.id, &duplicate) !=
	    0) {
		snprintf(err, err_size, "inbox insert failed: %s", tx.error);
		return -1;
	}
	if (duplicate) {
		item->state = ITEM_DUPLICATE;
		return 0;
	}
	int64_t h0 = hist_now(); /* the bus_consume step: the handler */
	if (c->handler(&tx, &item->ev, c->arg) != 0) {
		snprintf(err, err_size, "%s",
		    tx.error[0] ? tx.error : "handler failed");
		return -1;
	}
	hist_step(STEP_BUS_CONSUME, h0);
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
	struct bus_tx tx = {run->pg, "", NULL};

	if (handlers_ran)
		fault_point(&run->c->bus->fault,
		    BUS_FAULT_CONSUMER_CRASH_BEFORE_COMMIT);
	if (bus_store_commit(&tx) != 0) {
		snprintf(err, err_size, "COMMIT failed: %s", tx.error);
		/* The connection broke at COMMIT: the outcome is unknown, and
		 * a redelivery finds the inbox row if it did commit, so the
		 * actions would never run: run them (acting twice is the
		 * lesser harm for what they are meant for, dropping copies). */
		if (PQstatus(run->pg) != CONNECTION_OK)
			consumer_after_run(run, 1);
		return TX_FAILED;
	}
	consumer_after_run(run, 1);
	return TX_COMMITTED;
}

static enum consumer_tx_result
consumer_rollback(struct consumer_run *run)
{
	consumer_after_run(run, 0);
	if (PQstatus(run->pg) == CONNECTION_OK &&
	    PQtransactionStatus(run->pg) != PQTRANS_IDLE)
		bus_store_rollback(run->pg);
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
	if (bus_store_begin(run->pg) != 0)
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
	if (bus_store_begin(run->pg) != 0) {
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
	char *text = bus_text_sanitize(payload, (size_t)len);
	bool written = bus_store_dead_letter(run->pg, c->durable, event_id,
	                   nats_subject, text, error, deliveries) == 0;

	if (!written)
		log_error(NULL,
		    "msg=bus_dead_letter_write_failed consumer=%s event_id=%s "
		    "error=\"%s\"",
		    c->durable, event_id ? event_id : "-",
		    PQerrorMessage(run->pg));
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
consumer_item_parse(const struct bus_consumer *c, struct consumer_item *item,
    natsMsg *msg)
{
	int (*parse)(struct bus_event *, json_t **, const char *, size_t,
	    char *, size_t) =
	    c->data_as_text ? bus_envelope_parse_head : bus_envelope_parse;

	memset(item, 0, sizeof(*item));
	item->msg = msg;
	if (parse(&item->ev, &item->root, natsMsg_GetData(msg),
	        (size_t)natsMsg_GetDataLength(msg), item->bad,
	        sizeof(item->bad)) != 0)
		item->root = NULL;
	item->ev.nats_subject = natsMsg_GetSubject(msg);
	item->ev.deliveries = consumer_deliveries(msg);
	item->ev.envelope = natsMsg_GetData(msg); /* nats.c ends it with NUL */
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

	bus_store_check(&run->pg, &run->link);
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
			run->pg = bus_store_connect(run->c->bus, &run->link);
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
		consumer_item_parse(run->c, &items[k], list->Msgs[k]);
	while (i < n && !bus_stopping(bus)) {
		enum consumer_tx_result r = TX_FAILED;
		int took = 1;

		if (n - i > 1) {
			if (run->pg == NULL)
				run->pg = bus_store_connect(bus, &run->link);
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
		        sizeof(err)) == 0)
			applied = bus_store_inbox_has(run->pg, c->durable,
			              ev.id) == 1;
		if (!applied)
			consumer_dead_letter(run, natsMsg_GetData(m),
			    natsMsg_GetDataLength(m), root ? ev.id : NULL,
			    natsMsg_GetSubject(m), (uint64_t)seq, deliveries,
			    "max deliveries reached without an outcome");
		json_decref(root);
		natsMsg_Destroy(m);
	}
}

/* The consumer's lag for /metrics: the stream's messages after the last
 * one fetched (JetStream's metadata, no extra request); a fetch that timed
 * out empty means none is waiting. */
static void
consumer_note_lag(struct bus_consumer *c, natsMsgList *list, natsStatus s)
{
	jsMsgMetaData *meta = NULL;

	if (list->Count == 0) {
		if (s == NATS_TIMEOUT)
			atomic_store(&c->lag, 0);
		return;
	}
	if (natsMsg_GetMetaData(&meta, list->Msgs[list->Count - 1]) ==
	    NATS_OK) {
		atomic_store(&c->lag, (unsigned long long)meta->NumPending);
		jsMsgMetaData_Destroy(meta);
	}
}

/* After a fetch brought fewer than a batch: waits up to gather_ms for more
 * (nats.c returns at the timeout with what came, or at once when the batch
 * is full) and appends them to list, so more events share one transaction
 * (issue 16: fewer commits per event, for gather_ms of latency). */
static void
consumer_gather(struct consumer_run *run, natsMsgList *list)
{
	int gather_ms = run->c->bus->gather_ms;
	natsMsgList more = {NULL, 0};
	natsMsg **all;

	if (gather_ms <= 0 || list->Count == 0 || list->Count >= FETCH_BATCH)
		return;
	natsSubscription_Fetch(&more, run->sub, FETCH_BATCH - list->Count,
	    gather_ms, NULL);
	if (more.Count > 0) {
		/* nats.c allocates the list's array with malloc and frees it
		 * with free in natsMsgList_Destroy. */
		all = xcalloc((size_t)(list->Count + more.Count), sizeof(*all));
		memcpy(all, list->Msgs, (size_t)list->Count * sizeof(*all));
		memcpy(all + list->Count, more.Msgs,
		    (size_t)more.Count * sizeof(*all));
		free(list->Msgs);
		free(more.Msgs);
		list->Msgs = all;
		list->Count += more.Count;
	} else if (more.Msgs != NULL) {
		natsMsgList_Destroy(&more);
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

void *
bus_consume_main(void *arg)
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
		    (run.pg = bus_store_connect(bus, &run.link)) == NULL) {
			bus_sleep(bus, bus_backoff(&run.link, BACKOFF_MAX_MS));
			continue;
		}
		s = natsSubscription_Fetch(&list, run.sub,
		    run.want ? run.want : FETCH_BATCH, FETCH_WAIT_MS, NULL);
		run.want = list.Count > 0 ? FETCH_BATCH : 1;
		consumer_gather(&run, &list);
		consumer_note_lag(run.c, &list, s);
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
