//! Trial requests, the approval queue, decisions and their emails.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::emails::{
    AdminTrialSummary, OverdueItem, TrialApproved, TrialEnded, TrialReceived, TrialRejected,
    TrialReminder,
};
use super::flags;
use super::model::{
    Decision, DecisionAction, DecisionId, NewDecision, NewTrialRequest, RiskFlag, TrialId,
    TrialRequest, TrialStatus,
};
use super::store::{self, Outcome};
use crate::access::model::{EntitlementId, EntitlementKind, NewEntitlement};
use crate::access::{self, Level, Reason};
use crate::accounts::service::require;
use crate::accounts::{Account, AccountError, Role};
use crate::clock::SharedClock;
use crate::config::TrialSettings;
use crate::db::{self, DbConnection, Pool, StorageError};
use crate::domain::{optional_text, FieldError, Fields, PlainText};
use crate::mail::compose::ComposeError;
use crate::mail::{store as outbox, Composer};

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("verify your email address before asking for a trial")]
    NotVerified,
    #[error("a trial request is already waiting for a decision")]
    Pending,
    #[error("this account has already had its trial")]
    AlreadyUsed,
    #[error("this account already has full access")]
    HasAccess(Reason),
    #[error("your company's subscription has a free seat")]
    CompanyAccess,
    #[error("no such trial request")]
    NotFound,
    #[error("this request has already been decided")]
    AlreadyDecided,
    #[error("this request has no decision to undo")]
    NothingToUndo,
    #[error("the decision can no longer be undone")]
    UndoExpired,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("composing an email")]
    Compose(#[from] ComposeError),
}

impl From<DieselError> for TrialError {
    fn from(error: DieselError) -> Self {
        match error {
            // The one-live-request-per-account index: a request raced ours.
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Pending,
            other => Self::Storage(StorageError::Query(other)),
        }
    }
}

/// A request as the reader submits it.
pub struct Application {
    pub company: String,
    pub job_title: String,
    pub reason: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

/// The queue as an admin sees it.
pub struct Queue {
    pub items: Vec<(TrialRequest, Account)>,
    pub counts: Counts,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Counts {
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
    pub overdue: i64,
}

#[derive(Clone)]
pub struct TrialService {
    pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    settings: TrialSettings,
}

impl TrialService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        settings: TrialSettings,
    ) -> Self {
        Self {
            pool,
            clock,
            composer,
            settings,
        }
    }

    #[tracing::instrument(skip_all, fields(account_id = %reader.id))]
    pub async fn request(
        &self,
        reader: &Account,
        application: Application,
    ) -> Result<TrialRequest, TrialError> {
        let mut fields = Fields::default();
        let company = fields.take("company", PlainText::parse(&application.company, 200));
        let job_title = fields.take("job_title", PlainText::parse(&application.job_title, 200));
        let reason = fields.take("reason", optional_text(application.reason.as_deref(), 2000));
        let (Some(company), Some(job_title), Some(reason)) = (company, job_title, reason) else {
            return Err(TrialError::Invalid(
                fields.finish().err().unwrap_or_default(),
            ));
        };
        if reader.email_verified_at.is_none() {
            return Err(TrialError::NotVerified);
        }
        let reader = reader.clone();
        let now = self.clock.now();
        let settings = self.settings.clone();
        let composer = Arc::clone(&self.composer);
        let trial = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let earlier = store::of_account(conn, reader.id)?;
                if earlier.iter().any(|t| t.status == TrialStatus::Pending) {
                    return Err(TrialError::Pending);
                }
                if earlier.iter().any(|t| t.status == TrialStatus::Approved) {
                    return Err(TrialError::AlreadyUsed);
                }
                let access = access::decide(conn, Some(&reader), now)?;
                if access.level == Level::Full {
                    return Err(TrialError::HasAccess(access.reason));
                }
                if company_has_free_seat(conn, reader.email.domain())? {
                    return Err(TrialError::CompanyAccess);
                }
                let domain = reader.email.domain().to_owned();
                let since = (now - Duration::days(settings.lookback_days)).naive_utc();
                let mut flags = flags::of_address(&domain, company.as_str());
                let same_domain = if flags::is_free_mail(&domain) {
                    0
                } else {
                    store::count_same_domain_since(conn, &domain, reader.id, since)?
                };
                if same_domain
                    + store::count_same_company_since(conn, company.as_str(), reader.id, since)?
                    > 0
                {
                    flags.push(RiskFlag::SameCompanyRecently);
                }
                if reader.created_at
                    > (now - Duration::minutes(settings.new_account_minutes)).naive_utc()
                {
                    flags.push(RiskFlag::NewAccount);
                }
                if let Some(ip) = &application.client_ip {
                    if store::count_same_ip_since(conn, ip, reader.id, since)? > 0 {
                        flags.push(RiskFlag::SameIpRecently);
                    }
                }
                if earlier.iter().any(|t| t.status == TrialStatus::Rejected) {
                    flags.push(RiskFlag::PreviouslyRejected);
                }
                let flags_json = serde_json::to_string(&flags).unwrap_or_else(|_| "[]".into());
                let id = TrialId::new();
                let due_by = now + Duration::hours(settings.decision_hours);
                store::insert(
                    conn,
                    &NewTrialRequest {
                        id,
                        account_id: reader.id,
                        company: company.as_str(),
                        job_title: job_title.as_str(),
                        reason: reason.as_ref().map(PlainText::as_str),
                        email_domain: &domain,
                        client_ip: application.client_ip.as_deref(),
                        status: TrialStatus::Pending,
                        flags: &flags_json,
                        requested_at: now.naive_utc(),
                        decision_due_by: due_by.naive_utc(),
                    },
                )?;
                let email = composer.compose(
                    &reader.email,
                    &TrialReceived {
                        name: reader.name.clone(),
                        company: company.to_string(),
                        due_by: local(&settings, due_by, "%-d %B %Y at %H:%M %Z"),
                        newsletter_link: composer.link("/newsletter"),
                    },
                )?;
                outbox::enqueue(
                    conn,
                    &format!("trial:{id}:received"),
                    &email,
                    now.naive_utc(),
                )?;
                tracing::info!(trial_id = %id, flags = ?flags, "trial requested");
                store::find(conn, id)?.ok_or(TrialError::NotFound)
            })
        })
        .await?;
        Ok(trial)
    }

    /// The reader's latest request, if any.
    pub async fn mine(&self, reader: &Account) -> Result<Option<TrialRequest>, TrialError> {
        let id = reader.id;
        db::run(&self.pool, move |conn| {
            Ok(store::of_account(conn, id)?.into_iter().next())
        })
        .await
    }

    /// Requests in the given states (pending when none), oldest first, with
    /// counts by state.
    pub async fn queue(
        &self,
        admin: &Account,
        statuses: Vec<TrialStatus>,
        flag: Option<RiskFlag>,
    ) -> Result<Queue, TrialError> {
        require(admin, Role::Admin)?;
        let now = self.clock.now().naive_utc();
        let statuses = if statuses.is_empty() {
            vec![TrialStatus::Pending]
        } else {
            statuses
        };
        db::run(&self.pool, move |conn| {
            let mut items = store::queue(conn, &statuses)?;
            if let Some(flag) = flag {
                items.retain(|(trial, _)| trial.flags().contains(&flag));
            }
            // Pending first: they are the ones waiting on someone.
            items.sort_by_key(|(trial, _)| trial.status != TrialStatus::Pending);
            let mut counts = Counts::default();
            for (status, n) in store::count_by_status(conn)? {
                match status {
                    TrialStatus::Pending => counts.pending = n,
                    TrialStatus::Approved => counts.approved = n,
                    TrialStatus::Rejected => counts.rejected = n,
                }
            }
            counts.overdue = store::count_overdue(conn, now)?;
            Ok(Queue { items, counts })
        })
        .await
    }

    /// One request and the account that made it, as an admin sees it.
    pub async fn with_applicant(
        &self,
        admin: &Account,
        id: TrialId,
    ) -> Result<(TrialRequest, Account), TrialError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            store::find_with_account(conn, id)?.ok_or(TrialError::NotFound)
        })
        .await
    }

    pub async fn history(
        &self,
        admin: &Account,
        id: TrialId,
    ) -> Result<(TrialRequest, Vec<Decision>), TrialError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
            Ok((trial, store::decisions_of(conn, id)?))
        })
        .await
    }

    /// Approves (the trial starts now) or rejects a pending request. Its
    /// email waits out the undo period; a second decision gets
    /// `AlreadyDecided`.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, trial_id = %id, verdict = ?verdict))]
    pub async fn decide(
        &self,
        admin: &Account,
        id: TrialId,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<TrialRequest, TrialError> {
        require(admin, Role::Admin)?;
        let limit = if verdict == Verdict::Reject {
            1000
        } else {
            2000
        };
        let note = optional_text(note.as_deref(), limit)
            .map_err(|e| TrialError::Invalid(vec![e.on(note_field(verdict))]))?;
        if verdict == Verdict::Reject && note.is_none() {
            return Err(TrialError::Invalid(vec![crate::domain::Invalid::new(
                "required",
                "say why, in words the reader will see",
            )
            .on("reason")]));
        }
        let admin_id = admin.id;
        let now = self.clock.now();
        let settings = self.settings.clone();
        let composer = Arc::clone(&self.composer);
        let decided = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
                let reader = crate::accounts::store::find(conn, trial.account_id)?
                    .ok_or(TrialError::NotFound)?;
                let decision = DecisionId::new();
                let note_text = note.as_ref().map(PlainText::as_str);
                let emails_from = (now + Duration::minutes(settings.undo_minutes)).naive_utc();
                let key = |what: &str| format!("trial:{id}:{decision}:{what}");
                match verdict {
                    Verdict::Approve => {
                        let ends = now + Duration::days(settings.length_days);
                        let entitlement = EntitlementId::new();
                        access::store::insert(
                            conn,
                            &NewEntitlement {
                                id: entitlement,
                                account_id: reader.id,
                                kind: EntitlementKind::Trial,
                                starts_at: now.naive_utc(),
                                ends_at: Some(ends.naive_utc()),
                                source_id: Some(&id.to_string()),
                                granted_by: Some(admin_id),
                                note: note_text,
                                created_at: now.naive_utc(),
                            },
                        )?;
                        let outcome = Outcome {
                            status: TrialStatus::Approved,
                            admin: admin_id,
                            note: note_text,
                            decision,
                            entitlement: Some(entitlement),
                        };
                        if !store::decide(conn, id, &outcome, now.naive_utc())? {
                            return Err(TrialError::AlreadyDecided);
                        }
                        let ends_on = local(&settings, ends, "%-d %B %Y");
                        let approved = composer.compose(
                            &reader.email,
                            &TrialApproved {
                                name: reader.name.clone(),
                                ends_on: ends_on.clone(),
                                read_link: composer.link("/"),
                            },
                        )?;
                        outbox::enqueue_at(
                            conn,
                            &key("approved"),
                            &approved,
                            now.naive_utc(),
                            emails_from,
                        )?;
                        let reminder = composer.compose(
                            &reader.email,
                            &TrialReminder {
                                name: reader.name.clone(),
                                ends_on,
                                days_left: settings.reminder_days_before,
                                company_access_link: composer.link("/company-access"),
                                contact_sales_link: composer.link("/contact-sales"),
                            },
                        )?;
                        let remind_at =
                            (ends - Duration::days(settings.reminder_days_before)).naive_utc();
                        outbox::enqueue_at(
                            conn,
                            &key("reminder"),
                            &reminder,
                            now.naive_utc(),
                            remind_at,
                        )?;
                        let ended = composer.compose(
                            &reader.email,
                            &TrialEnded {
                                name: reader.name.clone(),
                                company_access_link: composer.link("/company-access"),
                                contact_sales_link: composer.link("/contact-sales"),
                                newsletter_link: composer.link("/newsletter"),
                            },
                        )?;
                        outbox::enqueue_at(
                            conn,
                            &key("ended"),
                            &ended,
                            now.naive_utc(),
                            ends.naive_utc(),
                        )?;
                    }
                    Verdict::Reject => {
                        let outcome = Outcome {
                            status: TrialStatus::Rejected,
                            admin: admin_id,
                            note: note_text,
                            decision,
                            entitlement: None,
                        };
                        if !store::decide(conn, id, &outcome, now.naive_utc())? {
                            return Err(TrialError::AlreadyDecided);
                        }
                        let rejected = composer.compose(
                            &reader.email,
                            &TrialRejected {
                                name: reader.name.clone(),
                                reason: note_text.unwrap_or_default().to_owned(),
                                newsletter_link: composer.link("/newsletter"),
                                contact_sales_link: composer.link("/contact-sales"),
                            },
                        )?;
                        outbox::enqueue_at(
                            conn,
                            &key("rejected"),
                            &rejected,
                            now.naive_utc(),
                            emails_from,
                        )?;
                    }
                }
                store::insert_decision(
                    conn,
                    &NewDecision {
                        id: decision,
                        trial_id: id,
                        admin_id: Some(admin_id),
                        action: match verdict {
                            Verdict::Approve => DecisionAction::Approve,
                            Verdict::Reject => DecisionAction::Reject,
                        },
                        note: note_text,
                        decided_at: now.naive_utc(),
                    },
                )?;
                store::find(conn, id)?.ok_or(TrialError::NotFound)
            })
        })
        .await?;
        tracing::info!("trial decided");
        Ok(decided)
    }

    /// Takes back a decision within the undo period: the request is pending
    /// again, the trial (if any) is revoked, and the emails never leave.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, trial_id = %id))]
    pub async fn undo(&self, admin: &Account, id: TrialId) -> Result<TrialRequest, TrialError> {
        require(admin, Role::Admin)?;
        let admin_id = admin.id;
        let now = self.clock.now();
        let window = Duration::minutes(self.settings.undo_minutes);
        let reopened = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
                let (Some(decision), Some(decided_at)) = (trial.decision_id, trial.decided_at)
                else {
                    return Err(TrialError::NothingToUndo);
                };
                if decided_at + window <= now.naive_utc() {
                    return Err(TrialError::UndoExpired);
                }
                if !store::reopen(conn, id, decision)? {
                    return Err(TrialError::AlreadyDecided);
                }
                if let Some(entitlement) = trial.entitlement_id {
                    access::store::revoke(conn, entitlement, now.naive_utc())?;
                }
                let withdrawn = outbox::cancel_unsent(conn, &format!("trial:{id}:{decision}:"))?;
                store::insert_decision(
                    conn,
                    &NewDecision {
                        id: DecisionId::new(),
                        trial_id: id,
                        admin_id: Some(admin_id),
                        action: DecisionAction::Undo,
                        note: None,
                        decided_at: now.naive_utc(),
                    },
                )?;
                tracing::info!(emails_withdrawn = withdrawn, "trial decision undone");
                store::find(conn, id)?.ok_or(TrialError::NotFound)
            })
        })
        .await?;
        Ok(reopened)
    }

    pub fn settings(&self) -> &TrialSettings {
        &self.settings
    }
}

fn note_field(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "note",
        Verdict::Reject => "reason",
    }
}

/// A time as readers of the site see it.
fn local(settings: &TrialSettings, at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&settings.timezone.0)
        .format(format)
        .to_string()
}

/// Whether the reader's company already subscribes with a seat to spare,
/// in which case joining it beats a trial. Company subscriptions are not
/// stored yet, so no domain has one.
fn company_has_free_seat(_conn: &mut DbConnection, _domain: &str) -> Result<bool, TrialError> {
    Ok(false)
}

/// The morning summary for admins, once per local date across all workers.
/// Returns the local date once its summary is settled (sent here, or by
/// another worker); given that date back as `settled`, it does nothing until
/// the next day, so the database is not asked on every tick.
pub async fn send_summary_if_due(
    pool: &Pool,
    composer: &Arc<Composer>,
    now: DateTime<Utc>,
    settings: &TrialSettings,
    settled: Option<NaiveDate>,
) -> Result<Option<NaiveDate>, TrialError> {
    let local_now = now.with_timezone(&settings.timezone.0);
    let today = local_now.date_naive();
    if local_now.time() < settings.summary_at.0 || settled == Some(today) {
        return Ok(settled);
    }
    let date = today.format("%Y-%m-%d").to_string();
    let composer = Arc::clone(composer);
    let promise_hours = settings.decision_hours;
    db::run::<_, TrialError, _>(pool, move |conn| {
        db::transaction(conn, |conn| {
            if !store::claim_summary(conn, &date, now.naive_utc())? {
                return Ok(());
            }
            let pending = store::queue(conn, &[TrialStatus::Pending])?;
            let Some((oldest, _)) = pending.first() else {
                return Ok(());
            };
            let hours = |trial: &TrialRequest| (now.naive_utc() - trial.requested_at).num_hours();
            let oldest_hours = hours(oldest);
            let overdue: Vec<OverdueItem> = pending
                .iter()
                .filter(|(trial, _)| trial.is_overdue(now.naive_utc()))
                .map(|(trial, account)| OverdueItem {
                    name: account.name.clone(),
                    company: trial.company.clone(),
                    hours: hours(trial),
                })
                .collect();
            let admins = crate::accounts::store::with_role(conn, Role::Admin)?;
            for admin in &admins {
                let email = composer.compose(
                    &admin.email,
                    &AdminTrialSummary {
                        name: admin.name.clone(),
                        pending: pending.len(),
                        oldest_hours,
                        promise_hours,
                        overdue: overdue.clone(),
                        queue_link: composer.link("/admin/trials"),
                    },
                )?;
                outbox::enqueue(conn, &format!("admin_summary:{date}:{}", admin.id), &email, now.naive_utc())?;
            }
            tracing::info!(%date, pending = pending.len(), overdue = overdue.len(), admins = admins.len(), "trial queue summary sent");
            Ok(())
        })
    })
    .await?;
    Ok(Some(today))
}

/// What /metrics reports about trials: the queue length and how long
/// decisions took, in hours.
pub async fn metrics(pool: &Pool) -> Result<(i64, Vec<f64>), StorageError> {
    db::run(pool, |conn| {
        let pending = store::count_by_status(conn)?
            .into_iter()
            .find(|(status, _)| *status == TrialStatus::Pending)
            .map_or(0, |(_, n)| n);
        let hours = store::decision_times(conn)?
            .into_iter()
            .map(|(requested, decided)| (decided - requested).num_seconds() as f64 / 3600.0)
            .collect();
        Ok((pending, hours))
    })
    .await
}
