-- A run with nothing left to send keeps its final counts: the admin list
-- and /metrics read these instead of counting delivery rows, and the rows
-- of old runs can be deleted without losing the figures.
ALTER TABLE digest_runs ADD COLUMN settled_at TIMESTAMP;
ALTER TABLE digest_runs ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digest_runs ADD COLUMN failed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digest_runs ADD COLUMN skipped_count BIGINT NOT NULL DEFAULT 0;
