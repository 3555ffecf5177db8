-- Claims walk a run's pending deliveries in subscriber order, each one
-- starting where the last stopped. The old (status, next_attempt_at) index
-- made every claim visit every pending entry of every run, and the entries
-- left behind by rows already sent, so a run slowed as it went.
DROP INDEX digest_deliveries_due;
CREATE INDEX digest_deliveries_pending ON digest_deliveries (run_id, subscriber_id)
    WHERE status = 'pending';

-- Room on each page for a claim's new row version: the columns a claim
-- sets are in no index, so the update stays on the page and touches no
-- index (a heap-only tuple).
ALTER TABLE digest_deliveries SET (fillfactor = 80);
