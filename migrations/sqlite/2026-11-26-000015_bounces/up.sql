-- An address whose mail bounced softly on `newsletter.soft_bounce_limit`
-- different days in a row is suppressed with its own reason. SQLite cannot
-- change a CHECK constraint, so the table is built anew.
CREATE TABLE newsletter_suppressions_new (
    email_hash TEXT PRIMARY KEY NOT NULL,
    email TEXT,
    reason TEXT NOT NULL
        CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'erased', 'soft_bounces')),
    detail TEXT,
    created_at TIMESTAMP NOT NULL,
    keyed BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO newsletter_suppressions_new (email_hash, email, reason, detail, created_at, keyed)
    SELECT email_hash, email, reason, detail, created_at, keyed FROM newsletter_suppressions;
DROP TABLE newsletter_suppressions;
ALTER TABLE newsletter_suppressions_new RENAME TO newsletter_suppressions;
CREATE INDEX newsletter_suppressions_created_at ON newsletter_suppressions (created_at);

-- The current run of soft bounces of an address, by the same keyed hash as
-- the suppression list: on how many different days, the last one, and what
-- the last report said.
CREATE TABLE newsletter_soft_bounces (
    email_hash TEXT PRIMARY KEY NOT NULL,
    days INTEGER NOT NULL,
    first_at TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL,
    detail TEXT
);
