/* http — evhttp server with a route table, request contexts, JSON replies,
 * and the operational endpoints. See http.h for the request lifetime. */
#include "http.h"
#include "db.h"
#include "hist.h"
#include "json.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_DEFAULT_MAX_BODY (64 * 1024)
#define HTTP_ABS_MAX_BODY (8 * 1024 * 1024)
#define HTTP_MAX_ROUTES 128
#define HTTP_MAX_STATUSES 12
#define HTTP_MAX_DEPS 8
#define HTTP_MAX_WRITERS 8

/* Latency histogram upper bounds in seconds (Prometheus convention). */
static const double http_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define HTTP_NBUCKETS (sizeof(http_buckets) / sizeof(http_buckets[0]))

struct route_stats {
	struct {
		int status;
		uint64_t count;
	} statuses[HTTP_MAX_STATUSES];
	uint64_t buckets[HTTP_NBUCKETS]; /* non-cumulative; summed on output */
	uint64_t count;
	double sum_seconds;
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	char service[32];
	const struct http_route *routes[HTTP_MAX_ROUTES];
	struct route_stats stats[HTTP_MAX_ROUTES + 1]; /* last: unmatched */
	size_t nroutes;
	http_ready_fn ready_fn;
	void *ready_arg;
	struct {
		http_metrics_fn fn;
		void *arg;
	} writers[HTTP_MAX_WRITERS];
	size_t nwriters;
	struct {
		char name[16];
		uint64_t count;
	} deps[HTTP_MAX_DEPS];
	unsigned inflight;
	uint64_t streamed; /* bodies handed over as an evbuffer */
};

static void http_dispatch(struct evhttp_request *ev, void *arg);

struct http_server *
http_server_new(struct event_base *base, const char *service)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->http = evhttp_new(base);
	if (srv->http == NULL)
		fatal("evhttp_new failed");
	snprintf(srv->service, sizeof(srv->service), "%s", service);
	evhttp_set_max_body_size(srv->http, HTTP_ABS_MAX_BODY);
	evhttp_set_max_headers_size(srv->http, 16 * 1024);
	evhttp_set_timeout(srv->http, 60);
	/* Every method reaches the router (unknown ones too: libevent types
	 * them as an unknown bit inside the 16), which answers 405 with Allow
	 * instead of libevent's HTML 501. */
	evhttp_set_allowed_methods(srv->http, 0xffff);
	evhttp_set_gencb(srv->http, http_dispatch, srv);
	return srv;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	evhttp_free(srv->http);
	free(srv);
}

void
http_server_routes(struct http_server *srv, const struct http_route *routes,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (srv->nroutes == HTTP_MAX_ROUTES)
			fatal("too many routes");
		srv->routes[srv->nroutes++] = &routes[i];
		/* A route with a larger limit (a bulk import) lifts evhttp's. */
		size_t max = routes[i].max_body & ~HTTP_BODY_STREAM;
		if (max > HTTP_ABS_MAX_BODY)
			evhttp_set_max_body_size(srv->http, (ev_ssize_t)max);
	}
}

void
http_server_set_ready(struct http_server *srv, http_ready_fn fn, void *arg)
{
	srv->ready_fn = fn;
	srv->ready_arg = arg;
}

void
http_server_add_metrics(struct http_server *srv, http_metrics_fn fn, void *arg)
{
	if (srv->nwriters == HTTP_MAX_WRITERS)
		fatal("too many metrics writers");
	srv->writers[srv->nwriters].fn = fn;
	srv->writers[srv->nwriters].arg = arg;
	srv->nwriters++;
}

void
http_server_dep_error(struct http_server *srv, const char *dep)
{
	for (size_t i = 0; i < HTTP_MAX_DEPS; i++) {
		if (srv->deps[i].name[0] == '\0')
			snprintf(srv->deps[i].name, sizeof(srv->deps[i].name),
			    "%s", dep);
		if (strcmp(srv->deps[i].name, dep) == 0) {
			srv->deps[i].count++;
			return;
		}
	}
}

unsigned
http_server_inflight(struct http_server *srv)
{
	return srv->inflight;
}

int
http_server_listen(struct http_server *srv, const char *addr, int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* TCP_NODELAY (inherited by the accepted sockets): an answer longer
	 * than one segment (64 KB on loopback, e.g. CA管理's 100-row page)
	 * otherwise held its last partial segment until nginx's delayed ACK,
	 * 40 ms later (measured, issue 13). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 1024) != 0 || evhttp_accept_socket(srv->http, fd) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return 0;
}

int
http_fork_workers(int workers)
{
	pid_t parent = getpid();

	for (int i = 1; i < workers; i++) {
		pid_t pid = fork();
		if (pid < 0)
			fatal("fork: %s", strerror(errno));
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(0);
			return i;
		}
	}
	return 0;
}

/* ---- per-request context ---------------------------------------------- */

static int
http_request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		        (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
		        c == '.'))
			return 0;
	}
	return n > 0 && n < 48;
}

static const char *
http_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

static void
http_req_free(struct http_req *req)
{
	if (req->data_free != NULL)
		req->data_free(req->data);
	if (req->session_free != NULL)
		req->session_free(req->session);
	for (int i = 0; i < HTTP_MAX_PARAMS; i++)
		free(req->params[i]);
	free(req->path);
	free(req->query);
	free(req->body);
	if (req->body_buf != NULL)
		evbuffer_free(req->body_buf);
	free(req);
}

void
http_req_attach(struct http_req *req, void *data, void (*data_free)(void *))
{
	if (req->data_free != NULL)
		req->data_free(req->data);
	req->data = data;
	req->data_free = data_free;
}

static struct route_stats *
http_stats_for(struct http_server *srv, const struct http_route *route)
{
	for (size_t i = 0; route && i < srv->nroutes; i++)
		if (srv->routes[i] == route)
			return &srv->stats[i];
	return &srv->stats[HTTP_MAX_ROUTES];
}

static void
http_observe(struct http_req *req, int status)
{
	struct route_stats *st = http_stats_for(req->srv, req->route);
	double secs = (double)(now_mono_us() - req->start_us) / 1e6;
	size_t b;

	st->count++;
	st->sum_seconds += secs;
	for (b = 0; b < HTTP_NBUCKETS && secs > http_buckets[b]; b++)
		;
	if (b < HTTP_NBUCKETS)
		st->buckets[b]++;
	for (int i = 0; i < HTTP_MAX_STATUSES; i++) {
		if (st->statuses[i].status == 0)
			st->statuses[i].status = status;
		if (st->statuses[i].status == status) {
			st->statuses[i].count++;
			break;
		}
	}
}

/* Reason phrases libevent 2.1 does not know. */
static const char *
http_reason(int status)
{
	switch (status) {
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 422:
		return "Unprocessable Entity";
	case 423:
		return "Locked";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return NULL;
	}
}

static void http_done(struct http_req *req, int status);

/* The one place a request ends: send (unless the client is gone), count,
 * log, free. */
static void
http_finish(struct http_req *req, int status, struct evbuffer *body)
{
	assert(req->ev != NULL);
	evhttp_add_header(evhttp_request_get_output_headers(req->ev),
	    "X-Request-Id", req->id);
	if (body != NULL && strcmp(req->method, "HEAD") == 0) {
		/* HEAD answers GET's headers, Content-Length included, and no
		 * body (libevent 2.1 would send it). */
		char len[24];
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(evhttp_request_get_output_headers(req->ev),
		    "Content-Length", len);
		body = NULL;
	}
	evhttp_send_reply(req->ev, status, http_reason(status), body);
	http_done(req, status);
}

/* Counts, logs and frees a request whose reply has been sent. */
static void
http_done(struct http_req *req, int status)
{
	req->ev = NULL;
	http_observe(req, status);
	int64_t us = now_mono_us() - req->start_us;
	if (req->route != NULL || status >= 400)
		log_info(req->id,
		    "msg=http method=%s path=%s status=%d us=%lld", req->method,
		    req->path ? req->path : "-", status, (long long)us);
	req->srv->inflight--;
	http_req_free(req);
}

/* ---- streamed replies ------------------------------------------------- */

/* The connection closed (client gone, write error, timeout): libevent has
 * detached the request from it. A continuation waiting for a drain would
 * never run: run it now, it sees http_stream_gone(). */
static void
http_stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *req = arg;
	http_stream_fn next = req->stream_next;

	req->stream_gone = 1;
	req->stream_next = NULL;
	if (next != NULL)
		next(req);
}

static void
http_stream_drained(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *req = arg;
	http_stream_fn next = req->stream_next;

	req->stream_next = NULL;
	if (next != NULL)
		next(req);
}

void
http_stream_start(struct http_req *req, int status, const char *content_type)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->ev);
	struct evhttp_connection *evcon =
	    evhttp_request_get_connection(req->ev);

	assert(req->ev != NULL && req->stream_status == 0);
	req->stream_status = status;
	evhttp_add_header(out, "X-Request-Id", req->id);
	if (content_type != NULL)
		evhttp_add_header(out, "Content-Type", content_type);
	if (evcon == NULL) {
		req->stream_gone = 1;
		return;
	}
	evhttp_connection_set_closecb(evcon, http_stream_closed, req);
	evhttp_send_reply_start(req->ev, status, http_reason(status));
}

void
http_stream_chunk(struct http_req *req, struct evbuffer *buf,
    http_stream_fn next)
{
	assert(req->stream_status != 0 && req->stream_next == NULL);
	if (req->stream_gone) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		next(req);
		return;
	}
	req->stream_next = next;
	evhttp_send_reply_chunk_with_cb(req->ev, buf, http_stream_drained, req);
}

int
http_stream_gone(const struct http_req *req)
{
	return req->stream_gone;
}

void
http_stream_end(struct http_req *req, int complete)
{
	struct evhttp_connection *evcon =
	    evhttp_request_get_connection(req->ev);

	assert(req->stream_status != 0 && req->stream_next == NULL);
	if (evcon != NULL && !req->stream_gone) {
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		if (!complete) {
			/* The last chunk's write now fails: libevent frees
			 * the connection and the request with it. */
			struct bufferevent *bev =
			    evhttp_connection_get_bufferevent(evcon);
			shutdown(bufferevent_getfd(bev), SHUT_RDWR);
		}
	}
	if (!complete || req->stream_gone)
		log_warn(req->id, "msg=stream_cut gone=%d", req->stream_gone);
	/* With the connection gone this only frees the evhttp request. */
	evhttp_send_reply_end(req->ev);
	http_done(req, req->stream_status);
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(req->ev), name,
	    value);
}

void
http_reply_raw(struct http_req *req, int status, const char *content_type,
    const void *data, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		fatal("out of memory (evbuffer)");
	evbuffer_add(buf, data, len);
	if (content_type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req->ev),
		    "Content-Type", content_type);
	http_finish(req, status, buf);
	evbuffer_free(buf);
}

void
http_reply_json(struct http_req *req, int status, json_t *body)
{
	char *text;

	if (body == NULL) {
		http_reply_empty(req, status);
		return;
	}
	int64_t t0 = hist_now();
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fatal("json_dumps failed");
	hist_step(STEP_JSON_BUILD, t0);
	http_reply_raw(req, status, "application/json; charset=utf-8", text,
	    strlen(text));
	free(text);
}

void
http_reply_error(struct http_req *req, int status, const char *code,
    const char *field, const char *message)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (field != NULL)
		json_object_set_new(err, "field", json_string(field));
	if (status >= 500)
		log_warn(req->id, "msg=error_reply status=%d code=%s", status,
		    code);
	http_reply_json(req, status, json_pack("{s:o}", "error", err));
}

#define UNAVAILABLE_MESSAGE "服务暂时不可用，请稍后重试"

void
http_reply_unavailable(struct http_req *req, const char *dep)
{
	http_server_dep_error(req->srv, dep);
	http_reply_error(req, 503, "UNAVAILABLE", NULL, UNAVAILABLE_MESSAGE);
}

void
http_db_error_answer(struct http_req *req, const struct db_result *res,
    int *status, const char **code, const char **message)
{
	if (res->status == DB_UNAVAILABLE) {
		http_server_dep_error(req->srv, "postgres");
		*status = 503;
		*code = "UNAVAILABLE";
		*message = UNAVAILABLE_MESSAGE;
		return;
	}
	log_error(req->id,
	    "msg=db_error status=%d sqlstate=%s stmt=%d error=\"%s\"",
	    res->status, res->sqlstate ? res->sqlstate : "-", res->failed_stmt,
	    res->message ? res->message : "");
	*status = 500;
	*code = "INTERNAL";
	*message = "服务器内部错误";
}

void
http_reply_db_error(struct http_req *req, const struct db_result *res)
{
	int status;
	const char *code, *message;

	http_db_error_answer(req, res, &status, &code, &message);
	http_reply_error(req, status, code, NULL, message);
}

void
http_reply_field_error(struct http_req *req, const struct json_field_err *err)
{
	http_reply_error(req, err->status, err->code, err->field, err->message);
}

void
http_reply_required(struct http_req *req, const char *field)
{
	char msg[160];

	snprintf(msg, sizeof msg, "缺少必填字段 %s", field);
	http_reply_error(req, 422, "FIELD_REQUIRED", field, msg);
}

void
http_reply_empty(struct http_req *req, int status)
{
	http_finish(req, status, NULL);
}

const char *
http_header(struct http_req *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev),
	    name);
}

char *
http_query_param(struct http_req *req, const char *name)
{
	struct evkeyvalq q;
	const char *v;
	char *out = NULL;

	if (req->query == NULL)
		return NULL;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(req->query, &q) != 0)
		return NULL;
	v = evhttp_find_header(&q, name);
	if (v != NULL)
		out = xstrdup(v);
	evhttp_clear_headers(&q);
	return out;
}

int
http_read_json(struct http_req *req, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	if (req->body_len == 0) {
		*out = json_object();
		return 0;
	}
	assert(req->body != NULL); /* not on an HTTP_BODY_STREAM route */
	if (!http_text_valid(req->body, req->body_len)) {
		http_reply_invalid_utf8(req, "body");
		return -1;
	}
	v = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		http_reply_error(req, 400, "BAD_JSON", NULL,
		    "请求体不是有效的 JSON 对象");
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- text checks ------------------------------------------------------- */

int
http_text_valid(const void *data, size_t len)
{
	const unsigned char *s = data;

	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		size_t n;
		unsigned cp, min;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + n > len)
			return 0;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
		if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n;
	}
	return 1;
}

void
http_reply_invalid_utf8(struct http_req *req, const char *field)
{
	http_reply_error(req, 400, "INVALID_UTF8", field,
	    "请求中含有无效的 UTF-8 文本");
}

/* Copies the name of the i-th {parameter} of pattern into buf; returns buf
 * ("path" when there is none). */
static const char *
http_param_name(const char *pattern, int i, char *buf, size_t size)
{
	const char *p = pattern;

	snprintf(buf, size, "path");
	while ((p = strchr(p, '{')) != NULL) {
		const char *e = strchr(p, '}');
		if (e == NULL)
			break;
		if (i-- == 0) {
			snprintf(buf, size, "%.*s", (int)(e - p - 1), p + 1);
			break;
		}
		p = e;
	}
	return buf;
}

/* Returns NULL when every path parameter and every query parameter (name
 * and decoded value) is valid text, else the field at fault: the query
 * parameter's name, "query" when the name itself is not text, or "path". */
static const char *
http_params_invalid(struct http_req *req, char *field, size_t field_size)
{
	const char *bad = NULL;
	char *copy, *save = NULL;

	for (int i = 0; i < HTTP_MAX_PARAMS && req->params[i] != NULL; i++)
		if (!http_text_valid(req->params[i], strlen(req->params[i])))
			return http_param_name(req->route->pattern, i, field,
			    field_size);
	if (req->query == NULL)
		return NULL;
	/* Each name=value pair decoded as http_query_param() would see it; a
	 * decoded %00 counts (libevent's own parse would cut the value). */
	copy = xstrdup(req->query);
	for (char *pair = strtok_r(copy, "&", &save); pair != NULL && !bad;
	     pair = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(pair, '=');
		size_t klen = 0, vlen = 0;
		char *key, *value;

		if (eq != NULL)
			*eq = '\0';
		key = evhttp_uridecode(pair, 1, &klen);
		value = evhttp_uridecode(eq ? eq + 1 : "", 1, &vlen);
		if (key == NULL || value == NULL)
			fatal("out of memory (uridecode)");
		if (!http_text_valid(key, klen)) {
			bad = "query";
		} else if (!http_text_valid(value, vlen)) {
			snprintf(field, field_size, "%s", key);
			bad = field;
		}
		free(key);
		free(value);
	}
	free(copy);
	return bad;
}

/* ---- routing ----------------------------------------------------------- */

/* Matches path against pattern; on a match stores decoded parameters. */
static int
http_route_match(const char *pattern, const char *path,
    char *params[HTTP_MAX_PARAMS])
{
	const char *p = pattern, *s = path;
	int n = 0;

	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *se = strchr(s, '/');
			size_t len = se ? (size_t)(se - s) : strlen(s);
			if (pe == NULL || len == 0 || n == HTTP_MAX_PARAMS)
				goto nomatch;
			char *raw = xstrndup(s, len);
			size_t dlen = 0;
			params[n] = evhttp_uridecode(raw, 0, &dlen);
			free(raw);
			if (params[n] == NULL)
				fatal("out of memory (uridecode)");
			/* A decoded %00 would cut the value short: make it an
			 * invalid byte instead, so the text check refuses it. */
			for (size_t k = 0; k < dlen; k++)
				if (params[n][k] == '\0')
					params[n][k] = (char)0xff;
			n++;
			p = pe + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			goto nomatch;
		p++;
		s++;
	}
	if (*p == '\0' && *s == '\0')
		return 1;
nomatch:
	for (int i = 0; i < n; i++) {
		free(params[i]);
		params[i] = NULL;
	}
	return 0;
}

/* ---- operational endpoints -------------------------------------------- */

static void
http_healthz(struct http_req *req)
{
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s}", "status", "ok", "service",
	        req->srv->service));
}

static void
http_readyz(struct http_req *req)
{
	char why[128] = "";

	if (req->srv->ready_fn != NULL &&
	    req->srv->ready_fn(req->srv->ready_arg, why, sizeof(why)) != 0) {
		http_reply_json(req, 503,
		    json_pack("{s:s, s:s}", "status", "unavailable",
		        "dependency", why));
		return;
	}
	http_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static void
http_metrics_route(struct evbuffer *out, const char *svc, const char *method,
    const char *route, const struct route_stats *st)
{
	uint64_t cum = 0;

	for (int i = 0; i < HTTP_MAX_STATUSES && st->statuses[i].status; i++)
		evbuffer_add_printf(out,
		    "caplat_http_requests_total{svc=\"%s\","
		    "method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
		    svc, method, route, st->statuses[i].status,
		    (unsigned long long)st->statuses[i].count);
	for (size_t b = 0; b < HTTP_NBUCKETS; b++) {
		cum += st->buckets[b];
		evbuffer_add_printf(out,
		    "caplat_http_request_duration_seconds_bucket{"
		    "svc=\"%s\",method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
		    svc, method, route, http_buckets[b],
		    (unsigned long long)cum);
	}
	evbuffer_add_printf(out,
	    "caplat_http_request_duration_seconds_bucket{"
	    "svc=\"%s\",method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n"
	    "caplat_http_request_duration_seconds_sum{svc=\"%s\",method=\"%s\","
	    "route=\"%s\"} %.6f\n"
	    "caplat_http_request_duration_seconds_count{svc=\"%s\",method=\"%s\","
	    "route=\"%s\"} %llu\n",
	    svc, method, route, (unsigned long long)st->count, svc, method,
	    route, st->sum_seconds, svc, method, route,
	    (unsigned long long)st->count);
}

static void
http_metrics(struct http_req *req)
{
	struct http_server *srv = req->srv;
	struct evbuffer *out = evbuffer_new();
	char *buf = xmalloc(65536);

	evbuffer_add_printf(out,
	    "# TYPE caplat_http_requests_total counter\n"
	    "# TYPE caplat_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < srv->nroutes; i++)
		if (srv->stats[i].count)
			http_metrics_route(out, srv->service,
			    srv->routes[i]->method, srv->routes[i]->pattern,
			    &srv->stats[i]);
	if (srv->stats[HTTP_MAX_ROUTES].count)
		http_metrics_route(out, srv->service, "any", "unmatched",
		    &srv->stats[HTTP_MAX_ROUTES]);
	evbuffer_add_printf(out,
	    "# TYPE caplat_dependency_errors_total counter\n");
	for (size_t i = 0; i < HTTP_MAX_DEPS && srv->deps[i].name[0]; i++)
		evbuffer_add_printf(out,
		    "caplat_dependency_errors_total{svc=\"%s\","
		    "dep=\"%s\"} %llu\n",
		    srv->service, srv->deps[i].name,
		    (unsigned long long)srv->deps[i].count);
	evbuffer_add_printf(out, "caplat_http_inflight{svc=\"%s\"} %u\n",
	    srv->service, srv->inflight - 1);
	evbuffer_add_printf(out,
	    "# TYPE caplat_http_body_streamed_total counter\n"
	    "caplat_http_body_streamed_total{svc=\"%s\"} %llu\n",
	    srv->service, (unsigned long long)srv->streamed);
	for (size_t i = 0; i < srv->nwriters; i++) {
		size_t n = srv->writers[i].fn(srv->writers[i].arg, buf, 65536);
		evbuffer_add(out, buf, n);
	}
	free(buf);
	evhttp_add_header(evhttp_request_get_output_headers(req->ev),
	    "Content-Type", "text/plain; version=0.0.4");
	http_finish(req, 200, out);
	evbuffer_free(out);
}

static const struct http_route http_ops_routes[] = {
    {"GET", "/healthz", http_healthz, 0},
    {"GET", "/readyz", http_readyz, 0},
    {"GET", "/metrics", http_metrics, 0},
};

/* ---- dispatch ---------------------------------------------------------- */

/* Adds method (and HEAD after GET) to the Allow list in buf, once. */
static void
http_allow_add(char *buf, size_t size, const char *method)
{
	size_t used = strlen(buf);
	const char *p = buf;
	size_t mlen = strlen(method);

	while ((p = strstr(p, method)) != NULL) {
		if ((p == buf || p[-1] == ' ') && (p[mlen] == ',' || !p[mlen]))
			return;
		p += mlen;
	}
	snprintf(buf + used, size - used, "%s%s%s", used ? ", " : "", method,
	    strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

/* Replies 405 METHOD_NOT_ALLOWED with the path's methods in Allow. */
static void
http_reply_not_allowed(struct http_req *req, const char *allow)
{
	http_add_header(req, "Allow", allow);
	http_reply_error(req, 405, "METHOD_NOT_ALLOWED", NULL,
	    "不支持该请求方法");
}

static void
http_set_ids(struct http_req *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req->ev);
	const char *rid = evhttp_find_header(in, "X-Request-Id");
	const char *real_ip = evhttp_find_header(in, "X-Real-IP");
	struct evhttp_connection *con = evhttp_request_get_connection(req->ev);

	if (rid != NULL && http_request_id_ok(rid)) {
		snprintf(req->id, sizeof(req->id), "%s", rid);
	} else {
		unsigned char b[8];
		if (RAND_bytes(b, sizeof(b)) != 1)
			fatal("RAND_bytes failed");
		for (int i = 0; i < 8; i++)
			snprintf(req->id + 2 * i, 3, "%02x", b[i]);
	}
	/* X-Real-IP is set by our gateway; a direct caller is its own peer. */
	if (real_ip != NULL && strlen(real_ip) < sizeof(req->peer)) {
		snprintf(req->peer, sizeof(req->peer), "%s", real_ip);
	} else if (con != NULL) {
		char *addr = NULL;
		ev_uint16_t port;
		evhttp_connection_get_peer(con, &addr, &port);
		snprintf(req->peer, sizeof(req->peer), "%s", addr ? addr : "-");
	}
}

static void
http_dispatch(struct evhttp_request *ev, void *arg)
{
	struct http_server *srv = arg;
	struct http_req *req = xcalloc(1, sizeof(*req));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *raw_query = uri ? evhttp_uri_get_query(uri) : NULL;
	char allow[64] = "";

	req->ev = ev;
	req->srv = srv;
	req->start_us = now_mono_us();
	req->method = http_method_name(evhttp_request_get_command(ev));
	srv->inflight++;
	http_set_ids(req);
	if (raw_path == NULL || raw_path[0] != '/') {
		http_reply_error(req, 400, "BAD_PATH", NULL, "请求路径无效");
		return;
	}
	req->path = xstrdup(raw_path);
	if (raw_query != NULL)
		req->query = xstrdup(raw_query);

	for (size_t i = 0; i < ARRAY_LEN(http_ops_routes); i++) {
		if (strcmp(req->path, http_ops_routes[i].pattern) == 0) {
			if (strcmp(req->method, "GET") != 0 &&
			    strcmp(req->method, "HEAD") != 0) {
				http_reply_not_allowed(req, "GET, HEAD");
				return;
			}
			http_ops_routes[i].handler(req);
			return;
		}
	}
	/* HEAD is served by the GET route (without the body, http_finish). */
	const char *want =
	    strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = srv->routes[i];
		if (!http_route_match(r->pattern, req->path, req->params))
			continue;
		if (strcmp(r->method, want) != 0) {
			http_allow_add(allow, sizeof(allow), r->method);
			for (int k = 0; k < HTTP_MAX_PARAMS; k++) {
				free(req->params[k]);
				req->params[k] = NULL;
			}
			continue;
		}
		req->route = r;
		break;
	}
	if (req->route == NULL) {
		if (allow[0] != '\0')
			http_reply_not_allowed(req, allow);
		else
			http_reply_error(req, 404, "NOT_FOUND", NULL,
			    "请求的资源不存在");
		return;
	}
	char field[64];
	const char *bad = http_params_invalid(req, field, sizeof(field));
	if (bad != NULL) {
		http_reply_invalid_utf8(req, bad);
		return;
	}

	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	size_t len = evbuffer_get_length(in);
	size_t max = req->route->max_body & ~HTTP_BODY_STREAM;
	if (max == 0)
		max = HTTP_DEFAULT_MAX_BODY;
	if (len > max) {
		http_reply_error(req, 413, "BODY_TOO_LARGE", NULL,
		    "请求体过大");
		return;
	}
	req->body_len = len;
	if (req->route->max_body & HTTP_BODY_STREAM) {
		/* Moves libevent's chains, copies no byte. */
		req->body_buf = evbuffer_new();
		if (req->body_buf == NULL ||
		    evbuffer_add_buffer(req->body_buf, in) != 0)
			fatal("out of memory (evbuffer)");
		srv->streamed++;
		log_info(req->id, "msg=body_streamed bytes=%zu", len);
		req->route->handler(req);
		return;
	}
	req->body = xmalloc(len + 1);
	evbuffer_copyout(in, req->body, len);
	req->body[len] = '\0';
	req->route->handler(req);
}
