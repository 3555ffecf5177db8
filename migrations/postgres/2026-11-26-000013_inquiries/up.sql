-- Sales inquiries: multi-user pricing requests from the /contact-sales form
-- and POST /api/v1/inquiries, worked by admins with a handled flag and a note.
CREATE TABLE inquiries (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    company TEXT NOT NULL,
    seats INTEGER NOT NULL CHECK (seats > 0),
    message TEXT,
    -- Whether the sender was sent an acknowledgement: at most one an hour
    -- goes to any address, so that the form cannot be used to flood a
    -- mailbox someone else typed in.
    acknowledged BOOLEAN NOT NULL,
    received_at TIMESTAMP NOT NULL,
    handled BOOLEAN NOT NULL DEFAULT FALSE,
    handled_at TIMESTAMP,
    handled_by TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    note TEXT
);
CREATE INDEX inquiries_newest ON inquiries (received_at);
CREATE INDEX inquiries_by_email ON inquiries (email, received_at);
