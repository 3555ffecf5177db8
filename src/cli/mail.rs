//! `masthead mail ingest`: one message that came back, read on standard input.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;

use crate::flows::bounce::{Event, Ingested, Ingester};
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::Core;

/// The most of a message `mail ingest` reads: reports are small, and the
/// parts that matter come first.
const INGEST_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Files the bounces or the complaint the message reports, and prints a
/// line for each.
pub async fn ingest(settings: Settings, recipient: Option<String>) -> anyhow::Result<()> {
    let mut raw = Vec::new();
    std::io::stdin()
        .take(INGEST_MAX_BYTES)
        .read_to_end(&mut raw)
        .context("reading the message")?;
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let ingester = Ingester::new(
        core.pool.clone(),
        Arc::clone(&core.clock),
        Arc::clone(&core.return_paths),
        core.suppressions.clone(),
    );
    match ingester.ingest(raw, recipient).await? {
        Ingested::Ignored(why) => println!("ignored: {why}"),
        Ingested::Reported(events) => events.iter().for_each(print_event),
    }
    Ok(())
}

fn print_event(event: &Event) {
    println!(
        "{} at {}{}{}",
        event.kind.as_str(),
        event.domain,
        if event.attributed {
            " (by its return path)"
        } else {
            ""
        },
        if event.suppressed {
            ": suppressed"
        } else {
            ": noted"
        }
    );
}
