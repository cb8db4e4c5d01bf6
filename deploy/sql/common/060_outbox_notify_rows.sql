-- 060_outbox_notify_rows — the outbox wakes its relay only when an insert
-- really left a row for it. The statement trigger of 001 fired for every
-- INSERT statement, also one that inserted nothing (an INSERT … SELECT of
-- a sweep that found nothing due, every second) and one whose rows the
-- audit hold (050) marks published at once: each woke the relay for an
-- empty pass, so an idle service was never idle (issue 16 part 4). The
-- trigger now sees the statement's new rows (a transition table, after the
-- BEFORE triggers ran) and notifies only when one of them is unpublished.
-- Applied into every service schema.

CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM outbox_new_rows WHERE published_at IS NULL) THEN
        PERFORM pg_catalog.pg_notify('caplat_outbox', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS outbox_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
