/* Unit tests for sweep: on a real event_base with short intervals, a sweep
 * rests until its next item falls due, at least its interval and at most
 * its idle maximum; a kick wakes a resting sweep; kicks during a round run
 * it once more right after; a full round goes on at once; stop cancels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>

#include "sweep.h"
#include "util.h"

/* Generous upper bounds: the machine running the tests may be busy. */
#define SLACK_MS 400

static struct event_base *base;
static long long t0;
static long long at[16]; /* when each round started, ms after t0 */
static int rounds;
static long due_next;  /* what each round passes to sweep_done */
static int hold;       /* 1: a round does not end until finish() */
static int stop_after; /* break the loop after this many rounds */
static struct sweep *held;
static long long mark; /* an instant a test notes, ms after t0 */

static long long
now_ms(void)
{
	return (long long)(now_mono_us() / 1000);
}

static void
round_start(struct sweep *s)
{
	if (rounds < (int)ARRAY_LEN(at))
		at[rounds] = now_ms() - t0;
	rounds++;
	if (rounds >= stop_after)
		event_base_loopbreak(base);
	if (hold) {
		held = s;
		return;
	}
	sweep_done(s, due_next);
}

static long interval, idle;
static struct sweep table[] = {
    {"test", &interval, &idle, round_start, NULL, 0, 0, 0},
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* Runs the loop until stop_after rounds or ms, whichever comes first. */
static void
run_for(long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *deadline = evtimer_new(base, on_deadline, NULL);

	evtimer_add(deadline, &tv);
	event_base_dispatch(base);
	event_free(deadline);
}

static int
setup(void **state)
{
	base = event_base_new();
	rounds = 0;
	due_next = -1;
	hold = 0;
	stop_after = 1000;
	held = NULL;
	interval = 10;
	idle = 10000;
	t0 = now_ms();
	return base == NULL;
}

static int
teardown(void **state)
{
	sweep_stop(table, ARRAY_LEN(table));
	event_base_free(base);
	return 0;
}

static void
test_first_round_after_first_ms(void **state)
{
	stop_after = 1;
	sweep_start(table, ARRAY_LEN(table), base, 30);
	run_for(30 + SLACK_MS);
	assert_int_equal(rounds, 1);
	assert_true(at[0] >= 29);
}

static void
test_rests_until_due(void **state)
{
	due_next = 80;
	stop_after = 2;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] >= 79);
	assert_true(at[1] - at[0] < 80 + SLACK_MS);
}

static void
test_rests_at_least_the_interval(void **state)
{
	interval = 120;
	due_next = 5; /* due sooner than the interval allows */
	stop_after = 2;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] >= 119);
	/* and sweep_done(s, 0) is "after the interval" too */
	rounds = 0;
	due_next = 0;
	stop_after = 2;
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] >= 119);
}

static void
test_rests_at_most_the_idle_maximum(void **state)
{
	idle = 60;
	due_next = -1; /* nothing due */
	stop_after = 2;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] >= 59);
	assert_true(at[1] - at[0] < 60 + SLACK_MS);
	rounds = 0;
	due_next = 100000; /* due long after the idle maximum */
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] < 60 + SLACK_MS);
}

static void
test_idle_defaults_to_the_interval(void **state)
{
	struct sweep one[] = {
	    {"plain", &interval, NULL, round_start, NULL, 0, 0, 0}};

	interval = 50;
	stop_after = 2;
	sweep_start(one, 1, base, 0);
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - at[0] >= 49);
	assert_true(at[1] - at[0] < 50 + SLACK_MS);
	sweep_stop(one, 1);
}

static void
test_rest_until_reads_the_database_text(void **state)
{
	stop_after = 1000;
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	hold = 0;
	stop_after = 2;
	mark = now_ms() - t0;
	sweep_rest_until(held, "70");
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - mark >= 69);
	assert_true(at[1] - mark < 70 + SLACK_MS);
}

static void
test_rest_until_overdue_is_the_interval(void **state)
{
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	hold = 0;
	stop_after = 2;
	mark = now_ms() - t0;
	sweep_rest_until(held, "-5"); /* not the 10 s idle maximum */
	run_for(2000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - mark >= 9);
	assert_true(at[1] - mark < 10 + SLACK_MS);
}

static void
kick_soon(evutil_socket_t fd, short what, void *arg)
{
	sweep_kick(&table[0]);
}

static void
test_kick_wakes_a_resting_sweep(void **state)
{
	struct timeval tv = {0, 50 * 1000};
	struct event *kick = evtimer_new(base, kick_soon, NULL);

	stop_after = 2;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	evtimer_add(kick, &tv); /* the sweep rests 10 s after round 1 */
	run_for(3000);
	event_free(kick);
	assert_int_equal(rounds, 2);
	assert_true(at[1] >= 49);
	assert_true(at[1] < 50 + SLACK_MS);
}

static void
test_kick_during_a_round_runs_it_again_once(void **state)
{
	interval = 30;
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	/* three kicks while round 1 runs: no round starts meanwhile */
	sweep_kick(held);
	sweep_kick(held);
	sweep_kick_in(held, 5);
	run_for(100);
	assert_int_equal(rounds, 1);
	/* round 1 ends with nothing due: round 2 right after (the
	 * interval), not after the 10 s idle maximum */
	hold = 0;
	stop_after = 2;
	sweep_done(held, -1);
	run_for(30 + SLACK_MS);
	assert_int_equal(rounds, 2);
	/* and only once: round 2 rests the idle maximum */
	run_for(300);
	assert_int_equal(rounds, 2);
}

static void
test_due_noted_during_a_round_bounds_its_rest(void **state)
{
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	mark = now_ms() - t0;
	sweep_due(held, 150); /* read at the round's start */
	run_for(100);         /* the round takes 100 ms */
	hold = 0;
	stop_after = 2;
	sweep_done(held, -1);
	run_for(2000);
	assert_int_equal(rounds, 2);
	/* 150 ms after the note, not 150 ms after the round's end */
	assert_true(at[1] - mark >= 149);
	assert_true(at[1] - mark < 150 + SLACK_MS);
}

static void
test_kick_in_brings_forward_never_back(void **state)
{
	struct sweep *s = &table[0];

	stop_after = 1000;
	due_next = 2000;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1); /* resting 2 s */
	mark = now_ms() - t0;
	sweep_kick_in(s, 60);   /* forward to 60 ms */
	sweep_kick_in(s, 5000); /* runs by then already: no change */
	stop_after = 2;
	run_for(3000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - mark >= 59);
	assert_true(at[1] - mark < 60 + SLACK_MS);
}

static void
test_again_runs_at_once(void **state)
{
	interval = 5000;
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	hold = 0;
	due_next = -1;
	stop_after = 2;
	mark = now_ms() - t0;
	sweep_again(held); /* a full batch: more is due now */
	run_for(3000);
	assert_int_equal(rounds, 2);
	assert_true(at[1] - mark < SLACK_MS);
}

static void
test_stop_cancels(void **state)
{
	sweep_start(table, ARRAY_LEN(table), base, 20);
	sweep_stop(table, ARRAY_LEN(table));
	run_for(100);
	assert_int_equal(rounds, 0);
	sweep_kick(&table[0]); /* a kick after the stop does nothing */
	run_for(50);
	assert_int_equal(rounds, 0);
}

static void
test_stop_during_a_round(void **state)
{
	hold = 1;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	run_for(50);
	assert_int_equal(rounds, 1);
	sweep_stop(table, ARRAY_LEN(table));
	sweep_done(held, 0); /* the round ends after the stop */
	run_for(100);
	assert_int_equal(rounds, 1);
}

static void
test_interval_zero_is_off(void **state)
{
	interval = 0;
	sweep_start(table, ARRAY_LEN(table), base, 0);
	sweep_kick(&table[0]);
	run_for(100);
	assert_int_equal(rounds, 0);
	assert_null(table[0].timer);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_round_after_first_ms,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rests_until_due, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_rests_at_least_the_interval,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rests_at_most_the_idle_maximum,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_defaults_to_the_interval,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_rest_until_reads_the_database_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_rest_until_overdue_is_the_interval, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kick_wakes_a_resting_sweep,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_kick_during_a_round_runs_it_again_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_due_noted_during_a_round_bounds_its_rest, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_kick_in_brings_forward_never_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_again_runs_at_once, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_stop_cancels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_during_a_round, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_interval_zero_is_off, setup,
	        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
