//! Admin endpoints for subscriptions granted by hand.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::access::model::{Entitlement, EntitlementId, EntitlementKind, EntitlementState};
use crate::access::service::{AccessError, GrantRequest};
use crate::accounts::AccountId;
use crate::flows::revoke::revoke_entitlement;
use crate::http::api::responses::{Forbidden, NotFound, Unauthorized};
use crate::http::extract::{parse_id, ApiJson};
use crate::http::session::CurrentAccount;
use crate::platform::error::AppError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(grant, list, revoke))]
pub struct Api;

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts/{id}/grants", web::post().to(grant))
        .route("/accounts/{id}/entitlements", web::get().to(list))
        .route("/entitlements/{id}/revoke", web::post().to(revoke));
}

impl From<AccessError> for AppError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Invalid(errors) => AppError::Validation(errors),
            AccessError::NoSuchAccount | AccessError::NoSuchEntitlement => AppError::NotFound,
            AccessError::Account(e) => e.into(),
            AccessError::Storage(e) => e.into(),
        }
    }
}

/// A right to read: its kind, whether it holds now, and its period.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementView {
    id: EntitlementId,
    kind: EntitlementKind,
    state: EntitlementState,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

impl EntitlementView {
    pub fn new(e: Entitlement, now: DateTime<Utc>) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            state: e.state(now.naive_utc()),
            starts_at: e.starts_at.and_utc(),
            ends_at: e.ends_at.map(|t| t.and_utc()),
            revoked_at: e.revoked_at.map(|t| t.and_utc()),
            note: e.note,
        }
    }
}

/// A period with no `starts_at` starts now; one with no `ends_at` does not end.
#[derive(Deserialize, ToSchema)]
struct GrantBody {
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

/// Grants an account a subscription by hand (admin).
#[utoipa::path(post, path = "/admin/accounts/{id}/grants", tag = "access",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body = GrantBody,
    responses(
        (status = 201, body = EntitlementView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn grant(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<GrantBody>,
) -> Result<HttpResponse, AppError> {
    let account: AccountId = parse_id(&id)?;
    let body = body.0;
    let entitlement = state
        .access
        .grant(
            &current.account,
            account,
            GrantRequest {
                starts_at: body.starts_at,
                ends_at: body.ends_at,
                note: body.note,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(EntitlementView::new(entitlement, state.clock.now())))
}

#[derive(Serialize, ToSchema)]
struct EntitlementList {
    entitlements: Vec<EntitlementView>,
}

/// An account's rights to read, current and past (admin).
#[utoipa::path(get, path = "/admin/accounts/{id}/entitlements", tag = "access",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, body = EntitlementList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn list(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let account: AccountId = parse_id(&id)?;
    let now = state.clock.now();
    let entitlements = state
        .access
        .entitlements_of(&current.account, account)
        .await?;
    Ok(HttpResponse::Ok().json(EntitlementList {
        entitlements: entitlements
            .into_iter()
            .map(|e| EntitlementView::new(e, now))
            .collect(),
    }))
}

/// Ends a right to read now (admin).
#[utoipa::path(post, path = "/admin/entitlements/{id}/revoke", tag = "access",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The entitlement's id")),
    responses(
        (status = 200, body = EntitlementView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn revoke(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: EntitlementId = parse_id(&id)?;
    let (revoked, _) = revoke_entitlement(&state.pool, &state.clock, &current.account, id).await?;
    Ok(HttpResponse::Ok().json(EntitlementView::new(revoked, state.clock.now())))
}
