-- issuance 065: the enterprise registry's version, for CA管理's list cache
-- (issue 13's latency goal). services/issuance keeps the rows of recent
-- list pages per process, keyed by (enterprise, statement, parameters),
-- and answers a repeated page from them while its enterprise's version is
-- still the one read before the page's rows were. Every write to what the
-- list shows bumps the version, here and not in the C callers, so that no
-- path can forget it (handlers, consumers, sweeps, imports, vendor sync, a
-- psql session): the lineage (holder, lock kind, binding, key, not_after),
-- its certificates (serial, validity, platforms, revocation, successor),
-- open orders and entitlements (the renewal state). Statement-level
-- triggers with transition tables: an import of 10^5 rows bumps each of
-- its enterprises once, not once per row. A certificate without an
-- enterprise (a person's) has no version: the list caches only an
-- enterprise administrator's pages.
CREATE TABLE cert_list_versions (
	uscc    text PRIMARY KEY,
	version bigint NOT NULL
);

-- Bumps each enterprise once per transaction (a renewal's batch writes
-- the lineage, two certificates, an entitlement: one bump; a transaction-
-- local setting remembers it, and a rolled-back savepoint forgets both),
-- in uscc order (concurrent bumps of several enterprises take the rows'
-- locks in one order: no deadlock between them).
CREATE FUNCTION cert_list_bump(p_uscc text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_new text[];
BEGIN
	SELECT array_agg(u ORDER BY u) INTO v_new
	FROM (SELECT DISTINCT u FROM unnest(p_uscc) u WHERE u IS NOT NULL
		AND current_setting('caplat_list.v' || md5(u), true)
			IS DISTINCT FROM 'bumped') s;
	IF v_new IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO cert_list_versions AS v (uscc, version)
	SELECT u, 1 FROM unnest(v_new) u ORDER BY u
	ON CONFLICT (uscc) DO UPDATE SET version = v.version + 1;
	PERFORM set_config('caplat_list.v' || md5(u), 'bumped', true)
	FROM unnest(v_new) u;
END $$;

-- (search_path FROM CURRENT: the schema it was made in, whoever writes.)
-- lineages carry the uscc themselves (an UPDATE that moves a lineage bumps
-- both enterprises).
CREATE FUNCTION cert_list_bump_lineages() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM cert_list_bump(ARRAY(SELECT DISTINCT uscc FROM new_rows));
	ELSIF TG_OP = 'UPDATE' THEN
		PERFORM cert_list_bump(ARRAY(SELECT uscc FROM new_rows
			UNION SELECT uscc FROM old_rows));
	ELSE
		PERFORM cert_list_bump(ARRAY(SELECT DISTINCT uscc FROM old_rows));
	END IF;
	RETURN NULL;
END $$;

-- certificates, open_orders, entitlements: through their lineage (cert_id).
CREATE FUNCTION cert_list_bump_by_cert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM cert_list_bump(ARRAY(SELECT DISTINCT l.uscc FROM new_rows r
			JOIN lineages l ON l.id = r.cert_id));
	ELSIF TG_OP = 'UPDATE' THEN
		PERFORM cert_list_bump(ARRAY(SELECT l.uscc FROM lineages l
			WHERE l.id IN (SELECT cert_id FROM new_rows
				UNION SELECT cert_id FROM old_rows)));
	ELSE
		PERFORM cert_list_bump(ARRAY(SELECT DISTINCT l.uscc FROM old_rows r
			JOIN lineages l ON l.id = r.cert_id));
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER lineages_list_version_ins AFTER INSERT ON lineages
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_lineages();
CREATE TRIGGER lineages_list_version_upd AFTER UPDATE ON lineages
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_lineages();
CREATE TRIGGER lineages_list_version_del AFTER DELETE ON lineages
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_lineages();

CREATE TRIGGER certificates_list_version_ins AFTER INSERT ON certificates
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER certificates_list_version_upd AFTER UPDATE ON certificates
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER certificates_list_version_del AFTER DELETE ON certificates
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();

CREATE TRIGGER open_orders_list_version_ins AFTER INSERT ON open_orders
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER open_orders_list_version_upd AFTER UPDATE ON open_orders
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER open_orders_list_version_del AFTER DELETE ON open_orders
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();

CREATE TRIGGER entitlements_list_version_ins AFTER INSERT ON entitlements
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER entitlements_list_version_upd AFTER UPDATE ON entitlements
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
CREATE TRIGGER entitlements_list_version_del AFTER DELETE ON entitlements
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cert_list_bump_by_cert();
