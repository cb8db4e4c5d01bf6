/* lockcert — how a lock certificate's subject names the lock: kind, holder,
 * enterprise and USCC. The default is API.md's profile (OU = kind,
 * CN = holder, O = enterprise, organizationIdentifier = USCC). Vendors with
 * other layouts (such as CFCA's "CN=051@张三@91350100M000100Y43@1") get a
 * profile in configuration (CAPLAT_VENDOR_PROFILES, a JSON file), matched
 * by a substring of the issuer DN:
 *   [{"vendor": "CFCA", "issuer_contains": "CFCA", "separator": "@",
 *     "kind": "ou", "holder": "cn:1", "enterprise_name": "o", "uscc": "cn:2"}]
 * A field source is "c", "o", "ou", "cn", "org_id", or "<attr>:<n>" for the
 * n-th (0-based) part of that attribute split by the separator. The kind
 * is written as vendors print it (OU "单位主锁", "master", …) and mapped
 * to a lock kind by a table of defaults plus CAPLAT_LOCK_KIND_MAP
 * ("OU text=kind,…"). The one reading of a lock certificate: auth's CA
 * login and issuance's import both use it. */
#ifndef CAPLAT_LOCKCERT_H
#define CAPLAT_LOCKCERT_H

#include <jansson.h>

struct crypto_cert;

struct lock_fields {
	char *vendor;    /* profile name, or NULL for the default */
	char *kind_text; /* as written in the certificate (mapped later) */
	char *holder;
	char *enterprise_name; /* NULL for a personal lock */
	char *uscc;            /* NULL when absent */
};

/* Checks a profiles array; returns 0, or -1 with the reason in err. */
int profile_check(json_t *profiles, char *err, size_t err_size);
/* Fills out from the certificate's subject with the first profile whose
 * issuer_contains is in issuer_dn, else the default. Returns 0; -1 when a
 * named part does not exist. Strings are new; free with lock_fields_clear. */
int profile_apply(json_t *profiles, const char *issuer_dn, const char *c,
    const char *o, const char *ou, const char *cn, const char *org_id,
    struct lock_fields *out);
void lock_fields_clear(struct lock_fields *f);

/* Loads the process's profiles (CAPLAT_VENDOR_PROFILES, a JSON file) and
 * kind map (the defaults, then CAPLAT_LOCK_KIND_MAP); a bad value is fatal.
 * Call once at start, before threads use lockcert_read. */
void lockcert_init(void);

/* The lock kinds, NULL-terminated: "master", "project_lead", "agent",
 * "cost_engineer", "personal" — the one list every service checks a kind
 * against. */
extern const char *const lockcert_kinds[];

/* Whether code is one of lockcert_kinds (NULL is not). */
int lockcert_kind_valid(const char *code);

/* The lock kind (one of lockcert_kinds) that OU text names, or NULL. */
const char *lockcert_kind(const char *kind_text);

/* Reads cert's subject with the loaded profiles: fills out (as
 * profile_apply) and *kind (lockcert_kind of its kind text). Returns 0 when
 * the kind and the holder are known, else -1 (out cleared). Any thread. */
int lockcert_read(const struct crypto_cert *cert, struct lock_fields *out,
    const char **kind);

#endif
