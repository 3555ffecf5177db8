CREATE TABLE trial_decisions_old (
    id TEXT PRIMARY KEY NOT NULL,
    trial_id TEXT NOT NULL REFERENCES trial_requests (id) ON DELETE CASCADE,
    admin_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    action TEXT NOT NULL CHECK (action IN ('approve', 'reject', 'undo')),
    note TEXT,
    decided_at TIMESTAMP NOT NULL
);
INSERT INTO trial_decisions_old (id, trial_id, admin_id, action, note, decided_at)
    SELECT id, trial_id, admin_id, action, note, decided_at FROM trial_decisions
    WHERE action <> 'end';
DROP TABLE trial_decisions;
ALTER TABLE trial_decisions_old RENAME TO trial_decisions;
CREATE INDEX trial_decisions_by_trial ON trial_decisions (trial_id, decided_at);
