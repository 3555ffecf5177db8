//! Published listings and articles, kept in memory while the database's
//! content stamp (kept by triggers, see the `content_stamp` migration) stands
//! still. A reader's own access is decided after the cache, never kept in it.
//!
//! A change made through this process drops what is kept at once
//! ([`ReaderCache::forget`]); one made elsewhere is noticed when a read finds
//! the stamp moved, asked at most once per `articles.cache_recheck_ms`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header::EntityTag;
use actix_web::web::Bytes;
use chrono::{DateTime, Utc};

use super::service::{Page, Story};
use super::store;
use crate::db::{self, Pool, StorageError};
use crate::domain::Slug;

/// Beyond this many listings (or articles) kept, the shelf is emptied
/// before the next is kept: a flood of distinct queries costs what it cost
/// without a cache, and no more memory.
const MAX_KEPT: usize = 1024;

/// What makes one published listing differ from another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListingKey {
    pub section: Option<String>,
    pub tag: Option<String>,
    pub search: Option<String>,
    pub published_from: Option<DateTime<Utc>>,
    pub published_to: Option<DateTime<Utc>>,
    pub as_of: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// A value every reader is shown alike and, once asked for, its JSON.
pub struct Kept<T> {
    value: T,
    json: OnceLock<Json>,
}

/// A response body and the entity tag that names it.
pub struct Json {
    pub body: Bytes,
    pub etag: EntityTag,
}

impl<T> Kept<T> {
    pub fn new(value: T) -> Self {
        Self {
            value,
            json: OnceLock::new(),
        }
    }

    /// The JSON `render` makes of the value, made once per kept value.
    pub fn json(&self, render: impl FnOnce(&T) -> Vec<u8>) -> &Json {
        self.json.get_or_init(|| {
            let body = render(&self.value);
            let mut hasher = DefaultHasher::new();
            body.hash(&mut hasher);
            Json {
                etag: EntityTag::new_strong(format!("{:016x}", hasher.finish())),
                body: Bytes::from(body),
            }
        })
    }
}

impl<T> Deref for Kept<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// Leave to keep a value read after [`ReaderCache::check`]: refused when
/// what was kept has been dropped since, as the value may predate the change
/// that dropped it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
}

pub struct ReaderCache {
    recheck: Duration,
    state: Mutex<State>,
}

struct State {
    stamp: Option<i64>,
    checked_at: Option<Instant>,
    /// Moves whenever what is kept is dropped.
    generation: u64,
    listings: HashMap<ListingKey, Arc<Kept<Page>>>,
    articles: HashMap<Slug, Arc<Kept<Story>>>,
}

impl ReaderCache {
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            state: Mutex::new(State {
                stamp: None,
                checked_at: None,
                generation: 0,
                listings: HashMap::new(),
                articles: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes what is kept no older than the database's stamp, asking the
    /// database once per recheck period. While one read asks, the others go
    /// on with what is kept: it was current a moment ago.
    pub async fn check(&self, pool: &Pool) -> Result<Ticket, StorageError> {
        {
            let mut state = self.lock();
            let recent = state
                .checked_at
                .is_some_and(|at| at.elapsed() < self.recheck);
            if state.stamp.is_some() && recent {
                return Ok(Ticket {
                    generation: state.generation,
                });
            }
            state.checked_at = Some(Instant::now());
        }
        let stamp = db::run(pool, |conn| {
            store::content_stamp(conn).map_err(StorageError::from)
        })
        .await?;
        let mut state = self.lock();
        if state.stamp != Some(stamp) {
            state.drop_all();
            state.stamp = Some(stamp);
        }
        Ok(Ticket {
            generation: state.generation,
        })
    }

    /// Drops everything kept; the next read asks the database for its stamp.
    pub fn forget(&self) {
        let mut state = self.lock();
        state.drop_all();
        state.stamp = None;
    }

    pub fn listing(&self, key: &ListingKey) -> Option<Arc<Kept<Page>>> {
        self.lock().listings.get(key).cloned()
    }

    pub fn keep_listing(&self, ticket: Ticket, key: ListingKey, value: Page) -> Arc<Kept<Page>> {
        let kept = Arc::new(Kept::new(value));
        let mut state = self.lock();
        if state.generation == ticket.generation {
            keep(&mut state.listings, key, Arc::clone(&kept));
        }
        kept
    }

    pub fn article(&self, slug: &Slug) -> Option<Arc<Kept<Story>>> {
        self.lock().articles.get(slug).cloned()
    }

    pub fn keep_article(&self, ticket: Ticket, slug: Slug, value: Story) -> Arc<Kept<Story>> {
        let kept = Arc::new(Kept::new(value));
        let mut state = self.lock();
        if state.generation == ticket.generation {
            keep(&mut state.articles, slug, Arc::clone(&kept));
        }
        kept
    }
}

impl State {
    fn drop_all(&mut self) {
        self.generation += 1;
        self.listings.clear();
        self.articles.clear();
    }
}

fn keep<K: Hash + Eq, V>(shelf: &mut HashMap<K, V>, key: K, value: V) {
    if shelf.len() >= MAX_KEPT {
        shelf.clear();
    }
    shelf.insert(key, value);
}
