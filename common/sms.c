/* sms — the local SMS provider: one line per message in <dir>/<phone>.log.
 * A local file append is a short syscall, acceptable on the loop; a remote
 * provider would go through an async HTTP client instead. */
#include "sms.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char sms_dir[1024] = "var/sms";

int
sms_provider_init(const char *spec)
{
	if (strncmp(spec, "local:", 6) != 0 || spec[6] == '\0')
		return -1;
	snprintf(sms_dir, sizeof(sms_dir), "%s", spec + 6);
	mkdir(sms_dir, 0700);
	return 0;
}

int
sms_provider_send(const char *phone, const char *text)
{
	char path[1200], line[1024];
	int fd, n;

	if (strlen(phone) != 11 || strspn(phone, "0123456789") != 11)
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
