-- Claims walk a run's pending deliveries in subscriber order, each one
-- starting where the last stopped, instead of scanning every pending row
-- of every run in (status, next_attempt_at) order.
DROP INDEX digest_deliveries_due;
CREATE INDEX digest_deliveries_pending ON digest_deliveries (run_id, subscriber_id)
    WHERE status = 'pending';
