/* reminders — which reminder stages the configuration names, pure: the
 * expiry stages (days before notAfter) and the days after a paid renewal,
 * as the PostgreSQL arrays the reminder pass (sweep.c) hands to
 * deploy/sql/issuance/020_reminders.sql. */
#include "issuance.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAYS_MAX 16

char *
cert_days_literal(const char *spec, size_t min_count)
{
	long days[DAYS_MAX];
	size_t n = 0;
	const char *p = spec;
	char *out, *o;

	if (spec == NULL)
		return NULL;
	while (*p != '\0') {
		char *end;
		long v;

		while (*p == ' ')
			p++;
		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p || errno != 0 || v < -3650 || v > 3650 ||
		    n == DAYS_MAX)
			return NULL;
		for (size_t i = 0; i < n; i++)
			if (days[i] == v)
				return NULL;
		days[n++] = v;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return NULL;
	}
	if (n < min_count)
		return NULL;
	out = o = xmalloc(n * 7 + 3);
	*o++ = '{';
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%s%ld", i ? "," : "", days[i]);
	*o++ = '}';
	*o = '\0';
	return out;
}
