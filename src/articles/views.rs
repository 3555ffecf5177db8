//! What readers are shown, and what the reader cache keeps: a listing's
//! request and its page, an article with what every view of it shows.

use chrono::{DateTime, Utc};

use super::model::{Article, ArticleStatus, Section};

/// A listing request, as parsed from a query string; published listings
/// are kept by it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    pub status: Option<ArticleStatus>,
    pub section: Option<String>,
    pub tag: Option<String>,
    pub search: Option<String>,
    pub published_from: Option<DateTime<Utc>>,
    pub published_to: Option<DateTime<Utc>>,
    pub as_of: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// An article with what every view of it shows.
#[derive(Debug, Clone)]
pub struct Entry {
    pub article: Article,
    pub section: Section,
    pub tags: Vec<String>,
}

pub struct Page {
    pub entries: Vec<Entry>,
    pub total: i64,
    pub as_of: DateTime<Utc>,
}

/// An article with what every reader of it is shown alike: the teaser
/// beside the full body, and the related stories.
pub struct Story {
    pub entry: Entry,
    pub teaser_html: String,
    pub related: Vec<Entry>,
}
