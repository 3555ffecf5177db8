DROP TRIGGER sections_stamp ON sections;
DROP TRIGGER article_tags_stamp ON article_tags;
DROP TRIGGER articles_stamp ON articles;
DROP FUNCTION bump_content_stamp();
DROP TABLE content_stamp;
