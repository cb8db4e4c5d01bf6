/* smtp — invoice e-mails through libcurl's SMTP client (Debian's
 * libcurl4-openssl-dev), driven by the service's libevent loop without
 * blocking it: the curl multi interface tells us which sockets it waits on
 * (CURLMOPT_SOCKETFUNCTION, one event per socket) and when it wants a
 * timeout (CURLMOPT_TIMERFUNCTION, one loop timer), and we hand every
 * readiness back with curl_multi_socket_action (the pattern of libcurl's
 * multi-event.c example). Names are resolved by curl's threaded resolver.
 *
 * One transfer per message to smtp://CAPLAT_SMTP_HOST:CAPLAT_SMTP_PORT/
 * with EHLO CAPLAT_SMTP_HELO. The message is curl_mime: multipart/mixed
 * with a UTF-8 text part and the PDF attachment, both base64-encoded by
 * curl; the subject RFC 2047 encoded; curl dot-stuffs the body.
 * CAPLAT_SMTP_TLS=starttls requires STARTTLS (curl refuses to go on in
 * clear), =tls speaks smtps:// from the first byte; either way the
 * server's certificate is verified against the system's roots or
 * CAPLAT_TLS_CA_FILE, its name against CAPLAT_SMTP_HOST. With
 * CAPLAT_SMTP_USER, curl authenticates (AUTH PLAIN or LOGIN, whichever
 * the server offers) with the password read once at start from
 * CAPLAT_SMTP_PASSWORD_FILE; AUTH in clear is refused at start unless the
 * relay is on loopback. CAPLAT_SMTP_TIMEOUT bounds the whole transfer.
 * The connection is not kept (CURLOPT_FORBID_REUSE): after an accepted
 * message curl sends QUIT and waits for its reply while closing, bounded
 * by the same timeout (CURLOPT_SERVER_RESPONSE_TIMEOUT); on an error it
 * closes without QUIT.
 *
 * The error text keeps the form the invoices show: "SMTP <step>: <the
 * server's reply>" for a refusal (the step is the last command curl sent,
 * read from its debug callback), else "SMTP: <curl's reason>". */
#include "payments.h"

#include "crypto.h"
#include "httpc.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct smtp_conn {
	CURL *easy;
	curl_mime *mime;
	struct curl_slist *rcpt, *headers;
	char step[16];     /* the last command sent, for the error */
	char refusal[300]; /* the first 4xx/5xx reply, "" if none */
	char errbuf[CURL_ERROR_SIZE];
	smtp_fn cb;
	void *arg;
};

static CURLM *multi;
static char *password; /* CAPLAT_SMTP_PASSWORD_FILE's first line */
static struct event *timer;

/* ---- the multi handle on the loop --------------------------------------- */

static void
conn_free(struct smtp_conn *c)
{
	curl_easy_cleanup(c->easy);
	curl_mime_free(c->mime);
	curl_slist_free_all(c->rcpt);
	curl_slist_free_all(c->headers);
	free(c);
}

/* Calls back every finished transfer. */
static void
check_done(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct smtp_conn *c = NULL;
		CURLcode rc = msg->data.result;
		char why[400];

		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
		curl_multi_remove_handle(multi, msg->easy_handle);
		if (rc == CURLE_OK) {
			c->cb(c->arg, NULL);
		} else {
			if (c->refusal[0] != '\0')
				snprintf(why, sizeof(why), "SMTP %s: %s",
				    c->step, c->refusal);
			else
				snprintf(why, sizeof(why), "SMTP: %s",
				    c->errbuf[0] != '\0'
				        ? c->errbuf
				        : curl_easy_strerror(rc));
			c->cb(c->arg, why);
		}
		conn_free(c);
	}
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	int running;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(multi, fd, action, &running);
	check_done();
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

/* CURLMOPT_SOCKETFUNCTION: one persistent event per socket curl uses. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct event *ev = socketp;

	if (ev != NULL) {
		event_free(ev);
		ev = NULL;
	}
	if (what != CURL_POLL_REMOVE) {
		short kind = EV_PERSIST |
		    ((what & CURL_POLL_IN) ? EV_READ : 0) |
		    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
		ev = event_new(pay.svc.base, s, kind, on_socket, NULL);
		event_add(ev, NULL);
	}
	curl_multi_assign(multi, s, ev);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: the one timer curl asks for (-1: none). */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0) {
		evtimer_del(timer);
	} else {
		struct timeval tv = {timeout_ms / 1000,
		    (timeout_ms % 1000) * 1000};
		evtimer_add(timer, &tv);
	}
	return 0;
}

static void
multi_open(void)
{
	if (multi != NULL)
		return;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	timer = evtimer_new(pay.svc.base, on_timer, NULL);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
}

/* ---- one message ---------------------------------------------------------- */

/* CURLOPT_DEBUGFUNCTION: notes the command sent last and the first reply
 * that refuses (4xx or 5xx), for the error the invoice shows. */
static int
debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_conn *c = arg;
	/* Only the command's name is kept: AUTH's line carries the
	 * credentials. */
	static const char *const cmds[] = {"EHLO", "HELO", "STARTTLS", "AUTH",
	    "MAIL FROM", "RCPT TO", "DATA", "QUIT"};

	if (c->refusal[0] != '\0')
		return 0; /* the step that was refused stays */
	if (type == CURLINFO_HEADER_OUT) {
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (size >= strlen(cmds[i]) &&
			    strncasecmp(data, cmds[i], strlen(cmds[i])) == 0)
				snprintf(c->step, sizeof(c->step), "%s",
				    cmds[i]);
	} else if (type == CURLINFO_DATA_OUT) {
		snprintf(c->step, sizeof(c->step), "message");
	} else if (type == CURLINFO_HEADER_IN && c->refusal[0] == '\0' &&
	    size >= 4 && (data[0] == '4' || data[0] == '5') && data[3] == ' ') {
		size_t n = size;
		while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
			n--;
		if (n >= sizeof(c->refusal))
			n = sizeof(c->refusal) - 1;
		memcpy(c->refusal, data, n);
		c->refusal[n] = '\0';
	}
	return 0;
}

static void
build_mime(struct smtp_conn *c, const struct smtp_mail *m)
{
	curl_mimepart *part;
	char date[64], id[37], *subject, *h;
	time_t now = time(NULL);
	struct tm tm;

	c->mime = curl_mime_init(c->easy);
	part = curl_mime_addpart(c->mime);
	curl_mime_data(part, m->text, CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/plain; charset=UTF-8");
	curl_mime_encoder(part, "base64");
	part = curl_mime_addpart(c->mime);
	curl_mime_data(part, m->attachment, m->attachment_len);
	curl_mime_type(part, "application/pdf");
	curl_mime_filename(part, m->attachment_name);
	curl_mime_encoder(part, "base64");

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	uuid_v4(id);
	subject = crypto_base64_encode(m->subject, strlen(m->subject));
	h = xasprintf("From: <%s>", m->from);
	c->headers = curl_slist_append(c->headers, h);
	free(h);
	h = xasprintf("To: <%s>", m->to);
	c->headers = curl_slist_append(c->headers, h);
	free(h);
	h = xasprintf("Subject: =?UTF-8?B?%s?=", subject);
	c->headers = curl_slist_append(c->headers, h);
	free(h);
	free(subject);
	h = xasprintf("Date: %s", date);
	c->headers = curl_slist_append(c->headers, h);
	free(h);
	h = xasprintf("Message-ID: <%s@%s>", id, pay.cfg.smtp_helo);
	c->headers = curl_slist_append(c->headers, h);
	free(h);
}

void
smtp_init(void)
{
	const struct pay_config *c = &pay.cfg;
	const char *tls = c->smtp_tls;
	char line[512];
	FILE *f;

	if (strcmp(tls, "none") != 0 && strcmp(tls, "starttls") != 0 &&
	    strcmp(tls, "tls") != 0)
		fatal("bad configuration: CAPLAT_SMTP_TLS: \"%s\" is not none, "
		      "starttls or tls",
		    tls);
	if (c->smtp_user[0] == '\0')
		return;
	if (strcmp(tls, "none") == 0 && c->smtp_host[0] != '\0' &&
	    !httpc_host_is_loopback(c->smtp_host))
		fatal("bad configuration: CAPLAT_SMTP_USER with "
		      "CAPLAT_SMTP_TLS=none would send the password in clear "
		      "to %s",
		    c->smtp_host);
	f = c->smtp_password_file[0] ? fopen(c->smtp_password_file, "r") : NULL;
	if (f == NULL || fgets(line, sizeof(line), f) == NULL)
		fatal("bad configuration: CAPLAT_SMTP_PASSWORD_FILE: cannot "
		      "read \"%s\" (CAPLAT_SMTP_USER is set)",
		    c->smtp_password_file);
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	password = xstrdup(line);
	explicit_bzero(line, sizeof(line));
}

void
smtp_send(const struct smtp_mail *m, smtp_fn cb, void *arg)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));
	const char *host = pay.cfg.smtp_host;
	int v6 = strchr(host, ':') != NULL;
	char *url, *from;

	multi_open();
	c->cb = cb;
	c->arg = arg;
	snprintf(c->step, sizeof(c->step), "greeting");
	c->easy = curl_easy_init();
	if (c->easy == NULL) {
		cb(arg, "SMTP: cannot start a transfer");
		free(c);
		return;
	}
	/* The URL's path is the EHLO name. */
	url = xasprintf("%s://%s%s%s:%ld/%s",
	    strcmp(pay.cfg.smtp_tls, "tls") == 0 ? "smtps" : "smtp",
	    v6 ? "[" : "", host, v6 ? "]" : "", pay.cfg.smtp_port,
	    pay.cfg.smtp_helo);
	from = xasprintf("<%s>", m->from);
	c->rcpt = curl_slist_append(NULL, m->to);
	build_mime(c, m);
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	if (strcmp(pay.cfg.smtp_tls, "starttls") == 0)
		curl_easy_setopt(c->easy, CURLOPT_USE_SSL,
		    (long)CURLUSESSL_ALL);
	if (getenv("CAPLAT_TLS_CA_FILE") != NULL)
		curl_easy_setopt(c->easy, CURLOPT_CAINFO,
		    getenv("CAPLAT_TLS_CA_FILE"));
	if (password != NULL) {
		curl_easy_setopt(c->easy, CURLOPT_USERNAME, pay.cfg.smtp_user);
		curl_easy_setopt(c->easy, CURLOPT_PASSWORD, password);
	}
	curl_easy_setopt(c->easy, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c->easy, CURLOPT_MAIL_RCPT, c->rcpt);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->easy, CURLOPT_MIMEPOST, c->mime);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, pay.cfg.smtp_timeout);
	curl_easy_setopt(c->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	    pay.cfg.smtp_timeout);
	curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(c->easy, CURLOPT_DEBUGDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	free(url);
	free(from);
	if (curl_multi_add_handle(multi, c->easy) != CURLM_OK) {
		cb(arg, "SMTP: cannot start a transfer");
		conn_free(c);
	}
}
