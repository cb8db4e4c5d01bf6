/* work — a locked job queue served by pool threads; completion is handed
 * back to the loop with event_active() on a per-job event. */
#include "work.h"

#include "util.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

struct work_job {
	work_fn run, done;
	void *arg;
	struct event *ev;
	struct work_job *next;
};

static struct {
	struct event_base *base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct work_job *head, *tail;
	pthread_t *threads;
	int nthreads, stopping;
} work = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void
work_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct work_job *job = arg;

	job->done(job->arg);
	event_free(job->ev);
	free(job);
}

static void *
work_thread(void *unused)
{
	for (;;) {
		struct work_job *job;

		pthread_mutex_lock(&work.mu);
		while (work.head == NULL && !work.stopping)
			pthread_cond_wait(&work.cv, &work.mu);
		if (work.stopping) {
			pthread_mutex_unlock(&work.mu);
			return NULL;
		}
		job = work.head;
		work.head = job->next;
		if (work.head == NULL)
			work.tail = NULL;
		pthread_mutex_unlock(&work.mu);
		job->run(job->arg);
		event_active(job->ev, 0, 0);
	}
}

void
work_init(struct event_base *base, int nthreads)
{
	work.base = base;
	work.nthreads = nthreads > 0 ? nthreads : 2;
	work.threads = xcalloc((size_t)work.nthreads, sizeof(pthread_t));
	for (int i = 0; i < work.nthreads; i++)
		if (pthread_create(&work.threads[i], NULL, work_thread, NULL) !=
		    0)
			fatal("pthread_create failed");
}

void
work_submit(work_fn run, work_fn done, void *arg)
{
	struct work_job *job = xcalloc(1, sizeof(*job));

	job->run = run;
	job->done = done;
	job->arg = arg;
	job->ev = event_new(work.base, -1, 0, work_on_done, job);
	pthread_mutex_lock(&work.mu);
	if (work.tail)
		work.tail->next = job;
	else
		work.head = job;
	work.tail = job;
	pthread_cond_signal(&work.cv);
	pthread_mutex_unlock(&work.mu);
}

void
work_shutdown(void)
{
	pthread_mutex_lock(&work.mu);
	work.stopping = 1;
	pthread_cond_broadcast(&work.cv);
	pthread_mutex_unlock(&work.mu);
	for (int i = 0; i < work.nthreads; i++)
		pthread_join(work.threads[i], NULL);
	while (work.head) {
		struct work_job *job = work.head;
		work.head = job->next;
		event_free(job->ev);
		free(job);
	}
	work.tail = NULL;
	free(work.threads);
	work.threads = NULL;
}
