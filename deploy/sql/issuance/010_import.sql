-- issuance 010: bulk import of certificate records by an operator (issue 13).
-- A file is parsed and checked row by row on a worker thread, streamed with
-- COPY into the staging table import_rows and merged by import_merge() in
-- that same transaction, which also empties the staging rows: a refused,
-- failed or killed import leaves nothing, and the same file again changes
-- nothing.

-- What the old platform knew of the key: its vendor (介质服务商), its serial
-- (证书锁序列号) and the first application date.
ALTER TABLE lineages ADD COLUMN key_vendor text;
ALTER TABLE lineages ADD COLUMN key_serial text;
ALTER TABLE lineages ADD COLUMN first_applied_on date;

-- Platforms per certificate from data, never a default: a certificate
-- first seen at a login has unknown associations (platforms_known false,
-- platforms '{}') until an import says them; a renewal carries the set the
-- order paid for. Certificates registered before this migration keep the set
-- they were given.
ALTER TABLE certificates ADD COLUMN platforms_known boolean NOT NULL DEFAULT true;

ALTER TABLE certificates DROP CONSTRAINT certificates_source_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_source_check
	CHECK (source IN ('login', 'renewal', 'import'));

-- The platform catalogue as far as issuance needs it (the codes an import
-- may name): a read model of orders' orders.platform.listed events.
CREATE TABLE platform_catalogue (
	code       text PRIMARY KEY,
	name       text NOT NULL,
	active     boolean NOT NULL DEFAULT true,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per import: written when it is accepted (running), kept up to date
-- by the worker's own autocommit connection (rows_done, heartbeat_at), and
-- finished either in the import's transaction (done) or after its rollback
-- (checked, refused, failed). A running import whose heartbeat stopped (the
-- process died) reads as failed/INTERRUPTED.
CREATE TABLE imports (
	id           uuid PRIMARY KEY,
	staff_id     uuid,
	format       text NOT NULL CHECK (format IN ('csv', 'jsonl')),
	dry_run      boolean NOT NULL,
	status       text NOT NULL DEFAULT 'running'
		CHECK (status IN ('running', 'checked', 'done', 'refused', 'failed')),
	-- 'interrupted' is never stored: see import_status.
	bytes        bigint NOT NULL,
	rows_total   int,
	rows_done    int NOT NULL DEFAULT 0,
	inserted     int,
	updated      int,
	unchanged    int,
	error_count  int NOT NULL DEFAULT 0,
	errors       jsonb NOT NULL DEFAULT '[]',
	error        text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	heartbeat_at timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz
);
CREATE INDEX imports_running ON imports (created_at) WHERE status = 'running';

-- The import's worker holds the advisory lock (7013, import_lock_key(id))
-- for its whole transaction: a running import whose lock is gone (the
-- process was killed) after a grace of 5 s for the job to start is
-- 'interrupted'. Nothing of it was applied.
CREATE FUNCTION import_lock_key(p_id uuid) RETURNS int
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtext(p_id::text) & 2147483647 $$;

CREATE VIEW import_status AS
	SELECT i.*, CASE WHEN i.status = 'running' AND i.created_at < now() - interval '5 seconds'
			AND NOT EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory'
				AND k.classid = 7013 AND k.objid = import_lock_key(i.id)::oid
				AND k.objsubid = 2 AND k.granted)
		THEN 'interrupted' ELSE i.status END AS live_status
	FROM imports i;

-- The rows of the import in progress: written and emptied inside the
-- import's one transaction, so never visible to anyone else. Unlogged: a
-- crash loses nothing that was ever committed. No index: the merge reads
-- it whole.
CREATE UNLOGGED TABLE import_rows (
	import_id          uuid NOT NULL,
	line               int NOT NULL,
	issuer             text NOT NULL,
	serial             text NOT NULL,
	vendor             text NOT NULL,
	subject            text,
	fingerprint_sha256 text,
	spki_sha256        text,
	key_type           text,
	not_before         timestamptz NOT NULL,
	not_after          timestamptz NOT NULL,
	pem                text,
	type               text NOT NULL,
	lock_kind          text NOT NULL,
	holder             text NOT NULL,
	enterprise_name    text,
	uscc               text,
	key_vendor         text,
	key_serial         text,
	first_applied_on   date,
	platforms          text[] NOT NULL
);

-- The merge of the staged rows into the registry, set-based (one statement
-- for the new rows, one for the changed ones; events written straight into
-- the outbox as outbox_emit() would): rows whose (issuer, serial) is unknown
-- become a lineage and its certificate (source 'import') and an
-- issuance.cert.registered event; known rows whose data differ update the
-- lineage and the certificate's platforms, with one audit entry each
-- (p_audit: audit_event_data() of the operator's request, object fields
-- filled in here) and the registered event again so that orders learns the
-- new set; equal rows change nothing. One summary audit entry per import
-- that changed something. Empties the staging rows. Returns the counts.
CREATE FUNCTION import_merge(p_import uuid, p_audit jsonb)
RETURNS TABLE (o_inserted int, o_updated int, o_unchanged int)
LANGUAGE plpgsql AS $$
DECLARE
	v_ins int;
	v_upd int;
	v_all int;
BEGIN
	SELECT count(*) INTO v_all FROM import_rows WHERE import_id = p_import;

	WITH fresh AS MATERIALIZED (
		SELECT gen_random_uuid() AS lineage, gen_random_uuid() AS cert_row, s.*
		FROM import_rows s
		WHERE s.import_id = p_import AND NOT EXISTS (SELECT 1 FROM certificates c
			WHERE c.issuer = s.issuer AND c.serial = s.serial)),
	l AS (INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on)
		SELECT lineage, type, lock_kind, holder, enterprise_name, uscc,
			key_vendor, key_serial, first_applied_on FROM fresh),
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

-- A holder's binding of a certificate the registry already knows (an
-- import) now tells orders the account too: the registered event again
-- when the lineage gains its account. p_platforms NULL (a first sight at a
-- login) registers the associations as unknown. Otherwise as in
-- 002_functions.sql.
CREATE OR REPLACE FUNCTION register_certificate(p_lineage uuid, p_cert uuid, p_event uuid,
	p_issuer text, p_serial text, p_vendor text, p_subject text, p_fingerprint text,
	p_spki text, p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
	p_pem text, p_type text, p_lock_kind text, p_holder text, p_enterprise text,
	p_uscc text, p_lock_id uuid, p_account uuid, p_platforms text[])
RETURNS TABLE (o_cert_id uuid, o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_known uuid;
	v_had uuid;
BEGIN
	SELECT c.cert_id, l.account_id INTO v_known, v_had FROM certificates c
		JOIN lineages l ON l.id = c.cert_id
		WHERE c.issuer = p_issuer AND c.serial = p_serial;
	IF FOUND THEN
		UPDATE lineages l SET account_id = COALESCE(l.account_id, p_account),
			lock_id = COALESCE(l.lock_id, p_lock_id)
			WHERE l.id = v_known;
		UPDATE certificates c SET pem = COALESCE(c.pem, p_pem),
			spki_sha256 = COALESCE(c.spki_sha256, p_spki),
			fingerprint_sha256 = COALESCE(c.fingerprint_sha256, p_fingerprint),
			subject = COALESCE(c.subject, p_subject),
			key_type = COALESCE(c.key_type, p_key_type)
			WHERE c.issuer = p_issuer AND c.serial = p_serial;
		IF v_had IS NULL AND p_account IS NOT NULL THEN
			PERFORM outbox_emit('issuance.cert.registered', v_known::text,
				jsonb_build_object('cert_id', v_known, 'serial', c.serial,
				'issuer', c.issuer, 'type', l.type, 'holder', l.holder,
				'enterprise_name', l.enterprise_name, 'uscc', l.uscc,
				'lock_kind', l.lock_kind, 'lock_id', l.lock_id, 'vendor', c.vendor,
				'account_id', l.account_id, 'not_before', rfc3339(c.not_before),
				'not_after', rfc3339(c.not_after),
			'platforms', CASE WHEN c.platforms_known THEN to_jsonb(c.platforms) END,
			'platforms_known', c.platforms_known,
				'fingerprint_sha256', c.fingerprint_sha256,
				'registered_at', rfc3339(c.registered_at)), p_event)
				FROM certificates c JOIN lineages l ON l.id = c.cert_id
				WHERE l.id = v_known AND c.replaced_by IS NULL;
		END IF;
		RETURN QUERY SELECT v_known, false;
		RETURN;
	END IF;
	INSERT INTO lineages (id, type, lock_kind, holder, enterprise_name, uscc, lock_id, account_id)
		VALUES (p_lineage, p_type, p_lock_kind, p_holder, p_enterprise, p_uscc, p_lock_id, p_account);
	INSERT INTO certificates (id, cert_id, issuer, serial, vendor, subject, fingerprint_sha256,
			spki_sha256, key_type, not_before, not_after, platforms, platforms_known, pem, source)
		VALUES (p_cert, p_lineage, p_issuer, p_serial, p_vendor, p_subject, p_fingerprint,
			p_spki, p_key_type, p_not_before, p_not_after, COALESCE(p_platforms, '{}'),
			p_platforms IS NOT NULL, p_pem, 'login');
	PERFORM outbox_emit('issuance.cert.registered', p_lineage::text, jsonb_build_object('cert_id', p_lineage, 'serial', p_serial,
			'issuer', p_issuer, 'type', p_type, 'holder', p_holder,
			'enterprise_name', p_enterprise, 'uscc', p_uscc, 'lock_kind', p_lock_kind,
			'lock_id', p_lock_id, 'vendor', p_vendor, 'account_id', p_account,
			'not_before', rfc3339(p_not_before), 'not_after', rfc3339(p_not_after),
			'platforms', to_jsonb(p_platforms), 'platforms_known', p_platforms IS NOT NULL,
			'fingerprint_sha256', p_fingerprint, 'registered_at', rfc3339(now())), p_event);
	RETURN QUERY SELECT p_lineage, true;
END
$$;
