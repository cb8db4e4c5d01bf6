-- issuance 050: the import's merge, set-based for real (issue 13's rate goal).
-- Profiled with auto_explain (log_nested_statements) on 10^5 staged rows:
-- the set-based statements were fast, but every certificate inserted fired
-- certificates_latest_not_after, a per-row PL/pgSQL trigger whose UPDATE
-- rewrote the lineage just inserted (not_after NULL → the certificate's),
-- i.e. 10^5 more row versions and index entries in 8 indexes. Now:
-- - the import writes the lineage's not_after itself, in the same INSERT,
--   and the trigger on INSERT skips source 'import' (its WHEN clause,
--   evaluated without calling the function); on UPDATE it is unchanged;
-- - the changed-rows statement runs before the fresh rows are inserted, so
--   its join never meets them;
-- - the staging table is analysed before the merge, the merge runs with
--   nested loops off (hash joins over the whole staged set, whatever the
--   statistics) and work_mem 64MB for its hashes;
-- (Dropping the redundant lineages_uscc / lineages_account was tried and
-- undone: no gain could be shown on this noisy machine, and one slow run
-- spent its time in the foreign-key checks' index scans; not understood.)

DROP TRIGGER certificates_latest_not_after ON certificates;
CREATE TRIGGER certificates_latest_not_after_ins AFTER INSERT ON certificates
	FOR EACH ROW WHEN (NEW.replaced_by IS NULL AND NEW.source <> 'import')
	EXECUTE FUNCTION lineage_latest_not_after();
CREATE TRIGGER certificates_latest_not_after_upd AFTER UPDATE OF not_after, replaced_by
	ON certificates FOR EACH ROW WHEN (NEW.replaced_by IS NULL)
	EXECUTE FUNCTION lineage_latest_not_after();


CREATE OR REPLACE FUNCTION import_merge(p_import uuid, p_audit jsonb)
RETURNS TABLE (o_inserted int, o_updated int, o_unchanged int)
LANGUAGE plpgsql
SET work_mem = '64MB' SET enable_nestloop = off AS $$
DECLARE
	v_ins int;
	v_upd int;
	v_all int;
BEGIN
	-- The staged rows were never analysed: in profiling, with dead rows of
	-- earlier imports in the table, the planner took 10^5 rows for one and
	-- chose a nested loop over a whole index per row (27 s).
	ANALYZE import_rows;
	SELECT count(*) INTO v_all FROM import_rows WHERE import_id = p_import;

	-- Known rows first, so that this join never meets the rows inserted
	-- just below.
	WITH chg AS MATERIALIZED (
		SELECT s.*, c.id AS cert_row, l.id AS lineage, l.lock_id, l.account_id,
			COALESCE(s.enterprise_name, l.enterprise_name) AS enterprise,
			c.fingerprint_sha256 AS fingerprint, c.registered_at, c.vendor AS cert_vendor,
			c.not_before AS cert_not_before, c.not_after AS cert_not_after,
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
		FROM chg x WHERE c.id = x.cert_row),
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
		SELECT gen_random_uuid(), 'issuance.cert.registered', x.lineage::text,
			jsonb_build_object('cert_id', x.lineage, 'serial', x.serial,
			'issuer', x.issuer, 'type', x.type, 'holder', x.holder,
			'enterprise_name', x.enterprise, 'uscc', x.uscc,
			'lock_kind', x.lock_kind, 'lock_id', x.lock_id, 'vendor', x.cert_vendor,
			'account_id', x.account_id, 'not_before', rfc3339(x.cert_not_before),
			'not_after', rfc3339(x.cert_not_after), 'platforms', to_jsonb(x.platforms),
			'platforms_known', true, 'fingerprint_sha256', x.fingerprint,
			'registered_at', rfc3339(x.registered_at))
		FROM chg x)
	SELECT count(*) INTO v_upd FROM chg;

	WITH fresh AS MATERIALIZED (
		SELECT gen_random_uuid() AS lineage, gen_random_uuid() AS cert_row, s.*
		FROM import_rows s
		WHERE s.import_id = p_import AND NOT EXISTS (SELECT 1 FROM certificates c
			WHERE c.issuer = s.issuer AND c.serial = s.serial)),
	l AS (INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on, not_after)
		SELECT lineage, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on, not_after FROM fresh),
	c AS (INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject,
			fingerprint_sha256, spki_sha256, key_type, not_before, not_after,
			platforms, pem, source)
		SELECT cert_row, lineage, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, pem, 'import'
		FROM fresh),
	e AS (INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.cert.registered', f.lineage::text,
			jsonb_build_object('cert_id', f.lineage, 'serial', f.serial,
			'issuer', f.issuer, 'type', f.type, 'holder', f.holder,
			'enterprise_name', f.enterprise_name, 'uscc', f.uscc,
			'lock_kind', f.lock_kind, 'lock_id', NULL, 'vendor', f.vendor,
			'account_id', NULL, 'not_before', rfc3339(f.not_before),
			'not_after', rfc3339(f.not_after), 'platforms', to_jsonb(f.platforms),
			'platforms_known', true, 'fingerprint_sha256', f.fingerprint_sha256,
			'registered_at', rfc3339(now()))
		FROM fresh f)
	SELECT count(*) INTO v_ins FROM fresh;

	IF v_ins + v_upd > 0 THEN
		PERFORM outbox_emit('issuance.audit.recorded', p_import::text,
			p_audit || jsonb_build_object('action', 'certificates.imported',
				'object_type', 'import', 'object_id', p_import::text, 'uscc', NULL,
				'before', NULL, 'after', jsonb_build_object('rows', v_all,
					'inserted', v_ins, 'updated', v_upd,
					'unchanged', v_all - v_ins - v_upd)));
	END IF;
	DELETE FROM import_rows WHERE import_id = p_import;
	RETURN QUERY SELECT v_ins, v_upd, v_all - v_ins - v_upd;
END
$$;
