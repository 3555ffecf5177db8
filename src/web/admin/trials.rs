//! The admins' pages: a first page of the trial queue, where the morning
//! summary email lands. Each button calls the same `TrialService` function
//! as its JSON twin in `trials::http`; the service decides who is an admin.
//! Filters, bulk decisions and each request's history stay in the JSON API
//! for now.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::config::TrialSettings;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::state::AppState;
use crate::trials::model::{RiskFlag, TrialId, TrialRequest, TrialStatus};
use crate::trials::service::{TrialError, Verdict};
use crate::web::flash::Kind;
use crate::web::form::{Form, Posted};
use crate::web::{see_other_with, Page, Site, Visitor};

pub const TEMPLATES: &[(&str, &str)] = &[(
    "admin_trials.html",
    include_str!("../templates/admin_trials.html"),
)];

const QUEUE: &str = "/admin/trials";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(QUEUE, web::get().to(queue_page))
        .route("/admin/trials/{id}/approve", web::post().to(approve))
        .route("/admin/trials/{id}/reject", web::post().to(reject))
        .route("/admin/trials/{id}/undo", web::post().to(undo));
}

/// A pending request as the queue shows it.
#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    email: String,
    company: String,
    job_title: String,
    reason: Option<String>,
    requested_at: String,
    due_by: String,
    waited: String,
    overdue: bool,
    flags: Vec<String>,
}

impl Row {
    fn new(trial: TrialRequest, account: Account, now: DateTime<Utc>, s: &TrialSettings) -> Self {
        let now = now.naive_utc();
        Self {
            id: trial.id.to_string(),
            overdue: trial.is_overdue(now),
            flags: trial
                .flags()
                .into_iter()
                .map(|f| flag_words(f, s))
                .collect(),
            waited: waited(now - trial.requested_at),
            name: account.name,
            email: account.email.to_string(),
            company: trial.company,
            job_title: trial.job_title,
            reason: trial.reason,
            requested_at: trial.requested_at.and_utc().to_rfc3339(),
            due_by: trial.decision_due_by.and_utc().to_rfc3339(),
        }
    }
}

/// A decision that can still be taken back.
#[derive(Serialize)]
struct Undoable {
    id: String,
    name: String,
    company: String,
    approved: bool,
    until: String,
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

fn waited(age: Duration) -> String {
    match age.num_hours() {
        h if h < 1 => "less than an hour".to_owned(),
        1 => "1 hour".to_owned(),
        h if h < 72 => format!("{h} hours"),
        h => format!("{} days", h / 24),
    }
}

/// "Ada Lovelace's request (Analytical Engines)".
fn whose(trial: &TrialRequest, applicant: &Account) -> String {
    format!("{}'s request ({})", applicant.name, trial.company)
}

/// An id that does not parse names no request: the page is not found.
fn trial_id(raw: &str) -> Result<TrialId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

#[derive(Deserialize)]
struct QueueQuery {
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
    let decided = query.decided.as_deref().and_then(|raw| raw.parse().ok());
    show(&state, &site, &visitor, &admin, decided, Form::new()).await
}

async fn show(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    decided: Option<TrialId>,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let settings = state.trials.settings();
    let queue = state.trials.queue(admin, vec![], None).await?;
    let rows: Vec<Row> = queue
        .items
        .into_iter()
        .map(|(trial, account)| Row::new(trial, account, now, settings))
        .collect();
    let undoable = match decided {
        Some(id) => match state.trials.with_applicant(admin, id).await {
            Ok((trial, account)) => undoable(&trial, account, now, settings),
            Err(TrialError::NotFound) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    let status = if form.has_errors() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Page::new(
        "admin_trials.html",
        context! {
            title => "Trial requests",
            noindex => true,
            rows => rows,
            counts => queue.counts,
            undoable => undoable,
            decision_hours => settings.decision_hours,
            form => form,
        },
    )
    .status(status)
    .render(site, visitor)
}

fn undoable(
    trial: &TrialRequest,
    applicant: Account,
    now: DateTime<Utc>,
    settings: &TrialSettings,
) -> Option<Undoable> {
    let until = trial.decided_at? + Duration::minutes(settings.undo_minutes);
    (trial.status != TrialStatus::Pending && until > now.naive_utc()).then(|| Undoable {
        id: trial.id.to_string(),
        name: applicant.name,
        company: trial.company.clone(),
        approved: trial.status == TrialStatus::Approved,
        until: until.and_utc().to_rfc3339(),
    })
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

/// `TrialService::decide`, as the JSON API calls it; then back to the queue
/// with what happened, or the queue again with the reason asked for.
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
    let (before, applicant) = state.trials.with_applicant(&admin, id).await?;
    let who = whose(&before, &applicant);
    match state.trials.decide(&admin, id, verdict, note).await {
        Ok(_) => {
            let done = match verdict {
                Verdict::Approve => "approved",
                Verdict::Reject => "turned down",
            };
            let message = format!(
                "You {done} {who}. You can undo this for {} minutes; the email to {} waits until then.",
                state.settings.trials.undo_minutes, applicant.name
            );
            Ok(see_other_with(
                site,
                &format!("{QUEUE}?decided={id}"),
                Kind::Success,
                message,
            ))
        }
        Err(TrialError::AlreadyDecided) => {
            let standing = match before.status {
                TrialStatus::Approved => "approved",
                TrialStatus::Rejected => "turned down",
                TrialStatus::Pending => "decided",
            };
            Ok(see_other_with(
                site,
                QUEUE,
                Kind::Info,
                format!(
                    "{who} had already been {standing} by someone else, so nothing was changed."
                ),
            ))
        }
        Err(TrialError::Invalid(errors)) => {
            // The fields of one row among many: named after the request.
            let mut form = Form::new();
            for field in ["note", "reason"] {
                form = form.with(&format!("{field}-{id}"), posted.value(field));
            }
            let errors = errors
                .into_iter()
                .map(|e| FieldError {
                    field: format!("{}-{id}", e.field),
                    ..e
                })
                .collect();
            show(state, site, visitor, &admin, None, form.with_errors(errors)).await
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
    _posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let id = trial_id(&id)?;
    let (trial, applicant) = state.trials.with_applicant(&admin, id).await?;
    let who = whose(&trial, &applicant);
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
        Err(TrialError::AlreadyDecided) => (
            Kind::Info,
            format!("The decision on {who} was changed by someone else meanwhile, so nothing was undone."),
        ),
        Err(other) => return Err(other.into()),
    };
    Ok(see_other_with(&site, QUEUE, kind, message))
}
