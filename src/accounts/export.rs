//! The reader accounts as CSV, read a page at a time so that memory stays
//! flat: what a publisher takes along when moving to another system.
//! Password hashes stay behind.

use std::io::Write;

use super::model::AccountId;
use super::service::AccountService;
use super::store;
use crate::platform::csv::{format_time, ExportError};
use crate::platform::db::{self, StorageError};

const PAGE_ROWS: i64 = 1_000;

pub const READER_COLUMNS: [&str; 7] = [
    "email",
    "name",
    "company",
    "job_title",
    "role",
    "email_verified_at",
    "created_at",
];

impl AccountService {
    /// Writes every account to `out`; returns how many.
    pub async fn export_readers<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<u64, ExportError> {
        db::run(&self.pool, move |conn| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(READER_COLUMNS)?;
            let mut after: Option<AccountId> = None;
            let mut written = 0u64;
            loop {
                let page =
                    store::accounts_after(conn, after, PAGE_ROWS).map_err(StorageError::from)?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for a in &page {
                    writer.write_record([
                        a.email.to_string(),
                        a.name.clone(),
                        a.company.clone().unwrap_or_default(),
                        a.job_title.clone().unwrap_or_default(),
                        a.role.to_string(),
                        a.email_verified_at.map(format_time).unwrap_or_default(),
                        format_time(a.created_at),
                    ])?;
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
