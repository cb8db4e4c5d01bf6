-- auth: accounts, USB keys (locks) and their certificates, identities, staff.
-- One lock, one person, one account is enforced here, not only in C.

CREATE TABLE accounts (
	id            uuid PRIMARY KEY,
	phone         text NOT NULL UNIQUE CHECK (phone ~ '^1[3-9][0-9]{9}$'),
	password_hash text,
	failed_logins int NOT NULL DEFAULT 0,
	locked_until  timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now()
);

-- A lock is a USB key, recognised across renewals by its certificate lineage.
CREATE TABLE locks (
	id              uuid PRIMARY KEY,
	kind            text NOT NULL CHECK (kind IN ('master', 'project_lead', 'agent', 'cost_engineer', 'personal')),
	holder          text NOT NULL,
	enterprise_name text,
	uscc            text,
	account_id      uuid UNIQUE REFERENCES accounts (id), -- an account has at most one lock
	bound_at        timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now(),
	CHECK ((account_id IS NULL) = (bound_at IS NULL))
);

-- Every certificate seen on a lock; a renewed certificate joins its lock.
CREATE TABLE lock_certs (
	issuer     text NOT NULL,
	serial     text NOT NULL,
	lock_id    uuid NOT NULL REFERENCES locks (id),
	not_after  timestamptz NOT NULL,
	first_seen timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (issuer, serial)
);
CREATE INDEX lock_certs_lock ON lock_certs (lock_id);

CREATE TABLE identities (
	id              uuid PRIMARY KEY,
	account_id      uuid NOT NULL REFERENCES accounts (id),
	type            text NOT NULL CHECK (type IN ('enterprise', 'personal')),
	enterprise_name text,
	uscc            text,
	role            text CHECK (role IN ('admin', 'project_lead', 'agent')),
	created_at      timestamptz NOT NULL DEFAULT now(),
	CHECK ((type = 'personal') = (uscc IS NULL AND role IS NULL AND enterprise_name IS NULL))
);
-- One administrator per enterprise; one identity per account and enterprise.
CREATE UNIQUE INDEX identities_one_admin ON identities (uscc) WHERE role = 'admin';
CREATE UNIQUE INDEX identities_account_enterprise ON identities (account_id, uscc) WHERE type = 'enterprise';
CREATE UNIQUE INDEX identities_one_personal ON identities (account_id) WHERE type = 'personal';

CREATE TABLE current_identity (
	account_id  uuid PRIMARY KEY REFERENCES accounts (id),
	identity_id uuid NOT NULL REFERENCES identities (id)
);

CREATE TABLE staff (
	id            uuid PRIMARY KEY,
	username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9_.-]{2,31}$'),
	password_hash text NOT NULL,
	roles         text[] NOT NULL CHECK (roles <@ ARRAY['reviewer', 'finance', 'operator']::text[]),
	failed_logins int NOT NULL DEFAULT 0,
	locked_until  timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now()
);

-- Read model of the registry's revocations (issuance.cert.revoked).
CREATE TABLE revoked_certs (
	issuer     text NOT NULL,
	serial     text NOT NULL,
	reason     text,
	revoked_at timestamptz NOT NULL,
	PRIMARY KEY (issuer, serial)
);
