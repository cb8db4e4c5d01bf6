/* Unit tests for work: jobs run off the loop thread and complete on it, in
 * any number, and shutdown joins the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "work.h"

static pthread_t loop_thread;
static int done_count;
static struct event_base *base;

struct job {
	int in, out;
	pthread_t ran_on;
};

static void
job_run(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	j->out = j->in * 2;
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	assert_true(pthread_equal(pthread_self(), loop_thread));
	assert_false(pthread_equal(j->ran_on, loop_thread));
	assert_int_equal(j->out, j->in * 2);
	if (++done_count == 100)
		event_base_loopbreak(base);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (++*(int *)arg > 500) /* 5 s: give up, the assertion below fails */
		event_base_loopbreak(base);
}

static void
test_jobs_round_trip(void **state)
{
	static struct job jobs[100];
	struct timeval tick = {0, 10000};
	int ticks = 0;

	evthread_use_pthreads();
	base = event_base_new();
	loop_thread = pthread_self();
	/* A service's loop always has its listener; here a timer keeps the loop
	 * alive while the jobs run (their completions are only activated). */
	struct event *keep = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
	event_add(keep, &tick);
	work_init(base, 2);
	for (int i = 0; i < 100; i++) {
		jobs[i].in = i;
		work_submit(job_run, job_done, &jobs[i]);
	}
	event_base_dispatch(base);
	assert_int_equal(done_count, 100);
	work_shutdown();
	event_free(keep);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
