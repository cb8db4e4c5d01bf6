/* clock — the wall clock with a test-only offset (clock.h). */
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>

static const char *clock_offset_file;

void
clock_init(const char *offset_file)
{
	clock_offset_file =
	    offset_file != NULL && offset_file[0] != '\0' ? offset_file : NULL;
}

time_t
clock_now(void)
{
	long long offset = 0;
	FILE *f;

	if (clock_offset_file != NULL &&
	    (f = fopen(clock_offset_file, "r")) != NULL) {
		if (fscanf(f, "%lld", &offset) != 1)
			offset = 0;
		fclose(f);
	}
	return time(NULL) + (time_t)offset;
}
