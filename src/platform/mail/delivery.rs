//! Delivers what the outbox holds, with retries and exponential back-off.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use futures_util::StreamExt;
use lettre::address::Envelope;
use lettre::message::header::HeaderName;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use tokio::sync::{mpsc, watch};

use super::compose::{unfolded, Stream};
use super::dkim::DkimSigner;
use super::model::{OutboxId, OutboxMessage};
use super::retry::{RetryPolicy, Verdict};
use super::store::{self, Outcome, Recorded};
use super::suppression::{BounceKind, EmailHash, Entry, SuppressionList, Whom};
use super::transport::{SendError, Transport};
use super::verp::{ReturnPaths, SentMessage};
use crate::platform::clock::SharedClock;
use crate::platform::config::WorkerSettings;
use crate::platform::db::{self, Pool, StorageError};
use crate::platform::domain::EmailAddress;

/// What became of one message, to be recorded with the rest of its batch.
struct Attempt {
    id: OutboxId,
    at: DateTime<Utc>,
    outcome: Outcome,
    bounced: Option<(EmailAddress, String)>,
}

/// How long a worker woken by `store::enqueued` waits for the enqueuing
/// transaction to commit;
/// it also gathers a burst of sign-ups into one claim.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// The messages claimed and not yet recorded, with the end of each one's
/// lease.
type Unrecorded = Mutex<HashMap<OutboxId, NaiveDateTime>>;

/// A claimed message, and whether its recipient was suppressed when it
/// was claimed.
struct Claimed {
    message: OutboxMessage,
    suppressed: bool,
}

/// Why a message was not handed over.
enum Refusal {
    Suppressed,
    Unbuildable(String),
    Send(SendError),
}

pub struct Deliverer {
    pool: Pool,
    transport: Arc<Transport>,
    clock: SharedClock,
    settings: WorkerSettings,
    reply_to: Option<Mailbox>,
    suppressions: SuppressionList,
    dkim: Option<Arc<DkimSigner>>,
    return_paths: Arc<ReturnPaths>,
}

/// How the outbox's messages leave: who replies, and how they are signed
/// and given a return path.
pub struct Signing {
    pub reply_to: Option<Mailbox>,
    pub dkim: Option<Arc<DkimSigner>>,
    pub return_paths: Arc<ReturnPaths>,
}

impl Deliverer {
    pub fn new(
        pool: Pool,
        transport: Arc<Transport>,
        clock: SharedClock,
        settings: WorkerSettings,
        signing: Signing,
        suppressions: SuppressionList,
    ) -> Self {
        Self {
            pool,
            transport,
            clock,
            settings,
            reply_to: signing.reply_to,
            suppressions,
            dkim: signing.dkim,
            return_paths: signing.return_paths,
        }
    }

    /// Sends due messages until none is left or `stop` turns true; returns
    /// how many were attempted. Claiming, sending and recording go on side
    /// by side, each at its own pace: the claim keeps about a batch waiting
    /// for a free SMTP session, and each record writes, in one transaction,
    /// the outcomes that came in while the one before was written. (In step,
    /// batch by batch, each batch waited for the slowest of the three.) The
    /// claim passes over the messages claimed and not yet recorded, also
    /// once their leases have run out. A crash leaves those sent but
    /// unrecorded (about two batches at most); their leases run out and they
    /// are sent again, never lost.
    pub async fn drain(&self, stop: &watch::Receiver<bool>) -> Result<usize, StorageError> {
        let unrecorded = Mutex::new(HashMap::new());
        let batch = usize::try_from(self.settings.batch_size)
            .unwrap_or(1)
            .max(1);
        let (to_send, claimed) = mpsc::channel(batch);
        let (to_record, attempts) = mpsc::unbounded_channel();
        let (claiming, (), ()) = tokio::join!(
            self.keep_claiming(stop, &unrecorded, to_send),
            self.send_each(claimed, to_record),
            self.keep_recording(attempts, batch, &unrecorded),
        );
        claiming
    }

    /// Claims batch after batch for `send_each`, two claims at a time,
    /// until none is due or `stop` turns true. One claim at a time held the
    /// drain to it: on PostgreSQL a claim of 200 took 8-22 ms beside the
    /// sending, against 13-15 ms to send them, and the sessions waited.
    async fn keep_claiming(
        &self,
        stop: &watch::Receiver<bool>,
        unrecorded: &Unrecorded,
        to_send: mpsc::Sender<Claimed>,
    ) -> Result<usize, StorageError> {
        let (one, other) = tokio::join!(
            self.claim_in_turn(stop, unrecorded, to_send.clone()),
            self.claim_in_turn(stop, unrecorded, to_send),
        );
        Ok(one? + other?)
    }

    /// One of `keep_claiming`'s claims: the next batch once `send_each`
    /// has taken this one in.
    async fn claim_in_turn(
        &self,
        stop: &watch::Receiver<bool>,
        unrecorded: &Unrecorded,
        to_send: mpsc::Sender<Claimed>,
    ) -> Result<usize, StorageError> {
        let mut attempted = 0;
        while !*stop.borrow() {
            let batch = self.claim(unrecorded).await?;
            if batch.is_empty() {
                break;
            }
            attempted += batch.len();
            lock(unrecorded).extend(
                batch
                    .iter()
                    .map(|c| (c.message.id, c.message.next_attempt_at)),
            );
            for message in batch {
                to_send
                    .send(message)
                    .await
                    .expect("send_each takes messages until their sender is dropped");
            }
        }
        Ok(attempted)
    }

    /// Sends what is claimed on up to `worker.concurrency` sessions, and
    /// hands each outcome on to be recorded.
    async fn send_each(
        &self,
        mut claimed: mpsc::Receiver<Claimed>,
        to_record: mpsc::UnboundedSender<Attempt>,
    ) {
        let record = |message: OutboxMessage, result| {
            to_record
                .send(self.conclude(&message, result))
                .expect("keep_recording takes outcomes until their sender is dropped");
        };
        let ready =
            futures_util::stream::poll_fn(|cx| claimed.poll_recv(cx)).filter_map(|claimed| {
                std::future::ready(match self.prepare(&claimed) {
                    Ok(email) => Some((claimed.message, email)),
                    Err(refusal) => {
                        record(claimed.message, Err(refusal));
                        None
                    }
                })
            });
        self.transport
            .send_all(
                std::pin::pin!(ready),
                self.settings.concurrency.max(1),
                |message, sent| record(message, sent.map_err(Refusal::Send)),
            )
            .await;
    }

    /// Records outcomes a quarter of a batch or more at a time (all that
    /// came in, up to a batch), and what is left once the sending is done.
    /// Recording each outcome as it came meant a transaction for every one
    /// or two messages at the start of a drain, each taking the database
    /// from the claims.
    async fn keep_recording(
        &self,
        mut attempts: mpsc::UnboundedReceiver<Attempt>,
        batch: usize,
        unrecorded: &Unrecorded,
    ) {
        let enough = (batch / 4).max(1);
        let mut outcomes = Vec::with_capacity(batch);
        loop {
            let mut done = false;
            while outcomes.len() < enough && !done {
                let room = batch - outcomes.len();
                done = attempts.recv_many(&mut outcomes, room).await == 0;
            }
            if outcomes.is_empty() {
                return;
            }
            let recorded: Vec<OutboxId> = outcomes.iter().map(|a| a.id).collect();
            self.record(std::mem::take(&mut outcomes)).await;
            let mut unrecorded = lock(unrecorded);
            for id in &recorded {
                unrecorded.remove(id);
            }
        }
    }

    /// Claims the next batch and looks up, in the same visit to the
    /// database, which of its newsletter recipients are suppressed: newsletter
    /// mail is checked when it goes out, so an unsubscribe between queueing
    /// and sending holds.
    ///
    /// Of the unrecorded messages, only those whose leases have run out are
    /// named to be passed over: the others are not due. Naming all of them
    /// (some 400 while a burst drains) made each claim a statement of
    /// hundreds of parameters for SQLite to compile and index.
    async fn claim(&self, unrecorded: &Unrecorded) -> Result<Vec<Claimed>, StorageError> {
        let now = self.clock.now();
        let due_again = now.naive_utc();
        let in_flight: Vec<OutboxId> = lock(unrecorded)
            .iter()
            .filter(|(_, lease_ends)| **lease_ends <= due_again)
            .map(|(id, _)| *id)
            .collect();
        let lease_until = now + Duration::seconds(self.settings.lease_secs);
        let limit = self.settings.batch_size;
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            let lease = store::Lease {
                now: now.naive_utc(),
                until: lease_until.naive_utc(),
            };
            let messages = store::claim_due(conn, lease, limit, &in_flight)?;
            let hash = |m: &OutboxMessage| {
                (m.stream == Stream::Newsletter).then(|| suppressions.hash(&m.to_address))
            };
            let hashes: Vec<EmailHash> = messages.iter().filter_map(hash).collect();
            let suppressed = if hashes.is_empty() {
                HashSet::new()
            } else {
                suppressions.among(conn, &hashes)?
            };
            Ok(messages
                .into_iter()
                .map(|message| Claimed {
                    suppressed: hash(&message).is_some_and(|h| suppressed.contains(&h)),
                    message,
                })
                .collect())
        })
        .await
    }

    /// The message to send, or why it is not sent.
    fn prepare(&self, claimed: &Claimed) -> Result<Message, Refusal> {
        if claimed.suppressed {
            return Err(Refusal::Suppressed);
        }
        self.build(&claimed.message).map_err(Refusal::Unbuildable)
    }

    /// What became of one message, as it is to be recorded.
    #[tracing::instrument(skip_all, fields(outbox_id = %message.id, template = %message.template, to_domain = %message.to_address.domain(), attempt = message.attempts))]
    fn conclude(&self, message: &OutboxMessage, result: Result<(), Refusal>) -> Attempt {
        let now = self.clock.now();
        let mut bounced = None;
        let outcome = match result {
            Ok(()) => {
                tracing::info!("mail delivered");
                Outcome::Sent
            }
            Err(Refusal::Suppressed) => {
                tracing::info!("recipient is suppressed; not sent");
                Outcome::Failed {
                    error: "the recipient is on the suppression list".into(),
                    transient: false,
                }
            }
            Err(Refusal::Unbuildable(error)) => {
                tracing::warn!(%error, "mail cannot be built; not retrying");
                Outcome::Failed {
                    error,
                    transient: false,
                }
            }
            Err(Refusal::Send(failed)) => {
                match RetryPolicy::from(&self.settings).judge(failed, message.attempts, now) {
                    Verdict::Refused(error) => {
                        tracing::warn!(%error, "mail refused for good; not retrying");
                        bounced = Some((message.to_address.clone(), error.clone()));
                        Outcome::Failed {
                            error,
                            transient: false,
                        }
                    }
                    Verdict::GaveUp(error) => {
                        tracing::error!(%error, "mail still undeliverable after the last attempt");
                        Outcome::Failed {
                            error,
                            transient: true,
                        }
                    }
                    Verdict::RetryAt(at, error) => {
                        tracing::warn!(%error, retry_at = %at, "mail delivery failed; will retry");
                        Outcome::RetryAt {
                            at: at.naive_utc(),
                            error,
                        }
                    }
                }
            }
        };
        Attempt {
            id: message.id,
            at: now,
            outcome,
            bounced,
        }
    }

    async fn record(&self, attempts: Vec<Attempt>) {
        if attempts.is_empty() {
            return;
        }
        let suppressions = self.suppressions.clone();
        let recorded = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let recorded: Vec<Recorded> = attempts
                    .iter()
                    .map(|attempt| Recorded {
                        id: attempt.id,
                        at: attempt.at.naive_utc(),
                        outcome: &attempt.outcome,
                    })
                    .collect();
                store::record_outcomes(conn, &recorded)?;
                for attempt in &attempts {
                    if let Some((address, detail)) = &attempt.bounced {
                        // A permanent refusal is a hard bounce: no newsletter
                        // goes to the address again until an admin lifts it.
                        let report = Entry::Report {
                            kind: BounceKind::HardBounce,
                            detail: Some(detail),
                        };
                        let at = attempt.at.naive_utc();
                        suppressions.add(conn, Whom::Address(address), report, at)?;
                    }
                }
                Ok::<_, StorageError>(())
            })
        })
        .await;
        if let Err(error) = recorded {
            // The leases run out and the messages are claimed again: at
            // worst they are sent twice, never lost.
            tracing::error!(error = ?error, "could not record the delivery outcomes");
        }
    }

    fn build(&self, message: &OutboxMessage) -> Result<Message, String> {
        let from: Mailbox = message
            .from_address
            .parse()
            .map_err(|e| format!("sender address: {e}"))?;
        let to: Mailbox = message
            .to_address
            .as_str()
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?;
        let sender_domain = from.email.domain().to_owned();
        let return_path = self
            .return_paths
            .address(&SentMessage::Outbox(message.id), &sender_domain)
            .ok_or("mail.bounce_domain is not a domain")?;
        let envelope = Envelope::new(Some(return_path), vec![to.email.clone()])
            .map_err(|e| format!("envelope: {e}"))?;
        let mut builder = Message::builder()
            .envelope(envelope)
            .from(from)
            .to(to)
            .subject(message.subject.clone())
            // Stable across retries, so a receiver can drop a duplicate.
            .message_id(Some(format!("<{}@{}>", message.id, sender_domain)));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let headers: BTreeMap<String, String> =
            serde_json::from_str(&message.headers).map_err(|e| format!("stored headers: {e}"))?;
        for (name, value) in headers {
            let name =
                HeaderName::new_from_ascii(name).map_err(|e| format!("stored header name: {e}"))?;
            builder = builder.raw_header(unfolded(name, value));
        }
        let mut email = builder
            .multipart(MultiPart::alternative_plain_html(
                message.text_body.clone(),
                message.html_body.clone(),
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut email);
        }
        Ok(email)
    }
}

/// The map's lock, also after a panic elsewhere: it holds only ids and times.
fn lock(unrecorded: &Unrecorded) -> MutexGuard<'_, HashMap<OutboxId, NaiveDateTime>> {
    unrecorded.lock().unwrap_or_else(PoisonError::into_inner)
}
