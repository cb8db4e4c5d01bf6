-- issuance 091: the import's merge without its per-row SQL functions and
-- with a compact event (issue 13's import rate goal). Measured on 10^5
-- staged rows (EXPLAIN ANALYZE of each statement, load ~3 on 2 cores):
-- - the issuance.certs.imported batches took 1.0–1.15 s: one
--   json_build_object of 17 keys per certificate, two rfc3339() calls,
--   json_agg of the objects, then the text parsed again as jsonb. Now each
--   batch of 500 is one jsonb object of arrays, one per field (element i of
--   every array is the i-th certificate, in line order), built with one
--   array_agg per field (0.34 s). Fields no consumer reads are gone
--   (fingerprint_sha256, lock_id, platforms_known: orders reads cert_id,
--   serial, type, holder, enterprise_name, uscc, lock_kind, vendor,
--   account_id, validity, platforms and registered_at; auth cert_id,
--   issuer, serial, account_id). proto/events/issuance.certs.imported.json;
--   orders and auth read both this layout and the one before it (events
--   in flight during an upgrade);
-- - the new rows' ids: import_uuid() per row, twice, was 0.3–0.4 s (string
--   functions and gen_random_uuid()); the job now writes both ids into the
--   staged row (services/issuance/import.c: the same RFC 9562 version 7
--   layout, the job's clock taken under the import lock, the line as the
--   counter, 32 random bits from the CSPRNG);
-- - ANALYZE of the staged rows read every column (the PEM too) for
--   statistics only the joins on (issuer, serial) use: 85 → 26 ms with the
--   join columns alone (the row count, what the plan needs most, is the
--   same).
ALTER TABLE import_rows ADD COLUMN lineage_id uuid;
ALTER TABLE import_rows ADD COLUMN cert_row uuid;

CREATE OR REPLACE FUNCTION import_merge(p_import uuid, p_audit jsonb)
RETURNS TABLE (o_inserted int, o_updated int, o_unchanged int)
LANGUAGE plpgsql
SET work_mem = '64MB' SET enable_nestloop = off AS $$
DECLARE
	v_ins int;
	v_upd int;
	v_all int;
	v_now text := rfc3339(now());
BEGIN
	-- (060: never analysed, the planner took 10^5 staged rows for one)
	ANALYZE import_rows (import_id, issuer, serial);
	SELECT count(*) INTO v_all FROM import_rows WHERE import_id = p_import;

	-- Known rows first, so that this join never meets the rows inserted
	-- just below.
	WITH chg AS MATERIALIZED (
		SELECT s.*, c.id AS cert, l.id AS lineage, l.account_id,
			COALESCE(s.enterprise_name, l.enterprise_name) AS enterprise,
			rfc3339(c.registered_at) AS registered, c.vendor AS cert_vendor,
			rfc3339(c.not_before) AS cert_not_before,
			rfc3339(c.not_after) AS cert_not_after,
			jsonb_build_object('holder', l.holder, 'lock_kind', l.lock_kind,
				'uscc', l.uscc, 'key_vendor', l.key_vendor, 'key_serial', l.key_serial,
				'first_applied_on', l.first_applied_on,
				'platforms', CASE WHEN c.platforms_known THEN to_jsonb(c.platforms) END)
				AS before
		FROM import_rows s
		JOIN certificates c ON c.issuer = s.issuer AND c.serial = s.serial
		JOIN lineages l ON l.id = c.cert_id
		WHERE s.import_id = p_import
		AND (l.holder, l.lock_kind, l.uscc, l.key_vendor, l.key_serial,
			l.first_applied_on, c.platforms, c.platforms_known)
		IS DISTINCT FROM (s.holder, s.lock_kind, s.uscc, s.key_vendor, s.key_serial,
			s.first_applied_on, s.platforms, true)),
	ul AS (UPDATE lineages l SET holder = x.holder, lock_kind = x.lock_kind, type = x.type,
			uscc = x.uscc, enterprise_name = x.enterprise, key_vendor = x.key_vendor,
			key_serial = x.key_serial, first_applied_on = x.first_applied_on
		FROM chg x WHERE l.id = x.lineage),
	uc AS (UPDATE certificates c SET platforms = x.platforms, platforms_known = true
		FROM chg x WHERE c.id = x.cert),
	au AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.audit.recorded', x.lineage::text,
			p_audit || jsonb_build_object('action', 'certificate.imported',
				'object_type', 'certificate', 'object_id', x.lineage::text,
				'uscc', x.uscc, 'before', x.before,
				'after', jsonb_build_object('holder', x.holder,
					'lock_kind', x.lock_kind, 'uscc', x.uscc,
					'key_vendor', x.key_vendor, 'key_serial', x.key_serial,
					'first_applied_on', x.first_applied_on,
					'platforms', to_jsonb(x.platforms), 'import_id', p_import))
		FROM chg x),
	ev AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.certs.imported', p_import::text,
			jsonb_build_object('import_id', p_import, 'count', count(*),
				'cert_id', to_jsonb(array_agg(b.lineage)),
				'issuer', to_jsonb(array_agg(b.issuer)),
				'serial', to_jsonb(array_agg(b.serial)),
				'type', to_jsonb(array_agg(b.type)),
				'holder', to_jsonb(array_agg(b.holder)),
				'enterprise_name', to_jsonb(array_agg(b.enterprise)),
				'uscc', to_jsonb(array_agg(b.uscc)),
				'lock_kind', to_jsonb(array_agg(b.lock_kind)),
				'vendor', to_jsonb(array_agg(b.cert_vendor)),
				'account_id', to_jsonb(array_agg(b.account_id)),
				'not_before', to_jsonb(array_agg(b.cert_not_before)),
				'not_after', to_jsonb(array_agg(b.cert_not_after)),
				'platforms', jsonb_agg(b.platforms),
				'registered_at', to_jsonb(array_agg(b.registered)))
		FROM (SELECT (row_number() OVER (ORDER BY x.line) - 1) / 500 AS g, x.*
			FROM chg x ORDER BY 1, x.line) b
		GROUP BY b.g ORDER BY b.g)
	SELECT count(*) INTO v_upd FROM chg;

	WITH fresh AS MATERIALIZED (
		SELECT (row_number() OVER (ORDER BY s.line) - 1) / 500 AS g, s.*
		FROM import_rows s
		WHERE s.import_id = p_import AND NOT EXISTS (SELECT 1 FROM certificates c
			WHERE c.issuer = s.issuer AND c.serial = s.serial)
		ORDER BY s.line),
	l AS (INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on, not_after)
		SELECT lineage_id, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on, not_after FROM fresh),
	c AS (INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject,
			fingerprint_sha256, spki_sha256, key_type, not_before, not_after,
			platforms, pem, source)
		SELECT cert_row, lineage_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, 'import'
		FROM fresh),
	e AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.certs.imported', p_import::text,
			jsonb_build_object('import_id', p_import, 'count', count(*),
				'cert_id', to_jsonb(array_agg(f.lineage_id)),
				'issuer', to_jsonb(array_agg(f.issuer)),
				'serial', to_jsonb(array_agg(f.serial)),
				'type', to_jsonb(array_agg(f.type)),
				'holder', to_jsonb(array_agg(f.holder)),
				'enterprise_name', to_jsonb(array_agg(f.enterprise_name)),
				'uscc', to_jsonb(array_agg(f.uscc)),
				'lock_kind', to_jsonb(array_agg(f.lock_kind)),
				'vendor', to_jsonb(array_agg(f.vendor)),
				'account_id', to_jsonb(array_agg(NULL::uuid)),
				'not_before', to_jsonb(array_agg(rfc3339(f.not_before))),
				'not_after', to_jsonb(array_agg(rfc3339(f.not_after))),
				'platforms', jsonb_agg(f.platforms),
				'registered_at', to_jsonb(array_agg(v_now)))
		FROM (SELECT * FROM fresh ORDER BY g, line) f
		GROUP BY f.g ORDER BY f.g)
	SELECT count(*) INTO v_ins FROM fresh;

	IF v_ins + v_upd > 0 THEN
		PERFORM outbox_emit('issuance.audit.recorded', p_import::text,
			p_audit || jsonb_build_object('action', 'certificates.imported',
				'object_type', 'import', 'object_id', p_import::text, 'uscc', NULL,
				'before', NULL, 'after', jsonb_build_object('rows', v_all,
					'inserted', v_ins, 'updated', v_upd,
					'unchanged', v_all - v_ins - v_upd)));
	END IF;
	TRUNCATE import_rows;
	RETURN QUERY SELECT v_ins, v_upd, v_all - v_ins - v_upd;
END
$$;
