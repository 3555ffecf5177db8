-- One number that changes whenever anything a reader sees of articles
-- changes, whoever changed it: every instance keeps its published listings
-- and articles in memory while this number stands still. Kept by the
-- database, so that no writer can forget it.
CREATE TABLE content_stamp (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO content_stamp (id, version) VALUES (1, 0);

CREATE FUNCTION bump_content_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE content_stamp SET version = version + 1;
    RETURN NULL;
END
$$;

-- Once per statement: publishing many scheduled articles bumps it once.
CREATE TRIGGER articles_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_content_stamp();
CREATE TRIGGER article_tags_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON article_tags
    FOR EACH STATEMENT EXECUTE FUNCTION bump_content_stamp();
CREATE TRIGGER sections_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sections
    FOR EACH STATEMENT EXECUTE FUNCTION bump_content_stamp();
