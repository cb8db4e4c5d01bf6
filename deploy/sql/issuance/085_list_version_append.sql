-- issuance 085: the enterprise registry's version without a hot row
-- (issue 16's PostgreSQL profile, tests/bench/pgprof.sh). 065 bumped one
-- row per enterprise (INSERT .. ON CONFLICT DO UPDATE) and held its lock
-- until the writing transaction committed: every renewal of one
-- enterprise waited for the one before it, WAL flush included (33 ms of
-- each renewal's 87 ms in its database batches at 16 concurrent, all of
-- it waiting on that row). A bump now appends a row to cert_list_changes
-- (no conflict, no wait); the version is the folded base in
-- cert_list_versions plus the count of appended rows, read in one
-- statement (one snapshot). Every committed bump raises it by one, as
-- before: an appended row becomes visible at its commit, and a fold
-- deletes rows and adds their count to the base in one transaction.
-- A bump folds now and then (1 in 16), and only when no other
-- transaction holds the base row (SKIP LOCKED): nobody waits for a fold.
CREATE TABLE cert_list_changes (
	uscc text NOT NULL
);
CREATE INDEX cert_list_changes_uscc ON cert_list_changes (uscc);

CREATE FUNCTION cert_list_fold(p_uscc text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	u text;
BEGIN
	FOREACH u IN ARRAY p_uscc LOOP
		-- (an INSERT .. ON CONFLICT would wait for a fold in progress:
		-- the base row is made once, by the first fold that finds none)
		IF NOT EXISTS (SELECT 1 FROM cert_list_versions WHERE uscc = u) THEN
			INSERT INTO cert_list_versions (uscc, version) VALUES (u, 0)
			ON CONFLICT (uscc) DO NOTHING;
		END IF;
		PERFORM 1 FROM cert_list_versions WHERE uscc = u
		FOR UPDATE SKIP LOCKED;
		IF FOUND THEN
			WITH d AS (DELETE FROM cert_list_changes WHERE uscc = u
				RETURNING 1)
			UPDATE cert_list_versions
			SET version = version + (SELECT count(*) FROM d)
			WHERE uscc = u;
		END IF;
	END LOOP;
END $$;

CREATE OR REPLACE FUNCTION cert_list_bump(p_uscc text[]) RETURNS void
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
	INSERT INTO cert_list_changes (uscc) SELECT u FROM unnest(v_new) u;
	PERFORM set_config('caplat_list.v' || md5(u), 'bumped', true)
	FROM unnest(v_new) u;
	IF random() < 0.0625 THEN
		PERFORM cert_list_fold(v_new);
	END IF;
END $$;

-- The version as services/issuance reads it (store.c) and tests check it.
CREATE FUNCTION cert_list_version(p_uscc text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT COALESCE((SELECT version FROM cert_list_versions
		WHERE uscc = p_uscc), 0)
		+ (SELECT count(*) FROM cert_list_changes WHERE uscc = p_uscc)
$$;
