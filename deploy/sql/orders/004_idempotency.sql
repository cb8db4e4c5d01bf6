-- 004_idempotency — Idempotency-Keys move to the table every service shares
-- (idem_keys, deploy/sql/common/002_idempotency.sql; common/idem.h). The
-- rows come along; their request hash (SHA-256 of the body's canonical JSON)
-- becomes common/idem.c's hash of the same request — SHA-256 of
-- "POST /api/v1/orders\n" and that body hash — so a retry after the upgrade
-- is still a replay.

INSERT INTO idem_keys (scope, key, request_hash, response_status, response_body,
	locked_at, created_at)
SELECT account_id::text, key,
	encode(sha256(convert_to('POST /api/v1/orders' || chr(10) || request_hash, 'UTF8')), 'hex'),
	response_status, response_body::text, locked_at, created_at
FROM idempotency_keys
ON CONFLICT (scope, key) DO NOTHING;

DROP TABLE idempotency_keys;
