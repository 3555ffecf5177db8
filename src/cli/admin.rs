//! `masthead admin create`: an editor or admin account, from the command line.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;

use crate::accounts::{AccountError, Role};
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::state::Core;

/// Creates the account with a password read from a prompt or standard
/// input, and says where to log in.
pub async fn create(settings: Settings, email: &str, name: &str, role: Role) -> anyhow::Result<()> {
    let password = read_password()?;
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let accounts = core.account_service()?;
    let account = accounts
        .create_privileged(email, name, password, role)
        .await
        .map_err(describe)?;
    println!(
        "created {} {} ({})",
        account.role, account.email, account.id
    );
    let console = match account.role {
        Role::Admin => "/admin",
        _ => "/admin/articles",
    };
    println!(
        "log in at {base}/login, then open the console at {base}{console}",
        base = core.settings.server.public_url()
    );
    Ok(())
}

fn describe(error: AccountError) -> anyhow::Error {
    match error {
        AccountError::Invalid(fields) => anyhow::anyhow!(
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

fn read_password() -> anyhow::Result<SecretString> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    Ok(SecretString::from(password))
}
