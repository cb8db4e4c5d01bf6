-- orders 002: what orders knows of the other services, learned only from
-- their events (services/orders/events.c), never from their tables.

-- auth.identity.added: who acts for which enterprise, in which role.
CREATE TABLE identities (
	identity_id     uuid PRIMARY KEY,
	account_id      uuid NOT NULL,
	type            text NOT NULL CHECK (type IN ('enterprise', 'personal')),
	enterprise_name text,
	uscc            text,
	role            text,
	added_at        timestamptz NOT NULL
);
CREATE INDEX identities_account ON identities (account_id);

-- enterprise.profile.completed: the account's personal info is complete.
CREATE TABLE profiles (
	account_id   uuid PRIMARY KEY,
	name         text NOT NULL,
	completed_at timestamptz NOT NULL
);

-- enterprise.record.approved: the enterprise is approved (the latest
-- decision of the latest record wins).
CREATE TABLE enterprises (
	uscc        text PRIMARY KEY,
	record_id   uuid NOT NULL,
	seq         int NOT NULL,
	name        text NOT NULL,
	approved_at timestamptz NOT NULL
);

-- issuance.cert.registered / .renewed: the registry, as far as renewal
-- orders need it. A renewal only moves validity forward, so a late
-- registered event never rolls a renewed certificate back.
CREATE TABLE certs (
	cert_id         uuid PRIMARY KEY,
	serial          text NOT NULL,
	type            text NOT NULL CHECK (type IN ('enterprise', 'personal')),
	holder          text,
	enterprise_name text,
	uscc            text,
	lock_kind       text NOT NULL CHECK (lock_kind IN ('master', 'project_lead', 'agent', 'cost_engineer', 'personal')),
	vendor          text,
	account_id      uuid,
	not_before      timestamptz NOT NULL,
	not_after       timestamptz NOT NULL,
	platforms       text[] NOT NULL,
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certs_uscc ON certs (uscc);
CREATE INDEX certs_account ON certs (account_id);

-- issuance.cert.revoked, kept apart so that it survives whatever order the
-- registry's events arrive in.
CREATE TABLE revoked_certs (
	cert_id    uuid PRIMARY KEY,
	serial     text,
	reason     text,
	revoked_at timestamptz NOT NULL
);
