//! The reader's pages for articles: the front page, a section, search, and
//! one article in full or as a teaser, as `access` decides. They call the
//! same `ArticleService` functions as the JSON API in `articles::http`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::form::field_errors;
use super::{Page, Site, Visitor};
use crate::access::Level;
use crate::access::Reason;
use crate::articles::service::{Entry, Listing, Viewer};
use crate::http::extract::Paging;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("home.html", include_str!("templates/home.html")),
    ("listing.html", include_str!("templates/listing.html")),
    ("article.html", include_str!("templates/article.html")),
    (
        "article_card.html",
        include_str!("templates/article_card.html"),
    ),
];

/// How many stories the front page shows per section.
const PER_SECTION: usize = 4;
/// How far back the front page looks for them.
const FRONT_PAGE_POOL: i64 = 80;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/sections/{slug}", web::get().to(section))
        .route("/search", web::get().to(search))
        .route("/articles/{slug}", web::get().to(article));
}

/// An article as a card in a list.
#[derive(Serialize)]
struct Card {
    slug: String,
    title: String,
    standfirst: String,
    section_slug: String,
    section_name: String,
    byline: String,
    published_at: Option<String>,
}

impl From<&Entry> for Card {
    fn from(e: &Entry) -> Self {
        Self {
            slug: e.article.slug.to_string(),
            title: e.article.title.clone(),
            standfirst: e.article.standfirst.clone(),
            section_slug: e.section.slug.to_string(),
            section_name: e.section.name.clone(),
            byline: e.article.byline.clone(),
            published_at: e.article.published_at.map(|t| t.and_utc().to_rfc3339()),
        }
    }
}

#[derive(Serialize)]
struct SectionBlock {
    slug: String,
    name: String,
    cards: Vec<Card>,
}

async fn home(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let latest = state
        .articles
        .list(
            visitor.account.as_ref(),
            Listing {
                limit: FRONT_PAGE_POOL,
                ..Listing::default()
            },
        )
        .await?;
    let lead: Vec<Card> = latest.entries.iter().take(1).map(Card::from).collect();
    let blocks: Vec<SectionBlock> = visitor
        .sections
        .iter()
        .map(|section| SectionBlock {
            slug: section.slug.to_string(),
            name: section.name.clone(),
            cards: latest
                .entries
                .iter()
                .skip(1)
                .filter(|e| e.section.id == section.id)
                .take(PER_SECTION)
                .map(Card::from)
                .collect(),
        })
        .filter(|block| !block.cards.is_empty())
        .collect();
    Page::new(
        "home.html",
        context! { title => "Latest news", lead => lead, blocks => blocks },
    )
    .cacheable()
    .render(&site, &visitor)
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    q: Option<String>,
}

/// One page of a listing, with the links to its neighbours.
#[derive(Serialize)]
struct Pager {
    page: i64,
    previous: Option<String>,
    next: Option<String>,
    total: i64,
}

fn pager(base: &str, extra: &[(&str, &str)], paging: Paging, total: i64) -> Pager {
    let link = |page: i64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in extra {
            query.append_pair(key, value);
        }
        query.append_pair("page", &page.to_string());
        format!("{base}?{}", query.finish())
    };
    Pager {
        page: paging.page,
        previous: (paging.page > 1).then(|| link(paging.page - 1)),
        next: (paging.offset() + paging.per_page < total).then(|| link(paging.page + 1)),
        total,
    }
}

async fn section(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    slug: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(section) = visitor
        .sections
        .iter()
        .find(|s| s.slug.as_str() == slug.as_str())
        .cloned()
    else {
        return Err(AppError::NotFound);
    };
    let settings = state.articles.settings();
    let paging = Paging::parse(query.page, None, settings.per_page, settings.max_per_page)
        .map_err(|_| AppError::NotFound)?;
    let found = state
        .articles
        .list(
            visitor.account.as_ref(),
            Listing {
                section: Some(section.slug.to_string()),
                limit: paging.per_page,
                offset: paging.offset(),
                ..Listing::default()
            },
        )
        .await?;
    let cards: Vec<Card> = found.entries.iter().map(Card::from).collect();
    let base = format!("/sections/{}", section.slug);
    Page::new(
        "listing.html",
        context! {
            title => &section.name,
            heading => &section.name,
            cards => cards,
            pager => pager(&base, &[], paging, found.total),
            empty => "Nothing has been published in this section yet.",
            hide_kicker => true,
        },
    )
    .cacheable()
    .render(&site, &visitor)
}

async fn search(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.q.clone().unwrap_or_default().trim().to_owned();
    let settings = state.articles.settings();
    let paging = Paging::parse(query.page, None, settings.per_page, settings.max_per_page)
        .map_err(|_| AppError::NotFound)?;
    let found = if q.is_empty() {
        Found::default()
    } else {
        find(&state, &visitor, &q, paging).await?
    };
    let heading = if q.is_empty() || found.refusal.is_some() {
        "Search".to_owned()
    } else {
        format!("Search results for “{q}”")
    };
    let empty = match (&found.refusal, q.is_empty()) {
        (Some(message), _) => message.clone(),
        (None, true) => "Type a few words to search every article.".to_owned(),
        (None, false) => "No article matches these words. Try fewer or different words.".to_owned(),
    };
    let status = if found.refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Page::new(
        "listing.html",
        context! {
            title => &heading,
            heading => &heading,
            query => &q,
            cards => found.cards,
            pager => found.pager,
            show_search_form => true,
            empty => empty,
        },
    )
    .status(status)
    .cacheable()
    .render(&site, &visitor)
}

/// What a search found, or why the query was refused.
#[derive(Default)]
struct Found {
    cards: Vec<Card>,
    pager: Option<Pager>,
    refusal: Option<String>,
}

async fn find(
    state: &AppState,
    visitor: &Visitor,
    q: &str,
    paging: Paging,
) -> Result<Found, AppError> {
    let found = state
        .articles
        .list(
            visitor.account.as_ref(),
            Listing {
                search: Some(q.to_owned()),
                limit: paging.per_page,
                offset: paging.offset(),
                ..Listing::default()
            },
        )
        .await
        .map_err(AppError::from);
    match found {
        Ok(found) => Ok(Found {
            cards: found.entries.iter().map(Card::from).collect(),
            pager: Some(pager("/search", &[("q", q)], paging, found.total)),
            refusal: None,
        }),
        // Too long a query is the reader's to shorten, on this page.
        Err(error) => match field_errors(&error) {
            Some(errors) => Ok(Found {
                refusal: errors.into_iter().next().map(|e| e.message),
                ..Found::default()
            }),
            None => Err(error),
        },
    }
}

/// Why the reader sees the whole article, in words.
fn access_note(reason: Reason) -> Option<&'static str> {
    match reason {
        Reason::Trial => Some("You are reading this with your free trial"),
        Reason::CompanySeat => Some("You are reading this through your company's subscription"),
        Reason::Subscription => Some("You are reading this with your subscription"),
        _ => None,
    }
}

/// What the paywall says to this reader.
fn paywall_heading(reason: Reason) -> &'static str {
    match reason {
        Reason::NotLoggedIn => "Read the whole story",
        Reason::TrialEnded => "Your free trial has ended",
        Reason::SubscriptionEnded => "Your subscription has ended",
        Reason::CompanySubscriptionEnded => "Your company's subscription has ended",
        _ => "Keep reading with full access",
    }
}

async fn article(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    slug: Path<String>,
) -> Result<HttpResponse, AppError> {
    let viewer = visitor
        .account
        .clone()
        .map_or(Viewer::Anonymous, Viewer::Account);
    let reading = state.articles.read(viewer, &slug).await?;
    let decision = reading.decision;
    let is_teaser = decision.level == Level::Teaser;
    let card = Card::from(reading.entry());
    let related: Vec<Card> = reading.related().iter().map(Card::from).collect();
    let page = Page::new(
        "article.html",
        context! {
            title => &card.title,
            article => card,
            body_html => minijinja::Value::from_safe_string(reading.body_html().to_owned()),
            is_teaser => is_teaser,
            reason => decision.reason,
            access_note => access_note(decision.reason),
            access_until => decision.until.map(|t| t.to_rfc3339()),
            paywall_heading => paywall_heading(decision.reason),
            decision_hours => state.settings.trials.decision_hours,
            sales_email => &state.settings.mail.sales_email,
            related => related,
            article_path => format!("/articles/{}", reading.entry().article.slug),
        },
    );
    // Drafts shown to editors are theirs alone.
    let page = if reading.entry().article.published_at.is_some() {
        page.cacheable()
    } else {
        page
    };
    page.status(StatusCode::OK).render(&site, &visitor)
}
