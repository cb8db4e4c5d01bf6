/* store — every SQL statement and Redis key of the issuance service;
 * issuance.h documents parameters and columns. The callers run them with
 * db.h batches (handlers, resumer) or bus_tx (consumers). */
#include "issuance.h"

#include "challenge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EPOCH(x) "extract(epoch FROM " x ")::bigint"

/* clang-format off */

/* CA管理: the statement is built for the filters present (only their
 * conditions, numbered in order), so that one generic plan fits every
 * execution of a text; the list's batch forces generic plans
 * (store_generic_plans_sql): measured (issue 13), the catch-all statement
 * with "$n IS NULL OR ..." for every filter was planned again at each
 * request (about 0.3 ms of a 0.45 ms statement) and its generic plan could
 * use no index. The keyset condition is on (key, lineage id); each key has
 * an index on lineages per enterprise (lineages.not_after is the latest
 * certificate's, 011_directory.sql). */
#define CERT_LIST_SELECT                                                               \
	"SELECT l.id, c.serial, l.type, l.holder, c.vendor, l.lock_kind,"                    \
	" l.enterprise_name, l.uscc, " EPOCH("c.not_before") ", " EPOCH("c.not_after") ","  \
	" CASE WHEN c.platforms_known THEN array_to_json(c.platforms)::text END,"      \
	" c.revoked_at IS NOT NULL,"                                                   \
	" EXISTS (SELECT 1 FROM open_orders o WHERE o.cert_id = l.id),"                      \
	" EXISTS (SELECT 1 FROM entitlements e WHERE e.cert_id = l.id AND e.status <> 'used')," \
	" c.issuer, l.account_id,"                                                           \
	" (SELECT p.serial FROM certificates p WHERE p.id = c.replaces),"                    \
	" l.key_serial, l.key_vendor, " EPOCH("COALESCE(l.applied_at, l.created_at)") ","    \
	" c.source = 'renewal',"                                                             \
	" (%s)::text"                                                                        \
	" FROM certificates c JOIN lineages l ON l.id = c.cert_id"                           \
	" WHERE c.replaced_by IS NULL"

const char store_generic_plans_sql[] =
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";

#define CERT_LIST_VERSION                                                   \
	"SELECT COALESCE((SELECT version FROM cert_list_versions WHERE uscc = $1), 0)" \
	" + (SELECT count(*) FROM cert_list_changes WHERE uscc = $1)"

const char store_cert_list_version_sql[] = CERT_LIST_VERSION;

/* The list's statement with the enterprise's version (uscc $1) as its last
 * column, read in the same statement (one snapshot: the version is exactly
 * the rows'), on every row and on a single row of NULLs when the page is
 * empty. The one-row side is the outer one of the only join an ON true
 * LEFT JOIN allows (a nested loop), so the page's rows keep their order.
 * Measured (issue 13, the cache's miss path): one statement fewer per page
 * (its Bind, Execute, executor start and two index descents). */
#define CERT_LIST_WITH_VERSION                                              \
	"SELECT r.*, v.version FROM (" CERT_LIST_VERSION " AS version) v"          \
	" LEFT JOIN LATERAL ("
#define CERT_LIST_WITH_VERSION_END ") r ON true"

/* The conditions of the filters $1..$9 and $13 of issuance.h, "%d" their
 * parameter's number in the built statement. */
static const char *const cert_list_conditions[13] = {
    " AND l.uscc = $%d",
    " AND l.account_id = $%d::uuid",
    NULL, /* status: a condition per value, no parameter */
    " AND l.not_after >= to_timestamp($%d::bigint)",
    " AND l.not_after < to_timestamp($%d::bigint)",
    " AND position($%d IN l.holder) > 0",
    " AND c.vendor = $%d",
    " AND l.lock_kind = $%d",
    " AND (l.account_id IS NOT NULL) = $%d::boolean",
    NULL, NULL, NULL, /* cursor, limit: below */
    " AND EXISTS (SELECT 1 FROM entitlements e"
    " WHERE e.cert_id = l.id AND e.status <> 'used') = $%d::boolean",
};

/* clang-format on */

/* The statement being built, appended to in place (it is built at every
 * request of the list: no copy of the whole text per part). */
struct sql_text {
	char *p;
	size_t len, cap;
};

static void sql_add(struct sql_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sql_add(struct sql_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (t->len + (size_t)n < t->cap)
			break;
		t->cap = (t->len + (size_t)n + 1) * 2;
		t->p = xrealloc(t->p, t->cap);
	}
	t->len += (size_t)n;
}

char *
store_cert_list_build(int sort, int desc, const char *const p[13], int version,
    const char *out[13], int *nout)
{
	static const char *const keys[CERT_SORTS] = {"l.not_after", "l.holder",
	    "COALESCE(l.applied_at, l.created_at)"};
	static const char *const casts[CERT_SORTS] = {"timestamptz", "text",
	    "timestamptz"};
	const char *key = keys[sort];
	struct sql_text sql = {xmalloc(4096), 0, 4096};
	int n = 0;

	sql.p[0] = '\0';
	if (version && p[0] != NULL) /* uscc is $1 */
		sql_add(&sql, "%s", CERT_LIST_WITH_VERSION);
	sql_add(&sql, CERT_LIST_SELECT, key);

	for (int i = 0; i < 13; i++) {
		if (p[i] == NULL || cert_list_conditions[i] == NULL)
			continue;
		out[n++] = p[i];
		sql_add(&sql, cert_list_conditions[i], n);
	}
	if (p[2] != NULL)
		sql_add(&sql, "%s",
		    strcmp(p[2], "revoked") == 0
		        ? " AND c.revoked_at IS NOT NULL"
		        : strcmp(p[2], "expired") == 0
		        ? " AND c.revoked_at IS NULL AND c.not_after <= now()"
		        : strcmp(p[2], "valid") == 0
		        ? " AND c.revoked_at IS NULL AND c.not_after > now()"
		        : " AND false");
	if (p[9] != NULL) {
		out[n++] = p[9];
		out[n++] = p[10];
		sql_add(&sql, " AND ((%s), l.id) %s ($%d::text::%s, $%d::uuid)",
		    key, desc ? "<" : ">", n - 1, casts[sort], n);
	}
	out[n++] = p[11];
	sql_add(&sql, " ORDER BY %s %s, l.id %s LIMIT $%d::int", key,
	    desc ? "DESC" : "ASC", desc ? "DESC" : "ASC", n);
	*nout = n;
	if (version && p[0] != NULL)
		sql_add(&sql, "%s", CERT_LIST_WITH_VERSION_END);
	return sql.p;
}

/* clang-format off */

const char store_challenge_lineage_sql[] =
    "SELECT l.account_id, c.id, c.revoked_at IS NOT NULL, c.pem IS NOT NULL, c.serial"
    " FROM lineages l JOIN certificates c ON c.cert_id = l.id AND c.replaced_by IS NULL"
    " WHERE l.id = $1";

const char store_challenge_intent_sql[] =
    "SELECT i.id, i.status, i.previous_id,"
    " i.status = 'issued' AND i.issued_at > now() - make_interval(days => $2::int),"
    " p.serial, p.pem IS NOT NULL, p.revoked_at IS NOT NULL"
    " FROM issuances i JOIN certificates p ON p.id = i.previous_id"
    " WHERE i.cert_id = $1 AND i.status IN ('pending', 'issued')"
    " ORDER BY i.created_at DESC LIMIT 1";

const char store_challenge_paid_sql[] =
    "SELECT count(*) FROM entitlements WHERE cert_id = $1 AND status = 'paid'";

const char store_renew_target_sql[] =
    "SELECT c.cert_id, c.pem, " EPOCH("c.not_after") ", c.revoked_at IS NOT NULL,"
    " c.replaced_by IS NOT NULL, l.account_id, c.vendor, c.serial,"
    " (SELECT n.pem FROM certificates n WHERE n.cert_id = c.cert_id AND n.replaced_by IS NULL"
    "  AND n.id <> c.id)"
    " FROM certificates c JOIN lineages l ON l.id = c.cert_id WHERE c.id = $1";

const char store_renew_paid_sql[] =
    "SELECT " EPOCH("paid_at") " FROM entitlements WHERE cert_id = $1 AND status = 'paid'"
    " ORDER BY paid_at, id LIMIT 1";

const char store_renew_intent_sql[] =
    "SELECT 1 FROM issuances WHERE previous_id = $1 AND status IN ('pending', 'issued')"
    " LIMIT 1";

const char store_renewal_begin_sql[] =
    "SELECT * FROM renewal_begin($1, $2, $3, $4, $5, $6, $7, to_timestamp($8::bigint),"
    " to_timestamp($9::bigint), $10::int)";

const char store_renewal_complete_sql[] =
    "SELECT * FROM renewal_complete($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
    " to_timestamp($11::bigint), to_timestamp($12::bigint), $13, $14)";

const char store_renewal_result_sql[] =
    "SELECT c.pem, c.chain, c.serial, " EPOCH("c.not_before") ", " EPOCH("c.not_after") ","
    " array_to_json(c.platforms)::text, c.cert_id"
    " FROM issuances i JOIN certificates c ON c.id = i.certificate_id WHERE i.id = $1";

const char store_renewal_failed_sql[] =
    "SELECT renewal_failed($1, $2, $3::int, $4::boolean)";

const char store_intent_claim_sql[] =
    "UPDATE issuances i SET lease_until = now() + make_interval(secs => $1::int),"
    " attempts = i.attempts + 1"
    " WHERE i.id = (SELECT d.id FROM issuances d WHERE d.status = 'pending'"
    "  AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())"
    "  ORDER BY d.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING i.id, i.adapter, i.serial, i.csr_pem,"
    " (SELECT p.pem FROM certificates p WHERE p.id = i.previous_id),"
    " " EPOCH("i.not_before") ", " EPOCH("i.not_after") ", i.attempts";

const char store_job_claim_sql[] =
    "UPDATE vendor_jobs j SET lease_until = now() + make_interval(secs => $1::int),"
    " attempts = j.attempts + 1"
    " WHERE j.id = (SELECT d.id FROM vendor_jobs d WHERE d.status = 'pending'"
    "  AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())"
    "  ORDER BY d.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING j.id, j.vendor, j.serial, j.issuer, j.reason, " EPOCH("j.revoked_at") ","
    " j.attempts";

/* When the next pending intent / vendor job falls due (its retry time or
 * the end of a lease another request holds), in milliseconds from now
 * (negative when overdue), NULL when none is pending (greatest() would skip
 * the NULL: not used on it): the partial index of the pending rows. */
const char store_intent_due_sql[] =
    "SELECT ceil(extract(epoch FROM min(greatest(next_attempt_at,"
    " coalesce(lease_until, next_attempt_at))) - now()) * 1000)::bigint"
    " FROM issuances WHERE status = 'pending'";

const char store_job_due_sql[] =
    "SELECT ceil(extract(epoch FROM min(greatest(next_attempt_at,"
    " coalesce(lease_until, next_attempt_at))) - now()) * 1000)::bigint"
    " FROM vendor_jobs WHERE status = 'pending'";

const char store_job_done_sql[] =
    "UPDATE vendor_jobs SET status = 'done', done_at = now(), lease_until = NULL,"
    " last_error = NULL WHERE id = $1 AND status = 'pending'";

const char store_job_failed_sql[] =
    "UPDATE vendor_jobs SET lease_until = NULL, last_error = $2,"
    " next_attempt_at = now() + make_interval(secs => $3::int),"
    " status = CASE WHEN $4::boolean THEN 'failed' ELSE status END"
    " WHERE id = $1 AND status = 'pending'";

const char store_revoke_sql[] =
    "SELECT r.*, outbox_emit('issuance.audit.recorded', $1::text, $6::jsonb"
    " || jsonb_build_object('uscc', (SELECT l.uscc FROM lineages l WHERE l.id = $1::uuid),"
    " 'before', jsonb_build_object('status', 'valid', 'serial', r.o_serial),"
    " 'after', jsonb_build_object('status', 'revoked', 'serial', r.o_serial,"
    " 'reason', $2::text, 'vendor', r.o_vendor, 'vendor_forwarded', r.o_forwarded)))"
    " FROM revoke_certificate($1, $2, $3, $4, $5::text[]) r";

const char store_crl_entries_sql[] =
    "SELECT serial, " EPOCH("revoked_at") ", revocation_reason FROM certificates"
    " WHERE issuer = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at, serial";

#define INTEROP_COLUMNS                                                          \
	"SELECT " EPOCH("c.not_before") ", " EPOCH("c.not_after") ", c.revoked_at IS NOT NULL,"      \
	" c.replaced_by IS NOT NULL, array_to_json(c.platforms)::text,"               \
	" c.platforms_known AND $2 = ANY (c.platforms),"     \
	" c.cert_id, (SELECT n.serial FROM certificates n WHERE n.id = c.replaced_by),"          \
	" c.issuer, c.serial FROM certificates c"

const char store_interop_sql[] =
    INTEROP_COLUMNS " WHERE ltrim(c.serial, '0') = ltrim($1, '0')"
    " AND ($3::text IS NULL OR c.issuer = $3)"
    " ORDER BY c.replaced_by IS NULL DESC, c.registered_at DESC LIMIT 16";

const char store_interop_by_id_sql[] =
    INTEROP_COLUMNS " WHERE c.cert_id = $1::uuid AND c.replaced_by IS NULL";

const char store_register_sql[] =
    "SELECT o_cert_id, o_created FROM register_certificate($1, $2, $3, $4, $5, $6, $7,"
    " $8, $9, $10, $11::timestamptz, $12::timestamptz, $13, $14, $15, $16, $17, $18,"
    " $19::uuid, $20::uuid, $21::text[])";

const char store_entitlement_insert_sql[] =
    "INSERT INTO entitlements (id, order_id, order_number, account_id, cert_id, platforms,"
    " paid_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, $5::text[], $6::timestamptz)"
    " ON CONFLICT (order_id, cert_id) DO NOTHING";

const char store_open_order_delete_sql[] =
    "DELETE FROM open_orders WHERE order_id = $1";

const char store_open_order_insert_sql[] =
    "INSERT INTO open_orders (order_id, cert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const char store_reminder_pass_sql[] =
    "SELECT r.o_claimed, r.o_stage, r.o_after::text, r.o_after_id,"
    " renewal_unused_claim(to_timestamp($1::bigint), $4::int[], $3::int)"
    " FROM reminder_claim(to_timestamp($1::bigint), $2::int[], $3::int, $5::int,"
    " $6::timestamptz, $7::uuid) r";

const char store_renewal_ready_sql[] = "SELECT renewal_ready($1::uuid)";

const char store_sync_cursor_sql[] =
    "SELECT cursor FROM vendor_sync WHERE vendor = $1";

const char store_sync_cursor_set_sql[] =
    "INSERT INTO vendor_sync (vendor, cursor, synced_at, certs) VALUES ($1, $2, now(), $3::bigint)"
    " ON CONFLICT (vendor) DO UPDATE SET cursor = EXCLUDED.cursor, synced_at = now(),"
    " last_error = NULL, certs = vendor_sync.certs + EXCLUDED.certs";

const char store_sync_failed_sql[] =
    "INSERT INTO vendor_sync (vendor, last_error) VALUES ($1, $2)"
    " ON CONFLICT (vendor) DO UPDATE SET last_error = EXCLUDED.last_error";

/* A page of a vendor's directory, $1 a JSON array of its certificates
 * (sync.c), $2 the audit entry without its object (101_sync_page.sql). */
const char store_sync_page_sql[] =
    "SELECT o_inserted, o_updated, o_revoked FROM sync_page($1::jsonb, $2::jsonb)";

const char store_platform_listed_sql[] =
    "INSERT INTO platform_catalogue (code, name, active) VALUES ($1, $2, $3::boolean)"
    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active,"
    " updated_at = now()";

const char store_import_insert_sql[] =
    "INSERT INTO imports (id, staff_id, format, dry_run, bytes)"
    " SELECT $1::uuid, $2::uuid, $3, $4::boolean, $5::bigint"
    " WHERE $4::boolean OR NOT EXISTS (SELECT 1 FROM import_status"
    "  WHERE live_status = 'running' AND NOT dry_run)"
    " RETURNING id";

const char store_import_get_sql[] =
    "SELECT id, format, dry_run, live_status, bytes, rows_total, rows_done, inserted,"
    " updated, unchanged, error_count, errors::text,"
    " CASE WHEN live_status = 'interrupted' THEN 'INTERRUPTED' ELSE error END,"
    " " EPOCH("created_at") ", " EPOCH("finished_at")
    " FROM import_status WHERE id = $1";

const char store_import_begin_sql[] = "BEGIN";
const char store_import_commit_sql[] = "COMMIT";
const char store_import_rollback_sql[] = "ROLLBACK";

const char store_import_lock_sql[] =
    "SELECT pg_try_advisory_xact_lock(7013, 0)"
    " AND pg_try_advisory_xact_lock(7013, import_lock_key($1::uuid))";

/* The staging table, empty for the job that holds the import lock (rows of a
 * killed import are dead tuples until then; 060_import_merge_ordered_batched.sql). */
const char store_import_truncate_sql[] = "TRUNCATE import_rows";

const char store_import_copy_sql[] =
    "COPY import_rows (import_id, line, issuer, serial, vendor, subject, fingerprint_sha256,"
    " spki_sha256, key_type, not_before, not_after, pem, type, lock_kind, holder,"
    " enterprise_name, uscc, key_vendor, key_serial, first_applied_on, platforms,"
    " lineage_id, cert_row)"
    " FROM STDIN";

/* The two file checks read 10^5 staged rows that have no statistics yet
 * (issue 13's rate goal, measured: 113 + 131 ms → 78 + 32 ms): the repeats
 * by a hash of (issuer, serial) rather than a sort of every row, the
 * platform codes by one array containment per row against the active
 * catalogue rather than a (parallel, spilled) sort of every code. */
const char store_import_duplicates_sql[] =
    "WITH d AS MATERIALIZED (SELECT issuer, serial, min(line) AS first FROM import_rows"
    " WHERE import_id = $2::uuid GROUP BY issuer, serial HAVING count(*) > 1)"
    " SELECT s.line, d.first FROM d JOIN import_rows s ON s.issuer = d.issuer AND s.serial = d.serial"
    " WHERE s.import_id = $2::uuid AND s.line <> d.first ORDER BY s.line LIMIT $1::int";

const char store_import_unknown_platforms_sql[] =
    "SELECT s.line, p.code FROM (SELECT s.line, s.platforms, k.codes FROM import_rows s,"
    " (SELECT COALESCE(array_agg(code), '{}') AS codes FROM platform_catalogue WHERE active) k"
    " WHERE s.import_id = $2::uuid AND NOT s.platforms <@ k.codes OFFSET 0) s"
    " CROSS JOIN LATERAL unnest(s.platforms) AS p(code) WHERE NOT p.code = ANY (s.codes)"
    " ORDER BY s.line LIMIT $1::int";

const char store_import_merge_sql[] =
    "SELECT o_inserted, o_updated, o_unchanged FROM import_merge($1::uuid, $2::jsonb)";

const char store_import_done_sql[] =
    "UPDATE imports SET status = 'done', rows_total = $2::int, rows_done = $2::int,"
    " inserted = $3::int, updated = $4::int, unchanged = $5::int, finished_at = now(),"
    " heartbeat_at = now() WHERE id = $1::uuid";

const char store_import_progress_sql[] =
    "UPDATE imports SET rows_total = $2::int, rows_done = $3::int, heartbeat_at = now()"
    " WHERE id = $1::uuid AND status = 'running'";

const char store_import_finish_sql[] =
    "UPDATE imports SET status = $2, rows_total = $3::int, rows_done = $4::int,"
    " inserted = $5::int, updated = $6::int, unchanged = $7::int, error_count = $8::int,"
    " errors = $9::jsonb, error = $10, finished_at = now(), heartbeat_at = now()"
    " WHERE id = $1::uuid AND status = 'running'";
/* clang-format on */

const char store_interop_nonce_prefix[] = "interop:nonce:";

const struct challenge_scope store_renewal_challenge = {"issuance.renewal",
    "renew:chal:"};

/* clang-format off */
const char store_cancel_sql[] =
    "SELECT o_serial, o_issuer, o_revoked_at, o_vendor, o_forwarded, o_by"
    " FROM cancel_certificate($1::uuid, $2, $3::uuid, $4::uuid, $5::uuid, $6::text[],"
    " $7::uuid, $8::jsonb)";
/* clang-format on */

/* clang-format off */
const char store_application_insert_sql[] =
    "INSERT INTO applications (id, order_id, applicant_account, account_id, type, lock_kind,"
    " holder, enterprise_name, uscc, subject, platforms, replaces_cert_id)"
    " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9, $10::jsonb,"
    " $11::text[], $12::uuid) ON CONFLICT (id) DO NOTHING";

const char store_application_get_sql[] =
    "SELECT a.account_id, a.status, a.subject::text,"
    " EXISTS (SELECT 1 FROM entitlements e WHERE e.cert_id = a.id"
    "  AND e.status IN ('paid', 'reserved')),"
    " a.lock_kind, array_to_json(a.platforms)::text, a.kind"
    " FROM applications a WHERE a.id = $1::uuid";

const char store_application_begin_sql[] =
    "SELECT * FROM application_begin($1::uuid, $2::uuid, $3, $4, $5, $6,"
    " to_timestamp($7::bigint), to_timestamp($8::bigint), $9::int)";

const char store_application_complete_sql[] =
    "SELECT * FROM application_complete($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8,"
    " $9, $10, to_timestamp($11::bigint), to_timestamp($12::bigint), $13, $14)";

const char store_application_result_sql[] =
    "SELECT c.pem, c.chain, c.serial, " EPOCH("c.not_before") ", " EPOCH("c.not_after") ","
    " array_to_json(c.platforms)::text, c.cert_id"
    " FROM applications a JOIN certificates c ON c.id = a.certificate_id"
    " WHERE a.id = $1::uuid";

const char store_application_failed_sql[] =
    "SELECT application_failed($1::uuid, $2, $3::int, $4::boolean)";

const char store_application_claim_sql[] =
    "UPDATE applications a SET lease_until = now() + make_interval(secs => $1::int),"
    " attempts = a.attempts + 1"
    " WHERE a.id = (SELECT d.id FROM applications d WHERE d.status = 'pending'"
    "  AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())"
    "  ORDER BY d.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING a.id, a.adapter, a.serial, a.csr_pem,"
    " " EPOCH("a.not_before") ", " EPOCH("a.not_after") ", a.attempts";
/* clang-format on */

/* clang-format off */
const char store_application_due_sql[] =
    "SELECT ceil(extract(epoch FROM min(greatest(next_attempt_at,"
    " coalesce(lease_until, next_attempt_at))) - now()) * 1000)::bigint"
    " FROM applications WHERE status = 'pending'";
/* clang-format on */

const struct challenge_scope store_application_challenge =
    {"issuance.application", "apply:chal:"};

/* clang-format off */
const char store_enterprise_record_sql[] =
    "INSERT INTO enterprise_records (uscc, record_id, seq, name, approved_at)"
    " VALUES ($1, $2::uuid, $3::int, $4, COALESCE($5::timestamptz, now()))"
    " ON CONFLICT (uscc) DO UPDATE SET record_id = EXCLUDED.record_id, seq = EXCLUDED.seq,"
    " name = EXCLUDED.name, approved_at = EXCLUDED.approved_at"
    " WHERE enterprise_records.approved_at <= EXCLUDED.approved_at";

const char store_change_application_sql[] =
    "SELECT o_app, o_subject, o_status, o_previous_name"
    " FROM change_application($1::uuid, $2::uuid, $3::uuid)";

const char store_change_collected_sql[] =
    "SELECT change_collected($1::uuid, $2::uuid, $3::uuid, $4::text[])";
/* clang-format on */

/* An application's order cancelled, expired or refunded (045). */
const char store_application_close_sql[] =
    "SELECT application_close($1::uuid, $2)";

/* The holder's identity ended (auth.identity.removed, 045). */
const char store_application_close_for_holder_sql[] =
    "SELECT application_close_for_holder($1::uuid, $2, $3)";
