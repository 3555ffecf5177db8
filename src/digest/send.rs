//! Sends claimed deliveries over a pool of SMTP connections with bounded
//! concurrency, and records the results in batches while sending goes on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use tokio::sync::{mpsc, watch};

use super::model::{Claimed, DigestRun, RunId};
use super::render::{greeting, Personal, Rendered, Template};
use super::service::{Content, DigestError};
use super::store::{self, Outcome, Recorded};
use crate::newsletter::Sections;
use crate::newsletter::SubscriberId;
use crate::newsletter::SubscriberStatus;
use crate::newsletter::{EmailHash, LinkSigner};
use crate::platform::base::Base;
use crate::platform::clock::SharedClock;
use crate::platform::config::{DigestSettings, NewsletterSettings};
use crate::platform::db::{self, Pool, StorageError};
use crate::platform::mail::compose::unfolded;
use crate::platform::mail::retry::{RetryPolicy, Verdict};
use crate::platform::mail::suppression::SuppressionList;
use crate::platform::mail::transport::SendError;
use crate::platform::mail::{Composer, DkimSigner, ReturnPaths, SentMessage, Transport};

/// What one call of `DigestSender::deliver` did, counted per delivery.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub retrying: usize,
}

impl BatchReport {
    fn count(&mut self, outcome: &Outcome) {
        self.claimed += 1;
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::RetryAt { .. } => self.retrying += 1,
        }
    }
}

fn stopped(stop: Option<&watch::Receiver<bool>>) -> bool {
    stop.is_some_and(|stop| *stop.borrow())
}

fn set_aside(untried: &Mutex<Vec<Claimed>>, work: Vec<Work>) {
    untried
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(work.into_iter().map(|(delivery, ..)| delivery));
}

/// A claimed delivery, ready to send: its variant, whether to skip it, and
/// the time of the claim.
type Work = (Claimed, Arc<Rendered>, bool, DateTime<Utc>);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The claimed batches message by message, so that a stop leaves the rest
/// untried (set aside to be given back); the messages already handed to
/// the SMTP connections are finished. Boxed: otherwise the compiler cannot
/// show the worker's spawned future to be Send for every lifetime.
fn one_by_one<'a>(
    ready: mpsc::Receiver<Vec<Work>>,
    stop: Option<&'a watch::Receiver<bool>>,
    untried: &'a Mutex<Vec<Claimed>>,
) -> futures_util::stream::BoxStream<'a, Work> {
    futures_util::stream::unfold(
        (ready, Vec::new().into_iter()),
        move |(mut ready, mut batch)| async move {
            loop {
                if stopped(stop) {
                    set_aside(untried, batch.collect());
                    ready.close();
                    while let Some(waiting) = ready.recv().await {
                        set_aside(untried, waiting);
                    }
                    return None;
                }
                if let Some(work) = batch.next() {
                    return Some((work, (ready, batch)));
                }
                batch = ready.recv().await?.into_iter();
            }
        },
    )
    .boxed()
}

/// A run's content and its variants, rendered once each.
struct RunCache {
    content: Content,
    variants: HashMap<String, Arc<Rendered>>,
}

pub struct DigestSender {
    pool: Pool,
    transport: Arc<Transport>,
    clock: SharedClock,
    composer: Arc<Composer>,
    links: Arc<LinkSigner>,
    settings: DigestSettings,
    newsletter: Arc<NewsletterSettings>,
    dkim: Option<Arc<DkimSigner>>,
    return_paths: Arc<ReturnPaths>,
    suppressions: SuppressionList,
    sender_domain: String,
    runs: Mutex<HashMap<String, RunCache>>,
}

/// A body part the variant's template has already encoded.
fn encoded_part(content_type: ContentType, quoted_printable: Vec<u8>) -> SinglePart {
    SinglePart::builder()
        .header(content_type)
        .body(Body::dangerous_pre_encoded(
            quoted_printable,
            ContentTransferEncoding::QuotedPrintable,
        ))
}

impl DigestSender {
    pub fn new(core: &Base, links: Arc<LinkSigner>) -> anyhow::Result<Self> {
        let settings = &core.settings;
        let mut mail = settings.mail.clone();
        mail.smtp.pool_size = u32::try_from(settings.digest.concurrency.max(1)).unwrap_or(u32::MAX);
        let transport = Transport::new(&mail)?;
        let sender_domain = core.composer.newsletter_from().email.domain().to_owned();
        Ok(Self {
            pool: core.pool.clone(),
            transport: Arc::new(transport),
            clock: Arc::clone(&core.clock),
            composer: Arc::clone(&core.composer),
            links,
            settings: settings.digest.clone(),
            newsletter: Arc::new(settings.newsletter.clone()),
            dkim: core.dkim.clone(),
            return_paths: Arc::clone(&core.return_paths),
            suppressions: core.suppressions.clone(),
            sender_domain,
            runs: Mutex::new(HashMap::new()),
        })
    }

    /// Sends due deliveries (of `run`, or of any run) until none is left
    /// or `stop` turns true. Batches are claimed ahead, so the SMTP
    /// connections never wait for the database; results are written in
    /// batches as they come.
    pub async fn deliver(
        &self,
        run: Option<RunId>,
        stop: Option<&watch::Receiver<bool>>,
        progress: &(dyn Fn(&Outcome) + Sync),
    ) -> Result<BatchReport, DigestError> {
        let (results, recorder) = self.spawn_recorder();
        // One batch waits while another is sent: claiming it took the
        // database a round trip that the connections need not wait out.
        let (claimed, ready) = mpsc::channel::<Vec<Work>>(1);
        // Claimed but never tried when a stop came: given back at the end.
        let untried = Mutex::new(Vec::new());
        let report = Mutex::new(BatchReport::default());
        let record = |recorded: Recorded| {
            lock(&report).count(&recorded.outcome);
            progress(&recorded.outcome);
            // Only a recorder that stopped refuses; it said why.
            let _ = results.send(recorded);
        };
        let ready =
            one_by_one(ready, stop, &untried).filter_map(|(delivery, rendered, skip, now)| {
                std::future::ready(match self.prepare_one(&delivery, &rendered, skip, now) {
                    Ok(message) => Some((delivery, message)),
                    Err(outcome) => {
                        record(Recorded {
                            run_id: delivery.run_id,
                            subscriber_id: delivery.subscriber_id,
                            outcome,
                        });
                        None
                    }
                })
            });
        let sending =
            self.transport
                .send_all(ready, self.settings.concurrency.max(1), |delivery, sent| {
                    record(self.conclude_one(delivery, sent))
                });
        let (claiming, ()) = tokio::join!(self.claim_all(run, stop, claimed, &untried), sending);
        drop(results);
        let report = report.into_inner().unwrap_or_else(PoisonError::into_inner);
        self.finish(
            untried.into_inner().unwrap_or_else(PoisonError::into_inner),
            recorder,
            &report,
        )
        .await?;
        claiming.map(|()| report)
    }

    /// Writes results a batch per transaction as the SMTP sessions hand
    /// them over. The channel is unbounded, as the sessions hand results over
    /// without waiting; what it holds is bounded by the run (some 100 bytes
    /// a delivery).
    fn spawn_recorder(&self) -> (mpsc::UnboundedSender<Recorded>, tokio::task::JoinHandle<()>) {
        let record_batch = self.settings.record_batch.max(1);
        let (results, mut incoming) = mpsc::unbounded_channel::<Recorded>();
        let pool = self.pool.clone();
        let clock = Arc::clone(&self.clock);
        let suppressions = self.suppressions.clone();
        let recorder = tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(record_batch);
            while incoming.recv_many(&mut buffer, record_batch).await > 0 {
                let batch = std::mem::take(&mut buffer);
                let now = clock.now().naive_utc();
                let suppressions = suppressions.clone();
                let written = db::run(&pool, move |conn| {
                    store::record(conn, &suppressions, &batch, now).map_err(StorageError::from)
                })
                .await;
                if let Err(error) = written {
                    // The leases run out and the deliveries are claimed
                    // again: at worst sent twice, never lost.
                    tracing::error!(error = ?error, "could not record digest results");
                }
            }
        });
        (results, recorder)
    }

    /// Claims batch after batch of each run with deliveries due, until none
    /// is left or a stop comes. Owns the sender: when claiming ends, the
    /// channel closes and the sending side knows nothing more is coming.
    async fn claim_all(
        &self,
        run: Option<RunId>,
        stop: Option<&watch::Receiver<bool>>,
        claimed: mpsc::Sender<Vec<Work>>,
        untried: &Mutex<Vec<Claimed>>,
    ) -> Result<(), DigestError> {
        let runs = match run {
            Some(run) => vec![run],
            None => {
                let now = self.clock.now().naive_utc();
                db::run(&self.pool, move |conn| {
                    store::runs_with_due(conn, now).map_err(StorageError::from)
                })
                .await?
            }
        };
        for run in runs {
            let mut after = None;
            loop {
                if stopped(stop) {
                    return Ok(());
                }
                let work = self.claim_batch(run, after).await?;
                match work.last() {
                    Some(last) => after = Some(last.0.subscriber_id),
                    // The end of the run: once more from its start, for
                    // retries now due and leases run out, then done.
                    None if after.is_some() => {
                        after = None;
                        continue;
                    }
                    None => break,
                }
                if let Err(refused) = claimed.send(work).await {
                    set_aside(untried, refused.0);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Gives back what a stop left untried, waits for the last results to
    /// be written, and logs the tally.
    async fn finish(
        &self,
        untried: Vec<Claimed>,
        recorder: tokio::task::JoinHandle<()>,
        report: &BatchReport,
    ) -> Result<(), DigestError> {
        if !untried.is_empty() {
            self.release(untried).await?;
        }
        if let Err(error) = recorder.await {
            tracing::error!(error = ?error, "digest result recorder stopped");
        }
        if report.claimed > 0 {
            tracing::info!(
                claimed = report.claimed,
                sent = report.sent,
                failed = report.failed,
                skipped = report.skipped,
                retrying = report.retrying,
                "digest deliveries done"
            );
        }
        Ok(())
    }

    async fn release(&self, untried: Vec<Claimed>) -> Result<(), DigestError> {
        let count = untried.len();
        let mut by_run: HashMap<RunId, Vec<SubscriberId>> = HashMap::new();
        for delivery in untried {
            by_run
                .entry(delivery.run_id)
                .or_default()
                .push(delivery.subscriber_id);
        }
        db::run(&self.pool, move |conn| {
            for (run, subscribers) in &by_run {
                store::release(conn, *run, subscribers)?;
            }
            Ok::<_, StorageError>(())
        })
        .await?;
        tracing::info!(count, "stopped; deliveries not yet tried given back");
        Ok(())
    }

    /// Claims a batch and prepares it for sending: the rendered variant of
    /// each delivery, and whether it must be skipped.
    async fn claim_batch(
        &self,
        run: RunId,
        after: Option<SubscriberId>,
    ) -> Result<Vec<Work>, DigestError> {
        let now = self.clock.now();
        let lease_until = now + Duration::seconds(self.settings.lease_secs);
        let limit = self.settings.batch_size;
        let claimed = db::run(&self.pool, move |conn| {
            store::claim(
                conn,
                run,
                after,
                now.naive_utc(),
                lease_until.naive_utc(),
                limit,
            )
            .map_err(StorageError::from)
        })
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Checked again at send time: an unsubscribe after the fan-out holds.
        let hashes: Vec<EmailHash> = claimed
            .iter()
            .map(|c| self.suppressions.hash(&c.email))
            .collect();
        let suppressed: HashSet<EmailHash> = db::run(&self.pool, {
            let hashes = hashes.clone();
            let suppressions = self.suppressions.clone();
            move |conn| {
                suppressions
                    .among(conn, &hashes)
                    .map_err(StorageError::from)
            }
        })
        .await?;
        let mut work = Vec::with_capacity(claimed.len());
        for (delivery, hash) in claimed.into_iter().zip(hashes) {
            let rendered = self.rendered(delivery.run_id, &delivery.variant).await?;
            let skip = delivery.status != SubscriberStatus::Confirmed || suppressed.contains(&hash);
            work.push((delivery, rendered, skip, now));
        }
        Ok(work)
    }

    /// The rendering of one variant of a run, made on first use.
    async fn rendered(&self, run: RunId, variant: &Sections) -> Result<Arc<Rendered>, DigestError> {
        let key = run.to_string();
        let variant_key = variant.to_string();
        if let Some(found) = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .and_then(|cache| cache.variants.get(&variant_key))
        {
            return Ok(Arc::clone(found));
        }
        let loaded = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&key);
        if !loaded {
            let content = self.load_content(run).await?;
            let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
            // Earlier runs are done with; keep the cache small.
            if runs.len() >= 4 {
                runs.clear();
            }
            runs.entry(key.clone()).or_insert(RunCache {
                content,
                variants: HashMap::new(),
            });
        }
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = runs.get_mut(&key).ok_or(DigestError::NotFound)?;
        let digest = cache.content.digest_for(variant).with_slots();
        let (subject, text, html) = self.composer.render(&digest)?;
        let rendered = Arc::new(Rendered {
            subject,
            text: Template::parse(&text),
            html: Template::parse(&html),
        });
        cache.variants.insert(variant_key, Arc::clone(&rendered));
        tracing::debug!(run_id = %run, variant = %variant, "digest variant rendered");
        Ok(rendered)
    }

    async fn load_content(&self, id: RunId) -> Result<Content, DigestError> {
        let (run, rows) = db::run(&self.pool, move |conn| {
            let run: DigestRun = store::run(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
            let rows = store::articles_between(conn, run.since, run.cutoff)?;
            Ok::<_, StorageError>((run, rows))
        })
        .await?;
        let date = run.date().unwrap_or_else(|| run.cutoff.date());
        Ok(Content::new(date, rows, &self.composer))
    }

    /// The digest to send, or the outcome of one that is not sent.
    fn prepare_one(
        &self,
        delivery: &Claimed,
        rendered: &Rendered,
        skip: bool,
        now: DateTime<Utc>,
    ) -> Result<Message, Outcome> {
        if skip {
            tracing::debug!(run_id = %delivery.run_id, subscriber_id = %delivery.subscriber_id, "suppressed or unsubscribed; not sent");
            return Err(Outcome::Skipped);
        }
        self.build(delivery, rendered, now).map_err(|error| {
            tracing::warn!(run_id = %delivery.run_id, subscriber_id = %delivery.subscriber_id, %error, "digest cannot be built; not retrying");
            Outcome::Failed {
                error,
                bounce: None,
            }
        })
    }

    /// What became of a digest handed to the SMTP server.
    fn conclude_one(&self, delivery: Claimed, sent: Result<(), SendError>) -> Recorded {
        let failure = match sent {
            Ok(()) => {
                return Recorded {
                    run_id: delivery.run_id,
                    subscriber_id: delivery.subscriber_id,
                    outcome: Outcome::Sent,
                }
            }
            Err(failure) => failure,
        };
        let policy = RetryPolicy::from(&self.settings);
        let outcome = match policy.judge(failure, delivery.attempts, self.clock.now()) {
            Verdict::Refused(error) => {
                tracing::warn!(run_id = %delivery.run_id, subscriber_id = %delivery.subscriber_id, to_domain = delivery.email.domain(), %error, "digest refused for good; address suppressed");
                Outcome::Failed {
                    error,
                    bounce: Some(delivery.email.clone()),
                }
            }
            Verdict::GaveUp(error) => {
                tracing::error!(run_id = %delivery.run_id, subscriber_id = %delivery.subscriber_id, to_domain = delivery.email.domain(), %error, "digest still undeliverable after the last attempt");
                Outcome::Failed {
                    error,
                    bounce: None,
                }
            }
            Verdict::RetryAt(at, error) => {
                tracing::warn!(run_id = %delivery.run_id, subscriber_id = %delivery.subscriber_id, to_domain = delivery.email.domain(), %error, retry_at = %at, "digest delivery failed; will retry");
                Outcome::RetryAt {
                    at: at.naive_utc(),
                    error,
                }
            }
        };
        Recorded {
            run_id: delivery.run_id,
            subscriber_id: delivery.subscriber_id,
            outcome,
        }
    }

    fn build(
        &self,
        delivery: &Claimed,
        rendered: &Rendered,
        now: DateTime<Utc>,
    ) -> Result<Message, String> {
        let token = self.links.manage_token(
            delivery.subscriber_id,
            now + Duration::days(self.newsletter.link_ttl_days),
        );
        let preferences = self
            .composer
            .link(&format!("/newsletter/preferences?token={token}"));
        let unsubscribe = self.composer.link(&format!("/unsubscribe/{token}"));
        let greeting = greeting(delivery.name.as_deref());
        let personal = Personal {
            greeting: &greeting,
            preferences: &preferences,
            unsubscribe: &unsubscribe,
        };
        let (envelope, to) = self.envelope(delivery)?;
        let builder = Message::builder()
            .envelope(envelope)
            .from(self.composer.newsletter_from().clone())
            .to(to)
            .subject(rendered.subject.clone())
            .date(now.into())
            // The same for every attempt, so a receiver can drop a duplicate.
            .message_id(Some(format!(
                "<digest.{}.{}@{}>",
                delivery.run_id, delivery.subscriber_id, self.sender_domain
            )));
        let mut message = self
            .with_list_headers(builder, &unsubscribe, &token)
            .multipart(
                MultiPart::alternative()
                    .singlepart(encoded_part(
                        ContentType::TEXT_PLAIN,
                        rendered.text.fill(&personal, false),
                    ))
                    .singlepart(encoded_part(
                        ContentType::TEXT_HTML,
                        rendered.html.fill(&personal, true),
                    )),
            )
            .map_err(|e| format!("building the message: {e}"))?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        Ok(message)
    }

    /// The envelope, its return path naming this delivery, and the recipient.
    fn envelope(&self, delivery: &Claimed) -> Result<(Envelope, Mailbox), String> {
        let to: Mailbox = delivery
            .email
            .as_str()
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?;
        let sent = SentMessage::digest(delivery.run_id.as_uuid(), delivery.subscriber_id.as_uuid());
        let return_path = self
            .return_paths
            .address(&sent, &self.sender_domain)
            .ok_or("mail.bounce_domain is not a domain")?;
        let envelope = Envelope::new(Some(return_path), vec![to.email.clone()])
            .map_err(|e| format!("envelope: {e}"))?;
        Ok((envelope, to))
    }

    /// RFC 2919's List-Id and RFC 8058's one-click unsubscribe, with the
    /// `mailto:` some mailbox providers use instead.
    fn with_list_headers(
        &self,
        builder: lettre::message::MessageBuilder,
        unsubscribe: &str,
        token: &str,
    ) -> lettre::message::MessageBuilder {
        builder
            .raw_header(unfolded(
                HeaderName::new_from_ascii_str("List-Id"),
                self.newsletter.list_id.clone(),
            ))
            .raw_header(unfolded(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!(
                    "<{unsubscribe}>, <mailto:{}?subject=unsubscribe%20{token}>",
                    self.newsletter.unsubscribe_mailto
                ),
            ))
            .raw_header(unfolded(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ))
    }
}
