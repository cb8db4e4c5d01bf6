/* hist — latency histograms with fixed logarithmic buckets, written as
 * Prometheus text (_bucket/_sum/_count), and the process's per-step
 * histograms: how long each kind of step of a request took (a database
 * batch, a Redis command, a bus publish or consume, a signature check, a CA
 * signature, a vendor call, building a JSON answer). Observing is lock-free
 * (atomic adds) and safe from any thread. /metrics shows the steps as
 * caplat_step_duration_seconds{svc, step}; tests/bench/where.py turns two
 * scrapes into "where a renewal's time goes". */
#ifndef CAPLAT_HIST_H
#define CAPLAT_HIST_H
#include <stddef.h>
#include <stdint.h>

/* Upper bounds 10 µs · 2^k, k = 0 … HIST_NBUCKETS-1 (10 µs … 5.2 s), and
 * +Inf. */
#define HIST_NBUCKETS 20

struct hist {
	uint64_t buckets[HIST_NBUCKETS + 1]; /* non-cumulative; last: +Inf */
	uint64_t count;
	uint64_t sum_ns;
};

/* Adds one observation of ns nanoseconds (negative counts as 0). */
void hist_observe(struct hist *h, int64_t ns);
/* Writes h as Prometheus histogram lines of metric name with the labels
 * (`a="x",b="y"`, without braces) into buf (NUL-terminated, truncated to
 * size); returns the length written. */
size_t hist_text(const struct hist *h, const char *name, const char *labels,
    char *buf, size_t size);

/* The steps timed in every service. */
enum hist_step {
	STEP_DB_BATCH,     /* a PostgreSQL batch: queue, round trip, parse */
	STEP_REDIS,        /* a Redis command, sent to reply */
	STEP_BUS_PUBLISH,  /* an outbox event published to JetStream */
	STEP_BUS_CONSUME,  /* an event applied by a consumer */
	STEP_SIG_VERIFY,   /* a signature checked (login, renewal nonce) */
	STEP_CHAIN_VERIFY, /* a certificate chain checked against the roots */
	STEP_CSR_VERIFY,   /* a CSR parsed and its self-signature checked */
	STEP_CA_SIGN,      /* a certificate or CRL made and signed */
	STEP_VENDOR_CALL,  /* a vendor CA asked to issue (local or remote) */
	STEP_JSON_BUILD,   /* an answer's JSON serialised */
	STEP_COUNT
};

/* A monotonic clock in nanoseconds, for timing a step. */
int64_t hist_now(void);
/* Observes hist_now() - t0 as one run of step. */
void hist_step(enum hist_step step, int64_t t0);
/* The steps' lines (caplat_step_duration_seconds{svc=…,step=…}, steps
 * observed at least once); arg is the service name. http_metrics_fn shape. */
size_t hist_steps_metrics(void *svc_name, char *buf, size_t size);
#endif
