//! Reading a list's CSV file: it is checked whole before anything is
//! written, its columns are found by their header (with the names other
//! systems' exports use), and its values are parsed into our types.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use sha2::{Digest, Sha256};

/// Larger files are refused before a row is read: a list of millions of
/// addresses is a few hundred megabytes.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a file is refused whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is {size} bytes; at most {MAX_FILE_BYTES} are taken")]
    TooLarge { size: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("the file is not UTF-8 text (row {row}); save it as CSV UTF-8 and try again")]
    Encoding { row: u64 },
    #[error("the file has no `{column}` column (its columns: {found})")]
    MissingColumn { column: &'static str, found: String },
    #[error("the file is not valid CSV at row {row}: {reason}")]
    Malformed { row: u64, reason: String },
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}

/// What a whole reading of the file found: its fingerprint (to find an
/// interrupted import of it again), its header and how many rows follow.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub sha256: String,
    pub header: csv::StringRecord,
    pub rows: u64,
}

/// Reads the whole file once, so that a bad byte or a broken line near its
/// end refuses it before the first row is written.
pub fn scan(path: &Path) -> Result<Scanned, FileError> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { size });
    }
    let mut hasher = Hashing {
        inner: BufReader::new(File::open(path)?),
        hash: Sha256::new(),
    };
    let (header, rows) = {
        let mut reader = reader(&mut hasher);
        let header = reader.headers().map_err(|e| refusal(e, 1))?.clone();
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(FileError::Empty);
        }
        let mut record = csv::StringRecord::new();
        let mut rows = 0u64;
        while reader
            .read_record(&mut record)
            .map_err(|e| refusal(e, rows + 2))?
        {
            rows += 1;
        }
        (header, rows)
    };
    // The reader may stop before the last bytes (a final line ending).
    std::io::copy(&mut hasher, &mut std::io::sink())?;
    Ok(Scanned {
        sha256: hex::encode(hasher.hash.finalize()),
        header,
        rows,
    })
}

/// A CSV reader over the file's rows, after its header.
pub fn open(path: &Path) -> Result<csv::Reader<BufReader<File>>, FileError> {
    let mut reader = reader(BufReader::new(File::open(path)?));
    reader.headers().map_err(|e| refusal(e, 1))?;
    Ok(reader)
}

fn reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input)
}

/// Turns a reading error into the reason the file is refused. Rows are
/// numbered as a spreadsheet shows them: the header is row 1.
pub fn refusal(error: csv::Error, row: u64) -> FileError {
    match error.into_kind() {
        csv::ErrorKind::Utf8 { .. } => FileError::Encoding { row },
        csv::ErrorKind::Io(e) => FileError::Io(e),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => FileError::Malformed {
            row,
            reason: format!("{len} fields where the header has {expected_len}"),
        },
        other => FileError::Malformed {
            row,
            reason: format!("{other:?}"),
        },
    }
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A header as compared: lower case, spaces and dashes as underscores, a
/// byte-order mark dropped ("Email Address" is `email_address`).
pub fn normalise(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// Where each known column is, by the first header naming it, and the
/// headers nothing reads.
#[derive(Debug, Clone)]
pub struct Columns<C> {
    found: Vec<(C, usize)>,
    pub unknown: Vec<String>,
}

impl<C: Copy + PartialEq> Columns<C> {
    pub fn map(header: &csv::StringRecord, known: impl Fn(&str) -> Option<C>) -> Self {
        let mut found: Vec<(C, usize)> = Vec::new();
        let mut unknown = Vec::new();
        for (index, name) in header.iter().enumerate() {
            match known(&normalise(name)) {
                Some(column) if !found.iter().any(|(c, _)| *c == column) => {
                    found.push((column, index));
                }
                _ => unknown.push(name.trim_start_matches('\u{feff}').trim().to_owned()),
            }
        }
        Self { found, unknown }
    }

    pub fn has(&self, column: C) -> bool {
        self.found.iter().any(|(c, _)| *c == column)
    }

    /// The trimmed value of `column` in `record`, when it is there and not
    /// blank.
    pub fn get<'r>(&self, record: &'r csv::StringRecord, column: C) -> Option<&'r str> {
        let index = self.found.iter().find(|(c, _)| *c == column)?.1;
        record.get(index).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// A header's column names as a person reads them.
pub fn header_names(header: &csv::StringRecord) -> String {
    header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A time as other systems write it: RFC 3339 (`2024-03-01T09:30:00Z`),
/// a date and time in UTC (`2024-03-01 09:30:00`, Mailchimp), or a date.
/// Kept to the microsecond, as both databases store it.
pub fn parse_time(input: &str) -> Option<NaiveDateTime> {
    let time = DateTime::parse_from_rfc3339(input)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(input, f).ok())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(input, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    time.with_nanosecond(time.nanosecond() / 1_000 * 1_000)
}

/// Yes or no as exports write it.
pub fn parse_flag(input: &str) -> Option<bool> {
    match input.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::csv::format_time;

    #[test]
    fn times_in_the_formats_exports_use() {
        let expected = NaiveDate::from_ymd_opt(2024, 3, 1)
            .and_then(|d| d.and_hms_micro_opt(9, 30, 0, 123_456))
            .expect("a time");
        assert_eq!(parse_time("2024-03-01T09:30:00.123456789Z"), Some(expected));
        assert_eq!(
            parse_time("2024-03-01T10:30:00.123456+01:00"),
            Some(expected)
        );
        assert_eq!(parse_time("2024-03-01 09:30:00.123456"), Some(expected));
        assert_eq!(
            parse_time(&format_time(expected)).expect("round trip"),
            expected
        );
        assert!(parse_time("2024-03-01").is_some());
        assert!(parse_time("01/03/2024").is_none());
    }

    #[test]
    fn headers_are_compared_loosely() {
        assert_eq!(normalise("\u{feff} Email Address "), "email_address");
        assert_eq!(normalise("CONFIRM-TIME"), "confirm_time");
    }
}
