/* Unit tests for kv's pure parts: URLs, reply accessors, failing at once
 * while disconnected. The client itself is proved against a real Redis
 * (tests/integration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "kv.h"

static int called;
static const struct kv_reply *seen;

static void
on_reply(void *arg, const struct kv_reply *r)
{
	called++;
	seen = r;
}

static void
test_urls_and_disconnected(void **state)
{
	struct event_base *base = event_base_new();
	struct kv *kv;

	assert_int_equal(kv_new(&kv, base, "http://x", 100), -1);
	assert_int_equal(kv_new(&kv, base, "redis://", 100), -1);
	/* Nothing listens on port 1: not up, and a command fails at once. */
	assert_int_equal(kv_new(&kv, base, "redis://127.0.0.1:1", 100), 0);
	assert_false(kv_up(kv));
	const char *argv[] = {"PING"};
	seen = (const struct kv_reply *)1;
	kv_command(kv, on_reply, NULL, 1, argv, NULL);
	assert_int_equal(called, 1);
	assert_null(seen);
	kv_command(kv, NULL, NULL, 1, argv, NULL); /* no callback: fine */
	kv_free(kv);
	event_base_free(base);
}

static void
test_reply_accessors(void **state)
{
	redisReply one = {.type = REDIS_REPLY_INTEGER, .integer = 7};
	redisReply str = {.type = REDIS_REPLY_STRING,
	    .str = (char[]){"abc"},
	    .len = 3};
	redisReply *elems[] = {&one, &str};
	redisReply arr = {.type = REDIS_REPLY_ARRAY,
	    .elements = 2,
	    .element = elems};
	redisReply nil = {.type = REDIS_REPLY_NIL};
	size_t len;

	assert_int_equal(kv_reply_type((struct kv_reply *)&one), KV_INT);
	assert_int_equal(kv_reply_int((struct kv_reply *)&one), 7);
	assert_string_equal(kv_reply_str((struct kv_reply *)&str, &len), "abc");
	assert_int_equal(len, 3);
	assert_int_equal(kv_reply_count((struct kv_reply *)&arr), 2);
	assert_ptr_equal(kv_reply_elem((struct kv_reply *)&arr, 1), &str);
	assert_null(kv_reply_elem((struct kv_reply *)&arr, 2));
	assert_int_equal(kv_reply_count((struct kv_reply *)&one), 0);
	assert_int_equal(kv_reply_type((struct kv_reply *)&nil), KV_NIL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls_and_disconnected),
	    cmocka_unit_test(test_reply_accessors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
