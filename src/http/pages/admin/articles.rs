//! The editors' pages of the console: articles (the desk, the form with its
//! preview, scheduling, publishing, withdrawing, the revisions) and the
//! sections. Each button calls the same `ArticleService` function as its
//! JSON twin in `articles::http`; the service decides who is an editor and
//! writes the audit trail. Times an editor types or reads here are in the
//! digest's time zone (`digest.timezone`), which the pages name.

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::articles::diff::{self, Line};
use crate::articles::model::{Section, Snapshot};
use crate::articles::service::{Action, Desk, Draft, Edit, Entry, History};
use crate::articles::ArticleError;
use crate::articles::ArticleId;
use crate::articles::ArticleStatus;
use crate::http::extract::Paging;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::platform::domain::FieldError;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_articles.html",
        include_str!("../templates/admin_articles.html"),
    ),
    (
        "admin_article_form.html",
        include_str!("../templates/admin_article_form.html"),
    ),
    (
        "admin_article_revisions.html",
        include_str!("../templates/admin_article_revisions.html"),
    ),
    (
        "admin_sections.html",
        include_str!("../templates/admin_sections.html"),
    ),
];

const ARTICLES: &str = "/admin/articles";
const SECTIONS: &str = "/admin/sections";
/// The fields of the article form, kept as typed when it comes back.
const FIELDS: &[&str] = &["title", "standfirst", "body", "section", "tags", "byline"];
/// Unchanged lines shown around each change of a revision's diff.
const DIFF_CONTEXT: usize = 2;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `new` before `{id}`, which would otherwise take it.
    cfg.route(ARTICLES, web::get().to(desk_page))
        .route(ARTICLES, web::post().to(create))
        .route("/admin/articles/new", web::get().to(new_page))
        .route("/admin/articles/{id}", web::get().to(edit_page))
        .route("/admin/articles/{id}", web::post().to(update))
        .route("/admin/articles/{id}/schedule", web::post().to(schedule))
        .route("/admin/articles/{id}/publish", web::post().to(publish))
        .route("/admin/articles/{id}/withdraw", web::post().to(withdraw))
        .route(
            "/admin/articles/{id}/revisions",
            web::get().to(revisions_page),
        )
        .route(SECTIONS, web::get().to(sections_page))
        .route(SECTIONS, web::post().to(create_section));
}

fn edit_path(id: ArticleId) -> String {
    format!("{ARTICLES}/{id}")
}

/// An id that does not parse names no article: the page is not found.
fn article_id(raw: &str) -> Result<ArticleId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// The time zone editors work in: the digest's, so that "07:00" means the
/// same on the schedule and in the digest.
fn zone(state: &AppState) -> Tz {
    state.settings.digest.timezone.0
}

/// "27 November 2026, 08:00 GMT".
fn local_time(at: NaiveDateTime, zone: Tz) -> String {
    at.and_utc()
        .with_timezone(&zone)
        .format("%-d %B %Y, %H:%M %Z")
        .to_string()
}

/// What a `datetime-local` input holds for `at`.
fn input_time(at: NaiveDateTime, zone: Tz) -> String {
    at.and_utc()
        .with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A `datetime-local` value read as wall-clock time in `zone`. On the night
/// the clocks go back, a time that happens twice is the first of the two.
fn parse_local(raw: &str, zone: Tz) -> Result<DateTime<Utc>, FieldError> {
    let error = |reason, message: String| FieldError {
        field: "publish_at".to_owned(),
        reason,
        message,
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(error(
            "required",
            "enter the date and time to publish it".to_owned(),
        ));
    }
    let local = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            error(
                "invalid",
                "enter a date and time like 2030-01-31 08:00".to_owned(),
            )
        })?;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => Err(error(
            "nonexistent_time",
            format!(
                "{} does not exist in {zone}: the clocks go forward that night; choose another time",
                local.format("%H:%M on %-d %B %Y")
            ),
        )),
    }
}

// --- The desk ------------------------------------------------------------

#[derive(Deserialize)]
struct DeskQuery {
    status: Option<String>,
    section: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// An article as the desk lists it.
#[derive(Serialize)]
struct Row {
    id: String,
    title: String,
    section: String,
    status: ArticleStatus,
    status_label: &'static str,
    /// When it was or will be published, in words.
    when: Option<String>,
    changed: String,
    byline: String,
}

impl Row {
    fn new(entry: &Entry, zone: Tz) -> Self {
        let article = &entry.article;
        Self {
            id: article.id.to_string(),
            title: article.title.clone(),
            section: entry.section.name.clone(),
            status: article.status,
            status_label: status_label(article.status),
            when: article.published_at.map(|t| local_time(t, zone)),
            changed: local_time(article.updated_at, zone),
            byline: article.byline.clone(),
        }
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

fn section_choices(sections: &[Section]) -> Vec<Choice> {
    sections
        .iter()
        .map(|s| Choice {
            value: s.slug.to_string(),
            label: s.name.clone(),
        })
        .collect()
}

fn status_choices() -> Vec<Choice> {
    ArticleStatus::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: status_label(*s).to_owned(),
        })
        .collect()
}

fn status_label(status: ArticleStatus) -> &'static str {
    match status {
        ArticleStatus::Draft => "Draft",
        ArticleStatus::Scheduled => "Scheduled",
        ArticleStatus::Published => "Published",
        ArticleStatus::Withdrawn => "Withdrawn",
    }
}

async fn desk_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<DeskQuery>,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let query = query.into_inner();
    let status_text = given(query.status);
    let status = parse_status(status_text.as_deref())?;
    let section = given(query.section);
    let search = given(query.q);
    let settings = state.articles.settings();
    let paging = Paging::parse(query.page, None, settings.per_page, settings.max_per_page)?;
    let found = state
        .articles
        .desk(
            &editor,
            Desk {
                status,
                section: section.clone(),
                search: search.clone(),
                limit: paging.per_page,
                offset: paging.offset(),
            },
        )
        .await?;
    let zone = zone(&state);
    let rows: Vec<Row> = found.entries.iter().map(|e| Row::new(e, zone)).collect();
    let filters = desk_filters(
        status_text.as_deref(),
        section.as_deref(),
        search.as_deref(),
    );
    let shown_to = paging.offset() + rows.len() as i64;
    Page::new(
        "admin_articles.html",
        context! {
            title => "Articles",
            noindex => true,
            console_area => "articles",
            rows => rows,
            total => found.total,
            shown_from => paging.offset() + 1,
            shown_to => shown_to,
            previous => (paging.page > 1).then(|| desk_link(&filters, paging.page - 1)),
            next => (shown_to < found.total).then(|| desk_link(&filters, paging.page + 1)),
            statuses => status_choices(),
            section_choices => section_choices(&visitor.sections),
            selected => context! {
                status => status_text,
                section => section,
                q => search,
            },
            filtered => !filters.is_empty(),
            zone => zone.name(),
        },
    )
    .render(&site, &visitor)
}

fn parse_status(raw: Option<&str>) -> Result<Option<ArticleStatus>, AppError> {
    raw.map(|raw| {
        raw.parse::<ArticleStatus>().map_err(|_| {
            AppError::field("status", "unknown_status", "no articles are in that state")
        })
    })
    .transpose()
}

/// The desk's filters that are set, as query pairs.
fn desk_filters<'a>(
    status: Option<&'a str>,
    section: Option<&'a str>,
    search: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    [("status", status), ("section", section), ("q", search)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// The desk's `page` with the same filters.
fn desk_link(filters: &[(&str, &str)], page: i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(filters);
    query.append_pair("page", &page.to_string());
    format!("{ARTICLES}?{}", query.finish())
}

// --- The form ------------------------------------------------------------

/// The article form as posted: the same fields as the JSON body, tags
/// separated by commas.
struct ArticleForm {
    title: String,
    standfirst: String,
    body: String,
    section: String,
    tags: Vec<String>,
    byline: String,
}

impl ArticleForm {
    fn from_posted(posted: &Posted) -> Self {
        Self {
            title: posted.value("title"),
            standfirst: posted.value("standfirst"),
            body: posted.value("body"),
            section: posted.value("section"),
            tags: posted
                .value("tags")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            byline: posted.value("byline"),
        }
    }

    /// A new article; with no byline, the service signs it with the
    /// editor's name.
    fn draft(self) -> Draft {
        Draft {
            title: self.title,
            standfirst: self.standfirst,
            body: self.body,
            section: self.section,
            tags: self.tags,
            byline: Some(self.byline).filter(|b| !b.trim().is_empty()),
        }
    }

    /// Every field as typed; the service keeps what did not change.
    fn edit(self) -> Edit {
        Edit {
            title: Some(self.title),
            standfirst: Some(self.standfirst),
            body: Some(self.body),
            section: Some(self.section),
            tags: Some(self.tags),
            byline: Some(self.byline),
        }
    }
}

/// The form filled in with an article as it is stored.
fn stored(entry: &Entry) -> Form {
    let article = &entry.article;
    Form::new()
        .with("title", &article.title)
        .with("standfirst", &article.standfirst)
        .with("body", &article.body_markdown)
        .with("section", entry.section.slug.to_string())
        .with("tags", entry.tags.join(", "))
        .with("byline", &article.byline)
}

/// What the page says about a saved article and offers to do with it.
#[derive(Serialize)]
struct ArticleView {
    id: String,
    title: String,
    status: ArticleStatus,
    status_label: &'static str,
    when: Option<String>,
    changed: String,
    /// Where readers find it, once it is published.
    public_path: Option<String>,
    can_schedule: bool,
    can_publish: bool,
    can_withdraw: bool,
    /// The schedule field's value: the time it is scheduled for.
    scheduled_input: Option<String>,
}

impl ArticleView {
    fn new(entry: &Entry, zone: Tz) -> Self {
        let article = &entry.article;
        let status = article.status;
        Self {
            id: article.id.to_string(),
            title: article.title.clone(),
            status,
            status_label: status_label(status),
            when: article.published_at.map(|t| local_time(t, zone)),
            changed: local_time(article.updated_at, zone),
            public_path: (status == ArticleStatus::Published)
                .then(|| format!("/articles/{}", article.slug)),
            can_schedule: status != ArticleStatus::Published,
            can_publish: status != ArticleStatus::Published,
            can_withdraw: matches!(status, ArticleStatus::Published | ArticleStatus::Scheduled),
            scheduled_input: (status == ArticleStatus::Scheduled)
                .then_some(article.published_at)
                .flatten()
                .map(|t| input_time(t, zone)),
        }
    }
}

/// The preview beside the form: the article as readers will see it.
#[derive(Serialize)]
struct Preview {
    title: String,
    standfirst: String,
    section: String,
    body_html: String,
}

struct FormPage {
    article: Option<ArticleView>,
    form: Form,
    preview: Option<Preview>,
}

async fn show_form(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    page: FormPage,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?;
    let sections = state.articles.filing_sections(editor).await?;
    let title = match &page.article {
        Some(article) => format!("Edit: {}", article.title),
        None => "New article".to_owned(),
    };
    let status = page.form.status();
    let zone = zone(state);
    Page::new(
        "admin_article_form.html",
        context! {
            title => title,
            noindex => true,
            console_area => "articles",
            article => page.article,
            form => page.form,
            preview => page.preview,
            section_choices => section_choices(&sections),
            zone => zone.name(),
        },
    )
    .status(status)
    .render(site, visitor)
}

async fn new_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?;
    let form = Form::new().with("byline", &editor.name);
    show_form(
        &state,
        &site,
        &visitor,
        FormPage {
            article: None,
            form,
            preview: None,
        },
    )
    .await
}

async fn edit_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let entry = state
        .articles
        .for_editing(&editor, article_id(&id)?)
        .await?;
    let article = ArticleView::new(&entry, zone(&state));
    let form = stored(&entry);
    let form = match &article.scheduled_input {
        Some(at) => form.with("publish_at", at),
        None => form,
    };
    show_form(
        &state,
        &site,
        &visitor,
        FormPage {
            article: Some(article),
            form,
            preview: None,
        },
    )
    .await
}

/// The posted form again, with the preview of its body beside it.
fn previewed(
    state: &AppState,
    visitor: &Visitor,
    posted: &Posted,
) -> Result<(Form, Preview), AppError> {
    let editor = visitor.require_account()?;
    let form = ArticleForm::from_posted(posted);
    let body_html = state.articles.preview(editor, &form.body)?;
    let section = visitor.section_name(form.section.trim());
    let preview = Preview {
        title: form.title,
        standfirst: form.standfirst,
        section,
        body_html,
    };
    Ok((Form::from_posted(posted, FIELDS), preview))
}

fn wants_preview(posted: &Posted) -> bool {
    posted.value("intent") == "preview"
}

#[tracing::instrument(skip_all)]
async fn create(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    if wants_preview(&posted) {
        let (form, preview) = previewed(&state, &visitor, &posted)?;
        let page = FormPage {
            article: None,
            form,
            preview: Some(preview),
        };
        return show_form(&state, &site, &visitor, page).await;
    }
    let draft = ArticleForm::from_posted(&posted).draft();
    match state.articles.create(&editor, draft).await {
        Ok(entry) => Ok(see_other_with(
            &site,
            &edit_path(entry.article.id),
            Kind::Success,
            "Draft saved. Nobody else sees it until you publish it.",
        )),
        Err(ArticleError::Invalid(errors)) => {
            let page = FormPage {
                article: None,
                form: Form::from_posted(&posted, FIELDS).with_errors(errors),
                preview: None,
            };
            show_form(&state, &site, &visitor, page).await
        }
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all, fields(article_id = %*id))]
async fn update(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let id = article_id(&id)?;
    if wants_preview(&posted) {
        let entry = state.articles.for_editing(&editor, id).await?;
        let (form, preview) = previewed(&state, &visitor, &posted)?;
        let page = FormPage {
            article: Some(ArticleView::new(&entry, zone(&state))),
            form,
            preview: Some(preview),
        };
        return show_form(&state, &site, &visitor, page).await;
    }
    let edit = ArticleForm::from_posted(&posted).edit();
    match state.articles.edit(&editor, id, edit).await {
        Ok(entry) => {
            let message = match entry.article.status {
                ArticleStatus::Published => "Your changes are saved and on the site.",
                _ => "Your changes are saved.",
            };
            Ok(see_other_with(
                &site,
                &edit_path(id),
                Kind::Success,
                message,
            ))
        }
        Err(ArticleError::Invalid(errors)) => {
            let entry = state.articles.for_editing(&editor, id).await?;
            let page = FormPage {
                article: Some(ArticleView::new(&entry, zone(&state))),
                form: Form::from_posted(&posted, FIELDS).with_errors(errors),
                preview: None,
            };
            show_form(&state, &site, &visitor, page).await
        }
        Err(other) => Err(other.into()),
    }
}

/// The edit page again, the article as stored, with the schedule's error.
async fn schedule_error(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    id: ArticleId,
    raw: String,
    errors: Vec<FieldError>,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?;
    let entry = state.articles.for_editing(editor, id).await?;
    let page = FormPage {
        article: Some(ArticleView::new(&entry, zone(state))),
        form: stored(&entry).with("publish_at", raw).with_errors(errors),
        preview: None,
    };
    show_form(state, site, visitor, page).await
}

/// Another editor got there first (it was published or withdrawn
/// meanwhile): back to the article, saying so.
fn already(site: &Site, id: ArticleId, detail: &str) -> HttpResponse {
    see_other_with(
        site,
        &edit_path(id),
        Kind::Info,
        format!(
            "Nothing was changed: {detail}.",
            detail = detail.trim_end_matches('.')
        ),
    )
}

#[tracing::instrument(skip_all, fields(article_id = %*id))]
async fn schedule(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let id = article_id(&id)?;
    let raw = posted.value("publish_at");
    let zone = zone(&state);
    let at = match parse_local(&raw, zone) {
        Ok(at) => at,
        Err(error) => return schedule_error(&state, &site, &visitor, id, raw, vec![error]).await,
    };
    match state.articles.schedule(&editor, id, at).await {
        Ok(entry) => {
            let when = entry
                .article
                .published_at
                .map(|t| local_time(t, zone))
                .unwrap_or_default();
            Ok(see_other_with(
                &site,
                &edit_path(id),
                Kind::Success,
                format!("Scheduled: it goes on the site at {when}, and into the first digest after that."),
            ))
        }
        Err(ArticleError::Invalid(errors)) => {
            schedule_error(&state, &site, &visitor, id, raw, errors).await
        }
        Err(ArticleError::Conflict { detail, .. }) => Ok(already(&site, id, detail)),
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all, fields(article_id = %*id))]
async fn publish(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    _posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let id = article_id(&id)?;
    match state.articles.publish(&editor, id, None).await {
        Ok(_) => Ok(see_other_with(
            &site,
            &edit_path(id),
            Kind::Success,
            "Published: it is on the site now, and goes into the next digest.",
        )),
        Err(ArticleError::Conflict { detail, .. }) => Ok(already(&site, id, detail)),
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all, fields(article_id = %*id))]
async fn withdraw(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    _posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let id = article_id(&id)?;
    match state.articles.withdraw(&editor, id).await {
        Ok(_) => Ok(see_other_with(
            &site,
            &edit_path(id),
            Kind::Success,
            "Withdrawn: readers no longer see it, and no digest will carry it.",
        )),
        Err(ArticleError::Conflict { detail, .. }) => Ok(already(&site, id, detail)),
        Err(other) => Err(other.into()),
    }
}

// --- Revisions -----------------------------------------------------------

/// One field of one edit: its lines before and after, in hunks.
#[derive(Serialize)]
struct FieldChange {
    label: &'static str,
    hunks: Vec<Vec<Line>>,
}

/// One kept edit, compared with the version that followed it.
#[derive(Serialize)]
struct VersionView {
    changed_at: String,
    editor: Option<String>,
    fields: Vec<FieldChange>,
}

#[derive(Serialize)]
struct ActionView {
    at: String,
    actor: Option<String>,
    words: String,
}

/// An article's text fields, as compared from one version to the next.
fn texts(snapshot: &Snapshot, section_name: &str) -> [(&'static str, String); 6] {
    [
        ("Title", snapshot.title.clone()),
        ("Standfirst", snapshot.standfirst.clone()),
        ("Body", snapshot.body_markdown.clone()),
        ("Section", section_name.to_owned()),
        ("Tags", snapshot.tags.join(", ")),
        ("Byline", snapshot.byline.clone()),
    ]
}

fn current(entry: &Entry) -> Snapshot {
    Snapshot {
        title: entry.article.title.clone(),
        standfirst: entry.article.standfirst.clone(),
        body_markdown: entry.article.body_markdown.clone(),
        section: entry.section.slug.to_string(),
        tags: entry.tags.clone(),
        byline: entry.article.byline.clone(),
    }
}

/// Each kept edit against the next version (the latest against the article
/// as it is now), latest first.
fn compare(history: &History, visitor: &Visitor, zone: Tz) -> Vec<VersionView> {
    let now = current(&history.entry);
    let afters = std::iter::once(&now).chain(history.versions.iter().map(|v| &v.previous));
    history
        .versions
        .iter()
        .zip(afters)
        .map(|(version, after)| {
            let before = texts(
                &version.previous,
                &visitor.section_name(&version.previous.section),
            );
            let after = texts(after, &visitor.section_name(&after.section));
            let fields = before
                .into_iter()
                .zip(after)
                .filter_map(|((label, old), (_, new))| {
                    let hunks = diff::hunks(&old, &new, DIFF_CONTEXT);
                    (!hunks.is_empty()).then_some(FieldChange { label, hunks })
                })
                .collect();
            VersionView {
                changed_at: local_time(version.revision.changed_at, zone),
                editor: version.editor.clone(),
                fields,
            }
        })
        .collect()
}

/// What an audit action says, in words.
fn action_words(action: &Action, zone: Tz) -> String {
    let done = match action.action.as_str() {
        "article.create" => "Drafted",
        "article.edit" => "Edited",
        "article.schedule" => "Scheduled",
        "article.publish" => "Published",
        "article.withdraw" => "Withdrawn",
        other => other,
    };
    match (action.action.as_str(), action.detail.as_deref()) {
        ("article.edit", Some(fields)) => format!("{done}: {fields}"),
        ("article.schedule", Some(detail)) => {
            let at = detail
                .strip_prefix("for ")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.naive_utc());
            match at {
                Some(at) => format!("{done} for {}", local_time(at, zone)),
                None => done.to_owned(),
            }
        }
        ("article.publish", Some("as scheduled")) => format!("{done} as scheduled"),
        _ => done.to_owned(),
    }
}

async fn revisions_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let history = state.articles.history(&editor, article_id(&id)?).await?;
    let zone = zone(&state);
    let versions = compare(&history, &visitor, zone);
    // Latest first, as the edits above.
    let actions: Vec<ActionView> = history
        .actions
        .iter()
        .rev()
        .map(|a| ActionView {
            at: local_time(a.at, zone),
            actor: a.actor.clone(),
            words: action_words(a, zone),
        })
        .collect();
    Page::new(
        "admin_article_revisions.html",
        context! {
            title => format!("Revisions: {}", history.entry.article.title),
            noindex => true,
            console_area => "articles",
            article => ArticleView::new(&history.entry, zone),
            versions => versions,
            actions => actions,
            zone => zone.name(),
        },
    )
    .render(&site, &visitor)
}

// --- Sections ------------------------------------------------------------

#[derive(Serialize)]
struct SectionRow {
    name: String,
    slug: String,
    articles: i64,
}

async fn show_sections(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?;
    let rows: Vec<SectionRow> = state
        .articles
        .section_overview(editor)
        .await?
        .into_iter()
        .map(|(section, articles)| SectionRow {
            name: section.name,
            slug: section.slug.to_string(),
            articles,
        })
        .collect();
    let status = form.status();
    Page::new(
        "admin_sections.html",
        context! {
            title => "Sections",
            noindex => true,
            console_area => "sections",
            rows => rows,
            form => form,
        },
    )
    .status(status)
    .render(site, visitor)
}

async fn sections_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    show_sections(&state, &site, &visitor, Form::new()).await
}

#[tracing::instrument(skip_all)]
async fn create_section(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let editor = visitor.require_account()?.clone();
    let name = posted.value("name");
    let slug = posted.optional("slug");
    let form = Form::from_posted(&posted, &["name", "slug"]);
    match state
        .articles
        .create_section(&editor, &name, slug.as_deref())
        .await
    {
        Ok(section) => Ok(see_other_with(
            &site,
            SECTIONS,
            Kind::Success,
            format!(
                "Section “{}” created. Articles can be filed under it, and the newsletter offers it at sign-up.",
                section.name
            ),
        )),
        Err(ArticleError::Invalid(errors)) => {
            show_sections(&state, &site, &visitor, form.with_errors(errors)).await
        }
        Err(ArticleError::Conflict {
            reason: "section_exists",
            ..
        }) => {
            // Named after the field the slug came from.
            let field = if slug.is_some() { "slug" } else { "name" };
            let form = form.with_error(
                field,
                "section_exists",
                "a section with this slug already exists; choose another name or slug",
            );
            show_sections(&state, &site, &visitor, form).await
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_in_the_zone_with_its_daylight_saving() {
        let london: Tz = "Europe/London".parse().expect("a zone");
        let summer = parse_local("2027-07-01T08:00", london).expect("valid");
        assert_eq!(summer.to_rfc3339(), "2027-07-01T07:00:00+00:00");
        let winter = parse_local("2027-01-15T08:00", london).expect("valid");
        assert_eq!(winter.to_rfc3339(), "2027-01-15T08:00:00+00:00");
        assert_eq!(
            parse_local("2027-03-28T01:30", london)
                .expect_err("in the gap")
                .reason,
            "nonexistent_time"
        );
        let twice = parse_local("2027-10-31T01:30", london).expect("the first");
        assert_eq!(twice.to_rfc3339(), "2027-10-31T00:30:00+00:00");
        assert_eq!(
            parse_local(" ", london).expect_err("empty").reason,
            "required"
        );
        assert_eq!(
            parse_local("tomorrow", london)
                .expect_err("not a time")
                .reason,
            "invalid"
        );
    }
}
