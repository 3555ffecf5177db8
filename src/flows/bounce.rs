//! Bounces and complaints that come back as mail (`masthead mail ingest`):
//! who they are about, found through the outbox or the digest that sent to
//! them, and what the bounce policy and the newsletter make of them.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::newsletter::{tx as newsletter, SubscriberId};
use crate::platform::clock::SharedClock;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::EmailAddress;
use crate::platform::mail::inbound::{self, Inbound, RecipientStatus, Severity};
use crate::platform::mail::store;
use crate::platform::mail::suppression::{BounceKind, Entry, SuppressionList};
use crate::platform::mail::verp::{ReturnPaths, SentMessage};

/// What one ingested message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Bounces or a complaint, each about one address.
    Reported(Vec<Event>),
    /// Not a bounce or complaint we can attribute; why.
    Ignored(String),
}

/// One address's bounce or complaint, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: BounceKind,
    /// Only the domain: the CLI's output ends up in the mail system's logs.
    pub domain: String,
    /// Found through a VERP return path, rather than the report's say-so.
    pub attributed: bool,
    pub suppressed: bool,
}

/// A report reduced to who it is about and how bad it is.
struct Finding {
    email: EmailAddress,
    kind: BounceKind,
    attributed: bool,
    detail: String,
}

pub struct Ingester {
    pool: Pool,
    clock: SharedClock,
    return_paths: Arc<ReturnPaths>,
    suppressions: SuppressionList,
}

impl Ingester {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        return_paths: Arc<ReturnPaths>,
        suppressions: SuppressionList,
    ) -> Self {
        Self {
            pool,
            clock,
            return_paths,
            suppressions,
        }
    }

    /// Reads one message and applies the bounce policy to what it reports.
    /// `envelope_recipient` is the address the message was delivered to,
    /// when the mail system passes it (Postfix's `${recipient}`).
    #[tracing::instrument(skip_all)]
    pub async fn ingest(
        &self,
        raw: Vec<u8>,
        envelope_recipient: Option<String>,
    ) -> Result<Ingested, StorageError> {
        let report = inbound::read(&raw);
        let now = self.clock.now().naive_utc();
        let return_paths = Arc::clone(&self.return_paths);
        let suppressions = self.suppressions.clone();
        let ingested = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let findings = match find(conn, &return_paths, report, envelope_recipient)? {
                    Ok(findings) => findings,
                    Err(why) => return Ok(Ingested::Ignored(why)),
                };
                record(conn, &suppressions, findings, now).map(Ingested::Reported)
            })
        })
        .await?;
        match &ingested {
            Ingested::Ignored(why) => tracing::info!(why = %why, "inbound mail ignored"),
            Ingested::Reported(events) => {
                for event in events {
                    tracing::info!(kind = ?event.kind, email_domain = %event.domain, attributed = event.attributed, suppressed = event.suppressed, "bounce or complaint recorded");
                }
            }
        }
        Ok(ingested)
    }
}

/// Who a report is about: the recipient of the message its VERP return
/// path names, when it has one; otherwise the addresses it gives.
fn find(
    conn: &mut DbConnection,
    return_paths: &ReturnPaths,
    report: Inbound,
    envelope_recipient: Option<String>,
) -> Result<Result<Vec<Finding>, String>, StorageError> {
    let (candidates, reporter) = match &report {
        Inbound::Ignored(why) => return Ok(Err(why.clone())),
        Inbound::Bounce {
            return_paths: candidates,
            reporting_mta,
            ..
        }
        | Inbound::Complaint {
            return_paths: candidates,
            reporting_mta,
            ..
        } => (candidates, reporting_mta.as_deref().unwrap_or("unknown")),
    };
    let sent = envelope_recipient
        .iter()
        .chain(candidates)
        .find_map(|address| return_paths.parse(address));
    let attributed = match sent {
        Some(sent) => recipient_of(conn, &sent)?.map(|email| (email, sent)),
        None => None,
    };
    let findings = match &report {
        Inbound::Ignored(_) => Vec::new(),
        Inbound::Bounce { recipients, .. } => bounce_findings(recipients, reporter, attributed),
        Inbound::Complaint {
            recipients,
            feedback_type,
            ..
        } => complaint_findings(recipients, feedback_type, reporter, attributed),
    };
    if findings.is_empty() {
        return Ok(Err(
            "a report naming no address and no message of ours".to_owned()
        ));
    }
    Ok(Ok(findings))
}

fn complaint_findings(
    recipients: &[String],
    feedback_type: &str,
    reporter: &str,
    attributed: Option<(EmailAddress, SentMessage)>,
) -> Vec<Finding> {
    let detail = |about: &str| format!("{feedback_type} report from {reporter}{about}");
    match attributed {
        Some((email, sent)) => vec![Finding {
            email,
            kind: BounceKind::Complaint,
            attributed: true,
            detail: detail(&format!(" about {}", sent.describe())),
        }],
        None => recipients
            .iter()
            .filter_map(|a| EmailAddress::parse(a).ok())
            .map(|email| Finding {
                email,
                kind: BounceKind::Complaint,
                attributed: false,
                detail: detail(""),
            })
            .collect(),
    }
}

fn bounce_findings(
    recipients: &[RecipientStatus],
    reporter: &str,
    attributed: Option<(EmailAddress, SentMessage)>,
) -> Vec<Finding> {
    let kind = |status: &RecipientStatus| match status.severity {
        Severity::Permanent => BounceKind::HardBounce,
        Severity::Transient => BounceKind::SoftBounce,
    };
    let detail = |status: &RecipientStatus, about: &str| {
        let diagnostic = status
            .diagnostic
            .as_deref()
            .map(|d| format!(" ({})", d.chars().take(300).collect::<String>()))
            .unwrap_or_default();
        format!("DSN from {reporter}: {}{diagnostic}{about}", status.status)
    };
    match attributed {
        // The message went to one address: the worst of the statuses.
        Some((email, sent)) => recipients
            .iter()
            .max_by_key(|s| s.severity == Severity::Permanent)
            .map(|status| Finding {
                email,
                kind: kind(status),
                attributed: true,
                detail: detail(status, &format!(", about {}", sent.describe())),
            })
            .into_iter()
            .collect(),
        None => recipients
            .iter()
            .filter_map(|status| {
                let email = EmailAddress::parse(status.address.as_deref()?).ok()?;
                Some(Finding {
                    email,
                    kind: kind(status),
                    attributed: false,
                    detail: detail(status, ""),
                })
            })
            .collect(),
    }
}

/// The recipient of a message we sent, while we still know it.
fn recipient_of(
    conn: &mut DbConnection,
    sent: &SentMessage,
) -> Result<Option<EmailAddress>, StorageError> {
    Ok(match sent {
        SentMessage::Outbox(id) => store::recipient(conn, *id)?,
        SentMessage::Digest { subscriber, .. } => {
            newsletter::subscriber_email(conn, SubscriberId::from_uuid(*subscriber))?
        }
    })
}

fn record(
    conn: &mut DbConnection,
    suppressions: &SuppressionList,
    findings: Vec<Finding>,
    now: NaiveDateTime,
) -> Result<Vec<Event>, StorageError> {
    findings
        .into_iter()
        .map(|finding| {
            let report = Entry::Report {
                kind: finding.kind,
                detail: Some(&finding.detail),
            };
            let suppressed =
                newsletter::record_report(conn, suppressions, &finding.email, report, now)?;
            Ok(Event {
                kind: finding.kind,
                domain: finding.email.domain().to_owned(),
                attributed: finding.attributed,
                suppressed,
            })
        })
        .collect()
}
