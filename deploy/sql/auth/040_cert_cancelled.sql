-- A cancelled certificate (issuance.cert.cancelled, issue 19): the key's
-- certificate is refused at CA login at once (revoked_certs, as the
-- revocation event would), the key is unbound from its account, and the
-- enterprise rights the key gave end: the account's active identity in the
-- key's enterprise is removed (auth.identity.removed, reason
-- cert_cancelled). A personal key's account keeps its personal identity.
-- Audited (lock.unbound). Idempotent: a key already unbound and an identity
-- already removed change nothing.

ALTER TABLE locks ADD COLUMN cancelled_at timestamptz;

-- Returns the account the key was bound to (NULL: none) and the identity
-- removed (NULL: none), for the sessions to drop it.
CREATE FUNCTION lock_cancel(p_issuer text, p_serial text, p_revoked_at timestamptz,
	p_account uuid, p_uscc text, p_audit jsonb)
RETURNS TABLE (account_id uuid, identity_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
	v_lock locks%ROWTYPE;
	v_account uuid;
	v_identity uuid;
BEGIN
	INSERT INTO revoked_certs (issuer, serial, reason, revoked_at)
		VALUES (p_issuer, p_serial, 'cessation_of_operation', COALESCE(p_revoked_at, now()))
		ON CONFLICT (issuer, serial) DO NOTHING;
	SELECT l.* INTO v_lock FROM lock_certs c JOIN locks l ON l.id = c.lock_id
		WHERE c.issuer = p_issuer AND c.serial = p_serial FOR UPDATE OF l;
	IF NOT FOUND AND p_account IS NOT NULL THEN
		-- a renewed certificate whose renewal event has not joined it to
		-- its lock yet: the account's one lock
		SELECT l.* INTO v_lock FROM locks l WHERE l.account_id = p_account FOR UPDATE;
	END IF;
	v_account := COALESCE(v_lock.account_id, p_account);
	IF v_lock.id IS NOT NULL THEN
		UPDATE locks SET account_id = NULL, bound_at = NULL,
			cancelled_at = COALESCE(cancelled_at, now())
			WHERE id = v_lock.id;
		IF v_lock.account_id IS NOT NULL THEN
			PERFORM ident_audit(p_audit, 'lock.unbound', 'lock', v_lock.id, v_lock.uscc,
				jsonb_build_object('account_id', v_lock.account_id, 'kind', v_lock.kind),
				jsonb_build_object('account_id', NULL, 'reason', 'cert_cancelled',
					'serial', p_serial, 'issuer', p_issuer));
		END IF;
	END IF;
	IF v_account IS NOT NULL AND COALESCE(v_lock.uscc, p_uscc) IS NOT NULL THEN
		SELECT i.id INTO v_identity FROM identities i
			WHERE i.account_id = v_account AND i.uscc = COALESCE(v_lock.uscc, p_uscc)
			AND i.type = 'enterprise' AND i.status = 'active';
		IF v_identity IS NOT NULL THEN
			PERFORM ident_remove(v_identity, 'cert_cancelled', p_audit);
		END IF;
	END IF;
	RETURN QUERY SELECT v_account, v_identity;
END
$$;
