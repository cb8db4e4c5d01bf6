/* httpc — the one client for every outgoing HTTP call (payment providers,
 * remote vendor CAs, and whatever other issues add): on the service's
 * libevent loop, never blocking, over TLS with certificate and hostname
 * verification (the system bundle plus CAPLAT_TLS_CA_FILE), with a
 * connect/read timeout per call, retries with backoff for calls the caller
 * marks idempotent, and kept-alive connections reused per host.
 *
 * Built on libevent's bufferevent_openssl under evhttp (the code already
 * speaks evhttp; no second HTTP stack, no second event loop). https:// is
 * the rule; http:// is allowed for loopback hosts only (tests, sidecars).
 *
 * Configuration (read by httpc_new):
 *   CAPLAT_TLS_CA_FILE   PEM bundle of further trusted roots (optional)
 */
#ifndef CAPLAT_HTTPC_H
#define CAPLAT_HTTPC_H

#include <stddef.h>

struct event_base;
struct evkeyvalq;
struct httpc;

#define HTTPC_HOST_MAX 256
#define HTTPC_PATH_MAX 2048

/* A parsed base URL: scheme, host, port and path prefix. */
struct httpc_url {
	int tls; /* https */
	char host[HTTPC_HOST_MAX];
	int port;
	char path[HTTPC_PATH_MAX]; /* "" or "/…", as given */
};

enum httpc_url_result {
	HTTPC_URL_OK = 0,
	HTTPC_URL_MALFORMED = -1,
	HTTPC_URL_PLAIN_HTTP = -2, /* http:// to a host that is not loopback */
};

/* Parses url ("https://host[:port][/path]"; http:// only for loopback). */
enum httpc_url_result httpc_url_parse(const char *url, struct httpc_url *out);

/* 1 when host is "localhost", 127.0.0.0/8 or ::1 (literal, no lookup). */
int httpc_host_is_loopback(const char *host);

/* 1 when host is an IPv4 or IPv6 literal. */
int httpc_host_is_ip(const char *host);

/* The wait before try number `attempt` (2, 3, …) of an idempotent call:
 * 200 ms doubling, at most 3.2 s; 0 for the first try. */
long httpc_backoff_ms(int attempt);

/* The number of tries an idempotent call gets (1 for the others). */
#define HTTPC_IDEMPOTENT_TRIES 3

/* A client on base; fatal() when CAPLAT_TLS_CA_FILE is set but unusable. */
struct httpc *httpc_new(struct event_base *base);
void httpc_free(struct httpc *hc);

/* An answer's body as it arrives (see httpc_call.on_body): status is the
 * answer's; returns 0 for more, HTTPC_BODY_HOLD to stop reading until
 * httpc_resume(hc, arg), HTTPC_BODY_DROP to be given nothing more (the rest
 * is read and dropped). Called from the loop. */
typedef int (
    *httpc_body_fn)(void *arg, int status, const char *data, size_t len);
#define HTTPC_BODY_HOLD 1
#define HTTPC_BODY_DROP (-1)

struct httpc_call {
	const struct httpc_url *to; /* host, port, TLS */
	const char *method;         /* "GET" or "POST" */
	const char *path;           /* the full path and query */
	const char *const *headers; /* name, value, …, NULL (may be NULL) */
	const char *body;           /* NULL for none */
	size_t body_len;
	long timeout_ms; /* connect and read, each try */
	int idempotent;  /* may be sent again after a transport failure */
	/* Optional: the body is not collected (no size limit) but given to
	 * on_body(arg, …) a piece at a time as it arrives, then freed; fn's
	 * answer then has no body. Never retried. */
	httpc_body_fn on_body;
};

struct httpc_answer {
	int status; /* 0: no answer, see error */
	const char *body;
	size_t body_len;
	struct evkeyvalq *headers; /* NULL when status is 0 */
	/* Why there is no answer: "tls: certificate has expired",
	 * "tls: hostname mismatch", "timeout", "connection failed", … */
	const char *error;
};

typedef void (*httpc_fn)(void *arg, const struct httpc_answer *a);

/* Sends call; fn is called exactly once, always from the loop and never
 * before httpc_send has returned. Everything in call is copied. */
void httpc_send(struct httpc *hc, const struct httpc_call *call, httpc_fn fn,
    void *arg);

/* Reading again the answer of the call whose on_body(arg, …) answered
 * HTTPC_BODY_HOLD; nothing when there is no such call. From the loop. */
void httpc_resume(struct httpc *hc, void *arg);

#endif
