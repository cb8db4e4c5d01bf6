-- orders 020: notices (issue 17). The administrator's daily expiry digest
-- with a saved quote for renewing exactly the certificates that entered a
-- reminder stage (issuance.cert.expiring), and "your order is about to
-- expire" to whoever placed an unpaid order. Each is claimed once by a
-- unique key, its orders.notice.requested written in the same transaction.

-- issuance.cert.expiring, gathered per enterprise until its digest.
CREATE TABLE expiring_certs (
	cert_id     uuid NOT NULL,
	stage       int NOT NULL,
	uscc        text NOT NULL,
	serial      text NOT NULL,
	holder      text,
	not_after   timestamptz NOT NULL,
	platforms   text[],
	received_at timestamptz NOT NULL DEFAULT now(),
	digest_id   uuid,
	PRIMARY KEY (cert_id, stage)
);
CREATE INDEX expiring_certs_pending ON expiring_certs (uscc, received_at) WHERE digest_id IS NULL;

-- One digest per enterprise and day (China Standard Time), with its quote
-- (NULL when none could be priced: no eligible administrator).
CREATE TABLE expiry_digests (
	id          uuid PRIMARY KEY,
	uscc        text NOT NULL,
	day         date NOT NULL,
	account_id  uuid,
	quote_id    uuid,
	created_at  timestamptz NOT NULL DEFAULT now(),
	UNIQUE (uscc, day)
);

-- Notices about one order, once per kind.
CREATE TABLE order_notices (
	order_id   uuid NOT NULL REFERENCES orders (id),
	kind       text NOT NULL,
	claimed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, kind)
);

-- The notice.requested data (proto/events/notice.requested.json).
CREATE FUNCTION notice_data(p_id text, p_kind text, p_recipient jsonb,
    p_params jsonb, p_channels jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object('notice_id', p_id, 'kind', p_kind,
		'recipient', p_recipient, 'params', p_params, 'channels', p_channels))
$$;

-- The enterprise's day the digest belongs to.
CREATE FUNCTION digest_day(t timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
	SELECT (t AT TIME ZONE 'Asia/Shanghai')::date
$$;

-- order.expiring for up to p_limit unpaid orders that expire within
-- p_before seconds, once each. Returns how many.
CREATE FUNCTION order_expiring_claim(p_before int, p_limit int) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_n int;
BEGIN
	WITH due AS (
		SELECT o.id FROM orders o
		WHERE o.status = 'pending_payment' AND o.expires_at > now()
		  AND o.expires_at <= now() + make_interval(secs => p_before)
		  AND NOT EXISTS (SELECT 1 FROM order_notices n
			WHERE n.order_id = o.id AND n.kind = 'order.expiring')
		ORDER BY o.expires_at
		LIMIT p_limit
	), claimed AS (
		INSERT INTO order_notices (order_id, kind)
		SELECT id, 'order.expiring' FROM due
		ON CONFLICT DO NOTHING
		RETURNING order_id
	), events AS (
		INSERT INTO outbox (id, type, subject, data)
		SELECT gen_random_uuid(), 'orders.notice.requested', 'order:' || o.id || ':expiring',
			notice_data('order:' || o.id || ':expiring', 'order.expiring',
				jsonb_build_object('account_id', o.account_id),
				jsonb_build_object('order_id', o.id, 'order_number', o.number,
					'total_fen', o.total_fen, 'expires_at', api_time(o.expires_at),
					'minutes_left', ceil(extract(epoch FROM o.expires_at - now()) / 60)::int))
		FROM claimed k JOIN orders o ON o.id = k.order_id
		RETURNING 1
	)
	SELECT count(*) INTO v_n FROM events;
	RETURN v_n;
END
$$;

-- Saves the digest p_id of enterprise p_uscc for today with the
-- certificates p_certs (gathered, not yet in a digest) and its quote
-- (p_quote, valid until p_valid_until, total p_total; all NULL when none),
-- and writes the administrator's cert.expiry_digest. A second digest of
-- the same enterprise and day fails on the unique key (nothing is saved).
-- Returns the number of certificates.
CREATE FUNCTION digest_save(p_id uuid, p_uscc text, p_account uuid, p_certs uuid[],
    p_quote uuid, p_valid_until timestamptz, p_total bigint) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	v_day date := digest_day(now());
	v_list jsonb;
	v_n int;
	v_notice text;
BEGIN
	INSERT INTO expiry_digests (id, uscc, day, account_id, quote_id)
		VALUES (p_id, p_uscc, v_day, p_account, p_quote);
	WITH marked AS (
		UPDATE expiring_certs SET digest_id = p_id
		WHERE uscc = p_uscc AND digest_id IS NULL AND cert_id = ANY (p_certs)
		RETURNING cert_id, stage, serial, holder, not_after
	)
	SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('cert_id', cert_id, 'serial', serial,
			'holder_name', holder, 'not_after', api_time(not_after), 'stage', stage))
			ORDER BY not_after, cert_id), count(*)
		INTO v_list, v_n FROM marked;
	IF v_n = 0 THEN
		RAISE EXCEPTION 'DIGEST_EMPTY';
	END IF;
	v_notice := 'digest:' || p_uscc || ':' || to_char(v_day, 'YYYY-MM-DD');
	PERFORM outbox_emit('orders.notice.requested', v_notice,
		notice_data(v_notice, 'cert.expiry_digest',
			jsonb_build_object('uscc', p_uscc, 'role', 'admin'),
			jsonb_strip_nulls(jsonb_build_object('quote_id', p_quote,
				'valid_until', api_time(p_valid_until), 'total_fen', p_total,
				'day', to_char(v_day, 'YYYY-MM-DD'), 'certificates', v_list))));
	RETURN v_n;
END
$$;
