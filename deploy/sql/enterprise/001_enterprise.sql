-- enterprise: attachments (files), personal info (profiles), enterprise
-- records with their review history, the handling-point catalogue, the
-- working-day calendar of the review target, and the read models learned
-- from auth's events (accounts → the admin's phone, members → who belongs
-- to which enterprise). State changes that emit events are PL/pgSQL
-- functions, so the change and its outbox row are one statement.

-- RFC 3339 in UTC, seconds precision, as on the wire.
CREATE FUNCTION ent_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- One row per upload; the bytes live in the blob store under sha256, so the
-- same bytes uploaded twice are stored once.
CREATE TABLE files (
	id               uuid PRIMARY KEY,
	owner_account_id uuid NOT NULL,
	sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	size             int NOT NULL CHECK (size BETWEEN 1 AND 5242880),
	content_type     text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
	created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner ON files (owner_account_id);

-- Read model of auth.account.registered: the phone that gets review SMS.
CREATE TABLE accounts (
	account_id uuid PRIMARY KEY,
	phone      text NOT NULL CHECK (phone ~ '^1[3-9][0-9]{9}$'),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Read model of auth.identity.added (enterprise identities only): lets an
-- enterprise's admin read the uploads of the enterprise's people.
CREATE TABLE members (
	identity_id uuid PRIMARY KEY,
	account_id  uuid NOT NULL,
	uscc        text NOT NULL,
	role        text NOT NULL CHECK (role IN ('admin', 'project_lead', 'agent'))
);
CREATE INDEX members_account_uscc ON members (account_id, uscc);

-- 个人信息, one per account. completed_at is set once, with the event.
CREATE TABLE profiles (
	account_id         uuid PRIMARY KEY,
	name               text,
	id_number          text CHECK (id_number ~ '^[0-9]{17}[0-9X]$'),
	email              text,
	id_card_front_file uuid REFERENCES files (id),
	id_card_back_file  uuid REFERENCES files (id),
	completed_at       timestamptz,
	updated_at         timestamptz NOT NULL DEFAULT now()
);

-- 办理点: the service outlets an enterprise may choose.
CREATE TABLE handling_points (
	code   text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
	name   text NOT NULL,
	region text NOT NULL,
	active boolean NOT NULL DEFAULT true
);
INSERT INTO handling_points (code, name, region) VALUES
	('LN_SY', '沈阳市办理点', '辽宁省/沈阳市'),
	('LN_DL', '大连市办理点', '辽宁省/大连市'),
	('LN_AS', '鞍山市办理点', '辽宁省/鞍山市'),
	('LN_FS', '抚顺市办理点', '辽宁省/抚顺市'),
	('LN_BX', '本溪市办理点', '辽宁省/本溪市'),
	('LN_DD', '丹东市办理点', '辽宁省/丹东市'),
	('LN_JZ', '锦州市办理点', '辽宁省/锦州市'),
	('LN_YK', '营口市办理点', '辽宁省/营口市'),
	('LN_FX', '阜新市办理点', '辽宁省/阜新市'),
	('LN_LY', '辽阳市办理点', '辽宁省/辽阳市'),
	('LN_PJ', '盘锦市办理点', '辽宁省/盘锦市'),
	('LN_TL', '铁岭市办理点', '辽宁省/铁岭市'),
	('LN_CY', '朝阳市办理点', '辽宁省/朝阳市'),
	('LN_HLD', '葫芦岛市办理点', '辽宁省/葫芦岛市'),
	('LN_SF', '沈抚示范区办理点', '辽宁省/沈抚示范区');

-- Days that differ from the Monday–Friday rule (法定节假日 off, 调休 on),
-- filled by operators; the one-working-day review target reads it.
CREATE TABLE workday_exceptions (
	day     date PRIMARY KEY,
	workday boolean NOT NULL,
	note    text
);

-- One record per enterprise (USCC). `data` is the working copy the admin
-- edits and submits; `approved_data` is what is in force once approved. A
-- record with approved_data and work_status <> 'approved' has a change
-- under way (draft, pending or rejected) while approved_data stays in force.
CREATE TABLE records (
	id               uuid PRIMARY KEY,
	uscc             text NOT NULL UNIQUE CHECK (uscc ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'),
	work_status      text NOT NULL DEFAULT 'draft'
		CHECK (work_status IN ('draft', 'pending', 'rejected', 'approved')),
	data             jsonb NOT NULL,
	version          bigint NOT NULL DEFAULT 1,
	seq              int NOT NULL DEFAULT 0, -- the last history entry
	approved_data    jsonb,
	approved_at      timestamptz,
	admin_account_id uuid,                   -- who submitted last: told the result
	submitted_at     timestamptz,            -- of the pending submission
	claimed_by       uuid,                   -- reviewer working on it
	claimed_until    timestamptz,
	created_at       timestamptz NOT NULL DEFAULT now(),
	updated_at       timestamptz NOT NULL DEFAULT now(),
	CHECK ((work_status = 'pending') = (submitted_at IS NOT NULL)),
	CHECK ((work_status = 'approved') <= (approved_data IS NOT NULL)),
	CHECK ((claimed_by IS NULL) = (claimed_until IS NULL))
);
CREATE INDEX records_queue ON records (submitted_at, id) WHERE work_status = 'pending';

-- Every submission and decision, kept for good.
CREATE TABLE history (
	record_id     uuid NOT NULL REFERENCES records (id),
	seq           int NOT NULL CHECK (seq >= 1),
	type          text NOT NULL CHECK (type IN ('submitted', 'approved', 'rejected')),
	status        text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
	opinion       text,
	change        boolean NOT NULL,       -- a change to an approved record
	account_id    uuid,                   -- the submitting admin
	reviewer_id   uuid,                   -- the deciding reviewer
	data          jsonb,                  -- what was submitted
	at            timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (record_id, seq),
	CHECK (type <> 'rejected' OR opinion IS NOT NULL)
);

-- Review results to text to the admin: written by record_decide in the
-- decision's own transaction, sent by the service's notifier (notify.c) once
-- the account's phone is known (accounts), at least once: a lease keeps other
-- processes off a row while it is being sent.
CREATE TABLE notifications (
	id          bigserial PRIMARY KEY,
	record_id   uuid NOT NULL REFERENCES records (id),
	seq         int NOT NULL,
	account_id  uuid NOT NULL,
	result      text NOT NULL CHECK (result IN ('approved', 'rejected')),
	change      boolean NOT NULL,
	name        text NOT NULL,
	opinion     text,
	attempts    int NOT NULL DEFAULT 0,
	lease_until timestamptz NOT NULL DEFAULT '-infinity',
	sent_at     timestamptz,
	created_at  timestamptz NOT NULL DEFAULT now(),
	UNIQUE (record_id, seq)
);
CREATE INDEX notifications_unsent ON notifications (id) WHERE sent_at IS NULL;

-- Saves the given (non-NULL) fields of an account's profile; the first time
-- the profile becomes complete it gets completed_at and the event
-- enterprise.profile.completed (id p_event). Refuses 'FILE_NOT_FOUND:<field>'
-- when a scan is not an upload of the account.
CREATE FUNCTION profile_save(p_account uuid, p_name text, p_id_number text,
	p_email text, p_front uuid, p_back uuid, p_event uuid)
RETURNS SETOF profiles
LANGUAGE plpgsql AS $$
DECLARE
	v profiles%ROWTYPE;
BEGIN
	IF p_front IS NOT NULL AND NOT EXISTS (SELECT 1 FROM files f
			WHERE f.id = p_front AND f.owner_account_id = p_account) THEN
		RAISE EXCEPTION 'FILE_NOT_FOUND:id_card_front_file';
	END IF;
	IF p_back IS NOT NULL AND NOT EXISTS (SELECT 1 FROM files f
			WHERE f.id = p_back AND f.owner_account_id = p_account) THEN
		RAISE EXCEPTION 'FILE_NOT_FOUND:id_card_back_file';
	END IF;
	INSERT INTO profiles AS p (account_id, name, id_number, email,
		id_card_front_file, id_card_back_file)
	VALUES (p_account, p_name, p_id_number, p_email, p_front, p_back)
	ON CONFLICT (account_id) DO UPDATE SET
		name = COALESCE(EXCLUDED.name, p.name),
		id_number = COALESCE(EXCLUDED.id_number, p.id_number),
		email = COALESCE(EXCLUDED.email, p.email),
		id_card_front_file = COALESCE(EXCLUDED.id_card_front_file, p.id_card_front_file),
		id_card_back_file = COALESCE(EXCLUDED.id_card_back_file, p.id_card_back_file),
		updated_at = now()
	RETURNING * INTO v;
	IF v.completed_at IS NULL AND v.name IS NOT NULL AND v.id_number IS NOT NULL
			AND v.id_card_front_file IS NOT NULL AND v.id_card_back_file IS NOT NULL THEN
		UPDATE profiles SET completed_at = now() WHERE account_id = p_account
			RETURNING * INTO v;
		PERFORM outbox_emit('enterprise.profile.completed', p_account::text, jsonb_build_object('account_id', p_account, 'name', v.name,
				'completed_at', ent_time(v.completed_at)), p_event);
	END IF;
	RETURN NEXT v;
END
$$;

-- Submits the working copy (draft or rejected → pending) if it is still at
-- p_version: a history entry and enterprise.record.submitted. Refuses
-- NOT_FOUND, RECORD_NOT_EDITABLE, VERSION_CHANGED (the caller reloads).
CREATE FUNCTION record_submit(p_record uuid, p_version bigint, p_account uuid,
	p_event uuid)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	r records%ROWTYPE;
	v_seq int;
BEGIN
	SELECT * INTO r FROM records WHERE id = p_record FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF r.work_status NOT IN ('draft', 'rejected') THEN
		RAISE EXCEPTION 'RECORD_NOT_EDITABLE';
	END IF;
	IF r.version <> p_version THEN
		RAISE EXCEPTION 'VERSION_CHANGED';
	END IF;
	v_seq := r.seq + 1;
	UPDATE records SET work_status = 'pending', seq = v_seq, submitted_at = now(),
		admin_account_id = p_account, claimed_by = NULL, claimed_until = NULL,
		version = version + 1, updated_at = now()
		WHERE id = p_record;
	INSERT INTO history (record_id, seq, type, status, change, account_id, data)
		VALUES (p_record, v_seq, 'submitted', 'pending', r.approved_data IS NOT NULL,
			p_account, r.data);
	PERFORM outbox_emit('enterprise.record.submitted', p_record::text, jsonb_build_object('record_id', p_record, 'uscc', r.uscc,
			'name', r.data->'basic'->>'name', 'seq', v_seq,
			'submitted_by', p_account, 'submitted_at', ent_time(now()),
			'change', r.approved_data IS NOT NULL), p_event);
	RETURN v_seq;
END
$$;

-- Claims a pending record for a reviewer for p_ttl seconds (again by the
-- same reviewer: extends). Refuses NOT_FOUND, RECORD_NOT_PENDING,
-- RECORD_CLAIMED (another reviewer's claim is still running).
CREATE FUNCTION record_claim(p_record uuid, p_reviewer uuid, p_ttl int)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	r records%ROWTYPE;
	v_until timestamptz := now() + make_interval(secs => p_ttl);
BEGIN
	SELECT * INTO r FROM records WHERE id = p_record FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF r.work_status <> 'pending' THEN
		RAISE EXCEPTION 'RECORD_NOT_PENDING';
	END IF;
	IF r.claimed_by IS NOT NULL AND r.claimed_by <> p_reviewer AND r.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	UPDATE records SET claimed_by = p_reviewer, claimed_until = v_until
		WHERE id = p_record;
	RETURN v_until;
END
$$;

-- Gives a claim back. Refuses like record_claim; releasing a record nobody
-- holds is a no-op.
CREATE FUNCTION record_release(p_record uuid, p_reviewer uuid)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r records%ROWTYPE;
BEGIN
	SELECT * INTO r FROM records WHERE id = p_record FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF r.work_status <> 'pending' THEN
		RAISE EXCEPTION 'RECORD_NOT_PENDING';
	END IF;
	IF r.claimed_by IS NOT NULL AND r.claimed_by <> p_reviewer AND r.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	UPDATE records SET claimed_by = NULL, claimed_until = NULL WHERE id = p_record;
END
$$;

-- Decides a pending record (approve or reject with p_opinion): the status,
-- a history entry, enterprise.record.approved / .rejected and the SMS to the
-- admin (notifications), once: the row lock and the status check make a
-- second decision fail. Refuses NOT_FOUND,
-- RECORD_NOT_PENDING, RECORD_CLAIMED (another reviewer holds the claim).
CREATE FUNCTION record_decide(p_record uuid, p_reviewer uuid, p_approve boolean,
	p_opinion text, p_event uuid)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	r records%ROWTYPE;
	v_seq int;
	v_change boolean;
	v_name text;
	v_inv jsonb;
BEGIN
	SELECT * INTO r FROM records WHERE id = p_record FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'NOT_FOUND';
	END IF;
	IF r.work_status <> 'pending' THEN
		RAISE EXCEPTION 'RECORD_NOT_PENDING';
	END IF;
	IF r.claimed_by IS NOT NULL AND r.claimed_by <> p_reviewer AND r.claimed_until > now() THEN
		RAISE EXCEPTION 'RECORD_CLAIMED';
	END IF;
	v_seq := r.seq + 1;
	v_change := r.approved_data IS NOT NULL;
	v_name := r.data->'basic'->>'name';
	v_inv := r.data->'invoice';
	IF p_approve THEN
		UPDATE records SET work_status = 'approved', approved_data = data,
			approved_at = now(), seq = v_seq, submitted_at = NULL,
			claimed_by = NULL, claimed_until = NULL, version = version + 1,
			updated_at = now()
			WHERE id = p_record;
		INSERT INTO history (record_id, seq, type, status, opinion, change, reviewer_id)
			VALUES (p_record, v_seq, 'approved', 'approved', p_opinion, v_change, p_reviewer);
		PERFORM outbox_emit('enterprise.record.approved', p_record::text, jsonb_build_object('record_id', p_record, 'uscc', r.uscc, 'name', v_name,
				'seq', v_seq, 'taxpayer_type', v_inv->>'taxpayer_type',
				'invoice', jsonb_build_object('title', v_name, 'taxpayer_id', r.uscc,
					'invoice_address', v_inv->'invoice_address',
					'invoice_phone', v_inv->'invoice_phone',
					'bank_name', v_inv->'bank_name',
					'bank_account', v_inv->'bank_account'),
				'admin_account_id', r.admin_account_id, 'reviewer_id', p_reviewer,
				'opinion', p_opinion, 'approved_at', ent_time(now()),
				'change', v_change), p_event);
	ELSE
		UPDATE records SET work_status = 'rejected', seq = v_seq, submitted_at = NULL,
			claimed_by = NULL, claimed_until = NULL, version = version + 1,
			updated_at = now()
			WHERE id = p_record;
		INSERT INTO history (record_id, seq, type, status, opinion, change, reviewer_id)
			VALUES (p_record, v_seq, 'rejected', 'rejected', p_opinion, v_change, p_reviewer);
		PERFORM outbox_emit('enterprise.record.rejected', p_record::text, jsonb_build_object('record_id', p_record, 'uscc', r.uscc, 'name', v_name,
				'seq', v_seq, 'opinion', p_opinion, 'reviewer_id', p_reviewer,
				'admin_account_id', r.admin_account_id,
				'rejected_at', ent_time(now()), 'change', v_change), p_event);
	END IF;
	INSERT INTO notifications (record_id, seq, account_id, result, change, name, opinion)
		VALUES (p_record, v_seq, r.admin_account_id,
			CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END, v_change,
			COALESCE(v_name, r.uscc), p_opinion);
	RETURN v_seq;
END
$$;
