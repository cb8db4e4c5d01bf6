/* util — the few things every file needs: allocation that aborts on
 * out-of-memory, fatal exits, monotonic and wall clocks, and UUIDs. */
#ifndef CAPLAT_UTIL_H
#define CAPLAT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Print "fatal: <message>" to stderr and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* malloc/calloc/realloc/strdup that never return NULL: out of memory is fatal. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a new string formatted like printf; caller frees with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic clock in microseconds, for durations. */
int64_t now_mono_us(void);
/* Wall clock in milliseconds since the epoch. */
int64_t now_wall_ms(void);
/* Formats a wall time (ms since epoch) as RFC 3339 UTC ("2026-11-26T09:00:00.000Z")
 * into out, which must hold 48 bytes. */
void time_rfc3339(int64_t wall_ms, char out[48]);

/* Writes a random version-4 UUID (36 chars + NUL) into out. */
void uuid_v4(char out[37]);
/* 1 when s is a UUID in canonical text form (8-4-4-4-12 hex digits). */
int uuid_valid(const char *s);

/* Writes s into out (at most out_size-1 bytes) with all but its first head
 * and last tail characters replaced by '*'; a value of head+tail+1
 * characters or fewer is all stars. For phones and ID numbers in logs
 * (log_mask_id) and in lists (access_mask). */
void mask_middle(const char *s, char *out, unsigned out_size, unsigned head,
    unsigned tail);

#endif
