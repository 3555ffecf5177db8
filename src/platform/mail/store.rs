//! Outbox queries.

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::compose::ComposedEmail;
use super::model::{
    Attempt, AttemptId, AttemptOutcome, NewAttempt, NewOutboxMessage, OutboxFigures, OutboxId,
    OutboxMessage, OutboxStatus,
};
use crate::platform::db::schema::{outbox, outbox_attempts};
use crate::platform::db::{self, DbConnection, Writes};
use crate::platform::domain::EmailAddress;

/// Rung whenever a message enters the outbox, so that a worker in the same
/// process sends it at once rather than at its next poll. It rings inside the
/// enqueuing transaction, before the commit: a woken worker waits
/// `delivery::SETTLE` before claiming, and the next poll picks up anything slower.
static ENQUEUED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn ring() {
    ENQUEUED.notify_waiters();
}

/// Resolves the next time a message is enqueued in this process. Create it
/// before looking at the outbox, so that a message enqueued in between is not
/// missed.
pub fn enqueued() -> tokio::sync::futures::Notified<'static> {
    ENQUEUED.notified()
}

/// Puts a message in the outbox, in the caller's transaction. `dedupe_key`
/// names the logical message: enqueueing the same one twice stores it once.
/// Returns whether it was new.
pub fn enqueue(
    conn: &mut DbConnection,
    dedupe_key: &str,
    email: &ComposedEmail,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    enqueue_at(conn, dedupe_key, email, now, now)
}

/// Like `enqueue`, for a message that must not go out before `deliver_at`
/// (a reminder, or a decision that can still be undone).
pub fn enqueue_at(
    conn: &mut DbConnection,
    dedupe_key: &str,
    email: &ComposedEmail,
    now: NaiveDateTime,
    deliver_at: NaiveDateTime,
) -> QueryResult<bool> {
    let row = entry(dedupe_key.to_owned(), email.clone(), now, deliver_at)?;
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(outbox::table)
        .values(&row)
        .on_conflict(outbox::dedupe_key)
        .do_nothing()
        .execute(c))?;
    if inserted == 1 {
        ring();
    }
    Ok(inserted == 1)
}

/// Puts a message in the outbox with the writes it goes with (see
/// `db::Writes`), under a key no other message can have (one made from a
/// fresh token): a second message under it fails the writes.
pub fn queue(
    writes: &mut Writes<'_>,
    unique_key: String,
    email: ComposedEmail,
    now: NaiveDateTime,
    deliver_at: NaiveDateTime,
) -> QueryResult<()> {
    writes.push(
        diesel::insert_into(outbox::table).values(entry(unique_key, email, now, deliver_at)?),
    );
    ring();
    Ok(())
}

fn entry(
    dedupe_key: String,
    email: ComposedEmail,
    now: NaiveDateTime,
    deliver_at: NaiveDateTime,
) -> QueryResult<NewOutboxMessage> {
    let headers = serde_json::to_string(&email.headers)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    Ok(NewOutboxMessage {
        id: OutboxId::new(),
        dedupe_key,
        template: email.template,
        from_address: email.from,
        to_address: email.to,
        subject: email.subject,
        text_body: email.text,
        html_body: email.html,
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: deliver_at,
        created_at: now,
        stream: email.stream,
        headers,
    })
}

/// Whether a message with this key is in the outbox, sent or not.
pub fn is_queued(conn: &mut DbConnection, dedupe_key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        outbox::table.filter(outbox::dedupe_key.eq(dedupe_key)),
    ))
    .get_result(conn)
}

/// Withdraws the messages whose key starts with `prefix` that no worker has
/// picked up yet; returns how many.
pub fn cancel_unsent(conn: &mut DbConnection, prefix: &str) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::dedupe_key.like(format!("{prefix}%")))
            .filter(outbox::status.eq(OutboxStatus::Pending))
            .filter(outbox::attempts.eq(0)),
    )
    .execute(conn)
}

/// When a claim is made, and until when it hides what it claims.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub now: NaiveDateTime,
    pub until: NaiveDateTime,
}

/// Claims up to `limit` due messages for one delivery attempt: each is
/// hidden from other workers until the lease ends, so a worker that dies
/// mid-send leaves it to be claimed again, never lost. `in_flight` are the
/// claimer's own messages still being sent: never claimed again by it.
/// One statement picks, leases and returns the batch, oldest first.
pub fn claim_due(
    conn: &mut DbConnection,
    lease: Lease,
    limit: i64,
    in_flight: &[OutboxId],
) -> QueryResult<Vec<OutboxMessage>> {
    let Lease { now, until } = lease;
    let candidate = diesel::alias!(outbox as candidate);
    let due = || {
        candidate
            .filter(candidate.field(outbox::status).eq(OutboxStatus::Pending))
            .filter(candidate.field(outbox::next_attempt_at).le(now))
            .filter(candidate.field(outbox::id).ne_all(in_flight))
            .order(candidate.field(outbox::next_attempt_at).asc())
            .limit(limit)
            .select(candidate.field(outbox::id))
    };
    let lease_them = (
        outbox::next_attempt_at.eq(until),
        outbox::attempts.eq(outbox::attempts + 1),
    );
    let mut claimed: Vec<OutboxMessage> = db::transaction(conn, |conn| match conn {
        DbConnection::Postgres(pg) => {
            // Along the due index the claim stops at the batch's last row,
            // and marks the entries of messages sent meanwhile as dead for
            // the next claims. When the statistics lag behind a burst (they
            // do at its start) the planner takes a bitmap scan instead,
            // which reads every due message and every dead version left
            // by the claims before, then sorts them: 8-18 ms for a batch
            // of 200 from 10,000 due, against under 1 ms.
            pg.batch_execute("SET LOCAL enable_bitmapscan = off")?;
            diesel::update(
                outbox::table.filter(outbox::id.eq_any(due().for_update().skip_locked())),
            )
            .set(lease_them)
            .returning(OutboxMessage::as_returning())
            .get_results(pg)
        }
        // BEGIN IMMEDIATE has already made this the only writer.
        DbConnection::Sqlite(sqlite) => {
            diesel::update(outbox::table.filter(outbox::id.eq_any(due())))
                .set(lease_them)
                .returning(OutboxMessage::as_returning())
                .get_results(sqlite)
        }
    })?;
    claimed.sort_by_key(|message| message.created_at);
    Ok(claimed)
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent,
    RetryAt { at: NaiveDateTime, error: String },
    Failed { error: String, transient: bool },
}

/// One attempt to record: which message, when, and what became of it.
pub struct Recorded<'a> {
    pub id: OutboxId,
    pub at: NaiveDateTime,
    pub outcome: &'a Outcome,
}

/// Records a batch of attempts. A message delivered or given up on loses
/// its bodies in the same update: they carry verification, reset, join and
/// manage links whose tokens are stored elsewhere only as hashes, and no
/// attempt is left to read them. A message given up on may still hold a
/// live link too; its error and attempts say what went wrong. The delivered
/// ones (nearly all) are settled by one update and every attempt is written
/// by one insert, whatever the batch's size: call it inside the caller's
/// transaction.
pub fn record_outcomes(conn: &mut DbConnection, attempts: &[Recorded<'_>]) -> QueryResult<()> {
    let sent: Vec<OutboxId> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Sent))
        .map(|a| a.id)
        .collect();
    // The batch went out together; its last hand-over stands for all.
    if let Some(sent_at) = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Sent))
        .map(|a| a.at)
        .max()
    {
        diesel::update(outbox::table.filter(outbox::id.eq_any(&sent)))
            .set((
                outbox::status.eq(OutboxStatus::Sent),
                outbox::sent_at.eq(Some(sent_at)),
                outbox::last_error.eq(None::<String>),
                outbox::text_body.eq(""),
                outbox::html_body.eq(""),
            ))
            .execute(conn)?;
    }
    let mut rows = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        let (outcome, detail) = settle_unsent(conn, attempt.id, attempt.outcome)?;
        rows.push(NewAttempt {
            id: AttemptId::new(),
            outbox_id: attempt.id,
            attempted_at: attempt.at,
            outcome,
            detail,
        });
    }
    // A multi-row insert has no common form across the two backends.
    crate::per_backend!(conn, |c| diesel::insert_into(outbox_attempts::table)
        .values(&rows)
        .execute(c))
    .map(drop)
}

/// Puts a message that did not go out back in the queue, or gives it up;
/// the delivered ones were settled together already.
fn settle_unsent<'a>(
    conn: &mut DbConnection,
    id: OutboxId,
    outcome: &'a Outcome,
) -> QueryResult<(AttemptOutcome, Option<&'a str>)> {
    let target = outbox::table.filter(outbox::id.eq(id));
    match outcome {
        Outcome::Sent => Ok((AttemptOutcome::Sent, None)),
        Outcome::RetryAt { at, error } => {
            diesel::update(target)
                .set((
                    outbox::next_attempt_at.eq(*at),
                    outbox::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
            Ok((AttemptOutcome::TransientFailure, Some(error.as_str())))
        }
        Outcome::Failed { error, transient } => {
            diesel::update(target)
                .set((
                    outbox::status.eq(OutboxStatus::Failed),
                    outbox::last_error.eq(Some(error)),
                    outbox::text_body.eq(""),
                    outbox::html_body.eq(""),
                ))
                .execute(conn)?;
            let kind = if *transient {
                AttemptOutcome::TransientFailure
            } else {
                AttemptOutcome::PermanentFailure
            };
            Ok((kind, Some(error.as_str())))
        }
    }
}

/// Deletes the messages sent before `before` (their attempts go by the
/// foreign key's cascade); returns how many.
pub fn purge_sent(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::status.eq(OutboxStatus::Sent))
            .filter(outbox::sent_at.lt(before)),
    )
    .execute(conn)
}

/// Every message to one address, oldest first.
pub fn for_recipient(
    conn: &mut DbConnection,
    to: &EmailAddress,
) -> QueryResult<Vec<OutboxMessage>> {
    outbox::table
        .filter(outbox::to_address.eq(to))
        .order(outbox::created_at.asc())
        .select(OutboxMessage::as_select())
        .load(conn)
}

pub fn attempts(conn: &mut DbConnection, id: OutboxId) -> QueryResult<Vec<Attempt>> {
    outbox_attempts::table
        .filter(outbox_attempts::outbox_id.eq(id))
        .order(outbox_attempts::attempted_at.asc())
        .select(Attempt::as_select())
        .load(conn)
}

/// Deletes the messages of the given templates sent to one address; returns
/// how many.
pub fn delete_for_recipient(
    conn: &mut DbConnection,
    to: &EmailAddress,
    templates: &[&str],
) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::to_address.eq(to))
            .filter(outbox::template.eq_any(templates)),
    )
    .execute(conn)
}

/// The outbox at a glance: messages waiting, those of them already due, and
/// messages given up on (all time, and created since `since`).
pub fn figures(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    since: NaiveDateTime,
) -> QueryResult<OutboxFigures> {
    let pending = outbox::table.filter(outbox::status.eq(OutboxStatus::Pending));
    Ok(OutboxFigures {
        waiting: pending.count().get_result(conn)?,
        due: pending
            .filter(outbox::next_attempt_at.le(now))
            .count()
            .get_result(conn)?,
        failed: outbox::table
            .filter(outbox::status.eq(OutboxStatus::Failed))
            .count()
            .get_result(conn)?,
        failed_recently: outbox::table
            .filter(outbox::status.eq(OutboxStatus::Failed))
            .filter(outbox::created_at.ge(since))
            .count()
            .get_result(conn)?,
    })
}

/// Messages in these states, newest first, for the console.
pub fn list(
    conn: &mut DbConnection,
    statuses: &[OutboxStatus],
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<OutboxMessage>, i64)> {
    let page = outbox::table
        .filter(outbox::status.eq_any(statuses))
        .order((outbox::created_at.desc(), outbox::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(OutboxMessage::as_select())
        .load(conn)?;
    let total = outbox::table
        .filter(outbox::status.eq_any(statuses))
        .count()
        .get_result(conn)?;
    Ok((page, total))
}

/// The recipient of one message, while the outbox still holds it.
pub fn recipient(conn: &mut DbConnection, id: OutboxId) -> QueryResult<Option<EmailAddress>> {
    outbox::table
        .find(id)
        .select(outbox::to_address)
        .first(conn)
        .optional()
}
