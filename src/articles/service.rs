//! The editor's desk and the reader's view of articles.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::QueryResult;

use super::cache::{Kept, ReaderCache};
use super::markdown;
use super::model::{
    Article, ArticleChanges, ArticleId, ArticleStatus, NewArticle, NewRevision, NewSection,
    Revision, RevisionId, Section, SectionId, Snapshot,
};
use super::store::{self, Filter, Order};
pub use super::views::{Entry, Listing, Page, Story};
use crate::access;
use crate::access::service::KeptDecisions;
use crate::access::Decision;
use crate::access::Level;
use crate::access::Reason;
use crate::accounts;
use crate::accounts::service::{require, KeptSessions};
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::config::ArticleSettings;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{FieldError, Fields, Invalid, PlainText, Slug};

const MAX_TAGS: usize = 10;
const MAX_BODY_CHARS: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("no such article")]
    NotFound,
    #[error("{detail}")]
    Conflict {
        reason: &'static str,
        detail: &'static str,
    },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored revision data is unreadable")]
    Corrupt(#[source] serde_json::Error),
    #[error("the search ran past its time limit")]
    SearchTimedOut,
}

impl From<DieselError> for ArticleError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Conflict {
                reason: "slug_taken",
                detail: "another article took this slug at the same moment; try again",
            },
            other if store::is_timeout(&other) => Self::SearchTimedOut,
            other => Self::Storage(StorageError::Query(other)),
        }
    }
}

/// An article as an editor submits it.
#[derive(Debug, Default)]
pub struct Draft {
    pub title: String,
    pub standfirst: String,
    pub body: String,
    pub section: String,
    pub tags: Vec<String>,
    pub byline: Option<String>,
}

/// An edit: only the fields given change.
#[derive(Debug, Default)]
pub struct Edit {
    pub title: Option<String>,
    pub standfirst: Option<String>,
    pub body: Option<String>,
    pub section: Option<String>,
    pub tags: Option<Vec<String>>,
    pub byline: Option<String>,
}

/// The editors' desk: articles in every state, or one, latest changed first.
#[derive(Debug, Default)]
pub struct Desk {
    pub status: Option<ArticleStatus>,
    pub section: Option<String>,
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One kept edit: when, by whom (while their account exists), which fields,
/// and the article as it was before.
#[derive(Debug, Clone)]
pub struct PastVersion {
    pub revision: Revision,
    pub editor: Option<String>,
    pub changed_fields: Vec<String>,
    pub previous: Snapshot,
}

/// Something done to an article, from the audit trail.
#[derive(Debug, Clone)]
pub struct Action {
    pub at: NaiveDateTime,
    /// The account's name while it exists; `None` for the worker too.
    pub actor: Option<String>,
    pub action: String,
    pub detail: Option<String>,
}

/// An article as it is now, its kept edits (latest first) and what was
/// done to it (oldest first).
#[derive(Debug, Clone)]
pub struct History {
    pub entry: Entry,
    pub versions: Vec<PastVersion>,
    pub actions: Vec<Action>,
}

/// One article as a given reader may see it.
pub struct Reading {
    pub story: Arc<Kept<Story>>,
    pub decision: Decision,
}

impl Reading {
    pub fn entry(&self) -> &Entry {
        &self.story.entry
    }

    /// The full body, or the teaser, as HTML.
    pub fn body_html(&self) -> &str {
        match self.decision.level {
            Level::Full => &self.story.entry.article.body_html,
            Level::Teaser => &self.story.teaser_html,
        }
    }

    pub fn related(&self) -> &[Entry] {
        &self.story.related
    }

    /// Whether this is what every reader who is not logged in gets, and so
    /// may be answered from what is kept for them.
    pub fn is_anonymous(&self) -> bool {
        self.decision.reason == Reason::NotLoggedIn
    }
}

/// Who reads an article: nobody logged in, an account its handler has
/// looked up already, or the token of a session cookie not looked up yet.
pub enum Viewer {
    Anonymous,
    Account(Account),
    Session(String),
}

#[derive(Clone)]
pub struct ArticleService {
    pool: Pool,
    clock: SharedClock,
    settings: ArticleSettings,
    cache: Arc<ReaderCache>,
    readers: Readers,
    on_section_added: OnSectionAdded,
}

/// What another capability does when a section is added, in the adding
/// transaction, given the sections' slugs before and after; returns how
/// many it changed. The composition root supplies it (the newsletter's
/// readers of every section get the new one).
pub type OnSectionAdded =
    Arc<dyn Fn(&mut DbConnection, &[String], &[String]) -> QueryResult<usize> + Send + Sync>;

/// Who reads, and what they may read, as kept by the accounts and access
/// capabilities.
#[derive(Clone)]
pub struct Readers {
    pub sessions: Arc<KeptSessions>,
    pub decisions: Arc<KeptDecisions>,
}

impl ArticleService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        settings: ArticleSettings,
        cache: Arc<ReaderCache>,
        readers: Readers,
        on_section_added: OnSectionAdded,
    ) -> Self {
        Self {
            pool,
            clock,
            settings,
            cache,
            readers,
            on_section_added,
        }
    }

    /// Runs one write transaction, then drops what is kept for readers: the
    /// next read sees the change.
    async fn write<T, F>(&self, work: F) -> Result<T, ArticleError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ArticleError> + Send + 'static,
        T: Send + 'static,
    {
        let written = db::run(&self.pool, move |conn| db::transaction(conn, work)).await;
        if written.is_ok() {
            self.cache.forget();
        }
        written
    }

    fn search_time_limit(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.search_timeout_ms)
    }

    pub fn settings(&self) -> &ArticleSettings {
        &self.settings
    }

    /// The site's sections, in their order: every page's navigation shows
    /// them, so they are kept with the published articles.
    pub async fn sections(&self) -> Result<Vec<Section>, ArticleError> {
        let ticket = self.cache.check(&self.pool).await?;
        let kept = match self.cache.sections() {
            Some(kept) => kept,
            None => {
                let sections = db::run(&self.pool, |conn| {
                    store::sections(conn).map_err(StorageError::from)
                })
                .await?;
                self.cache.keep_sections(ticket, sections)
            }
        };
        Ok(kept.to_vec())
    }

    /// The sections with how many articles (in any state) each holds: the
    /// sections page of the console.
    pub async fn section_overview(
        &self,
        editor: &Account,
    ) -> Result<Vec<(Section, i64)>, ArticleError> {
        require(editor, Role::Editor)?;
        db::run(&self.pool, |conn| {
            let mut counts = store::article_counts(conn)?;
            Ok(store::sections(conn)?
                .into_iter()
                .map(|s| {
                    let count = counts.remove(&s.id).unwrap_or(0);
                    (s, count)
                })
                .collect())
        })
        .await
    }

    /// The sections an editor files articles under: what the article form
    /// offers.
    pub async fn filing_sections(&self, editor: &Account) -> Result<Vec<Section>, ArticleError> {
        require(editor, Role::Editor)?;
        self.sections().await
    }

    #[tracing::instrument(skip_all, fields(editor = %editor.id))]
    pub async fn create_section(
        &self,
        editor: &Account,
        name: &str,
        slug: Option<&str>,
    ) -> Result<Section, ArticleError> {
        require(editor, Role::Editor)?;
        let mut fields = Fields::default();
        let name = fields.take("name", PlainText::parse(name, 60));
        let slug = match (slug, &name) {
            (Some(slug), _) => fields.take("slug", Slug::parse(slug)),
            (None, Some(name)) => Some(Slug::from_title(name.as_str())),
            (None, None) => None,
        };
        fields.finish().map_err(ArticleError::Invalid)?;
        let (Some(name), Some(slug)) = (name, slug) else {
            return Err(ArticleError::Invalid(Vec::new()));
        };
        let now = self.clock.now();
        let actor = editor.id;
        let on_added = Arc::clone(&self.on_section_added);
        self.write(move |conn| {
            if store::section_by_slug(conn, &slug)?.is_some() {
                return Err(ArticleError::Conflict {
                    reason: "section_exists",
                    detail: "a section with this slug exists",
                });
            }
            let position = store::next_section_position(conn)?;
            let section = add_section(conn, &slug, name.as_str(), position, now, &on_added)?;
            audit::record(
                conn,
                now,
                Some(actor),
                "section.create",
                &Subject::new(SubjectKind::Section, section.id),
                Some(&format!("{} ({})", section.name, section.slug)),
            )?;
            Ok(section)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(editor = %editor.id))]
    pub async fn create(&self, editor: &Account, draft: Draft) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        let draft = draft.parse(&editor.name)?;
        let now = self.clock.now();
        let author = editor.id;
        let entry = self
            .write(move |conn| {
                let id = insert_draft(conn, &draft, author, now)?;
                audit::record(
                    conn,
                    now,
                    Some(author),
                    "article.create",
                    &Subject::new(SubjectKind::Article, id),
                    Some(draft.title.as_str()),
                )?;
                entry(conn, id)
            })
            .await?;
        tracing::info!(article_id = %entry.article.id, slug = %entry.article.slug, "article drafted");
        Ok(entry)
    }

    /// Applies an edit. A draft's slug follows its title; once published
    /// the slug never changes, and each edit is kept in the history.
    #[tracing::instrument(skip_all, fields(editor = %editor.id, article_id = %id))]
    pub async fn edit(
        &self,
        editor: &Account,
        id: ArticleId,
        edit: Edit,
    ) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        let edit = edit.parse()?;
        let now = self.clock.now();
        let editor_id = editor.id;
        self.write(move |conn| {
            let before = entry(conn, id)?;
            let (changes, changed) = apply_edit(conn, edit, &before, id, now)?;
            if changed.is_empty() {
                return Ok(before);
            }
            store::update(conn, id, &changes)?;
            if before.article.status != ArticleStatus::Draft {
                record_revision(conn, &before, &changed, editor_id, now)?;
            }
            audit::record(
                conn,
                now,
                Some(editor_id),
                "article.edit",
                &Subject::new(SubjectKind::Article, id),
                Some(&changed.join(", ")),
            )?;
            tracing::info!(changed = ?changed, "article edited");
            entry(conn, id)
        })
        .await
    }

    /// Publishes now, or schedules for `at` when that is in the future (the
    /// worker publishes it then).
    #[tracing::instrument(skip_all, fields(editor = %editor.id, article_id = %id))]
    pub async fn publish(
        &self,
        editor: &Account,
        id: ArticleId,
        at: Option<DateTime<Utc>>,
    ) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        self.release(editor.id, id, at, self.clock.now()).await
    }

    /// Schedules for `at`, which must be in the future: an editor who asks
    /// for a time gets that time, never "now" by surprise.
    #[tracing::instrument(skip_all, fields(editor = %editor.id, article_id = %id))]
    pub async fn schedule(
        &self,
        editor: &Account,
        id: ArticleId,
        at: DateTime<Utc>,
    ) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        let now = self.clock.now();
        if at <= now {
            return Err(ArticleError::Invalid(vec![Invalid::new(
                "not_in_future",
                "choose a time in the future, or publish now",
            )
            .on("publish_at")]));
        }
        self.release(editor.id, id, Some(at), now).await
    }

    /// Publishes at `now`, or schedules for `at` when that is later.
    async fn release(
        &self,
        editor: AccountId,
        id: ArticleId,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Entry, ArticleError> {
        let scheduled = at.filter(|at| *at > now);
        self.write(move |conn| {
            let article = store::find(conn, id)?.ok_or(ArticleError::NotFound)?;
            if article.status == ArticleStatus::Published {
                return Err(ArticleError::Conflict {
                    reason: "already_published",
                    detail: "this article is already published",
                });
            }
            let (changes, action, detail) = match scheduled {
                Some(at) => (
                    ArticleChanges {
                        status: Some(ArticleStatus::Scheduled),
                        published_at: Some(Some(at.naive_utc())),
                        updated_at: Some(now.naive_utc()),
                        ..ArticleChanges::default()
                    },
                    "article.schedule",
                    Some(format!("for {}", at.to_rfc3339())),
                ),
                None => (
                    ArticleChanges {
                        status: Some(ArticleStatus::Published),
                        published_at: Some(Some(now.naive_utc())),
                        updated_at: Some(now.naive_utc()),
                        ..ArticleChanges::default()
                    },
                    "article.publish",
                    None,
                ),
            };
            store::update(conn, id, &changes)?;
            audit::record(
                conn,
                now,
                Some(editor),
                action,
                &Subject::new(SubjectKind::Article, id),
                detail.as_deref(),
            )?;
            tracing::info!(scheduled_for = ?scheduled, "article published");
            entry(conn, id)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(editor = %editor.id, article_id = %id))]
    pub async fn withdraw(&self, editor: &Account, id: ArticleId) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        let now = self.clock.now();
        let actor = editor.id;
        self.write(move |conn| {
            let article = store::find(conn, id)?.ok_or(ArticleError::NotFound)?;
            if !matches!(
                article.status,
                ArticleStatus::Published | ArticleStatus::Scheduled
            ) {
                return Err(ArticleError::Conflict {
                    reason: "not_published",
                    detail: "only a published or scheduled article can be withdrawn",
                });
            }
            store::update(
                conn,
                id,
                &ArticleChanges {
                    status: Some(ArticleStatus::Withdrawn),
                    updated_at: Some(now.naive_utc()),
                    ..ArticleChanges::default()
                },
            )?;
            audit::record(
                conn,
                now,
                Some(actor),
                "article.withdraw",
                &Subject::new(SubjectKind::Article, id),
                None,
            )?;
            tracing::info!("article withdrawn");
            entry(conn, id)
        })
        .await
    }

    /// Published articles for everyone, alike for every reader and so kept;
    /// other states for editors only.
    pub async fn list(
        &self,
        viewer: Option<&Account>,
        listing: Listing,
    ) -> Result<Arc<Kept<Page>>, ArticleError> {
        let status = listing.status.unwrap_or(ArticleStatus::Published);
        if status != ArticleStatus::Published {
            let viewer =
                viewer.ok_or(ArticleError::Account(AccountError::Forbidden(Role::Editor)))?;
            require(viewer, Role::Editor)?;
            return Ok(Arc::new(Kept::new(self.find(status, listing).await?)));
        }
        let ticket = self.cache.check(&self.pool).await?;
        if let Some(kept) = self.cache.listing(&listing) {
            return Ok(kept);
        }
        let page = self.find(status, listing.clone()).await?;
        Ok(self.cache.keep_listing(ticket, listing, page))
    }

    async fn find(&self, status: ArticleStatus, listing: Listing) -> Result<Page, ArticleError> {
        let as_of = listing.as_of.unwrap_or_else(|| self.clock.now());
        let section = listing.section.clone();
        let mut filter = Filter {
            status: Some(status),
            tag: listing.tag.map(|t| normalise_tag(&t)),
            search: search_terms(listing.search.as_deref())?,
            published_from: listing.published_from.map(|t| t.naive_utc()),
            published_to: listing.published_to.map(|t| t.naive_utc()),
            as_of: (status == ArticleStatus::Published).then_some(as_of.naive_utc()),
            ..Filter::default()
        };
        let (limit, offset) = (listing.limit, listing.offset);
        let time_limit = self.search_time_limit();
        db::run(&self.pool, move |conn| {
            if let Some(section) = section {
                filter.section = Some(section_named(conn, &section)?.id);
            }
            let (articles, total) = store::list(conn, &filter, limit, offset, time_limit)?;
            Ok(Page {
                entries: entries(conn, articles)?,
                total,
                as_of,
            })
        })
        .await
    }

    /// The editors' desk: every article or those in one state, narrowed by
    /// section and words, the latest changed first.
    pub async fn desk(&self, editor: &Account, desk: Desk) -> Result<Page, ArticleError> {
        require(editor, Role::Editor)?;
        let as_of = self.clock.now();
        let mut filter = Filter {
            status: desk.status,
            search: search_terms(desk.search.as_deref())?,
            order: Order::Changed,
            ..Filter::default()
        };
        let time_limit = self.search_time_limit();
        db::run(&self.pool, move |conn| {
            if let Some(section) = desk.section {
                filter.section = Some(section_named(conn, &section)?.id);
            }
            let (articles, total) =
                store::list(conn, &filter, desk.limit, desk.offset, time_limit)?;
            Ok(Page {
                entries: entries(conn, articles)?,
                total,
                as_of,
            })
        })
        .await
    }

    /// One article in whatever state, for an editor to work on.
    pub async fn for_editing(
        &self,
        editor: &Account,
        id: ArticleId,
    ) -> Result<Entry, ArticleError> {
        require(editor, Role::Editor)?;
        db::run(&self.pool, move |conn| entry(conn, id)).await
    }

    /// A body as readers would get it once published (the same renderer
    /// and sanitiser), for an editor to check; nothing is saved.
    pub fn preview(&self, editor: &Account, body: &str) -> Result<String, ArticleError> {
        require(editor, Role::Editor)?;
        Ok(markdown::to_html(&body.trim().replace("\r\n", "\n")))
    }

    /// One article by slug, in full or as a teaser depending on the reader,
    /// with related stories. Editors may also read unpublished ones, which
    /// are never kept.
    pub async fn read(&self, viewer: Viewer, slug: &str) -> Result<Reading, ArticleError> {
        let slug = Slug::parse(slug).map_err(|_| ArticleError::NotFound)?;
        let (reader, decision) = self.reader(viewer).await?;
        let ticket = self.cache.check(&self.pool).await?;
        let story = match self.cache.article(&slug) {
            Some(kept) => kept,
            None => {
                let is_staff = reader
                    .as_ref()
                    .is_some_and(|r| r.role.includes(Role::Editor));
                let story = self.story(slug.clone(), is_staff).await?;
                if story.entry.article.status == ArticleStatus::Published {
                    self.cache.keep_article(ticket, slug, story)
                } else {
                    Arc::new(Kept::new(story))
                }
            }
        };
        Ok(Reading { story, decision })
    }

    /// Who reads and what they may read; for a reader whose session and
    /// access are kept, without a visit to the database.
    async fn reader(&self, viewer: Viewer) -> Result<(Option<Account>, Decision), ArticleError> {
        let now = self.clock.now();
        let reader = match viewer {
            Viewer::Anonymous => None,
            Viewer::Account(account) => Some(account),
            Viewer::Session(token) => {
                accounts::service::session_account(&self.readers.sessions, &self.pool, &token, now)
                    .await?
                    .map(|(account, _)| account)
            }
        };
        let decision =
            access::service::decision(&self.readers.decisions, &self.pool, reader.as_ref(), now)
                .await?;
        Ok((reader, decision))
    }

    /// A published article, or for an editor one in any state.
    async fn story(&self, slug: Slug, is_staff: bool) -> Result<Story, ArticleError> {
        let settings = self.settings.clone();
        db::run(&self.pool, move |conn| {
            let article = store::find_by_slug(conn, &slug)?.ok_or(ArticleError::NotFound)?;
            if article.status != ArticleStatus::Published && !is_staff {
                return Err(ArticleError::NotFound);
            }
            let entry = entry(conn, article.id)?;
            let teaser_html = markdown::teaser(&entry.article.body_markdown, settings.teaser_chars);
            let related = related(conn, &entry, settings.related_count)?;
            Ok(Story {
                entry,
                teaser_html,
                related,
            })
        })
        .await
    }

    /// The article as it is, each kept edit with who made it and what the
    /// article was before (latest first), and the audit trail of it.
    pub async fn history(&self, editor: &Account, id: ArticleId) -> Result<History, ArticleError> {
        require(editor, Role::Editor)?;
        db::run(&self.pool, move |conn| {
            let entry = entry(conn, id)?;
            let mut names = Names::default();
            let mut versions = Vec::new();
            for revision in store::revisions_of(conn, id)? {
                let changed_fields = serde_json::from_str(&revision.changed_fields)
                    .map_err(ArticleError::Corrupt)?;
                let previous =
                    serde_json::from_str(&revision.previous).map_err(ArticleError::Corrupt)?;
                versions.push(PastVersion {
                    editor: names.of(conn, revision.editor_id)?,
                    revision,
                    changed_fields,
                    previous,
                });
            }
            let trail = crate::platform::audit::store::of_subject(
                conn,
                SubjectKind::Article,
                &id.to_string(),
            )?;
            let mut actions = Vec::with_capacity(trail.len());
            for done in trail {
                actions.push(Action {
                    at: done.at,
                    actor: names.of(conn, done.actor_id)?,
                    action: done.action,
                    detail: done.detail,
                });
            }
            Ok(History {
                entry,
                versions,
                actions,
            })
        })
        .await
    }
}

/// Account names, each looked up once.
#[derive(Default)]
struct Names(HashMap<AccountId, Option<String>>);

impl Names {
    fn of(
        &mut self,
        conn: &mut DbConnection,
        id: Option<AccountId>,
    ) -> QueryResult<Option<String>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(name) = self.0.get(&id) {
            return Ok(name.clone());
        }
        let name = crate::accounts::tx::find(conn, id)?.map(|a| a.name);
        self.0.insert(id, name.clone());
        Ok(name)
    }
}

/// Publishes scheduled articles whose time has come; the worker calls this.
pub async fn publish_due(
    pool: &Pool,
    cache: &ReaderCache,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let published = db::run(pool, move |conn| {
        // Checked before taking the write lock: on most ticks nothing is due.
        if !store::any_due(conn, now.naive_utc())? {
            return Ok(Vec::new());
        }
        db::transaction(conn, |conn| {
            let published = store::publish_due(conn, now.naive_utc())?;
            for id in &published {
                audit::record(
                    conn,
                    now,
                    None,
                    "article.publish",
                    &Subject::new(SubjectKind::Article, id),
                    Some("as scheduled"),
                )?;
            }
            Ok::<_, diesel::result::Error>(published)
        })
        .map_err(StorageError::from)
    })
    .await?;
    if !published.is_empty() {
        cache.forget();
    }
    for id in published {
        tracing::info!(article_id = %id, "scheduled article published");
    }
    Ok(())
}

/// A draft once parsed.
struct ParsedDraft {
    title: PlainText,
    standfirst: PlainText,
    body: String,
    tags: Vec<String>,
    section: Slug,
    byline: PlainText,
}

impl Draft {
    /// Parses every field; the byline defaults to `author`.
    fn parse(self, author: &str) -> Result<ParsedDraft, ArticleError> {
        let mut fields = Fields::default();
        let title = fields.take("title", PlainText::parse(&self.title, 200));
        let standfirst = fields.take("standfirst", PlainText::parse(&self.standfirst, 600));
        let body = fields.take("body", parse_body(&self.body));
        let tags = fields.take("tags", parse_tags(&self.tags));
        let section = fields.take("section", Slug::parse(self.section.trim()));
        let byline = fields.take(
            "byline",
            PlainText::parse(self.byline.as_deref().unwrap_or(author), 120),
        );
        let (Some(title), Some(standfirst), Some(body), Some(tags), Some(section), Some(byline)) =
            (title, standfirst, body, tags, section, byline)
        else {
            return Err(ArticleError::Invalid(
                fields.finish().err().unwrap_or_default(),
            ));
        };
        Ok(ParsedDraft {
            title,
            standfirst,
            body,
            tags,
            section,
            byline,
        })
    }
}

/// An edit once parsed: `None` leaves the field alone.
struct ParsedEdit {
    title: Option<PlainText>,
    standfirst: Option<PlainText>,
    body: Option<String>,
    tags: Option<Vec<String>>,
    section: Option<Slug>,
    byline: Option<PlainText>,
}

impl Edit {
    fn parse(self) -> Result<ParsedEdit, ArticleError> {
        let mut fields = Fields::default();
        let title = self
            .title
            .as_deref()
            .and_then(|t| fields.take("title", PlainText::parse(t, 200)));
        let standfirst = self
            .standfirst
            .as_deref()
            .and_then(|s| fields.take("standfirst", PlainText::parse(s, 600)));
        let body = self
            .body
            .as_deref()
            .and_then(|b| fields.take("body", parse_body(b)));
        let tags = self
            .tags
            .as_deref()
            .and_then(|t| fields.take("tags", parse_tags(t)));
        let section = self
            .section
            .as_deref()
            .and_then(|s| fields.take("section", Slug::parse(s.trim())));
        let byline = self
            .byline
            .as_deref()
            .and_then(|b| fields.take("byline", PlainText::parse(b, 120)));
        fields.finish().map_err(ArticleError::Invalid)?;
        Ok(ParsedEdit {
            title,
            standfirst,
            body,
            tags,
            section,
            byline,
        })
    }
}

/// Stores a new draft in its section, under a slug of its title that no
/// other article has.
fn insert_draft(
    conn: &mut DbConnection,
    draft: &ParsedDraft,
    author: AccountId,
    now: DateTime<Utc>,
) -> Result<ArticleId, ArticleError> {
    let section = known_section(conn, &draft.section)?;
    let id = ArticleId::new();
    let slug = free_slug(conn, &Slug::from_title(draft.title.as_str()), id)?;
    store::insert(
        conn,
        &NewArticle {
            id,
            slug: &slug,
            title: draft.title.as_str(),
            standfirst: draft.standfirst.as_str(),
            body_markdown: &draft.body,
            body_html: &markdown::to_html(&draft.body),
            section_id: section.id,
            byline: draft.byline.as_str(),
            author_id: Some(author),
            status: ArticleStatus::Draft,
            published_at: None,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        },
    )?;
    store::set_tags(conn, id, &draft.tags)?;
    Ok(id)
}

/// The changes an edit makes to the article as it was, and the names of
/// the fields it changed. New tags are stored at once, as they live in a
/// table of their own.
fn apply_edit(
    conn: &mut DbConnection,
    edit: ParsedEdit,
    before: &Entry,
    id: ArticleId,
    now: DateTime<Utc>,
) -> Result<(ArticleChanges, Vec<&'static str>), ArticleError> {
    let mut changes = ArticleChanges {
        updated_at: Some(now.naive_utc()),
        ..ArticleChanges::default()
    };
    let mut changed = Vec::new();
    if let Some(title) = edit.title.filter(|t| t.as_str() != before.article.title) {
        if before.article.status == ArticleStatus::Draft {
            changes.slug = Some(free_slug(conn, &Slug::from_title(title.as_str()), id)?);
        }
        changes.title = Some(title.into_string());
        changed.push("title");
    }
    if let Some(standfirst) = edit
        .standfirst
        .filter(|s| s.as_str() != before.article.standfirst)
    {
        changes.standfirst = Some(standfirst.into_string());
        changed.push("standfirst");
    }
    if let Some(body) = edit.body.filter(|b| *b != before.article.body_markdown) {
        changes.body_html = Some(markdown::to_html(&body));
        changes.body_markdown = Some(body);
        changed.push("body");
    }
    if let Some(section) = edit.section.filter(|s| *s != before.section.slug) {
        changes.section_id = Some(known_section(conn, &section)?.id);
        changed.push("section");
    }
    if let Some(byline) = edit.byline.filter(|b| b.as_str() != before.article.byline) {
        changes.byline = Some(byline.into_string());
        changed.push("byline");
    }
    if let Some(tags) = edit.tags.filter(|t| *t != before.tags) {
        store::set_tags(conn, id, &tags)?;
        changed.push("tags");
    }
    Ok((changes, changed))
}

fn parse_body(body: &str) -> Result<String, Invalid> {
    let body = body.trim();
    if body.is_empty() {
        return Err(Invalid::new("required", "this field cannot be empty"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Invalid::new(
            "too_long",
            format!("at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(body.replace("\r\n", "\n"))
}

fn normalise_tag(tag: &str) -> String {
    tag.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Tags are lower-case, single-spaced, unique and sorted.
fn parse_tags(tags: &[String]) -> Result<Vec<String>, Invalid> {
    let mut parsed: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = normalise_tag(tag);
        if tag.is_empty() || tag.chars().count() > 40 || tag.chars().any(char::is_control) {
            return Err(Invalid::new(
                "invalid_tag",
                "each tag has 1 to 40 characters",
            ));
        }
        parsed.push(tag);
    }
    parsed.sort();
    parsed.dedup();
    if parsed.len() > MAX_TAGS {
        return Err(Invalid::new("too_many", format!("at most {MAX_TAGS} tags")));
    }
    Ok(parsed)
}

/// Search terms are bounded: the full-text query costs time and memory in
/// proportion to its words, and one request with thousands of them held the
/// database for seconds. 200 characters and 12 distinct words are far more
/// than a reader types into a search box (a headline is rarely longer).
const SEARCH_MAX_CHARS: usize = 200;
const SEARCH_MAX_WORDS: usize = 12;

/// The terms to search for: trimmed, `None` when empty, each term kept once
/// (case-insensitively, so repeating a word is no way around the bound), and
/// refused naming `q` past the bounds. Terms are split on whitespace only, so
/// PostgreSQL's web-search syntax (quotes, `-`, `or`) survives.
fn search_terms(input: Option<&str>) -> Result<Option<String>, ArticleError> {
    let text = match input.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(text) => text,
    };
    let too_long = || {
        ArticleError::Invalid(vec![Invalid::new(
            "too_long",
            format!(
                "search for at most {SEARCH_MAX_CHARS} characters and {SEARCH_MAX_WORDS} words"
            ),
        )
        .on("q")])
    };
    if text.chars().count() > SEARCH_MAX_CHARS {
        return Err(too_long());
    }
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<&str> = text
        .split_whitespace()
        .filter(|term| seen.insert(term.to_lowercase()))
        .collect();
    let words = terms
        .iter()
        .flat_map(|term| term.split(|c: char| !c.is_alphanumeric()))
        .filter(|word| !word.is_empty())
        .count();
    if words > SEARCH_MAX_WORDS {
        return Err(too_long());
    }
    Ok(Some(terms.join(" ")))
}

/// A section given by slug in a listing's query.
fn section_named(conn: &mut DbConnection, raw: &str) -> Result<Section, ArticleError> {
    let slug = Slug::parse(raw.trim()).map_err(|e| ArticleError::Invalid(vec![e.on("section")]))?;
    known_section(conn, &slug)
}

/// Adds a section at `position`, and lets it reach the newsletter's
/// subscribers who take every section: the one way a section comes into
/// being (the console, the API and the demo seed).
pub fn add_section(
    conn: &mut DbConnection,
    slug: &Slug,
    name: &str,
    position: i32,
    now: DateTime<Utc>,
    on_added: &OnSectionAdded,
) -> QueryResult<Section> {
    let before = store::section_slugs(conn)?;
    store::insert_section(
        conn,
        &NewSection {
            id: SectionId::new(),
            slug,
            name,
            position,
            created_at: now.naive_utc(),
        },
    )?;
    let after = store::section_slugs(conn)?;
    let extended = on_added(conn, &before, &after)?;
    tracing::info!(section = %slug, subscribers = extended, "section added");
    store::section_by_slug(conn, slug)?.ok_or(diesel::result::Error::NotFound)
}

fn known_section(conn: &mut DbConnection, slug: &Slug) -> Result<Section, ArticleError> {
    store::section_by_slug(conn, slug)?.ok_or_else(|| {
        ArticleError::Invalid(vec![Invalid::new(
            "unknown_section",
            "no section has this slug",
        )
        .on("section")])
    })
}

/// `base`, or the first of `base-2`, `base-3` … that no other article has.
fn free_slug(conn: &mut DbConnection, base: &Slug, id: ArticleId) -> Result<Slug, ArticleError> {
    let mut candidate = base.clone();
    for n in 2..1000 {
        if !store::slug_taken(conn, &candidate, id)? {
            return Ok(candidate);
        }
        candidate = base.numbered(n);
    }
    Err(ArticleError::Conflict {
        reason: "slug_taken",
        detail: "too many articles share this title",
    })
}

fn entry(conn: &mut DbConnection, id: ArticleId) -> Result<Entry, ArticleError> {
    let article = store::find(conn, id)?.ok_or(ArticleError::NotFound)?;
    entries(conn, vec![article])?
        .pop()
        .ok_or(ArticleError::NotFound)
}

fn entries(conn: &mut DbConnection, articles: Vec<Article>) -> Result<Vec<Entry>, ArticleError> {
    let sections: HashMap<SectionId, Section> = store::sections(conn)?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let ids: Vec<ArticleId> = articles.iter().map(|a| a.id).collect();
    let mut tags = store::tags_of(conn, &ids)?;
    articles
        .into_iter()
        .map(|article| {
            let section = sections
                .get(&article.section_id)
                .cloned()
                .ok_or(ArticleError::NotFound)?;
            let tags = tags.remove(&article.id).unwrap_or_default();
            Ok(Entry {
                article,
                section,
                tags,
            })
        })
        .collect()
}

/// "More on this story": published articles ranked by tags shared with
/// this one, then the same section, then recency.
fn related(conn: &mut DbConnection, of: &Entry, count: usize) -> Result<Vec<Entry>, ArticleError> {
    let id = of.article.id;
    let shared = store::sharing_tags(conn, id, &of.tags)?;
    let same_section = store::latest_in_section(
        conn,
        of.article.section_id,
        id,
        i64::try_from(count).unwrap_or(5),
    )?;
    let mut candidates: Vec<ArticleId> = shared.keys().copied().chain(same_section).collect();
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|c| seen.insert(*c));
    let published = store::published_among(conn, &candidates)?;
    let mut found = entries(conn, published)?;
    let score = |e: &Entry| {
        let tags = shared.get(&e.article.id).copied().unwrap_or(0);
        (
            tags * 2 + usize::from(e.article.section_id == of.article.section_id),
            e.article.published_at,
        )
    };
    found.sort_by_key(|e| std::cmp::Reverse(score(e)));
    found.truncate(count);
    Ok(found)
}

fn record_revision(
    conn: &mut DbConnection,
    before: &Entry,
    changed: &[&str],
    editor: AccountId,
    now: DateTime<Utc>,
) -> Result<(), ArticleError> {
    let snapshot = Snapshot {
        title: before.article.title.clone(),
        standfirst: before.article.standfirst.clone(),
        body_markdown: before.article.body_markdown.clone(),
        section: before.section.slug.to_string(),
        tags: before.tags.clone(),
        byline: before.article.byline.clone(),
    };
    let previous = serde_json::to_string(&snapshot).map_err(ArticleError::Corrupt)?;
    let changed_fields = serde_json::to_string(changed).map_err(ArticleError::Corrupt)?;
    store::insert_revision(
        conn,
        &NewRevision {
            id: RevisionId::new(),
            article_id: before.article.id,
            editor_id: Some(editor),
            changed_at: now.naive_utc(),
            changed_fields: &changed_fields,
            previous: &previous,
        },
    )?;
    Ok(())
}
