/* sweep — the enterprise service's timers, rows of common/sweep.h: what
 * runs, how often. The review SMS moved to auth's notices (issue 17).
 * licence_ocr: a round claims what idle recognition threads can take and
 * rests until a lease ends (a recognition another process or a crash left
 * running), at least 1 s, at most a minute (the look for what another
 * process queued); a new licence and a finished recognition kick it
 * (ocr.c). Off without recognition threads (CAPLAT_OCR_THREADS=0). */
#include "enterprise.h"

#include "sweep.h"
#include "util.h"

static long ocr_interval_ms; /* 1 s, or 0 (off) without threads */
static const long ocr_idle_ms = 60000;

enum { SWEEP_OCR };

static struct sweep sweeps[] = {
    [SWEEP_OCR] = {"licence_ocr", &ocr_interval_ms, &ocr_idle_ms,
        ent_ocr_round},
};

void
ent_sweep_start(void)
{
	ocr_interval_ms = ent.cfg.ocr_threads > 0 ? 1000 : 0;
	/* a round 1 s after the start picks up what a crash left */
	sweep_start(sweeps, ARRAY_LEN(sweeps), ent.svc.base, 1000);
}

void
ent_sweep_stop(void)
{
	sweep_stop(sweeps, ARRAY_LEN(sweeps));
}

void
ent_sweep_kick_ocr(void)
{
	sweep_kick(&sweeps[SWEEP_OCR]);
}
