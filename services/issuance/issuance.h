/* issuance — the service's internal interfaces: configuration, the pure
 * domain rules (renewal window, validity, interop signatures), the local CA,
 * the resumer, and the handlers' shared helpers. The vendor CA interface is
 * vendor.h; every SQL statement is in store.c. */
#ifndef CAPLAT_ISSUANCE_H
#define CAPLAT_ISSUANCE_H

#include "fault.h"
#include "http.h"
#include "renewal.h"
#include "svc.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

struct db_result;
struct localca;
struct vendor;

#define DAY_SECONDS 86400L

/* ---- window.c: the renewal rules of DOMAIN.md §6, pure ---------------- */

/* The window itself is common/renewal.h's (shared with orders); the rest of
 * DOMAIN.md §6 is issuance's. */
struct cert_window {
	struct renewal_window window; /* when renewable */
	long term_months;             /* validity added by one renewal (12) */
	long backdate_seconds; /* notBefore this much before the renewal */
};

/* The API's not_renewable_reason: NULL when renewable, else
 * "CERT_REVOKED", "CERT_IN_OPEN_ORDER", "EXPIRED_TOO_LONG" or
 * "NOT_IN_RENEWAL_WINDOW", in that order of precedence (static strings). */
const char *cert_not_renewable_reason(const struct cert_window *w,
    time_t not_after, time_t now, int revoked, int in_open_order);

/* The Chinese text the frontend shows for a not_renewable_reason
 * ("未到年检时间"), or NULL for NULL or an unknown code. Static. */
const char *cert_reason_message(const char *reason);

/* Whole days until not_after, rounded down: negative once expired. */
long cert_days_left(time_t not_after, time_t now);

/* t plus months calendar months in UTC, the day clamped to the length of
 * the target month (29 Feb + 12 months = 28 Feb). */
time_t cert_add_months(time_t t, long months);

/* The validity of a renewal made at now: from now (less the backdate) until
 * term_months after the old notAfter when the certificate is still valid,
 * or after now when it has already expired (notAfter itself counts as
 * expired, as in OpenSSL). */
void cert_renewal_validity(const struct cert_window *w, time_t old_not_after,
    time_t now, time_t *not_before, time_t *not_after);

/* "revoked", "expired" or "valid" (static strings). */
const char *cert_status_name(time_t not_after, time_t now, int revoked);

/* ---- interop.c: the downstream platforms' signed requests, pure ------- */

struct cert_platform_secret {
	char *code;
	char *secret;
};

/* 1 when code is a platform code (^[A-Z][A-Z0-9_]{1,31}$), else 0. */
int cert_platform_code_ok(const char *code);

/* Parses "CODE=secret,CODE=secret" (secrets of at least 16 characters, no
 * ','). On success sets *out to a new array of *n entries (free with
 * cert_platform_secrets_free) and returns 0; on error returns -1. "" gives
 * no entries. */
int cert_platform_secrets_parse(const char *spec,
    struct cert_platform_secret **out, size_t *n);
void cert_platform_secrets_free(struct cert_platform_secret *s, size_t n);
/* The secret of code, borrowed, or NULL. */
const char *cert_platform_secret(const struct cert_platform_secret *s, size_t n,
    const char *code);

/* Returns a new string METHOD "\n" path "\n" query "\n" timestamp (query ""
 * when absent); caller frees. */
char *cert_interop_canonical(const char *method, const char *path,
    const char *query, const char *timestamp);
/* 0 when ts is 1-12 decimal digits within skew seconds of now, else -1. */
int cert_interop_timestamp_ok(const char *ts, time_t now, long skew);
/* 0 when sig_hex is the lower-case hex HMAC-SHA256 of canonical under
 * secret (compared in constant time), else -1. */
int cert_interop_signature_ok(const char *secret, const char *canonical,
    const char *sig_hex);

/* The interop answer's reason: NULL when valid for the platform, else
 * "CERT_REVOKED", "CERT_SUPERSEDED", "CERT_EXPIRED", "CERT_NOT_YET_VALID" or
 * "PLATFORM_NOT_ASSOCIATED", in that order. */
const char *cert_interop_reason(time_t not_before, time_t not_after, time_t now,
    int revoked, int superseded, int associated);

/* ---- the service ------------------------------------------------------ */

struct issuance_config {
	long window_before_days;
	long window_after_days;
	long term_months;
	long challenge_ttl;      /* renewal challenge lifetime (s) */
	long replay_days;        /* an issued renewal can be collected again */
	long lease_seconds;      /* one attempt holds an intent this long */
	long resume_interval_ms; /* the resumer's period */
	long retry_seconds;      /* first backoff after a vendor failure */
	const char *default_platforms; /* of certificates first seen at login */
	const char *vendor_names;      /* "issuer-DN-part=VENDOR,…" */
	const char *var_dir;
	const char *ca_dir;       /* local CA: keys and certificates */
	const char *ca_vendor;    /* the local CA's vendor name */
	const char *crl_base_url; /* CRL distribution point base, or "" */
	long crl_hours;           /* nextUpdate of the CRLs */
	const char *default_adapter;
	const char *adapters; /* "VENDOR=adapter,…" */
	const char *remote_url;
	const char *remote_vendor;
	const char *remote_token;
	long remote_timeout_ms;
	const char *interop_secrets;
	long interop_skew;
};

#define ISSUANCE_MAX_VENDOR_NAMES 16

struct issuance {
	struct svc svc;
	struct issuance_config cfg;
	struct cert_window window;
	struct localca *localca;
	struct cert_platform_secret *secrets;
	size_t nsecrets;
	char *default_platforms_sql; /* "{A,B}" */
	struct {
		char *part; /* substring of the issuer DN */
		char *vendor;
	} vendor_names[ISSUANCE_MAX_VENDOR_NAMES];
	size_t nvendor_names;
	struct fault fault; /* at an enum issuance_fault point */
};

extern struct issuance issuance;

/* The fault points of the crash tests (fault.h), numbered as in config.c's
 * issuance_fault_names. */
enum issuance_fault {
	ISSUANCE_FAULT_NONE,
	ISSUANCE_FAULT_CRASH_BEFORE_VENDOR, /* intent recorded, vendor not asked */
	ISSUANCE_FAULT_CRASH_AFTER_VENDOR, /* vendor issued, nothing recorded */
};

/* config.c: reads the configuration table (fatal on a bad value), opens the
 * local CA and the vendor adapters. Before svc_init(). */
void issuance_config_load(void);
/* After svc_init(): the adapters that need the loop. */
void issuance_adapters_init(void);
/* Crashes the process (exit 137) at the fault point when CAPLAT_FAULT names
 * it, once when CAPLAT_FAULT_ONCE names a file not yet there (fault.h). */
void issuance_fault_point(enum issuance_fault fault);
/* The vendor name of a certificate from its issuer DN: the configured
 * names, the local CA's, or the issuer's O (or CN). Returns a new string. */
char *issuance_vendor_of(const char *issuer_dn);

/* handlers.c */
extern const struct http_route issuance_routes[];
extern const size_t issuance_nroutes;
/* Answers 503 for DB_UNAVAILABLE, 500 otherwise. */
void issuance_reply_db_error(struct http_req *req, const struct db_result *res);

/* renew.c: the holder's renewal calls, and what the resumer shares. */
struct db_batch;
void cert_renewal_challenge(struct http_req *req);
void cert_renewal(struct http_req *req);
/* Seconds before the next vendor attempt after `attempts` ones: the
 * configured first backoff, doubling, at most 300. */
long cert_retry_seconds(int attempts);
/* Adds renewal_complete() and the result query (statements 0 and 1) for the
 * certificate a vendor issued for intent to b, after checking it is for the
 * CSR's key (csr_spki) and, from the local CA, the reserved serial. Returns
 * 0, or -1 with the reason in err and nothing added. */
int cert_renewal_record(struct db_batch *b, const char *intent,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size);

/* resume.c: completes pending intents and vendor jobs in the background. */
void issuance_resume_start(void);
void issuance_resume_stop(void);
size_t issuance_metrics(void *arg, char *buf, size_t size);
void issuance_count(const char *what);

/* events.c */
void issuance_events_subscribe(void);

#endif
