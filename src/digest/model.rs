use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::newsletter::Sections;
use crate::newsletter::SubscriberId;
use crate::newsletter::SubscriberStatus;
use crate::platform::db::schema::{digest_deliveries, digest_runs};
use crate::platform::domain::EmailAddress;

crate::id_type!(RunId);

crate::text_enum! {
    /// `skipped`: suppressed or unsubscribed between the fan-out and the send.
    pub enum DeliveryStatus {
        Pending => "pending",
        Sent => "sent",
        Failed => "failed",
        Skipped => "skipped",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = digest_runs)]
pub struct DigestRun {
    pub id: RunId,
    pub run_date: String,
    pub since: NaiveDateTime,
    pub cutoff: NaiveDateTime,
    pub article_count: i32,
    pub created_at: NaiveDateTime,
    pub prepared_at: Option<NaiveDateTime>,
    /// Set once nothing is left to send; the counts are final from then on.
    pub settled_at: Option<NaiveDateTime>,
    pub sent_count: i64,
    pub failed_count: i64,
    pub skipped_count: i64,
    /// When a delivery's result was last written: the time a run with
    /// nothing left to send finished.
    pub last_result_at: Option<NaiveDateTime>,
}

impl DigestRun {
    pub fn date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.run_date, "%Y-%m-%d").ok()
    }

    /// The final counts of a settled run, kept on the run itself.
    pub fn settled_counts(&self) -> Option<Counts> {
        self.settled_at.map(|_| Counts {
            pending: 0,
            sent: self.sent_count,
            failed: self.failed_count,
            skipped: self.skipped_count,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = digest_runs, treat_none_as_default_value = false)]
pub struct NewRun<'a> {
    pub id: RunId,
    pub run_date: &'a str,
    pub since: NaiveDateTime,
    pub cutoff: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = digest_deliveries, treat_none_as_default_value = false)]
pub struct NewDelivery {
    pub run_id: RunId,
    pub subscriber_id: SubscriberId,
    pub variant: Sections,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub run_id: RunId,
    pub subscriber_id: SubscriberId,
    pub variant: Sections,
    pub attempts: i32,
    pub email: EmailAddress,
    pub status: SubscriberStatus,
    pub name: Option<String>,
}

/// How many deliveries of a run are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl Counts {
    pub fn total(&self) -> i64 {
        self.pending + self.sent + self.failed + self.skipped
    }

    pub fn add(&mut self, status: DeliveryStatus, n: i64) {
        match status {
            DeliveryStatus::Pending => self.pending += n,
            DeliveryStatus::Sent => self.sent += n,
            DeliveryStatus::Failed => self.failed += n,
            DeliveryStatus::Skipped => self.skipped += n,
        }
    }
}

/// A run's state, derived from its rows, never stored: a run cannot be left
/// "running" with nothing left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Deliveries are still being created.
    Preparing,
    /// Some deliveries wait to be sent (or to be retried).
    Sending,
    /// Every delivery is sent, failed or skipped.
    Completed,
    /// Nothing to send: no articles, or no subscriber wanted any of them.
    Skipped,
}

impl RunState {
    pub fn of(run: &DigestRun, counts: &Counts) -> Self {
        if run.prepared_at.is_none() {
            Self::Preparing
        } else if counts.total() == 0 {
            Self::Skipped
        } else if counts.pending > 0 {
            Self::Sending
        } else {
            Self::Completed
        }
    }
}
