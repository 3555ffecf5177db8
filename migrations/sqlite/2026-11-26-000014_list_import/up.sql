-- Subscribers brought in from another system keep the name and the source
-- that system recorded (`origin`, e.g. `mailchimp`); `source` stays the
-- channel of a sign-up made here.
ALTER TABLE newsletter_subscribers ADD COLUMN name TEXT;
ALTER TABLE newsletter_subscribers ADD COLUMN origin TEXT;

-- Suppression hashes become an HMAC under a key derived from the site key,
-- so that the hash of an erased address cannot be matched against a list
-- of addresses by whoever reads the table. A row written before keeps its
-- plain SHA-256 with `keyed` false until the application, which holds the
-- key, re-hashes it at start-up: HMAC(key, stored SHA-256) is the same
-- value a new row gets, so erased addresses need not be known.
ALTER TABLE newsletter_suppressions ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT FALSE;

-- One import of a CSV file: resumable from the row after `last_row` (its
-- rows are numbered as a spreadsheet shows them, the header being row 1),
-- found again by the file's SHA-256. The counts add up over every run of it.
CREATE TABLE newsletter_imports (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('subscribers', 'suppressions')),
    file_sha256 TEXT NOT NULL,
    total_rows BIGINT NOT NULL,
    last_row BIGINT NOT NULL,
    new_count BIGINT NOT NULL,
    updated_count BIGINT NOT NULL,
    unchanged_count BIGINT NOT NULL,
    invalid_count BIGINT NOT NULL,
    suppressed_count BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX newsletter_imports_file ON newsletter_imports (kind, file_sha256);
