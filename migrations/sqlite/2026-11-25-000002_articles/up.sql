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

-- Full-text search over title, standfirst and body, kept in step by triggers.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, standfirst, body_markdown,
    content = 'articles', content_rowid = 'rowid', tokenize = 'porter unicode61'
);
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, standfirst, body_markdown)
    VALUES (new.rowid, new.title, new.standfirst, new.body_markdown);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, standfirst, body_markdown)
    VALUES ('delete', old.rowid, old.title, old.standfirst, old.body_markdown);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, standfirst, body_markdown ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, standfirst, body_markdown)
    VALUES ('delete', old.rowid, old.title, old.standfirst, old.body_markdown);
    INSERT INTO articles_fts (rowid, title, standfirst, body_markdown)
    VALUES (new.rowid, new.title, new.standfirst, new.body_markdown);
END;
