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
 * Each job is a row of common/sweep.h: its continuation ends the run
 * (sweep_done, sweep_again), so runs of one job never overlap. */
#include "orders.h"

#include "db.h"
#include "log.h"
#include "sweep.h"
#include "util.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>

#define SWEEP_BATCH 500

static void sweep_expire(struct sweep *s);
static void sweep_housekeeping(struct sweep *s);
static void sweep_idem_purge(struct sweep *s);
static void sweep_expiring(struct sweep *s);
static void sweep_digest(struct sweep *s);

/* The configuration in milliseconds, as the table reads it (set at
 * start). */
static long sweep_ms, idle_ms, idem_purge_ms, expiring_ms;
static const long housekeeping_ms = 3600 * 1000;

enum { JOB_EXPIRE, JOB_HOUSEKEEPING, JOB_IDEM_PURGE, JOB_EXPIRING, JOB_DIGEST };

static struct sweep sweep_jobs[] = {
    [JOB_EXPIRE] = {"expire", &sweep_ms, &idle_ms, sweep_expire},
    [JOB_HOUSEKEEPING] = {"housekeeping", &housekeeping_ms, NULL,
        sweep_housekeeping},
    [JOB_IDEM_PURGE] = {"idem_purge", &idem_purge_ms, NULL, sweep_idem_purge},
    [JOB_EXPIRING] = {"expiring", &expiring_ms, &idle_ms, sweep_expiring},
    [JOB_DIGEST] = {"digest", &sweep_ms, &idle_ms, sweep_digest},
};

/* Logs a failed run; the job runs again after its period. */
static void
job_failed(struct sweep *s, const struct db_result *res)
{
	log_warn(NULL, "msg=sweep_failed job=%s status=%d error=\"%s\"",
	    s->name, (int)res->status, res->message ? res->message : "-");
	sweep_done(s, 0);
}

/* A job that rests until its next item is due waits `next` seconds (NULL:
 * nothing waits), within its period and CAPLAT_ORDER_SWEEP_IDLE_SECONDS. */
static void
rest_seconds(struct sweep *s, const char *next)
{
	long seconds = next != NULL ? atol(next) : -1;

	sweep_done(s, next == NULL ? -1 : seconds > 0 ? seconds * 1000 : 0);
}

/* Brings job's next run forward to `seconds` from now (not below its
 * period) unless it runs by then. */
static void
kick_seconds(struct sweep *s, long seconds)
{
	if (seconds < orders.cfg.sweep_seconds)
		seconds = orders.cfg.sweep_seconds;
	sweep_kick_in(s, seconds * 1000);
}

void
order_sweep_kick(long seconds)
{
	long notice = orders.cfg.order_expiring_notice_seconds;

	kick_seconds(&sweep_jobs[JOB_EXPIRE], seconds);
	if (notice > 0)
		kick_seconds(&sweep_jobs[JOB_EXPIRING],
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
	kick_seconds(&sweep_jobs[JOB_DIGEST], orders.cfg.digest_gather_seconds);
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
	struct sweep *s = arg;
	long expired;

	if (res->status != DB_OK) {
		job_failed(s, res);
		return;
	}
	expired = strtol(db_value(res, 0, 0, 0), NULL, 10);
	if (expired > 0) {
		atomic_fetch_add(&orders.n.expired, expired);
		log_info(NULL, "msg=orders_expired count=%ld", expired);
	}
	/* A full batch means more are due: go on at once. */
	if (expired >= SWEEP_BATCH) {
		sweep_again(s);
		return;
	}
	/* Else until the next unpaid order expires, within the bounds. */
	rest_seconds(s, db_value(res, 1, 0, 0));
}

static void
sweep_expire(struct sweep *s)
{
	char limit[16];
	const char *p[] = {limit};
	struct db_batch *b = db_batch_new();

	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	db_batch_add(b, store_sweep_expire_sql, 1, p);
	db_batch_add(b, store_sweep_next_expiry_sql, 0, NULL);
	db_batch_run(orders.svc.db, b, expire_on_done, s);
}

/* ---- housekeeping ------------------------------------------------------- */

static void
housekeeping_on_done(void *arg, const struct db_result *res)
{
	struct sweep *s = arg;

	if (res->status != DB_OK) {
		job_failed(s, res);
		return;
	}
	sweep_done(s, 0);
}

static void
sweep_housekeeping(struct sweep *s)
{
	struct db_batch *b = db_batch_new();

	store_housekeeping(b);
	db_batch_run(orders.svc.db, b, housekeeping_on_done, s);
}

/* ---- idem_purge --------------------------------------------------------- */

/* Its continuation is housekeeping's: schedule the next run. */
static void
sweep_idem_purge(struct sweep *s)
{
	idem_purge(orders.svc.db, orders.cfg.idem.retention_hours,
	    housekeeping_on_done, s);
}

/* ---- expiring: unpaid orders about to expire ---------------------------- */

static void
expiring_on_done(void *arg, const struct db_result *res)
{
	struct sweep *s = arg;
	long told;

	if (res->status != DB_OK) {
		job_failed(s, res);
		return;
	}
	told = strtol(db_value(res, 0, 0, 0), NULL, 10);
	if (told > 0)
		log_info(NULL, "msg=orders_expiring_told count=%ld", told);
	if (told >= SWEEP_BATCH)
		sweep_again(s);
	else
		rest_seconds(s, db_value(res, 1, 0, 0));
}

static void
sweep_expiring(struct sweep *s)
{
	char before[24], limit[16];
	const char *p[] = {before, limit};
	struct db_batch *b;

	snprintf(before, sizeof(before), "%ld",
	    orders.cfg.order_expiring_notice_seconds);
	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	b = db_batch_new();
	db_batch_add(b, store_order_expiring_sql, 2, p);
	db_batch_add(b, store_order_expiring_next_sql, 1, p);
	db_batch_run(orders.svc.db, b, expiring_on_done, s);
}

/* ---- digest: the daily expiry digests ---------------------------------- */

static void
digest_on_done(void *arg, long wait)
{
	struct sweep *s = arg;

	if (wait == 0) { /* one enterprise saved: the next may be due at once */
		sweep_again(s);
		return;
	}
	sweep_done(s, wait > 0 ? wait * 1000 : -1);
}

static void
sweep_digest(struct sweep *s)
{
	order_digest_run(digest_on_done, s);
}

/* ---- start and stop ----------------------------------------------------- */

void
order_sweep_start(void)
{
	sweep_ms = orders.cfg.sweep_seconds * 1000;
	idle_ms = orders.cfg.sweep_idle_seconds * 1000;
	idem_purge_ms = orders.cfg.idem.purge_seconds * 1000;
	/* off (no notice) when the notice window is 0 */
	expiring_ms =
	    orders.cfg.order_expiring_notice_seconds > 0 ? sweep_ms : 0;
	sweep_start(sweep_jobs, ARRAY_LEN(sweep_jobs), orders.svc.base, 1000);
}

void
order_sweep_stop(void)
{
	sweep_stop(sweep_jobs, ARRAY_LEN(sweep_jobs));
}
