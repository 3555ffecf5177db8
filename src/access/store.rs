use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{Entitlement, EntitlementId, EntitlementKind, NewEntitlement};
use crate::accounts::AccountId;
use crate::platform::db::schema::entitlements;
use crate::platform::db::DbConnection;

pub fn insert(conn: &mut DbConnection, entitlement: &NewEntitlement<'_>) -> QueryResult<()> {
    diesel::insert_into(entitlements::table)
        .values(entitlement)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: EntitlementId) -> QueryResult<Option<Entitlement>> {
    entitlements::table
        .find(id)
        .select(Entitlement::as_select())
        .first(conn)
        .optional()
}

/// Every entitlement of an account, newest first.
pub fn of_account(conn: &mut DbConnection, account: AccountId) -> QueryResult<Vec<Entitlement>> {
    entitlements::table
        .filter(entitlements::account_id.eq(account))
        .order((entitlements::starts_at.desc(), entitlements::id.asc()))
        .select(Entitlement::as_select())
        .load(conn)
}

/// Revokes an entitlement that is not yet revoked; returns whether it was.
pub fn revoke(conn: &mut DbConnection, id: EntitlementId, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        entitlements::table
            .find(id)
            .filter(entitlements::revoked_at.is_null()),
    )
    .set(entitlements::revoked_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends a right that is still running at `now` (a trial cut short): it
/// reads as ended from then on, not as withdrawn. Returns whether it was
/// running.
pub fn end_now(
    conn: &mut DbConnection,
    id: EntitlementId,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        entitlements::table
            .find(id)
            .filter(entitlements::revoked_at.is_null())
            .filter(entitlements::starts_at.le(now))
            .filter(
                entitlements::ends_at
                    .is_null()
                    .or(entitlements::ends_at.gt(now)),
            ),
    )
    .set(entitlements::ends_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}

/// Moves every unrevoked entitlement of `kind` that `source_id` gave to a
/// new period and note (a company subscription renewed or renamed).
pub fn set_period_of_source(
    conn: &mut DbConnection,
    kind: EntitlementKind,
    source_id: &str,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    note: &str,
) -> QueryResult<usize> {
    diesel::update(
        entitlements::table
            .filter(entitlements::kind.eq(kind))
            .filter(entitlements::source_id.eq(source_id))
            .filter(entitlements::revoked_at.is_null()),
    )
    .set((
        entitlements::starts_at.eq(starts_at),
        entitlements::ends_at.eq(Some(ends_at)),
        entitlements::note.eq(Some(note)),
    ))
    .execute(conn)
}
