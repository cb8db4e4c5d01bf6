-- 060_audit_append_lean — the chain's append and export do less per entry
-- (issue 12's cost goal; tests/bench/audit.sh). Same chain, same canonical
-- text, same hashes: caplat-audit verify and every stored hash are unchanged.
-- Where the time went (perf on the backend appending batches of 200,
-- tests/bench/audit.sh): the eight indexes ~29%, the hash column's regular
-- expression CHECK ~13%, and ~17% in running audit_canonical() and
-- audit_time() as SQL functions with an executor each per entry: they were
-- declared IMMUTABLE around to_char(), which is STABLE, so the planner
-- never inlined them (the export's two audit_time() per row alike).
--
-- 1. audit_time() and audit_canonical() are declared STABLE, what their
--    body is: the planner now inlines them into the statements that call
--    them (the export, the pages, the single append of 010).
CREATE OR REPLACE FUNCTION audit_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE OR REPLACE FUNCTION audit_canonical(e audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT 'caplat-audit-v1'
		|| E'\n' || audit_field(e.seq::text)
		|| E'\n' || audit_field(e.event_id::text)
		|| E'\n' || audit_field(e.service)
		|| E'\n' || audit_field(e.action)
		|| E'\n' || audit_field(e.actor_type)
		|| E'\n' || audit_field(e.actor_id)
		|| E'\n' || audit_field(e.identity_id)
		|| E'\n' || audit_field(e.role)
		|| E'\n' || audit_field(e.ip)
		|| E'\n' || audit_field(e.request_id)
		|| E'\n' || audit_field(e.object_type)
		|| E'\n' || audit_field(e.object_id)
		|| E'\n' || audit_field(e.uscc)
		|| E'\n' || audit_field(e.before::text)
		|| E'\n' || audit_field(e.after::text)
		|| E'\n' || audit_field(audit_time(e.occurred_at))
		|| E'\n' || audit_field(audit_time(e.recorded_at))
$$;

-- 2. The hash column's check without a regular expression: exactly 64
--    bytes, every one of them a lower-case hex digit (what '^[0-9a-f]{64}$'
--    accepted, nothing more).
ALTER TABLE audit_log DROP CONSTRAINT audit_log_hash_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_hash_hex
	CHECK (octet_length(hash) = 64 AND ltrim(hash, '0123456789abcdef') = '');

-- 3. The time filter's index as BRIN: entries are appended in time order
--    (occurred_at follows seq to within a flush interval), so a block
--    range index finds a period's blocks at a fraction of a btree's upkeep
--    per entry; GET /api/v1/audit's time filter sorts the period's entries
--    by seq either way (the btree was on occurred_at alone, not seq).
DROP INDEX audit_log_occurred;
CREATE INDEX audit_log_occurred_brin ON audit_log USING brin (occurred_at)
	WITH (pages_per_range = 32);
