/* store — every SQL statement of the payments service, nowhere else. */
#include "payments.h"

#define RFC3339(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Whether the order o (read model) is visible to the viewer (struct
 * access_viewer: A its account, U its uscc, S its scope): the same predicate
 * as orders' ORDER_VISIBLE (services/orders/store.c), over the read model of
 * the order's placer and enterprise and its certificates' holders. */
#define ORDER_VISIBLE(A, U, S)                                             \
	"(" S "::text = 'platform'"                                        \
	" OR (" S "::text = 'enterprise' AND (o.uscc = " U "::text"        \
	"  OR EXISTS (SELECT 1 FROM order_certs v WHERE v.order_id = o.id" \
	"   AND v.uscc = " U "::text)))"                                   \
	" OR (" S "::text = 'own' AND ((o.account_id = " A "::uuid"        \
	"   AND o.uscc IS NOT DISTINCT FROM " U "::text)"                  \
	"  OR EXISTS (SELECT 1 FROM order_certs v WHERE v.order_id = o.id" \
	"   AND v.holder_account_id = " A                                  \
	"::uuid AND v.uscc IS NOT DISTINCT FROM " U "::text))))"

/* A payment's or an invoice's (table T) order is visible: staff with the
 * platform scope also see those whose order is unknown here. */
#define OF_VISIBLE_ORDER(T, A, U, S)                                  \
	"(" S "::text = 'platform' OR EXISTS (SELECT 1 FROM orders o" \
	" WHERE o.id = " T ".order_id AND " ORDER_VISIBLE(A, U, S) "))"

const char store_order_get_sql[] =
    "SELECT o.account_id, o.uscc, o.total_fen, o.status, o.expires_at <= now(), o.invoice_type,"
    " o.number FROM orders o WHERE o.id = $1 AND " ORDER_VISIBLE("$2", "$3",
        "$4");
const char store_order_enterprise_sql[] =
    "SELECT e.taxpayer_type, e.title, e.taxpayer_id, e.invoice_address, e.invoice_phone,"
    " e.bank_name, e.bank_account"
    " FROM orders o JOIN enterprises e ON e.uscc = o.uscc WHERE o.id = $1";
const char store_payment_create_sql[] =
    "SELECT payment_create($1, $2, $3, $4, $5, $6::bigint, $7, $8, $9, $10::timestamptz)";

#define PAYMENT_COLS                                                           \
	"id, order_id, account_id, channel, status, amount_fen, refunded_fen," \
	" qr_code, invoice_type, invoice_email, " RFC3339(                     \
	    "created_at") ", " RFC3339("paid_at")
const char store_payment_get_sql[] =
    "SELECT " PAYMENT_COLS " FROM payments WHERE id = $1"
    " AND " OF_VISIBLE_ORDER("payments", "$2", "$3", "$4");

const char store_payment_succeed_sql[] =
    "SELECT payment_succeed($1, $2, $3::bigint, $4, $5::timestamptz, $6, $7::bigint)";
const char store_notification_sql[] =
    "INSERT INTO notifications (channel, notify_id, out_trade_no, headers, body, outcome)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6)";
const char store_payment_close_sql[] =
    "UPDATE payments SET status = 'closed', qr_code = NULL"
    " WHERE channel = $1 AND out_trade_no = $2 AND status = 'pending'";

const char store_payments_due_sql[] =
    "WITH due AS (SELECT id FROM payments WHERE status = 'pending'"
    "   AND next_query_at <= now() AND created_at <= now() - make_interval(secs => $1::int)"
    "   ORDER BY next_query_at LIMIT 32 FOR UPDATE SKIP LOCKED)"
    " UPDATE payments p SET queries = p.queries + 1,"
    "   next_query_at = now() + make_interval(secs => LEAST($1::int * (p.queries + 1), 3600))"
    " FROM due WHERE p.id = due.id"
    " RETURNING p.id, p.channel, p.out_trade_no, p.amount_fen,"
    "   p.created_at <= now() - make_interval(secs => $2::int)";
/* ($1 query delay, $2 expiry, both s) → ms until a pending payment is to be
 * asked about or closed next, NULL when none is pending. */
const char store_payments_next_sql[] =
    "SELECT ceil(1000 * extract(epoch FROM min(LEAST("
    "  GREATEST(next_query_at, created_at + make_interval(secs => $1::int)),"
    "  created_at + make_interval(secs => $2::int))) - now()))::bigint"
    " FROM payments WHERE status = 'pending'";
const char store_payment_expire_sql[] =
    "UPDATE payments SET status = 'closed', qr_code = NULL WHERE id = $1 AND status = 'pending'";
const char store_invoices_fill_titles_sql[] =
    "UPDATE invoices i SET title = e.title, taxpayer_id = e.taxpayer_id,"
    " address_phone = NULLIF(concat_ws(' ', e.invoice_address, e.invoice_phone), ''),"
    " bank_account = NULLIF(concat_ws(' ', e.bank_name, e.bank_account), '')"
    " FROM enterprises e"
    " WHERE i.status = 'pending' AND i.title IS NULL AND e.uscc = i.uscc";
/* Due: pending or failed (开具失败) invoices whose next try is due, titled;
 * a red one once the invoice it reverses is issued, a reissue's blue one
 * once the original's reversal is issued. The claim is the next try's time
 * (two minutes on), so that a crashed process's claim lapses. */
#define INVOICE_READY                                                             \
	" i.status IN ('pending', 'failed') AND i.title IS NOT NULL"              \
	" AND i.attempts < $1::int"                                               \
	" AND (i.reverses_invoice_id IS NULL OR EXISTS (SELECT 1 FROM invoices b" \
	"  WHERE b.id = i.reverses_invoice_id AND b.status = 'issued'))"          \
	" AND (i.original_id IS NULL OR EXISTS (SELECT 1 FROM invoices b"         \
	"  JOIN invoices r ON r.id = b.reversal_id WHERE b.id = i.original_id"    \
	"  AND r.status = 'issued'))"
const char store_invoices_due_sql[] =
    "WITH due AS (SELECT i.id FROM invoices i WHERE" INVOICE_READY
    "   AND (i.next_try_at IS NULL OR i.next_try_at <= now())"
    "   ORDER BY i.created_at LIMIT 32 FOR UPDATE SKIP LOCKED)"
    " UPDATE invoices i SET next_try_at = now() + interval '120 seconds',"
    "   attempts = i.attempts + 1 FROM due"
    " WHERE i.id = due.id"
    " RETURNING i.id, i.type, i.kind, i.title, i.taxpayer_id, i.email, i.amount_fen, i.tax_fen,"
    "   i.attempts, (SELECT b.number FROM invoices b WHERE b.id = i.reverses_invoice_id),"
    "   COALESCE(i.reissue_reason, (SELECT f.reason FROM refunds f WHERE f.id = i.refund_id))";
/* ($1 max attempts) → ms until the next ready invoice's try, NULL when
 * none is ready (one waiting for a title or for the invoice it follows is
 * brought on by the kick of what it waits for, or by the idle look). */
const char store_invoices_next_sql[] =
    "SELECT ceil(1000 * extract(epoch FROM min(COALESCE(i.next_try_at, now()))"
    " - now()))::bigint FROM invoices i WHERE" INVOICE_READY;
/* invoice_issued($1 id, $2 number, $3 issue date, $4 check code,
 * $5 provider, $6 file hex, $7 sha256) */
const char store_invoice_issued_sql[] =
    "SELECT invoice_issued($1::uuid, $2, $3::date, $4, $5, $6, $7)";
const char store_invoice_try_failed_sql[] =
    "SELECT invoice_try_failed($1::uuid, $2::boolean, $3, $4::int)";
const char store_invoice_number_sql[] =
    "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YY') || '21'"
    " || lpad(nextval('invoice_numbers')::text, 16, '0')";

/* The invoice's columns (payments.h): the keyset cursor, then the post of a
 * paper invoice and what the list and the audit entries need. */
#define INVOICE_CURSOR \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || '_' || id"
#define INVOICE_ISSUED RFC3339("issued_at")
#define INVOICE_POSTED RFC3339("posted_at")
#define INVOICE_RECEIVED RFC3339("received_at")
#define INVOICE_CREATED RFC3339("created_at")
#define INVOICE_ORDER_NUMBER \
	"(SELECT number FROM orders WHERE orders.id = invoices.order_id)"
/* Issue 18 parts 6, 3, 7: the platform's answer, the reissue links, the
 * file and the e-mail (columns 26 … 39, payments.h). */
#define INVOICE_PLATFORM_COLS                                                       \
	"original_id, reversal_id, replacement_id, check_code,"                     \
	" to_char(issue_date, 'YYYY-MM-DD'), failure_reason, attempts,"             \
	" EXISTS (SELECT 1 FROM invoice_files f WHERE f.invoice_id = invoices.id)," \
	" email_status, email_error, " RFC3339(                                     \
	    "emailed_at") ", email_attempts,"                                       \
	                  " reissue_reason, email"
#define INVOICE_COLS                                                                        \
	"id, order_id, type, kind, reverses_invoice_id, title, taxpayer_id,"                \
	" amount_fen, tax_fen, status, number, " INVOICE_ISSUED                             \
	", payment_id, " INVOICE_CURSOR                                                     \
	", recipient, recipient_phone, postal_address,"                                     \
	" COALESCE(post_status, status), express_company, tracking_number, " INVOICE_POSTED \
	", " INVOICE_RECEIVED ", late, " INVOICE_ORDER_NUMBER                               \
	", " INVOICE_CREATED ", uscc, " INVOICE_PLATFORM_COLS
const char store_invoice_get_sql[] =
    "SELECT " INVOICE_COLS " FROM invoices WHERE id = $1"
    " AND " OF_VISIBLE_ORDER("invoices", "$2", "$3", "$4");
const char store_invoice_list_sql[] =
    "SELECT " INVOICE_COLS " FROM invoices"
    " WHERE " OF_VISIBLE_ORDER("invoices", "$1", "$5",
        "$6") " AND ($2::uuid IS NULL OR order_id = $2::uuid)"
              " AND ($3::text IS NULL OR (to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')"
              "   || '_' || id) < $3::text)"
              " AND ($7::text IS NULL OR status = $7::text)"
              " AND ($8::text IS NULL OR type = $8::text)"
              " AND ($9::date IS NULL OR issued_at >= ($9::date::timestamp AT TIME ZONE 'Asia/Shanghai'))"
              " AND ($10::date IS NULL OR issued_at < (($10::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'))"
              " AND ($11::text IS NULL OR order_id IN (SELECT o.id FROM orders o WHERE o.number = $11::text))"
              " ORDER BY created_at DESC, id DESC LIMIT $4::int";
const char store_invoices_fill_names_sql[] =
    "UPDATE invoices i SET title = p.name FROM persons p"
    " WHERE i.status = 'pending' AND i.title IS NULL AND i.uscc IS NULL"
    " AND p.account_id = i.account_id";
const char store_payment_postal_sql[] =
    "UPDATE payments SET invoice_recipient = $2, invoice_recipient_phone = $3,"
    " invoice_postal_address = $4 WHERE id = $1";
const char store_invoice_late_sql[] =
    "SELECT invoice_request_late($1::uuid, (SELECT id FROM payments WHERE id = $2::uuid"
    " AND " OF_VISIBLE_ORDER("payments", "$11", "$12",
        "$13") "), $3, $4, $5, $6, $7, $8::int, $9::bigint, $10::bigint)";
const char store_invoice_post_sql[] = "SELECT invoice_post($1, $2, $3)";
const char store_invoice_receive_sql[] =
    "SELECT invoice_receive((SELECT id FROM invoices WHERE id = $1::uuid"
    " AND " OF_VISIBLE_ORDER("invoices", "$2", "$3", "$4") "))";
const char store_invoice_file_head_sql[] =
    "SELECT length(f.data), f.sha256, i.number, f.content_type"
    " FROM invoices i JOIN invoice_files f ON f.invoice_id = i.id WHERE i.id = $1::uuid"
    " AND " OF_VISIBLE_ORDER("i", "$2", "$3", "$4");
const char store_invoice_file_chunk_sql[] =
    "SELECT encode(substring(data FROM $2::int FOR $3::int), 'hex')"
    " FROM invoice_files WHERE invoice_id = $1::uuid";
const char store_invoice_reissue_sql[] =
    "SELECT invoice_reissue((SELECT id FROM invoices WHERE id = $1::uuid"
    " AND " OF_VISIBLE_ORDER("invoices", "$9", "$10",
        "$11") "), $2::uuid, $3::uuid, $4, $5, $6, $7::int, $8::int)";
const char store_invoice_emails_due_sql[] =
    "WITH due AS (SELECT id FROM invoices WHERE email_status = 'pending'"
    "   AND email_next_at <= now() ORDER BY email_next_at LIMIT 8 FOR UPDATE SKIP LOCKED)"
    " UPDATE invoices i SET email_next_at = now() + interval '120 seconds',"
    "   email_attempts = i.email_attempts + 1 FROM due WHERE i.id = due.id"
    " RETURNING i.id, i.email, i.number, i.title, i.amount_fen, i.tax_fen, i.kind,"
    "   (SELECT encode(f.data, 'hex') FROM invoice_files f WHERE f.invoice_id = i.id)";
/* → ms until the next pending e-mail's try, NULL when none. */
const char store_invoice_emails_next_sql[] =
    "SELECT ceil(1000 * extract(epoch FROM min(email_next_at) - now()))::bigint"
    " FROM invoices WHERE email_status = 'pending'";
const char store_invoice_email_done_sql[] =
    "SELECT invoice_email_done($1::uuid, $2, $3::int, $4::int)";
const char store_person_upsert_sql[] =
    "INSERT INTO persons (account_id, name, completed_at)"
    " VALUES ($1::uuid, $2, COALESCE($3::timestamptz, now()))"
    " ON CONFLICT (account_id) DO UPDATE SET name = EXCLUDED.name,"
    " completed_at = EXCLUDED.completed_at"
    " WHERE persons.completed_at <= EXCLUDED.completed_at";

/* The audit entries of refunds: $N is audit_event_data (pay_audit_text);
 * the statement adds the enterprise concerned and what changed, and emits
 * only when the refund was created or changed. */
#define AUDIT_EMIT(ID, DATA, USCC, AFTER)                                \
	"outbox_emit('payments.audit.recorded', " ID ", " DATA "::jsonb" \
	" || jsonb_build_object('uscc', " USCC ", 'after', " AFTER "))"
#define USCC_OF_PAYMENT(P)                                                                  \
	"(SELECT o.uscc FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = " P \
	")"

const char store_refund_create_sql[] =
    "SELECT r.channel, r.out_trade_no, r.amount_fen, r.order_id, " AUDIT_EMIT(
        "$1::text", "$7",
        "(SELECT o.uscc FROM orders o WHERE o.id = r.order_id)",
        "jsonb_build_object('status', 'pending', 'payment_id', $2::uuid,"
        " 'amount_fen', $3::bigint, 'reason', $4::text)") " FROM refund_create($1, $2, $3::bigint, $4, $5, $6) r";
const char store_refund_succeed_sql[] =
    "WITH r AS (SELECT refund_succeed($1, $2, $3::bigint) AS outcome)"
    " SELECT r.outcome, CASE WHEN r.outcome = 'APPLIED' THEN " AUDIT_EMIT(
        "$1::text", "$4", USCC_OF_PAYMENT("f.payment_id"),
        "jsonb_build_object('status', 'succeeded', 'payment_id', f.payment_id,"
        " 'amount_fen', f.amount_fen, 'provider_refund_no', $2::text)") " END"
                                                                        " FROM r LEFT JOIN refunds f ON f.id = $1::uuid";
const char store_refund_fail_sql[] =
    "WITH f AS (UPDATE refunds SET status = 'failed' WHERE id = $1 AND status = 'pending'"
    " RETURNING id, payment_id, amount_fen)"
    " SELECT " AUDIT_EMIT("f.id::text", "$2", USCC_OF_PAYMENT("f.payment_id"),
        "jsonb_build_object('status', 'failed', 'payment_id', f.payment_id,"
        " 'amount_fen', f.amount_fen)") " FROM f";
const char store_refunds_due_sql[] =
    "WITH due AS (SELECT id FROM refunds WHERE status = 'pending' AND next_try_at <= now()"
    "   ORDER BY next_try_at LIMIT 16 FOR UPDATE SKIP LOCKED)"
    " UPDATE refunds r SET next_try_at = now() + interval '60 seconds' FROM due, payments p"
    " WHERE r.id = due.id AND p.id = r.payment_id"
    " RETURNING r.id, p.channel, p.out_trade_no, r.out_refund_no, r.amount_fen,"
    "   p.amount_fen, r.reason";
/* → ms until the next pending refund's retry, NULL when none. */
const char store_refunds_next_sql[] =
    "SELECT ceil(1000 * extract(epoch FROM min(next_try_at) - now()))::bigint"
    " FROM refunds WHERE status = 'pending'";

const char store_recon_bill_sql[] = "TRUNCATE recon_bill";
const char store_recon_copy_sql[] =
    "COPY recon_bill (seq, refund, out_no, provider_no, amount_fen, dup) FROM STDIN"
    " WITH (FREEZE)";
const char store_recon_run_sql[] =
    "SELECT * FROM recon_run_fast($1::uuid, $2, $3::date, $4, $5, $6::bigint, $7::bigint,"
    " $8::int, $9::jsonb)";
const char store_recon_get_sql[] =
    "SELECT id, channel, to_char(bill_date, 'YYYY-MM-DD'), matched, missing_local,"
    " missing_remote, amount_mismatch, items::text, " RFC3339(
        "created_at") ", items_total FROM reconciliations WHERE id = $1";
const char store_recon_total_sql[] =
    "SELECT COALESCE(items_total, jsonb_array_length(items)) FROM reconciliations WHERE id = $1::uuid";
const char store_recon_items_sql[] =
    "SELECT seq, kind, type, out_no, provider_no, local_amount_fen, remote_amount_fen,"
    " decision, decision_note, decided_by, " RFC3339(
        "decided_at") ""
                      " FROM reconciliation_items WHERE recon_id = $1::uuid AND seq > $2::bigint"
                      " ORDER BY seq LIMIT $3::int";
const char store_recon_decide_sql[] =
    "SELECT * FROM recon_decide($1::uuid, $2::bigint, $3, $4, $5)";
const char store_order_upsert_sql[] =
    "INSERT INTO orders (id, number, account_id, identity_id, uscc, total_fen, expires_at,"
    " created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7::timestamptz, COALESCE($8::timestamptz, now()))"
    " ON CONFLICT (id) DO NOTHING";
const char store_order_certs_sql[] =
    "INSERT INTO order_certs (order_id, cert_id, holder_account_id, uscc)"
    " SELECT $1::uuid, x.cert_id, x.holder_account_id, x.cert_uscc"
    " FROM jsonb_to_recordset($2::jsonb) AS x(cert_id uuid, holder_account_id uuid,"
    " cert_uscc text) WHERE x.cert_id IS NOT NULL"
    " ON CONFLICT (order_id, cert_id) DO NOTHING";
const char store_order_cancel_sql[] =
    "UPDATE orders SET status = 'cancelled' WHERE id = $1 AND status = 'pending_payment'";
const char store_order_cancel_payments_sql[] =
    "UPDATE payments SET status = 'closed', qr_code = NULL"
    " WHERE order_id = $1 AND status = 'pending'";
const char store_order_paid_sql[] =
    "UPDATE orders SET status = 'paid' WHERE id = $1 AND status = 'pending_payment'";
const char store_enterprise_upsert_sql[] =
    "INSERT INTO enterprises (uscc, record_id, seq, name, taxpayer_type, title, taxpayer_id,"
    " invoice_address, invoice_phone, bank_name, bank_account, approved_at)"
    " VALUES ($1, $2, $3::int, $4, $5, $6, $7, $8, $9, $10, $11, COALESCE($12::timestamptz, now()))"
    " ON CONFLICT (uscc) DO UPDATE SET record_id = EXCLUDED.record_id, seq = EXCLUDED.seq,"
    " name = EXCLUDED.name, taxpayer_type = EXCLUDED.taxpayer_type, title = EXCLUDED.title,"
    " taxpayer_id = EXCLUDED.taxpayer_id, invoice_address = EXCLUDED.invoice_address,"
    " invoice_phone = EXCLUDED.invoice_phone, bank_name = EXCLUDED.bank_name,"
    " bank_account = EXCLUDED.bank_account, approved_at = EXCLUDED.approved_at"
    " WHERE enterprises.approved_at <= EXCLUDED.approved_at";
