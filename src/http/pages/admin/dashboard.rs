//! `/admin`: the morning's figures, each a link to where the work is. It
//! asks each capability's service, so the figures are the ones its own page
//! shows.

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use chrono::Duration;
use minijinja::context;
use serde::Serialize;

use crate::digest::service::DigestError;
use crate::http::pages::{Page, Site, Visitor};
use crate::platform::error::AppError;
use crate::state::AppState;
use crate::trials::model::TrialStatus;

pub const TEMPLATES: &[(&str, &str)] = &[(
    "admin_dashboard.html",
    include_str!("../templates/admin_dashboard.html"),
)];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard));
}

/// Today's digest as the dashboard shows it.
#[derive(Serialize)]
struct DigestToday {
    date: String,
    state: crate::digest::model::RunState,
    sent: i64,
    failed: i64,
    pending: i64,
    total: i64,
    percent: u8,
}

async fn dashboard(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let now = state.clock.now();
    let queue = state.trials.queue(admin, Vec::new(), None).await?;
    let oldest_hours = queue
        .items
        .iter()
        .filter(|(t, _)| t.status == TrialStatus::Pending)
        .map(|(t, _)| (now.naive_utc() - t.requested_at).num_hours())
        .max();
    // Only today's run: the list of every run would be read to keep one.
    let today = state.digest.today();
    let digest = match state.digest.get(admin, &today.date).await {
        Ok(run) => Some(run),
        Err(DigestError::NotFound) => None,
        Err(other) => return Err(other.into()),
    }
    .map(|run| {
        let total = run.counts.total();
        DigestToday {
            date: run.date,
            state: run.state,
            sent: run.counts.sent,
            failed: run.counts.failed,
            pending: run.counts.pending,
            total,
            percent: run.percent_done,
        }
    });
    let (signed_up, confirmed) = state
        .newsletter
        .activity(admin, now - Duration::hours(24))
        .await?;
    let outbox = state.outbox.figures(admin.role, now).await?;
    Page::new(
        "admin_dashboard.html",
        context! {
            title => "Dashboard",
            console_area => "dashboard",
            trials => queue.counts,
            oldest_hours => oldest_hours,
            decision_hours => state.settings.trials.decision_hours,
            today => &today.date,
            digest => digest,
            send_at => &today.send_at,
            signed_up => signed_up,
            confirmed => confirmed,
            outbox => outbox,
        },
    )
    .render(&site, &visitor)
}
