-- 070_outbox_notify_held — the relay's wake-up (060_outbox_notify_rows) as a
-- row trigger (issue 12's cost goal, tests/bench/audit.sh). Applied into
-- every service schema.
-- Its WHEN sees the row as stored: an audit entry written held (common/audit.c
-- writes published_at 'infinity' itself, audit_held_insert_sql) runs no
-- trigger function at all, where the statement trigger of 060 built a
-- transition table and ran a query over it for every such INSERT. An
-- unpublished row still wakes the relay, once per transaction per schema
-- (PostgreSQL folds identical notifications of one transaction); an INSERT
-- that inserts nothing still wakes nobody.
CREATE OR REPLACE FUNCTION outbox_notify_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('caplat_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.published_at IS NULL)
    EXECUTE FUNCTION outbox_notify_row();
