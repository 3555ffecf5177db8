//! Typed settings, loaded once: built-in defaults, then `config/default.toml`,
//! then `config/{MASTHEAD_ENV}.toml`, then `MASTHEAD__SECTION__KEY` variables.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults ship inside the binary, so it runs from any working directory.
const BUILT_IN_DEFAULTS: &str = include_str!("../../config/default.toml");

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
    pub abuse: AbuseSettings,
    pub log: LogSettings,
}

/// How often the anonymous forms may be used, counted in this process.
#[derive(Debug, Clone, Deserialize)]
pub struct AbuseSettings {
    /// Unasked-for messages these forms may cause to one address in any
    /// 24 hours; past it the forms answer as usual and send nothing.
    pub mails_per_address_per_day: u32,
    pub registration: FormLimit,
    pub newsletter: FormLimit,
    pub password_reset: FormLimit,
    pub company_access: FormLimit,
    pub inquiry: FormLimit,
    pub trial: FormLimit,
    pub login: FormLimit,
    pub token_guesses: GuessLimit,
}

/// Wrong tokens (a password-reset or verification link that matches
/// nothing) allowed from one client address per window.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct GuessLimit {
    pub per_ip: u32,
    pub window_secs: u64,
}

/// Submissions of one form allowed per window, from one client address
/// (an IPv6 client's whole /64) and about one email address.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FormLimit {
    pub per_ip: u32,
    pub per_address: u32,
    pub window_secs: u64,
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
    /// PostgreSQL only: a search statement running longer is cancelled and
    /// answered 503 with `Retry-After`.
    pub search_timeout_ms: u64,
    /// How long published listings and articles are served from memory
    /// before the database is asked whether another instance changed them.
    pub cache_recheck_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub public_url: String,
    pub body_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    pub workers: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed: the client is
    /// the rightmost hop not in this list, and only when the connection
    /// itself comes from one of them.
    #[serde(default)]
    pub trusted_proxies: Vec<IpRange>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    #[serde(default)]
    pub metrics_token: Option<String>,
}

/// An address or a CIDR range (`10.0.0.0/8`, `fd00::/8`) written in the
/// settings. Our own few lines rather than a crate: only matching is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client reached over an IPv6 socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether `a` and `b`, numbers `bits` wide, agree in their first `prefix` bits.
fn masked(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={bits}"))?,
        };
        Ok(Self { network, prefix })
    }
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
    /// Signs every outgoing message when set.
    pub dkim: Option<DkimSettings>,
    /// The domain of the return paths (`bounces+…@domain`); unset, the
    /// sender's own domain.
    #[serde(default)]
    pub bounce_domain: Option<String>,
    /// Sent messages (their bodies already blanked) are deleted after this
    /// many days.
    pub keep_sent_days: u32,
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
    /// Live sessions and what their readers may read are kept in memory; a
    /// change made through another instance is seen within this long.
    pub session_recheck_ms: u64,
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
    /// Soft bounces on this many different days in a row suppress the
    /// address, as a hard bounce does at once.
    pub soft_bounce_limit: u32,
    /// Mailgun's webhook signing key: turns on `POST /api/v1/webhooks/mailgun`.
    #[serde(default)]
    pub mailgun_signing_key: Option<SecretString>,
    /// The credential Postmark's webhook sends: turns on
    /// `POST /api/v1/webhooks/postmark`.
    #[serde(default)]
    pub postmark_webhook_token: Option<SecretString>,
    /// SendGrid's signed event webhook verification key (base64 DER, as
    /// SendGrid shows it): turns on `POST /api/v1/webhooks/sendgrid`.
    #[serde(default)]
    pub sendgrid_verification_key: Option<String>,
    /// The SNS topic that carries SES's bounce and complaint notifications:
    /// with `ses_signing_cert`, turns on `POST /api/v1/webhooks/ses`.
    #[serde(default)]
    pub ses_topic_arn: Option<String>,
    /// A PEM file of SNS's signing certificate.
    #[serde(default)]
    pub ses_signing_cert: Option<PathBuf>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> IpRange {
        s.parse().expect("a range")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn cidr_ranges_match_their_prefix() {
        assert!(range("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range("192.168.1.0/24").contains(ip("192.168.1.255")));
        assert!(!range("192.168.1.0/24").contains(ip("192.168.2.0")));
        assert!(range("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!range("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(range("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(range("fd00::/8").contains(ip("fd12:3456::1")));
        assert!(!range("fd00::/8").contains(ip("fe80::1")));
        assert!(range("::/0").contains(ip("2001:db8::1")));
        // An IPv4 peer seen through an IPv6 socket.
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!range("10.0.0.0/8").contains(ip("2001:db8::1")));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "proxy",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad} accepted");
        }
    }
}
