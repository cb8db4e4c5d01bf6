/* store — every SQL statement of the enterprise service. State changes that
 * emit events are PL/pgSQL functions of deploy/sql/enterprise, called here,
 * so that the change and its outbox row are written by one statement. */
#include "enterprise.h"

#include "db.h"
#include "rules.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* "" means not given: SQL NULL. */
static const char *
nz(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

void
store_file_insert(struct db_batch *b, const char *id, const char *owner,
    const char *sha256, long size, const char *content_type)
{
	char sz[24];
	const char *p[] = {id, owner, sha256, sz, content_type};

	snprintf(sz, sizeof(sz), "%ld", size);
	db_batch_add(b,
	    "INSERT INTO files (id, owner_account_id, sha256, size, content_type)"
	    " VALUES ($1, $2, $3, $4::int, $5)",
	    5, p);
}

void
store_file_access(struct db_batch *b, const char *id, const char *account_id,
    const char *admin_uscc)
{
	const char *p[] = {id, account_id, admin_uscc};

	db_batch_add(b,
	    "SELECT f.sha256, f.size, f.content_type,"
	    " (f.owner_account_id = $2::uuid) IS TRUE OR ($3::text IS NOT NULL AND EXISTS ("
	    "   SELECT 1 FROM members m WHERE m.account_id = f.owner_account_id AND m.uscc = $3))"
	    " FROM files f WHERE f.id = $1",
	    3, p);
}

#define PROFILE_COLS \
	"name, id_number, email, id_card_front_file, id_card_back_file, completed_at IS NOT NULL"

void
store_profile_get(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "SELECT " PROFILE_COLS " FROM profiles WHERE account_id = $1", 1,
	    p);
}

void
store_profile_save(struct db_batch *b, const char *account_id,
    const struct ent_profile_update *u, const char *event_id)
{
	const char *p[] = {account_id, u->name, nz(u->id_number), u->email,
	    nz(u->id_card_front_file), nz(u->id_card_back_file), event_id};

	db_batch_add(b,
	    "SELECT " PROFILE_COLS
	    " FROM profile_save($1, $2, $3, $4, $5, $6, $7)",
	    7, p);
}

/* The recognition of the licence a record's data names, as JSON text
 * {status, reason, fields}, NULL when none (licence_ocr). */
#define LICENCE_OF_RECORD                                                   \
	"(SELECT json_build_object('status', o.status, 'reason', o.reason," \
	" 'fields', o.fields)::text FROM licence_ocr o"                     \
	" WHERE o.file_id = r.data#>>'{basic,files,business_license}')"

#define RECORD_COLS                                                                     \
	"r.id, r.uscc, r.work_status, r.version, r.data::text, r.approved_data::text,"  \
	" ent_time(r.approved_at), ent_time(r.submitted_at), ent_time(r.updated_at),"   \
	" CASE WHEN r.claimed_until > now() THEN r.claimed_by END,"                     \
	" CASE WHEN r.claimed_until > now() THEN ent_time(r.claimed_until) END, r.seq," \
	" " LICENCE_OF_RECORD

#define HISTORY_COLS \
	"h.seq, ent_time(h.at), h.status, h.opinion, h.type, h.change"

void
store_record_ensure(struct db_batch *b, const char *id, const char *uscc,
    const char *data)
{
	const char *p[] = {id, uscc, data};

	db_batch_add(b,
	    "INSERT INTO records (id, uscc, data) VALUES ($1, $2, $3::jsonb)"
	    " ON CONFLICT (uscc) DO NOTHING",
	    3, p);
}

void
store_record_by_uscc(struct db_batch *b, const char *uscc)
{
	const char *p[] = {uscc};

	db_batch_add(b,
	    "SELECT " RECORD_COLS " FROM records r WHERE r.uscc = $1", 1, p);
}

void
store_record_by_id(struct db_batch *b, const char *id)
{
	const char *p[] = {id};

	db_batch_add(b, "SELECT " RECORD_COLS " FROM records r WHERE r.id = $1",
	    1, p);
}

/* The audit entry of a staff member's full read of record id, in the
 * read's own batch (common/audit.h audit_add_sql: $1..$4 the entry's outbox
 * row, written held as audit_held_insert_sql does, $5 the record id): the
 * entry takes the record's USCC, and there is none when there is no such
 * record. */
const char store_record_read_audit_sql[] =
    "INSERT INTO outbox (id, type, subject, data, published_at)"
    " SELECT $1::uuid, $2, $3, jsonb_set($4::jsonb, '{uscc}',"
    " COALESCE(to_jsonb(r.uscc), 'null'::jsonb)), 'infinity'"
    " FROM records r WHERE r.id = $5::uuid";

void
store_history_by_uscc(struct db_batch *b, const char *uscc)
{
	const char *p[] = {uscc};

	db_batch_add(b,
	    "SELECT " HISTORY_COLS " FROM history h"
	    " JOIN records r ON r.id = h.record_id WHERE r.uscc = $1 ORDER BY h.seq",
	    1, p);
}

void
store_history_by_id(struct db_batch *b, const char *id)
{
	const char *p[] = {id};

	db_batch_add(b,
	    "SELECT " HISTORY_COLS " FROM history h"
	    " WHERE h.record_id = $1 ORDER BY h.seq",
	    1, p);
}

void
store_refs_check(struct db_batch *b, const char *account_id,
    const struct ent_refs *refs)
{
	char ids[ENT_MAX_FILE_REFS * 38 + 3];
	size_t n = 0;

	ids[n++] = '{';
	for (size_t i = 0; i < refs->nfiles; i++)
		n += (size_t)snprintf(ids + n, sizeof(ids) - n, "%s%s",
		    i ? "," : "", refs->files[i].id);
	snprintf(ids + n, sizeof(ids) - n, "}");
	const char *pf[] = {ids, account_id};
	db_batch_add(b,
	    "SELECT id, content_type FROM files"
	    " WHERE id = ANY($1::uuid[]) AND owner_account_id = $2",
	    2, pf);
	const char *ph[] = {nz(refs->handling_point)};
	db_batch_add(b,
	    "SELECT code FROM handling_points WHERE code = $1 AND active", 1,
	    ph);
}

void
store_record_update(struct db_batch *b, const char *id, const char *version,
    const char *data)
{
	const char *p[] = {id, version, data};

	db_batch_add(b,
	    "UPDATE records SET data = $3::jsonb,"
	    " work_status = CASE WHEN work_status = 'approved' THEN 'draft' ELSE work_status END,"
	    " version = version + 1, updated_at = now()"
	    " WHERE id = $1 AND version = $2::bigint AND work_status <> 'pending'"
	    " RETURNING id",
	    3, p);
}

void
store_record_submit(struct db_batch *b, const char *id, const char *version,
    const char *account_id, const char *event_id)
{
	const char *p[] = {id, version, account_id, event_id};

	db_batch_add(b, "SELECT record_submit($1, $2::bigint, $3, $4)", 4, p);
}

void
store_record_claim(struct db_batch *b, const char *id, const char *reviewer_id,
    long ttl_seconds)
{
	char ttl[24];
	const char *p[] = {id, reviewer_id, ttl};

	snprintf(ttl, sizeof(ttl), "%ld", ttl_seconds);
	db_batch_add(b, "SELECT ent_time(record_claim($1, $2, $3::int))", 3, p);
}

void
store_record_release(struct db_batch *b, const char *id,
    const char *reviewer_id)
{
	const char *p[] = {id, reviewer_id};

	db_batch_add(b, "SELECT record_release($1, $2)", 2, p);
}

void
store_record_decide(struct db_batch *b, const char *id, const char *reviewer_id,
    int approve, const char *opinion, const char *event_id)
{
	const char *p[] = {id, reviewer_id, approve ? "t" : "f", opinion,
	    event_id};

	db_batch_add(b, "SELECT record_decide($1, $2, $3::boolean, $4, $5)", 5,
	    p);
}

void
store_queue(struct db_batch *b, int limit, const char *after_time,
    const char *after_id, const char *kind)
{
	char lim[16];
	const char *p[] = {lim, after_time, after_id, kind};

	snprintf(lim, sizeof(lim), "%d", limit + 1);
	db_batch_add(b,
	    "SELECT q.id, q.name, q.uscc, ent_time(q.at),"
	    " (EXTRACT(EPOCH FROM q.at) * 1000)::bigint,"
	    " to_char(q.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
	    " q.resubmission, q.change, q.seq, q.claimed_by, q.claimed_until,"
	    " floor(EXTRACT(EPOCH FROM now() - q.at))::bigint,"
	    " (EXTRACT(EPOCH FROM now()) * 1000)::bigint,"
	    " q.kind, q.legal_rep_id_number, q.legal_rep_phone, q.applicant_id_number,"
	    " q.licence, q.data"
	    " FROM ("
	    "  SELECT r.id, r.data->'basic'->>'name' AS name, r.uscc, r.submitted_at AS at,"
	    "  EXISTS (SELECT 1 FROM history h WHERE h.record_id = r.id AND h.type = 'rejected') AS resubmission,"
	    "  r.approved_data IS NOT NULL AS change, r.seq,"
	    "  CASE WHEN r.claimed_until > now() THEN r.claimed_by END AS claimed_by,"
	    "  CASE WHEN r.claimed_until > now() THEN ent_time(r.claimed_until) END AS claimed_until,"
	    "  'record' AS kind, r.data->'basic'->>'legal_rep_id_number' AS legal_rep_id_number,"
	    "  r.data->'basic'->>'legal_rep_phone' AS legal_rep_phone, NULL::text AS applicant_id_number,"
	    "  " LICENCE_OF_RECORD " AS licence, r.data::text AS data"
	    "  FROM records r WHERE r.work_status = 'pending'"
	    "  UNION ALL"
	    "  SELECT a.id, a.enterprise_name, a.uscc, a.submitted_at,"
	    "  EXISTS (SELECT 1 FROM admin_applications o WHERE o.account_id = a.account_id"
	    "   AND o.uscc = a.uscc AND o.status = 'rejected'),"
	    "  false, 1, CASE WHEN a.claimed_until > now() THEN a.claimed_by END,"
	    "  CASE WHEN a.claimed_until > now() THEN ent_time(a.claimed_until) END,"
	    "  'admin_application', NULL, NULL, a.id_number_masked,"
	    "  NULL, NULL"
	    "  FROM admin_applications a WHERE a.status = 'pending'"
	    " ) q WHERE ($4::text IS NULL OR q.kind = $4)"
	    " AND ($2::timestamptz IS NULL OR (q.at, q.id) > ($2::timestamptz, $3::uuid))"
	    " ORDER BY q.at, q.id LIMIT $1::int",
	    4, p);
}

#define APP_COLS                                                                      \
	"a.id, a.account_id, a.enterprise_name, a.uscc, a.id_number_masked,"          \
	" a.id_matches_profile, a.authorization_file_id, a.status, a.opinion,"        \
	" a.reviewer_id, ent_time(a.submitted_at), ent_time(a.decided_at),"           \
	" EXISTS (SELECT 1 FROM members m WHERE m.uscc = a.uscc AND m.role = 'admin'" \
	" AND m.source = 'lock'),"                                                    \
	" (SELECT ac.phone FROM accounts ac WHERE ac.account_id = a.account_id),"     \
	" CASE WHEN a.claimed_until > now() THEN a.claimed_by END,"                   \
	" CASE WHEN a.claimed_until > now() THEN ent_time(a.claimed_until) END"

void
store_application_submit(struct db_batch *b, const char *id,
    const char *account_id, const struct ent_admin_application *a,
    const char *id_hmac, const char *id_masked, const char *matches,
    const char *event_id)
{
	const char *p[] = {id, account_id, a->enterprise_name, a->uscc, id_hmac,
	    id_masked, matches, a->authorization_file_id, event_id};

	db_batch_add(b,
	    "SELECT admin_application_submit($1, $2, $3, $4, $5, $6, $7::boolean, $8, $9)",
	    9, p);
}

void
store_application_by_id(struct db_batch *b, const char *id)
{
	const char *p[] = {id};

	db_batch_add(b,
	    "SELECT " APP_COLS " FROM admin_applications a WHERE a.id = $1", 1,
	    p);
}

void
store_applications_by_account(struct db_batch *b, const char *account_id)
{
	const char *p[] = {account_id};

	db_batch_add(b,
	    "SELECT " APP_COLS
	    " FROM admin_applications a WHERE a.account_id = $1"
	    " ORDER BY a.submitted_at DESC, a.id LIMIT 100",
	    1, p);
}

void
store_application_decide(struct db_batch *b, const char *id,
    const char *reviewer_id, int approve, const char *opinion,
    const char *event_id)
{
	const char *p[] = {id, reviewer_id, approve ? "t" : "f", opinion,
	    event_id};

	db_batch_add(b,
	    "SELECT admin_application_decide($1, $2, $3::boolean, $4, $5)", 5,
	    p);
}

void
store_application_claim(struct db_batch *b, const char *id,
    const char *reviewer_id, long ttl_seconds)
{
	char ttl[24];
	const char *p[] = {id, reviewer_id, ttl};

	snprintf(ttl, sizeof(ttl), "%ld", ttl_seconds);
	db_batch_add(b,
	    "SELECT ent_time(admin_application_claim($1, $2, $3::int))", 3, p);
}

void
store_application_release(struct db_batch *b, const char *id,
    const char *reviewer_id)
{
	const char *p[] = {id, reviewer_id};

	db_batch_add(b, "SELECT admin_application_release($1, $2)", 2, p);
}

void
store_workday_exceptions(struct db_batch *b)
{
	db_batch_add(b,
	    "SELECT day::text, workday FROM workday_exceptions"
	    " WHERE day BETWEEN current_date - 366 AND current_date + 366",
	    0, NULL);
}

void
store_handling_points(struct db_batch *b)
{
	db_batch_add(b,
	    "SELECT code, name, region FROM handling_points WHERE active"
	    " ORDER BY code",
	    0, NULL);
}

const char store_account_upsert_sql[] =
    "INSERT INTO accounts (account_id, phone) VALUES ($1, $2)"
    " ON CONFLICT (account_id) DO UPDATE SET phone = EXCLUDED.phone, updated_at = now()";

const char store_member_upsert_sql[] =
    "INSERT INTO members (identity_id, account_id, uscc, role, source)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (identity_id) DO UPDATE SET source = COALESCE(members.source, EXCLUDED.source)";

const char store_member_delete_sql[] =
    "DELETE FROM members WHERE identity_id = $1";

/* ---- licence recognition ---- */

void
store_licence_ocr_insert(struct db_batch *b, const char *file_id,
    const char *status, const char *reason)
{
	const char *p[] = {file_id, status, reason};

	db_batch_add(b,
	    "INSERT INTO licence_ocr (file_id, status, reason, finished_at)"
	    " VALUES ($1, $2, $3, CASE WHEN $2 = 'failed' THEN now() END)",
	    3, p);
}

void
store_licence_ocr_ensure(struct db_batch *b, const char *file_id)
{
	const char *p[] = {file_id};

	db_batch_add(b,
	    "INSERT INTO licence_ocr (file_id)"
	    " SELECT f.id::text FROM files f WHERE f.id = $1::uuid"
	    " AND f.content_type IN ('image/jpeg', 'image/png')"
	    " ON CONFLICT (file_id) DO NOTHING",
	    1, p);
}

void
store_licence_ocr_expire(struct db_batch *b, int attempts)
{
	char n[16];
	const char *p[] = {n};

	snprintf(n, sizeof(n), "%d", attempts);
	db_batch_add(b,
	    "UPDATE licence_ocr SET status = 'failed', reason = 'interrupted',"
	    " finished_at = now(), leased_until = NULL"
	    " WHERE status = 'running' AND leased_until < now() AND attempts >= $1::int",
	    1, p);
}

void
store_licence_ocr_claim(struct db_batch *b, int limit, int lease_s,
    int attempts)
{
	char lim[16], lease[16], n[16];
	const char *p[] = {lim, lease, n};

	snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 0);
	snprintf(lease, sizeof(lease), "%d", lease_s);
	snprintf(n, sizeof(n), "%d", attempts);
	db_batch_add(b,
	    "UPDATE licence_ocr o SET status = 'running', attempts = o.attempts + 1,"
	    " leased_until = now() + make_interval(secs => $2::int)"
	    " FROM files f WHERE f.id::text = o.file_id AND o.file_id IN ("
	    "  SELECT file_id FROM licence_ocr"
	    "  WHERE status IN ('pending', 'running') AND attempts < $3::int"
	    "  AND (leased_until IS NULL OR leased_until < now())"
	    "  ORDER BY created_at LIMIT $1::int FOR UPDATE SKIP LOCKED)"
	    " RETURNING o.file_id, f.sha256",
	    3, p);
}

void
store_licence_ocr_next(struct db_batch *b, int attempts)
{
	char n[16];
	const char *p[] = {n};

	snprintf(n, sizeof(n), "%d", attempts);
	db_batch_add(b,
	    "SELECT ceil(extract(epoch FROM min(leased_until) - now()))::bigint"
	    " FROM licence_ocr WHERE status = 'running' AND attempts <= $1::int",
	    1, p);
}

void
store_licence_ocr_finish(struct db_batch *b, const char *file_id,
    const char *status, const char *reason, const char *fields, long ms)
{
	char elapsed[24];
	const char *p[] = {file_id, status, reason, fields, elapsed};

	snprintf(elapsed, sizeof(elapsed), "%ld", ms);
	db_batch_add(b,
	    "UPDATE licence_ocr SET status = $2, reason = $3, fields = $4::jsonb,"
	    " elapsed_ms = $5::int, finished_at = now(), leased_until = NULL"
	    " WHERE file_id = $1",
	    5, p);
}
