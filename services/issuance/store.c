/* store — every SQL statement and Redis key of the issuance service;
 * issuance.h documents parameters and columns. The callers run them with
 * db.h batches (handlers, resumer) or bus_tx (consumers). */
#include "issuance.h"

#include "challenge.h"

#define EPOCH(x) "extract(epoch FROM " x ")::bigint"

/* clang-format off */

/* CA管理: one statement per sort key and direction, the keyset condition
 * on (key, lineage id); each key has an index on lineages per enterprise
 * (lineages.not_after is the latest certificate's, 011_directory.sql). */
#define CERT_LIST_SQL(KEY, CAST, CMP, DIR)                                       \
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
	" (" KEY ")::text"                                                                   \
	" FROM certificates c JOIN lineages l ON l.id = c.cert_id"                           \
	" WHERE c.replaced_by IS NULL"                                                       \
	" AND ($1::text IS NULL OR l.uscc = $1)"                                             \
	" AND ($2::uuid IS NULL OR l.account_id = $2)"                                       \
	" AND ($3::text IS NULL OR ($3 = 'revoked' AND c.revoked_at IS NOT NULL)"            \
	"  OR ($3 = 'expired' AND c.revoked_at IS NULL AND c.not_after <= now())"             \
	"  OR ($3 = 'valid' AND c.revoked_at IS NULL AND c.not_after > now()))"               \
	" AND ($4::bigint IS NULL OR l.not_after >= to_timestamp($4::bigint))"              \
	" AND ($5::bigint IS NULL OR l.not_after < to_timestamp($5::bigint))"               \
	" AND ($6::text IS NULL OR position($6 IN l.holder) > 0)"                            \
	" AND ($7::text IS NULL OR c.vendor = $7)"                                           \
	" AND ($8::text IS NULL OR l.lock_kind = $8)"                                        \
	" AND ($9::boolean IS NULL OR (l.account_id IS NOT NULL) = $9)"                      \
	" AND ($10::text IS NULL OR ((" KEY "), l.id) " CMP " ($10::text::" CAST ", $11::uuid))" \
	" ORDER BY " KEY " " DIR ", l.id " DIR " LIMIT $12::int"

#define APPLIED "COALESCE(l.applied_at, l.created_at)"

const char *const store_cert_list_sql[CERT_SORTS * 2] = {
    CERT_LIST_SQL("l.not_after", "timestamptz", ">", "ASC"),
    CERT_LIST_SQL("l.not_after", "timestamptz", "<", "DESC"),
    CERT_LIST_SQL("l.holder", "text", ">", "ASC"),
    CERT_LIST_SQL("l.holder", "text", "<", "DESC"),
    CERT_LIST_SQL(APPLIED, "timestamptz", ">", "ASC"),
    CERT_LIST_SQL(APPLIED, "timestamptz", "<", "DESC"),
};

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
const char store_sync_cursor_sql[] =
    "SELECT cursor FROM vendor_sync WHERE vendor = $1";

const char store_sync_cursor_set_sql[] =
    "INSERT INTO vendor_sync (vendor, cursor, synced_at, certs) VALUES ($1, $2, now(), $3::bigint)"
    " ON CONFLICT (vendor) DO UPDATE SET cursor = EXCLUDED.cursor, synced_at = now(),"
    " last_error = NULL, certs = vendor_sync.certs + EXCLUDED.certs";

const char store_sync_failed_sql[] =
    "INSERT INTO vendor_sync (vendor, last_error) VALUES ($1, $2)"
    " ON CONFLICT (vendor) DO UPDATE SET last_error = EXCLUDED.last_error";

const char store_sync_certificate_sql[] =
    "SELECT o_cert_id, o_created FROM sync_certificate($1, $2, $3, $4, $5, $6, $7, $8, $9,"
    " $10, $11::timestamptz, $12::timestamptz, $13, $14, $15, $16, $17, $18, $19::text[],"
    " $20, $21, $22::timestamptz)";

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

const char store_import_copy_sql[] =
    "COPY import_rows (import_id, line, issuer, serial, vendor, subject, fingerprint_sha256,"
    " spki_sha256, key_type, not_before, not_after, pem, type, lock_kind, holder,"
    " enterprise_name, uscc, key_vendor, key_serial, first_applied_on, platforms)"
    " FROM STDIN";

const char store_import_duplicates_sql[] =
    "SELECT line, first FROM (SELECT line, min(line) OVER (PARTITION BY issuer, serial) AS first"
    " FROM import_rows WHERE import_id = $2::uuid) d WHERE line <> first ORDER BY line LIMIT $1::int";

const char store_import_unknown_platforms_sql[] =
    "SELECT s.line, p.code FROM import_rows s CROSS JOIN LATERAL unnest(s.platforms) AS p(code)"
    " WHERE s.import_id = $2::uuid"
    " AND NOT EXISTS (SELECT 1 FROM platform_catalogue c WHERE c.code = p.code AND c.active)"
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
