DROP TABLE newsletter_soft_bounces;
UPDATE newsletter_suppressions SET reason = 'hard_bounce' WHERE reason = 'soft_bounces';
CREATE TABLE newsletter_suppressions_old (
    email_hash TEXT PRIMARY KEY NOT NULL,
    email TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'erased')),
    detail TEXT,
    created_at TIMESTAMP NOT NULL,
    keyed BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO newsletter_suppressions_old (email_hash, email, reason, detail, created_at, keyed)
    SELECT email_hash, email, reason, detail, created_at, keyed FROM newsletter_suppressions;
DROP TABLE newsletter_suppressions;
ALTER TABLE newsletter_suppressions_old RENAME TO newsletter_suppressions;
CREATE INDEX newsletter_suppressions_created_at ON newsletter_suppressions (created_at);
