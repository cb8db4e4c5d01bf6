/* Unit tests for db's pure parts: migration files found and ordered by
 * name, statement names stable per text, results without rows. The pool
 * itself is proved against a real PostgreSQL (tests/integration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
	return cmocka_run_group_tests(tests, NULL, NULL);
}
