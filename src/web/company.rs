//! "Does my company subscribe?" and the join link's page: the same
//! `OrganizationService` as `POST /api/v1/company-access` and
//! `POST /api/v1/company-access/confirm`.

use actix_web::web::{self, Data, Query};
use actix_web::HttpResponse;
use minijinja::context;
use serde::Deserialize;

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{see_other, see_other_with, Page, Site, Visitor};
use crate::error::AppError;
use crate::organizations::http::CHECK_SENT;
use crate::organizations::service::{Invitation, JOIN_LINK_HOURS};
use crate::organizations::OrganizationError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "company_access.html",
        include_str!("templates/company_access.html"),
    ),
    (
        "company_check_email.html",
        include_str!("templates/company_check_email.html"),
    ),
    (
        "company_join.html",
        include_str!("templates/company_join.html"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/company-access", web::get().to(company_access_page))
        .route("/company-access", web::post().to(company_access))
        .route("/company-access/check-email", web::get().to(check_email))
        .route("/company-access/join", web::get().to(join_page))
        .route("/company-access/join", web::post().to(join));
}

async fn company_access_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let form = match &visitor.account {
        Some(account) => Form::new().with("email", account.email.to_string()),
        None => Form::new(),
    };
    show_company_access(&state, &site, &visitor, form)
}

fn show_company_access(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let status = super::accounts::form_status(&form);
    Page::new(
        "company_access.html",
        context! {
            title => "Does your company have a subscription?",
            form => form,
            sales_email => &state.settings.mail.sales_email,
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn company_access(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    match state
        .organizations
        .check_access(&posted.value("email"))
        .await
        .map_err(AppError::from)
    {
        // The same page whatever the answer: it is in the inbox.
        Ok(()) => Ok(see_other("/company-access/check-email")),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, &["email"]).with_errors(errors);
            show_company_access(&state, &site, &visitor, form)
        }
    }
}

async fn check_email(site: Data<Site>, visitor: Visitor) -> Result<HttpResponse, AppError> {
    Page::new(
        "company_check_email.html",
        context! { title => "Check your inbox", message => CHECK_SENT, hours => JOIN_LINK_HOURS },
    )
    .render(&site, &visitor)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// What the link offers, with one button that takes the seat; a visitor
/// not logged in with the address it was sent to is asked to log in (and
/// brought back) or register with it.
async fn join_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = query.into_inner().token else {
        return Ok(see_other("/company-access"));
    };
    match state.organizations.invitation(&token).await {
        Ok(invitation) => show_join(&site, &visitor, &invitation, &token, None),
        Err(OrganizationError::InvalidLink) => link_gone(&site, &visitor),
        Err(other) => Err(other.into()),
    }
}

fn show_join(
    site: &Site,
    visitor: &Visitor,
    invitation: &Invitation,
    token: &str,
    problem: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let signed_in_as = visitor.account.as_ref().map(|a| a.email.to_string());
    let is_addressee = signed_in_as
        .as_deref()
        .is_some_and(|email| email.eq_ignore_ascii_case(&invitation.email));
    let here = format!("/company-access/join?token={token}");
    Page::new(
        "company_join.html",
        context! {
            title => format!("Join {}'s subscription", invitation.organization),
            organization => &invitation.organization,
            invited_email => &invitation.email,
            signed_in_as => signed_in_as,
            is_addressee => is_addressee,
            token => token,
            here => here,
            problem => problem,
            hours => JOIN_LINK_HOURS,
        },
    )
    .no_referrer()
    .render(site, visitor)
}

fn link_gone(site: &Site, visitor: &Visitor) -> Result<HttpResponse, AppError> {
    Page::new(
        "company_join.html",
        context! { title => "This link no longer works", gone => true, hours => JOIN_LINK_HOURS },
    )
    .status(actix_web::http::StatusCode::GONE)
    .no_referrer()
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn join(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let token = posted.value("token");
    let Some(account) = visitor.account.as_ref() else {
        let next = format!("/company-access/join?token={token}");
        let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        return Ok(see_other(&format!("/login?next={next}")));
    };
    match state.organizations.join(account, &token).await {
        Ok(organization) => Ok(see_other_with(
            &site,
            "/",
            Kind::Success,
            format!(
                "Welcome: you now read everything through {}'s subscription.",
                organization.name
            ),
        )),
        Err(OrganizationError::InvalidLink) => link_gone(&site, &visitor),
        Err(
            error @ (OrganizationError::WrongAddress
            | OrganizationError::Full
            | OrganizationError::AlreadyMember),
        ) => {
            let invitation = state.organizations.invitation(&token).await?;
            let problem = match error {
                OrganizationError::WrongAddress => {
                    "You are logged in with another address. Log out, then log in or register with the address this link was sent to."
                }
                OrganizationError::Full => {
                    "Sorry: all of your company's seats have been taken since this link was sent."
                }
                _ => "Your account already holds a company seat.",
            };
            show_join(&site, &visitor, &invitation, &token, Some(problem))
        }
        Err(other) => Err(other.into()),
    }
}
