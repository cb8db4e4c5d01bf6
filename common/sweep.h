/* sweep — the one way a service runs its background rounds: a table of
 * timers on the service's event base, one row per sweep. A sweep rests
 * until the next item it serves falls due (what its round read), at least
 * its interval and at most its idle maximum; one round at a time per
 * process; a kick wakes it at once, or, during a round, runs it again
 * right after. Loop thread only (a consumer thread reaches the loop with
 * work_submit first). */
#ifndef CAPLAT_SWEEP_H
#define CAPLAT_SWEEP_H

#include <stddef.h>

struct event;
struct event_base;
struct sweep;

/* Starts one round of s on the loop. Its last step calls sweep_done(),
 * sweep_rest_until() or sweep_again() exactly once, now or later (a
 * round may wait on I/O). */
typedef void (*sweep_start_fn)(struct sweep *s);

/* One row of a service's sweep table. The first four fields are the
 * row; the rest is sweep.c's state (zero in the table). */
struct sweep {
	const char *name;
	const long *interval_ms; /* least rest between two rounds; 0: off */
	const long *idle_ms;     /* most rest when nothing falls due sooner;
	                          * NULL: the interval */
	sweep_start_fn start;
	/* sweep.c's */
	struct event *timer;
	int running;
	long long next_at; /* monotonic ms its timer fires, while resting */
	long long due_at;  /* during a round: the earliest due noted, or -1 */
};

/* Arms the timer of every row of table (n rows) on base: the first round
 * after first_ms, or, when first_ms < 0, after the row's interval. A row
 * whose interval is 0 stays off (its kicks do nothing). Called once, after
 * the configuration is loaded (the rows point into it). Failure to create
 * a timer is fatal. */
void sweep_start(struct sweep *table, size_t n, struct event_base *base,
    long first_ms);

/* Frees the timers of table: no round starts after this; a round under way
 * ends harmlessly (its sweep_done arms nothing). For shutdown. */
void sweep_stop(struct sweep *table, size_t n);

/* The round of s is over: the next when due_ms from now (its next item
 * falls due; < 0: nothing is due), and sooner when a kick or sweep_due
 * asked during the round, but never later than the idle maximum nor
 * sooner than the interval. sweep_done(s, 0) is "after the interval". */
void sweep_done(struct sweep *s, long due_ms);

/* sweep_done with the due time as the database gave it: milliseconds in
 * text, NULL when nothing is pending (overdue, negative: after the
 * interval). */
void sweep_rest_until(struct sweep *s, const char *due_ms);

/* The round of s is over and more is due already (a full batch): the next
 * at once, whatever the interval. */
void sweep_again(struct sweep *s);

/* During a round of s: an item falls due due_ms from now (the round ends
 * later, and its rest will not pass that instant). Outside a round, the
 * same as sweep_kick_in. */
void sweep_due(struct sweep *s, long due_ms);

/* Wakes s now; during a round, the next round runs right after it (after
 * the interval), once however many kicks came. */
void sweep_kick(struct sweep *s);

/* Brings the next round of s forward to ms from now, unless it runs by
 * then; during a round, its rest will not pass that instant. */
void sweep_kick_in(struct sweep *s, long ms);

#endif
