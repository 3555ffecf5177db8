//! `masthead serve`: the HTTP server, and the worker beside it.

use crate::app::Application;
use crate::platform::config::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.server.public_url().to_owned();
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "listening");
    println!("masthead is running at {public_url} (port {})", app.port());
    app.run_until_stopped().await
}
