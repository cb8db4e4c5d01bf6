/* orders — the service's internal interfaces: configuration, counters, the
 * handlers' route table, the consumers and the expiry sweep. */
#ifndef CAPLAT_ORDERS_H
#define CAPLAT_ORDERS_H

#include "eligibility.h"
#include "http.h"
#include "svc.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct db_result;

struct orders_config {
	long order_ttl; /* seconds an unpaid order waits for payment (1800) */
	long sweep_seconds;    /* period of the expiry sweep */
	long quote_ttl;        /* seconds a quote keeps its prices */
	long idempotency_lock; /* seconds before an unfinished request's key
	                          * may be taken over by a retry */
	struct order_window window;
};

/* Counters shown on /metrics; written from the loop and the bus threads. */
struct orders_counters {
	atomic_llong created;
	atomic_llong cancelled;
	atomic_llong expired;
	atomic_llong paid;
	atomic_llong fulfilled;
	atomic_llong refunded;
	atomic_llong
	    payments_flagged; /* late, duplicate, wrong amount, unknown */
	atomic_llong idempotent_replays;
};

struct orders {
	struct svc svc;
	struct orders_config cfg;
	struct orders_counters n;
};

/* Defined in handlers.c (not main.c) so that unit tests link without main.o. */
extern struct orders orders;

/* handlers.c */
extern const struct http_route orders_routes[];
extern const size_t orders_nroutes;
/* The service's counters as Prometheus text (http_metrics_fn shape). */
size_t orders_metrics(void *arg, char *buf, size_t size);

/* events.c: starts the consumers of the other services' events. */
void orders_events_subscribe(void);

/* sweep.c: the periodic expiry of unpaid orders (and housekeeping of
 * quotes and idempotency keys) on the loop; start once after svc_init. */
void order_sweep_start(void);
void order_sweep_stop(void);

#endif
