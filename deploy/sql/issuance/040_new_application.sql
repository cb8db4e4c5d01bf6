-- New certificate applications (issue 19): CA主锁申请, staff locks for
-- members, CA个人锁申请. orders places the application as an order
-- (product new_certificate) and tells issuance through orders.order.created
-- (the item's `application`: holder, lock kind, the subject taken from the
-- approved record or the verified profile). The payment grants the usual
-- entitlement (orders.order.paid, cert_id = the application's id, which
-- becomes the new certificate's cert_id). The holder generates the key on
-- the USB key and sends its CSR; the application row is then also the
-- intent, like issuances for renewals: reserved serial, validity, CSR,
-- adapter, lease and backoff, recorded before the vendor is asked, so a
-- crash neither loses nor doubles the certificate (application_begin →
-- vendor create with the application's id as request id →
-- application_complete; the resumer in sweep.c asks again).

ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_source_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_source_check
	CHECK (source IN ('login', 'renewal', 'sync', 'import', 'application'));

CREATE TABLE applications (
	id                uuid PRIMARY KEY,  -- the new certificate's cert_id
	order_id          uuid NOT NULL,
	applicant_account uuid NOT NULL,     -- who placed the order
	account_id        uuid NOT NULL,     -- the holder's account
	type              text NOT NULL CHECK (type IN ('enterprise', 'personal')),
	lock_kind         text NOT NULL CHECK (lock_kind IN ('master', 'project_lead', 'agent', 'cost_engineer', 'personal')),
	holder            text NOT NULL,
	enterprise_name   text,
	uscc              text,
	subject           jsonb NOT NULL,    -- {c, o, ou, cn, organization_identifier}
	platforms         text[] NOT NULL,
	replaces_cert_id  uuid,              -- a long-expired certificate applied for again
	kind              text NOT NULL DEFAULT 'new' CHECK (kind IN ('new', 'change')),
	lineage_id        uuid REFERENCES lineages (id), -- a change: the lineage it re-issues
	status            text NOT NULL DEFAULT 'open'
		CHECK (status IN ('open', 'pending', 'issued', 'failed')),
	adapter           text,
	serial            text UNIQUE CHECK (serial ~ '^[0-9A-F]{1,64}$'),
	csr_pem           text,
	csr_spki          text,
	not_before        timestamptz,
	not_after         timestamptz,
	attempts          int NOT NULL DEFAULT 0,
	lease_until       timestamptz,
	next_attempt_at   timestamptz NOT NULL DEFAULT now(),
	last_error        text,
	certificate_id    uuid REFERENCES certificates (id) DEFERRABLE INITIALLY DEFERRED,
	created_at        timestamptz NOT NULL DEFAULT now(),
	issued_at         timestamptz,
	CHECK ((status = 'issued') = (certificate_id IS NOT NULL)),
	CHECK ((status = 'open') = (csr_pem IS NULL))
);
CREATE INDEX applications_due ON applications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX applications_account ON applications (account_id);

-- Begins (or resumes, or replays) the issue of application p_app by its
-- holder p_account with the CSR's key p_spki. Outcomes as renewal_begin():
-- new, resume, replay. Refuses APPLICATION_NOT_FOUND (not the holder's),
-- APPLICATION_NOT_PAID, APPLICATION_ISSUED (issued for another key),
-- APPLICATION_PENDING (pending for another key), RENEWAL_IN_PROGRESS
-- (leased by another attempt).
CREATE FUNCTION application_begin(p_app uuid, p_account uuid, p_spki text, p_csr text,
	p_serial text, p_adapter text, p_not_before timestamptz, p_not_after timestamptz,
	p_lease_secs int)
RETURNS TABLE (o_outcome text, o_serial text, o_not_before bigint, o_not_after bigint,
	o_adapter text, o_attempts int, o_csr text)
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
	v_ent entitlements%ROWTYPE;
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app FOR UPDATE;
	IF NOT FOUND OR v.account_id <> p_account THEN
		RAISE EXCEPTION 'APPLICATION_NOT_FOUND';
	END IF;
	IF v.status = 'issued' THEN
		IF v.csr_spki <> p_spki THEN
			RAISE EXCEPTION 'APPLICATION_ISSUED';
		END IF;
		RETURN QUERY SELECT 'replay'::text, v.serial, extract(epoch FROM v.not_before)::bigint,
			extract(epoch FROM v.not_after)::bigint, v.adapter, v.attempts, v.csr_pem;
		RETURN;
	END IF;
	IF v.status = 'pending' THEN
		IF v.csr_spki <> p_spki THEN
			RAISE EXCEPTION 'APPLICATION_PENDING';
		END IF;
		IF v.lease_until IS NOT NULL AND v.lease_until > now() THEN
			RAISE EXCEPTION 'RENEWAL_IN_PROGRESS';
		END IF;
		UPDATE applications SET lease_until = now() + make_interval(secs => p_lease_secs),
			attempts = attempts + 1 WHERE id = p_app;
		RETURN QUERY SELECT 'resume'::text, v.serial, extract(epoch FROM v.not_before)::bigint,
			extract(epoch FROM v.not_after)::bigint, v.adapter, v.attempts + 1, v.csr_pem;
		RETURN;
	END IF;
	-- A change (自主变更, 040_change.sql) is not paid for.
	IF v.kind = 'new' THEN
		SELECT * INTO v_ent FROM entitlements WHERE cert_id = p_app AND status = 'paid'
			ORDER BY paid_at, id LIMIT 1 FOR UPDATE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'APPLICATION_NOT_PAID';
		END IF;
	END IF;
	UPDATE applications SET status = 'pending', adapter = p_adapter, serial = p_serial,
		csr_pem = p_csr, csr_spki = p_spki, not_before = p_not_before,
		not_after = p_not_after, attempts = 1, last_error = NULL,
		lease_until = now() + make_interval(secs => p_lease_secs)
		WHERE id = p_app;
	IF v_ent.id IS NOT NULL THEN
		UPDATE entitlements SET status = 'reserved', issuance_id = p_app WHERE id = v_ent.id;
	END IF;
	RETURN QUERY SELECT 'new'::text, p_serial, extract(epoch FROM p_not_before)::bigint,
		extract(epoch FROM p_not_after)::bigint, p_adapter, 1, p_csr;
END
$$;

-- Records the certificate the vendor issued for application p_app: the
-- lineage (id = the application's), its first certificate (source
-- 'application'), the entitlement used, issuance.cert.registered (orders
-- and CA管理 learn it; the holder binds the key with the usual flow).
-- Idempotent: an application already issued answers its certificate.
CREATE FUNCTION application_complete(p_app uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_chain text)
RETURNS TABLE (o_certificate uuid, o_new boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'APPLICATION_NOT_FOUND';
	END IF;
	IF v.status = 'issued' THEN
		RETURN QUERY SELECT v.certificate_id, false;
		RETURN;
	END IF;
	IF v.status <> 'pending' THEN
		RAISE EXCEPTION 'INTENT_NOT_PENDING';
	END IF;
	IF v.kind = 'change' THEN
		RETURN QUERY SELECT * FROM change_complete(p_app, p_cert, p_event, p_issuer, p_serial,
			p_vendor, p_subject, p_fingerprint, p_spki, p_key_type, p_not_before,
			p_not_after, p_pem, p_chain);
		RETURN;
	END IF;
	INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, account_id,
			applied_at)
		VALUES (p_app, v.type, v.lock_kind, v.holder, v.enterprise_name, v.uscc, v.account_id,
			v.created_at);
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, chain, source)
		VALUES (p_cert, p_app, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint, p_spki,
			p_key_type, p_not_before, p_not_after, v.platforms, p_pem, p_chain, 'application');
	UPDATE applications SET status = 'issued', certificate_id = p_cert, issued_at = now(),
		lease_until = NULL, last_error = NULL WHERE id = p_app;
	UPDATE entitlements SET status = 'used', used_at = now()
		WHERE cert_id = p_app AND issuance_id = p_app AND status = 'reserved';
	PERFORM outbox_emit('issuance.cert.registered', p_app::text, jsonb_build_object(
		'cert_id', p_app, 'serial', p_serial, 'issuer', p_issuer, 'type', v.type,
		'holder', v.holder, 'enterprise_name', v.enterprise_name, 'uscc', v.uscc,
		'lock_kind', v.lock_kind, 'lock_id', NULL, 'vendor', p_vendor,
		'account_id', v.account_id, 'not_before', rfc3339(p_not_before),
		'not_after', rfc3339(p_not_after), 'platforms', to_jsonb(v.platforms),
		'platforms_known', true, 'fingerprint_sha256', p_fingerprint,
		'registered_at', rfc3339(now())), p_event);
	RETURN QUERY SELECT p_cert, true;
END
$$;

-- A vendor attempt failed: the lease released, the next attempt scheduled;
-- a final refusal fails the application and gives the entitlement back.
CREATE FUNCTION application_failed(p_app uuid, p_error text, p_retry_secs int, p_final boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE applications SET lease_until = NULL, last_error = p_error,
		next_attempt_at = now() + make_interval(secs => p_retry_secs),
		status = CASE WHEN p_final THEN 'failed' ELSE status END
		WHERE id = p_app AND status = 'pending';
	IF FOUND AND p_final THEN
		UPDATE entitlements SET status = 'paid', issuance_id = NULL
			WHERE issuance_id = p_app AND status = 'reserved';
	END IF;
END
$$;
