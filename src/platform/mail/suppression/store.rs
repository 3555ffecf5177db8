//! The suppression list's tables: `newsletter_suppressions` and the runs of
//! soft bounces that may add to it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    EmailHash, NewSuppression, Suppressed, Suppression, SuppressionKey, SuppressionReason,
};
use crate::platform::db::schema::{newsletter_soft_bounces, newsletter_suppressions};
use crate::platform::db::DbConnection;
use crate::platform::domain::EmailAddress;

pub(super) fn find(conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<Option<Suppression>> {
    newsletter_suppressions::table
        .find(hash)
        .select(Suppression::as_select())
        .first(conn)
        .optional()
}

/// Which of these addresses are on the suppression list.
pub(super) fn among(conn: &mut DbConnection, hashes: &[EmailHash]) -> QueryResult<Vec<EmailHash>> {
    newsletter_suppressions::table
        .filter(newsletter_suppressions::email_hash.eq_any(hashes))
        .select(newsletter_suppressions::email_hash)
        .load(conn)
}

/// Puts a hash on the list, with the address when it is known. A bounce
/// or complaint overrides a milder reason already recorded; nothing
/// weakens one.
pub(super) fn insert(
    conn: &mut DbConnection,
    hash: &EmailHash,
    email: Option<&EmailAddress>,
    reason: SuppressionReason,
    detail: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Suppressed> {
    let row = NewSuppression {
        email_hash: hash,
        email,
        reason,
        detail,
        created_at: now,
        keyed: true,
    };
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(
        newsletter_suppressions::table
    )
    .values(&row)
    .on_conflict(newsletter_suppressions::email_hash)
    .do_nothing()
    .execute(c))?;
    if inserted == 1 {
        return Ok(Suppressed::Added);
    }
    if !reason.blocks_opt_in() {
        return Ok(Suppressed::Unchanged);
    }
    let before = find(conn, hash)?.map(|s| s.reason);
    diesel::update(newsletter_suppressions::table.find(hash))
        .set((
            newsletter_suppressions::reason.eq(reason),
            newsletter_suppressions::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(if before == Some(reason) {
        Suppressed::Unchanged
    } else {
        Suppressed::Strengthened
    })
}

/// Drops the address and detail of a suppression, keeping its hash: an
/// erasure keeps the address suppressed without keeping the address.
pub(super) fn forget_address(conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<()> {
    diesel::update(newsletter_suppressions::table.find(hash))
        .set((
            newsletter_suppressions::email.eq(None::<EmailAddress>),
            newsletter_suppressions::detail.eq(None::<String>),
        ))
        .execute(conn)
        .map(drop)
}

/// Lifts the suppression of an address whose owner opted in again, unless
/// it is a bounce or a complaint.
pub(super) fn lift_for_opt_in(conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<()> {
    diesel::delete(
        newsletter_suppressions::table.find(hash).filter(
            newsletter_suppressions::reason
                .eq_any([SuppressionReason::Unsubscribed, SuppressionReason::Erased]),
        ),
    )
    .execute(conn)
    .map(drop)
}

pub(super) fn lift(conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<bool> {
    diesel::delete(newsletter_suppressions::table.find(hash))
        .execute(conn)
        .map(|n| n == 1)
}

pub(super) fn page(
    conn: &mut DbConnection,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Suppression>, i64)> {
    let page = newsletter_suppressions::table
        .select(Suppression::as_select())
        .order((
            newsletter_suppressions::created_at.desc(),
            newsletter_suppressions::email_hash.asc(),
        ))
        .limit(limit)
        .offset(offset)
        .load(conn)?;
    let total = newsletter_suppressions::table.count().get_result(conn)?;
    Ok((page, total))
}

/// Up to `limit` suppressions after the hash `after`, in the order of
/// their hashes.
pub(super) fn after(
    conn: &mut DbConnection,
    after: Option<&EmailHash>,
    limit: i64,
) -> QueryResult<Vec<Suppression>> {
    let mut query = newsletter_suppressions::table
        .select(Suppression::as_select())
        .order(newsletter_suppressions::email_hash.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(newsletter_suppressions::email_hash.gt(after.clone()));
    }
    query.load(conn)
}

/// Re-keys the suppressions written before their hashes were keyed, a page
/// at a time; returns how many. Each row is changed only while it is still
/// unkeyed, so instances starting together never key one twice.
pub(super) fn rekey(conn: &mut DbConnection, key: &SuppressionKey) -> QueryResult<usize> {
    let mut rekeyed = 0;
    loop {
        let page: Vec<EmailHash> = newsletter_suppressions::table
            .filter(newsletter_suppressions::keyed.eq(false))
            .select(newsletter_suppressions::email_hash)
            .order(newsletter_suppressions::email_hash.asc())
            .limit(1_000)
            .load(conn)?;
        if page.is_empty() {
            return Ok(rekeyed);
        }
        crate::platform::db::transaction(conn, |conn| {
            for plain in &page {
                rekeyed += diesel::update(
                    newsletter_suppressions::table
                        .find(plain)
                        .filter(newsletter_suppressions::keyed.eq(false)),
                )
                .set((
                    newsletter_suppressions::email_hash.eq(EmailHash::keyed(key, plain.as_str())),
                    newsletter_suppressions::keyed.eq(true),
                ))
                .execute(conn)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
    }
}

/// Notes a soft bounce of the address behind `hash` at `now`: a new day
/// adds one to its run of soft bounces, a second one the same day does
/// not, and one after a gap of more than `gap_days` starts a new run.
/// Returns the run's length in days.
pub(super) fn note_soft_bounce(
    conn: &mut DbConnection,
    hash: &EmailHash,
    detail: Option<&str>,
    now: NaiveDateTime,
    gap_days: i64,
) -> QueryResult<i32> {
    let previous: Option<(i32, NaiveDateTime)> = newsletter_soft_bounces::table
        .find(hash)
        .select((
            newsletter_soft_bounces::days,
            newsletter_soft_bounces::last_at,
        ))
        .first(conn)
        .optional()?;
    let days = match previous {
        Some((_, last)) if (now.date() - last.date()).num_days() > gap_days => {
            diesel::delete(newsletter_soft_bounces::table.find(hash)).execute(conn)?;
            1
        }
        Some((days, last)) => {
            let days = if now.date() > last.date() {
                days + 1
            } else {
                days
            };
            diesel::update(newsletter_soft_bounces::table.find(hash))
                .set((
                    newsletter_soft_bounces::days.eq(days),
                    newsletter_soft_bounces::last_at.eq(now),
                    newsletter_soft_bounces::detail.eq(detail),
                ))
                .execute(conn)?;
            return Ok(days);
        }
        None => 1,
    };
    diesel::insert_into(newsletter_soft_bounces::table)
        .values((
            newsletter_soft_bounces::email_hash.eq(hash),
            newsletter_soft_bounces::days.eq(days),
            newsletter_soft_bounces::first_at.eq(now),
            newsletter_soft_bounces::last_at.eq(now),
            newsletter_soft_bounces::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(days)
}

/// Ends the run of soft bounces of the address behind `hash`.
pub(super) fn clear_soft_bounces(conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<()> {
    diesel::delete(newsletter_soft_bounces::table.find(hash))
        .execute(conn)
        .map(drop)
}
