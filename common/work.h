/* work — runs CPU-heavy jobs (password hashing, signing) on a small thread
 * pool so the event loop never blocks, and calls back on the loop thread.
 * The job function must touch nothing but its own argument. */
#ifndef CAPLAT_WORK_H
#define CAPLAT_WORK_H

struct event_base;

/* run(arg) runs on a pool thread; done(arg) then runs on the loop thread. */
typedef void (*work_fn)(void *arg);

/* Starts nthreads workers for base (which must have been created after
 * evthread_use_pthreads()). Once per process. */
void work_init(struct event_base *base, int nthreads);
/* Queues a job. Never fails (out of memory is fatal). */
void work_submit(work_fn run, work_fn done, void *arg);
/* Stops and joins the workers; queued jobs are dropped without callbacks. */
void work_shutdown(void);

#endif
