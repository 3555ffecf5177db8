//! `masthead export`: a list as CSV, in the columns the import reads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::{AppState, Core};

/// The lists there are to export.
#[derive(Debug, Clone, Copy)]
pub enum List {
    Subscribers,
    Suppressions,
    Readers,
}

/// Writes `list` to `output`, or to standard output when there is none.
pub async fn run(settings: Settings, list: List, output: Option<PathBuf>) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let state = AppState::new(&core)?;
    let out: Box<dyn Write + Send> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let written = match list {
        List::Subscribers => state.newsletter.export_subscribers(out).await,
        List::Suppressions => state.newsletter.export_suppressions(out).await,
        List::Readers => state.accounts.export_readers(out).await,
    }?;
    eprintln!(
        "exported {written} rows{}",
        output
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
