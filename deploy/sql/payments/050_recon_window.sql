-- payments 050 (issue 18 part 8, speed and scale): recon_run_fast joins the
-- staged bill with the day's payments only, and no longer with the
-- channel's whole history nor through a UNION with the refunds.
--
-- 040's compare was one hash FULL JOIN of recon_bill with every paid
-- payment of the channel UNION ALL every succeeded refund: the scan read
-- paid_at of every payment ever made (the day's flag), so it grew with the
-- history, and the UNION's subquery scans cost a step per row. Here:
--  * the payment lines are joined with the payments paid on the bill's day
--    (channel, paid_at: payments_paid_at's range once the history
--    outgrows the day), two columns wide, so PostgreSQL hashes the
--    payments side (19 bytes a row) and streams the bill through it; the
--    join's filter keeps refund lines and flagged repeats from matching;
--  * the refund lines (and only they) are then joined with the day's
--    refunds (few rows: the differences of the first join);
--  * a line still without a local record of the day is looked up by its
--    number (out_trade_no / out_refund_no are UNIQUE): a payment or refund
--    of another day named by the bill is compared as before, a number
--    unknown is missing_local; a local record of the day without a line is
--    missing_remote (its provider number looked up by its number).
-- The results are those of 040 line for line (kinds, amounts, provider
-- numbers, the items' order); the measurements are in docs/SCALING.md.
-- Additive: the same signature, so the service's call is unchanged; the
-- settings of 040/045 (no merge join, no JIT) are restated because CREATE
-- OR REPLACE sets a function's settings anew.

CREATE OR REPLACE FUNCTION recon_run_fast(p_id uuid, p_channel text, p_date date, p_sha text,
	p_staff text, p_lines bigint, p_flagged bigint, p_inline int, p_audit jsonb)
RETURNS TABLE (matched bigint, missing_local bigint, missing_remote bigint,
	amount_mismatch bigint, items_total bigint, created text)
LANGUAGE plpgsql
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
	t0 timestamptz := p_date::timestamp AT TIME ZONE 'Asia/Shanghai';
	t1 timestamptz := (p_date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai';
	c record;
	r reconciliations%ROWTYPE;
BEGIN
	INSERT INTO reconciliations (id, channel, bill_date, matched, missing_local, missing_remote,
		amount_mismatch, items, bill_sha256, staff_id, bill_lines)
	VALUES (p_id, p_channel, p_date, 0, 0, 0, 0, '[]', p_sha, p_staff, p_lines);
	IF p_flagged > 0 THEN
		-- a flagged line stays a repeat only when an earlier line has its
		-- kind and number (the first of each number is never flagged)
		UPDATE recon_bill b SET dup = false
		FROM (SELECT e.refund, e.out_no, min(e.seq) AS seq
			FROM recon_bill e
			WHERE (e.refund, e.out_no) IN (SELECT f.refund, f.out_no FROM recon_bill f WHERE f.dup)
			GROUP BY e.refund, e.out_no) k
		WHERE b.dup AND b.refund = k.refund AND b.out_no = k.out_no AND b.seq = k.seq;
	END IF;
	WITH j AS (
		-- every line against the day's payments; only the differences leave
		-- (a refund line or a repeat never matches here)
		SELECT b.seq, b.refund, b.out_no, b.provider_no, b.amount_fen AS ra, b.dup,
			p.out_trade_no AS lno, p.amount_fen AS la
		FROM recon_bill b
		FULL JOIN (SELECT p.out_trade_no, p.amount_fen FROM payments p
				WHERE p.channel = p_channel AND p.paid_at >= t0 AND p.paid_at < t1) p
			ON p.out_trade_no = b.out_no AND NOT b.refund AND NOT b.dup
		WHERE b.seq IS NULL OR p.out_trade_no IS NULL OR p.amount_fen <> b.amount_fen),
	jr AS (
		-- the refund lines against the day's refunds
		SELECT j.seq, j.out_no, j.provider_no, j.ra, j.dup,
			f.out_refund_no AS lno, f.provider_refund_no AS lprovider, f.amount_fen AS la
		FROM (SELECT * FROM j WHERE j.refund) j
		FULL JOIN (SELECT f.out_refund_no, f.provider_refund_no, f.amount_fen
				FROM refunds f JOIN payments p ON p.id = f.payment_id
				WHERE p.channel = p_channel AND f.status = 'succeeded'
					AND f.succeeded_at >= t0 AND f.succeeded_at < t1) f
			ON f.out_refund_no = j.out_no AND NOT j.dup),
	x AS (
		-- a line without a record of the day: one of another day (by its
		-- number), as every paid payment and succeeded refund was in 040
		SELECT j.seq, false AS refund, COALESCE(j.out_no, j.lno) AS out_no,
			CASE WHEN j.seq IS NULL THEN (SELECT p.provider_trade_no FROM payments p
					WHERE p.out_trade_no = j.lno)
				ELSE j.provider_no END AS provider_no,
			COALESCE(j.la, CASE WHEN NOT j.dup THEN (SELECT p.amount_fen FROM payments p
					WHERE p.out_trade_no = j.out_no AND p.channel = p_channel
						AND p.paid_at IS NOT NULL) END) AS la,
			j.ra
		FROM j WHERE j.seq IS NULL OR NOT j.refund
		UNION ALL
		SELECT jr.seq, true, COALESCE(jr.out_no, jr.lno),
			CASE WHEN jr.seq IS NULL THEN jr.lprovider ELSE jr.provider_no END,
			COALESCE(jr.la, CASE WHEN NOT jr.dup THEN (SELECT f.amount_fen
					FROM refunds f JOIN payments p ON p.id = f.payment_id
					WHERE f.out_refund_no = jr.out_no AND f.status = 'succeeded'
						AND p.channel = p_channel) END),
			jr.ra
		FROM jr),
	d AS (
		SELECT CASE WHEN x.seq IS NULL THEN 'missing_remote'
				WHEN x.la IS NULL THEN 'missing_local'
				WHEN x.la <> x.ra THEN 'amount_mismatch' END AS kind,
			CASE WHEN x.refund THEN 'refund' ELSE 'payment' END AS type,
			x.out_no, x.provider_no, x.la, x.ra, x.seq
		FROM x),
	ins AS (
		INSERT INTO reconciliation_items (recon_id, seq, kind, type, out_no, provider_no,
			local_amount_fen, remote_amount_fen)
		SELECT p_id, row_number() OVER (ORDER BY d.seq IS NULL, d.seq, d.type, d.out_no COLLATE "C"),
			d.kind, d.type, d.out_no, d.provider_no, d.la, d.ra
		FROM d WHERE d.kind IS NOT NULL
		RETURNING reconciliation_items.kind)
	SELECT count(*) FILTER (WHERE ins.kind = 'missing_local') AS ml,
		count(*) FILTER (WHERE ins.kind = 'missing_remote') AS mr,
		count(*) FILTER (WHERE ins.kind = 'amount_mismatch') AS am
	INTO c FROM ins;
	UPDATE reconciliations SET matched = p_lines - c.ml - c.am, missing_local = c.ml,
		missing_remote = c.mr, amount_mismatch = c.am, items_total = c.ml + c.mr + c.am,
		items = (SELECT COALESCE(jsonb_agg(jsonb_build_object('kind', i.kind, 'type', i.type,
				'out_trade_no', i.out_no, 'provider_trade_no', i.provider_no,
				'local_amount_fen', i.local_amount_fen, 'remote_amount_fen', i.remote_amount_fen)
				ORDER BY i.seq), '[]')
			FROM (SELECT * FROM reconciliation_items WHERE recon_id = p_id AND seq <= p_inline) i)
		WHERE id = p_id RETURNING * INTO r;
	TRUNCATE recon_bill;
	PERFORM outbox_emit('payments.audit.recorded', p_id::text, p_audit || jsonb_build_object(
		'uscc', NULL, 'after', jsonb_build_object('channel', p_channel,
			'date', to_char(p_date, 'YYYY-MM-DD'), 'bill_sha256', p_sha, 'bill_lines', p_lines,
			'matched', r.matched, 'missing_local', r.missing_local,
			'missing_remote', r.missing_remote, 'amount_mismatch', r.amount_mismatch)));
	RETURN QUERY SELECT r.matched::bigint, r.missing_local::bigint, r.missing_remote::bigint,
		r.amount_mismatch::bigint, r.items_total, rfc3339(r.created_at);
END
$$;
