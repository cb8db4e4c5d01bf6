/* sweep — auth's timers, one row each in the table below: what runs, how
 * often. Each runs on the loop; a round still busy when its timer fires
 * again skips that tick itself. */
#include "auth.h"

#include "util.h"

#include <event2/event.h>

struct sweep {
	const char *name;
	const long *interval_ms; /* from the configuration */
	void (*round)(void);
	struct event *timer;
};

static struct sweep sweeps[] = {
    {"sms_delivery", &auth.cfg.sms_delivery_ms, auth_deliver_round, NULL},
};

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *s = arg;

	s->round();
}

void
auth_sweep_start(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++) {
		struct sweep *s = &sweeps[i];
		struct timeval every = {*s->interval_ms / 1000,
		    (*s->interval_ms % 1000) * 1000};
		s->timer =
		    event_new(auth.svc.base, -1, EV_PERSIST, sweep_tick, s);
		if (s->timer == NULL || event_add(s->timer, &every) != 0)
			fatal("sweep: cannot start the %s timer", s->name);
	}
}
