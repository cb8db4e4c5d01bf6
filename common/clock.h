/* clock — the wall clock of the timers tests move (the reminder passes).
 * clock_now() is time(NULL), plus, in a test run only, the offset in
 * seconds the file named at clock_init() holds (read at each call, so a
 * test moves the clock of a running service by writing the file). */
#ifndef CAPLAT_CLOCK_H
#define CAPLAT_CLOCK_H

#include <time.h>

/* Sets the offset file (CAPLAT_TEST_CLOCK_FILE): NULL or "" (production)
 * leaves the real clock. The string is borrowed for the process's life. */
void clock_init(const char *offset_file);

/* Now in Unix seconds: the real time plus the test offset (0 when the file
 * is unset, missing or not an integer). */
time_t clock_now(void);

#endif
