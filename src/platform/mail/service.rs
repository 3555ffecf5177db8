//! What staff may ask of the outbox.

use chrono::{DateTime, Duration, Utc};

use super::model::{OutboxFigures, OutboxMessage, OutboxStatus};
use super::store;
use crate::platform::db::{self, Pool, StorageError};
use crate::platform::domain::Role;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("only admins may read the outbox")]
    Forbidden,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Clone)]
pub struct OutboxService {
    pool: Pool,
}

impl OutboxService {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The outbox's depth and failures, the latter also over the last day.
    pub async fn figures(
        &self,
        actor: Role,
        now: DateTime<Utc>,
    ) -> Result<OutboxFigures, OutboxError> {
        if !actor.includes(Role::Admin) {
            return Err(OutboxError::Forbidden);
        }
        let since = (now - Duration::hours(24)).naive_utc();
        db::run(&self.pool, move |conn| {
            store::figures(conn, now.naive_utc(), since)
                .map_err(|e| OutboxError::Storage(StorageError::Query(e)))
        })
        .await
    }

    /// Messages waiting or given up on, newest first.
    pub async fn list(
        &self,
        actor: Role,
        statuses: Vec<OutboxStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OutboxMessage>, i64), OutboxError> {
        if !actor.includes(Role::Admin) {
            return Err(OutboxError::Forbidden);
        }
        db::run(&self.pool, move |conn| {
            store::list(conn, &statuses, limit, offset)
                .map_err(|e| OutboxError::Storage(StorageError::Query(e)))
        })
        .await
    }
}

/// Deletes the messages sent more than `keep_sent_days` ago (their bodies
/// went when they were delivered); the worker calls it hourly.
pub async fn housekeeping(
    pool: &Pool,
    now: DateTime<Utc>,
    keep_sent_days: u32,
) -> Result<(), StorageError> {
    let before = (now - Duration::days(i64::from(keep_sent_days))).naive_utc();
    let purged = db::run(pool, move |conn| {
        store::purge_sent(conn, before).map_err(StorageError::from)
    })
    .await?;
    if purged > 0 {
        tracing::info!(purged, "mail housekeeping: old sent messages deleted");
    }
    Ok(())
}
