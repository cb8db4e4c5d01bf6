-- 002_idempotency — Idempotency-Keys move to the table every service shares
-- (idem_keys, deploy/sql/common/002_idempotency.sql; common/idem.h), and
-- payment_create() no longer stores the answer itself: the service adds
-- idem_save_add() to the same transaction.
--
-- The keys' rows come along. Their request hashes were made the old way
-- (method, path and raw body bytes), so a retry of such a request answers
-- 409 IDEMPOTENCY_KEY_REUSED instead of a replay until the rows are purged:
-- never a second payment or refund.

INSERT INTO idem_keys (scope, key, request_hash, response_status, response_body,
	locked_at, created_at)
SELECT account, key, request_hash, status, body, created_at, created_at
FROM idempotency
ON CONFLICT (scope, key) DO NOTHING;

DROP FUNCTION payment_create(uuid, uuid, uuid, text, text, bigint, text, text, text,
	timestamptz, text, text, text);

-- A new payment of a pending order: checks the order again under its row
-- lock, fixes the invoice choice, supersedes (closes) the order's other
-- pending payments. Raises ORDER_NOT_PAYABLE or INVOICE_TYPE_LOCKED.
CREATE FUNCTION payment_create(p_id uuid, p_order uuid, p_account uuid, p_channel text,
	p_out_trade_no text, p_amount bigint, p_qr text, p_invoice_type text, p_email text,
	p_created timestamptz)
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
END
$$;

DROP TABLE idempotency;
