//! `/admin/accounts`: finding an account, changing its role, and granting
//! or revoking access by hand. Each button calls the same service function
//! as its JSON twin (`AccountService::set_role`, `AccessService::grant` and
//! `revoke`), which decides that only admins may and records the change in
//! the audit trail.

use std::collections::{BTreeMap, HashMap};

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::subscribers::{
    choice, page_number, staff_actions, status_words, Choice, Pager, ACTION_WORDS,
};
use crate::access::model::{Entitlement, EntitlementId, EntitlementKind, EntitlementState};
use crate::access::service::{AccessError, GrantRequest};
use crate::accounts::store::AccountFilter;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::flows::revoke::revoke_entitlement;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::platform::audit::model::SubjectKind;
use crate::platform::audit::Subject;
use crate::platform::domain::{FieldError, Invalid};
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::{TrialRequest, TrialStatus};

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_accounts.html",
        include_str!("../templates/admin_accounts.html"),
    ),
    (
        "admin_account.html",
        include_str!("../templates/admin_account.html"),
    ),
];

const LIST: &str = "/admin/accounts";

/// How long the grant form offers by default: a month, the usual length of
/// a courtesy subscription.
const DEFAULT_GRANT_DAYS: i64 = 30;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(LIST, web::get().to(list))
        .route("/admin/accounts/{id}", web::get().to(one))
        .route("/admin/accounts/{id}/role", web::post().to(set_role))
        .route("/admin/accounts/{id}/grants", web::post().to(grant))
        .route(
            "/admin/accounts/{id}/entitlements/{entitlement}/revoke",
            web::post().to(revoke),
        );
}

fn role_words(role: Role) -> &'static str {
    match role {
        Role::Reader => "Reader",
        Role::Editor => "Editor",
        Role::Admin => "Admin",
    }
}

/// "a reader", "an editor", "an admin".
fn with_article(role: Role) -> String {
    let word = role_words(role).to_lowercase();
    match role {
        Role::Reader => format!("a {word}"),
        Role::Editor | Role::Admin => format!("an {word}"),
    }
}

fn kind_words(kind: EntitlementKind) -> &'static str {
    match kind {
        EntitlementKind::Trial => "Free trial",
        EntitlementKind::CompanySeat => "Company seat",
        EntitlementKind::Grant => "Granted by hand",
    }
}

fn state_words(state: EntitlementState) -> &'static str {
    match state {
        EntitlementState::Upcoming => "Not started",
        EntitlementState::Active => "Active",
        EntitlementState::Ended => "Ended",
        EntitlementState::Revoked => "Revoked",
    }
}

fn trial_words(status: TrialStatus) -> &'static str {
    match status {
        TrialStatus::Pending => "Waiting for a decision",
        TrialStatus::Approved => "Approved",
        TrialStatus::Rejected => "Turned down",
    }
}

fn day(at: NaiveDateTime) -> String {
    at.format("%-d %B %Y").to_string()
}

/// An id that does not parse names nothing: the page is not found.
fn parsed<T: std::str::FromStr>(raw: &str) -> Result<T, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn account_page(id: AccountId) -> String {
    format!("{LIST}/{id}")
}

#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    email: String,
    role: Role,
    role_words: &'static str,
    verified: bool,
    registered: String,
}

impl From<Account> for Row {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name,
            email: a.email.to_string(),
            role: a.role,
            role_words: role_words(a.role),
            verified: a.email_verified_at.is_some(),
            registered: a.created_at.and_utc().to_rfc3339(),
        }
    }
}

fn roles() -> Vec<Choice> {
    Role::ALL
        .iter()
        .map(|r| Choice::new(r.as_str(), role_words(*r)))
        .collect()
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    role: Option<String>,
    page: Option<String>,
}

async fn list(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let query = query.into_inner();
    let paging = page_number(query.page.as_deref())?;
    let role: Option<Role> = choice("role", query.role.as_deref())?;
    let q = query.q.unwrap_or_default();
    let mut form = Form::new().with("q", q.as_str());
    let filter = AccountFilter {
        search: Some(q.clone()),
        role,
    };
    let (rows, total) = match state
        .accounts
        .list(admin, filter, paging.per_page, paging.offset())
        .await
    {
        Ok(found) => found,
        Err(AccountError::Invalid(errors)) => {
            form = form.with_errors(errors);
            (Vec::new(), 0)
        }
        Err(other) => return Err(other.into()),
    };
    let role = role.map(|r| r.to_string()).unwrap_or_default();
    let pager = Pager::new(
        LIST,
        &[("q", q.trim()), ("role", &role)],
        paging,
        rows.len(),
        total,
    );
    let status = form.status();
    Page::new(
        "admin_accounts.html",
        context! {
            title => "Accounts",
            noindex => true,
            console_area => "accounts",
            form => form,
            searched => !(q.trim().is_empty() && role.is_empty()),
            selected_role => role,
            roles => roles(),
            rows => rows.into_iter().map(Row::from).collect::<Vec<_>>(),
            total => total,
            pager => pager,
        },
    )
    .status(status)
    .render(&site, &visitor)
}

/// A right to read as the account page shows it.
#[derive(Serialize)]
struct EntitlementRow {
    id: String,
    kind: &'static str,
    state: EntitlementState,
    state_words: &'static str,
    starts: String,
    ends: Option<String>,
    granted_by: Option<String>,
    note: Option<String>,
    revoked: Option<String>,
    revocable: bool,
}

impl EntitlementRow {
    fn new(e: Entitlement, now: DateTime<Utc>, names: &HashMap<AccountId, String>) -> Self {
        let state = e.state(now.naive_utc());
        Self {
            id: e.id.to_string(),
            kind: kind_words(e.kind),
            state,
            state_words: state_words(state),
            starts: e.starts_at.and_utc().to_rfc3339(),
            ends: e.ends_at.map(|t| t.and_utc().to_rfc3339()),
            granted_by: e.granted_by.map(|id| {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "a deleted account".into())
            }),
            note: e.note,
            revoked: e.revoked_at.map(|t| t.and_utc().to_rfc3339()),
            revocable: matches!(state, EntitlementState::Active | EntitlementState::Upcoming),
        }
    }
}

/// The grant form as it first appears: from today, for a month.
fn grant_form(today: NaiveDate) -> Form {
    Form::new()
        .with("starts_at", today.format("%Y-%m-%d").to_string())
        .with(
            "ends_at",
            (today + Duration::days(DEFAULT_GRANT_DAYS))
                .format("%Y-%m-%d")
                .to_string(),
        )
}

async fn one(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id = parsed(&id)?;
    let form = grant_form(state.clock.now().date_naive());
    show(&state, &site, &visitor, admin, id, form).await
}

/// The account page, with the grant form as given (fresh, or as posted
/// with its errors).
async fn show(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    id: AccountId,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let account = state.accounts.get(admin, id).await?;
    let entitlements = state.access.entitlements_of(admin, id).await?;
    let names = granter_names(state, admin, &entitlements).await?;
    let requests = state.trials.requests_of(admin, id).await?;
    let earlier_requests = requests.len().saturating_sub(1);
    let trial = requests.into_iter().next();
    let subscriber = state.newsletter.subscriber_of_account(admin, id).await?;
    let mut subjects = vec![Subject::new(SubjectKind::Account, id)];
    subjects.extend(
        entitlements
            .iter()
            .map(|e| Subject::new(SubjectKind::Entitlement, e.id)),
    );
    let staff = staff_actions(state, admin, subjects).await?;
    let status = form.status();
    Page::new(
        "admin_account.html",
        context! {
            title => format!("Account: {}", account.name),
            noindex => true,
            console_area => "accounts",
            subject => account_context(&account),
            is_self => account.id == admin.id,
            roles => roles(),
            entitlements => entitlements
                .into_iter()
                .map(|e| EntitlementRow::new(e, now, &names))
                .collect::<Vec<_>>(),
            earlier_requests => earlier_requests,
            trial => trial.map(trial_context),
            subscriber => subscriber.map(|s| context! { id => s.id.to_string(), status_words => status_words(s.status) }),
            staff => staff,
            action_words => ACTION_WORDS.iter().copied().collect::<BTreeMap<_, _>>(),
            form => form,
            default_days => DEFAULT_GRANT_DAYS,
        },
    )
    .status(status)
    .render(site, visitor)
}

/// The names of the staff who granted `entitlements`.
async fn granter_names(
    state: &AppState,
    admin: &Account,
    entitlements: &[Entitlement],
) -> Result<HashMap<AccountId, String>, AppError> {
    let granters = entitlements.iter().filter_map(|e| e.granted_by).collect();
    Ok(state
        .accounts
        .by_ids(admin, granters)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

fn account_context(account: &Account) -> minijinja::Value {
    context! {
        id => account.id.to_string(),
        name => &account.name,
        email => account.email.to_string(),
        company => &account.company,
        job_title => &account.job_title,
        role => account.role,
        role_words => role_words(account.role),
        verified => account.email_verified_at.map(|t| t.and_utc().to_rfc3339()),
        registered => account.created_at.and_utc().to_rfc3339(),
    }
}

/// The account's latest trial request.
fn trial_context(t: TrialRequest) -> minijinja::Value {
    context! {
        id => t.id.to_string(),
        status => t.status,
        status_words => trial_words(t.status),
        company => t.company,
        requested => t.requested_at.and_utc().to_rfc3339(),
        decided => t.decided_at.map(|d| d.and_utc().to_rfc3339()),
        note => t.decision_note,
    }
}

/// `AccountService::set_role`, as `PUT /api/v1/admin/accounts/{id}/role`
/// calls it.
#[tracing::instrument(skip_all, fields(account_id = %*id))]
async fn set_role(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: AccountId = parsed(&id)?;
    let role: Role = posted
        .value("role")
        .parse()
        .map_err(|_| AppError::field("role", "unknown", "choose one of the roles offered"))?;
    let before = state.accounts.get(admin, id).await?;
    let (kind, message) = match state.accounts.set_role(admin, id, role).await {
        Ok(_) if before.role == role => (
            Kind::Info,
            format!(
                "{} was already {}; nothing changed.",
                before.name,
                with_article(role)
            ),
        ),
        Ok(after) => (
            Kind::Success,
            format!("{} is now {}.", after.name, with_article(after.role)),
        ),
        Err(AccountError::OwnRole) => (
            Kind::Info,
            "You cannot change your own role; another admin can.".to_owned(),
        ),
        Err(other) => return Err(other.into()),
    };
    Ok(see_other_with(&site, &account_page(id), kind, message))
}

/// The grant form's dates: a day as `YYYY-MM-DD`, taken at 00:00 UTC. A
/// start of today means now, as the API's missing `starts_at` does.
fn grant_request(posted: &Posted, today: NaiveDate) -> Result<GrantRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut date = |field: &str| -> Option<NaiveDate> {
        let raw = posted.value(field);
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| {
                errors.push(Invalid::new("invalid_date", "enter a date like 2030-01-31").on(field))
            })
            .ok()
    };
    let starts = date("starts_at");
    let ends = date("ends_at");
    if !errors.is_empty() {
        return Err(errors);
    }
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok(GrantRequest {
        starts_at: starts.filter(|d| *d != today).map(midnight),
        ends_at: ends.map(midnight),
        note: posted.optional("note"),
    })
}

/// `AccessService::grant`, as `POST /api/v1/admin/accounts/{id}/grants`
/// calls it; the form again with its errors when they are wrong.
#[tracing::instrument(skip_all, fields(account_id = %*id))]
async fn grant(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: AccountId = parsed(&id)?;
    let form = Form::from_posted(&posted, &["starts_at", "ends_at", "note"]);
    let request = match grant_request(&posted, state.clock.now().date_naive()) {
        Ok(request) => request,
        Err(errors) => {
            return show(&state, &site, &visitor, admin, id, form.with_errors(errors)).await
        }
    };
    match state.access.grant(admin, id, request).await {
        Ok(granted) => {
            let account = state.accounts.get(admin, id).await?;
            let until = granted.ends_at.map_or_else(
                || ", with no end".to_owned(),
                |end| format!(", ending on {}", day(end)),
            );
            Ok(see_other_with(
                &site,
                &account_page(id),
                Kind::Success,
                format!(
                    "{} can read everything from {}{until}.",
                    account.name,
                    day(granted.starts_at)
                ),
            ))
        }
        Err(AccessError::Invalid(errors)) => {
            show(&state, &site, &visitor, admin, id, form.with_errors(errors)).await
        }
        Err(other) => Err(other.into()),
    }
}

/// `flows::revoke::revoke_entitlement`, as `POST /api/v1/admin/entitlements/{id}/revoke`
/// calls it; then back to the page of the account it belongs to.
#[tracing::instrument(skip_all)]
async fn revoke(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    ids: Path<(String, String)>,
    _posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let entitlement: EntitlementId = parsed(&ids.1)?;
    let revoked = revoke_entitlement(&state.pool, &state.clock, admin, entitlement).await;
    let (revoked, now) = match revoked {
        Ok(done) => done,
        Err(AccessError::NoSuchEntitlement) => return Err(AppError::NotFound),
        Err(other) => return Err(other.into()),
    };
    let message = match (now, revoked.revoked_at) {
        (false, Some(at)) => format!(
            "That access had already been revoked on {}; nothing changed.",
            day(at)
        ),
        _ => "Access revoked: it ended just now.".to_owned(),
    };
    let kind = if now { Kind::Success } else { Kind::Info };
    Ok(see_other_with(
        &site,
        &account_page(revoked.account_id),
        kind,
        message,
    ))
}
