-- initdb.sql — roles and schemas of the caplat database, run once by the
-- postgres image on an empty data directory (/docker-entrypoint-initdb.d/), as
-- the superuser, in the database caplat (POSTGRES_DB). One LOGIN role per
-- service, owning its own schema and nothing else; PUBLIC gets nothing: the same
-- bootstrap deploy/scripts/suite.py does for `make run`. Passwords come from the
-- environment (CAPLAT_DB_PASSWORD_<SVC>, read with psql 15's \getenv), never
-- from this file. deploy/k8s/postgres.yaml carries a copy of this file.
\set ON_ERROR_STOP on

\getenv pw_auth CAPLAT_DB_PASSWORD_AUTH
\getenv pw_enterprise CAPLAT_DB_PASSWORD_ENTERPRISE
\getenv pw_orders CAPLAT_DB_PASSWORD_ORDERS
\getenv pw_payments CAPLAT_DB_PASSWORD_PAYMENTS
\getenv pw_issuance CAPLAT_DB_PASSWORD_ISSUANCE
\if :{?pw_auth}
\else
\set pw_auth ''
\endif
\if :{?pw_enterprise}
\else
\set pw_enterprise ''
\endif
\if :{?pw_orders}
\else
\set pw_orders ''
\endif
\if :{?pw_payments}
\else
\set pw_payments ''
\endif
\if :{?pw_issuance}
\else
\set pw_issuance ''
\endif
SELECT :'pw_auth' = '' OR :'pw_enterprise' = '' OR :'pw_orders' = ''
    OR :'pw_payments' = '' OR :'pw_issuance' = '' AS caplat_pw_missing \gset
\if :caplat_pw_missing
DO $$BEGIN RAISE EXCEPTION 'caplat: set CAPLAT_DB_PASSWORD_AUTH, _ENTERPRISE, _ORDERS, _PAYMENTS and _ISSUANCE'; END$$;
\endif

-- Nothing for PUBLIC: a role sees only what it is granted below.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE caplat FROM PUBLIC;

CREATE ROLE auth LOGIN PASSWORD :'pw_auth';
CREATE ROLE enterprise LOGIN PASSWORD :'pw_enterprise';
CREATE ROLE orders LOGIN PASSWORD :'pw_orders';
CREATE ROLE payments LOGIN PASSWORD :'pw_payments';
CREATE ROLE issuance LOGIN PASSWORD :'pw_issuance';

GRANT CONNECT ON DATABASE caplat TO auth, enterprise, orders, payments, issuance;

CREATE SCHEMA auth AUTHORIZATION auth;
CREATE SCHEMA enterprise AUTHORIZATION enterprise;
CREATE SCHEMA orders AUTHORIZATION orders;
CREATE SCHEMA payments AUTHORIZATION payments;
CREATE SCHEMA issuance AUTHORIZATION issuance;

-- Unqualified names resolve in the service's own schema only.
ALTER ROLE auth IN DATABASE caplat SET search_path = auth;
ALTER ROLE enterprise IN DATABASE caplat SET search_path = enterprise;
ALTER ROLE orders IN DATABASE caplat SET search_path = orders;
ALTER ROLE payments IN DATABASE caplat SET search_path = payments;
ALTER ROLE issuance IN DATABASE caplat SET search_path = issuance;
