//! Pages for the free newsletter: the sign-up form, the confirmation a
//! link from the email leads to, the preferences behind the link in every
//! newsletter, and the one-click unsubscribe. Each calls the same
//! `NewsletterService` function as its JSON twin in `newsletter::http`.
//!
//! Links from email only ever show a page; its button does the work, so
//! mail scanners that follow links change nothing.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDate;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::flash::Kind;
use super::form::{field_errors, Form, Posted};
use super::{local_path, see_other, see_other_with, Page, Site, Visitor};
use crate::http::extract::client_ip;
use crate::newsletter::service::{Holder, PreferenceChanges, Preferences, SignUp};
use crate::newsletter::NewsletterError;
use crate::newsletter::Source;
use crate::newsletter::SubscriberStatus;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "newsletter_signup.html",
        include_str!("templates/newsletter_signup.html"),
    ),
    (
        "newsletter_check_email.html",
        include_str!("templates/newsletter_check_email.html"),
    ),
    (
        "newsletter_confirm.html",
        include_str!("templates/newsletter_confirm.html"),
    ),
    (
        "newsletter_subscribed.html",
        include_str!("templates/newsletter_subscribed.html"),
    ),
    (
        "newsletter_preferences.html",
        include_str!("templates/newsletter_preferences.html"),
    ),
    (
        "newsletter_erased.html",
        include_str!("templates/newsletter_erased.html"),
    ),
    (
        "newsletter_link_invalid.html",
        include_str!("templates/newsletter_link_invalid.html"),
    ),
    (
        "unsubscribe.html",
        include_str!("templates/unsubscribe.html"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/newsletter", web::get().to(sign_up_page))
        .route("/newsletter", web::post().to(sign_up))
        .route("/newsletter/check-email", web::get().to(check_email))
        .route("/newsletter/confirm", web::get().to(confirm_page))
        .route("/newsletter/confirm", web::post().to(confirm))
        .route("/newsletter/subscribed", web::get().to(subscribed))
        .route("/newsletter/preferences", web::get().to(preferences_page))
        .route(
            "/newsletter/preferences",
            web::post().to(update_preferences),
        )
        .route("/newsletter/erase", web::post().to(erase))
        .route("/newsletter/erased", web::get().to(erased))
        .route("/unsubscribe/{token}", web::get().to(unsubscribe_page))
        // RFC 8058: mail clients post here from anywhere, with no cookie
        // and no form token; the link's own token is the credential.
        .route(
            "/unsubscribe/{token}",
            web::post().to(one_click_unsubscribe),
        );
}

/// Where the header's "Log in" link returns to from a page whose address
/// holds a token: the preferences, without the token, which must not be
/// copied into other links.
fn forget_token(visitor: &mut Visitor) {
    "/newsletter/preferences".clone_into(&mut visitor.path);
}

/// What the sign-up pages say, whatever became of the address: nobody can
/// learn from them whether an address is subscribed.
const CHECK_INBOX: &str =
    "Check your inbox: if this address is not yet subscribed, we have sent it a link to confirm.";

#[derive(Serialize)]
struct SectionOption {
    value: String,
    label: String,
}

/// The newsletter's sections: the site's sections, which articles are
/// filed under too.
fn section_options(visitor: &Visitor) -> Vec<SectionOption> {
    visitor
        .sections
        .iter()
        .map(|section| SectionOption {
            value: section.slug.to_string(),
            label: section.name.clone(),
        })
        .collect()
}

/// Every section's slug: what a sign-up takes unless the reader unticks some.
fn all_sections(visitor: &Visitor) -> Vec<String> {
    visitor
        .sections
        .iter()
        .map(|s| s.slug.to_string())
        .collect()
}

// --- Sign-up -------------------------------------------------------------

async fn sign_up_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let mut form = Form::new();
    let mut subscribed_as = None;
    if let Some(account) = &visitor.account {
        form = form.with("email", account.email.to_string());
        // A reader who already gets it is shown the way to their preferences.
        match state
            .newsletter
            .preferences(Holder::Account(account.clone()))
            .await
        {
            Ok(p) if p.status == SubscriberStatus::Confirmed => subscribed_as = Some(p.email),
            Ok(_) | Err(NewsletterError::NotSubscribed) | Err(NewsletterError::Unverified) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let all = all_sections(&visitor);
    let form = form.with_list("sections", all);
    show_sign_up(&state, &site, &visitor, form, None, subscribed_as)
}

fn show_sign_up(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    form: Form,
    next: Option<String>,
    subscribed_as: Option<String>,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    let cacheable = !form.has_errors();
    let checked = form.lists.get("sections").cloned().unwrap_or_default();
    let page = Page::new(
        "newsletter_signup.html",
        context! {
            title => "Sign up for the free daily newsletter",
            form => form,
            options => section_options(visitor),
            checked => checked,
            consent_text => &state.settings.newsletter.consent_text,
            next => next,
            subscribed_as => subscribed_as,
        },
    )
    .status(status);
    // What someone typed is never kept by a proxy.
    if cacheable { page.cacheable() } else { page }.render(site, visitor)
}

/// The sign-up form's post, and the inline box's on article pages (which
/// sends `next`, and may leave the sections out: then all of them).
#[tracing::instrument(skip_all)]
async fn sign_up(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let next = posted.optional("next").map(|n| local_path(Some(&n)));
    // The full form says it offered the sections, so that unticking them
    // all is a choice of none, not a choice of all.
    let sections = if posted.checked("sections") || posted.checked("sections_offered") {
        Some(posted.values("sections"))
    } else {
        None
    };
    let request = SignUp {
        email: posted.value("email"),
        sections: sections.clone(),
        source: Source::Web,
    };
    match state
        .newsletter
        .sign_up(request, visitor.account.clone(), client_ip(&req))
        .await
        .map_err(AppError::from)
    {
        Ok(()) => Ok(match &next {
            Some(next) => see_other_with(&site, next, Kind::Success, CHECK_INBOX),
            None => see_other("/newsletter/check-email"),
        }),
        Err(error) => {
            let errors = field_errors(&error).ok_or(error)?;
            let sections = sections.unwrap_or_else(|| all_sections(&visitor));
            let form = Form::from_posted(&posted, &["email"])
                .with_list("sections", sections)
                .with_errors(errors);
            show_sign_up(&state, &site, &visitor, form, next, None)
        }
    }
}

async fn check_email(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    Page::new(
        "newsletter_check_email.html",
        context! {
            title => "Check your inbox",
            expires_hours => state.settings.newsletter.confirmation_ttl_hours,
        },
    )
    .cacheable()
    .render(&site, &visitor)
}

// --- Confirmation --------------------------------------------------------

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Which link stopped working: each page says what to do next.
#[derive(Clone, Copy)]
enum LinkKind {
    Confirm,
    Preferences,
    Unsubscribe,
}

impl LinkKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Preferences => "preferences",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

fn link_invalid(site: &Site, visitor: &Visitor, kind: LinkKind) -> Result<HttpResponse, AppError> {
    Page::new(
        "newsletter_link_invalid.html",
        context! {
            title => "This link does not work any more",
            kind => kind.as_str(),
            noindex => true,
        },
    )
    .status(StatusCode::NOT_FOUND)
    .no_referrer()
    .render(site, visitor)
}

/// The link in the confirmation email: a page with one button. Opening it
/// confirms nothing.
async fn confirm_page(
    state: Data<AppState>,
    site: Data<Site>,
    mut visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    forget_token(&mut visitor);
    let Some(token) = query.into_inner().token.filter(|t| !t.is_empty()) else {
        return link_invalid(&site, &visitor, LinkKind::Confirm);
    };
    if !state.newsletter.confirmation_pending(&token).await? {
        return link_invalid(&site, &visitor, LinkKind::Confirm);
    }
    Page::new(
        "newsletter_confirm.html",
        context! {
            title => "Confirm your subscription",
            token => token,
            noindex => true,
        },
    )
    .no_referrer()
    .render(&site, &visitor)
}

#[tracing::instrument(skip_all)]
async fn confirm(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    match state.newsletter.confirm(&posted.value("token")).await {
        Ok(confirmed) => Ok(see_other_with(
            &site,
            &with_token("/newsletter/subscribed", Some(&confirmed.manage_token)),
            Kind::Success,
            "Thank you for confirming your address.",
        )),
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Confirm),
        Err(other) => Err(other.into()),
    }
}

/// After the confirmation: says so, and leads to the preferences.
async fn subscribed(
    site: Data<Site>,
    mut visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    forget_token(&mut visitor);
    let token = query.into_inner().token.filter(|t| !t.is_empty());
    Page::new(
        "newsletter_subscribed.html",
        context! {
            title => "You are subscribed",
            preferences_url => with_token("/newsletter/preferences", token.as_deref()),
            noindex => true,
        },
    )
    .no_referrer()
    .render(&site, &visitor)
}

/// `path`, with `?token=` when there is one.
fn with_token(path: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("token", token)
                .finish();
            format!("{path}?{query}")
        }
        None => path.to_owned(),
    }
}

// --- Preferences ---------------------------------------------------------

/// The link from an email when there is one, else the session.
fn holder(token: Option<String>, visitor: &Visitor) -> Result<Holder, AppError> {
    match (token, &visitor.account) {
        (Some(token), _) => Ok(Holder::Link(token)),
        (None, Some(account)) => Ok(Holder::Account(account.clone())),
        (None, None) => Err(AppError::Unauthorized {
            detail: "log in, or use the link from a newsletter email",
        }),
    }
}

async fn preferences_page(
    state: Data<AppState>,
    site: Data<Site>,
    mut visitor: Visitor,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    forget_token(&mut visitor);
    let token = query.into_inner().token.filter(|t| !t.is_empty());
    let holder = holder(token.clone(), &visitor)?;
    match state.newsletter.preferences(holder).await {
        Ok(preferences) => {
            let form = Form::new()
                .with(
                    "paused_until",
                    preferences
                        .paused_until
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                )
                .with_list("sections", preferences.sections.as_slice().to_vec());
            show_preferences(&site, &visitor, &preferences, form, token)
        }
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Preferences),
        Err(NewsletterError::NotSubscribed) => not_subscribed(&site, &visitor),
        Err(other) => Err(other.into()),
    }
}

fn show_preferences(
    site: &Site,
    visitor: &Visitor,
    preferences: &Preferences,
    form: Form,
    token: Option<String>,
) -> Result<HttpResponse, AppError> {
    let status = form.status();
    let checked = form.lists.get("sections").cloned().unwrap_or_default();
    Page::new(
        "newsletter_preferences.html",
        context! {
            title => "Your newsletter",
            form => form,
            preferences => preferences,
            options => section_options(visitor),
            checked => checked,
            data_url => with_token("/api/v1/newsletter/data", token.as_deref()),
            token => token,
            noindex => true,
        },
    )
    .status(status)
    .no_referrer()
    .render(site, visitor)
}

/// A logged-in reader whose address gets no newsletter.
fn not_subscribed(site: &Site, visitor: &Visitor) -> Result<HttpResponse, AppError> {
    Page::new(
        "newsletter_preferences.html",
        context! { title => "Your newsletter", not_subscribed => true },
    )
    .render(site, visitor)
}

/// What a preferences form asks for: the save button's sections and pause,
/// "Unsubscribe", or "Subscribe again".
#[derive(Clone, Copy)]
enum Change {
    Save,
    Unsubscribe,
    Resubscribe,
}

impl Change {
    fn posted(posted: &Posted) -> Self {
        match posted.optional("subscribed").as_deref() {
            Some("false") => Self::Unsubscribe,
            Some("true") => Self::Resubscribe,
            _ => Self::Save,
        }
    }

    /// The flash message once the change is made.
    fn done(self) -> &'static str {
        match self {
            Self::Save => "Your preferences are saved.",
            Self::Unsubscribe => "You are unsubscribed: we will send you no more newsletters.",
            Self::Resubscribe => "You are subscribed again.",
        }
    }

    /// The changes to ask the service for, or the form to show again when
    /// the pause is no date.
    fn changes(self, sections: &[String], raw_pause: &str) -> Result<PreferenceChanges, Form> {
        match self {
            Self::Unsubscribe => Ok(PreferenceChanges {
                subscribed: Some(false),
                ..PreferenceChanges::default()
            }),
            Self::Resubscribe => Ok(PreferenceChanges {
                sections: Some(sections.to_vec()),
                subscribed: Some(true),
                ..PreferenceChanges::default()
            }),
            Self::Save => Ok(PreferenceChanges {
                sections: Some(sections.to_vec()),
                paused_until: Some(parse_pause(sections, raw_pause)?),
                subscribed: None,
            }),
        }
    }
}

/// The date a pause ends, if one is given.
fn parse_pause(sections: &[String], raw_pause: &str) -> Result<Option<NaiveDate>, Form> {
    if raw_pause.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw_pause, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            Form::new()
                .with("paused_until", raw_pause)
                .with_list("sections", sections.to_vec())
                .with_error(
                    "paused_until",
                    "invalid_date",
                    "enter the date the pause ends, like 2030-01-31",
                )
        })
}

#[tracing::instrument(skip_all)]
async fn update_preferences(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let token = posted.optional("token");
    let holder = holder(token.clone(), &visitor)?;
    let change = Change::posted(&posted);
    let sections = posted.values("sections");
    let raw_pause = posted.value("paused_until").trim().to_owned();
    let changes = match change.changes(&sections, &raw_pause) {
        Ok(changes) => changes,
        Err(form) => return reshow_preferences(&state, &site, &visitor, holder, form, token).await,
    };
    match state
        .newsletter
        .update_preferences(holder.clone(), changes)
        .await
    {
        Ok(_) => Ok(see_other_with(
            &site,
            &with_token("/newsletter/preferences", token.as_deref()),
            Kind::Success,
            change.done(),
        )),
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Preferences),
        Err(other) => {
            let error = AppError::from(other);
            let errors = field_errors(&error).ok_or(error)?;
            let form = Form::new()
                .with("paused_until", raw_pause)
                .with_list("sections", sections)
                .with_errors(errors);
            reshow_preferences(&state, &site, &visitor, holder, form, token).await
        }
    }
}

/// The preferences page again, with what was posted and what was wrong.
async fn reshow_preferences(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    holder: Holder,
    form: Form,
    token: Option<String>,
) -> Result<HttpResponse, AppError> {
    match state.newsletter.preferences(holder).await {
        Ok(preferences) => show_preferences(site, visitor, &preferences, form, token),
        Err(NewsletterError::InvalidToken) => link_invalid(site, visitor, LinkKind::Preferences),
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all)]
async fn erase(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let holder = holder(posted.optional("token"), &visitor)?;
    match state.newsletter.erase(holder).await {
        // The page says what happened; a message above it would repeat it.
        Ok(()) => Ok(see_other("/newsletter/erased")),
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Preferences),
        Err(other) => Err(other.into()),
    }
}

async fn erased(site: Data<Site>, visitor: Visitor) -> Result<HttpResponse, AppError> {
    Page::new(
        "newsletter_erased.html",
        context! { title => "Your newsletter data is erased" },
    )
    .render(&site, &visitor)
}

// --- One-click unsubscribe (RFC 8058) -----------------------------------

/// Shows the address and one button; unsubscribes nobody.
async fn unsubscribe_page(
    state: Data<AppState>,
    site: Data<Site>,
    mut visitor: Visitor,
    token: Path<String>,
) -> Result<HttpResponse, AppError> {
    forget_token(&mut visitor);
    let token = token.into_inner();
    match state.newsletter.link_address(&token).await {
        Ok(email) => Page::new(
            "unsubscribe.html",
            context! {
                title => "Unsubscribe",
                done => false,
                email => email,
                action => format!("/unsubscribe/{}", path_segment(&token)),
                noindex => true,
            },
        )
        .no_referrer()
        .render(&site, &visitor),
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Unsubscribe),
        Err(other) => Err(other.into()),
    }
}

/// RFC 8058: a POST to the link unsubscribes at once, with no session,
/// cookie, form token or particular body. Doing it twice is harmless, so
/// the answer is the page itself rather than a redirect.
#[tracing::instrument(skip_all)]
async fn one_click_unsubscribe(
    state: Data<AppState>,
    site: Data<Site>,
    mut visitor: Visitor,
    token: Path<String>,
) -> Result<HttpResponse, AppError> {
    forget_token(&mut visitor);
    let token = token.into_inner();
    match state.newsletter.unsubscribe_with_link(&token).await {
        Ok(email) => Page::new(
            "unsubscribe.html",
            context! {
                title => "You are unsubscribed",
                done => true,
                email => email,
                preferences_url => with_token("/newsletter/preferences", Some(&token)),
                noindex => true,
            },
        )
        .no_referrer()
        .render(&site, &visitor),
        Err(NewsletterError::InvalidToken) => link_invalid(&site, &visitor, LinkKind::Unsubscribe),
        Err(other) => Err(other.into()),
    }
}

/// A path segment as sent: tokens are hex or `s1.<id>.<expiry>.<mac>`, but
/// nothing from a URL goes back into one unescaped.
fn path_segment(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
