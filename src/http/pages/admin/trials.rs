//! The trial queue in the console: the requests (filtered by a GET form),
//! each request's page with its applicant and history, and the buttons
//! that approve, reject, undo, decide several at once and end a trial
//! early. Each button calls the same `TrialService` function as its JSON
//! twin in `trials::http`; the service decides who is an admin and writes
//! the audit trail.

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::access::model::Entitlement;
use crate::accounts::Account;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::platform::config::TrialSettings;
use crate::platform::domain::FieldError;
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::{DecisionAction, RiskFlag, TrialId, TrialRequest, TrialStatus};
use crate::trials::service::{BulkOutcome, Detail, Standing, TrialError, Verdict};

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_trials.html",
        include_str!("../templates/admin_trials.html"),
    ),
    (
        "admin_trial.html",
        include_str!("../templates/admin_trial.html"),
    ),
    (
        "admin_trials_macros.html",
        include_str!("../templates/admin_trials_macros.html"),
    ),
];

const QUEUE: &str = "/admin/trials";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(QUEUE, web::get().to(queue_page))
        .route("/admin/trials/bulk", web::post().to(bulk))
        .route("/admin/trials/{id}", web::get().to(detail_page))
        .route("/admin/trials/{id}/approve", web::post().to(approve))
        .route("/admin/trials/{id}/reject", web::post().to(reject))
        .route("/admin/trials/{id}/undo", web::post().to(undo))
        .route("/admin/trials/{id}/end", web::post().to(end));
}

/// Which requests the queue shows: a status (pending unless asked) and,
/// optionally, one risk flag. Unknown values show the default, as a
/// filter is only a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filter {
    /// None: every status.
    status: Option<TrialStatus>,
    flag: Option<RiskFlag>,
}

impl Filter {
    fn parse(status: Option<&str>, flag: Option<&str>) -> Self {
        Self {
            status: match status {
                Some("all") => None,
                other => other
                    .and_then(|s| s.parse().ok())
                    .or(Some(TrialStatus::Pending)),
            },
            flag: flag.and_then(|f| f.parse().ok()),
        }
    }

    fn statuses(&self) -> Vec<TrialStatus> {
        match self.status {
            Some(status) => vec![status],
            None => TrialStatus::ALL.to_vec(),
        }
    }

    fn status_value(&self) -> &'static str {
        match self.status {
            Some(status) => status.as_str(),
            None => "all",
        }
    }

    /// The queue's address with this filter and, after a decision, the
    /// request whose decision it offers to undo.
    fn location(&self, decided: Option<TrialId>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.status != Some(TrialStatus::Pending) {
            query.append_pair("status", self.status_value());
        }
        if let Some(flag) = self.flag {
            query.append_pair("flag", flag.as_str());
        }
        if let Some(id) = decided {
            query.append_pair("decided", &id.to_string());
        }
        match query.finish() {
            query if query.is_empty() => QUEUE.to_owned(),
            query => format!("{QUEUE}?{query}"),
        }
    }
}

/// The page a form was posted from, where its answer goes back to: the
/// queue (its forms carry the filter) or the request's own page.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Queue(Filter),
    Detail,
}

impl Origin {
    fn of(posted: &Posted) -> Self {
        if posted.value("view") == "detail" {
            Self::Detail
        } else {
            Self::Queue(Filter::parse(
                posted.optional("status").as_deref(),
                posted.optional("flag").as_deref(),
            ))
        }
    }

    fn location(&self, id: TrialId, decided: bool) -> String {
        match self {
            Self::Queue(filter) => filter.location(decided.then_some(id)),
            Self::Detail => format!("{QUEUE}/{id}"),
        }
    }
}

/// A request as the queue lists it.
#[derive(Serialize)]
struct Row {
    id: String,
    status: TrialStatus,
    name: String,
    email: String,
    company: String,
    job_title: String,
    reason: Option<String>,
    requested_at: String,
    waited: String,
    due: Option<Due>,
    flags: Vec<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
}

/// The due-by badge: when a pending request must be decided by, and
/// whether that has passed.
#[derive(Serialize)]
struct Due {
    by: String,
    overdue: bool,
    /// "Due in 5 hours", "Overdue by 2 days".
    words: String,
}

impl Due {
    fn of(trial: &TrialRequest, now: NaiveDateTime) -> Option<Self> {
        (trial.status == TrialStatus::Pending).then(|| {
            let overdue = trial.is_overdue(now);
            let words = if overdue {
                format!("Overdue by {}", span(now - trial.decision_due_by))
            } else {
                format!("Due in {}", span(trial.decision_due_by - now))
            };
            Self {
                by: utc(trial.decision_due_by),
                overdue,
                words,
            }
        })
    }
}

impl Row {
    fn new(
        trial: TrialRequest,
        account: Account,
        decided_by: Option<String>,
        now: DateTime<Utc>,
        s: &TrialSettings,
    ) -> Self {
        let now = now.naive_utc();
        Self {
            id: trial.id.to_string(),
            status: trial.status,
            flags: flags_in_words(&trial, s),
            waited: span(now - trial.requested_at),
            due: Due::of(&trial, now),
            name: account.name,
            email: account.email.to_string(),
            company: trial.company,
            job_title: trial.job_title,
            reason: trial.reason,
            requested_at: utc(trial.requested_at),
            decided_by,
            decided_at: trial.decided_at.map(utc),
        }
    }
}

/// The decision that can still be taken back, with the time left, as
/// the server counts it (the page needs no script to show it).
#[derive(Serialize)]
struct Undoable {
    id: String,
    name: String,
    company: String,
    approved: bool,
    /// "14:25 UTC"
    until: String,
    /// "7 minutes left"
    left: String,
}

impl Undoable {
    fn new(detail: &Detail, until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let seconds = (until - now).num_seconds().max(0);
        let minutes = (seconds + 59) / 60;
        Self {
            id: detail.trial.id.to_string(),
            name: detail.applicant.name.clone(),
            company: detail.trial.company.clone(),
            approved: detail.trial.status == TrialStatus::Approved,
            until: until.format("%H:%M UTC").to_string(),
            left: match minutes {
                0 | 1 => "1 minute left".to_owned(),
                n => format!("{n} minutes left"),
            },
        }
    }
}

/// A choice of the filter form.
#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
}

/// What a risk flag asks the admin to look at, in words.
fn flag_words(flag: RiskFlag, settings: &TrialSettings) -> String {
    match flag {
        RiskFlag::FreeMailDomain => "Uses a free email address, not a company one".to_owned(),
        RiskFlag::DisposableDomain => "Uses a disposable email address".to_owned(),
        RiskFlag::CompanyDomainMismatch => {
            "The email address does not match the company named".to_owned()
        }
        RiskFlag::SameCompanyRecently => format!(
            "Someone else from this company or email domain asked in the last {} days",
            settings.lookback_days
        ),
        RiskFlag::NewAccount => format!(
            "The account was less than {} minutes old when it asked",
            settings.new_account_minutes
        ),
        RiskFlag::SameIpRecently => format!(
            "Another request came from the same IP address in the last {} days",
            settings.lookback_days
        ),
        RiskFlag::PreviouslyRejected => {
            "An earlier request from this account was turned down".to_owned()
        }
    }
}

/// A risk flag as the filter offers it.
fn flag_label(flag: RiskFlag) -> &'static str {
    match flag {
        RiskFlag::FreeMailDomain => "Free email address",
        RiskFlag::DisposableDomain => "Disposable email address",
        RiskFlag::CompanyDomainMismatch => "Address does not match the company",
        RiskFlag::SameCompanyRecently => "Same company asked recently",
        RiskFlag::NewAccount => "New account",
        RiskFlag::SameIpRecently => "Same IP address asked recently",
        RiskFlag::PreviouslyRejected => "Turned down before",
    }
}

fn flags_in_words(trial: &TrialRequest, settings: &TrialSettings) -> Vec<String> {
    trial
        .flags()
        .into_iter()
        .map(|f| flag_words(f, settings))
        .collect()
}

/// A length of time as the queue says it: "40 minutes", "5 hours", "3 days".
fn span(age: Duration) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match age.num_minutes() {
        m if m < 1 => "less than a minute".to_owned(),
        m if m < 60 => plural(m, "minute"),
        m if m < 72 * 60 => plural(m / 60, "hour"),
        m => plural(m / (24 * 60), "day"),
    }
}

/// A time for the `date` filter of the templates.
fn utc(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339()
}

/// A time inside a sentence: "10:05 UTC on 26 November 2026".
fn when(at: NaiveDateTime) -> String {
    at.format("%H:%M UTC on %-d %B %Y").to_string()
}

/// "Ada Lovelace's request (Analytical Engines)".
fn whose(trial: &TrialRequest, applicant: &Account) -> String {
    format!("{}'s request ({})", applicant.name, trial.company)
}

/// What an admin is told when someone else decided first: who, and when.
fn decided_already(standing: &Standing, who: &str, me: &Account) -> String {
    let trial = &standing.trial;
    let by = if trial.decided_by == Some(me.id) {
        "you".to_owned()
    } else {
        standing
            .decided_by
            .clone()
            .unwrap_or_else(|| "another admin".to_owned())
    };
    match (trial.status, trial.decided_at) {
        (TrialStatus::Pending, _) | (_, None) => {
            format!("{who} was changed meanwhile and is waiting in the queue again, so nothing was changed.")
        }
        (status, Some(at)) => {
            let done = match status {
                TrialStatus::Rejected => "turned down",
                _ => "approved",
            };
            format!(
                "{who} was already decided by {by} at {}: {done}. Nothing was changed.",
                when(at)
            )
        }
    }
}

/// An id that does not parse names no request: the page is not found.
fn trial_id(raw: &str) -> Result<TrialId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// A service's field errors under the names the page gives its fields.
fn renamed(errors: Vec<FieldError>, name: impl Fn(&str) -> String) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|e| FieldError {
            field: name(&e.field),
            ..e
        })
        .collect()
}

#[derive(Deserialize)]
struct QueueQuery {
    status: Option<String>,
    flag: Option<String>,
    /// The request just decided, whose decision the page offers to undo.
    decided: Option<String>,
}

async fn queue_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let filter = Filter::parse(query.status.as_deref(), query.flag.as_deref());
    let decided = query.decided.as_deref().and_then(|raw| raw.parse().ok());
    show_queue(
        &state,
        &site,
        &visitor,
        &admin,
        filter,
        decided,
        Form::new(),
    )
    .await
}

async fn show_queue(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    filter: Filter,
    decided: Option<TrialId>,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let settings = state.trials.settings();
    let queue = state
        .trials
        .queue(admin, filter.statuses(), filter.flag)
        .await?;
    let deciders = queue.deciders;
    let rows: Vec<Row> = queue
        .items
        .into_iter()
        .map(|(trial, account)| {
            let decided_by = trial.decided_by.and_then(|id| deciders.get(&id).cloned());
            Row::new(trial, account, decided_by, now, settings)
        })
        .collect();
    let undoable = just_decided(state, admin, decided, now).await?;
    let pending_shown = rows
        .iter()
        .filter(|r| r.status == TrialStatus::Pending)
        .count();
    Page::new(
        "admin_trials.html",
        context! {
            title => "Trial requests",
            console_area => "trials",
            noindex => true,
            rows => rows,
            pending_shown => pending_shown,
            counts => queue.counts,
            undoable => undoable,
            decision_hours => settings.decision_hours,
            undo_minutes => settings.undo_minutes,
            filter_status => filter.status_value(),
            filter_flag => filter.flag.map(RiskFlag::as_str),
            filtered => filter != Filter::parse(None, None),
            statuses => STATUS_CHOICES,
            flags => flag_choices(),
            bulk_limit => crate::trials::service::BULK_LIMIT,
            form => form,
        },
    )
    .status(form.status())
    .render(site, visitor)
}

/// The request just decided, while its decision can still be undone.
async fn just_decided(
    state: &AppState,
    admin: &Account,
    decided: Option<TrialId>,
    now: DateTime<Utc>,
) -> Result<Option<Undoable>, AppError> {
    let Some(id) = decided else {
        return Ok(None);
    };
    match state.trials.detail(admin, id).await {
        Ok(detail) => Ok(state
            .trials
            .undo_until(&detail)
            .map(|until| Undoable::new(&detail, until, now))),
        Err(TrialError::NotFound) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

const STATUS_CHOICES: [Choice; 4] = [
    Choice {
        value: "pending",
        label: "Waiting for a decision",
    },
    Choice {
        value: "approved",
        label: "Approved",
    },
    Choice {
        value: "rejected",
        label: "Turned down",
    },
    Choice {
        value: "all",
        label: "All",
    },
];

fn flag_choices() -> Vec<Choice> {
    RiskFlag::ALL
        .iter()
        .map(|f| Choice {
            value: f.as_str(),
            label: flag_label(*f),
        })
        .collect()
}

/// One request's page as the template shows it.
#[derive(Serialize)]
struct DetailView {
    id: String,
    status: TrialStatus,
    name: String,
    email: String,
    account_company: Option<String>,
    account_job_title: Option<String>,
    registered_at: String,
    account_age: String,
    verified_at: Option<String>,
    company: String,
    job_title: String,
    reason: Option<String>,
    client_ip: Option<String>,
    requested_at: String,
    waited: String,
    due: Option<Due>,
    flags: Vec<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decision_note: Option<String>,
    trial: Option<TrialView>,
    others: Vec<OtherRequest>,
    history: Vec<Step>,
}

/// The trial an approval started.
#[derive(Serialize)]
struct TrialView {
    starts_at: String,
    ends_at: Option<String>,
    /// running, ended, ended_early or revoked
    state: &'static str,
    revoked_at: Option<String>,
}

#[derive(Serialize)]
struct OtherRequest {
    id: String,
    requested_at: String,
    company: String,
    status: TrialStatus,
}

/// One line of the history.
#[derive(Serialize)]
struct Step {
    at: String,
    who: String,
    what: &'static str,
    note: Option<String>,
}

impl DetailView {
    fn new(detail: &Detail, now: DateTime<Utc>, settings: &TrialSettings) -> Self {
        let now = now.naive_utc();
        let trial = &detail.trial;
        let applicant = &detail.applicant;
        Self {
            id: trial.id.to_string(),
            status: trial.status,
            name: applicant.name.clone(),
            email: applicant.email.to_string(),
            account_company: applicant.company.clone(),
            account_job_title: applicant.job_title.clone(),
            registered_at: utc(applicant.created_at),
            account_age: span(now - applicant.created_at),
            verified_at: applicant.email_verified_at.map(utc),
            company: trial.company.clone(),
            job_title: trial.job_title.clone(),
            reason: trial.reason.clone(),
            client_ip: trial.client_ip.clone(),
            requested_at: utc(trial.requested_at),
            waited: span(now - trial.requested_at),
            due: Due::of(trial, now),
            flags: flags_in_words(trial, settings),
            decided_by: detail.decided_by.clone(),
            decided_at: trial.decided_at.map(utc),
            decision_note: trial.decision_note.clone(),
            trial: detail
                .entitlement
                .as_ref()
                .map(|e| TrialView::new(e, ended_early(detail), now)),
            others: detail.others.iter().map(OtherRequest::new).collect(),
            history: history(detail),
        }
    }
}

fn ended_early(detail: &Detail) -> bool {
    detail
        .history
        .iter()
        .any(|(step, _)| step.action == DecisionAction::End)
}

/// The request itself, then every decision on it, oldest first.
fn history(detail: &Detail) -> Vec<Step> {
    std::iter::once(Step {
        at: utc(detail.trial.requested_at),
        who: detail.applicant.name.clone(),
        what: "Asked for a trial",
        note: None,
    })
    .chain(detail.history.iter().map(|(step, name)| Step {
        at: utc(step.decided_at),
        who: match (step.admin_id, name) {
            (_, Some(name)) => name.clone(),
            (Some(_), None) => "A former admin".to_owned(),
            (None, None) => "The system".to_owned(),
        },
        what: match step.action {
            DecisionAction::Approve => "Approved",
            DecisionAction::Reject => "Turned down",
            DecisionAction::Undo => "Undid the decision",
            DecisionAction::End => "Ended the trial early",
        },
        note: step.note.clone(),
    }))
    .collect()
}

impl TrialView {
    fn new(entitlement: &Entitlement, ended_early: bool, now: NaiveDateTime) -> Self {
        Self {
            starts_at: utc(entitlement.starts_at),
            ends_at: entitlement.ends_at.map(utc),
            state: if entitlement.revoked_at.is_some() {
                "revoked"
            } else if entitlement.is_active(now) {
                "running"
            } else if ended_early {
                "ended_early"
            } else {
                "ended"
            },
            revoked_at: entitlement.revoked_at.map(utc),
        }
    }
}

impl OtherRequest {
    fn new(other: &TrialRequest) -> Self {
        Self {
            id: other.id.to_string(),
            requested_at: utc(other.requested_at),
            company: other.company.clone(),
            status: other.status,
        }
    }
}

async fn detail_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let id = trial_id(&id)?;
    show_detail(&state, &site, &visitor, &admin, id, Form::new()).await
}

async fn show_detail(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    id: TrialId,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let detail = state.trials.detail(admin, id).await?;
    let undoable = state
        .trials
        .undo_until(&detail)
        .map(|until| Undoable::new(&detail, until, now));
    let view = DetailView::new(&detail, now, state.trials.settings());
    let can_end = view.trial.as_ref().is_some_and(|t| t.state == "running");
    Page::new(
        "admin_trial.html",
        context! {
            title => format!("{}'s trial request", detail.applicant.name),
            console_area => "trials",
            noindex => true,
            view => "detail",
            request => view,
            undoable => undoable,
            can_end => can_end,
            undo_minutes => state.trials.settings().undo_minutes,
            form => form,
        },
    )
    .status(form.status())
    .render(site, visitor)
}

/// The page a form came from again, with its errors.
async fn show_again(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    origin: Origin,
    id: TrialId,
    form: Form,
) -> Result<HttpResponse, AppError> {
    match origin {
        Origin::Queue(filter) => show_queue(state, site, visitor, admin, filter, None, form).await,
        Origin::Detail => show_detail(state, site, visitor, admin, id, form).await,
    }
}

#[tracing::instrument(skip_all, fields(trial_id = %*id))]
async fn approve(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let note = posted.optional("note");
    decide(
        &state,
        &site,
        &visitor,
        &id,
        Verdict::Approve,
        note,
        &posted,
    )
    .await
}

#[tracing::instrument(skip_all, fields(trial_id = %*id))]
async fn reject(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let reason = posted.optional("reason");
    decide(
        &state,
        &site,
        &visitor,
        &id,
        Verdict::Reject,
        reason,
        &posted,
    )
    .await
}

/// `TrialService::decide`, as the JSON API calls it; then back to the page
/// the form was on with what happened, or that page again with the
/// reason asked for.
async fn decide(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    raw_id: &str,
    verdict: Verdict,
    note: Option<String>,
    posted: &Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let id = trial_id(raw_id)?;
    let origin = Origin::of(posted);
    let before = state.trials.detail(&admin, id).await?;
    let who = whose(&before.trial, &before.applicant);
    match state.trials.decide(&admin, id, verdict, note).await {
        Ok(_) => {
            let done = match verdict {
                Verdict::Approve => "approved",
                Verdict::Reject => "turned down",
            };
            let message = format!(
                "You {done} {who}. You can undo this for {} minutes; the email to {} waits until then.",
                state.settings.trials.undo_minutes, before.applicant.name
            );
            Ok(see_other_with(
                site,
                &origin.location(id, true),
                Kind::Success,
                message,
            ))
        }
        Err(TrialError::AlreadyDecided(standing)) => Ok(see_other_with(
            site,
            &origin.location(id, false),
            Kind::Info,
            decided_already(&standing, &who, &admin),
        )),
        Err(TrialError::Invalid(errors)) => {
            // On the queue, the fields of one row among many are named
            // after its request.
            let name = |field: &str| match origin {
                Origin::Queue(_) => format!("{field}-{id}"),
                Origin::Detail => field.to_owned(),
            };
            let mut form = Form::new();
            for field in ["note", "reason"] {
                form = form.with(&name(field), posted.value(field));
            }
            let form = form.with_errors(renamed(errors, name));
            show_again(state, site, visitor, &admin, origin, id, form).await
        }
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all, fields(trial_id = %*id))]
async fn undo(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let id = trial_id(&id)?;
    let origin = Origin::of(&posted);
    let before = state.trials.detail(&admin, id).await?;
    let who = whose(&before.trial, &before.applicant);
    let (kind, message) = match state.trials.undo(&admin, id).await {
        Ok(_) => (
            Kind::Success,
            format!("The decision on {who} is undone: it is waiting in the queue again, and nothing was sent."),
        ),
        Err(TrialError::UndoExpired) => (
            Kind::Info,
            format!(
                "The decision on {who} can no longer be undone: its {} minutes have passed.",
                state.settings.trials.undo_minutes
            ),
        ),
        Err(TrialError::NothingToUndo) => (
            Kind::Info,
            format!("{who} has no decision to undo; it is waiting in the queue."),
        ),
        Err(TrialError::NotRunning) => (
            Kind::Info,
            format!("The trial from {who} has been ended, so its approval can no longer be undone."),
        ),
        Err(TrialError::AlreadyDecided(standing)) => {
            (Kind::Info, decided_already(&standing, &who, &admin))
        }
        Err(other) => return Err(other.into()),
    };
    Ok(see_other_with(
        &site,
        &origin.location(id, false),
        kind,
        message,
    ))
}

#[tracing::instrument(skip_all, fields(trial_id = %*id))]
async fn end(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let id = trial_id(&id)?;
    let before = state.trials.detail(&admin, id).await?;
    let name = &before.applicant.name;
    let location = format!("{QUEUE}/{id}");
    match state
        .trials
        .end_early(&admin, id, posted.optional("reason"))
        .await
    {
        Ok(_) => Ok(see_other_with(
            &site,
            &location,
            Kind::Success,
            format!(
                "You ended {name}'s trial. They can no longer read articles in full, and their reminder and end-of-trial emails will not be sent."
            ),
        )),
        Err(TrialError::NotRunning) => Ok(see_other_with(
            &site,
            &location,
            Kind::Info,
            format!("{name}'s trial was not running any more, so nothing was changed."),
        )),
        Err(TrialError::Invalid(errors)) => {
            let form = Form::new()
                .with("end-reason", posted.value("reason"))
                .with_errors(renamed(errors, |field| format!("end-{field}")));
            show_detail(&state, &site, &visitor, &admin, id, form).await
        }
        Err(other) => Err(other.into()),
    }
}

/// The queue's "Approve selected" and "Reject selected": the service's
/// bulk decision, as `POST /api/v1/admin/trials/bulk` calls it.
#[tracing::instrument(skip_all)]
async fn bulk(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let filter = match Origin::of(&posted) {
        Origin::Queue(filter) => filter,
        Origin::Detail => Filter::parse(None, None),
    };
    let verdict = match posted.value("action").as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => return Err(AppError::field("action", "invalid", "approve or reject")),
    };
    let ids = posted.values("ids");
    match state
        .trials
        .decide_many(&admin, verdict, &ids, posted.optional("reason"))
        .await
    {
        Ok(outcomes) => {
            let (kind, message) = bulk_summary(
                &outcomes,
                verdict,
                &admin,
                state.settings.trials.undo_minutes,
            );
            Ok(see_other_with(&site, &filter.location(None), kind, message))
        }
        Err(TrialError::Invalid(errors)) => {
            let form = Form::new()
                .with("bulk-reason", posted.value("reason"))
                .with_list("ids", ids)
                .with_errors(renamed(errors, |field| format!("bulk-{field}")));
            show_queue(&state, &site, &visitor, &admin, filter, None, form).await
        }
        Err(other) => Err(other.into()),
    }
}

/// What a bulk decision did, in one message.
fn bulk_summary(
    outcomes: &[(String, BulkOutcome)],
    verdict: Verdict,
    admin: &Account,
    undo_minutes: i64,
) -> (Kind, String) {
    let decided = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, BulkOutcome::Decided(_)))
        .count();
    let mut parts = Vec::new();
    if decided > 0 {
        let done = match verdict {
            Verdict::Approve => "approved",
            Verdict::Reject => "turned down",
        };
        let requests = if decided == 1 { "request" } else { "requests" };
        parts.push(format!(
            "You {done} {decided} {requests}. Each can be undone from its page for {undo_minutes} minutes; no email leaves until then."
        ));
    }
    for (_, outcome) in outcomes {
        if let BulkOutcome::AlreadyDecided(standing) = outcome {
            let who = format!("The request from {}", standing.trial.company);
            parts.push(decided_already(standing, &who, admin));
        }
    }
    let missing = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, BulkOutcome::NotFound))
        .count();
    if missing > 0 {
        parts.push(format!("{missing} of the requests chosen no longer exist."));
    }
    let kind = if decided > 0 {
        Kind::Success
    } else {
        Kind::Info
    };
    (kind, parts.join(" "))
}
