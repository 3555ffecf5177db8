//! The command line: serve, worker, migrate, admin.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::accounts::{AccountService, Role};
use crate::app::{Application, Core};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::db;
use crate::jobs::Worker;

#[derive(Debug, Parser)]
#[command(
    name = "masthead",
    version,
    about = "The subscription backend of a news publisher"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP and run the background worker.
    Serve,
    /// Run only the background worker (outbox delivery).
    Worker,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Manage accounts from the command line.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Sample content for trying masthead out.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// Add the sections and about thirty sample articles from the past week.
    Seed,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an editor or admin account. The password is read from a
    /// prompt, or from the first line of standard input when it is not a
    /// terminal.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: PrivilegedRole,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PrivilegedRole {
    Editor,
    Admin,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = Settings::load().and_then(|settings| {
        crate::telemetry::init(&settings.log, crate::telemetry::stderr);
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(run(cli.command, settings))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let public_url = settings.server.public_url().to_owned();
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "listening");
            println!("masthead is running at {public_url} (port {})", app.port());
            app.run_until_stopped().await
        }
        Command::Worker => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            let worker = Worker::new(&core)?;
            let (stop, stopped) = watch::channel(false);
            let running = tokio::spawn(worker.run(stopped));
            shutdown_signal().await;
            tracing::info!("stopping the worker after its current batch");
            let _ = stop.send(true);
            running.await.context("worker task")
        }
        Command::Migrate => {
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
        Command::Demo {
            command: DemoCommand::Seed,
        } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            let seeded = crate::demo::seed(&core).await?;
            println!(
                "added {} sections and {} articles",
                seeded.sections, seeded.articles
            );
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, role, name },
        } => {
            let password = read_password()?;
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            let accounts = AccountService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                core.settings.auth.clone(),
            )?;
            let role = match role {
                PrivilegedRole::Editor => Role::Editor,
                PrivilegedRole::Admin => Role::Admin,
            };
            let account = accounts
                .create_privileged(&email, &name, password, role)
                .await
                .map_err(describe)?;
            println!(
                "created {} {} ({})",
                account.role, account.email, account.id
            );
            Ok(())
        }
    }
}

fn describe(error: crate::accounts::AccountError) -> anyhow::Error {
    match error {
        crate::accounts::AccountError::Invalid(fields) => anyhow::anyhow!(
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

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
