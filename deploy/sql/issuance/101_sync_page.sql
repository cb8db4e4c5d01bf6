-- issuance 101: the vendor directory sync applies a page in one set-based
-- call (issue 13 item 2). sync.c sent one sync_certificate() per listed
-- certificate (up to 200 in a page's batch); now sync_page() takes the page
-- as a JSON array (the certificates parsed by sync.c, in listing order) and
-- applies it with the rules of 100_sync_updates.sql in three statements:
-- the known certificates (what differs, one lineage and certificate write
-- each, audited certificate.synced / certificate.sync_revoked, announced
-- with issuance.cert.registered / issuance.cert.revoked), then the new ones
-- (a lineage, a certificate and issuance.cert.registered each; a serial
-- reserved by a pending renewal is left to it), then the revocations of new
-- ones listed revoked (after their registration, so consumers see the
-- certificate before its revocation). A certificate listed twice in a page
-- counts once (its last listing); a lineage listed by its latest
-- certificate takes that listing, by older ones only missing key facts.
-- sync_certificate() stays for single certificates (tests' fixtures).
-- p_items: [{lineage, cert, event, issuer, serial, vendor, subject,
-- fingerprint, spki, key_type, not_before, not_after, pem, type, lock_kind,
-- holder, enterprise, uscc, platforms (array or null), key_serial,
-- key_vendor, applied_at, revoked_at, reason}]; p_audit the audit entry
-- without its object (common/audit.h audit_event_data()).

CREATE FUNCTION sync_items(p_items jsonb)
RETURNS TABLE (n bigint, lineage uuid, cert uuid, event uuid, issuer text, serial text,
	vendor text, subject text, fingerprint text, spki text, key_type text,
	not_before timestamptz, not_after timestamptz, pem text, type text, lock_kind text,
	holder text, enterprise text, uscc text, platforms text[], key_serial text,
	key_vendor text, applied_at timestamptz, revoked_at timestamptz, reason text)
LANGUAGE sql STABLE AS $$
	SELECT DISTINCT ON (x.issuer, x.serial) e.n, x.lineage, x.cert, x.event, x.issuer,
		x.serial, x.vendor, x.subject, x.fingerprint, x.spki, x.key_type, x.not_before,
		x.not_after, x.pem, x.type, x.lock_kind, x.holder, x.enterprise, x.uscc,
		CASE WHEN jsonb_typeof(x.platforms) = 'array'
			THEN ARRAY(SELECT jsonb_array_elements_text(x.platforms)) END,
		x.key_serial, x.key_vendor, x.applied_at, date_trunc('second', x.revoked_at),
		CASE WHEN x.revoked_at IS NOT NULL THEN COALESCE(x.reason, 'unspecified') END
	FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(item, n)
	CROSS JOIN LATERAL jsonb_to_record(e.item) AS x(lineage uuid, cert uuid,
		event uuid, issuer text, serial text, vendor text, subject text, fingerprint text,
		spki text, key_type text, not_before timestamptz, not_after timestamptz, pem text,
		type text, lock_kind text, holder text, enterprise text, uscc text,
		platforms jsonb, key_serial text, key_vendor text, applied_at timestamptz,
		revoked_at timestamptz, reason text)
	ORDER BY x.issuer, x.serial, e.n DESC
$$;

CREATE FUNCTION sync_page(p_items jsonb, p_audit jsonb)
RETURNS TABLE (o_inserted int, o_updated int, o_revoked int)
LANGUAGE plpgsql AS $$
DECLARE
	v_ins int;
	v_upd int;
	v_rev int;
	v_rev2 int;
BEGIN
	-- the known certificates
	WITH k AS MATERIALIZED (
		SELECT s.*, c.id AS cert_row, c.replaced_by IS NULL AS latest, l.id AS lin,
			l.type AS l_type, l.holder AS l_holder, l.lock_kind AS l_kind,
			l.key_serial AS l_key_serial, l.key_vendor AS l_key_vendor,
			l.applied_at AS l_applied, l.uscc AS l_uscc, l.lock_id, l.account_id,
			l.enterprise_name AS l_enterprise, c.platforms AS c_platforms,
			c.platforms_known AS c_known, c.revoked_at AS c_revoked, c.serial AS c_serial,
			c.issuer AS c_issuer, c.vendor AS c_vendor, c.not_before AS c_not_before,
			c.not_after AS c_not_after, c.fingerprint_sha256 AS c_fingerprint,
			c.registered_at AS c_registered,
			CASE WHEN s.type = l.type THEN s.lock_kind ELSE l.lock_kind END AS new_kind,
			COALESCE(s.platforms, c.platforms) AS new_platforms,
			c.platforms_known OR s.platforms IS NOT NULL AS new_known
		FROM sync_items(p_items) s
		JOIN certificates c ON c.issuer = s.issuer AND c.serial = s.serial
		JOIN lineages l ON l.id = c.cert_id),
	-- per lineage, one listing: its latest certificate's, else the last
	-- older one's (which only fills missing key facts)
	one AS MATERIALIZED (
		SELECT DISTINCT ON (k.lin) k.*,
			CASE WHEN k.latest THEN k.holder ELSE k.l_holder END AS set_holder,
			CASE WHEN k.latest THEN k.new_kind ELSE k.l_kind END AS set_kind,
			CASE WHEN k.latest THEN COALESCE(k.key_serial, k.l_key_serial)
				ELSE COALESCE(k.l_key_serial, k.key_serial) END AS set_key_serial,
			CASE WHEN k.latest THEN COALESCE(k.key_vendor, k.l_key_vendor)
				ELSE COALESCE(k.l_key_vendor, k.key_vendor) END AS set_key_vendor,
			COALESCE(k.l_applied, k.applied_at) AS set_applied
		FROM k ORDER BY k.lin, k.latest DESC, k.n DESC),
	chg AS MATERIALIZED (
		SELECT * FROM one
		WHERE (l_holder, l_kind, l_key_serial, l_key_vendor, l_applied)
			IS DISTINCT FROM (set_holder, set_kind, set_key_serial, set_key_vendor, set_applied)
		OR latest AND (c_platforms, c_known) IS DISTINCT FROM (new_platforms, new_known)),
	ul AS (UPDATE lineages l SET holder = x.set_holder, lock_kind = x.set_kind,
			key_serial = x.set_key_serial, key_vendor = x.set_key_vendor,
			applied_at = x.set_applied
		FROM chg x WHERE l.id = x.lin
		AND (l.holder, l.lock_kind, l.key_serial, l.key_vendor, l.applied_at)
			IS DISTINCT FROM (x.set_holder, x.set_kind, x.set_key_serial, x.set_key_vendor,
				x.set_applied)),
	-- the certificates' own writes: platforms of a latest one, a revocation
	cw AS MATERIALIZED (
		SELECT k.cert_row, k.lin, k.c_serial, k.c_issuer, k.c_vendor, k.account_id, k.l_uscc,
			k.vendor,
			CASE WHEN k.latest AND k.lin IN (SELECT lin FROM chg WHERE latest)
				THEN k.new_platforms ELSE k.c_platforms END AS set_platforms,
			CASE WHEN k.latest AND k.lin IN (SELECT lin FROM chg WHERE latest)
				THEN k.new_known ELSE k.c_known END AS set_known,
			k.c_revoked IS NULL AND k.revoked_at IS NOT NULL AS revoke,
			k.revoked_at, k.reason
		FROM k),
	uc AS (UPDATE certificates c SET platforms = x.set_platforms, platforms_known = x.set_known,
			revoked_at = CASE WHEN x.revoke THEN x.revoked_at ELSE c.revoked_at END,
			revocation_reason = CASE WHEN x.revoke THEN x.reason ELSE c.revocation_reason END
		FROM cw x WHERE c.id = x.cert_row
		AND ((c.platforms, c.platforms_known) IS DISTINCT FROM (x.set_platforms, x.set_known)
			OR x.revoke)),
	au AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.audit.recorded', x.lin::text,
			p_audit || jsonb_build_object('object_id', x.lin::text, 'uscc', x.l_uscc,
			'before', jsonb_build_object('holder', x.l_holder, 'lock_kind', x.l_kind,
				'key_serial', x.l_key_serial, 'key_vendor', x.l_key_vendor,
				'applied_at', rfc3339(x.l_applied),
				'platforms', CASE WHEN x.c_known THEN to_jsonb(x.c_platforms) END),
			'after', jsonb_build_object('holder', x.set_holder, 'lock_kind', x.set_kind,
				'key_serial', x.set_key_serial, 'key_vendor', x.set_key_vendor,
				'applied_at', rfc3339(x.set_applied),
				'platforms', CASE WHEN x.latest AND x.new_known THEN to_jsonb(x.new_platforms)
					WHEN NOT x.latest AND x.c_known THEN to_jsonb(x.c_platforms) END,
				'vendor', x.vendor, 'serial', x.serial))
		FROM chg x ORDER BY x.n),
	ev AS (INSERT INTO outbox (id, type, subject, data)
		SELECT x.event, 'issuance.cert.registered', x.lin::text,
			jsonb_build_object('cert_id', x.lin, 'serial', x.c_serial,
			'issuer', x.c_issuer, 'type', x.l_type, 'holder', x.set_holder,
			'enterprise_name', x.l_enterprise, 'uscc', x.l_uscc,
			'lock_kind', x.set_kind, 'lock_id', x.lock_id,
			'vendor', x.c_vendor, 'account_id', x.account_id,
			'not_before', rfc3339(x.c_not_before), 'not_after', rfc3339(x.c_not_after),
			'platforms', CASE WHEN x.new_known THEN to_jsonb(x.new_platforms) END,
			'platforms_known', x.new_known, 'fingerprint_sha256', x.c_fingerprint,
			'registered_at', rfc3339(x.c_registered))
		FROM chg x WHERE x.latest
		AND (x.l_holder, x.l_kind, x.c_platforms, x.c_known)
			IS DISTINCT FROM (x.set_holder, x.set_kind, x.new_platforms, x.new_known)
		ORDER BY x.n),
	rv AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), t.type, x.lin::text, t.data
		FROM cw x, LATERAL (VALUES (1, 'issuance.cert.revoked',
			jsonb_build_object('cert_id', x.lin, 'serial', x.c_serial,
				'issuer', x.c_issuer, 'reason', x.reason, 'revoked_at', rfc3339(x.revoked_at),
				'vendor', x.c_vendor, 'account_id', x.account_id, 'uscc', x.l_uscc)),
			(2, 'issuance.audit.recorded',
			p_audit || jsonb_build_object('action', 'certificate.sync_revoked',
				'object_id', x.lin::text, 'uscc', x.l_uscc,
				'before', jsonb_build_object('serial', x.c_serial, 'revoked_at', NULL),
				'after', jsonb_build_object('serial', x.c_serial,
					'revoked_at', rfc3339(x.revoked_at), 'reason', x.reason,
					'vendor', x.vendor)))) AS t(o, type, data)
		WHERE x.revoke ORDER BY x.cert_row, t.o)
	SELECT (SELECT count(*) FROM chg), (SELECT count(*) FROM cw WHERE revoke)
		INTO v_upd, v_rev;

	-- the new certificates
	WITH fresh AS MATERIALIZED (
		SELECT s.* FROM sync_items(p_items) s
		WHERE NOT EXISTS (SELECT 1 FROM certificates c
			WHERE c.issuer = s.issuer AND c.serial = s.serial)
		AND NOT EXISTS (SELECT 1 FROM issuances i
			WHERE i.serial = s.serial AND i.status = 'pending')),
	l AS (INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc,
			key_serial, key_vendor, applied_at)
		SELECT f.lineage, f.type, f.lock_kind, f.holder, f.enterprise, f.uscc, f.key_serial,
			f.key_vendor, COALESCE(f.applied_at, f.not_before)
		FROM fresh f ORDER BY f.n),
	c AS (INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject,
			fingerprint_sha256, spki_sha256, key_type, not_before, not_after, platforms,
			platforms_known, pem, source)
		SELECT f.cert, f.lineage, f.issuer, f.serial, f.vendor, f.subject, f.fingerprint,
			f.spki, f.key_type, f.not_before, f.not_after, COALESCE(f.platforms, '{}'),
			f.platforms IS NOT NULL, f.pem, 'sync'
		FROM fresh f ORDER BY f.n),
	ev AS (INSERT INTO outbox (id, type, subject, data)
		SELECT f.event, 'issuance.cert.registered', f.lineage::text,
			jsonb_build_object('cert_id', f.lineage, 'serial', f.serial,
			'issuer', f.issuer, 'type', f.type, 'holder', f.holder,
			'enterprise_name', f.enterprise, 'uscc', f.uscc, 'lock_kind', f.lock_kind,
			'lock_id', NULL, 'vendor', f.vendor, 'account_id', NULL,
			'not_before', rfc3339(f.not_before), 'not_after', rfc3339(f.not_after),
			'platforms', to_jsonb(f.platforms), 'platforms_known', f.platforms IS NOT NULL,
			'fingerprint_sha256', f.fingerprint, 'registered_at', rfc3339(now()))
		FROM fresh f ORDER BY f.n)
	SELECT count(*) INTO v_ins FROM fresh;

	-- new certificates listed revoked: after their registration
	WITH r AS MATERIALIZED (
		UPDATE certificates c SET revoked_at = s.revoked_at, revocation_reason = s.reason
		FROM sync_items(p_items) s
		WHERE c.id = s.cert AND s.revoked_at IS NOT NULL AND c.revoked_at IS NULL
		RETURNING c.cert_id, c.serial, c.issuer, c.vendor, s.revoked_at, s.reason),
	o AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), t.type, r.cert_id::text, t.data
		FROM r JOIN lineages l ON l.id = r.cert_id,
		LATERAL (VALUES (1, 'issuance.cert.revoked',
			jsonb_build_object('cert_id', r.cert_id, 'serial', r.serial,
				'issuer', r.issuer, 'reason', r.reason, 'revoked_at', rfc3339(r.revoked_at),
				'vendor', r.vendor, 'account_id', NULL, 'uscc', l.uscc)),
			(2, 'issuance.audit.recorded',
			p_audit || jsonb_build_object('action', 'certificate.sync_revoked',
				'object_id', r.cert_id::text, 'uscc', l.uscc,
				'before', jsonb_build_object('serial', r.serial, 'revoked_at', NULL),
				'after', jsonb_build_object('serial', r.serial,
					'revoked_at', rfc3339(r.revoked_at), 'reason', r.reason,
					'vendor', r.vendor)))) AS t(o, type, data)
		ORDER BY r.serial, t.o)
	SELECT count(*) INTO v_rev2 FROM r;

	RETURN QUERY SELECT v_ins, v_upd, v_rev + v_rev2;
END
$$;

-- One certificate, as 011's sync_certificate() was called (tests' fixtures):
-- sync_page() of that one listing, actor system:issuance; the rules live in
-- sync_page() alone (100's per-certificate form is gone).
CREATE OR REPLACE FUNCTION sync_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_platforms text[], p_key_serial text, p_key_vendor text,
	p_applied_at timestamptz)
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_ins int;
BEGIN
	SELECT o_inserted INTO v_ins FROM sync_page(jsonb_build_array(jsonb_build_object(
		'lineage', p_lineage, 'cert', p_cert, 'event', p_event, 'issuer', p_issuer,
		'serial', p_serial, 'vendor', p_vendor, 'subject', p_subject,
		'fingerprint', p_fingerprint, 'spki', p_spki, 'key_type', p_key_type,
		'not_before', p_not_before, 'not_after', p_not_after, 'pem', p_pem, 'type', p_type,
		'lock_kind', p_lock_kind, 'holder', p_holder, 'enterprise', p_enterprise,
		'uscc', p_uscc, 'platforms', to_jsonb(p_platforms), 'key_serial', p_key_serial,
		'key_vendor', p_key_vendor, 'applied_at', p_applied_at)),
		jsonb_build_object('actor', jsonb_build_object('type', 'system',
			'id', 'system:issuance'), 'service', 'issuance',
			'action', 'certificate.synced', 'object_type', 'certificate'));
	RETURN QUERY SELECT c.cert_id, v_ins > 0 FROM certificates c
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
END
$$;

DROP FUNCTION sync_certificate(uuid, uuid, uuid, text, text, text, text, text, text, text,
	timestamptz, timestamptz, text, text, text, text, text, text, text[], text, text,
	timestamptz, timestamptz, text, jsonb);
