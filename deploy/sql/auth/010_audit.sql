-- The audit trail (issue 12): one hash chain of every audited action of every
-- service. Producers write "<service>.audit.recorded" events in the action's
-- own transaction (common/audit.c); auth consumes them once (the inbox) and
-- appends each through audit_append(), which serialises appends with an
-- advisory lock, numbers them without gaps and chains them by SHA-256.
--
-- THE CHAIN (what tests/tools/caplat-audit.c recomputes, independently):
--
--   hash(1) = SHA-256(Z || canonical(entry 1)),  Z = 64 ASCII '0'
--   hash(n) = SHA-256(hash(n-1) || canonical(entry n))
--
-- where hash(n-1) is the 64-character lower-case hex text of the previous
-- hash, || is byte concatenation, the input is UTF-8, and hash(n) is stored
-- as lower-case hex. canonical(entry) is the ASCII line "caplat-audit-v1"
-- followed, for each of these 17 fields in this order,
--
--   seq, event_id, service, action, actor_type, actor_id, identity_id,
--   role, ip, request_id, object_type, object_id, uscc, before, after,
--   occurred_at, recorded_at
--
-- by a line feed (0x0A) and the field's encoding: "-" for SQL NULL, else
-- "<n>:<text>" with <n> the length of <text> in bytes (decimal) — so no
-- value can be mistaken for another whatever it contains. The texts are:
-- seq in decimal; event_id as lower-case hyphenated UUID; before and after
-- as PostgreSQL renders jsonb (jsonb::text: keys sorted, ", " and ": "
-- separators); occurred_at and recorded_at in UTC as
-- YYYY-MM-DDTHH:MM:SS.ffffffZ (always 6 fraction digits); every other field
-- as stored. Because seq is in the hash and each hash covers the previous
-- one, a changed, deleted, inserted or reordered entry breaks the chain at
-- its seq (removing only the newest entries is seen against a head hash
-- kept elsewhere: `caplat-audit verify --head <seq>:<hash>`).

CREATE TABLE audit_log (
	seq bigint PRIMARY KEY CHECK (seq > 0),
	event_id uuid NOT NULL UNIQUE,
	service text NOT NULL,
	action text NOT NULL,
	actor_type text NOT NULL,
	actor_id text NOT NULL,
	identity_id text,
	role text,
	ip text,
	request_id text,
	object_type text,
	object_id text,
	uscc text,
	before jsonb,
	after jsonb,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL,
	hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- The operators' filters, each newest first (keyset on seq).
CREATE INDEX audit_log_uscc ON audit_log (uscc, seq) WHERE uscc IS NOT NULL;
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_object ON audit_log (object_id, seq) WHERE object_id IS NOT NULL;
CREATE INDEX audit_log_occurred ON audit_log (occurred_at);

-- The canonical text of an entry (see above).
CREATE FUNCTION audit_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(v)::text || ':' || v END
$$;

CREATE FUNCTION audit_time(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION audit_canonical(e audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
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

-- Appends one entry (idempotent on event_id: a replay appends nothing and
-- returns NULL); returns the new seq. Appends are serialised by a
-- transaction-scoped advisory lock, so the previous entry read here is the
-- newest committed one and seq has no gaps.
CREATE FUNCTION audit_append(p_event_id uuid, p_service text, p_action text,
	p_actor_type text, p_actor_id text, p_identity_id text, p_role text,
	p_ip text, p_request_id text, p_object_type text, p_object_id text,
	p_uscc text, p_before jsonb, p_after jsonb, p_occurred_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	e audit_log;
	prev text;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('caplat.audit_log'));
	IF EXISTS (SELECT 1 FROM audit_log WHERE event_id = p_event_id) THEN
		RETURN NULL;
	END IF;
	SELECT l.seq, l.hash INTO e.seq, prev FROM audit_log l ORDER BY l.seq DESC LIMIT 1;
	e.seq := COALESCE(e.seq, 0) + 1;
	prev := COALESCE(prev, repeat('0', 64));
	e.event_id := p_event_id;
	e.service := p_service;
	e.action := p_action;
	e.actor_type := p_actor_type;
	e.actor_id := p_actor_id;
	e.identity_id := p_identity_id;
	e.role := p_role;
	e.ip := p_ip;
	e.request_id := p_request_id;
	e.object_type := p_object_type;
	e.object_id := p_object_id;
	e.uscc := p_uscc;
	e.before := p_before;
	e.after := p_after;
	-- Stored at microsecond precision, as the canonical text shows it.
	e.occurred_at := date_trunc('microseconds', p_occurred_at);
	e.recorded_at := date_trunc('microseconds', clock_timestamp());
	e.hash := encode(sha256(convert_to(prev || audit_canonical(e), 'UTF8')), 'hex');
	INSERT INTO audit_log SELECT e.*;
	RETURN e.seq;
END
$$;
