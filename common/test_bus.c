/* Unit tests for bus: subject naming, outbox rows, the CloudEvents envelope
 * both ways, name validation, redelivery delays, text sanitizing and the
 * metrics text. Reaches the private functions through bus_int.h; no server
 * is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_int.h"
#include "log.h"
#include "util.h"

#include <string.h>

#define ID "0b4b2c3e-7f6a-4d5e-9c1b-2a3b4c5d6e7f"

static void
test_subject(void **state)
{
	static const struct {
		const char *type;
		const char *want; /* NULL: rejected */
	} cases[] = {
	    {"enterprise.record.approved", "caplat.enterprise.record.approved"},
	    {"auth.lock.bound", "caplat.auth.lock.bound"},
	    {"a", "caplat.a"},
	    {"svc_1.x-y.z", "caplat.svc_1.x-y.z"},
	    {"", NULL},
	    {".auth", NULL},
	    {"auth.", NULL},
	    {"auth..lock", NULL},
	    {"auth.*", NULL},
	    {"auth.>", NULL},
	    {"auth lock", NULL},
	    {"auth.lock\n", NULL},
	    {"dlq.x", NULL},
	    {"dlqx.y", "caplat.dlqx.y"},
	};
	char out[64];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int rc = bus_subject(cases[i].type, out, sizeof(out));

		if (cases[i].want == NULL) {
			assert_int_equal(rc, -1);
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].want);
		}
	}
	/* Too long for the buffer. */
	assert_int_equal(bus_subject("abcdefghij", out, 10), -1);
	assert_int_equal(bus_subject(NULL, out, sizeof(out)), -1);
}

static void
test_event_prepare(void **state)
{
	struct bus_event_row row;
	const char *params[4];
	json_t *data = json_pack("{s:i, s:s}", "n", 7, "name", "张三");

	assert_int_equal(bus_event_prepare(&row, "auth.account.registered",
	                     "acc-1", data),
	    0);
	assert_true(bus_uuid_valid(row.id));
	assert_int_equal(row.id[14], '4'); /* version 4 */
	assert_string_equal(row.type, "auth.account.registered");
	assert_string_equal(row.subject, "acc-1");
	assert_string_equal(row.data, "{\"n\":7,\"name\":\"张三\"}");
	bus_event_row_params(&row, params);
	assert_ptr_equal(params[0], row.id);
	assert_ptr_equal(params[1], row.type);
	assert_ptr_equal(params[2], row.subject);
	assert_ptr_equal(params[3], row.data);
	bus_event_row_clear(&row);
	assert_null(row.type);

	/* No subject, no data; ids differ from one event to the next. */
	char first[37];
	assert_int_equal(bus_event_prepare(&row, "a.b", NULL, NULL), 0);
	assert_null(row.subject);
	assert_null(row.data);
	memcpy(first, row.id, sizeof(first));
	bus_event_row_clear(&row);
	assert_int_equal(bus_event_prepare(&row, "a.b", NULL, json_true()), 0);
	assert_string_equal(row.data, "true");
	assert_string_not_equal(row.id, first);
	bus_event_row_clear(&row);

	/* A bad type leaves the row cleared. */
	assert_int_equal(bus_event_prepare(&row, "a.*", "s", data), -1);
	assert_null(row.type);
	assert_null(row.data);
	bus_event_row_clear(&row);
	json_decref(data);

	assert_non_null(strstr(bus_outbox_insert_sql, "INSERT INTO outbox"));
	assert_non_null(strstr(bus_outbox_insert_sql, "$4"));
}

static void
test_envelope_build(void **state)
{
	char *env = bus_envelope_build("/caplat/auth", ID, "auth.lock.bound",
	    "acc-1", "2026-11-26T09:00:00.000000Z", "{\"n\": 1}");
	json_error_t err;
	json_t *j = json_loads(env, 0, &err);

	assert_non_null(j);
	assert_string_equal(env,
	    "{\"specversion\":\"1.0\",\"id\":\"" ID "\","
	    "\"source\":\"/caplat/auth\",\"type\":\"auth.lock.bound\","
	    "\"time\":\"2026-11-26T09:00:00.000000Z\",\"subject\":\"acc-1\","
	    "\"datacontenttype\":\"application/json\",\"data\":{\"n\": 1}}");
	json_decref(j);
	free(env);

	/* Optional members are left out. */
	env = bus_envelope_build("/caplat/x", ID, "x.y", NULL, NULL, NULL);
	assert_string_equal(env,
	    "{\"specversion\":\"1.0\",\"id\":\"" ID "\","
	    "\"source\":\"/caplat/x\",\"type\":\"x.y\"}");
	free(env);

	/* Strings that are not UTF-8 cannot be put in JSON. */
	assert_null(bus_envelope_build("/caplat/x", "id", "x.y", "\xff\xfe",
	    NULL, NULL));
}

static void
test_envelope_roundtrip(void **state)
{
	struct bus_event ev;
	json_t *root;
	char err[128];
	char *env = bus_envelope_build("/caplat/orders", ID,
	    "orders.order.paid", "ord-9", "2026-11-26T09:00:00.000000Z",
	    "{\"amount\": 300, \"poison\": false}");

	assert_int_equal(bus_envelope_parse(&ev, &root, env, strlen(env), err,
	                     sizeof(err)),
	    0);
	assert_string_equal(ev.id, ID);
	assert_string_equal(ev.type, "orders.order.paid");
	assert_string_equal(ev.source, "/caplat/orders");
	assert_string_equal(ev.subject, "ord-9");
	assert_string_equal(ev.time, "2026-11-26T09:00:00.000000Z");
	assert_int_equal(json_integer_value(json_object_get(ev.data, "amount")),
	    300);
	json_decref(root);
	free(env);
}

/* bus_subscribe_text's parse: every member but the data, which stays in
 * the text; an envelope of another layout is parsed whole. */
static void
test_envelope_parse_head(void **state)
{
	struct bus_event ev;
	json_t *root;
	char err[128];
	char *env = bus_envelope_build("/caplat/orders", ID,
	    "orders.audit.batch", "x,\"data\":y", "2026-11-26T09:00:00Z",
	    "{\"entries\": [{\"id\": 1}]}");
	const char *other =
	    "{\"specversion\":\"1.0\",\"data\":{\"a\":1},"
	    "\"id\":\"" ID "\",\"source\":\"s\",\"type\":\"t\"}";

	assert_int_equal(bus_envelope_parse_head(&ev, &root, env, strlen(env),
	                     err, sizeof(err)),
	    0);
	assert_string_equal(ev.id, ID);
	assert_string_equal(ev.type, "orders.audit.batch");
	assert_string_equal(ev.source, "/caplat/orders");
	assert_string_equal(ev.subject, "x,\"data\":y");
	assert_string_equal(ev.time, "2026-11-26T09:00:00Z");
	assert_null(ev.data);
	json_decref(root);
	free(env);

	/* data elsewhere than last: parsed whole */
	assert_int_equal(bus_envelope_parse_head(&ev, &root, other,
	                     strlen(other), err, sizeof(err)),
	    0);
	assert_string_equal(ev.type, "t");
	assert_int_equal(json_integer_value(json_object_get(ev.data, "a")), 1);
	json_decref(root);

	/* no data, and a bad envelope: as bus_envelope_parse */
	env = bus_envelope_build("/caplat/x", ID, "x.y", NULL, NULL, NULL);
	assert_int_equal(bus_envelope_parse_head(&ev, &root, env, strlen(env),
	                     err, sizeof(err)),
	    0);
	assert_null(ev.data);
	json_decref(root);
	free(env);
	assert_int_equal(bus_envelope_parse_head(&ev, &root, "[1]", 3, err,
	                     sizeof(err)),
	    -1);
	assert_null(root);
}

static void
test_envelope_parse_rejects(void **state)
{
	static const struct {
		const char *payload;
		const char *why;
	} cases[] = {
	    {"", "not JSON"},
	    {"not json", "not JSON"},
	    {"[1]", "not an object"},
	    {"{\"id\":\"" ID "\",\"type\":\"a\",\"source\":\"s\"}",
	        "specversion"},
	    {"{\"specversion\":\"0.3\",\"id\":\"" ID "\","
	     "\"type\":\"a\",\"source\":\"s\"}",
	        "specversion"},
	    {"{\"specversion\":\"1.0\",\"id\":\"42\",\"type\":\"a\",\"source\":\"s\"}",
	        "UUID"},
	    {"{\"specversion\":\"1.0\",\"id\":\"0b4b2c3e-7f6a-4d5e-9c1b-2a3b4c5d6e7g\","
	     "\"type\":\"a\",\"source\":\"s\"}",
	        "UUID"},
	    {"{\"specversion\":\"1.0\",\"id\":\"" ID "\","
	     "\"type\":\"\",\"source\":\"s\"}",
	        "type"},
	    {"{\"specversion\":\"1.0\",\"id\":\"" ID "\","
	     "\"type\":\"a\"}",
	        "source"},
	    {"{\"specversion\":\"1.0\",\"id\":\"" ID "\","
	     "\"type\":\"a\",\"source\":\"s\",\"time\":5}",
	        "time"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct bus_event ev;
		json_t *root = (json_t *)1;
		char err[128];

		assert_int_equal(bus_envelope_parse(&ev, &root,
		                     cases[i].payload, strlen(cases[i].payload),
		                     err, sizeof(err)),
		    -1);
		assert_null(root);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err,
			    cases[i].why);
	}
}

static void
test_names(void **state)
{
	assert_true(bus_durable_valid("auth-cert-revoked"));
	assert_true(bus_durable_valid("bus_t1"));
	assert_false(bus_durable_valid(""));
	assert_false(bus_durable_valid("a.b"));
	assert_false(bus_durable_valid("a*"));
	assert_false(bus_durable_valid(NULL));

	assert_true(bus_ident_valid("auth"));
	assert_true(bus_ident_valid("bus_t1"));
	assert_false(bus_ident_valid("Auth"));
	assert_false(bus_ident_valid("1auth"));
	assert_false(bus_ident_valid("auth;drop"));
	assert_false(bus_ident_valid(""));
	assert_true(bus_service_valid("issuance"));
	assert_true(bus_service_valid("my-svc_2"));
	assert_false(bus_service_valid("a/b"));
	assert_false(bus_service_valid(""));

	static const struct {
		const char *filter;
		bool ok;
	} filters[] = {
	    {"caplat.issuance.cert.revoked", true},
	    {"caplat.issuance.>", true},
	    {"caplat.issuance.*.revoked", true},
	    {"caplat.>", false},   /* would take the dead letters too */
	    {"caplat.*.x", false}, /* idem */
	    {"caplat.*.audit.recorded", true}, /* 3 tokens: never a dlq */
	    {"caplat.*.audit.>", false},
	    {"caplat.*.*", false},
	    {"caplat.*", false},
	    {"caplat.dlq.x", false},
	    {"caplat.dlq.>", false},
	    {"caplat.", false},
	    {"caplat.a..b", false},
	    {"caplat.a.>.b", false},
	    {"caplat.a.", false},
	    {"other.a", false},
	    {"caplat.a b", false},
	};
	for (size_t i = 0; i < ARRAY_LEN(filters); i++)
		if (bus_filter_valid(filters[i].filter) != filters[i].ok)
			fail_msg("filter \"%s\" should be %s",
			    filters[i].filter,
			    filters[i].ok ? "accepted" : "rejected");
}

static void
test_nak_delay(void **state)
{
	assert_int_equal(bus_nak_delay_ms(1000, 1), 1000);
	assert_int_equal(bus_nak_delay_ms(1000, 2), 2000);
	assert_int_equal(bus_nak_delay_ms(1000, 3), 4000);
	assert_int_equal(bus_nak_delay_ms(1000, 100), NAK_DELAY_MAX_MS);
	assert_int_equal(bus_nak_delay_ms(100, 0), 100);
}

static void
test_sanitize(void **state)
{
	char *s = bus_text_sanitize("ok", 2);
	assert_string_equal(s, "ok");
	free(s);
	s = bus_text_sanitize("a\0b", 3);
	assert_string_equal(s, "a?b");
	free(s);
	s = bus_text_sanitize("\xe5\xbc\xa0\xff\xe5\xbc",
	    6); /* 张, bad byte, cut char */
	assert_string_equal(s, "\xe5\xbc\xa0???");
	free(s);
	s = bus_text_sanitize("\xc0\xaf", 2); /* overlong '/' */
	assert_string_equal(s, "??");
	free(s);
}

static void
test_metrics_text(void **state)
{
	struct bus bus;
	struct bus_consumer a, b;
	char buf[4096], small[64];
	size_t n;

	memset(&bus, 0, sizeof(bus));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&bus.mu, NULL);
	atomic_store(&bus.published, 12);
	atomic_store(&bus.backlog, 3);
	a.durable = "orders-paid";
	atomic_store(&a.consumed, 5);
	atomic_store(&a.dead_letters, 1);
	b.durable = "orders-cancelled";
	atomic_store(&b.duplicates, 2);
	a.next = &b;
	bus.consumers = &a;

	n = bus_metrics_text(&bus, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf, "caplat_bus_published_total 12\n"));
	assert_non_null(strstr(buf, "caplat_bus_publish_errors_total 0\n"));
	assert_non_null(strstr(buf, "caplat_bus_outbox_backlog 3\n"));
	assert_non_null(strstr(buf, "caplat_bus_nats_connected 0\n"));
	assert_non_null(strstr(buf,
	    "caplat_bus_consumed_total{consumer=\"orders-paid\"} 5\n"));
	assert_non_null(strstr(buf,
	    "caplat_bus_duplicates_total{consumer=\"orders-cancelled\"} 2\n"));
	assert_non_null(strstr(buf,
	    "caplat_bus_dead_letters_total{consumer=\"orders-paid\"} 1\n"));
	assert_non_null(
	    strstr(buf, "# TYPE caplat_bus_handler_errors_total counter\n"));
	/* One HELP/TYPE per family, all its samples together. */
	char *family = strstr(buf, "# TYPE caplat_bus_consumed_total");
	assert_non_null(family);
	assert_null(strstr(family + 1, "# TYPE caplat_bus_consumed_total"));

	/* Truncation is reported like snprintf, and stays NUL-terminated. */
	assert_int_equal(bus_metrics_text(&bus, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(bus_metrics_text(&bus, NULL, 0), n);
	pthread_mutex_destroy(&bus.mu);
}

static void
test_open_rejects_bad_config(void **state)
{
	struct bus *bus = NULL;
	const struct bus_config bad[] = {
	    {NULL, "postgresql://x", "auth", "auth", 0, 0, 0, 0, 0, 0, NULL},
	    {"nats://127.0.0.1:1", "", "auth", "auth", 0, 0, 0, 0, 0, 0, NULL},
	    {"nats://127.0.0.1:1", "postgresql://x", "Auth", "auth", 0, 0, 0, 0,
	        0, 0, NULL},
	    {"nats://127.0.0.1:1", "postgresql://x", "auth", "", 0, 0, 0, 0, 0,
	        0, NULL},
	    {"nats://127.0.0.1:1", "postgresql://x", "auth", "auth", 10, 0, 0,
	        0, 0, 0, NULL},
	    {"nats://127.0.0.1:1", "postgresql://x", "auth", "auth", 0, 0, 0, 0,
	        -1, 0, NULL},
	    {"nats://127.0.0.1:1", "postgresql://x", "auth", "auth", 0, 0, 0, 0,
	        0, -1, NULL},
	};

	log_min_level =
	    (enum log_level)(LOG_ERROR + 1); /* expected errors: quiet */
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		assert_int_equal(bus_open(&bus, &bad[i]), -1);
		assert_null(bus);
	}
	bus_close(NULL);
	bus_rows_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subject),
	    cmocka_unit_test(test_event_prepare),
	    cmocka_unit_test(test_envelope_build),
	    cmocka_unit_test(test_envelope_roundtrip),
	    cmocka_unit_test(test_envelope_parse_head),
	    cmocka_unit_test(test_envelope_parse_rejects),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_nak_delay),
	    cmocka_unit_test(test_sanitize),
	    cmocka_unit_test(test_metrics_text),
	    cmocka_unit_test(test_open_rejects_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
