-- enterprise: claim and release of administrator applications (issue 12),
-- the way reviewers claim records (001_enterprise.sql record_claim): a
-- reviewer claims a pending application for CAPLAT_REVIEW_CLAIM_TTL seconds;
-- while the claim runs, another reviewer can neither claim, release nor
-- decide it (RECORD_CLAIMED, the code records use); release or the lease's
-- expiry frees it. A decision clears the claim.

ALTER TABLE admin_applications ADD COLUMN claimed_by uuid;       -- reviewer working on it
ALTER TABLE admin_applications ADD COLUMN claimed_until timestamptz;
ALTER TABLE admin_applications ADD CONSTRAINT admin_applications_claim_pair
	CHECK ((claimed_by IS NULL) = (claimed_until IS NULL));

-- Claims a pending application for a reviewer for p_ttl seconds (again by the
-- same reviewer: extends). Refuses NOT_FOUND, APPLICATION_NOT_PENDING,
-- RECORD_CLAIMED (another reviewer's claim is still running).
CREATE FUNCTION admin_application_claim(p_id uuid, p_reviewer uuid, p_ttl int)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	a admin_applications%ROWTYPE;
	v_until timestamptz := now() + make_interval(secs => p_ttl);
BEGIN
	SELECT * INTO a FROM admin_applications WHERE id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF a.status <> 'pending' THEN
		RAISE EXCEPTION 'APPLICATION_NOT_PENDING';
	END IF;
	IF a.claimed_by IS NOT NULL AND a.claimed_by <> p_reviewer AND a.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	UPDATE admin_applications SET claimed_by = p_reviewer, claimed_until = v_until
		WHERE id = p_id;
	RETURN v_until;
END
$$;

-- Gives a claim back. Refuses like admin_application_claim; releasing an
-- application nobody holds is a no-op.
CREATE FUNCTION admin_application_release(p_id uuid, p_reviewer uuid)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a admin_applications%ROWTYPE;
BEGIN
	SELECT * INTO a FROM admin_applications WHERE id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF a.status <> 'pending' THEN
		RAISE EXCEPTION 'APPLICATION_NOT_PENDING';
	END IF;
	IF a.claimed_by IS NOT NULL AND a.claimed_by <> p_reviewer AND a.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	UPDATE admin_applications SET claimed_by = NULL, claimed_until = NULL WHERE id = p_id;
END
$$;

-- The decision (010_admin_applications.sql) now also refuses RECORD_CLAIMED
-- while another reviewer's claim runs, and clears the claim.
CREATE OR REPLACE FUNCTION admin_application_decide(p_id uuid, p_reviewer uuid, p_approve boolean,
	p_opinion text, p_event uuid)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	a admin_applications%ROWTYPE;
	v_at timestamptz := now();
BEGIN
	SELECT * INTO a FROM admin_applications WHERE id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF a.status <> 'pending' THEN
		RAISE EXCEPTION 'APPLICATION_NOT_PENDING';
	END IF;
	IF a.claimed_by IS NOT NULL AND a.claimed_by <> p_reviewer AND a.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	IF p_approve AND EXISTS (SELECT 1 FROM members m WHERE m.uscc = a.uscc
			AND m.role = 'admin' AND m.source = 'lock') THEN
		RAISE EXCEPTION 'ADMIN_EXISTS';
	END IF;
	UPDATE admin_applications SET status = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END,
		opinion = p_opinion, reviewer_id = p_reviewer, decided_at = v_at,
		claimed_by = NULL, claimed_until = NULL
		WHERE id = p_id;
	IF p_approve THEN
		PERFORM outbox_emit('enterprise.admin_application.approved', p_id::text,
			jsonb_build_object('application_id', p_id, 'account_id', a.account_id,
				'uscc', a.uscc, 'enterprise_name', a.enterprise_name,
				'decided_at', ent_time(v_at)), p_event);
	ELSE
		PERFORM outbox_emit('enterprise.admin_application.rejected', p_id::text,
			jsonb_build_object('application_id', p_id, 'account_id', a.account_id,
				'uscc', a.uscc, 'opinion', p_opinion, 'decided_at', ent_time(v_at)),
			p_event);
	END IF;
	INSERT INTO notifications (application_id, seq, account_id, result, change, name, opinion)
		VALUES (p_id, 1, a.account_id,
			CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END, false,
			a.enterprise_name, p_opinion);
	RETURN CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END;
END
$$;
