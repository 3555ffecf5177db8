use std::sync::Arc;

use anyhow::Context;
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
    pool: Pool,
    article_cache: Arc<ReaderCache>,
    clock: SharedClock,
    composer: Arc<Composer>,
    trials: TrialSettings,
    digest_settings: DigestSettings,
    poll_interval: std::time::Duration,
    unconfirmed_max_age: chrono::Duration,
    keep_sent_days: u32,
}

impl Worker {
    pub fn new(core: &Core) -> anyhow::Result<Self> {
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
            digest: DigestLoop {
                service: DigestService::new(core),
                sender: DigestSender::new(&core.base, Arc::clone(&core.links))?,
                clock: Arc::clone(&core.clock),
                schedule: settings.digest.schedule,
                zone: settings.digest.timezone.0,
                poll_interval: settings.worker.poll_interval(),
            },
            outbox: OutboxLoop {
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
            },
            pool: core.pool.clone(),
            article_cache: Arc::clone(&core.article_cache),
            clock: Arc::clone(&core.clock),
            composer: Arc::clone(&core.composer),
            trials: settings.trials.clone(),
            digest_settings: settings.digest.clone(),
            poll_interval: settings.worker.poll_interval(),
            unconfirmed_max_age: chrono::Duration::hours(
                settings.newsletter.unconfirmed_max_age_hours,
            ),
            keep_sent_days: settings.mail.keep_sent_days,
        })
    }

    /// Runs until `stop` turns true; a batch in progress is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!("worker started");
        // Their own tasks, so that a morning's digest does not hold up a
        // password reset in the outbox, nor housekeeping a confirmation.
        let digest = tokio::spawn(self.digest.run(stop.clone()));
        let outbox = tokio::spawn(self.outbox.run(stop.clone()));
        let mut last_housekeeping: Option<chrono::DateTime<chrono::Utc>> = None;
        let mut summary_settled: Option<chrono::NaiveDate> = None;
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let now = self.clock.now();
            if let Err(error) =
                crate::articles::service::publish_due(&self.pool, &self.article_cache, now).await
            {
                tracing::error!(error = ?error, "publishing scheduled articles failed");
            }
            match crate::trials::service::send_summary_if_due(
                &self.pool,
                &self.composer,
                now,
                &self.trials,
                summary_settled,
            )
            .await
            {
                Ok(settled) => summary_settled = settled,
                Err(error) => tracing::error!(error = ?error, "trial queue summary failed"),
            }
            if last_housekeeping.is_none_or(|last| now - last >= HOUSEKEEPING_EVERY) {
                last_housekeeping = Some(now);
                if let Err(error) = crate::accounts::service::purge_expired(&self.pool, now).await {
                    tracing::error!(error = ?error, "housekeeping failed");
                }
                if let Err(error) = crate::newsletter::service::purge_stale(
                    &self.pool,
                    now,
                    self.unconfirmed_max_age,
                )
                .await
                {
                    tracing::error!(error = ?error, "newsletter housekeeping failed");
                }
                if let Err(error) =
                    crate::digest::service::housekeeping(&self.pool, now, &self.digest_settings)
                        .await
                {
                    tracing::error!(error = ?error, "digest housekeeping failed");
                }
                if let Err(error) = crate::platform::mail::service::housekeeping(
                    &self.pool,
                    now,
                    self.keep_sent_days,
                )
                .await
                {
                    tracing::error!(error = ?error, "mail housekeeping failed");
                }
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Err(error) = digest.await {
            tracing::error!(error = ?error, "digest task failed");
        }
        if let Err(error) = outbox.await {
            tracing::error!(error = ?error, "outbox task failed");
        }
        tracing::info!("worker stopped");
    }
}

/// Sends the outbox's due messages batch after batch until none is due, then
/// sleeps until the next poll or until this process enqueues a message.
struct OutboxLoop {
    deliverer: Deliverer,
    poll_interval: std::time::Duration,
}

impl OutboxLoop {
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
