//! JSON endpoints for sections and articles.

use actix_web::http::header::{ContentType, ETag, IfNoneMatch, VARY};
use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::access::Level;
use crate::access::Reason;
use crate::accounts::AccountId;
use crate::articles::cache::Json;
use crate::articles::model::{ArticleId, ArticleStatus, Section};
use crate::articles::service::{ArticleError, Draft, Edit, Entry, Listing, Reading, Viewer};
use crate::http::api::responses::{Conflict, Forbidden, NotFound, Unauthorized};
use crate::http::extract::{parse_id, ApiJson, Paging};
use crate::http::session::session_token;
use crate::http::session::CurrentAccount;
use crate::platform::error::AppError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(
    sections,
    create_section,
    list,
    create,
    read,
    edit,
    publish,
    withdraw,
    revisions
))]
pub struct Api;

/// The articles in a scope of their own, so that no other request runs
/// their patterns (see `app::routes`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sections", web::get().to(sections))
        .route("/sections", web::post().to(create_section))
        .service(
            web::scope("/articles")
                .route("", web::get().to(list))
                .route("", web::post().to(create))
                .route("/{slug}", web::get().to(read))
                .route("/{id}", web::patch().to(edit))
                .route("/{id}/publish", web::post().to(publish))
                .route("/{id}/withdraw", web::post().to(withdraw))
                .route("/{id}/revisions", web::get().to(revisions)),
        );
}

/// When a search cut off by its time limit may be tried again.
const SEARCH_RETRY_AFTER_SECS: u64 = 5;

impl From<ArticleError> for AppError {
    fn from(error: ArticleError) -> Self {
        match error {
            ArticleError::Invalid(errors) => AppError::Validation(errors),
            ArticleError::NotFound => AppError::NotFound,
            ArticleError::Conflict { reason, detail } => AppError::Conflict {
                reason,
                detail: detail.to_owned(),
            },
            ArticleError::Account(e) => e.into(),
            ArticleError::Storage(e) => e.into(),
            e @ ArticleError::Corrupt(_) => AppError::Internal(e.into()),
            // Searches this costly come in floods: the client may try again
            // once it has passed.
            ArticleError::SearchTimedOut => AppError::Busy {
                retry_after_secs: SEARCH_RETRY_AFTER_SECS,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct SectionView {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: String,
    name: String,
}

impl From<&Section> for SectionView {
    fn from(s: &Section) -> Self {
        Self {
            slug: s.slug.to_string(),
            name: s.name.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct Summary {
    id: ArticleId,
    slug: String,
    title: String,
    standfirst: String,
    section: SectionView,
    tags: Vec<String>,
    byline: String,
    status: ArticleStatus,
    published_at: Option<DateTime<Utc>>,
}

impl From<&Entry> for Summary {
    fn from(e: &Entry) -> Self {
        Self {
            id: e.article.id,
            slug: e.article.slug.to_string(),
            title: e.article.title.clone(),
            standfirst: e.article.standfirst.clone(),
            section: SectionView::from(&e.section),
            tags: e.tags.clone(),
            byline: e.article.byline.clone(),
            status: e.article.status,
            published_at: e.article.published_at.map(|t| t.and_utc()),
        }
    }
}

/// What the editor works on: the summary plus the source.
#[derive(Debug, Serialize, ToSchema)]
struct EditorView {
    #[serde(flatten)]
    summary: Summary,
    body: String,
    body_html: String,
}

impl From<Entry> for EditorView {
    fn from(e: Entry) -> Self {
        Self {
            summary: Summary::from(&e),
            body: e.article.body_markdown,
            body_html: e.article.body_html,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct CallToAction {
    kind: &'static str,
    label: &'static str,
    href: &'static str,
}

/// What the site offers a reader who hits the paywall.
const CALLS_TO_ACTION: &[CallToAction] = &[
    CallToAction {
        kind: "newsletter",
        label: "Sign up to our free daily newsletter",
        href: "/newsletter",
    },
    CallToAction {
        kind: "trial",
        label: "Request a free two-week trial",
        href: "/trial",
    },
    CallToAction {
        kind: "company_access",
        label: "Check if your company has a subscription",
        href: "/company-access",
    },
];

#[derive(Debug, Serialize, ToSchema)]
struct ArticleView {
    #[serde(flatten)]
    summary: Summary,
    access: Level,
    reason: Reason,
    access_until: Option<DateTime<Utc>>,
    /// The whole article, or its opening when `access` is `teaser`.
    body_html: String,
    #[schema(value_type = Vec<CallToAction>)]
    calls_to_action: &'static [CallToAction],
    related: Vec<Summary>,
}

#[derive(Serialize, ToSchema)]
struct SectionList {
    sections: Vec<SectionView>,
}

/// The site's sections, in their order.
#[utoipa::path(get, path = "/sections", tag = "articles",
    responses((status = 200, body = SectionList)))]
async fn sections(state: Data<AppState>) -> Result<HttpResponse, AppError> {
    let sections = state.articles.sections().await?;
    Ok(HttpResponse::Ok().json(SectionList {
        sections: sections.iter().map(SectionView::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
struct SectionBody {
    name: String,
    /// Derived from the name when absent.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: Option<String>,
}

/// Adds a section (admin).
#[utoipa::path(post, path = "/sections", tag = "articles", security(("session" = [])),
    request_body = SectionBody,
    responses(
        (status = 201, body = SectionView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    ))]
async fn create_section(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<SectionBody>,
) -> Result<HttpResponse, AppError> {
    let section = state
        .articles
        .create_section(&current.account, &body.0.name, body.0.slug.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(SectionView::from(&section)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Other than `published`: editors only.
    status: Option<ArticleStatus>,
    /// A section's slug.
    section: Option<String>,
    tag: Option<String>,
    /// Words to search for.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Published at or after.
    from: Option<DateTime<Utc>>,
    /// Published before.
    to: Option<DateTime<Utc>>,
    /// The `as_of` of the first page, to page through the same listing.
    as_of: Option<DateTime<Utc>>,
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1)]
    per_page: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ArticlePage)]
struct ListView {
    articles: Vec<Summary>,
    page: i64,
    per_page: i64,
    total: i64,
    /// Pass back to get later pages of the same listing, unchanged by
    /// articles published since.
    as_of: DateTime<Utc>,
}

/// Published articles, newest first, paginated; editors may list other
/// states. Sent again with the `ETag` in `If-None-Match`, an unchanged
/// listing is answered 304 without a body.
#[utoipa::path(get, path = "/articles", tag = "articles", security((), ("session" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = ListView, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 403, response = Forbidden),
    ))]
async fn list(
    req: HttpRequest,
    state: Data<AppState>,
    viewer: Option<CurrentAccount>,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let settings = state.articles.settings();
    let paging = Paging::parse(
        query.page,
        query.per_page,
        settings.per_page,
        settings.max_per_page,
    )?;
    let listing = Listing {
        status: query.status,
        section: query.section,
        tag: query.tag,
        search: query.q,
        published_from: query.from,
        published_to: query.to,
        as_of: query.as_of,
        limit: paging.per_page,
        offset: paging.offset(),
    };
    let found = state
        .articles
        .list(viewer.as_ref().map(|v| &v.account), listing)
        .await?;
    let json = found.json(|found| {
        to_json(&ListView {
            articles: found.entries.iter().map(Summary::from).collect(),
            page: paging.page,
            per_page: paging.per_page,
            total: found.total,
            as_of: found.as_of,
        })
    });
    Ok(answer_kept(&req, json))
}

/// The kept JSON, or 304 when the client holds it already.
fn answer_kept(req: &HttpRequest, json: &Json) -> HttpResponse {
    let held = req
        .get_header::<IfNoneMatch>()
        .is_some_and(|tags| match tags {
            IfNoneMatch::Any => true,
            IfNoneMatch::Items(tags) => tags.iter().any(|tag| tag.weak_eq(&json.etag)),
        });
    let mut response = if held {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(ETag(json.etag.clone()))
        // The same address answers a logged-in reader differently.
        .insert_header((VARY, "Cookie"));
    if held {
        return response.finish();
    }
    response
        .content_type(ContentType::json())
        .body(json.body.clone())
}

fn to_json(view: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(view).expect("article views are plain structs that always serialise")
}

#[derive(Deserialize, ToSchema)]
struct DraftBody {
    title: String,
    standfirst: String,
    /// Markdown.
    body: String,
    /// A section's slug.
    section: String,
    #[serde(default)]
    tags: Vec<String>,
    /// The author's name when absent.
    byline: Option<String>,
}

/// Writes a draft (editor).
#[utoipa::path(post, path = "/articles", tag = "articles", security(("session" = [])),
    request_body = DraftBody,
    responses(
        (status = 201, body = EditorView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    ))]
async fn create(
    state: Data<AppState>,
    current: CurrentAccount,
    body: ApiJson<DraftBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let entry = state
        .articles
        .create(
            &current.account,
            Draft {
                title: body.title,
                standfirst: body.standfirst,
                body: body.body,
                section: body.section,
                tags: body.tags,
                byline: body.byline,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(EditorView::from(entry)))
}

/// One published article: in full, or its teaser with the reason and what
/// the site offers instead. A reader who is not logged in gets an `ETag`,
/// and 304 when sending it back in `If-None-Match` while it holds.
#[utoipa::path(get, path = "/articles/{article}", tag = "articles",
    security((), ("session" = [])),
    params(("article" = String, Path, description = "The article's slug")),
    responses(
        (status = 200, body = ArticleView),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 404, response = NotFound),
    ))]
async fn read(
    req: HttpRequest,
    state: Data<AppState>,
    slug: Path<String>,
) -> Result<HttpResponse, AppError> {
    let viewer = session_token(&req).map_or(Viewer::Anonymous, Viewer::Session);
    let reading = state.articles.read(viewer, &slug).await?;
    if reading.is_anonymous() {
        let json = reading.story.json(|_| to_json(&ArticleView::of(&reading)));
        return Ok(answer_kept(&req, json));
    }
    Ok(HttpResponse::Ok().json(ArticleView::of(&reading)))
}

impl ArticleView {
    fn of(reading: &Reading) -> Self {
        let teaser = reading.decision.level == Level::Teaser;
        Self {
            summary: Summary::from(reading.entry()),
            access: reading.decision.level,
            reason: reading.decision.reason,
            access_until: reading.decision.until,
            body_html: reading.body_html().to_owned(),
            calls_to_action: if teaser { CALLS_TO_ACTION } else { &[] },
            related: reading.related().iter().map(Summary::from).collect(),
        }
    }
}

/// Only the fields sent change.
#[derive(Deserialize, ToSchema)]
struct EditBody {
    title: Option<String>,
    standfirst: Option<String>,
    body: Option<String>,
    section: Option<String>,
    tags: Option<Vec<String>>,
    byline: Option<String>,
}

/// Edits an article (editor); the previous version is kept in its history.
#[utoipa::path(patch, path = "/articles/{article}", tag = "articles",
    security(("session" = [])),
    params(("article" = uuid::Uuid, Path, description = "The article's id")),
    request_body = EditBody,
    responses(
        (status = 200, body = EditorView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn edit(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<EditBody>,
) -> Result<HttpResponse, AppError> {
    let id: ArticleId = parse_id(&id)?;
    let body = body.0;
    let entry = state
        .articles
        .edit(
            &current.account,
            id,
            Edit {
                title: body.title,
                standfirst: body.standfirst,
                body: body.body,
                section: body.section,
                tags: body.tags,
                byline: body.byline,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(EditorView::from(entry)))
}

/// `{}` publishes now; `{"at": "…"}` schedules.
#[derive(Deserialize, ToSchema)]
struct PublishBody {
    at: Option<DateTime<Utc>>,
}

/// Publishes an article now, or schedules it (editor).
#[utoipa::path(post, path = "/articles/{id}/publish", tag = "articles",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    request_body = PublishBody,
    responses(
        (status = 200, body = EditorView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn publish(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<PublishBody>,
) -> Result<HttpResponse, AppError> {
    let id: ArticleId = parse_id(&id)?;
    let entry = state
        .articles
        .publish(&current.account, id, body.0.at)
        .await?;
    Ok(HttpResponse::Ok().json(EditorView::from(entry)))
}

/// Takes an article off the site (editor).
#[utoipa::path(post, path = "/articles/{id}/withdraw", tag = "articles",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    responses(
        (status = 200, body = EditorView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
async fn withdraw(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: ArticleId = parse_id(&id)?;
    let entry = state.articles.withdraw(&current.account, id).await?;
    Ok(HttpResponse::Ok().json(EditorView::from(entry)))
}

#[derive(Serialize, ToSchema)]
struct RevisionView {
    changed_at: DateTime<Utc>,
    editor_id: Option<AccountId>,
    changed_fields: Vec<String>,
    previous: crate::articles::model::Snapshot,
}

#[derive(Serialize, ToSchema)]
struct RevisionList {
    revisions: Vec<RevisionView>,
}

/// An article's earlier versions, newest first (editor).
#[utoipa::path(get, path = "/articles/{id}/revisions", tag = "articles",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The article's id")),
    responses(
        (status = 200, body = RevisionList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn revisions(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: ArticleId = parse_id(&id)?;
    let history = state.articles.history(&current.account, id).await?;
    let revisions: Vec<RevisionView> = history
        .versions
        .into_iter()
        .map(|version| RevisionView {
            changed_at: version.revision.changed_at.and_utc(),
            editor_id: version.revision.editor_id,
            changed_fields: version.changed_fields,
            previous: version.previous,
        })
        .collect();
    Ok(HttpResponse::Ok().json(RevisionList { revisions }))
}
