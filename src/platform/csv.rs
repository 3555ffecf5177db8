//! What every CSV export shares: how times are written and how writing one
//! fails.

use chrono::NaiveDateTime;

use crate::platform::db::StorageError;

/// How times are written out: RFC 3339 in UTC, to the microsecond.
pub fn format_time(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("writing the export: {0}")]
    Write(#[from] csv::Error),
}

impl From<diesel::result::Error> for ExportError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(error.into())
    }
}

impl From<std::io::Error> for ExportError {
    fn from(error: std::io::Error) -> Self {
        Self::Write(error.into())
    }
}
