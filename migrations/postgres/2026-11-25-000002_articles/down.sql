DROP TABLE entitlements;
DROP TABLE article_revisions;
DROP TABLE article_tags;
DROP TABLE articles;
DROP TABLE sections;
