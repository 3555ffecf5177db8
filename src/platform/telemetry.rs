//! Logs: readable on a terminal (in colour only there), JSON for a
//! collector.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::platform::config::{LogFormat, LogSettings};

/// Installs the global subscriber once; later calls do nothing. `RUST_LOG`
/// overrides `log.level`. Lines go to standard error, with colour codes only
/// when it is a terminal.
pub fn init(settings: &LogSettings) {
    let ansi = std::io::stderr().is_terminal();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},actix_server=warn", settings.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let _already_set = match settings.format {
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
