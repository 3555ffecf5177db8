DROP INDEX digest_deliveries_pending;
CREATE INDEX digest_deliveries_due ON digest_deliveries (status, next_attempt_at);
