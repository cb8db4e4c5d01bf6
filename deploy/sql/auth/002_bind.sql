-- Binding a USB key (lock) to an account, in one transaction and one round
-- trip: the account (found or created by phone), the lock, the identity the
-- lock implies, the current identity, and the events. Refusals are raised
-- with a stable message the service maps to API.md codes.

ALTER TABLE accounts ADD COLUMN id_number_hmac text;
ALTER TABLE accounts ADD COLUMN id_number_masked text;
-- bind_lock() itself is defined in 003_lock_bound_event.sql (one definition).

-- The lock of a certificate, created on first sight (one statement, safe
-- under concurrent first logins: the loser of the race finds the winner's).
CREATE FUNCTION lock_for_cert(p_issuer text, p_serial text, p_new_lock uuid,
	p_kind text, p_holder text, p_enterprise text, p_uscc text, p_not_after timestamptz)
RETURNS TABLE (lock_id uuid, account_id uuid, kind text)
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM lock_certs c WHERE c.issuer = p_issuer AND c.serial = p_serial) THEN
		INSERT INTO locks (id, kind, holder, enterprise_name, uscc)
			VALUES (p_new_lock, p_kind, p_holder, p_enterprise, p_uscc);
		INSERT INTO lock_certs (issuer, serial, lock_id, not_after)
			VALUES (p_issuer, p_serial, p_new_lock, p_not_after)
			ON CONFLICT (issuer, serial) DO NOTHING;
		IF NOT FOUND THEN
			DELETE FROM locks WHERE id = p_new_lock;
		END IF;
	END IF;
	RETURN QUERY SELECT l.id, l.account_id, l.kind FROM lock_certs c
		JOIN locks l ON l.id = c.lock_id
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
END
$$;
