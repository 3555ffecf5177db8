//! `masthead worker`: the background worker alone, until a signal.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::cli::shutdown;
use crate::jobs::Worker;
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::Core;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let worker = Worker::new(&core)?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    shutdown::signal().await;
    tracing::info!("stopping the worker after its current batch");
    let _ = stop.send(true);
    running.await.context("worker task")
}
