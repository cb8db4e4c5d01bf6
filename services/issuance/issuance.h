/* issuance — the service's internal interfaces: configuration, the pure
 * domain rules (renewal window, validity, interop signatures), every
 * cross-file prototype of the I/O files, and the store (every SQL statement
 * and Redis key). The vendor CA interface and the local CA are vendor.h. */
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

/* CA管理's renewal state of a certificate (static strings): "paid" (a paid
 * renewal waits for the holder to update the key), "in_order" (in an order
 * awaiting payment), "renewable", "renewed" (renewed by the platform and
 * not yet due again), else "not_due" (outside the window, or not renewable:
 * see the reason). reason is cert_not_renewable_reason()'s. */
const char *cert_renewal_state(const char *reason, int in_open_order,
    int renewal_paid, int renewed);

/* "revoked", "expired" or "valid" (static strings). */
const char *cert_status_name(time_t not_after, time_t now, int revoked);

/* ---- interop.c: the downstream platforms' signed requests, pure ------- */

struct cert_platform_secret {
	char *code;
	char *secret;
};

/* 1 when code is a platform code (^[A-Z][A-Z0-9_]{1,31}$), else 0. */
int cert_platform_code_ok(const char *code);
/* Returns "{A,B}" (a PostgreSQL text[] literal) of a JSON array of platform
 * codes as a new string (caller frees), or NULL when arr is not one. */
char *cert_platforms_literal(json_t *arr);

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

/* Returns a new string METHOD "\n" path "\n" query "\n" timestamp "\n"
 * nonce (query "" when absent); caller frees. */
char *cert_interop_canonical(const char *method, const char *path,
    const char *query, const char *timestamp, const char *nonce);
/* 1 when nonce (X-Nonce) is 16-64 characters of [A-Za-z0-9_-], else 0. */
int cert_interop_nonce_ok(const char *nonce);
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
	long idle_interval_ms; /* the resumer's look when nothing is pending */
	long retry_seconds;    /* first backoff after a vendor failure */
	long sync_interval_ms; /* vendor directory sync period, 0: off */
	const char *vendor_names; /* "issuer-DN-part=VENDOR,…" */
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
	const char *vendor_roots; /* imports chain to these (PEM bundle) */
	/* reminders (issue 17) */
	const char *reminder_stages; /* "90,30,7,0,-30" days before notAfter */
	const char *renewal_reminder_days; /* "3,10" days after payment */
	long reminder_pass_ms;       /* period of the reminder pass, 0: off */
	long reminder_batch;         /* stages claimed per transaction */
	const char *test_clock_file; /* tests only: clock offset (clock.h) */
};

#define ISSUANCE_MAX_VENDOR_NAMES 16

struct issuance {
	struct svc svc;
	struct issuance_config cfg;
	struct cert_window window;
	struct localca *localca;
	struct cert_platform_secret *secrets;
	size_t nsecrets;
	struct {
		char *part; /* substring of the issuer DN */
		char *vendor;
	} vendor_names[ISSUANCE_MAX_VENDOR_NAMES];
	size_t nvendor_names;
	struct fault fault;          /* at an enum issuance_fault point */
	char *reminder_stages;       /* "{90,30,7,0,-30}" */
	char *renewal_reminder_days; /* "{3,10}" */
};

extern struct issuance issuance;

/* The fault points of the crash tests (fault.h), numbered as in config.c's
 * issuance_fault_names. */
enum issuance_fault {
	ISSUANCE_FAULT_NONE,
	ISSUANCE_FAULT_CRASH_BEFORE_VENDOR, /* intent recorded, vendor not asked */
	ISSUANCE_FAULT_CRASH_AFTER_VENDOR, /* vendor issued, nothing recorded */
	ISSUANCE_FAULT_CRASH_AFTER_REMINDERS, /* a batch of stages committed */
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

/* ---- handlers.c: the registry list, revocation, CRLs, interop; routes */

extern const struct http_route issuance_routes[];
extern const size_t issuance_nroutes;

/* ---- import.c: the operator's bulk import of certificate records ---- */

/* The largest file: 10^5 rows with their PEM certificates. The gateway's
 * client_max_body_size for the route matches it. */
#define ISSUANCE_IMPORT_MAX_BODY ((size_t)256 * 1024 * 1024)

void cert_import(struct http_req *req);
void cert_import_get(struct http_req *req);
/* /metrics: caplat_vendor_root_not_after_seconds{subject} of each trusted
 * vendor root (http_metrics_fn shape). */
size_t issuance_roots_metrics(void *arg, char *buf, size_t size);
/* Loads the trusted vendor roots (CAPLAT_VENDOR_ROOTS, else the local CA's
 * roots) the imported certificates must chain to. After the local CA. */
void issuance_import_init(void);

/* ---- importfile.c: reading an import file, pure ---- */

/* Returns 0 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), else -1 with *bad the offset of the first bad
 * byte. */
int importfile_utf8_check(const unsigned char *s, size_t n, size_t *bad);
/* The line (from 1) of byte off of s. */
long importfile_line_of(const unsigned char *s, size_t off);

/* One record of a file: its fields (CSV, owned) or its object (JSONL, a
 * new reference, NULL when the line is not a JSON object). Zero it before
 * the first read; importfile_record_clear() then free(fields) at the end. */
struct importfile_record {
	long line; /* where it starts */
	char **fields;
	size_t n, cap;
	json_t *obj;
};
void importfile_record_clear(struct importfile_record *r);

/* The file being read: [p, end), and the current line (start at 1). */
struct importfile_reader {
	const char *p, *end;
	long line;
};
/* The next CSV record (RFC 4180: "," separated, '"' quoted with "" inside,
 * CRLF or LF; blank lines skipped). Returns 1 with r filled, 0 at the end,
 * -1 on an unterminated quote. */
int importfile_csv_next(struct importfile_reader *rd,
    struct importfile_record *r);
/* The next non-blank JSON Lines record: 1 with r->obj (or NULL), 0 at the
 * end. */
int importfile_jsonl_next(struct importfile_reader *rd,
    struct importfile_record *r);

/* "YYYY-MM-DD" (midnight UTC) or, unless date_only,
 * "YYYY-MM-DDTHH:MM:SSZ" into *out. Returns 0, or -1 (malformed, or not a
 * real date). */
int importfile_time(const char *s, time_t *out, int date_only);
/* "2026-01-31 00:00:00+00", PostgreSQL's input. */
void importfile_pg_time(time_t t, char out[32]);

/* "{A,B}" from platform codes separated by ',', ';', '|' or blanks: sorted,
 * without repeats ("" gives "{}"). Returns a new string, or NULL when a
 * code is malformed or there are more than 64. */
char *importfile_platforms(const char *s);

/* COPY text data being built. */
struct importfile_buf {
	char *data;
	size_t len, cap;
};
/* Appends s as one COPY text field (NULL as \N; backslash, newline, CR and
 * tab escaped) and a tab, or a newline when last. */
void importfile_copy_field(struct importfile_buf *b, const char *s, int last);
/* An RFC 9562 UUID version 7 (ms since the epoch, a counter below 2^42
 * unique within that ms, 32 random bits) as text into out. */
void importfile_uuid7(char out[37], int64_t ms, uint64_t seq,
    const unsigned char rnd[4]);

/* ---- renew.c: the holder's renewal calls ---- */

void cert_renewal_challenge(struct http_req *req);
void cert_renewal(struct http_req *req);

/* ---- intent.c: what renew.c and sweep.c share about an intent ---- */

struct db_batch;
struct db_result;
/* Seconds before the next vendor attempt after `attempts` ones: the
 * configured first backoff, doubling, at most 300. */
long cert_retry_seconds(int attempts);
/* Adds complete_sql (14 parameters: id, new cert id, event id, issuer,
 * serial, vendor, subject, fingerprint, SPKI hash, key type, validity, PEM,
 * chain) and result_sql ($1 id) for the certificate a vendor issued for the
 * intent or application id to b, after checking it is for the CSR's key
 * (csr_spki) and, from the local CA, the reserved serial. Returns 0, or -1
 * with the reason in err and nothing added. */
int cert_issued_record(struct db_batch *b, const char *complete_sql,
    const char *result_sql, const char *id, const char *vendor_name,
    const char *csr_spki, const char *serial, const char *cert_pem,
    const char *chain, char *err, size_t err_size);
/* What a failed vendor call leaves, for a renewal intent or (application
 * set) a new-certificate application id: one log line, and the row
 * released for another attempt after cert_retry_seconds(attempts), or
 * failed for good (its reservation released) when final; cb gets the
 * statement's result. rid is the request id, NULL in the resumer. */
void cert_vendor_failed(const char *rid, int application, const char *id,
    const char *adapter, int attempts, int final, const char *error,
    void (*cb)(void *arg, const struct db_result *res), void *arg);
/* cert_issued_record with renewal_complete() and the renewal's result. */
int cert_renewal_record(struct db_batch *b, const char *intent,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size);

/* ---- refusals.c: every refusal, one table ---- */

/* Answers the refusal named rule (a name our SQL functions raise, or one
 * of the handlers': CERT_NOT_FOUND, CHALLENGE_INVALID, NO_PAID_RENEWAL, …)
 * with its status, code, field and message; an unknown rule is logged and
 * answers 500 INTERNAL. */
void issuance_refuse(struct http_req *req, const char *rule);
/* Answers a failed batch: DB_REFUSED as issuance_refuse(res->message),
 * anything else as http_reply_db_error(). */
void issuance_reply_batch_error(struct http_req *req,
    const struct db_result *res);

/* ---- desk.c: `caplat-issuance ca-issue` (after issuance_config_load) ---- */

int issuance_ca_issue(int argc, char **argv);

/* ---- sync.c: the vendor directory sync ---- */

/* Reads every adapter's directory from its cursor into the registry, then
 * calls done() (on the loop thread, exactly once). */
void cert_sync_run(void (*done)(void));

/* ---- sweep.c: the timers that finish pending intents and vendor jobs -- */

/* Arms every sweep's timer (after svc_init). */
void issuance_sweep_start(void);
/* Frees the timers (before the loop goes). */
void issuance_sweep_stop(void);
/* This process left an intent or a vendor job pending (a failed vendor
 * call, a revocation to forward): the resumer looks again at its next
 * interval instead of its idle period. */
void issuance_sweep_kick(void);

/* ---- reminders.c: which stages, pure ---- */

/* Parses a list of day counts ("90,30,7,0,-30"; each within -3650..3650,
 * at most 16, no repeats; min_count: at least that many) into a new
 * PostgreSQL array literal "{90,30,7,0,-30}" (caller frees). Returns it, or
 * NULL when malformed. */
char *cert_days_literal(const char *spec, size_t min_count);

/* ---- metrics.c: the counters on /metrics ---- */

size_t issuance_metrics(void *arg, char *buf, size_t size);
/* Counts one "renewed", "resumed", "vendor_ok", "vendor_unavailable",
 * "vendor_rejected", "vendor_bad_certificate", "revoked" or
 * "vendor_revocations". */
void issuance_count(const char *what);

/* ---- events.c: consumers ---- */

void issuance_events_subscribe(void);

/* ---- listcache.c: CA管理's recent pages, per process ----
 * A list statement's rows, copied out of its result (its first nrows rows,
 * ncols columns; NULL values stay NULL); the cache of an enterprise's pages
 * keyed by the statement's text and parameters, each with the registry
 * version read before or with its rows (list_cache_put steals rows; what list_cache_get returns
 * is borrowed until the next put, so use it at once). */
struct list_rows {
	int n, ncols;
	char **v;
	char *text;
};
struct list_rows *list_rows_copy(const struct db_result *res, int stmt,
    int nrows, int ncols);
void list_rows_free(struct list_rows *r);
const char *list_rows_value(const struct list_rows *r, int row, int col);
int list_rows_bool(const struct list_rows *r, int row, int col);
const struct list_rows *list_cache_get(const char *key, long long *version);
void list_cache_put(const char *key, long long version, struct list_rows *rows);
/* The entry's JSON page made in second at (NULL: none), and setting it
 * (on the entry of key, if there is one; steals body, a malloc'd block). */
const char *list_cache_body(const char *key, time_t at, size_t *len);
void list_cache_set_body(const char *key, time_t at, char *body, size_t len);
/* The registry version of enterprise uscc (store_cert_list_version_sql),
 * read after this call: cb(arg, res, ok, version) (res for the error
 * answer when !ok). Concurrent calls for one enterprise share reads. */
typedef void (*list_version_cb)(void *arg, const struct db_result *res, int ok,
    long long version);
void list_version_read(const char *uscc, list_version_cb cb, void *arg);

/* ---- store.c: every SQL statement and Redis key of issuance ------------
 * Each statement's parameters ($n) and result columns are listed beside
 * it; times go in and out as Unix seconds, platform sets as JSON arrays
 * (out) and PostgreSQL array literals (in). The rules that span rows are
 * the PL/pgSQL functions of deploy/sql/issuance/002_functions.sql. */

struct challenge_scope;

/* GET /certs (CA管理), the latest certificate of each lineage in scope:
 * store_cert_list_build(sort, descending, p, version, out, &nout), sort an
 * enum cert_sort, p[0..12] the filters below ($1..$13, NULL: absent),
 * returns the statement (to free after its batch) for the present ones
 * only, and its parameters out[0..nout-1]; run it after
 * store_generic_plans_sql in the same batch (its result is then statement
 * 1). version (with a uscc): each row has the enterprise's registry
 * version (store_cert_list_version_sql) as column 22, read by the same
 * statement, and an empty page is one row whose columns 0..21 are NULL.
 * $1 uscc or NULL, $2 account id or NULL (both NULL: all), $3 status
 * ("valid", "expired", "revoked") or NULL, $4 / $5 notAfter at least / before
 * (s) or NULL, $6 holder name part or NULL, $7 vendor or NULL, $8 lock kind
 * or NULL, $9 bound ("true"/"false") or NULL, $10 cursor key (column 21 of
 * the last row) or NULL, $11 cursor cert id, $12 limit, $13 a paid renewal
 * not yet done on the key ("true"/"false") or NULL. Columns: 0 cert id,
 * 1 serial, 2 type, 3 holder, 4 vendor, 5 lock kind, 6 enterprise name,
 * 7 uscc, 8 not_before, 9 not_after, 10 platforms (NULL when unknown: first seen at a login, never
 * imported), 11 revoked, 12 in an
 * open order, 13 renewal paid (not yet used), 14 issuer, 15 account id,
 * 16 previous serial, 17 key serial, 18 key vendor, 19 first application
 * (s), 20 issued by a renewal, 21 the sort key. */
enum cert_sort {
	CERT_SORT_NOT_AFTER,
	CERT_SORT_HOLDER,
	CERT_SORT_APPLIED,
	CERT_SORTS
};
char *store_cert_list_build(int sort, int desc, const char *const p[13],
    int version, const char *out[13], int *nout);
/* Makes the rest of the batch (its transaction) use generic plans. */
extern const char store_generic_plans_sql[];
/* The enterprise registry's version (065_list_version.sql; 0 before its
 * first write) of uscc $1: one row, column 0. */
extern const char store_cert_list_version_sql[];

/* The renewal challenge's view of lineage $1, replay window $2 days.
 * Statement 0 (lineage and latest certificate): 0 account, 1 latest id,
 * 2 revoked, 3 has pem, 4 serial. Statement 1 (the latest pending or
 * issued intent): 0 id, 1 status, 2 previous id, 3 collectable (issued
 * within the replay window), 4 previous serial, 5 previous has pem,
 * 6 previous revoked. Statement 2: 0 paid entitlements. */
extern const char store_challenge_lineage_sql[];
extern const char store_challenge_intent_sql[];
extern const char store_challenge_paid_sql[];

/* The renewal's view of the certificate $1 on the key. Statement 0:
 * 0 cert id (lineage), 1 pem, 2 not_after, 3 revoked, 4 superseded,
 * 5 account, 6 vendor, 7 serial, 8 the lineage's latest certificate when
 * another one (renewed since). Statement 1 (lineage $2): 0 paid_at of the
 * oldest paid entitlement. Statement 2 ($1): a pending or issued intent
 * exists for this certificate. */
extern const char store_renew_target_sql[];
extern const char store_renew_paid_sql[];
extern const char store_renew_intent_sql[];

/* renewal_begin($1 cert id, $2 target, $3 csr spki, $4 csr pem, $5 new
 * intent id, $6 serial, $7 adapter, $8 not_before (s), $9 not_after (s),
 * $10 lease seconds). Columns: 0 outcome, 1 intent, 2 serial,
 * 3 not_before, 4 not_after, 5 platforms, 6 adapter, 7 attempts,
 * 8 certificate (replay), 9 the intent's CSR (the one to send again). */
extern const char store_renewal_begin_sql[];

/* renewal_complete($1 intent, $2 new certificate id, $3 event id,
 * $4 issuer, $5 serial, $6 vendor, $7 subject, $8 fingerprint, $9 spki,
 * $10 key type, $11 not_before (s), $12 not_after (s), $13 pem, $14 chain).
 * Columns: 0 certificate id, 1 new. */
extern const char store_renewal_complete_sql[];

/* The issued certificate of intent $1: 0 pem, 1 chain, 2 serial,
 * 3 not_before, 4 not_after, 5 platforms, 6 cert id. */
extern const char store_renewal_result_sql[];

/* renewal_failed($1 intent, $2 error, $3 retry seconds, $4 final). */
extern const char store_renewal_failed_sql[];

/* The resumer's next due intent, leased for $1 seconds: 0 intent, 1 adapter,
 * 2 serial, 3 csr pem, 4 previous certificate pem, 5 not_before,
 * 6 not_after, 7 attempts. */
extern const char store_intent_claim_sql[];

/* The next due vendor job, leased for $1 seconds: 0 id, 1 vendor,
 * 2 serial, 3 issuer, 4 reason, 5 revoked_at, 6 attempts. */
extern const char store_job_claim_sql[];
extern const char store_intent_due_sql[];
extern const char store_job_due_sql[];
/* $1 id. */
extern const char store_job_done_sql[];
/* $1 id, $2 error, $3 retry seconds, $4 final. */
extern const char store_job_failed_sql[];

/* revoke_certificate($1 cert id, $2 reason, $3 event id, $4 job id,
 * $5 vendors to forward to "{A,B}") and its audit entry in the same
 * statement ($6: audit_event_data, completed here with the enterprise and
 * what changed). Columns: 0 serial, 1 issuer, 2 revoked_at, 3 vendor,
 * 4 forwarded, 5 the audit event's id. */
extern const char store_revoke_sql[];

/* The revoked certificates of issuer $1 (for its CRL): 0 serial,
 * 1 revoked_at, 2 reason. */
extern const char store_crl_entries_sql[];

/* The interop view of serial $1 (leading zeros ignored) for platform $2,
 * of issuer $3 or any (NULL): at most 16 candidates, the latest
 * certificate first. Columns: 0 not_before, 1 not_after, 2 revoked,
 * 3 superseded, 4 platforms, 5 associated, 6 cert id (lineage),
 * 7 successor serial (the certificate that replaced it) or NULL, 8 issuer,
 * 9 serial. store_interop_by_id_sql: the same columns for the latest
 * certificate of lineage $1. */
extern const char store_interop_sql[];
extern const char store_interop_by_id_sql[];

/* Redis: a signed interop request's X-Nonce, SET NX EX for twice the
 * timestamp window: "interop:nonce:<platform>:<nonce>". */
extern const char store_interop_nonce_prefix[];

/* Redis: the renewal challenge (common/challenge.h), bound to the facts
 * {cert_id, target, account}. */
extern const struct challenge_scope store_renewal_challenge;

/* Consumers (bus_tx): register_certificate(…) with 21 parameters (see
 * 002_functions.sql); entitlements of a paid order; open orders. */
extern const char store_register_sql[];
/* $1 order, $2 number, $3 account, $4 cert id, $5 platforms "{A,B}",
 * $6 paid_at (RFC 3339). */
extern const char store_entitlement_insert_sql[];
/* $1 order. */
extern const char store_open_order_delete_sql[];
extern const char store_application_close_sql[];
extern const char store_application_close_for_holder_sql[];
/* $1 order, $2 cert id. */
extern const char store_open_order_insert_sql[];

/* The vendor directory sync (sync.c). The cursor of vendor $1: 0 cursor.
 * Set: $1 vendor, $2 cursor, $3 certificates recorded. Failed: $1 vendor,
 * $2 error. sync_certificate($1 lineage, $2 certificate id, $3 event id,
 * $4 issuer, $5 serial, $6 vendor, $7 subject, $8 fingerprint, $9 spki,
 * $10 key type, $11 not_before, $12 not_after (RFC 3339), $13 pem, $14 type,
 * $15 lock kind, $16 holder, $17 enterprise, $18 uscc, $19 platforms
 * "{A,B}", $20 key serial, $21 key vendor, $22 first application (RFC 3339)
 * or NULL). Columns: 0 cert id, 1 new. */
extern const char store_sync_cursor_sql[];
extern const char store_sync_cursor_set_sql[];
extern const char store_sync_failed_sql[];
extern const char store_sync_page_sql[];

/* Consumer: the catalogue read model. $1 code, $2 name, $3 active. */
extern const char store_platform_listed_sql[];

/* ---- reminders (deploy/sql/issuance/020_reminders.sql) ---- */

/* One round of a reminder pass at $1 (Unix seconds, the same for every
 * round of a pass): reminder_claim($2 stages "{90,…}", $3 limit, from the
 * previous round's $5 stage, $6 not_after, $7 id, all NULL for the first)
 * and renewal_unused_claim($4 days "{3,10}", $3 limit), each claiming and
 * writing its notices in this one transaction. Columns: 0 expiry stages
 * claimed, 1-3 where the round stopped (stage, not_after, id; NULL when
 * the pass is through every stage), 4 renewal reminders claimed. */
extern const char store_reminder_pass_sql[];
/* Consumer (bus_tx): renewal.ready for the entitlements of order $1. */
extern const char store_renewal_ready_sql[];

/* ---- the bulk import (import.c) ---- */

/* Records an accepted import: $1 id, $2 staff id, $3 format, $4 dry run,
 * $5 bytes. No row when a commit is asked while another commit runs. */
extern const char store_import_insert_sql[];
/* $1 id. Columns: 0 id, 1 format, 2 dry_run, 3 status (with
 * 'interrupted'), 4 bytes, 5 rows_total, 6 rows_done, 7 inserted,
 * 8 updated, 9 unchanged, 10 error_count, 11 errors (JSON), 12 error,
 * 13 created_at, 14 finished_at. */
extern const char store_import_get_sql[];
/* The worker's own connection (db_sync): the transaction, the exclusive
 * advisory locks ($1 import id; one boolean), the COPY into the staging
 * table, the file-wide checks ($1 limit, $2 import; duplicates: 0 line,
 * 1 first line;
 * platforms: 0 line, 1 code), the merge ($1 import, $2 audit template:
 * 0 inserted, 1 updated, 2 unchanged) and the import's status in the same
 * transaction ($1 id, $2 rows, $3-$5 counts). */
extern const char store_import_begin_sql[];
extern const char store_import_commit_sql[];
extern const char store_import_rollback_sql[];
extern const char store_import_lock_sql[];
extern const char store_import_truncate_sql[];
extern const char store_import_copy_sql[];
extern const char store_import_duplicates_sql[];
extern const char store_import_unknown_platforms_sql[];
extern const char store_import_merge_sql[];
extern const char store_import_done_sql[];
/* The worker's progress connection (autocommit): $1 id, $2 total, $3 done;
 * the end of an import not committed: $1 id, $2 status, $3 total, $4 done,
 * $5-$7 counts or NULL, $8 error count, $9 errors (JSON), $10 error. */
extern const char store_import_progress_sql[];
extern const char store_import_finish_sql[];

/* ---- cancel.c: 注销 (issue 19) ---- */

/* POST /api/v1/certs/{id}/cancel: the holder, or the enterprise's
 * administrator for a certificate of the enterprise. */
void cert_cancel(struct http_req *req);

/* cancel_certificate($1 cert id, $2 the administrator's USCC or NULL,
 * $3 the caller's account, $4 revoked event id, $5 job id, $6 vendors to
 * forward to "{A,B}", $7 cancelled event id, $8 audit_event_data). Columns:
 * 0 serial, 1 issuer, 2 revoked_at (s), 3 vendor, 4 forwarded, 5 by
 * ("holder" or "administrator"). Refuses CERT_NOT_FOUND, CERT_REVOKED. */
extern const char store_cancel_sql[];

/* ---- newcert.c: a new certificate's issue (issue 19) ---- */

/* POST /api/v1/certs/{id}/issue/challenge and /issue: the holder of a paid
 * application (id = the application's, the new certificate's cert_id)
 * gets a challenge and the subject the CSR must carry, then sends the CSR
 * made on the key and the challenge signed by its key. */
void cert_issue_challenge(struct http_req *req);
void cert_issue(struct http_req *req);

/* ---- application.c: what newcert.c and sweep.c share, a leaf ---- */

/* Adds application_complete() and the result query (statements 0 and 1)
 * for the certificate a vendor issued for application app to b, after
 * checking it is for the CSR's key and, from the local CA, the reserved
 * serial. Returns 0, or -1 with the reason in err and nothing added. */
int cert_application_record(struct db_batch *b, const char *app,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size);
/* The 201 answer {cert_id, certificate, chain, serial, not_before,
 * not_after, platforms} from a store_application_result_sql row of
 * statement stmt; returns a new reference. */
json_t *cert_issued_json(const struct db_result *res, int stmt);

/* Consumer (orders.order.created, an item's application): $1 id, $2 order,
 * $3 applicant account, $4 holder account, $5 type, $6 lock kind,
 * $7 holder, $8 enterprise, $9 uscc, $10 subject (JSON), $11 platforms
 * "{A,B}", $12 replaced cert or NULL. Once per id. */
extern const char store_application_insert_sql[];
/* The challenge's view of application $1: 0 holder account, 1 status,
 * 2 subject (JSON), 3 paid (an entitlement paid or reserved), 4 lock kind,
 * 5 platforms (JSON), 6 kind ("new" or "change": not paid for). */
extern const char store_application_get_sql[];
/* application_begin($1 app, $2 account, $3 spki, $4 csr, $5 serial,
 * $6 adapter, $7 not_before (s), $8 not_after (s), $9 lease seconds).
 * Columns: 0 outcome, 1 serial, 2 not_before, 3 not_after, 4 adapter,
 * 5 attempts, 6 the application's CSR. */
extern const char store_application_begin_sql[];
/* application_complete($1 app, $2 certificate id, $3 event id, $4 issuer,
 * $5 serial, $6 vendor, $7 subject, $8 fingerprint, $9 spki, $10 key type,
 * $11 not_before (s), $12 not_after (s), $13 pem, $14 chain). Columns:
 * 0 certificate id, 1 new. */
extern const char store_application_complete_sql[];
/* The issued certificate of application $1, as store_renewal_result_sql. */
extern const char store_application_result_sql[];
/* application_failed($1 app, $2 error, $3 retry seconds, $4 final). */
extern const char store_application_failed_sql[];
/* The resumer's next due application, leased for $1 seconds: 0 id,
 * 1 adapter, 2 serial, 3 csr pem, 4 not_before, 5 not_after, 6 attempts. */
extern const char store_application_claim_sql[];
extern const char store_application_due_sql[];
/* Redis: the issue challenge, bound to {app, account}. */
extern const struct challenge_scope store_application_challenge;

/* ---- change.c: 自主变更 (issue 19) ---- */

/* POST /api/v1/certs/{id}/change: the holder's change application of a
 * certificate whose subject names the enterprise's old name. */
void cert_change(struct http_req *req);

/* Consumer (enterprise.record.approved): $1 uscc, $2 record, $3 seq,
 * $4 name, $5 approved_at. */
extern const char store_enterprise_record_sql[];
/* change_application($1 cert id, $2 account, $3 new application id):
 * 0 application id, 1 subject (JSON), 2 status, 3 the name it replaces.
 * Refuses CERT_NOT_FOUND, CERT_REVOKED, NO_CHANGE. */
extern const char store_change_application_sql[];
/* change_collected($1 application, $2 event id): the replaced certificate
 * revoked (affiliation_changed) once the change is collected. */
extern const char store_change_collected_sql[];

#endif
