-- issuance 045 (issue 19): an application ends before its issue. Its
-- order cancelled or expired (orders.order.cancelled), or refunded in full
-- before the holder sent the CSR (orders.order.refunded): the application is
-- closed and its issue refused (APPLICATION_CLOSED). So is one whose holder
-- no longer acts for the enterprise in the lock's role (auth.identity.removed:
-- removed by the administrator, certificate cancelled, replaced, handed over). An application already
-- pending at the vendor, or issued, is not closed by a refund: the vendor
-- may complete it, and an issued certificate is not revoked automatically —
-- the administrator cancels it (注销, 040_cancel.sql) when it must end.

ALTER TABLE applications ADD COLUMN closed_at timestamptz,
	ADD COLUMN closed_reason text
		CHECK (closed_reason IN ('order_cancelled', 'order_expired', 'order_refunded',
			'holder_removed'));

-- the status 'closed'; a closed application may hold a CSR (a failed one,
-- refunded) or not (an open one)
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT conname FROM pg_constraint
		WHERE conrelid = 'applications'::regclass AND contype = 'c'
		AND (pg_get_constraintdef(oid) LIKE '%csr_pem%'
			OR pg_get_constraintdef(oid) LIKE '%''failed''%')
	LOOP
		EXECUTE format('ALTER TABLE applications DROP CONSTRAINT %I', r.conname);
	END LOOP;
END
$$;
ALTER TABLE applications ADD CONSTRAINT applications_status_check
	CHECK (status IN ('open', 'pending', 'issued', 'failed', 'closed'));
ALTER TABLE applications ADD CONSTRAINT applications_csr_check
	CHECK (status = 'closed' OR (status = 'open') = (csr_pem IS NULL));
ALTER TABLE applications ADD CONSTRAINT applications_closed_check
	CHECK ((status = 'closed') = (closed_at IS NOT NULL));

-- Closes the applications of order p_order that can no longer be issued:
-- open ones (no CSR yet) and failed ones (the vendor refused; the
-- entitlement was given back). p_reason: order_cancelled, order_expired,
-- order_refunded. Idempotent.
CREATE FUNCTION application_close(p_order uuid, p_reason text)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	UPDATE applications SET status = 'closed', closed_at = now(), closed_reason = p_reason,
		lease_until = NULL
		WHERE order_id = p_order AND kind = 'new' AND status IN ('open', 'failed');
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- Closes the open (or failed) applications of the holder p_account for the
-- lock kind of role p_role of enterprise p_uscc (admin: master): the
-- identity ended, the holder may no longer get that enterprise's lock.
-- The money of a paid one is refunded by finance (the order stays paid).
CREATE FUNCTION application_close_for_holder(p_account uuid, p_uscc text, p_role text)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	UPDATE applications SET status = 'closed', closed_at = now(),
		closed_reason = 'holder_removed', lease_until = NULL
		WHERE account_id = p_account AND uscc = p_uscc AND kind = 'new'
		AND lock_kind = CASE p_role WHEN 'admin' THEN 'master' ELSE p_role END
		AND status IN ('open', 'failed');
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- application_begin (040) refuses a closed application.
CREATE OR REPLACE FUNCTION application_begin(p_app uuid, p_account uuid, p_spki text, p_csr text,
	p_serial text, p_adapter text, p_not_before timestamptz, p_not_after timestamptz,
	p_lease_secs int)
RETURNS TABLE (o_outcome text, o_serial text, o_not_before bigint, o_not_after bigint,
	o_adapter text, o_attempts int, o_csr text)
LANGUAGE plpgsql AS $$
DECLARE
	v applications%ROWTYPE;
	v_ent entitlements%ROWTYPE;
BEGIN
	SELECT * INTO v FROM applications WHERE id = p_app FOR UPDATE;
	IF NOT FOUND OR v.account_id <> p_account THEN
		RAISE EXCEPTION 'APPLICATION_NOT_FOUND';
	END IF;
	IF v.status = 'closed' THEN
		RAISE EXCEPTION 'APPLICATION_CLOSED';
	END IF;
	IF v.status = 'issued' THEN
		IF v.csr_spki <> p_spki THEN
			RAISE EXCEPTION 'APPLICATION_ISSUED';
		END IF;
		RETURN QUERY SELECT 'replay'::text, v.serial, extract(epoch FROM v.not_before)::bigint,
			extract(epoch FROM v.not_after)::bigint, v.adapter, v.attempts, v.csr_pem;
		RETURN;
	END IF;
	IF v.status = 'pending' THEN
		IF v.csr_spki <> p_spki THEN
			RAISE EXCEPTION 'APPLICATION_PENDING';
		END IF;
		IF v.lease_until IS NOT NULL AND v.lease_until > now() THEN
			RAISE EXCEPTION 'RENEWAL_IN_PROGRESS';
		END IF;
		UPDATE applications SET lease_until = now() + make_interval(secs => p_lease_secs),
			attempts = attempts + 1 WHERE id = p_app;
		RETURN QUERY SELECT 'resume'::text, v.serial, extract(epoch FROM v.not_before)::bigint,
			extract(epoch FROM v.not_after)::bigint, v.adapter, v.attempts + 1, v.csr_pem;
		RETURN;
	END IF;
	-- A change (自主变更, 040_change.sql) is not paid for.
	IF v.kind = 'new' THEN
		SELECT * INTO v_ent FROM entitlements WHERE cert_id = p_app AND status = 'paid'
			ORDER BY paid_at, id LIMIT 1 FOR UPDATE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'APPLICATION_NOT_PAID';
		END IF;
	END IF;
	UPDATE applications SET status = 'pending', adapter = p_adapter, serial = p_serial,
		csr_pem = p_csr, csr_spki = p_spki, not_before = p_not_before,
		not_after = p_not_after, attempts = 1, last_error = NULL,
		lease_until = now() + make_interval(secs => p_lease_secs)
		WHERE id = p_app;
	IF v_ent.id IS NOT NULL THEN
		UPDATE entitlements SET status = 'reserved', issuance_id = p_app WHERE id = v_ent.id;
	END IF;
	RETURN QUERY SELECT 'new'::text, p_serial, extract(epoch FROM p_not_before)::bigint,
		extract(epoch FROM p_not_after)::bigint, p_adapter, 1, p_csr;
END
$$;
