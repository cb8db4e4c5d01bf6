-- 自主变更 (issue 19): after an approved change of the enterprise (企业变更:
-- enterprise.record.approved with a new version of the record), every
-- certificate of the enterprise whose subject names the old name can be
-- re-issued with the approved one. enterprise has no separate "change
-- approved" event: the approved record's new version is the trigger, and
-- issuance keeps its own projection of it (enterprise_records) because the
-- CSR's subject is checked against it. Only the name is in certificates
-- (O; the USCC does not change; the legal representative is in no
-- certificate subject), so a name change is what makes one outdated.
--
-- A change is an application of kind 'change' (040_new_application.sql):
-- the same intent, the same /certs/{id}/issue calls, not paid for. Its
-- certificate joins the lineage (replaces the latest one, same cert_id,
-- issuance.cert.renewed so auth keeps it on its key and orders follows);
-- the old certificate is revoked with affiliation_changed once the holder
-- has collected the new one (change_collected(), at the issue's answer).

CREATE TABLE enterprise_records (
	uscc        text PRIMARY KEY,
	record_id   uuid NOT NULL,
	seq         int NOT NULL,
	name        text NOT NULL,
	approved_at timestamptz NOT NULL DEFAULT now()
);

-- The change application of lineage p_cert_id for its holder p_account:
-- the open or pending one, else a new one (p_app) with the approved name.
-- Refuses CERT_NOT_FOUND (not the holder's), CERT_REVOKED, NO_CHANGE (the
-- subject already names the approved record, or no approved record).
CREATE FUNCTION change_application(p_cert_id uuid, p_account uuid, p_app uuid)
RETURNS TABLE (o_app uuid, o_subject text, o_status text, o_previous_name text)
LANGUAGE plpgsql AS $$
DECLARE
	v_lin lineages%ROWTYPE;
	v_cert certificates%ROWTYPE;
	v_rec enterprise_records%ROWTYPE;
	v applications%ROWTYPE;
BEGIN
	SELECT * INTO v_lin FROM lineages WHERE id = p_cert_id FOR UPDATE;
	IF NOT FOUND OR v_lin.account_id IS DISTINCT FROM p_account THEN
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	SELECT * INTO v_cert FROM certificates WHERE cert_id = p_cert_id AND replaced_by IS NULL;
	IF v_cert.revoked_at IS NOT NULL THEN
		RAISE EXCEPTION 'CERT_REVOKED';
	END IF;
	SELECT * INTO v_rec FROM enterprise_records r WHERE r.uscc = v_lin.uscc;
	SELECT * INTO v FROM applications a WHERE a.lineage_id = p_cert_id AND a.kind = 'change'
		AND a.status IN ('open', 'pending', 'issued') ORDER BY a.created_at DESC LIMIT 1
		FOR UPDATE;
	IF FOUND AND v.status = 'open' AND v_rec.uscc IS NOT NULL
		AND v.subject->>'o' IS DISTINCT FROM v_rec.name THEN
		-- renamed again before the change was issued: the latest name
		UPDATE applications SET enterprise_name = v_rec.name,
			subject = subject || jsonb_build_object('o', v_rec.name) WHERE id = v.id;
		SELECT * INTO v FROM applications a WHERE a.id = v.id;
	END IF;
	IF FOUND AND (v.status = 'pending' OR v.status = 'open'
		OR (v.certificate_id = v_cert.id AND v.subject->>'o' = v_lin.enterprise_name)) THEN
		RETURN QUERY SELECT v.id, v.subject::text, v.status,
			CASE WHEN v.status = 'issued' THEN NULL ELSE v_lin.enterprise_name END;
		RETURN;
	END IF;
	IF v_rec.uscc IS NULL OR v_rec.name = v_lin.enterprise_name THEN
		RAISE EXCEPTION 'NO_CHANGE';
	END IF;
	INSERT INTO applications (id, order_id, applicant_account, account_id, type, lock_kind,
			holder, enterprise_name, uscc, subject, platforms, kind, lineage_id)
		VALUES (p_app, p_app, p_account, p_account, v_lin.type, v_lin.lock_kind, v_lin.holder,
			v_rec.name, v_lin.uscc, jsonb_build_object('c', 'CN', 'o', v_rec.name,
				'ou', v_lin.lock_kind, 'cn', v_lin.holder,
				'organization_identifier', v_lin.uscc),
			v_cert.platforms, 'change', p_cert_id);
	RETURN QUERY SELECT p_app, (SELECT a.subject::text FROM applications a WHERE a.id = p_app),
		'open'::text, v_lin.enterprise_name;
END
$$;

-- application_complete() of a change: the new certificate becomes the
-- lineage's latest (the old one superseded, not yet revoked), the lineage
-- takes the approved name, issuance.cert.renewed (order_id: the change's
-- id — no order).
CREATE FUNCTION change_complete(p_app uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_chain text)
RETURNS TABLE (o_certificate uuid, o_new boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
	v_prev certificates%ROWTYPE;
	v_lin lineages%ROWTYPE;
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app;
	SELECT * INTO v_lin FROM lineages WHERE id = v.lineage_id FOR UPDATE;
	SELECT * INTO v_prev FROM certificates WHERE cert_id = v.lineage_id AND replaced_by IS NULL;
	UPDATE certificates SET replaced_by = p_cert WHERE id = v_prev.id;
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, chain, source,
			replaces)
		VALUES (p_cert, v.lineage_id, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
			p_spki, p_key_type, p_not_before, p_not_after, v.platforms, p_pem, p_chain,
			'application', v_prev.id);
	UPDATE lineages SET enterprise_name = v.enterprise_name WHERE id = v.lineage_id;
	UPDATE applications SET status = 'issued', certificate_id = p_cert, issued_at = now(),
		lease_until = NULL, last_error = NULL WHERE id = p_app;
	PERFORM outbox_emit('issuance.cert.renewed', v.lineage_id::text, jsonb_build_object(
		'cert_id', v.lineage_id, 'serial', p_serial, 'issuer', p_issuer,
		'previous_serial', v_prev.serial, 'previous_issuer', v_prev.issuer,
		'uscc', v_lin.uscc, 'lock_kind', v_lin.lock_kind, 'lock_id', v_lin.lock_id,
		'account_id', v_lin.account_id, 'vendor', p_vendor,
		'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
		'platforms', to_jsonb(v.platforms), 'order_id', p_app,
		'fingerprint_sha256', p_fingerprint, 'renewed_at', rfc3339(now()),
		'reason', 'affiliation_changed'), p_event);
	RETURN QUERY SELECT p_cert, true;
END
$$;

-- The holder has the changed certificate (the issue answered it): the
-- certificate it replaced is revoked with affiliation_changed
-- (issuance.cert.revoked: auth refuses it, the CRL lists it). Idempotent;
-- nothing for a new certificate's application.
CREATE FUNCTION change_collected(p_app uuid, p_event uuid)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
	v_old certificates%ROWTYPE;
	v_lin lineages%ROWTYPE;
	v_at timestamptz := date_trunc('second', now());
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app;
	IF NOT FOUND OR v.kind <> 'change' OR v.status <> 'issued' THEN
		RETURN;
	END IF;
	SELECT o.* INTO v_old FROM certificates n JOIN certificates o ON o.id = n.replaces
		WHERE n.id = v.certificate_id FOR UPDATE OF o;
	IF NOT FOUND OR v_old.revoked_at IS NOT NULL THEN
		RETURN;
	END IF;
	SELECT * INTO v_lin FROM lineages WHERE id = v.lineage_id;
	UPDATE certificates SET revoked_at = v_at, revocation_reason = 'affiliation_changed'
		WHERE id = v_old.id;
	PERFORM outbox_emit('issuance.cert.revoked', v.lineage_id::text, jsonb_build_object(
		'cert_id', v.lineage_id, 'serial', v_old.serial, 'issuer', v_old.issuer,
		'reason', 'affiliation_changed', 'revoked_at', rfc3339(v_at), 'vendor', v_old.vendor,
		'account_id', v_lin.account_id, 'uscc', v_lin.uscc), p_event);
END
$$;
