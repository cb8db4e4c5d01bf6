/* Unit tests for db's pure parts: migration files found and ordered by
 * name, statement names stable per text, results without rows. The pool
 * itself is proved against a real PostgreSQL (tests/integration), and here
 * its pipeline of several batches in flight on one connection: against
 * CAPLAT_TEST_DB_URL when set, else a throw-away cluster (initdb, as the
 * postgres user when run as root) on a Unix socket; skipped when neither
 * is at hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "db.c"

static void
touch(const char *dir, const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static void
test_migrations_sorted(void **state)
{
	char dir[] = "/tmp/caplat-mig-XXXXXX", path[256];
	int n;

	assert_non_null(mkdtemp(dir));
	touch(dir, "010_later.sql");
	touch(dir, "002_second.sql");
	touch(dir, "001_first.sql");
	touch(dir, "README.md");
	touch(dir, "003_not_sql.sql.bak");
	char **names = list_sql(dir, &n);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "001_first.sql");
	assert_string_equal(names[1], "002_second.sql");
	assert_string_equal(names[2], "010_later.sql");
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
		free(names[i]);
	}
	free(names);
	snprintf(path, sizeof(path), "%s/README.md", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/003_not_sql.sql.bak", dir);
	unlink(path);
	rmdir(dir);
	/* A missing folder has no migrations, not an error. */
	assert_null(list_sql("/nonexistent/caplat", &n));
	assert_int_equal(n, 0);
}

static void
test_statement_names(void **state)
{
	assert_int_equal(sql_hash("SELECT 1"), sql_hash("SELECT 1"));
	assert_int_not_equal(sql_hash("SELECT 1"), sql_hash("SELECT 2"));
}

static void
test_empty_result(void **state)
{
	struct db_result res = {.status = DB_UNAVAILABLE, .failed_stmt = -1};

	assert_int_equal(db_rows(&res, 0), 0);
	assert_null(db_value(&res, 0, 0, 0));
	assert_int_equal(db_affected(&res, 3), 0);
}

/* db_bool: only SQL true is 1; false, NULL and out of range are 0. */
static void
test_bool_values(void **state)
{
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[3] = {{.name = "a"}, {.name = "b"}, {.name = "c"}};
	void *one[1];
	struct db_result res = {.status = DB_OK,
	    .failed_stmt = -1,
	    .nstmts = 1,
	    .res = one};

	assert_non_null(r);
	assert_int_equal(PQsetResultAttrs(r, 3, attrs), 1);
	assert_int_equal(PQsetvalue(r, 0, 0, "t", 1), 1);
	assert_int_equal(PQsetvalue(r, 0, 1, "f", 1), 1);
	assert_int_equal(PQsetvalue(r, 0, 2, NULL, -1), 1);
	one[0] = r;
	assert_int_equal(db_bool(&res, 0, 0, 0), 1);
	assert_int_equal(db_bool(&res, 0, 0, 1), 0);
	assert_int_equal(db_bool(&res, 0, 0, 2), 0);
	assert_int_equal(db_bool(&res, 0, 1, 0), 0);
	assert_int_equal(db_bool(&res, 1, 0, 0), 0);
	PQclear(r);
}

static void
test_batch_copies_params(void **state)
{
	struct db_batch *b = db_batch_new();
	char p0[] = "value";
	const char *params[] = {p0, NULL};

	db_batch_add(b, "SELECT $1, $2", 2, params);
	p0[0] = 'X';
	assert_string_equal(b->stmts[0].params[0], "value");
	assert_null(b->stmts[0].params[1]);
	db_batch_free(b);
	db_batch_free(NULL);
}

/* ---- the pool against a real PostgreSQL -------------------------------- */

static char pg_url[512];
static char pg_dir[64];
static pid_t pg_pid;
static const char *test_url; /* NULL: no PostgreSQL, the tests skip */

/* Runs argv (as user, when not NULL and we are root); returns its exit
 * status, -1 when it could not run. */
static int
run_as(const char *user, char *const argv[], int quiet)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (quiet) {
			FILE *devnull = freopen("/dev/null", "w", stdout);
			(void)devnull;
			devnull = freopen("/dev/null", "w", stderr);
			(void)devnull;
		}
		if (user != NULL && geteuid() == 0) {
			struct passwd *pw = getpwnam(user);
			if (pw == NULL || setgid(pw->pw_gid) != 0 ||
			    setuid(pw->pw_uid) != 0)
				_exit(127);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *
pg_bin(void)
{
	static const char *dirs[] = {"/usr/lib/postgresql/17/bin",
	    "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin", NULL};

	for (int i = 0; dirs[i]; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/initdb", dirs[i]);
		if (access(p, X_OK) == 0)
			return dirs[i];
	}
	return NULL;
}

/* The URL of a PostgreSQL to test against, or NULL. */
static const char *
pg_setup(void)
{
	const char *env = getenv("CAPLAT_TEST_DB_URL"), *bin = pg_bin();
	const char *user = geteuid() == 0 ? "postgres" : NULL;
	char initdb[160], postgres[160], data[96], isready[160];
	int port = 20000 + getpid() % 20000;

	if (env != NULL && *env)
		return env;
	if (bin == NULL || (user != NULL && getpwnam(user) == NULL))
		return NULL;
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/caplat-testdb-XXXXXX");
	if (mkdtemp(pg_dir) == NULL)
		return NULL;
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0)
			return NULL;
	}
	snprintf(initdb, sizeof(initdb), "%s/initdb", bin);
	snprintf(postgres, sizeof(postgres), "%s/postgres", bin);
	snprintf(isready, sizeof(isready), "%s/pg_isready", bin);
	snprintf(data, sizeof(data), "%s/data", pg_dir);
	char *init_argv[] = {initdb, "-D", data, "-A", "trust", "-U", "test",
	    "--no-sync", NULL};
	if (run_as(user, init_argv, 1) != 0)
		return NULL;
	char portarg[16];
	snprintf(portarg, sizeof(portarg), "%d", port);
	pg_pid = fork();
	if (pg_pid == 0) {
		char *argv[] = {postgres, "-D", data, "-p", portarg, "-k",
		    pg_dir, "-c", "listen_addresses=", "-c", "fsync=off", NULL};
		FILE *devnull = freopen("/dev/null", "w", stderr);
		(void)devnull;
		if (user != NULL) {
			struct passwd *pw = getpwnam(user);
			if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
				_exit(127);
		}
		execv(postgres, argv);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		char *argv[] = {isready, "-q", "-h", pg_dir, "-p", portarg,
		    NULL};
		if (run_as(NULL, argv, 1) == 0) {
			snprintf(pg_url, sizeof(pg_url),
			    "host=%s port=%d user=test dbname=postgres", pg_dir,
			    port);
			return pg_url;
		}
		usleep(100000);
	}
	return NULL;
}

static void
pg_teardown(void)
{
	char cmd[128];

	if (pg_pid > 0) {
		kill(pg_pid, SIGINT); /* fast shutdown */
		waitpid(pg_pid, NULL, 0);
		pg_pid = 0;
	}
	if (pg_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", pg_dir);
		pg_dir[0] = '\0';
	}
}

/* What one batch's callback saw. */
struct seen {
	int called;
	enum db_status status;
	int failed_stmt;
	char value[64];
	int committed_before; /* the on_commit hook ran before the callback */
};

static int calls, commits;

static void
on_commit_hook(void)
{
	commits++;
}

static void
record(void *arg, const struct db_result *res)
{
	struct seen *s = arg;
	const char *v = db_value(res, res->nstmts - 1, 0, 0);

	s->called++;
	s->status = res->status;
	s->failed_stmt = res->failed_stmt;
	s->committed_before = commits;
	snprintf(s->value, sizeof(s->value), "%s", v ? v : "");
	calls++;
}

/* Runs the loop until `want` callbacks have run in all (or 10 s). */
static void
loop_until(struct event_base *base, int want)
{
	int64_t end = now_mono_us() + 10000000;

	while (calls < want && now_mono_us() < end)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(calls, want);
}

static void
pool_up(struct event_base *base, struct db_pool *pool)
{
	int64_t end = now_mono_us() + 10000000;

	while (db_pool_up(pool) < pool->size && now_mono_us() < end)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(db_pool_up(pool), pool->size);
}

static struct db_batch *
batch1(const char *sql)
{
	struct db_batch *b = db_batch_new();

	db_batch_add(b, sql, 0, NULL);
	return b;
}

static struct db_batch *
batch2(const char *sql1, const char *sql2, const char *param)
{
	struct db_batch *b = db_batch_new();
	const char *p[1] = {param};

	db_batch_add(b, sql1, 0, NULL);
	db_batch_add(b, sql2, param ? 1 : 0, param ? p : NULL);
	return b;
}

static int
pipeline_setup(void **state)
{
	test_url = pg_setup();
	return 0;
}

static int
pipeline_teardown(void **state)
{
	pg_teardown();
	return 0;
}

#define PLUS1 "SELECT $1::int + 1"

/* Three batches in flight at once on one connection, the middle one
 * failing: the first and the last commit, the middle one alone is rolled
 * back; a Prepare skipped in the failed batch leaves a later batch of the
 * same text working (run unnamed), and the text is prepared afterwards. */
static void
test_pipeline_error_in_middle(void **state)
{
	const char *url = test_url;
	struct event_base *base;
	struct db_pool *pool;
	struct seen a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, f = {0};

	if (url == NULL)
		skip();
	base = event_base_new();
	struct db_config cfg = {.conninfo = url,
	    .size = 1,
	    .timeout_ms = 5000,
	    .depth = 8};
	assert_int_equal(db_pool_new(&pool, base, &cfg), 0);
	pool_up(base, pool);
	calls = commits = 0;
	struct db_batch *setup = batch1("CREATE TABLE IF NOT EXISTS "
	                                "pipe_t (x int PRIMARY KEY)");
	db_batch_run(pool, setup, record, &f);
	loop_until(base, 1);
	assert_int_equal(f.status, DB_OK);

	struct db_batch *ba =
	    batch2("INSERT INTO pipe_t VALUES (1)", PLUS1, "41");
	db_batch_on_commit(ba, on_commit_hook);
	struct db_batch *bb = batch2("INSERT INTO pipe_t VALUES (2)",
	    "SELECT 1 / (SELECT count(*)::int - 2 FROM pipe_t)", NULL);
	db_batch_add(bb, "SELECT $1::int * 2", 1,
	    (const char *const[]){"5"}); /* its Prepare is skipped */
	db_batch_on_commit(bb, on_commit_hook);
	struct db_batch *bc =
	    batch2("INSERT INTO pipe_t VALUES (3)", "SELECT $1::int * 2", "21");
	db_batch_run(pool, ba, record, &a);
	db_batch_run(pool, bb, record, &b);
	db_batch_run(pool, bc, record, &c);
	/* All three sent behind one another, none waiting in the queue. */
	assert_int_equal(pool->conns[0].ninflight, 3);
	assert_int_equal(pool->queued, 0);
	loop_until(base, 4);
	assert_int_equal(a.status, DB_OK);
	assert_string_equal(a.value, "42");
	assert_int_equal(a.committed_before, 1);
	assert_int_equal(b.status, DB_ERROR);
	assert_int_equal(b.failed_stmt, 1);
	assert_int_equal(c.status, DB_OK);
	assert_string_equal(c.value, "42");
	assert_int_equal(commits, 1); /* the failed batch's hook never ran */
	assert_int_equal(pool->pipelined, 2);
	/* The middle batch's row was rolled back alone. */
	db_batch_run(pool,
	    batch1("SELECT string_agg(x::text, ',' ORDER BY x) FROM pipe_t"),
	    record, &d);
	loop_until(base, 5);
	assert_string_equal(d.value, "1,3");
	/* The text whose Prepare was skipped is prepared now, and used. */
	assert_false(
	    conn_is_prepared(&pool->conns[0], sql_hash("SELECT $1::int * 2")));
	db_batch_run(pool, batch2("SELECT 1", "SELECT $1::int * 2", "4"),
	    record, &e);
	loop_until(base, 6);
	assert_int_equal(e.status, DB_OK);
	assert_string_equal(e.value, "8");
	assert_true(
	    conn_is_prepared(&pool->conns[0], sql_hash("SELECT $1::int * 2")));
	assert_int_equal(pool->conns[0].npending, 0);
	/* A refusal in the middle maps to DB_REFUSED, the others commit. */
	struct seen r1 = {0}, r2 = {0}, r3 = {0};
	db_batch_run(pool, batch1("SELECT 1"), record, &r1);
	db_batch_run(pool,
	    batch1("DO $$BEGIN RAISE EXCEPTION 'SOME_RULE'; END$$"), record,
	    &r2);
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "1"), record, &r3);
	loop_until(base, 9);
	assert_int_equal(r1.status, DB_OK);
	assert_int_equal(r2.status, DB_REFUSED);
	assert_int_equal(r3.status, DB_OK);
	assert_string_equal(r3.value, "2");
	/* A new text in two batches in flight: the first prepares it, the
	 * second must not prepare it again (42P05) before that is known. */
	struct seen m1 = {0}, m2 = {0};
	db_batch_run(pool, batch2("SELECT 1", "SELECT $1::int - 1", "10"),
	    record, &m1);
	db_batch_run(pool, batch2("SELECT 2", "SELECT $1::int - 1", "20"),
	    record, &m2);
	loop_until(base, 11);
	assert_int_equal(m1.status, DB_OK);
	assert_string_equal(m1.value, "9");
	assert_int_equal(m2.status, DB_OK);
	assert_string_equal(m2.value, "19");
	db_pool_free(pool);
	event_base_free(base);
}

/* A batch past its deadline fails every batch in flight on its connection
 * with DB_UNAVAILABLE; the connection comes back and serves again. */
static void
test_pipeline_timeout(void **state)
{
	const char *url = test_url;
	struct event_base *base;
	struct db_pool *pool;
	struct seen a = {0}, b = {0}, c = {0};

	if (url == NULL)
		skip();
	base = event_base_new();
	struct db_config cfg = {.conninfo = url,
	    .size = 1,
	    .timeout_ms = 300,
	    .depth = 4};
	assert_int_equal(db_pool_new(&pool, base, &cfg), 0);
	pool_up(base, pool);
	calls = commits = 0;
	db_batch_run(pool, batch1("SELECT pg_sleep(2)"), record, &a);
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "1"), record, &b);
	assert_int_equal(pool->conns[0].ninflight, 2);
	loop_until(base, 2);
	assert_int_equal(a.status, DB_UNAVAILABLE);
	assert_int_equal(b.status, DB_UNAVAILABLE);
	pool_up(base, pool);
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "2"), record, &c);
	loop_until(base, 3);
	assert_int_equal(c.status, DB_OK);
	assert_string_equal(c.value, "3");
	db_pool_free(pool);
	event_base_free(base);
}

/* A connection that breaks with several batches in flight fails them all
 * with DB_UNAVAILABLE; after the reconnect, statements are prepared anew. */
static void
test_pipeline_broken(void **state)
{
	const char *url = test_url;
	struct event_base *base;
	struct db_pool *pool;
	struct seen a = {0}, b = {0}, c = {0}, d = {0}, e = {0};

	if (url == NULL)
		skip();
	base = event_base_new();
	struct db_config cfg = {.conninfo = url,
	    .size = 1,
	    .timeout_ms = 5000,
	    .depth = 8};
	assert_int_equal(db_pool_new(&pool, base, &cfg), 0);
	pool_up(base, pool);
	calls = commits = 0;
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "1"), record, &a);
	loop_until(base, 1);
	assert_true(conn_is_prepared(&pool->conns[0], sql_hash(PLUS1)));
	unsigned long long reconnects = pool->reconnects;
	db_batch_run(pool,
	    batch1("SELECT pg_terminate_backend(pg_backend_pid())"), record,
	    &b);
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "2"), record, &c);
	db_batch_run(pool, batch1("SELECT 3"), record, &d);
	assert_int_equal(pool->conns[0].ninflight, 3);
	loop_until(base, 4);
	assert_int_equal(b.status, DB_UNAVAILABLE);
	assert_int_equal(c.status, DB_UNAVAILABLE);
	assert_int_equal(d.status, DB_UNAVAILABLE);
	assert_int_equal(pool->reconnects, reconnects + 1);
	pool_up(base, pool);
	assert_false(conn_is_prepared(&pool->conns[0], sql_hash(PLUS1)));
	db_batch_run(pool, batch2("SELECT 1", PLUS1, "4"), record, &e);
	loop_until(base, 5);
	assert_int_equal(e.status, DB_OK);
	assert_string_equal(e.value, "5");
	/* Shutting down fails whatever is in flight. */
	struct seen f = {0}, g = {0};
	db_batch_run(pool, batch1("SELECT pg_sleep(1)"), record, &f);
	db_batch_run(pool, batch1("SELECT 1"), record, &g);
	db_pool_free(pool);
	assert_int_equal(f.status, DB_UNAVAILABLE);
	assert_int_equal(g.status, DB_UNAVAILABLE);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations_sorted),
	    cmocka_unit_test(test_statement_names),
	    cmocka_unit_test(test_empty_result),
	    cmocka_unit_test(test_batch_copies_params),
	    cmocka_unit_test(test_bool_values),
	};
	const struct CMUnitTest pipeline[] = {
	    cmocka_unit_test(test_pipeline_error_in_middle),
	    cmocka_unit_test(test_pipeline_timeout),
	    cmocka_unit_test(test_pipeline_broken),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed +
	    cmocka_run_group_tests_name("pipeline", pipeline, pipeline_setup,
	        pipeline_teardown);
}
