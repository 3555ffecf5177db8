//! Pages for accounts: log in and out. Each calls the same
//! `AccountService` function as its JSON twin in `accounts::http`.

use actix_web::web::{self, Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{local_path, see_other, see_other_with, with_cookie, Page, Site, Visitor};
use crate::accounts::session::{removal_cookie, session_cookie};
use crate::error::AppError;
use crate::extract::client_ip;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[("login.html", include_str!("templates/login.html"))];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout));
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
    let status = if form.has_errors() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
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
                AppError::RateLimited { retry_after_secs } => form.with_error(
                    "email",
                    "rate_limited",
                    &format!(
                        "too many attempts: try again in {} minutes",
                        retry_after_secs.div_ceil(60)
                    ),
                ),
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
