//! JSON endpoints of the newsletter. Its pages, the one-click unsubscribe
//! among them, are in `web::newsletter`.

use actix_web::http::header;
use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::model::{
    Sections, Source, Subscriber, SubscriberId, SubscriberStatus, Suppression, SuppressionReason,
};
use super::service::{
    BounceKind, ExportedMessage, Holder, NewsletterError, PreferenceChanges, Reporter, SignUp,
};
use super::store::SubscriberFilter;
use crate::accounts::{AccountId, CurrentAccount, Role};
use crate::error::AppError;
use crate::extract::{client_ip, parse_id, ApiJson, Paging};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/newsletter/subscriptions", web::post().to(sign_up))
        .route("/newsletter/confirm", web::post().to(confirm))
        .route("/newsletter/preferences", web::get().to(preferences))
        .route("/newsletter/preferences", web::put().to(update_preferences))
        .route("/newsletter/data", web::get().to(export))
        .route("/newsletter/data", web::delete().to(erase))
        .route(
            "/admin/newsletter/subscribers",
            web::get().to(search_subscribers),
        )
        .route(
            "/admin/newsletter/subscribers/{id}",
            web::get().to(subscriber_record),
        )
        .route(
            "/admin/newsletter/suppressions",
            web::get().to(list_suppressions),
        )
        .route(
            "/admin/newsletter/suppressions/{id}",
            web::delete().to(lift_suppression),
        )
        .route("/admin/bounces", web::post().to(report_bounce));
}

impl From<NewsletterError> for AppError {
    fn from(error: NewsletterError) -> Self {
        match error {
            NewsletterError::Invalid(errors) => AppError::Validation(errors),
            NewsletterError::InvalidToken => AppError::field(
                "token",
                "invalid_or_expired",
                "this link is invalid, has been used, or has expired",
            ),
            NewsletterError::NotSubscribed => AppError::NotFound,
            NewsletterError::Unverified => AppError::Forbidden {
                detail: "verify your email address first",
            },
            NewsletterError::Suppressed => AppError::Conflict {
                reason: "suppressed",
                detail: "mail to this address bounced or was reported; contact us to lift it"
                    .into(),
            },
            NewsletterError::NoSuchSuppression => AppError::NotFound,
            NewsletterError::Forbidden(Role::Admin) => AppError::Forbidden {
                detail: "only admins may do this",
            },
            NewsletterError::Forbidden(_) => AppError::Forbidden {
                detail: "only editors may do this",
            },
            NewsletterError::HookUnauthorized => AppError::Unauthorized {
                detail: "log in as an admin or send the bounce hook token",
            },
            NewsletterError::Limited(limited) => limited.into(),
            NewsletterError::Storage(e) => e.into(),
            e @ NewsletterError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

#[derive(Deserialize)]
struct SignUpBody {
    email: String,
    sections: Option<Vec<String>>,
    source: Option<Source>,
}

/// Answers 202 with the same body whatever became of the address.
#[tracing::instrument(skip_all)]
async fn sign_up(
    state: Data<AppState>,
    req: HttpRequest,
    current: Option<CurrentAccount>,
    body: ApiJson<SignUpBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    state
        .newsletter
        .sign_up(
            SignUp {
                email: body.email,
                sections: body.sections,
                source: body.source.unwrap_or(Source::Api),
            },
            current.map(|c| c.account),
            client_ip(&req),
        )
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message:
            "Thank you. If this address is not yet subscribed, we have sent it a link to confirm.",
    }))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[tracing::instrument(skip_all)]
async fn confirm(
    state: Data<AppState>,
    body: ApiJson<TokenBody>,
) -> Result<HttpResponse, AppError> {
    state.newsletter.confirm(&body.0.token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "confirmed" })))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The link from an email when there is one, else the session.
fn holder(current: Option<CurrentAccount>, query: TokenQuery) -> Result<Holder, AppError> {
    match (query.token, current) {
        (Some(token), _) => Ok(Holder::Link(token)),
        (None, Some(current)) => Ok(Holder::Account(current.account)),
        (None, None) => Err(AppError::Unauthorized {
            detail: "log in, or use the link from a newsletter email",
        }),
    }
}

async fn preferences(
    state: Data<AppState>,
    current: Option<CurrentAccount>,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let preferences = state
        .newsletter
        .preferences(holder(current, query.into_inner())?)
        .await?;
    Ok(HttpResponse::Ok().json(preferences))
}

#[derive(Deserialize)]
struct PreferencesBody {
    sections: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    paused_until: Option<Option<NaiveDate>>,
    subscribed: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[tracing::instrument(skip_all)]
async fn update_preferences(
    state: Data<AppState>,
    current: Option<CurrentAccount>,
    query: Query<TokenQuery>,
    body: ApiJson<PreferencesBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let preferences = state
        .newsletter
        .update_preferences(
            holder(current, query.into_inner())?,
            PreferenceChanges {
                sections: body.sections,
                paused_until: body.paused_until,
                subscribed: body.subscribed,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(preferences))
}

async fn export(
    state: Data<AppState>,
    current: Option<CurrentAccount>,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let export = state
        .newsletter
        .export(holder(current, query.into_inner())?)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"newsletter-data.json\"",
        ))
        .json(export))
}

#[tracing::instrument(skip_all)]
async fn erase(
    state: Data<AppState>,
    current: Option<CurrentAccount>,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    state
        .newsletter
        .erase(holder(current, query.into_inner())?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

#[derive(Serialize)]
struct SuppressionView {
    /// The SHA-256 of the address: what a lift names.
    id: String,
    /// `null` once the subscriber was erased.
    email: Option<String>,
    reason: SuppressionReason,
    detail: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        Self {
            id: s.email_hash.to_string(),
            email: s.email.map(|e| e.to_string()),
            reason: s.reason,
            detail: s.detail,
            created_at: s.created_at.and_utc(),
        }
    }
}

#[derive(Serialize)]
struct SuppressionPage {
    suppressions: Vec<SuppressionView>,
    page: i64,
    per_page: i64,
    total: i64,
}

async fn list_suppressions(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let paging = Paging::parse(query.page, query.per_page, 50, 200)?;
    let (rows, total) = state
        .newsletter
        .list_suppressions(&current.account, paging.per_page, paging.offset())
        .await?;
    Ok(HttpResponse::Ok().json(SuppressionPage {
        suppressions: rows.into_iter().map(SuppressionView::from).collect(),
        page: paging.page,
        per_page: paging.per_page,
        total,
    }))
}

#[tracing::instrument(skip_all)]
async fn lift_suppression(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    state
        .newsletter
        .lift_suppression(&current.account, &id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct SearchQuery {
    /// Part of the address.
    q: Option<String>,
    status: Option<SubscriberStatus>,
    section: Option<String>,
    source: Option<Source>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// A subscriber as the admin API lists them.
#[derive(Serialize)]
struct SubscriberView {
    id: SubscriberId,
    email: String,
    status: SubscriberStatus,
    sections: Sections,
    source: Source,
    account_id: Option<AccountId>,
    signed_up_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
}

impl From<Subscriber> for SubscriberView {
    fn from(s: Subscriber) -> Self {
        Self {
            id: s.id,
            email: s.email.to_string(),
            status: s.status,
            sections: s.sections,
            source: s.source,
            account_id: s.account_id,
            signed_up_at: s.created_at.and_utc(),
            confirmed_at: s.confirmed_at.map(|t| t.and_utc()),
            unsubscribed_at: s.unsubscribed_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Serialize)]
struct SubscriberPage {
    subscribers: Vec<SubscriberView>,
    page: i64,
    per_page: i64,
    total: i64,
}

async fn search_subscribers(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let paging = Paging::parse(query.page, query.per_page, 50, 200)?;
    let (rows, total) = state
        .newsletter
        .search_subscribers(
            &current.account,
            SubscriberFilter {
                address: query.q,
                status: query.status,
                section: query.section,
                source: query.source,
            },
            paging.per_page,
            paging.offset(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(SubscriberPage {
        subscribers: rows.into_iter().map(SubscriberView::from).collect(),
        page: paging.page,
        per_page: paging.per_page,
        total,
    }))
}

/// One subscriber with what the console shows of their history.
#[derive(Serialize)]
struct RecordView {
    #[serde(flatten)]
    subscriber: SubscriberView,
    consent_text: String,
    paused_until: Option<NaiveDate>,
    confirmation_sent_at: Option<DateTime<Utc>>,
    suppression: Option<SuppressionView>,
    messages: Vec<ExportedMessage>,
}

async fn subscriber_record(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: SubscriberId = parse_id(&id)?;
    let record = state
        .newsletter
        .subscriber_record(&current.account, id)
        .await?;
    let s = record.subscriber;
    Ok(HttpResponse::Ok().json(RecordView {
        consent_text: s.consent_text.clone(),
        paused_until: s.paused_until.map(|t| t.date()),
        confirmation_sent_at: s.confirmation_sent_at.map(|t| t.and_utc()),
        subscriber: SubscriberView::from(s),
        suppression: record.suppression.map(SuppressionView::from),
        messages: record.messages,
    }))
}

#[derive(Deserialize)]
struct BounceBody {
    email: String,
    #[serde(rename = "type")]
    kind: BounceKind,
    detail: Option<String>,
}

/// Accepts a bounce or complaint from an admin, or from an MTA hook that
/// sends `Authorization: Bearer <newsletter.bounce_hook_token>`.
#[tracing::instrument(skip_all)]
async fn report_bounce(
    state: Data<AppState>,
    req: HttpRequest,
    current: Option<CurrentAccount>,
    body: ApiJson<BounceBody>,
) -> Result<HttpResponse, AppError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let reporter = match (bearer, current) {
        (Some(token), _) => Reporter::Hook(token),
        (None, Some(current)) => Reporter::Admin(current.account),
        (None, None) => {
            return Err(AppError::Unauthorized {
                detail: "log in as an admin or send the bounce hook token",
            })
        }
    };
    let body = body.0;
    let suppressed = state
        .newsletter
        .report_bounce(reporter, &body.email, body.kind, body.detail)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "status": if suppressed { "suppressed" } else { "noted" },
    })))
}
