-- payments: read models of orders and approved enterprises, payments and the
-- providers' raw notifications, idempotency keys, refunds, invoices and
-- reconciliations. State changes that must happen together with their
-- outbox event are PL/pgSQL functions: one round trip, one transaction,
-- idempotent when the providers retry.

-- Read model of orders.order.created (+ .cancelled, and our own payments).
CREATE TABLE orders (
	id            uuid PRIMARY KEY,
	number        text NOT NULL,
	account_id    uuid NOT NULL,
	identity_id   uuid,
	uscc          text,
	total_fen     bigint NOT NULL CHECK (total_fen >= 0),
	expires_at    timestamptz NOT NULL,
	status        text NOT NULL DEFAULT 'pending_payment'
	              CHECK (status IN ('pending_payment', 'paid', 'cancelled')),
	-- The invoice choice is fixed by the first payment of the order.
	invoice_type  text CHECK (invoice_type IN ('none', 'e_normal', 'paper_special')),
	invoice_email text,
	created_at    timestamptz NOT NULL DEFAULT now()
);

-- Read model of enterprise.record.approved: the invoice title data.
CREATE TABLE enterprises (
	uscc            text PRIMARY KEY,
	record_id       uuid NOT NULL,
	seq             int NOT NULL,
	name            text NOT NULL,
	taxpayer_type   text NOT NULL,
	title           text NOT NULL,
	taxpayer_id     text NOT NULL,
	invoice_address text,
	invoice_phone   text,
	bank_name       text,
	bank_account    text,
	approved_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
	id                uuid PRIMARY KEY,
	order_id          uuid NOT NULL REFERENCES orders (id),
	account_id        uuid NOT NULL,
	channel           text NOT NULL CHECK (channel IN ('alipay', 'wechat')),
	out_trade_no      text NOT NULL UNIQUE,
	amount_fen        bigint NOT NULL CHECK (amount_fen > 0),
	status            text NOT NULL DEFAULT 'pending'
	                  CHECK (status IN ('pending', 'succeeded', 'closed', 'refunded')),
	qr_code           text,
	invoice_type      text NOT NULL CHECK (invoice_type IN ('none', 'e_normal', 'paper_special')),
	invoice_email     text,
	provider_trade_no text,
	paid_at           timestamptz,
	paid_via          text, -- notify | query
	refunded_fen      bigint NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= amount_fen),
	created_at        timestamptz NOT NULL DEFAULT now(),
	next_query_at     timestamptz NOT NULL DEFAULT now(),
	queries           int NOT NULL DEFAULT 0
);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_pending ON payments (next_query_at) WHERE status = 'pending';
CREATE INDEX payments_paid_at ON payments (channel, paid_at);

-- Every notification as received (verified or not), for audit and replays.
CREATE TABLE notifications (
	id           bigserial PRIMARY KEY,
	channel      text NOT NULL,
	notify_id    text,
	out_trade_no text,
	headers      jsonb,
	body         text NOT NULL,
	outcome      text NOT NULL,
	received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_trade ON notifications (out_trade_no);

-- Idempotency keys (Stripe's model): the first response, by (account, key).
CREATE TABLE idempotency (
	account      text NOT NULL,
	key          text NOT NULL,
	request_hash text NOT NULL,
	status       int,  -- NULL while the first request runs
	body         text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, key)
);

CREATE TABLE refunds (
	id                 uuid PRIMARY KEY,
	payment_id         uuid NOT NULL REFERENCES payments (id),
	out_refund_no      text NOT NULL UNIQUE,
	amount_fen         bigint NOT NULL CHECK (amount_fen > 0),
	reason             text NOT NULL,
	status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
	provider_refund_no text,
	staff_id           text,
	created_at         timestamptz NOT NULL DEFAULT now(),
	succeeded_at       timestamptz,
	next_try_at        timestamptz NOT NULL DEFAULT now() + interval '30 seconds'
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_succeeded_at ON refunds (succeeded_at);

CREATE SEQUENCE invoice_numbers;

CREATE TABLE invoices (
	id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	order_id            uuid NOT NULL,
	payment_id          uuid NOT NULL REFERENCES payments (id),
	refund_id           uuid UNIQUE REFERENCES refunds (id),
	account_id          uuid NOT NULL,
	uscc                text,
	type                text NOT NULL CHECK (type IN ('e_normal', 'paper_special')),
	kind                text NOT NULL CHECK (kind IN ('blue', 'red')),
	reverses_invoice_id uuid REFERENCES invoices (id),
	title               text, -- NULL until the enterprise's approved record is known
	taxpayer_id         text,
	address_phone       text,
	bank_account        text,
	email               text,
	amount_fen          bigint NOT NULL,
	tax_fen             bigint NOT NULL,
	status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'issued', 'failed')),
	number              text UNIQUE,
	issued_at           timestamptz,
	claimed_until       timestamptz,
	created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
	CHECK ((kind = 'red') = (reverses_invoice_id IS NOT NULL))
);
CREATE UNIQUE INDEX invoices_one_blue ON invoices (payment_id) WHERE kind = 'blue';
CREATE INDEX invoices_account ON invoices (account_id, created_at DESC, id DESC);
CREATE INDEX invoices_pending ON invoices (created_at) WHERE status = 'pending';

-- The local invoice provider's record of the e-mails it "sent".
CREATE TABLE invoice_deliveries (
	invoice_id   uuid NOT NULL REFERENCES invoices (id),
	email        text NOT NULL,
	delivered_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (invoice_id, email)
);

CREATE TABLE reconciliations (
	id              uuid PRIMARY KEY,
	channel         text NOT NULL,
	bill_date       date NOT NULL,
	matched         int NOT NULL,
	missing_local   int NOT NULL,
	missing_remote  int NOT NULL,
	amount_mismatch int NOT NULL,
	items           jsonb NOT NULL,
	bill_sha256     text NOT NULL,
	staff_id        text,
	created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- A new payment of a pending order: checks the order again under its row
-- lock, fixes the invoice choice, supersedes (closes) the order's other
-- pending payments, stores the idempotent answer. Raises ORDER_NOT_PAYABLE
-- or INVOICE_TYPE_LOCKED.
CREATE FUNCTION payment_create(p_id uuid, p_order uuid, p_account uuid, p_channel text,
	p_out_trade_no text, p_amount bigint, p_qr text, p_invoice_type text, p_email text,
	p_created timestamptz, p_idem_account text, p_idem_key text, p_answer text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	o orders%ROWTYPE;
BEGIN
	SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
	IF NOT FOUND OR o.status <> 'pending_payment' OR o.expires_at <= now()
	   OR o.total_fen <> p_amount THEN
		RAISE EXCEPTION 'ORDER_NOT_PAYABLE';
	END IF;
	IF o.invoice_type IS NOT NULL AND o.invoice_type <> p_invoice_type THEN
		RAISE EXCEPTION 'INVOICE_TYPE_LOCKED';
	END IF;
	UPDATE orders SET invoice_type = p_invoice_type,
		invoice_email = COALESCE(p_email, invoice_email) WHERE id = p_order;
	UPDATE payments SET status = 'closed', qr_code = NULL
		WHERE order_id = p_order AND status = 'pending';
	INSERT INTO payments (id, order_id, account_id, channel, out_trade_no, amount_fen,
		qr_code, invoice_type, invoice_email, created_at)
	VALUES (p_id, p_order, p_account, p_channel, p_out_trade_no, p_amount, p_qr,
		p_invoice_type, p_email, p_created);
	UPDATE idempotency SET status = 201, body = p_answer
		WHERE account = p_idem_account AND key = p_idem_key;
END
$$;

-- The provider says the trade is paid (notification or trade query).
-- Returns APPLIED, DUPLICATE, UNKNOWN_TRADE or AMOUNT_MISMATCH. Paid is a
-- fact: a closed (superseded, cancelled) payment that the payer paid anyway
-- is recorded as succeeded too, and its event lets orders decide.
CREATE FUNCTION payment_succeed(p_channel text, p_out_trade_no text, p_amount bigint,
	p_trade_no text, p_paid_at timestamptz, p_via text, p_tax bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	p payments%ROWTYPE;
	o orders%ROWTYPE;
	e enterprises%ROWTYPE;
BEGIN
	SELECT * INTO p FROM payments WHERE out_trade_no = p_out_trade_no AND channel = p_channel
		FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'UNKNOWN_TRADE';
	END IF;
	IF p.amount_fen <> p_amount THEN
		RETURN 'AMOUNT_MISMATCH';
	END IF;
	IF p.status IN ('succeeded', 'refunded') THEN
		RETURN 'DUPLICATE';
	END IF;
	UPDATE payments SET status = 'succeeded', provider_trade_no = p_trade_no,
		paid_at = COALESCE(p_paid_at, now()), paid_via = p_via, qr_code = NULL
		WHERE id = p.id RETURNING * INTO p;
	UPDATE orders SET status = 'paid' WHERE id = p.order_id AND status = 'pending_payment';
	UPDATE payments SET status = 'closed', qr_code = NULL
		WHERE order_id = p.order_id AND status = 'pending' AND id <> p.id;
	PERFORM outbox_emit('payments.payment.succeeded', p.id::text, jsonb_build_object(
		'payment_id', p.id, 'order_id', p.order_id, 'channel', p.channel,
		'amount_fen', p.amount_fen, 'provider_trade_no', p.provider_trade_no,
		'invoice_type', p.invoice_type, 'paid_at', rfc3339(p.paid_at)));
	IF p.invoice_type <> 'none' THEN
		SELECT * INTO o FROM orders WHERE id = p.order_id;
		IF o.uscc IS NOT NULL THEN
			SELECT * INTO e FROM enterprises WHERE uscc = o.uscc;
		END IF;
		INSERT INTO invoices (order_id, payment_id, account_id, uscc, type, kind, title,
			taxpayer_id, address_phone, bank_account, email, amount_fen, tax_fen)
		VALUES (p.order_id, p.id, p.account_id, o.uscc, p.invoice_type, 'blue',
			CASE WHEN o.uscc IS NULL THEN '个人' ELSE e.title END,
			CASE WHEN o.uscc IS NULL THEN NULL ELSE e.taxpayer_id END,
			NULLIF(concat_ws(' ', e.invoice_address, e.invoice_phone), ''),
			NULLIF(concat_ws(' ', e.bank_name, e.bank_account), ''),
			p.invoice_email, p.amount_fen, p_tax)
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN 'APPLIED';
END
$$;

-- A refund request: checks what remains refundable under the payment's row
-- lock. Raises PAYMENT_NOT_FOUND, PAYMENT_NOT_REFUNDABLE,
-- REFUND_AMOUNT_INVALID. Returns the payment's channel, out_trade_no,
-- amount and order.
CREATE FUNCTION refund_create(p_id uuid, p_payment uuid, p_amount bigint, p_reason text,
	p_staff text, p_out_refund_no text)
RETURNS TABLE (channel text, out_trade_no text, amount_fen bigint, order_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
	p payments%ROWTYPE;
	taken bigint;
BEGIN
	SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'PAYMENT_NOT_FOUND';
	END IF;
	IF p.status <> 'succeeded' THEN
		RAISE EXCEPTION 'PAYMENT_NOT_REFUNDABLE';
	END IF;
	SELECT COALESCE(sum(r.amount_fen), 0) INTO taken FROM refunds r
		WHERE r.payment_id = p.id AND r.status IN ('pending', 'succeeded');
	IF p_amount <= 0 OR p_amount > p.amount_fen - taken THEN
		RAISE EXCEPTION 'REFUND_AMOUNT_INVALID';
	END IF;
	INSERT INTO refunds (id, payment_id, out_refund_no, amount_fen, reason, staff_id)
	VALUES (p_id, p.id, p_out_refund_no, p_amount, p_reason, p_staff);
	RETURN QUERY SELECT p.channel, p.out_trade_no, p.amount_fen, p.order_id;
END
$$;

-- The provider confirmed a refund: the payment's refunded total, the event,
-- and a red-letter invoice reversing the refunded amount when the payment
-- has a (blue) invoice. Returns APPLIED or DUPLICATE.
CREATE FUNCTION refund_succeed(p_refund uuid, p_provider_no text, p_tax bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r refunds%ROWTYPE;
	p payments%ROWTYPE;
	b invoices%ROWTYPE;
BEGIN
	SELECT * INTO r FROM refunds WHERE id = p_refund FOR UPDATE;
	IF NOT FOUND OR r.status = 'succeeded' THEN
		RETURN 'DUPLICATE';
	END IF;
	UPDATE refunds SET status = 'succeeded', provider_refund_no = p_provider_no,
		succeeded_at = now() WHERE id = r.id;
	UPDATE payments SET refunded_fen = refunded_fen + r.amount_fen,
		status = CASE WHEN refunded_fen + r.amount_fen = amount_fen THEN 'refunded' ELSE status END
		WHERE id = r.payment_id RETURNING * INTO p;
	PERFORM outbox_emit('payments.payment.refunded', p.id::text, jsonb_build_object(
		'refund_id', r.id, 'payment_id', p.id, 'order_id', p.order_id,
		'amount_fen', r.amount_fen, 'refunded_total_fen', p.refunded_fen,
		'full', p.refunded_fen = p.amount_fen, 'reason', r.reason,
		'refunded_at', rfc3339(now())));
	SELECT * INTO b FROM invoices WHERE payment_id = p.id AND kind = 'blue' AND status <> 'failed';
	IF FOUND THEN
		INSERT INTO invoices (order_id, payment_id, refund_id, account_id, uscc, type, kind,
			reverses_invoice_id, title, taxpayer_id, address_phone, bank_account, email,
			amount_fen, tax_fen)
		VALUES (b.order_id, p.id, r.id, b.account_id, b.uscc, b.type, 'red', b.id, b.title,
			b.taxpayer_id, b.address_phone, b.bank_account, b.email, -r.amount_fen, -p_tax)
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN 'APPLIED';
END
$$;

-- The invoice provider issued an invoice: number, delivery, event.
CREATE FUNCTION invoice_issue(p_invoice uuid, p_number text, p_delivered_to text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
BEGIN
	UPDATE invoices SET status = 'issued', number = p_number, issued_at = now(),
		claimed_until = NULL
		WHERE id = p_invoice AND status = 'pending' RETURNING * INTO i;
	IF NOT FOUND THEN
		RETURN 'DUPLICATE';
	END IF;
	IF p_delivered_to IS NOT NULL THEN
		INSERT INTO invoice_deliveries (invoice_id, email) VALUES (i.id, p_delivered_to)
		ON CONFLICT DO NOTHING;
	END IF;
	PERFORM outbox_emit('payments.invoice.issued', i.id::text, jsonb_build_object(
		'invoice_id', i.id, 'order_id', i.order_id, 'payment_id', i.payment_id,
		'type', i.type, 'kind', i.kind, 'reverses_invoice_id', i.reverses_invoice_id,
		'title', i.title, 'taxpayer_id', i.taxpayer_id, 'amount_fen', i.amount_fen,
		'tax_fen', i.tax_fen, 'number', i.number, 'issued_at', rfc3339(i.issued_at)));
	RETURN 'APPLIED';
END
$$;
