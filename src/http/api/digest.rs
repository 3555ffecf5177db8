//! Admin endpoints for the daily digest.

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::digest::service::{DigestError, Preview, RunDetail, RunView, Today};
use crate::http::api::responses::{Conflict, Forbidden, NotFound, Unauthorized};
use crate::http::session::CurrentAccount;
use crate::platform::error::AppError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(list, preview, one, variants, send))]
pub struct Api;

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/digests", web::get().to(list))
        .route("/digests/preview", web::get().to(preview))
        .route("/digests/{date}", web::get().to(one))
        .route("/digests/{date}/variants", web::get().to(variants))
        .route("/digests/{date}/send", web::post().to(send));
}

impl From<DigestError> for AppError {
    fn from(error: DigestError) -> Self {
        match error {
            DigestError::Invalid(errors) => AppError::Validation(errors),
            DigestError::NotFound => AppError::NotFound,
            DigestError::FutureDate => AppError::Conflict {
                reason: "future_date",
                detail: "that date has not begun yet in the digest's time zone".into(),
            },
            DigestError::BeforeLatest => AppError::Conflict {
                reason: "before_latest_run",
                detail: "a run for a later date exists; this one would repeat its articles".into(),
            },
            DigestError::Account(e) => e.into(),
            DigestError::Storage(e) => e.into(),
            e @ DigestError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct RunList {
    /// Newest first.
    runs: Vec<RunView>,
    today: Today,
}

/// The digest's runs with their counts, and today's schedule (admin).
#[utoipa::path(get, path = "/admin/digests", tag = "digest", security(("session" = [])),
    responses(
        (status = 200, body = RunList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
#[tracing::instrument(skip_all)]
async fn list(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    let runs = state.digest.list(&current.account).await?;
    Ok(HttpResponse::Ok().json(RunList {
        runs,
        today: state.digest.today(),
    }))
}

/// The run of one date (admin).
#[utoipa::path(get, path = "/admin/digests/{date}", tag = "digest", security(("session" = [])),
    params(("date" = chrono::NaiveDate, Path, description = "The run's date, YYYY-MM-DD")),
    responses(
        (status = 200, body = RunView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
#[tracing::instrument(skip_all, fields(date = %date))]
async fn one(
    state: Data<AppState>,
    current: CurrentAccount,
    date: Path<String>,
) -> Result<HttpResponse, AppError> {
    let run = state.digest.get(&current.account, &date).await?;
    Ok(HttpResponse::Ok().json(run))
}

/// The run of a date (null before it starts) and each section variant,
/// rendered.
#[utoipa::path(get, path = "/admin/digests/{date}/variants", tag = "digest",
    security(("session" = [])),
    params(("date" = chrono::NaiveDate, Path, description = "The run's date, YYYY-MM-DD")),
    responses(
        (status = 200, body = RunDetail),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    ))]
#[tracing::instrument(skip_all, fields(date = %date))]
async fn variants(
    state: Data<AppState>,
    current: CurrentAccount,
    date: Path<String>,
) -> Result<HttpResponse, AppError> {
    let detail = state.digest.detail(&current.account, &date).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// 202: the run is started (or resumed) and a worker does the sending; a
/// new run is `preparing` until the worker has created its deliveries.
#[utoipa::path(post, path = "/admin/digests/{date}/send", tag = "digest",
    security(("session" = [])),
    params(("date" = chrono::NaiveDate, Path, description = "The run's date, YYYY-MM-DD")),
    responses(
        (status = 202, body = RunView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    ))]
#[tracing::instrument(skip_all, fields(date = %date))]
async fn send(
    state: Data<AppState>,
    current: CurrentAccount,
    date: Path<String>,
) -> Result<HttpResponse, AppError> {
    let started = state.digest.start(&current.account, &date).await?;
    Ok(HttpResponse::Accepted().json(started.run))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// YYYY-MM-DD.
    #[param(value_type = chrono::NaiveDate)]
    date: String,
    /// Section slugs separated by commas; all sections when absent.
    sections: Option<String>,
}

/// The digest of a date as a subscriber to these sections would get it
/// (editor).
#[utoipa::path(get, path = "/admin/digests/preview", tag = "digest", security(("session" = [])),
    params(PreviewQuery),
    responses(
        (status = 200, body = Preview),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
#[tracing::instrument(skip_all)]
async fn preview(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<PreviewQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let sections = query.sections.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let preview = state
        .digest
        .preview(&current.account, &query.date, sections)
        .await?;
    Ok(HttpResponse::Ok().json(preview))
}
