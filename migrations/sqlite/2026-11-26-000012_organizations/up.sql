-- Company subscriptions. `seats_used` is kept on the organisation row so
-- that a seat is taken by one conditional UPDATE (… AND seats_used <
-- seat_count) in the transaction that inserts the membership: the database,
-- not a read-then-write, decides who gets the last seat. The CHECK also
-- refuses a seat count below the seats in use.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    seat_count INTEGER NOT NULL,
    seats_used INTEGER NOT NULL DEFAULT 0,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    notes TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (seats_used >= 0 AND seats_used <= seat_count),
    CHECK (ends_at > starts_at)
);

-- An email domain belongs to one organisation at most.
CREATE TABLE organization_domains (
    domain TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX organization_domains_by_organization ON organization_domains (organization_id);

CREATE TABLE organization_members (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    entitlement_id TEXT REFERENCES entitlements (id) ON DELETE SET NULL,
    joined_at TIMESTAMP NOT NULL,
    removed_at TIMESTAMP
);
-- A reader holds at most one seat at a time.
CREATE UNIQUE INDEX organization_members_one_seat ON organization_members (account_id)
    WHERE removed_at IS NULL;
CREATE INDEX organization_members_by_organization ON organization_members (organization_id, joined_at);

CREATE TABLE organization_managers (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, account_id)
);

-- Join links: only the hash of the token is kept, with the address it was
-- sent to; it may be spent once, before it expires.
CREATE TABLE organization_join_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
