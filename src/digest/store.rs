//! Digest runs and deliveries.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use super::model::{Claimed, Counts, DeliveryStatus, DigestRun, NewDelivery, NewRun, RunId};
use crate::articles::Article;
use crate::articles::ArticleStatus;
use crate::articles::Section;
use crate::newsletter::Sections;
use crate::newsletter::SubscriberId;
use crate::newsletter::SubscriberStatus;
use crate::platform::db::schema::{
    accounts, articles, digest_deliveries, digest_runs, newsletter_subscribers, sections,
};
use crate::platform::db::{self, DbConnection};
use crate::platform::domain::EmailAddress;
use crate::platform::mail::suppression::{BounceKind, Entry, SuppressionList, Whom};

/// Creates the run of a date unless one exists; returns whether it did.
pub fn insert_run(conn: &mut DbConnection, run: &NewRun<'_>) -> QueryResult<bool> {
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(digest_runs::table)
        .values(run)
        .on_conflict(digest_runs::run_date)
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// The latest cut-off before `cutoff`: where the next run's articles start.
pub fn previous_cutoff(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    digest_runs::table
        .filter(digest_runs::cutoff.lt(cutoff))
        .select(diesel::dsl::max(digest_runs::cutoff))
        .first(conn)
}

pub fn run_by_date(conn: &mut DbConnection, date: &str) -> QueryResult<Option<DigestRun>> {
    digest_runs::table
        .filter(digest_runs::run_date.eq(date))
        .select(DigestRun::as_select())
        .first(conn)
        .optional()
}

pub fn run(conn: &mut DbConnection, id: RunId) -> QueryResult<Option<DigestRun>> {
    digest_runs::table
        .find(id)
        .select(DigestRun::as_select())
        .first(conn)
        .optional()
}

/// The latest runs, newest date first.
pub fn runs(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<DigestRun>> {
    digest_runs::table
        .order(digest_runs::run_date.desc())
        .limit(limit)
        .select(DigestRun::as_select())
        .load(conn)
}

/// Runs whose deliveries are not all created yet (new, or interrupted).
pub fn unprepared_runs(conn: &mut DbConnection) -> QueryResult<Vec<DigestRun>> {
    digest_runs::table
        .filter(digest_runs::prepared_at.is_null())
        .order(digest_runs::run_date.asc())
        .select(DigestRun::as_select())
        .load(conn)
}

pub fn mark_prepared(
    conn: &mut DbConnection,
    id: RunId,
    article_count: i32,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(digest_runs::table.find(id))
        .set((
            digest_runs::article_count.eq(article_count),
            digest_runs::prepared_at.eq(Some(now)),
        ))
        .execute(conn)
        .map(drop)
}

/// Delivery counts of these runs, by run id: a settled run's as it keeps
/// them, the others' counted from their rows.
pub fn counts(
    conn: &mut DbConnection,
    runs: &[DigestRun],
) -> QueryResult<BTreeMap<String, Counts>> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut open = Vec::new();
    for run in runs {
        match run.settled_counts() {
            Some(settled) => {
                counts.insert(run.id.to_string(), settled);
            }
            None => open.push(run.id),
        }
    }
    for (run, status, n) in counted(conn, &open)? {
        counts.entry(run.to_string()).or_default().add(status, n);
    }
    Ok(counts)
}

fn counted(
    conn: &mut DbConnection,
    runs: &[RunId],
) -> QueryResult<Vec<(RunId, DeliveryStatus, i64)>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    digest_deliveries::table
        .filter(digest_deliveries::run_id.eq_any(runs))
        .group_by((digest_deliveries::run_id, digest_deliveries::status))
        .select((
            digest_deliveries::run_id,
            digest_deliveries::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// Settles the prepared runs that have nothing left to send: their counts
/// are written on the run, final. Returns how many it settled.
pub fn settle_finished(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    let open: Vec<DigestRun> = digest_runs::table
        .filter(digest_runs::prepared_at.is_not_null())
        .filter(digest_runs::settled_at.is_null())
        .select(DigestRun::as_select())
        .load(conn)?;
    let mut all = counts(conn, &open)?;
    let mut settled = 0;
    for run in open {
        let counts = all.remove(&run.id.to_string()).unwrap_or_default();
        if counts.pending > 0 {
            continue;
        }
        // Only if still unsettled: two workers may do this at once.
        settled += diesel::update(
            digest_runs::table
                .find(run.id)
                .filter(digest_runs::settled_at.is_null()),
        )
        .set((
            digest_runs::settled_at.eq(Some(now)),
            digest_runs::sent_count.eq(counts.sent),
            digest_runs::failed_count.eq(counts.failed),
            digest_runs::skipped_count.eq(counts.skipped),
        ))
        .execute(conn)?;
    }
    Ok(settled)
}

/// Deletes the delivery rows of settled runs dated before `before`; their
/// counts stay on the runs. Returns how many rows it deleted.
pub fn purge_deliveries(conn: &mut DbConnection, before: &str) -> QueryResult<usize> {
    let old = digest_runs::table
        .filter(digest_runs::settled_at.is_not_null())
        .filter(digest_runs::run_date.lt(before))
        .select(digest_runs::id);
    diesel::delete(digest_deliveries::table.filter(digest_deliveries::run_id.eq_any(old)))
        .execute(conn)
}

/// How many deliveries of a run show each variant.
pub fn variant_counts(conn: &mut DbConnection, run: RunId) -> QueryResult<Vec<(Sections, i64)>> {
    digest_deliveries::table
        .filter(digest_deliveries::run_id.eq(run))
        .group_by(digest_deliveries::variant)
        .select((digest_deliveries::variant, diesel::dsl::count_star()))
        .load(conn)
}

/// How many confirmed subscribers, not paused at `cutoff`, chose each set
/// of sections.
pub fn confirmed_by_sections(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Vec<(Sections, i64)>> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .filter(
            newsletter_subscribers::paused_until
                .is_null()
                .or(newsletter_subscribers::paused_until.le(cutoff)),
        )
        .group_by(newsletter_subscribers::sections)
        .select((newsletter_subscribers::sections, diesel::dsl::count_star()))
        .load(conn)
}

/// The articles a run covers: published in (since, cutoff], in section
/// order, oldest first within a section.
pub fn articles_between(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    cutoff: NaiveDateTime,
) -> QueryResult<Vec<(Article, Section)>> {
    articles::table
        .inner_join(sections::table)
        .filter(articles::status.eq(ArticleStatus::Published))
        .filter(articles::published_at.gt(since))
        .filter(articles::published_at.le(cutoff))
        .order((
            sections::position.asc(),
            articles::published_at.asc(),
            articles::id.asc(),
        ))
        .select((Article::as_select(), Section::as_select()))
        .load(conn)
}

/// A page of subscribers, by id, for the fan-out; the caller keeps the
/// confirmed ones. The status is not filtered here: SQLite would then pick
/// the status index and sort every confirmed row for every page.
pub type Recipient = (
    SubscriberId,
    EmailAddress,
    Sections,
    Option<NaiveDateTime>,
    SubscriberStatus,
);

pub fn subscriber_page(
    conn: &mut DbConnection,
    after: Option<SubscriberId>,
    limit: i64,
) -> QueryResult<Vec<Recipient>> {
    let mut query = newsletter_subscribers::table
        .order(newsletter_subscribers::id.asc())
        .limit(limit)
        .select((
            newsletter_subscribers::id,
            newsletter_subscribers::email,
            newsletter_subscribers::sections,
            newsletter_subscribers::paused_until,
            newsletter_subscribers::status,
        ))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(newsletter_subscribers::id.gt(after));
    }
    query.load(conn)
}

/// Creates deliveries; those that exist already are left as they are, so a
/// fan-out interrupted half-way can simply run again.
pub fn insert_deliveries(conn: &mut DbConnection, rows: &[NewDelivery]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    match conn {
        DbConnection::Postgres(pg) => diesel::insert_into(digest_deliveries::table)
            .values(rows)
            .on_conflict((digest_deliveries::run_id, digest_deliveries::subscriber_id))
            .do_nothing()
            .execute(pg),
        // Diesel writes a multi-row ON CONFLICT only for PostgreSQL; on
        // SQLite the primary key is the only constraint a row can break here.
        DbConnection::Sqlite(sqlite) => diesel::insert_or_ignore_into(digest_deliveries::table)
            .values(rows)
            .execute(sqlite),
    }
}

/// The claim on PostgreSQL, as one statement: rows another worker holds
/// are skipped, not waited for. Diesel cannot write an UPDATE whose filter
/// selects from the same table with a locking clause.
const CLAIM_POSTGRES: &str = "\
    UPDATE digest_deliveries SET leased_until = $1, attempts = attempts + 1 \
    WHERE run_id = $2 AND subscriber_id IN ( \
        SELECT subscriber_id FROM digest_deliveries \
        WHERE run_id = $2 AND subscriber_id > $3 AND status = 'pending' \
          AND next_attempt_at <= $4 AND (leased_until IS NULL OR leased_until <= $4) \
        ORDER BY subscriber_id LIMIT $5 FOR UPDATE SKIP LOCKED) \
    RETURNING subscriber_id, variant, attempts";

#[derive(QueryableByName)]
struct LeasedRow {
    #[diesel(sql_type = Text)]
    subscriber_id: SubscriberId,
    #[diesel(sql_type = Text)]
    variant: Sections,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// Runs with deliveries that are due: the ones a worker should send.
pub fn runs_with_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<RunId>> {
    digest_runs::table
        .filter(digest_runs::settled_at.is_null())
        .filter(diesel::dsl::exists(
            digest_deliveries::table
                .filter(digest_deliveries::run_id.eq(digest_runs::id))
                .filter(digest_deliveries::status.eq(DeliveryStatus::Pending))
                .filter(digest_deliveries::next_attempt_at.le(now)),
        ))
        .order(digest_runs::run_date.asc())
        .select(digest_runs::id)
        .load(conn)
}

/// Brings PostgreSQL's statistics of the deliveries up to date after a
/// fan-out. Left to autovacuum, the planner can go on thinking the table
/// nearly empty for a minute, and the cached plan of recording results
/// then scans the whole table for every batch. SQLite's planner keeps no
/// such statistics unless asked to.
pub fn refresh_statistics(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => diesel::sql_query("ANALYZE digest_deliveries")
            .execute(pg)
            .map(drop),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// Claims up to `limit` due deliveries of a run, in subscriber order after
/// `after`: each is hidden from other workers until `lease_until`, so a
/// worker that dies mid-send leaves it to be claimed again, never lost.
/// Continuing from where the last claim stopped keeps each claim to about
/// one batch of index entries, however many rows the run has sent already.
pub fn claim(
    conn: &mut DbConnection,
    run: RunId,
    after: Option<SubscriberId>,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    let leased = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(CLAIM_POSTGRES)
            .bind::<Timestamp, _>(lease_until)
            .bind::<Text, _>(run)
            // Every id sorts after the empty text.
            .bind::<Text, _>(after.map(|id| id.to_string()).unwrap_or_default())
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load::<LeasedRow>(pg)?
            .into_iter()
            .map(|row| (row.subscriber_id, row.variant, row.attempts))
            .collect(),
        // BEGIN IMMEDIATE makes this the only writer between the read and
        // the update.
        DbConnection::Sqlite(_) => db::transaction(conn, |conn| {
            let DbConnection::Sqlite(sqlite) = conn else {
                unreachable!("a SQLite connection stays one")
            };
            lease_on_sqlite(sqlite, run, after, now, lease_until, limit)
        })?,
    };
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    with_recipients(conn, run, leased)
}

/// A delivery as leased: its subscriber, variant and attempts so far.
type Leased = (SubscriberId, Sections, i32);

/// `claim`'s lease on SQLite, which has no `UPDATE … RETURNING` over a
/// limited, ordered selection: the keys first, then the update, then the
/// rows.
fn lease_on_sqlite(
    sqlite: &mut diesel::SqliteConnection,
    run: RunId,
    after: Option<SubscriberId>,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Leased>> {
    let of_run = || digest_deliveries::table.filter(digest_deliveries::run_id.eq(run));
    let due = || {
        of_run()
            .filter(digest_deliveries::status.eq(DeliveryStatus::Pending))
            .filter(digest_deliveries::next_attempt_at.le(now))
            .filter(
                digest_deliveries::leased_until
                    .is_null()
                    .or(digest_deliveries::leased_until.le(now)),
            )
            .order(digest_deliveries::subscriber_id.asc())
            .limit(limit)
            .select(digest_deliveries::subscriber_id)
    };
    let keys: Vec<SubscriberId> = match after {
        Some(after) => due()
            .filter(digest_deliveries::subscriber_id.gt(after))
            .load(sqlite)?,
        None => due().load(sqlite)?,
    };
    diesel::update(of_run().filter(digest_deliveries::subscriber_id.eq_any(&keys)))
        .set((
            digest_deliveries::leased_until.eq(Some(lease_until)),
            digest_deliveries::attempts.eq(digest_deliveries::attempts + 1),
        ))
        .execute(sqlite)?;
    of_run()
        .filter(digest_deliveries::subscriber_id.eq_any(&keys))
        .select((
            digest_deliveries::subscriber_id,
            digest_deliveries::variant,
            digest_deliveries::attempts,
        ))
        .load(sqlite)
}

/// The leased deliveries with whom each goes to, in subscriber order.
fn with_recipients(
    conn: &mut DbConnection,
    run: RunId,
    leased: Vec<Leased>,
) -> QueryResult<Vec<Claimed>> {
    let ids: Vec<SubscriberId> = leased.iter().map(|row| row.0).collect();
    let mut recipients: HashMap<SubscriberId, (EmailAddress, SubscriberStatus, Option<String>)> =
        newsletter_subscribers::table
            .left_join(accounts::table)
            .filter(newsletter_subscribers::id.eq_any(&ids))
            .select((
                newsletter_subscribers::id,
                newsletter_subscribers::email,
                newsletter_subscribers::status,
                accounts::name.nullable(),
            ))
            .load::<(SubscriberId, EmailAddress, SubscriberStatus, Option<String>)>(conn)?
            .into_iter()
            .map(|(id, email, status, name)| (id, (email, status, name)))
            .collect();
    let mut claimed: Vec<Claimed> = leased
        .into_iter()
        // A subscriber erased since the fan-out took the delivery with it.
        .filter_map(|(subscriber_id, variant, attempts)| {
            let (email, status, name) = recipients.remove(&subscriber_id)?;
            Some(Claimed {
                run_id: run,
                subscriber_id,
                variant,
                attempts,
                email,
                status,
                name,
            })
        })
        .collect();
    claimed.sort_by_key(|c| c.subscriber_id);
    Ok(claimed)
}

/// What became of one claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent,
    /// Not sent: suppressed or unsubscribed since the fan-out.
    Skipped,
    RetryAt {
        at: NaiveDateTime,
        error: String,
    },
    /// `bounce` carries the address of a permanent refusal, to suppress.
    Failed {
        error: String,
        bounce: Option<EmailAddress>,
    },
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub run_id: RunId,
    pub subscriber_id: SubscriberId,
    pub outcome: Outcome,
}

/// Writes the outcomes of many deliveries in one transaction: the sent and
/// skipped ones with one statement per run, the rare failures one by one.
pub fn record(
    conn: &mut DbConnection,
    suppressions: &SuppressionList,
    results: &[Recorded],
    now: NaiveDateTime,
) -> QueryResult<()> {
    db::transaction(conn, |conn| {
        let mut done: BTreeMap<(String, &'static str), Done> = BTreeMap::new();
        for result in results {
            let status = match &result.outcome {
                Outcome::Sent => DeliveryStatus::Sent,
                Outcome::Skipped => DeliveryStatus::Skipped,
                failed => {
                    record_failure(conn, suppressions, result, failed, now)?;
                    continue;
                }
            };
            done.entry((result.run_id.to_string(), status.as_str()))
                .or_insert_with(|| (result.run_id, status, Vec::new()))
                .2
                .push(result.subscriber_id);
        }
        for (run, status, subscribers) in done.into_values() {
            let sent_at = (status == DeliveryStatus::Sent).then_some(now);
            diesel::update(
                digest_deliveries::table
                    .filter(digest_deliveries::run_id.eq(run))
                    .filter(digest_deliveries::subscriber_id.eq_any(&subscribers)),
            )
            .set((
                digest_deliveries::status.eq(status),
                digest_deliveries::sent_at.eq(sent_at),
                digest_deliveries::leased_until.eq(None::<NaiveDateTime>),
                digest_deliveries::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        }
        // Last, so the run's row is locked only for the commit: workers
        // recording batches of the same run wait on each other here.
        let runs: Vec<RunId> = results
            .iter()
            .map(|r| r.run_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        diesel::update(digest_runs::table.filter(digest_runs::id.eq_any(&runs)))
            .set(digest_runs::last_result_at.eq(Some(now)))
            .execute(conn)?;
        Ok(())
    })
}

/// The deliveries of one run that ended alike, sent or skipped.
type Done = (RunId, DeliveryStatus, Vec<SubscriberId>);

/// A delivery to try again later, or one that failed for good; a permanent
/// refusal is a hard bounce, and no newsletter goes to the address again
/// until an admin lifts it.
fn record_failure(
    conn: &mut DbConnection,
    suppressions: &SuppressionList,
    result: &Recorded,
    outcome: &Outcome,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let target = digest_deliveries::table
        .filter(digest_deliveries::run_id.eq(result.run_id))
        .filter(digest_deliveries::subscriber_id.eq(result.subscriber_id));
    match outcome {
        Outcome::RetryAt { at, error } => {
            diesel::update(target)
                .set((
                    digest_deliveries::next_attempt_at.eq(*at),
                    digest_deliveries::leased_until.eq(None::<NaiveDateTime>),
                    digest_deliveries::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
        }
        Outcome::Failed { error, bounce } => {
            diesel::update(target)
                .set((
                    digest_deliveries::status.eq(DeliveryStatus::Failed),
                    digest_deliveries::leased_until.eq(None::<NaiveDateTime>),
                    digest_deliveries::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
            if let Some(address) = bounce {
                let report = Entry::Report {
                    kind: BounceKind::HardBounce,
                    detail: Some(error),
                };
                suppressions.add(conn, Whom::Address(address), report, now)?;
            }
        }
        Outcome::Sent | Outcome::Skipped => {}
    }
    Ok(())
}

/// Gives back claimed deliveries that were never tried (the sender was
/// asked to stop): claimable again at once, their attempt not counted.
pub fn release(
    conn: &mut DbConnection,
    run: RunId,
    subscribers: &[SubscriberId],
) -> QueryResult<usize> {
    diesel::update(
        digest_deliveries::table
            .filter(digest_deliveries::run_id.eq(run))
            .filter(digest_deliveries::subscriber_id.eq_any(subscribers))
            .filter(digest_deliveries::status.eq(DeliveryStatus::Pending)),
    )
    .set((
        digest_deliveries::leased_until.eq(None::<NaiveDateTime>),
        digest_deliveries::attempts.eq(digest_deliveries::attempts - 1),
    ))
    .execute(conn)
}

/// Makes the deliveries of a run that wait for a retry due now; returns how
/// many.
pub fn retry_now(conn: &mut DbConnection, run: RunId, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        digest_deliveries::table
            .filter(digest_deliveries::run_id.eq(run))
            .filter(digest_deliveries::status.eq(DeliveryStatus::Pending))
            .filter(digest_deliveries::next_attempt_at.gt(now)),
    )
    .set(digest_deliveries::next_attempt_at.eq(now))
    .execute(conn)
}

/// All deliveries ever sent, failed and skipped (settled runs keep their
/// counts, the rest are counted), and those sent in [from, now].
pub fn totals(conn: &mut DbConnection, from: NaiveDateTime) -> QueryResult<(Counts, i64)> {
    // A run a day: few rows, summed here rather than as SUM(bigint), which
    // PostgreSQL answers as numeric.
    let settled: Vec<(i64, i64, i64)> = digest_runs::table
        .filter(digest_runs::settled_at.is_not_null())
        .select((
            digest_runs::sent_count,
            digest_runs::failed_count,
            digest_runs::skipped_count,
        ))
        .load(conn)?;
    let mut counts = Counts::default();
    for (sent, failed, skipped) in settled {
        counts.sent += sent;
        counts.failed += failed;
        counts.skipped += skipped;
    }
    let open: Vec<RunId> = digest_runs::table
        .filter(digest_runs::settled_at.is_null())
        .select(digest_runs::id)
        .load(conn)?;
    for (_, status, n) in counted(conn, &open)? {
        counts.add(status, n);
    }
    let recent = digest_deliveries::table
        .filter(digest_deliveries::sent_at.ge(from))
        .count()
        .get_result(conn)?;
    Ok((counts, recent))
}

/// A delivery's status, attempts, last error, and whether it is in flight.
pub type DeliveryState = (DeliveryStatus, i32, Option<String>, bool);

/// One delivery, for tests and the admin's questions.
pub fn delivery(
    conn: &mut DbConnection,
    run: RunId,
    subscriber: SubscriberId,
) -> QueryResult<Option<DeliveryState>> {
    // Attempts are counted when a delivery is claimed; `in flight` tells a
    // claimed one from one whose outcome is recorded.
    digest_deliveries::table
        .find((run, subscriber))
        .select((
            digest_deliveries::status,
            digest_deliveries::attempts,
            digest_deliveries::last_error,
            digest_deliveries::leased_until.is_not_null(),
        ))
        .first(conn)
        .optional()
}

/// Every delivery of a run: subscriber, status and attempts.
pub fn deliveries_of(
    conn: &mut DbConnection,
    run: RunId,
) -> QueryResult<Vec<(SubscriberId, DeliveryStatus, i32)>> {
    digest_deliveries::table
        .filter(digest_deliveries::run_id.eq(run))
        .select((
            digest_deliveries::subscriber_id,
            digest_deliveries::status,
            digest_deliveries::attempts,
        ))
        .load(conn)
}

/// The digests one subscriber was sent among the deliveries still kept:
/// how many, the time of the last, and how many failed.
pub fn sent_to(
    conn: &mut DbConnection,
    subscriber: SubscriberId,
) -> QueryResult<(i64, Option<NaiveDateTime>, i64)> {
    let (sent, last): (i64, Option<NaiveDateTime>) = digest_deliveries::table
        .filter(digest_deliveries::subscriber_id.eq(subscriber))
        .filter(digest_deliveries::status.eq(DeliveryStatus::Sent))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(digest_deliveries::sent_at),
        ))
        .get_result(conn)?;
    let failed = digest_deliveries::table
        .filter(digest_deliveries::subscriber_id.eq(subscriber))
        .filter(digest_deliveries::status.eq(DeliveryStatus::Failed))
        .count()
        .get_result(conn)?;
    Ok((sent, last, failed))
}
