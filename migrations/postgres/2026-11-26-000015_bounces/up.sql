-- An address whose mail bounced softly on `newsletter.soft_bounce_limit`
-- different days in a row is suppressed with its own reason.
ALTER TABLE newsletter_suppressions DROP CONSTRAINT newsletter_suppressions_reason_check;
ALTER TABLE newsletter_suppressions ADD CONSTRAINT newsletter_suppressions_reason_check
    CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'erased', 'soft_bounces'));

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
