-- Who did what in the console and the staff API, and when: one row per
-- action, written in the same transaction as the change it records.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_kind, subject_id, at);
CREATE INDEX audit_log_by_time ON audit_log (at);
