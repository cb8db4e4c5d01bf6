/* kv — async hiredis client with per-command timeouts and reconnection. */
#include "kv.h"

#include "hist.h"
#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv {
	struct event_base *base;
	char host[128];
	int port;
	int timeout_ms;
	redisAsyncContext *ctx;
	int connected;
	struct event *reconnect;
	int backoff_ms;
	unsigned long long commands, failures, timeouts, reconnects;
};

struct kv_req {
	int64_t t0; /* hist_now() when sent: the redis step */
	struct kv *kv;
	kv_cb cb;
	void *arg;
	struct event *timer;
	int done; /* callback already called (timeout) */
};

static void kv_connect(struct kv *kv);

static void
kv_schedule_reconnect(struct kv *kv)
{
	struct timeval tv;

	kv->backoff_ms = kv->backoff_ms ? kv->backoff_ms * 2 : 50;
	if (kv->backoff_ms > 2000)
		kv->backoff_ms = 2000;
	tv.tv_sec = kv->backoff_ms / 1000;
	tv.tv_usec = (kv->backoff_ms % 1000) * 1000;
	evtimer_add(kv->reconnect, &tv);
}

static void
kv_on_connect(const redisAsyncContext *ctx, int status)
{
	struct kv *kv = ctx->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		log_warn(NULL, "msg=redis_connect_failed error=\"%s\"",
		    ctx->errstr);
		kv->ctx = NULL;
		kv->connected = 0;
		kv_schedule_reconnect(kv);
		return;
	}
	kv->connected = 1;
	kv->backoff_ms = 0;
	log_info(NULL, "msg=redis_connected");
}

static void
kv_on_disconnect(const redisAsyncContext *ctx, int status)
{
	struct kv *kv = ctx->data;

	if (kv == NULL)
		return; /* kv_free in progress */
	log_warn(NULL, "msg=redis_disconnected error=\"%s\"",
	    status == REDIS_OK ? "-" : ctx->errstr);
	kv->ctx = NULL;
	kv->connected = 0;
	kv->reconnects++;
	kv_schedule_reconnect(kv);
}

static void
kv_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
	kv_connect(arg);
}

static void
kv_connect(struct kv *kv)
{
	redisAsyncContext *ctx = redisAsyncConnect(kv->host, kv->port);

	if (ctx == NULL || ctx->err) {
		if (ctx)
			redisAsyncFree(ctx);
		kv_schedule_reconnect(kv);
		return;
	}
	ctx->data = kv;
	redisLibeventAttach(ctx, kv->base);
	redisAsyncSetConnectCallback(ctx, kv_on_connect);
	redisAsyncSetDisconnectCallback(ctx, kv_on_disconnect);
	kv->ctx = ctx;
}

int
kv_new(struct kv **out, struct event_base *base, const char *url,
    int timeout_ms)
{
	struct kv *kv;
	char host[128];
	int port = 6379;

	if (strncmp(url, "redis://", 8) != 0 ||
	    sscanf(url + 8, "%127[^:/]:%d", host, &port) < 1)
		return -1;
	kv = xcalloc(1, sizeof(*kv));
	kv->base = base;
	snprintf(kv->host, sizeof(kv->host), "%s", host);
	kv->port = port;
	kv->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
	kv->reconnect = evtimer_new(base, kv_on_reconnect_timer, kv);
	kv_connect(kv);
	*out = kv;
	return 0;
}

void
kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	if (kv->ctx != NULL) {
		kv->ctx->data = NULL;
		redisAsyncFree(
		    kv->ctx); /* pending callbacks get NULL replies */
	}
	event_free(kv->reconnect);
	free(kv);
}

int
kv_up(const struct kv *kv)
{
	return kv->connected;
}

size_t
kv_metrics(void *arg, char *buf, size_t size)
{
	struct kv *kv = arg;
	int n = snprintf(buf, size,
	    "caplat_redis_up %d\ncaplat_redis_commands_total %llu\n"
	    "caplat_redis_failures_total %llu\ncaplat_redis_timeouts_total %llu\n"
	    "caplat_redis_reconnects_total %llu\n",
	    kv->connected, kv->commands, kv->failures, kv->timeouts,
	    kv->reconnects);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

static void
kv_req_free(struct kv_req *r)
{
	event_free(r->timer);
	free(r);
}

static void
kv_on_reply(redisAsyncContext *ctx, void *reply, void *privdata)
{
	struct kv_req *r = privdata;

	if (!r->done) {
		r->done = 1;
		hist_step(STEP_REDIS, r->t0);
		if (reply == NULL)
			r->kv->failures++;
		if (r->cb != NULL)
			r->cb(r->arg, reply);
	}
	kv_req_free(r);
}

static void
kv_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct kv_req *r = arg;
	struct kv *kv = r->kv;

	r->done = 1;
	kv->timeouts++;
	if (r->cb != NULL)
		r->cb(r->arg, NULL);
	/* The reply may never come: drop the connection now (not gracefully:
	 * redisAsyncDisconnect would wait for the replies), which answers every
	 * pending callback with NULL (freeing r) and schedules a reconnect. */
	if (kv->ctx != NULL)
		redisAsyncFree(kv->ctx);
}

void
kv_command(struct kv *kv, kv_cb cb, void *arg, int argc,
    const char *const *argv, const size_t *lens)
{
	struct kv_req *r;
	size_t *l = NULL;
	struct timeval tv;

	kv->commands++;
	if (kv->ctx == NULL || !kv->connected) {
		kv->failures++;
		if (cb != NULL)
			cb(arg, NULL);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->kv = kv;
	r->cb = cb;
	r->arg = arg;
	r->timer = evtimer_new(kv->base, kv_on_timeout, r);
	r->t0 = hist_now();
	if (lens == NULL) {
		l = xmalloc((size_t)argc * sizeof(size_t));
		for (int i = 0; i < argc; i++)
			l[i] = strlen(argv[i]);
	}
	/* hiredis wants a non-const array of const strings. */
	const char **av = xmalloc((size_t)argc * sizeof(char *));
	for (int i = 0; i < argc; i++)
		av[i] = argv[i];
	int rc = redisAsyncCommandArgv(kv->ctx, kv_on_reply, r, argc, av,
	    lens ? lens : l);
	free(av);
	if (rc != REDIS_OK) {
		free(l);
		kv_req_free(r);
		kv->failures++;
		if (cb != NULL)
			cb(arg, NULL);
		return;
	}
	free(l);
	tv.tv_sec = kv->timeout_ms / 1000;
	tv.tv_usec = (kv->timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
}

enum kv_type
kv_reply_type(const struct kv_reply *r)
{
	const redisReply *rr = (const redisReply *)r;

	switch (rr->type) {
	case REDIS_REPLY_INTEGER:
		return KV_INT;
	case REDIS_REPLY_STRING:
		return KV_STR;
	case REDIS_REPLY_ARRAY:
		return KV_ARRAY;
	case REDIS_REPLY_STATUS:
		return KV_STATUS;
	case REDIS_REPLY_ERROR:
		return KV_ERROR;
	default:
		return KV_NIL;
	}
}

long long
kv_reply_int(const struct kv_reply *r)
{
	return ((const redisReply *)r)->integer;
}

const char *
kv_reply_str(const struct kv_reply *r, size_t *len)
{
	const redisReply *rr = (const redisReply *)r;

	if (len != NULL)
		*len = rr->str ? rr->len : 0;
	return rr->str;
}

size_t
kv_reply_count(const struct kv_reply *r)
{
	const redisReply *rr = (const redisReply *)r;

	return rr->type == REDIS_REPLY_ARRAY ? rr->elements : 0;
}

const struct kv_reply *
kv_reply_elem(const struct kv_reply *r, size_t i)
{
	const redisReply *rr = (const redisReply *)r;

	if (rr->type != REDIS_REPLY_ARRAY || i >= rr->elements)
		return NULL;
	return (const struct kv_reply *)rr->element[i];
}
