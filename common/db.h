/* db — PostgreSQL on the event loop: a bounded pool of non-blocking libpq
 * connections in pipeline mode, and the migration runner.
 *
 * The unit of work is a batch: one or more statements sent together with a
 * single Sync, so they run as ONE implicit transaction in ONE round trip
 * (if any statement fails, all are rolled back). A state change and its
 * outbox event are one batch. Read-modify-write is written as conditional
 * SQL (UPDATE … WHERE status = 'x' RETURNING, CTEs), never as a transaction
 * held open across round trips.
 *
 * Statements are prepared on each connection the first time they are used
 * (keyed by their text), so every call is a prepared-statement call.
 *
 * Failure model: when no connection is up (PostgreSQL down or restarting),
 * or the wait queue is full, or a request waited too long, the callback gets
 * DB_UNAVAILABLE at once (answer 503): no hang, no crash. Broken
 * connections reconnect in the background with PQconnectStart/Poll. */
#ifndef CAPLAT_DB_H
#define CAPLAT_DB_H

#include <stddef.h>

struct event_base;
struct db_pool;
struct db_batch;

enum db_status {
	DB_OK,
	DB_UNAVAILABLE, /* no connection, queue full, timeout, connection lost */
	DB_CONFLICT, /* unique or exclusion violation (SQLSTATE 23505/23P01) */
	DB_REFUSED,  /* a business rule raised by our own SQL functions
	                 * (RAISE EXCEPTION, SQLSTATE P0001): message holds
	                 * the rule's stable name */
	DB_ERROR,    /* any other SQL error: a bug or bad data */
};

struct db_result {
	enum db_status status;
	const char *sqlstate;   /* "23505", … or NULL */
	const char *constraint; /* violated constraint's name, or NULL */
	const char *message;    /* server or client message, or NULL */
	int failed_stmt;        /* index of the failing statement, or -1 */
	int nstmts;
	void **res; /* internal: one PGresult per statement */
};

/* Called once per batch with its result, on the loop thread. The result is
 * borrowed: valid only during the callback. */
typedef void (*db_cb)(void *arg, const struct db_result *res);

struct db_config {
	const char *conninfo; /* "postgresql://role:pw@127.0.0.1:5432/caplat" */
	int size;             /* connections, e.g. 8 */
	int max_queue;        /* requests waiting for a connection, e.g. 1024 */
	int timeout_ms;       /* per batch, including the wait, e.g. 5000 */
	/* Batches in flight at once on one connection (0: 8; 1: one at a
	 * time). When every connection is busy, a batch is sent behind the
	 * ones in flight on the least busy connection instead of waiting:
	 * each keeps its own Sync (its own transaction, its own error), and
	 * PostgreSQL answers them back to back without a round trip between.
	 * A connection that breaks or passes a deadline fails all of its
	 * batches in flight with DB_UNAVAILABLE. */
	int depth;
};

/* Creates a pool on base and starts connecting (does not wait). Returns 0
 * and sets *out; caller frees with db_pool_free(), which fails whatever is
 * still queued with DB_UNAVAILABLE. */
int db_pool_new(struct db_pool **out, struct event_base *base,
    const struct db_config *cfg);
void db_pool_free(struct db_pool *pool);
/* Number of connections currently up (for /readyz). */
int db_pool_up(const struct db_pool *pool);
/* Writes pool gauges/counters as Prometheus text; http_metrics_fn shape. */
size_t db_pool_metrics(void *pool, char *buf, size_t size);

/* Returns a new empty batch; db_batch_run steals it. */
struct db_batch *db_batch_new(void);
/* Appends a statement with text parameters ($1…); NULL entries are SQL NULL.
 * sql must be a string literal or otherwise outlive the batch; params are
 * copied. */
void db_batch_add(struct db_batch *b, const char *sql, int nparams,
    const char *const *params);
/* Frees a batch that was never run. */
void db_batch_free(struct db_batch *b);
/* Has fn called once the batch has committed (DB_OK), on the loop, just
 * before the batch's callback; never when it failed. One hook per batch (a
 * second call replaces the first); fn must not touch the batch. */
void db_batch_on_commit(struct db_batch *b, void (*fn)(void));
/* Runs the batch as one transaction; cb is called exactly once (possibly
 * before this returns, with DB_UNAVAILABLE). Steals b. */
void db_batch_run(struct db_pool *pool, struct db_batch *b, db_cb cb,
    void *arg);
/* One statement: shorthand for a batch of one. */
void db_query(struct db_pool *pool, const char *sql, int nparams,
    const char *const *params, db_cb cb, void *arg);

/* Result accessors (stmt is the statement's index in its batch). */
int db_rows(const struct db_result *res, int stmt);
/* Value as text, or NULL for SQL NULL or out of range. Borrowed. */
const char *db_value(const struct db_result *res, int stmt, int row, int col);
/* 1 when the value is SQL true ("t"), else 0 (false, NULL, out of range). */
int db_bool(const struct db_result *res, int stmt, int row, int col);
/* Rows affected by an INSERT/UPDATE/DELETE. */
long db_affected(const struct db_result *res, int stmt);

/* Applies the migrations not yet applied to schema, in file-name order:
 * first every *.sql of common_dir (tables all services share: outbox, inbox,
 * …), then every *.sql of service_dir; each file in its own transaction,
 * recorded in <schema>.schema_migrations, under an advisory lock so that
 * concurrent starters apply each file once. Blocking: call it before the
 * loop runs. Returns 0, or -1 with the reason in err. */
int db_migrate(const char *conninfo, const char *schema, const char *common_dir,
    const char *service_dir, char *err, size_t err_size);

/* Runs one statement on a new blocking connection (for command-line tools
 * such as "caplat-auth staff-add", never on the loop). Returns 0, or -1
 * with the reason in err. */
int db_exec_sync(const char *conninfo, const char *sql, int nparams,
    const char *const *params, char *err, size_t err_size);

/* ---- blocking connections, for a job on a worker thread (work.h) -------
 * A long job (a bulk import) holds its own connection and transaction on a
 * worker thread, never a loop connection: the loop stays free, and the
 * COPY protocol streams without pipeline-mode bookkeeping. */

struct db_sync;

/* Opens a blocking connection. Returns 0 and sets *out (caller closes with
 * db_sync_close(), which accepts NULL), or -1 with the reason in err. */
int db_sync_open(struct db_sync **out, const char *conninfo, char *err,
    size_t err_size);
void db_sync_close(struct db_sync *c);

/* Runs one statement (parameters as db_batch_add). Returns 0 and, when out
 * is not NULL, sets *out to a new result of one statement (db_rows,
 * db_value, …; caller frees with db_result_free()); on error returns -1
 * with the reason in err: for DB_REFUSED the rule's name alone. */
int db_sync_exec(struct db_sync *c, const char *sql, int nparams,
    const char *const *params, struct db_result **out, char *err,
    size_t err_size);
void db_result_free(struct db_result *r);

/* COPY … FROM STDIN: db_copy_begin runs copy_sql; db_copy_put sends len
 * bytes of COPY text data (any split: rows may straddle calls); db_copy_end
 * finishes, sets *rows (may be NULL) to the rows copied and returns 0, or
 * -1 with the reason in err. After a failed put, call db_copy_end anyway. */
int db_copy_begin(struct db_sync *c, const char *copy_sql, char *err,
    size_t err_size);
int db_copy_put(struct db_sync *c, const void *data, size_t len, char *err,
    size_t err_size);
int db_copy_end(struct db_sync *c, long *rows, char *err, size_t err_size);

#endif
