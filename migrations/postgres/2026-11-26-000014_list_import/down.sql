DROP TABLE newsletter_imports;
ALTER TABLE newsletter_suppressions DROP COLUMN keyed;
ALTER TABLE newsletter_subscribers DROP COLUMN origin;
ALTER TABLE newsletter_subscribers DROP COLUMN name;
