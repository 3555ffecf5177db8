//! "Does my company subscribe?" and the join link's page: the same
//! `OrganizationService` as `POST /api/v1/company-access` and
//! `POST /api/v1/company-access/confirm`.

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{see_other, see_other_with, Page, Site, Visitor};
use crate::flows::join::join_company;
use crate::http::api::organizations::CHECK_SENT;
use crate::http::extract::{client_ip, parse_id};
use crate::organizations::service::{Invitation, JOIN_LINK_HOURS};
use crate::organizations::OrganizationError;
use crate::platform::error::AppError;
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
    (
        "company_manage.html",
        include_str!("templates/company_manage.html"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/company-access", web::get().to(company_access_page))
        .route("/company-access", web::post().to(company_access))
        .route("/company-access/check-email", web::get().to(check_email))
        .route("/company-access/join", web::get().to(join_page))
        .route("/company-access/join", web::post().to(join))
        .route("/company", web::get().to(manage_page))
        .route(
            "/company/{organization}/members/{member}/remove",
            web::post().to(remove_member),
        );
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
    let status = form.status();
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
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    match state
        .organizations
        .check_access(&posted.value("email"), client_ip(&req))
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
    match join_company(&state.pool, &state.clock, account, &token).await {
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

#[derive(serde::Serialize)]
struct ManagedMember {
    id: String,
    name: String,
    email: String,
    joined_at: String,
}

#[derive(serde::Serialize)]
struct Managed {
    id: String,
    name: String,
    seat_count: i32,
    seats_used: i32,
    ends_at: String,
    members: Vec<ManagedMember>,
}

/// A manager's page: the members of the organisations they manage, each
/// with a button that removes them (the same
/// `OrganizationService::remove_member` as the admins').
async fn manage_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?;
    let organizations: Vec<Managed> = state
        .organizations
        .managed_by(account)
        .await?
        .into_iter()
        .map(|d| Managed {
            id: d.organization.id.to_string(),
            name: d.organization.name,
            seat_count: d.organization.seat_count,
            seats_used: d.organization.seats_used,
            ends_at: d.organization.ends_at.and_utc().to_rfc3339(),
            members: d
                .members
                .into_iter()
                .map(|(m, a)| ManagedMember {
                    id: m.id.to_string(),
                    name: a.name,
                    email: a.email.to_string(),
                    joined_at: m.joined_at.and_utc().to_rfc3339(),
                })
                .collect(),
        })
        .collect();
    Page::new(
        "company_manage.html",
        context! { title => "Your company's subscription", organizations => organizations },
    )
    .render(&site, &visitor)
}

#[tracing::instrument(skip_all)]
async fn remove_member(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?;
    let (organization, member) = path.into_inner();
    state
        .organizations
        .remove_member(account, parse_id(&organization)?, parse_id(&member)?)
        .await?;
    Ok(see_other_with(
        &site,
        "/company",
        Kind::Success,
        "Removed: their access has ended and the seat is free.",
    ))
}
