-- enterprise: business-licence recognition (issue 20). One row per licence
-- uploaded with ?purpose=business_license: the work queue of the
-- recognition threads (services/enterprise/ocr.c: pending → running under a
-- lease → done or failed) and its result. `fields` is what licence.c
-- extracted: {"<field>": {"value", "normalised", "confidence"} | null}.
-- Records find the recognition of the licence their data names
-- (data.basic.files.business_license = file_id) and compare on every read,
-- so a recognition that ends after the submission still reaches the
-- reviewer.
CREATE TABLE licence_ocr (
	file_id      text PRIMARY KEY CHECK (file_id ~ '^[0-9a-f-]{36}$'),
	status       text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'running', 'done', 'failed')),
	reason       text,
	fields       jsonb,
	attempts     int NOT NULL DEFAULT 0,
	leased_until timestamptz,
	elapsed_ms   int,
	created_at   timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz,
	CHECK ((status = 'failed') = (reason IS NOT NULL)),
	CHECK ((status = 'done') = (fields IS NOT NULL))
);
CREATE INDEX licence_ocr_due ON licence_ocr (created_at)
	WHERE status IN ('pending', 'running');
