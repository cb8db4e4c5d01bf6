/* store — every SQL statement of the auth service. Each function appends
 * its statements to a batch (one transaction, one round trip) or runs one
 * query; the caller's continuation reads the result by statement index. */
#include "store.h"

#include "bus.h"
#include "db.h"
#include "util.h"

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

/* The session's view of an account: account, current identity (if any).
 * Columns: 0 id, 1 phone, 2 identity id, 3 type, 4 role, 5 uscc,
 * 6 enterprise name. */
const char store_session_view_sql[] =
    "SELECT a.id, a.phone, i.id, i.type, i.role, i.uscc, i.enterprise_name"
    " FROM accounts a"
    " LEFT JOIN current_identity c ON c.account_id = a.id"
    " LEFT JOIN identities i ON i.id = c.identity_id"
    " WHERE a.id = $1";

const char store_session_view_by_phone_sql[] =
    "SELECT a.id, a.phone, i.id, i.type, i.role, i.uscc, i.enterprise_name"
    " FROM accounts a"
    " LEFT JOIN current_identity c ON c.account_id = a.id"
    " LEFT JOIN identities i ON i.id = c.identity_id"
    " WHERE a.phone = $1";

/* The "me" answer: account and lock (statement 0), identities (statement 1). */
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
	    "SELECT id, type, enterprise_name, uscc, role,"
	    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	    " FROM identities WHERE account_id = $1 ORDER BY created_at, id",
	    1, p);
}

void
store_identity_insert(struct db_batch *b, const char *id,
    const char *account_id, const char *type, const char *enterprise_name,
    const char *uscc, const char *role)
{
	const char *p[] = {id, account_id, type, enterprise_name, uscc, role};

	db_batch_add(b,
	    "INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role)"
	    " VALUES ($1, $2, $3, $4, $5, $6)",
	    6, p);
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
