use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountId;
use crate::platform::db::schema::{article_revisions, articles, sections};
use crate::platform::domain::Slug;

crate::id_type!(ArticleId);
crate::id_type!(SectionId);
crate::id_type!(RevisionId);

crate::text_enum! {
    pub enum ArticleStatus {
        Draft => "draft",
        Scheduled => "scheduled",
        Published => "published",
        Withdrawn => "withdrawn",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sections)]
pub struct Section {
    pub id: SectionId,
    pub slug: Slug,
    pub name: String,
    pub position: i32,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sections, treat_none_as_default_value = false)]
pub struct NewSection<'a> {
    pub id: SectionId,
    pub slug: &'a Slug,
    pub name: &'a str,
    pub position: i32,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = articles)]
pub struct Article {
    pub id: ArticleId,
    pub slug: Slug,
    pub title: String,
    pub standfirst: String,
    pub body_markdown: String,
    pub body_html: String,
    pub section_id: SectionId,
    pub byline: String,
    pub author_id: Option<AccountId>,
    pub status: ArticleStatus,
    pub published_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = articles, treat_none_as_default_value = false)]
pub struct NewArticle<'a> {
    pub id: ArticleId,
    pub slug: &'a Slug,
    pub title: &'a str,
    pub standfirst: &'a str,
    pub body_markdown: &'a str,
    pub body_html: &'a str,
    pub section_id: SectionId,
    pub byline: &'a str,
    pub author_id: Option<AccountId>,
    pub status: ArticleStatus,
    pub published_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An edit: `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = articles)]
pub struct ArticleChanges {
    pub slug: Option<Slug>,
    pub title: Option<String>,
    pub standfirst: Option<String>,
    pub body_markdown: Option<String>,
    pub body_html: Option<String>,
    pub section_id: Option<SectionId>,
    pub byline: Option<String>,
    pub status: Option<ArticleStatus>,
    pub published_at: Option<Option<NaiveDateTime>>,
    pub updated_at: Option<NaiveDateTime>,
}

/// What an article looked like before an edit, kept in its history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub title: String,
    pub standfirst: String,
    pub body_markdown: String,
    pub section: String,
    pub tags: Vec<String>,
    pub byline: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = article_revisions, treat_none_as_default_value = false)]
pub struct NewRevision<'a> {
    pub id: RevisionId,
    pub article_id: ArticleId,
    pub editor_id: Option<AccountId>,
    pub changed_at: NaiveDateTime,
    pub changed_fields: &'a str,
    pub previous: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = article_revisions)]
pub struct Revision {
    pub id: RevisionId,
    pub editor_id: Option<AccountId>,
    pub changed_at: NaiveDateTime,
    pub changed_fields: String,
    pub previous: String,
}
