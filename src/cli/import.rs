//! `masthead import subscribers` and `masthead import suppressions`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::shutdown;
use crate::newsletter::import::{
    ImportProgress, ImportReport, ImportWatch, SubscriberImport, SuppressionImport,
};
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::{AppState, Core};

/// What a file is read as, with its options.
pub enum Import {
    Subscribers(SubscriberImport),
    Suppressions(SuppressionImport),
}

/// Imports `file` with a progress bar, and prints the report.
pub async fn run(settings: Settings, file: PathBuf, import: Import) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let state = AppState::new(&core)?;
    let bar = progress_bar()?;
    // Ctrl-C or SIGTERM: the batch in hand is committed, and the same
    // command carries on from there.
    let (stop, listener) = shutdown::stop_on_signal(&bar, "stopping after the batch in hand");
    let watch = ImportWatch {
        progress: show_progress(&bar),
        stop: Some(stop),
    };
    let report = match import {
        Import::Subscribers(options) => {
            state
                .newsletter
                .import_subscribers(file.clone(), options, watch)
                .await
        }
        Import::Suppressions(options) => {
            state
                .newsletter
                .import_suppressions(file.clone(), options, watch)
                .await
        }
    };
    listener.abort();
    let report = report.map_err(|e| {
        bar.abandon();
        anyhow::anyhow!("{} was not imported: {e}", file.display())
    })?;
    if report.interrupted {
        bar.abandon();
    } else {
        bar.finish_and_clear();
    }
    print_report(&report);
    if report.interrupted {
        anyhow::bail!("interrupted; the same command carries on after the last committed row",);
    }
    Ok(())
}

fn progress_bar() -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg} · {per_sec} · eta {eta}")
            .context("progress bar template")?,
    );
    Ok(bar)
}

fn show_progress(bar: &ProgressBar) -> Box<dyn Fn(&ImportProgress) + Send + Sync> {
    let bar = bar.clone();
    Box::new(move |p: &ImportProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(format!(
            "· new {} · updated {} · invalid {} · suppressed {}",
            p.counts.new, p.counts.updated, p.counts.invalid, p.counts.suppressed
        ));
    })
}

fn print_report(report: &ImportReport) {
    if report.dry_run {
        println!("dry run: nothing was written");
    }
    if let Some(row) = report.resumed_after {
        println!("carried on an interrupted import after row {row}");
    }
    if !report.unknown_columns.is_empty() {
        println!("columns ignored: {}", report.unknown_columns.join(", "));
    }
    for problem in &report.problems {
        println!("row {}: {}", problem.row, problem.reason);
    }
    let c = &report.counts;
    let listed = u64::try_from(report.problems.len()).unwrap_or(u64::MAX);
    if c.invalid > listed {
        println!("… and {} more invalid rows", c.invalid - listed);
    }
    println!(
        "{} rows: new {}, updated {}, unchanged {}, invalid {}, suppressed {}",
        report.rows, c.new, c.updated, c.unchanged, c.invalid, c.suppressed
    );
    if report.confirmations > 0 {
        println!("confirmation links queued: {}", report.confirmations);
    }
    if let Some(id) = report.import_id {
        println!("import {id}");
    }
}
