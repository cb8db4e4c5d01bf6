-- Cancellation (注销, issue 19): the holder, or the enterprise's
-- administrator for a certificate of the enterprise (a member left), ends a
-- certificate. It is a revocation with reason cessation_of_operation
-- (revoke_certificate(): the registry, issuance.cert.revoked, the CRL, the
-- vendor job) plus issuance.cert.cancelled, which auth consumes to unbind
-- the key and end the rights the key gave, and the audit entry; one
-- transaction.

ALTER TABLE lineages
	ADD COLUMN cancelled_at timestamptz,
	ADD COLUMN cancelled_by text CHECK (cancelled_by IN ('holder', 'administrator'));

-- p_uscc: the administrator's enterprise (the lineage must be of it), else
-- p_account: the holder (the lineage must be bound to it). Anything else is
-- CERT_NOT_FOUND (404: not the caller's). Refuses CERT_REVOKED.
CREATE FUNCTION cancel_certificate(p_cert_id uuid, p_uscc text, p_account uuid,
	p_event uuid, p_job uuid, p_forward text[], p_cancel_event uuid, p_audit jsonb)
RETURNS TABLE (o_serial text, o_issuer text, o_revoked_at bigint, o_vendor text,
	o_forwarded boolean, o_by text)
LANGUAGE plpgsql AS $$
DECLARE
	v_lin lineages%ROWTYPE;
	v_by text;
	r record;
BEGIN
	SELECT * INTO v_lin FROM lineages WHERE id = p_cert_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	IF p_account IS NOT NULL AND v_lin.account_id = p_account THEN
		v_by := 'holder';
	ELSIF p_uscc IS NOT NULL AND v_lin.uscc = p_uscc THEN
		v_by := 'administrator';
	ELSE
		RAISE EXCEPTION 'CERT_NOT_FOUND';
	END IF;
	SELECT * INTO r FROM revoke_certificate(p_cert_id, 'cessation_of_operation', p_event,
		p_job, p_forward);
	UPDATE lineages SET cancelled_at = to_timestamp(r.o_revoked_at), cancelled_by = v_by
		WHERE id = p_cert_id;
	PERFORM outbox_emit('issuance.cert.cancelled', p_cert_id::text, jsonb_strip_nulls(
		jsonb_build_object('cert_id', p_cert_id, 'serial', r.o_serial, 'issuer', r.o_issuer,
			'lock_kind', v_lin.lock_kind, 'account_id', v_lin.account_id, 'uscc', v_lin.uscc,
			'cancelled_by', v_by, 'cancelled_at', rfc3339(to_timestamp(r.o_revoked_at)))),
		p_cancel_event);
	PERFORM outbox_emit('issuance.audit.recorded', p_cert_id::text, p_audit
		|| jsonb_build_object('uscc', v_lin.uscc,
			'before', jsonb_build_object('status', 'valid', 'serial', r.o_serial),
			'after', jsonb_build_object('status', 'revoked', 'serial', r.o_serial,
				'reason', 'cessation_of_operation', 'cancelled_by', v_by,
				'vendor', r.o_vendor, 'vendor_forwarded', r.o_forwarded)));
	RETURN QUERY SELECT r.o_serial, r.o_issuer, r.o_revoked_at, r.o_vendor, r.o_forwarded, v_by;
END
$$;
