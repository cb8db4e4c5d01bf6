/* sweep — the service's timers on the loop, one row each in sweep_jobs[]:
 *   expire        one conditional UPDATE (pending_payment and past
 *                 expires_at, rows locked with SKIP LOCKED so several
 *                 processes never expire one order twice) that also writes
 *                 each order's orders.order.cancelled (status expired) to the
 *                 outbox; a full batch runs again at once; otherwise it waits
 *                 until the next unpaid order expires (read in the same
 *                 batch), at least CAPLAT_ORDER_SWEEP_SECONDS, at most
 *                 CAPLAT_ORDER_SWEEP_IDLE_SECONDS (what another process
 *                 created), and an order created here brings it forward
 *                 (order_sweep_kick): an idle service sends nothing between;
 *   housekeeping  hourly: drops expired quotes;
 *   idem_purge    every CAPLAT_IDEMPOTENCY_PURGE_SECONDS: drops the
 *                 Idempotency-Keys past CAPLAT_IDEMPOTENCY_RETENTION_HOURS
 *                 (common/idem.h);
 *   expiring      order.expiring to whoever placed an unpaid order expiring
 *                 within CAPLAT_ORDER_EXPIRING_NOTICE_SECONDS, once
 *                 (order_notices); then, like expire, it waits until the
 *                 next order enters that window (read in the same batch),
 *                 brought forward by order_sweep_kick;
 *   digest        the enterprises' daily expiry digests due (digest.c), one
 *                 after another; then it waits until the next falls due,
 *                 brought forward by a certificate gathered here
 *                 (order_digest_kick).
 * expire, expiring and digest wait at least CAPLAT_ORDER_SWEEP_SECONDS and
 * at most CAPLAT_ORDER_SWEEP_IDLE_SECONDS (what another process did).
 * A job's continuation schedules its next run, so runs of one job never
 * overlap. */
#include "orders.h"

#include "db.h"
#include "log.h"
#include "util.h"
#include "work.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#define SWEEP_BATCH 500

struct sweep_job {
	const char *name;
	const long *every; /* seconds between runs */
	/* Starts one run; its continuation calls sweep_schedule(). */
	void (*run)(struct sweep_job *job);
	struct event *timer;
	int running;
	long kicked; /* seconds: an order created during the run expires then */
};

static void sweep_expire(struct sweep_job *job);
static void sweep_housekeeping(struct sweep_job *job);
static void sweep_idem_purge(struct sweep_job *job);
static void sweep_expiring(struct sweep_job *job);
static void sweep_digest(struct sweep_job *job);

static const long housekeeping_seconds = 3600;

enum { JOB_EXPIRE, JOB_HOUSEKEEPING, JOB_IDEM_PURGE, JOB_EXPIRING, JOB_DIGEST };

static struct sweep_job sweep_jobs[] = {
    [JOB_EXPIRE] = {"expire", &orders.cfg.sweep_seconds, sweep_expire, NULL, 0,
        0},
    [JOB_HOUSEKEEPING] = {"housekeeping", &housekeeping_seconds,
        sweep_housekeeping, NULL, 0, 0},
    [JOB_IDEM_PURGE] = {"idem_purge", &orders.cfg.idem.purge_seconds,
        sweep_idem_purge, NULL, 0, 0},
    [JOB_EXPIRING] = {"expiring", &orders.cfg.sweep_seconds, sweep_expiring,
        NULL, 0, 0},
    [JOB_DIGEST] = {"digest", &orders.cfg.sweep_seconds, sweep_digest, NULL, 0,
        0},
};

static void
sweep_schedule(struct sweep_job *job, long seconds)
{
	struct timeval tv = {seconds, 0};

	job->running = 0;
	evtimer_add(job->timer, &tv);
}

/* Logs a failed run; the job runs again after its period. */
static void
sweep_failed(struct sweep_job *job, const struct db_result *res)
{
	log_warn(NULL, "msg=sweep_failed job=%s status=%d error=\"%s\"",
	    job->name, (int)res->status, res->message ? res->message : "-");
	sweep_schedule(job, *job->every);
}

static void
sweep_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sweep_job *job = arg;

	job->running = 1;
	job->kicked = 0;
	job->run(job);
}

/* Brings job's next run forward to `seconds` from now (not below its
 * period) unless it runs by then. */
static void
sweep_kick(struct sweep_job *job, long seconds)
{
	struct timeval at, now;

	if (job->timer == NULL)
		return;
	if (seconds < *job->every)
		seconds = *job->every;
	if (job->running) {
		if (job->kicked == 0 || seconds < job->kicked)
			job->kicked = seconds;
		return;
	}
	if (evtimer_pending(job->timer, &at) &&
	    event_base_gettimeofday_cached(orders.svc.base, &now) == 0 &&
	    at.tv_sec - now.tv_sec <= seconds)
		return; /* it runs by then */
	sweep_schedule(job, seconds);
}

/* A job that rests until its next item is due waits `next` seconds (NULL:
 * nothing waits), within its period and CAPLAT_ORDER_SWEEP_IDLE_SECONDS,
 * or less when kicked during the run. */
static void
sweep_rest_until(struct sweep_job *job, const char *next)
{
	long wait = orders.cfg.sweep_idle_seconds;

	if (next != NULL && atol(next) < wait)
		wait = atol(next);
	if (job->kicked > 0 && job->kicked < wait)
		wait = job->kicked;
	sweep_schedule(job, wait > *job->every ? wait : *job->every);
}

void
order_sweep_kick(long seconds)
{
	long notice = orders.cfg.order_expiring_notice_seconds;

	sweep_kick(&sweep_jobs[JOB_EXPIRE], seconds);
	if (notice > 0)
		sweep_kick(&sweep_jobs[JOB_EXPIRING],
		    seconds > notice ? seconds - notice : 0);
}

static void
kick_nothing(void *arg)
{
	(void)arg;
}

static void
digest_kick_on_loop(void *arg)
{
	sweep_kick(&sweep_jobs[JOB_DIGEST], orders.cfg.digest_gather_seconds);
}

void
order_digest_kick(void)
{
	/* from a consumer thread: the timer is the loop's */
	work_submit(kick_nothing, digest_kick_on_loop, NULL);
}

/* ---- expire ------------------------------------------------------------- */

static void
expire_on_done(void *arg, const struct db_result *res)
{
	struct sweep_job *job = arg;
	long expired;

	if (res->status != DB_OK) {
		sweep_failed(job, res);
		return;
	}
	expired = strtol(db_value(res, 0, 0, 0), NULL, 10);
	if (expired > 0) {
		atomic_fetch_add(&orders.n.expired, expired);
		log_info(NULL, "msg=orders_expired count=%ld", expired);
	}
	/* A full batch means more are due: go on at once. */
	if (expired >= SWEEP_BATCH) {
		sweep_schedule(job, 0);
		return;
	}
	/* Else until the next unpaid order expires, within the bounds. */
	sweep_rest_until(job, db_value(res, 1, 0, 0));
}

static void
sweep_expire(struct sweep_job *job)
{
	char limit[16];
	const char *p[] = {limit};
	struct db_batch *b = db_batch_new();

	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	db_batch_add(b, store_sweep_expire_sql, 1, p);
	db_batch_add(b, store_sweep_next_expiry_sql, 0, NULL);
	db_batch_run(orders.svc.db, b, expire_on_done, job);
}

/* ---- housekeeping ------------------------------------------------------- */

static void
housekeeping_on_done(void *arg, const struct db_result *res)
{
	struct sweep_job *job = arg;

	if (res->status != DB_OK) {
		sweep_failed(job, res);
		return;
	}
	sweep_schedule(job, *job->every);
}

static void
sweep_housekeeping(struct sweep_job *job)
{
	struct db_batch *b = db_batch_new();

	store_housekeeping(b);
	db_batch_run(orders.svc.db, b, housekeeping_on_done, job);
}

/* ---- idem_purge --------------------------------------------------------- */

/* Its continuation is housekeeping's: schedule the next run. */
static void
sweep_idem_purge(struct sweep_job *job)
{
	idem_purge(orders.svc.db, orders.cfg.idem.retention_hours,
	    housekeeping_on_done, job);
}

/* ---- expiring: unpaid orders about to expire ---------------------------- */

static void
expiring_on_done(void *arg, const struct db_result *res)
{
	struct sweep_job *job = arg;
	long told;

	if (res->status != DB_OK) {
		sweep_failed(job, res);
		return;
	}
	told = strtol(db_value(res, 0, 0, 0), NULL, 10);
	if (told > 0)
		log_info(NULL, "msg=orders_expiring_told count=%ld", told);
	if (told >= SWEEP_BATCH)
		sweep_schedule(job, 0);
	else
		sweep_rest_until(job, db_value(res, 1, 0, 0));
}

static void
sweep_expiring(struct sweep_job *job)
{
	char before[24], limit[16];
	const char *p[] = {before, limit};
	struct db_batch *b;

	if (orders.cfg.order_expiring_notice_seconds == 0) {
		job->running = 0; /* off: never again */
		return;
	}
	snprintf(before, sizeof(before), "%ld",
	    orders.cfg.order_expiring_notice_seconds);
	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	b = db_batch_new();
	db_batch_add(b, store_order_expiring_sql, 2, p);
	db_batch_add(b, store_order_expiring_next_sql, 1, p);
	db_batch_run(orders.svc.db, b, expiring_on_done, job);
}

/* ---- digest: the daily expiry digests ---------------------------------- */

static void
digest_on_done(void *arg, long wait)
{
	struct sweep_job *job = arg;
	char next[24];

	if (wait == 0) { /* one enterprise saved: the next may be due at once */
		sweep_schedule(job, 0);
		return;
	}
	snprintf(next, sizeof(next), "%ld", wait);
	sweep_rest_until(job, wait > 0 ? next : NULL);
}

static void
sweep_digest(struct sweep_job *job)
{
	order_digest_run(digest_on_done, job);
}

/* ---- start and stop ----------------------------------------------------- */

void
order_sweep_start(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweep_jobs); i++) {
		struct sweep_job *job = &sweep_jobs[i];

		job->timer = evtimer_new(orders.svc.base, sweep_fire, job);
		if (job->timer == NULL)
			fatal("evtimer_new failed");
		sweep_schedule(job, 1);
	}
}

void
order_sweep_stop(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweep_jobs); i++) {
		if (sweep_jobs[i].timer != NULL)
			event_free(sweep_jobs[i].timer);
		sweep_jobs[i].timer = NULL;
	}
}
