-- issuance 045 (issue 19): an application refunded while pending at the
-- vendor is not closed (the vendor may still issue it), but it is marked;
-- should the vendor then refuse it for good, it closes (order_refunded)
-- instead of failing, and its entitlement is not given back: the money
-- went back, so it can no longer be issued.
ALTER TABLE applications ADD COLUMN order_refunded_at timestamptz;

CREATE OR REPLACE FUNCTION application_close(p_order uuid, p_reason text)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	UPDATE applications SET status = 'closed', closed_at = now(), closed_reason = p_reason,
		lease_until = NULL
		WHERE order_id = p_order AND kind = 'new' AND status IN ('open', 'failed');
	GET DIAGNOSTICS n = ROW_COUNT;
	IF p_reason = 'order_refunded' THEN
		UPDATE applications SET order_refunded_at = COALESCE(order_refunded_at, now())
			WHERE order_id = p_order AND kind = 'new' AND status = 'pending';
	END IF;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION application_failed(p_app uuid, p_error text, p_retry_secs int,
	p_final boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE applications SET lease_until = NULL, last_error = p_error,
		next_attempt_at = now() + make_interval(secs => p_retry_secs),
		status = CASE WHEN NOT p_final THEN status
			WHEN order_refunded_at IS NOT NULL THEN 'closed' ELSE 'failed' END,
		closed_at = CASE WHEN p_final AND order_refunded_at IS NOT NULL THEN now() END,
		closed_reason = CASE WHEN p_final AND order_refunded_at IS NOT NULL
			THEN 'order_refunded' END
		WHERE id = p_app AND status = 'pending';
	IF FOUND AND p_final THEN
		-- refunded: the entitlement stays reserved (used by nothing)
		UPDATE entitlements SET status = 'paid', issuance_id = NULL
			WHERE issuance_id = p_app AND status = 'reserved'
			AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.id = p_app
				AND a.status = 'closed');
	END IF;
END
$$;
