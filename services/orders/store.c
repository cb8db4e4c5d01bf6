/* store — every SQL statement of the orders service. Each function appends
 * its statements to a batch (one transaction, one round trip); the caller's
 * continuation reads the result by statement index. See orders.h. */
#include "orders.h"

#include "bus.h"
#include "db.h"
#include "util.h"

#include <stdio.h>

/* ---- catalogue ---------------------------------------------------------- */

#define CATALOGUE_COLUMNS                                                       \
	"p.platform, pl.name, pl.sort, COALESCE(p.lock_kind, ''), p.renew_fen," \
	" p.add_fen, p.id, api_time(p.effective_at)"

void
store_catalogue_now(struct db_batch *b)
{
	/* DISTINCT ON keeps, per (platform, kind), the latest version in force. */
	db_batch_add(b,
	    "SELECT * FROM ("
	    " SELECT DISTINCT ON (p.platform, p.lock_kind) " CATALOGUE_COLUMNS
	    " FROM platform_prices p JOIN platforms pl ON pl.code = p.platform"
	    " WHERE pl.active AND p.effective_at <= now()"
	    " ORDER BY p.platform, p.lock_kind, p.effective_at DESC, p.id DESC"
	    ") c ORDER BY 3, 1, 4",
	    0, NULL);
}

void
store_catalogue_next_change(struct db_batch *b)
{
	/* Milliseconds until the next scheduled version comes into force,
	 * NULL when none is scheduled. */
	db_batch_add(b,
	    "SELECT ceil(extract(epoch FROM min(effective_at) - now()) * 1000)::bigint"
	    " FROM platform_prices WHERE effective_at > now()",
	    0, NULL);
}

void
store_catalogue_of_quote(struct db_batch *b, const char *quote_id,
    const char *account_id)
{
	const char *p[] = {quote_id, account_id};

	db_batch_add(b,
	    "SELECT " CATALOGUE_COLUMNS
	    " FROM platform_prices p JOIN platforms pl ON pl.code = p.platform"
	    " WHERE p.id = ANY ((SELECT price_ids FROM quotes WHERE id = $1 AND account_id = $2)::bigint[])"
	    " ORDER BY pl.sort, p.platform, p.lock_kind NULLS FIRST",
	    2, p);
}

/* The new version and its audit entry ($9: audit_event_data, whose before
 * and after are filled here: the version in force until now, the new one)
 * in one statement: no entry when the platform is unknown. The version in
 * force is read in two index-driven halves ("lock_kind IS NOT DISTINCT
 * FROM $2" walked every version of the platform: a price change cost grew
 * with the history). The entry is
 * written held by audit_emit() (common 095): the caller has it flushed
 * once committed (audit_flush_notified). */
const char store_price_insert_sql[] =
    "WITH prev AS (SELECT jsonb_build_object('id', id, 'lock_kind', lock_kind,"
    "  'renew_fen', renew_fen, 'add_fen', add_fen, 'effective_at', api_time(effective_at)) AS v"
    " FROM ((SELECT * FROM platform_prices WHERE platform = $1 AND lock_kind = $2"
    "  AND effective_at <= now() ORDER BY effective_at DESC, id DESC LIMIT 1)"
    " UNION ALL"
    " (SELECT * FROM platform_prices WHERE platform = $1 AND lock_kind IS NULL"
    "  AND $2::text IS NULL AND effective_at <= now() ORDER BY effective_at DESC, id DESC"
    "  LIMIT 1)) x),"
    " ins AS ("
    " INSERT INTO platform_prices (platform, lock_kind, renew_fen, add_fen, effective_at,"
    " staff_id, staff_username, reason)"
    " SELECT code, $2, $3::bigint, $4::bigint, COALESCE($5::timestamptz, now()), $6::uuid, $7, $8"
    " FROM platforms WHERE code = $1"
    " RETURNING id, platform, lock_kind, renew_fen, add_fen, effective_at, staff_username,"
    " reason, created_at)"
    " SELECT id, platform, lock_kind, renew_fen, add_fen, api_time(effective_at),"
    " staff_username, reason, api_time(created_at),"
    " audit_emit(platform, $9::jsonb"
    "  || jsonb_build_object('before', (SELECT v FROM prev), 'after', jsonb_build_object("
    "  'id', id, 'lock_kind', lock_kind, 'renew_fen', renew_fen, 'add_fen', add_fen,"
    "  'effective_at', api_time(effective_at), 'reason', reason)))"
    " FROM ins";

const char store_price_history_sql[] =
    "WITH cur AS ("
    " SELECT DISTINCT ON (lock_kind) id FROM platform_prices"
    " WHERE platform = $1 AND effective_at <= now()"
    " ORDER BY lock_kind, effective_at DESC, id DESC)"
    " SELECT p.id, pl.code, p.lock_kind, p.renew_fen, p.add_fen,"
    " api_time(p.effective_at), p.staff_username, p.reason,"
    " api_time(p.created_at), p.id IN (SELECT id FROM cur),"
    " p.effective_at > now(), pl.name"
    " FROM platforms pl LEFT JOIN platform_prices p ON p.platform = pl.code"
    " WHERE pl.code = $1"
    " ORDER BY p.effective_at DESC, p.id DESC";

/* ---- eligibility facts -------------------------------------------------- */

void
store_facts(struct db_batch *b, const char *account_id, const char *uscc,
    const char *cert_ids)
{
	const char *pa[] = {account_id};
	const char *pu[] = {uscc};
	const char *pc[] = {cert_ids};

	db_batch_add(b, "SELECT 1 FROM profiles WHERE account_id = $1::uuid", 1,
	    pa);
	db_batch_add(b, "SELECT 1 FROM enterprises WHERE uscc = $1", 1, pu);
	db_batch_add(b,
	    "SELECT c.cert_id, c.serial, c.type, c.holder, c.uscc, c.account_id, c.lock_kind,"
	    " EXTRACT(EPOCH FROM c.not_after)::bigint, array_to_json(c.platforms)::text,"
	    " r.cert_id IS NOT NULL, e.uscc IS NOT NULL,"
	    " EXISTS (SELECT 1 FROM order_items i WHERE i.cert_id = c.cert_id AND i.open),"
	    " c.vendor, c.enterprise_name, api_time(c.not_after)"
	    " FROM certs c"
	    " LEFT JOIN revoked_certs r ON r.cert_id = c.cert_id"
	    " LEFT JOIN enterprises e ON e.uscc = c.uscc"
	    " WHERE c.cert_id = ANY ($1::uuid[])",
	    1, pc);
}

void
store_quote_get(struct db_batch *b, const char *quote_id,
    const char *account_id)
{
	const char *p[] = {quote_id, account_id};

	db_batch_add(b,
	    "SELECT items_hash, expires_at > now() FROM quotes"
	    " WHERE id = $1::uuid AND account_id = $2::uuid",
	    2, p);
}

void
store_next_number(struct db_batch *b)
{
	db_batch_add(b, "SELECT nextval('order_number_seq')", 0, NULL);
}

void
store_quote_insert(struct db_batch *b, const char *id, const char *account_id,
    const char *items_hash, const char *price_ids, const char *total_fen,
    const char *expires_at)
{
	const char *p[] = {id, account_id, items_hash, price_ids, total_fen,
	    expires_at};

	db_batch_add(b,
	    "INSERT INTO quotes (id, account_id, items_hash, price_ids, total_fen, expires_at)"
	    " VALUES ($1::uuid, $2::uuid, $3, $4::bigint[], $5::bigint, $6::timestamptz)",
	    6, p);
}

/* ---- orders ------------------------------------------------------------- */

void
store_order_insert(struct db_batch *b, const char *id, const char *number,
    const char *account_id, const char *identity_id, const char *uscc,
    const char *total_fen, const char *quote_id, const char *created_at,
    const char *expires_at)
{
	const char *p[] = {id, number, account_id, identity_id, uscc, total_fen,
	    quote_id, created_at, expires_at};

	db_batch_add(b,
	    "INSERT INTO orders (id, number, account_id, identity_id, uscc, status, total_fen,"
	    " quote_id, created_at, expires_at)"
	    " VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, 'pending_payment', $6::bigint,"
	    " $7::uuid, $8::timestamptz, $9::timestamptz)",
	    9, p);
}

void
store_order_items_insert(struct db_batch *b, const char *order_id,
    const char *items_json)
{
	const char *p[] = {order_id, items_json};

	db_batch_add(b,
	    "INSERT INTO order_items (order_id, seq, cert_id, account_id, uscc, price_fen,"
	    " platforms, detail)"
	    " SELECT $1::uuid, x.seq, x.cert_id, x.account_id, x.uscc, x.price_fen,"
	    " ARRAY(SELECT jsonb_array_elements_text(x.platforms)), x.detail"
	    " FROM jsonb_to_recordset($2::jsonb) AS x(seq int, cert_id uuid, account_id uuid,"
	    " uscc text, price_fen bigint, platforms jsonb, detail jsonb)",
	    2, p);
}

/* The order view: 0 id, 1 number, 2 status, 3 total_fen, 4 created_at,
 * 5 expires_at, 6 paid_at, 7 closed_at, 8 fulfilled_at, 9 refunded_at,
 * 10 uscc, 11 account_id, 12 quote_id, 13 items (JSON), 14 payments flagged
 * for refund (JSON), 15 cursor (created_at with microseconds). */
#define ORDER_VIEW_COLUMNS                                                             \
	"o.id, o.number, o.status, o.total_fen, api_time(o.created_at),"               \
	" api_time(o.expires_at), api_time(o.paid_at), api_time(o.closed_at),"         \
	" api_time(o.fulfilled_at), api_time(o.refunded_at), o.uscc, o.account_id,"    \
	" o.quote_id,"                                                                 \
	" (SELECT jsonb_agg(jsonb_build_object('detail', i.detail,"                    \
	"   'renewed_at', api_time(i.renewed_at), 'renewed_serial', i.renewed_serial)" \
	"   ORDER BY i.seq) FROM order_items i WHERE i.order_id = o.id)::text,"        \
	" (SELECT jsonb_agg(jsonb_build_object('payment_id', p.payment_id,"            \
	"   'amount_fen', p.amount_fen, 'outcome', p.outcome,"                         \
	"   'refund_needed', p.refund_needed, 'refunded_at', api_time(p.refunded_at))" \
	"   ORDER BY p.recorded_at) FROM order_payments p"                             \
	"   WHERE p.order_id = o.id AND p.outcome <> 'applied')::text,"                \
	" to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* Whether the order o is visible to the viewer (struct access_viewer, the
 * one rule): A its account, U its uscc, S its scope. payments' store.c
 * applies the same predicate to its read model of orders. */
#define ORDER_VISIBLE(A, U, S)                                                 \
	"(" S "::text = 'platform'"                                            \
	" OR (" S "::text = 'enterprise' AND (o.uscc = " U "::text"            \
	"  OR EXISTS (SELECT 1 FROM order_items v WHERE v.order_id = o.id"     \
	"   AND v.uscc = " U "::text)))"                                       \
	" OR (" S "::text = 'own' AND ((o.account_id = " A "::uuid"            \
	"   AND o.uscc IS NOT DISTINCT FROM " U "::text)"                      \
	"  OR EXISTS (SELECT 1 FROM order_items v WHERE v.order_id = o.id"     \
	"   AND v.account_id = " A "::uuid AND v.uscc IS NOT DISTINCT FROM " U \
	"::text))))"

static const char store_order_list_sql[] =
    "SELECT " ORDER_VIEW_COLUMNS " FROM orders o"
    " WHERE " ORDER_VISIBLE("$1", "$2",
        "$8") " AND ($3::text IS NULL OR o.status = $3)"
              " AND ($4::timestamptz IS NULL OR (o.created_at, o.id) < ($4::timestamptz, $5::uuid))"
              " AND ($7::uuid IS NULL OR o.id = $7::uuid)"
              " ORDER BY o.created_at DESC, o.id DESC LIMIT $6::int";

void
store_order_list(struct db_batch *b, const struct access_viewer *v,
    const char *status, const char *cur_time, const char *cur_id,
    const char *limit, const char *order_id)
{
	const char *p[] = {v->account, v->uscc, status, cur_time, cur_id, limit,
	    order_id, v->scope};

	db_batch_add(b, store_order_list_sql, 8, p);
}

/* The tail of a statement whose CTE "closed" (RETURNING id, number, status,
 * closed_at) ended orders unpaid: their items free their certificates, and
 * each order's orders.order.cancelled (status cancelled or expired) goes to
 * the outbox. The CTE "e" is read by the statement (SELECT ... FROM e), so
 * that every event is written: a SELECT in WITH runs only as far as it is
 * read. */
#define ORDER_CLOSED_TAIL                                                \
	" i AS (UPDATE order_items SET open = false"                     \
	"  WHERE order_id IN (SELECT id FROM closed)),"                  \
	" e AS (SELECT closed.id, outbox_emit('orders.order.cancelled'," \
	"  closed.id::text, jsonb_build_object('order_id', closed.id,"   \
	"  'number', closed.number, 'status', closed.status,"            \
	"  'cancelled_at', api_time(closed.closed_at))) AS event_id FROM closed)"

void
store_order_cancel(struct db_batch *b, const char *order_id,
    const struct access_viewer *v)
{
	const char *p[] = {order_id, v->account, v->uscc, v->scope};

	db_batch_add(b,
	    "WITH closed AS ("
	    " UPDATE orders o SET status = 'cancelled', closed_at = now()"
	    " WHERE o.id = $1::uuid AND o.status = 'pending_payment'"
	    " AND " ORDER_VISIBLE("$2", "$3",
	        "$4") " AND (o.account_id = $2::uuid OR $4::text = 'enterprise')"
	              " RETURNING o.id, o.number, o.status, o.closed_at)," ORDER_CLOSED_TAIL
	              " SELECT id FROM e WHERE event_id IS NOT NULL",
	    4, p);
	store_order_list(b, v, NULL, NULL, NULL, "1", order_id);
	db_batch_add(b,
	    "SELECT o.account_id = $2::uuid OR $3::text = 'enterprise'"
	    " FROM orders o WHERE o.id = $1::uuid",
	    3, (const char *[]){order_id, v->account, v->scope});
}

const char store_flagged_payments_sql[] =
    "SELECT p.payment_id, p.order_id, o.number, p.channel, p.amount_fen, p.outcome,"
    " p.order_status, api_time(p.paid_at), api_time(p.recorded_at), p.provider_trade_no,"
    " to_char(p.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    " FROM order_payments p LEFT JOIN orders o ON o.id = p.order_id"
    " WHERE p.refund_needed"
    " AND ($2::timestamptz IS NULL OR (p.recorded_at, p.payment_id) < ($2::timestamptz, $3::uuid))"
    " ORDER BY p.recorded_at DESC, p.payment_id DESC LIMIT $1::int";

/* ---- the sweep ---------------------------------------------------------- */

const char store_sweep_next_expiry_sql[] =
    "SELECT ceil(extract(epoch FROM min(expires_at) - now()))::bigint"
    " FROM orders WHERE status = 'pending_payment'";

const char store_order_expiring_sql[] =
    "SELECT order_expiring_claim($1::int, $2::int)";

const char store_digest_due_sql[] =
    "SELECT x.uscc,"
    " (SELECT i.account_id FROM identities i WHERE i.uscc = x.uscc AND i.role = 'admin'"
    "  ORDER BY i.added_at DESC LIMIT 1),"
    " (SELECT json_agg(json_build_object('cert_id', p.cert_id, 'platforms', p.platforms)"
    "   ORDER BY p.cert_id)::text"
    "  FROM (SELECT DISTINCT e.cert_id, COALESCE(c.platforms, e.platforms) AS platforms"
    "   FROM expiring_certs e LEFT JOIN certs c ON c.cert_id = e.cert_id"
    "   WHERE e.uscc = x.uscc AND e.digest_id IS NULL) p"
    "  WHERE cardinality(p.platforms) > 0),"
    " (SELECT array_agg(DISTINCT e.cert_id) FROM expiring_certs e"
    "  WHERE e.uscc = x.uscc AND e.digest_id IS NULL)::text"
    " FROM (SELECT uscc FROM expiring_certs WHERE digest_id IS NULL GROUP BY uscc"
    "  HAVING min(received_at) <= now() - make_interval(secs => $1::int)) x"
    " WHERE NOT EXISTS (SELECT 1 FROM expiry_digests d"
    "  WHERE d.uscc = x.uscc AND d.day = digest_day(now()))"
    " LIMIT 1";

/* Seconds until the next enterprise's digest falls due: its first
 * undigested certificate gathered $1 seconds, and not before tomorrow
 * (Beijing) when it had today's; NULL when nothing waits. */
const char store_digest_next_sql[] =
    "SELECT ceil(extract(epoch FROM min(GREATEST("
    "  x.first + make_interval(secs => $1::int),"
    "  CASE WHEN EXISTS (SELECT 1 FROM expiry_digests d"
    "   WHERE d.uscc = x.uscc AND d.day = digest_day(now()))"
    "  THEN (digest_day(now()) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai' END))"
    " - now()))::bigint"
    " FROM (SELECT uscc, min(received_at) AS first FROM expiring_certs"
    "  WHERE digest_id IS NULL GROUP BY uscc) x";

/* Seconds until the next unpaid order enters the order.expiring window
 * ($1 seconds before it expires) untold; NULL when none. */
const char store_order_expiring_next_sql[] =
    "SELECT ceil(extract(epoch FROM min(o.expires_at)"
    " - make_interval(secs => $1::int) - now()))::bigint"
    " FROM orders o WHERE o.status = 'pending_payment' AND o.expires_at > now()"
    " AND NOT EXISTS (SELECT 1 FROM order_notices n"
    "  WHERE n.order_id = o.id AND n.kind = 'order.expiring')";

const char store_digest_save_sql[] =
    "SELECT digest_save($1::uuid, $2, $3::uuid, $4::uuid[], $5::uuid, $6::timestamptz,"
    " $7::bigint)";

const char store_expiring_insert_sql[] =
    "INSERT INTO expiring_certs (cert_id, stage, uscc, serial, holder, not_after, platforms)"
    " VALUES ($1::uuid, $2::int, $3, $4, $5, $6::timestamptz,"
    " CASE WHEN $7::jsonb IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text($7::jsonb)) END)"
    " ON CONFLICT DO NOTHING";

const char store_sweep_expire_sql[] =
    "WITH due AS ("
    " SELECT id FROM orders WHERE status = 'pending_payment' AND expires_at <= now()"
    " ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED),"
    " closed AS (UPDATE orders o SET status = 'expired', closed_at = now() FROM due"
    "  WHERE o.id = due.id AND o.status = 'pending_payment'"
    "  RETURNING o.id, o.number, o.status, o.closed_at)," ORDER_CLOSED_TAIL
    " SELECT count(event_id) FROM e";

void
store_housekeeping(struct db_batch *b)
{
	db_batch_add(b,
	    "DELETE FROM quotes WHERE expires_at < now() - interval '1 day'", 0,
	    NULL);
}

/* ---- the consumers ------------------------------------------------------ */

const char store_identity_upsert_sql[] =
    "INSERT INTO identities (identity_id, account_id, type, enterprise_name, uscc, role, added_at)"
    " SELECT $1::uuid, $2::uuid, $3, $4, $5, $6, $7::timestamptz"
    " WHERE NOT EXISTS (SELECT 1 FROM removed_identities WHERE identity_id = $1::uuid)"
    " ON CONFLICT (identity_id) DO NOTHING";

const char store_profile_upsert_sql[] =
    "INSERT INTO profiles (account_id, name, completed_at) VALUES ($1::uuid, $2, $3::timestamptz)"
    " ON CONFLICT (account_id) DO UPDATE SET name = EXCLUDED.name,"
    " completed_at = EXCLUDED.completed_at"
    " WHERE profiles.completed_at <= EXCLUDED.completed_at";

/* A later decision of the same record, or any decision of a newer record,
 * replaces what is there. */
const char store_enterprise_approved_sql[] =
    "INSERT INTO enterprises (uscc, record_id, seq, name, approved_at)"
    " VALUES ($1, $2::uuid, $3::int, $4, $5::timestamptz)"
    " ON CONFLICT (uscc) DO UPDATE SET record_id = EXCLUDED.record_id, seq = EXCLUDED.seq,"
    " name = EXCLUDED.name, approved_at = EXCLUDED.approved_at"
    " WHERE enterprises.record_id <> EXCLUDED.record_id OR enterprises.seq <= EXCLUDED.seq";

/* Validity, serial and platforms only move forward (a renewal's event may
 * arrive before the registration's). */
#define CERT_VALIDITY_UPDATE                                                                                                \
	" serial = CASE WHEN EXCLUDED.not_after >= certs.not_after THEN EXCLUDED.serial ELSE certs.serial END,"             \
	" not_before = CASE WHEN EXCLUDED.not_after >= certs.not_after THEN EXCLUDED.not_before ELSE certs.not_before END," \
	" platforms = CASE WHEN EXCLUDED.not_after >= certs.not_after THEN EXCLUDED.platforms ELSE certs.platforms END,"    \
	" not_after = GREATEST(EXCLUDED.not_after, certs.not_after),"                                                       \
	" account_id = COALESCE(EXCLUDED.account_id, certs.account_id),"                                                    \
	" updated_at = now()"

const char store_cert_registered_sql[] =
    "INSERT INTO certs (cert_id, serial, type, holder, enterprise_name, uscc, lock_kind, vendor,"
    " account_id, not_before, not_after, platforms)"
    " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9::uuid, $10::timestamptz, $11::timestamptz,"
    " CASE WHEN $12::jsonb IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text($12::jsonb)) END)"
    " ON CONFLICT (cert_id) DO UPDATE SET type = EXCLUDED.type, holder = EXCLUDED.holder,"
    " enterprise_name = EXCLUDED.enterprise_name, uscc = EXCLUDED.uscc,"
    " lock_kind = EXCLUDED.lock_kind, vendor = EXCLUDED.vendor," CERT_VALIDITY_UPDATE;

/* $1 a JSON array of issuance.cert.registered data (issuance.certs.imported),
 * as store_cert_registered_sql for each. */
const char store_certs_imported_sql[] =
    "INSERT INTO certs (cert_id, serial, type, holder, enterprise_name, uscc, lock_kind, vendor,"
    " account_id, not_before, not_after, platforms)"
    " SELECT x.cert_id, x.serial, x.type, x.holder, x.enterprise_name, x.uscc, x.lock_kind,"
    " x.vendor, x.account_id, x.not_before, x.not_after,"
    " CASE WHEN jsonb_typeof(x.platforms) = 'array'"
    " THEN ARRAY(SELECT jsonb_array_elements_text(x.platforms)) END"
    " FROM jsonb_to_recordset($1::jsonb) AS x(cert_id uuid, serial text, type text, holder text,"
    " enterprise_name text, uscc text, lock_kind text, vendor text, account_id uuid,"
    " not_before timestamptz, not_after timestamptz, platforms jsonb)"
    " ON CONFLICT (cert_id) DO UPDATE SET type = EXCLUDED.type, holder = EXCLUDED.holder,"
    " enterprise_name = EXCLUDED.enterprise_name, uscc = EXCLUDED.uscc,"
    " lock_kind = EXCLUDED.lock_kind, vendor = EXCLUDED.vendor," CERT_VALIDITY_UPDATE;

/* $1 the data of an issuance.certs.imported of one array per field (091):
 * element i of each is the i-th certificate; as store_cert_registered_sql
 * for each. */
const char store_certs_imported_cols_sql[] =
    "INSERT INTO certs (cert_id, serial, type, holder, enterprise_name, uscc, lock_kind, vendor,"
    " account_id, not_before, not_after, platforms)"
    " SELECT x.cert_id::uuid, x.serial, x.type, x.holder, x.enterprise_name, x.uscc, x.lock_kind,"
    " x.vendor, x.account_id::uuid, x.not_before::timestamptz, x.not_after::timestamptz,"
    " CASE WHEN jsonb_typeof(x.platforms) = 'array'"
    " THEN ARRAY(SELECT jsonb_array_elements_text(x.platforms)) END"
    " FROM (SELECT $1::jsonb AS d) e, ROWS FROM (jsonb_array_elements_text(e.d->'cert_id'),"
    " jsonb_array_elements_text(e.d->'serial'), jsonb_array_elements_text(e.d->'type'),"
    " jsonb_array_elements_text(e.d->'holder'), jsonb_array_elements_text(e.d->'enterprise_name'),"
    " jsonb_array_elements_text(e.d->'uscc'), jsonb_array_elements_text(e.d->'lock_kind'),"
    " jsonb_array_elements_text(e.d->'vendor'), jsonb_array_elements_text(e.d->'account_id'),"
    " jsonb_array_elements_text(e.d->'not_before'), jsonb_array_elements_text(e.d->'not_after'),"
    " jsonb_array_elements(e.d->'platforms'))"
    " AS x(cert_id, serial, type, holder, enterprise_name, uscc, lock_kind, vendor, account_id,"
    " not_before, not_after, platforms)"
    " ON CONFLICT (cert_id) DO UPDATE SET type = EXCLUDED.type, holder = EXCLUDED.holder,"
    " enterprise_name = EXCLUDED.enterprise_name, uscc = EXCLUDED.uscc,"
    " lock_kind = EXCLUDED.lock_kind, vendor = EXCLUDED.vendor," CERT_VALIDITY_UPDATE;

const char store_cert_renewed_sql[] =
    "INSERT INTO certs (cert_id, serial, type, uscc, lock_kind, account_id, not_before,"
    " not_after, platforms)"
    " VALUES ($1::uuid, $2, CASE WHEN $3::text IS NULL THEN 'personal' ELSE 'enterprise' END,"
    " $3, $4, $5::uuid, $6::timestamptz, $7::timestamptz,"
    " ARRAY(SELECT jsonb_array_elements_text($8::jsonb)))"
    " ON CONFLICT (cert_id) DO UPDATE SET" CERT_VALIDITY_UPDATE;

const char store_cert_revoked_sql[] =
    "INSERT INTO revoked_certs (cert_id, serial, reason, revoked_at)"
    " VALUES ($1::uuid, $2, $3, $4::timestamptz) ON CONFLICT (cert_id) DO NOTHING";

const char store_order_lock_sql[] =
    "SELECT status, total_fen, number, account_id, payment_id FROM orders"
    " WHERE id = $1::uuid FOR UPDATE";

/* $1 payment, $2 order, $3 channel, $4 amount, $5 trade no, $6 paid_at,
 * $7 outcome, $8 order status, $9 refund needed. */
const char store_payment_record_sql[] =
    "INSERT INTO order_payments (payment_id, order_id, channel, amount_fen, provider_trade_no,"
    " paid_at, outcome, order_status, refund_needed)"
    " VALUES ($1::uuid, $2::uuid, $3, $4::bigint, $5, $6::timestamptz, $7, $8, $9::boolean)"
    " ON CONFLICT (payment_id) DO NOTHING";

const char store_order_paid_sql[] =
    "UPDATE orders SET status = 'paid', payment_id = $2::uuid, paid_at = $3::timestamptz"
    " WHERE id = $1::uuid AND status = 'pending_payment' RETURNING api_time(paid_at)";

const char store_order_items_sql[] =
    "SELECT cert_id, array_to_json(platforms)::text, price_fen, renewed_serial"
    " FROM order_items WHERE order_id = $1::uuid ORDER BY seq";

const char store_item_renewed_sql[] =
    "UPDATE order_items SET open = false, renewed_at = $3::timestamptz, renewed_serial = $4"
    " WHERE order_id = $1::uuid AND cert_id = $2::uuid AND renewed_at IS NULL";

const char store_order_fulfilled_sql[] =
    "UPDATE orders SET status = 'fulfilled', fulfilled_at = now()"
    " WHERE id = $1::uuid AND status = 'paid'"
    " AND NOT EXISTS (SELECT 1 FROM order_items WHERE order_id = $1::uuid AND renewed_at IS NULL)"
    " RETURNING number, api_time(fulfilled_at)";

const char store_payment_refunded_sql[] =
    "UPDATE order_payments SET refunded_fen = GREATEST(refunded_fen, $2::bigint),"
    " refunded_at = CASE WHEN $3::boolean THEN COALESCE(refunded_at, now()) ELSE refunded_at END,"
    " refund_needed = refund_needed AND NOT $3::boolean"
    " WHERE payment_id = $1::uuid RETURNING outcome, order_id";

const char store_order_refunded_sql[] =
    "WITH r AS (UPDATE orders SET status = 'refunded', refunded_at = now()"
    " WHERE id = $1::uuid AND payment_id = $2::uuid AND status IN ('paid', 'fulfilled')"
    " RETURNING id)"
    " UPDATE order_items SET open = false WHERE order_id IN (SELECT id FROM r)"
    " RETURNING 1";

const char store_new_cert_order_sql[] =
    "SELECT new_cert_order($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7,"
    " $8::uuid, $9::text[], $10::int, $11::uuid, $12::int)::text";

/* $1 as store_certs_imported_sql: the cert ids among them that are the
 * item of a paid new-certificate order (store_new_cert_item_sql). */
const char store_new_cert_items_sql[] =
    "SELECT i.cert_id::text FROM order_items i JOIN orders o ON o.id = i.order_id"
    " WHERE i.cert_id IN (SELECT (e->>'cert_id')::uuid FROM jsonb_array_elements($1::jsonb) e)"
    " AND i.product = 'new_certificate' AND i.renewed_at IS NULL AND o.status = 'paid'";

/* The same for the data of store_certs_imported_cols_sql. */
const char store_new_cert_items_cols_sql[] =
    "SELECT i.cert_id::text FROM order_items i JOIN orders o ON o.id = i.order_id"
    " WHERE i.cert_id IN (SELECT jsonb_array_elements_text($1::jsonb->'cert_id')::uuid)"
    " AND i.product = 'new_certificate' AND i.renewed_at IS NULL AND o.status = 'paid'";

const char store_new_cert_item_sql[] =
    "SELECT i.order_id FROM order_items i JOIN orders o ON o.id = i.order_id"
    " WHERE i.cert_id = $1::uuid AND i.product = 'new_certificate'"
    " AND i.renewed_at IS NULL AND o.status = 'paid'";

/* auth.identity.added and .removed of one identity, one at a time (two
 * consumers): whichever commits second sees the other (045). */
const char store_identity_lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtext('caplat.orders.identity'), hashtext($1))";

const char store_identity_removed_sql[] =
    "WITH r AS (INSERT INTO removed_identities (identity_id, account_id, uscc, role, reason,"
    " removed_at) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::timestamptz)"
    " ON CONFLICT (identity_id) DO NOTHING)"
    " DELETE FROM identities WHERE identity_id = $1::uuid";

/* The removed identity's unpaid applications (new certificates for that
 * holder, enterprise and lock kind; admin: master) are cancelled, as the
 * holder's cancel would: orders.order.cancelled for payments and issuance. */
const char store_identity_orders_cancel_sql[] =
    "WITH closed AS ("
    " UPDATE orders o SET status = 'cancelled', closed_at = now()"
    " WHERE o.status = 'pending_payment' AND o.id IN (SELECT it.order_id"
    "  FROM order_items it WHERE it.product = 'new_certificate'"
    "  AND it.account_id = $1::uuid AND it.uscc = $2::text AND it.open"
    "  AND it.detail->>'lock_kind' ="
    "   CASE $3::text WHEN 'admin' THEN 'master' ELSE $3::text END)"
    " RETURNING o.id, o.number, o.status, o.closed_at)," ORDER_CLOSED_TAIL
    " SELECT count(*) FROM e WHERE event_id IS NOT NULL";
