DROP TABLE admin_summaries;
DROP TABLE trial_decisions;
DROP TABLE trial_requests;
