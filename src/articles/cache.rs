//! Published listings and articles, and the sections every page's
//! navigation shows, kept in memory while the database's
//! content stamp (kept by triggers, see the `content_stamp` migration) stands
//! still. A reader's own access is decided after the cache, never kept in it.
//!
//! A change made through this process drops what is kept at once
//! ([`ReaderCache::forget`]); one made elsewhere is noticed when a read finds
//! the stamp moved, asked at most once per `articles.cache_recheck_ms`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use actix_web::http::header::EntityTag;
use actix_web::web::Bytes;

use super::model::Section;
use super::store;
use super::views::{Listing, Page, Story};
use crate::platform::db::stamp::{self, Ticket, Watch, Watched};
use crate::platform::db::{Pool, StorageError};
use crate::platform::domain::Slug;

/// Beyond this many listings (or articles) kept, the shelf is emptied
/// before the next is kept: a flood of distinct queries costs what it cost
/// without a cache, and no more memory.
const MAX_KEPT: usize = 1024;

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

pub struct ReaderCache {
    state: Mutex<State>,
}

struct State {
    watch: Watch,
    listings: Shelf<Listing, Page>,
    articles: Shelf<Slug, Story>,
    /// One value: the site's sections, in their order.
    sections: Shelf<(), Vec<Section>>,
}

/// Kept values of one kind, by what tells them apart.
struct Shelf<K, V>(HashMap<K, Arc<Kept<V>>>);

impl<K: Hash + Eq, V> Shelf<K, V> {
    fn get(&self, key: &K) -> Option<Arc<Kept<V>>> {
        self.0.get(key).cloned()
    }

    fn keep(&mut self, key: K, kept: Arc<Kept<V>>) {
        if self.0.len() >= MAX_KEPT {
            self.0.clear();
        }
        self.0.insert(key, kept);
    }
}

impl ReaderCache {
    pub fn new(recheck: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                watch: Watch::new(recheck),
                listings: Shelf(HashMap::new()),
                articles: Shelf(HashMap::new()),
                sections: Shelf(HashMap::new()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        stamp::lock(&self.state)
    }

    /// Makes what is kept no older than the database's stamp (see
    /// [`stamp::Watch::current`]).
    pub async fn check(&self, pool: &Pool) -> Result<Ticket, StorageError> {
        stamp::check(&self.state, pool, store::content_stamp).await
    }

    /// Drops everything kept; the next read asks the database for its stamp.
    pub fn forget(&self) {
        let mut state = self.lock();
        state.watch.forget();
        state.drop_kept();
    }

    pub fn listing(&self, listing: &Listing) -> Option<Arc<Kept<Page>>> {
        self.lock().listings.get(listing)
    }

    pub fn keep_listing(&self, ticket: Ticket, listing: Listing, page: Page) -> Arc<Kept<Page>> {
        self.keep(ticket, |state| &mut state.listings, listing, page)
    }

    pub fn article(&self, slug: &Slug) -> Option<Arc<Kept<Story>>> {
        self.lock().articles.get(slug)
    }

    pub fn keep_article(&self, ticket: Ticket, slug: Slug, story: Story) -> Arc<Kept<Story>> {
        self.keep(ticket, |state| &mut state.articles, slug, story)
    }

    pub fn sections(&self) -> Option<Arc<Kept<Vec<Section>>>> {
        self.lock().sections.get(&())
    }

    pub fn keep_sections(&self, ticket: Ticket, sections: Vec<Section>) -> Arc<Kept<Vec<Section>>> {
        self.keep(ticket, |state| &mut state.sections, (), sections)
    }

    /// Keeps `value` on its shelf unless what was kept has been dropped
    /// since `ticket`; either way the caller gets it back to answer with.
    fn keep<K: Hash + Eq, V>(
        &self,
        ticket: Ticket,
        shelf: impl FnOnce(&mut State) -> &mut Shelf<K, V>,
        key: K,
        value: V,
    ) -> Arc<Kept<V>> {
        let kept = Arc::new(Kept::new(value));
        let mut state = self.lock();
        if state.watch.admits(ticket) {
            shelf(&mut state).keep(key, Arc::clone(&kept));
        }
        kept
    }
}

impl Watched for State {
    fn watch(&mut self) -> &mut Watch {
        &mut self.watch
    }

    fn drop_kept(&mut self) {
        self.listings.0.clear();
        self.articles.0.clear();
        self.sections.0.clear();
    }
}
