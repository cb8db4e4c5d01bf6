/* httpc — the one outgoing HTTP(S) client (httpc.h). A call takes a kept-
 * alive connection to its host from the idle list or opens one (evhttp over
 * a bufferevent_openssl that verifies the peer's chain and name), sends,
 * and gives the connection back when the answer allows it. Connections are
 * never reconnected in place: a closed one is freed and a fresh one made. */
#include "httpc.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ANSWER (1024 * 1024)
#define IDLE_KEEP_US (30LL * 1000 * 1000) /* reuse a connection this long */
#define IDLE_PER_CLIENT 16

/* ---- pure parts ---------------------------------------------------------- */

int
httpc_host_is_ip(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

int
httpc_host_is_loopback(const char *host)
{
	unsigned char buf[16];

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, buf) == 1)
		return buf[0] == 127;
	return strcmp(host, "::1") == 0;
}

long
httpc_backoff_ms(int attempt)
{
	long ms = 200;

	if (attempt <= 1)
		return 0;
	for (int i = 2; i < attempt && ms < 3200; i++)
		ms *= 2;
	return ms;
}

enum httpc_url_result
httpc_url_parse(const char *url, struct httpc_url *out)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *path;
	int port;

	memset(out, 0, sizeof(*out));
	if (url == NULL || strpbrk(url, " \t\r\n") != NULL)
		return HTTPC_URL_MALFORMED;
	u = evhttp_uri_parse(url);
	if (u == NULL)
		return HTTPC_URL_MALFORMED;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	path = evhttp_uri_get_path(u);
	port = evhttp_uri_get_port(u);
	if (scheme == NULL || host == NULL || host[0] == '\0' ||
	    strlen(host) >= sizeof(out->host) ||
	    (path && strlen(path) >= sizeof(out->path)) ||
	    evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_query(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL || port == 0 || port > 65535 ||
	    (strcasecmp(scheme, "https") != 0 &&
	        strcasecmp(scheme, "http") != 0)) {
		evhttp_uri_free(u);
		return HTTPC_URL_MALFORMED;
	}
	out->tls = strcasecmp(scheme, "https") == 0;
	/* an IPv6 literal comes with its brackets: the name is inside */
	if (host[0] == '[' && host[strlen(host) - 1] == ']')
		snprintf(out->host, sizeof(out->host), "%.*s",
		    (int)strlen(host) - 2, host + 1);
	else
		snprintf(out->host, sizeof(out->host), "%s", host);
	out->port = port > 0 ? port : out->tls ? 443 : 80;
	snprintf(out->path, sizeof(out->path), "%s", path ? path : "");
	evhttp_uri_free(u);
	if (!out->tls && !httpc_host_is_loopback(out->host))
		return HTTPC_URL_PLAIN_HTTP;
	return HTTPC_URL_OK;
}

/* ---- the client ------------------------------------------------------------ */

struct hconn {
	struct httpc *hc;
	struct evhttp_connection *conn;
	int tls, port;
	char host[HTTPC_HOST_MAX];
	int idle, closed;
	long verify_err; /* X509_V_OK (0) unless the peer failed verification */
	int64_t idle_since;
	struct hconn *next; /* in hc->idle */
};

struct tlisten;

struct httpc {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ctx;
	struct hconn *idle;
	int busy, dying;
	struct httpc_url proxy; /* CAPLAT_EGRESS_PROXY; host "" when none */
	struct tlisten *tunnels;
	struct tunnel *open;   /* every tunnel, freed with the client */
	struct hcall *streams; /* calls with on_body in flight */
};

/* ---- the egress proxy ------------------------------------------------------
 * evhttp (libevent 2.1) connects its sockets itself, so the CONNECT step
 * cannot happen on its connection: evhttp connects instead to a loopback
 * listener of ours per target host, which opens the proxy connection, asks
 * for `CONNECT host:port`, and then pipes bytes both ways. TLS runs inside,
 * end to end, verified against the real host. */

struct tlisten {
	struct httpc *hc;
	char host[HTTPC_HOST_MAX];
	int port, local_port;
	struct evconnlistener *l;
	struct tlisten *next;
};

struct tunnel {
	struct tlisten *tl;
	struct bufferevent *client, *proxy;
	int open;
	struct tunnel *prev, *next; /* in hc->open */
};

static void
tunnel_free(struct tunnel *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->tl->hc->open = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	if (t->client != NULL)
		bufferevent_free(t->client);
	if (t->proxy != NULL)
		bufferevent_free(t->proxy);
	free(t);
}

static void
tunnel_pipe_read(struct bufferevent *from, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *to = from == t->client ? t->proxy : t->client;

	evbuffer_add_buffer(bufferevent_get_output(to),
	    bufferevent_get_input(from));
}

static void
tunnel_drained(struct bufferevent *bev, void *arg)
{
	tunnel_free(arg);
}

static void
tunnel_event(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *other = bev == t->client ? t->proxy : t->client;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (!t->open)
		log_warn(NULL,
		    "msg=httpc_no_answer host=%s port=%d error=\"egress proxy "
		    "%s:%d unreachable or closed\"",
		    t->tl->host, t->tl->port, t->tl->hc->proxy.host,
		    t->tl->hc->proxy.port);
	/* one side is done: let the other's pending bytes out, then end */
	if (t->open && evbuffer_get_length(bufferevent_get_output(other))) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(other, NULL, tunnel_drained, NULL, t);
		return;
	}
	tunnel_free(t);
}

static void
tunnel_proxy_answer(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char status[64] = "";

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > 8192)
			tunnel_event(bev, BEV_EVENT_ERROR, t);
		return;
	}
	evbuffer_copyout(in, status, sizeof(status) - 1);
	if (strncmp(status, "HTTP/1.", 7) != 0 ||
	    strncmp(status + 8, " 200", 4) != 0) {
		char *sp = strchr(status, '\r');
		if (sp != NULL)
			*sp = '\0';
		log_warn(NULL,
		    "msg=httpc_no_answer host=%s port=%d error=\"egress proxy "
		    "refused CONNECT: %s\"",
		    t->tl->host, t->tl->port, status);
		tunnel_free(t);
		return;
	}
	evbuffer_drain(in, end.pos + 4);
	t->open = 1;
	bufferevent_setcb(t->proxy, tunnel_pipe_read, NULL, tunnel_event, t);
	bufferevent_setcb(t->client, tunnel_pipe_read, NULL, tunnel_event, t);
	bufferevent_enable(t->client, EV_READ | EV_WRITE);
	if (evbuffer_get_length(in) > 0)
		tunnel_pipe_read(t->proxy, t);
}

static void
tunnel_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct tlisten *tl = arg;
	struct httpc *hc = tl->hc;
	struct tunnel *t = xcalloc(1, sizeof(*t));
	char target[HTTPC_HOST_MAX + 16];

	t->tl = tl;
	t->next = hc->open;
	if (hc->open != NULL)
		hc->open->prev = t;
	hc->open = t;
	t->client = bufferevent_socket_new(hc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	t->proxy = bufferevent_socket_new(hc->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (t->client == NULL || t->proxy == NULL) {
		if (t->client == NULL)
			evutil_closesocket(fd);
		tunnel_free(t);
		return;
	}
	/* the client waits in the kernel until the tunnel stands */
	bufferevent_disable(t->client, EV_READ);
	bufferevent_setcb(t->client, NULL, NULL, tunnel_event, t);
	bufferevent_setcb(t->proxy, tunnel_proxy_answer, NULL, tunnel_event, t);
	bufferevent_enable(t->proxy, EV_READ | EV_WRITE);
	snprintf(target, sizeof(target),
	    strchr(tl->host, ':') ? "[%s]:%d" : "%s:%d", tl->host, tl->port);
	evbuffer_add_printf(bufferevent_get_output(t->proxy),
	    "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
	if (bufferevent_socket_connect_hostname(t->proxy, hc->dns, AF_UNSPEC,
	        hc->proxy.host, hc->proxy.port) != 0)
		tunnel_event(t->proxy, BEV_EVENT_ERROR, t);
}

/* The loopback port tunnelling to host:port through the proxy; 0: none. */
static int
tunnel_port(struct httpc *hc, const struct httpc_url *to)
{
	struct tlisten *tl;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	for (tl = hc->tunnels; tl != NULL; tl = tl->next)
		if (tl->port == to->port && strcasecmp(tl->host, to->host) == 0)
			return tl->local_port;
	tl = xcalloc(1, sizeof(*tl));
	tl->hc = hc;
	snprintf(tl->host, sizeof(tl->host), "%s", to->host);
	tl->port = to->port;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tl->l = evconnlistener_new_bind(hc->base, tunnel_accept, tl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (tl->l == NULL ||
	    getsockname(evconnlistener_get_fd(tl->l), (struct sockaddr *)&sin,
	        &len) != 0) {
		if (tl->l != NULL)
			evconnlistener_free(tl->l);
		free(tl);
		return 0;
	}
	tl->local_port = ntohs(sin.sin_port);
	tl->next = hc->tunnels;
	hc->tunnels = tl;
	return tl->local_port;
}

struct hcall {
	struct httpc *hc;
	struct httpc_url to;
	enum evhttp_cmd_type cmd;
	char *path, **headers, *body;
	size_t body_len;
	long timeout_ms;
	int idempotent, attempt;
	httpc_fn fn;
	void *arg;
	struct hconn *hconn;
	int req_err; /* enum evhttp_request_error + 1, 0: none */
	char error[256];
	/* a streamed answer (on_body): held, dropping; in hc->streams */
	httpc_body_fn on_body;
	int held, dropping;
	struct hcall *snext;
};

static int ssl_conn_index = -1;

static int
verify_cb(int ok, X509_STORE_CTX *x)
{
	if (!ok) {
		SSL *ssl = X509_STORE_CTX_get_ex_data(x,
		    SSL_get_ex_data_X509_STORE_CTX_idx());
		struct hconn *h =
		    ssl ? SSL_get_ex_data(ssl, ssl_conn_index) : NULL;
		if (h != NULL && h->verify_err == 0)
			h->verify_err = X509_STORE_CTX_get_error(x);
	}
	return ok;
}

struct httpc *
httpc_new(struct event_base *base)
{
	struct httpc *hc = xcalloc(1, sizeof(*hc));
	const char *ca = getenv("CAPLAT_TLS_CA_FILE");
	const char *proxy = getenv("CAPLAT_EGRESS_PROXY");

	hc->base = base;
	hc->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (hc->dns == NULL)
		hc->dns = evdns_base_new(base, 0);
	if (ssl_conn_index < 0)
		ssl_conn_index =
		    SSL_get_ex_new_index(0, "caplat httpc", NULL, NULL, NULL);
	hc->ctx = SSL_CTX_new(TLS_client_method());
	if (hc->ctx == NULL)
		fatal("httpc: SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(hc->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(hc->ctx, SSL_VERIFY_PEER, verify_cb);
	if (SSL_CTX_set_default_verify_paths(hc->ctx) != 1)
		log_warn(NULL, "msg=tls_no_system_roots");
	if (ca != NULL && ca[0] != '\0' &&
	    SSL_CTX_load_verify_locations(hc->ctx, ca, NULL) != 1)
		fatal("bad configuration: CAPLAT_TLS_CA_FILE: cannot load PEM "
		      "certificates from %s",
		    ca);
	if (proxy != NULL && proxy[0] != '\0') {
		enum httpc_url_result r = httpc_url_parse(proxy, &hc->proxy);
		/* the proxy itself is spoken to in plain http: only CONNECT */
		if (r == HTTPC_URL_MALFORMED || hc->proxy.tls ||
		    (hc->proxy.path[0] && strcmp(hc->proxy.path, "/") != 0))
			fatal("bad configuration: CAPLAT_EGRESS_PROXY: \"%s\" "
			      "(http://host:port)",
			    proxy);
	}
	return hc;
}

static void
conn_free_now(evutil_socket_t fd, short what, void *arg)
{
	evhttp_connection_free(arg);
}

/* Frees h's connection once the loop is out of its callbacks. */
static void
hconn_discard(struct hconn *h)
{
	struct timeval zero = {0, 0};

	evhttp_connection_set_closecb(h->conn, NULL, NULL);
	event_base_once(h->hc->base, -1, EV_TIMEOUT, conn_free_now, h->conn,
	    &zero);
	free(h);
}

static void
idle_unlink(struct hconn *h)
{
	struct hconn **pp = &h->hc->idle;

	while (*pp != NULL && *pp != h)
		pp = &(*pp)->next;
	if (*pp == h)
		*pp = h->next;
	h->next = NULL;
	h->idle = 0;
}

static void
on_conn_close(struct evhttp_connection *conn, void *arg)
{
	struct hconn *h = arg;

	h->closed = 1;
	if (h->idle) {
		idle_unlink(h);
		hconn_discard(h);
	}
}

static void
httpc_really_free(struct httpc *hc)
{
	while (hc->idle != NULL) {
		struct hconn *h = hc->idle;
		idle_unlink(h);
		evhttp_connection_set_closecb(h->conn, NULL, NULL);
		evhttp_connection_free(h->conn);
		free(h);
	}
	while (hc->open != NULL)
		tunnel_free(hc->open);
	while (hc->tunnels != NULL) {
		struct tlisten *tl = hc->tunnels;
		hc->tunnels = tl->next;
		evconnlistener_free(tl->l);
		free(tl);
	}
	if (hc->dns != NULL)
		evdns_base_free(hc->dns, 0);
	SSL_CTX_free(hc->ctx);
	free(hc);
}

void
httpc_free(struct httpc *hc)
{
	if (hc == NULL)
		return;
	hc->dying = 1;
	if (hc->busy == 0)
		httpc_really_free(hc);
}

static struct hconn *
hconn_take_idle(struct httpc *hc, const struct httpc_url *to)
{
	struct hconn *h = hc->idle, *next;
	int64_t now = now_mono_us();

	for (; h != NULL; h = next) {
		next = h->next;
		if (now - h->idle_since > IDLE_KEEP_US || h->closed) {
			idle_unlink(h);
			hconn_discard(h);
			continue;
		}
		if (h->tls == to->tls && h->port == to->port &&
		    strcasecmp(h->host, to->host) == 0) {
			idle_unlink(h);
			return h;
		}
	}
	return NULL;
}

static struct hconn *
hconn_new(struct httpc *hc, const struct httpc_url *to)
{
	struct hconn *h = xcalloc(1, sizeof(*h));
	struct bufferevent *bev = NULL;

	h->hc = hc;
	h->tls = to->tls;
	h->port = to->port;
	snprintf(h->host, sizeof(h->host), "%s", to->host);
	if (to->tls) {
		SSL *ssl = SSL_new(hc->ctx);
		X509_VERIFY_PARAM *vp;
		int ok;

		if (ssl == NULL) {
			free(h);
			return NULL;
		}
		SSL_set_ex_data(ssl, ssl_conn_index, h);
		vp = SSL_get0_param(ssl);
		if (httpc_host_is_ip(to->host)) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, to->host) == 1;
		} else {
			X509_VERIFY_PARAM_set_hostflags(vp,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			/* SSL_set_tlsext_host_name is a macro that casts its
			 * argument to void *: give it a copy, not const. */
			char sni[HTTPC_HOST_MAX];

			snprintf(sni, sizeof(sni), "%s", to->host);
			ok = SSL_set1_host(ssl, to->host) == 1 &&
			    SSL_set_tlsext_host_name(ssl, sni) == 1;
		}
		bev = ok ? bufferevent_openssl_socket_new(hc->base, -1, ssl,
		               BUFFEREVENT_SSL_CONNECTING,
		               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
		         : NULL;
		if (bev == NULL) {
			SSL_free(ssl);
			free(h);
			return NULL;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	}
	/* https goes through the egress proxy when there is one; http is
	 * loopback only and never does */
	if (to->tls && hc->proxy.host[0] != '\0') {
		int local = tunnel_port(hc, to);
		h->conn = local
		    ? evhttp_connection_base_bufferevent_new(hc->base, NULL,
		          bev, "127.0.0.1", (unsigned short)local)
		    : NULL;
	} else {
		h->conn = evhttp_connection_base_bufferevent_new(hc->base,
		    hc->dns, bev, to->host, (unsigned short)to->port);
	}
	if (h->conn == NULL) {
		if (bev != NULL)
			bufferevent_free(bev);
		free(h);
		return NULL;
	}
	evhttp_connection_set_retries(h->conn, 0);
	evhttp_connection_set_max_body_size(h->conn, MAX_ANSWER);
	evhttp_connection_set_closecb(h->conn, on_conn_close, h);
	return h;
}

static void
hcall_free(struct hcall *c)
{
	struct httpc *hc = c->hc;

	for (struct hcall **pp = &hc->streams; *pp != NULL; pp = &(*pp)->snext)
		if (*pp == c) {
			*pp = c->snext;
			break;
		}

	for (size_t i = 0; c->headers && c->headers[i]; i++)
		free(c->headers[i]);
	free(c->headers);
	free(c->path);
	free(c->body);
	free(c);
	if (--hc->busy == 0 && hc->dying)
		httpc_really_free(hc);
}

static void
hcall_fail(struct hcall *c)
{
	struct httpc_answer a = {.status = 0, .error = c->error};

	c->fn(c->arg, &a);
	hcall_free(c);
}

static void
hcall_fail_later_cb(evutil_socket_t fd, short what, void *arg)
{
	hcall_fail(arg);
}

static void hcall_try(struct hcall *c);

static void
hcall_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	hcall_try(arg);
}

/* Why a try got no answer, into c->error; 1 when trying again may help. */
static int
no_answer_reason(struct hcall *c, struct hconn *h)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(h->conn);
	unsigned long e =
	    h->tls && bev ? bufferevent_get_openssl_error(bev) : 0;

	if (h->verify_err != 0) {
		snprintf(c->error, sizeof(c->error), "tls: %s",
		    X509_verify_cert_error_string(h->verify_err));
		return 0;
	}
	if (e != 0) {
		const char *r = ERR_reason_error_string(e);
		snprintf(c->error, sizeof(c->error), "tls: %s",
		    r ? r : "handshake failed");
		return 0;
	}
	switch (c->req_err - 1) {
	case EVREQ_HTTP_TIMEOUT:
		snprintf(c->error, sizeof(c->error), "timeout");
		return 0;
	case EVREQ_HTTP_DATA_TOO_LONG:
		snprintf(c->error, sizeof(c->error), "answer too large");
		return 0;
	case EVREQ_HTTP_INVALID_HEADER:
		snprintf(c->error, sizeof(c->error), "malformed answer");
		return 0;
	default:
		snprintf(c->error, sizeof(c->error),
		    "connection failed or closed");
		return 1;
	}
}

static void
on_req_error(enum evhttp_request_error err, void *arg)
{
	struct hcall *c = arg;

	c->req_err = (int)err + 1;
}

static void
on_req_done(struct evhttp_request *r, void *arg)
{
	struct hcall *c = arg;
	struct hconn *h = c->hconn;
	int code = r ? evhttp_request_get_response_code(r) : 0;

	c->hconn = NULL;
	if (code == 0) {
		int again = no_answer_reason(c, h);
		hconn_discard(h);
		log_warn(NULL,
		    "msg=httpc_no_answer host=%s port=%d try=%d error=\"%s\"",
		    c->to.host, c->to.port, c->attempt, c->error);
		if (again && c->idempotent &&
		    c->attempt < HTTPC_IDEMPOTENT_TRIES) {
			long ms = httpc_backoff_ms(c->attempt + 1);
			struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
			c->req_err = 0;
			event_base_once(c->hc->base, -1, EV_TIMEOUT,
			    hcall_retry_cb, c, &tv);
			return;
		}
		hcall_fail(c);
		return;
	}

	struct evbuffer *in = evhttp_request_get_input_buffer(r);
	struct evkeyvalq *hdrs = evhttp_request_get_input_headers(r);
	const char *cn = evhttp_find_header(hdrs, "Connection");
	size_t n = c->on_body ? 0 : evbuffer_get_length(in);
	char *body = xmalloc(n + 1);
	struct httpc_answer a = {.status = code,
	    .body = body,
	    .body_len = n,
	    .headers = hdrs};

	evbuffer_copyout(in, body, n);
	body[n] = '\0';
	if (h->closed || (cn && strcasecmp(cn, "close") == 0) || h->hc->dying ||
	    c->on_body) {
		hconn_discard(h);
	} else {
		int count = 0;
		for (struct hconn *i = h->hc->idle; i; i = i->next)
			count++;
		if (count >= IDLE_PER_CLIENT) {
			hconn_discard(h);
		} else {
			h->idle = 1;
			h->idle_since = now_mono_us();
			h->next = h->hc->idle;
			h->hc->idle = h;
		}
	}
	c->fn(c->arg, &a);
	free(body);
	hcall_free(c);
}

/* A piece of a streamed answer (on_body), evhttp's chunk callback. */
static void
on_req_chunk(struct evhttp_request *r, void *arg)
{
	struct hcall *c = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(r);
	int code = evhttp_request_get_response_code(r);
	size_t n;

	while (!c->dropping && (n = evbuffer_get_contiguous_space(in)) > 0) {
		const char *data =
		    (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		int rc = c->on_body(c->arg, code, data, n);
		evbuffer_drain(in, n);
		if (rc == HTTPC_BODY_DROP) {
			c->dropping = 1;
		} else if (rc == HTTPC_BODY_HOLD && !c->held &&
		    c->hconn != NULL) {
			c->held = 1;
			bufferevent_disable(evhttp_connection_get_bufferevent(
			                        c->hconn->conn),
			    EV_READ);
		}
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

void
httpc_resume(struct httpc *hc, void *arg)
{
	for (struct hcall *c = hc->streams; c != NULL; c = c->snext)
		if (c->arg == arg && c->held) {
			c->held = 0;
			if (c->hconn != NULL)
				bufferevent_enable(
				    evhttp_connection_get_bufferevent(
				        c->hconn->conn),
				    EV_READ);
		}
}

static void
hcall_try(struct hcall *c)
{
	struct httpc *hc = c->hc;
	struct hconn *h;
	struct evhttp_request *r;
	struct evkeyvalq *out;
	struct timeval tv = {c->timeout_ms / 1000,
	    (c->timeout_ms % 1000) * 1000};
	struct timeval zero = {0, 0};
	char host[HTTPC_HOST_MAX + 16];

	c->attempt++;
	h = hconn_take_idle(hc, &c->to);
	if (h == NULL)
		h = hconn_new(hc, &c->to);
	if (h == NULL) {
		snprintf(c->error, sizeof(c->error),
		    "cannot open a connection");
		event_base_once(hc->base, -1, EV_TIMEOUT, hcall_fail_later_cb,
		    c, &zero);
		return;
	}
	evhttp_connection_set_timeout_tv(h->conn, &tv);
	/* a streamed answer has no size limit (negative: none) */
	evhttp_connection_set_max_body_size(h->conn,
	    c->on_body ? -1 : MAX_ANSWER);
	r = evhttp_request_new(on_req_done, c);
	evhttp_request_set_error_cb(r, on_req_error);
	if (c->on_body)
		evhttp_request_set_chunked_cb(r, on_req_chunk);
	out = evhttp_request_get_output_headers(r);
	if (strchr(c->to.host, ':') != NULL)
		snprintf(host, sizeof(host), "[%s]", c->to.host);
	else
		snprintf(host, sizeof(host), "%s", c->to.host);
	if (c->to.port != (c->to.tls ? 443 : 80))
		snprintf(host + strlen(host), sizeof(host) - strlen(host),
		    ":%d", c->to.port);
	evhttp_add_header(out, "Host", host);
	for (size_t i = 0; c->headers && c->headers[i] && c->headers[i + 1];
	     i += 2)
		evhttp_add_header(out, c->headers[i], c->headers[i + 1]);
	if (c->body != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(r), c->body,
		    c->body_len);
	c->hconn = h;
	if (evhttp_make_request(h->conn, r, c->cmd, c->path) != 0) {
		/* libevent 2.1 has freed r, not the connection */
		c->hconn = NULL;
		hconn_discard(h);
		snprintf(c->error, sizeof(c->error), "request not sent");
		event_base_once(hc->base, -1, EV_TIMEOUT, hcall_fail_later_cb,
		    c, &zero);
	}
}

void
httpc_send(struct httpc *hc, const struct httpc_call *call, httpc_fn fn,
    void *arg)
{
	struct hcall *c = xcalloc(1, sizeof(*c));
	size_t n = 0;

	c->hc = hc;
	c->to = *call->to;
	c->cmd = strcmp(call->method, "POST") == 0 ? EVHTTP_REQ_POST
	    : strcmp(call->method, "PUT") == 0     ? EVHTTP_REQ_PUT
	    : strcmp(call->method, "DELETE") == 0  ? EVHTTP_REQ_DELETE
	                                           : EVHTTP_REQ_GET;
	c->path = xstrdup(call->path && call->path[0] ? call->path : "/");
	while (call->headers && call->headers[n])
		n++;
	c->headers = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c->headers[i] = xstrdup(call->headers[i]);
	if (call->body != NULL) {
		c->body = xmalloc(call->body_len + 1);
		memcpy(c->body, call->body, call->body_len);
		c->body[call->body_len] = '\0';
		c->body_len = call->body_len;
	}
	c->timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : 10000;
	c->idempotent = call->idempotent && call->on_body == NULL;
	c->on_body = call->on_body;
	if (c->on_body != NULL) {
		c->snext = hc->streams;
		hc->streams = c;
	}
	c->fn = fn;
	c->arg = arg;
	hc->busy++;
	hcall_try(c);
}
