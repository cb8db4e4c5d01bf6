/* sms — the provider switch and the local provider: one line per message
 * in <dir>/<phone>.log. A local file append is a short syscall, acceptable
 * on the loop; the remote provider (sms_alibaba.c) goes through httpc. */
#include "sms.h"

#include "log.h"
#include "sms_int.h"
#include "util.h"
#include "work.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMS_LINE_MAX 4096

static char sms_dir[1024] = "var/sms";
static int sms_remote; /* 0: local, 1: aliyun */

int
sms_provider_init(const char *spec)
{
	if (strncmp(spec, "aliyun:", 7) == 0) {
		if (sms_alibaba_init(spec + 7) != 0)
			return -1;
		sms_remote = 1;
		return 0;
	}
	if (strncmp(spec, "local:", 6) != 0 || spec[6] == '\0')
		return -1;
	snprintf(sms_dir, sizeof(sms_dir), "%s", spec + 6);
	mkdir(sms_dir, 0700);
	sms_remote = 0;
	return 0;
}

void
sms_provider_start(struct event_base *base)
{
	if (sms_remote)
		sms_alibaba_start(base);
}

int
sms_provider_is_local(void)
{
	return !sms_remote;
}

static int
phone_ok(const char *phone)
{
	return phone != NULL && strlen(phone) == 11 &&
	    strspn(phone, "0123456789") == 11;
}

static int
local_write(const char *phone, const char *text)
{
	char path[1200], line[SMS_LINE_MAX];
	int fd, n;

	if (!phone_ok(phone))
		return -1;
	snprintf(path, sizeof(path), "%s/%s.log", sms_dir, phone);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error(NULL, "msg=sms_provider_failed error=\"%s\"",
		    strerror(errno));
		return -1;
	}
	n = snprintf(line, sizeof(line), "%s\n", text);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	if (write(fd, line, (size_t)n) != n) {
		log_error(NULL, "msg=sms_provider_short_write");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
sms_deliver(const struct sms_message *m, sms_done_fn fn, void *arg)
{
	struct sms_status st = {SMS_SENT, "OK", NULL};

	if (sms_remote) {
		sms_alibaba_deliver(m, fn, arg);
		return;
	}
	if (!phone_ok(m->phone)) {
		st.outcome = SMS_PERMANENT;
		st.code = "isv.MOBILE_NUMBER_ILLEGAL";
	} else if (local_write(m->phone, m->text) != 0) {
		st.outcome = SMS_RETRY;
		st.code = "local_write_failed";
	}
	fn(arg, &st);
}

/* A plain text handed over to the loop (remote provider). */
struct plain {
	char phone[16];
	char *text;
};

static void
plain_nothing(void *arg)
{
	(void)arg;
}

static void
plain_on_sent(void *arg, const struct sms_status *st)
{
	if (st->outcome != SMS_SENT)
		log_warn(NULL, "msg=sms_plain_failed code=%s", st->code);
}

static void
plain_on_loop(void *arg)
{
	struct plain *p = arg;
	json_t *params = json_pack("{s:s, s:s}", "title", "", "text", p->text);
	char *ptext = json_dumps(params, JSON_COMPACT);
	const struct sms_message m = {p->phone, "notice", ptext, p->text, NULL};

	sms_deliver(&m, plain_on_sent, NULL);
	free(ptext);
	json_decref(params);
	free(p->text);
	free(p);
}

int
sms_provider_send(const char *phone, const char *text)
{
	if (!sms_remote)
		return local_write(phone, text);
	if (!phone_ok(phone))
		return -1;
	struct plain *p = xcalloc(1, sizeof(*p));
	snprintf(p->phone, sizeof(p->phone), "%s", phone);
	p->text = xstrdup(text);
	work_submit(plain_nothing, plain_on_loop, p);
	return 0;
}
