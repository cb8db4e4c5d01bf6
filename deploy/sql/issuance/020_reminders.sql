-- issuance 020: reminders (issue 17). Expiry stages per certificate (days
-- before notAfter, negative after) and the "please update on your key"
-- notices of paid renewals, each claimed exactly once: the claim is an
-- INSERT ... ON CONFLICT DO NOTHING RETURNING into a table with a unique
-- key, and the notices (issuance.notice.requested) and the domain event
-- (issuance.cert.expiring) go to the outbox in the same statement, so two
-- passes at once, a restart or a crash neither lose nor double a stage.

-- One row per stage sent for a certificate of a lineage. Keyed by the
-- certificate (not the lineage alone): a renewed certificate starts its own
-- stages a year later.
CREATE TABLE reminder_stages (
	certificate_id uuid NOT NULL REFERENCES certificates (id),
	stage          int NOT NULL,
	cert_id        uuid NOT NULL,
	claimed_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (certificate_id, stage)
);

-- The pass reads each stage's window of notAfter from this index alone, in
-- (not_after, id) order from where its last round stopped: current (not
-- replaced), unrevoked certificates.
CREATE INDEX certificates_reminder_due ON certificates (not_after, id)
	WHERE replaced_by IS NULL AND revoked_at IS NULL;

-- Notices of a paid renewal: stage 0 "ready" (sent by the order.paid
-- consumer with the entitlement), then N days after paid_at while unused.
CREATE TABLE renewal_notices (
	entitlement_id uuid NOT NULL REFERENCES entitlements (id),
	stage          int NOT NULL,
	claimed_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (entitlement_id, stage)
);
CREATE INDEX entitlements_unused_paid ON entitlements (paid_at) WHERE status <> 'used';

-- The notice.requested data (proto/events/notice.requested.json).
CREATE FUNCTION notice_data(p_id text, p_kind text, p_recipient jsonb,
    p_params jsonb, p_channels jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object('notice_id', p_id, 'kind', p_kind,
		'recipient', p_recipient, 'params', p_params, 'channels', p_channels))
$$;

-- Claims up to p_limit due expiry stages at p_now (p_stages: days before
-- notAfter, any order) and writes their notices and events. A certificate
-- is due for stage s while s is the latest stage it has reached: notAfter in
-- (p_now + next smaller stage, p_now + s] (the last stage: 30 days long).
-- Skipped: replaced (renewed), revoked, or with an unused paid renewal.
-- One pass walks each stage's window once, in (not_after, id) order: a
-- round starts where the previous round of the pass stopped (p_stage,
-- p_after, p_after_id; all NULL for the first round) and returns where it
-- stopped (o_stage NULL when the pass is done) with the number claimed.
CREATE FUNCTION reminder_claim(p_now timestamptz, p_stages int[], p_limit int,
    p_stage int DEFAULT NULL, p_after timestamptz DEFAULT NULL, p_after_id uuid DEFAULT NULL)
RETURNS TABLE (o_claimed int, o_stage int, o_after timestamptz, o_after_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_stages int[];
	v_total int := 0;
	v_seen int;
	v_n int;
	v_lo timestamptz;
	v_hi timestamptz;
	v_stage int;
	v_after timestamptz;
	v_after_id uuid;
	v_last timestamptz;
	v_last_id uuid;
BEGIN
	SELECT array_agg(DISTINCT s ORDER BY s DESC) INTO v_stages FROM unnest(p_stages) s;
	FOR i IN 1 .. coalesce(array_length(v_stages, 1), 0) LOOP
		v_stage := v_stages[i];
		-- stages the pass is done with
		CONTINUE WHEN p_stage IS NOT NULL AND v_stage > p_stage;
		IF v_stage = p_stage THEN
			v_after := p_after;
			v_after_id := p_after_id;
		ELSE
			v_after := NULL;
			v_after_id := NULL;
		END IF;
		v_hi := p_now + make_interval(days => v_stage);
		v_lo := p_now + make_interval(days => CASE WHEN i < array_length(v_stages, 1)
			THEN v_stages[i + 1] ELSE v_stage - 30 END);
		WITH due AS MATERIALIZED (
			SELECT c.id, c.cert_id, c.not_after FROM certificates c
			WHERE c.replaced_by IS NULL AND c.revoked_at IS NULL
			  AND c.not_after > v_lo AND c.not_after <= v_hi
			  AND (v_after IS NULL OR (c.not_after, c.id) > (v_after, v_after_id))
			  AND NOT EXISTS (SELECT 1 FROM reminder_stages r
				WHERE r.certificate_id = c.id AND r.stage = v_stage)
			  AND NOT EXISTS (SELECT 1 FROM entitlements e
				WHERE e.cert_id = c.cert_id AND e.status <> 'used')
			ORDER BY c.not_after, c.id
			LIMIT p_limit - v_total
		), claimed AS (
			INSERT INTO reminder_stages (certificate_id, stage, cert_id, claimed_at)
			SELECT id, v_stage, cert_id, p_now FROM due
			ON CONFLICT DO NOTHING
			RETURNING certificate_id
		), facts AS (
			SELECT c.id, l.id AS lineage, l.uscc, l.holder, l.enterprise_name,
				l.lock_kind, c.serial, c.not_after,
				CASE WHEN c.platforms_known THEN to_jsonb(c.platforms) END AS platforms,
				'expiry:' || l.id || ':' || c.id || ':d' || v_stage AS notice,
				jsonb_build_object('cert_id', l.id, 'serial', c.serial,
					'holder_name', l.holder, 'not_after', rfc3339(c.not_after),
					'days_left', floor(extract(epoch FROM c.not_after - p_now) / 86400)::int,
					'stage', v_stage) AS params
			FROM claimed k JOIN certificates c ON c.id = k.certificate_id
			JOIN lineages l ON l.id = c.cert_id
		), events AS (
			INSERT INTO outbox (id, type, subject, data)
			SELECT gen_random_uuid(), 'issuance.notice.requested', f.notice || ':holder',
				notice_data(f.notice || ':holder', 'cert.expiring',
					jsonb_build_object('cert_id', f.lineage), f.params)
			FROM facts f
			UNION ALL
			-- The administrator: in the inbox per certificate; the SMS is
			-- orders' daily digest (issuance.cert.expiring).
			SELECT gen_random_uuid(), 'issuance.notice.requested', f.notice || ':admin',
				notice_data(f.notice || ':admin', 'cert.expiring',
					jsonb_build_object('uscc', f.uscc, 'role', 'admin'), f.params,
					'["inbox"]'::jsonb)
			FROM facts f WHERE f.uscc IS NOT NULL
			UNION ALL
			SELECT gen_random_uuid(), 'issuance.cert.expiring', f.lineage::text,
				jsonb_strip_nulls(jsonb_build_object('cert_id', f.lineage,
					'certificate_id', f.id, 'serial', f.serial,
					'holder_name', f.holder, 'uscc', f.uscc,
					'enterprise_name', f.enterprise_name, 'lock_kind', f.lock_kind,
					'not_after', rfc3339(f.not_after), 'stage', v_stage,
					'platforms', f.platforms))
			FROM facts f WHERE f.uscc IS NOT NULL
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM facts), (SELECT count(*) FROM due),
			d.not_after, d.id
			INTO v_n, v_seen, v_last, v_last_id
			FROM (SELECT 1) one
			LEFT JOIN LATERAL (SELECT not_after, id FROM due
				ORDER BY not_after DESC, id DESC LIMIT 1) d ON true;
		v_total := v_total + v_n;
		IF v_seen >= p_limit - (v_total - v_n) THEN
			-- the round is full within this stage: go on from here
			RETURN QUERY SELECT v_total, v_stage, v_last, v_last_id;
			RETURN;
		END IF;
	END LOOP;
	RETURN QUERY SELECT v_total, NULL::int, NULL::timestamptz, NULL::uuid;
END
$$;

-- The holder's "please update on your key" of renewal entitlement row e.
CREATE FUNCTION renewal_notice_data(p_entitlement uuid, p_stage int, p_now timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT notice_data('renewal:' || e.id || ':' || CASE WHEN p_stage = 0 THEN 'ready' ELSE 'd' || p_stage END,
		CASE WHEN p_stage = 0 THEN 'renewal.ready' ELSE 'renewal.unused' END,
		jsonb_build_object('cert_id', e.cert_id),
		jsonb_strip_nulls(jsonb_build_object('cert_id', e.cert_id, 'serial', c.serial,
			'holder_name', l.holder, 'not_after', rfc3339(c.not_after),
			'order_number', e.order_number, 'platforms', to_jsonb(e.platforms),
			'days_since_paid', CASE WHEN p_stage > 0
				THEN floor(extract(epoch FROM p_now - e.paid_at) / 86400)::int END)))
	FROM entitlements e
	LEFT JOIN lineages l ON l.id = e.cert_id
	LEFT JOIN certificates c ON c.cert_id = e.cert_id AND c.replaced_by IS NULL
	WHERE e.id = p_entitlement
$$;

-- renewal.ready for every entitlement of order p_order not yet told (the
-- order.paid consumer, in its transaction). Returns how many.
CREATE FUNCTION renewal_ready(p_order uuid) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n int;
BEGIN
	WITH claimed AS (
		INSERT INTO renewal_notices (entitlement_id, stage)
		SELECT e.id, 0 FROM entitlements e WHERE e.order_id = p_order AND e.status <> 'used'
		ON CONFLICT DO NOTHING
		RETURNING entitlement_id
	), events AS (
		INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'issuance.notice.requested', d ->> 'notice_id', d
		FROM (SELECT renewal_notice_data(entitlement_id, 0, now()) AS d FROM claimed) x
		RETURNING 1
	)
	SELECT count(*) INTO v_n FROM events;
	RETURN v_n;
END
$$;

-- Claims up to p_limit renewal.unused reminders at p_now: p_days after
-- paid_at while the entitlement is unused, the latest reached only (the
-- last one for 30 days). Returns the number claimed.
CREATE FUNCTION renewal_unused_claim(p_now timestamptz, p_days int[], p_limit int)
RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_days int[];
	v_total int := 0;
	v_n int;
	v_stage int;
	v_lo timestamptz;
	v_hi timestamptz;
BEGIN
	SELECT array_agg(DISTINCT s ORDER BY s) INTO v_days FROM unnest(p_days) s WHERE s > 0;
	FOR i IN 1 .. coalesce(array_length(v_days, 1), 0) LOOP
		EXIT WHEN v_total >= p_limit;
		v_stage := v_days[i];
		-- paid_at in (p_now - next larger, p_now - stage]
		v_hi := p_now - make_interval(days => v_stage);
		v_lo := p_now - make_interval(days => CASE WHEN i < array_length(v_days, 1)
			THEN v_days[i + 1] ELSE v_stage + 30 END);
		WITH due AS (
			SELECT e.id FROM entitlements e
			WHERE e.status <> 'used' AND e.paid_at > v_lo AND e.paid_at <= v_hi
			  AND NOT EXISTS (SELECT 1 FROM renewal_notices n
				WHERE n.entitlement_id = e.id AND n.stage = v_stage)
			ORDER BY e.paid_at
			LIMIT p_limit - v_total
		), claimed AS (
			INSERT INTO renewal_notices (entitlement_id, stage, claimed_at)
			SELECT id, v_stage, p_now FROM due
			ON CONFLICT DO NOTHING
			RETURNING entitlement_id
		), events AS (
			INSERT INTO outbox (id, type, subject, data)
			SELECT gen_random_uuid(), 'issuance.notice.requested', d ->> 'notice_id', d
			FROM (SELECT renewal_notice_data(entitlement_id, v_stage, p_now) AS d FROM claimed) x
			RETURNING 1
		)
		SELECT count(*) INTO v_n FROM events;
		v_total := v_total + v_n;
	END LOOP;
	RETURN v_total;
END
$$;
