DROP TRIGGER entitlements_stamp ON entitlements;
DROP TRIGGER accounts_stamp ON accounts;
DROP TRIGGER sessions_stamp ON sessions;
DROP FUNCTION bump_access_stamp();
DROP TABLE access_stamp;
