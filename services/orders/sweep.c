/* sweep — the periodic expiry of unpaid orders, on the loop: an evtimer
 * runs one conditional UPDATE (pending_payment and past expires_at, rows
 * locked with SKIP LOCKED so several processes never expire one order
 * twice) that also writes each order's orders.order.cancelled (status
 * expired) to the outbox. About once an hour it also drops expired quotes;
 * old Idempotency-Keys go as common/idem.h's idem_purge_due says. */
#include "orders.h"

#include "db.h"
#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#define SWEEP_BATCH 500
#define HOUSEKEEPING_EVERY_SECONDS 3600

static struct event *sweep_timer;
static long sweep_ticks;

static void
sweep_schedule(long seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(sweep_timer, &tv);
}

static void
sweep_on_done(void *arg, const struct db_result *res)
{
	long expired = 0;

	if (res->status != DB_OK) {
		log_warn(NULL, "msg=sweep_failed status=%d error=\"%s\"",
		    (int)res->status, res->message ? res->message : "-");
		sweep_schedule(orders.cfg.sweep_seconds);
		return;
	}
	expired = strtol(db_value(res, 0, 0, 0), NULL, 10);
	if (expired > 0) {
		atomic_fetch_add(&orders.n.expired, expired);
		log_info(NULL, "msg=orders_expired count=%ld", expired);
	}
	/* A full batch means more are due: go on at once. */
	sweep_schedule(expired >= SWEEP_BATCH ? 0 : orders.cfg.sweep_seconds);
}

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	char limit[16];
	const char *p[] = {limit};
	struct db_batch *b = db_batch_new();

	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	db_batch_add(b, store_sweep_expire_sql, 1, p);
	if (sweep_ticks++ %
	        (HOUSEKEEPING_EVERY_SECONDS / orders.cfg.sweep_seconds + 1) ==
	    0)
		store_housekeeping(b);
	db_batch_run(orders.svc.db, b, sweep_on_done, NULL);
	idem_purge_due(orders.svc.db, &orders.cfg.idem);
}

void
order_sweep_start(void)
{
	sweep_timer = evtimer_new(orders.svc.base, sweep_tick, NULL);
	if (sweep_timer == NULL)
		fatal("evtimer_new failed");
	sweep_schedule(1);
}

void
order_sweep_stop(void)
{
	if (sweep_timer != NULL)
		event_free(sweep_timer);
	sweep_timer = NULL;
}
