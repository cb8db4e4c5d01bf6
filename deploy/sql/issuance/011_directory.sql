-- issuance: what the vendor directories and CA管理 need (issue 13).
-- A lineage learns its key (证书锁序列号, 介质服务商) and its first
-- application date from a vendor directory or an import; a certificate can
-- enter the registry from a vendor's directory before its holder logs in
-- (source 'sync'). Each vendor's directory is read from a cursor kept here.
-- Columns use IF NOT EXISTS: the import (another branch of the same issue)
-- adds the same facts.

ALTER TABLE lineages ADD COLUMN IF NOT EXISTS key_serial text;
ALTER TABLE lineages ADD COLUMN IF NOT EXISTS key_vendor text;
ALTER TABLE lineages ADD COLUMN IF NOT EXISTS applied_at timestamptz;

ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_source_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_source_check
	CHECK (source IN ('login', 'renewal', 'sync', 'import'));

-- CA管理 pages an enterprise's keys in notAfter order: the latest
-- certificate's notAfter is kept on its lineage (a trigger on certificates,
-- whoever writes them), so a page reads its rows from one index.
ALTER TABLE lineages ADD COLUMN IF NOT EXISTS not_after timestamptz;
UPDATE lineages l SET not_after = c.not_after FROM certificates c
	WHERE c.cert_id = l.id AND c.replaced_by IS NULL;

-- (search_path FROM CURRENT: the schema it was made in, whoever writes.)
CREATE FUNCTION lineage_latest_not_after() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE lineages SET not_after = NEW.not_after
		WHERE id = NEW.cert_id AND not_after IS DISTINCT FROM NEW.not_after;
	RETURN NULL;
END
$$;
CREATE TRIGGER certificates_latest_not_after AFTER INSERT OR UPDATE OF not_after, replaced_by
	ON certificates FOR EACH ROW WHEN (NEW.replaced_by IS NULL)
	EXECUTE FUNCTION lineage_latest_not_after();

CREATE INDEX IF NOT EXISTS lineages_uscc_not_after ON lineages (uscc, not_after, id);
CREATE INDEX IF NOT EXISTS lineages_account_not_after ON lineages (account_id, not_after, id);

-- CA管理's other sorts within one enterprise.
CREATE INDEX IF NOT EXISTS lineages_uscc_holder ON lineages (uscc, holder, id);
CREATE INDEX IF NOT EXISTS lineages_uscc_applied ON lineages (uscc, (COALESCE(applied_at, created_at)), id);
CREATE INDEX IF NOT EXISTS certificates_replaced_by ON certificates (replaced_by);

-- The cursor of each vendor's directory ("changed since"), opaque to us.
CREATE TABLE vendor_sync (
	vendor     text PRIMARY KEY,
	cursor     text,
	synced_at  timestamptz,
	last_error text,
	certs      bigint NOT NULL DEFAULT 0
);

-- A certificate listed by a vendor's directory: a new lineage and
-- issuance.cert.registered (the same event as a binding's, with no account
-- yet), or, when already known, the key's facts filled in. A serial reserved
-- by a pending renewal is that renewal's: left to renewal_complete().
CREATE FUNCTION sync_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_platforms text[], p_key_serial text, p_key_vendor text,
	p_applied_at timestamptz)
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_known uuid;
BEGIN
	SELECT c.cert_id INTO v_known FROM certificates c
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
	IF FOUND THEN
		UPDATE lineages l SET key_serial = COALESCE(p_key_serial, l.key_serial),
			key_vendor = COALESCE(p_key_vendor, l.key_vendor),
			applied_at = COALESCE(l.applied_at, p_applied_at)
			WHERE l.id = v_known;
		RETURN QUERY SELECT v_known, false;
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM issuances WHERE serial = p_serial AND status = 'pending') THEN
		RETURN;
	END IF;
	INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, key_serial,
			key_vendor, applied_at)
		VALUES (p_lineage, p_type, p_lock_kind, p_holder, p_enterprise, p_uscc, p_key_serial,
			p_key_vendor, COALESCE(p_applied_at, p_not_before));
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, source)
		VALUES (p_cert, p_lineage, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
			p_spki, p_key_type, p_not_before, p_not_after, p_platforms, p_pem, 'sync');
	PERFORM outbox_emit('issuance.cert.registered', p_lineage::text, jsonb_build_object('cert_id', p_lineage, 'serial', p_serial,
			'issuer', p_issuer, 'type', p_type, 'holder', p_holder,
			'enterprise_name', p_enterprise, 'uscc', p_uscc, 'lock_kind', p_lock_kind,
			'lock_id', NULL, 'vendor', p_vendor, 'account_id', NULL,
			'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
			'platforms', to_jsonb(p_platforms), 'fingerprint_sha256', p_fingerprint,
			'registered_at', rfc3339(now())), p_event);
	RETURN QUERY SELECT p_lineage, true;
END
$$;
