ALTER TABLE digest_runs DROP COLUMN last_result_at;
