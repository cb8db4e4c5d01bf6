/* kv — Redis on the event loop (async hiredis with the libevent adapter).
 * One connection per process, many commands in flight on it. Every command
 * has a timeout; on expiry the callback gets NULL and the connection is
 * dropped and made anew (hiredis has no command timeout of its own). While
 * disconnected, commands fail at once with NULL. Reconnects with backoff.
 * Redis holds only what may be lost or expires (sessions, challenges, codes,
 * rate-limit counters): callers treat NULL as "dependency down" (503). */
#ifndef CAPLAT_KV_H
#define CAPLAT_KV_H

#include <stddef.h>

struct event_base;
struct kv;
struct kv_reply;

enum kv_type { KV_NIL, KV_INT, KV_STR, KV_ARRAY, KV_STATUS, KV_ERROR };

/* Called once per command on the loop thread. reply is NULL when Redis is
 * unreachable or timed out; otherwise it is borrowed for the callback. */
typedef void (*kv_cb)(void *arg, const struct kv_reply *reply);

/* Creates a client for url ("redis://host:port") and starts connecting.
 * Caller frees with kv_free(). Returns 0, or -1 on a malformed url. */
int kv_new(struct kv **out, struct event_base *base, const char *url,
    int timeout_ms);
void kv_free(struct kv *kv);
/* 1 when connected. */
int kv_up(const struct kv *kv);
/* Counters as Prometheus text (http_metrics_fn shape). */
size_t kv_metrics(void *kv, char *buf, size_t size);

/* Sends a command given as argv (binary-safe; lens NULL means strlen).
 * cb may be NULL when nobody needs the answer. */
void kv_command(struct kv *kv, kv_cb cb, void *arg, int argc,
    const char *const *argv, const size_t *lens);

enum kv_type kv_reply_type(const struct kv_reply *r);
long long kv_reply_int(const struct kv_reply *r);
/* String/status/error text (borrowed), its length in *len if not NULL. */
const char *kv_reply_str(const struct kv_reply *r, size_t *len);
size_t kv_reply_count(const struct kv_reply *r);
const struct kv_reply *kv_reply_elem(const struct kv_reply *r, size_t i);

#endif
