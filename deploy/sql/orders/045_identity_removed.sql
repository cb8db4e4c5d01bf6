-- orders 045 (issue 19): auth.identity.removed. An identity that ended
-- (removed by the administrator, its certificate cancelled, replaced,
-- superseded, handed over) leaves the identities read model, so that an
-- administrator can no longer apply for a new certificate for that member
-- (new_cert_order: MEMBER_NOT_FOUND). Kept apart, like revoked_certs, so
-- that a late auth.identity.added (the two events are consumed by two
-- consumers, in any order) never brings the identity back.
CREATE TABLE removed_identities (
	identity_id uuid PRIMARY KEY,
	account_id  uuid NOT NULL,
	uscc        text,
	role        text,
	reason      text NOT NULL,
	removed_at  timestamptz NOT NULL
);
