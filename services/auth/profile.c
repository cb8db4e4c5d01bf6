/* profile — certificate subject → lock fields, per vendor; see profile.h. */
#include "profile.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const profile_fields[] = {"kind", "holder",
    "enterprise_name", "uscc"};

/* Returns a new string for source ("ou", "cn:1", …), or NULL when absent.
 * Sets *bad when the source names no attribute. */
static char *
profile_source(const char *source, const char *sep, const char *c,
    const char *o, const char *ou, const char *cn, const char *org_id, int *bad)
{
	char attr[16];
	const char *colon = strchr(source, ':');
	size_t alen = colon ? (size_t)(colon - source) : strlen(source);
	const char *value;

	if (alen >= sizeof(attr)) {
		*bad = 1;
		return NULL;
	}
	memcpy(attr, source, alen);
	attr[alen] = '\0';
	if (!strcmp(attr, "c"))
		value = c;
	else if (!strcmp(attr, "o"))
		value = o;
	else if (!strcmp(attr, "ou"))
		value = ou;
	else if (!strcmp(attr, "cn"))
		value = cn;
	else if (!strcmp(attr, "org_id"))
		value = org_id;
	else {
		*bad = 1;
		return NULL;
	}
	if (value == NULL)
		return NULL;
	if (colon == NULL)
		return xstrdup(value);
	char *end;
	long n = strtol(colon + 1, &end, 10);
	if (*end != '\0' || n < 0 || sep == NULL || *sep == '\0') {
		*bad = 1;
		return NULL;
	}
	const char *p = value;
	for (long i = 0; i < n; i++) {
		p = strstr(p, sep);
		if (p == NULL)
			return NULL;
		p += strlen(sep);
	}
	const char *q = strstr(p, sep);
	size_t len = q ? (size_t)(q - p) : strlen(p);
	return len ? xstrndup(p, len) : NULL;
}

int
profile_check(json_t *profiles, char *err, size_t err_size)
{
	size_t i;
	json_t *p;

	if (!json_is_array(profiles)) {
		snprintf(err, err_size, "not a JSON array");
		return -1;
	}
	json_array_foreach(profiles, i, p)
	{
		const char *match =
		    json_string_value(json_object_get(p, "issuer_contains"));
		const char *sep =
		    json_string_value(json_object_get(p, "separator"));
		if (!json_is_object(p) || match == NULL || *match == '\0') {
			snprintf(err, err_size,
			    "profile %zu: issuer_contains required", i);
			return -1;
		}
		for (size_t f = 0; f < ARRAY_LEN(profile_fields); f++) {
			json_t *src = json_object_get(p, profile_fields[f]);
			int bad = 0;
			if (src == NULL)
				continue;
			if (!json_is_string(src)) {
				snprintf(err, err_size,
				    "profile %zu: %s must be a string", i,
				    profile_fields[f]);
				return -1;
			}
			free(profile_source(json_string_value(src), sep, "x",
			    "x", "x", "x", "x", &bad));
			if (bad) {
				snprintf(err, err_size,
				    "profile %zu: %s: bad source \"%s\"", i,
				    profile_fields[f], json_string_value(src));
				return -1;
			}
		}
	}
	return 0;
}

int
profile_apply(json_t *profiles, const char *issuer_dn, const char *c,
    const char *o, const char *ou, const char *cn, const char *org_id,
    struct lock_fields *out)
{
	size_t i;
	json_t *p, *chosen = NULL;
	int bad = 0;

	memset(out, 0, sizeof(*out));
	json_array_foreach(profiles, i, p)
	{
		const char *match =
		    json_string_value(json_object_get(p, "issuer_contains"));
		if (match != NULL && issuer_dn != NULL &&
		    strstr(issuer_dn, match) != NULL) {
			chosen = p;
			break;
		}
	}
	const char *sep = chosen
	    ? json_string_value(json_object_get(chosen, "separator"))
	    : NULL;
	const char *src[4] = {"ou", "cn", "o",
	    "org_id"}; /* the API.md default */
	for (size_t f = 0; chosen && f < ARRAY_LEN(profile_fields); f++) {
		const char *s = json_string_value(
		    json_object_get(chosen, profile_fields[f]));
		if (s != NULL)
			src[f] = s;
	}
	out->kind_text =
	    profile_source(src[0], sep, c, o, ou, cn, org_id, &bad);
	out->holder = profile_source(src[1], sep, c, o, ou, cn, org_id, &bad);
	out->enterprise_name =
	    profile_source(src[2], sep, c, o, ou, cn, org_id, &bad);
	out->uscc = profile_source(src[3], sep, c, o, ou, cn, org_id, &bad);
	if (chosen && json_string_value(json_object_get(chosen, "vendor")))
		out->vendor = xstrdup(
		    json_string_value(json_object_get(chosen, "vendor")));
	if (bad) {
		lock_fields_clear(out);
		return -1;
	}
	return 0;
}

void
lock_fields_clear(struct lock_fields *f)
{
	free(f->vendor);
	free(f->kind_text);
	free(f->holder);
	free(f->enterprise_name);
	free(f->uscc);
	memset(f, 0, sizeof(*f));
}
