-- 050_audit_batch — appends a whole "<svc>.audit.batch" event (common
-- 050_audit_batch.sql) to the chain in one call: one advisory lock, one read
-- of the head, then each entry in the batch's order exactly as
-- audit_append() would append it (same canonical text, same hash, so
-- caplat-audit verify is unchanged). An entry whose event id is already in
-- the chain is skipped (a replayed batch appends nothing). Returns the number
-- of entries appended. An entry without action or actor fails the batch
-- (NOT NULL): the consumer retries, then dead-letters it, and nothing of it
-- is appended.
CREATE FUNCTION audit_append_batch(p_entries jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	e audit_log;
	prev text;
	x jsonb;
	d jsonb;
	a jsonb;
	n int := 0;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('caplat.audit_log'));
	SELECT l.seq, l.hash INTO e.seq, prev FROM audit_log l ORDER BY l.seq DESC LIMIT 1;
	e.seq := COALESCE(e.seq, 0);
	prev := COALESCE(prev, repeat('0', 64));
	FOR x IN SELECT value FROM jsonb_array_elements(p_entries) LOOP
		CONTINUE WHEN EXISTS (SELECT 1 FROM audit_log WHERE event_id = (x->>'id')::uuid);
		d := x->'data';
		a := d->'actor';
		e.seq := e.seq + 1;
		e.event_id := (x->>'id')::uuid;
		-- the service is the event type's first token, as for one event
		e.service := split_part(x->>'type', '.', 1);
		e.action := d->>'action';
		e.actor_type := a->>'type';
		e.actor_id := a->>'id';
		e.identity_id := a->>'identity_id';
		e.role := a->>'role';
		e.ip := a->>'ip';
		e.request_id := a->>'request_id';
		e.object_type := d->>'object_type';
		e.object_id := d->>'object_id';
		e.uscc := d->>'uscc';
		e.before := NULLIF(d->'before', 'null'::jsonb);
		e.after := NULLIF(d->'after', 'null'::jsonb);
		e.occurred_at := date_trunc('microseconds', (x->>'time')::timestamptz);
		e.recorded_at := date_trunc('microseconds', clock_timestamp());
		e.hash := encode(sha256(convert_to(prev || audit_canonical(e), 'UTF8')), 'hex');
		prev := e.hash;
		INSERT INTO audit_log SELECT e.*;
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- The service filter drives its own index too (services/auth/store.c picks
-- the most selective filter given and writes it as a plain condition, so
-- each page statement's generic plan walks one (column, seq) index).
CREATE INDEX audit_log_service ON audit_log (service, seq);
