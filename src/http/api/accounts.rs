//! JSON endpoints for accounts.

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::access::model::Entitlement;
use crate::access::Decision;
use crate::accounts::model::{Account, AccountId, Role};
use crate::accounts::service::{AccountError, Registration};
use crate::accounts::store::AccountFilter;
use crate::http::api::access::EntitlementView;
use crate::http::api::responses::{Conflict, Forbidden, NotFound, RateLimited, Unauthorized};
use crate::http::extract::{client_ip, parse_id, ApiJson, Paging};
use crate::http::session::{removal_cookie, session_cookie, CurrentAccount};
use crate::newsletter::service::{Holder, NewsletterError, Preferences};
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::TrialRequest;

#[derive(OpenApi)]
#[openapi(paths(
    register,
    verify,
    login,
    logout,
    me,
    change_password,
    request_reset,
    confirm_reset,
    list_accounts,
    set_role
))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::post().to(register))
        .route("/accounts/verify", web::post().to(verify))
        .route("/sessions", web::post().to(login))
        .route("/sessions", web::delete().to(logout))
        .route("/me", web::get().to(me))
        .route("/me/password", web::put().to(change_password))
        .route("/password-resets", web::post().to(request_reset))
        .route("/password-resets/confirm", web::post().to(confirm_reset));
}

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(list_accounts))
        .route("/accounts/{id}/role", web::put().to(set_role));
}

impl From<AccountError> for AppError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(errors) => AppError::Validation(errors),
            AccountError::InvalidToken => AppError::field(
                "token",
                "invalid_or_expired",
                "this link is invalid, has been used, or has expired",
            ),
            AccountError::InvalidCredentials => AppError::Unauthorized {
                detail: "wrong email or password",
            },
            AccountError::Busy { retry_after } => AppError::Busy {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            AccountError::RateLimited { retry_after } => AppError::RateLimited {
                retry_after_secs: u64::try_from(retry_after.num_seconds().max(1)).unwrap_or(1),
            },
            AccountError::AlreadyExists => AppError::Conflict {
                reason: "already_exists",
                detail: "an account with this email already exists".into(),
            },
            AccountError::NotFound => AppError::NotFound,
            AccountError::Forbidden(role) => AppError::only(role),
            AccountError::OwnRole => AppError::Conflict {
                reason: "own_role",
                detail: "admins cannot change their own role".into(),
            },
            AccountError::Storage(e) => e.into(),
            e @ (AccountError::Compose(_) | AccountError::Hashing(_)) => {
                AppError::Internal(e.into())
            }
        }
    }
}

/// An account as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    id: AccountId,
    #[schema(format = Email)]
    email: String,
    name: String,
    company: Option<String>,
    job_title: Option<String>,
    role: Role,
    email_verified: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            email: a.email.to_string(),
            name: a.name,
            company: a.company,
            job_title: a.job_title,
            role: a.role,
            email_verified: a.email_verified_at.is_some(),
            created_at: NaiveDateTime::and_utc(&a.created_at),
        }
    }
}

/// What a registration is answered with, whether or not the address already
/// had an account; the registration page says the same.
pub const REGISTERED: &str = "Check your inbox: we have sent a message to this address.";

/// What a request for a reset link is answered with, whatever the address;
/// the page says the same.
pub const RESET_REQUESTED: &str =
    "If this address has an account, we have sent it a link to choose a new password.";

/// What a request that sends mail is answered with, whatever the address.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// `accepted`.
    status: &'static str,
    message: &'static str,
}

/// What an action that has nothing else to return is answered with.
#[derive(Serialize, ToSchema)]
pub struct Done {
    /// What happened: `verified`, `password_changed`, `confirmed` …
    status: &'static str,
}

impl Accepted {
    pub fn new(message: &'static str) -> Self {
        Self {
            status: "accepted",
            message,
        }
    }
}

impl Done {
    pub fn new(status: &'static str) -> Self {
        Self { status }
    }
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    password: SecretString,
    name: String,
    company: Option<String>,
    job_title: Option<String>,
}

/// Registers an account and mails a verification link. The answer is the
/// same whether or not the address already had an account.
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = RegisterBody,
    responses((status = 202, body = Accepted), (status = 429, response = RateLimited)))]
#[tracing::instrument(skip_all)]
async fn register(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RegisterBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    state
        .accounts
        .register(
            Registration {
                email: body.email,
                password: body.password,
                name: body.name,
                company: body.company,
                job_title: body.job_title,
            },
            client_ip(&req),
        )
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message: REGISTERED,
    }))
}

#[derive(Deserialize, ToSchema)]
struct TokenBody {
    /// The token from the emailed link.
    token: String,
}

/// Verifies the account's address with the token from the emailed link.
#[utoipa::path(post, path = "/accounts/verify", tag = "accounts", request_body = TokenBody,
    responses(
        (status = 200, body = Done, description = "`verified`"),
        (status = 429, response = RateLimited),
    ))]
#[tracing::instrument(skip_all)]
async fn verify(
    req: HttpRequest,
    state: Data<AppState>,
    body: ApiJson<TokenBody>,
) -> Result<HttpResponse, AppError> {
    state
        .accounts
        .verify_email(&body.0.token, client_ip(&req))
        .await?;
    Ok(HttpResponse::Ok().json(Done { status: "verified" }))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// Logs in: the answer sets the session cookie. Any wrong address or
/// password is the same 401.
#[utoipa::path(post, path = "/sessions", tag = "accounts", request_body = LoginBody,
    responses(
        (status = 200, body = AccountView, description = "Logged in; `Set-Cookie` carries the session",
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
    ))]
#[tracing::instrument(skip_all)]
async fn login(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let login = state
        .accounts
        .login(&body.email, body.password, client_ip(&req))
        .await?;
    let cookie = session_cookie(
        login.token.expose(),
        login.max_age,
        state.settings.server.secure_cookies(),
    );
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(AccountView::from(login.account)))
}

/// Logs out: ends this session and clears its cookie.
#[utoipa::path(delete, path = "/sessions", tag = "accounts", security(("session" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, response = Unauthorized)))]
#[tracing::instrument(skip_all, fields(account_id = %current.account.id))]
async fn logout(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    state.accounts.logout(current.session).await?;
    Ok(HttpResponse::NoContent()
        .cookie(removal_cookie(state.settings.server.secure_cookies()))
        .finish())
}

/// The account, what it may read now and why, and its newsletter.
#[derive(Serialize, ToSchema)]
struct MeView {
    #[serde(flatten)]
    account: AccountView,
    access: Decision,
    entitlements: Vec<EntitlementView>,
    /// `null` when the account's address is not (or not yet) subscribed.
    newsletter: Option<Preferences>,
    trial: Option<TrialSummary>,
}

#[derive(Serialize, ToSchema)]
struct TrialSummary {
    status: crate::trials::model::TrialStatus,
    decision_due_by: chrono::DateTime<chrono::Utc>,
}

/// Everything about an account beyond the account itself: what it may read
/// now and why, its rights to read, its newsletter and its latest trial
/// request. `/me` and the account page show the same.
pub struct Overview {
    pub access: Decision,
    pub entitlements: Vec<Entitlement>,
    /// `None` when the account's address is not (or not yet) subscribed.
    pub newsletter: Option<Preferences>,
    pub trial: Option<TrialRequest>,
}

pub async fn overview(state: &AppState, account: &Account) -> Result<Overview, AppError> {
    let (access, entitlements) = state.access.summary(account.clone()).await?;
    let newsletter = match state
        .newsletter
        .preferences(Holder::Account(account.clone()))
        .await
    {
        Ok(preferences) => Some(preferences),
        Err(NewsletterError::NotSubscribed | NewsletterError::Unverified) => None,
        Err(other) => return Err(other.into()),
    };
    let trial = state.trials.mine(account).await?;
    Ok(Overview {
        access,
        entitlements,
        newsletter,
        trial,
    })
}

/// The logged-in account, what it may read now and why, its rights to read,
/// its newsletter and its latest trial request.
#[utoipa::path(get, path = "/me", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = MeView), (status = 401, response = Unauthorized)))]
async fn me(state: Data<AppState>, current: CurrentAccount) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let overview = overview(&state, &current.account).await?;
    Ok(HttpResponse::Ok().json(MeView {
        account: AccountView::from(current.account),
        access: overview.access,
        entitlements: overview
            .entitlements
            .into_iter()
            .map(|e| EntitlementView::new(e, now))
            .collect(),
        newsletter: overview.newsletter,
        trial: overview.trial.map(|t| TrialSummary {
            status: t.status,
            decision_due_by: t.decision_due_by.and_utc(),
        }),
    }))
}

#[derive(Deserialize, ToSchema)]
struct PasswordChangeBody {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    new_password: SecretString,
}

/// Changes the password. Ends the account's other sessions; this one stays
/// logged in.
#[utoipa::path(put, path = "/me/password", tag = "accounts", security(("session" = [])),
    request_body = PasswordChangeBody,
    responses(
        (status = 200, body = Done, description = "`password_changed`"),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
    ))]
#[tracing::instrument(skip_all, fields(account_id = %current.account.id))]
async fn change_password(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<PasswordChangeBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    state
        .accounts
        .change_password(
            &current.account,
            &current.session,
            body.current_password,
            body.new_password,
        )
        .await?;
    Ok(HttpResponse::Ok().json(Done {
        status: "password_changed",
    }))
}

#[derive(Deserialize, ToSchema)]
struct ResetBody {
    email: String,
}

/// Mails a single-use link to choose a new password, if the address has an
/// account; the answer is the same either way.
#[utoipa::path(post, path = "/password-resets", tag = "accounts", request_body = ResetBody,
    responses((status = 202, body = Accepted), (status = 429, response = RateLimited)))]
#[tracing::instrument(skip_all)]
async fn request_reset(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ResetBody>,
) -> Result<HttpResponse, AppError> {
    state
        .accounts
        .request_password_reset(&body.0.email, client_ip(&req))
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message: RESET_REQUESTED,
    }))
}

#[derive(Deserialize, ToSchema)]
struct ConfirmResetBody {
    /// The token from the emailed link.
    token: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    password: SecretString,
}

/// Sets a new password with the token from the emailed link, and ends every
/// session of the account.
#[utoipa::path(post, path = "/password-resets/confirm", tag = "accounts",
    request_body = ConfirmResetBody,
    responses(
        (status = 200, body = Done, description = "`password_changed`"),
        (status = 429, response = RateLimited),
    ))]
#[tracing::instrument(skip_all)]
async fn confirm_reset(
    req: HttpRequest,
    state: Data<AppState>,
    body: ApiJson<ConfirmResetBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    state
        .accounts
        .confirm_password_reset(&body.token, body.password, client_ip(&req))
        .await?;
    Ok(HttpResponse::Ok().json(Done {
        status: "password_changed",
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Part of the address or the name.
    q: Option<String>,
    role: Option<Role>,
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct AccountPage {
    accounts: Vec<AccountView>,
    page: i64,
    per_page: i64,
    total: i64,
}

/// Accounts, newest first (admin).
#[utoipa::path(get, path = "/admin/accounts", tag = "accounts", security(("session" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = AccountPage),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn list_accounts(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let paging = Paging::parse(query.page, query.per_page, 50, 200)?;
    let (accounts, total) = state
        .accounts
        .list(
            &current.account,
            AccountFilter {
                search: query.q.clone(),
                role: query.role,
            },
            paging.per_page,
            paging.offset(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(AccountPage {
        accounts: accounts.into_iter().map(AccountView::from).collect(),
        page: paging.page,
        per_page: paging.per_page,
        total,
    }))
}

#[derive(Deserialize, ToSchema)]
struct RoleBody {
    role: Role,
}

/// Sets an account's role (admin); admins cannot change their own.
#[utoipa::path(put, path = "/admin/accounts/{id}/role", tag = "accounts",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body = RoleBody,
    responses(
        (status = 200, body = AccountView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn set_role(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, AppError> {
    let id: AccountId = parse_id(&id)?;
    let account = state
        .accounts
        .set_role(&current.account, id, body.0.role)
        .await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}
