-- 002_idempotency — the Idempotency-Key table of every service schema
-- (common/idem.h, statements in common/idem_store.c): the first response of
-- a creation under (scope, key), scope being the caller (account or staff
-- id). response_status is NULL while the first request runs (locked_at says
-- since when); rows go after CAPLAT_IDEMPOTENCY_RETENTION_HOURS (the
-- service's sweep). Replaces orders' idempotency_keys and payments'
-- idempotency (their own migrations move the rows). Safe to apply twice.

CREATE TABLE IF NOT EXISTS idem_keys (
    scope           text NOT NULL,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    response_status int,
    response_body   text,
    locked_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX IF NOT EXISTS idem_keys_created_idx ON idem_keys (created_at);
