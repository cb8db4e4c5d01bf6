-- payments 035 (issue 18 part 8): finance records a decision on each
-- difference of a reconciliation (refund the payer, write it off, claim it
-- from the provider, or ignore it), with a note, who and when. A later
-- decision replaces the earlier one; every decision is in the audit trail
-- (payments.audit.recorded, added in the same transaction). Additive.

ALTER TABLE reconciliation_items
	ADD COLUMN decision      text CHECK (decision IN ('refund_payer', 'write_off', 'provider_claim', 'ignore')),
	ADD COLUMN decision_note text,
	ADD COLUMN decided_by    text,
	ADD COLUMN decided_at    timestamptz;

-- Records p_decision on item p_seq of reconciliation p_id; raises
-- 'ITEM_NOT_FOUND' when there is no such item (the caller's batch, audit
-- entry included, rolls back). Returns the item with its decision and the
-- decision it replaced (NULL: the first).
CREATE FUNCTION recon_decide(p_id uuid, p_seq bigint, p_decision text, p_note text, p_staff text)
RETURNS TABLE (seq bigint, kind text, type text, out_no text, provider_no text,
	local_amount_fen bigint, remote_amount_fen bigint, decision text, decision_note text,
	decided_by text, decided_at text, previous text)
LANGUAGE plpgsql AS $$
DECLARE
	prev text;
BEGIN
	SELECT i.decision INTO prev FROM reconciliation_items i
	WHERE i.recon_id = p_id AND i.seq = p_seq FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'ITEM_NOT_FOUND';
	END IF;
	RETURN QUERY
	UPDATE reconciliation_items i SET decision = p_decision, decision_note = p_note,
		decided_by = p_staff, decided_at = now()
	WHERE i.recon_id = p_id AND i.seq = p_seq
	RETURNING i.seq, i.kind, i.type, i.out_no, i.provider_no, i.local_amount_fen,
		i.remote_amount_fen, i.decision, i.decision_note, i.decided_by,
		to_char(i.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), prev;
END $$;
