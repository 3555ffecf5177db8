//! Pages for accounts: register, confirm the email address, log in and out,
//! and choose a new password by email. Each calls the same
//! `AccountService` function as its JSON twin in `accounts::http`, and
//! says what it says.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{local_path, see_other, see_other_with, too_many, with_cookie, Page, Site, Visitor};
use crate::accounts::model::TokenPurpose;
use crate::accounts::service::{AccountError, Registration};
use crate::http::api::accounts::{REGISTERED, RESET_REQUESTED};
use crate::http::extract::client_ip;
use crate::http::session::{removal_cookie, session_cookie};
use crate::platform::domain::{FieldError, Password};
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("login.html", include_str!("templates/login.html")),
    ("register.html", include_str!("templates/register.html")),
    (
        "check_email.html",
        include_str!("templates/check_email.html"),
    ),
    (
        "verify_email.html",
        include_str!("templates/verify_email.html"),
    ),
    (
        "link_expired.html",
        include_str!("templates/link_expired.html"),
    ),
    (
        "forgot_password.html",
        include_str!("templates/forgot_password.html"),
    ),
    (
        "password_reset.html",
        include_str!("templates/password_reset.html"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/register", web::get().to(register_page))
        .route("/register", web::post().to(register))
        .route("/register/check-email", web::get().to(registered))
        .route("/verify-email", web::get().to(verify_email_page))
        .route("/verify-email", web::post().to(verify_email))
        .route("/forgot-password", web::get().to(forgot_password_page))
        .route("/forgot-password", web::post().to(forgot_password))
        .route(
            "/forgot-password/check-email",
            web::get().to(reset_requested),
        )
        .route("/password-reset", web::get().to(password_reset_page))
        .route("/password-reset", web::post().to(password_reset));
}

/// The errors in the order of the fields on the page, so that the summary
/// reads top to bottom as the form does.
pub(super) fn in_page_order(mut errors: Vec<FieldError>, fields: &[&str]) -> Vec<FieldError> {
    errors.sort_by_key(|e| {
        fields
            .iter()
            .position(|f| *f == e.field)
            .unwrap_or(fields.len())
    });
    errors
}

/// What a field says when password checks have been refused for a while.
pub(super) fn rate_limited(form: Form, field: &str, retry_after_secs: u64) -> Form {
    form.with_error(
        field,
        "rate_limited",
        &format!(
            "too many attempts: try again in {} minutes",
            retry_after_secs.div_ceil(60)
        ),
    )
}

/// The hint beside every new-password field: the rule `Password` applies.
pub(super) fn password_hint() -> String {
    format!(
        "At least {} characters. A few unrelated words are easy to remember and hard to guess.",
        Password::MIN_CHARS
    )
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    site: Data<Site>,
    visitor: Visitor,
    query: Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = local_path(query.next.as_deref());
    if visitor.account.is_some() {
        return Ok(see_other(&next));
    }
    show_login(&site, &visitor, Form::new(), &next)
}

fn show_login(
    site: &Site,
    visitor: &Visitor,
    form: Form,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    Page::new(
        "login.html",
        context! { title => "Log in", form => form, next => next },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn login(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let next = local_path(posted.optional("next").as_deref());
    let email = posted.value("email");
    let password = SecretString::from(posted.value("password"));
    match state
        .accounts
        .login(&email, password, client_ip(&req))
        .await
        .map_err(AppError::from)
    {
        Ok(login) => {
            let cookie = session_cookie(
                login.token.expose(),
                login.max_age,
                state.settings.server.secure_cookies(),
            );
            let welcome = format!("You are logged in as {}.", login.account.email);
            Ok(with_cookie(
                see_other_with(&site, &next, Kind::Success, welcome),
                cookie,
            ))
        }
        Err(error) => {
            let form = Form::from_posted(&posted, &["email"]);
            let form = match error {
                AppError::Unauthorized { .. } => form.with_error(
                    "email",
                    "invalid_credentials",
                    "the email address or the password is not right",
                ),
                AppError::RateLimited { retry_after_secs } => {
                    let form = rate_limited(form, "email", retry_after_secs);
                    return Ok(too_many(
                        show_login(&site, &visitor, form, &next)?,
                        retry_after_secs,
                    ));
                }
                other => match field_errors(&other) {
                    Some(errors) => form.with_errors(errors),
                    None => return Err(other),
                },
            };
            show_login(&site, &visitor, form, &next)
        }
    }
}

#[tracing::instrument(skip_all)]
async fn logout(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    _posted: Posted,
) -> Result<HttpResponse, AppError> {
    if let Some(session) = visitor.session {
        state.accounts.logout(session).await?;
    }
    Ok(with_cookie(
        see_other_with(&site, "/", Kind::Info, "You are logged out."),
        removal_cookie(state.settings.server.secure_cookies()),
    ))
}

/// The registration form's fields in page order; all but the password are
/// shown again after an error.
const REGISTER_FIELDS: &[&str] = &["name", "email", "password", "company", "job_title"];
const REGISTER_KEPT: &[&str] = &["name", "email", "company", "job_title"];

async fn register_page(site: Data<Site>, visitor: Visitor) -> Result<HttpResponse, AppError> {
    if visitor.account.is_some() {
        return Ok(see_other("/account"));
    }
    show_register(&site, &visitor, Form::new())
}

fn show_register(site: &Site, visitor: &Visitor, form: Form) -> Result<HttpResponse, AppError> {
    let status = form.status();
    Page::new(
        "register.html",
        context! {
            title => "Create an account",
            form => form,
            password_hint => password_hint(),
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn register(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    if visitor.account.is_some() {
        return Ok(see_other("/account"));
    }
    let registration = Registration {
        email: posted.value("email"),
        password: SecretString::from(posted.value("password")),
        name: posted.value("name"),
        company: posted.optional("company"),
        job_title: posted.optional("job_title"),
    };
    match state
        .accounts
        .register(registration, client_ip(&req))
        .await
        .map_err(AppError::from)
    {
        // The same page whether the address was new or known.
        Ok(()) => Ok(see_other("/register/check-email")),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, REGISTER_KEPT)
                .with_errors(in_page_order(errors, REGISTER_FIELDS));
            show_register(&site, &visitor, form)
        }
    }
}

async fn registered(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    Page::new(
        "check_email.html",
        context! {
            title => "Check your inbox",
            message => REGISTERED,
            after => "register",
            hours => state.settings.auth.verification_ttl_hours,
        },
    )
    .render(&site, &visitor)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The page a verification email links to. Opening it changes nothing (mail
/// scanners open every link); its one button confirms.
async fn verify_email_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = query.into_inner().token.unwrap_or_default();
    if !state
        .accounts
        .link_is_live(&token, TokenPurpose::VerifyEmail)
        .await?
    {
        return link_expired(&state, &site, &visitor, TokenPurpose::VerifyEmail);
    }
    Page::new(
        "verify_email.html",
        context! { title => "Confirm your email address", token => token },
    )
    .no_referrer()
    .render(&site, &visitor)
}

#[tracing::instrument(skip_all)]
async fn verify_email(
    req: HttpRequest,
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    match state
        .accounts
        .verify_email(&posted.value("token"), client_ip(&req))
        .await
    {
        Ok(()) if visitor.account.is_some() => Ok(see_other_with(
            &site,
            "/account",
            Kind::Success,
            "Your email address is confirmed.",
        )),
        Ok(()) => Ok(see_other_with(
            &site,
            "/login",
            Kind::Success,
            "Your email address is confirmed. You can log in now.",
        )),
        Err(AccountError::InvalidToken) => {
            link_expired(&state, &site, &visitor, TokenPurpose::VerifyEmail)
        }
        Err(other) => Err(other.into()),
    }
}

/// The page for a link that was used, has expired, or never was one, with
/// the way to a new one.
fn link_expired(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    purpose: TokenPurpose,
) -> Result<HttpResponse, AppError> {
    let already_verified = visitor
        .account
        .as_ref()
        .is_some_and(|a| a.email_verified_at.is_some());
    Page::new(
        "link_expired.html",
        context! {
            title => "This link no longer works",
            purpose => purpose,
            already_verified => already_verified,
            hours => state.settings.auth.verification_ttl_hours,
            minutes => state.settings.auth.reset_ttl_minutes,
        },
    )
    .status(StatusCode::GONE)
    .no_referrer()
    .render(site, visitor)
}

async fn forgot_password_page(
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let form = match &visitor.account {
        Some(account) => Form::new().with("email", account.email.to_string()),
        None => Form::new(),
    };
    show_forgot_password(&site, &visitor, form)
}

fn show_forgot_password(
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    Page::new(
        "forgot_password.html",
        context! { title => "Forgotten your password?", form => form },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn forgot_password(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    match state
        .accounts
        .request_password_reset(&posted.value("email"), client_ip(&req))
        .await
        .map_err(AppError::from)
    {
        // The same page whether or not the address has an account.
        Ok(()) => Ok(see_other("/forgot-password/check-email")),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, &["email"]).with_errors(errors);
            show_forgot_password(&site, &visitor, form)
        }
    }
}

async fn reset_requested(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    Page::new(
        "check_email.html",
        context! {
            title => "Check your inbox",
            message => RESET_REQUESTED,
            after => "reset",
            minutes => state.settings.auth.reset_ttl_minutes,
        },
    )
    .render(&site, &visitor)
}

/// The page a reset email links to: a form for the new password. Without a
/// token (older emails linked here) it is the form that asks for a link.
async fn password_reset_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = query.into_inner().token else {
        return Ok(see_other("/forgot-password"));
    };
    if !state
        .accounts
        .link_is_live(&token, TokenPurpose::PasswordReset)
        .await?
    {
        return link_expired(&state, &site, &visitor, TokenPurpose::PasswordReset);
    }
    show_password_reset(&site, &visitor, Form::new(), &token)
}

fn show_password_reset(
    site: &Site,
    visitor: &Visitor,
    form: Form,
    token: &str,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    Page::new(
        "password_reset.html",
        context! {
            title => "Choose a new password",
            form => form,
            token => token,
            password_hint => password_hint(),
        },
    )
    .status(status)
    .no_referrer()
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn password_reset(
    req: HttpRequest,
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let token = posted.value("token");
    let password = SecretString::from(posted.value("password"));
    match state
        .accounts
        .confirm_password_reset(&token, password, client_ip(&req))
        .await
    {
        // The account's sessions have ended; a cookie left in this browser
        // now reads as logged out.
        Ok(()) => Ok(see_other_with(
            &site,
            "/login",
            Kind::Success,
            "Your password has been changed; log in with it.",
        )),
        Err(AccountError::Invalid(errors)) if !errors.iter().any(|e| e.field == "token") => {
            let form = Form::new().with_errors(errors);
            show_password_reset(&site, &visitor, form, &token)
        }
        Err(AccountError::InvalidToken | AccountError::Invalid(_)) => {
            link_expired(&state, &site, &visitor, TokenPurpose::PasswordReset)
        }
        Err(other) => Err(other.into()),
    }
}
