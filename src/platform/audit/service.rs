use chrono::{DateTime, Utc};
use diesel::QueryResult;

use super::model::{AuditEntry, AuditId, NewAuditEntry, Subject, SubjectKind};
use super::store;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{AccountId, Role};

/// Records that `actor` did `action` to `subject`; call it inside the
/// transaction that makes the change.
pub fn record(
    conn: &mut DbConnection,
    at: DateTime<Utc>,
    actor: Option<AccountId>,
    action: &str,
    subject: &Subject,
    detail: Option<&str>,
) -> QueryResult<()> {
    store::insert(
        conn,
        &NewAuditEntry {
            id: AuditId::new(),
            at: at.naive_utc(),
            actor_id: actor,
            action,
            subject_kind: subject.kind,
            subject_id: &subject.id,
            detail,
        },
    )
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("only {0} may read this")]
    Forbidden(Role),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for AuditError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// Reading the trail: for staff only.
#[derive(Clone)]
pub struct AuditService {
    pool: Pool,
}

impl AuditService {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// What was done to one thing, oldest first. Editors see the trail of
    /// what they may touch; the rest is for admins.
    pub async fn of_subject(
        &self,
        actor: Role,
        subject: Subject,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let needed = match subject.kind {
            SubjectKind::Article | SubjectKind::Section => Role::Editor,
            _ => Role::Admin,
        };
        if !actor.includes(needed) {
            return Err(AuditError::Forbidden(needed));
        }
        db::run(&self.pool, move |conn| {
            store::of_subject(conn, subject.kind, &subject.id).map_err(AuditError::from)
        })
        .await
    }

    /// The latest actions, newest first: for admins.
    pub async fn recent(
        &self,
        actor: Role,
        by: Option<AccountId>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEntry>, i64), AuditError> {
        if !actor.includes(Role::Admin) {
            return Err(AuditError::Forbidden(Role::Admin));
        }
        db::run(&self.pool, move |conn| {
            store::recent(conn, by, limit, offset).map_err(AuditError::from)
        })
        .await
    }
}
