-- auth.lock.bound follows proto/events/auth.lock.bound.json: the account's
-- phone, lock_kind, the certificate's issuer, validity, fingerprint and PEM;
-- the CloudEvents subject is the account.

CREATE OR REPLACE FUNCTION bind_lock(p_lock uuid, p_phone text, p_new_account uuid,
	p_identity uuid, p_ev_registered uuid, p_ev_bound uuid, p_ev_identity uuid,
	p_id_hmac text, p_id_masked text, p_cert jsonb)
RETURNS TABLE (account_id uuid, identity_id uuid, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_lock locks%ROWTYPE;
	v_account uuid;
	v_created boolean := false;
	v_identity uuid;
	v_role text;
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
	UPDATE locks SET account_id = v_account, bound_at = now() WHERE id = p_lock;
	IF p_id_hmac IS NOT NULL THEN
		UPDATE accounts SET id_number_hmac = p_id_hmac, id_number_masked = p_id_masked
			WHERE id = v_account;
	END IF;
	IF v_created THEN
		PERFORM outbox_emit('auth.account.registered', v_account::text, jsonb_build_object('account_id', v_account, 'phone', p_phone), p_ev_registered);
	END IF;

	-- The identity the lock implies: its enterprise role, or personal.
	IF v_lock.kind IN ('master', 'project_lead', 'agent') AND v_lock.uscc IS NOT NULL THEN
		v_role := CASE v_lock.kind WHEN 'master' THEN 'admin' ELSE v_lock.kind END;
		SELECT i.id INTO v_identity FROM identities i
			WHERE i.account_id = v_account AND i.uscc = v_lock.uscc AND i.type = 'enterprise';
		IF v_identity IS NULL THEN
			IF v_role = 'admin' AND EXISTS (SELECT 1 FROM identities i
					WHERE i.uscc = v_lock.uscc AND i.role = 'admin') THEN
				RAISE EXCEPTION 'ADMIN_EXISTS';
			END IF;
			INSERT INTO identities (id, account_id, type, enterprise_name, uscc, role)
				VALUES (p_identity, v_account, 'enterprise', v_lock.enterprise_name,
					v_lock.uscc, v_role);
			v_identity := p_identity;
			PERFORM outbox_emit('auth.identity.added', p_identity::text, jsonb_build_object('identity_id', p_identity, 'account_id', v_account,
					'type', 'enterprise', 'enterprise_name', v_lock.enterprise_name,
					'uscc', v_lock.uscc, 'role', v_role), p_ev_identity);
		END IF;
	ELSE
		SELECT i.id INTO v_identity FROM identities i
			WHERE i.account_id = v_account AND i.type = 'personal';
		IF v_identity IS NULL THEN
			INSERT INTO identities (id, account_id, type) VALUES (p_identity, v_account, 'personal');
			v_identity := p_identity;
			PERFORM outbox_emit('auth.identity.added', p_identity::text, jsonb_build_object('identity_id', p_identity, 'account_id', v_account,
					'type', 'personal'), p_ev_identity);
		END IF;
	END IF;
	INSERT INTO current_identity (account_id, identity_id) VALUES (v_account, v_identity)
		ON CONFLICT ON CONSTRAINT current_identity_pkey
		DO UPDATE SET identity_id = EXCLUDED.identity_id;

	-- proto/events/auth.lock.bound.json: the lock, its holder and the
	-- certificate (p_cert: serial, issuer, not_before, not_after,
	-- fingerprint_sha256, certificate_pem) so the registry can record it.
	PERFORM outbox_emit('auth.lock.bound', v_account::text, jsonb_build_object('lock_id', p_lock, 'account_id', v_account,
			'phone', p_phone, 'lock_kind', v_lock.kind, 'holder', v_lock.holder,
			'enterprise_name', v_lock.enterprise_name, 'uscc', v_lock.uscc,
			'bound_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) || p_cert, p_ev_bound);
	RETURN QUERY SELECT v_account, v_identity, v_created;
END
$$;

