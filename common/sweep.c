/* sweep — a service's table of resting timers (sweep.h). Each row has one
 * libevent timer, armed only while the sweep rests, so a tick never lands
 * in a running round; what comes during a round (a kick, a due item) is
 * noted as an instant and bounds the rest that follows it. */
#include "sweep.h"

#include "util.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>

static long long
now_ms(void)
{
	return (long long)(now_mono_us() / 1000);
}

static long
interval_of(const struct sweep *s)
{
	return *s->interval_ms;
}

/* The timer of s fires in ms (a rest of the sweep). */
static void
rest(struct sweep *s, long ms)
{
	struct timeval tv;

	s->running = 0;
	s->due_at = -1;
	if (s->timer == NULL)
		return; /* off, or stopped during the round */
	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	s->next_at = now_ms() + ms;
	evtimer_add(s->timer, &tv);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *s = arg;

	if (s->running)
		return; /* never armed during a round; defensive */
	s->running = 1;
	s->due_at = -1;
	s->start(s);
}

void
sweep_start(struct sweep *table, size_t n, struct event_base *base,
    long first_ms)
{
	for (size_t i = 0; i < n; i++) {
		struct sweep *s = &table[i];

		s->running = 0;
		s->due_at = -1;
		if (interval_of(s) <= 0)
			continue; /* off */
		s->timer = evtimer_new(base, on_tick, s);
		if (s->timer == NULL)
			fatal("sweep: cannot create the %s timer", s->name);
		rest(s, first_ms >= 0 ? first_ms : interval_of(s));
	}
}

void
sweep_stop(struct sweep *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].timer != NULL)
			event_free(table[i].timer);
		table[i].timer = NULL;
	}
}

void
sweep_done(struct sweep *s, long due_ms)
{
	long wait = s->idle_ms != NULL ? *s->idle_ms : interval_of(s);

	if (due_ms >= 0 && due_ms < wait)
		wait = due_ms;
	if (s->due_at >= 0) {
		long long left = s->due_at - now_ms();

		if (left < wait)
			wait = left > 0 ? (long)left : 0;
	}
	if (wait < interval_of(s))
		wait = interval_of(s);
	rest(s, wait);
}

void
sweep_rest_until(struct sweep *s, const char *due_ms)
{
	long ms = due_ms != NULL ? atol(due_ms) : -1;

	/* overdue (a row another process holds): after the interval */
	sweep_done(s, due_ms != NULL && ms < 0 ? 0 : ms);
}

void
sweep_again(struct sweep *s)
{
	rest(s, 0);
}

void
sweep_kick_in(struct sweep *s, long ms)
{
	long long at;

	if (s->timer == NULL)
		return; /* off or stopped */
	if (ms < 0)
		ms = 0;
	at = now_ms() + ms;
	if (s->running) {
		if (s->due_at < 0 || at < s->due_at)
			s->due_at = at;
		return;
	}
	if (evtimer_pending(s->timer, NULL) && s->next_at <= at)
		return; /* it runs by then */
	rest(s, ms);
}

void
sweep_due(struct sweep *s, long due_ms)
{
	sweep_kick_in(s, due_ms);
}

void
sweep_kick(struct sweep *s)
{
	sweep_kick_in(s, 0);
}
