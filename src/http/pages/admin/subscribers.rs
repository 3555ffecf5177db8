//! `/admin/subscribers`: finding a newsletter subscriber, their history,
//! and the suppression list with its "lift" button. Every page asks the
//! same `NewsletterService` functions as the admin API, which decide that
//! only admins may; lifting is recorded in the audit trail by the service.

use std::collections::BTreeMap;
use std::str::FromStr;

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use chrono::NaiveDateTime;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::http::extract::{parse_id, Paging};
use crate::http::pages::admin::audit::entry_views;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{Form, Posted};
use crate::http::pages::{local_path, see_other_with, Page, Site, Visitor};
use crate::newsletter::model::Suppression;
use crate::newsletter::service::SubscriberRecord;
use crate::newsletter::store::SubscriberFilter;
use crate::newsletter::NewsletterError;
use crate::newsletter::Source;
use crate::newsletter::Subscriber;
use crate::newsletter::SubscriberId;
use crate::newsletter::SubscriberStatus;
use crate::newsletter::SuppressionReason;
use crate::platform::audit::model::SubjectKind;
use crate::platform::audit::{AuditEntry, Subject};
use crate::platform::error::AppError;
use crate::state::AppState;

mod transfer;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_subscriber_import.html",
        include_str!("../templates/admin_subscriber_import.html"),
    ),
    (
        "admin_subscriber_import_progress.html",
        include_str!("../templates/admin_subscriber_import_progress.html"),
    ),
    (
        "admin_subscribers.html",
        include_str!("../templates/admin_subscribers.html"),
    ),
    (
        "admin_subscriber.html",
        include_str!("../templates/admin_subscriber.html"),
    ),
    (
        "admin_subscriber_suppressions.html",
        include_str!("../templates/admin_subscriber_suppressions.html"),
    ),
    (
        "admin_subscriber_pager.html",
        include_str!("../templates/admin_subscriber_pager.html"),
    ),
];

const LIST: &str = "/admin/subscribers";
const SUPPRESSIONS: &str = "/admin/subscribers/suppressions";
const PER_PAGE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Before `/admin/subscribers/{id}`, which would take `import` for an id.
    transfer::routes(cfg);
    cfg.route(LIST, web::get().to(list))
        .route(SUPPRESSIONS, web::get().to(suppressions))
        .route(
            "/admin/subscribers/suppressions/{id}/lift",
            web::post().to(lift),
        )
        .route("/admin/subscribers/{id}", web::get().to(one));
}

/// The staff actions of these pages, in words.
pub(super) const ACTION_WORDS: &[(&str, &str)] = &[
    ("suppression.lift", "Lifted the suppression"),
    ("account.role", "Changed the role"),
    ("entitlement.grant", "Granted access"),
    ("entitlement.revoke", "Revoked access"),
];

/// A choice offered by a filter's `<select>`.
#[derive(Serialize)]
pub(super) struct Choice {
    value: String,
    label: String,
}

impl Choice {
    pub(super) fn new(value: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            label: label.into(),
        }
    }
}

/// Where a listing is, and the links to its neighbours (which keep the
/// filters).
#[derive(Serialize)]
pub(super) struct Pager {
    first: i64,
    last: i64,
    total: i64,
    previous: Option<String>,
    next: Option<String>,
}

impl Pager {
    pub(super) fn new(
        path: &str,
        filters: &[(&str, &str)],
        paging: Paging,
        shown: usize,
        total: i64,
    ) -> Self {
        let link = |page: i64| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
                query.append_pair(name, value);
            }
            if page > 1 {
                query.append_pair("page", &page.to_string());
            }
            match query.finish() {
                q if q.is_empty() => path.to_owned(),
                q => format!("{path}?{q}"),
            }
        };
        let first = paging.offset() + 1;
        let last = paging.offset() + i64::try_from(shown).unwrap_or(0);
        Self {
            first: first.min(last.max(1)),
            last,
            total,
            previous: (paging.page > 1).then(|| link(paging.page - 1)),
            next: (last < total).then(|| link(paging.page + 1)),
        }
    }
}

/// A page number from a query, where junk means the first page.
pub(super) fn page_number(raw: Option<&str>) -> Result<Paging, AppError> {
    let page = raw.and_then(|p| p.trim().parse::<i64>().ok());
    Paging::parse(page, None, PER_PAGE, PER_PAGE)
}

/// A filter's value: empty means "any", and a value the page never offers
/// is a mistake to say, not to ignore.
pub(super) fn choice<T: FromStr>(field: &str, raw: Option<&str>) -> Result<Option<T>, AppError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|_| AppError::field(field, "unknown", "choose one of the options offered")),
    }
}

pub(super) fn status_words(status: SubscriberStatus) -> &'static str {
    match status {
        SubscriberStatus::Pending => "Not confirmed",
        SubscriberStatus::Confirmed => "Subscribed",
        SubscriberStatus::Unsubscribed => "Unsubscribed",
    }
}

fn source_words(source: Source) -> &'static str {
    match source {
        Source::Web => "Sign-up form",
        Source::Api => "API",
    }
}

fn reason_words(reason: SuppressionReason) -> &'static str {
    match reason {
        SuppressionReason::Unsubscribed => "Unsubscribed",
        SuppressionReason::HardBounce => "Bounced",
        SuppressionReason::SoftBounces => "Bounced on several days",
        SuppressionReason::Complaint => "Reported as spam",
        SuppressionReason::Erased => "Erased at their request",
    }
}

/// A subscriber as a row of the search results.
#[derive(Serialize)]
struct Row {
    id: String,
    email: String,
    status: SubscriberStatus,
    status_words: &'static str,
    sections: String,
    source: &'static str,
    signed_up: String,
}

impl Row {
    fn new(s: Subscriber, visitor: &Visitor) -> Self {
        Self {
            id: s.id.to_string(),
            email: s.email.to_string(),
            status: s.status,
            status_words: status_words(s.status),
            sections: section_names(&s, visitor),
            source: source_words(s.source),
            signed_up: s.created_at.and_utc().to_rfc3339(),
        }
    }
}

fn section_names(s: &Subscriber, visitor: &Visitor) -> String {
    s.sections
        .as_slice()
        .iter()
        .map(|slug| visitor.section_name(slug))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    status: Option<String>,
    section: Option<String>,
    source: Option<String>,
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
    let filter = query.filter()?;
    let q = query.q.clone().unwrap_or_default();
    let mut form = Form::new().with("q", q.as_str());
    let (rows, total) = match state
        .newsletter
        .search_subscribers(admin, filter.clone(), paging.per_page, paging.offset())
        .await
    {
        Ok(found) => found,
        Err(NewsletterError::Invalid(errors)) => {
            form = form.with_errors(errors);
            (Vec::new(), 0)
        }
        Err(other) => return Err(other.into()),
    };
    let (status, section, source) = selected(&filter);
    let pager = Pager::new(
        LIST,
        &[
            ("q", q.trim()),
            ("status", &status),
            ("section", &section),
            ("source", &source),
        ],
        paging,
        rows.len(),
        total,
    );
    let searched =
        !(q.trim().is_empty() && status.is_empty() && section.is_empty() && source.is_empty());
    let http_status = form.status();
    Page::new(
        "admin_subscribers.html",
        context! {
            title => "Subscribers",
            noindex => true,
            console_area => "subscribers",
            form => form,
            searched => searched,
            selected => context! { status => status, section => section, source => source },
            statuses => SubscriberStatus::ALL.iter().map(|s| Choice::new(s.as_str(), status_words(*s))).collect::<Vec<_>>(),
            section_choices => visitor.sections.iter().map(|s| Choice::new(s.slug.as_str(), s.name.as_str())).collect::<Vec<_>>(),
            sources => Source::ALL.iter().map(|s| Choice::new(s.as_str(), source_words(*s))).collect::<Vec<_>>(),
            rows => rows.into_iter().map(|s| Row::new(s, &visitor)).collect::<Vec<_>>(),
            total => total,
            pager => pager,
        },
    )
    .status(http_status)
    .render(&site, &visitor)
}

/// The status, section and source searched for, each blank when not given.
fn selected(filter: &SubscriberFilter) -> (String, String, String) {
    let selected = |value: Option<String>| value.unwrap_or_default();
    (
        selected(filter.status.map(|s| s.to_string())),
        selected(filter.section.clone()),
        selected(filter.source.map(|s| s.to_string())),
    )
}

impl SearchQuery {
    /// The search as the service takes it; a blank section is no filter.
    fn filter(&self) -> Result<SubscriberFilter, AppError> {
        Ok(SubscriberFilter {
            address: self.q.clone(),
            status: choice("status", self.status.as_deref())?,
            section: self
                .section
                .clone()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().to_owned()),
            source: choice("source", self.source.as_deref())?,
        })
    }
}

/// One moment of a subscriber's history.
#[derive(Serialize)]
struct Event {
    at: String,
    what: String,
    detail: Option<String>,
    #[serde(skip)]
    sort: NaiveDateTime,
}

impl Event {
    fn new(at: NaiveDateTime, what: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at: at.and_utc().to_rfc3339(),
            what: what.into(),
            detail,
            sort: at,
        }
    }
}

/// What happened to a subscription, oldest first, from its own record and
/// the mail sent for it; at the same moment a change comes before its
/// email.
fn history(record: &SubscriberRecord) -> Vec<Event> {
    let s = &record.subscriber;
    let mut events = vec![Event::new(
        s.created_at,
        match s.source {
            Source::Web => "Signed up with the sign-up form",
            Source::Api => "Signed up through the API",
        },
        None,
    )];
    if let Some(at) = s.confirmed_at {
        events.push(Event::new(at, "Confirmed", None));
    }
    if let Some(at) = s.unsubscribed_at {
        events.push(Event::new(at, "Unsubscribed", None));
    }
    for message in &record.messages {
        let (at, what) = match message.sent_at {
            Some(sent) => (sent.naive_utc(), "Email sent"),
            None => (message.queued_at.naive_utc(), "Email waiting to be sent"),
        };
        events.push(Event::new(at, what, Some(message.subject.clone())));
    }
    if record.messages.is_empty() {
        if let Some(sent) = s.confirmation_sent_at {
            events.push(Event::new(sent, "Confirmation email sent", None));
        }
    }
    if let Some(suppression) = &record.suppression {
        events.push(Event::new(
            suppression.created_at,
            format!(
                "Suppressed: {}",
                reason_words(suppression.reason).to_lowercase()
            ),
            suppression.detail.clone(),
        ));
    }
    events.sort_by_key(|e| e.sort);
    events
}

/// The suppression of an address as a page shows it.
#[derive(Serialize)]
struct SuppressionRow {
    id: String,
    email: Option<String>,
    reason_words: &'static str,
    /// Whether a new sign-up from the address is ignored while it lasts.
    blocks_sign_up: bool,
    detail: Option<String>,
    since: String,
}

impl From<Suppression> for SuppressionRow {
    fn from(s: Suppression) -> Self {
        Self {
            id: s.email_hash.to_string(),
            email: s.email.map(|e| e.to_string()),
            reason_words: reason_words(s.reason),
            blocks_sign_up: s.reason.blocks_opt_in(),
            detail: s.detail,
            since: s.created_at.and_utc().to_rfc3339(),
        }
    }
}

async fn one(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: SubscriberId = parse_id(&id).map_err(|_| AppError::NotFound)?;
    let record = state.newsletter.subscriber_record(admin, id).await?;
    let digests = state.digest.sent_to(admin, id).await?;
    let hash = state.newsletter.suppression_hash(&record.subscriber.email);
    let staff = staff_actions(
        &state,
        admin,
        vec![
            Subject::new(SubjectKind::Subscriber, id),
            Subject::new(SubjectKind::Suppression, &hash),
        ],
    )
    .await?;
    let s = &record.subscriber;
    let account = match s.account_id {
        Some(account_id) => match state.accounts.get(admin, account_id).await {
            Ok(account) => Some(account),
            Err(AccountError::NotFound) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    Page::new(
        "admin_subscriber.html",
        context! {
            title => format!("Subscriber {}", s.email),
            noindex => true,
            console_area => "subscribers",
            subscriber => context! {
                id => s.id.to_string(),
                email => s.email.to_string(),
                status => s.status,
                status_words => status_words(s.status),
                sections => section_names(s, &visitor),
                source => source_words(s.source),
                consent_text => &s.consent_text,
                signed_up => s.created_at.and_utc().to_rfc3339(),
                confirmed => s.confirmed_at.map(|t| t.and_utc().to_rfc3339()),
                paused_until => s.paused_until.map(|t| t.and_utc().to_rfc3339()),
            },
            linked_account => account.map(|a| context! { id => a.id.to_string(), name => a.name }),
            suppression => record.suppression.clone().map(SuppressionRow::from),
            history => history(&record),
            digests => digests,
            staff => staff,
            action_words => ACTION_WORDS.iter().copied().collect::<BTreeMap<_, _>>(),
        },
    )
    .render(&site, &visitor)
}

/// What staff did to these things, oldest first, with who did it.
pub(super) async fn staff_actions(
    state: &AppState,
    admin: &Account,
    subjects: Vec<Subject>,
) -> Result<Vec<crate::http::pages::admin::audit::EntryView>, AppError> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    for subject in subjects {
        entries.extend(state.audit.of_subject(admin.role, subject).await?);
    }
    entries.sort_by_key(|e| (e.at, e.id));
    entry_views(state, admin, entries).await
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
}

async fn suppressions(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let paging = page_number(query.page.as_deref())?;
    let (rows, total) = state
        .newsletter
        .list_suppressions(admin, paging.per_page, paging.offset())
        .await?;
    let pager = Pager::new(SUPPRESSIONS, &[], paging, rows.len(), total);
    Page::new(
        "admin_subscriber_suppressions.html",
        context! {
            title => "Suppression list",
            noindex => true,
            console_area => "subscribers",
            rows => rows.into_iter().map(SuppressionRow::from).collect::<Vec<_>>(),
            total => total,
            pager => pager,
        },
    )
    .render(&site, &visitor)
}

/// `NewsletterService::lift_suppression`, as
/// `DELETE /api/v1/admin/newsletter/suppressions/{id}` calls it; then back
/// to the page the button was on.
#[tracing::instrument(skip_all)]
async fn lift(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let back = local_path(posted.optional("back").as_deref());
    let back = if back.starts_with(LIST) {
        back
    } else {
        SUPPRESSIONS.to_owned()
    };
    let (kind, message) = match state.newsletter.lift_suppression(admin, &id).await {
        Ok(lifted) => {
            let whose = lifted
                .email
                .map_or_else(|| "an erased address".to_owned(), |e| e.to_string());
            (
                Kind::Success,
                format!(
                    "The suppression of {whose} is lifted: newsletter mail can go to it again."
                ),
            )
        }
        Err(NewsletterError::NoSuchSuppression) => (
            Kind::Info,
            "That address was not on the suppression list (any more), so nothing was changed."
                .to_owned(),
        ),
        Err(other) => return Err(other.into()),
    };
    Ok(see_other_with(&site, &back, kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pager_keeps_the_filters_and_counts_what_is_shown() {
        let paging = Paging::parse(Some(2), None, 50, 50).expect("a page");
        let pager = Pager::new(
            LIST,
            &[("q", "a&b"), ("status", ""), ("source", "web")],
            paging,
            50,
            120,
        );
        assert_eq!((pager.first, pager.last, pager.total), (51, 100, 120));
        assert_eq!(
            pager.previous.as_deref(),
            Some("/admin/subscribers?q=a%26b&source=web")
        );
        assert_eq!(
            pager.next.as_deref(),
            Some("/admin/subscribers?q=a%26b&source=web&page=3")
        );
        let last = Paging::parse(Some(3), None, 50, 50).expect("a page");
        let pager = Pager::new(LIST, &[], last, 20, 120);
        assert_eq!((pager.first, pager.last), (101, 120));
        assert_eq!(pager.previous.as_deref(), Some("/admin/subscribers?page=2"));
        assert_eq!(pager.next, None);
    }

    #[test]
    fn a_filter_is_empty_known_or_refused() {
        assert_eq!(choice::<Source>("source", Some(" ")).expect("any"), None);
        assert_eq!(
            choice::<Source>("source", Some("web")).expect("known"),
            Some(Source::Web)
        );
        assert!(choice::<Source>("source", Some("fax")).is_err());
        assert_eq!(page_number(Some("junk")).expect("page 1").page, 1);
        assert!(page_number(Some("0")).is_err());
    }
}
