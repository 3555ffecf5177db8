//! Taking the list out: subscribers and suppressions as CSV with the
//! columns the import reads, so that importing an export gives the same
//! list. The database is read a page at a time and each page written out
//! before the next is read, so memory stays flat whatever the list's size.

use std::io::Write;

use super::model::{EmailHash, Subscriber, SubscriberId, Suppression};
use super::service::NewsletterService;
use super::store;
use crate::platform::csv::format_time;
pub use crate::platform::csv::ExportError;
use crate::platform::db;

const PAGE_ROWS: i64 = 1_000;

pub const SUBSCRIBER_COLUMNS: [&str; 9] = [
    "email",
    "name",
    "sections",
    "status",
    "subscribed_at",
    "confirmed_at",
    "unsubscribed_at",
    "source",
    "consent_text",
];

pub const SUPPRESSION_COLUMNS: [&str; 5] =
    ["email", "email_hash", "reason", "detail", "suppressed_at"];

impl NewsletterService {
    /// Writes every subscriber to `out`; returns how many.
    pub async fn export_subscribers<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<u64, ExportError> {
        db::run(&self.pool, move |conn| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(SUBSCRIBER_COLUMNS)?;
            let mut after: Option<SubscriberId> = None;
            let mut written = 0u64;
            loop {
                let page = store::subscribers_after(conn, after, PAGE_ROWS)?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for subscriber in &page {
                    writer.write_record(subscriber_fields(subscriber))?;
                    written += 1;
                }
                writer.flush()?;
            }
            writer.flush()?;
            Ok(written)
        })
        .await
    }

    /// Writes the suppression list to `out`; returns how many rows.
    pub async fn export_suppressions<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<u64, ExportError> {
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(SUPPRESSION_COLUMNS)?;
            let mut after: Option<EmailHash> = None;
            let mut written = 0u64;
            loop {
                let page = suppressions.after(conn, after.as_ref(), PAGE_ROWS)?;
                let Some(last) = page.last() else { break };
                after = Some(last.email_hash.clone());
                for suppression in &page {
                    writer.write_record(suppression_fields(suppression))?;
                    written += 1;
                }
                writer.flush()?;
            }
            writer.flush()?;
            Ok(written)
        })
        .await
    }
}

fn subscriber_fields(s: &Subscriber) -> [String; 9] {
    let time = |t: Option<chrono::NaiveDateTime>| t.map(format_time).unwrap_or_default();
    [
        s.email.to_string(),
        s.name.clone().unwrap_or_default(),
        s.sections.as_slice().join(","),
        s.status.to_string(),
        format_time(s.created_at),
        time(s.confirmed_at),
        time(s.unsubscribed_at),
        s.origin
            .clone()
            .unwrap_or_else(|| s.source.as_str().to_owned()),
        s.consent_text.clone(),
    ]
}

fn suppression_fields(s: &Suppression) -> [String; 5] {
    [
        s.email
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        s.email_hash.to_string(),
        s.reason.to_string(),
        s.detail.clone().unwrap_or_default(),
        format_time(s.created_at),
    ]
}
