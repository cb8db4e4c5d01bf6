-- 096_audit_flush_delete — the audit flush (050_audit_batch) takes the held
-- entries out of the outbox instead of marking them published (issue 12's
-- cost goal, tests/bench/audit.sh). Marking rewrote each held row (a new
-- row version and two index entries: published_at is in both partial
-- indexes' predicates, so the update is never HOT) and the relay's cleanup
-- deleted it a day later; now the flush deletes it, once. Nothing is lost:
-- each entry travels, whole and in order, in the "<svc>.audit.batch" event
-- written in the same transaction, which stays in the outbox a day like any
-- published event (the relay can send it again after a loss on the NATS
-- side). Each batch entry now also carries the held row's seq and subject,
-- so the view audit_outbox below shows every entry of this schema's outbox,
-- held or flushed, as the rows looked. The batch's size cap reads the
-- stored size of each entry (pg_column_size), not the length of its text
-- (a jsonb-to-text conversion per entry), unless the entry is stored
-- compressed. Applied into every service schema.
CREATE OR REPLACE FUNCTION audit_flush(p_limit int) RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT AS $$
DECLARE
    v_seqs bigint[];
    v_n int;
    v_entries jsonb;
BEGIN
    SELECT array_agg(seq ORDER BY seq) INTO v_seqs FROM (
        SELECT seq, sum(len) OVER (ORDER BY seq) - len AS before_it
        FROM (SELECT seq, CASE WHEN pg_column_compression(data) IS NULL
                      THEN pg_column_size(data) ELSE octet_length(data::text) END AS len
              FROM outbox WHERE published_at = 'infinity'
              ORDER BY seq LIMIT p_limit FOR UPDATE SKIP LOCKED) held
    ) w WHERE before_it < 524288;
    IF v_seqs IS NULL THEN
        RETURN 0;
    END IF;
    WITH sent AS (
        DELETE FROM outbox WHERE seq = ANY (v_seqs)
        RETURNING seq, id, type, subject, created_at, data
    )
    SELECT count(*), jsonb_agg(jsonb_build_object('id', id, 'type', type,
               'time', created_at, 'seq', seq, 'subject', subject, 'data', data)
               ORDER BY seq)
        INTO v_n, v_entries FROM sent;
    PERFORM outbox_emit(current_schema() || '.audit.batch', NULL,
        jsonb_build_object('entries', v_entries));
    RETURN v_n;
END
$$;

-- Every audit entry of this schema still in its outbox, held (its own row)
-- or flushed (inside a <svc>.audit.batch event, kept a day), with the
-- columns its row had. An entry flushed before this migration is shown by
-- its row, still there marked published, not again from its batch.
CREATE OR REPLACE VIEW audit_outbox AS
    SELECT seq, id, type, subject, created_at, data FROM outbox
    WHERE type LIKE '%.audit.recorded'
    UNION ALL
    SELECT (e->>'seq')::bigint, (e->>'id')::uuid, e->>'type', e->>'subject',
        (e->>'time')::timestamptz, e->'data'
    FROM outbox b CROSS JOIN LATERAL jsonb_array_elements(b.data->'entries') e
    WHERE b.type LIKE '%.audit.batch'
        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = (e->>'id')::uuid);
