-- orders 001: the platform catalogue and its prices. A price is a version:
-- rows are only ever inserted (a trigger refuses UPDATE and DELETE), each
-- with the time it takes effect, who set it and why, so the table is its own
-- audit trail. lock_kind NULL is the base price; a row for a lock kind
-- overrides the base for that kind. The price of (platform, kind) at time t
-- is the latest row of that kind (else of the base) with effective_at <= t.

CREATE TABLE platforms (
	code       text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
	name       text NOT NULL CHECK (name <> ''),
	sort       int NOT NULL,
	active     boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform_prices (
	id             bigserial PRIMARY KEY,
	platform       text NOT NULL REFERENCES platforms (code),
	lock_kind      text CHECK (lock_kind IN ('master', 'project_lead', 'agent', 'cost_engineer', 'personal')),
	renew_fen      bigint NOT NULL CHECK (renew_fen >= 0),
	add_fen        bigint NOT NULL CHECK (add_fen >= 0),
	effective_at   timestamptz NOT NULL,
	staff_id       uuid,          -- NULL for the seed of this migration
	staff_username text,
	reason         text NOT NULL CHECK (reason <> ''),
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_prices_lookup
	ON platform_prices (platform, lock_kind, effective_at DESC, id DESC);

CREATE FUNCTION platform_prices_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'PRICE_HISTORY_IMMUTABLE';
END
$$;

CREATE TRIGGER platform_prices_immutable
	BEFORE UPDATE OR DELETE ON platform_prices
	FOR EACH ROW EXECUTE FUNCTION platform_prices_immutable();

-- RFC 3339 UTC with seconds, the one time format of the API and the events.
CREATE FUNCTION api_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- The twelve platforms of the seed guide (API.md).
INSERT INTO platforms (code, name, sort) VALUES
	('LN_JSGC', '辽宁建设工程信息网', 1),
	('LN_ZTB', '辽宁省招标投标监管网', 2),
	('LN_ZFCG', '辽宁省政府采购平台', 3),
	('LN_GGZY', '辽宁省公共资源平台', 4),
	('SY_GGZY', '沈阳市公共资源平台', 5),
	('DL_GGZY', '大连市公共资源平台', 6),
	('DL_ZFCG', '大连政府采购平台', 7),
	('AS_GGZY', '鞍山公共资源平台', 8),
	('JZ_GGZY', '锦州市公共资源平台', 9),
	('CY_GGZY', '朝阳市公共资源平台', 10),
	('HC_DZCG', '华晨集团电子采购平台', 11),
	('SF_JSXM', '沈抚示范区建设项目管理平台', 12);

-- Seed prices, in fen. Base: keeping 辽宁建设工程信息网 100 元, keeping any
-- other platform 50 元, a new association 250 元 (300 元 for 辽宁建设工程信息网).
-- These reproduce the guide's orders: a master lock keeping five platforms
-- and adding 大连政府采购平台 pays 550 元, a cost-engineer lock keeping
-- 辽宁建设工程信息网 100 元. Personal locks (个人锁) pay less.
INSERT INTO platform_prices (platform, lock_kind, renew_fen, add_fen, effective_at, reason)
SELECT code, NULL,
	CASE code WHEN 'LN_JSGC' THEN 10000 ELSE 5000 END,
	CASE code WHEN 'LN_JSGC' THEN 30000 ELSE 25000 END,
	'2020-01-01T00:00:00Z', 'seed catalogue (migration 001)'
FROM platforms;

INSERT INTO platform_prices (platform, lock_kind, renew_fen, add_fen, effective_at, reason)
SELECT code, 'personal',
	CASE code WHEN 'LN_JSGC' THEN 8000 ELSE 4000 END,
	20000,
	'2020-01-01T00:00:00Z', 'seed catalogue (migration 001)'
FROM platforms;
