/* lockcert — a lock certificate's subject → lock fields, per vendor; see
 * lockcert.h. */
#include "lockcert.h"

#include "crypto.h"
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

/* ---- the process's profiles and kind map (lockcert_init) ---------------- */

#define MAX_KIND_MAP 32

/* OU text → lock kind; the defaults are the profile of API.md plus the
 * Chinese names vendors print; CAPLAT_LOCK_KIND_MAP adds more. Written
 * once by lockcert_init, then only read. */
static struct {
	char *ou;
	const char *kind;
} kind_map[MAX_KIND_MAP];
static size_t kind_map_len;

/* Vendor subject layouts from CAPLAT_VENDOR_PROFILES. */
static json_t *vendor_profiles;

const char *const lockcert_kinds[] = {"master", "project_lead", "agent",
    "cost_engineer", "personal", NULL};

int
lockcert_kind_valid(const char *code)
{
	for (const char *const *k = lockcert_kinds; code != NULL && *k; k++)
		if (strcmp(*k, code) == 0)
			return 1;
	return 0;
}

const char *
lockcert_kind(const char *kind_text)
{
	if (kind_text == NULL)
		return NULL;
	for (size_t i = 0; i < kind_map_len; i++)
		if (strcmp(kind_map[i].ou, kind_text) == 0)
			return kind_map[i].kind;
	return NULL;
}

static void
kind_map_add(const char *ou, size_t ou_len, const char *kind, size_t kind_len)
{
	for (const char *const *k = lockcert_kinds; *k; k++) {
		if (strlen(*k) == kind_len &&
		    strncmp(*k, kind, kind_len) == 0) {
			if (kind_map_len == MAX_KIND_MAP)
				fatal("CAPLAT_LOCK_KIND_MAP: too many entries");
			kind_map[kind_map_len].ou = xstrndup(ou, ou_len);
			kind_map[kind_map_len].kind = *k;
			kind_map_len++;
			return;
		}
	}
	fatal(
	    "bad configuration: CAPLAT_LOCK_KIND_MAP: unknown lock kind \"%.*s\"",
	    (int)kind_len, kind);
}

/* Parses "OU=kind,OU=kind" (the OU text may hold any UTF-8 but ',' '='). */
static void
kind_map_parse(const char *spec)
{
	const char *p = spec;

	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p || eq + 1 == end)
			fatal("bad configuration: CAPLAT_LOCK_KIND_MAP: \"%s\"",
			    spec);
		kind_map_add(p, (size_t)(eq - p), eq + 1,
		    (size_t)(end - eq - 1));
		p = comma ? comma + 1 : end;
	}
}

void
lockcert_init(void)
{
	const char *extra = getenv("CAPLAT_LOCK_KIND_MAP");
	const char *profiles = getenv("CAPLAT_VENDOR_PROFILES");

	if (kind_map_len > 0)
		return; /* once per process */
	for (const char *const *k = lockcert_kinds; *k; k++)
		kind_map_add(*k, strlen(*k), *k, strlen(*k));
	kind_map_parse(
	    "单位(机构)主锁=master,单位主锁=master,项目负责人锁=project_lead,"
	    "授权委托人锁=agent,造价师锁=cost_engineer,个人锁=personal");
	if (extra != NULL && *extra)
		kind_map_parse(extra);
	if (profiles != NULL && *profiles) {
		char err[256];
		json_error_t jerr;
		vendor_profiles = json_load_file(profiles, 0, &jerr);
		if (vendor_profiles == NULL)
			fatal(
			    "bad configuration: CAPLAT_VENDOR_PROFILES: %s: %s",
			    profiles, jerr.text);
		if (profile_check(vendor_profiles, err, sizeof(err)) != 0)
			fatal("bad configuration: CAPLAT_VENDOR_PROFILES: %s",
			    err);
	} else {
		vendor_profiles = json_array();
	}
}

int
lockcert_read(const struct crypto_cert *cert, struct lock_fields *out,
    const char **kind)
{
	const struct crypto_subject *s = &cert->subject;

	*kind = NULL;
	if (profile_apply(vendor_profiles, cert->issuer_dn, s->c, s->o, s->ou,
	        s->cn, s->org_id, out) != 0 ||
	    (*kind = lockcert_kind(out->kind_text)) == NULL ||
	    out->holder == NULL) {
		lock_fields_clear(out);
		*kind = NULL;
		return -1;
	}
	return 0;
}
