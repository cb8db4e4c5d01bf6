/* db — async libpq pool in pipeline mode on the libevent loop, and the
 * blocking migration runner used at start. See db.h for the model. */
#include "db.h"

#include "hist.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <dirent.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define DB_MAX_PREPARED 256
#define DB_DEPTH_DEFAULT 8

struct db_stmt {
	const char *sql;
	int nparams;
	char **params;
};

struct db_batch {
	struct db_stmt *stmts;
	int n, cap;
	db_cb cb;
	void *arg;
	int64_t deadline_us;
	int64_t t0; /* hist_now() when run: the db_batch step */
	void (*on_commit)(void);
	/* In the pool's wait queue, then in its connection's in-flight list. */
	TAILQ_ENTRY(db_batch) link;
	/* Once sent: per sent command, which statement it belongs to, and
	 * whether it is a Prepare (whose result is only checked for errors). */
	struct {
		int stmt;
		int is_prepare;
		unsigned hash;
	} * slots;
	int nslots, cursor;
	PGresult **results; /* one per statement of the batch */
};

TAILQ_HEAD(db_queue, db_batch);

/* IDLE: up, nothing in flight; BUSY: up, 1..depth batches in flight. */
enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

struct db_conn {
	struct db_pool *pool;
	PGconn *pg;
	enum conn_state state;
	struct event *ev;    /* socket readiness */
	short watching;      /* ev's flags */
	struct event *timer; /* reconnect backoff or in-flight deadline */
	int backoff_ms;
	/* Batches sent and not answered yet, oldest first: each its own
	 * statements and Sync, so its own transaction; PostgreSQL answers
	 * them in order, the results go to the oldest. */
	struct db_queue inflight;
	int ninflight;
	int npending; /* Prepares sent whose result is not read yet */
	unsigned prepared[DB_MAX_PREPARED];
	int nprepared;
};

struct db_pool {
	struct event_base *base;
	char *conninfo;
	struct db_conn *conns;
	int size, max_queue, timeout_ms, depth;
	struct db_queue queue;
	int queued;
	struct event *queue_timer;
	unsigned long long batches, errors, unavailable, reconnects, pipelined;
};

static void conn_start(struct db_conn *c);
static void conn_on_socket(evutil_socket_t fd, short what, void *arg);
static void pool_pump(struct db_pool *pool);

/* ---- batches ----------------------------------------------------------- */

struct db_batch *
db_batch_new(void)
{
	return xcalloc(1, sizeof(struct db_batch));
}

void
db_batch_add(struct db_batch *b, const char *sql, int nparams,
    const char *const *params)
{
	struct db_stmt *s;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 4;
		b->stmts =
		    xrealloc(b->stmts, (size_t)b->cap * sizeof(*b->stmts));
	}
	s = &b->stmts[b->n++];
	s->sql = sql;
	s->nparams = nparams;
	s->params = nparams ? xcalloc((size_t)nparams, sizeof(char *)) : NULL;
	for (int i = 0; i < nparams; i++)
		s->params[i] = params[i] ? xstrdup(params[i]) : NULL;
}

void
db_batch_on_commit(struct db_batch *b, void (*fn)(void))
{
	b->on_commit = fn;
}

void
db_batch_free(struct db_batch *b)
{
	if (b == NULL)
		return;
	if (b->results != NULL)
		for (int i = 0; i < b->n; i++)
			PQclear(b->results[i]);
	free(b->results);
	free(b->slots);
	for (int i = 0; i < b->n; i++) {
		for (int k = 0; k < b->stmts[i].nparams; k++)
			free(b->stmts[i].params[k]);
		free(b->stmts[i].params);
	}
	free(b->stmts);
	free(b);
}

/* Calls the batch's callback with a result that holds no rows. */
static void
batch_fail(struct db_batch *b, enum db_status status, const char *message)
{
	struct db_result res = {
	    .status = status,
	    .message = message,
	    .failed_stmt = -1,
	};

	b->cb(b->arg, &res);
	db_batch_free(b);
}

/* ---- results ----------------------------------------------------------- */

int
db_rows(const struct db_result *res, int stmt)
{
	if (stmt < 0 || stmt >= res->nstmts || res->res[stmt] == NULL)
		return 0;
	return PQntuples(res->res[stmt]);
}

const char *
db_value(const struct db_result *res, int stmt, int row, int col)
{
	PGresult *r;

	if (stmt < 0 || stmt >= res->nstmts || (r = res->res[stmt]) == NULL)
		return NULL;
	if (row < 0 || row >= PQntuples(r) || col < 0 || col >= PQnfields(r) ||
	    PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

int
db_bool(const struct db_result *res, int stmt, int row, int col)
{
	const char *v = db_value(res, stmt, row, col);

	return v != NULL && v[0] == 't' && v[1] == '\0';
}

long
db_affected(const struct db_result *res, int stmt)
{
	if (stmt < 0 || stmt >= res->nstmts || res->res[stmt] == NULL)
		return 0;
	return strtol(PQcmdTuples(res->res[stmt]), NULL, 10);
}

/* ---- connections ------------------------------------------------------- */

static unsigned
sql_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int
conn_is_prepared(const struct db_conn *c, unsigned h)
{
	for (int i = 0; i < c->nprepared; i++)
		if (c->prepared[i] == h)
			return 1;
	return 0;
}

/* A Prepare for h already sent in batch b (its result not read yet). */
static int
batch_prepare_pending(const struct db_batch *b, unsigned h)
{
	for (int i = 0; i < b->nslots; i++)
		if (b->slots[i].is_prepare && b->slots[i].hash == h)
			return 1;
	return 0;
}

/* A Prepare for h sent in an earlier batch still in flight on c: whether
 * it succeeds is not known yet (that batch may fail before it). */
static int
conn_prepare_pending(const struct db_conn *c, unsigned h)
{
	const struct db_batch *b;

	if (c->npending == 0)
		return 0;
	TAILQ_FOREACH(b, &c->inflight, link)
	if (batch_prepare_pending(b, h))
		return 1;
	return 0;
}

/* Arms c's timer for the earliest deadline in flight, or disarms it. */
static void
conn_arm_deadline(struct db_conn *c)
{
	struct db_batch *b;
	struct timeval tv;
	int64_t first = INT64_MAX, left;

	TAILQ_FOREACH(b, &c->inflight, link)
	if (b->deadline_us < first)
		first = b->deadline_us;
	if (first == INT64_MAX) {
		evtimer_del(c->timer);
		return;
	}
	left = first - now_mono_us();
	if (left < 1000)
		left = 1000;
	tv.tv_sec = left / 1000000;
	tv.tv_usec = left % 1000000;
	evtimer_add(c->timer, &tv);
}

static void
conn_schedule_reconnect(struct db_conn *c)
{
	struct timeval tv;

	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
	if (c->backoff_ms > 2000)
		c->backoff_ms = 2000;
	tv.tv_sec = c->backoff_ms / 1000;
	tv.tv_usec = (c->backoff_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* Detaches every batch in flight on c (oldest first) into out. */
static void
conn_take_inflight(struct db_conn *c, struct db_queue *out)
{
	struct db_batch *b;

	TAILQ_INIT(out);
	while ((b = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, b, link);
		TAILQ_INSERT_TAIL(out, b, link);
	}
	c->ninflight = 0;
	c->npending = 0;
}

/* The connection is unusable: fail every batch in flight on it, close,
 * reconnect later. */
static void
conn_broken(struct db_conn *c, const char *why)
{
	struct db_queue lost;
	struct db_batch *b;

	if (c->state != CONN_DOWN && c->state != CONN_CONNECTING)
		log_warn(NULL,
		    "msg=db_connection_lost reason=\"%s\" in_flight=%d", why,
		    c->ninflight);
	c->pool->reconnects++;
	if (c->ev != NULL) {
		event_del(c->ev);
		event_free(c->ev);
		c->ev = NULL;
	}
	c->watching = 0;
	evtimer_del(c->timer);
	conn_take_inflight(c, &lost);
	PQfinish(c->pg);
	c->pg = NULL;
	c->state = CONN_DOWN;
	c->nprepared = 0;
	conn_schedule_reconnect(c);
	while ((b = TAILQ_FIRST(&lost)) != NULL) {
		TAILQ_REMOVE(&lost, b, link);
		c->pool->unavailable++;
		batch_fail(b, DB_UNAVAILABLE, "database connection lost");
	}
	/* With no connection left up, nobody waiting can be served soon. */
	pool_pump(c->pool);
}

static void
conn_watch(struct db_conn *c, short what)
{
	/* A persistent watch of the same flags stays (no epoll_ctl). */
	if (c->ev != NULL && c->watching == what && (what & EV_PERSIST))
		return;
	if (c->ev != NULL) {
		event_del(c->ev);
		event_free(c->ev);
	}
	c->ev =
	    event_new(c->pool->base, PQsocket(c->pg), what, conn_on_socket, c);
	c->watching = what;
	event_add(c->ev, NULL);
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	if (c->state == CONN_DOWN)
		conn_start(c);
	else if (c->state == CONN_BUSY || c->state == CONN_CONNECTING)
		conn_broken(c, "timeout");
}

static void
conn_start(struct db_conn *c)
{
	struct timeval tv = {3, 0};

	c->pg = PQconnectStart(c->pool->conninfo);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD ||
	    PQsetnonblocking(c->pg, 1) != 0) {
		PQfinish(c->pg);
		c->pg = NULL;
		conn_schedule_reconnect(c);
		return;
	}
	c->state = CONN_CONNECTING;
	conn_watch(c, EV_WRITE);
	evtimer_add(c->timer, &tv); /* connect timeout */
}

static void
conn_poll_connect(struct db_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		conn_watch(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		conn_watch(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		evtimer_del(c->timer);
		if (PQenterPipelineMode(c->pg) != 1) {
			conn_broken(c, "pipeline mode");
			return;
		}
		c->state = CONN_IDLE;
		c->backoff_ms = 0;
		conn_watch(c, EV_READ | EV_PERSIST);
		log_info(NULL, "msg=db_connected");
		pool_pump(c->pool);
		return;
	default:
		conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
}

/* Sends the whole batch behind whatever is in flight on c, each statement
 * prepared on first use, then Sync. A statement whose Prepare an earlier
 * batch still in flight has sent runs unnamed (parsed for this execution
 * only): that Prepare may yet fail or be skipped with its batch, and a
 * second Prepare of the name would fail if it does not. */
static int
conn_send(struct db_conn *c, struct db_batch *b)
{
	b->results = xcalloc((size_t)b->n, sizeof(PGresult *));
	b->slots = xcalloc((size_t)b->n * 2, sizeof(*b->slots));
	b->nslots = b->cursor = 0;
	TAILQ_INSERT_TAIL(&c->inflight, b, link);
	c->ninflight++;
	for (int i = 0; i < b->n; i++) {
		struct db_stmt *s = &b->stmts[i];
		unsigned h = sql_hash(s->sql);
		char name[16];

		snprintf(name, sizeof(name), "s%08x", h);
		int prepared =
		    conn_is_prepared(c, h) || batch_prepare_pending(b, h);
		if (!prepared && !conn_prepare_pending(c, h) &&
		    c->nprepared + c->npending < DB_MAX_PREPARED) {
			if (PQsendPrepare(c->pg, name, s->sql, s->nparams,
			        NULL) != 1)
				return -1;
			b->slots[b->nslots].stmt = i;
			b->slots[b->nslots].is_prepare = 1;
			b->slots[b->nslots].hash = h;
			b->nslots++;
			c->npending++;
			prepared = 1;
		}
		if (prepared) {
			if (PQsendQueryPrepared(c->pg, name, s->nparams,
			        (const char *const *)s->params, NULL, NULL,
			        0) != 1)
				return -1;
		} else if (PQsendQueryParams(c->pg, s->sql, s->nparams, NULL,
		               (const char *const *)s->params, NULL, NULL,
		               0) != 1) {
			return -1;
		}
		b->slots[b->nslots].stmt = i;
		b->slots[b->nslots].is_prepare = 0;
		b->slots[b->nslots].hash = h;
		b->nslots++;
	}
	if (PQpipelineSync(c->pg) != 1)
		return -1;
	return 0;
}

/* The oldest batch in flight on c has its Sync: hands it its result. */
static void
conn_complete(struct db_conn *c)
{
	struct db_batch *b = TAILQ_FIRST(&c->inflight);
	struct db_result res = {.status = DB_OK, .failed_stmt = -1};

	res.nstmts = b->n;
	res.res = (void **)b->results;
	for (int i = 0; i < b->n; i++) {
		PGresult *r = b->results[i];
		ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			continue;
		if (res.status != DB_OK)
			continue;
		res.failed_stmt = i;
		res.sqlstate =
		    r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		res.constraint =
		    r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
		res.message = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
		                : "no result";
		if (res.sqlstate &&
		    (!strcmp(res.sqlstate, "23505") ||
		        !strcmp(res.sqlstate, "23P01")))
			res.status = DB_CONFLICT;
		else if (res.sqlstate && !strcmp(res.sqlstate, "P0001"))
			res.status = DB_REFUSED;
		else if (res.sqlstate &&
		    (!strncmp(res.sqlstate, "57P", 3) ||
		        !strncmp(res.sqlstate, "08", 2)))
			res.status = DB_UNAVAILABLE;
		else
			res.status = DB_ERROR;
	}
	if (res.status == DB_ERROR) {
		c->pool->errors++;
		log_error(NULL, "msg=db_error stmt=%d sqlstate=%s error=\"%s\"",
		    res.failed_stmt, res.sqlstate ? res.sqlstate : "-",
		    res.message ? res.message : "-");
	}
	/* Detach this batch from the connection first: the callback may send
	 * the next batch, possibly on this same connection. */
	TAILQ_REMOVE(&c->inflight, b, link);
	c->ninflight--;
	for (int i = 0; i < b->nslots; i++)
		if (b->slots[i].is_prepare)
			c->npending--;
	if (c->ninflight == 0)
		c->state = CONN_IDLE;
	conn_arm_deadline(c);
	hist_step(STEP_DB_BATCH, b->t0);
	if (res.status == DB_OK && b->on_commit != NULL)
		b->on_commit();
	b->cb(b->arg, &res);
	db_batch_free(b);
	pool_pump(c->pool);
}

/* Reads every result already received, for the oldest batch in flight
 * first: each Sync completes one batch, the next results are the next
 * one's. */
static void
conn_read_results(struct db_conn *c)
{
	while (c->state == CONN_BUSY && !PQisBusy(c->pg)) {
		struct db_batch *b = TAILQ_FIRST(&c->inflight);
		PGresult *r = PQgetResult(c->pg);

		if (r == NULL) { /* end of one command's results */
			b->cursor++;
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			conn_complete(c); /* may run batches, break c */
			continue;
		}
		if (b->cursor >= b->nslots) {
			PQclear(r);
			conn_broken(c, "unexpected result");
			return;
		}
		int stmt = b->slots[b->cursor].stmt;
		if (b->slots[b->cursor].is_prepare) {
			if (PQresultStatus(r) == PGRES_COMMAND_OK) {
				if (c->nprepared < DB_MAX_PREPARED)
					c->prepared[c->nprepared++] =
					    b->slots[b->cursor].hash;
				PQclear(r);
			} else if (b->results[stmt] == NULL) {
				b->results[stmt] = r; /* keep the error */
			} else {
				PQclear(r);
			}
			continue;
		}
		if (b->results[stmt] == NULL ||
		    PQresultStatus(b->results[stmt]) ==
		        PGRES_PIPELINE_ABORTED) {
			PQclear(b->results[stmt]);
			b->results[stmt] = r;
		} else {
			PQclear(r);
		}
	}
}

static void
conn_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	if (c->state == CONN_CONNECTING) {
		conn_poll_connect(c);
		return;
	}
	if (what & EV_WRITE) {
		int r = PQflush(c->pg);
		if (r < 0) {
			conn_broken(c, PQerrorMessage(c->pg));
			return;
		}
		if (r == 0)
			conn_watch(c, EV_READ | EV_PERSIST);
	}
	if (what & EV_READ) {
		if (PQconsumeInput(c->pg) != 1) {
			conn_broken(c, PQerrorMessage(c->pg));
			return;
		}
		if (c->state == CONN_IDLE) {
			/* Nothing was asked: an idle connection that reads has been
			 * closed by the server (restart, termination) or sent a notice. */
			if (PQstatus(c->pg) == CONNECTION_BAD)
				conn_broken(c, "closed by server");
			return;
		}
		conn_read_results(c);
	}
}

/* ---- pool -------------------------------------------------------------- */

static void
pool_expire_queue(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	int64_t now = now_mono_us();
	struct db_batch *b;
	struct timeval tv = {0, 100000};

	while (
	    (b = TAILQ_FIRST(&pool->queue)) != NULL && b->deadline_us <= now) {
		TAILQ_REMOVE(&pool->queue, b, link);
		pool->queued--;
		pool->unavailable++;
		batch_fail(b, DB_UNAVAILABLE,
		    "timed out waiting for a connection");
	}
	if (pool->queued)
		evtimer_add(pool->queue_timer, &tv);
}

static void
pool_dispatch(struct db_conn *c, struct db_batch *b)
{
	int first = c->ninflight == 0, left;

	if (!first)
		c->pool->pipelined++;
	c->state = CONN_BUSY;
	c->pool->batches++;
	if (conn_send(c, b) != 0) {
		conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	if (first)
		conn_arm_deadline(c);
	/* PQpipelineSync pushed what the socket took; watch for writability
	 * only while libpq still holds some. */
	left = PQflush(c->pg);
	if (left < 0) {
		conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	conn_watch(c,
	    left ? EV_READ | EV_WRITE | EV_PERSIST : EV_READ | EV_PERSIST);
}

int
db_pool_up(const struct db_pool *pool)
{
	int up = 0;

	for (int i = 0; i < pool->size; i++)
		if (pool->conns[i].state == CONN_IDLE ||
		    pool->conns[i].state == CONN_BUSY)
			up++;
	return up;
}

/* The connection for the next batch: an idle one, else the busy one with
 * the fewest batches in flight below the pool's depth; NULL when none. */
static struct db_conn *
pool_pick(struct db_pool *pool)
{
	struct db_conn *best = NULL;

	for (int i = 0; i < pool->size; i++) {
		struct db_conn *c = &pool->conns[i];
		if (c->state == CONN_IDLE)
			return c;
		if (c->state == CONN_BUSY && c->ninflight < pool->depth &&
		    (best == NULL || c->ninflight < best->ninflight))
			best = c;
	}
	return best;
}

/* Hands queued batches to idle connections, then behind the batches in
 * flight on busy ones (up to depth each); fails them all when no
 * connection is up. */
static void
pool_pump(struct db_pool *pool)
{
	struct db_batch *b;

	if (db_pool_up(pool) == 0) {
		while ((b = TAILQ_FIRST(&pool->queue)) != NULL) {
			TAILQ_REMOVE(&pool->queue, b, link);
			pool->queued--;
			pool->unavailable++;
			batch_fail(b, DB_UNAVAILABLE, "database unavailable");
		}
		return;
	}
	while ((b = TAILQ_FIRST(&pool->queue)) != NULL) {
		struct db_conn *c = pool_pick(pool);
		if (c == NULL)
			break;
		TAILQ_REMOVE(&pool->queue, b, link);
		pool->queued--;
		pool_dispatch(c, b);
	}
}

int
db_pool_new(struct db_pool **out, struct event_base *base,
    const struct db_config *cfg)
{
	struct db_pool *pool = xcalloc(1, sizeof(*pool));

	pool->base = base;
	pool->conninfo = xstrdup(cfg->conninfo);
	pool->size = cfg->size > 0 ? cfg->size : 8;
	pool->max_queue = cfg->max_queue > 0 ? cfg->max_queue : 1024;
	pool->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
	pool->depth = cfg->depth > 0 ? cfg->depth : DB_DEPTH_DEFAULT;
	TAILQ_INIT(&pool->queue);
	pool->queue_timer = evtimer_new(base, pool_expire_queue, pool);
	pool->conns = xcalloc((size_t)pool->size, sizeof(*pool->conns));
	for (int i = 0; i < pool->size; i++) {
		struct db_conn *c = &pool->conns[i];
		c->pool = pool;
		TAILQ_INIT(&c->inflight);
		c->timer = evtimer_new(base, conn_on_timer, c);
		conn_start(c);
	}
	*out = pool;
	return 0;
}

void
db_pool_free(struct db_pool *pool)
{
	struct db_batch *b;

	if (pool == NULL)
		return;
	while ((b = TAILQ_FIRST(&pool->queue)) != NULL) {
		TAILQ_REMOVE(&pool->queue, b, link);
		batch_fail(b, DB_UNAVAILABLE, "shutting down");
	}
	for (int i = 0; i < pool->size; i++) {
		struct db_conn *c = &pool->conns[i];
		struct db_queue lost;
		if (c->ev) {
			event_del(c->ev);
			event_free(c->ev);
		}
		event_free(c->timer);
		conn_take_inflight(c, &lost);
		while ((b = TAILQ_FIRST(&lost)) != NULL) {
			TAILQ_REMOVE(&lost, b, link);
			batch_fail(b, DB_UNAVAILABLE, "shutting down");
		}
		PQfinish(c->pg);
	}
	event_free(pool->queue_timer);
	free(pool->conns);
	free(pool->conninfo);
	free(pool);
}

void
db_batch_run(struct db_pool *pool, struct db_batch *b, db_cb cb, void *arg)
{
	struct timeval tv = {0, 100000};

	b->cb = cb;
	b->arg = arg;
	b->deadline_us = now_mono_us() + (int64_t)pool->timeout_ms * 1000;
	b->t0 = hist_now();
	if (db_pool_up(pool) == 0 || pool->queued >= pool->max_queue) {
		pool->unavailable++;
		batch_fail(b, DB_UNAVAILABLE, "database unavailable");
		return;
	}
	TAILQ_INSERT_TAIL(&pool->queue, b, link);
	pool->queued++;
	if (!evtimer_pending(pool->queue_timer, NULL))
		evtimer_add(pool->queue_timer, &tv);
	pool_pump(pool);
}

void
db_query(struct db_pool *pool, const char *sql, int nparams,
    const char *const *params, db_cb cb, void *arg)
{
	struct db_batch *b = db_batch_new();

	db_batch_add(b, sql, nparams, params);
	db_batch_run(pool, b, cb, arg);
}

size_t
db_pool_metrics(void *arg, char *buf, size_t size)
{
	struct db_pool *pool = arg;
	int n = snprintf(buf, size,
	    "caplat_db_connections_up %d\n"
	    "caplat_db_connections_total %d\n"
	    "caplat_db_queue_waiting %d\n"
	    "caplat_db_batches_total %llu\n"
	    "caplat_db_errors_total %llu\n"
	    "caplat_db_unavailable_total %llu\n"
	    "caplat_db_reconnects_total %llu\n"
	    "caplat_db_batches_pipelined_total %llu\n",
	    db_pool_up(pool), pool->size, pool->queued, pool->batches,
	    pool->errors, pool->unavailable, pool->reconnects, pool->pipelined);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- migrations -------------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the sorted *.sql names of dir (new array of new strings). */
static char **
list_sql(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	int n = 0;

	*count = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0) {
			names =
			    xrealloc(names, (size_t)(n + 1) * sizeof(char *));
			names[n++] = xstrdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(char *), name_cmp);
	*count = n;
	return names;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)len + 1);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static int
exec_ok(PGconn *pg, const char *sql, char *err, size_t err_size)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, err_size, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

static int
migrate_dir(PGconn *pg, const char *dir, const char *tag, char *err,
    size_t err_size)
{
	int n, rc = 0;
	char **names = list_sql(dir, &n);

	for (int i = 0; i < n && rc == 0; i++) {
		char key[300], path[1024];
		const char *params[1] = {key};
		PGresult *r;

		snprintf(key, sizeof(key), "%s/%s", tag, names[i]);
		r = PQexecParams(pg,
		    "SELECT 1 FROM schema_migrations WHERE name = $1", 1, NULL,
		    params, NULL, NULL, 0);
		int done =
		    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		PQclear(r);
		if (done)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		char *sql = read_file(path);
		if (sql == NULL) {
			snprintf(err, err_size, "cannot read %s", path);
			rc = -1;
			break;
		}
		if (exec_ok(pg, "BEGIN", err, err_size) != 0 ||
		    exec_ok(pg, sql, err, err_size) != 0) {
			char reason[512];
			snprintf(reason, sizeof(reason), "%s", err);
			snprintf(err, err_size, "%s: %s", key, reason);
			exec_ok(pg, "ROLLBACK", reason, sizeof(reason));
			free(sql);
			rc = -1;
			break;
		}
		free(sql);
		r = PQexecParams(pg,
		    "INSERT INTO schema_migrations(name) VALUES ($1)", 1, NULL,
		    params, NULL, NULL, 0);
		PQclear(r);
		if (exec_ok(pg, "COMMIT", err, err_size) != 0) {
			rc = -1;
			break;
		}
		log_info(NULL, "msg=migration_applied name=%s", key);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int
db_migrate(const char *conninfo, const char *schema, const char *common_dir,
    const char *service_dir, char *err, size_t err_size)
{
	PGconn *pg = PQconnectdb(conninfo);
	char sql[512];
	int rc = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, err_size, "connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -1;
	}
	for (const char *p = schema; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || *p == '_')) {
			snprintf(err, err_size, "bad schema name");
			PQfinish(pg);
			return -1;
		}
	}
	snprintf(sql, sizeof(sql),
	    "SET client_min_messages = warning; SET search_path = %s;"
	    " SELECT pg_advisory_lock(hashtext('caplat.migrate.%s'));"
	    "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY,"
	    " applied_at timestamptz NOT NULL DEFAULT now())",
	    schema, schema);
	if (exec_ok(pg, sql, err, err_size) != 0)
		goto out;
	if (migrate_dir(pg, common_dir, "common", err, err_size) != 0)
		goto out;
	if (migrate_dir(pg, service_dir, schema, err, err_size) != 0)
		goto out;
	rc = 0;
out:
	PQfinish(pg);
	return rc;
}

int
db_exec_sync(const char *conninfo, const char *sql, int nparams,
    const char *const *params, char *err, size_t err_size)
{
	PGconn *pg = PQconnectdb(conninfo);
	PGresult *r;
	int rc = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, err_size, "connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -1;
	}
	r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = 0;
	else
		snprintf(err, err_size, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(pg);
	return rc;
}

/* ---- blocking connections for worker threads --------------------------- */

struct db_sync {
	PGconn *pg;
};

int
db_sync_open(struct db_sync **out, const char *conninfo, char *err,
    size_t err_size)
{
	PGconn *pg = PQconnectdb(conninfo);

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, err_size, "connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -1;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->pg = pg;
	return 0;
}

void
db_sync_close(struct db_sync *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

static void
sync_error(const PGresult *r, PGconn *pg, char *err, size_t err_size)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
	    r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (state != NULL && strcmp(state, "P0001") == 0 && msg != NULL)
		snprintf(err, err_size, "%s", msg);
	else if (msg != NULL)
		snprintf(err, err_size, "%s: %s", state ? state : "?", msg);
	else
		snprintf(err, err_size, "%s", PQerrorMessage(pg));
}

int
db_sync_exec(struct db_sync *c, const char *sql, int nparams,
    const char *const *params, struct db_result **out, char *err,
    size_t err_size)
{
	PGresult *r =
	    PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		sync_error(r, c->pg, err, err_size);
		PQclear(r);
		return -1;
	}
	if (out == NULL) {
		PQclear(r);
		return 0;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->status = DB_OK;
	(*out)->failed_stmt = -1;
	(*out)->nstmts = 1;
	(*out)->res = xcalloc(1, sizeof(void *));
	(*out)->res[0] = r;
	return 0;
}

void
db_result_free(struct db_result *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->nstmts; i++)
		PQclear(r->res[i]);
	free(r->res);
	free(r);
}

int
db_copy_begin(struct db_sync *c, const char *copy_sql, char *err,
    size_t err_size)
{
	PGresult *r = PQexec(c->pg, copy_sql);
	int rc = PQresultStatus(r) == PGRES_COPY_IN ? 0 : -1;

	if (rc != 0)
		sync_error(r, c->pg, err, err_size);
	PQclear(r);
	return rc;
}

int
db_copy_put(struct db_sync *c, const void *data, size_t len, char *err,
    size_t err_size)
{
	if (len == 0)
		return 0;
	if (PQputCopyData(c->pg, data, (int)len) != 1) {
		snprintf(err, err_size, "copy: %s", PQerrorMessage(c->pg));
		return -1;
	}
	return 0;
}

int
db_copy_end(struct db_sync *c, long *rows, char *err, size_t err_size)
{
	PGresult *r;
	int rc = 0;

	if (PQputCopyEnd(c->pg, NULL) != 1) {
		snprintf(err, err_size, "copy end: %s", PQerrorMessage(c->pg));
		rc = -1;
	}
	while ((r = PQgetResult(c->pg)) != NULL) {
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			if (rows != NULL)
				*rows = strtol(PQcmdTuples(r), NULL, 10);
		} else if (rc == 0) {
			sync_error(r, c->pg, err, err_size);
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}
