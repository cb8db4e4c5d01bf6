/* fault — the one parser of CAPLAT_FAULT and CAPLAT_FAULT_ONCE, and the
 * crash at a fault point (see fault.h). */
#include "fault.h"

#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
fault_parse(const char *value, const char *const names[])
{
	if (value == NULL || *value == '\0')
		return 0;
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(value, names[i]) == 0)
			return i + 1;
	return 0;
}

void
fault_arm(struct fault *f, const char *const names[])
{
	const char *value = getenv("CAPLAT_FAULT");
	const char *once = getenv("CAPLAT_FAULT_ONCE");

	memset(f, 0, sizeof(*f));
	f->point = fault_parse(value, names);
	if (f->point == 0)
		return;
	f->name = names[f->point - 1];
	if (once != NULL && *once != '\0')
		f->once = xstrdup(once);
	log_warn(NULL, "msg=fault_armed fault=%s once=%s", f->name,
	    f->once ? f->once : "-");
}

void
fault_point(const struct fault *f, int point)
{
	if (f->point == 0 || f->point != point)
		return;
	if (f->once != NULL) {
		int fd = open(f->once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0644);

		if (fd < 0)
			return;
		close(fd);
	}
	log_warn(NULL, "msg=fault_injected fault=%s", f->name);
	_exit(137);
}

void
fault_clear(struct fault *f)
{
	free(f->once);
	memset(f, 0, sizeof(*f));
}
