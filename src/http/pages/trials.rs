//! The ways to full access that a reader asks for: the free trial (the same
//! `TrialService::request` as `POST /api/v1/trials`), and the sales inquiry
//! form that the paywall and the trial emails link to (the same
//! `InquiryService::submit` as `POST /api/v1/inquiries`).

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::context;
use serde::Serialize;

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{see_other_with, Page, Site, Visitor};
use crate::access::Level;
use crate::http::extract::client_ip;
use crate::inquiries::service::{InquiryForm, MAX_MESSAGE, MAX_SEATS};
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::{TrialRequest, TrialStatus};
use crate::trials::service::Application;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("trial.html", include_str!("templates/trial.html")),
    (
        "contact_sales.html",
        include_str!("templates/contact_sales.html"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/trial", web::get().to(trial_page))
        .route("/trial", web::post().to(request_trial))
        .route("/contact-sales", web::get().to(contact_sales))
        .route("/contact-sales", web::post().to(send_inquiry))
        .route("/contact-sales/thanks", web::get().to(inquiry_sent));
}

/// A request as its reader sees it.
#[derive(Serialize)]
struct RequestView {
    status: TrialStatus,
    company: String,
    requested_at: String,
    decision_due_by: String,
    decided_at: Option<String>,
}

impl From<TrialRequest> for RequestView {
    fn from(t: TrialRequest) -> Self {
        Self {
            status: t.status,
            company: t.company,
            requested_at: t.requested_at.and_utc().to_rfc3339(),
            decision_due_by: t.decision_due_by.and_utc().to_rfc3339(),
            decided_at: t.decided_at.map(|d| d.and_utc().to_rfc3339()),
        }
    }
}

async fn trial_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let form = match &visitor.account {
        Some(account) => Form::new()
            .with("company", account.company.clone().unwrap_or_default())
            .with("job_title", account.job_title.clone().unwrap_or_default()),
        None => Form::new(),
    };
    show(&state, &site, &visitor, form, None).await
}

async fn show(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
    refusal: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (request, access) = match &visitor.account {
        Some(account) => {
            let request = state.trials.mine(account).await?.map(RequestView::from);
            let (decision, _) = state.access.summary(account.clone()).await?;
            (request, Some(decision))
        }
        None => (None, None),
    };
    let status = form.status();
    let settings = &state.settings.trials;
    Page::new(
        "trial.html",
        context! {
            title => "Free two-week trial",
            form => form,
            request => request,
            refusal => refusal,
            has_access => access.is_some_and(|d| d.level == Level::Full),
            access_until => access.and_then(|d| d.until).map(|t| t.to_rfc3339()),
            email_verified => visitor.account.as_ref().map(|a| a.email_verified_at.is_some()),
            length_days => settings.length_days,
            decision_hours => settings.decision_hours,
            sales_email => &state.settings.mail.sales_email,
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn request_trial(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?.clone();
    let application = Application {
        company: posted.value("company"),
        job_title: posted.value("job_title"),
        reason: posted.optional("reason"),
        client_ip: client_ip(&req).map(|ip| ip.to_string()),
    };
    match state
        .trials
        .request(&account, application)
        .await
        .map_err(AppError::from)
    {
        Ok(_) => Ok(see_other_with(
            &site,
            "/trial",
            Kind::Success,
            format!(
                "Thank you. We have your request and will decide within {} hours; we will email you either way.",
                state.settings.trials.decision_hours
            ),
        )),
        Err(error) => {
            let form = Form::from_posted(&posted, &["company", "job_title", "reason"]);
            match error {
                AppError::Conflict { detail, .. } => {
                    show(&state, &site, &visitor, form, Some(detail)).await
                }
                AppError::Forbidden { detail } => {
                    show(&state, &site, &visitor, form, Some(detail.to_owned())).await
                }
                other => match field_errors(&other) {
                    Some(errors) => {
                        show(&state, &site, &visitor, form.with_errors(errors), None).await
                    }
                    None => Err(other),
                },
            }
        }
    }
}

/// The fields of the inquiry form, kept when it comes back with errors.
const INQUIRY_FIELDS: &[&str] = &["name", "email", "company", "seats", "message"];

async fn contact_sales(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let form = match &visitor.account {
        Some(account) => Form::new()
            .with("name", account.name.clone())
            .with("email", account.email.to_string())
            .with("company", account.company.clone().unwrap_or_default()),
        None => Form::new(),
    };
    inquiry_page(&state, &site, &visitor, form)
}

fn inquiry_page(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    Page::new(
        "contact_sales.html",
        context! {
            title => "Subscriptions for teams",
            form => form,
            max_seats => MAX_SEATS,
            max_message => MAX_MESSAGE,
            sales_email => &state.settings.mail.sales_email,
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn send_inquiry(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let inquiry = InquiryForm {
        name: posted.value("name"),
        email: posted.value("email"),
        company: posted.value("company"),
        seats: posted.value("seats"),
        message: posted.optional("message"),
    };
    match state
        .inquiries
        .submit(inquiry, client_ip(&req))
        .await
        .map_err(AppError::from)
    {
        Ok(_) => Ok(see_other_with(
            &site,
            "/contact-sales/thanks",
            Kind::Success,
            "Your inquiry has been sent.",
        )),
        Err(error) => match field_errors(&error) {
            Some(errors) => {
                let form = Form::from_posted(&posted, INQUIRY_FIELDS).with_errors(errors);
                inquiry_page(&state, &site, &visitor, form)
            }
            None => Err(error),
        },
    }
}

/// Where the form lands: a GET, so a reload sends nothing again.
async fn inquiry_sent(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    Page::new(
        "contact_sales.html",
        context! {
            title => "Thank you for your inquiry",
            sent => true,
            sales_email => &state.settings.mail.sales_email,
        },
    )
    .render(&site, &visitor)
}
