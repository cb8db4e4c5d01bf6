/* svc — what every service's main() does, once: configuration, logging,
 * migrations, worker processes, the event loop, the HTTP server, the
 * PostgreSQL pool, Redis, the event bus, readiness, metrics and signals.
 * A service's main.c is then: svc_init, add routes and consumers, svc_run,
 * svc_free. */
#ifndef CAPLAT_SVC_H
#define CAPLAT_SVC_H

struct event_base;
struct http_server;
struct db_pool;
struct kv;
struct bus;
struct event;

struct svc {
	const char *name; /* "auth" */
	struct event_base *base;
	struct http_server *http;
	struct db_pool *db;
	struct kv *kv;
	struct bus *bus;
	int worker; /* 0 in the first process */
	/* Configuration every service has (CAPLAT_* variables): */
	long http_port;
	const char *http_addr; /* 127.0.0.1 unless CAPLAT_HTTP_ADDR */
	long workers;
	long db_pool_size;
	long db_depth; /* CAPLAT_DB_DEPTH */
	long session_ttl;
	long audit_flush_ms;
	const char *db_url;
	const char *db_schema;
	const char *redis_url;
	const char *nats_url;
	long nats_replicas;
	long events_retention_h;
	long bus_ack_wait_ms;
	long bus_relay_mark_ms;
	long bus_gather_ms;
	const char *migrations_dir; /* deploy/sql/<svc> */
	const char *var_dir;        /* var/ of `make run`, or the test dir */
	const char *log_level;
	/* Internal: */
	struct event *signals[2];
	struct event *drain;
	long long drain_until_us;
};

/* Loads the common configuration (fatal on a bad value), applies the
 * migrations, forks the workers, and connects everything. Also accepts
 * "--workers N" and the subcommand "migrate" (apply and exit) in argv.
 * Fatal on any start-up failure. */
void svc_init(struct svc *svc, const char *name, int argc, char **argv);
/* Runs the loop until SIGTERM/SIGINT, then stops accepting, lets requests
 * in flight finish (up to 5 s) and returns. */
void svc_run(struct svc *svc);
void svc_free(struct svc *svc);

#endif
