-- payments 030 (issue 18 parts 6, 3, 7): invoices issued by a tax platform
-- (数电票) as an asynchronous state machine, their files, reissue by red
-- reversal and a new blue invoice, e-mail delivery.
--  * Issuance: 待开具 (pending) → 已开具 (issued) | 开具失败 (failed, with
--    failure_reason), retried with backoff (next_try_at, attempts) until
--    issued. The invoice's id is the platform's request id: the platform
--    dedupes on it, so a retry after a lost answer never issues twice.
--  * invoice_files: the platform's PDF, one per invoice.
--  * Reissue: original_id on the new blue invoice, reversal_id and
--    replacement_id on the original.
--  * E-mail: email_status pending → sent | failed (retried with backoff).
-- Additive: new columns, a new table, new functions; refund_succeed() is
-- replaced so that the refund's red invoice reverses the live blue one (a
-- payment may now have a replaced blue invoice), and the one-blue-per-payment
-- index becomes one live blue per payment.

ALTER TABLE invoices
	ADD COLUMN attempts        int NOT NULL DEFAULT 0,
	ADD COLUMN next_try_at     timestamptz,
	ADD COLUMN failure_reason  text,
	ADD COLUMN check_code      text,
	ADD COLUMN issue_date      date,
	ADD COLUMN provider        text,
	ADD COLUMN original_id     uuid REFERENCES invoices (id),
	ADD COLUMN reversal_id     uuid REFERENCES invoices (id) DEFERRABLE INITIALLY DEFERRED,
	ADD COLUMN replacement_id  uuid REFERENCES invoices (id) DEFERRABLE INITIALLY DEFERRED,
	ADD COLUMN reissue_reason  text,
	ADD COLUMN email_status    text CHECK (email_status IN ('pending', 'sent', 'failed')),
	ADD COLUMN email_attempts  int NOT NULL DEFAULT 0,
	ADD COLUMN email_next_at   timestamptz,
	ADD COLUMN email_error     text,
	ADD COLUMN emailed_at      timestamptz;

DROP INDEX invoices_one_blue;
CREATE UNIQUE INDEX invoices_one_live_blue ON invoices (payment_id)
	WHERE kind = 'blue' AND replacement_id IS NULL;
CREATE INDEX invoices_due ON invoices (next_try_at) WHERE status IN ('pending', 'failed');
CREATE INDEX invoices_email_due ON invoices (email_next_at) WHERE email_status = 'pending';

CREATE TABLE invoice_files (
	invoice_id   uuid PRIMARY KEY REFERENCES invoices (id),
	content_type text NOT NULL,
	sha256       text NOT NULL,
	data         bytea NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- The platform issued the invoice (or the red reversal): number, date,
-- check code, the file (hex, or NULL when the provider has none), the event
-- (with what a notice needs: the account, the order's number, the invoice's
-- number). E-mail delivery is pending when there is an address and a file.
-- Returns APPLIED or DUPLICATE.
CREATE FUNCTION invoice_issued(p_invoice uuid, p_number text, p_issue_date date,
	p_check_code text, p_provider text, p_file_hex text, p_sha256 text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
BEGIN
	UPDATE invoices SET status = 'issued', number = p_number, issued_at = now(),
		issue_date = COALESCE(p_issue_date, (now() AT TIME ZONE 'Asia/Shanghai')::date),
		check_code = p_check_code, provider = p_provider, failure_reason = NULL,
		claimed_until = NULL, next_try_at = NULL,
		email_status = CASE WHEN email IS NOT NULL AND p_file_hex IS NOT NULL THEN 'pending' END,
		email_next_at = CASE WHEN email IS NOT NULL AND p_file_hex IS NOT NULL THEN now() END
		WHERE id = p_invoice AND status IN ('pending', 'failed') RETURNING * INTO i;
	IF NOT FOUND THEN
		RETURN 'DUPLICATE';
	END IF;
	IF p_file_hex IS NOT NULL THEN
		INSERT INTO invoice_files (invoice_id, content_type, sha256, data)
		VALUES (i.id, 'application/pdf', p_sha256, decode(p_file_hex, 'hex'))
		ON CONFLICT DO NOTHING;
	END IF;
	PERFORM outbox_emit('payments.invoice.issued', i.id::text, jsonb_build_object(
		'invoice_id', i.id, 'order_id', i.order_id, 'payment_id', i.payment_id,
		'account_id', i.account_id, 'uscc', i.uscc,
		'order_number', (SELECT number FROM orders WHERE id = i.order_id),
		'type', i.type, 'kind', i.kind, 'reverses_invoice_id', i.reverses_invoice_id,
		'original_id', i.original_id,
		'title', i.title, 'taxpayer_id', i.taxpayer_id, 'amount_fen', i.amount_fen,
		'tax_fen', i.tax_fen, 'number', i.number, 'check_code', i.check_code,
		'issue_date', to_char(i.issue_date, 'YYYY-MM-DD'),
		'issued_at', rfc3339(i.issued_at)));
	RETURN 'APPLIED';
END
$$;

-- The platform refused (p_refused: 开具失败 with the reason) or could not be
-- reached (the state stays, the reason is kept): the next try after
-- p_base_s · 2^(attempts−1) seconds, at most an hour.
CREATE FUNCTION invoice_try_failed(p_invoice uuid, p_refused boolean, p_reason text,
	p_base_s int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE invoices SET
		status = CASE WHEN p_refused THEN 'failed' ELSE status END,
		failure_reason = left(p_reason, 500),
		next_try_at = now() + make_interval(secs => LEAST(p_base_s * power(2, GREATEST(attempts - 1, 0)), 3600))
		WHERE id = p_invoice AND status IN ('pending', 'failed');
END
$$;

-- Reissue (wrong title or taxpayer id): a red invoice reversing the
-- original whole and a new blue one with the corrected title, linked.
-- The original must be an issued, live blue invoice of a payment without
-- refunds; at most p_max reissues per payment, within p_days of the
-- payment's first invoice; an enterprise's taxpayer id stays when not
-- given, a person's invoice has none. Raises INVOICE_NOT_FOUND, INVOICE_STATE,
-- INVOICE_REISSUE_LIMIT, INVOICE_REISSUE_PERIOD, INVOICE_UNCHANGED,
-- TAXPAYER_ID_NOT_ALLOWED.
CREATE FUNCTION invoice_reissue(p_original uuid, p_red uuid, p_blue uuid, p_title text,
	p_taxpayer_id text, p_reason text, p_max int, p_days int)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
	p payments%ROWTYPE;
	first_at timestamptz;
BEGIN
	SELECT * INTO i FROM invoices WHERE id = p_original FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'INVOICE_NOT_FOUND';
	END IF;
	SELECT * INTO p FROM payments WHERE id = i.payment_id FOR UPDATE;
	IF i.kind <> 'blue' OR i.status <> 'issued' OR i.replacement_id IS NOT NULL
	   OR p.refunded_fen <> 0 OR i.post_status IS NOT NULL THEN
		RAISE EXCEPTION 'INVOICE_STATE';
	END IF;
	IF i.uscc IS NULL AND p_taxpayer_id IS NOT NULL THEN
		RAISE EXCEPTION 'TAXPAYER_ID_NOT_ALLOWED';
	END IF;
	IF i.uscc IS NOT NULL THEN
		p_taxpayer_id := COALESCE(p_taxpayer_id, i.taxpayer_id);
	END IF;
	IF i.title IS NOT DISTINCT FROM p_title AND i.taxpayer_id IS NOT DISTINCT FROM p_taxpayer_id THEN
		RAISE EXCEPTION 'INVOICE_UNCHANGED';
	END IF;
	IF (SELECT count(*) FROM invoices WHERE payment_id = i.payment_id AND kind = 'blue'
	    AND original_id IS NOT NULL) >= p_max THEN
		RAISE EXCEPTION 'INVOICE_REISSUE_LIMIT';
	END IF;
	SELECT min(issued_at) INTO first_at FROM invoices WHERE payment_id = i.payment_id AND kind = 'blue';
	IF first_at < now() - make_interval(days => p_days) THEN
		RAISE EXCEPTION 'INVOICE_REISSUE_PERIOD';
	END IF;
	UPDATE invoices SET reversal_id = p_red, replacement_id = p_blue, reissue_reason = p_reason
		WHERE id = i.id;
	INSERT INTO invoices (id, order_id, payment_id, account_id, uscc, type, kind,
		reverses_invoice_id, title, taxpayer_id, address_phone, bank_account, email,
		amount_fen, tax_fen, reissue_reason)
	VALUES (p_red, i.order_id, i.payment_id, i.account_id, i.uscc, i.type, 'red', i.id,
		i.title, i.taxpayer_id, i.address_phone, i.bank_account, i.email,
		-i.amount_fen, -i.tax_fen, p_reason);
	INSERT INTO invoices (id, order_id, payment_id, account_id, uscc, type, kind, title,
		taxpayer_id, address_phone, bank_account, email, amount_fen, tax_fen, recipient,
		recipient_phone, postal_address, late, original_id, reissue_reason)
	VALUES (p_blue, i.order_id, i.payment_id, i.account_id, i.uscc, i.type, 'blue', p_title,
		p_taxpayer_id, i.address_phone, i.bank_account, i.email, i.amount_fen, i.tax_fen,
		i.recipient, i.recipient_phone, i.postal_address, i.late, i.id, p_reason);
	RETURN p_blue;
END
$$;

-- As 001's, but the red invoice of a refund reverses the payment's live blue
-- invoice (not a replaced one), whatever its state: the sweep issues a red
-- invoice only after the invoice it reverses.
CREATE OR REPLACE FUNCTION refund_succeed(p_refund uuid, p_provider_no text, p_tax bigint)
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
	SELECT * INTO b FROM invoices WHERE payment_id = p.id AND kind = 'blue'
		AND replacement_id IS NULL;
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

-- The e-mail of an invoice was sent (p_error NULL) or failed: sent, or
-- tried again after p_base_s · 2^(attempts−1) s until p_max attempts, then
-- failed with the error.
CREATE FUNCTION invoice_email_done(p_invoice uuid, p_error text, p_base_s int, p_max int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE invoices SET
		email_status = CASE WHEN p_error IS NULL THEN 'sent'
			WHEN email_attempts >= p_max THEN 'failed' ELSE 'pending' END,
		email_error = left(p_error, 500),
		emailed_at = CASE WHEN p_error IS NULL THEN now() END,
		email_next_at = CASE WHEN p_error IS NULL THEN NULL ELSE now()
			+ make_interval(secs => LEAST(p_base_s * power(2, GREATEST(email_attempts - 1, 0)), 3600)) END
		WHERE id = p_invoice AND email_status = 'pending';
	IF p_error IS NULL THEN
		INSERT INTO invoice_deliveries (invoice_id, email)
		SELECT id, email FROM invoices WHERE id = p_invoice ON CONFLICT DO NOTHING;
	END IF;
END
$$;

-- As 011's, the event with what a notice needs: the account, the
-- enterprise, the order's number.
CREATE OR REPLACE FUNCTION invoice_post(p_invoice uuid, p_company text, p_tracking text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	i invoices%ROWTYPE;
BEGIN
	SELECT * INTO i FROM invoices WHERE id = p_invoice FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'INVOICE_NOT_FOUND';
	END IF;
	IF i.type <> 'paper_special' OR i.kind <> 'blue' OR i.status <> 'issued'
	   OR i.post_status IS NOT NULL OR i.replacement_id IS NOT NULL THEN
		RAISE EXCEPTION 'INVOICE_STATE';
	END IF;
	UPDATE invoices SET post_status = 'posted', express_company = p_company,
		tracking_number = p_tracking, posted_at = now()
		WHERE id = i.id RETURNING * INTO i;
	PERFORM outbox_emit('payments.invoice.posted', i.id::text, jsonb_build_object(
		'invoice_id', i.id, 'order_id', i.order_id, 'payment_id', i.payment_id,
		'account_id', i.account_id, 'uscc', i.uscc,
		'order_number', (SELECT number FROM orders WHERE id = i.order_id),
		'number', i.number, 'express_company', i.express_company,
		'tracking_number', i.tracking_number, 'posted_at', rfc3339(i.posted_at)));
END
$$;
