/* cfg — configuration from environment variables, declared as a table with
 * defaults and bounds, validated once at start (Kore's config_directives[]). */
#ifndef CAPLAT_CFG_H
#define CAPLAT_CFG_H

#include <stddef.h>

enum cfg_type {
	CFG_STR, /* out: const char ** (borrowed from the environment or def) */
	CFG_INT, /* out: long *, within [min, max] */
	CFG_BOOL, /* out: int *, from 0/1/true/false/yes/no */
};

struct cfg_var {
	const char *name; /* environment variable, e.g. "CAPLAT_HTTP_PORT" */
	enum cfg_type type;
	const char
	    *def; /* default as text; NULL means the variable is required */
	long min, max; /* CFG_INT bounds, inclusive */
	void *out;
	const char *help; /* one line for the error message and --help */
};

/* Reads every variable of the table into its out pointer. Returns 0 when all
 * are present (or defaulted) and valid; on the first bad or missing value
 * returns -1 and writes "NAME: reason" into err. */
int cfg_load(const struct cfg_var *vars, size_t n, char *err, size_t err_size);

/* cfg_load, and on error prints the reason and exits(1). */
void cfg_load_or_die(const struct cfg_var *vars, size_t n);

#endif
