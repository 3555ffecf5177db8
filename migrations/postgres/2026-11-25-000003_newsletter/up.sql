-- One row per address that signed up. `sections` is a JSON array of section
-- slugs; `paused_until` holds mail back until that time.
CREATE TABLE newsletter_subscribers (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    sections TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('web', 'api')),
    consent_text TEXT NOT NULL,
    paused_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    confirmation_sent_at TIMESTAMP,
    confirmed_at TIMESTAMP,
    unsubscribed_at TIMESTAMP
);
CREATE INDEX newsletter_subscribers_account_id ON newsletter_subscribers (account_id);
CREATE INDEX newsletter_subscribers_status ON newsletter_subscribers (status, updated_at);

-- Links sent by email: `confirm` is single-use, `manage` (preferences and
-- unsubscribe) works until it expires.
CREATE TABLE newsletter_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES newsletter_subscribers (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('confirm', 'manage')),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX newsletter_tokens_subscriber_id ON newsletter_tokens (subscriber_id);
CREATE INDEX newsletter_tokens_expires_at ON newsletter_tokens (expires_at);

-- Addresses that get no newsletter mail. The key is the SHA-256 of the
-- address, so that an erased subscriber stays suppressed without the
-- address being kept; `email` is NULL once erased.
CREATE TABLE newsletter_suppressions (
    email_hash TEXT PRIMARY KEY NOT NULL,
    email TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'erased')),
    detail TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX newsletter_suppressions_created_at ON newsletter_suppressions (created_at);

-- Newsletter mail carries its own sender and list headers.
ALTER TABLE outbox ADD COLUMN stream TEXT NOT NULL DEFAULT 'transactional'
    CHECK (stream IN ('transactional', 'newsletter'));
ALTER TABLE outbox ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
