-- One number that changes whenever anything a reader sees of articles
-- changes, whoever changed it: every instance keeps its published listings
-- and articles in memory while this number stands still. Kept by the
-- database, so that no writer can forget it.
CREATE TABLE content_stamp (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO content_stamp (id, version) VALUES (1, 0);

CREATE TRIGGER articles_stamp_insert AFTER INSERT ON articles
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER articles_stamp_update AFTER UPDATE ON articles
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER articles_stamp_delete AFTER DELETE ON articles
BEGIN UPDATE content_stamp SET version = version + 1; END;

CREATE TRIGGER article_tags_stamp_insert AFTER INSERT ON article_tags
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER article_tags_stamp_update AFTER UPDATE ON article_tags
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER article_tags_stamp_delete AFTER DELETE ON article_tags
BEGIN UPDATE content_stamp SET version = version + 1; END;

CREATE TRIGGER sections_stamp_insert AFTER INSERT ON sections
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER sections_stamp_update AFTER UPDATE ON sections
BEGIN UPDATE content_stamp SET version = version + 1; END;
CREATE TRIGGER sections_stamp_delete AFTER DELETE ON sections
BEGIN UPDATE content_stamp SET version = version + 1; END;
