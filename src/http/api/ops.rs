//! Health checks and Prometheus metrics.

use std::fmt::Write;

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::digest::model::Counts;
use crate::platform::config::ServerSettings;
use crate::platform::db;
use crate::platform::error::AppError;
use crate::state::AppState;

/// Upper bounds, in hours, of the time-to-decision histogram.
const DECISION_BUCKETS: &[f64] = &[1.0, 4.0, 12.0, 24.0, 48.0, 72.0, 168.0];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

/// With `server.metrics_token` set, a scrape must present it as a bearer
/// token. Without one, the figures are served only when the server listens
/// on loopback alone, so an instance bound to a public interface does not
/// publish them by omission; it answers 404 as if there were no such page.
fn scrape_allowed(req: &HttpRequest, server: &ServerSettings) -> Result<(), AppError> {
    // An empty token (say, an environment variable set to nothing) is no token.
    let Some(token) = server.metrics_token.as_deref().filter(|t| !t.is_empty()) else {
        return if server.bind.ip().is_loopback() {
            Ok(())
        } else {
            Err(AppError::NotFound)
        };
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests are compared rather than the tokens, so the time taken tells
    // nothing about how much of the token a guess got right.
    if Sha256::digest(presented.as_bytes()) == Sha256::digest(token.as_bytes()) {
        Ok(())
    } else {
        Err(AppError::Unauthorized {
            detail: "metrics require the bearer token set in server.metrics_token",
        })
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

async fn ready(state: Data<AppState>) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, |conn| {
        db::ping(conn).map_err(db::StorageError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

/// Read from the database at each scrape, so every instance reports the
/// same figures.
async fn metrics(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, AppError> {
    scrape_allowed(&req, &state.settings.server)?;
    let mut out = String::new();
    let (pending, decision_hours) = crate::trials::service::metrics(&state.pool).await?;
    write_trial_metrics(&mut out, pending, &decision_hours);
    let (digest, rate) = crate::digest::service::metrics(&state.pool, state.clock.now()).await?;
    write_digest_metrics(&mut out, &digest, rate);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}

/// The trial queue's gauge and the histogram of hours to a decision.
fn write_trial_metrics(out: &mut String, pending: i64, decision_hours: &[f64]) {
    let _ = writeln!(
        out,
        "# HELP masthead_trial_requests_pending Trial requests waiting for a decision."
    );
    let _ = writeln!(out, "# TYPE masthead_trial_requests_pending gauge");
    let _ = writeln!(out, "masthead_trial_requests_pending {pending}");
    let _ = writeln!(
        out,
        "# HELP masthead_trial_decision_hours Hours from a trial request to its decision."
    );
    let _ = writeln!(out, "# TYPE masthead_trial_decision_hours histogram");
    for bound in DECISION_BUCKETS {
        let within = decision_hours.iter().filter(|h| **h <= *bound).count();
        let _ = writeln!(
            out,
            "masthead_trial_decision_hours_bucket{{le=\"{bound}\"}} {within}"
        );
    }
    let _ = writeln!(
        out,
        "masthead_trial_decision_hours_bucket{{le=\"+Inf\"}} {}",
        decision_hours.len()
    );
    let _ = writeln!(
        out,
        "masthead_trial_decision_hours_sum {}",
        decision_hours.iter().sum::<f64>()
    );
    let _ = writeln!(
        out,
        "masthead_trial_decision_hours_count {}",
        decision_hours.len()
    );
}

/// The digest's deliveries by outcome, those pending, and the send rate.
fn write_digest_metrics(out: &mut String, digest: &Counts, rate: f64) {
    let _ = writeln!(
        out,
        "# HELP masthead_digest_messages_total Digest deliveries by outcome, over all runs."
    );
    let _ = writeln!(out, "# TYPE masthead_digest_messages_total counter");
    for (status, n) in [
        ("sent", digest.sent),
        ("failed", digest.failed),
        ("skipped", digest.skipped),
    ] {
        let _ = writeln!(
            out,
            "masthead_digest_messages_total{{status=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP masthead_digest_messages_pending Digest deliveries waiting to be sent or retried."
    );
    let _ = writeln!(out, "# TYPE masthead_digest_messages_pending gauge");
    let _ = writeln!(out, "masthead_digest_messages_pending {}", digest.pending);
    let _ = writeln!(
        out,
        "# HELP masthead_digest_send_rate Digest messages sent per second over the last minute."
    );
    let _ = writeln!(out, "# TYPE masthead_digest_send_rate gauge");
    let _ = writeln!(out, "masthead_digest_send_rate {rate}");
}
