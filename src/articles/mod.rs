//! The publisher's articles: the editor's desk, reading, search, related
//! stories and the paywall teaser.

pub mod cache;
pub mod diff;
pub mod markdown;
pub mod model;
pub mod service;
pub mod store;
pub mod tx;
pub mod views;

pub use cache::ReaderCache;
pub use model::{Article, ArticleId, ArticleStatus, Section};
pub use service::{ArticleError, ArticleService, OnSectionAdded, Readers};
