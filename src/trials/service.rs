//! Trial requests, the approval queue, decisions and their emails.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::QueryResult;

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
use crate::access;
use crate::access::Level;
use crate::access::Reason;
use crate::access::{Entitlement, EntitlementId, EntitlementKind, NewEntitlement};
use crate::accounts::service::require;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::platform::abuse::{AbuseGuard, Form, Limited};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::config::TrialSettings;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{optional_text, FieldError, Fields, Invalid, PlainText};
use crate::platform::mail::compose::ComposeError;
use crate::platform::mail::{store as outbox, ComposedEmail, Composer};

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
    AlreadyDecided(Box<Standing>),
    #[error("this request has no decision to undo")]
    NothingToUndo,
    #[error("the decision can no longer be undone")]
    UndoExpired,
    #[error("this request has no running trial")]
    NotRunning,
    #[error(transparent)]
    Limited(#[from] Limited),
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
    /// The names of the admins who decided the requests listed.
    pub deciders: BTreeMap<AccountId, String>,
}

/// Where a request stands, and who put it there: what an admin who acted
/// on an out-of-date page is told instead of an error.
#[derive(Debug, Clone)]
pub struct Standing {
    pub trial: TrialRequest,
    /// The name of the admin who decided it, while their account exists.
    pub decided_by: Option<String>,
}

impl Standing {
    fn of(conn: &mut DbConnection, id: TrialId) -> Result<Self, TrialError> {
        let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
        let decided_by = match trial.decided_by {
            Some(admin) => crate::accounts::tx::find(conn, admin)?.map(|a| a.name),
            None => None,
        };
        Ok(Self { trial, decided_by })
    }

    fn conflict(conn: &mut DbConnection, id: TrialId) -> TrialError {
        match Self::of(conn, id) {
            Ok(standing) => TrialError::AlreadyDecided(Box::new(standing)),
            Err(other) => other,
        }
    }
}

/// One request as an admin looks into it.
pub struct Detail {
    pub trial: TrialRequest,
    pub applicant: Account,
    pub decided_by: Option<String>,
    /// The right to read its approval gave, while the approval stands.
    pub entitlement: Option<Entitlement>,
    /// The applicant's other requests, newest first.
    pub others: Vec<TrialRequest>,
    /// Every decision, undo and early end, oldest first, with the name of
    /// the admin who took it.
    pub history: Vec<(Decision, Option<String>)>,
}

/// What became of one request of a bulk decision.
pub enum BulkOutcome {
    Decided(TrialRequest),
    AlreadyDecided(Standing),
    NotFound,
}

/// At most this many requests are decided at once.
pub const BULK_LIMIT: usize = 200;

#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
#[schema(as = TrialCounts)]
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
    abuse: Arc<AbuseGuard>,
}

impl TrialService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        settings: TrialSettings,
        abuse: Arc<AbuseGuard>,
    ) -> Self {
        Self {
            pool,
            clock,
            composer,
            settings,
            abuse,
        }
    }

    #[tracing::instrument(skip_all, fields(account_id = %reader.id))]
    pub async fn request(
        &self,
        reader: &Account,
        application: Application,
    ) -> Result<TrialRequest, TrialError> {
        let answers = Answers::parse(&application)?;
        if reader.email_verified_at.is_none() {
            return Err(TrialError::NotVerified);
        }
        let client = application
            .client_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok());
        self.abuse.admit(Form::Trial, client, Some(&reader.email))?;
        let reader = reader.clone();
        let now = self.clock.now();
        let settings = self.settings.clone();
        let composer = Arc::clone(&self.composer);
        let trial = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let earlier = store::of_account(conn, reader.id)?;
                let filing = Filing {
                    reader: &reader,
                    answers: &answers,
                    client_ip: application.client_ip.as_deref(),
                    earlier: &earlier,
                    now,
                    settings: &settings,
                    composer: &composer,
                };
                filing.ensure_eligible(conn)?;
                let flags = filing.risk_flags(conn)?;
                let id = filing.file(conn, &flags)?;
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

    /// Every request of one account, newest first: for admins.
    pub async fn requests_of(
        &self,
        admin: &Account,
        account: AccountId,
    ) -> Result<Vec<TrialRequest>, TrialError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            Ok(store::of_account(conn, account)?)
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
            let mut ids: Vec<AccountId> = items
                .iter()
                .filter_map(|(trial, _)| trial.decided_by)
                .collect();
            ids.sort();
            ids.dedup();
            let deciders = store::names_of(conn, &ids)?.into_iter().collect();
            Ok(Queue {
                items,
                counts,
                deciders,
            })
        })
        .await
    }

    /// One request with its applicant, their other requests, its trial and
    /// its history.
    pub async fn detail(&self, admin: &Account, id: TrialId) -> Result<Detail, TrialError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            let (trial, applicant) =
                store::find_with_account(conn, id)?.ok_or(TrialError::NotFound)?;
            let decided_by = match trial.decided_by {
                Some(admin) => crate::accounts::tx::find(conn, admin)?.map(|a| a.name),
                None => None,
            };
            let entitlement = match trial.entitlement_id {
                Some(entitlement) => access::tx::find(conn, entitlement)?,
                None => None,
            };
            let others = store::of_account(conn, applicant.id)?
                .into_iter()
                .filter(|other| other.id != id)
                .collect();
            let history = store::history(conn, id)?;
            Ok(Detail {
                trial,
                applicant,
                decided_by,
                entitlement,
                others,
                history,
            })
        })
        .await
    }

    /// Until when the decision on a request can still be taken back; none
    /// when it cannot (any more).
    pub fn undo_until(&self, detail: &Detail) -> Option<DateTime<Utc>> {
        let now = self.clock.now().naive_utc();
        undo_deadline(
            &detail.trial,
            detail.entitlement.as_ref(),
            Duration::minutes(self.settings.undo_minutes),
            now,
        )
        .ok()
        .filter(|until| *until > now)
        .map(|until| until.and_utc())
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
        let note = parse_note(verdict, note.as_deref())?;
        let admin_id = admin.id;
        let now = self.clock.now();
        let settings = self.settings.clone();
        let composer = Arc::clone(&self.composer);
        let decided = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
                let reader = crate::accounts::tx::find(conn, trial.account_id)?
                    .ok_or(TrialError::NotFound)?;
                let ruling = Ruling {
                    trial: id,
                    decision: DecisionId::new(),
                    admin: admin_id,
                    note: note.as_ref().map(PlainText::as_str),
                    reader: &reader,
                    now,
                    settings: &settings,
                    composer: &composer,
                };
                match verdict {
                    Verdict::Approve => ruling.approve(conn)?,
                    Verdict::Reject => ruling.reject(conn)?,
                }
                ruling.record(conn, verdict)?;
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
                let entitlement = match trial.entitlement_id {
                    Some(entitlement) => access::tx::find(conn, entitlement)?,
                    None => None,
                };
                let until = undo_deadline(&trial, entitlement.as_ref(), window, now.naive_utc())?;
                if until <= now.naive_utc() {
                    return Err(TrialError::UndoExpired);
                }
                let Some(decision) = trial.decision_id else {
                    return Err(TrialError::NothingToUndo);
                };
                if !store::reopen(conn, id, decision)? {
                    return Err(Standing::conflict(conn, id));
                }
                if let Some(entitlement) = trial.entitlement_id {
                    access::tx::revoke(conn, entitlement, now.naive_utc())?;
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
                let undone = match trial.status {
                    TrialStatus::Rejected => "took back the rejection",
                    _ => "took back the approval",
                };
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "trial.undo",
                    &subject(id),
                    Some(undone),
                )?;
                tracing::info!(emails_withdrawn = withdrawn, "trial decision undone");
                store::find(conn, id)?.ok_or(TrialError::NotFound)
            })
        })
        .await?;
        Ok(reopened)
    }

    /// Decides each request on its own, as `decide` does: one that cannot
    /// be decided (decided already, unknown) does not stop the others. A
    /// rejection's reason goes to every reader rejected.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, verdict = ?verdict, count = ids.len()))]
    pub async fn decide_many(
        &self,
        admin: &Account,
        verdict: Verdict,
        ids: &[String],
        reason: Option<String>,
    ) -> Result<Vec<(String, BulkOutcome)>, TrialError> {
        require(admin, Role::Admin)?;
        if ids.is_empty() {
            return Err(TrialError::Invalid(vec![Invalid::new(
                "required",
                "select at least one request",
            )
            .on("ids")]));
        }
        if ids.len() > BULK_LIMIT {
            return Err(TrialError::Invalid(vec![Invalid::new(
                "out_of_range",
                format!("at most {BULK_LIMIT} requests at once"),
            )
            .on("ids")]));
        }
        // Approvals carry no note here; a rejection's reason is checked
        // once, before any request is touched.
        let note = match verdict {
            Verdict::Approve => None,
            Verdict::Reject => reason,
        };
        parse_note(verdict, note.as_deref())?;
        let mut outcomes = Vec::with_capacity(ids.len());
        for raw in ids {
            let outcome = match raw.parse::<TrialId>() {
                Err(_) => BulkOutcome::NotFound,
                Ok(id) => match self.decide(admin, id, verdict, note.clone()).await {
                    Ok(trial) => BulkOutcome::Decided(trial),
                    Err(TrialError::AlreadyDecided(standing)) => {
                        BulkOutcome::AlreadyDecided(*standing)
                    }
                    Err(TrialError::NotFound) => BulkOutcome::NotFound,
                    Err(other) => return Err(other),
                },
            };
            outcomes.push((raw.clone(), outcome));
        }
        Ok(outcomes)
    }

    /// Ends an approved trial now: its reader loses full access at once,
    /// and its reminder and end-of-trial emails are withdrawn. The reason is
    /// for the request's history, not for the reader. Returns the request
    /// and its ended right to read.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, trial_id = %id))]
    pub async fn end_early(
        &self,
        admin: &Account,
        id: TrialId,
        reason: Option<String>,
    ) -> Result<(TrialRequest, Entitlement), TrialError> {
        require(admin, Role::Admin)?;
        let reason = match optional_text(reason.as_deref(), 1000) {
            Ok(Some(reason)) => reason,
            Ok(None) => {
                return Err(TrialError::Invalid(vec![Invalid::new(
                    "required",
                    "say why the trial ends early",
                )
                .on("reason")]))
            }
            Err(invalid) => return Err(TrialError::Invalid(vec![invalid.on("reason")])),
        };
        let admin_id = admin.id;
        let now = self.clock.now();
        let ended = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let trial = store::find(conn, id)?.ok_or(TrialError::NotFound)?;
                let entitlement = match (trial.status, trial.entitlement_id) {
                    (TrialStatus::Approved, Some(entitlement)) => entitlement,
                    _ => return Err(TrialError::NotRunning),
                };
                // Only the first of two admins ending it at once ends it.
                if !access::tx::end_now(conn, entitlement, now.naive_utc())? {
                    return Err(TrialError::NotRunning);
                }
                let withdrawn = record_end(
                    conn,
                    &trial,
                    Some(admin_id),
                    Some(reason.as_str()),
                    reason.as_str(),
                    now,
                )?;
                tracing::info!(emails_withdrawn = withdrawn, "trial ended early");
                let entitlement =
                    access::tx::find(conn, entitlement)?.ok_or(TrialError::NotRunning)?;
                Ok((trial, entitlement))
            })
        })
        .await?;
        Ok(ended)
    }

    pub fn settings(&self) -> &TrialSettings {
        &self.settings
    }
}

/// The reader's answers on a trial request, parsed.
struct Answers {
    company: PlainText,
    job_title: PlainText,
    reason: Option<PlainText>,
}

impl Answers {
    fn parse(application: &Application) -> Result<Self, TrialError> {
        let mut fields = Fields::default();
        let company = fields.take("company", PlainText::parse(&application.company, 200));
        let job_title = fields.take("job_title", PlainText::parse(&application.job_title, 200));
        let reason = fields.take("reason", optional_text(application.reason.as_deref(), 2000));
        let (Some(company), Some(job_title), Some(reason)) = (company, job_title, reason) else {
            return Err(TrialError::Invalid(
                fields.finish().err().unwrap_or_default(),
            ));
        };
        Ok(Self {
            company,
            job_title,
            reason,
        })
    }
}

/// One trial request being filed, inside its transaction.
struct Filing<'a> {
    reader: &'a Account,
    answers: &'a Answers,
    client_ip: Option<&'a str>,
    /// The reader's earlier requests, newest first.
    earlier: &'a [TrialRequest],
    now: DateTime<Utc>,
    settings: &'a TrialSettings,
    composer: &'a Composer,
}

impl Filing<'_> {
    fn any_earlier(&self, status: TrialStatus) -> bool {
        self.earlier.iter().any(|t| t.status == status)
    }

    /// A trial is for readers who have no other way in yet.
    fn ensure_eligible(&self, conn: &mut DbConnection) -> Result<(), TrialError> {
        if self.any_earlier(TrialStatus::Pending) {
            return Err(TrialError::Pending);
        }
        if self.any_earlier(TrialStatus::Approved) {
            return Err(TrialError::AlreadyUsed);
        }
        let access = access::decide(conn, Some(self.reader), self.now)?;
        if access.level == Level::Full {
            return Err(TrialError::HasAccess(access.reason));
        }
        if company_has_free_seat(conn, self.reader.email.domain(), self.now)? {
            return Err(TrialError::CompanyAccess);
        }
        Ok(())
    }

    /// What the admin deciding the request should look at twice.
    fn risk_flags(&self, conn: &mut DbConnection) -> Result<Vec<RiskFlag>, TrialError> {
        let reader = self.reader;
        let domain = reader.email.domain();
        let company = self.answers.company.as_str();
        let since = (self.now - Duration::days(self.settings.lookback_days)).naive_utc();
        let mut flags = flags::of_address(domain, company);
        let same_domain = if crate::platform::domain::mail_domains::is_free_mail(domain) {
            0
        } else {
            store::count_same_domain_since(conn, domain, reader.id, since)?
        };
        if same_domain + store::count_same_company_since(conn, company, reader.id, since)? > 0 {
            flags.push(RiskFlag::SameCompanyRecently);
        }
        let new_since =
            (self.now - Duration::minutes(self.settings.new_account_minutes)).naive_utc();
        if reader.created_at > new_since {
            flags.push(RiskFlag::NewAccount);
        }
        if let Some(ip) = self.client_ip {
            if store::count_same_ip_since(conn, ip, reader.id, since)? > 0 {
                flags.push(RiskFlag::SameIpRecently);
            }
        }
        if self.any_earlier(TrialStatus::Rejected) {
            flags.push(RiskFlag::PreviouslyRejected);
        }
        Ok(flags)
    }

    /// Stores the request as pending and tells the reader when to expect a
    /// decision.
    fn file(&self, conn: &mut DbConnection, flags: &[RiskFlag]) -> Result<TrialId, TrialError> {
        let flags_json = serde_json::to_string(flags).unwrap_or_else(|_| "[]".into());
        let id = TrialId::new();
        let due_by = self.now + Duration::hours(self.settings.decision_hours);
        store::insert(
            conn,
            &NewTrialRequest {
                id,
                account_id: self.reader.id,
                company: self.answers.company.as_str(),
                job_title: self.answers.job_title.as_str(),
                reason: self.answers.reason.as_ref().map(PlainText::as_str),
                email_domain: self.reader.email.domain(),
                client_ip: self.client_ip,
                status: TrialStatus::Pending,
                flags: &flags_json,
                requested_at: self.now.naive_utc(),
                decision_due_by: due_by.naive_utc(),
            },
        )?;
        self.acknowledge(conn, id, due_by)?;
        Ok(id)
    }

    fn acknowledge(
        &self,
        conn: &mut DbConnection,
        id: TrialId,
        due_by: DateTime<Utc>,
    ) -> Result<(), TrialError> {
        let composer = self.composer;
        let email = composer.compose(
            &self.reader.email,
            &TrialReceived {
                name: self.reader.name.clone(),
                company: self.answers.company.to_string(),
                due_by: local(self.settings, due_by, "%-d %B %Y at %H:%M %Z"),
                newsletter_link: composer.link("/newsletter"),
            },
        )?;
        outbox::enqueue(
            conn,
            &format!("trial:{id}:received"),
            &email,
            self.now.naive_utc(),
        )?;
        Ok(())
    }
}

/// One decision on a request being taken, inside its transaction.
struct Ruling<'a> {
    trial: TrialId,
    decision: DecisionId,
    admin: AccountId,
    note: Option<&'a str>,
    reader: &'a Account,
    now: DateTime<Utc>,
    settings: &'a TrialSettings,
    composer: &'a Composer,
}

impl Ruling<'_> {
    /// Starts the trial now and schedules its approval, reminder and
    /// end-of-trial emails.
    fn approve(&self, conn: &mut DbConnection) -> Result<(), TrialError> {
        let ends = self.now + Duration::days(self.settings.length_days);
        let entitlement = self.grant_trial_until(conn, ends)?;
        self.settle(conn, TrialStatus::Approved, Some(entitlement))?;
        self.schedule_trial_emails(conn, ends)
    }

    fn reject(&self, conn: &mut DbConnection) -> Result<(), TrialError> {
        self.settle(conn, TrialStatus::Rejected, None)?;
        let composer = self.composer;
        let rejected = composer.compose(
            &self.reader.email,
            &TrialRejected {
                name: self.reader.name.clone(),
                reason: self.note.unwrap_or_default().to_owned(),
                newsletter_link: composer.link("/newsletter"),
                contact_sales_link: composer.link("/contact-sales"),
            },
        )?;
        self.schedule(conn, "rejected", &rejected, self.emails_from())
    }

    fn grant_trial_until(
        &self,
        conn: &mut DbConnection,
        ends: DateTime<Utc>,
    ) -> Result<EntitlementId, TrialError> {
        let entitlement = EntitlementId::new();
        access::tx::insert(
            conn,
            &NewEntitlement {
                id: entitlement,
                account_id: self.reader.id,
                kind: EntitlementKind::Trial,
                starts_at: self.now.naive_utc(),
                ends_at: Some(ends.naive_utc()),
                source_id: Some(&self.trial.to_string()),
                granted_by: Some(self.admin),
                note: self.note,
                created_at: self.now.naive_utc(),
            },
        )?;
        Ok(entitlement)
    }

    /// Moves the request out of pending, unless another decision got there
    /// first.
    fn settle(
        &self,
        conn: &mut DbConnection,
        status: TrialStatus,
        entitlement: Option<EntitlementId>,
    ) -> Result<(), TrialError> {
        let outcome = Outcome {
            status,
            admin: self.admin,
            note: self.note,
            decision: self.decision,
            entitlement,
        };
        if !store::decide(conn, self.trial, &outcome, self.now.naive_utc())? {
            return Err(Standing::conflict(conn, self.trial));
        }
        Ok(())
    }

    fn schedule_trial_emails(
        &self,
        conn: &mut DbConnection,
        ends: DateTime<Utc>,
    ) -> Result<(), TrialError> {
        let composer = self.composer;
        let reader = self.reader;
        let ends_on = local(self.settings, ends, "%-d %B %Y");
        let approved = composer.compose(
            &reader.email,
            &TrialApproved {
                name: reader.name.clone(),
                ends_on: ends_on.clone(),
                read_link: composer.link("/"),
            },
        )?;
        self.schedule(conn, "approved", &approved, self.emails_from())?;
        let reminder = composer.compose(
            &reader.email,
            &TrialReminder {
                name: reader.name.clone(),
                ends_on,
                days_left: self.settings.reminder_days_before,
                company_access_link: composer.link("/company-access"),
                contact_sales_link: composer.link("/contact-sales"),
            },
        )?;
        let remind_at = (ends - Duration::days(self.settings.reminder_days_before)).naive_utc();
        self.schedule(conn, "reminder", &reminder, remind_at)?;
        let ended = composer.compose(
            &reader.email,
            &TrialEnded {
                name: reader.name.clone(),
                company_access_link: composer.link("/company-access"),
                contact_sales_link: composer.link("/contact-sales"),
                newsletter_link: composer.link("/newsletter"),
            },
        )?;
        self.schedule(conn, "ended", &ended, ends.naive_utc())
    }

    /// The decision's own emails wait out the undo period, so an undo can
    /// still withdraw them.
    fn emails_from(&self) -> NaiveDateTime {
        (self.now + Duration::minutes(self.settings.undo_minutes)).naive_utc()
    }

    /// Keys carry the decision so that undoing it withdraws exactly its
    /// emails.
    fn schedule(
        &self,
        conn: &mut DbConnection,
        what: &str,
        email: &ComposedEmail,
        at: NaiveDateTime,
    ) -> Result<(), TrialError> {
        let key = format!("trial:{}:{}:{what}", self.trial, self.decision);
        outbox::enqueue_at(conn, &key, email, self.now.naive_utc(), at)?;
        Ok(())
    }

    /// The decision joins the request's history and the audit trail.
    fn record(&self, conn: &mut DbConnection, verdict: Verdict) -> Result<(), TrialError> {
        let (action, audited) = match verdict {
            Verdict::Approve => (DecisionAction::Approve, "trial.approve"),
            Verdict::Reject => (DecisionAction::Reject, "trial.reject"),
        };
        store::insert_decision(
            conn,
            &NewDecision {
                id: self.decision,
                trial_id: self.trial,
                admin_id: Some(self.admin),
                action,
                note: self.note,
                decided_at: self.now.naive_utc(),
            },
        )?;
        let subject = subject(self.trial);
        audit::record(
            conn,
            self.now,
            Some(self.admin),
            audited,
            &subject,
            self.note,
        )?;
        Ok(())
    }
}

fn subject(id: TrialId) -> Subject {
    Subject::new(SubjectKind::Trial, id)
}

/// An approval's note is optional; a rejection needs a reason, which its
/// reader will read.
fn parse_note(verdict: Verdict, note: Option<&str>) -> Result<Option<PlainText>, TrialError> {
    let (field, limit) = match verdict {
        Verdict::Approve => ("note", 2000),
        Verdict::Reject => ("reason", 1000),
    };
    let note = optional_text(note, limit).map_err(|e| TrialError::Invalid(vec![e.on(field)]))?;
    if verdict == Verdict::Reject && note.is_none() {
        return Err(TrialError::Invalid(vec![Invalid::new(
            "required",
            "say why, in words the reader will see",
        )
        .on("reason")]));
    }
    Ok(note)
}

/// Until when the decision on `trial` can be taken back. A pending request
/// has none to take back, and an approval whose trial has been ended (early,
/// or by withdrawing its access) stands: undoing it would reopen a request
/// whose reader has already been cut off.
fn undo_deadline(
    trial: &TrialRequest,
    entitlement: Option<&Entitlement>,
    window: Duration,
    now: NaiveDateTime,
) -> Result<NaiveDateTime, TrialError> {
    let Some(decided_at) = trial.decided_at else {
        return Err(TrialError::NothingToUndo);
    };
    if entitlement.is_some_and(|e| !e.is_active(now)) {
        return Err(TrialError::NotRunning);
    }
    Ok(decided_at + window)
}

/// What ending a trial before its time does besides ending its access,
/// however it is ended: the emails its approval scheduled and that have not
/// left yet (the reminder, the end of trial, and the approval itself while
/// it waits out the undo period) are withdrawn, and the end joins the
/// request's history and the audit trail. The reader is not written to:
/// the site tells them their trial has ended when they next read, and the
/// usual reasons for cutting a trial short (a misused address, an approval
/// given in error) call for a person's words, not a template's. Returns how
/// many emails were withdrawn.
pub(super) fn record_end(
    conn: &mut DbConnection,
    trial: &TrialRequest,
    actor: Option<AccountId>,
    note: Option<&str>,
    detail: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let withdrawn = match trial.decision_id {
        Some(decision) => outbox::cancel_unsent(conn, &format!("trial:{}:{decision}:", trial.id))?,
        None => 0,
    };
    store::insert_decision(
        conn,
        &NewDecision {
            id: DecisionId::new(),
            trial_id: trial.id,
            admin_id: actor,
            action: DecisionAction::End,
            note,
            decided_at: now.naive_utc(),
        },
    )?;
    audit::record(
        conn,
        now,
        actor,
        "trial.end",
        &subject(trial.id),
        Some(detail),
    )?;
    Ok(withdrawn)
}

/// A time as readers of the site see it.
fn local(settings: &TrialSettings, at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&settings.timezone.0)
        .format(format)
        .to_string()
}

/// Whether the reader's company already subscribes with a seat to spare,
/// in which case joining it beats a trial.
fn company_has_free_seat(
    conn: &mut DbConnection,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<bool, TrialError> {
    Ok(crate::organizations::tx::has_free_seat_for(
        conn, domain, now,
    )?)
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
            let admins = crate::accounts::tx::with_role(conn, Role::Admin)?;
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
