/* hist — fixed-bucket latency histograms and the per-step ones (hist.h). */
#include "hist.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct hist steps[STEP_COUNT];

static const char *const step_names[STEP_COUNT] = {
    [STEP_DB_BATCH] = "db_batch",
    [STEP_REDIS] = "redis",
    [STEP_BUS_PUBLISH] = "bus_publish",
    [STEP_BUS_CONSUME] = "bus_consume",
    [STEP_SIG_VERIFY] = "sig_verify",
    [STEP_CHAIN_VERIFY] = "chain_verify",
    [STEP_CSR_VERIFY] = "csr_verify",
    [STEP_CA_SIGN] = "ca_sign",
    [STEP_VENDOR_CALL] = "vendor_call",
    [STEP_JSON_BUILD] = "json_build",
};

void
hist_observe(struct hist *h, int64_t ns)
{
	uint64_t bound = 10000; /* 10 µs */
	size_t b = 0;

	if (ns < 0)
		ns = 0;
	while (b < HIST_NBUCKETS && (uint64_t)ns > bound) {
		bound *= 2;
		b++;
	}
	__atomic_fetch_add(&h->buckets[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, (uint64_t)ns, __ATOMIC_RELAXED);
}

/* snprintf into buf at *off, never past size. */
static void put(char *buf, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n < size - *off ? (size_t)n : size - *off - 1;
}

size_t
hist_text(const struct hist *h, const char *name, const char *labels, char *buf,
    size_t size)
{
	uint64_t cum = 0, count, sum;
	double bound = 10e-6;
	size_t off = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	for (size_t b = 0; b < HIST_NBUCKETS; b++, bound *= 2) {
		cum += __atomic_load_n(&h->buckets[b], __ATOMIC_RELAXED);
		put(buf, size, &off, "%s_bucket{%s,le=\"%g\"} %llu\n", name,
		    labels, bound, (unsigned long long)cum);
	}
	count = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
	sum = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
	/* +Inf is the count, so the buckets never exceed it when an
	 * observation lands between the loads. */
	cum += __atomic_load_n(&h->buckets[HIST_NBUCKETS], __ATOMIC_RELAXED);
	put(buf, size, &off,
	    "%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %.9f\n"
	    "%s_count{%s} %llu\n",
	    name, labels, (unsigned long long)(count > cum ? count : cum), name,
	    labels, (double)sum / 1e9, name, labels,
	    (unsigned long long)(count > cum ? count : cum));
	return off;
}

int64_t
hist_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
hist_step(enum hist_step step, int64_t t0)
{
	if ((unsigned)step < STEP_COUNT)
		hist_observe(&steps[step], hist_now() - t0);
}

size_t
hist_steps_metrics(void *svc_name, char *buf, size_t size)
{
	const char *svc = svc_name;
	char labels[96];
	size_t off = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	put(buf, size, &off,
	    "# HELP caplat_step_duration_seconds Time of one step of a "
	    "request (database batch, Redis command, signature, …).\n"
	    "# TYPE caplat_step_duration_seconds histogram\n");
	for (int s = 0; s < STEP_COUNT; s++) {
		if (__atomic_load_n(&steps[s].count, __ATOMIC_RELAXED) == 0)
			continue;
		snprintf(labels, sizeof(labels), "svc=\"%s\",step=\"%s\"", svc,
		    step_names[s]);
		off += hist_text(&steps[s], "caplat_step_duration_seconds",
		    labels, buf + off, size - off);
	}
	return off;
}
