DROP TRIGGER entitlements_stamp_delete;
DROP TRIGGER entitlements_stamp_update;
DROP TRIGGER entitlements_stamp_insert;
DROP TRIGGER accounts_stamp_delete;
DROP TRIGGER accounts_stamp_update;
DROP TRIGGER sessions_stamp_delete;
DROP TABLE access_stamp;
