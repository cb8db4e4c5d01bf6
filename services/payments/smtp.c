/* smtp — a small SMTP client on the service's libevent loop (never
 * blocking), for invoice e-mails: one connection per message to
 * CAPLAT_SMTP_HOST:CAPLAT_SMTP_PORT (names resolved by evdns), the plain
 * dialogue of RFC 5321: the 220 greeting, EHLO, MAIL FROM, RCPT TO, DATA
 * (354), the message dot-stuffed and ended by ".", QUIT. Each reply
 * (multi-line "250-…" included) is checked against the code the step
 * expects; anything else ends the dialogue with the server's reply as the
 * error. The message is MIME: multipart/mixed with a UTF-8 text part and
 * the PDF attachment, both base64 (lines of 76), the subject RFC 2047
 * encoded. No STARTTLS and no AUTH: the relay is local (a sidecar or the
 * site's relay on a trusted network). CAPLAT_SMTP_TIMEOUT bounds the
 * whole conversation's reads and writes. */
#include "payments.h"

#include "crypto.h"
#include "log.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum step {
	S_GREETING,
	S_EHLO,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_DOT,
	S_QUIT,
};

static const struct {
	const char *name;
	int expect; /* the reply code's first digit class: 2 or 3 */
} steps[] = {{"greeting", 220}, {"EHLO", 250}, {"MAIL FROM", 250},
    {"RCPT TO", 250}, {"DATA", 354}, {"message", 250}, {"QUIT", 221}};

struct smtp_conn {
	struct bufferevent *bev;
	enum step step;
	char *from, *to;
	struct evbuffer *message; /* dot-stuffed, ending "\r\n.\r\n" */
	char *error;              /* the first failure; NULL: delivered */
	int delivered;
	smtp_fn cb;
	void *arg;
};

static struct evdns_base *dns;

static void
conn_finish(struct smtp_conn *c, const char *error)
{
	if (error != NULL && c->error == NULL)
		c->error = xstrdup(error);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	/* A message accepted before a failed QUIT is delivered. */
	c->cb(c->arg, c->delivered ? NULL : c->error ? c->error : "no answer");
	evbuffer_free(c->message);
	free(c->from);
	free(c->to);
	free(c->error);
	free(c);
}

static void
conn_send(struct smtp_conn *c, enum step next, const char *fmt, const char *arg)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, fmt, arg);
	c->step = next;
}

/* One complete reply (its last line, "NNN text") for the current step. */
static int
conn_reply(struct smtp_conn *c, int code, const char *line)
{
	char why[300];

	if (code != steps[c->step].expect &&
	    !(c->step == S_RCPT && code == 251)) {
		snprintf(why, sizeof(why), "SMTP %s: %s", steps[c->step].name,
		    line);
		if (c->error == NULL)
			c->error = xstrdup(why);
		if (c->step == S_QUIT || c->step == S_GREETING)
			return -1;
		conn_send(c, S_QUIT, "QUIT\r\n%s", "");
		return 0;
	}
	switch (c->step) {
	case S_GREETING:
		conn_send(c, S_EHLO, "EHLO %s\r\n", pay.cfg.smtp_helo);
		break;
	case S_EHLO:
		conn_send(c, S_MAIL, "MAIL FROM:<%s>\r\n", c->from);
		break;
	case S_MAIL:
		conn_send(c, S_RCPT, "RCPT TO:<%s>\r\n", c->to);
		break;
	case S_RCPT:
		conn_send(c, S_DATA, "DATA\r\n%s", "");
		break;
	case S_DATA:
		bufferevent_write_buffer(c->bev, c->message);
		c->step = S_DOT;
		break;
	case S_DOT:
		c->delivered = 1;
		conn_send(c, S_QUIT, "QUIT\r\n%s", "");
		break;
	case S_QUIT:
		return -1; /* done */
	}
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		int bad = n < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' ||
		    (n > 3 && line[3] != ' ' && line[3] != '-');
		if (bad) {
			free(line);
			conn_finish(c, "SMTP: malformed reply");
			return;
		}
		if (n > 3 && line[3] == '-') { /* a continued reply */
			free(line);
			continue;
		}
		int code = atoi(line);
		int done = conn_reply(c, code, line);
		free(line);
		if (done) {
			conn_finish(c, NULL);
			return;
		}
	}
	if (evbuffer_get_length(in) > 4096)
		conn_finish(c, "SMTP: reply line too long");
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_conn *c = arg;
	char why[200];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "SMTP %s: timeout",
		    steps[c->step].name);
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "SMTP %s: connection closed",
		    steps[c->step].name);
	else
		snprintf(why, sizeof(why), "SMTP %s: connection failed",
		    steps[c->step].name);
	conn_finish(c, why);
}

/* base64 of data in lines of 76 characters, CRLF-ended. */
static void
add_base64(struct evbuffer *out, const void *data, size_t len)
{
	char *b64 = crypto_base64_encode(data, len);
	size_t n = strlen(b64);

	for (size_t i = 0; i < n; i += 76) {
		evbuffer_add(out, b64 + i, n - i < 76 ? n - i : 76);
		evbuffer_add(out, "\r\n", 2);
	}
	free(b64);
}

/* The message (headers and MIME body), dot-stuffed, with the final ".". */
static struct evbuffer *
build_message(const struct smtp_mail *m)
{
	struct evbuffer *msg = evbuffer_new();
	struct evbuffer *out = evbuffer_new();
	char date[64], boundary[64], id[37];
	time_t now = time(NULL);
	struct tm tm;
	char *subject = crypto_base64_encode(m->subject, strlen(m->subject));

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	uuid_v4(id);
	snprintf(boundary, sizeof(boundary), "=_caplat_%s", id);
	evbuffer_add_printf(msg,
	    "From: <%s>\r\nTo: <%s>\r\nSubject: =?UTF-8?B?%s?=\r\n"
	    "Date: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
	    "This is a MIME message.\r\n--%s\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n",
	    m->from, m->to, subject, date, id, pay.cfg.smtp_helo, boundary,
	    boundary);
	free(subject);
	add_base64(msg, m->text, strlen(m->text));
	evbuffer_add_printf(msg,
	    "--%s\r\nContent-Type: application/pdf; name=\"%s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
	    boundary, m->attachment_name, m->attachment_name);
	add_base64(msg, m->attachment, m->attachment_len);
	evbuffer_add_printf(msg, "--%s--\r\n", boundary);

	/* Dot-stuffing (RFC 5321 §4.5.2), then the end of the data. */
	size_t n;
	char *line;
	while ((line = evbuffer_readln(msg, &n, EVBUFFER_EOL_CRLF_STRICT)) !=
	    NULL) {
		if (line[0] == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, line, n);
		evbuffer_add(out, "\r\n", 2);
		free(line);
	}
	evbuffer_add(out, ".\r\n", 3);
	evbuffer_free(msg);
	return out;
}

void
smtp_send(const struct smtp_mail *m, smtp_fn cb, void *arg)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {pay.cfg.smtp_timeout, 0};

	c->cb = cb;
	c->arg = arg;
	c->from = xstrdup(m->from);
	c->to = xstrdup(m->to);
	c->message = build_message(m);
	if (dns == NULL) {
		dns = evdns_base_new(pay.svc.base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (dns == NULL)
			dns = evdns_base_new(pay.svc.base, 0);
	}
	c->bev = bufferevent_socket_new(pay.svc.base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		conn_finish(c, "SMTP: cannot create a socket");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect_hostname(c->bev, dns, AF_UNSPEC,
	        pay.cfg.smtp_host, (int)pay.cfg.smtp_port) != 0)
		conn_finish(c, "SMTP: cannot connect");
}
