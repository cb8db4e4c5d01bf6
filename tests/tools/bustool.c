/* bustool — drives common/bus against real servers for the integration tests
 * (tests/integration/test_bus.py): writes outbox rows, runs a relay or a
 * consumer until SIGTERM, publishes raw messages and counts a subject.
 *
 *   bustool emit N TYPE        N outbox rows, data {"n": i}, one transaction
 *   bustool emit-json TYPE JSON
 *                              one outbox row with data JSON; prints its id
 *   bustool relay              bus_open (the relay runs) until SIGTERM
 *   bustool consume DURABLE FILTER MAXDELIVER
 *                              a consumer inserting into applied(event_id, n),
 *                              failing on data {"poison": true}
 *   bustool publish SUBJECT MSGID PAYLOAD
 *                              one raw JetStream publish with Nats-Msg-Id
 *   bustool count SUBJECT      messages on SUBJECT in the stream
 *
 * Config: CAPLAT_DB_URL, CAPLAT_NATS_URL, CAPLAT_DB_SCHEMA, CAPLAT_LOG_LEVEL,
 * CAPLAT_BUS_ACK_WAIT_MS, CAPLAT_BUS_NAK_DELAY_MS, CAPLAT_BUS_RELAY_MARK_MS,
 * CAPLAT_BUS_GATHER_MS (the services' defaults). relay and consume print
 * the bus metrics on stdout when they stop. */
#include "bus.h"
#include "cfg.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *db_url, *nats_url, *schema, *log_level;
static long ack_wait_ms, nak_delay_ms, relay_mark_ms, gather_ms;

static const struct cfg_var config[] = {
    {"CAPLAT_DB_URL", CFG_STR, "", 0, 0, &db_url,
        "PostgreSQL URL of the schema's role"},
    {"CAPLAT_NATS_URL", CFG_STR, "nats://127.0.0.1:4222", 0, 0, &nats_url,
        "NATS URL"},
    {"CAPLAT_DB_SCHEMA", CFG_STR, "bustest", 0, 0, &schema,
        "schema with the bus tables"},
    {"CAPLAT_LOG_LEVEL", CFG_STR, "info", 0, 0, &log_level,
        "debug|info|warn|error"},
    {"CAPLAT_BUS_ACK_WAIT_MS", CFG_INT, "30000", 1000, 3600000, &ack_wait_ms,
        "AckWait"},
    {"CAPLAT_BUS_NAK_DELAY_MS", CFG_INT, "1000", 1, 600000, &nak_delay_ms,
        "first redelivery delay"},
    {"CAPLAT_BUS_RELAY_MARK_MS", CFG_INT, "200", 0, 10000, &relay_mark_ms,
        "how long published rows may wait to be marked together"},
    {"CAPLAT_BUS_GATHER_MS", CFG_INT, "25", 0, 1000, &gather_ms,
        "how long a consumer waits for more events of one transaction"},
};

static PGconn *
db_connect(void)
{
	PGconn *pg = PQconnectdb(db_url);

	if (PQstatus(pg) != CONNECTION_OK)
		fatal("postgres: %s", PQerrorMessage(pg));
	return pg;
}

static void
db_command(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fatal("%s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
}

static void
outbox_insert(PGconn *pg, const char *type, json_t *data, char id_out[37])
{
	struct bus_event_row row;
	const char *params[4];
	PGresult *res;

	if (bus_event_prepare(&row, type, NULL, data) != 0)
		fatal("bad event type \"%s\"", type);
	bus_event_row_params(&row, params);
	res = PQexecParams(pg, bus_outbox_insert_sql, 4, NULL, params, NULL,
	    NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fatal("outbox insert: %s", PQerrorMessage(pg));
	PQclear(res);
	if (id_out != NULL)
		memcpy(id_out, row.id, 37);
	bus_event_row_clear(&row);
}

static int
cmd_emit(int argc, char **argv)
{
	long n = argc >= 1 ? strtol(argv[0], NULL, 10) : -1;
	PGconn *pg;

	if (argc != 2 || n < 0)
		fatal("usage: bustool emit N TYPE");
	pg = db_connect();
	db_command(pg, "BEGIN");
	for (long i = 0; i < n; i++) {
		json_t *data = json_pack("{s:I}", "n", (json_int_t)i);

		outbox_insert(pg, argv[1], data, NULL);
		json_decref(data);
	}
	db_command(pg, "COMMIT");
	PQfinish(pg);
	printf("%ld\n", n);
	return 0;
}

static int
cmd_emit_json(int argc, char **argv)
{
	json_error_t err;
	json_t *data;
	char id[37];
	PGconn *pg;

	if (argc != 2)
		fatal("usage: bustool emit-json TYPE JSON");
	data = json_loads(argv[1], JSON_DECODE_ANY, &err);
	if (data == NULL)
		fatal("bad JSON: %s", err.text);
	pg = db_connect();
	outbox_insert(pg, argv[0], data, id);
	PQfinish(pg);
	json_decref(data);
	printf("%s\n", id);
	return 0;
}

/* The consumer's handler: one applied row per application, so a double
 * application would show as two rows with the same event_id. */
static int
apply_event(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *n = json_object_get(ev->data, "n");
	char n_text[32];
	const char *params[2] = {ev->id, NULL};

	if (json_is_true(json_object_get(ev->data, "poison")))
		return -1;
	if (json_is_integer(n)) {
		snprintf(n_text, sizeof(n_text), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(n));
		params[1] = n_text;
	}
	return bus_tx_exec(tx,
	           "INSERT INTO applied (event_id, n) VALUES ($1, $2)", 2,
	           params) == 1
	    ? 0
	    : -1;
}

/* Opens the bus, optionally subscribes, waits for SIGTERM or SIGINT, closes
 * and prints the metrics. Signals are blocked before any thread starts, so
 * only sigwait() sees them. */
static int
run_bus(const char *durable, const char *filter, int max_deliver)
{
	const struct bus_config bc = {
	    .nats_url = nats_url,
	    .db_url = db_url,
	    .schema = schema,
	    .service = schema,
	    .ack_wait_ms = (int)ack_wait_ms,
	    .nak_delay_ms = (int)nak_delay_ms,
	    .relay_mark_ms = (int)relay_mark_ms,
	    .gather_ms = (int)gather_ms,
	};
	struct bus *bus;
	sigset_t set;
	char metrics[8192];
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (bus_open(&bus, &bc) != 0)
		fatal("bus_open failed");
	if (durable != NULL &&
	    bus_subscribe(bus, durable, filter, max_deliver, apply_event,
	        NULL) != 0)
		fatal("bus_subscribe failed");
	log_info(NULL, "msg=bustool_running");
	sigwait(&set, &sig);
	log_info(NULL, "msg=bustool_stopping signal=%d", sig);
	/* Read before closing: tests stop the tool once the state settled. */
	bus_metrics_text(bus, metrics, sizeof(metrics));
	bus_close(bus);
	fputs(metrics, stdout);
	return 0;
}

static jsCtx *
js_connect(natsConnection **nc)
{
	jsCtx *js = NULL;
	natsStatus s = natsConnection_ConnectTo(nc, nats_url);

	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, *nc, NULL);
	if (s != NATS_OK)
		fatal("nats: %s", nats_GetLastError(NULL));
	return js;
}

static int
cmd_publish(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsPubAck *ack = NULL;
	jsPubOptions po;
	jsCtx *js;
	natsStatus s;

	if (argc != 3)
		fatal("usage: bustool publish SUBJECT MSGID PAYLOAD");
	js = js_connect(&nc);
	jsPubOptions_Init(&po);
	po.MsgId = argv[1];
	s = js_Publish(&ack, js, argv[0], argv[2], (int)strlen(argv[2]), &po,
	    NULL);
	if (s != NATS_OK)
		fatal("publish: %s", nats_GetLastError(NULL));
	printf("seq=%llu duplicate=%d\n", (unsigned long long)ack->Sequence,
	    ack->Duplicate);
	jsPubAck_Destroy(ack);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

/* Counts the stream's messages on one subject (wildcards allowed), from
 * the per-subject state of the stream info. */
static int
cmd_count(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsStreamInfo *si = NULL;
	unsigned long long total = 0;
	jsOptions jo;
	jsCtx *js;

	if (argc != 1)
		fatal("usage: bustool count SUBJECT");
	js = js_connect(&nc);
	jsOptions_Init(&jo);
	jo.Stream.Info.SubjectsFilter = argv[0];
	if (js_GetStreamInfo(&si, js, BUS_STREAM, &jo, NULL) != NATS_OK)
		fatal("stream info: %s", nats_GetLastError(NULL));
	if (si->State.Subjects != NULL)
		for (int i = 0; i < si->State.Subjects->Count; i++)
			total += si->State.Subjects->List[i].Msgs;
	printf("%llu\n", total);
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

int
main(int argc, char **argv)
{
	enum log_level level;
	int rc;

	if (argc < 2)
		fatal(
		    "usage: bustool emit|emit-json|relay|consume|publish|count");
	cfg_load_or_die(config, ARRAY_LEN(config));
	if (log_level_parse(log_level, &level) != 0)
		fatal("bad configuration: CAPLAT_LOG_LEVEL: \"%s\"", log_level);
	log_init("bustool", level);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(argv[1], "emit") == 0)
		rc = cmd_emit(argc - 2, argv + 2);
	else if (strcmp(argv[1], "emit-json") == 0)
		rc = cmd_emit_json(argc - 2, argv + 2);
	else if (strcmp(argv[1], "relay") == 0 && argc == 2)
		rc = run_bus(NULL, NULL, 0);
	else if (strcmp(argv[1], "consume") == 0 && argc == 5)
		rc = run_bus(argv[2], argv[3], atoi(argv[4]));
	else if (strcmp(argv[1], "publish") == 0)
		rc = cmd_publish(argc - 2, argv + 2);
	else if (strcmp(argv[1], "count") == 0)
		rc = cmd_count(argc - 2, argv + 2);
	else
		fatal("unknown command or arguments: %s", argv[1]);
	/* Releases nats.c's threads and memory (also for LeakSanitizer). */
	nats_CloseAndWait(1000);
	return rc;
}
