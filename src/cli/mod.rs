//! The command line: serve, worker, migrate, digest, admin, import, export.
//! The arguments are defined here; each command runs in its own file.

pub mod admin;
pub mod demo;
pub mod digest;
pub mod export;
pub mod import;
pub mod mail;
pub mod migrate;
pub mod serve;
pub mod shutdown;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::accounts::Role;
use crate::cli::import::Import;
use crate::newsletter::import::{SubscriberImport, SuppressionImport, UpdateField};
use crate::newsletter::SuppressionReason;
use crate::platform::config::Settings;

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
        Command::Serve => serve::run(settings).await,
        Command::Worker => worker::run(settings).await,
        Command::Migrate => migrate::run(settings).await,
        Command::Digest {
            command: DigestCommand::Send { date },
        } => digest::send(settings, &date).await,
        Command::Digest {
            command:
                DigestCommand::Preview {
                    date,
                    sections,
                    out,
                },
        } => digest::preview(settings, &date, sections, &out).await,
        Command::Demo {
            command: DemoCommand::Seed,
        } => demo::run(settings).await,
        Command::Import { command } => {
            let (file, import) = command.into_import();
            import::run(settings, file, import).await
        }
        Command::Mail {
            command: MailCommand::Ingest { recipient },
        } => mail::ingest(settings, recipient).await,
        Command::Export { list, output } => export::run(settings, list.into(), output).await,
        Command::Admin {
            command: AdminCommand::Create { email, role, name },
        } => admin::create(settings, &email, &name, role.into()).await,
    }
}

impl ImportCommand {
    /// The file to read, and what to read it as.
    fn into_import(self) -> (PathBuf, Import) {
        match self {
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
                    update: update.into_iter().map(UpdateField::from).collect(),
                };
                (file, Import::Subscribers(options))
            }
            ImportCommand::Suppressions {
                file,
                dry_run,
                reason,
            } => {
                let options = SuppressionImport {
                    dry_run,
                    reason: reason.into(),
                };
                (file, Import::Suppressions(options))
            }
        }
    }
}

impl From<UpdateArg> for UpdateField {
    fn from(arg: UpdateArg) -> Self {
        match arg {
            UpdateArg::Sections => UpdateField::Sections,
            UpdateArg::Name => UpdateField::Name,
        }
    }
}

impl From<ReasonArg> for SuppressionReason {
    fn from(arg: ReasonArg) -> Self {
        match arg {
            ReasonArg::Unsubscribed => SuppressionReason::Unsubscribed,
            ReasonArg::HardBounce => SuppressionReason::HardBounce,
            ReasonArg::Complaint => SuppressionReason::Complaint,
            ReasonArg::Erased => SuppressionReason::Erased,
        }
    }
}

impl From<ExportList> for export::List {
    fn from(list: ExportList) -> Self {
        match list {
            ExportList::Subscribers => export::List::Subscribers,
            ExportList::Suppressions => export::List::Suppressions,
            ExportList::Readers => export::List::Readers,
        }
    }
}

impl From<PrivilegedRole> for Role {
    fn from(role: PrivilegedRole) -> Self {
        match role {
            PrivilegedRole::Editor => Role::Editor,
            PrivilegedRole::Admin => Role::Admin,
        }
    }
}
