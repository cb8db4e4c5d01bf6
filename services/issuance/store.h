/* store — the issuance service's SQL (see store.c). Each statement's
 * parameters ($n) and result columns are listed beside it; times go in and
 * out as Unix seconds, platform sets as JSON arrays (out) and PostgreSQL
 * array literals (in). The rules that span rows are the PL/pgSQL functions
 * of deploy/sql/issuance/002_functions.sql. */
#ifndef CAPLAT_ISSUANCE_STORE_H
#define CAPLAT_ISSUANCE_STORE_H

/* GET /certs, the latest certificate of each lineage in scope, soonest
 * notAfter first. $1 uscc or NULL, $2 account id or NULL (both NULL: all),
 * $3 cursor notAfter (s) or NULL, $4 cursor cert id, $5 limit. Columns:
 * 0 cert id, 1 serial, 2 type, 3 holder, 4 vendor, 5 lock kind,
 * 6 enterprise name, 7 uscc, 8 not_before, 9 not_after, 10 platforms,
 * 11 revoked, 12 in an open order, 13 renewal paid, 14 issuer,
 * 15 account id, 16 previous serial. */
extern const char store_cert_list_sql[];

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
/* $1 id. */
extern const char store_job_done_sql[];
/* $1 id, $2 error, $3 retry seconds, $4 final. */
extern const char store_job_failed_sql[];

/* revoke_certificate($1 cert id, $2 reason, $3 event id, $4 job id,
 * $5 vendors to forward to "{A,B}"). Columns: 0 serial, 1 issuer,
 * 2 revoked_at, 3 vendor, 4 forwarded. */
extern const char store_revoke_sql[];

/* The revoked certificates of issuer $1 (for its CRL): 0 serial,
 * 1 revoked_at, 2 reason. */
extern const char store_crl_entries_sql[];

/* The interop view of serial $1 for platform $2: 0 not_before, 1 not_after,
 * 2 revoked, 3 superseded, 4 platforms, 5 associated. The latest
 * certificate wins when two issuers share the serial. */
extern const char store_interop_sql[];

/* Redis: a renewal challenge, "renew:chal:<challenge id>" → JSON
 * {cert_id, target, account, nonce}, single use (GETDEL), with a TTL. */
#define STORE_CHALLENGE_KEY "renew:chal:%s"

/* Consumers (bus_tx): register_certificate(…) with 21 parameters (see
 * 002_functions.sql); entitlements of a paid order; open orders. */
extern const char store_register_sql[];
/* $1 order, $2 number, $3 account, $4 cert id, $5 platforms "{A,B}",
 * $6 paid_at (RFC 3339). */
extern const char store_entitlement_insert_sql[];
/* $1 order. */
extern const char store_open_order_delete_sql[];
/* $1 order, $2 cert id. */
extern const char store_open_order_insert_sql[];

#endif
