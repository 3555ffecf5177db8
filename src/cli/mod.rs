//! The command line: serve, worker, migrate, digest, admin, import, export.

pub mod demo;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::accounts::AccountService;
use crate::accounts::Role;
use crate::app::Application;
use crate::digest::store::Outcome;
use crate::digest::DigestSender;
use crate::digest::DigestService;
use crate::flows::bounce::{Ingested, Ingester};
use crate::jobs::Worker;
use crate::newsletter::import::{
    ImportProgress, ImportReport, ImportWatch, SubscriberImport, SuppressionImport, UpdateField,
};
use crate::newsletter::SuppressionReason;
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::platform::db;
use crate::state::{AppState, Core};

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
    /// The daily digest: send a date's run in the foreground, or preview it.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Sample content for trying masthead out.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Bring a list over from a CSV file (see the README for the columns
    /// and the exports of other systems it reads).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Mail that comes back: bounces and complaints.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Write a list as CSV, in the columns the import reads.
    Export {
        #[arg(value_enum)]
        list: ExportList,
        /// The file to write; standard output when left out.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Read one message on standard input, as Postfix's `pipe` transport
    /// or a `.forward` gives it: a delivery status notification becomes a
    /// hard or soft bounce, a feedback report (ARF) a complaint, and
    /// anything else is ignored. Exits 75 (try again later) only when the
    /// database cannot be reached.
    Ingest {
        /// The address the message was delivered to (Postfix:
        /// `${recipient}`), to find the VERP return path by.
        #[arg(long)]
        recipient: Option<String>,
    },
}

/// The most of a message `mail ingest` reads: reports are small, and the
/// parts that matter come first.
const INGEST_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// sysexits' EX_TEMPFAIL: the mail system keeps the message and retries.
const EX_TEMPFAIL: u8 = 75;

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Subscribers, with the consent recorded for them. An import that was
    /// stopped carries on from its last committed row when run again on
    /// the same file.
    Subscribers {
        file: PathBuf,
        /// Report what would happen without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Send a confirmation link to each new subscriber whose
        /// confirmation the file does not record (they stay pending and
        /// unmailed otherwise).
        #[arg(long)]
        send_confirmations: bool,
        /// How many of those links go out per hour.
        #[arg(long, default_value_t = 600)]
        confirmations_per_hour: u32,
        /// What changes on subscribers already on the list, separated by
        /// commas; nothing else does.
        #[arg(long, value_enum, value_delimiter = ',')]
        update: Vec<UpdateArg>,
    },
    /// A suppression list: addresses, or the hashes a masthead export
    /// writes, each with its reason.
    Suppressions {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        /// The reason of rows that give none.
        #[arg(long, value_enum, default_value = "unsubscribed")]
        reason: ReasonArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum UpdateArg {
    Sections,
    Name,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReasonArg {
    Unsubscribed,
    HardBounce,
    Complaint,
    Erased,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportList {
    Subscribers,
    Suppressions,
    Readers,
}

#[derive(Debug, Subcommand)]
enum DigestCommand {
    /// Run the digest of a date (YYYY-MM-DD) now, or resume it, showing
    /// progress; returns when every delivery is sent or has failed.
    Send {
        #[arg(long)]
        date: String,
    },
    /// Write the digest of a date as an HTML and a text file.
    Preview {
        #[arg(long)]
        date: String,
        /// Section slugs, separated by commas (all sections when left out).
        #[arg(long, value_delimiter = ',')]
        sections: Vec<String>,
        /// Where the files go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
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
    let failure = match cli.command {
        Command::Mail { .. } => ExitCode::from(EX_TEMPFAIL),
        _ => ExitCode::FAILURE,
    };
    let result = Settings::load().and_then(|settings| {
        crate::platform::telemetry::init(&settings.log);
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .max_blocking_threads(crate::app::blocking_threads(&settings.database))
            .build()
            .context("starting the async runtime")?
            .block_on(run(cli.command, settings))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            failure
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
        Command::Digest {
            command: DigestCommand::Send { date },
        } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            send_digest(&core, &date).await
        }
        Command::Digest {
            command:
                DigestCommand::Preview {
                    date,
                    sections,
                    out,
                },
        } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            let service = DigestService::new(&core);
            let sections = (!sections.is_empty()).then_some(sections);
            let preview = service
                .render_preview(&date, sections)
                .await
                .map_err(describe_digest)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let html = out.join(format!("digest-{}.html", preview.date));
            let text = out.join(format!("digest-{}.txt", preview.date));
            std::fs::write(&html, &preview.html)
                .with_context(|| format!("writing {}", html.display()))?;
            std::fs::write(&text, &preview.text)
                .with_context(|| format!("writing {}", text.display()))?;
            println!(
                "{} articles in {} ({}), subject: {}",
                preview.articles,
                preview.sections.join(", "),
                preview.date,
                preview.subject
            );
            println!("wrote {}", html.display());
            println!("wrote {}", text.display());
            Ok(())
        }
        Command::Demo {
            command: DemoCommand::Seed,
        } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            let seeded = crate::cli::demo::seed(&core).await?;
            println!(
                "added {} sections and {} articles",
                seeded.sections, seeded.articles
            );
            Ok(())
        }
        Command::Import { command } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            import(&core, command).await
        }
        Command::Mail {
            command: MailCommand::Ingest { recipient },
        } => {
            use std::io::Read;
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
            let ingested = ingester.ingest(raw, recipient).await?;
            match ingested {
                Ingested::Ignored(why) => println!("ignored: {why}"),
                Ingested::Reported(events) => {
                    for event in events {
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
                }
            }
            Ok(())
        }
        Command::Export { list, output } => {
            let core = Core::start(settings, Arc::new(SystemClock)).await?;
            export(&core, list, output).await
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
                Arc::clone(&core.abuse),
                Arc::clone(&core.sessions),
                Arc::new(crate::newsletter::tx::account_registered),
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
    }
}

/// Runs (or resumes) one date's digest in the foreground with a progress bar.
async fn send_digest(core: &Core, date: &str) -> anyhow::Result<()> {
    let service = DigestService::new(core);
    let sender = DigestSender::new(&core.base, Arc::clone(&core.links))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} · {per_sec} · eta {eta}")
            .context("progress bar template")?,
    );
    // Ctrl-C or SIGTERM: the messages in flight are finished, those claimed
    // but not tried are given back, so running the command again carries on
    // at once and nobody is mailed twice.
    let (stop_tx, stop) = watch::channel(false);
    let listener = tokio::spawn({
        let bar = bar.clone();
        async move {
            shutdown_signal().await;
            bar.println("stopping: finishing the messages in flight");
            let _ = stop_tx.send(true);
        }
    });
    let started = std::time::Instant::now();
    let date = crate::digest::service::parse_date(date).map_err(describe_digest)?;
    bar.set_message("creating the deliveries");
    let run = service
        .start_or_resume(date)
        .await
        .map_err(describe_digest)?;
    let prepared = started.elapsed();
    let view = service.run_view(run.id).await.map_err(describe_digest)?;
    bar.set_length(u64::try_from(view.counts.total()).unwrap_or(0));
    bar.set_position(u64::try_from(view.counts.total() - view.counts.pending).unwrap_or(0));
    let (sent, failed) = (
        std::sync::atomic::AtomicI64::new(view.counts.sent),
        std::sync::atomic::AtomicI64::new(view.counts.failed),
    );
    let total = view.counts.total();
    let skipped = view.counts.skipped;
    let sending = std::time::Instant::now();
    let mut sent_now = 0usize;
    let show = |outcome: &Outcome| {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Outcome::Sent => {
                sent.fetch_add(1, Relaxed);
            }
            Outcome::Failed { .. } => {
                failed.fetch_add(1, Relaxed);
            }
            Outcome::Skipped | Outcome::RetryAt { .. } => {}
        }
        if !matches!(outcome, Outcome::RetryAt { .. }) {
            bar.inc(1);
        }
        let (s, f) = (sent.load(Relaxed), failed.load(Relaxed));
        bar.set_message(format!(
            "sent {s} · failed {f} · remaining {}",
            total - s - f - skipped
        ));
    };
    loop {
        let report = sender
            .deliver(Some(run.id), Some(&stop), &show)
            .await
            .map_err(describe_digest)?;
        sent_now += report.sent;
        let now = service.run_view(run.id).await.map_err(describe_digest)?;
        if now.counts.pending == 0 || *stop.borrow() {
            break;
        }
        // What is left waits for a retry, or for another worker's lease to
        // run out.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    listener.abort();
    let interrupted = *stop.borrow();
    if interrupted {
        bar.abandon();
    } else {
        bar.finish();
    }
    let view = service.run_view(run.id).await.map_err(describe_digest)?;
    let seconds = sending.elapsed().as_secs_f64();
    println!(
        "digest {}: {:?}; sent {}, failed {}, skipped {}; this run sent {} in {:.2} s ({:.0} msg/s), prepared in {:.2} s",
        view.date,
        view.state,
        view.counts.sent,
        view.counts.failed,
        view.counts.skipped,
        sent_now,
        seconds,
        sent_now as f64 / seconds.max(f64::EPSILON),
        prepared.as_secs_f64()
    );
    if interrupted {
        anyhow::bail!(
            "interrupted with {} deliveries left; `masthead digest send --date {}` carries on",
            view.counts.pending,
            view.date
        );
    }
    Ok(())
}

async fn import(core: &Core, command: ImportCommand) -> anyhow::Result<()> {
    let state = AppState::new(core)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg} · {per_sec} · eta {eta}")
            .context("progress bar template")?,
    );
    // Ctrl-C or SIGTERM: the batch in hand is committed, and the same
    // command carries on from there.
    let (stop_tx, stop) = watch::channel(false);
    let listener = tokio::spawn({
        let bar = bar.clone();
        async move {
            shutdown_signal().await;
            bar.println("stopping after the batch in hand");
            let _ = stop_tx.send(true);
        }
    });
    let watch = ImportWatch {
        progress: Box::new({
            let bar = bar.clone();
            move |p: &ImportProgress| {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(format!(
                    "· new {} · updated {} · invalid {} · suppressed {}",
                    p.counts.new, p.counts.updated, p.counts.invalid, p.counts.suppressed
                ));
            }
        }),
        stop: Some(stop),
    };
    let (file, report) = match command {
        ImportCommand::Subscribers {
            file,
            dry_run,
            send_confirmations,
            confirmations_per_hour,
            update,
        } => {
            let options = SubscriberImport {
                dry_run,
                send_confirmations,
                confirmations_per_hour,
                update: update
                    .into_iter()
                    .map(|u| match u {
                        UpdateArg::Sections => UpdateField::Sections,
                        UpdateArg::Name => UpdateField::Name,
                    })
                    .collect(),
            };
            let report = state
                .newsletter
                .import_subscribers(file.clone(), options, watch)
                .await;
            (file, report)
        }
        ImportCommand::Suppressions {
            file,
            dry_run,
            reason,
        } => {
            let reason = match reason {
                ReasonArg::Unsubscribed => SuppressionReason::Unsubscribed,
                ReasonArg::HardBounce => SuppressionReason::HardBounce,
                ReasonArg::Complaint => SuppressionReason::Complaint,
                ReasonArg::Erased => SuppressionReason::Erased,
            };
            let options = SuppressionImport { dry_run, reason };
            let report = state
                .newsletter
                .import_suppressions(file.clone(), options, watch)
                .await;
            (file, report)
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

async fn export(core: &Core, list: ExportList, output: Option<PathBuf>) -> anyhow::Result<()> {
    let state = AppState::new(core)?;
    let out: Box<dyn std::io::Write + Send> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let written = match list {
        ExportList::Subscribers => state.newsletter.export_subscribers(out).await,
        ExportList::Suppressions => state.newsletter.export_suppressions(out).await,
        ExportList::Readers => state.accounts.export_readers(out).await,
    }?;
    eprintln!(
        "exported {written} rows{}",
        output
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

fn describe_digest(error: crate::digest::DigestError) -> anyhow::Error {
    match error {
        crate::digest::DigestError::Invalid(fields) => anyhow::anyhow!(
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
