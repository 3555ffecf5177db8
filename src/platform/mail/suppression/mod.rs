//! The suppression list: the addresses newsletter mail no longer goes to,
//! kept by a keyed hash so that an erased address stays suppressed without
//! being kept. There is one way onto it, `SuppressionList::add`, and a
//! bounce or complaint reaches it only through the bounce policy, whoever
//! reports it: the SMTP session that was refused, a report mailed back, a
//! provider's webhook or an admin.

mod model;
mod store;

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::QueryResult;

pub use model::{
    BounceKind, BouncePolicy, EmailHash, Suppressed, Suppression, SuppressionKey, SuppressionReason,
};

use crate::platform::db::DbConnection;
use crate::platform::domain::EmailAddress;

/// A week without a soft bounce ends a run of them: the mailbox was
/// full, or its server down, for a while and is not any more.
const SOFT_BOUNCE_GAP_DAYS: i64 = 7;

/// Why an address goes on the list.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A bounce or complaint: a hard bounce or a complaint suppresses at
    /// once, soft bounces once they came on `soft_bounce_limit` different
    /// days in a row. `detail` is kept as the evidence.
    Report {
        kind: BounceKind,
        detail: Option<&'a str>,
    },
    /// The reader unsubscribed.
    Unsubscribed,
    /// The reader's data was erased: the hash stays, the address goes.
    Erased,
    /// A suppression brought over from another list, as that list has it.
    Imported {
        reason: SuppressionReason,
        detail: Option<&'a str>,
    },
}

/// Whom an entry is about: an address, or only the hash another list kept.
#[derive(Debug, Clone, Copy)]
pub enum Whom<'a> {
    Address(&'a EmailAddress),
    Hash(&'a EmailHash, Option<&'a EmailAddress>),
}

/// The list, with its key and the bounce policy.
#[derive(Debug, Clone)]
pub struct SuppressionList {
    key: SuppressionKey,
    policy: BouncePolicy,
}

impl SuppressionList {
    pub fn new(key: SuppressionKey, policy: BouncePolicy) -> Self {
        Self { key, policy }
    }

    /// The list's key of an address.
    pub fn hash(&self, email: &EmailAddress) -> EmailHash {
        EmailHash::of(&self.key, email)
    }

    /// Puts an address on the list, the one way onto it. Call it in the
    /// transaction of the change that caused it.
    pub fn add(
        &self,
        conn: &mut DbConnection,
        whom: Whom<'_>,
        entry: Entry<'_>,
        now: NaiveDateTime,
    ) -> QueryResult<Suppressed> {
        let (hash, email) = match whom {
            Whom::Address(email) => (self.hash(email), Some(email)),
            Whom::Hash(hash, email) => (hash.clone(), email),
        };
        let (reason, detail) = match entry {
            Entry::Report { kind, detail } => {
                match self.weigh(conn, &hash, email, kind, detail, now)? {
                    Some(weighed) => weighed,
                    None => return Ok(Suppressed::Noted),
                }
            }
            Entry::Unsubscribed => (SuppressionReason::Unsubscribed, None),
            Entry::Erased => (SuppressionReason::Erased, None),
            Entry::Imported { reason, detail } => (reason, detail.map(str::to_owned)),
        };
        let done = store::insert(conn, &hash, email, reason, detail.as_deref(), now)?;
        match entry {
            Entry::Report { .. } => {
                store::clear_soft_bounces(conn, &hash)?;
                let domain = email.map(EmailAddress::domain);
                tracing::info!(email_domain = domain, reason = %reason, "address suppressed");
            }
            Entry::Erased => store::forget_address(conn, &hash)?,
            Entry::Unsubscribed | Entry::Imported { .. } => {}
        }
        Ok(done)
    }

    /// The reason and evidence a report suppresses with, or none while soft
    /// bounces have not yet added up.
    fn weigh(
        &self,
        conn: &mut DbConnection,
        hash: &EmailHash,
        email: Option<&EmailAddress>,
        kind: BounceKind,
        detail: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<Option<(SuppressionReason, Option<String>)>> {
        let detail_owned = detail.map(str::to_owned);
        Ok(Some(match kind {
            BounceKind::HardBounce => (SuppressionReason::HardBounce, detail_owned),
            BounceKind::Complaint => (SuppressionReason::Complaint, detail_owned),
            BounceKind::SoftBounce => {
                let days = store::note_soft_bounce(conn, hash, detail, now, SOFT_BOUNCE_GAP_DAYS)?;
                let limit = i32::try_from(self.policy.soft_bounce_limit).unwrap_or(i32::MAX);
                if days < limit {
                    let domain = email.map(EmailAddress::domain);
                    tracing::info!(email_domain = domain, days, "soft bounce noted");
                    return Ok(None);
                }
                let evidence = format!(
                    "soft bounces on {days} different days; the last: {}",
                    detail.unwrap_or("no detail")
                );
                (SuppressionReason::SoftBounces, Some(evidence))
            }
        }))
    }

    /// The suppression of an address, if it has one.
    pub fn of(
        &self,
        conn: &mut DbConnection,
        email: &EmailAddress,
    ) -> QueryResult<Option<Suppression>> {
        store::find(conn, &self.hash(email))
    }

    pub fn by_hash(
        &self,
        conn: &mut DbConnection,
        hash: &EmailHash,
    ) -> QueryResult<Option<Suppression>> {
        store::find(conn, hash)
    }

    /// Which of these hashes are on the list, in one query for a whole
    /// batch of sends.
    pub fn among(
        &self,
        conn: &mut DbConnection,
        hashes: &[EmailHash],
    ) -> QueryResult<HashSet<EmailHash>> {
        Ok(store::among(conn, hashes)?.into_iter().collect())
    }

    /// Lifts a suppression, and forgets its run of soft bounces; whether
    /// there was one to lift.
    pub fn lift(&self, conn: &mut DbConnection, hash: &EmailHash) -> QueryResult<bool> {
        store::clear_soft_bounces(conn, hash)?;
        store::lift(conn, hash)
    }

    /// Lifts the suppression of an address whose owner opted in again,
    /// unless it is a bounce or a complaint.
    pub fn lift_for_opt_in(
        &self,
        conn: &mut DbConnection,
        email: &EmailAddress,
    ) -> QueryResult<()> {
        store::lift_for_opt_in(conn, &self.hash(email))
    }

    /// A page of the list, newest first, and how many there are in all.
    pub fn page(
        &self,
        conn: &mut DbConnection,
        limit: i64,
        offset: i64,
    ) -> QueryResult<(Vec<Suppression>, i64)> {
        store::page(conn, limit, offset)
    }

    /// Up to `limit` suppressions after the hash `after`, in the order of
    /// their hashes: a page of an export.
    pub fn after(
        &self,
        conn: &mut DbConnection,
        after: Option<&EmailHash>,
        limit: i64,
    ) -> QueryResult<Vec<Suppression>> {
        store::after(conn, after, limit)
    }

    /// Keys the suppressions written before their hashes were keyed: run at
    /// start-up, after the migrations.
    pub fn rekey(&self, conn: &mut DbConnection) -> QueryResult<usize> {
        store::rekey(conn, &self.key)
    }
}
