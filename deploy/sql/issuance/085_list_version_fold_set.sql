-- issuance 085 (after 085_list_version_append): the fold in three
-- statements, whatever the number of enterprises (an import's bump names
-- thousands of them: one loop round per enterprise would make 1 in 16
-- import transactions slow). The same rules: base rows made once, folded
-- only where no other transaction holds them (SKIP LOCKED), the appended
-- rows deleted and their count added in this one transaction.
CREATE OR REPLACE FUNCTION cert_list_fold(p_uscc text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	INSERT INTO cert_list_versions (uscc, version)
	SELECT u, 0 FROM unnest(p_uscc) u
	WHERE NOT EXISTS (SELECT 1 FROM cert_list_versions v WHERE v.uscc = u)
	ORDER BY u
	ON CONFLICT (uscc) DO NOTHING;
	WITH l AS (
		SELECT uscc FROM cert_list_versions WHERE uscc = ANY (p_uscc)
		ORDER BY uscc FOR UPDATE SKIP LOCKED
	), d AS (
		DELETE FROM cert_list_changes c USING l WHERE c.uscc = l.uscc
		RETURNING c.uscc
	), n AS (
		SELECT uscc, count(*) AS k FROM d GROUP BY uscc
	)
	UPDATE cert_list_versions v SET version = v.version + n.k
	FROM n WHERE v.uscc = n.uscc;
END $$;
