//! `masthead migrate`: the pending migrations, then exit.

use anyhow::Context;

use crate::platform::config::Settings;
use crate::platform::db;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let db_settings = settings.database.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let pool = db::connect(&db_settings)?;
        let mut conn = pool.get().context("taking a connection to migrate")?;
        db::migrate(&mut conn)
    })
    .await??;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}
