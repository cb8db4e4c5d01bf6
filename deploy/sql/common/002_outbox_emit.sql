-- 002_outbox_emit — the one way SQL writes an event. PL/pgSQL functions and
-- statements with CTEs call outbox_emit() instead of inserting into outbox
-- themselves, so every row has the shape common/bus.c writes
-- (bus_outbox_insert_sql): the event id (a new UUID v4 unless the caller
-- brings its own), the type (a dotted subject tail, refused as bus_subject()
-- refuses it), the subject (the entity's id) and the data; created_at is the
-- transaction's now() and the outbox trigger of 001_bus wakes the relay at
-- commit. Applied into every service schema; the function keeps the schema it
-- was created in (search_path FROM CURRENT), so it writes that schema's
-- outbox whoever calls it. Returns the event id.

CREATE OR REPLACE FUNCTION outbox_emit(p_type text, p_subject text,
    p_data jsonb, p_id uuid DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT AS $$
DECLARE
    v_id uuid := COALESCE(p_id, gen_random_uuid());
BEGIN
    IF p_type IS NULL OR p_type !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$'
       OR p_type LIKE 'dlq.%' THEN
        RAISE EXCEPTION 'outbox_emit: bad event type "%"', p_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO outbox (id, type, subject, data)
        VALUES (v_id, p_type, p_subject, p_data);
    RETURN v_id;
END
$$;
