-- orders 040 (issue 19): the product "new certificate" (CA主锁申请,
-- CA个人锁申请, staff locks for members). An application is an order of one
-- item whose cert_id is the new certificate's id to be (the registry's
-- lineage once issued), priced per chosen platform at the new-association
-- price (add_fen) of the lock kind. The subject is never typed: it comes
-- from what orders already knows through events — the approved enterprise
-- record (enterprises: name, USCC), the holder's completed profile
-- (profiles: name) and the member's identity (identities: role = lock kind).
-- issuance learns the application from orders.order.created (the item's
-- `application`) and issues once the order is paid.

-- The item's product: 'renewal' (every row before this migration) or
-- 'new_certificate'.
ALTER TABLE order_items ADD COLUMN product text NOT NULL DEFAULT 'renewal'
	CHECK (product IN ('renewal', 'new_certificate'));

-- Places the application order. p_role / p_uscc / p_type: the caller's
-- session (auth's word); p_member: the member the administrator applies for
-- (NULL: for oneself — the master lock, or a person's personal lock);
-- p_replaces: a certificate expired beyond the renewal window
-- (p_after_days after its notAfter: EXPIRED_TOO_LONG) applied for again: the
-- same holder and lock kind, and its platforms unless others are chosen; the
-- caller must be its holder, or the administrator of its enterprise.
-- Refuses NOT_ADMIN, MEMBER_NOT_FOUND, CERT_NOT_FOUND, CERT_STILL_RENEWABLE,
-- ENTERPRISE_NOT_APPROVED, PROFILE_INCOMPLETE, PLATFORM_UNKNOWN,
-- PLATFORMS_EMPTY. Returns the order as GET /orders/{id} answers it.
CREATE FUNCTION new_cert_order(p_order uuid, p_app uuid, p_account uuid, p_identity uuid,
	p_type text, p_role text, p_uscc text, p_member uuid, p_platforms text[],
	p_ttl_secs int, p_replaces uuid, p_after_days int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_kind text;
	v_holder_account uuid;
	v_holder text;
	v_ent enterprises%ROWTYPE;
	v_member identities%ROWTYPE;
	v_lines jsonb := '[]'::jsonb;
	v_total bigint := 0;
	v_code text;
	v_price bigint;
	v_price_id bigint;
	v_name text;
	v_number text;
	v_now timestamptz := date_trunc('second', now());
	v_expires timestamptz;
	v_item jsonb;
	v_app jsonb;
	v_platforms text[];
	v_old certs%ROWTYPE;
BEGIN
	IF p_replaces IS NOT NULL THEN
		SELECT * INTO v_old FROM certs c WHERE c.cert_id = p_replaces;
		IF NOT FOUND OR p_member IS NOT NULL
			OR (v_old.uscc IS NULL AND v_old.account_id IS DISTINCT FROM p_account)
			OR (v_old.uscc IS NOT NULL AND (p_type <> 'enterprise' OR v_old.uscc <> p_uscc)) THEN
			RAISE EXCEPTION 'CERT_NOT_FOUND';
		END IF;
		IF v_old.not_after + make_interval(days => p_after_days) >= now() THEN
			RAISE EXCEPTION 'CERT_STILL_RENEWABLE';
		END IF;
		IF v_old.lock_kind IN ('project_lead', 'agent', 'cost_engineer') THEN
			-- the member holding it, as the administrator would name them
			SELECT i.identity_id INTO p_member FROM identities i
				WHERE i.account_id = v_old.account_id AND i.uscc = v_old.uscc
				AND i.role = v_old.lock_kind ORDER BY i.added_at DESC LIMIT 1;
			IF p_member IS NULL THEN
				RAISE EXCEPTION 'MEMBER_NOT_FOUND';
			END IF;
		END IF;
		IF p_platforms IS NULL OR cardinality(p_platforms) = 0 THEN
			p_platforms := v_old.platforms;
		END IF;
	END IF;
	IF p_type = 'enterprise' THEN
		IF p_role IS DISTINCT FROM 'admin' THEN
			RAISE EXCEPTION 'NOT_ADMIN';
		END IF;
		SELECT * INTO v_ent FROM enterprises e WHERE e.uscc = p_uscc;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'ENTERPRISE_NOT_APPROVED';
		END IF;
		IF p_member IS NULL THEN
			v_kind := 'master';
			v_holder_account := p_account;
		ELSE
			SELECT * INTO v_member FROM identities i WHERE i.identity_id = p_member
				AND i.uscc = p_uscc AND i.type = 'enterprise'
				AND i.role IN ('project_lead', 'agent', 'cost_engineer');
			IF NOT FOUND THEN
				RAISE EXCEPTION 'MEMBER_NOT_FOUND';
			END IF;
			v_kind := v_member.role;
			v_holder_account := v_member.account_id;
		END IF;
	ELSE
		IF p_member IS NOT NULL THEN
			RAISE EXCEPTION 'NOT_ADMIN';
		END IF;
		v_kind := 'personal';
		v_holder_account := p_account;
	END IF;
	SELECT pr.name INTO v_holder FROM profiles pr WHERE pr.account_id = v_holder_account;
	IF v_holder IS NULL THEN
		RAISE EXCEPTION 'PROFILE_INCOMPLETE';
	END IF;
	v_platforms := p_platforms;
	IF v_platforms IS NULL OR cardinality(v_platforms) = 0 THEN
		RAISE EXCEPTION 'PLATFORMS_EMPTY';
	END IF;
	FOREACH v_code IN ARRAY v_platforms LOOP
		SELECT pl.name INTO v_name FROM platforms pl WHERE pl.code = v_code AND pl.active;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'PLATFORM_UNKNOWN';
		END IF;
		SELECT pp.add_fen, pp.id INTO v_price, v_price_id FROM platform_prices pp
			WHERE pp.platform = v_code AND (pp.lock_kind = v_kind OR pp.lock_kind IS NULL)
			AND pp.effective_at <= now()
			ORDER BY pp.lock_kind IS NULL, pp.effective_at DESC, pp.id DESC LIMIT 1;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'PLATFORM_UNKNOWN';
		END IF;
		v_total := v_total + v_price;
		v_lines := v_lines || jsonb_build_object('platform', v_code, 'name', v_name,
			'kind', 'add', 'price_fen', v_price, 'price_id', v_price_id);
	END LOOP;

	v_number := 'PL' || to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
		|| lpad(nextval('order_number_seq')::text, 8, '0');
	v_expires := v_now + make_interval(secs => p_ttl_secs);
	v_app := jsonb_build_object('product', 'new_certificate',
		'type', CASE WHEN v_kind = 'personal' THEN 'personal' ELSE 'enterprise' END,
		'lock_kind', v_kind, 'holder', v_holder, 'holder_account_id', v_holder_account,
		'enterprise_name', v_ent.name, 'uscc', v_ent.uscc, 'replaces_cert_id', p_replaces,
		'subject', jsonb_strip_nulls(jsonb_build_object('c', 'CN', 'o', v_ent.name,
			'ou', v_kind, 'cn', v_holder, 'organization_identifier', v_ent.uscc)));
	v_item := jsonb_build_object('cert_id', p_app, 'price_fen', v_total, 'lines', v_lines,
		'dropped', '[]'::jsonb, 'platforms', to_jsonb(v_platforms),
		'current_platforms', '[]'::jsonb, 'holder', v_holder, 'lock_kind', v_kind,
		'vendor', NULL, 'enterprise_name', v_ent.name, 'product', 'new_certificate',
		'application', v_app);
	INSERT INTO orders (id, number, account_id, identity_id, uscc, status, total_fen,
			created_at, expires_at)
		VALUES (p_order, v_number, p_account, p_identity,
			CASE WHEN p_type = 'enterprise' THEN p_uscc END, 'pending_payment', v_total,
			clock_timestamp(), v_expires);
	INSERT INTO order_items (order_id, seq, cert_id, account_id, uscc, price_fen, platforms,
			detail, product)
		VALUES (p_order, 0, p_app, v_holder_account, v_ent.uscc, v_total, v_platforms, v_item,
			'new_certificate');
	PERFORM outbox_emit('orders.order.created', p_order::text, jsonb_build_object(
		'order_id', p_order, 'number', v_number, 'account_id', p_account,
		'identity_id', p_identity, 'uscc', CASE WHEN p_type = 'enterprise' THEN p_uscc END,
		'total_fen', v_total, 'expires_at', api_time(v_expires), 'created_at', api_time(v_now),
		'items', jsonb_build_array(jsonb_build_object('cert_id', p_app, 'price_fen', v_total,
			'platforms', to_jsonb(v_platforms), 'lines', v_lines, 'dropped', '[]'::jsonb,
			'holder_account_id', v_holder_account, 'cert_uscc', v_ent.uscc,
			'application', v_app))));
	RETURN jsonb_build_object('id', p_order, 'number', v_number, 'status', 'pending_payment',
		'total_fen', v_total, 'items', jsonb_build_array(v_item || jsonb_build_object(
			'progress', 'unpaid', 'renewed_at', NULL, 'renewed_serial', NULL)),
		'expires_at', api_time(v_expires), 'created_at', api_time(v_now), 'paid_at', NULL,
		'closed_at', NULL, 'fulfilled_at', NULL, 'refunded_at', NULL,
		'uscc', CASE WHEN p_type = 'enterprise' THEN p_uscc END, 'quote_id', NULL,
		'placed_by', p_account, 'late_payments', '[]'::jsonb,
		'progress', jsonb_build_object('renewed', 0, 'total', 1));
END
$$;
