-- issuance 100: the vendor directory sync UPDATES what it already knows
-- (issue 13 item 2, "fills and updates the registry"). 011's
-- sync_certificate() only filled a known certificate's key facts: a
-- certificate the vendor listed again as changed (its holder renamed, its
-- lock kind or platform associations changed, revoked at the vendor) kept
-- the registry's old values. Now, for a known certificate:
-- - the latest certificate of its lineage takes the listed holder, lock
--   kind (within the same type: the subject's USCC cannot move), platforms
--   (when the listing carries them: null leaves them as they are), key
--   serial and key vendor (when listed); the first application date is
--   only filled in. Only values that differ are written, so a listing read
--   twice changes nothing the second time; the account, the lock and the
--   certificate itself (validity, PEM) are never touched.
-- - a change is audited (issuance.audit.recorded "certificate.synced",
--   before/after, as the import audits "certificate.imported"; actor
--   system:issuance), and when holder, lock kind or platforms changed the
--   lineage is announced again with issuance.cert.registered (the event the
--   sync sends for a new certificate; account_id as bound), so orders keeps
--   the new values.
-- - a certificate listed revoked (revoked_at, reason) that the registry
--   holds unrevoked is revoked in the registry with issuance.cert.revoked,
--   as revoke_certificate() does, without a vendor job (the vendor did it).
-- A new certificate whose listing carries no platforms enters with unknown
-- associations (platforms_known false, as a login's), not with an empty
-- known set. The sync (store_sync_certificate_sql) calls the form with 25
-- arguments; 011's form with 22 (tests' fixtures call it) now delegates to
-- it: not revoked, actor system:issuance.

CREATE FUNCTION sync_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_platforms text[], p_key_serial text, p_key_vendor text,
	p_applied_at timestamptz, p_revoked_at timestamptz, p_reason text, p_audit jsonb)
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_cert certificates%ROWTYPE;
	v_lin lineages%ROWTYPE;
	v_kind text;
	v_platforms text[];
	v_known boolean;
	v_at timestamptz;
	v_created boolean := false;
BEGIN
	SELECT * INTO v_cert FROM certificates c
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
	IF NOT FOUND THEN
		IF EXISTS (SELECT 1 FROM issuances WHERE serial = p_serial AND status = 'pending') THEN
			RETURN;
		END IF;
		INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, key_serial,
				key_vendor, applied_at)
			VALUES (p_lineage, p_type, p_lock_kind, p_holder, p_enterprise, p_uscc, p_key_serial,
				p_key_vendor, COALESCE(p_applied_at, p_not_before));
		INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
				spki_sha256, key_type, not_before, not_after, platforms, platforms_known, pem,
				source)
			VALUES (p_cert, p_lineage, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
				p_spki, p_key_type, p_not_before, p_not_after, COALESCE(p_platforms, '{}'),
				p_platforms IS NOT NULL, p_pem, 'sync');
		PERFORM outbox_emit('issuance.cert.registered', p_lineage::text, jsonb_build_object('cert_id', p_lineage, 'serial', p_serial,
				'issuer', p_issuer, 'type', p_type, 'holder', p_holder,
				'enterprise_name', p_enterprise, 'uscc', p_uscc, 'lock_kind', p_lock_kind,
				'lock_id', NULL, 'vendor', p_vendor, 'account_id', NULL,
				'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
				'platforms', to_jsonb(p_platforms), 'platforms_known', p_platforms IS NOT NULL,
				'fingerprint_sha256', p_fingerprint,
				'registered_at', rfc3339(now())), p_event);
		SELECT * INTO v_lin FROM lineages WHERE id = p_lineage;
		SELECT * INTO v_cert FROM certificates WHERE id = p_cert;
		v_created := true;
	ELSE
		SELECT * INTO v_lin FROM lineages WHERE id = v_cert.cert_id FOR UPDATE;
		SELECT * INTO v_cert FROM certificates WHERE id = v_cert.id;
		IF v_cert.replaced_by IS NOT NULL THEN
			-- an older certificate of the lineage: its listing says nothing
			-- about the key as it is now; only fill what is missing.
			UPDATE lineages l SET key_serial = COALESCE(l.key_serial, p_key_serial),
				key_vendor = COALESCE(l.key_vendor, p_key_vendor),
				applied_at = COALESCE(l.applied_at, p_applied_at)
				WHERE l.id = v_lin.id AND (l.key_serial IS NULL AND p_key_serial IS NOT NULL
					OR l.key_vendor IS NULL AND p_key_vendor IS NOT NULL
					OR l.applied_at IS NULL AND p_applied_at IS NOT NULL);
		ELSE
			v_kind := CASE WHEN p_type = v_lin.type THEN p_lock_kind ELSE v_lin.lock_kind END;
			v_platforms := COALESCE(p_platforms, v_cert.platforms);
			v_known := v_cert.platforms_known OR p_platforms IS NOT NULL;
			IF (v_lin.holder, v_lin.lock_kind, v_lin.key_serial, v_lin.key_vendor,
					v_lin.applied_at, v_cert.platforms, v_cert.platforms_known)
				IS DISTINCT FROM (p_holder, v_kind, COALESCE(p_key_serial, v_lin.key_serial),
					COALESCE(p_key_vendor, v_lin.key_vendor),
					COALESCE(v_lin.applied_at, p_applied_at), v_platforms, v_known) THEN
				UPDATE lineages SET holder = p_holder, lock_kind = v_kind,
					key_serial = COALESCE(p_key_serial, key_serial),
					key_vendor = COALESCE(p_key_vendor, key_vendor),
					applied_at = COALESCE(applied_at, p_applied_at)
					WHERE id = v_lin.id;
				IF (v_cert.platforms, v_cert.platforms_known)
					IS DISTINCT FROM (v_platforms, v_known) THEN
					UPDATE certificates SET platforms = v_platforms, platforms_known = v_known
						WHERE id = v_cert.id;
				END IF;
				PERFORM outbox_emit('issuance.audit.recorded', v_lin.id::text,
					p_audit || jsonb_build_object('object_id', v_lin.id::text,
					'uscc', v_lin.uscc,
					'before', jsonb_build_object('holder', v_lin.holder,
						'lock_kind', v_lin.lock_kind, 'key_serial', v_lin.key_serial,
						'key_vendor', v_lin.key_vendor,
						'applied_at', rfc3339(v_lin.applied_at),
						'platforms', CASE WHEN v_cert.platforms_known
							THEN to_jsonb(v_cert.platforms) END),
					'after', jsonb_build_object('holder', p_holder, 'lock_kind', v_kind,
						'key_serial', COALESCE(p_key_serial, v_lin.key_serial),
						'key_vendor', COALESCE(p_key_vendor, v_lin.key_vendor),
						'applied_at', rfc3339(COALESCE(v_lin.applied_at, p_applied_at)),
						'platforms', CASE WHEN v_known THEN to_jsonb(v_platforms) END,
						'vendor', p_vendor, 'serial', p_serial)));
				IF (v_lin.holder, v_lin.lock_kind, v_cert.platforms, v_cert.platforms_known)
					IS DISTINCT FROM (p_holder, v_kind, v_platforms, v_known) THEN
					PERFORM outbox_emit('issuance.cert.registered', v_lin.id::text,
						jsonb_build_object('cert_id', v_lin.id, 'serial', v_cert.serial,
						'issuer', v_cert.issuer, 'type', v_lin.type, 'holder', p_holder,
						'enterprise_name', v_lin.enterprise_name, 'uscc', v_lin.uscc,
						'lock_kind', v_kind, 'lock_id', v_lin.lock_id,
						'vendor', v_cert.vendor, 'account_id', v_lin.account_id,
						'not_before', rfc3339(v_cert.not_before),
						'not_after', rfc3339(v_cert.not_after),
						'platforms', CASE WHEN v_known THEN to_jsonb(v_platforms) END,
						'platforms_known', v_known,
						'fingerprint_sha256', v_cert.fingerprint_sha256,
						'registered_at', rfc3339(v_cert.registered_at)), p_event);
				END IF;
			END IF;
		END IF;
	END IF;
	IF p_revoked_at IS NOT NULL AND v_cert.revoked_at IS NULL THEN
		v_at := date_trunc('second', p_revoked_at);
		UPDATE certificates SET revoked_at = v_at,
			revocation_reason = COALESCE(p_reason, 'unspecified')
			WHERE id = v_cert.id;
		PERFORM outbox_emit('issuance.cert.revoked', v_lin.id::text,
			jsonb_build_object('cert_id', v_lin.id, 'serial', v_cert.serial,
			'issuer', v_cert.issuer, 'reason', COALESCE(p_reason, 'unspecified'),
			'revoked_at', rfc3339(v_at), 'vendor', v_cert.vendor,
			'account_id', v_lin.account_id, 'uscc', v_lin.uscc));
		PERFORM outbox_emit('issuance.audit.recorded', v_lin.id::text,
			p_audit || jsonb_build_object('action', 'certificate.sync_revoked',
			'object_id', v_lin.id::text, 'uscc', v_lin.uscc,
			'before', jsonb_build_object('serial', v_cert.serial, 'revoked_at', NULL),
			'after', jsonb_build_object('serial', v_cert.serial,
				'revoked_at', rfc3339(v_at),
				'reason', COALESCE(p_reason, 'unspecified'), 'vendor', p_vendor)));
	END IF;
	RETURN QUERY SELECT v_lin.id, v_created;
END
$$;

CREATE OR REPLACE FUNCTION sync_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_platforms text[], p_key_serial text, p_key_vendor text,
	p_applied_at timestamptz)
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE sql AS $$
	SELECT * FROM sync_certificate(p_lineage, p_cert, p_event, p_issuer, p_serial, p_vendor,
		p_subject, p_fingerprint, p_spki, p_key_type, p_not_before, p_not_after, p_pem,
		p_type, p_lock_kind, p_holder, p_enterprise, p_uscc, p_platforms, p_key_serial,
		p_key_vendor, p_applied_at, NULL, NULL,
		jsonb_build_object('actor', jsonb_build_object('type', 'system',
			'id', 'system:issuance'), 'service', 'issuance',
			'action', 'certificate.synced', 'object_type', 'certificate'))
$$;
