DROP TABLE newsletter_soft_bounces;
UPDATE newsletter_suppressions SET reason = 'hard_bounce' WHERE reason = 'soft_bounces';
ALTER TABLE newsletter_suppressions DROP CONSTRAINT newsletter_suppressions_reason_check;
ALTER TABLE newsletter_suppressions ADD CONSTRAINT newsletter_suppressions_reason_check
    CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'erased'));
