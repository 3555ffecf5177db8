//! Logs: readable on a terminal, JSON for a collector.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber once; later calls do nothing. `RUST_LOG`
/// overrides `log.level`.
pub fn init(settings: &LogSettings, writer: fn() -> Box<dyn std::io::Write>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},actix_server=warn", settings.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let _already_set = match settings.format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer),
            )
            .try_init(),
    };
}

pub fn stderr() -> Box<dyn std::io::Write> {
    Box::new(std::io::stderr())
}
