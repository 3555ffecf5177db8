//! Admin endpoints for the daily digest.

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use serde::Deserialize;

use super::service::DigestError;
use crate::accounts::CurrentAccount;
use crate::error::AppError;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/digests", web::get().to(list))
        .route("/admin/digests/preview", web::get().to(preview))
        .route("/admin/digests/{date}", web::get().to(one))
        .route("/admin/digests/{date}/variants", web::get().to(variants))
        .route("/admin/digests/{date}/send", web::post().to(send));
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

#[tracing::instrument(skip_all)]
async fn list(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    let runs = state.digest.list(&current.account).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "runs": runs, "today": state.digest.today() })))
}

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
#[tracing::instrument(skip_all, fields(date = %date))]
async fn send(
    state: Data<AppState>,
    current: CurrentAccount,
    date: Path<String>,
) -> Result<HttpResponse, AppError> {
    let started = state.digest.start(&current.account, &date).await?;
    Ok(HttpResponse::Accepted().json(started.run))
}

#[derive(Deserialize)]
struct PreviewQuery {
    date: String,
    /// Section slugs separated by commas; all sections when absent.
    sections: Option<String>,
}

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
