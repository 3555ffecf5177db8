-- One digest per local calendar date: the unique key is what keeps two
-- workers, or a restart, from creating a second run for the same morning.
-- A run covers the articles published in (since, cutoff]. Its state is not
-- stored: it follows from `prepared_at` and its delivery rows.
CREATE TABLE digest_runs (
    id TEXT PRIMARY KEY NOT NULL,
    run_date TEXT NOT NULL UNIQUE,
    since TIMESTAMP NOT NULL,
    cutoff TIMESTAMP NOT NULL,
    article_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    prepared_at TIMESTAMP
);
CREATE INDEX digest_runs_cutoff ON digest_runs (cutoff);

-- One row per (run, subscriber): the unique key makes the fan-out safe to
-- repeat. `variant` is the JSON list of sections the message shows.
-- `leased_until` hides a claimed row from other workers while it is being
-- sent; `next_attempt_at` is the back-off after a temporary failure.
CREATE TABLE digest_deliveries (
    run_id TEXT NOT NULL REFERENCES digest_runs (id) ON DELETE CASCADE,
    subscriber_id TEXT NOT NULL REFERENCES newsletter_subscribers (id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    leased_until TIMESTAMP,
    last_error TEXT,
    sent_at TIMESTAMP,
    PRIMARY KEY (run_id, subscriber_id)
);
CREATE INDEX digest_deliveries_due ON digest_deliveries (status, next_attempt_at);
CREATE INDEX digest_deliveries_subscriber ON digest_deliveries (subscriber_id);
CREATE INDEX digest_deliveries_sent_at ON digest_deliveries (sent_at);
