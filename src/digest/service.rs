//! Digest workflows: the schedule, creating and preparing runs, what the
//! admin sees, and the preview. Nothing here knows about HTTP.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::result::Error as DieselError;
use serde::Serialize;

use super::model::{Counts, DeliveryStatus, DigestRun, NewDelivery, NewRun, RunId, RunState};
use super::render::{greeting, Digest, Headline, SectionBlock};
use super::store;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::articles::Article;
use crate::articles::Section;
use crate::newsletter::EmailHash;
use crate::newsletter::Sections;
use crate::newsletter::SubscriberId;
use crate::newsletter::SubscriberStatus;
use crate::platform::audit::model::SubjectKind;
use crate::platform::audit::{self, Subject};
use crate::platform::base::Base;
use crate::platform::clock::SharedClock;
use crate::platform::config::{DigestSettings, QuietDay};
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::FieldError;
use crate::platform::mail::compose::ComposeError;
use crate::platform::mail::suppression::SuppressionList;
use crate::platform::mail::Composer;

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("no run for that date")]
    NotFound,
    #[error("that date has not begun yet")]
    FutureDate,
    #[error("a later run exists; an earlier date would send its articles twice")]
    BeforeLatest,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("rendering the digest")]
    Compose(#[from] ComposeError),
}

impl From<DieselError> for DigestError {
    fn from(error: DieselError) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// A run as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub id: RunId,
    #[schema(format = Date)]
    pub date: String,
    pub state: RunState,
    pub since: DateTime<Utc>,
    pub cutoff: DateTime<Utc>,
    pub articles: i32,
    pub counts: Counts,
    pub created_at: DateTime<Utc>,
    pub prepared_at: Option<DateTime<Utc>>,
    /// When the last delivery got its result; only once nothing is left.
    pub finished_at: Option<DateTime<Utc>>,
    /// How much of the run is done, 0 to 100: the deliveries with a final
    /// result among those created so far. 100 only when nothing is left.
    pub percent_done: u8,
}

impl RunView {
    fn new(run: DigestRun, counts: Counts) -> Self {
        let state = RunState::of(&run, &counts);
        let finished_at = match state {
            RunState::Completed => run.last_result_at.max(run.prepared_at).or(run.settled_at),
            RunState::Skipped => run.prepared_at,
            RunState::Preparing | RunState::Sending => None,
        };
        let total = counts.total();
        let percent_done = match state {
            RunState::Completed | RunState::Skipped => 100,
            // Never 100 while something waits: 19,999 of 20,000 is 99%.
            _ if total == 0 => 0,
            _ => u8::try_from(((total - counts.pending) * 100 / total).min(99)).unwrap_or(99),
        };
        Self {
            id: run.id,
            state,
            finished_at: finished_at.map(|t| t.and_utc()),
            percent_done,
            date: run.run_date,
            since: run.since.and_utc(),
            cutoff: run.cutoff.and_utc(),
            articles: run.article_count,
            counts,
            created_at: run.created_at.and_utc(),
            prepared_at: run.prepared_at.map(|t| t.and_utc()),
        }
    }
}

/// The rendered digest for one variant, for editors.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub date: String,
    pub since: DateTime<Utc>,
    pub cutoff: DateTime<Utc>,
    pub sections: Vec<String>,
    pub articles: usize,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What starting a date did.
#[derive(Debug, Clone)]
pub struct Started {
    pub run: RunView,
    /// The run is new: a worker is to create its deliveries.
    pub created: bool,
    /// Deliveries waiting for a retry that were made due now.
    pub retried: usize,
}

/// Where the variants of a run come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariantSource {
    /// The run's deliveries: exactly what was (or is being) sent.
    Deliveries,
    /// The confirmed subscribers now: what starting the run would create,
    /// before its deliveries exist or after they were deleted.
    Subscribers,
}

/// One section variant of a run: the sections its message shows, how many
/// subscribers get it, and the message as they see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VariantPreview {
    pub sections: Vec<String>,
    pub recipients: i64,
    pub preview: Preview,
}

/// A date's digest for the console: its run (if started) and every variant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    pub date: String,
    pub run: Option<RunView>,
    pub variants_from: VariantSource,
    /// The most recipients first.
    pub variants: Vec<VariantPreview>,
}

/// Today in the digest's time zone, and when its run starts by itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Today {
    pub date: String,
    pub timezone: String,
    /// The local time the run starts at, "07:00".
    pub send_at: String,
    /// Whether the worker starts each day's run at `starts_at`.
    pub scheduled: bool,
    pub starts_at: DateTime<Utc>,
}

/// What a run shows, before the per-variant filtering.
#[derive(Debug, Clone)]
pub struct Content {
    pub date_label: String,
    pub sections: Vec<SectionBlock>,
}

impl Content {
    pub fn new(date: NaiveDate, rows: Vec<(Article, Section)>, composer: &Composer) -> Self {
        let mut sections: Vec<SectionBlock> = Vec::new();
        for (article, section) in rows {
            let headline = Headline {
                link: composer.link(&format!("/articles/{}", article.slug)),
                title: article.title,
                standfirst: article.standfirst,
            };
            match sections.last_mut() {
                Some(block) if block.slug == section.slug.to_string() => {
                    block.articles.push(headline)
                }
                _ => sections.push(SectionBlock {
                    slug: section.slug.to_string(),
                    name: section.name,
                    articles: vec![headline],
                }),
            }
        }
        Self {
            date_label: date.format("%A %-d %B %Y").to_string(),
            sections,
        }
    }

    pub fn article_count(&self) -> usize {
        self.sections.iter().map(|s| s.articles.len()).sum()
    }

    fn slugs(&self) -> HashSet<String> {
        self.sections.iter().map(|s| s.slug.clone()).collect()
    }

    /// The digest a variant gets; its personal values are left empty.
    pub fn digest_for(&self, variant: &Sections) -> Digest {
        let sections: Vec<SectionBlock> = self
            .sections
            .iter()
            .filter(|block| variant.as_slice().contains(&block.slug))
            .cloned()
            .collect();
        Digest {
            date_label: self.date_label.clone(),
            quiet: sections.is_empty(),
            sections,
            greeting: String::new(),
            preferences_link: String::new(),
            unsubscribe_link: String::new(),
        }
    }
}

/// The variant a subscriber who chose `sections` gets: the chosen sections
/// that have articles, or none on a quiet day (a note that nothing was
/// published); `None` when they get no message.
fn variant_for(
    sections: &Sections,
    with_articles: &HashSet<String>,
    quiet: bool,
) -> Option<Sections> {
    if quiet {
        return Some(Sections::none());
    }
    Some(sections.retain(|s| with_articles.contains(s))).filter(|v| !v.is_empty())
}

/// The instant `send_at` falls on `date` in the digest's zone. On the day
/// clocks go forward a time inside the gap does not exist; the digest then
/// goes out when the clocks have moved on. On the day they go back it is
/// the first of the two.
pub fn scheduled_instant(date: NaiveDate, settings: &DigestSettings) -> DateTime<Utc> {
    let zone = settings.timezone.0;
    let local = date.and_time(settings.send_at.0);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => zone
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

pub fn parse_date(input: &str) -> Result<NaiveDate, DigestError> {
    NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| {
        DigestError::Invalid(vec![FieldError {
            field: "date".into(),
            reason: "invalid",
            message: "a date is written YYYY-MM-DD".into(),
        }])
    })
}

/// A run's fan-out: a delivery for each confirmed subscriber who is not
/// paused or suppressed and whose sections have something (or who gets the
/// quiet day's digest).
#[derive(Clone)]
struct FanOut {
    run_id: RunId,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
    with_articles: Arc<HashSet<String>>,
    quiet: bool,
}

impl FanOut {
    /// The deliveries of the page of subscribers after `after`: the last
    /// subscriber of the page, how many deliveries it made, and how many
    /// subscribers it read.
    fn deliveries_after(
        &self,
        conn: &mut DbConnection,
        suppressions: &SuppressionList,
        after: Option<SubscriberId>,
        page_size: i64,
    ) -> Result<(Option<SubscriberId>, usize, usize), StorageError> {
        let mut page = store::subscriber_page(conn, after, page_size)?;
        let Some(last) = page.last().map(|r| r.0) else {
            return Ok((None, 0, 0));
        };
        let seen = page.len();
        page.retain(|r| r.4 == SubscriberStatus::Confirmed);
        let hashes: Vec<EmailHash> = page.iter().map(|r| suppressions.hash(&r.1)).collect();
        let suppressed = suppressions.among(conn, &hashes)?;
        let rows: Vec<NewDelivery> = page
            .iter()
            .zip(&hashes)
            .filter(|((_, _, _, paused, _), hash)| {
                paused.is_none_or(|until| until <= self.cutoff) && !suppressed.contains(*hash)
            })
            .filter_map(|((id, _, sections, _, _), _)| {
                variant_for(sections, &self.with_articles, self.quiet).map(|variant| NewDelivery {
                    run_id: self.run_id,
                    subscriber_id: *id,
                    variant,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt_at: self.cutoff.min(self.now),
                })
            })
            .collect();
        let inserted = store::insert_deliveries(conn, &rows)?;
        Ok((Some(last), inserted, seen))
    }
}

#[derive(Clone)]
pub struct DigestService {
    pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    settings: Arc<DigestSettings>,
    suppressions: SuppressionList,
}

impl DigestService {
    pub fn new(base: &Base) -> Self {
        Self {
            suppressions: base.suppressions.clone(),
            pool: base.pool.clone(),
            clock: Arc::clone(&base.clock),
            composer: Arc::clone(&base.composer),
            settings: Arc::new(base.settings.digest.clone()),
        }
    }

    fn local_today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.settings.timezone.0).date_naive()
    }

    /// Creates today's run once its time has come; returns the date when
    /// today's run exists (made now or earlier), so the caller can stop
    /// asking until tomorrow.
    pub async fn schedule_due(&self, now: DateTime<Utc>) -> Result<Option<NaiveDate>, DigestError> {
        let today = self.local_today(now);
        if now < scheduled_instant(today, &self.settings) {
            return Ok(None);
        }
        let (run, created) = self
            .create_run(today, now, |_, _, created| Ok(created))
            .await?;
        if created {
            tracing::info!(run_id = %run.id, date = %run.run_date, "digest run created on schedule");
        }
        Ok(Some(today))
    }

    /// The run of `date`, created if missing. It covers what was published
    /// after the previous run's cut-off up to its own: the scheduled time
    /// of that date, or now if that is earlier (a run started by hand
    /// before its time). `then` runs in the same transaction, given the run
    /// and whether it was just created.
    async fn create_run<T: Send + 'static>(
        &self,
        date: NaiveDate,
        now: DateTime<Utc>,
        then: impl FnOnce(&mut DbConnection, &DigestRun, bool) -> Result<T, DigestError>
            + Send
            + 'static,
    ) -> Result<(DigestRun, T), DigestError> {
        if date > self.local_today(now) {
            return Err(DigestError::FutureDate);
        }
        let key = date.format("%Y-%m-%d").to_string();
        let cutoff = scheduled_instant(date, &self.settings).min(now).naive_utc();
        let lookback = Duration::hours(self.settings.first_run_lookback_hours);
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if let Some(run) = store::run_by_date(conn, &key)? {
                    let done = then(conn, &run, false)?;
                    return Ok((run, done));
                }
                if store::runs(conn, 1)?
                    .first()
                    .is_some_and(|latest| latest.run_date > key)
                {
                    return Err(DigestError::BeforeLatest);
                }
                let since = store::previous_cutoff(conn, cutoff)?.unwrap_or(cutoff - lookback);
                let created = store::insert_run(
                    conn,
                    &NewRun {
                        id: RunId::new(),
                        run_date: &key,
                        since,
                        cutoff,
                        created_at: now.naive_utc(),
                    },
                )?;
                let run = store::run_by_date(conn, &key)?.ok_or(DigestError::NotFound)?;
                let done = then(conn, &run, created)?;
                Ok((run, done))
            })
        })
        .await
    }

    /// Creates every delivery of the runs not yet prepared. Safe to run
    /// again after a crash, and by several workers at once: rows that
    /// exist are left alone.
    pub async fn prepare_pending(&self) -> Result<(), DigestError> {
        let runs = db::run(&self.pool, |conn| {
            store::unprepared_runs(conn).map_err(StorageError::from)
        })
        .await?;
        for run in runs {
            self.prepare(run).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(run_id = %run.id, date = %run.run_date))]
    async fn prepare(&self, run: DigestRun) -> Result<(), DigestError> {
        let (since, cutoff) = (run.since, run.cutoff);
        let rows = db::run(&self.pool, move |conn| {
            store::articles_between(conn, since, cutoff).map_err(StorageError::from)
        })
        .await?;
        let date = run.date().unwrap_or_else(|| cutoff.date());
        let content = Content::new(date, rows, &self.composer);
        let articles = content.article_count();
        let with_articles = content.slugs();
        let quiet = articles == 0;
        let now = self.clock.now().naive_utc();
        let mut created = 0usize;
        if !quiet || self.settings.quiet_day == QuietDay::Send {
            let fan_out = FanOut {
                run_id: run.id,
                cutoff,
                now,
                with_articles: Arc::new(with_articles),
                quiet,
            };
            created = self.fan_out(&fan_out).await?;
        }
        let count = i32::try_from(articles).unwrap_or(i32::MAX);
        let run_id = run.id;
        db::run(&self.pool, move |conn| {
            store::refresh_statistics(conn)?;
            store::mark_prepared(conn, run_id, count, now).map_err(StorageError::from)
        })
        .await?;
        tracing::info!(articles, deliveries = created, "digest run prepared");
        Ok(())
    }

    /// Creates the run's deliveries a page of subscribers at a time;
    /// returns how many.
    async fn fan_out(&self, fan_out: &FanOut) -> Result<usize, DigestError> {
        let page_size = self.settings.fanout_page;
        let mut created = 0;
        let mut after = None;
        loop {
            let page = fan_out.clone();
            let suppressions = self.suppressions.clone();
            let (last, inserted, seen) = db::run(&self.pool, move |conn| {
                page.deliveries_after(conn, &suppressions, after, page_size)
            })
            .await?;
            created += inserted;
            match last {
                Some(last) if seen as i64 == page_size => after = Some(last),
                _ => return Ok(created),
            }
        }
    }

    async fn view(&self, run: DigestRun) -> Result<RunView, DigestError> {
        let (run, counts) = db::run(&self.pool, move |conn| {
            let counts = store::counts(conn, std::slice::from_ref(&run))?;
            Ok::<_, StorageError>((run, counts))
        })
        .await?;
        let counts = counts.get(&run.id.to_string()).copied().unwrap_or_default();
        Ok(RunView::new(run, counts))
    }

    pub async fn list(&self, actor: &Account) -> Result<Vec<RunView>, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let (runs, counts) = db::run(&self.pool, |conn| {
            let runs = store::runs(conn, 90)?;
            let counts = store::counts(conn, &runs)?;
            Ok::<_, StorageError>((runs, counts))
        })
        .await?;
        Ok(runs
            .into_iter()
            .map(|run| {
                let c = counts.get(&run.id.to_string()).copied().unwrap_or_default();
                RunView::new(run, c)
            })
            .collect())
    }

    pub async fn get(&self, actor: &Account, date: &str) -> Result<RunView, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let key = parse_date(date)?.format("%Y-%m-%d").to_string();
        let run = db::run(&self.pool, move |conn| {
            store::run_by_date(conn, &key).map_err(StorageError::from)
        })
        .await?
        .ok_or(DigestError::NotFound)?;
        self.view(run).await
    }

    /// Starts the run of a date, or resumes it, and returns at once: the
    /// run is created (or found) and its deliveries waiting for a retry
    /// become due; a worker then creates the deliveries of a new run and
    /// sends them. Sent ones are never sent again.
    #[tracing::instrument(skip_all, fields(actor = %actor.id))]
    pub async fn start(&self, actor: &Account, date: &str) -> Result<Started, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let date = parse_date(date)?;
        let (run, created, retried) = self.begin(date, Some(actor.id)).await?;
        Ok(Started {
            run: self.view(run).await?,
            created,
            retried,
        })
    }

    /// For the command line: the run of `date`, started or resumed as by
    /// `start`, with its deliveries created here rather than by a worker,
    /// so that the command can count and send them itself.
    pub async fn start_or_resume(&self, date: NaiveDate) -> Result<DigestRun, DigestError> {
        let (run, ..) = self.begin(date, None).await?;
        if run.prepared_at.is_none() {
            self.prepare(run.clone()).await?;
        }
        let id = run.id;
        db::run(&self.pool, move |conn| {
            store::run(conn, id).map_err(StorageError::from)
        })
        .await?
        .ok_or(DigestError::NotFound)
    }

    /// Creates or finds the run of `date` and makes its waiting retries
    /// due, recording who did it (no one: the command line) in the same
    /// transaction. Says whether it created the run, and how many retries
    /// it made due.
    async fn begin(
        &self,
        date: NaiveDate,
        actor: Option<AccountId>,
    ) -> Result<(DigestRun, bool, usize), DigestError> {
        let now = self.clock.now();
        let (run, (created, retried)) = self
            .create_run(date, now, move |conn, run, created| {
                let retried = store::retry_now(conn, run.id, now.naive_utc())?;
                let date = &run.run_date;
                let mut detail = match (created, retried) {
                    (true, _) => format!("started the digest of {date}"),
                    (false, 0) => format!("resumed the digest of {date}; no retry was waiting"),
                    (false, n) => format!(
                        "resumed the digest of {date}; {n} deliveries waiting for a retry made due"
                    ),
                };
                if actor.is_none() {
                    detail.push_str(" (from the command line)");
                }
                audit::record(
                    conn,
                    now,
                    actor,
                    "digest.start",
                    &Subject::new(SubjectKind::DigestRun, run.id),
                    Some(&detail),
                )?;
                Ok((created, retried))
            })
            .await?;
        tracing::info!(run_id = %run.id, date = %run.run_date, created, retried, "digest run started");
        Ok((run, created, retried))
    }

    /// Today in the digest's time zone, and when its run starts by itself.
    pub fn today(&self) -> Today {
        let today = self.local_today(self.clock.now());
        Today {
            date: today.format("%Y-%m-%d").to_string(),
            timezone: self.settings.timezone.0.name().to_owned(),
            send_at: self.settings.send_at.0.format("%H:%M").to_string(),
            scheduled: self.settings.schedule,
            starts_at: scheduled_instant(today, &self.settings),
        }
    }

    pub async fn run_view(&self, id: RunId) -> Result<RunView, DigestError> {
        let run = db::run(&self.pool, move |conn| {
            store::run(conn, id).map_err(StorageError::from)
        })
        .await?
        .ok_or(DigestError::NotFound)?;
        self.view(run).await
    }

    /// The digest of a date for the given sections (all when none), as a
    /// subscriber would get it: the run's own window when the run exists,
    /// otherwise the one it would have if it started now.
    pub async fn preview(
        &self,
        actor: &Account,
        date: &str,
        sections: Option<Vec<String>>,
    ) -> Result<Preview, DigestError> {
        crate::accounts::service::require(actor, Role::Editor)?;
        self.render_preview(date, sections).await
    }

    pub async fn render_preview(
        &self,
        date: &str,
        sections: Option<Vec<String>>,
    ) -> Result<Preview, DigestError> {
        let date = parse_date(date)?;
        // The newsletter's sections are the site's (articles') sections.
        let available = db::run(&self.pool, |conn| {
            crate::articles::tx::section_slugs(conn).map_err(StorageError::from)
        })
        .await?;
        let variant = Sections::parse(sections.as_deref(), &available)
            .map_err(|e| DigestError::Invalid(vec![e.on("sections")]))?;
        let window = self.window_query(date);
        let (since, cutoff, rows) = db::run(&self.pool, move |conn| {
            let (_, since, cutoff) = window(conn)?;
            let rows = store::articles_between(conn, since, cutoff)?;
            Ok::<_, StorageError>((since, cutoff, rows))
        })
        .await?;
        let content = Content::new(date, rows, &self.composer);
        self.render_variant(&content, date, (since, cutoff), &variant)
    }

    /// A date's digest for the console: its run, if started, and each
    /// section variant as its subscribers see it. The variants are those of
    /// the run's deliveries; before they exist (or once they are deleted),
    /// those the confirmed subscribers would get if it started now.
    #[tracing::instrument(skip_all, fields(actor = %actor.id))]
    pub async fn detail(&self, actor: &Account, date: &str) -> Result<RunDetail, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let date = parse_date(date)?;
        let window = self.window_query(date);
        let (run, since, cutoff, rows, delivered, chosen) = db::run(&self.pool, move |conn| {
            let (run, since, cutoff) = window(conn)?;
            let rows = store::articles_between(conn, since, cutoff)?;
            let delivered = match &run {
                Some(run) => store::variant_counts(conn, run.id)?,
                None => Vec::new(),
            };
            let chosen = if delivered.is_empty() {
                store::confirmed_by_sections(conn, cutoff)?
            } else {
                Vec::new()
            };
            Ok::<_, StorageError>((run, since, cutoff, rows, delivered, chosen))
        })
        .await?;
        let content = Content::new(date, rows, &self.composer);
        let (variants_from, mut counted) = if delivered.is_empty() {
            let quiet = content.article_count() == 0;
            let with_articles = content.slugs();
            let mut merged: BTreeMap<String, (Sections, i64)> = BTreeMap::new();
            if !quiet || self.settings.quiet_day == QuietDay::Send {
                for (sections, n) in chosen {
                    if let Some(variant) = variant_for(&sections, &with_articles, quiet) {
                        merged.entry(variant.to_string()).or_insert((variant, 0)).1 += n;
                    }
                }
            }
            (VariantSource::Subscribers, merged.into_values().collect())
        } else {
            (VariantSource::Deliveries, delivered)
        };
        counted.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.as_slice().cmp(b.0.as_slice()))
        });
        let variants = counted
            .into_iter()
            .map(|(variant, recipients)| {
                Ok(VariantPreview {
                    sections: variant.as_slice().to_vec(),
                    recipients,
                    preview: self.render_variant(&content, date, (since, cutoff), &variant)?,
                })
            })
            .collect::<Result<Vec<_>, DigestError>>()?;
        let run = match run {
            Some(run) => Some(self.view(run).await?),
            None => None,
        };
        Ok(RunDetail {
            date: date.format("%Y-%m-%d").to_string(),
            run,
            variants_from,
            variants,
        })
    }

    /// What finds the window of `date`'s digest: the run's own when it
    /// exists, otherwise the one it would have if it started now.
    fn window_query(
        &self,
        date: NaiveDate,
    ) -> impl FnOnce(
        &mut DbConnection,
    ) -> Result<(Option<DigestRun>, NaiveDateTime, NaiveDateTime), StorageError>
           + Send
           + 'static {
        let key = date.format("%Y-%m-%d").to_string();
        let cutoff = scheduled_instant(date, &self.settings)
            .min(self.clock.now())
            .naive_utc();
        let lookback = Duration::hours(self.settings.first_run_lookback_hours);
        move |conn| match store::run_by_date(conn, &key)? {
            Some(run) => {
                let (since, cutoff) = (run.since, run.cutoff);
                Ok((Some(run), since, cutoff))
            }
            None => Ok((
                None,
                store::previous_cutoff(conn, cutoff)?.unwrap_or(cutoff - lookback),
                cutoff,
            )),
        }
    }

    /// One variant of `content` as a subscriber without a name sees it.
    fn render_variant(
        &self,
        content: &Content,
        date: NaiveDate,
        (since, cutoff): (NaiveDateTime, NaiveDateTime),
        variant: &Sections,
    ) -> Result<Preview, DigestError> {
        let mut digest = content.digest_for(variant);
        let articles = digest.sections.iter().map(|s| s.articles.len()).sum();
        digest.greeting = greeting(None);
        digest.preferences_link = self.composer.link("/newsletter/preferences");
        digest.unsubscribe_link = self.composer.link("/newsletter");
        let (subject, text, html) = self.composer.render(&digest)?;
        Ok(Preview {
            date: date.format("%Y-%m-%d").to_string(),
            since: since.and_utc(),
            cutoff: cutoff.and_utc(),
            sections: variant.as_slice().to_vec(),
            articles,
            subject,
            text,
            html,
        })
    }
}

/// Settles the runs with nothing left to send, then deletes the delivery
/// rows of settled runs older than `digest.keep_deliveries_days` (by local
/// date); the runs keep their counts.
pub async fn housekeeping(
    pool: &Pool,
    now: DateTime<Utc>,
    settings: &DigestSettings,
) -> Result<(), StorageError> {
    let today = now.with_timezone(&settings.timezone.0).date_naive();
    let before = (today - Duration::days(i64::from(settings.keep_deliveries_days)))
        .format("%Y-%m-%d")
        .to_string();
    let (settled, purged) = db::run(pool, move |conn| {
        let settled = store::settle_finished(conn, now.naive_utc())?;
        let purged = store::purge_deliveries(conn, &before)?;
        Ok::<_, StorageError>((settled, purged))
    })
    .await?;
    if settled > 0 || purged > 0 {
        tracing::info!(
            settled,
            purged,
            "digest housekeeping: runs settled, old deliveries deleted"
        );
    }
    Ok(())
}

/// What /metrics reports: deliveries sent and failed since the start, and
/// the send rate over the last minute.
pub async fn metrics(pool: &Pool, now: DateTime<Utc>) -> Result<(Counts, f64), StorageError> {
    let window = Duration::seconds(60);
    let from: NaiveDateTime = (now - window).naive_utc();
    let (counts, recent) = db::run(pool, move |conn| {
        store::totals(conn, from).map_err(StorageError::from)
    })
    .await?;
    Ok((counts, recent as f64 / window.num_seconds() as f64))
}

/// One subscriber's digests, as the console shows them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SubscriberDigests {
    pub sent: i64,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub failed: i64,
    /// Deliveries older than this many days are no longer kept.
    pub kept_days: u32,
}

impl DigestService {
    /// How many digests went to a subscriber lately, and the last one: for
    /// admins.
    pub async fn sent_to(
        &self,
        actor: &Account,
        subscriber: crate::newsletter::SubscriberId,
    ) -> Result<SubscriberDigests, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let kept_days = self.settings.keep_deliveries_days;
        let (sent, last, failed) = db::run(&self.pool, move |conn| {
            store::sent_to(conn, subscriber).map_err(StorageError::from)
        })
        .await?;
        Ok(SubscriberDigests {
            sent,
            last_sent_at: last.map(|t| t.and_utc()),
            failed,
            kept_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(prepared: bool) -> DigestRun {
        let at = NaiveDate::from_ymd_opt(2027, 1, 12)
            .and_then(|d| d.and_hms_opt(7, 0, 0))
            .expect("a time");
        DigestRun {
            id: RunId::new(),
            run_date: "2027-01-12".into(),
            since: at - Duration::days(1),
            cutoff: at,
            article_count: 3,
            created_at: at,
            prepared_at: prepared.then_some(at + Duration::minutes(1)),
            settled_at: None,
            sent_count: 0,
            failed_count: 0,
            skipped_count: 0,
            last_result_at: Some(at + Duration::minutes(5)),
        }
    }

    fn counts(pending: i64, sent: i64) -> Counts {
        Counts {
            pending,
            sent,
            failed: 0,
            skipped: 0,
        }
    }

    #[test]
    fn a_run_is_done_only_when_nothing_waits() {
        let sending = RunView::new(run(true), counts(1, 19_999));
        assert_eq!(sending.state, RunState::Sending);
        assert_eq!(sending.percent_done, 99);
        assert_eq!(sending.finished_at, None);
        let halfway = RunView::new(run(true), counts(500, 500));
        assert_eq!(halfway.percent_done, 50);
        let preparing = RunView::new(run(false), counts(0, 0));
        assert_eq!(
            (preparing.state, preparing.percent_done),
            (RunState::Preparing, 0)
        );
        let done = RunView::new(run(true), counts(0, 20_000));
        assert_eq!((done.state, done.percent_done), (RunState::Completed, 100));
        assert_eq!(
            done.finished_at.map(|t| t.naive_utc()),
            run(true).last_result_at,
            "the last result, not when housekeeping noticed"
        );
        let nothing = RunView::new(run(true), counts(0, 0));
        assert_eq!(
            (nothing.state, nothing.percent_done),
            (RunState::Skipped, 100)
        );
        assert_eq!(
            nothing.finished_at.map(|t| t.naive_utc()),
            run(true).prepared_at
        );
    }
}
