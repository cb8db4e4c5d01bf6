-- orders 003: quotes, orders and their items, payments as orders saw them,
-- and idempotency keys.

-- A quote keeps the price versions it was made with for its lifetime: an
-- order placed with its quote_id pays those prices.
CREATE TABLE quotes (
	id          uuid PRIMARY KEY,
	account_id  uuid NOT NULL,
	items_hash  text NOT NULL,        -- sha256 of the normalised items
	price_ids   bigint[] NOT NULL,    -- platform_prices rows used
	total_fen   bigint NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL
);
CREATE INDEX quotes_expires ON quotes (expires_at);

CREATE SEQUENCE order_number_seq;

CREATE TABLE orders (
	id           uuid PRIMARY KEY,
	number       text NOT NULL UNIQUE CHECK (number ~ '^PL[0-9A-Z]+$'),
	account_id   uuid NOT NULL,           -- who placed it
	identity_id  uuid NOT NULL,           -- as whom
	uscc         text,                    -- the buying enterprise, NULL for a person
	status       text NOT NULL CHECK (status IN ('pending_payment', 'paid', 'fulfilled',
	                 'cancelled', 'expired', 'refunded')),
	total_fen    bigint NOT NULL CHECK (total_fen >= 0),
	quote_id     uuid,
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	payment_id   uuid,
	paid_at      timestamptz,
	closed_at    timestamptz,             -- cancelled or expired
	fulfilled_at timestamptz,
	refunded_at  timestamptz,
	CHECK ((status IN ('paid', 'fulfilled', 'refunded')) = (paid_at IS NOT NULL)),
	CHECK ((status IN ('cancelled', 'expired')) = (closed_at IS NOT NULL))
);
CREATE INDEX orders_account ON orders (account_id, created_at DESC, id DESC);
CREATE INDEX orders_uscc ON orders (uscc, created_at DESC, id DESC) WHERE uscc IS NOT NULL;
CREATE INDEX orders_due ON orders (expires_at) WHERE status = 'pending_payment';

-- One row per certificate of an order. detail is the priced item exactly as
-- answered at creation (lines with their price versions, dropped platforms,
-- the certificate as it was). open is true while the item blocks another
-- order of the certificate: awaiting payment, or paid and not yet renewed.
CREATE TABLE order_items (
	order_id       uuid NOT NULL REFERENCES orders (id),
	seq            int NOT NULL,
	cert_id        uuid NOT NULL,
	account_id     uuid,                   -- the holder's account, if known
	uscc           text,                   -- the certificate's enterprise
	price_fen      bigint NOT NULL CHECK (price_fen >= 0),
	platforms      text[] NOT NULL,
	detail         jsonb NOT NULL,
	open           boolean NOT NULL DEFAULT true,
	renewed_at     timestamptz,
	renewed_serial text,
	PRIMARY KEY (order_id, cert_id)
);
CREATE UNIQUE INDEX order_items_open_cert ON order_items (cert_id) WHERE open;
CREATE INDEX order_items_account ON order_items (account_id);
CREATE INDEX order_items_uscc ON order_items (uscc);

-- Every payments.payment.succeeded seen, and what it did. A payment that
-- could not pay its order (late, duplicate, wrong amount, unknown order) is
-- kept with refund_needed until finance refunds it.
CREATE TABLE order_payments (
	payment_id        uuid PRIMARY KEY,
	order_id          uuid NOT NULL,
	channel           text NOT NULL,
	amount_fen        bigint NOT NULL,
	provider_trade_no text NOT NULL,
	paid_at           timestamptz NOT NULL,
	outcome           text NOT NULL CHECK (outcome IN ('applied', 'late', 'duplicate',
	                      'amount_mismatch', 'unknown_order')),
	order_status      text,               -- the order's status when the payment arrived
	refund_needed     boolean NOT NULL,
	refunded_fen      bigint NOT NULL DEFAULT 0,
	refunded_at       timestamptz,
	recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_payments_order ON order_payments (order_id);
CREATE INDEX order_payments_flagged ON order_payments (recorded_at DESC, payment_id DESC)
	WHERE refund_needed;

-- Idempotency keys (Stripe's model): the first response of a creation,
-- keyed by (account, key). response_status NULL while the first request runs
-- (locked_at says since when).
CREATE TABLE idempotency_keys (
	account_id      uuid NOT NULL,
	key             text NOT NULL,
	request_hash    text NOT NULL,
	response_status int,
	response_body   jsonb,
	locked_at       timestamptz NOT NULL DEFAULT now(),
	created_at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
