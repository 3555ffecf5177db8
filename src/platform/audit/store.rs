use diesel::prelude::*;

use super::model::{AuditEntry, NewAuditEntry, SubjectKind};
use crate::platform::db::schema::audit_log;
use crate::platform::db::DbConnection;
use crate::platform::domain::AccountId;

pub fn insert(conn: &mut DbConnection, entry: &NewAuditEntry<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(entry)
        .execute(conn)
        .map(drop)
}

/// What was done to one thing, oldest first.
pub fn of_subject(
    conn: &mut DbConnection,
    kind: SubjectKind,
    id: &str,
) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table
        .filter(audit_log::subject_kind.eq(kind))
        .filter(audit_log::subject_id.eq(id))
        .order((audit_log::at.asc(), audit_log::id.asc()))
        .select(AuditEntry::as_select())
        .load(conn)
}

/// The latest actions, newest first, optionally of one actor.
pub fn recent(
    conn: &mut DbConnection,
    actor: Option<AccountId>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<AuditEntry>, i64)> {
    let mut query = audit_log::table.into_boxed();
    let mut count = audit_log::table.into_boxed();
    if let Some(actor) = actor {
        query = query.filter(audit_log::actor_id.eq(actor));
        count = count.filter(audit_log::actor_id.eq(actor));
    }
    let entries = query
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(AuditEntry::as_select())
        .load(conn)?;
    let total = count.count().get_result(conn)?;
    Ok((entries, total))
}
