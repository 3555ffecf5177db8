//! `/admin/digests`: the daily digest's runs with their progress, each
//! date's section variants as subscribers see them, and the form that
//! starts or resumes a date. The pages call the same `DigestService`
//! functions as the admin API in `digest::http`; the service decides who
//! is an admin, records each start in the audit trail, and leaves the
//! sending to the worker, so starting answers at once.
//!
//! Progress needs no script: the pages show a percentage worked out by the
//! server and a link that loads them again.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use minijinja::context;
use serde::Serialize;

use crate::accounts::Account;
use crate::digest::model::RunState;
use crate::digest::service::{RunDetail, Started, Today};
use crate::digest::DigestError;
use crate::digest::RunView;
use crate::http::pages::admin::audit::entry_views;
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::platform::audit::model::SubjectKind;
use crate::platform::audit::Subject;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_digest_macros.html",
        include_str!("../templates/admin_digest_macros.html"),
    ),
    (
        "admin_digests.html",
        include_str!("../templates/admin_digests.html"),
    ),
    (
        "admin_digest.html",
        include_str!("../templates/admin_digest.html"),
    ),
];

const LIST: &str = "/admin/digests";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(LIST, web::get().to(list_page))
        .route("/admin/digests/start", web::post().to(start))
        .route("/admin/digests/{date}", web::get().to(detail_page))
        .route(
            "/admin/digests/{date}/preview/{variant}.html",
            web::get().to(preview_html),
        );
}

/// The site's policy, plus frames from the site itself: the detail page
/// shows each variant's HTML in an `<iframe>` of `preview_html`.
const DETAIL_POLICY: &str = crate::http::pages::security::PAGE_WITH_FRAMES_POLICY;

/// An email's HTML as a mail client shows it: its own inline styles and
/// remote images; no script, form, plug-in or navigation of the page
/// around it (sandboxed, also when opened alone); framed only by this
/// site. The sandbox keeps the site's origin: with scripts off that gives
/// the email nothing, and Chromium then draws the frame in the page's own
/// process, where screenshots of the page include it.
const EMAIL_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
    form-action 'none'; frame-ancestors 'self'; base-uri 'none'; sandbox allow-same-origin";

/// A run as a row of the list and the head of its page.
#[derive(Serialize)]
struct RunRow {
    date: String,
    state: RunState,
    /// The state in words.
    state_label: &'static str,
    /// Preparing or sending: starting it again resumes it.
    in_progress: bool,
    articles: i32,
    /// The counts, written with thousands separators.
    recipients: String,
    sent: String,
    failed: String,
    skipped: String,
    pending: String,
    any_failed: bool,
    percent_done: u8,
    started_at: String,
    finished_at: Option<String>,
}

impl RunRow {
    fn new(run: &RunView) -> Self {
        let c = run.counts;
        Self {
            date: run.date.clone(),
            state: run.state,
            state_label: match run.state {
                RunState::Preparing => "Preparing",
                RunState::Sending => "Sending",
                RunState::Completed => "Completed",
                RunState::Skipped => "Nothing to send",
            },
            in_progress: matches!(run.state, RunState::Preparing | RunState::Sending),
            articles: run.articles,
            recipients: thousands(c.total()),
            sent: thousands(c.sent),
            failed: thousands(c.failed),
            skipped: thousands(c.skipped),
            pending: thousands(c.pending),
            any_failed: c.failed > 0,
            percent_done: run.percent_done,
            started_at: run.created_at.to_rfc3339(),
            finished_at: run.finished_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// 20000 → "20,000".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

async fn list_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let today = state.digest.today();
    let form = Form::new().with("date", today.date.clone());
    show_list(&state, &site, &visitor, &admin, today, form).await
}

async fn show_list(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    admin: &Account,
    today: Today,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let runs: Vec<RunRow> = state
        .digest
        .list(admin)
        .await?
        .iter()
        .map(RunRow::new)
        .collect();
    let todays = runs.iter().position(|r| r.date == today.date);
    let status = form.status();
    Page::new(
        "admin_digests.html",
        context! {
            title => "Daily digests",
            noindex => true,
            console_area => "digests",
            today => today,
            todays => todays.map(|i| &runs[i]),
            any_in_progress => runs.iter().any(|r| r.in_progress),
            runs => &runs,
            form => form,
        },
    )
    .status(status)
    .render(site, visitor)
}

/// `DigestService::start`, as `POST /api/v1/admin/digests/{date}/send`
/// calls it; then the date's page, where its progress shows.
#[tracing::instrument(skip_all)]
async fn start(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let date = posted.value("date");
    let problem = match state.digest.start(&admin, &date).await {
        Ok(started) => {
            let location = format!("{LIST}/{}", started.run.date);
            let message = started_message(&started);
            return Ok(see_other_with(&site, &location, Kind::Success, message));
        }
        Err(DigestError::Invalid(errors)) => Form::new().with_errors(errors),
        Err(DigestError::FutureDate) => Form::new().with_error(
            "date",
            "future_date",
            &format!(
                "choose today or an earlier date: {} has not begun yet in {}",
                long_date(&date),
                state.digest.today().timezone
            ),
        ),
        Err(DigestError::BeforeLatest) => Form::new().with_error(
            "date",
            "before_latest_run",
            "a digest for a later date has been started; this date would send its articles again",
        ),
        Err(other) => return Err(other.into()),
    };
    let form = problem.with("date", date);
    show_list(&state, &site, &visitor, &admin, state.digest.today(), form).await
}

/// What the admin is told after starting: what the worker does next.
fn started_message(started: &Started) -> String {
    let run = &started.run;
    let day = long_date(&run.date);
    if started.created {
        return format!(
            "The digest of {day} is started. The worker creates a message for each subscriber and sends them as it goes; refresh this page to follow it."
        );
    }
    match run.state {
        RunState::Preparing | RunState::Sending => match started.retried {
            0 => format!(
                "The digest of {day} is resumed; no message was waiting for a retry. Nothing already sent goes out again."
            ),
            1 => format!(
                "The digest of {day} is resumed: 1 message waiting for a retry is due now. Nothing already sent goes out again."
            ),
            n => format!(
                "The digest of {day} is resumed: {} messages waiting for a retry are due now. Nothing already sent goes out again.",
                thousands(i64::try_from(n).unwrap_or(i64::MAX))
            ),
        },
        RunState::Completed => format!(
            "The digest of {day} has already gone out, so nothing was sent again."
        ),
        RunState::Skipped => format!(
            "The digest of {day} had nothing to send: no articles, or no subscriber who wanted them."
        ),
    }
}

/// "2026-11-26" → "Thursday 26 November 2026"; anything else as it is.
fn long_date(date: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| d.format("%A %-d %B %Y").to_string())
        .unwrap_or_else(|_| date.to_owned())
}

/// A variant as the date's page shows it.
#[derive(Serialize)]
struct VariantRow {
    /// Its part of the preview's address: section slugs joined by `+`, or
    /// `all` for the quiet-day note, which every subscriber gets alike.
    key: String,
    /// Its sections, by name.
    label: String,
    recipients: String,
    articles: usize,
    subject: String,
    text: String,
}

fn variant_rows(detail: &RunDetail, visitor: &Visitor) -> Vec<VariantRow> {
    detail
        .variants
        .iter()
        .map(|v| {
            let names: Vec<String> = v.sections.iter().map(|s| visitor.section_name(s)).collect();
            VariantRow {
                key: if v.sections.is_empty() {
                    "all".to_owned()
                } else {
                    v.sections.join("+")
                },
                label: match names.as_slice() {
                    [] => "No news: the quiet-day note".to_owned(),
                    [one] => one.clone(),
                    [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                },
                recipients: thousands(v.recipients),
                articles: v.preview.articles,
                subject: v.preview.subject.clone(),
                text: v.preview.text.clone(),
            }
        })
        .collect()
}

/// A date that does not parse names no digest: the page is not found.
fn not_found_if_invalid(error: DigestError) -> AppError {
    match error {
        DigestError::Invalid(_) => AppError::NotFound,
        other => other.into(),
    }
}

async fn detail_page(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    date: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?.clone();
    let detail = state
        .digest
        .detail(&admin, &date)
        .await
        .map_err(not_found_if_invalid)?;
    let history = match &detail.run {
        Some(run) => {
            let entries = state
                .audit
                .of_subject(admin.role, Subject::new(SubjectKind::DigestRun, run.id))
                .await?;
            entry_views(&state, &admin, entries).await?
        }
        None => Vec::new(),
    };
    let run = detail.run.as_ref().map(RunRow::new);
    let window = detail
        .variants
        .first()
        .map(|v| (v.preview.since, v.preview.cutoff));
    let mut response = Page::new(
        "admin_digest.html",
        context! {
            title => format!("Digest of {}", long_date(&detail.date)),
            noindex => true,
            console_area => "digests",
            date => &detail.date,
            day => long_date(&detail.date),
            run => run,
            window => window.map(|(since, cutoff)| (since.to_rfc3339(), cutoff.to_rfc3339())),
            variants_from => detail.variants_from,
            variants => variant_rows(&detail, &visitor),
            history => history,
        },
    )
    .render(&site, &visitor)?;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DETAIL_POLICY),
    );
    Ok(response)
}

/// One variant's HTML, exactly as the email carries it, for the frame on
/// the date's page (or a tab of its own).
#[tracing::instrument(skip_all, fields(date = %path.0, variant = %path.1))]
async fn preview_html(
    state: Data<AppState>,
    visitor: Visitor,
    path: Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let account = visitor.require_account()?;
    let (date, variant) = path.into_inner();
    let sections = match variant.as_str() {
        "all" => None,
        slugs => Some(slugs.split('+').map(str::to_owned).collect()),
    };
    let preview = state
        .digest
        .preview(account, &date, sections)
        .await
        .map_err(not_found_if_invalid)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, EMAIL_POLICY))
        .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(preview.html))
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn counts_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1234), "-1,234");
    }
}
