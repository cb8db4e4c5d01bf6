-- orders 011: a certificate's platform associations may be unknown (issue
-- 13): issuance.cert.registered carries platforms null for a certificate
-- first seen at a login and never imported. NULL here; a quote or order for
-- it asks the administrator to confirm the current set (409
-- PLATFORMS_UNCONFIRMED, items[i].current_platforms) instead of pricing
-- every platform as new.
ALTER TABLE certs ALTER COLUMN platforms DROP NOT NULL;
