ALTER TABLE digest_runs DROP COLUMN skipped_count;
ALTER TABLE digest_runs DROP COLUMN failed_count;
ALTER TABLE digest_runs DROP COLUMN sent_count;
ALTER TABLE digest_runs DROP COLUMN settled_at;
