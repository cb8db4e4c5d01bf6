-- 001_bus — the event bus tables of one service schema (common/bus.h):
-- outbox (written in the business transaction, published by the relay),
-- inbox (event ids already applied, per consumer) and dead_letter.
-- Applied into every service schema with search_path set to it: names are
-- unqualified on purpose. Safe to apply twice.

CREATE TABLE IF NOT EXISTS outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    type         text NOT NULL,
    subject      text,
    data         jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay claims the oldest unpublished rows; published rows stay a day so
-- they can be published again after a loss on the NATS side.
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx
    ON outbox (seq) WHERE published_at IS NULL;

-- One wake-up per inserting statement, delivered at commit; the relay also
-- sweeps every second, so a lost notification only delays. The channel is
-- shared by the whole database, so the payload names the schema and each
-- relay ignores the other services' wake-ups.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('caplat_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TABLE IF NOT EXISTS inbox (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events a consumer gave up on: visible, counted, replayable (set
-- replayed_at when an operator publishes the payload again).
CREATE TABLE IF NOT EXISTS dead_letter (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL,
    event_id    text,
    subject     text,
    payload     text,
    error       text,
    deliveries  int,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);

CREATE INDEX IF NOT EXISTS dead_letter_consumer_event_idx
    ON dead_letter (consumer, event_id);
