/* http — the HTTP server every service runs: evhttp on the process's one
 * libevent loop, a route table (method + path with {parameters}), request ids,
 * per-route body limits, JSON replies with API.md's error envelope, and the
 * operational endpoints /healthz, /readyz and /metrics (Prometheus text).
 *
 * Request lifetime: every request gets one struct http_req, owned by the
 * server. A handler — or the last continuation of its async chain — answers
 * exactly once with one of the http_reply_*() calls; that call frees the
 * request and everything attached to it (http_req_attach). A client that
 * disconnects while the request waits on I/O changes nothing: the reply is
 * then dropped, and the request freed in the same single place. */
#ifndef CAPLAT_HTTP_H
#define CAPLAT_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_request;
struct http_server;
struct http_req;
struct session;
struct db_result;
struct json_field_err;

typedef void (*http_handler_fn)(struct http_req *req);

struct http_route {
	const char
	    *method; /* "GET", "POST", "PUT", "DELETE" (GET serves HEAD) */
	const char *pattern; /* "/api/v1/auth/identities/{id}/switch" */
	http_handler_fn handler;
	/* bytes; 0 means the server default (64 KiB); | HTTP_BODY_STREAM */
	size_t max_body;
};

/* The body is handed over as the evbuffer libevent read it into
 * (req->body_buf, owned by the request; req->body stays NULL), never
 * copied: the handler reads it in pieces (evbuffer_remove), which frees it
 * as it goes. libevent 2.1's server reads a whole request body before the
 * handler runs (evhttp_set_newreqcb, the hook that would let a server take
 * the body chunk by chunk as it arrives, came with 2.2), so this halves a
 * bulk upload's peak memory instead of bounding it. Counted on /metrics as
 * caplat_http_body_streamed_total. */
#define HTTP_BODY_STREAM ((size_t)1 << 62)

#define HTTP_MAX_PARAMS 4

struct http_req {
	struct evhttp_request *ev; /* NULL once replied */
	struct http_server *srv;
	const struct http_route *route;
	char id[48];   /* request id: X-Request-Id or generated */
	char peer[64]; /* client address (X-Real-IP behind nginx) */
	const char *method;
	char *path;                    /* decoded path, owned */
	char *query;                   /* raw query string or NULL, owned */
	char *params[HTTP_MAX_PARAMS]; /* decoded {parameters}, owned */
	unsigned char *body; /* NUL-terminated copy of the body, owned */
	size_t body_len;
	struct evbuffer
	    *body_buf; /* HTTP_BODY_STREAM routes: the body, owned */
	int64_t start_us;
	struct session *session; /* set by session_require(), owned */
	/* Frees session with the request: set with it, so that http itself
	 * calls nothing of session.c (session depends on http, not back). */
	void (*session_free)(struct session *);
	void *data; /* handler state, freed by data_free */
	void (*data_free)(void *);
	/* A streamed reply (http_stream_*): its status once started, whether
	 * the client went away, and the continuation waiting for a drain. */
	int stream_status;
	int stream_gone;
	void (*stream_next)(struct http_req *req);
};

/* Returns a new server on base. Caller frees with http_server_free(). */
struct http_server *http_server_new(struct event_base *base,
    const char *service);
void http_server_free(struct http_server *srv);

/* Adds routes (the array is borrowed and must outlive the server). */
void http_server_routes(struct http_server *srv,
    const struct http_route *routes, size_t n);

/* Sets the readiness check behind /readyz: returns 0 when every dependency
 * answers, else -1 with the failing one's name in why. */
typedef int (*http_ready_fn)(void *arg, char *why, size_t why_size);
void http_server_set_ready(struct http_server *srv, http_ready_fn fn,
    void *arg);

/* Adds a writer of extra /metrics lines (Prometheus text) into buf; returns
 * the number of bytes written (at most size-1). Up to 8 writers. */
typedef size_t (*http_metrics_fn)(void *arg, char *buf, size_t size);
void http_server_add_metrics(struct http_server *srv, http_metrics_fn fn,
    void *arg);

/* Counts one error talking to a dependency ("postgres", "redis", "nats").
 * Shown on /metrics as caplat_dependency_errors_total{dep=…}. */
void http_server_dep_error(struct http_server *srv, const char *dep);

/* Listens on 127.0.0.1:port (or addr) with SO_REUSEPORT, so several worker
 * processes can share the port. Returns 0, or -1 with errno set. */
int http_server_listen(struct http_server *srv, const char *addr, int port);

/* Forks workers-1 child processes before the loop is created, so each
 * process runs its own loop and listens with SO_REUSEPORT. Children die with
 * the parent. Returns the worker index (0 in the parent). */
int http_fork_workers(int workers);

/* --- replies: each answers once and frees req --------------------------- */

/* Replies status with the JSON value; steals body (may be NULL for no body). */
void http_reply_json(struct http_req *req, int status, json_t *body);
/* Replies API.md's error envelope {"error":{"code","message","field"}};
 * field may be NULL. */
void http_reply_error(struct http_req *req, int status, const char *code,
    const char *field, const char *message);
/* Replies 503 UNAVAILABLE (服务暂时不可用，请稍后重试) and counts one error of
 * the dependency dep ("postgres", "redis", "nats") on /metrics. */
void http_reply_unavailable(struct http_req *req, const char *dep);
/* Replies for a failed database batch: DB_UNAVAILABLE answers as
 * http_reply_unavailable(req, "postgres"); any other failure is logged
 * (status, sqlstate, message — never parameters) and answers 500 INTERNAL.
 * Callers handle DB_CONFLICT and DB_REFUSED they expect before calling. */
void http_reply_db_error(struct http_req *req, const struct db_result *res);
/* What http_reply_db_error answers, without answering: counts or logs as it
 * does and sets *status, *code and *message (static strings), for callers
 * that must do something (release a key) before they reply. */
void http_db_error_answer(struct http_req *req, const struct db_result *res,
    int *status, const char **code, const char **message);
/* Replies a field error filled by json_field_*() or json_field_invalid()
 * (400 FIELD_TYPE, 422 FIELD_REQUIRED / FIELD_INVALID / a specific code). */
void http_reply_field_error(struct http_req *req,
    const struct json_field_err *err);
/* Replies 422 FIELD_REQUIRED naming field, with the Chinese message
 * "缺少必填字段 <field>". */
void http_reply_required(struct http_req *req, const char *field);
/* Replies raw bytes (copied) with the given Content-Type. */
void http_reply_raw(struct http_req *req, int status, const char *content_type,
    const void *data, size_t len);
/* Replies with no body (204, 202). */
void http_reply_empty(struct http_req *req, int status);
/* Replies 400 INVALID_UTF8 naming field (a parameter's name, "body"). The
 * router already refuses path and query parameters that are not valid
 * UTF-8 text, and http_read_json such a body: handlers call it for the raw
 * bodies they read themselves. */
void http_reply_invalid_utf8(struct http_req *req, const char *field);
/* Adds a response header before the reply (e.g. Retry-After). */
void http_add_header(struct http_req *req, const char *name, const char *value);

/* --- streamed replies (Transfer-Encoding: chunked) ----------------------
 * For bodies too large to hold: the handler sends the status, then one
 * chunk at a time, producing the next only when the previous one has been
 * written to the client (so memory stays bounded by one chunk whatever the
 * client's speed), then ends. A client that goes away ends nothing by
 * itself: the handler's next continuation runs and sees http_stream_gone(),
 * and the handler calls http_stream_end, the one place the request is
 * freed. */

struct evbuffer;
typedef void (*http_stream_fn)(struct http_req *req);

/* Sends status and the headers added so far (with content_type); the body
 * follows with http_stream_chunk. */
void http_stream_start(struct http_req *req, int status,
    const char *content_type);
/* Sends buf's contents (drained from buf) as one chunk; calls next(req)
 * once the chunk is written to the socket, or at once when the client has
 * gone. Call again only from next or later. */
void http_stream_chunk(struct http_req *req, struct evbuffer *buf,
    http_stream_fn next);
/* Returns 1 when the client has gone away: end the stream. */
int http_stream_gone(const struct http_req *req);
/* Ends the stream and frees req. complete = 0 aborts it (a failure after
 * the status was sent): the connection is closed without the last chunk,
 * so the client sees a truncated body, never a short one that looks
 * whole. */
void http_stream_end(struct http_req *req, int complete);

/* --- reading ------------------------------------------------------------ */

/* Returns a request header (borrowed, valid until the reply) or NULL. */
const char *http_header(struct http_req *req, const char *name);
/* Looks up a query parameter; returns a new string (caller frees) or NULL. */
char *http_query_param(struct http_req *req, const char *name);
/* Parses the body as a JSON object into *out (new reference, caller
 * decrefs). On error replies 400 BAD_JSON (400 INVALID_UTF8, field "body",
 * when the body is not UTF-8 text) and returns -1. An empty body
 * parses as {}. */
int http_read_json(struct http_req *req, json_t **out);

/* Returns 1 when len bytes are valid UTF-8 text (shortest forms, no UTF-16
 * surrogates, nothing beyond U+10FFFF) without a NUL — what a PostgreSQL
 * text value accepts — else 0. */
int http_text_valid(const void *data, size_t len);

/* Attaches handler state freed with the request. */
void http_req_attach(struct http_req *req, void *data,
    void (*data_free)(void *));

/* Number of requests in flight in this process (for tests and draining). */
unsigned http_server_inflight(struct http_server *srv);

#endif
