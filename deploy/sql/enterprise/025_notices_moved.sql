-- Review results and administrator application decisions are told by
-- auth's notice pipeline now (issue 17: auth consumes
-- enterprise.record.approved/rejected and
-- enterprise.admin_application.approved/rejected). enterprise sends no SMS
-- any more: rows still waiting are closed, and the decisions' functions
-- (001_enterprise.sql, 010_admin_applications.sql) add none (the trigger
-- drops the insert; the table stays as the history of what was sent).
UPDATE notifications SET sent_at = now() WHERE sent_at IS NULL;

CREATE FUNCTION notifications_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END $$;

CREATE TRIGGER notifications_moved BEFORE INSERT ON notifications
	FOR EACH ROW EXECUTE FUNCTION notifications_moved();
