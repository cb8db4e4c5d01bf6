/* idem_store — the SQL of idem.h: every statement on the idem_keys table
 * (deploy/sql/common/002_idempotency.sql), nowhere else. */
#include "idem.h"

#include <assert.h>
#include <stdio.h>

void
idem_claim_add(struct db_batch *b, const struct idem *i, long lock_seconds)
{
	char secs[24];
	const char *p[] = {i->scope, i->key, i->hash, secs};

	assert(i->hash[0] != '\0'); /* idem_hash() came first */
	snprintf(secs, sizeof(secs), "%ld", lock_seconds);
	/* A concurrent first request holds the row lock until its batch
	 * commits; this one then sees the row and does not take it over. */
	db_batch_add(b,
	    "INSERT INTO idem_keys (scope, key, request_hash) VALUES ($1, $2, $3)"
	    " ON CONFLICT (scope, key) DO UPDATE SET locked_at = now()"
	    " WHERE idem_keys.response_status IS NULL"
	    " AND idem_keys.request_hash = EXCLUDED.request_hash"
	    " AND idem_keys.locked_at < now() - make_interval(secs => $4::int)"
	    " RETURNING 1",
	    4, p);
	db_batch_add(b,
	    "SELECT request_hash, response_status, response_body FROM idem_keys"
	    " WHERE scope = $1 AND key = $2",
	    2, p);
}

void
idem_save_add(struct db_batch *b, const struct idem *i, int status,
    const char *body)
{
	char st[16];
	const char *p[] = {i->scope, i->key, st, body};

	snprintf(st, sizeof(st), "%d", status);
	db_batch_add(b,
	    "UPDATE idem_keys SET response_status = $3::int, response_body = $4"
	    " WHERE scope = $1 AND key = $2",
	    4, p);
}

void
idem_release_add(struct db_batch *b, const struct idem *i)
{
	const char *p[] = {i->scope, i->key};

	db_batch_add(b,
	    "DELETE FROM idem_keys"
	    " WHERE scope = $1 AND key = $2 AND response_status IS NULL",
	    2, p);
}

void
idem_purge_add(struct db_batch *b, long retention_hours)
{
	char hours[24];
	const char *p[] = {hours};

	snprintf(hours, sizeof(hours), "%ld", retention_hours);
	db_batch_add(b,
	    "DELETE FROM idem_keys"
	    " WHERE created_at < now() - make_interval(hours => $1::int)",
	    1, p);
}
