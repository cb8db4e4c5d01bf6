/* cfg — environment-variable configuration with defaults and validation. */
#include "cfg.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
cfg_parse_one(const struct cfg_var *v, const char *text, char *err,
    size_t err_size)
{
	char *end;
	long n;

	switch (v->type) {
	case CFG_STR:
		*(const char **)v->out = text;
		return 0;
	case CFG_INT:
		errno = 0;
		n = strtol(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0') {
			snprintf(err, err_size, "%s: \"%s\" is not an integer",
			    v->name, text);
			return -1;
		}
		if (n < v->min || n > v->max) {
			snprintf(err, err_size, "%s: %ld is outside [%ld, %ld]",
			    v->name, n, v->min, v->max);
			return -1;
		}
		*(long *)v->out = n;
		return 0;
	case CFG_BOOL:
		if (!strcmp(text, "1") || !strcasecmp(text, "true") ||
		    !strcasecmp(text, "yes"))
			*(int *)v->out = 1;
		else if (!strcmp(text, "0") || !strcasecmp(text, "false") ||
		    !strcasecmp(text, "no"))
			*(int *)v->out = 0;
		else {
			snprintf(err, err_size, "%s: \"%s\" is not a boolean",
			    v->name, text);
			return -1;
		}
		return 0;
	}
	snprintf(err, err_size, "%s: unknown type", v->name);
	return -1;
}

int
cfg_load(const struct cfg_var *vars, size_t n, char *err, size_t err_size)
{
	for (size_t i = 0; i < n; i++) {
		const char *text = getenv(vars[i].name);

		if (text == NULL || *text == '\0')
			text = vars[i].def;
		if (text == NULL) {
			snprintf(err, err_size, "%s: required (%s)",
			    vars[i].name,
			    vars[i].help ? vars[i].help : "no default");
			return -1;
		}
		if (cfg_parse_one(&vars[i], text, err, err_size) != 0)
			return -1;
	}
	return 0;
}

void
cfg_load_or_die(const struct cfg_var *vars, size_t n)
{
	char err[512];

	if (cfg_load(vars, n, err, sizeof(err)) != 0)
		fatal("bad configuration: %s", err);
}
