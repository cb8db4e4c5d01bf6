-- 070_audit_append_extract — audit_append_batch() (055_audit_batch_set.sql)
-- takes each entry's "data" and "data"."actor" out of the batch once
-- instead of once per field (issue 12's cost goal, tests/bench/audit.sh).
-- Every "x.v->'data'->…" of 055 copied the entry's whole data object
-- (about 400 bytes) again before reading one field of it: thirteen copies
-- of data and six more of actor per entry. The inner subquery computes
-- them once (its window function keeps the planner from folding it into
-- the outer one and copying the expressions back). Same entries, same
-- order, same seq, recorded_at, canonical text and hash: caplat-audit
-- verify is unchanged; a replayed batch still appends nothing, an entry
-- without action or actor still fails the whole batch.
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
				split_part(x.type, '.', 1),
				x.d->>'action',
				x.a->>'type',
				x.a->>'id',
				x.a->>'identity_id',
				x.a->>'role',
				x.a->>'ip',
				x.a->>'request_id',
				x.d->>'object_type',
				x.d->>'object_id',
				x.d->>'uscc',
				NULLIF(x.d->'before', 'null'::jsonb),
				NULLIF(x.d->'after', 'null'::jsonb),
				date_trunc('microseconds', x.time::timestamptz),
				-- per entry, in seq order (evaluated above the window's sort)
				date_trunc('microseconds', clock_timestamp()),
				NULL::text)::audit_log AS e
			FROM (SELECT e.ord, (e.v->>'id')::uuid AS id, e.v->>'type' AS type,
					e.v->>'time' AS time, e.v->'data' AS d, e.v->'data'->'actor' AS a,
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
