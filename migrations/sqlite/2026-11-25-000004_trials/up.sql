CREATE TABLE trial_requests (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    company TEXT NOT NULL,
    job_title TEXT NOT NULL,
    reason TEXT,
    email_domain TEXT NOT NULL,
    client_ip TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    flags TEXT NOT NULL DEFAULT '[]',
    requested_at TIMESTAMP NOT NULL,
    decision_due_by TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    decided_by TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    decision_note TEXT,
    decision_id TEXT,
    entitlement_id TEXT REFERENCES entitlements (id) ON DELETE SET NULL
);
-- One request in play per account: pending, or approved once and for all.
CREATE UNIQUE INDEX trial_requests_one_live_per_account ON trial_requests (account_id)
    WHERE status IN ('pending', 'approved');
CREATE INDEX trial_requests_queue ON trial_requests (status, requested_at);
CREATE INDEX trial_requests_by_domain ON trial_requests (email_domain, requested_at);
CREATE INDEX trial_requests_by_ip ON trial_requests (client_ip, requested_at);

CREATE TABLE trial_decisions (
    id TEXT PRIMARY KEY NOT NULL,
    trial_id TEXT NOT NULL REFERENCES trial_requests (id) ON DELETE CASCADE,
    admin_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    action TEXT NOT NULL CHECK (action IN ('approve', 'reject', 'undo')),
    note TEXT,
    decided_at TIMESTAMP NOT NULL
);
CREATE INDEX trial_decisions_by_trial ON trial_decisions (trial_id, decided_at);

-- One morning summary per local date, however many workers run.
CREATE TABLE admin_summaries (
    summary_date TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL
);
