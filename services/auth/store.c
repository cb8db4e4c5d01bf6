/* store — every SQL statement and Redis key of the auth service. Each
 * function appends its statements to a batch (one transaction, one round
 * trip); the caller's continuation reads the result by statement index.
 * The consumers' statements are texts for bus_tx_exec/bus_tx_query. */
#include "auth.h"

#include "challenge.h"
#include "db.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

void
store_account_insert(struct db_batch *b, const char *id, const char *phone,
    const char *password_hash)
{
	const char *p[] = {id, phone, password_hash};

	db_batch_add(b,
	    "INSERT INTO accounts (id, phone, password_hash) VALUES ($1, $2, $3)",
	    3, p);
}

const char store_account_by_phone_sql[] =
    "SELECT id, phone, password_hash, failed_logins,"
    " (locked_until IS NOT NULL AND locked_until > now()) AS locked,"
    " CEIL(EXTRACT(EPOCH FROM (locked_until - now())))::bigint AS locked_for"
    " FROM accounts WHERE phone = $1";

/* The lockout rule, one text per table (identifiers cannot be parameters):
 * the max-th failure starts the lockout and restarts the counter. */
#define LOGIN_FAILED_SQL(table)                                                                      \
	"UPDATE " table " SET"                                                                       \
	" failed_logins = CASE WHEN failed_logins + 1 >= $2::int THEN 0 ELSE failed_logins + 1 END," \
	" locked_until = CASE WHEN failed_logins + 1 >= $2::int"                                     \
	"   THEN now() + make_interval(secs => $3::int) ELSE locked_until END"                       \
	" WHERE id = $1 RETURNING locked_until IS NOT NULL AND locked_until > now()"

static void
store_failed(struct db_batch *b, const char *sql, const char *id,
    long max_failures, long lockout_seconds)
{
	char max[24], secs[24];
	const char *p[] = {id, max, secs};

	snprintf(max, sizeof(max), "%ld", max_failures);
	snprintf(secs, sizeof(secs), "%ld", lockout_seconds);
	db_batch_add(b, sql, 3, p);
}

void
store_login_failed(struct db_batch *b, const char *account_id,
    long max_failures, long lockout_seconds)
{
	store_failed(b, LOGIN_FAILED_SQL("accounts"), account_id, max_failures,
	    lockout_seconds);
}

void
store_login_succeeded(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "UPDATE accounts SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0",
	    1, p);
}

void
store_password_reset(struct db_batch *b, const char *phone,
    const char *password_hash)
{
	const char *p[] = {phone, password_hash};

	db_batch_add(b,
	    "UPDATE accounts SET password_hash = $2, failed_logins = 0, locked_until = NULL"
	    " WHERE phone = $1 RETURNING id",
	    2, p);
}

/* The session's view of an account: account, current identity (if any).
 * Columns: 0 id, 1 phone, 2 identity id, 3 type, 4 role, 5 uscc,
 * 6 enterprise name. */
const char store_session_view_sql[] =
    "SELECT a.id, a.phone, i.id, i.type, i.role, i.uscc, i.enterprise_name"
    " FROM accounts a"
    " LEFT JOIN current_identity c ON c.account_id = a.id"
    " LEFT JOIN identities i ON i.id = c.identity_id AND i.status = 'active'"
    " WHERE a.id = $1";

const char store_session_view_by_phone_sql[] =
    "SELECT a.id, a.phone, i.id, i.type, i.role, i.uscc, i.enterprise_name"
    " FROM accounts a"
    " LEFT JOIN current_identity c ON c.account_id = a.id"
    " LEFT JOIN identities i ON i.id = c.identity_id AND i.status = 'active'"
    " WHERE a.phone = $1";

#define UTC_TEXT(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The "me" answer: account and lock (statement 0), identities (statement 1:
 * every identity of the account with its status, source, 审批时间 and
 * opinion; pending, rejected and removed ones are the applicant's history). */
void
store_me(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "SELECT a.id, a.phone, l.id, l.kind, l.holder, l.enterprise_name, l.uscc,"
	    " c.identity_id"
	    " FROM accounts a LEFT JOIN locks l ON l.account_id = a.id"
	    " LEFT JOIN current_identity c ON c.account_id = a.id"
	    " WHERE a.id = $1",
	    1, p);
	db_batch_add(b,
	    "SELECT id, type, enterprise_name, uscc, role, " UTC_TEXT(
	        "created_at") ", status, source, " UTC_TEXT("decided_at") ","
	                                                                  " opinion"
	                                                                  " FROM identities WHERE account_id = $1"
	                                                                  " ORDER BY created_at, id",
	    1, p);
}

void
store_identity_insert(struct db_batch *b, const char *id,
    const char *account_id, const char *type, const char *enterprise_name,
    const char *uscc, const char *role, const char *status, const char *source)
{
	const char *p[] = {id, account_id, type, enterprise_name, uscc, role,
	    status, source};

	db_batch_add(b,
	    "INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role,"
	    " status, source, activated_at)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
	    " CASE WHEN $7 = 'active' THEN now() END)",
	    8, p);
}

void
store_identity_status(struct db_batch *b, const char *account_id,
    const char *identity_id)
{
	const char *p[] = {account_id, identity_id};

	db_batch_add(b,
	    "SELECT status FROM identities WHERE account_id = $1 AND id = $2",
	    2, p);
}

void
store_identity_make_current(struct db_batch *b, const char *account_id,
    const char *identity_id, int only_if_none)
{
	const char *p[] = {account_id, identity_id};

	if (only_if_none)
		db_batch_add(b,
		    "INSERT INTO current_identity (account_id, identity_id) VALUES ($1, $2)"
		    " ON CONFLICT (account_id) DO NOTHING",
		    2, p);
	else
		db_batch_add(b,
		    "INSERT INTO current_identity (account_id, identity_id)"
		    " SELECT $1, id FROM identities WHERE id = $2 AND account_id = $1"
		    " AND status = 'active'"
		    " ON CONFLICT (account_id) DO UPDATE SET identity_id = EXCLUDED.identity_id"
		    " RETURNING identity_id",
		    2, p);
}

const char store_staff_by_username_sql[] =
    "SELECT id, username, password_hash, array_to_json(roles)::text,"
    " (locked_until IS NOT NULL AND locked_until > now())"
    " FROM staff WHERE username = $1";

void
store_staff_login_failed(struct db_batch *b, const char *staff_id,
    long max_failures, long lockout_seconds)
{
	store_failed(b, LOGIN_FAILED_SQL("staff"), staff_id, max_failures,
	    lockout_seconds);
}

const char store_staff_upsert_sql[] =
    "INSERT INTO staff (id, username, password_hash, roles)"
    " VALUES ($1, $2, $3, string_to_array($4, ','))"
    " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
    " roles = EXCLUDED.roles, failed_logins = 0, locked_until = NULL";

/* ---- CA locks ------------------------------------------------------------ */

void
store_cert_revoked(struct db_batch *b, const char *issuer, const char *serial)
{
	const char *p[] = {issuer, serial};

	db_batch_add(b,
	    "SELECT 1 FROM revoked_certs WHERE issuer = $1 AND serial = $2", 2,
	    p);
}

void
store_lock_for_cert(struct db_batch *b, const char *issuer, const char *serial,
    const char *new_lock_id, const char *kind, const char *holder,
    const char *enterprise_name, const char *uscc, const char *not_after_epoch)
{
	const char *p[] = {issuer, serial, new_lock_id, kind, holder,
	    enterprise_name, uscc, not_after_epoch};

	db_batch_add(b,
	    "SELECT f.lock_id, f.account_id, f.kind FROM lock_for_cert($1, $2, $3, $4, $5, $6, $7,"
	    " to_timestamp($8::bigint)) f",
	    8, p);
}

void
store_bind_lock(struct db_batch *b, const char *lock_id, const char *phone,
    const char *id_hmac, const char *id_masked, const char *certificate,
    const char *audit)
{
	char account[37], identity[37], ev_registered[37], ev_bound[37],
	    ev_identity[37];

	uuid_v4(account);
	uuid_v4(identity);
	uuid_v4(ev_registered);
	uuid_v4(ev_bound);
	uuid_v4(ev_identity);
	const char *p[] = {lock_id, phone, account, identity, ev_registered,
	    ev_bound, ev_identity, id_hmac, id_masked, certificate, audit};
	db_batch_add(b,
	    "SELECT account_id, identity_id, created, replaced_account, replaced_phone,"
	    " enterprise_name, replaced_identity FROM bind_lock($1, $2, $3, $4, $5, $6, $7,"
	    " $8, $9, $10::jsonb, $11::jsonb)",
	    11, p);
}

const char store_revoked_insert_sql[] =
    "INSERT INTO revoked_certs (issuer, serial, reason, revoked_at)"
    " VALUES ($1, $2, $3, COALESCE($4::timestamptz, now()))"
    " ON CONFLICT (issuer, serial) DO NOTHING";

const char store_lock_cancel_sql[] =
    "SELECT account_id, identity_id FROM lock_cancel($1, $2, $3::timestamptz,"
    " $4::uuid, $5, $6::jsonb)";

const char store_unbound_lock_of_cert_sql[] =
    "SELECT c.lock_id FROM lock_certs c JOIN locks l ON l.id = c.lock_id"
    " WHERE c.issuer = $1 AND c.serial = $2 AND l.account_id IS NULL";

const char store_lock_cert_renewed_sql[] =
    "INSERT INTO lock_certs (issuer, serial, lock_id, not_after)"
    " SELECT $1, $2, lock_id, $5::timestamptz FROM lock_certs"
    " WHERE issuer = $3 AND serial = $4"
    " ON CONFLICT (issuer, serial) DO UPDATE SET lock_id = EXCLUDED.lock_id"
    " WHERE lock_certs.lock_id <> EXCLUDED.lock_id"
    " AND (SELECT account_id FROM locks WHERE id = lock_certs.lock_id) IS NULL";

const char store_stray_lock_delete_sql[] =
    "DELETE FROM locks l WHERE l.id = $1 AND l.account_id IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM lock_certs c WHERE c.lock_id = l.id)";

const char store_admin_by_application_sql[] =
    "SELECT outcome, identity_id, phone, replaced_account, replaced_phone,"
    " replaced_identity FROM admin_by_application($1, $2, $3, $4, $5, $6, $7::jsonb)";

/* ---- 人员管理 ----------------------------------------------------------- */

/* Columns: 0 identity id, 1 account id, 2 role, 3 status, 4 source,
 * 5 since, 6 phone, 7 lock holder, 8 lock kind, 9 serial, 10 not_after,
 * 11 bound_at, 12 decided_at, 13 opinion, 14 created_at. */
#define MEMBER_COLUMNS                                                                                                                                                            \
	"SELECT i.id, i.account_id, i.role, i.status, i.source, " UTC_TEXT(                                                                                                       \
	    "COALESCE(i.activated_at, i.created_at)") ", a.phone, l.holder, "                                                                                                     \
	                                              "l.kind, c.serial, " UTC_TEXT("c.not_after") ", " UTC_TEXT("l.bound_at") ", " UTC_TEXT(                                     \
	                                                  "i.decided_at") ", i.opinion, " UTC_TEXT("i.created_at") " FROM identities i JOIN accounts a ON a.id = i.account_id"    \
	                                                                                                           " LEFT JOIN locks l ON l.account_id = i.account_id"            \
	                                                                                                           " LEFT JOIN LATERAL (SELECT serial, not_after FROM lock_certs" \
	                                                                                                           "   WHERE lock_id = l.id ORDER BY not_after DESC LIMIT 1) c ON true"

void
store_admin_check(struct db_batch *b, const char *identity_id, const char *uscc)
{
	const char *p[] = {identity_id, uscc};

	db_batch_add(b,
	    "SELECT 1 FROM identities WHERE id = $1 AND uscc = $2"
	    " AND role = 'admin' AND status = 'active'",
	    2, p);
}

void
store_members(struct db_batch *b, const char *uscc)
{
	const char *p[] = {uscc};

	db_batch_add(b,
	    MEMBER_COLUMNS " WHERE i.uscc = $1 AND i.status = 'active'"
	                   " ORDER BY i.role <> 'admin', i.activated_at, i.id",
	    1, p);
}

void
store_member_applications(struct db_batch *b, const char *uscc,
    const char *status)
{
	const char *p[] = {uscc, status};

	db_batch_add(b,
	    MEMBER_COLUMNS " WHERE i.uscc = $1 AND i.source = 'approval'"
	                   " AND ($2::text IS NULL OR i.status = $2)"
	                   " ORDER BY i.created_at DESC, i.id LIMIT 500",
	    2, p);
}

void
store_member_decide(struct db_batch *b, const char *identity_id,
    const char *uscc, int approve, const char *opinion, const char *decider)
{
	char ev[37];

	uuid_v4(ev);
	const char *p[] = {identity_id, uscc, approve ? "true" : "false",
	    opinion, decider, ev};
	db_batch_add(b,
	    "SELECT account_id, phone, role, status"
	    " FROM member_decide($1, $2, $3::boolean, $4, $5, $6)",
	    6, p);
}

void
store_member_remove(struct db_batch *b, const char *identity_id,
    const char *uscc, const char *admin_identity, const char *audit)
{
	const char *p[] = {identity_id, uscc, admin_identity, audit};

	db_batch_add(b,
	    "SELECT account_id, role FROM member_remove($1, $2, $3, $4::jsonb)",
	    4, p);
}

void
store_admin_handover(struct db_batch *b, const char *admin_identity,
    const char *target, const char *uscc, const char *new_admin,
    const char *new_member, const char *audit)
{
	char ev_admin[37], ev_member[37];

	uuid_v4(ev_admin);
	uuid_v4(ev_member);
	const char *p[] = {admin_identity, target, uscc, new_admin, new_member,
	    ev_admin, ev_member, audit};
	db_batch_add(b,
	    "SELECT admin_account, admin_phone, member_account, member_phone"
	    " FROM admin_handover($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
	    8, p);
}

/* ---- Redis keys ---------------------------------------------------------- */

const struct challenge_scope store_login_challenge = {"auth.login", "chal:"};

void
store_bind_key(char *out, size_t size, const char *token_hash)
{
	snprintf(out, size, "bind:%s", token_hash);
}

void
store_sms_code_key(char *out, size_t size, const char *phone,
    const char *purpose)
{
	snprintf(out, size, "sms:code:%s:%s", purpose, phone);
}

void
store_sms_keys(struct store_sms_keys *k, const char *phone, const char *purpose,
    const char *day, const char *peer)
{
	snprintf(k->last, sizeof(k->last), "sms:last:%s", phone);
	snprintf(k->day, sizeof(k->day), "sms:day:%s:%s", day, phone);
	snprintf(k->day_ip, sizeof(k->day_ip), "sms:dayip:%s:%s", day, peer);
	store_sms_code_key(k->code, sizeof(k->code), phone, purpose);
}

void
store_sessions_key(char *out, size_t size, const char *account_id)
{
	snprintf(out, size, "sessions:%s", account_id);
}

void
store_me_keys(char *ver_key, char *body_key, size_t size,
    const char *account_id)
{
	snprintf(ver_key, size, "mever:%s", account_id);
	snprintf(body_key, size, "me:%s", account_id);
}

void
store_staff_failed_keys(char *ip_key, char *all_key, size_t size,
    const char *peer)
{
	snprintf(ip_key, size, "audit:staff_failed:ip:%s", peer);
	snprintf(all_key, size, "audit:staff_failed:all");
}

/* KEYS[1] "audit:staff_failed:ip:<address>", KEYS[2]
 * "audit:staff_failed:all"; ARGV[1] the window (s), ARGV[2] the entries
 * allowed per window for all addresses together. Returns 1 when this failed
 * staff login with an unknown username may be audited: the first of its
 * address in the window, and one of the first ARGV[2] of all addresses. */
const char store_staff_failed_lua[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then"
    " return 0 end "
    "local n = redis.call('INCR', KEYS[2]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end "
    "if n > tonumber(ARGV[2]) then return 0 end "
    "return 1";

/* KEYS[1] "sessions:<account>"; ARGV[1] the identity id; ARGV[2] "" or a
 * JSON object of the replacement identity fields. Every live session of the
 * account whose current identity is ARGV[1] loses its identity fields (and
 * takes the replacement's), keeping its TTL. Returns how many changed. */
const char store_session_identity_lua[] =
    "local n = 0 "
    "for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    " local k = 'sess:' .. h "
    " local v = redis.call('GET', k) "
    " if v then "
    "  local ok, s = pcall(cjson.decode, v) "
    "  if ok and type(s) == 'table' and s['identity_id'] == ARGV[1] then "
    "   for _, f in ipairs({'identity_id', 'identity_type', 'role',"
    "     'enterprise_id', 'uscc', 'enterprise_name'}) do s[f] = nil end "
    "   if ARGV[2] ~= '' then "
    "    for f, x in pairs(cjson.decode(ARGV[2])) do s[f] = x end "
    "   end "
    "   redis.call('SET', k, cjson.encode(s), 'KEEPTTL') "
    "   n = n + 1 "
    "  end "
    " end "
    "end "
    "return n";

/* The rewrite of the sessions of a removed identity succeeded
 * (080_session_drops.sql). */
void
store_sessions_dropped(struct db_batch *b, const char *identity_id)
{
	const char *p[] = {identity_id};

	db_batch_add(b,
	    "UPDATE identities SET sessions_dropped_at = now()"
	    " WHERE id = $1::uuid AND status = 'removed'"
	    " AND sessions_dropped_at IS NULL",
	    1, p);
}

/* The session_drops sweep: [0] up to limit removed identities whose
 * sessions are not known to have dropped them, removed at least grace_ms
 * ago (the removal's own rewrite runs right after its commit): id,
 * account_id; [1] milliseconds until the next of them falls due, NULL when
 * none. */
void
store_sessions_to_drop(struct db_batch *b, int limit, long grace_ms)
{
	char lim[16], grace[24];
	const char *p[] = {lim, grace};

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(grace, sizeof(grace), "%ld", grace_ms);
	db_batch_add(b,
	    "SELECT id, account_id FROM identities"
	    " WHERE status = 'removed' AND sessions_dropped_at IS NULL"
	    " AND removed_at <= now() - make_interval(secs => $2::bigint / 1000.0)"
	    " ORDER BY removed_at LIMIT $1::int",
	    2, p);
	db_batch_add(b,
	    "SELECT ceil(1000 * extract(epoch FROM min(removed_at) - now())"
	    " + $1::bigint)::bigint FROM identities"
	    " WHERE status = 'removed' AND sessions_dropped_at IS NULL",
	    1, p + 1);
}

/* ---- the audit trail (deploy/sql/auth/010_audit.sql) --------------------- */

const char store_audit_append_sql[] =
    "SELECT audit_append($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13::jsonb, $14::jsonb, COALESCE($15::timestamptz, now()))";

/* $1 the "entries" array of a <svc>.audit.batch event (050_audit_batch). */
const char store_audit_append_batch_sql[] =
    "SELECT audit_append_batch($1::jsonb)";

/* The same from the whole event as received ($1 its CloudEvents envelope):
 * PostgreSQL takes the entries out, the consumer parses and rebuilds no
 * text. No row when the data has no array of entries. */
const char store_audit_append_envelope_sql[] =
    "SELECT audit_append_batch(e) FROM (SELECT $1::jsonb->'data'->'entries' AS e) b"
    " WHERE jsonb_typeof(e) = 'array'";

/* The operators' filters: $1 uscc, $2 actor id, $3 action, $4 service,
 * $5 object id, $6 from (inclusive), $7 to (exclusive) on occurred_at; NULL
 * means any. Every statement is prepared (common/db.c) and soon runs on a
 * generic plan, where "($1 IS NULL OR uscc = $1)" can use no index: so each
 * page statement comes in one variant per DRIVING filter, the most
 * selective one given (object, actor, uscc, action, service, time, none),
 * written as a plain condition that its (column, seq) index serves in
 * seq order; the other filters stay optional (issue 12: filtered queries
 * index-driven, 010_audit.sql and 050_audit_batch.sql's indexes). */
#define AUDIT_OPTS                                                         \
	" AND ($1::text IS NULL OR uscc = $1)"                             \
	" AND ($2::text IS NULL OR actor_id = $2)"                         \
	" AND ($3::text IS NULL OR action = $3)"                           \
	" AND ($4::text IS NULL OR service = $4)"                          \
	" AND ($5::text IS NULL OR object_id = $5)"                        \
	" AND ($6::timestamptz IS NULL OR occurred_at >= $6::timestamptz)" \
	" AND ($7::timestamptz IS NULL OR occurred_at < $7::timestamptz)"

enum audit_driver {
	AUDIT_BY_OBJECT,
	AUDIT_BY_ACTOR,
	AUDIT_BY_USCC,
	AUDIT_BY_ACTION,
	AUDIT_BY_SERVICE,
	AUDIT_BY_TIME,
	AUDIT_BY_NONE,
	AUDIT_DRIVERS
};

#define AUDIT_DRIVER_CONDS(X)                                            \
	X(" WHERE object_id = $5")                                       \
	X(" WHERE actor_id = $2")                                        \
	X(" WHERE uscc = $1")                                            \
	X(" WHERE action = $3")                                          \
	X(" WHERE service = $4")                                         \
	X(" WHERE occurred_at >= COALESCE($6::timestamptz, '-infinity')" \
	  " AND occurred_at < COALESCE($7::timestamptz, 'infinity')")    \
	X(" WHERE true")

/* One entry as the API's JSON object (text). */
#define AUDIT_ITEM_JSON                                                           \
	"json_build_object('seq', seq, 'event_id', event_id, 'service', service," \
	" 'action', action, 'actor', json_build_object('type', actor_type,"       \
	" 'id', actor_id, 'identity_id', identity_id, 'role', role, 'ip', ip,"    \
	" 'request_id', request_id), 'object_type', object_type,"                 \
	" 'object_id', object_id, 'uscc', uscc, 'before', before,"                \
	" 'after', after, 'occurred_at', audit_time(occurred_at),"                \
	" 'recorded_at', audit_time(recorded_at), 'hash', hash)::text"

#define AUDIT_NEWEST_SQL(cond)                                           \
	"SELECT seq, " AUDIT_ITEM_JSON " FROM audit_log" cond AUDIT_OPTS \
	" AND ($8::bigint IS NULL OR seq < $8::bigint)"                  \
	" ORDER BY seq DESC LIMIT $9::int",
#define AUDIT_JSON_SQL(cond)                                             \
	"SELECT seq, " AUDIT_ITEM_JSON " FROM audit_log" cond AUDIT_OPTS \
	" AND seq > COALESCE($8::bigint, 0)"                             \
	" ORDER BY seq LIMIT $9::int",
#define AUDIT_COLUMNS_SQL(cond)                                         \
	"SELECT seq, event_id, service, action, actor_type, actor_id,"  \
	" identity_id, role, ip, request_id, object_type, object_id,"   \
	" uscc, before::text, after::text, audit_time(occurred_at),"    \
	" audit_time(recorded_at), hash FROM audit_log" cond AUDIT_OPTS \
	" AND seq > COALESCE($8::bigint, 0)"                            \
	" ORDER BY seq LIMIT $9::int",

static const char *const audit_newest_sql[AUDIT_DRIVERS] = {
    AUDIT_DRIVER_CONDS(AUDIT_NEWEST_SQL)};
static const char *const audit_json_sql[AUDIT_DRIVERS] = {
    AUDIT_DRIVER_CONDS(AUDIT_JSON_SQL)};
static const char *const audit_columns_sql[AUDIT_DRIVERS] = {
    AUDIT_DRIVER_CONDS(AUDIT_COLUMNS_SQL)};

static enum audit_driver
audit_driver(const struct audit_filter *f)
{
	if (f->object_id != NULL)
		return AUDIT_BY_OBJECT;
	if (f->actor != NULL)
		return AUDIT_BY_ACTOR;
	if (f->uscc != NULL)
		return AUDIT_BY_USCC;
	if (f->action != NULL)
		return AUDIT_BY_ACTION;
	if (f->service != NULL)
		return AUDIT_BY_SERVICE;
	if (f->from != NULL || f->to != NULL)
		return AUDIT_BY_TIME;
	return AUDIT_BY_NONE;
}

void
store_audit_page(struct db_batch *b, const struct audit_filter *f,
    enum audit_page_kind kind, const char *after_seq, int limit)
{
	char lim[16];
	const char *p[] = {f->uscc, f->actor, f->action, f->service,
	    f->object_id, f->from, f->to, after_seq, lim};
	enum audit_driver d = audit_driver(f);

	snprintf(lim, sizeof(lim), "%d", limit);
	switch (kind) {
	case AUDIT_PAGE_NEWEST:
		db_batch_add(b, audit_newest_sql[d], 9, p);
		break;
	case AUDIT_PAGE_JSON:
		db_batch_add(b, audit_json_sql[d], 9, p);
		break;
	case AUDIT_PAGE_COLUMNS:
		db_batch_add(b, audit_columns_sql[d], 9, p);
		break;
	}
}

/* ---- notices, the inbox and the SMS deliveries (020_notices.sql) ---- */

const char store_notice_accept_sql[] =
    "SELECT outcome, account, reason FROM notice_accept($1, $2, $3,"
    " $4::jsonb, $5, $6, $7::jsonb, $8::jsonb, $9, $10::boolean, $11::boolean)";

const char store_notice_undeliverable_sql[] =
    "INSERT INTO notices (notice_id, kind, source, recipient, status, reason)"
    " VALUES ($1, $2, $3, $4::jsonb, 'undeliverable', $5)"
    " ON CONFLICT (notice_id) DO NOTHING";

const char store_notice_cert_sql[] =
    "INSERT INTO notice_certs (cert_id, issuer, serial, account_id)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (cert_id) DO UPDATE SET"
    " issuer = EXCLUDED.issuer, serial = EXCLUDED.serial,"
    " account_id = COALESCE(EXCLUDED.account_id, notice_certs.account_id)";

/* $1 a JSON array of issuance.cert.registered data (issuance.certs.imported):
 * store_notice_cert_sql for each well-formed one. */
const char store_notice_certs_imported_sql[] =
    "INSERT INTO notice_certs (cert_id, issuer, serial, account_id)"
    " SELECT (e->>'cert_id')::uuid, e->>'issuer', e->>'serial', (e->>'account_id')::uuid"
    " FROM jsonb_array_elements($1::jsonb) e"
    " WHERE e->>'cert_id' ~ '^[0-9a-fA-F-]{36}$' AND e->>'issuer' IS NOT NULL"
    " AND e->>'serial' IS NOT NULL"
    " ON CONFLICT (cert_id) DO UPDATE SET"
    " issuer = EXCLUDED.issuer, serial = EXCLUDED.serial,"
    " account_id = COALESCE(EXCLUDED.account_id, notice_certs.account_id)";

/* $1 the data of an issuance.certs.imported of one array per field (issuance
 * 091): element i of each is the i-th certificate; as above. */
const char store_notice_certs_imported_cols_sql[] =
    "INSERT INTO notice_certs (cert_id, issuer, serial, account_id)"
    " SELECT x.cert_id::uuid, x.issuer, x.serial, x.account_id::uuid"
    " FROM (SELECT $1::jsonb AS d) e, ROWS FROM (jsonb_array_elements_text(e.d->'cert_id'),"
    " jsonb_array_elements_text(e.d->'issuer'), jsonb_array_elements_text(e.d->'serial'),"
    " jsonb_array_elements_text(e.d->'account_id')) AS x(cert_id, issuer, serial, account_id)"
    " WHERE x.cert_id ~ '^[0-9a-fA-F-]{36}$' AND x.issuer IS NOT NULL AND x.serial IS NOT NULL"
    " AND (x.account_id IS NULL OR x.account_id ~ '^[0-9a-fA-F-]{36}$')"
    " ON CONFLICT (cert_id) DO UPDATE SET"
    " issuer = EXCLUDED.issuer, serial = EXCLUDED.serial,"
    " account_id = COALESCE(EXCLUDED.account_id, notice_certs.account_id)";

const char store_notice_order_upsert_sql[] =
    "INSERT INTO notice_orders (order_id, account_id, number)"
    " VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING";

const char store_notice_order_sql[] =
    "SELECT account_id, number FROM notice_orders WHERE order_id = $1::uuid";

const char store_member_notice_sql[] =
    "SELECT outbox_emit('auth.notice.requested', i.id::text,"
    " jsonb_build_object('notice_id', 'member_application:' || i.id::text,"
    " 'kind', 'member_application.decided',"
    " 'recipient', jsonb_build_object('account_id', i.account_id),"
    " 'params', jsonb_strip_nulls(jsonb_build_object('identity_id', i.id,"
    " 'enterprise_name', i.enterprise_name, 'role', i.role, 'result',"
    " CASE WHEN $2::boolean THEN 'approved' ELSE 'rejected' END,"
    " 'opinion', $3::text))))"
    " FROM identities i WHERE i.id = $1::uuid";

void
store_member_notice(struct db_batch *b, const char *identity_id, int approve,
    const char *opinion)
{
	const char *p[] = {identity_id, approve ? "true" : "false", opinion};

	db_batch_add(b, store_member_notice_sql, 3, p);
}

#define SMS_COLUMNS                                                        \
	" d.id, d.notice_id, d.phone, d.template, d.params::text, d.text," \
	" d.attempts"

void
store_sms_claim(struct db_batch *b, int limit, long lease_s)
{
	char lim[16], lease[24];
	const char *p[] = {lim, lease};

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(lease, sizeof(lease), "%ld", lease_s);
	db_batch_add(b,
	    "UPDATE sms_deliveries d SET status = 'sending',"
	    " attempts = d.attempts + 1,"
	    " lease_until = now() + make_interval(secs => $2::int)"
	    " FROM (SELECT id FROM sms_deliveries"
	    "  WHERE (status = 'pending' AND next_at <= now())"
	    "  OR (status = 'sending' AND lease_until <= now())"
	    "  ORDER BY next_at LIMIT $1::int FOR UPDATE SKIP LOCKED) c"
	    " WHERE d.id = c.id RETURNING" SMS_COLUMNS,
	    2, p);
}

void
store_sms_next(struct db_batch *b)
{
	db_batch_add(b,
	    "SELECT ceil(1000 * extract(epoch FROM min(CASE status WHEN 'pending'"
	    " THEN next_at ELSE lease_until END) - now()))::bigint"
	    " FROM sms_deliveries WHERE status IN ('pending', 'sending')",
	    0, NULL);
}

void
store_sms_sent(struct db_batch *b, const char *id, const char *attempt,
    const char *biz_id)
{
	const char *p[] = {id, attempt, biz_id};

	db_batch_add(b,
	    "UPDATE sms_deliveries SET status = 'sent', sent_at = now(),"
	    " provider_id = $3, lease_until = NULL, last_error = NULL"
	    " WHERE id = $1 AND status = 'sending' AND attempts = $2::int",
	    3, p);
}

void
store_sms_retry(struct db_batch *b, const char *id, const char *attempt,
    long delay_ms, const char *error, int count_attempt)
{
	char delay[24];
	const char *p[] = {id, attempt, delay, error,
	    count_attempt ? "0" : "1"};

	snprintf(delay, sizeof(delay), "%ld", delay_ms);
	db_batch_add(b,
	    "UPDATE sms_deliveries SET status = 'pending',"
	    " attempts = attempts - $5::int,"
	    " next_at = now() + make_interval(secs => $3::double precision / 1000),"
	    " lease_until = NULL, last_error = $4"
	    " WHERE id = $1 AND status = 'sending' AND attempts = $2::int",
	    5, p);
}

void
store_sms_dead(struct db_batch *b, const char *id, const char *attempt,
    const char *error)
{
	const char *p[] = {id, attempt, error};

	db_batch_add(b,
	    "UPDATE sms_deliveries SET status = 'dead', dead_at = now(),"
	    " lease_until = NULL, last_error = $3"
	    " WHERE id = $1 AND status = 'sending' AND attempts = $2::int",
	    3, p);
}

#define SMS_DEAD_JSON                                                      \
	"json_build_object('id', d.id, 'notice_id', d.notice_id,"          \
	" 'account_id', d.account_id, 'phone', overlay(d.phone placing"    \
	" '****' from 4 for 4), 'kind', d.template, 'status', d.status,"   \
	" 'attempts', d.attempts, 'last_error', d.last_error,"             \
	" 'created_at', to_char(d.created_at AT TIME ZONE 'UTC',"          \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'dead_at', to_char(d.dead_at" \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))::text"

void
store_sms_dead_page(struct db_batch *b, const char *before_seq, int limit)
{
	char lim[16];
	const char *p[] = {before_seq, lim};

	snprintf(lim, sizeof(lim), "%d", limit);
	db_batch_add(b,
	    "SELECT d.seq, " SMS_DEAD_JSON " FROM sms_deliveries d"
	    " WHERE d.status = 'dead' AND ($1::bigint IS NULL OR d.seq < $1::bigint)"
	    " ORDER BY d.seq DESC LIMIT $2::int",
	    2, p);
}

void
store_sms_resend(struct db_batch *b, const char *id)
{
	const char *p[] = {id};

	db_batch_add(b,
	    "UPDATE sms_deliveries d SET status = 'pending', next_at = now(),"
	    " attempts = 0, dead_at = NULL"
	    " WHERE d.id = $1::uuid AND d.status = 'dead'"
	    " RETURNING " SMS_DEAD_JSON,
	    1, p);
}

#define MESSAGE_JSON                                                       \
	"json_build_object('id', m.id, 'notice_id', m.notice_id, 'kind',"  \
	" m.kind, 'title', m.title, 'body', m.body, 'params', m.params,"   \
	" 'created_at', to_char(m.created_at AT TIME ZONE 'UTC',"          \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'read_at', to_char(m.read_at" \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))::text"

void
store_messages_page(struct db_batch *b, const char *account_id,
    const char *before_seq, int limit, int unread_only)
{
	char lim[16];
	const char *p[] = {account_id, before_seq, lim,
	    unread_only ? "true" : "false"};

	snprintf(lim, sizeof(lim), "%d", limit);
	db_batch_add(b,
	    "SELECT m.seq, " MESSAGE_JSON " FROM messages m"
	    " WHERE m.account_id = $1::uuid"
	    " AND ($2::bigint IS NULL OR m.seq < $2::bigint)"
	    " AND (NOT $4::boolean OR m.read_at IS NULL)"
	    " ORDER BY m.seq DESC LIMIT $3::int",
	    4, p);
}

void
store_messages_unread(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "SELECT count(*) FROM messages WHERE account_id = $1::uuid"
	    " AND read_at IS NULL",
	    1, p);
}

void
store_message_read(struct db_batch *b, const char *account_id,
    const char *message_id)
{
	const char *p[] = {account_id, message_id};

	db_batch_add(b,
	    "UPDATE messages m SET read_at = COALESCE(m.read_at, now())"
	    " WHERE m.id = $2::uuid AND m.account_id = $1::uuid"
	    " RETURNING " MESSAGE_JSON,
	    2, p);
}

void
store_messages_read_all(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "UPDATE messages SET read_at = now() WHERE account_id = $1::uuid"
	    " AND read_at IS NULL",
	    1, p);
}

void
store_sms_rate_key(char *out, size_t size, const char *phone, const char *hour)
{
	snprintf(out, size, "sms:notice:%s:%s", phone, hour);
}
