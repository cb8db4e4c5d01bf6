-- 050_audit_batch — audit entries travel to the chain in batches (issue 12's
-- cost goal). A "<svc>.audit.recorded" row is still written to the outbox in
-- the action's own transaction (common/audit.c, outbox_emit() in SQL), so an
-- action never commits without its entry; but instead of one JetStream
-- message and one consumer transaction per entry, the row is held
-- (published_at = 'infinity': the relay publishes only NULL rows and trims
-- only rows published a day ago) and audit_flush(), run by every service
-- process on a short timer (common/audit.c, CAPLAT_AUDIT_FLUSH_MS), turns up
-- to p_limit held rows (and at most 512 KiB of data) into ONE
-- "<schema>.audit.batch" event, in order, marking them published in the
-- same transaction. auth appends a batch to the chain in one transaction
-- (deploy/sql/auth/050_audit_batch.sql). Held rows survive a crash and are
-- flushed by the next process. Applied into every service schema.

CREATE OR REPLACE FUNCTION outbox_audit_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.published_at := 'infinity';
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER outbox_audit_hold
    BEFORE INSERT ON outbox
    FOR EACH ROW
    WHEN (NEW.type LIKE '%.audit.recorded' AND NEW.published_at IS NULL)
    EXECUTE FUNCTION outbox_audit_hold();

CREATE INDEX IF NOT EXISTS outbox_audit_held_idx
    ON outbox (seq) WHERE published_at = 'infinity';

-- Returns the number of entries sent (0 when none were held).
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
        FROM (SELECT seq, octet_length(data::text) AS len FROM outbox
              WHERE published_at = 'infinity'
              ORDER BY seq LIMIT p_limit FOR UPDATE SKIP LOCKED) held
    ) w WHERE before_it < 524288;
    IF v_seqs IS NULL THEN
        RETURN 0;
    END IF;
    WITH sent AS (
        UPDATE outbox SET published_at = now() WHERE seq = ANY (v_seqs)
        RETURNING seq, id, type, created_at, data
    )
    SELECT count(*), jsonb_agg(jsonb_build_object('id', id, 'type', type,
               'time', created_at, 'data', data) ORDER BY seq)
        INTO v_n, v_entries FROM sent;
    PERFORM outbox_emit(current_schema() || '.audit.batch', NULL,
        jsonb_build_object('entries', v_entries));
    RETURN v_n;
END
$$;
