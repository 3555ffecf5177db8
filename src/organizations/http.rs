//! JSON endpoints: "does my company subscribe?", the join link, and the
//! admins' organisations.

use actix_web::web::{self, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{MemberId, Organization, OrganizationId};
use super::service::{Detail, OrganizationError, OrganizationForm, OrganizationPatch};
use crate::accounts::{AccountId, CurrentAccount};
use crate::error::AppError;
use crate::extract::{client_ip, parse_id, ApiJson};
use crate::state::AppState;

/// What every company-access request is told, whatever the address.
pub const CHECK_SENT: &str = "If your company subscribes, we have emailed you a link to join it; either way, look in your inbox for our answer.";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/company-access", web::post().to(check))
        .route("/company-access/confirm", web::post().to(confirm))
        .route("/admin/organizations", web::get().to(list))
        .route("/admin/organizations", web::post().to(create))
        .route("/admin/organizations/{id}", web::get().to(one))
        .route("/admin/organizations/{id}", web::patch().to(update))
        .route(
            "/admin/organizations/{id}/domains",
            web::post().to(add_domain),
        )
        .route(
            "/admin/organizations/{id}/domains/{domain}",
            web::delete().to(remove_domain),
        )
        .route("/admin/organizations/{id}/members", web::get().to(members))
        .route(
            "/admin/organizations/{id}/members/{member}",
            web::delete().to(remove_member),
        )
        .route(
            "/admin/organizations/{id}/managers",
            web::post().to(add_manager),
        )
        .route(
            "/admin/organizations/{id}/managers/{account}",
            web::delete().to(remove_manager),
        );
}

impl From<OrganizationError> for AppError {
    fn from(error: OrganizationError) -> Self {
        let conflict = |reason, detail: String| AppError::Conflict { reason, detail };
        match error {
            OrganizationError::Invalid(errors) => AppError::Validation(errors),
            OrganizationError::NotFound => AppError::NotFound,
            OrganizationError::DomainTaken(domain) => AppError::field(
                "domain",
                "domain_taken",
                format!("{domain} already belongs to an organisation"),
            ),
            e @ OrganizationError::SeatsInUse { .. } => {
                AppError::field("seat_count", "seats_in_use", e.to_string())
            }
            OrganizationError::InvalidLink => AppError::field(
                "token",
                "invalid_or_expired",
                "this link is invalid, has been used or has expired",
            ),
            OrganizationError::WrongAddress => AppError::Forbidden {
                detail: "this link was sent to another email address: log in with that address",
            },
            OrganizationError::Full => conflict(
                "seats_taken",
                "all of your company's seats are taken".to_owned(),
            ),
            OrganizationError::AlreadyMember => conflict(
                "already_member",
                "this account already holds a company seat".to_owned(),
            ),
            OrganizationError::Limited(limited) => limited.into(),
            OrganizationError::NoSuchMember => AppError::NotFound,
            OrganizationError::NoSuchAccount => {
                AppError::field("email", "no_such_account", "no account has this address")
            }
            OrganizationError::Account(e) => e.into(),
            OrganizationError::Storage(e) => e.into(),
            e @ OrganizationError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

#[derive(Serialize)]
pub struct OrganizationView {
    id: OrganizationId,
    name: String,
    seat_count: i32,
    seats_used: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    notes: Option<String>,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        Self {
            id: o.id,
            name: o.name,
            seat_count: o.seat_count,
            seats_used: o.seats_used,
            starts_at: o.starts_at.and_utc(),
            ends_at: o.ends_at.and_utc(),
            notes: o.notes,
        }
    }
}

#[derive(Serialize)]
struct MemberView {
    id: MemberId,
    account_id: AccountId,
    email: String,
    name: String,
    joined_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct ManagerView {
    account_id: AccountId,
    email: String,
    name: String,
}

#[derive(Serialize)]
struct DetailView {
    #[serde(flatten)]
    organization: OrganizationView,
    domains: Vec<String>,
    members: Vec<MemberView>,
    managers: Vec<ManagerView>,
}

impl From<Detail> for DetailView {
    fn from(d: Detail) -> Self {
        Self {
            organization: d.organization.into(),
            domains: d.domains,
            members: members_view(d.members),
            managers: d
                .managers
                .into_iter()
                .map(|a| ManagerView {
                    account_id: a.id,
                    email: a.email.to_string(),
                    name: a.name,
                })
                .collect(),
        }
    }
}

fn members_view(members: Vec<(super::model::Member, crate::accounts::Account)>) -> Vec<MemberView> {
    members
        .into_iter()
        .map(|(m, a)| MemberView {
            id: m.id,
            account_id: a.id,
            email: a.email.to_string(),
            name: a.name,
            joined_at: m.joined_at.and_utc(),
        })
        .collect()
}

#[derive(Deserialize)]
struct CheckBody {
    email: String,
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

/// 202 whatever the address: the answer goes to its inbox.
#[tracing::instrument(skip_all)]
async fn check(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<CheckBody>,
) -> Result<HttpResponse, AppError> {
    state
        .organizations
        .check_access(&body.0.email, client_ip(&req))
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message: CHECK_SENT,
    }))
}

#[derive(Deserialize)]
struct ConfirmBody {
    token: String,
}

#[derive(Serialize)]
struct Joined {
    organization: String,
    ends_at: DateTime<Utc>,
}

async fn confirm(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<ConfirmBody>,
) -> Result<HttpResponse, AppError> {
    let organization = state
        .organizations
        .join(&current.account, &body.0.token)
        .await?;
    Ok(HttpResponse::Ok().json(Joined {
        organization: organization.name,
        ends_at: organization.ends_at.and_utc(),
    }))
}

async fn list(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    let organizations = state.organizations.list(&current.account).await?;
    Ok(HttpResponse::Ok().json(
        organizations
            .into_iter()
            .map(OrganizationView::from)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    seat_count: i64,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
}

async fn create(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let detail = state
        .organizations
        .create(
            &current.account,
            OrganizationForm {
                name: body.name,
                seat_count: body.seat_count,
                starts_at: body.starts_at,
                ends_at: body.ends_at,
                notes: body.notes,
                domains: body.domains,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(DetailView::from(detail)))
}

async fn one(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state.organizations.get(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

#[derive(Deserialize)]
struct UpdateBody {
    name: Option<String>,
    seat_count: Option<i64>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// An empty string clears the notes.
    notes: Option<String>,
}

async fn update(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let body = body.0;
    let detail = state
        .organizations
        .update(
            &current.account,
            id,
            OrganizationPatch {
                name: body.name,
                seat_count: body.seat_count,
                starts_at: body.starts_at,
                ends_at: body.ends_at,
                notes: body.notes.map(Some),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

#[derive(Deserialize)]
struct DomainBody {
    domain: String,
}

async fn add_domain(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
    body: ApiJson<DomainBody>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state
        .organizations
        .add_domain(&current.account, id, &body.0.domain)
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

async fn remove_domain(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, domain) = path.into_inner();
    let detail = state
        .organizations
        .remove_domain(&current.account, parse_id(&id)?, &domain)
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

async fn members(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state.organizations.get(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(members_view(detail.members)))
}

async fn remove_member(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, member) = path.into_inner();
    let detail = state
        .organizations
        .remove_member(&current.account, parse_id(&id)?, parse_id(&member)?)
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

#[derive(Deserialize)]
struct ManagerBody {
    email: String,
}

async fn add_manager(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
    body: ApiJson<ManagerBody>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state
        .organizations
        .add_manager(&current.account, id, &body.0.email)
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

async fn remove_manager(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, account) = path.into_inner();
    let detail = state
        .organizations
        .remove_manager(&current.account, parse_id(&id)?, parse_id(&account)?)
        .await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}
