-- payments 011 (issue 18): invoices as finance and administrators need them.
--  * persons: read model of enterprise.profile.completed (the verified name),
--    the title of a personal invoice instead of the word 个人.
--  * the postal data of a paper special invoice (纸质专票), given at payment
--    or at 补开, and its post: 已邮寄 (express company, tracking number,
--    recorded by finance) and 已签收.
--  * 补开: an invoice requested after payment for an order paid with
--    `none`, once, within the configured period (invoice_request_late).
-- Additive: new table, new nullable columns, new functions, a trigger that
-- fills new invoices (payment_succeed() is left as it is).

CREATE TABLE persons (
	account_id   uuid PRIMARY KEY,
	name         text NOT NULL,
	completed_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE payments
	ADD COLUMN invoice_recipient       text,
	ADD COLUMN invoice_recipient_phone text,
	ADD COLUMN invoice_postal_address  text;

ALTER TABLE invoices
	ADD COLUMN recipient       text,
	ADD COLUMN recipient_phone text,
	ADD COLUMN postal_address  text,
	ADD COLUMN post_status     text CHECK (post_status IN ('posted', 'received')),
	ADD COLUMN express_company text,
	ADD COLUMN tracking_number text,
	ADD COLUMN posted_at       timestamptz,
	ADD COLUMN received_at     timestamptz,
	ADD COLUMN late            boolean NOT NULL DEFAULT false; -- 补开

CREATE INDEX invoices_created ON invoices (created_at DESC, id DESC);
CREATE INDEX invoices_issued_at ON invoices (issued_at);
CREATE INDEX invoices_order ON invoices (order_id);
CREATE INDEX orders_number ON orders (number);

-- A new blue invoice (payment_succeed(), invoice_request_late()): a personal
-- one is titled with the payer's verified name (NULL until it is known: the
-- sweep fills it, store_invoices_fill_names_sql, and issues only titled
-- invoices); a paper special one carries the postal data given at payment.
CREATE FUNCTION invoice_fill_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.kind = 'blue' AND NEW.uscc IS NULL AND NEW.title IS NOT DISTINCT FROM '个人' THEN
		NEW.title := (SELECT name FROM persons WHERE account_id = NEW.account_id);
	END IF;
	IF NEW.kind = 'blue' AND NEW.type = 'paper_special' AND NEW.postal_address IS NULL THEN
		SELECT invoice_recipient, invoice_recipient_phone, invoice_postal_address
		INTO NEW.recipient, NEW.recipient_phone, NEW.postal_address
		FROM payments WHERE id = NEW.payment_id;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER invoices_fill_new BEFORE INSERT ON invoices
	FOR EACH ROW EXECUTE FUNCTION invoice_fill_new();

-- 补开: a blue invoice for a succeeded payment whose order chose `none`,
-- at most p_days after payment, once. p_amount is what the caller computed
-- p_tax for (the payment's amount less refunds); a refund in between
-- refuses. Raises PAYMENT_NOT_FOUND, INVOICE_ALREADY_REQUESTED,
-- INVOICE_TYPE_LOCKED, PAYMENT_NOT_INVOICEABLE, INVOICE_PERIOD_EXPIRED,
-- SPECIAL_INVOICE_NOT_ALLOWED.
CREATE FUNCTION invoice_request_late(p_id uuid, p_payment uuid, p_type text, p_email text,
	p_recipient text, p_phone text, p_address text, p_days int, p_amount bigint, p_tax bigint)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
	p payments%ROWTYPE;
	o orders%ROWTYPE;
	e enterprises%ROWTYPE;
BEGIN
	SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'PAYMENT_NOT_FOUND';
	END IF;
	IF EXISTS (SELECT 1 FROM invoices WHERE payment_id = p.id AND kind = 'blue' AND late) THEN
		RAISE EXCEPTION 'INVOICE_ALREADY_REQUESTED';
	END IF;
	IF p.invoice_type <> 'none' THEN
		RAISE EXCEPTION 'INVOICE_TYPE_LOCKED';
	END IF;
	IF p.status <> 'succeeded' OR p.amount_fen - p.refunded_fen <> p_amount THEN
		RAISE EXCEPTION 'PAYMENT_NOT_INVOICEABLE';
	END IF;
	IF p.paid_at < now() - make_interval(days => p_days) THEN
		RAISE EXCEPTION 'INVOICE_PERIOD_EXPIRED';
	END IF;
	SELECT * INTO o FROM orders WHERE id = p.order_id;
	IF o.uscc IS NOT NULL THEN
		SELECT * INTO e FROM enterprises WHERE uscc = o.uscc;
	END IF;
	IF p_type = 'paper_special' AND (o.uscc IS NULL OR e.uscc IS NULL
	   OR e.taxpayer_type <> 'general'
	   OR COALESCE(e.invoice_address, '') = '' OR COALESCE(e.invoice_phone, '') = ''
	   OR COALESCE(e.bank_name, '') = '' OR COALESCE(e.bank_account, '') = '') THEN
		RAISE EXCEPTION 'SPECIAL_INVOICE_NOT_ALLOWED';
	END IF;
	INSERT INTO invoices (id, order_id, payment_id, account_id, uscc, type, kind, title,
		taxpayer_id, address_phone, bank_account, email, amount_fen, tax_fen,
		recipient, recipient_phone, postal_address, late)
	VALUES (p_id, p.order_id, p.id, p.account_id, o.uscc, p_type, 'blue',
		CASE WHEN o.uscc IS NULL THEN '个人' ELSE e.title END,
		CASE WHEN o.uscc IS NULL THEN NULL ELSE e.taxpayer_id END,
		NULLIF(concat_ws(' ', e.invoice_address, e.invoice_phone), ''),
		NULLIF(concat_ws(' ', e.bank_name, e.bank_account), ''),
		p_email, p_amount, p_tax, p_recipient, p_phone, p_address, true);
	RETURN p_id;
END
$$;

-- Finance posted an issued paper special invoice. Raises INVOICE_NOT_FOUND,
-- INVOICE_STATE (not a paper special one, not issued yet, or posted
-- already). Emits payments.invoice.posted.
CREATE FUNCTION invoice_post(p_invoice uuid, p_company text, p_tracking text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
BEGIN
	SELECT * INTO i FROM invoices WHERE id = p_invoice FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'INVOICE_NOT_FOUND';
	END IF;
	IF i.type <> 'paper_special' OR i.kind <> 'blue' OR i.status <> 'issued'
	   OR i.post_status IS NOT NULL THEN
		RAISE EXCEPTION 'INVOICE_STATE';
	END IF;
	UPDATE invoices SET post_status = 'posted', express_company = p_company,
		tracking_number = p_tracking, posted_at = now()
		WHERE id = i.id RETURNING * INTO i;
	PERFORM outbox_emit('payments.invoice.posted', i.id::text, jsonb_build_object(
		'invoice_id', i.id, 'order_id', i.order_id, 'payment_id', i.payment_id,
		'number', i.number, 'express_company', i.express_company,
		'tracking_number', i.tracking_number, 'posted_at', rfc3339(i.posted_at)));
END
$$;

-- A posted paper invoice was received (已签收). Raises INVOICE_NOT_FOUND,
-- INVOICE_STATE (not posted, or received already).
CREATE FUNCTION invoice_receive(p_invoice uuid)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
BEGIN
	SELECT * INTO i FROM invoices WHERE id = p_invoice FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'INVOICE_NOT_FOUND';
	END IF;
	IF i.post_status IS DISTINCT FROM 'posted' THEN
		RAISE EXCEPTION 'INVOICE_STATE';
	END IF;
	UPDATE invoices SET post_status = 'received', received_at = now() WHERE id = i.id;
END
$$;
