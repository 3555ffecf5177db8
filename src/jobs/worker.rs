use std::fmt::Debug;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use lettre::message::Mailbox;
use tokio::sync::watch;

use crate::articles::ReaderCache;
use crate::digest::DigestSender;
use crate::digest::DigestService;
use crate::platform::clock::SharedClock;
use crate::platform::config::{DigestSettings, TrialSettings};
use crate::platform::db::Pool;
use crate::platform::mail::delivery::{self, Deliverer, Signing};
use crate::platform::mail::{Composer, Transport};
use crate::state::Core;

/// How often expired sessions, links, stale sign-ups and old sent mail are
/// deleted, and finished digest runs settled, on the injected clock.
const HOUSEKEEPING_EVERY: chrono::Duration = chrono::Duration::hours(1);

pub struct Worker {
    outbox: OutboxLoop,
    digest: DigestLoop,
    jobs: Runner,
}

impl Worker {
    pub fn new(core: &Core) -> anyhow::Result<Self> {
        Ok(Self {
            outbox: OutboxLoop::new(core)?,
            digest: DigestLoop::new(core)?,
            jobs: Runner::new(core),
        })
    }

    /// Runs until `stop` turns true; a batch in progress is finished first.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        tracing::info!("worker started");
        // Their own tasks, so that a morning's digest does not hold up a
        // password reset in the outbox, nor housekeeping a confirmation.
        let digest = tokio::spawn(self.digest.run(stop.clone()));
        let outbox = tokio::spawn(self.outbox.run(stop.clone()));
        self.jobs.run(stop).await;
        if let Err(error) = digest.await {
            tracing::error!(error = ?error, "digest task failed");
        }
        if let Err(error) = outbox.await {
            tracing::error!(error = ?error, "outbox task failed");
        }
        tracing::info!("worker stopped");
    }
}

/// When a job runs, on the worker's tick.
#[derive(Debug, Clone, Copy)]
enum Due {
    EveryTick,
    /// On the first tick, then on the first tick at least this long after
    /// the last run, by the injected clock.
    Every(chrono::Duration),
}

/// One periodic job: its name (a failure is logged as "{name} failed"),
/// when it is due, and what it runs.
struct Job {
    name: &'static str,
    due: Due,
    task: Task,
    last_run: Option<DateTime<Utc>>,
}

/// What a job runs, with what it runs with.
enum Task {
    PublishScheduledArticles {
        cache: Arc<ReaderCache>,
    },
    /// The morning summary of the trial queue; `settled` is the local date
    /// whose summary is known to be sent, so it is not asked for again.
    TrialQueueSummary {
        composer: Arc<Composer>,
        settings: TrialSettings,
        settled: Option<NaiveDate>,
    },
    PurgeExpiredSessionsAndLinks,
    PurgeStaleSignUps {
        unconfirmed_max_age: chrono::Duration,
    },
    SettleDigestRuns {
        settings: DigestSettings,
    },
    PurgeSentMail {
        keep_sent_days: u32,
    },
}

impl Job {
    fn new(name: &'static str, due: Due, task: Task) -> Self {
        Self {
            name,
            due,
            task,
            last_run: None,
        }
    }

    fn is_due(&self, now: DateTime<Utc>) -> bool {
        match self.due {
            Due::EveryTick => true,
            Due::Every(every) => self.last_run.is_none_or(|last| now - last >= every),
        }
    }

    /// Runs the job if it is due; a failure is logged, and the job is due
    /// again as if it had succeeded.
    async fn run_if_due(&mut self, pool: &Pool, now: DateTime<Utc>) {
        if !self.is_due(now) {
            return;
        }
        self.last_run = Some(now);
        if let Err(error) = self.task.run(pool, now).await {
            tracing::error!(error = ?error, "{} failed", self.name);
        }
    }
}

type Failure = Box<dyn Debug + Send>;

fn failure(error: impl Debug + Send + 'static) -> Failure {
    Box::new(error)
}

impl Task {
    async fn run(&mut self, pool: &Pool, now: DateTime<Utc>) -> Result<(), Failure> {
        match self {
            Task::PublishScheduledArticles { cache } => {
                crate::articles::service::publish_due(pool, cache, now)
                    .await
                    .map_err(failure)
            }
            Task::TrialQueueSummary {
                composer,
                settings,
                settled,
            } => {
                *settled = crate::trials::service::send_summary_if_due(
                    pool, composer, now, settings, *settled,
                )
                .await
                .map_err(failure)?;
                Ok(())
            }
            Task::PurgeExpiredSessionsAndLinks => {
                crate::accounts::service::purge_expired(pool, now)
                    .await
                    .map_err(failure)
            }
            Task::PurgeStaleSignUps {
                unconfirmed_max_age,
            } => crate::newsletter::service::purge_stale(pool, now, *unconfirmed_max_age)
                .await
                .map_err(failure),
            Task::SettleDigestRuns { settings } => {
                crate::digest::service::housekeeping(pool, now, settings)
                    .await
                    .map_err(failure)
            }
            Task::PurgeSentMail { keep_sent_days } => {
                crate::platform::mail::service::housekeeping(pool, now, *keep_sent_days)
                    .await
                    .map_err(failure)
            }
        }
    }
}

/// The periodic jobs, run in order on each tick of the worker, each when it
/// is due.
struct Runner {
    jobs: Vec<Job>,
    pool: Pool,
    clock: SharedClock,
    poll_interval: std::time::Duration,
}

impl Runner {
    fn new(core: &Core) -> Self {
        let settings = &core.settings;
        let housekeeping = Due::Every(HOUSEKEEPING_EVERY);
        let jobs = vec![
            Job::new(
                "publishing scheduled articles",
                Due::EveryTick,
                Task::PublishScheduledArticles {
                    cache: Arc::clone(&core.article_cache),
                },
            ),
            Job::new(
                "trial queue summary",
                Due::EveryTick,
                Task::TrialQueueSummary {
                    composer: Arc::clone(&core.composer),
                    settings: settings.trials.clone(),
                    settled: None,
                },
            ),
            Job::new(
                "housekeeping",
                housekeeping,
                Task::PurgeExpiredSessionsAndLinks,
            ),
            Job::new(
                "newsletter housekeeping",
                housekeeping,
                Task::PurgeStaleSignUps {
                    unconfirmed_max_age: chrono::Duration::hours(
                        settings.newsletter.unconfirmed_max_age_hours,
                    ),
                },
            ),
            Job::new(
                "digest housekeeping",
                housekeeping,
                Task::SettleDigestRuns {
                    settings: settings.digest.clone(),
                },
            ),
            Job::new(
                "mail housekeeping",
                housekeeping,
                Task::PurgeSentMail {
                    keep_sent_days: settings.mail.keep_sent_days,
                },
            ),
        ];
        Self {
            jobs,
            pool: core.pool.clone(),
            clock: Arc::clone(&core.clock),
            poll_interval: settings.worker.poll_interval(),
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let now = self.clock.now();
            for job in &mut self.jobs {
                job.run_if_due(&self.pool, now).await;
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}

/// Sends the outbox's due messages batch after batch until none is due, then
/// sleeps until the next poll or until this process enqueues a message.
struct OutboxLoop {
    deliverer: Deliverer,
    poll_interval: std::time::Duration,
}

impl OutboxLoop {
    fn new(core: &Core) -> anyhow::Result<Self> {
        let settings = &core.settings;
        let reply_to = settings
            .mail
            .reply_to
            .as_deref()
            .map(|r| {
                r.parse::<Mailbox>()
                    .with_context(|| format!("mail.reply_to `{r}` is not a mailbox"))
            })
            .transpose()?;
        let transport = Transport::new(&settings.mail)?;
        Ok(Self {
            deliverer: Deliverer::new(
                core.pool.clone(),
                Arc::new(transport),
                Arc::clone(&core.clock),
                settings.worker.clone(),
                Signing {
                    reply_to,
                    dkim: core.dkim.clone(),
                    return_paths: Arc::clone(&core.return_paths),
                },
                core.suppressions.clone(),
            ),
            poll_interval: settings.worker.poll_interval(),
        })
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let enqueued = crate::platform::mail::store::enqueued();
            tokio::pin!(enqueued);
            enqueued.as_mut().enable();
            match self.deliverer.drain(&stop).await {
                Ok(0) => {}
                Ok(count) => tracing::debug!(count, "outbox drained"),
                Err(error) => tracing::error!(error = ?error, "outbox delivery failed"),
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = &mut enqueued => tokio::time::sleep(delivery::SETTLE).await,
                _ = stop.changed() => break,
            }
        }
    }
}

/// Starts each day's digest run on time, creates its deliveries, and sends
/// whatever deliveries are due, batch after batch.
struct DigestLoop {
    service: DigestService,
    sender: DigestSender,
    clock: SharedClock,
    schedule: bool,
    zone: chrono_tz::Tz,
    poll_interval: std::time::Duration,
}

impl DigestLoop {
    fn new(core: &Core) -> anyhow::Result<Self> {
        let settings = &core.settings;
        Ok(Self {
            service: DigestService::new(core),
            sender: DigestSender::new(&core.base, Arc::clone(&core.links))?,
            clock: Arc::clone(&core.clock),
            schedule: settings.digest.schedule,
            zone: settings.digest.timezone.0,
            poll_interval: settings.worker.poll_interval(),
        })
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut scheduled_for: Option<chrono::NaiveDate> = None;
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let now = self.clock.now();
            let today = now.with_timezone(&self.zone).date_naive();
            if self.schedule && scheduled_for != Some(today) {
                match self.service.schedule_due(now).await {
                    Ok(done) => scheduled_for = done,
                    Err(error) => tracing::error!(error = ?error, "digest schedule failed"),
                }
            }
            if let Err(error) = self.service.prepare_pending().await {
                tracing::error!(error = ?error, "preparing a digest run failed");
            }
            if let Err(error) = self.sender.deliver(None, Some(&stop), &|_| {}).await {
                tracing::error!(error = ?error, "digest delivery failed");
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}
