-- issuance 090: fewer index entries per imported certificate (issue 13's
-- import rate goal). Measured on 10^5 staged rows (BEGIN; the merge's
-- statements under EXPLAIN ANALYZE; ROLLBACK): the heap and index writes
-- of lineages and certificates were 1.1 s + 1.5 s of the 4.3 s merge, one
-- entry in each of 7 + 8 indexes per row. An audit of every statement that
-- reads these tables (services/issuance/store.c, the functions under
-- deploy/sql/issuance, the foreign keys), with the list, interop, binding,
-- renewal and reminder statements EXPLAINed before and after on 10^5
-- certificates (the plans did not change but for the one noted):
-- - lineages_uscc (uscc) and lineages_account (account_id) are the leading
--   column of lineages_uscc_not_after / _holder / _applied and of
--   lineages_account_not_after: every lookup by uscc or account uses those
--   (an account's list by holder reads its rows through
--   lineages_account_not_after instead of lineages_account, then sorts
--   them as before). Dropped.
-- - lineages_account_not_after holds only bound lineages: every statement
--   that reads it asks for one account (account_id = $n implies NOT NULL),
--   and an imported or vendor-synced lineage has no account until its
--   holder binds the key.
-- - certificates_replaced_by holds only replaced certificates: nothing
--   asks for replaced_by = x but the foreign key's check when a
--   certificate is deleted (which implies NOT NULL); the latest
--   certificate of every lineage, i.e. every imported one, has none.
-- - certificates_latest_not_after (not_after, cert_id) WHERE latest was
--   CA管理's order before the list read lineages.not_after (011); no
--   statement uses it now (the reminders' range is certificates_reminder_due,
--   the staff's whole-registry list sorts lineages, not certificates).
--   Dropped.
-- The imported certificate now writes 4 lineage index entries (primary key,
-- uscc × not_after / holder / applied) and 5 certificate ones (primary key,
-- issuer+serial, one latest per lineage, reminder range, serial for
-- interop) instead of 7 + 7.
DROP INDEX lineages_uscc;
DROP INDEX lineages_account;
DROP INDEX lineages_account_not_after;
CREATE INDEX lineages_account_not_after ON lineages (account_id, not_after, id)
	WHERE account_id IS NOT NULL;
DROP INDEX certificates_replaced_by;
CREATE INDEX certificates_replaced_by ON certificates (replaced_by)
	WHERE replaced_by IS NOT NULL;
DROP INDEX certificates_latest_not_after;
