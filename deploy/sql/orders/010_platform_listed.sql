-- orders 010: the platform catalogue on the bus (issue 13). Every platform
-- is announced once as orders.platform.listed (code, name, active), so that
-- services that must know the catalogue (issuance checks the platform codes
-- of an import) keep a read model of it. The catalogue changes only by
-- migration; a migration that adds or deactivates a platform emits the
-- event again for it.
SELECT outbox_emit('orders.platform.listed', code,
	jsonb_build_object('code', code, 'name', name, 'active', active))
	FROM platforms ORDER BY sort;
