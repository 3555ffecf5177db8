//! The web pages: server-rendered HTML over the same services as the JSON
//! API, working without JavaScript. Each page module sits beside its JSON
//! twin and calls the same service, so no rule is written twice.

pub mod account;
pub mod accounts;
pub mod admin;
pub mod articles;
pub mod company;
pub mod flash;
pub mod form;
pub mod newsletter;
pub mod security;
pub mod trials;

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::web::{self, Data};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use minijinja::value::merge_maps;
use minijinja::{context, Environment, Value};
use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::accounts::Role;
use crate::articles::model::Section;
use crate::http::session::session_token;
use crate::platform::domain::TokenHash;
use crate::platform::error::AppError;
use crate::state::AppState;
use flash::{Flash, FlashSigner};
use security::FormTokens;

const STYLESHEET: &str = include_str!("static/site.css");

/// The page templates, embedded in the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// What pages share: the templates, the form-token and flash signers, and
/// the stylesheet's address (which changes with its content, so it can be
/// cached for ever).
pub struct Site {
    templates: Environment<'static>,
    pub tokens: FormTokens,
    pub flash: FlashSigner,
    site_name: String,
    stylesheet_url: String,
    https: bool,
}

impl Site {
    pub fn new(site_name: &str, public_url: &str, key: SecretString) -> anyhow::Result<Self> {
        let mut templates = Environment::new();
        templates.add_filter("sentence", |text: String| capitalise(&text));
        templates.add_filter("date", format_date);
        let modules = [
            TEMPLATES,
            accounts::TEMPLATES,
            account::TEMPLATES,
            articles::TEMPLATES,
            newsletter::TEMPLATES,
            trials::TEMPLATES,
            company::TEMPLATES,
        ];
        for (name, source) in modules.into_iter().flatten().chain(admin::templates()) {
            templates.add_template(name, source)?;
        }
        let digest = hex::encode(&Sha256::digest(STYLESHEET.as_bytes())[..6]);
        Ok(Self {
            templates,
            tokens: FormTokens::new(key.clone()),
            flash: FlashSigner::new(key),
            site_name: site_name.to_owned(),
            stylesheet_url: format!("/static/site.{digest}.css"),
            https: public_url.starts_with("https://"),
        })
    }

    fn render(&self, template: &str, ctx: Value) -> Result<String, AppError> {
        self.templates
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| AppError::Internal(anyhow::Error::new(e).context(template.to_owned())))
    }

    fn layout(&self) -> Value {
        context! {
            site_name => &self.site_name,
            stylesheet_url => &self.stylesheet_url,
        }
    }

    pub fn secure(&self) -> bool {
        self.https
    }
}

/// Who is looking at a page, and what every page shows them: their login
/// state, the sections, a form token, and the message left by the last
/// action.
pub struct Visitor {
    pub account: Option<Account>,
    pub session: Option<TokenHash>,
    pub flash: Option<Flash>,
    pub form_token: String,
    /// The path and query of this request: where a login returns to.
    pub path: String,
    pub sections: Vec<Section>,
}

impl Visitor {
    /// How a page names a section given by slug: as the articles' section
    /// of that slug, else the slug capitalised.
    pub fn section_name(&self, slug: &str) -> String {
        self.sections
            .iter()
            .find(|s| s.slug.as_str() == slug)
            .map_or_else(|| capitalise_word(slug), |s| s.name.clone())
    }

    /// The account, or a 401 that pages answer with the login form.
    pub fn require_account(&self) -> Result<&Account, AppError> {
        self.account.as_ref().ok_or(AppError::Unauthorized {
            detail: "log in to continue",
        })
    }
}

impl FromRequest for Visitor {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (Some(state), Some(site)) = (
                req.app_data::<Data<AppState>>().cloned(),
                req.app_data::<Data<Site>>().cloned(),
            ) else {
                return Err(AppError::Internal(anyhow::anyhow!("no app state")));
            };
            let (account, session) = match session_token(&req) {
                Some(token) => match state.accounts.authenticate(&token).await? {
                    Some((account, session)) => (Some(account), Some(session)),
                    None => (None, None),
                },
                None => (None, None),
            };
            let sections = state.articles.sections().await?;
            let path = match req.query_string() {
                "" => req.path().to_owned(),
                query => format!("{}?{query}", req.path()),
            };
            Ok(Self {
                account,
                session,
                flash: site.flash.read(&req),
                form_token: site.tokens.issue(&req, state.clock.now()),
                path,
                sections,
            })
        })
    }
}

#[derive(Serialize)]
struct AccountContext<'a> {
    name: &'a str,
    email: String,
    role: Role,
    is_admin: bool,
    is_editor: bool,
}

#[derive(Serialize)]
struct SectionContext<'a> {
    slug: &'a str,
    name: &'a str,
}

/// How a page may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Never stored: it carries a session, a form for one, or a secret.
    Private,
    /// A proxy may keep it for a minute when nobody is logged in.
    PublicWhenAnonymous,
}

/// A page to answer with.
pub struct Page {
    template: &'static str,
    ctx: Value,
    status: StatusCode,
    caching: Caching,
    no_referrer: bool,
}

impl Page {
    pub fn new(template: &'static str, ctx: Value) -> Self {
        Self {
            template,
            ctx,
            status: StatusCode::OK,
            caching: Caching::Private,
            no_referrer: false,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn cacheable(mut self) -> Self {
        self.caching = Caching::PublicWhenAnonymous;
        self
    }

    /// For pages reached by a link with a secret in it: the address is not
    /// passed on to any site the page links to.
    pub fn no_referrer(mut self) -> Self {
        self.no_referrer = true;
        self
    }

    pub fn render(self, site: &Site, visitor: &Visitor) -> Result<HttpResponse, AppError> {
        let account = visitor.account.as_ref().map(|a| AccountContext {
            name: &a.name,
            email: a.email.to_string(),
            role: a.role,
            is_admin: a.role == Role::Admin,
            is_editor: a.role.includes(Role::Editor),
        });
        let sections: Vec<SectionContext<'_>> = visitor
            .sections
            .iter()
            .map(|s| SectionContext {
                slug: s.slug.as_str(),
                name: &s.name,
            })
            .collect();
        // A page reached by a link with a secret in its query must not copy
        // it into its own links (the header's "Log in … ?next=").
        let current_path = if self.no_referrer {
            visitor.path.split('?').next().unwrap_or("/")
        } else {
            visitor.path.as_str()
        };
        let ctx = context! {
            account => account,
            sections => sections,
            form_token => &visitor.form_token,
            flash => &visitor.flash,
            current_path => current_path,
        };
        let ctx = merge_maps([self.ctx, ctx, site.layout()]);
        let body = site.render(self.template, ctx)?;
        let mut response = HttpResponse::build(self.status);
        response.content_type("text/html; charset=utf-8");
        let anonymous = visitor.account.is_none() && visitor.flash.is_none();
        if self.caching == Caching::PublicWhenAnonymous && anonymous {
            response.insert_header((header::CACHE_CONTROL, "public, max-age=60"));
            response.insert_header((header::VARY, "Cookie"));
        } else {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
        if self.no_referrer {
            response.insert_header((header::REFERRER_POLICY, "no-referrer"));
        }
        if visitor.flash.is_some() {
            response.cookie(flash::removal(site.secure()));
        }
        Ok(response.body(body))
    }
}

/// After a POST: go to `location` (POST-redirect-GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// After a POST: go to `location` and say what happened there.
pub fn see_other_with(
    site: &Site,
    location: &str,
    kind: flash::Kind,
    message: impl Into<String>,
) -> HttpResponse {
    let flash = Flash {
        kind,
        message: message.into(),
    };
    let mut response = see_other(location);
    let _ = response.add_cookie(&site.flash.cookie(&flash, site.secure()));
    response
}

/// A page answered 429: the form was sent too often; `Retry-After` says
/// when it may be sent again.
pub fn too_many(mut response: HttpResponse, retry_after_secs: u64) -> HttpResponse {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// How a page says when to try again: "in 3 minutes", "in 2 hours".
fn wait_in_words(secs: u64) -> String {
    match secs {
        0..=59 => "in a minute".to_owned(),
        60..=5399 => {
            let minutes = secs.div_ceil(60);
            format!("in {minutes} minute{}", if minutes == 1 { "" } else { "s" })
        }
        _ => format!("in about {} hours", (secs + 1800) / 3600),
    }
}

/// Adds a cookie to a response built elsewhere.
pub fn with_cookie(mut response: HttpResponse, cookie: Cookie<'_>) -> HttpResponse {
    let _ = response.add_cookie(&cookie);
    response
}

/// Where a login may send the reader back to: a path on this site, never
/// another site (`//evil.example`, `/\evil.example`, `https://…`).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_location(next: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("/login?{query}")
}

/// Paths that answer JSON and keep problem+json errors.
fn is_machine_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics" || path.starts_with("/health/")
}

/// The first step of every request: a write from another site is refused
/// before any handler runs.
pub fn check_origin(req: ServiceRequest) -> Result<ServiceRequest, Box<ServiceResponse>> {
    let public_url = req
        .app_data::<Data<AppState>>()
        .map(|state| state.settings.server.public_url().to_owned())
        .unwrap_or_default();
    if security::same_origin_write(&req, &public_url) {
        return Ok(req);
    }
    tracing::warn!(path = %req.path(), "refused a write from another site");
    Err(Box::new(req.error_response(AppError::Forbidden {
        detail: "this request came from another site",
    })))
}

/// The last step of every response: security headers, and for people
/// (outside `/api`) an HTML page instead of problem+json, or the login page
/// where a login is needed.
pub fn finish(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let https = response
        .request()
        .app_data::<Data<Site>>()
        .is_some_and(|site| site.secure());
    let mut response = error_page(response);
    security::add_headers(&mut response, https);
    response
}

fn error_page(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_machine_path(response.request().path())
    {
        return response;
    }
    let Some(error) = response
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
    else {
        return response;
    };
    let (_, title, detail, _) = error.parts();
    let is_login_needed = matches!(error, AppError::Unauthorized { .. });
    let req = response.request().clone();
    if is_login_needed && req.method() == Method::GET {
        let next = match req.query_string() {
            "" => req.path().to_owned(),
            query => format!("{}?{query}", req.path()),
        };
        return response.into_response(see_other(&login_location(&next)));
    }
    let Some(site) = req.app_data::<Data<Site>>() else {
        return response;
    };
    let retry_after = match error {
        AppError::RateLimited { retry_after_secs } | AppError::Busy { retry_after_secs } => {
            Some(*retry_after_secs)
        }
        _ => None,
    };
    let (heading, explanation) = error_words(status, retry_after, title, &detail);
    let ctx = context! {
        title => heading,
        explanation => explanation,
        status => status.as_u16(),
        login_link => is_login_needed.then(|| login_location("/")),
    };
    match site.render("error.html", merge_maps([ctx, site.layout()])) {
        Ok(body) => response.into_response(error_response(status, retry_after, body)),
        Err(_) => response,
    }
}

/// The heading and the explanation an error page shows for `status`.
fn error_words(
    status: StatusCode,
    retry_after: Option<u64>,
    title: &'static str,
    detail: &str,
) -> (&'static str, String) {
    match (status, retry_after) {
        (StatusCode::TOO_MANY_REQUESTS, Some(secs)) => (
            "Too many attempts",
            format!(
                "This form has been sent too often from your connection or for this email address. Please try again {}.",
                wait_in_words(secs)
            ),
        ),
        (StatusCode::NOT_FOUND, _) => (
            "Page not found",
            "If you typed the address, check it is correct. If you followed a link, the page may have moved or been withdrawn.".to_owned(),
        ),
        (StatusCode::FORBIDDEN, _) => ("You cannot do that here", capitalise(detail)),
        (StatusCode::UNAUTHORIZED, _) => ("Please log in", capitalise(detail)),
        (s, _) if s.is_server_error() => (
            "Sorry, something went wrong",
            "Please try again in a few minutes. Nothing you sent has been half-saved.".to_owned(),
        ),
        _ => (title, capitalise(detail)),
    }
}

/// The rendered error page as a response that is never cached.
fn error_response(status: StatusCode, retry_after: Option<u64>, body: String) -> HttpResponse {
    let mut page = HttpResponse::build(status);
    page.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(secs) = retry_after {
        page.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    page.body(body)
}

/// `2026-11-26T08:00:00Z` → "26 November 2026"; `|date("time")` adds the
/// time of day (UTC).
fn format_date(value: String, style: Option<String>) -> String {
    let parsed = chrono::DateTime::parse_from_rfc3339(&value)
        .map(|t| t.naive_utc())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&value, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        });
    match (parsed, style.as_deref()) {
        (Ok(t), Some("time")) => t.format("%-d %B %Y, %H:%M UTC").to_string(),
        (Ok(t), _) => t.format("%-d %B %Y").to_string(),
        (Err(_), _) => value,
    }
}

fn capitalise_word(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().collect();
            out.push_str(chars.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(STYLESHEET)
}

/// The reader's pages come before the console's many `/admin/{…}`
/// patterns, each a regular expression run on every request that reaches it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(articles::routes)
        .configure(newsletter::routes)
        .configure(accounts::routes)
        .configure(account::routes)
        .configure(company::routes)
        .configure(trials::routes)
        .route("/static/site.{digest}.css", web::get().to(stylesheet))
        .configure(admin::routes);
}

/// Shared between pages: `Arc` so that `Data` can be built once.
pub fn site_data(site: Site) -> Data<Site> {
    Data::from(Arc::new(site))
}
