/* bus_store — the PostgreSQL code of the bus's threads: every SQL statement
 * of the bus (outbox, inbox, dead_letter, transactions) and the handler API
 * on the consumer's transaction (bus_tx_*, bus_rows_*). Each relay and
 * consumer thread owns one blocking connection; nothing here touches NATS. */
#include "bus_int.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char bus_outbox_insert_sql[] =
    "INSERT INTO outbox (id, type, subject, data) "
    "VALUES ($1::uuid, $2, $3, $4::jsonb)";

static void
bus_tx_set_error(struct bus_tx *tx, const PGresult *res)
{
	const char *primary =
	    res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state =
	    res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (primary == NULL)
		primary = PQerrorMessage(tx->pg);
	snprintf(tx->error, sizeof(tx->error), "%s (%s)", primary,
	    state ? state : "no sqlstate");
}

long
bus_tx_exec(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res =
	    PQexecParams(tx->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	long n = -1;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		const char *t = PQcmdTuples(res);

		n = *t ? strtol(t, NULL, 10) : 0;
	} else {
		bus_tx_set_error(tx, res);
	}
	PQclear(res);
	return n;
}

int
bus_tx_query(struct bus_tx *tx, const char *sql, int nparams,
    const char *const *params, struct bus_rows **out)
{
	PGresult *res =
	    PQexecParams(tx->pg, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		bus_tx_set_error(tx, res);
		PQclear(res);
		return -1;
	}
	*out = xmalloc(sizeof(**out));
	(*out)->res = res;
	return 0;
}

const char *
bus_tx_error(const struct bus_tx *tx)
{
	return tx->error;
}

int
bus_rows_count(const struct bus_rows *rows)
{
	return PQntuples(rows->res);
}

const char *
bus_rows_value(const struct bus_rows *rows, int row, int col)
{
	if (row < 0 || row >= PQntuples(rows->res) || col < 0 ||
	    col >= PQnfields(rows->res) || PQgetisnull(rows->res, row, col))
		return NULL;
	return PQgetvalue(rows->res, row, col);
}

void
bus_rows_free(struct bus_rows *rows)
{
	if (rows == NULL)
		return;
	PQclear(rows->res);
	free(rows);
}

/* ---- connections -------------------------------------------------------- */

/* libpq would print notices (and the server's goodbye on a terminated
 * connection) raw on stderr; keep them in the log's format instead. */
static void
bus_pg_notice(void *arg, const char *message)
{
	const struct bus_link *link = arg;

	log_debug(NULL, "msg=bus_pg_notice thread=%s text=\"%.200s\"",
	    link->who, message);
}

/* Opens this thread's connection with search_path set to the service schema,
 * or returns NULL (logged once per outage). */
PGconn *
bus_store_connect(struct bus *bus, struct bus_link *link)
{
	char app[96];
	const char *const keys[] = {"connect_timeout", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "dbname",
	    "application_name", NULL};
	const char *vals[] = {"5", "30", "10", "3", bus->db_url, app, NULL};
	const char *params[1] = {bus->schema};
	PGconn *pg;
	PGresult *res;

	snprintf(app, sizeof(app), "caplat-%s-bus-%s", bus->service, link->who);
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL)
		fatal("out of memory (PQconnectdbParams)");
	PQsetNoticeProcessor(pg, bus_pg_notice, link);
	if (PQstatus(pg) == CONNECTION_OK) {
		res = PQexecParams(pg,
		    "SELECT pg_catalog.set_config('search_path', $1, false)", 1,
		    NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			PQclear(res);
			if (link->pg_down)
				log_info(NULL, "msg=bus_pg_ok thread=%s",
				    link->who);
			link->pg_down = false;
			return pg;
		}
		PQclear(res);
	}
	if (!link->pg_down)
		log_warn(NULL, "msg=bus_pg_failed thread=%s error=\"%s\"",
		    link->who, PQerrorMessage(pg));
	link->pg_down = true;
	PQfinish(pg);
	return NULL;
}

/* Runs a statement without parameters that returns no rows. */
static int
bus_pg_command(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;

	PQclear(res);
	return rc;
}

/* Notes a failed statement: a broken connection is closed and cleared so
 * the thread reconnects; a live one is left for the caller to roll back. */
void
bus_store_check(PGconn **pg, struct bus_link *link)
{
	if (*pg == NULL || PQstatus(*pg) == CONNECTION_OK)
		return;
	log_warn(NULL, "msg=bus_pg_lost thread=%s error=\"%s\"", link->who,
	    PQerrorMessage(*pg));
	link->pg_down = true;
	PQfinish(*pg);
	*pg = NULL;
}

int
bus_store_begin(PGconn *pg)
{
	return bus_pg_command(pg, "BEGIN");
}

int
bus_store_rollback(PGconn *pg)
{
	return bus_pg_command(pg, "ROLLBACK");
}

int
bus_store_listen(PGconn *pg)
{
	return bus_pg_command(pg, "LISTEN caplat_outbox; LISTEN caplat_audit");
}

int
bus_store_commit(struct bus_tx *tx)
{
	PGresult *res = PQexec(tx->pg, "COMMIT");

	/* COMMIT of an aborted transaction answers ROLLBACK. */
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		bus_tx_set_error(tx, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---- the relay's statements -------------------------------------------- */

int
bus_store_relay_lead_send(PGconn *pg)
{
	/* One key per schema, in a class of its own ("caplat relay"). */
	return PQsendQuery(pg,
	           "SELECT pg_advisory_lock(hashtext('caplat relay'),"
	           " hashtext(current_schema()))") == 1
	    ? 0
	    : -1;
}

int
bus_store_relay_lead_poll(PGconn *pg)
{
	PGresult *res;
	int rc = 1;

	if (PQconsumeInput(pg) == 0)
		return -1;
	if (PQisBusy(pg))
		return 0;
	while ((res = PQgetResult(pg)) != NULL) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = -1;
		PQclear(res);
	}
	return rc;
}

PGresult *
bus_store_outbox_claim(PGconn *pg, const char *skip)
{
	static const char claim_sql[] =
	    "SELECT seq, id, type, subject, data::text, "
	    "to_char(created_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	    "FROM outbox WHERE published_at IS NULL"
	    " AND seq <> ALL($1::bigint[]) ORDER BY seq "
	    "LIMIT " STR(RELAY_BATCH);
	const char *params[1] = {skip};
	PGresult *res =
	    PQexecParams(pg, claim_sql, 1, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return NULL;
	}
	return res;
}

int
bus_store_outbox_mark(PGconn *pg, const char *seqs)
{
	const char *params[1] = {seqs};
	PGresult *res = PQexecParams(pg,
	    "UPDATE outbox SET published_at = now()"
	    " WHERE seq = ANY($1::bigint[])",
	    1, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;

	PQclear(res);
	return rc;
}

int
bus_store_outbox_backlog(PGconn *pg, long long *out, long long *oldest)
{
	PGresult *res = PQexec(pg,
	    "SELECT count(*), coalesce(extract(epoch FROM min(created_at)),"
	    " 0)::bigint FROM outbox WHERE published_at IS NULL");
	int rc = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*oldest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

long
bus_store_outbox_cleanup(PGconn *pg)
{
	/* A short range scan on the primary key. */
	static const char cleanup_sql[] =
	    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox"
	    " WHERE seq < (SELECT min(seq) FROM outbox) + 10000"
	    " AND published_at < now() - interval '24 hours')";
	PGresult *res = PQexec(pg, cleanup_sql);
	long n = PQresultStatus(res) == PGRES_COMMAND_OK
	    ? strtol(PQcmdTuples(res), NULL, 10)
	    : 0;

	PQclear(res);
	return n;
}

void
bus_store_inbox_cleanup(PGconn *pg, int hours)
{
	char text[16];
	const char *params[1] = {text};

	snprintf(text, sizeof(text), "%d", hours);
	PQclear(PQexecParams(pg,
	    "DELETE FROM inbox WHERE processed_at <"
	    " now() - make_interval(hours => $1::int)",
	    1, NULL, params, NULL, NULL, 0));
}

/* ---- the consumers' statements ----------------------------------------- */

int
bus_store_inbox_add(struct bus_tx *tx, const char *durable,
    const char *event_id, bool *duplicate)
{
	const char *params[2] = {durable, event_id};
	PGresult *res = PQexecParams(tx->pg,
	    "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2::uuid) "
	    "ON CONFLICT DO NOTHING",
	    2, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		bus_tx_set_error(tx, res);
		PQclear(res);
		return -1;
	}
	*duplicate = strcmp(PQcmdTuples(res), "0") == 0;
	PQclear(res);
	return 0;
}

int
bus_store_inbox_has(PGconn *pg, const char *durable, const char *event_id)
{
	const char *params[2] = {durable, event_id};
	PGresult *res = PQexecParams(pg,
	    "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2::uuid",
	    2, NULL, params, NULL, NULL, 0);
	int found =
	    PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;

	PQclear(res);
	return found;
}

int
bus_store_dead_letter(PGconn *pg, const char *durable, const char *event_id,
    const char *subject, const char *payload_text, const char *error,
    int deliveries)
{
	char deliveries_text[16];
	const char *params[6] = {durable, event_id, subject, payload_text,
	    error, deliveries_text};
	PGresult *res;
	int rc;

	snprintf(deliveries_text, sizeof(deliveries_text), "%d", deliveries);
	res = PQexecParams(pg,
	    "INSERT INTO dead_letter (consumer, event_id, subject, payload,"
	    " error, deliveries) SELECT $1, $2, $3, $4, $5, $6::int"
	    " WHERE $2::text IS NULL "
	    "OR NOT EXISTS (SELECT 1 FROM dead_letter WHERE consumer = $1 "
	    "AND event_id = $2 AND replayed_at IS NULL)",
	    6, NULL, params, NULL, NULL, 0);
	rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(res);
	return rc;
}
