//! `masthead digest send` and `masthead digest preview`.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::cli::shutdown;
use crate::digest::model::Counts;
use crate::digest::store::Outcome;
use crate::digest::{DigestError, DigestSender, DigestService, RunId, RunView};
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::Core;

/// Runs (or resumes) one date's digest in the foreground with a progress bar.
pub async fn send(settings: Settings, date: &str) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let service = DigestService::new(&core);
    let sender = DigestSender::new(&core.base, Arc::clone(&core.links))?;
    let bar = progress_bar()?;
    // Ctrl-C or SIGTERM: the messages in flight are finished, those claimed
    // but not tried are given back, so running the command again carries on
    // at once and nobody is mailed twice.
    let (stop, listener) =
        shutdown::stop_on_signal(&bar, "stopping: finishing the messages in flight");
    let started = Instant::now();
    let date = crate::digest::service::parse_date(date).map_err(describe)?;
    bar.set_message("creating the deliveries");
    let run = service.start_or_resume(date).await.map_err(describe)?;
    let prepared = started.elapsed();
    let view = service.run_view(run.id).await.map_err(describe)?;
    let progress = Progress::start(bar.clone(), view.counts);
    let sending = Instant::now();
    let sent_now = send_until_done(&service, &sender, run.id, &stop, &progress).await?;
    listener.abort();
    let interrupted = *stop.borrow();
    if interrupted {
        bar.abandon();
    } else {
        bar.finish();
    }
    let view = service.run_view(run.id).await.map_err(describe)?;
    print_summary(&view, sent_now, sending.elapsed(), prepared);
    if interrupted {
        anyhow::bail!(
            "interrupted with {} deliveries left; `masthead digest send --date {}` carries on",
            view.counts.pending,
            view.date
        );
    }
    Ok(())
}

/// Writes the digest of `date` as an HTML and a text file in `out`.
pub async fn preview(
    settings: Settings,
    date: &str,
    sections: Vec<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let service = DigestService::new(&core);
    let sections = (!sections.is_empty()).then_some(sections);
    let preview = service
        .render_preview(date, sections)
        .await
        .map_err(describe)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let html = out.join(format!("digest-{}.html", preview.date));
    let text = out.join(format!("digest-{}.txt", preview.date));
    std::fs::write(&html, &preview.html).with_context(|| format!("writing {}", html.display()))?;
    std::fs::write(&text, &preview.text).with_context(|| format!("writing {}", text.display()))?;
    println!(
        "{} articles in {} ({}), subject: {}",
        preview.articles,
        preview.sections.join(", "),
        preview.date,
        preview.subject
    );
    println!("wrote {}", html.display());
    println!("wrote {}", text.display());
    Ok(())
}

fn progress_bar() -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} · {per_sec} · eta {eta}")
            .context("progress bar template")?,
    );
    Ok(bar)
}

/// Sends batch after batch until nothing of the run is pending or a stop
/// came; returns how many this command sent.
async fn send_until_done(
    service: &DigestService,
    sender: &DigestSender,
    run: RunId,
    stop: &watch::Receiver<bool>,
    progress: &Progress,
) -> anyhow::Result<usize> {
    let mut sent_now = 0usize;
    loop {
        let report = sender
            .deliver(Some(run), Some(stop), &|outcome| progress.show(outcome))
            .await
            .map_err(describe)?;
        sent_now += report.sent;
        let now = service.run_view(run).await.map_err(describe)?;
        if now.counts.pending == 0 || *stop.borrow() {
            return Ok(sent_now);
        }
        // What is left waits for a retry, or for another worker's lease to
        // run out.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The run's figures on the bar, moved on by each delivery's outcome.
struct Progress {
    bar: ProgressBar,
    sent: AtomicI64,
    failed: AtomicI64,
    total: i64,
    skipped: i64,
}

impl Progress {
    fn start(bar: ProgressBar, counts: Counts) -> Self {
        bar.set_length(u64::try_from(counts.total()).unwrap_or(0));
        bar.set_position(u64::try_from(counts.total() - counts.pending).unwrap_or(0));
        Self {
            bar,
            sent: AtomicI64::new(counts.sent),
            failed: AtomicI64::new(counts.failed),
            total: counts.total(),
            skipped: counts.skipped,
        }
    }

    fn show(&self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent => {
                self.sent.fetch_add(1, Relaxed);
            }
            Outcome::Failed { .. } => {
                self.failed.fetch_add(1, Relaxed);
            }
            Outcome::Skipped | Outcome::RetryAt { .. } => {}
        }
        if !matches!(outcome, Outcome::RetryAt { .. }) {
            self.bar.inc(1);
        }
        let (s, f) = (self.sent.load(Relaxed), self.failed.load(Relaxed));
        self.bar.set_message(format!(
            "sent {s} · failed {f} · remaining {}",
            self.total - s - f - self.skipped
        ));
    }
}

fn print_summary(view: &RunView, sent_now: usize, sending: Duration, prepared: Duration) {
    let seconds = sending.as_secs_f64();
    println!(
        "digest {}: {:?}; sent {}, failed {}, skipped {}; this run sent {} in {:.2} s ({:.0} msg/s), prepared in {:.2} s",
        view.date,
        view.state,
        view.counts.sent,
        view.counts.failed,
        view.counts.skipped,
        sent_now,
        seconds,
        sent_now as f64 / seconds.max(f64::EPSILON),
        prepared.as_secs_f64()
    );
}

fn describe(error: DigestError) -> anyhow::Error {
    match error {
        DigestError::Invalid(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::Error::new(other),
    }
}
