-- Removed identities whose open sessions are known to have dropped them
-- (issue 12: removing a member ends their rights at once, including in
-- sessions that have that identity current). The sessions live in Redis and
-- are rewritten right after the removal commits (request.c,
-- auth_sessions_drop_identity); sessions_dropped_at records that the rewrite
-- succeeded. A removal whose rewrite did not happen — auth died between the
-- commit and the rewrite, or Redis failed — keeps NULL, and the
-- session_drops sweep (sweep.c) rewrites the account's sessions again until
-- it succeeds: otherwise a session that keeps being used (sliding TTL) would
-- act with the removed identity for ever in every service that reads it.
ALTER TABLE identities ADD COLUMN sessions_dropped_at timestamptz;

-- Removals before this migration: their rewrite ran (or their sessions are
-- long gone); nothing to retry.
UPDATE identities SET sessions_dropped_at = COALESCE(removed_at, now())
	WHERE status = 'removed';

CREATE INDEX identities_sessions_to_drop ON identities (removed_at)
	WHERE status = 'removed' AND sessions_dropped_at IS NULL;
