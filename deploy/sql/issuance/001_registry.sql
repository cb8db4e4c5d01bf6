-- issuance: the certificate registry, renewal entitlements, issuance
-- intents (reserved serial, resumable, never issued twice) and the jobs
-- forwarded to vendor CAs. Rules that span rows live in the functions of
-- 002_functions.sql, each one transaction.

-- A lineage is the certificate on one USB key across its renewals: its id is
-- the API's and the events' cert_id, stable across renewals.
CREATE TABLE lineages (
	id              uuid PRIMARY KEY,
	type            text NOT NULL CHECK (type IN ('enterprise', 'personal')),
	lock_kind       text NOT NULL CHECK (lock_kind IN ('master', 'project_lead', 'agent', 'cost_engineer', 'personal')),
	holder          text NOT NULL,
	enterprise_name text,
	uscc            text,
	lock_id         uuid,
	account_id      uuid,
	created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lineages_account ON lineages (account_id);
CREATE INDEX lineages_uscc ON lineages (uscc);

-- Every X.509 certificate the platform knows: first seen at a login (the
-- lock was bound) or issued by a renewal. replaces/replaced_by is the
-- lineage; exactly one certificate of a lineage is its latest.
CREATE TABLE certificates (
	id                 uuid PRIMARY KEY,
	cert_id            uuid NOT NULL REFERENCES lineages (id),
	issuer             text NOT NULL,
	serial             text NOT NULL CHECK (serial ~ '^[0-9A-F]{1,64}$'),
	vendor             text NOT NULL,
	subject            text,
	fingerprint_sha256 text,
	spki_sha256        text,
	key_type           text,
	not_before         timestamptz NOT NULL,
	not_after          timestamptz NOT NULL,
	platforms          text[] NOT NULL DEFAULT '{}',
	pem                text,
	chain              text,
	source             text NOT NULL CHECK (source IN ('login', 'renewal')),
	replaces           uuid REFERENCES certificates (id) DEFERRABLE INITIALLY DEFERRED,
	replaced_by        uuid REFERENCES certificates (id) DEFERRABLE INITIALLY DEFERRED,
	issuance_id        uuid,
	revoked_at         timestamptz,
	revocation_reason  text CHECK (revocation_reason IN ('unspecified', 'key_compromise',
		'ca_compromise', 'affiliation_changed', 'superseded', 'cessation_of_operation')),
	registered_at      timestamptz NOT NULL DEFAULT now(),
	UNIQUE (issuer, serial),
	CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE UNIQUE INDEX certificates_one_latest ON certificates (cert_id) WHERE replaced_by IS NULL;
-- The interop API asks by serial alone; leading zeros do not count.
CREATE INDEX certificates_serial ON certificates ((ltrim(serial, '0')));
CREATE INDEX certificates_revoked ON certificates (issuer, revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_latest_not_after ON certificates (not_after, cert_id) WHERE replaced_by IS NULL;

-- Orders awaiting payment, per certificate (orders.order.created until paid
-- or cancelled): CERT_IN_OPEN_ORDER in the list.
CREATE TABLE open_orders (
	order_id   uuid NOT NULL,
	cert_id    uuid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, cert_id)
);
CREATE INDEX open_orders_cert ON open_orders (cert_id);

-- One renewal per certificate of a paid order (orders.order.paid), with the
-- platform set the renewed certificate is valid for. Used once:
-- paid -> reserved (an intent holds it) -> used (the certificate issued).
-- cert_id has no foreign key: the order may arrive before the registry
-- hears of the certificate.
CREATE TABLE entitlements (
	id           uuid PRIMARY KEY,
	order_id     uuid NOT NULL,
	order_number text,
	account_id   uuid,
	cert_id      uuid NOT NULL,
	platforms    text[] NOT NULL,
	status       text NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'reserved', 'used')),
	issuance_id  uuid,
	paid_at      timestamptz NOT NULL,
	used_at      timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now(),
	UNIQUE (order_id, cert_id),
	CHECK ((status = 'paid') = (issuance_id IS NULL))
);
CREATE INDEX entitlements_open ON entitlements (cert_id, paid_at) WHERE status <> 'used';

-- The intent to issue, written before the vendor CA is asked: the reserved
-- serial and validity, the CSR, the platforms. Its id is the vendor
-- request's idempotency key. A lease lets one attempt at a time talk to the
-- vendor; a crash or a vendor failure leaves it pending for the resumer or
-- the holder's retry.
CREATE TABLE issuances (
	id              uuid PRIMARY KEY,
	cert_id         uuid NOT NULL REFERENCES lineages (id),
	previous_id     uuid NOT NULL REFERENCES certificates (id),
	entitlement_id  uuid NOT NULL REFERENCES entitlements (id),
	order_id        uuid NOT NULL,
	adapter         text NOT NULL,
	serial          text NOT NULL UNIQUE CHECK (serial ~ '^[0-9A-F]{1,64}$'),
	csr_pem         text NOT NULL,
	csr_spki        text NOT NULL,
	not_before      timestamptz NOT NULL,
	not_after       timestamptz NOT NULL,
	platforms       text[] NOT NULL,
	status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'issued', 'failed')),
	attempts        int NOT NULL DEFAULT 0,
	lease_until     timestamptz,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_error      text,
	certificate_id  uuid REFERENCES certificates (id) DEFERRABLE INITIALLY DEFERRED,
	created_at      timestamptz NOT NULL DEFAULT now(),
	issued_at       timestamptz,
	CHECK ((status = 'issued') = (certificate_id IS NOT NULL))
);
CREATE UNIQUE INDEX issuances_one_pending ON issuances (cert_id) WHERE status = 'pending';
CREATE INDEX issuances_previous ON issuances (previous_id);
CREATE INDEX issuances_due ON issuances (next_attempt_at) WHERE status = 'pending';

-- Revocations to forward to the vendor CA that issued the certificate
-- (a remote adapter); the registry itself is already updated.
CREATE TABLE vendor_jobs (
	id              uuid PRIMARY KEY,
	kind            text NOT NULL CHECK (kind IN ('revoke')),
	vendor          text NOT NULL,
	certificate_id  uuid NOT NULL REFERENCES certificates (id),
	serial          text NOT NULL,
	issuer          text NOT NULL,
	reason          text NOT NULL,
	revoked_at      timestamptz NOT NULL,
	status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
	attempts        int NOT NULL DEFAULT 0,
	lease_until     timestamptz,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_error      text,
	created_at      timestamptz NOT NULL DEFAULT now(),
	done_at         timestamptz
);
CREATE INDEX vendor_jobs_due ON vendor_jobs (next_attempt_at) WHERE status = 'pending';
