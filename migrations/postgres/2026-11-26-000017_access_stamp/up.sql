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

CREATE FUNCTION bump_access_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_stamp SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_stamp AFTER DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_stamp();
CREATE TRIGGER accounts_stamp AFTER UPDATE OR DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_stamp();
CREATE TRIGGER entitlements_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON entitlements
    FOR EACH STATEMENT EXECUTE FUNCTION bump_access_stamp();
