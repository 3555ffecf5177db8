//! JSON endpoints for readers' trial requests and the admins' queue.

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::accounts::Account;
use crate::accounts::AccountId;
use crate::http::api::access::EntitlementView;
use crate::http::api::responses::{Conflict, Forbidden, NotFound, RateLimited, Unauthorized};
use crate::http::extract::{client_ip, parse_id, ApiJson};
use crate::http::session::CurrentAccount;
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::{DecisionAction, RiskFlag, TrialId, TrialRequest, TrialStatus};
use crate::trials::service::{Application, BulkOutcome, Counts, Standing, TrialError, Verdict};

#[derive(OpenApi)]
#[openapi(paths(request, mine, queue, bulk, one, approve, reject, undo, end))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/trials", web::post().to(request))
        .route("/trials/mine", web::get().to(mine));
}

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/trials", web::get().to(queue))
        .route("/trials/bulk", web::post().to(bulk))
        // Any other method here would reach `/trials/{id}` as id "bulk".
        .route("/trials/bulk", web::route().to(bulk_takes_post))
        .route("/trials/{id}", web::get().to(one))
        .route("/trials/{id}/approve", web::post().to(approve))
        .route("/trials/{id}/reject", web::post().to(reject))
        .route("/trials/{id}/undo", web::post().to(undo))
        .route("/trials/{id}/end", web::post().to(end));
}

async fn bulk_takes_post() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed {
        allow: "POST".to_owned(),
    })
}

/// "approved by Grace Hopper at 2026-11-26T10:05:00+00:00": who stands
/// behind a request's state, for an admin who came second.
fn standing_words(standing: &Standing) -> String {
    let trial = &standing.trial;
    let done = match trial.status {
        TrialStatus::Approved => "approved",
        TrialStatus::Rejected => "rejected",
        TrialStatus::Pending => "reopened",
    };
    let by = standing.decided_by.as_deref().unwrap_or("another admin");
    match trial.decided_at {
        Some(at) => format!("{done} by {by} at {}", utc(at).to_rfc3339()),
        None => done.to_owned(),
    }
}

impl From<TrialError> for AppError {
    fn from(error: TrialError) -> Self {
        let conflict = |reason, detail: &str| AppError::Conflict {
            reason,
            detail: detail.to_owned(),
        };
        match error {
            TrialError::Invalid(errors) => AppError::Validation(errors),
            TrialError::NotVerified => AppError::Forbidden {
                detail: "verify your email address before asking for a trial",
            },
            TrialError::Pending => conflict(
                "trial_pending",
                "your trial request is waiting for a decision",
            ),
            TrialError::AlreadyUsed => conflict(
                "trial_already_used",
                "this account has already had its free trial",
            ),
            TrialError::HasAccess(reason) => AppError::Conflict {
                reason: "already_has_access",
                detail: format!(
                    "you can already read everything, through your {}",
                    match reason {
                        crate::access::Reason::Trial => "trial",
                        crate::access::Reason::CompanySeat => "company's subscription",
                        _ => "subscription",
                    }
                ),
            },
            TrialError::CompanyAccess => conflict(
                "company_access",
                "your company has a subscription with a free seat: join it at /company-access",
            ),
            TrialError::NotFound => AppError::NotFound,
            TrialError::AlreadyDecided(standing) => AppError::Conflict {
                reason: "already_decided",
                detail: format!(
                    "this request has already been decided: {}",
                    standing_words(&standing)
                ),
            },
            TrialError::NothingToUndo => {
                conflict("nothing_to_undo", "this request has no decision to undo")
            }
            TrialError::UndoExpired => {
                conflict("undo_expired", "the decision can no longer be undone")
            }
            TrialError::NotRunning => conflict(
                "trial_not_running",
                "this request has no running trial: it was not approved, or its trial has ended",
            ),
            TrialError::Account(e) => e.into(),
            TrialError::Limited(limited) => limited.into(),
            TrialError::Storage(e) => e.into(),
            e @ TrialError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A request as its reader sees it.
#[derive(Serialize, ToSchema)]
struct MineView {
    id: TrialId,
    status: TrialStatus,
    company: String,
    job_title: String,
    requested_at: DateTime<Utc>,
    decision_due_by: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl From<TrialRequest> for MineView {
    fn from(t: TrialRequest) -> Self {
        Self {
            id: t.id,
            status: t.status,
            company: t.company,
            job_title: t.job_title,
            requested_at: utc(t.requested_at),
            decision_due_by: utc(t.decision_due_by),
            decided_at: t.decided_at.map(utc),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Applicant {
    id: AccountId,
    #[schema(format = Email)]
    email: String,
    name: String,
    created_at: DateTime<Utc>,
}

/// A request as an admin sees it in the queue.
#[derive(Serialize, ToSchema)]
struct QueueItem {
    id: TrialId,
    status: TrialStatus,
    applicant: Applicant,
    company: String,
    job_title: String,
    reason: Option<String>,
    requested_at: DateTime<Utc>,
    decision_due_by: DateTime<Utc>,
    age_hours: f64,
    overdue: bool,
    flags: Vec<RiskFlag>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<AccountId>,
    decided_by_name: Option<String>,
    decision_note: Option<String>,
}

impl QueueItem {
    fn new(
        trial: TrialRequest,
        account: Account,
        decided_by_name: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let now = now.naive_utc();
        Self {
            id: trial.id,
            status: trial.status,
            overdue: trial.is_overdue(now),
            flags: trial.flags(),
            applicant: Applicant {
                id: account.id,
                email: account.email.to_string(),
                name: account.name,
                created_at: utc(account.created_at),
            },
            age_hours: ((now - trial.requested_at).num_minutes() as f64 / 60.0 * 10.0).round()
                / 10.0,
            company: trial.company,
            job_title: trial.job_title,
            reason: trial.reason,
            requested_at: utc(trial.requested_at),
            decision_due_by: utc(trial.decision_due_by),
            decided_at: trial.decided_at.map(utc),
            decided_by: trial.decided_by,
            decided_by_name,
            decision_note: trial.decision_note,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct RequestBody {
    company: String,
    job_title: String,
    reason: Option<String>,
}

/// Asks for a free trial (verified reader); an admin decides within the
/// decision window.
#[utoipa::path(post, path = "/trials", tag = "trials", security(("session" = [])),
    request_body = RequestBody,
    responses(
        (status = 201, body = MineView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 429, response = RateLimited),
    ))]
async fn request(
    state: Data<AppState>,
    current: CurrentAccount,
    req: HttpRequest,
    body: ApiJson<RequestBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let trial = state
        .trials
        .request(
            &current.account,
            Application {
                company: body.company,
                job_title: body.job_title,
                reason: body.reason,
                client_ip: client_ip(&req).map(|ip| ip.to_string()),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(MineView::from(trial)))
}

/// The account's latest trial request; 404 before the first.
#[utoipa::path(get, path = "/trials/mine", tag = "trials", security(("session" = [])),
    responses(
        (status = 200, body = MineView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
async fn mine(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    match state.trials.mine(&current.account).await? {
        Some(trial) => Ok(HttpResponse::Ok().json(MineView::from(trial))),
        None => Err(AppError::NotFound),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QueueQuery {
    /// `pending` (the default), `approved`, `rejected` or `all`.
    #[param(pattern = "^(pending|approved|rejected|all)$")]
    status: Option<String>,
    flag: Option<RiskFlag>,
}

#[derive(Serialize, ToSchema)]
struct QueueView {
    counts: Counts,
    requests: Vec<QueueItem>,
}

/// The queue, oldest first: age, due-by, overdue and risk flags (admin).
#[utoipa::path(get, path = "/admin/trials", tag = "trials", security(("session" = [])),
    params(QueueQuery),
    responses(
        (status = 200, body = QueueView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn queue(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let statuses = match query.status.as_deref() {
        None => vec![],
        Some("all") => TrialStatus::ALL.to_vec(),
        Some(one) => vec![one.parse().map_err(|_| {
            AppError::field("status", "invalid", "pending, approved, rejected or all")
        })?],
    };
    let now = state.clock.now();
    let queue = state
        .trials
        .queue(&current.account, statuses, query.flag)
        .await?;
    let deciders = queue.deciders;
    Ok(HttpResponse::Ok().json(QueueView {
        counts: queue.counts,
        requests: queue
            .items
            .into_iter()
            .map(|(trial, account)| {
                let name = trial.decided_by.and_then(|id| deciders.get(&id).cloned());
                QueueItem::new(trial, account, name, now)
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct DecisionView {
    action: DecisionAction,
    admin_id: Option<AccountId>,
    note: Option<String>,
    decided_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
struct History {
    request: MineView,
    /// Oldest first.
    decisions: Vec<DecisionView>,
}

/// One request and every decision taken on it (admin).
#[utoipa::path(get, path = "/admin/trials/{id}", tag = "trials", security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = History),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn one(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: TrialId = parse_id(&id)?;
    let (trial, decisions) = state.trials.history(&current.account, id).await?;
    let decisions: Vec<DecisionView> = decisions
        .into_iter()
        .map(|d| DecisionView {
            action: d.action,
            admin_id: d.admin_id,
            note: d.note,
            decided_at: utc(d.decided_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(History {
        request: MineView::from(trial),
        decisions,
    }))
}

#[derive(Deserialize, ToSchema)]
struct ApproveBody {
    note: Option<String>,
}

/// Approves a request (admin): the trial starts now.
#[utoipa::path(post, path = "/admin/trials/{id}/approve", tag = "trials",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = ApproveBody,
    responses(
        (status = 200, body = MineView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn approve(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<ApproveBody>,
) -> Result<HttpResponse, AppError> {
    let id: TrialId = parse_id(&id)?;
    let trial = state
        .trials
        .decide(&current.account, id, Verdict::Approve, body.0.note)
        .await?;
    Ok(HttpResponse::Ok().json(MineView::from(trial)))
}

#[derive(Deserialize, ToSchema)]
struct RejectBody {
    reason: String,
}

/// Rejects a request (admin) and tells the reader why.
#[utoipa::path(post, path = "/admin/trials/{id}/reject", tag = "trials",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = RejectBody,
    responses(
        (status = 200, body = MineView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn reject(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<RejectBody>,
) -> Result<HttpResponse, AppError> {
    let id: TrialId = parse_id(&id)?;
    let trial = state
        .trials
        .decide(&current.account, id, Verdict::Reject, Some(body.0.reason))
        .await?;
    Ok(HttpResponse::Ok().json(MineView::from(trial)))
}

/// Takes back a decision while it may still be undone (admin).
#[utoipa::path(post, path = "/admin/trials/{id}/undo", tag = "trials",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = MineView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn undo(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: TrialId = parse_id(&id)?;
    let trial = state.trials.undo(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(MineView::from(trial)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum BulkAction {
    Approve,
    Reject,
}

#[derive(Deserialize, ToSchema)]
struct BulkBody {
    action: BulkAction,
    /// Request ids, at most 200.
    ids: Vec<String>,
    /// Required to reject.
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct BulkResult {
    id: String,
    /// `decided`, `already_decided` or `not_found`.
    outcome: &'static str,
    status: Option<TrialStatus>,
}

#[derive(Serialize, ToSchema)]
struct BulkResults {
    results: Vec<BulkResult>,
}

/// Approves or rejects many requests (admin). Each request is decided on
/// its own: one that fails (already decided, unknown) does not stop the
/// others.
#[utoipa::path(post, path = "/admin/trials/bulk", tag = "trials", security(("session" = [])),
    request_body = BulkBody,
    responses(
        (status = 200, body = BulkResults),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn bulk(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<BulkBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let verdict = match body.action {
        BulkAction::Approve => Verdict::Approve,
        BulkAction::Reject => Verdict::Reject,
    };
    let outcomes = state
        .trials
        .decide_many(&current.account, verdict, &body.ids, body.reason)
        .await?;
    let results: Vec<BulkResult> = outcomes
        .into_iter()
        .map(|(id, outcome)| {
            let (outcome, status) = match outcome {
                BulkOutcome::Decided(trial) => ("decided", Some(trial.status)),
                BulkOutcome::AlreadyDecided(standing) => {
                    ("already_decided", Some(standing.trial.status))
                }
                BulkOutcome::NotFound => ("not_found", None),
            };
            BulkResult {
                id,
                outcome,
                status,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(BulkResults { results }))
}

#[derive(Deserialize, ToSchema)]
struct EndBody {
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Ended {
    request: MineView,
    access: EntitlementView,
}

/// Ends an approved trial now (admin): the request, and its right to read
/// as it stands after (ended at this moment).
#[utoipa::path(post, path = "/admin/trials/{id}/end", tag = "trials",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = EndBody,
    responses(
        (status = 200, body = Ended),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn end(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<EndBody>,
) -> Result<HttpResponse, AppError> {
    let id: TrialId = parse_id(&id)?;
    let (trial, entitlement) = state
        .trials
        .end_early(&current.account, id, body.0.reason)
        .await?;
    Ok(HttpResponse::Ok().json(Ended {
        request: MineView::from(trial),
        access: EntitlementView::new(entitlement, state.clock.now()),
    }))
}
