ALTER TABLE outbox DROP COLUMN headers;
ALTER TABLE outbox DROP COLUMN stream;
DROP TABLE newsletter_suppressions;
DROP TABLE newsletter_tokens;
DROP TABLE newsletter_subscribers;
