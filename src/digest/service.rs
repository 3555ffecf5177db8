//! Digest workflows: the schedule, creating and preparing runs, what the
//! admin sees, and the preview. Nothing here knows about HTTP.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::result::Error as DieselError;
use serde::Serialize;

use super::model::{Counts, DeliveryStatus, DigestRun, NewDelivery, NewRun, RunId, RunState};
use super::render::{greeting, Digest, Headline, SectionBlock};
use super::store;
use crate::accounts::{Account, AccountError, Role};
use crate::articles::{Article, Section};
use crate::clock::SharedClock;
use crate::config::{DigestSettings, QuietDay};
use crate::db::{self, Pool, StorageError};
use crate::domain::FieldError;
use crate::mail::compose::ComposeError;
use crate::mail::Composer;
use crate::newsletter::model::EmailHash;
use crate::newsletter::{Sections, SubscriberStatus};
use crate::state::Core;

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
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: RunId,
    pub date: String,
    pub state: RunState,
    pub since: DateTime<Utc>,
    pub cutoff: DateTime<Utc>,
    pub articles: i32,
    pub counts: Counts,
    pub created_at: DateTime<Utc>,
    pub prepared_at: Option<DateTime<Utc>>,
}

impl RunView {
    fn new(run: DigestRun, counts: Counts) -> Self {
        Self {
            id: run.id,
            state: RunState::of(&run, &counts),
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
#[derive(Debug, Clone, Serialize)]
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

#[derive(Clone)]
pub struct DigestService {
    pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    settings: Arc<DigestSettings>,
    available_sections: Arc<Vec<String>>,
}

impl DigestService {
    pub fn new(core: &Core) -> Self {
        Self {
            pool: core.pool.clone(),
            clock: Arc::clone(&core.clock),
            composer: Arc::clone(&core.composer),
            settings: Arc::new(core.settings.digest.clone()),
            available_sections: Arc::new(core.settings.newsletter.sections.clone()),
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
        let (run, created) = self.create_run(today, now).await?;
        if created {
            tracing::info!(run_id = %run.id, date = %run.run_date, "digest run created on schedule");
        }
        Ok(Some(today))
    }

    /// The run of `date`, created if missing. It covers what was published
    /// after the previous run's cut-off up to its own: the scheduled time
    /// of that date, or now if that is earlier (a run started by hand
    /// before its time).
    async fn create_run(
        &self,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(DigestRun, bool), DigestError> {
        if date > self.local_today(now) {
            return Err(DigestError::FutureDate);
        }
        let key = date.format("%Y-%m-%d").to_string();
        let cutoff = scheduled_instant(date, &self.settings).min(now).naive_utc();
        let lookback = Duration::hours(self.settings.first_run_lookback_hours);
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if let Some(run) = store::run_by_date(conn, &key)? {
                    return Ok((run, false));
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
                Ok((run, created))
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
            let mut after = None;
            loop {
                let page_size = self.settings.fanout_page;
                let with_articles = with_articles.clone();
                let run_id = run.id;
                let (last, inserted, seen) = db::run(&self.pool, move |conn| {
                    let mut page = store::subscriber_page(conn, after, page_size)?;
                    let Some(last) = page.last().map(|r| r.0) else {
                        return Ok::<_, StorageError>((None, 0, 0));
                    };
                    let seen = page.len();
                    page.retain(|r| r.4 == SubscriberStatus::Confirmed);
                    let hashes: Vec<EmailHash> = page.iter().map(|r| EmailHash::of(&r.1)).collect();
                    let suppressed: HashSet<EmailHash> = store::suppressed_among(conn, &hashes)?
                        .into_iter()
                        .collect();
                    let rows: Vec<NewDelivery> = page
                        .iter()
                        .zip(&hashes)
                        .filter(|((_, _, _, paused, _), hash)| {
                            paused.is_none_or(|until| until <= cutoff)
                                && !suppressed.contains(*hash)
                        })
                        .filter_map(|((id, _, sections, _, _), _)| {
                            let variant = if quiet {
                                Sections::none()
                            } else {
                                sections.retain(|s| with_articles.contains(s))
                            };
                            (quiet || !variant.is_empty()).then_some(NewDelivery {
                                run_id,
                                subscriber_id: *id,
                                variant,
                                status: DeliveryStatus::Pending,
                                attempts: 0,
                                next_attempt_at: cutoff.min(now),
                            })
                        })
                        .collect();
                    let inserted = store::insert_deliveries(conn, &rows)?;
                    Ok((Some(last), inserted, seen))
                })
                .await?;
                created += inserted;
                match last {
                    Some(last) if seen as i64 == page_size => after = Some(last),
                    _ => break,
                }
            }
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

    /// Starts the run of a date now, or resumes it: deliveries waiting for
    /// a retry become due at once. Sent ones are never sent again.
    #[tracing::instrument(skip_all, fields(actor = %actor.id))]
    pub async fn start(&self, actor: &Account, date: &str) -> Result<RunView, DigestError> {
        crate::accounts::service::require(actor, Role::Admin)?;
        let date = parse_date(date)?;
        let run = self.start_or_resume(date).await?;
        self.view(run).await
    }

    /// For the admin API and the command line: the run of `date`, created
    /// and prepared if need be, with its waiting retries made due.
    pub async fn start_or_resume(&self, date: NaiveDate) -> Result<DigestRun, DigestError> {
        let now = self.clock.now();
        let (run, created) = self.create_run(date, now).await?;
        if run.prepared_at.is_none() {
            self.prepare(run.clone()).await?;
        }
        let id = run.id;
        let retried = db::run(&self.pool, move |conn| {
            store::retry_now(conn, id, now.naive_utc()).map_err(StorageError::from)
        })
        .await?;
        tracing::info!(run_id = %id, date = %run.run_date, created, retried, "digest run started");
        db::run(&self.pool, move |conn| {
            store::run(conn, id).map_err(StorageError::from)
        })
        .await?
        .ok_or(DigestError::NotFound)
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
        let variant = Sections::parse(sections.as_deref(), &self.available_sections)
            .map_err(|e| DigestError::Invalid(vec![e.on("sections")]))?;
        let now = self.clock.now();
        let key = date.format("%Y-%m-%d").to_string();
        let cutoff = scheduled_instant(date, &self.settings).min(now).naive_utc();
        let lookback = Duration::hours(self.settings.first_run_lookback_hours);
        let (since, cutoff, rows) = db::run(&self.pool, move |conn| {
            let (since, cutoff) = match store::run_by_date(conn, &key)? {
                Some(run) => (run.since, run.cutoff),
                None => (
                    store::previous_cutoff(conn, cutoff)?.unwrap_or(cutoff - lookback),
                    cutoff,
                ),
            };
            let rows = store::articles_between(conn, since, cutoff)?;
            Ok::<_, StorageError>((since, cutoff, rows))
        })
        .await?;
        let content = Content::new(date, rows, &self.composer);
        let mut digest = content.digest_for(&variant);
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
