-- issuance: the registry's rules that span rows, one transaction and one
-- round trip each. Refusals are raised with a stable message the service
-- maps to API.md codes (db.h DB_REFUSED). Every event is an outbox row
-- written in the same transaction as its change.

CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- A certificate first seen at a login (auth.lock.bound): a new lineage and
-- issuance.cert.registered, or, when already known, the account and lock
-- filled in.
CREATE FUNCTION register_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_lock_id uuid, p_account uuid, p_platforms text[])
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_known uuid;
BEGIN
	SELECT c.cert_id INTO v_known FROM certificates c
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
	IF FOUND THEN
		UPDATE lineages l SET account_id = COALESCE(l.account_id, p_account),
			lock_id = COALESCE(l.lock_id, p_lock_id)
			WHERE l.id = v_known;
		RETURN QUERY SELECT v_known, false;
		RETURN;
	END IF;
	INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, lock_id, account_id)
		VALUES (p_lineage, p_type, p_lock_kind, p_holder, p_enterprise, p_uscc, p_lock_id, p_account);
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, source)
		VALUES (p_cert, p_lineage, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
			p_spki, p_key_type, p_not_before, p_not_after, p_platforms, p_pem, 'login');
	PERFORM outbox_emit('issuance.cert.registered', p_lineage::text, jsonb_build_object('cert_id', p_lineage, 'serial', p_serial,
			'issuer', p_issuer, 'type', p_type, 'holder', p_holder,
			'enterprise_name', p_enterprise, 'uscc', p_uscc, 'lock_kind', p_lock_kind,
			'lock_id', p_lock_id, 'vendor', p_vendor, 'account_id', p_account,
			'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
			'platforms', to_jsonb(p_platforms), 'fingerprint_sha256', p_fingerprint,
			'registered_at', rfc3339(now())), p_event);
	RETURN QUERY SELECT p_lineage, true;
END
$$;

-- Starts, resumes or replays the renewal of certificate p_target (the one
-- on the holder's key) of lineage p_cert_id with the CSR whose key is
-- p_spki. Outcomes:
--   new     the latest certificate, a paid entitlement reserved, the intent
--           recorded with the reserved serial and validity given;
--   resume  a pending intent for the same key: its lease taken again;
--   replay  the same renewal was issued already: answer it again.
-- Refusals: CERT_NOT_FOUND, CERT_REVOKED, CERT_SUPERSEDED (not the latest),
-- RENEWAL_PENDING (pending for another key), RENEWAL_IN_PROGRESS (leased),
-- NO_PAID_RENEWAL.
CREATE FUNCTION renewal_begin(p_cert_id uuid, p_target uuid, p_spki text, p_csr text,
	p_intent uuid, p_serial text, p_adapter text, p_not_before timestamptz,
	p_not_after timestamptz, p_lease_secs int)
RETURNS TABLE (o_outcome text, o_intent uuid, o_serial text, o_not_before bigint,
	o_not_after bigint, o_platforms text, o_adapter text, o_attempts int,
	o_certificate uuid, o_csr text)
LANGUAGE plpgsql AS $$
DECLARE
	v_target certificates%ROWTYPE;
	v_int issuances%ROWTYPE;
	v_ent entitlements%ROWTYPE;
BEGIN
	PERFORM 1 FROM lineages WHERE id = p_cert_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	SELECT * INTO v_target FROM certificates WHERE id = p_target AND cert_id = p_cert_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	IF v_target.revoked_at IS NOT NULL THEN
		RAISE EXCEPTION 'CERT_REVOKED';
	END IF;

	SELECT * INTO v_int FROM issuances i
		WHERE i.previous_id = p_target AND i.status IN ('pending', 'issued')
		ORDER BY i.created_at DESC LIMIT 1;
	IF FOUND THEN
		IF v_int.csr_spki <> p_spki THEN
			IF v_int.status = 'pending' THEN
				RAISE EXCEPTION 'RENEWAL_PENDING';
			END IF;
			RAISE EXCEPTION 'CERT_SUPERSEDED';
		END IF;
		IF v_int.status = 'issued' THEN
			RETURN QUERY SELECT 'replay'::text, v_int.id, v_int.serial,
				extract(epoch FROM v_int.not_before)::bigint,
				extract(epoch FROM v_int.not_after)::bigint,
				array_to_json(v_int.platforms)::text, v_int.adapter, v_int.attempts,
				v_int.certificate_id, v_int.csr_pem;
			RETURN;
		END IF;
		IF v_int.lease_until IS NOT NULL AND v_int.lease_until > now() THEN
			RAISE EXCEPTION 'RENEWAL_IN_PROGRESS';
		END IF;
		UPDATE issuances SET lease_until = now() + make_interval(secs => p_lease_secs),
			attempts = attempts + 1 WHERE id = v_int.id;
		RETURN QUERY SELECT 'resume'::text, v_int.id, v_int.serial,
			extract(epoch FROM v_int.not_before)::bigint,
			extract(epoch FROM v_int.not_after)::bigint,
			array_to_json(v_int.platforms)::text, v_int.adapter, v_int.attempts + 1,
			NULL::uuid, v_int.csr_pem;
		RETURN;
	END IF;

	IF v_target.replaced_by IS NOT NULL THEN
		RAISE EXCEPTION 'CERT_SUPERSEDED';
	END IF;
	IF EXISTS (SELECT 1 FROM issuances WHERE cert_id = p_cert_id AND status = 'pending') THEN
		RAISE EXCEPTION 'RENEWAL_PENDING';
	END IF;
	SELECT * INTO v_ent FROM entitlements
		WHERE cert_id = p_cert_id AND status = 'paid'
		ORDER BY paid_at, id LIMIT 1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NO_PAID_RENEWAL';
	END IF;
	INSERT INTO issuances (id, cert_id, previous_id, entitlement_id, order_id, adapter, serial,
			csr_pem, csr_spki, not_before, not_after, platforms, attempts, lease_until)
		VALUES (p_intent, p_cert_id, p_target, v_ent.id, v_ent.order_id, p_adapter, p_serial,
			p_csr, p_spki, p_not_before, p_not_after, v_ent.platforms, 1,
			now() + make_interval(secs => p_lease_secs));
	UPDATE entitlements SET status = 'reserved', issuance_id = p_intent WHERE id = v_ent.id;
	RETURN QUERY SELECT 'new'::text, p_intent, p_serial,
		extract(epoch FROM p_not_before)::bigint, extract(epoch FROM p_not_after)::bigint,
		array_to_json(v_ent.platforms)::text, p_adapter, 1, NULL::uuid, p_csr;
END
$$;

-- Records the certificate the vendor CA issued for intent p_intent: the new
-- latest certificate of the lineage (the previous one superseded), the
-- entitlement used, issuance.cert.renewed. Idempotent: an intent already
-- issued answers its certificate with o_new false.
CREATE FUNCTION renewal_complete(p_intent uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_chain text)
RETURNS TABLE (o_certificate uuid, o_new boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_int issuances%ROWTYPE;
	v_prev certificates%ROWTYPE;
	v_lin lineages%ROWTYPE;
BEGIN
	SELECT * INTO v_int FROM issuances WHERE id = p_intent FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'INTENT_NOT_FOUND';
	END IF;
	IF v_int.status = 'issued' THEN
		RETURN QUERY SELECT v_int.certificate_id, false;
		RETURN;
	END IF;
	IF v_int.status <> 'pending' THEN
		RAISE EXCEPTION 'INTENT_NOT_PENDING';
	END IF;
	SELECT * INTO v_lin FROM lineages WHERE id = v_int.cert_id FOR UPDATE;
	SELECT * INTO v_prev FROM certificates WHERE id = v_int.previous_id;
	-- The old one steps down first: one latest certificate per lineage.
	UPDATE certificates SET replaced_by = p_cert
		WHERE id = v_prev.id AND replaced_by IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'CERT_SUPERSEDED';
	END IF;
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, chain, source,
			replaces, issuance_id)
		VALUES (p_cert, v_int.cert_id, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
			p_spki, p_key_type, p_not_before, p_not_after, v_int.platforms, p_pem, p_chain,
			'renewal', v_prev.id, p_intent);
	UPDATE issuances SET status = 'issued', certificate_id = p_cert, issued_at = now(),
		lease_until = NULL, last_error = NULL WHERE id = p_intent;
	UPDATE entitlements SET status = 'used', used_at = now() WHERE id = v_int.entitlement_id;
	PERFORM outbox_emit('issuance.cert.renewed', v_int.cert_id::text, jsonb_build_object('cert_id', v_int.cert_id,
			'serial', p_serial, 'issuer', p_issuer,
			'previous_serial', v_prev.serial, 'previous_issuer', v_prev.issuer,
			'uscc', v_lin.uscc, 'lock_kind', v_lin.lock_kind, 'lock_id', v_lin.lock_id,
			'account_id', v_lin.account_id, 'vendor', p_vendor,
			'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
			'platforms', to_jsonb(v_int.platforms), 'order_id', v_int.order_id,
			'fingerprint_sha256', p_fingerprint, 'renewed_at', rfc3339(now())), p_event);
	RETURN QUERY SELECT p_cert, true;
END
$$;

-- A vendor attempt failed: the lease is released and the next attempt
-- scheduled; a final refusal fails the intent and gives the entitlement back.
CREATE FUNCTION renewal_failed(p_intent uuid, p_error text, p_retry_secs int, p_final boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE issuances SET lease_until = NULL, last_error = p_error,
		next_attempt_at = now() + make_interval(secs => p_retry_secs),
		status = CASE WHEN p_final THEN 'failed' ELSE status END
		WHERE id = p_intent AND status = 'pending';
	IF FOUND AND p_final THEN
		UPDATE entitlements SET status = 'paid', issuance_id = NULL
			WHERE issuance_id = p_intent AND status = 'reserved';
	END IF;
END
$$;

-- Revokes the latest certificate of lineage p_cert_id: the registry first
-- (downstream platforms and auth stop at once through the event), then the
-- vendor CA through a job when it is one of p_forward.
CREATE FUNCTION revoke_certificate(p_cert_id uuid, p_reason text, p_event uuid, p_job uuid,
	p_forward text[])
RETURNS TABLE (o_serial text, o_issuer text, o_revoked_at bigint, o_vendor text,
	o_forwarded boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_lin lineages%ROWTYPE;
	v_cert certificates%ROWTYPE;
	v_at timestamptz := date_trunc('second', now());
	v_forward boolean;
BEGIN
	SELECT * INTO v_lin FROM lineages WHERE id = p_cert_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	SELECT * INTO v_cert FROM certificates WHERE cert_id = p_cert_id AND replaced_by IS NULL;
	IF v_cert.revoked_at IS NOT NULL THEN
		RAISE EXCEPTION 'CERT_REVOKED';
	END IF;
	UPDATE certificates SET revoked_at = v_at, revocation_reason = p_reason WHERE id = v_cert.id;
	PERFORM outbox_emit('issuance.cert.revoked', p_cert_id::text, jsonb_build_object('cert_id', p_cert_id, 'serial', v_cert.serial,
			'issuer', v_cert.issuer, 'reason', p_reason, 'revoked_at', rfc3339(v_at),
			'vendor', v_cert.vendor, 'account_id', v_lin.account_id, 'uscc', v_lin.uscc), p_event);
	v_forward := v_cert.vendor = ANY (p_forward);
	IF v_forward THEN
		INSERT INTO vendor_jobs (id, kind, vendor, certificate_id, serial, issuer, reason, revoked_at)
			VALUES (p_job, 'revoke', v_cert.vendor, v_cert.id, v_cert.serial, v_cert.issuer,
				p_reason, v_at);
	END IF;
	RETURN QUERY SELECT v_cert.serial, v_cert.issuer, extract(epoch FROM v_at)::bigint,
		v_cert.vendor, v_forward;
END
$$;
