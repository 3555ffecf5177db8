//! JSON endpoints of the newsletter. Its pages, the one-click unsubscribe
//! among them, are in `web::newsletter`.

use actix_web::http::header;
use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::accounts::AccountId;
use crate::http::api::accounts::{Accepted, Done};
use crate::http::api::responses::{Conflict, Forbidden, NotFound, RateLimited, Unauthorized};
use crate::http::extract::{client_ip, parse_id, ApiJson, Paging, RawJson, SnsJson};
use crate::http::session::CurrentAccount;
use crate::newsletter::model::{
    Sections, Source, Subscriber, SubscriberId, SubscriberStatus, Suppression, SuppressionReason,
};
use crate::newsletter::service::{
    BounceKind, Export, ExportedMessage, Holder, NewsletterError, PreferenceChanges, Preferences,
    ProviderReport, Reporter, SignUp,
};
use crate::newsletter::store::SubscriberFilter;
use crate::platform::error::AppError;
use crate::platform::mail::webhooks::{
    MailgunWebhook, PostmarkWebhook, SendgridEvent, SendgridPost, SnsMessage,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(
    sign_up,
    confirm,
    preferences,
    update_preferences,
    export,
    erase,
    search_subscribers,
    subscriber_record,
    list_suppressions,
    lift_suppression,
    report_bounce,
    mailgun_webhook,
    postmark_webhook,
    sendgrid_webhook,
    ses_webhook
))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/newsletter/subscriptions", web::post().to(sign_up))
        .route("/newsletter/confirm", web::post().to(confirm))
        .route("/newsletter/preferences", web::get().to(preferences))
        .route("/newsletter/preferences", web::put().to(update_preferences))
        .route("/newsletter/data", web::get().to(export))
        .route("/newsletter/data", web::delete().to(erase))
        .route("/webhooks/mailgun", web::post().to(mailgun_webhook))
        .route("/webhooks/postmark", web::post().to(postmark_webhook))
        .route("/webhooks/sendgrid", web::post().to(sendgrid_webhook))
        .route("/webhooks/ses", web::post().to(ses_webhook));
}

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/newsletter/subscribers", web::get().to(search_subscribers))
        .route(
            "/newsletter/subscribers/{id}",
            web::get().to(subscriber_record),
        )
        .route("/newsletter/suppressions", web::get().to(list_suppressions))
        .route(
            "/newsletter/suppressions/{id}",
            web::delete().to(lift_suppression),
        )
        .route("/bounces", web::post().to(report_bounce));
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
            NewsletterError::Forbidden(role) => AppError::only(role),
            NewsletterError::HookUnauthorized => AppError::Unauthorized {
                detail: "log in as an admin or send the bounce hook token",
            },
            NewsletterError::WebhookNotConfigured => AppError::NotFound,
            NewsletterError::WebhookMalformed(detail) => AppError::MalformedBody { detail },
            NewsletterError::WebhookUnauthorized => AppError::Unauthorized {
                detail: "the webhook's signature or credentials do not match",
            },
            NewsletterError::Limited(limited) => limited.into(),
            NewsletterError::Storage(e) => e.into(),
            e @ NewsletterError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct SignUpBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Section slugs; all sections when absent.
    sections: Option<Vec<String>>,
    source: Option<Source>,
}

/// Signs an address up and mails it a link to confirm (double opt-in).
/// Answers 202 with the same body whatever became of the address.
#[utoipa::path(post, path = "/newsletter/subscriptions", tag = "newsletter",
    security((), ("session" = [])),
    request_body = SignUpBody,
    responses((status = 202, body = Accepted), (status = 429, response = RateLimited)))]
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
    Ok(HttpResponse::Accepted().json(Accepted::new(
        "Thank you. If this address is not yet subscribed, we have sent it a link to confirm.",
    )))
}

#[derive(Deserialize, ToSchema)]
struct TokenBody {
    /// The token from the emailed link.
    token: String,
}

/// Confirms a subscription with the token from the emailed link.
#[utoipa::path(post, path = "/newsletter/confirm", tag = "newsletter", request_body = TokenBody,
    responses((status = 200, body = Done, description = "`confirmed`"),
        (status = 409, response = Conflict)))]
#[tracing::instrument(skip_all)]
async fn confirm(
    state: Data<AppState>,
    body: ApiJson<TokenBody>,
) -> Result<HttpResponse, AppError> {
    state.newsletter.confirm(&body.0.token).await?;
    Ok(HttpResponse::Ok().json(Done::new("confirmed")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// The manage token from a newsletter email; the session's account when
    /// absent.
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

/// The subscription's sections, pause and state: of the session's account,
/// or of the address a newsletter email's link names.
#[utoipa::path(get, path = "/newsletter/preferences", tag = "newsletter",
    security((), ("session" = [])),
    params(TokenQuery),
    responses(
        (status = 200, body = Preferences),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

/// Only the fields sent change.
#[derive(Deserialize, ToSchema)]
struct PreferencesBody {
    /// Section slugs.
    sections: Option<Vec<String>>,
    /// A date pauses the newsletter until then; `null` ends a pause.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NaiveDate>)]
    paused_until: Option<Option<NaiveDate>>,
    /// `false` unsubscribes.
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

/// Changes sections, pauses, or unsubscribes.
#[utoipa::path(put, path = "/newsletter/preferences", tag = "newsletter",
    security((), ("session" = [])),
    params(TokenQuery),
    request_body = PreferencesBody,
    responses(
        (status = 200, body = Preferences),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
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

/// Everything stored about the subscriber, as a JSON download.
#[utoipa::path(get, path = "/newsletter/data", tag = "newsletter",
    security((), ("session" = [])),
    params(TokenQuery),
    responses(
        (status = 200, body = Export),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

/// Erases the subscriber: the address is forgotten.
#[utoipa::path(delete, path = "/newsletter/data", tag = "newsletter",
    security((), ("session" = [])),
    params(TokenQuery),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct SuppressionView {
    /// The SHA-256 of the address: what a lift names.
    id: String,
    /// `null` once the subscriber was erased.
    #[schema(format = Email)]
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

#[derive(Serialize, ToSchema)]
struct SuppressionPage {
    suppressions: Vec<SuppressionView>,
    page: i64,
    per_page: i64,
    total: i64,
}

/// Addresses no newsletter goes to, after a bounce or a complaint (admin).
#[utoipa::path(get, path = "/admin/newsletter/suppressions", tag = "newsletter",
    security(("session" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = SuppressionPage),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
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

/// Lifts a suppression (admin).
#[utoipa::path(delete, path = "/admin/newsletter/suppressions/{id}", tag = "newsletter",
    security(("session" = [])),
    params(("id" = String, Path, description = "The suppression's `id`")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Part of the address.
    q: Option<String>,
    status: Option<SubscriberStatus>,
    /// A section's slug.
    section: Option<String>,
    source: Option<Source>,
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<i64>,
}

/// A subscriber as the admin API lists them.
#[derive(Serialize, ToSchema)]
struct SubscriberView {
    id: SubscriberId,
    #[schema(format = Email)]
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

#[derive(Serialize, ToSchema)]
struct SubscriberPage {
    subscribers: Vec<SubscriberView>,
    page: i64,
    per_page: i64,
    total: i64,
}

/// Subscribers, found by address, state, section or source (admin).
#[utoipa::path(get, path = "/admin/newsletter/subscribers", tag = "newsletter",
    security(("session" = [])),
    params(SearchQuery),
    responses(
        (status = 200, body = SubscriberPage),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
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
#[derive(Serialize, ToSchema)]
struct RecordView {
    #[serde(flatten)]
    subscriber: SubscriberView,
    consent_text: String,
    paused_until: Option<NaiveDate>,
    confirmation_sent_at: Option<DateTime<Utc>>,
    suppression: Option<SuppressionView>,
    messages: Vec<ExportedMessage>,
}

/// One subscriber, their suppression and the mail sent to them (admin).
#[utoipa::path(get, path = "/admin/newsletter/subscribers/{id}", tag = "newsletter",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The subscriber's id")),
    responses(
        (status = 200, body = RecordView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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

#[derive(Deserialize, ToSchema)]
struct BounceBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[serde(rename = "type")]
    kind: BounceKind,
    detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct BounceOutcome {
    /// `suppressed` when no newsletter goes to the address any more, else
    /// `noted`.
    status: &'static str,
}

/// Accepts a bounce or complaint from an admin, or from an MTA hook that
/// sends `Authorization: Bearer <newsletter.bounce_hook_token>`.
#[utoipa::path(post, path = "/admin/bounces", tag = "newsletter",
    security(("session" = []), ("bounce_hook" = [])),
    request_body = BounceBody,
    responses(
        (status = 202, body = BounceOutcome),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
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
    Ok(HttpResponse::Accepted().json(BounceOutcome {
        status: if suppressed { "suppressed" } else { "noted" },
    }))
}

fn provider_outcome(recorded: Option<bool>) -> HttpResponse {
    HttpResponse::Ok().json(BounceOutcome {
        status: match recorded {
            Some(true) => "suppressed",
            Some(false) => "noted",
            None => "ignored",
        },
    })
}

/// Mailgun's webhook for `failed` and `complained` events, signed with
/// `newsletter.mailgun_signing_key`: a permanent failure is a hard bounce,
/// a temporary one a soft bounce. Other events are answered `ignored`.
#[utoipa::path(post, path = "/webhooks/mailgun", tag = "newsletter",
    request_body = MailgunWebhook,
    responses(
        (status = 200, body = BounceOutcome),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
#[tracing::instrument(skip_all)]
async fn mailgun_webhook(
    state: Data<AppState>,
    body: ApiJson<MailgunWebhook>,
) -> Result<HttpResponse, AppError> {
    let recorded = state
        .newsletter
        .provider_report(ProviderReport::Mailgun(body.0))
        .await?;
    Ok(provider_outcome(recorded))
}

/// Postmark's bounce and spam-complaint webhook, with
/// `newsletter.postmark_webhook_token` as the password of its basic auth
/// (or as a bearer token). Other record types are answered `ignored`.
#[utoipa::path(post, path = "/webhooks/postmark", tag = "newsletter",
    request_body = PostmarkWebhook,
    responses(
        (status = 200, body = BounceOutcome),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
#[tracing::instrument(skip_all)]
async fn postmark_webhook(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<PostmarkWebhook>,
) -> Result<HttpResponse, AppError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let recorded = state
        .newsletter
        .provider_report(ProviderReport::Postmark {
            authorization,
            hook: body.0,
        })
        .await?;
    Ok(provider_outcome(recorded))
}

/// SendGrid's signed event webhook, verified with
/// `newsletter.sendgrid_verification_key` over the timestamp and the raw
/// body: `bounce` is a hard bounce (`blocked` a soft one), `deferred` a soft
/// bounce, `spamreport` a complaint; other events are ignored.
#[utoipa::path(post, path = "/webhooks/sendgrid", tag = "newsletter",
    request_body = Vec<SendgridEvent>,
    params(
        ("X-Twilio-Email-Event-Webhook-Signature" = Option<String>, Header, description = "base64 DER ECDSA signature"),
        ("X-Twilio-Email-Event-Webhook-Timestamp" = Option<String>, Header, description = "Unix time the signature covers"),
    ),
    responses(
        (status = 200, body = BounceOutcome),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
#[tracing::instrument(skip_all)]
async fn sendgrid_webhook(
    state: Data<AppState>,
    req: HttpRequest,
    body: RawJson,
) -> Result<HttpResponse, AppError> {
    let header_value = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let post = SendgridPost {
        signature: header_value("X-Twilio-Email-Event-Webhook-Signature"),
        timestamp: header_value("X-Twilio-Email-Event-Webhook-Timestamp"),
        body: body.0,
    };
    let recorded = state
        .newsletter
        .provider_report(ProviderReport::Sendgrid(post))
        .await?;
    Ok(provider_outcome(recorded))
}

/// Amazon SES's bounce and complaint notifications, through the SNS topic
/// `newsletter.ses_topic_arn`, each checked against SNS's signing
/// certificate (`newsletter.ses_signing_cert`). SNS posts JSON as
/// `text/plain`. A subscription confirmation is logged with the address
/// that confirms it.
#[utoipa::path(post, path = "/webhooks/ses", tag = "newsletter",
    request_body(content = SnsMessage, content_type = "text/plain"),
    responses(
        (status = 200, body = BounceOutcome),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
#[tracing::instrument(skip_all)]
async fn ses_webhook(
    state: Data<AppState>,
    body: SnsJson<SnsMessage>,
) -> Result<HttpResponse, AppError> {
    let recorded = state
        .newsletter
        .provider_report(ProviderReport::Ses(body.0))
        .await?;
    Ok(provider_outcome(recorded))
}
