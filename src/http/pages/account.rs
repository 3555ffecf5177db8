//! The reader's own page: who they are, what they may read and why, their
//! trial and newsletter, and a form to change the password. It shows what
//! `GET /api/v1/me` answers, gathered by the same `accounts::http::overview`.

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use minijinja::context;
use secrecy::SecretString;
use serde::Serialize;

use super::accounts::{in_page_order, password_hint, rate_limited};
use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{see_other_with, Page, Site, Visitor};
use crate::access::model::Entitlement;
use crate::http::api::access::EntitlementView;
use crate::http::api::accounts::{overview, AccountView};
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::{TrialRequest, TrialStatus};

pub const TEMPLATES: &[(&str, &str)] = &[("account.html", include_str!("templates/account.html"))];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(account_page))
        .route("/account/password", web::post().to(change_password));
}

/// The change-password form's fields in page order.
const PASSWORD_FIELDS: &[&str] = &["current_password", "new_password"];

/// The latest trial request as the page shows it.
#[derive(Serialize)]
struct TrialView {
    status: TrialStatus,
    overdue: bool,
    requested_at: DateTime<Utc>,
    decision_due_by: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    /// When the reading it granted ends, if it was approved.
    ends_at: Option<DateTime<Utc>>,
}

impl TrialView {
    fn new(trial: TrialRequest, entitlements: &[Entitlement], now: DateTime<Utc>) -> Self {
        let ends_at = entitlements
            .iter()
            .find(|e| trial.entitlement_id.as_ref() == Some(&e.id))
            .and_then(|e| e.ends_at)
            .map(|t| t.and_utc());
        Self {
            overdue: trial.is_overdue(now.naive_utc()),
            status: trial.status,
            requested_at: trial.requested_at.and_utc(),
            decision_due_by: trial.decision_due_by.and_utc(),
            decided_at: trial.decided_at.map(|t| t.and_utc()),
            ends_at,
        }
    }
}

async fn account_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    show_account(&state, &site, &visitor, Form::new()).await
}

async fn show_account(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?;
    let now = state.clock.now();
    let overview = overview(state, account).await?;
    let trial = overview
        .trial
        .map(|t| TrialView::new(t, &overview.entitlements, now));
    let newsletter_sections: Vec<String> = overview
        .newsletter
        .as_ref()
        .map(|n| {
            n.sections
                .as_slice()
                .iter()
                .map(|slug| visitor.section_name(slug))
                .collect()
        })
        .unwrap_or_default();
    let entitlements: Vec<EntitlementView> = overview
        .entitlements
        .into_iter()
        .map(|e| EntitlementView::new(e, now))
        .collect();
    let status = form.status();
    Page::new(
        "account.html",
        context! {
            title => "Your account",
            me => AccountView::from(account.clone()),
            access => overview.access,
            entitlements => entitlements,
            trial => trial,
            newsletter => overview.newsletter,
            newsletter_sections => newsletter_sections,
            form => form,
            password_hint => password_hint(),
        },
    )
    .status(status)
    .render(site, visitor)
}

#[tracing::instrument(skip_all)]
async fn change_password(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?;
    let session = visitor.session.as_ref().ok_or(AppError::Unauthorized {
        detail: "log in to continue",
    })?;
    let changed = state
        .accounts
        .change_password(
            account,
            session,
            SecretString::from(posted.value("current_password")),
            SecretString::from(posted.value("new_password")),
        )
        .await
        .map_err(AppError::from);
    let form = match changed {
        Ok(()) => {
            return Ok(see_other_with(
                &site,
                "/account",
                Kind::Success,
                "Your password has been changed. You are still logged in here; \
                 everywhere else you have been logged out.",
            ))
        }
        Err(AppError::RateLimited { retry_after_secs }) => {
            rate_limited(Form::new(), "current_password", retry_after_secs)
        }
        Err(other) => {
            let errors = field_errors(&other).ok_or(other)?;
            Form::new().with_errors(in_page_order(errors, PASSWORD_FIELDS))
        }
    };
    show_account(&state, &site, &visitor, form).await
}
