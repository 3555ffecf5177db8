-- One number that changes whenever who a session belongs to, or what an
-- account may read, changes: a session ends, an account changes, a right to
-- read is granted, changed or taken back. Every instance keeps the readers
-- of live sessions and their access in memory while it stands still. A new
-- session does not move it: nothing kept can be wrong about it.
CREATE TABLE access_stamp (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO access_stamp (id, version) VALUES (1, 0);

CREATE TRIGGER sessions_stamp_delete AFTER DELETE ON sessions
BEGIN UPDATE access_stamp SET version = version + 1; END;

CREATE TRIGGER accounts_stamp_update AFTER UPDATE ON accounts
BEGIN UPDATE access_stamp SET version = version + 1; END;
CREATE TRIGGER accounts_stamp_delete AFTER DELETE ON accounts
BEGIN UPDATE access_stamp SET version = version + 1; END;

CREATE TRIGGER entitlements_stamp_insert AFTER INSERT ON entitlements
BEGIN UPDATE access_stamp SET version = version + 1; END;
CREATE TRIGGER entitlements_stamp_update AFTER UPDATE ON entitlements
BEGIN UPDATE access_stamp SET version = version + 1; END;
CREATE TRIGGER entitlements_stamp_delete AFTER DELETE ON entitlements
BEGIN UPDATE access_stamp SET version = version + 1; END;
