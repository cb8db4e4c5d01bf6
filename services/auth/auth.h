/* auth — the service's internal interfaces: configuration, SMS codes, the
 * handlers' shared helpers, CA login, consumers, and the store (every SQL
 * statement and Redis key). The vendor subject profiles are common/lockcert.h. */
#ifndef CAPLAT_AUTH_H
#define CAPLAT_AUTH_H

#include "http.h"
#include "svc.h"

#include <jansson.h>

struct challenge_scope;
struct crypto_trust;
struct db_batch;
struct db_result;

struct auth_config {
	const char *sms_secret;   /* HMAC key for stored SMS code hashes */
	const char *sms_provider; /* "local:<dir>" (common/sms.h) */
	long sms_ttl;             /* seconds a code is valid (300) */
	long sms_cooldown;        /* seconds between sends to a phone (60) */
	long sms_daily_phone;     /* sends per phone per day */
	long sms_daily_ip;        /* sends per client address per day */
	long sms_max_tries;       /* wrong tries before a code dies (5) */
	long login_max_failures;  /* wrong passwords before the lockout */
	long lockout_seconds;
	long challenge_ttl;       /* CA login challenge lifetime (120) */
	long bind_ttl;            /* bind token lifetime */
	const char *vendor_roots; /* PEM bundle of trusted vendor roots */
	/* SMS delivery of notices (deliver.c) */
	long sms_delivery_ms;   /* how often the sender looks for due SMS */
	long sms_lease_s;       /* a claim's lease: > the provider timeout */
	long sms_retry_base_ms; /* first backoff after a provider error */
	long sms_retry_max_ms;  /* the backoff's cap */
	long sms_throttle_ms;   /* first backoff after the provider's limit */
	long sms_max_attempts;  /* then the SMS is dead-lettered */
	long sms_number_hourly; /* notice SMS per number per hour (our side) */
	long notice_max_age_s;  /* older events tell nobody (a new consumer
	                           replaying the stream) */
};

struct auth {
	struct svc svc;
	struct auth_config cfg;
	struct crypto_trust *roots;
};

extern struct auth auth;

/* ---- sms.c: codes in Redis, the provider ---- */

enum sms_result {
	SMS_OK,
	SMS_INVALID,
	SMS_TOO_FREQUENT,
	SMS_DAILY_CAP,
	SMS_UNAVAILABLE
};

/* Sends a new code for (phone, purpose): rate limits, stores its hash,
 * hands it to the provider. cb gets the result and, for SMS_TOO_FREQUENT,
 * the seconds to wait. */
typedef void (
    *sms_sent_fn)(struct http_req *req, enum sms_result r, long retry_after);
void sms_send(struct http_req *req, const char *phone, const char *purpose,
    sms_sent_fn cb);
/* Checks and consumes a code: SMS_OK once; a wrong code counts a try. */
typedef void (*sms_checked_fn)(struct http_req *req, enum sms_result r);
void sms_check(struct http_req *req, const char *phone, const char *purpose,
    const char *code, sms_checked_fn cb);
/* Sends a notification text (not a code) through the provider. */
void sms_notify(const char *phone, const char *text);

/* ---- request.c: what the handler files share ---- */

/* Reads a required string field or answers the field error itself. */
int auth_field(struct http_req *req, json_t *body, const char *field,
    size_t max, const char **out);
/* Answers a failed SMS code check: 503 when Redis is down, else 401
 * SMS_CODE_INVALID. */
void auth_reply_sms_refused(struct http_req *req, enum sms_result r);
/* Builds the session object (account, current identity) from the row of a
 * store_session_view_sql statement; returns a new reference. */
json_t *auth_session_from_view(const struct db_result *res, int stmt);
/* Arms request.c's crash point for the tests (CAPLAT_FAULT
 * "auth_crash_before_sessions_drop": after the commit that ended an
 * identity, before its sessions are rewritten). Call once at start. */
void auth_request_init(void);
/* After a commit that ended identity_id (removal, replacement, handover):
 * every open session of account_id whose current identity it is loses it
 * at once, or takes replacement's identity fields (borrowed JSON, NULL:
 * none), so its next request acts without it; on success the identity is
 * marked (sessions_dropped_at). cb gets 0, or -1 when Redis failed (logged;
 * the session_drops sweep rewrites them again, auth_sessions_drop_round). */
typedef void (*auth_sessions_fn)(void *arg, int status);
void auth_sessions_drop_identity(const char *account_id,
    const char *identity_id, json_t *replacement, auth_sessions_fn cb,
    void *arg);
/* After a commit that changed what GET /auth/me shows for account_id
 * (its identities, current identity, lock): bumps the answer's version so
 * every process's cached copy is stale at once. Fire and forget. */
void auth_me_changed(const char *account_id);
/* One round of the sweep row s (common/sweep.h): the sessions of removed
 * identities whose rewrite did not happen after the removal's commit (auth
 * died in between, or Redis failed) are rewritten now, without replacement
 * (080_session_drops.sql). */
struct sweep;
void auth_sessions_drop_round(struct sweep *s);
/* The cached /me answer: cb gets the cached JSON text (borrowed, NULL on a
 * miss or when Redis failed) and the version to store a fresh answer
 * under (NULL when Redis failed: then store nothing). */
typedef void (*auth_me_cached_fn)(void *arg, const char *body, size_t len,
    const char *version);
void auth_me_cached(const char *account_id, auth_me_cached_fn cb, void *arg);
/* Stores answer (JSON text) as account_id's /me under version. */
void auth_me_cache_put(const char *account_id, const char *version,
    const char *answer);
/* Builds the audit base (common/audit.h event data: actor, service) for
 * req and returns it as new JSON text for the SQL functions that write
 * their own entries (ident_audit in 011_identity_status.sql). free() it. */
char *auth_audit_base(const struct http_req *req);

/* ---- handlers.c: accounts, sessions, identities, staff; the routes ---- */

extern const struct http_route auth_routes[];
extern const size_t auth_nroutes;
/* Makes the dummy password hash for unknown users (once, at start). */
void auth_handlers_init(void);

/* ---- ca.c: USB-key login and binding ---- */

/* Reads the lock kinds, vendor profiles and vendor roots (fatal when bad). */
void auth_ca_init(void);
void auth_ca_challenge(struct http_req *req);
void auth_ca_login(struct http_req *req);
void auth_ca_bind(struct http_req *req);

/* ---- members.c: 人员管理 (the administrator's members, applications,
 * decisions, removal, handover) ---- */

void auth_members_list(struct http_req *req);
void auth_member_applications(struct http_req *req);
void auth_member_approve(struct http_req *req);
void auth_member_reject(struct http_req *req);
void auth_member_remove(struct http_req *req);
void auth_admin_handover(struct http_req *req);

/* ---- audit.c: the audit trail's API (the chain: events.c, 010_audit.sql) */

/* GET /api/v1/audit and /api/v1/audit/export (operators). */
void auth_audit_list(struct http_req *req);
void auth_audit_export(struct http_req *req);
/* audit_add (common/audit.h) for an action whose actor has no session yet
 * (a login): the entry names actor_type ("staff", "account") and
 * actor_id instead of the request's session. */
struct audit_entry;
void auth_audit_add_as(struct db_batch *b, const struct http_req *req,
    const char *actor_type, const char *actor_id, const struct audit_entry *e);

/* ---- events.c: consumers of other services' events ---- */

/* Subscribes the consumers; arms the crash point auth_crash_after_grant
 * (CAPLAT_FAULT: an approved application granted, its batch uncommitted). */
void auth_events_subscribe(void);

/* ---- store.c: every SQL statement and Redis key of auth ----------------
 * Batches are db.h batches; statement indexes are documented per function.
 * The *_sql texts of the consumers run with bus_tx_exec/bus_tx_query. */

void store_account_insert(struct db_batch *b, const char *id, const char *phone,
    const char *password_hash);
/* $1 phone → id, phone, password_hash, failed_logins, locked, locked_for */
extern const char store_account_by_phone_sql[];
void store_login_failed(struct db_batch *b, const char *account_id,
    long max_failures, long lockout_seconds);
void store_login_succeeded(struct db_batch *b, const char *account_id);
/* A new password for the account of phone, lifting a lockout: one
 * statement returning the account id (no row: unknown phone). */
void store_password_reset(struct db_batch *b, const char *phone,
    const char *password_hash);
/* $1 account id → id, phone, identity id, type, role, uscc, enterprise name */
extern const char store_session_view_sql[];
/* The same view by $1 phone. */
extern const char store_session_view_by_phone_sql[];
void store_me(struct db_batch *b, const char *account_id);
/* status "active" (personal) or "pending" (a member claim); source "self"
 * or "approval". */
void store_identity_insert(struct db_batch *b, const char *id,
    const char *account_id, const char *type, const char *enterprise_name,
    const char *uscc, const char *role, const char *status, const char *source);
/* One statement: the status of the account's identity (no row: not its). */
void store_identity_status(struct db_batch *b, const char *account_id,
    const char *identity_id);
void store_identity_make_current(struct db_batch *b, const char *account_id,
    const char *identity_id, int only_if_none);
/* $1 username → id, username, password_hash, roles (JSON array text), locked */
extern const char store_staff_by_username_sql[];
void store_staff_login_failed(struct db_batch *b, const char *staff_id,
    long max_failures, long lockout_seconds);
/* $1 id, $2 username, $3 password hash, $4 roles "a,b" */
extern const char store_staff_upsert_sql[];

/* CA login: one statement, a row when (issuer, serial) is revoked. */
void store_cert_revoked(struct db_batch *b, const char *issuer,
    const char *serial);
/* CA login: lock_for_cert() finds or creates the lock of a proven
 * certificate; one row: lock id, account id (NULL: unbound), kind. */
void store_lock_for_cert(struct db_batch *b, const char *issuer,
    const char *serial, const char *new_lock_id, const char *kind,
    const char *holder, const char *enterprise_name, const char *uscc,
    const char *not_after_epoch);
/* CA bind: bind_lock() binds the lock to the account of phone (made when
 * new) with fresh account, identity and event ids; id_hmac and id_masked
 * (the administrator's ID number) may be NULL; certificate and audit (the
 * audit base, auth_audit_base) are JSON. One row: account id, identity id,
 * created, replaced administrator's account and phone (NULL: none),
 * enterprise name, replaced administrator's identity. Refuses LOCK_ALREADY_BOUND, ACCOUNT_HAS_LOCK. */
void store_bind_lock(struct db_batch *b, const char *lock_id, const char *phone,
    const char *id_hmac, const char *id_masked, const char *certificate,
    const char *audit);
/* Consumer: $1 application id, $2 account id, $3 uscc, $4 enterprise name,
 * $5 new identity id, $6 event id, $7 audit base → outcome (granted,
 * lock_admin_exists, duplicate, unknown_account), identity id, phone,
 * replaced account, replaced phone, replaced identity. */
extern const char store_admin_by_application_sql[];

/* 人员管理. Rows of members and applications: 0 identity id, 1 account id,
 * 2 role, 3 status, 4 source, 5 since, 6 phone, 7 lock holder, 8 lock
 * kind, 9 certificate serial, 10 its not_after, 11 bound_at, 12 decided_at,
 * 13 opinion, 14 created_at. */
void store_members(struct db_batch *b, const char *uscc);
/* One statement: a row when identity_id is the active administrator of
 * uscc (a session's word is checked against the store). */
void store_admin_check(struct db_batch *b, const char *identity_id,
    const char *uscc);
/* status NULL: every status. */
void store_member_applications(struct db_batch *b, const char *uscc,
    const char *status);
/* One row: account id, phone, role, new status. Refuses NOT_ADMIN,
 * NOT_FOUND. */
void store_member_decide(struct db_batch *b, const char *identity_id,
    const char *uscc, int approve, const char *opinion, const char *decider);
/* One row: account id, role. Refuses NOT_ADMIN, NOT_FOUND,
 * CANNOT_REMOVE_ADMIN. */
void store_member_remove(struct db_batch *b, const char *identity_id,
    const char *uscc, const char *admin_identity, const char *audit);
/* One row: new admin's account and phone, old admin's account and phone.
 * Refuses NOT_ADMIN, NOT_FOUND. */
void store_admin_handover(struct db_batch *b, const char *admin_identity,
    const char *target, const char *uscc, const char *new_admin,
    const char *new_member, const char *audit);

/* Consumers: $1 issuer, $2 serial, $3 reason, $4 revoked_at. */
extern const char store_revoked_insert_sql[];
/* $1 issuer, $2 serial → the unbound lock holding that certificate. */
extern const char store_unbound_lock_of_cert_sql[];
/* issuance.cert.cancelled (issue 19): lock_cancel($1 issuer, $2 serial,
 * $3 revoked_at, $4 account, $5 uscc, $6 audit base): revoked, unbound,
 * the key's enterprise identity removed (040_cert_cancelled.sql). Columns:
 * 0 account or NULL, 1 identity removed or NULL. */
extern const char store_lock_cancel_sql[];
/* $1 issuer, $2 serial, $3 previous issuer, $4 previous serial,
 * $5 not_after: the renewed certificate joins its predecessor's lock. */
extern const char store_lock_cert_renewed_sql[];
/* $1 lock id: deletes it when unbound and holding no certificate. */
extern const char store_stray_lock_delete_sql[];

/* The audit trail. Consumer: $1 event id, $2 service, $3 action,
 * $4 actor type, $5 actor id, $6 identity id, $7 role, $8 ip,
 * $9 request id, $10 object type, $11 object id, $12 uscc, $13 before and
 * $14 after (JSON text), $15 occurred at → the new seq (NULL: a replay). */
extern const char store_audit_append_sql[];
extern const char store_audit_append_batch_sql[];
extern const char store_audit_append_envelope_sql[];

/* What an operator asks of the trail (audit.c); NULL fields mean any. The
 * strings are borrowed. */
struct audit_filter {
	const char *uscc, *actor, *action, *service, *object_id;
	const char *from, *to; /* RFC 3339, on occurred_at: [from, to) */
};
enum audit_page_kind {
	AUDIT_PAGE_NEWEST,  /* seq < after_seq (NULL: from the newest),
	                       newest first; columns: seq, entry JSON */
	AUDIT_PAGE_JSON,    /* seq > after_seq (NULL: 0), oldest first;
	                       columns: seq, entry JSON */
	AUDIT_PAGE_COLUMNS, /* the same with one column per field: seq,
	                       event_id, service, action, actor_type, actor_id,
	                       identity_id, role, ip, request_id, object_type,
	                       object_id, uscc, before, after, occurred_at,
	                       recorded_at, hash */
};
/* One statement: up to limit entries matching f. */
void store_audit_page(struct db_batch *b, const struct audit_filter *f,
    enum audit_page_kind kind, const char *after_seq, int limit);

/* Redis. "sessions:<account>": the account's session hashes (session.h). */
void store_sessions_key(char *out, size_t size, const char *account_id);
/* The cached GET /auth/me answer of an account (issue 16):
 * "mever:<account>" its version (INCR after every committed change the
 * answer shows), "me:<account>" "<version>\n<answer JSON>". */
void store_me_keys(char *ver_key, char *body_key, size_t size,
    const char *account_id);
/* The rate limit of audited failed staff logins with an unknown username:
 * "audit:staff_failed:ip:<address>" and "audit:staff_failed:all", and the
 * script taking one (see store.c). */
void store_staff_failed_keys(char *ip_key, char *all_key, size_t size,
    const char *peer);
extern const char store_staff_failed_lua[];
/* The sessions of a removed identity were rewritten (080_session_drops);
 * the removed identities still to rewrite, and when the next falls due. */
void store_sessions_dropped(struct db_batch *b, const char *identity_id);
void store_sessions_to_drop(struct db_batch *b, int limit, long grace_ms);
/* The script of auth_sessions_drop_identity (see store.c). */
extern const char store_session_identity_lua[];
/* The CA login challenge (common/challenge.h). */
extern const struct challenge_scope store_login_challenge;
/* "bind:<sha256 of the bind token>" → the proven lock (JSON), with a TTL. */
void store_bind_key(char *out, size_t size, const char *token_hash);
/* "sms:code:<purpose>:<phone>" → the code's HMAC and its wrong tries. */
void store_sms_code_key(char *out, size_t size, const char *phone,
    const char *purpose);
/* The SMS keys of (phone, purpose) on day (YYYYMMDD, Asia/Shanghai) from
 * client address peer: the cooldown marker, the day counters per phone and
 * per address, and the code's hash. */
struct store_sms_keys {
	char last[64], day[64], day_ip[128], code[64];
};
void store_sms_keys(struct store_sms_keys *k, const char *phone,
    const char *purpose, const char *day, const char *peer);

/* ---- notices.c: the inbox and the operators' dead letters ---- */

/* GET /api/v1/messages, POST /api/v1/messages/{id}/read,
 * POST /api/v1/messages/read-all. */
void auth_messages_list(struct http_req *req);
void auth_message_read(struct http_req *req);
void auth_messages_read_all(struct http_req *req);
/* GET /api/v1/sms/dead-letters, POST /api/v1/sms/dead-letters/{id}/resend
 * (operator). */
void auth_sms_dead_list(struct http_req *req);
void auth_sms_dead_resend(struct http_req *req);
struct bus_tx;
/* Inside a consumer's transaction: accepts the notice (data as in
 * proto/events/notice.requested.json, borrowed) from event type source —
 * renders it, resolves the recipient, writes the inbox message and the SMS
 * row once per notice_id; an event older than notice_max_age_s
 * (event_time, RFC 3339, may be NULL) is recorded as stale. Returns 0 (also for a duplicate or an
 * undeliverable notice, recorded with its reason), -1 on an SQL error. */
int auth_notice_accept(struct bus_tx *tx, const char *source,
    const char *event_time, json_t *data);

/* ---- deliver.c: the SMS sender ---- */

struct sweep;

/* One round of the sweep row s (common/sweep.h): claims due SMS rows (a
 * lease), sends them, records the results, then ends the round in s. */
void auth_deliver_round(struct sweep *s);
/* Arms the crash points (CAPLAT_FAULT: auth_sms_crash_after_claim,
 * auth_sms_crash_after_send). */
void auth_deliver_init(void);

/* ---- sweep.c: the timers ---- */

/* Starts / stops the sweep table's timers on the loop. */
void auth_sweep_start(void);
void auth_sweep_stop(void);
/* Asks for an SMS round soon, from any thread (a consumer accepted an SMS,
 * a resend). */
void auth_sweep_kick_sms(void);

/* ---- store.c: notices (020_notices.sql) ---- */

/* $1 notice id, $2 kind, $3 source, $4 recipient (JSON), $5 title, $6 body,
 * $7 params (JSON), $8 SMS params (JSON), $9 SMS text, $10 inbox, $11 sms
 * → outcome,
 * account, reason. */
extern const char store_notice_accept_sql[];
/* $1 notice id, $2 kind, $3 source, $4 recipient (JSON), $5 reason. */
extern const char store_notice_undeliverable_sql[];
/* $1 cert id, $2 issuer, $3 serial, $4 account id (or NULL). */
extern const char store_notice_cert_sql[];
extern const char store_notice_certs_imported_sql[];
extern const char store_notice_certs_imported_cols_sql[];
/* $1 order id, $2 account id, $3 order number. */
extern const char store_notice_order_upsert_sql[];
/* $1 order id → account id, order number. */
extern const char store_notice_order_sql[];
/* In the member decision's batch: emits auth.notice.requested to the
 * applicant. */
void store_member_notice(struct db_batch *b, const char *identity_id,
    int approve, const char *opinion);
/* Claims up to limit due rows: id, notice id, phone, template, params,
 * text, attempt (the claim's token for the updates below). */
void store_sms_claim(struct db_batch *b, int limit, long lease_s);
/* → 0 milliseconds until the next pending row's backoff or sending row's lease
 * ends, NULL when none waits. */
void store_sms_next(struct db_batch *b);
void store_sms_sent(struct db_batch *b, const char *id, const char *attempt,
    const char *biz_id);
/* Back to pending after delay_ms; count_attempt 0 gives the attempt back
 * (our own rate limit). */
void store_sms_retry(struct db_batch *b, const char *id, const char *attempt,
    long delay_ms, const char *error, int count_attempt);
void store_sms_dead(struct db_batch *b, const char *id, const char *attempt,
    const char *error);
/* Dead letters, newest first: seq, item JSON. */
void store_sms_dead_page(struct db_batch *b, const char *before_seq, int limit);
/* One row (item JSON) when id was dead and is pending again. */
void store_sms_resend(struct db_batch *b, const char *id);
/* The account's messages, newest first: seq, item JSON. */
void store_messages_page(struct db_batch *b, const char *account_id,
    const char *before_seq, int limit, int unread_only);
/* One row: the number of unread messages. */
void store_messages_unread(struct db_batch *b, const char *account_id);
/* One row (item JSON) when the message is the account's. */
void store_message_read(struct db_batch *b, const char *account_id,
    const char *message_id);
void store_messages_read_all(struct db_batch *b, const char *account_id);
/* "sms:notice:<phone>:<YYYYMMDDHH>": notice SMS to a number in an hour. */
void store_sms_rate_key(char *out, size_t size, const char *phone,
    const char *hour);

#endif
