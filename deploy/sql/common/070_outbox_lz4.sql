-- 070_outbox_lz4 — an outbox row's data is compressed with lz4 instead of
-- pglz (issue 12's cost goal, tests/bench/audit.sh). Most rows are small
-- and never compressed; the ones that are, are the <schema>.audit.batch
-- events of audit_flush() (050_audit_batch.sql: up to 200 entries, about
-- 100 KB of jsonb each), compressed when written and decompressed when the
-- relay reads them. A flush of 200 held entries took 4.2 ms with pglz and
-- 3.7 ms with lz4 (same session, same rows). Applies to
-- rows written from now on; rows already stored keep their compression
-- (PostgreSQL reads both). Applied into every service schema.

ALTER TABLE outbox ALTER COLUMN data SET COMPRESSION lz4;
