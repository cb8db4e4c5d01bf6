/* sweep — the enterprise service's timers, one row each in the table
 * below: what runs, how often. Each runs on the loop; a round that is still
 * busy when its timer fires again skips that tick itself. */
#include "enterprise.h"

#include "util.h"

#include <event2/event.h>

struct sweep {
	const char *name;
	long interval_ms;
	void (*round)(void);
	struct event *timer;
};

/* The review SMS moved to auth's notices (issue 17). licence_ocr: a new or
 * finished recognition starts the next round at once and a round rests
 * until a lease ends (ocr.c); this minute is the look for what another
 * process queued. */
static struct sweep sweeps[] = {
    {"licence_ocr", 60000, ent_ocr_round, NULL},
};

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *s = arg;

	s->round();
}

void
ent_sweep_start(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++) {
		struct sweep *s = &sweeps[i];
		if (s->round == NULL)
			continue;
		struct timeval every = {s->interval_ms / 1000,
		    (s->interval_ms % 1000) * 1000};

		s->timer =
		    event_new(ent.svc.base, -1, EV_PERSIST, sweep_tick, s);
		if (s->timer == NULL || event_add(s->timer, &every) != 0)
			fatal("sweep: cannot start the %s timer", s->name);
	}
}

void
ent_sweep_stop(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++) {
		if (sweeps[i].timer != NULL)
			event_free(sweeps[i].timer);
		sweeps[i].timer = NULL;
	}
}
