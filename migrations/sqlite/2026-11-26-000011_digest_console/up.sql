-- When a result of one of the run's deliveries was last written: once the
-- run has nothing left to send, the time it finished. Kept on the run, so
-- the console can show it after the delivery rows are deleted.
ALTER TABLE digest_runs ADD COLUMN last_result_at TIMESTAMP;
