-- Identities by proof (issue 12). An identity has a status (pending → active
-- or rejected; active → removed) and a source: 'lock' (a bound USB key whose
-- certificate names the enterprise and the role), 'application' (an
-- administrator application a reviewer approved in enterprise), 'approval'
-- (a member claim the enterprise's administrator approved), 'handover' (the
-- administrator role handed over), 'self' (personal identities). Only active
-- identities can be current; pending, rejected and removed ones grant
-- nothing and stay as the applicant's history.
--
-- The functions below change identities in one transaction with their
-- events (auth.identity.added when one becomes active, auth.identity.removed)
-- and their audit entries: p_audit is the event data common/audit.c's
-- audit_event_data() built for the request (actor, service); ident_audit()
-- fills in action, object and before/after, so the entry has exactly that
-- shape.

ALTER TABLE identities
	ADD COLUMN status text NOT NULL DEFAULT 'active'
		CHECK (status IN ('pending', 'active', 'rejected', 'removed')),
	ADD COLUMN source text NOT NULL DEFAULT 'self'
		CHECK (source IN ('lock', 'application', 'approval', 'handover', 'self')),
	ADD COLUMN application_id uuid UNIQUE,   -- enterprise's admin application
	ADD COLUMN decided_at timestamptz,       -- 审批时间 of a claim
	ADD COLUMN decided_by uuid,              -- the deciding admin's identity
	ADD COLUMN opinion text,                 -- the decision's opinion
	ADD COLUMN activated_at timestamptz,
	ADD COLUMN removed_at timestamptz,
	ADD COLUMN removed_reason text;

-- Existing rows are active; those an account's bound lock implies came from
-- the lock, the others were self-service.
UPDATE identities i SET source = 'lock' WHERE EXISTS (
	SELECT 1 FROM locks l WHERE l.account_id = i.account_id
	AND ((i.type = 'enterprise' AND l.uscc = i.uscc)
	  OR (i.type = 'personal' AND l.kind = 'personal')));
UPDATE identities SET activated_at = created_at;

ALTER TABLE identities DROP CONSTRAINT identities_role_check;
ALTER TABLE identities ADD CONSTRAINT identities_role_check
	CHECK (role IN ('admin', 'project_lead', 'agent', 'cost_engineer'));

-- One active administrator per enterprise; one live (pending or active)
-- identity per account and enterprise. Rejected and removed rows are history.
DROP INDEX identities_one_admin;
CREATE UNIQUE INDEX identities_one_admin ON identities (uscc)
	WHERE role = 'admin' AND status = 'active';
DROP INDEX identities_account_enterprise;
CREATE UNIQUE INDEX identities_account_enterprise ON identities (account_id, uscc)
	WHERE type = 'enterprise' AND status IN ('pending', 'active');
CREATE INDEX identities_enterprise ON identities (uscc, status);

-- An audit entry (common/audit.h's event data) of p_audit's actor.
CREATE FUNCTION ident_audit(p_audit jsonb, p_action text, p_object_type text,
	p_object_id uuid, p_uscc text, p_before jsonb, p_after jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM outbox_emit('auth.audit.recorded', p_object_id::text,
		COALESCE(p_audit, jsonb_build_object('actor', jsonb_build_object(
			'type', 'system', 'id', 'system:auth'), 'service', 'auth'))
		|| jsonb_build_object('action', p_action, 'object_type', p_object_type,
			'object_id', p_object_id, 'uscc', p_uscc,
			'before', p_before, 'after', p_after));
END
$$;

-- The audit actor of an account acting without a session (binding a lock):
-- p_audit's request id and address with the account as the actor.
CREATE FUNCTION ident_audit_as(p_audit jsonb, p_account uuid)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT COALESCE(p_audit, jsonb_build_object('service', 'auth'))
		|| jsonb_build_object('actor', COALESCE(p_audit->'actor', '{}'::jsonb)
			|| jsonb_build_object('type', 'account', 'id', p_account,
				'identity_id', NULL, 'role', NULL));
$$;

-- The identity's public view (events, audit).
CREATE FUNCTION ident_json(p_identity uuid)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('identity_id', i.id, 'account_id', i.account_id,
		'type', i.type, 'enterprise_name', i.enterprise_name, 'uscc', i.uscc,
		'role', i.role, 'status', i.status, 'source', i.source)
	FROM identities i WHERE i.id = p_identity;
$$;

-- auth.identity.added (proto/events/auth.identity.added.json) for an
-- identity that has just become active.
CREATE FUNCTION ident_added_emit(p_identity uuid, p_ev uuid)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM outbox_emit('auth.identity.added', i.id::text,
		jsonb_build_object('identity_id', i.id, 'account_id', i.account_id,
			'type', i.type, 'source', i.source,
			'added_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		|| CASE WHEN i.type = 'enterprise' THEN jsonb_build_object(
			'enterprise_name', i.enterprise_name, 'uscc', i.uscc, 'role', i.role)
			ELSE '{}'::jsonb END, p_ev)
	FROM identities i WHERE i.id = p_identity;
END
$$;

-- Ends an identity: status removed, no longer anyone's current identity,
-- auth.identity.removed when it was active, an audit entry. A pending claim
-- that is superseded is closed the same way (no event: it granted nothing).
-- Returns the identity's account.
CREATE FUNCTION ident_remove(p_identity uuid, p_reason text, p_audit jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
	v identities%ROWTYPE;
BEGIN
	SELECT * INTO v FROM identities WHERE id = p_identity FOR UPDATE;
	IF NOT FOUND OR v.status IN ('removed', 'rejected') THEN
		RETURN v.account_id;
	END IF;
	UPDATE identities SET status = 'removed', removed_at = now(), removed_reason = p_reason
		WHERE id = p_identity;
	DELETE FROM current_identity WHERE identity_id = p_identity;
	IF v.status = 'active' THEN
		PERFORM outbox_emit('auth.identity.removed', v.id::text, jsonb_build_object(
			'identity_id', v.id, 'account_id', v.account_id, 'uscc', v.uscc,
			'role', v.role, 'reason', p_reason,
			'removed_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
	END IF;
	PERFORM ident_audit(p_audit, 'identity.removed', 'identity', v.id, v.uscc,
		jsonb_build_object('status', v.status, 'role', v.role, 'source', v.source),
		jsonb_build_object('status', 'removed', 'reason', p_reason));
	RETURN v.account_id;
END
$$;

-- Binding a lock, as in 003 with proof rules: a master lock naming the USCC
-- always makes the holder the administrator (an administrator in place,
-- granted by application or an earlier lock, is removed: replaced_* name
-- them for the SMS); a member lock naming the USCC makes the holder a member
-- at once. A pending claim or another role of the account in that
-- enterprise is superseded. Audited: the binding and every grant/removal.
DROP FUNCTION bind_lock(uuid, text, uuid, uuid, uuid, uuid, uuid, text, text, jsonb);
CREATE FUNCTION bind_lock(p_lock uuid, p_phone text, p_new_account uuid,
	p_identity uuid, p_ev_registered uuid, p_ev_bound uuid, p_ev_identity uuid,
	p_id_hmac text, p_id_masked text, p_cert jsonb, p_audit jsonb)
RETURNS TABLE (account_id uuid, identity_id uuid, created boolean,
	replaced_account uuid, replaced_phone text, enterprise_name text,
	replaced_identity uuid)
LANGUAGE plpgsql AS $$
DECLARE
	v_lock locks%ROWTYPE;
	v_account uuid;
	v_created boolean := false;
	v_identity uuid;
	v_role text;
	v_mine identities%ROWTYPE;
	v_old identities%ROWTYPE;
	v_replaced uuid;
	v_replaced_phone text;
	v_actor jsonb;
BEGIN
	SELECT * INTO v_lock FROM locks WHERE id = p_lock FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'LOCK_NOT_FOUND';
	END IF;
	IF v_lock.account_id IS NOT NULL THEN
		RAISE EXCEPTION 'LOCK_ALREADY_BOUND';
	END IF;

	INSERT INTO accounts (id, phone) VALUES (p_new_account, p_phone)
		ON CONFLICT (phone) DO NOTHING;
	v_created := FOUND;
	SELECT a.id INTO v_account FROM accounts a WHERE a.phone = p_phone FOR UPDATE;
	IF EXISTS (SELECT 1 FROM locks l WHERE l.account_id = v_account) THEN
		RAISE EXCEPTION 'ACCOUNT_HAS_LOCK';
	END IF;
	v_actor := ident_audit_as(p_audit, v_account);
	UPDATE locks SET account_id = v_account, bound_at = now() WHERE id = p_lock;
	IF p_id_hmac IS NOT NULL THEN
		UPDATE accounts SET id_number_hmac = p_id_hmac, id_number_masked = p_id_masked
			WHERE id = v_account;
	END IF;
	IF v_created THEN
		PERFORM outbox_emit('auth.account.registered', v_account::text, jsonb_build_object('account_id', v_account, 'phone', p_phone), p_ev_registered);
	END IF;

	IF v_lock.kind IN ('master', 'project_lead', 'agent', 'cost_engineer') AND v_lock.uscc IS NOT NULL THEN
		v_role := CASE v_lock.kind WHEN 'master' THEN 'admin' ELSE v_lock.kind END;
		SELECT * INTO v_mine FROM identities i
			WHERE i.account_id = v_account AND i.uscc = v_lock.uscc AND i.type = 'enterprise'
			AND i.status IN ('pending', 'active') FOR UPDATE;
		IF FOUND AND v_mine.status = 'active' AND v_mine.role = v_role THEN
			v_identity := v_mine.id;
			UPDATE identities SET source = 'lock' WHERE id = v_mine.id;
		ELSE
			IF v_mine.id IS NOT NULL THEN
				PERFORM ident_remove(v_mine.id, 'superseded_by_lock', v_actor);
			END IF;
			IF v_role = 'admin' THEN
				SELECT * INTO v_old FROM identities i
					WHERE i.uscc = v_lock.uscc AND i.role = 'admin' AND i.status = 'active'
					FOR UPDATE;
				IF FOUND THEN
					PERFORM ident_remove(v_old.id, 'replaced_by_master_lock', v_actor);
					v_replaced := v_old.account_id;
					SELECT a.phone INTO v_replaced_phone FROM accounts a WHERE a.id = v_old.account_id;
				END IF;
			END IF;
			INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role,
					status, source, activated_at)
				VALUES (p_identity, v_account, 'enterprise', v_lock.enterprise_name,
					v_lock.uscc, v_role, 'active', 'lock', now());
			v_identity := p_identity;
			PERFORM ident_added_emit(p_identity, p_ev_identity);
			PERFORM ident_audit(v_actor, 'identity.granted', 'identity', p_identity, v_lock.uscc,
				CASE WHEN v_old.id IS NULL THEN NULL ELSE jsonb_build_object(
					'replaced_identity_id', v_old.id, 'replaced_source', v_old.source) END,
				ident_json(p_identity));
		END IF;
	ELSE
		SELECT i.id INTO v_identity FROM identities i
			WHERE i.account_id = v_account AND i.type = 'personal';
		IF v_identity IS NULL THEN
			INSERT INTO identities (id, account_id, type, status, source, activated_at)
				VALUES (p_identity, v_account, 'personal', 'active', 'lock', now());
			v_identity := p_identity;
			PERFORM ident_added_emit(p_identity, p_ev_identity);
			PERFORM ident_audit(v_actor, 'identity.granted', 'identity', p_identity, NULL,
				NULL, ident_json(p_identity));
		END IF;
	END IF;
	INSERT INTO current_identity (account_id, identity_id) VALUES (v_account, v_identity)
		ON CONFLICT ON CONSTRAINT current_identity_pkey
		DO UPDATE SET identity_id = EXCLUDED.identity_id;

	PERFORM outbox_emit('auth.lock.bound', v_account::text, jsonb_build_object('lock_id', p_lock, 'account_id', v_account,
			'phone', p_phone, 'lock_kind', v_lock.kind, 'holder', v_lock.holder,
			'enterprise_name', v_lock.enterprise_name, 'uscc', v_lock.uscc,
			'bound_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) || p_cert, p_ev_bound);
	PERFORM ident_audit(v_actor, 'lock.bound', 'lock', p_lock, v_lock.uscc, NULL,
		jsonb_build_object('kind', v_lock.kind, 'holder', v_lock.holder,
			'serial', p_cert->>'serial', 'issuer', p_cert->>'issuer',
			'not_after', p_cert->>'not_after'));
	RETURN QUERY SELECT v_account, v_identity, v_created, v_replaced, v_replaced_phone,
		v_lock.enterprise_name, v_old.id;
END
$$;

-- enterprise.admin_application.approved, consumed once: the applicant
-- becomes the administrator (source application) unless a lock-proven
-- administrator is in place (then nothing is granted: outcome
-- 'lock_admin_exists', audited). An earlier administrator by application is
-- replaced. Outcomes: granted, lock_admin_exists, duplicate, unknown_account.
CREATE FUNCTION admin_by_application(p_application uuid, p_account uuid,
	p_uscc text, p_name text, p_identity uuid, p_ev uuid, p_audit jsonb)
RETURNS TABLE (outcome text, identity_id uuid, phone text,
	replaced_account uuid, replaced_phone text, replaced_identity uuid)
LANGUAGE plpgsql AS $$
DECLARE
	v_phone text;
	v_old identities%ROWTYPE;
	v_mine identities%ROWTYPE;
BEGIN
	IF EXISTS (SELECT 1 FROM identities i WHERE i.application_id = p_application) THEN
		RETURN QUERY SELECT 'duplicate'::text, NULL::uuid, NULL::text, NULL::uuid, NULL::text, NULL::uuid;
		RETURN;
	END IF;
	SELECT a.phone INTO v_phone FROM accounts a WHERE a.id = p_account FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM ident_audit(p_audit, 'admin_application.ignored', 'admin_application',
			p_application, p_uscc, NULL, jsonb_build_object('reason', 'unknown_account',
				'account_id', p_account));
		RETURN QUERY SELECT 'unknown_account'::text, NULL::uuid, NULL::text, NULL::uuid, NULL::text, NULL::uuid;
		RETURN;
	END IF;
	SELECT * INTO v_old FROM identities i
		WHERE i.uscc = p_uscc AND i.role = 'admin' AND i.status = 'active' FOR UPDATE;
	IF FOUND AND v_old.source IN ('lock', 'handover') AND v_old.account_id <> p_account THEN
		PERFORM ident_audit(p_audit, 'admin_application.ignored', 'admin_application',
			p_application, p_uscc, NULL, jsonb_build_object('reason', 'lock_admin_exists',
				'account_id', p_account, 'admin_identity_id', v_old.id));
		RETURN QUERY SELECT 'lock_admin_exists'::text, v_old.id, v_phone, NULL::uuid, NULL::text, NULL::uuid;
		RETURN;
	END IF;
	IF FOUND AND v_old.account_id = p_account THEN
		UPDATE identities SET application_id = p_application WHERE id = v_old.id;
		RETURN QUERY SELECT 'duplicate'::text, v_old.id, v_phone, NULL::uuid, NULL::text, NULL::uuid;
		RETURN;
	END IF;
	IF v_old.id IS NOT NULL THEN
		PERFORM ident_remove(v_old.id, 'replaced_by_application', p_audit);
	END IF;
	SELECT * INTO v_mine FROM identities i WHERE i.account_id = p_account AND i.uscc = p_uscc
		AND i.type = 'enterprise' AND i.status IN ('pending', 'active') FOR UPDATE;
	IF FOUND THEN
		PERFORM ident_remove(v_mine.id, 'superseded_by_application', p_audit);
	END IF;
	INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role, status,
			source, application_id, activated_at, decided_at)
		VALUES (p_identity, p_account, 'enterprise', p_name, p_uscc, 'admin', 'active',
			'application', p_application, now(), now());
	PERFORM ident_added_emit(p_identity, p_ev);
	PERFORM ident_audit(p_audit, 'identity.granted', 'identity', p_identity, p_uscc,
		CASE WHEN v_old.id IS NULL THEN NULL ELSE jsonb_build_object(
			'replaced_identity_id', v_old.id, 'replaced_source', v_old.source) END,
		ident_json(p_identity) || jsonb_build_object('application_id', p_application));
	RETURN QUERY SELECT 'granted'::text, p_identity, v_phone, v_old.account_id,
		(SELECT a.phone FROM accounts a WHERE a.id = v_old.account_id), v_old.id;
END
$$;

-- Refuses NOT_ADMIN unless p_admin is the enterprise's active administrator
-- (a session older than a handover or replacement).
CREATE FUNCTION ident_require_admin(p_admin uuid, p_uscc text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM identities i WHERE i.id = p_admin AND i.uscc = p_uscc
		AND i.role = 'admin' AND i.status = 'active' FOR SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_ADMIN';
	END IF;
END
$$;

-- The administrator p_decider decides a member claim of the enterprise
-- p_uscc. Refuses NOT_ADMIN, NOT_FOUND (no pending claim of that id in the
-- enterprise).
-- Returns the applicant's account, phone and the claimed role.
CREATE FUNCTION member_decide(p_identity uuid, p_uscc text, p_approve boolean,
	p_opinion text, p_decider uuid, p_ev uuid)
RETURNS TABLE (account_id uuid, phone text, role text, status text)
LANGUAGE plpgsql AS $$
DECLARE
	v identities%ROWTYPE;
BEGIN
	PERFORM ident_require_admin(p_decider, p_uscc);
	SELECT * INTO v FROM identities i WHERE i.id = p_identity AND i.uscc = p_uscc
		AND i.status = 'pending' FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	UPDATE identities SET status = CASE WHEN p_approve THEN 'active' ELSE 'rejected' END,
		decided_at = now(), decided_by = p_decider, opinion = p_opinion,
		activated_at = CASE WHEN p_approve THEN now() END
		WHERE id = p_identity;
	IF p_approve THEN
		PERFORM ident_added_emit(p_identity, p_ev);
	END IF;
	RETURN QUERY SELECT v.account_id, a.phone, v.role,
		CASE WHEN p_approve THEN 'active' ELSE 'rejected' END
		FROM accounts a WHERE a.id = v.account_id;
END
$$;

-- The administrator p_admin removes a member. Refuses NOT_ADMIN, NOT_FOUND (no active member
-- of that id in the enterprise) and CANNOT_REMOVE_ADMIN (the administrator
-- is not removed this way: hand the role over first).
CREATE FUNCTION member_remove(p_identity uuid, p_uscc text, p_admin uuid,
	p_audit jsonb)
RETURNS TABLE (account_id uuid, role text)
LANGUAGE plpgsql AS $$
DECLARE
	v identities%ROWTYPE;
BEGIN
	PERFORM ident_require_admin(p_admin, p_uscc);
	SELECT * INTO v FROM identities i WHERE i.id = p_identity AND i.uscc = p_uscc
		AND i.status = 'active' FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF v.role = 'admin' THEN
		RAISE EXCEPTION 'CANNOT_REMOVE_ADMIN';
	END IF;
	PERFORM ident_remove(p_identity, 'removed_by_admin', p_audit);
	RETURN QUERY SELECT v.account_id, v.role;
END
$$;

-- Handover: the active member p_target becomes the administrator and the
-- administrator p_admin becomes a project lead (both source handover; the
-- old identities are removed, new ones added, current identities follow).
-- Refuses NOT_ADMIN (p_admin is no longer the active administrator),
-- NOT_FOUND (no active member p_target in the enterprise).
CREATE FUNCTION admin_handover(p_admin uuid, p_target uuid, p_uscc text,
	p_new_admin uuid, p_new_member uuid, p_ev_admin uuid, p_ev_member uuid,
	p_audit jsonb)
RETURNS TABLE (admin_account uuid, admin_phone text, member_account uuid,
	member_phone text)
LANGUAGE plpgsql AS $$
DECLARE
	v_admin identities%ROWTYPE;
	v_target identities%ROWTYPE;
	v_admin_current boolean;
	v_target_current boolean;
BEGIN
	SELECT * INTO v_admin FROM identities i WHERE i.id = p_admin AND i.uscc = p_uscc
		AND i.role = 'admin' AND i.status = 'active' FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_ADMIN';
	END IF;
	SELECT * INTO v_target FROM identities i WHERE i.id = p_target AND i.uscc = p_uscc
		AND i.status = 'active' AND i.role <> 'admin' FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	v_admin_current := EXISTS (SELECT 1 FROM current_identity c WHERE c.identity_id = p_admin);
	v_target_current := EXISTS (SELECT 1 FROM current_identity c WHERE c.identity_id = p_target);
	PERFORM ident_remove(p_admin, 'handover', p_audit);
	PERFORM ident_remove(p_target, 'handover', p_audit);
	INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role, status,
			source, activated_at)
		VALUES (p_new_admin, v_target.account_id, 'enterprise', v_admin.enterprise_name,
			p_uscc, 'admin', 'active', 'handover', now()),
		       (p_new_member, v_admin.account_id, 'enterprise', v_admin.enterprise_name,
			p_uscc, 'project_lead', 'active', 'handover', now());
	INSERT INTO current_identity (account_id, identity_id)
		SELECT v_target.account_id, p_new_admin WHERE v_target_current
		UNION ALL SELECT v_admin.account_id, p_new_member WHERE v_admin_current;
	PERFORM ident_added_emit(p_new_admin, p_ev_admin);
	PERFORM ident_added_emit(p_new_member, p_ev_member);
	RETURN QUERY SELECT v_target.account_id,
		(SELECT a.phone FROM accounts a WHERE a.id = v_target.account_id),
		v_admin.account_id,
		(SELECT a.phone FROM accounts a WHERE a.id = v_admin.account_id);
END
$$;
