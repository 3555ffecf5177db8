CREATE TABLE sections (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE articles (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    standfirst TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    body_html TEXT NOT NULL,
    section_id TEXT NOT NULL REFERENCES sections (id),
    byline TEXT NOT NULL,
    author_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'published', 'withdrawn')),
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX articles_listing ON articles (status, published_at DESC, id DESC);
CREATE INDEX articles_by_section ON articles (section_id, status, published_at DESC);

CREATE TABLE article_tags (
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (article_id, tag)
);
CREATE INDEX article_tags_by_tag ON article_tags (tag);

CREATE TABLE article_revisions (
    id TEXT PRIMARY KEY NOT NULL,
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    editor_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    changed_at TIMESTAMP NOT NULL,
    changed_fields TEXT NOT NULL,
    previous TEXT NOT NULL
);
CREATE INDEX article_revisions_by_article ON article_revisions (article_id, changed_at);

CREATE TABLE entitlements (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('trial', 'company_seat', 'grant')),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    source_id TEXT,
    granted_by TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    note TEXT,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX entitlements_by_account ON entitlements (account_id);

-- Full-text search over title, standfirst and body, weighted in that order.
ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A')
    || setweight(to_tsvector('english', standfirst), 'B')
    || setweight(to_tsvector('english', body_markdown), 'C')
) STORED;
CREATE INDEX articles_search ON articles USING GIN (search);
