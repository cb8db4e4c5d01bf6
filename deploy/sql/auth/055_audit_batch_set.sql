-- 055_audit_batch_set — audit_append_batch() (050_audit_batch.sql) as set
-- operations instead of a loop of statements: one SELECT reads the whole
-- batch (the entries not yet in the chain, the first of any repeated event
-- id, in the batch's order), numbers them and builds each canonical text
-- with audit_canonical(); a loop of one expression chains the hashes; one
-- INSERT … SELECT appends them all. The entries, their order, seq,
-- recorded_at (clock_timestamp() per entry), the canonical text and the hash
-- are exactly as before, so caplat-audit verify is unchanged; a replayed
-- batch still appends nothing, and an entry without action or actor still
-- fails the whole batch (NOT NULL). What it saves is the per-entry
-- statements (an EXISTS and an INSERT through SPI, sixteen PL/pgSQL
-- assignments): about 15% of the CPU per appended entry
-- (tests/bench/audit.sh; the INSERT's eight indexes are most of the rest).
CREATE OR REPLACE FUNCTION audit_append_batch(p_entries jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_seq bigint;
	prev text;
	v_rows audit_log[];
	v_canon text[];
	v_hash text[];
	n int;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('caplat.audit_log'));
	SELECT l.seq, l.hash INTO v_seq, prev FROM audit_log l ORDER BY l.seq DESC LIMIT 1;
	v_seq := COALESCE(v_seq, 0);
	prev := COALESCE(prev, repeat('0', 64));
	SELECT array_agg(s.e ORDER BY (s.e).seq), array_agg(audit_canonical(s.e) ORDER BY (s.e).seq)
		INTO v_rows, v_canon
		FROM (SELECT ROW(v_seq + row_number() OVER (ORDER BY x.ord), x.id,
				-- the service is the event type's first token, as for one event
				split_part(x.v->>'type', '.', 1),
				x.v->'data'->>'action',
				x.v->'data'->'actor'->>'type',
				x.v->'data'->'actor'->>'id',
				x.v->'data'->'actor'->>'identity_id',
				x.v->'data'->'actor'->>'role',
				x.v->'data'->'actor'->>'ip',
				x.v->'data'->'actor'->>'request_id',
				x.v->'data'->>'object_type',
				x.v->'data'->>'object_id',
				x.v->'data'->>'uscc',
				NULLIF(x.v->'data'->'before', 'null'::jsonb),
				NULLIF(x.v->'data'->'after', 'null'::jsonb),
				date_trunc('microseconds', (x.v->>'time')::timestamptz),
				-- per entry, in seq order (evaluated above the window's sort)
				date_trunc('microseconds', clock_timestamp()),
				NULL::text)::audit_log AS e
			FROM (SELECT e.v, e.ord, (e.v->>'id')::uuid AS id,
					row_number() OVER (PARTITION BY (e.v->>'id')::uuid ORDER BY e.ord) AS nth
				FROM jsonb_array_elements(p_entries) WITH ORDINALITY e(v, ord)) x
			WHERE x.nth = 1
				AND NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.event_id = x.id)) s;
	n := COALESCE(array_length(v_rows, 1), 0);
	FOR i IN 1..n LOOP
		prev := encode(sha256(convert_to(prev || v_canon[i], 'UTF8')), 'hex');
		v_hash[i] := prev;
	END LOOP;
	INSERT INTO audit_log
		SELECT u.seq, u.event_id, u.service, u.action, u.actor_type, u.actor_id,
			u.identity_id, u.role, u.ip, u.request_id, u.object_type, u.object_id,
			u.uscc, u.before, u.after, u.occurred_at, u.recorded_at, v_hash[u.i]
		FROM unnest(v_rows) WITH ORDINALITY u(seq, event_id, service, action, actor_type,
			actor_id, identity_id, role, ip, request_id, object_type, object_id, uscc,
			before, after, occurred_at, recorded_at, hash, i);
	RETURN n;
END
$$;
