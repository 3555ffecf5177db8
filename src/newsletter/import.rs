//! Bringing a list over from another system: its subscribers, with the
//! consent they gave there, and its suppression list. A file is checked
//! whole before anything is written; its rows are then written in batches,
//! each in a transaction with the import's progress, so an import stopped
//! half-way carries on from its last batch when it is run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::result::Error as DieselError;
use serde::Serialize;
use tokio::sync::watch;

use super::csv_file::{self, Columns, FileError, Scanned};
use super::model::{
    EmailHash, ImportId, ImportKind, ImportRecord, ImportUpdate, ImportedSubscriber, Sections,
    Source, Subscriber, SubscriberId, SubscriberStatus, SuppressionReason,
};
use super::service::{require, section_slugs, NewsletterError, NewsletterService, Requested};
use super::store;
use crate::accounts::Account;
use crate::accounts::Role;
use crate::platform::db::{self, DbConnection, Writes};
use crate::platform::domain::EmailAddress;
use crate::platform::mail::suppression::{Entry, Suppressed, SuppressionList, Whom};

/// Rows written per transaction: small enough to keep a lock short, large
/// enough that committing is not the cost.
const BATCH_ROWS: usize = 500;
/// Row problems kept for the report; the count covers them all.
const MAX_PROBLEMS: usize = 1_000;
const MAX_NAME_CHARS: usize = 200;
const MAX_ORIGIN_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Newsletter(#[from] NewsletterError),
}

impl From<DieselError> for ImportError {
    fn from(error: DieselError) -> Self {
        Self::Newsletter(error.into())
    }
}

impl From<crate::platform::db::StorageError> for ImportError {
    fn from(error: crate::platform::db::StorageError) -> Self {
        Self::Newsletter(error.into())
    }
}

/// A field of a subscriber already on the list that an import may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateField {
    Sections,
    Name,
}

#[derive(Debug, Clone)]
pub struct SubscriberImport {
    /// Report what would happen, write nothing.
    pub dry_run: bool,
    /// Send a confirmation link to each new subscriber without a recorded
    /// confirmation; otherwise they stay pending, unmailed.
    pub send_confirmations: bool,
    /// Confirmation links spread over time at this rate, so that a large
    /// list does not go out in one burst.
    pub confirmations_per_hour: u32,
    /// What changes on subscribers already on the list; nothing else does.
    pub update: Vec<UpdateField>,
}

#[derive(Debug, Clone)]
pub struct SuppressionImport {
    pub dry_run: bool,
    /// For rows without a `reason`.
    pub reason: SuppressionReason,
}

/// How an import is followed and stopped.
pub struct ImportWatch {
    /// Called after every batch.
    pub progress: Box<dyn Fn(&ImportProgress) + Send + Sync>,
    /// When it turns true, the import stops after the batch in hand.
    pub stop: Option<watch::Receiver<bool>>,
}

impl ImportWatch {
    pub fn silent() -> Self {
        Self {
            progress: Box::new(|_| {}),
            stop: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub invalid: u64,
    pub suppressed: u64,
}

impl ImportCounts {
    fn add(&mut self, other: &Self) {
        self.new += other.new;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.invalid += other.invalid;
        self.suppressed += other.suppressed;
    }

    fn of(record: &ImportRecord) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            new: count(record.new_count),
            updated: count(record.updated_count),
            unchanged: count(record.unchanged_count),
            invalid: count(record.invalid_count),
            suppressed: count(record.suppressed_count),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportProgress {
    /// `None` for a dry run.
    pub import_id: Option<ImportId>,
    /// Data rows dealt with, by this run and earlier ones.
    pub done: u64,
    pub total: u64,
    pub counts: ImportCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowProblem {
    /// As a spreadsheet numbers it: the header is row 1.
    pub row: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// `None` for a dry run, which records nothing.
    pub import_id: Option<ImportId>,
    pub dry_run: bool,
    /// Data rows in the file.
    pub rows: u64,
    /// The last row an earlier, interrupted run had committed.
    pub resumed_after: Option<u64>,
    /// Over the whole import, earlier runs included.
    pub counts: ImportCounts,
    /// This run's invalid rows, the first `MAX_PROBLEMS` of them.
    pub problems: Vec<RowProblem>,
    pub unknown_columns: Vec<String>,
    /// Stopped before the end; running it again carries on.
    pub interrupted: bool,
    /// Confirmation links queued by this run.
    pub confirmations: u64,
}

enum Outcome {
    New,
    Updated,
    Unchanged,
    Suppressed,
    Invalid(String),
}

/// What one kind of import does with a row.
trait Rows {
    /// Notes a row an earlier run committed, so a duplicate of it later in
    /// the file is still seen.
    fn committed(&mut self, record: &csv::StringRecord, row: u64);
    fn apply(
        &mut self,
        conn: &mut DbConnection,
        record: &csv::StringRecord,
        row: u64,
    ) -> Result<Outcome, NewsletterError>;
    fn confirmations(&self) -> u64 {
        0
    }
}

impl NewsletterService {
    /// Whether `actor` may bring lists in and take them out: admins only.
    pub fn authorize_transfer(&self, actor: &Account) -> Result<(), NewsletterError> {
        require(actor, Role::Admin)
    }

    /// An import and how far it got: for admins.
    pub async fn import_status(
        &self,
        actor: &Account,
        id: ImportId,
    ) -> Result<Option<ImportRecord>, NewsletterError> {
        require(actor, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            store::find_import(conn, id).map_err(NewsletterError::from)
        })
        .await
    }

    /// Imports subscribers from a CSV file.
    #[tracing::instrument(skip_all, fields(dry_run = options.dry_run))]
    pub async fn import_subscribers(
        &self,
        path: PathBuf,
        options: SubscriberImport,
        watch: ImportWatch,
    ) -> Result<ImportReport, ImportError> {
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            let scanned = csv_file::scan(&path)?;
            let columns = Columns::map(&scanned.header, subscriber_column);
            if !columns.has(SubscriberColumn::Email) {
                return Err(missing_column("email", &scanned).into());
            }
            let unknown = columns.unknown.clone();
            let mut rows = SubscriberRows {
                available: section_slugs(conn)?,
                now: this.clock.now(),
                service: &this,
                columns,
                options: &options,
                seen: HashMap::new(),
                confirmations: 0,
            };
            let run = Run {
                path: &path,
                scanned: &scanned,
                kind: ImportKind::Subscribers,
                dry_run: options.dry_run,
                now: this.clock.now().naive_utc(),
            };
            run.drive(conn, &mut rows, &watch, unknown)
        })
        .await
    }

    /// Imports a suppression list from a CSV file: addresses, or the hashes
    /// a masthead export writes, each with its reason.
    #[tracing::instrument(skip_all, fields(dry_run = options.dry_run))]
    pub async fn import_suppressions(
        &self,
        path: PathBuf,
        options: SuppressionImport,
        watch: ImportWatch,
    ) -> Result<ImportReport, ImportError> {
        let now = self.clock.now();
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            let scanned = csv_file::scan(&path)?;
            let columns = Columns::map(&scanned.header, suppression_column);
            if !columns.has(SuppressionColumn::Email) && !columns.has(SuppressionColumn::EmailHash)
            {
                return Err(missing_column("email (or email_hash)", &scanned).into());
            }
            let unknown = columns.unknown.clone();
            let mut rows = SuppressionRows {
                suppressions,
                columns,
                options: &options,
                now: now.naive_utc(),
                seen: HashMap::new(),
            };
            let run = Run {
                path: &path,
                scanned: &scanned,
                kind: ImportKind::Suppressions,
                dry_run: options.dry_run,
                now: now.naive_utc(),
            };
            run.drive(conn, &mut rows, &watch, unknown)
        })
        .await
    }
}

fn missing_column(column: &'static str, scanned: &Scanned) -> FileError {
    FileError::MissingColumn {
        column,
        found: csv_file::header_names(&scanned.header),
    }
}

/// One run of an import over a checked file.
struct Run<'a> {
    path: &'a Path,
    scanned: &'a Scanned,
    kind: ImportKind,
    dry_run: bool,
    now: NaiveDateTime,
}

/// How a batch's transaction ends other than by committing.
enum BatchEnd {
    /// A dry run: what the batch did is counted, and undone.
    DryRun(Tally),
    Failed(NewsletterError),
}

impl From<DieselError> for BatchEnd {
    fn from(error: DieselError) -> Self {
        Self::Failed(error.into())
    }
}

#[derive(Default)]
struct Tally {
    counts: ImportCounts,
    problems: Vec<RowProblem>,
    last_row: u64,
}

/// Adds a batch's tally to the report, keeping at most `MAX_PROBLEMS`
/// problems; returns the row after the batch.
fn add_tally(report: &mut ImportReport, tally: Tally) -> u64 {
    report.counts.add(&tally.counts);
    let room = MAX_PROBLEMS.saturating_sub(report.problems.len());
    report
        .problems
        .extend(tally.problems.into_iter().take(room));
    tally.last_row
}

impl Run<'_> {
    fn drive(
        &self,
        conn: &mut DbConnection,
        rows: &mut dyn Rows,
        watch: &ImportWatch,
        unknown_columns: Vec<String>,
    ) -> Result<ImportReport, ImportError> {
        let mut record = self.record(conn)?;
        let committed = record
            .as_ref()
            .map_or(1, |r| u64::try_from(r.last_row).unwrap_or(1));
        let mut report = self.opening_report(record.as_ref(), committed, unknown_columns);
        self.tell_progress(watch, &report, committed);
        let mut reader = csv_file::open(self.path)?;
        let mut batch: Vec<(u64, csv::StringRecord)> = Vec::with_capacity(BATCH_ROWS);
        let mut row = 1u64;
        let mut next = csv::StringRecord::new();
        loop {
            let more = reader
                .read_record(&mut next)
                .map_err(|e| csv_file::refusal(e, row + 1))?;
            if more {
                row += 1;
                if row <= committed {
                    rows.committed(&next, row);
                } else {
                    batch.push((row, next.clone()));
                }
            }
            if batch.len() == BATCH_ROWS || (!more && !batch.is_empty()) {
                let tally = self.batch(conn, rows, &batch, record.as_mut())?;
                batch.clear();
                let last_row = add_tally(&mut report, tally);
                self.tell_progress(watch, &report, last_row);
                if more && watch.stop.as_ref().is_some_and(|s| *s.borrow()) {
                    report.interrupted = true;
                    break;
                }
            }
            if !more {
                break;
            }
        }
        report.confirmations = rows.confirmations();
        self.finish(conn, record.as_mut(), &report)?;
        Ok(report)
    }

    /// The report before this run reads a row: what earlier runs of the
    /// import counted, if any.
    fn opening_report(
        &self,
        record: Option<&ImportRecord>,
        committed: u64,
        unknown_columns: Vec<String>,
    ) -> ImportReport {
        ImportReport {
            import_id: record.map(|r| r.id),
            dry_run: self.dry_run,
            rows: self.scanned.rows,
            resumed_after: (committed > 1).then_some(committed),
            counts: record.map(ImportCounts::of).unwrap_or_default(),
            problems: Vec::new(),
            unknown_columns,
            interrupted: false,
            confirmations: 0,
        }
    }

    /// Reports progress up to, not including, `next_row`.
    fn tell_progress(&self, watch: &ImportWatch, report: &ImportReport, next_row: u64) {
        (watch.progress)(&ImportProgress {
            import_id: report.import_id,
            done: next_row - 1,
            total: self.scanned.rows,
            counts: report.counts,
        });
    }

    /// Marks the import finished unless the run was interrupted.
    fn finish(
        &self,
        conn: &mut DbConnection,
        record: Option<&mut ImportRecord>,
        report: &ImportReport,
    ) -> Result<(), ImportError> {
        if let Some(record) = record.filter(|_| !report.interrupted) {
            record.finished_at = Some(self.now);
            store::save_import(conn, record)?;
        }
        tracing::info!(
            kind = %self.kind,
            rows = self.scanned.rows,
            interrupted = report.interrupted,
            counts = ?report.counts,
            "import run ended"
        );
        Ok(())
    }

    /// The import to carry on (an unfinished one of the same file), or a
    /// new one; none for a dry run.
    fn record(&self, conn: &mut DbConnection) -> Result<Option<ImportRecord>, ImportError> {
        if self.dry_run {
            return Ok(None);
        }
        if let Some(record) = store::unfinished_import(conn, self.kind, &self.scanned.sha256)? {
            tracing::info!(import_id = %record.id, last_row = record.last_row, "resuming an import");
            return Ok(Some(record));
        }
        let record = ImportRecord {
            id: ImportId::new(),
            kind: self.kind,
            file_sha256: self.scanned.sha256.clone(),
            total_rows: i64::try_from(self.scanned.rows).unwrap_or(i64::MAX),
            last_row: 1,
            new_count: 0,
            updated_count: 0,
            unchanged_count: 0,
            invalid_count: 0,
            suppressed_count: 0,
            started_at: self.now,
            updated_at: self.now,
            finished_at: None,
        };
        store::insert_import(conn, &record)?;
        Ok(Some(record))
    }

    /// Applies a batch of rows in one transaction, with the import's
    /// progress; a dry run rolls it back.
    fn batch(
        &self,
        conn: &mut DbConnection,
        rows: &mut dyn Rows,
        batch: &[(u64, csv::StringRecord)],
        record: Option<&mut ImportRecord>,
    ) -> Result<Tally, ImportError> {
        let result = db::transaction(conn, |conn| {
            let mut tally = Tally::default();
            for (row, fields) in batch {
                let outcome = rows.apply(conn, fields, *row).map_err(BatchEnd::Failed)?;
                tally.last_row = *row;
                match outcome {
                    Outcome::New => tally.counts.new += 1,
                    Outcome::Updated => tally.counts.updated += 1,
                    Outcome::Unchanged => tally.counts.unchanged += 1,
                    Outcome::Suppressed => tally.counts.suppressed += 1,
                    Outcome::Invalid(reason) => {
                        tally.counts.invalid += 1;
                        tally.problems.push(RowProblem { row: *row, reason });
                    }
                }
            }
            let Some(record) = record else {
                return Err(BatchEnd::DryRun(tally));
            };
            let counts = ImportCounts::of(record);
            let total = |before: u64, now: u64| i64::try_from(before + now).unwrap_or(i64::MAX);
            record.last_row = i64::try_from(tally.last_row).unwrap_or(i64::MAX);
            record.new_count = total(counts.new, tally.counts.new);
            record.updated_count = total(counts.updated, tally.counts.updated);
            record.unchanged_count = total(counts.unchanged, tally.counts.unchanged);
            record.invalid_count = total(counts.invalid, tally.counts.invalid);
            record.suppressed_count = total(counts.suppressed, tally.counts.suppressed);
            record.updated_at = self.now;
            store::save_import(conn, record)?;
            Ok(tally)
        });
        match result {
            Ok(tally) | Err(BatchEnd::DryRun(tally)) => Ok(tally),
            Err(BatchEnd::Failed(error)) => Err(error.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubscriberColumn {
    Email,
    Name,
    FirstName,
    LastName,
    Sections,
    Status,
    SubscribedAt,
    ConfirmedAt,
    UnsubscribedAt,
    Source,
    ConsentText,
    /// Ghost: whether the member takes the newsletter.
    SubscribedToEmails,
    /// Substack: mail to the address was turned off.
    EmailDisabled,
}

/// The columns of a subscriber file, by their normalised header: ours,
/// and those of the exports of Mailchimp, listmonk, Ghost and Substack.
fn subscriber_column(header: &str) -> Option<SubscriberColumn> {
    use SubscriberColumn as C;
    Some(match header {
        "email" | "email_address" | "e_mail" => C::Email,
        "name" | "full_name" => C::Name,
        "first_name" | "fname" => C::FirstName,
        "last_name" | "lname" => C::LastName,
        "sections" => C::Sections,
        "status" => C::Status,
        "subscribed_at" | "optin_time" | "created_at" => C::SubscribedAt,
        "confirmed_at" | "confirm_time" => C::ConfirmedAt,
        "unsubscribed_at" | "unsub_time" => C::UnsubscribedAt,
        "source" => C::Source,
        "consent_text" => C::ConsentText,
        "subscribed_to_emails" => C::SubscribedToEmails,
        "email_disabled" => C::EmailDisabled,
        _ => return None,
    })
}

/// A subscriber row, parsed.
struct SubscriberRow {
    email: EmailAddress,
    name: Option<String>,
    /// `None` when the row names none.
    sections: Option<Sections>,
    status: SubscriberStatus,
    subscribed_at: Option<NaiveDateTime>,
    confirmed_at: Option<NaiveDateTime>,
    unsubscribed_at: Option<NaiveDateTime>,
    source: Option<String>,
    consent_text: Option<String>,
}

fn parse_subscriber(
    columns: &Columns<SubscriberColumn>,
    record: &csv::StringRecord,
    available: &[String],
) -> Result<SubscriberRow, String> {
    use SubscriberColumn as C;
    let value = |c| columns.get(record, c);
    let email = parse_email(value(C::Email).ok_or("no email address")?)?;
    let time = |c, label: &str| -> Result<Option<NaiveDateTime>, String> {
        value(c)
            .map(|v| {
                csv_file::parse_time(v).ok_or_else(|| {
                    format!("{label} `{v}` is not a date (use 2024-03-01T09:30:00Z)")
                })
            })
            .transpose()
    };
    let subscribed_at = time(C::SubscribedAt, "subscribed_at")?;
    let confirmed_at = time(C::ConfirmedAt, "confirmed_at")?;
    let unsubscribed_at = time(C::UnsubscribedAt, "unsubscribed_at")?;
    let stated = match value(C::Status) {
        Some(status) => Some(parse_status(status)?),
        None => flag_status(value(C::SubscribedToEmails), value(C::EmailDisabled))?,
    };
    // Consent is what the file records, never more: a row is confirmed only
    // when it says so or carries the time of its confirmation.
    let status = match stated {
        Some(status) => status,
        None if unsubscribed_at.is_some() => SubscriberStatus::Unsubscribed,
        None if confirmed_at.is_some() => SubscriberStatus::Confirmed,
        None => SubscriberStatus::Pending,
    };
    let name = parse_name(value(C::Name), value(C::FirstName), value(C::LastName))?;
    let sections = value(C::Sections)
        .map(|raw| parse_sections(raw, available))
        .transpose()?;
    let source = value(C::Source).map(|s| s.chars().take(MAX_ORIGIN_CHARS).collect());
    Ok(SubscriberRow {
        email,
        name,
        sections,
        status,
        subscribed_at,
        confirmed_at,
        unsubscribed_at,
        source,
        consent_text: value(C::ConsentText).map(str::to_owned),
    })
}

fn parse_email(raw: &str) -> Result<EmailAddress, String> {
    EmailAddress::parse(raw).map_err(|e| {
        format!(
            "`{}` is not an email address: {}",
            raw.chars().take(60).collect::<String>(),
            e.message
        )
    })
}

/// The name column, or else the first and last names joined.
fn parse_name(
    name: Option<&str>,
    first: Option<&str>,
    last: Option<&str>,
) -> Result<Option<String>, String> {
    let name = match name {
        Some(name) => Some(name.to_owned()),
        None => {
            let parts: Vec<&str> = [first, last].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
    };
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(name)
}

/// Sections listed with any of `,`, `;` or `|` between them.
fn parse_sections(raw: &str, available: &[String]) -> Result<Sections, String> {
    let chosen: Vec<String> = raw
        .split([',', ';', '|'])
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    Sections::parse(Some(&chosen), available).map_err(|e| e.message)
}

fn parse_status(input: &str) -> Result<SubscriberStatus, String> {
    match input.to_lowercase().as_str() {
        "confirmed" | "subscribed" | "active" => Ok(SubscriberStatus::Confirmed),
        "pending" | "unconfirmed" => Ok(SubscriberStatus::Pending),
        "unsubscribed" | "cleaned" | "blocklisted" | "inactive" => {
            Ok(SubscriberStatus::Unsubscribed)
        }
        _ => Err(format!(
            "status `{}` is not one of confirmed, pending, unsubscribed",
            input.chars().take(40).collect::<String>()
        )),
    }
}

/// The status the yes/no columns of Ghost and Substack give, if any. A
/// Ghost member has confirmed the address by its sign-in link; Substack
/// records no confirmation, so its rows stay pending unless disabled.
fn flag_status(
    subscribed_to_emails: Option<&str>,
    email_disabled: Option<&str>,
) -> Result<Option<SubscriberStatus>, String> {
    let flag = |v: &str, column: &str| {
        csv_file::parse_flag(v).ok_or_else(|| format!("{column} `{v}` is neither true nor false"))
    };
    if let Some(v) = subscribed_to_emails {
        return Ok(Some(if flag(v, "subscribed_to_emails")? {
            SubscriberStatus::Confirmed
        } else {
            SubscriberStatus::Unsubscribed
        }));
    }
    if let Some(v) = email_disabled {
        return Ok(flag(v, "email_disabled")?.then_some(SubscriberStatus::Unsubscribed));
    }
    Ok(None)
}

/// Our own export writes `web` or `api`; anything else is the other
/// system's word for where the subscriber came from.
fn source_and_origin(source: Option<&str>) -> (Source, Option<String>) {
    match source {
        Some("web") => (Source::Web, None),
        Some("api") => (Source::Api, None),
        Some(other) => (Source::Api, Some(other.to_owned())),
        None => (Source::Api, Some("import".to_owned())),
    }
}

struct SubscriberRows<'a> {
    service: &'a NewsletterService,
    columns: Columns<SubscriberColumn>,
    available: Vec<String>,
    options: &'a SubscriberImport,
    now: DateTime<Utc>,
    /// The first row of each address, for duplicates further down.
    seen: HashMap<EmailAddress, u64>,
    confirmations: u64,
}

impl Rows for SubscriberRows<'_> {
    fn committed(&mut self, record: &csv::StringRecord, row: u64) {
        if let Some(Ok(email)) = self
            .columns
            .get(record, SubscriberColumn::Email)
            .map(EmailAddress::parse)
        {
            self.seen.entry(email).or_insert(row);
        }
    }

    fn apply(
        &mut self,
        conn: &mut DbConnection,
        record: &csv::StringRecord,
        row: u64,
    ) -> Result<Outcome, NewsletterError> {
        let parsed = match parse_subscriber(&self.columns, record, &self.available) {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Outcome::Invalid(reason)),
        };
        if let Some(first) = self.seen.get(&parsed.email) {
            return Ok(Outcome::Invalid(format!("the same address as row {first}")));
        }
        self.seen.insert(parsed.email.clone(), row);
        // An import never subscribes an address that asked not to be
        // mailed, nor one that bounced or complained.
        if parsed.status != SubscriberStatus::Unsubscribed
            && self.service.suppressions.of(conn, &parsed.email)?.is_some()
        {
            return Ok(Outcome::Suppressed);
        }
        match store::find_by_email(conn, &parsed.email)? {
            Some(existing) => self.update(conn, &existing, parsed),
            None => self.insert(conn, parsed),
        }
    }

    fn confirmations(&self) -> u64 {
        self.confirmations
    }
}

impl SubscriberRows<'_> {
    fn update(
        &self,
        conn: &mut DbConnection,
        existing: &Subscriber,
        row: SubscriberRow,
    ) -> Result<Outcome, NewsletterError> {
        let mut change = ImportUpdate::default();
        if self.options.update.contains(&UpdateField::Sections) {
            change.sections = row.sections.filter(|s| *s != existing.sections);
        }
        if self.options.update.contains(&UpdateField::Name) {
            change.name = row
                .name
                .filter(|n| existing.name.as_ref() != Some(n))
                .map(Some);
        }
        if change.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        change.updated_at = Some(self.now.naive_utc());
        store::update_imported(conn, existing.id, &change)?;
        Ok(Outcome::Updated)
    }

    fn insert(
        &mut self,
        conn: &mut DbConnection,
        row: SubscriberRow,
    ) -> Result<Outcome, NewsletterError> {
        let at = self.now.naive_utc();
        let id = SubscriberId::new();
        let sections = row
            .sections
            .unwrap_or_else(|| Sections::all(&self.available));
        let (source, origin) = source_and_origin(row.source.as_deref());
        let consent_text = row.consent_text.unwrap_or_else(|| {
            format!(
                "imported from {}",
                origin.as_deref().unwrap_or("another list")
            )
        });
        let unsubscribed = row.status == SubscriberStatus::Unsubscribed;
        let account_id = crate::accounts::tx::find_by_email(conn, &row.email)?.map(|a| a.id);
        store::insert_imported(
            conn,
            &ImportedSubscriber {
                id,
                email: &row.email,
                account_id,
                name: row.name.as_deref(),
                status: row.status,
                sections: &sections,
                source,
                origin: origin.as_deref(),
                consent_text: &consent_text,
                created_at: row.subscribed_at.unwrap_or(at),
                updated_at: at,
                confirmed_at: row
                    .confirmed_at
                    .filter(|_| row.status != SubscriberStatus::Pending),
                unsubscribed_at: unsubscribed.then(|| row.unsubscribed_at.unwrap_or(at)),
            },
        )?;
        if unsubscribed {
            let whom = Whom::Address(&row.email);
            let at = row.unsubscribed_at.unwrap_or(at);
            self.service
                .suppressions
                .add(conn, whom, Entry::Unsubscribed, at)?;
        }
        if row.status == SubscriberStatus::Pending && self.options.send_confirmations {
            self.queue_confirmation(conn, id, &row.email, &sections, at)?;
        }
        Ok(Outcome::New)
    }

    /// Queues a confirmation link for an imported subscriber, paced at the
    /// configured rate after the links this run queued before it.
    fn queue_confirmation(
        &mut self,
        conn: &mut DbConnection,
        id: SubscriberId,
        email: &EmailAddress,
        sections: &Sections,
        at: NaiveDateTime,
    ) -> Result<(), NewsletterError> {
        let rate = i64::from(self.options.confirmations_per_hour.max(1));
        let count = i64::try_from(self.confirmations).unwrap_or(i64::MAX);
        let deliver_at = at + Duration::milliseconds(count.saturating_mul(3_600_000) / rate);
        let mut writes = Writes::default();
        self.service.send_confirmation(
            &mut writes,
            id,
            email,
            sections,
            at,
            Requested::ByImport { deliver_at },
        )?;
        writes.run(conn)?;
        self.confirmations += 1;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuppressionColumn {
    Email,
    EmailHash,
    Reason,
    Detail,
    SuppressedAt,
}

fn suppression_column(header: &str) -> Option<SuppressionColumn> {
    use SuppressionColumn as C;
    Some(match header {
        "email" | "email_address" | "e_mail" => C::Email,
        "email_hash" | "hash" => C::EmailHash,
        "reason" => C::Reason,
        "detail" | "details" | "note" => C::Detail,
        "suppressed_at" | "created_at" | "clean_time" | "unsub_time" => C::SuppressedAt,
        _ => return None,
    })
}

fn parse_reason(input: &str) -> Result<SuppressionReason, String> {
    match input.to_lowercase().as_str() {
        "unsubscribed" | "unsubscribe" => Ok(SuppressionReason::Unsubscribed),
        "hard_bounce" | "bounce" | "bounced" | "cleaned" => Ok(SuppressionReason::HardBounce),
        "complaint" | "spam" | "abuse" | "blocklisted" => Ok(SuppressionReason::Complaint),
        "erased" => Ok(SuppressionReason::Erased),
        "soft_bounces" => Ok(SuppressionReason::SoftBounces),
        _ => Err(format!(
            "reason `{}` is not one of unsubscribed, hard_bounce, complaint, erased, soft_bounces",
            input.chars().take(40).collect::<String>()
        )),
    }
}

struct SuppressionRows<'a> {
    suppressions: SuppressionList,
    columns: Columns<SuppressionColumn>,
    options: &'a SuppressionImport,
    now: NaiveDateTime,
    seen: HashMap<EmailHash, u64>,
}

impl SuppressionRows<'_> {
    fn address(
        &self,
        record: &csv::StringRecord,
    ) -> Result<(EmailHash, Option<EmailAddress>), String> {
        if let Some(raw) = self.columns.get(record, SuppressionColumn::Email) {
            let email = EmailAddress::parse(raw).map_err(|e| {
                format!(
                    "`{}` is not an email address: {}",
                    raw.chars().take(60).collect::<String>(),
                    e.message
                )
            })?;
            return Ok((self.suppressions.hash(&email), Some(email)));
        }
        let raw = self
            .columns
            .get(record, SuppressionColumn::EmailHash)
            .ok_or("neither an address nor a hash")?;
        let hash = EmailHash::parse(raw)
            .ok_or_else(|| "the hash is not 64 hexadecimal digits".to_owned())?;
        Ok((hash, None))
    }
}

impl Rows for SuppressionRows<'_> {
    fn committed(&mut self, record: &csv::StringRecord, row: u64) {
        if let Ok((hash, _)) = self.address(record) {
            self.seen.entry(hash).or_insert(row);
        }
    }

    fn apply(
        &mut self,
        conn: &mut DbConnection,
        record: &csv::StringRecord,
        row: u64,
    ) -> Result<Outcome, NewsletterError> {
        let parsed = self.address(record).and_then(|(hash, email)| {
            let reason = match self.columns.get(record, SuppressionColumn::Reason) {
                Some(reason) => parse_reason(reason)?,
                None => self.options.reason,
            };
            let at = match self.columns.get(record, SuppressionColumn::SuppressedAt) {
                Some(v) => csv_file::parse_time(v)
                    .ok_or_else(|| format!("suppressed_at `{v}` is not a date"))?,
                None => self.now,
            };
            Ok((hash, email, reason, at))
        });
        let (hash, email, reason, at) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Outcome::Invalid(reason)),
        };
        if let Some(first) = self.seen.get(&hash) {
            return Ok(Outcome::Invalid(format!("the same address as row {first}")));
        }
        self.seen.insert(hash.clone(), row);
        let detail = self.columns.get(record, SuppressionColumn::Detail);
        let whom = Whom::Hash(&hash, email.as_ref());
        let entry = Entry::Imported { reason, detail };
        let done = self.suppressions.add(conn, whom, entry, at)?;
        // A complaint also ends the subscription, as a reported one does.
        if let Some(subscriber) = email
            .as_ref()
            .filter(|_| reason == SuppressionReason::Complaint)
            .map(|e| store::find_by_email(conn, e))
            .transpose()?
            .flatten()
        {
            store::unsubscribe(conn, subscriber.id, self.now)?;
        }
        Ok(match done {
            Suppressed::Added => Outcome::New,
            Suppressed::Strengthened => Outcome::Updated,
            // An imported entry is never a soft bounce still counting.
            Suppressed::Unchanged | Suppressed::Noted => Outcome::Unchanged,
        })
    }
}
