//! Typed settings, loaded once: built-in defaults, then `config/default.toml`,
//! then `config/{MASTHEAD_ENV}.toml`, then `MASTHEAD__SECTION__KEY` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults ship inside the binary, so it runs from any working directory.
const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub auth: AuthSettings,
    pub worker: WorkerSettings,
    pub articles: ArticleSettings,
    pub trials: TrialSettings,
    pub newsletter: NewsletterSettings,
    pub digest: DigestSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DigestSettings {
    /// Whether the worker starts each day's run by itself at `send_at`.
    pub schedule: bool,
    pub send_at: TimeOfDay,
    pub timezone: Zone,
    /// What a run with no articles at all does.
    pub quiet_day: QuietDay,
    /// How far back the very first run looks, having no earlier cut-off.
    pub first_run_lookback_hours: i64,
    /// Deliveries claimed at once by a worker.
    pub batch_size: i64,
    /// Messages handed to the SMTP server at the same time; also the size
    /// of the digest's SMTP connection pool.
    pub concurrency: usize,
    /// Results written to the database at once, at most.
    pub record_batch: usize,
    /// Subscribers read at once when a run's deliveries are created.
    pub fanout_page: i64,
    pub max_attempts: i32,
    pub backoff_base_secs: i64,
    pub backoff_cap_secs: i64,
    /// A claimed delivery not reported back within this time is claimed again.
    pub lease_secs: i64,
    /// The delivery rows (who was sent what) of finished runs are deleted
    /// after this many days; each run keeps its counts.
    pub keep_deliveries_days: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QuietDay {
    /// Record the run as skipped and send nothing.
    Skip,
    /// Send every subscriber a short note that there was no news.
    Send,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TrialSettings {
    pub length_days: i64,
    /// The site promises a decision within this many hours.
    pub decision_hours: i64,
    pub reminder_days_before: i64,
    /// A decision can be taken back this long; its email waits as long.
    pub undo_minutes: i64,
    /// An account younger than this when it asks is flagged.
    pub new_account_minutes: i64,
    /// How far back "several requests from one company / address" looks.
    pub lookback_days: i64,
    /// When admins get the morning summary of the queue, local time.
    pub summary_at: TimeOfDay,
    pub timezone: Zone,
}

/// A wall-clock time written `HH:MM`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeOfDay(pub chrono::NaiveTime);

impl TryFrom<String> for TimeOfDay {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        chrono::NaiveTime::parse_from_str(&value, "%H:%M")
            .map(Self)
            .map_err(|_| format!("`{value}` is not a time of day like 07:00"))
    }
}

/// An IANA time zone such as `Europe/London`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(pub chrono_tz::Tz);

impl TryFrom<String> for Zone {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value
            .parse()
            .map(Self)
            .map_err(|_| format!("`{value}` is not an IANA time zone like Europe/London"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArticleSettings {
    /// Readers without access see whole paragraphs up to about this many
    /// characters.
    pub teaser_chars: usize,
    pub related_count: usize,
    pub per_page: i64,
    pub max_per_page: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub public_url: String,
    pub body_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    pub workers: usize,
}

impl ServerSettings {
    /// Cookies carry `Secure` whenever the public site is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn public_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    pub busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub outbox_dir: PathBuf,
    pub from: String,
    pub newsletter_from: String,
    pub reply_to: Option<String>,
    pub site_name: String,
    /// Where readers write about subscriptions for several people, and to
    /// ask whether their company already has one.
    pub sales_email: String,
    /// A folder whose templates replace the built-in ones.
    pub templates_dir: Option<PathBuf>,
    pub smtp: SmtpSettings,
    /// Signs digest mail when set.
    pub dkim: Option<DkimSettings>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    pub algorithm: DkimAlgorithm,
    /// RSA: a PKCS#1 PEM; Ed25519: the base64 of the 32-byte seed.
    pub private_key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub pool_size: u32,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The key that signs links; when unset, one is generated into
    /// `secret_file` on first start and read from there afterwards.
    pub secret: Option<SecretString>,
    pub secret_file: PathBuf,
    pub session_ttl_hours: i64,
    pub verification_ttl_hours: i64,
    pub reset_ttl_minutes: i64,
    /// At most one "you already have an account" or reset email per address
    /// per this many minutes.
    pub repeat_mail_minutes: i64,
    pub argon2: Argon2Settings,
    pub login_limit: LoginLimitSettings,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once; unset means one per core. Every
    /// hash holds `memory_kib`, so this bounds the memory password work can
    /// take. 0 admits none (every login answers 503): for tests only.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// How long a request waits for a hashing slot before it is answered
    /// 503 with `Retry-After`.
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LoginLimitSettings {
    pub per_ip: u32,
    pub per_account: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub enabled: bool,
    pub poll_interval_ms: u64,
    pub batch_size: i64,
    pub concurrency: usize,
    pub max_attempts: i32,
    pub backoff_base_secs: i64,
    pub backoff_cap_secs: i64,
    pub lease_secs: i64,
}

impl WorkerSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewsletterSettings {
    /// The consent wording shown beside the sign-up form; each sign-up
    /// stores the text it was given under.
    pub consent_text: String,
    pub confirmation_ttl_hours: i64,
    /// A pending address gets at most one confirmation email per interval.
    pub resend_interval_minutes: i64,
    /// Sign-ups not confirmed within this time are deleted by the worker.
    pub unconfirmed_max_age_hours: i64,
    /// How long the preference and unsubscribe links in a newsletter email work.
    pub link_ttl_days: i64,
    /// The `List-Id` header of newsletter mail.
    pub list_id: String,
    /// The `mailto:` half of `List-Unsubscribe`.
    pub unsubscribe_mailto: String,
    /// When set, `POST /api/v1/admin/bounces` also accepts
    /// `Authorization: Bearer <this>`, for an MTA hook without a session.
    pub bounce_hook_token: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl Settings {
    /// Loads settings the way the binary does: the folder from
    /// `MASTHEAD_CONFIG_DIR` (default `config`), the layer from `MASTHEAD_ENV`
    /// (default `local`).
    pub fn load() -> anyhow::Result<Self> {
        let dir = std::env::var("MASTHEAD_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let env = std::env::var("MASTHEAD_ENV").unwrap_or_else(|_| "local".into());
        Self::load_from(Path::new(&dir), &env)
    }

    pub fn load_from(dir: &Path, env: &str) -> anyhow::Result<Self> {
        let settings = config::Config::builder()
            .add_source(config::File::from_str(
                BUILT_IN_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false))
            .add_source(
                config::Environment::with_prefix("MASTHEAD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .context("reading configuration")?;
        settings
            .try_deserialize()
            .context("configuration has an invalid value")
    }
}
