//! Keeping what the database said while a stamp of it stands still.
//!
//! A stamp is one number that triggers move whenever the data behind some
//! kept values changes, whoever changed it (see the `content_stamp` and
//! `access_stamp` migrations). A process keeps values while the stamp it
//! last read stands, and reads it again once per recheck period — so a
//! change made by another instance is seen within that period — and after
//! any write transaction of its own has committed, so that its own changes
//! are seen by its very next read.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::access_stamp;
use super::{DbConnection, Pool, StorageError};

/// Leave to keep a value read after a check: refused when what was kept has
/// been dropped since, as the value may predate the change that dropped it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
}

/// When a stamp was last read, and what it was.
pub struct Watch {
    recheck: Duration,
    stamp: Option<i64>,
    checked_at: Option<Instant>,
    commits_seen: u64,
    /// Moves whenever what is kept is dropped.
    generation: u64,
}

impl Watch {
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            stamp: None,
            checked_at: None,
            commits_seen: 0,
            generation: 0,
        }
    }

    /// Leave to use what is kept, or `None` when the stamp must be read
    /// first. Then this caller reads it, and the others go on meanwhile with
    /// what is kept: it was current a moment ago. `commits` is the pool's
    /// count of committed write transactions.
    pub fn current(&mut self, commits: u64) -> Option<Ticket> {
        let recent = self
            .checked_at
            .is_some_and(|at| at.elapsed() < self.recheck)
            && self.commits_seen == commits;
        if self.stamp.is_some() && recent {
            return Some(self.ticket());
        }
        self.checked_at = Some(Instant::now());
        self.commits_seen = commits;
        None
    }

    /// Takes the stamp just read; true when it moved, and so what is kept
    /// must be dropped.
    pub fn settle(&mut self, stamp: i64) -> bool {
        let moved = self.stamp != Some(stamp);
        if moved {
            self.generation += 1;
            self.stamp = Some(stamp);
        }
        moved
    }

    /// Drops what is kept: the next read asks the database for its stamp.
    pub fn forget(&mut self) {
        self.generation += 1;
        self.stamp = None;
    }

    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation,
        }
    }

    pub fn admits(&self, ticket: Ticket) -> bool {
        self.generation == ticket.generation
    }
}

/// What a cache holds under one lock: the watch of its stamp, and what it
/// drops when the stamp moves.
pub trait Watched {
    fn watch(&mut self) -> &mut Watch;
    fn drop_kept(&mut self);
}

/// Makes what `state` keeps no older than the stamp `read_stamp` reads (see
/// [`Watch::current`]); gives leave to keep what is read next.
pub async fn check<S: Watched>(
    state: &Mutex<S>,
    pool: &Pool,
    read_stamp: fn(&mut DbConnection) -> QueryResult<i64>,
) -> Result<Ticket, StorageError> {
    if let Some(ticket) = lock(state).watch().current(pool.commits()) {
        return Ok(ticket);
    }
    let stamp = super::run(pool, move |conn| {
        read_stamp(conn).map_err(StorageError::from)
    })
    .await?;
    let mut state = lock(state);
    if state.watch().settle(stamp) {
        state.drop_kept();
    }
    Ok(state.watch().ticket())
}

pub fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Beyond this many values kept, they are all dropped before the next is
/// kept: a flood of distinct keys costs what it cost without the cache, and
/// no more memory.
const MAX_KEPT: usize = 10_000;

/// Values by key, kept while one stamp stands still.
pub struct Stamped<K, V> {
    read_stamp: fn(&mut DbConnection) -> QueryResult<i64>,
    state: Mutex<Shelf<K, V>>,
}

struct Shelf<K, V> {
    watch: Watch,
    kept: HashMap<K, V>,
}

impl<K, V> Watched for Shelf<K, V> {
    fn watch(&mut self) -> &mut Watch {
        &mut self.watch
    }

    fn drop_kept(&mut self) {
        self.kept.clear();
    }
}

impl<K: Hash + Eq, V: Clone> Stamped<K, V> {
    pub fn new(recheck: Duration, read_stamp: fn(&mut DbConnection) -> QueryResult<i64>) -> Self {
        Self {
            read_stamp,
            state: Mutex::new(Shelf {
                watch: Watch::new(recheck),
                kept: HashMap::new(),
            }),
        }
    }

    pub async fn check(&self, pool: &Pool) -> Result<Ticket, StorageError> {
        check(&self.state, pool, self.read_stamp).await
    }

    pub fn get(&self, key: &K) -> Option<V> {
        lock(&self.state).kept.get(key).cloned()
    }

    /// Keeps `value` unless what was kept has been dropped since `ticket`.
    pub fn keep(&self, ticket: Ticket, key: K, value: V) {
        let shelf = &mut *lock(&self.state);
        if shelf.watch.admits(ticket) {
            if shelf.kept.len() >= MAX_KEPT {
                shelf.kept.clear();
            }
            shelf.kept.insert(key, value);
        }
    }
}

/// The stamp of sessions, accounts and their rights to read.
pub fn access_stamp(conn: &mut DbConnection) -> QueryResult<i64> {
    access_stamp::table
        .select(access_stamp::version)
        .first(conn)
}
