-- issuance 080: the ends of a change (自主变更, 040_subject_change.sql) that
-- 040/045 left out.
--
-- 1. A change application that is still open (no CSR yet) or failed is
--    closed when what it would change ends: the certificate it replaces is
--    revoked or cancelled (注销) — closed_reason cert_revoked — or its holder
--    no longer acts for the enterprise in the lock's role (holder_removed,
--    as for new certificates). Its issue is then refused APPLICATION_CLOSED
--    and a new change of a revoked certificate CERT_REVOKED. One pending at
--    the vendor, or issued, is left: the vendor may complete it.
-- 2. The old certificate a collected change revokes is forwarded to its
--    vendor CA through a vendor job, as a revocation by the operator is
--    (revoke_certificate, 002): a remote vendor's CRL and OCSP must say it
--    too, not only our registry and interop answer.
-- 3. A second rename gets its own change: change_application() answered the
--    issued change of the first rename again (its "asked again" branch did
--    not look whether the approved name had moved on since).

ALTER TABLE applications DROP CONSTRAINT IF EXISTS applications_closed_reason_check;
ALTER TABLE applications ADD CONSTRAINT applications_closed_reason_check
	CHECK (closed_reason IN ('order_cancelled', 'order_expired', 'order_refunded',
		'holder_removed', 'cert_revoked'));

CREATE FUNCTION change_close_on_revoke() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE applications SET status = 'closed', closed_at = now(),
		closed_reason = 'cert_revoked', lease_until = NULL
		WHERE lineage_id = NEW.cert_id AND kind = 'change' AND status IN ('open', 'failed');
	RETURN NULL;
END
$$;

CREATE TRIGGER certificates_change_close AFTER UPDATE OF revoked_at ON certificates
	FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
		AND NEW.replaced_by IS NULL)
	EXECUTE FUNCTION change_close_on_revoke();

CREATE OR REPLACE FUNCTION application_close_for_holder(p_account uuid, p_uscc text, p_role text)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	UPDATE applications SET status = 'closed', closed_at = now(),
		closed_reason = 'holder_removed', lease_until = NULL
		WHERE account_id = p_account AND uscc = p_uscc AND kind IN ('new', 'change')
		AND lock_kind = CASE p_role WHEN 'admin' THEN 'master' ELSE p_role END
		AND status IN ('open', 'failed');
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- change_collected (040) with the vendor job: p_job is the job's id, used
-- when the old certificate's vendor is one of p_forward (the remote
-- adapters). Returns whether it was forwarded (NULL: nothing revoked now).
DROP FUNCTION change_collected(uuid, uuid);
CREATE FUNCTION change_collected(p_app uuid, p_event uuid, p_job uuid, p_forward text[])
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
	v_old certificates%ROWTYPE;
	v_lin lineages%ROWTYPE;
	v_at timestamptz := date_trunc('second', now());
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app;
	IF NOT FOUND OR v.kind <> 'change' OR v.status <> 'issued' THEN
		RETURN NULL;
	END IF;
	SELECT o.* INTO v_old FROM certificates n JOIN certificates o ON o.id = n.replaces
		WHERE n.id = v.certificate_id FOR UPDATE OF o;
	IF NOT FOUND OR v_old.revoked_at IS NOT NULL THEN
		RETURN NULL;
	END IF;
	SELECT * INTO v_lin FROM lineages WHERE id = v.lineage_id;
	UPDATE certificates SET revoked_at = v_at, revocation_reason = 'affiliation_changed'
		WHERE id = v_old.id;
	PERFORM outbox_emit('issuance.cert.revoked', v.lineage_id::text, jsonb_build_object(
		'cert_id', v.lineage_id, 'serial', v_old.serial, 'issuer', v_old.issuer,
		'reason', 'affiliation_changed', 'revoked_at', rfc3339(v_at), 'vendor', v_old.vendor,
		'account_id', v_lin.account_id, 'uscc', v_lin.uscc), p_event);
	IF v_old.vendor = ANY (p_forward) THEN
		INSERT INTO vendor_jobs (id, kind, vendor, certificate_id, serial, issuer, reason,
				revoked_at)
			VALUES (p_job, 'revoke', v_old.vendor, v_old.id, v_old.serial, v_old.issuer,
				'affiliation_changed', v_at);
		RETURN true;
	END IF;
	RETURN false;
END
$$;

-- (040, with 3.) The change application of lineage p_cert_id for its holder p_account:
-- the open or pending one, else a new one (p_app) with the approved name.
-- Refuses CERT_NOT_FOUND (not the holder's), CERT_REVOKED, NO_CHANGE (the
-- subject already names the approved record, or no approved record).
CREATE OR REPLACE FUNCTION change_application(p_cert_id uuid, p_account uuid, p_app uuid)
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
		OR (v.certificate_id = v_cert.id AND v.subject->>'o' = v_lin.enterprise_name
			AND v_rec.name IS NOT DISTINCT FROM v_lin.enterprise_name)) THEN
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

