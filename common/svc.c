/* svc — the start-up and shutdown every service shares; see svc.h. */
#include "svc.h"

#include "audit.h"
#include "bus.h"
#include "cfg.h"
#include "db.h"
#include "hist.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "work.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The service name the step histograms carry on /metrics. */
static char svc_step_name[32];

static int
svc_ready(void *arg, char *why, size_t why_size)
{
	struct svc *svc = arg;

	if (db_pool_up(svc->db) == 0) {
		snprintf(why, why_size, "postgres");
		return -1;
	}
	if (!kv_up(svc->kv)) {
		snprintf(why, why_size, "redis");
		return -1;
	}
	if (!bus_ready(svc->bus)) {
		snprintf(why, why_size, "nats");
		return -1;
	}
	return 0;
}

static size_t
svc_bus_metrics(void *arg, char *buf, size_t size)
{
	size_t n = bus_metrics_text(arg, buf, size);

	return n < size ? n : (size ? size - 1 : 0);
}

/* Stops when no request is in flight, or after 5 s of draining. */
static void
svc_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct svc *svc = arg;
	struct timeval tick = {0, 50000};

	if (http_server_inflight(svc->http) == 0 ||
	    now_mono_us() > svc->drain_until_us) {
		event_base_loopexit(svc->base, NULL);
		return;
	}
	evtimer_add(svc->drain, &tick);
}

static void
svc_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct svc *svc = arg;

	log_info(NULL, "msg=shutting_down signal=%d inflight=%u", (int)sig,
	    http_server_inflight(svc->http));
	svc->drain_until_us = now_mono_us() + 5000000;
	svc_on_drain(-1, 0, svc);
}

static void
svc_migrate(struct svc *svc)
{
	char err[1024], common_dir[1024];

	snprintf(common_dir, sizeof(common_dir), "%s/../common",
	    svc->migrations_dir);
	if (db_migrate(svc->db_url, svc->db_schema, common_dir,
	        svc->migrations_dir, err, sizeof(err)) != 0)
		fatal("migrations failed: %s", err);
}

void
svc_init(struct svc *svc, const char *name, int argc, char **argv)
{
	enum log_level level;
	int migrate_only = 0;
	const struct cfg_var vars[] = {
	    {"CAPLAT_HTTP_PORT", CFG_INT, NULL, 1, 65535, &svc->http_port,
	        "port to listen on"},
	    {"CAPLAT_HTTP_ADDR", CFG_STR, "127.0.0.1", 0, 0, &svc->http_addr,
	        "address to listen on (IPv4)"},
	    {"CAPLAT_WORKERS", CFG_INT, "1", 1, 64, &svc->workers,
	        "worker processes"},
	    {"CAPLAT_DB_URL", CFG_STR, NULL, 0, 0, &svc->db_url,
	        "PostgreSQL URL of the service's role"},
	    {"CAPLAT_DB_SCHEMA", CFG_STR, name, 0, 0, &svc->db_schema,
	        "the service's schema"},
	    {"CAPLAT_DB_POOL", CFG_INT, "8", 1, 256, &svc->db_pool_size,
	        "PostgreSQL connections per process"},
	    {"CAPLAT_DB_DEPTH", CFG_INT, "8", 1, 64, &svc->db_depth,
	        "batches in flight per PostgreSQL connection (1: one at a "
	        "time)"},
	    {"CAPLAT_REDIS_URL", CFG_STR, "redis://127.0.0.1:6379", 0, 0,
	        &svc->redis_url, "Redis URL"},
	    {"CAPLAT_NATS_URL", CFG_STR, "nats://127.0.0.1:4222", 0, 0,
	        &svc->nats_url, "NATS URL"},
	    {"CAPLAT_NATS_REPLICAS", CFG_INT, "1", 1, 5, &svc->nats_replicas,
	        "stream replicas when creating it"},
	    {"CAPLAT_EVENTS_RETENTION_H", CFG_INT, "168", 1, 24 * 365,
	        &svc->events_retention_h, "stream retention (hours)"},
	    {"CAPLAT_BUS_ACK_WAIT_MS", CFG_INT, "10000", 1000, 600000,
	        &svc->bus_ack_wait_ms,
	        "consumers' AckWait: how soon an event a crashed consumer held is redelivered"},
	    {"CAPLAT_BUS_RELAY_MARK_MS", CFG_INT, "200", 0, 10000,
	        &svc->bus_relay_mark_ms,
	        "how long published outbox rows may wait to be marked together (0: at once)"},
	    {"CAPLAT_BUS_GATHER_MS", CFG_INT, "25", 0, 1000,
	        &svc->bus_gather_ms,
	        "how long a consumer waits for more events to apply in one transaction (0: not)"},
	    {"CAPLAT_MIGRATIONS_DIR", CFG_STR, NULL, 0, 0, &svc->migrations_dir,
	        "deploy/sql/<service>"},
	    {"CAPLAT_VAR_DIR", CFG_STR, "var", 0, 0, &svc->var_dir,
	        "state directory"},
	    {"CAPLAT_LOG_LEVEL", CFG_STR, "info", 0, 0, &svc->log_level,
	        "debug|info|warn|error"},
	    {"CAPLAT_SESSION_TTL", CFG_INT, "1800", 60, 86400 * 30,
	        &svc->session_ttl, "session idle seconds"},
	    {"CAPLAT_AUDIT_FLUSH_MS", CFG_INT, "200", 10, 60000,
	        &svc->audit_flush_ms,
	        "how often held audit entries go to the chain as one batch event"},
	};

	memset(svc, 0, sizeof(*svc));
	svc->name = name;
	cfg_load_or_die(vars, ARRAY_LEN(vars));
	if (log_level_parse(svc->log_level, &level) != 0)
		fatal("bad configuration: CAPLAT_LOG_LEVEL: \"%s\"",
		    svc->log_level);
	log_init(name, level);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			svc->workers = strtol(argv[++i], NULL, 10);
			if (svc->workers < 1 || svc->workers > 64)
				fatal("--workers must be 1..64");
		} else if (strcmp(argv[i], "migrate") == 0) {
			migrate_only = 1;
		} else {
			fatal("usage: caplat-%s [--workers N] [migrate]", name);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	svc_migrate(svc);
	if (migrate_only)
		exit(0);
	svc->worker = http_fork_workers((int)svc->workers);

	evthread_use_pthreads();
	svc->base = event_base_new();
	if (svc->base == NULL)
		fatal("event_base_new failed");
	svc->http = http_server_new(svc->base, name);
	if (http_server_listen(svc->http, svc->http_addr,
	        (int)svc->http_port) != 0)
		fatal("listen on %s:%ld failed", svc->http_addr,
		    svc->http_port);
	const struct db_config dbc = {
	    .conninfo = svc->db_url,
	    .size = (int)svc->db_pool_size,
	    .depth = (int)svc->db_depth,
	    .max_queue = 1024,
	    .timeout_ms = 5000,
	};
	if (db_pool_new(&svc->db, svc->base, &dbc) != 0)
		fatal("db pool");
	if (kv_new(&svc->kv, svc->base, svc->redis_url, 1000) != 0)
		fatal("bad configuration: CAPLAT_REDIS_URL: \"%s\"",
		    svc->redis_url);
	session_setup(svc->kv, (int)svc->session_ttl);
	audit_setup(name);
	audit_flush_start(svc->base, svc->db, svc->audit_flush_ms);
	work_init(svc->base, 2);
	http_server_set_ready(svc->http, svc_ready, svc);
	http_server_add_metrics(svc->http, db_pool_metrics, svc->db);
	http_server_add_metrics(svc->http, kv_metrics, svc->kv);
	snprintf(svc_step_name, sizeof(svc_step_name), "%s", name);
	http_server_add_metrics(svc->http, hist_steps_metrics, svc_step_name);
	const struct bus_config busc = {
	    .nats_url = svc->nats_url,
	    .db_url = svc->db_url,
	    .schema = svc->db_schema,
	    .service = name,
	    .stream_replicas = (int)svc->nats_replicas,
	    .stream_max_age_h = (int)svc->events_retention_h,
	    .ack_wait_ms = (int)svc->bus_ack_wait_ms,
	    .relay_mark_ms = (int)svc->bus_relay_mark_ms,
	    .gather_ms = (int)svc->bus_gather_ms,
	    .audit_notified = audit_flush_notified,
	};
	if (bus_open(&svc->bus, &busc) != 0)
		fatal("bus: cannot open (see log)");
	http_server_add_metrics(svc->http, svc_bus_metrics, svc->bus);

	svc->signals[0] = evsignal_new(svc->base, SIGTERM, svc_on_signal, svc);
	svc->signals[1] = evsignal_new(svc->base, SIGINT, svc_on_signal, svc);
	svc->drain = evtimer_new(svc->base, svc_on_drain, svc);
	event_add(svc->signals[0], NULL);
	event_add(svc->signals[1], NULL);
	log_info(NULL, "msg=started port=%ld worker=%d", svc->http_port,
	    svc->worker);
}

void
svc_run(struct svc *svc)
{
	event_base_dispatch(svc->base);
	log_info(NULL, "msg=stopped");
}

void
svc_free(struct svc *svc)
{
	bus_close(svc->bus);
	http_server_free(svc->http);
	audit_flush_stop();
	db_pool_free(svc->db);
	kv_free(svc->kv);
	work_shutdown();
	for (int i = 0; i < 2; i++)
		event_free(svc->signals[i]);
	event_free(svc->drain);
	event_base_free(svc->base);
}
