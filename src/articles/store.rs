//! Article, section, tag and revision queries. Full-text search is the one
//! query that differs by backend: FTS5 on SQLite, tsvector on PostgreSQL.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::model::{
    Article, ArticleChanges, ArticleId, ArticleStatus, NewArticle, NewRevision, NewSection,
    Revision, Section, SectionId,
};
use crate::platform::db::schema::{
    article_revisions, article_tags, articles, content_stamp, sections,
};
use crate::platform::db::{DbConnection, MultiBackend};
use crate::platform::domain::Slug;

pub fn sections(conn: &mut DbConnection) -> QueryResult<Vec<Section>> {
    sections::table
        .order((sections::position.asc(), sections::name.asc()))
        .select(Section::as_select())
        .load(conn)
}

/// The slugs of every section, in the order `sections` gives them: the
/// choices of the newsletter, and the order a subscriber's choice is kept in.
pub fn section_slugs(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    sections::table
        .order((sections::position.asc(), sections::name.asc()))
        .select(sections::slug)
        .load(conn)
}

/// How many articles, in any state, each section holds.
pub fn article_counts(conn: &mut DbConnection) -> QueryResult<HashMap<SectionId, i64>> {
    let rows: Vec<(SectionId, i64)> = articles::table
        .group_by(articles::section_id)
        .select((articles::section_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

pub fn section_by_slug(conn: &mut DbConnection, slug: &Slug) -> QueryResult<Option<Section>> {
    sections::table
        .filter(sections::slug.eq(slug))
        .select(Section::as_select())
        .first(conn)
        .optional()
}

pub fn insert_section(conn: &mut DbConnection, section: &NewSection<'_>) -> QueryResult<()> {
    diesel::insert_into(sections::table)
        .values(section)
        .execute(conn)
        .map(drop)
}

pub fn next_section_position(conn: &mut DbConnection) -> QueryResult<i32> {
    let max: Option<i32> = sections::table
        .select(diesel::dsl::max(sections::position))
        .first(conn)?;
    Ok(max.map_or(0, |m| m + 1))
}

pub fn insert(conn: &mut DbConnection, article: &NewArticle<'_>) -> QueryResult<()> {
    diesel::insert_into(articles::table)
        .values(article)
        .execute(conn)
        .map(drop)
}

pub fn update(conn: &mut DbConnection, id: ArticleId, changes: &ArticleChanges) -> QueryResult<()> {
    diesel::update(articles::table.find(id))
        .set(changes)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: ArticleId) -> QueryResult<Option<Article>> {
    articles::table
        .find(id)
        .select(Article::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &Slug) -> QueryResult<Option<Article>> {
    articles::table
        .filter(articles::slug.eq(slug))
        .select(Article::as_select())
        .first(conn)
        .optional()
}

pub fn slug_taken(conn: &mut DbConnection, slug: &Slug, except: ArticleId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        articles::table
            .filter(articles::slug.eq(slug))
            .filter(articles::id.ne(except)),
    ))
    .get_result(conn)
}

pub fn set_tags(conn: &mut DbConnection, id: ArticleId, tags: &[String]) -> QueryResult<()> {
    diesel::delete(article_tags::table.filter(article_tags::article_id.eq(id))).execute(conn)?;
    let rows: Vec<_> = tags
        .iter()
        .map(|tag| (article_tags::article_id.eq(id), article_tags::tag.eq(tag)))
        .collect();
    // A multi-row insert has no common form across the two backends.
    crate::per_backend!(conn, |c| diesel::insert_into(article_tags::table)
        .values(&rows)
        .execute(c))
    .map(drop)
}

/// The tags of each article, in alphabetical order.
pub fn tags_of(
    conn: &mut DbConnection,
    ids: &[ArticleId],
) -> QueryResult<HashMap<ArticleId, Vec<String>>> {
    let rows: Vec<(ArticleId, String)> = article_tags::table
        .filter(article_tags::article_id.eq_any(ids))
        .order((article_tags::article_id.asc(), article_tags::tag.asc()))
        .select((article_tags::article_id, article_tags::tag))
        .load(conn)?;
    let mut tags: HashMap<ArticleId, Vec<String>> = HashMap::new();
    for (id, tag) in rows {
        tags.entry(id).or_default().push(tag);
    }
    Ok(tags)
}

/// What a listing is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `None`: every state (the editors' desk).
    pub status: Option<ArticleStatus>,
    pub section: Option<SectionId>,
    pub tag: Option<String>,
    pub search: Option<String>,
    pub published_from: Option<NaiveDateTime>,
    pub published_to: Option<NaiveDateTime>,
    /// Only what was published by then: later pages stay put while new
    /// articles arrive.
    pub as_of: Option<NaiveDateTime>,
    pub order: Order,
}

/// Which articles come first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// The latest published: what readers see.
    #[default]
    Published,
    /// The latest changed, whatever their state: what editors work on.
    Changed,
}

/// A page of articles, newest first by `filter.order` (ties broken by id,
/// so the order is total), and the number of matches. A search stops after
/// `time_limit` where the backend can stop it (see `time_limited`).
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    limit: i64,
    offset: i64,
    time_limit: std::time::Duration,
) -> QueryResult<(Vec<Article>, i64)> {
    let search = filter
        .search
        .as_deref()
        .and_then(|terms| SearchQuery::new(conn, terms));
    match search {
        Some(search) => time_limited(conn, time_limit, |conn| {
            list_matching(conn, filter, Some(search), limit, offset)
        }),
        None => list_matching(conn, filter, None, limit, offset),
    }
}

fn list_matching(
    conn: &mut DbConnection,
    filter: &Filter,
    search: Option<SearchQuery>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Article>, i64)> {
    let query = filtered(filter, search.clone()).select(Article::as_select());
    let query = match filter.order {
        Order::Published => query.order((articles::published_at.desc(), articles::id.desc())),
        Order::Changed => query.order((articles::updated_at.desc(), articles::id.desc())),
    };
    let page = query.limit(limit).offset(offset).load(conn)?;
    let total = filtered(filter, search).count().get_result(conn)?;
    Ok((page, total))
}

fn filtered(
    filter: &Filter,
    search: Option<SearchQuery>,
) -> articles::BoxedQuery<'static, MultiBackend> {
    let mut query = articles::table.into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(articles::status.eq(status));
    }
    if let Some(section) = filter.section {
        query = query.filter(articles::section_id.eq(section));
    }
    if let Some(tag) = &filter.tag {
        query = query.filter(
            articles::id.eq_any(
                article_tags::table
                    .filter(article_tags::tag.eq(tag.clone()))
                    .select(article_tags::article_id),
            ),
        );
    }
    if let Some(from) = filter.published_from {
        query = query.filter(articles::published_at.ge(from));
    }
    if let Some(to) = filter.published_to {
        query = query.filter(articles::published_at.le(to));
    }
    if let Some(as_of) = filter.as_of {
        query = query.filter(articles::published_at.le(as_of));
    }
    if let Some(search) = search {
        query = query.filter(search.condition());
    }
    query
}

/// Runs `work` with each statement cancelled after `limit` on PostgreSQL,
/// in a transaction of its own so that `SET LOCAL` ends with it: a flood
/// of costly searches then cannot hold every connection of the pool.
/// SQLite has no statement timeout; what bounds its search is the bounded
/// input (`ArticleService`'s search terms).
pub fn time_limited<T>(
    conn: &mut DbConnection,
    limit: std::time::Duration,
    work: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    match conn {
        DbConnection::Postgres(_) => crate::platform::db::transaction(conn, |conn| {
            // SET takes no bind parameters; the value is a number we format.
            diesel::sql_query(format!(
                "SET LOCAL statement_timeout = {}",
                limit.as_millis().max(1)
            ))
            .execute(conn)?;
            work(conn)
        }),
        DbConnection::Sqlite(_) => work(conn),
    }
}

/// Whether `error` is PostgreSQL cancelling a statement that outran
/// `time_limited`'s limit (SQLSTATE 57014, which diesel reports only by its
/// message).
pub fn is_timeout(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(_, info)
            if info.message().contains("statement timeout")
    )
}

/// A search in the dialect of the connection's backend.
#[derive(Debug, Clone)]
enum SearchQuery {
    Postgres(String),
    Sqlite(String),
}

impl SearchQuery {
    /// `None` when the terms hold no word to look for.
    fn new(conn: &DbConnection, terms: &str) -> Option<Self> {
        let words: Vec<&str> = terms
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return None;
        }
        Some(match conn {
            DbConnection::Postgres(_) => Self::Postgres(terms.to_owned()),
            // Quoted words are plain terms to FTS5, whatever the reader typed.
            DbConnection::Sqlite(_) => Self::Sqlite(
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        })
    }

    fn condition(
        self,
    ) -> Box<dyn BoxableExpression<articles::table, MultiBackend, SqlType = Bool>> {
        match self {
            Self::Postgres(terms) => Box::new(
                sql::<Bool>("articles.search @@ websearch_to_tsquery('english', ")
                    .bind::<Text, _>(terms)
                    .sql(")"),
            ),
            Self::Sqlite(terms) => Box::new(
                sql::<Bool>(
                    "articles.rowid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ",
                )
                .bind::<Text, _>(terms)
                .sql(")"),
            ),
        }
    }
}

/// Published articles other than `id` that share a tag with it, with how
/// many tags they share.
pub fn sharing_tags(
    conn: &mut DbConnection,
    id: ArticleId,
    tags: &[String],
) -> QueryResult<HashMap<ArticleId, usize>> {
    let rows: Vec<ArticleId> = article_tags::table
        .inner_join(articles::table)
        .filter(article_tags::tag.eq_any(tags))
        .filter(article_tags::article_id.ne(id))
        .filter(articles::status.eq(ArticleStatus::Published))
        .select(article_tags::article_id)
        .load(conn)?;
    let mut shared = HashMap::new();
    for article in rows {
        *shared.entry(article).or_insert(0) += 1;
    }
    Ok(shared)
}

/// The latest published articles of a section, other than `id`.
pub fn latest_in_section(
    conn: &mut DbConnection,
    section: SectionId,
    id: ArticleId,
    limit: i64,
) -> QueryResult<Vec<ArticleId>> {
    articles::table
        .filter(articles::section_id.eq(section))
        .filter(articles::status.eq(ArticleStatus::Published))
        .filter(articles::id.ne(id))
        .order((articles::published_at.desc(), articles::id.desc()))
        .limit(limit)
        .select(articles::id)
        .load(conn)
}

pub fn published_among(conn: &mut DbConnection, ids: &[ArticleId]) -> QueryResult<Vec<Article>> {
    articles::table
        .filter(articles::id.eq_any(ids))
        .filter(articles::status.eq(ArticleStatus::Published))
        .select(Article::as_select())
        .load(conn)
}

pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        articles::table
            .filter(articles::status.eq(ArticleStatus::Scheduled))
            .filter(articles::published_at.le(now)),
    ))
    .get_result(conn)
}

/// Publishes every scheduled article whose time has come; returns them.
pub fn publish_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<ArticleId>> {
    let due: Vec<ArticleId> = articles::table
        .filter(articles::status.eq(ArticleStatus::Scheduled))
        .filter(articles::published_at.le(now))
        .select(articles::id)
        .load(conn)?;
    if !due.is_empty() {
        diesel::update(
            articles::table
                .filter(articles::id.eq_any(&due))
                .filter(articles::status.eq(ArticleStatus::Scheduled)),
        )
        .set((
            articles::status.eq(ArticleStatus::Published),
            articles::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    Ok(due)
}

pub fn insert_revision(conn: &mut DbConnection, revision: &NewRevision<'_>) -> QueryResult<()> {
    diesel::insert_into(article_revisions::table)
        .values(revision)
        .execute(conn)
        .map(drop)
}

pub fn revisions_of(conn: &mut DbConnection, id: ArticleId) -> QueryResult<Vec<Revision>> {
    article_revisions::table
        .filter(article_revisions::article_id.eq(id))
        .order(article_revisions::changed_at.desc())
        .select(Revision::as_select())
        .load(conn)
}

/// The number the database moves on every change to articles, their tags
/// and sections.
pub fn content_stamp(conn: &mut DbConnection) -> QueryResult<i64> {
    content_stamp::table
        .select(content_stamp::version)
        .first(conn)
}
