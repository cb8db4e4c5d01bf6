-- Notices (issue 17): what auth was asked to tell whom, the in-app inbox and
-- the SMS deliveries. A notice is accepted once per notice_id
-- (notice_accept): its inbox message and its SMS row are written in that
-- same transaction, so the same notice twice is one message and one SMS.

-- cert_id (issuance's lineage id) → the certificate auth knows on a lock,
-- from issuance.cert.registered: the recipient {cert_id} is the account the
-- certificate's key is bound to.
CREATE TABLE notice_certs (
	cert_id    uuid PRIMARY KEY,
	issuer     text NOT NULL,
	serial     text NOT NULL,
	account_id uuid
);

-- order_id → who placed it and its number, from orders.order.created: the
-- payments' events (payment.succeeded, invoice.issued/posted) name the order
-- only.
CREATE TABLE notice_orders (
	order_id   uuid PRIMARY KEY,
	account_id uuid NOT NULL,
	number     text NOT NULL
);

-- Every notice asked for, delivered or not (reason says why not).
CREATE TABLE notices (
	notice_id  text PRIMARY KEY,
	kind       text NOT NULL,
	source     text NOT NULL,      -- the event type that asked
	recipient  jsonb NOT NULL,
	account_id uuid,
	status     text NOT NULL CHECK (status IN ('delivered', 'undeliverable')),
	reason     text,               -- undeliverable: no_account, no_admin, no_binding, no_phone
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The inbox: one message per notice.
CREATE TABLE messages (
	id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	seq        bigserial UNIQUE,   -- the cursor order
	notice_id  text NOT NULL UNIQUE REFERENCES notices (notice_id),
	account_id uuid NOT NULL REFERENCES accounts (id),
	kind       text NOT NULL,
	title      text NOT NULL,
	body       text NOT NULL,
	params     jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now(),
	read_at    timestamptz
);
CREATE INDEX messages_account ON messages (account_id, seq DESC);
CREATE INDEX messages_unread ON messages (account_id) WHERE read_at IS NULL;

-- One SMS per notice. pending → sending (claimed, with a lease) → sent; or
-- back to pending (a provider error, after a backoff), or dead (a template
-- or signature error, or too many attempts) until an operator resends it.
-- A sending row whose lease ran out (the sender died) is claimed again and
-- sent with the same OutId (notice_id): the provider keeps it one SMS.
CREATE TABLE sms_deliveries (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	seq         bigserial UNIQUE,
	notice_id   text NOT NULL UNIQUE REFERENCES notices (notice_id),
	account_id  uuid,
	phone       text NOT NULL,
	template    text NOT NULL,     -- the notice kind (the provider's template by configuration)
	params      jsonb NOT NULL,    -- the template's parameters (strings)
	text        text NOT NULL,     -- the rendered text
	status      text NOT NULL DEFAULT 'pending'
	            CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
	attempts    int NOT NULL DEFAULT 0,
	next_at     timestamptz NOT NULL DEFAULT now(),
	lease_until timestamptz,
	last_error  text,
	provider_id text,              -- the provider's BizId
	created_at  timestamptz NOT NULL DEFAULT now(),
	sent_at     timestamptz,
	dead_at     timestamptz
);
CREATE INDEX sms_deliveries_due ON sms_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX sms_deliveries_leased ON sms_deliveries (lease_until) WHERE status = 'sending';
CREATE INDEX sms_deliveries_dead ON sms_deliveries (seq DESC) WHERE status = 'dead';

-- Accepts a notice once: resolves the recipient to an account and its phone,
-- writes the inbox message (p_inbox) and the SMS row (p_sms). Returns the
-- outcome ('delivered', 'undeliverable', 'duplicate'), the account and the
-- reason. p_recipient is the event's recipient object.
CREATE FUNCTION notice_accept(p_notice text, p_kind text, p_source text,
	p_recipient jsonb, p_title text, p_body text, p_params jsonb,
	p_sms_params jsonb, p_sms_text text, p_inbox boolean, p_sms boolean,
	OUT outcome text, OUT account uuid, OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
	v_phone text;
BEGIN
	IF EXISTS (SELECT 1 FROM notices WHERE notice_id = p_notice) THEN
		outcome := 'duplicate';
		RETURN;
	END IF;
	IF p_recipient ? 'account_id' THEN
		SELECT a.id INTO account FROM accounts a
			WHERE a.id = (p_recipient->>'account_id')::uuid;
		IF account IS NULL THEN reason := 'no_account'; END IF;
	ELSIF p_recipient ? 'uscc' THEN
		SELECT i.account_id INTO account FROM identities i
			WHERE i.uscc = p_recipient->>'uscc' AND i.role = 'admin'
			AND i.status = 'active' LIMIT 1;
		IF account IS NULL THEN reason := 'no_admin'; END IF;
	ELSIF p_recipient ? 'cert_id' THEN
		SELECT COALESCE(l.account_id, c.account_id) INTO account
			FROM notice_certs c
			LEFT JOIN lock_certs lc ON lc.issuer = c.issuer AND lc.serial = c.serial
			LEFT JOIN locks l ON l.id = lc.lock_id
			WHERE c.cert_id = (p_recipient->>'cert_id')::uuid;
		IF account IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts WHERE id = account) THEN
			account := NULL;
		END IF;
		IF account IS NULL THEN reason := 'no_binding'; END IF;
	ELSE
		reason := 'bad_recipient';
	END IF;
	IF account IS NULL THEN
		INSERT INTO notices (notice_id, kind, source, recipient, status, reason)
			VALUES (p_notice, p_kind, p_source, p_recipient, 'undeliverable', reason);
		outcome := 'undeliverable';
		RETURN;
	END IF;
	INSERT INTO notices (notice_id, kind, source, recipient, account_id, status)
		VALUES (p_notice, p_kind, p_source, p_recipient, account, 'delivered');
	IF p_inbox THEN
		INSERT INTO messages (notice_id, account_id, kind, title, body, params)
			VALUES (p_notice, account, p_kind, p_title, p_body, p_params);
	END IF;
	IF p_sms THEN
		SELECT a.phone INTO v_phone FROM accounts a WHERE a.id = account;
		INSERT INTO sms_deliveries (notice_id, account_id, phone, template, params, text)
			VALUES (p_notice, account, v_phone, p_kind, p_sms_params, p_sms_text);
	END IF;
	outcome := 'delivered';
END $$;
