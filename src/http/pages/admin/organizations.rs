//! `/admin/organizations`: company subscriptions. The list with a form
//! that adds one, and each organisation's page: its seats and period (a
//! seat count below the seats in use is refused), domains, managers and
//! members, whom an admin can remove. Every form calls the same
//! `OrganizationService` function as `/api/v1/admin/organizations…`, which
//! checks the admin and writes the audit trail.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::Serialize;

use crate::http::extract::parse_id;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{field_errors, Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::organizations::model::{MemberId, Organization, OrganizationId};
use crate::organizations::service::{Detail, OrganizationForm, OrganizationPatch};
use crate::platform::domain::FieldError;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_organizations.html",
        include_str!("../templates/admin_organizations.html"),
    ),
    (
        "admin_organization.html",
        include_str!("../templates/admin_organization.html"),
    ),
];

const LIST: &str = "/admin/organizations";
const FIELDS: &[&str] = &[
    "name",
    "domains",
    "seat_count",
    "starts_on",
    "ends_on",
    "notes",
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(LIST, web::get().to(list))
        .route(LIST, web::post().to(create))
        .route("/admin/organizations/{id}", web::get().to(one))
        .route("/admin/organizations/{id}", web::post().to(update))
        .route(
            "/admin/organizations/{id}/domains",
            web::post().to(add_domain),
        )
        .route(
            "/admin/organizations/{id}/domains/remove",
            web::post().to(remove_domain),
        )
        .route(
            "/admin/organizations/{id}/members/{member}/remove",
            web::post().to(remove_member),
        );
}

#[derive(Serialize)]
struct Row {
    id: OrganizationId,
    name: String,
    seat_count: i32,
    seats_used: i32,
    starts_on: String,
    ends_on: String,
    active: bool,
}

fn row(o: Organization, now: DateTime<Utc>) -> Row {
    Row {
        active: o.is_active(now.naive_utc()),
        id: o.id,
        seat_count: o.seat_count,
        seats_used: o.seats_used,
        starts_on: o.starts_at.format("%Y-%m-%d").to_string(),
        ends_on: o.ends_at.format("%Y-%m-%d").to_string(),
        name: o.name,
    }
}

async fn list(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    show_list(&state, &site, &visitor, Form::new()).await
}

async fn show_list(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let now = state.clock.now();
    let rows: Vec<Row> = state
        .organizations
        .list(admin)
        .await?
        .into_iter()
        .map(|o| row(o, now))
        .collect();
    let status = form.status();
    Page::new(
        "admin_organizations.html",
        context! {
            title => "Company subscriptions",
            console_area => "organizations",
            organizations => rows,
            form => form,
        },
    )
    .status(status)
    .render(site, visitor)
}

/// A date field as the start of that day, UTC.
fn day(posted: &Posted, field: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let raw = posted.value(field);
    if raw.trim().is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        Ok(date) => date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Err(_) => {
            errors.push(FieldError {
                field: field.to_owned(),
                reason: "invalid_date",
                message: "enter a date as YYYY-MM-DD".to_owned(),
            });
            None
        }
    }
}

/// A whole number of seats, or an error on the field.
fn seats(posted: &Posted, errors: &mut Vec<FieldError>) -> i64 {
    posted
        .value("seat_count")
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            errors.push(FieldError {
                field: "seat_count".to_owned(),
                reason: "not_a_number",
                message: "enter a number of seats".to_owned(),
            });
            0
        })
}

/// Errors of the service named after the page's fields.
fn on_page_fields(errors: Vec<FieldError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            e.field = match e.field.as_str() {
                "starts_at" => "starts_on".to_owned(),
                "ends_at" => "ends_on".to_owned(),
                "domain" => "domains".to_owned(),
                other => other.to_owned(),
            };
            e
        })
        .collect()
}

#[tracing::instrument(skip_all)]
async fn create(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let mut errors = Vec::new();
    let seat_count = seats(&posted, &mut errors);
    let starts_at = day(&posted, "starts_on", &mut errors);
    let ends_at = day(&posted, "ends_on", &mut errors);
    let result = if errors.is_empty() {
        state
            .organizations
            .create(
                admin,
                OrganizationForm {
                    name: posted.value("name"),
                    seat_count,
                    starts_at,
                    ends_at,
                    notes: posted.optional("notes"),
                    domains: posted
                        .value("domains")
                        .split([',', ' ', '\n'])
                        .filter(|d| !d.trim().is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
            )
            .await
            .map_err(AppError::from)
    } else {
        Err(AppError::Validation(errors))
    };
    match result {
        Ok(detail) => Ok(see_other_with(
            &site,
            &format!("{LIST}/{}", detail.organization.id),
            Kind::Success,
            format!("Added {}.", detail.organization.name),
        )),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, FIELDS).with_errors(on_page_fields(errors));
            show_list(&state, &site, &visitor, form).await
        }
    }
}

#[derive(Serialize)]
struct MemberRow {
    id: MemberId,
    name: String,
    email: String,
    joined_at: String,
}

async fn one(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&id)?;
    show_one(&state, &site, &visitor, id, None).await
}

async fn show_one(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    id: OrganizationId,
    form: Option<Form>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let Detail {
        organization,
        domains,
        members,
        managers,
    } = state.organizations.get(admin, id).await?;
    let form = form.unwrap_or_else(|| {
        Form::new()
            .with("name", organization.name.clone())
            .with("seat_count", organization.seat_count.to_string())
            .with(
                "starts_on",
                organization.starts_at.format("%Y-%m-%d").to_string(),
            )
            .with(
                "ends_on",
                organization.ends_at.format("%Y-%m-%d").to_string(),
            )
            .with("notes", organization.notes.clone().unwrap_or_default())
    });
    let members: Vec<MemberRow> = members
        .into_iter()
        .map(|(m, a)| MemberRow {
            id: m.id,
            name: a.name,
            email: a.email.to_string(),
            joined_at: m.joined_at.and_utc().to_rfc3339(),
        })
        .collect();
    let managers: Vec<String> = managers
        .into_iter()
        .map(|a| format!("{} <{}>", a.name, a.email))
        .collect();
    let status = form.status();
    Page::new(
        "admin_organization.html",
        context! {
            title => organization.name.clone(),
            console_area => "organizations",
            organization => row(organization.clone(), state.clock.now()),
            notes => organization.notes,
            domains => domains,
            members => members,
            managers => managers,
            form => form,
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn update(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: OrganizationId = parse_id(&id)?;
    let mut errors = Vec::new();
    let seat_count = seats(&posted, &mut errors);
    let starts_at = day(&posted, "starts_on", &mut errors);
    let ends_at = day(&posted, "ends_on", &mut errors);
    let result = if errors.is_empty() {
        state
            .organizations
            .update(
                admin,
                id,
                OrganizationPatch {
                    name: Some(posted.value("name")),
                    seat_count: Some(seat_count),
                    starts_at,
                    ends_at,
                    notes: Some(posted.optional("notes")),
                },
            )
            .await
            .map_err(AppError::from)
    } else {
        Err(AppError::Validation(errors))
    };
    match result {
        Ok(detail) => Ok(see_other_with(
            &site,
            &format!("{LIST}/{id}"),
            Kind::Success,
            format!("Saved {}.", detail.organization.name),
        )),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, FIELDS).with_errors(on_page_fields(errors));
            show_one(&state, &site, &visitor, id, Some(form)).await
        }
    }
}

async fn add_domain(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: OrganizationId = parse_id(&id)?;
    match state
        .organizations
        .add_domain(admin, id, &posted.value("domain"))
        .await
        .map_err(AppError::from)
    {
        Ok(_) => Ok(see_other_with(
            &site,
            &format!("{LIST}/{id}"),
            Kind::Success,
            "Domain added.",
        )),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::from_posted(&posted, &["domain"]).with_errors(errors);
            show_one(&state, &site, &visitor, id, Some(form)).await
        }
    }
}

async fn remove_domain(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: OrganizationId = parse_id(&id)?;
    let domain = posted.value("domain");
    state
        .organizations
        .remove_domain(admin, id, &domain)
        .await?;
    Ok(see_other_with(
        &site,
        &format!("{LIST}/{id}"),
        Kind::Success,
        format!("Removed {domain}."),
    ))
}

async fn remove_member(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let (id, member) = path.into_inner();
    let id: OrganizationId = parse_id(&id)?;
    state
        .organizations
        .remove_member(admin, id, parse_id(&member)?)
        .await?;
    Ok(see_other_with(
        &site,
        &format!("{LIST}/{id}"),
        Kind::Success,
        "Member removed: their access has ended and the seat is free.",
    ))
}
