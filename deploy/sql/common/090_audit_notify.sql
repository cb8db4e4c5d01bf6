-- 090_audit_notify — a held audit entry announces itself (issue 16: no
-- statement while idle). The audit flush (050_audit_batch, common/audit.c)
-- looked at the outbox once a second in every process, in case another
-- process or a SQL function had written an entry. Now every row stored held
-- (published_at 'infinity': written so by common/audit.c, or held by
-- 050's trigger) sends NOTIFY caplat_audit with the schema; PostgreSQL
-- delivers it at commit, folded to one per transaction and schema. The
-- relay leading the schema's outbox listens (common/bus_relay.c) and has its
-- process flush; the flush's own look drops to once a minute. One trigger
-- call per audit entry, only for held rows. Applied into every service
-- schema.
CREATE OR REPLACE FUNCTION outbox_audit_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('caplat_audit', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER outbox_audit_notify
    AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.published_at = 'infinity')
    EXECUTE FUNCTION outbox_audit_notify();
