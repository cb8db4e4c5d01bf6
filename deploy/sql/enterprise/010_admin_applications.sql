-- enterprise: administrator applications (管理员申请, issue 12): an account
-- asks to become the administrator of an enterprise with the applicant's ID
-- number and an uploaded 授权委托书; a reviewer approves or rejects it with
-- an opinion beside the enterprise records of the review queue. The decision,
-- its event (auth grants the identity on .approved) and the applicant's SMS
-- are one statement. The members read model learns how an identity was
-- granted (auth.identity.added `source`), so that an enterprise with a
-- lock-proven administrator refuses an application's approval.

-- How an identity was granted: "lock" (a certificate naming the USCC),
-- "application", "self" … as auth says; NULL for events that carry none.
ALTER TABLE members ADD COLUMN source text;
ALTER TABLE members DROP CONSTRAINT members_role_check;
ALTER TABLE members ADD CONSTRAINT members_role_check
	CHECK (role IN ('admin', 'project_lead', 'agent', 'cost_engineer'));
CREATE INDEX members_uscc_admin ON members (uscc) WHERE role = 'admin';

-- The ID number is never stored: a keyed hash (to compare) and a masked copy
-- (to show), as auth keeps the binding's.
CREATE TABLE admin_applications (
	id                    uuid PRIMARY KEY,
	account_id            uuid NOT NULL,
	enterprise_name       text NOT NULL CHECK (length(enterprise_name) BETWEEN 1 AND 200),
	uscc                  text NOT NULL CHECK (uscc ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'),
	id_number_hmac        text NOT NULL CHECK (id_number_hmac ~ '^[0-9a-f]{64}$'),
	id_number_masked      text NOT NULL,
	id_matches_profile    boolean,          -- NULL: the profile had no ID number
	authorization_file_id uuid NOT NULL REFERENCES files (id),
	status                text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'approved', 'rejected')),
	opinion               text,
	reviewer_id           uuid,
	submitted_at          timestamptz NOT NULL DEFAULT now(),
	decided_at            timestamptz,
	CHECK ((status = 'pending') = (decided_at IS NULL)),
	CHECK (status <> 'rejected' OR opinion IS NOT NULL)
);
-- One pending application per (account, enterprise).
CREATE UNIQUE INDEX admin_applications_one_pending ON admin_applications (account_id, uscc)
	WHERE status = 'pending';
CREATE INDEX admin_applications_account ON admin_applications (account_id, submitted_at);
CREATE INDEX admin_applications_queue ON admin_applications (submitted_at, id)
	WHERE status = 'pending';

-- The review SMS table carries application results too.
ALTER TABLE notifications ALTER COLUMN record_id DROP NOT NULL;
ALTER TABLE notifications ADD COLUMN application_id uuid REFERENCES admin_applications (id);
ALTER TABLE notifications ADD CONSTRAINT notifications_one_subject
	CHECK ((record_id IS NULL) <> (application_id IS NULL));
CREATE UNIQUE INDEX notifications_application ON notifications (application_id)
	WHERE application_id IS NOT NULL;

-- Files an application names: the applicant's own upload. Refuses
-- 'FILE_NOT_FOUND:authorization_file_id' otherwise, 'APPLICATION_PENDING'
-- when the account already has a pending application for the USCC. Emits
-- enterprise.admin_application.submitted (id p_event).
CREATE FUNCTION admin_application_submit(p_id uuid, p_account uuid, p_name text,
	p_uscc text, p_hmac text, p_masked text, p_matches boolean, p_file uuid,
	p_event uuid)
RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM files f WHERE f.id = p_file AND f.owner_account_id = p_account) THEN
		RAISE EXCEPTION 'FILE_NOT_FOUND:authorization_file_id';
	END IF;
	BEGIN
		INSERT INTO admin_applications (id, account_id, enterprise_name, uscc,
			id_number_hmac, id_number_masked, id_matches_profile, authorization_file_id)
		VALUES (p_id, p_account, p_name, p_uscc, p_hmac, p_masked, p_matches, p_file);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'APPLICATION_PENDING';
	END;
	PERFORM outbox_emit('enterprise.admin_application.submitted', p_id::text,
		jsonb_build_object('application_id', p_id, 'account_id', p_account,
			'uscc', p_uscc, 'enterprise_name', p_name, 'submitted_at', ent_time(now())),
		p_event);
	RETURN p_id;
END
$$;

-- Decides a pending application once (the row lock and the status check make
-- a second decision fail): status, opinion, enterprise.admin_application.
-- approved / .rejected and the applicant's SMS. Refuses NOT_FOUND,
-- APPLICATION_NOT_PENDING, ADMIN_EXISTS (approval while the enterprise has a
-- lock-proven administrator, as the members read model knows it).
CREATE FUNCTION admin_application_decide(p_id uuid, p_reviewer uuid, p_approve boolean,
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
	IF p_approve AND EXISTS (SELECT 1 FROM members m WHERE m.uscc = a.uscc
			AND m.role = 'admin' AND m.source = 'lock') THEN
		RAISE EXCEPTION 'ADMIN_EXISTS';
	END IF;
	UPDATE admin_applications SET status = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END,
		opinion = p_opinion, reviewer_id = p_reviewer, decided_at = v_at
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
