/* log — key=value lines on stderr, one write(2) per line so concurrent
 * threads and worker processes never interleave inside a line. */
#include "log.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum log_level log_min_level = LOG_INFO;
static char log_service[32] = "caplat";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_init(const char *service, enum log_level min_level)
{
	snprintf(log_service, sizeof(log_service), "%s", service);
	log_min_level = min_level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < ARRAY_LEN(level_names); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_line(enum log_level level, const char *req, const char *fmt, ...)
{
	char buf[2048], ts[48];
	va_list ap;
	int n;

	time_rfc3339(now_wall_ms(), ts);
	n = snprintf(buf, sizeof(buf), "ts=%s lvl=%s svc=%s pid=%d req=%s ", ts,
	    level_names[level], log_service, (int)getpid(), req ? req : "-");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	/* Newlines inside values would split the line: flatten them. */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
	(void)w;
}

void
log_mask_id(const char *s, char *out, unsigned out_size)
{
	mask_middle(s, out, out_size, 3, 2);
}
