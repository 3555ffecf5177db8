//! JSON endpoints: "does my company subscribe?", the join link, and the
//! admins' organisations.

use actix_web::web::{self, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::accounts::AccountId;
use crate::flows::join::join_company;
use crate::http::api::accounts::Accepted;
use crate::http::api::responses::{Conflict, Forbidden, NotFound, RateLimited, Unauthorized};
use crate::http::extract::{client_ip, parse_id, ApiJson};
use crate::http::session::CurrentAccount;
use crate::organizations::model::{MemberId, Organization, OrganizationId};
use crate::organizations::service::{
    Detail, OrganizationError, OrganizationForm, OrganizationPatch,
};
use crate::platform::error::AppError;
use crate::state::AppState;

/// What every company-access request is told, whatever the address.
pub const CHECK_SENT: &str = "If your company subscribes, we have emailed you a link to join it; either way, look in your inbox for our answer.";

#[derive(OpenApi)]
#[openapi(paths(
    check,
    confirm,
    list,
    create,
    one,
    update,
    add_domain,
    remove_domain,
    members,
    remove_member,
    add_manager,
    remove_manager
))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/company-access", web::post().to(check))
        .route("/company-access/confirm", web::post().to(confirm));
}

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/organizations", web::get().to(list))
        .route("/organizations", web::post().to(create))
        .route("/organizations/{id}", web::get().to(one))
        .route("/organizations/{id}", web::patch().to(update))
        .route("/organizations/{id}/domains", web::post().to(add_domain))
        .route(
            "/organizations/{id}/domains/{domain}",
            web::delete().to(remove_domain),
        )
        .route("/organizations/{id}/members", web::get().to(members))
        .route(
            "/organizations/{id}/members/{member}",
            web::delete().to(remove_member),
        )
        .route("/organizations/{id}/managers", web::post().to(add_manager))
        .route(
            "/organizations/{id}/managers/{account}",
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

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
struct MemberView {
    id: MemberId,
    account_id: AccountId,
    #[schema(format = Email)]
    email: String,
    name: String,
    joined_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
struct ManagerView {
    account_id: AccountId,
    #[schema(format = Email)]
    email: String,
    name: String,
}

/// An organisation with its domains, members and managers.
#[derive(Serialize, ToSchema)]
#[schema(as = OrganizationDetail)]
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

fn members_view(
    members: Vec<(
        crate::organizations::model::Member,
        crate::accounts::Account,
    )>,
) -> Vec<MemberView> {
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

#[derive(Deserialize, ToSchema)]
struct CheckBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// Mails a link to join the company's subscription when the address's
/// domain belongs to a subscribed company with a free seat. 202 whatever
/// the address: the answer goes to its inbox.
#[utoipa::path(post, path = "/company-access", tag = "organizations", request_body = CheckBody,
    responses((status = 202, body = Accepted), (status = 429, response = RateLimited)))]
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
    Ok(HttpResponse::Accepted().json(Accepted::new(CHECK_SENT)))
}

#[derive(Deserialize, ToSchema)]
struct ConfirmBody {
    /// The token from the emailed link.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct Joined {
    organization: String,
    ends_at: DateTime<Utc>,
}

/// Takes a seat of the company's subscription with the emailed link's token.
#[utoipa::path(post, path = "/company-access/confirm", tag = "organizations",
    security(("session" = [])),
    request_body = ConfirmBody,
    responses(
        (status = 200, body = Joined),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    ))]
async fn confirm(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<ConfirmBody>,
) -> Result<HttpResponse, AppError> {
    let organization =
        join_company(&state.pool, &state.clock, &current.account, &body.0.token).await?;
    Ok(HttpResponse::Ok().json(Joined {
        organization: organization.name,
        ends_at: organization.ends_at.and_utc(),
    }))
}

/// Every organisation (admin).
#[utoipa::path(get, path = "/admin/organizations", tag = "organizations",
    security(("session" = [])),
    responses(
        (status = 200, body = Vec<OrganizationView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn list(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    let organizations = state.organizations.list(&current.account).await?;
    Ok(HttpResponse::Ok().json(
        organizations
            .into_iter()
            .map(OrganizationView::from)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize, ToSchema)]
struct CreateBody {
    name: String,
    seat_count: i64,
    /// Now when absent.
    starts_at: Option<DateTime<Utc>>,
    /// Optional in the body only so that a missing end is reported with
    /// every other refused field.
    #[schema(value_type = DateTime<Utc>, required = true)]
    ends_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    /// The email domains whose addresses may take a seat.
    #[serde(default)]
    #[schema(min_items = 1, required = true)]
    domains: Vec<String>,
}

/// Adds an organisation with its seats, period and domains (admin).
#[utoipa::path(post, path = "/admin/organizations", tag = "organizations",
    security(("session" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
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

/// One organisation (admin).
#[utoipa::path(get, path = "/admin/organizations/{id}", tag = "organizations",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn one(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state.organizations.get(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(DetailView::from(detail)))
}

/// Only the fields sent change.
#[derive(Deserialize, ToSchema)]
struct UpdateBody {
    name: Option<String>,
    seat_count: Option<i64>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// An empty string clears the notes.
    notes: Option<String>,
}

/// Changes an organisation (admin).
#[utoipa::path(patch, path = "/admin/organizations/{id}", tag = "organizations",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    request_body = UpdateBody,
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

#[derive(Deserialize, ToSchema)]
struct DomainBody {
    domain: String,
}

/// Adds an email domain whose addresses may take a seat (admin).
#[utoipa::path(post, path = "/admin/organizations/{id}/domains", tag = "organizations",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    request_body = DomainBody,
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

/// Removes a domain (admin).
#[utoipa::path(delete, path = "/admin/organizations/{id}/domains/{domain}", tag = "organizations",
    security(("session" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("domain" = String, Path, description = "The domain, `example.com`"),
    ),
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

/// The accounts holding a seat (admin).
#[utoipa::path(get, path = "/admin/organizations/{id}/members", tag = "organizations",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    responses(
        (status = 200, body = Vec<MemberView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn members(
    state: Data<AppState>,
    current: CurrentAccount,
    path: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let detail = state.organizations.get(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(members_view(detail.members)))
}

/// Frees a seat (admin).
#[utoipa::path(delete, path = "/admin/organizations/{id}/members/{member}", tag = "organizations",
    security(("session" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("member" = uuid::Uuid, Path, description = "The membership's id"),
    ),
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

#[derive(Deserialize, ToSchema)]
struct ManagerBody {
    /// The address of an existing account.
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// Lets an account manage the company's seats (admin).
#[utoipa::path(post, path = "/admin/organizations/{id}/managers", tag = "organizations",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    request_body = ManagerBody,
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

/// Takes an account's management away (admin).
#[utoipa::path(delete, path = "/admin/organizations/{id}/managers/{account}", tag = "organizations",
    security(("session" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("account" = uuid::Uuid, Path, description = "The manager's account id"),
    ),
    responses(
        (status = 200, body = DetailView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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
