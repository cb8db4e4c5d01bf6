-- 095_audit_notify_held — an audit entry written held by the service's own
-- C code announces nothing; only a row the hold trigger holds does (issue
-- 12's cost goal, tests/bench/audit.sh). 090_audit_notify sent NOTIFY
-- caplat_audit for every held row, one per audited transaction, and
-- PostgreSQL (15) signals EVERY listening backend of the database at each
-- such commit, whatever the channel: the five relays' backends each ran a
-- transaction to read the queue and their threads woke to drop it, about
-- 30 us of backend CPU per relay per audited request (150 us in all,
-- more than the entry itself). Now:
--  * common/audit.c's audit_add*() write the row held (audit_held_insert_sql)
--    and the writing process flushes it once its batch committed
--    (db_batch_on_commit): no NOTIFY;
--  * audit_emit(subject, data) below writes an entry held from SQL, for a
--    statement whose C caller calls audit_flush_notified() once it
--    committed (orders' price change): no NOTIFY either;
--  * a row inserted unpublished (outbox_emit() of a *.audit.recorded from a
--    PL/pgSQL function, audit_tx_emit() in a consumer's transaction) is held
--    by the hold trigger of 050, which now sends the NOTIFY itself, as 090
--    did: the writer cannot say when that transaction commits.
-- A process that dies with entries unflushed: the next start and every
-- process's look once a minute flush them, as before. Applied into every
-- service schema.
CREATE OR REPLACE FUNCTION outbox_audit_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.published_at := 'infinity';
    PERFORM pg_catalog.pg_notify('caplat_audit', TG_TABLE_SCHEMA);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS outbox_audit_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_audit_notify();

-- Writes the entry's outbox row held (type "<schema>.audit.recorded", the
-- data of common/audit.h audit_event_data()) and returns its id. Nobody is
-- told: the caller's process calls audit_flush_notified() once the
-- statement committed.
CREATE OR REPLACE FUNCTION audit_emit(p_subject text, p_data jsonb) RETURNS uuid
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT AS $$
    INSERT INTO outbox (id, type, subject, data, published_at)
    VALUES (gen_random_uuid(), current_schema() || '.audit.recorded',
        p_subject, p_data, 'infinity')
    RETURNING id
$$;
