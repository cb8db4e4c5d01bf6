/* sweep — auth's timers, rows of common/sweep.h: what runs, how often.
 * sms_delivery (deliver.c): rests until the next SMS row falls due (a
 * backoff ends, a lease runs out), at least 10 ms, at most
 * CAPLAT_SMS_DELIVERY_MS (the look for what another process queued); a
 * queued notice or a resend kicks it; the first round, 1 s after start,
 * finds what a crash left.
 * session_drops (request.c): the open sessions of a removed identity whose
 * rewrite did not happen after the removal's commit (auth died, Redis
 * failed) are rewritten, 5 s after the removal at the earliest; rests until
 * the next such removal falls due (a failed rewrite in this process says
 * when), at least 1 s, at most a minute (what another process left). */
#include "auth.h"

#include "sweep.h"
#include "util.h"
#include "work.h"

static const long sms_least_ms = 10;
static const long drops_least_ms = 1000, drops_idle_ms = 60000;

enum { SWEEP_SMS, SWEEP_SESSION_DROPS };

static struct sweep sweeps[] = {
    [SWEEP_SMS] = {"sms_delivery", &sms_least_ms, &auth.cfg.sms_delivery_ms,
        auth_deliver_round},
    [SWEEP_SESSION_DROPS] = {"session_drops", &drops_least_ms, &drops_idle_ms,
        auth_sessions_drop_round},
};

void
auth_sweep_start(void)
{
	sweep_start(sweeps, ARRAY_LEN(sweeps), auth.svc.base, 1000);
}

void
auth_sweep_stop(void)
{
	sweep_stop(sweeps, ARRAY_LEN(sweeps));
}

static void
kick_nothing(void *arg)
{
	(void)arg;
}

static void
kick_sms_on_loop(void *arg)
{
	sweep_kick(&sweeps[SWEEP_SMS]);
}

void
auth_sweep_kick_sms(void)
{
	/* from a consumer thread: the timer is the loop's */
	work_submit(kick_nothing, kick_sms_on_loop, NULL);
}
