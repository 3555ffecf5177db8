//! The test harness: the real application on a random port, a fresh database
//! per test (SQLite, or PostgreSQL when MASTHEAD_TEST_POSTGRES_URL is set),
//! and a real SMTP server that receives what the worker sends.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::Utc;
use diesel::{Connection, PgConnection, RunQueryDsl};
use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use masthead::app::Application;
use masthead::newsletter::model::NewSubscriber;
use masthead::newsletter::Sections;
use masthead::newsletter::SubscriberId;
use masthead::newsletter::SubscriberStatus;
use masthead::platform::clock::{ManualClock, SharedClock};
use masthead::platform::config::Settings;
use masthead::platform::db::Pool;
use masthead::platform::domain::EmailAddress;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// How long a test waits for something that happens in the background.
const PATIENCE: Duration = Duration::from_secs(15);

/// The connections of `TestApp::pool()`: enough for a test that holds one
/// while a helper looks too.
const INSPECTION_CONNECTIONS: u32 = 3;

pub const PASSWORD: &str = "correct horse battery staple";

/// Log lines written while a `LogCapture` is open, from every test of the
/// process: a capture looks for what must never appear, so lines of other
/// tests do no harm.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static CAPTURES_OPEN: AtomicUsize = AtomicUsize::new(0);

struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Tracing for the whole test process, installed once: with `TEST_LOG`,
/// the application's own terminal format on stdout; and while a capture is
/// open, every line at `info` in both of the application's formats, plus
/// each span as it closes with all its fields (more than production
/// writes, so that nothing it writes escapes a capture).
fn init_logs() {
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let stdout = std::env::var_os("TEST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_filter(LevelFilter::DEBUG)
        });
        let capturing = || {
            filter_fn(|m| {
                m.level() <= &tracing::Level::INFO && CAPTURES_OPEN.load(Ordering::SeqCst) > 0
            })
        };
        let pretty = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(|| CaptureWriter)
            .with_filter(capturing());
        let json = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(|| CaptureWriter)
            .with_filter(capturing());
        let _ = tracing_subscriber::registry()
            .with(stdout)
            .with(pretty)
            .with(json)
            .try_init();
    });
}

/// What the application logs from now until it is dropped.
pub struct LogCapture {
    from: usize,
}

impl LogCapture {
    pub fn start() -> Self {
        init_logs();
        let from = CAPTURED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        CAPTURES_OPEN.fetch_add(1, Ordering::SeqCst);
        Self { from }
    }

    pub fn text(&self) -> String {
        let captured = CAPTURED.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&captured[self.from..]).into_owned()
    }
}

impl Drop for LogCapture {
    /// A failing test shows the warnings and errors logged meanwhile (by
    /// any test of the process): a failure that depends on timing is
    /// seldom seen twice.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let warnings: Vec<String> = self
                .text()
                .lines()
                .filter(|line| !line.starts_with('{'))
                .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
                .map(str::to_owned)
                .collect();
            eprintln!("logged while the test ran:\n{}", warnings.join("\n"));
        }
        CAPTURES_OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One email as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    /// The envelope sender (`MAIL FROM`).
    pub sender: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

impl ReceivedEmail {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    fn part(&self, mime: &str) -> String {
        let parsed = self.parsed();
        let mut stack = vec![&parsed];
        while let Some(part) = stack.pop() {
            if part.ctype.mimetype == mime {
                return part.get_body().expect("a decodable body");
            }
            stack.extend(part.subparts.iter());
        }
        panic!("no {mime} part in {}", String::from_utf8_lossy(&self.raw));
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The first link in the text part that contains `needle`.
    pub fn link_containing(&self, needle: &str) -> String {
        let text = self.text();
        text.split_whitespace()
            .find(|word| word.starts_with("http") && word.contains(needle))
            .unwrap_or_else(|| panic!("no link with {needle:?} in:\n{text}"))
            .to_owned()
    }

    /// The `token` query parameter of the first link that has one.
    pub fn token(&self) -> String {
        let link = self.link_containing("token=");
        link.split("token=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .expect("a token value")
            .to_owned()
    }
}

#[derive(Clone)]
struct Collector {
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    sender: String,
    recipients: Vec<String>,
    data: Vec<u8>,
    /// How often each `busy…` address has been refused so far.
    refusals: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    /// How long the server takes to accept a message.
    delay: Arc<Mutex<Duration>>,
}

/// A `busy…` address is refused with 451 this many times, then accepted.
pub const BUSY_REFUSALS: usize = 2;

impl Handler for Collector {
    fn rcpt(&mut self, to: &str) -> Response {
        // Lets a test see a permanent refusal.
        if to.starts_with("bounce") {
            return response::NO_MAILBOX;
        }
        // And a temporary one that passes.
        if to.starts_with("busy") {
            let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
            let count = refusals.entry(to.to_owned()).or_default();
            if *count < BUSY_REFUSALS {
                *count += 1;
                return Response::custom(451, "4.3.0 try again later".to_owned());
            }
        }
        response::OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.sender = from.to_owned();
        self.recipients = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let delay = *self.delay.lock().unwrap_or_else(PoisonError::into_inner);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ReceivedEmail {
                sender: std::mem::take(&mut self.sender),
                recipients: std::mem::take(&mut self.recipients),
                raw: std::mem::take(&mut self.data),
            });
        response::OK
    }
}

/// A real SMTP server (mailin-embedded) on a loopback port.
#[derive(Clone)]
pub struct Mailbox {
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    delay: Arc<Mutex<Duration>>,
}

impl Mailbox {
    pub fn start() -> (Self, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        (Self::serve(listener), port)
    }

    /// Starts the server on a port chosen earlier (the port was free a
    /// moment ago; binding is retried briefly).
    pub fn start_on(port: u16) -> Self {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => return Self::serve(listener),
                Err(e) if std::time::Instant::now() > deadline => panic!("port {port}: {e}"),
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    fn serve(listener: TcpListener) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let mut server = Server::new(Collector {
            received: Arc::clone(&received),
            sender: String::new(),
            recipients: Vec::new(),
            data: Vec::new(),
            refusals: Arc::default(),
            delay: Arc::clone(&delay),
        });
        server
            .with_name("mail.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_num_threads(16)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        Self { received, delay }
    }

    /// Makes the server take `delay` to accept each message, as a slow
    /// receiving server would.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner) = delay;
    }

    pub fn all(&self) -> Vec<ReceivedEmail> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn to(&self, address: &str) -> Vec<ReceivedEmail> {
        self.all()
            .into_iter()
            .filter(|m| m.recipients.iter().any(|r| r == address))
            .collect()
    }

    /// Waits until `address` has received `count` messages; returns them.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<ReceivedEmail> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let messages = self.to(address);
            if messages.len() >= count {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{address} received {} of {count} messages",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for a message to `address` whose subject contains `needle`.
    pub async fn with_subject(&self, address: &str, needle: &str) -> ReceivedEmail {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self
                .to(address)
                .into_iter()
                .find(|m| m.subject().contains(needle))
            {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{address} received no message about {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last message to `address`, once at least `count` have arrived.
    pub async fn nth(&self, address: &str, count: usize) -> ReceivedEmail {
        self.wait_for(address, count)
            .await
            .into_iter()
            .nth(count - 1)
            .expect("the message")
    }
}

/// A throw-away database, dropped with the test.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        url: String,
        name: String,
    },
}

impl TestDb {
    pub fn create() -> Self {
        match std::env::var("MASTHEAD_TEST_POSTGRES_URL") {
            Ok(admin_url) => {
                let name = format!("masthead_test_{}", uuid::Uuid::new_v4().simple());
                let template = postgres_template(&admin_url);
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("connecting to {admin_url}: {e}"));
                // Copying is refused while another copy of the same template
                // is being made.
                static COPYING: Mutex<()> = Mutex::new(());
                let _one_at_a_time = COPYING.lock().unwrap_or_else(PoisonError::into_inner);
                diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                    .execute(&mut admin)
                    .expect("creating the test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .expect("a URL with a database name");
                Self::Postgres {
                    url: format!("{base}/{name}"),
                    admin_url,
                    name,
                }
            }
            Err(_) => Self::Sqlite(tempfile::tempdir().expect("a temporary folder")),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("masthead.db").display()),
            Self::Postgres { url, .. } => url.clone(),
        }
    }
}

/// A migrated database that each test's database is copied from, so tests
/// skip the migrations. It is named after the migrations' contents: a run
/// reuses it until they change, then replaces it.
fn postgres_template(admin_url: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use diesel::sql_types::{Bool, Text};
        #[derive(diesel::QueryableByName)]
        struct Exists {
            #[diesel(sql_type = Bool)]
            exists: bool,
        }
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            datname: String,
        }
        let name = format!("masthead_template_{}", migrations_digest());
        let mut admin = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("connecting to {admin_url}: {e}"));
        diesel::sql_query("SELECT pg_advisory_lock(7253)")
            .execute(&mut admin)
            .expect("template lock");
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<Text, _>(&name)
        .get_result::<Exists>(&mut admin)
        .expect("looking for the template")
        .exists;
        if !exists {
            let stale: Vec<Name> = diesel::sql_query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'masthead_template_%'",
            )
            .load(&mut admin)
            .expect("listing old templates");
            for old in stale {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    old.datname
                ))
                .execute(&mut admin)
                .expect("dropping an old template");
            }
            let building = format!("{name}_building");
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut admin)
                .expect("creating the template");
            let base = admin_url
                .rsplit_once('/')
                .map(|(base, _)| base)
                .expect("a URL with a database name");
            {
                let conn = PgConnection::establish(&format!("{base}/{building}"))
                    .expect("connecting to the template");
                let mut conn = masthead::platform::db::DbConnection::Postgres(conn);
                masthead::platform::db::migrate(&mut conn).expect("migrating the template");
            }
            // Renamed only once complete, so no test copies a half-built one.
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut admin)
                .expect("publishing the template");
        }
        diesel::sql_query("SELECT pg_advisory_unlock(7253)")
            .execute(&mut admin)
            .expect("template unlock");
        name
    })
}

fn migrations_digest() -> String {
    use sha2::{Digest, Sha256};
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("migrations folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new("migrations/postgres"), &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("a migration"));
    }
    hex::encode(&hasher.finalize()[..6])
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// For tests of other rules that post one form about one address more
/// often than a real site allows: the submission limits (`[abuse.<form>]`)
/// stop counting. The daily mail cap stays.
pub fn without_form_limits(settings: &mut Settings) {
    let abuse = &mut settings.abuse;
    for limit in [
        &mut abuse.registration,
        &mut abuse.newsletter,
        &mut abuse.password_reset,
        &mut abuse.company_access,
        &mut abuse.inquiry,
        &mut abuse.trial,
        &mut abuse.login,
    ] {
        limit.per_ip = u32::MAX;
        limit.per_address = u32::MAX;
    }
}

pub fn test_settings(db: &TestDb, smtp_port: u16) -> Settings {
    let mut settings = Settings::load_from(Path::new("config"), "test").expect("test settings");
    settings.database.url = db.url().into();
    settings.mail.smtp.port = smtp_port;
    settings
}

fn address_in_use(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct TestApp {
    pub address: String,
    /// A client with its own cookie jar: a browser.
    pub api: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub mailbox: Mailbox,
    pub smtp_port: u16,
    pub settings: Settings,
    pub db: Arc<TestDb>,
    /// The pool `pool()` lends, opened on first use. A pool per call opened
    /// `database.pool_size` connections each time: with four tests at once
    /// on PostgreSQL the suite came near the server's 100 connections.
    inspection: OnceLock<Pool>,
    app: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_at(Utc::now(), tweak).await
    }

    /// Starts the application with its clock at `start`.
    pub async fn spawn_at(start: chrono::DateTime<Utc>, tweak: impl FnOnce(&mut Settings)) -> Self {
        let (mailbox, smtp_port) = Mailbox::start();
        let db = Arc::new(TestDb::create());
        let clock = Arc::new(ManualClock::new(start));
        let mut settings = test_settings(&db, smtp_port);
        // Links in mail point at this instance, so a test can follow them.
        let port = free_port();
        settings.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        settings.server.public_url = format!("http://127.0.0.1:{port}");
        tweak(&mut settings);
        // The port was free when it was picked; another test may have taken
        // it since. Then the application gets another one.
        for _ in 1..5 {
            let launched = Self::try_launch(
                settings.clone(),
                Arc::clone(&db),
                Arc::clone(&clock),
                mailbox.clone(),
                smtp_port,
            )
            .await;
            match launched {
                Err(error) if address_in_use(&error) => {
                    let (old, new) = (settings.server.bind.port(), free_port());
                    settings.server.bind.set_port(new);
                    if settings.server.public_url == format!("http://127.0.0.1:{old}") {
                        settings.server.public_url = format!("http://127.0.0.1:{new}");
                    }
                }
                launched => return launched.expect("the application starts"),
            }
        }
        Self::launch(settings, db, clock, mailbox, smtp_port).await
    }

    async fn launch(
        settings: Settings,
        db: Arc<TestDb>,
        clock: Arc<ManualClock>,
        mailbox: Mailbox,
        smtp_port: u16,
    ) -> Self {
        Self::try_launch(settings, db, clock, mailbox, smtp_port)
            .await
            .expect("the application starts")
    }

    async fn try_launch(
        settings: Settings,
        db: Arc<TestDb>,
        clock: Arc<ManualClock>,
        mailbox: Mailbox,
        smtp_port: u16,
    ) -> anyhow::Result<Self> {
        init_logs();
        let shared: SharedClock = clock.clone();
        let app = Application::build_with_clock(settings.clone(), shared).await?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(Self {
            address,
            api: Self::browser(),
            clock,
            mailbox,
            smtp_port,
            settings,
            db,
            inspection: OnceLock::new(),
            app: Some(task),
            handle,
        })
    }

    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            // The server closes a connection after five idle seconds; a test
            // that waits on mail for about that long would otherwise send its
            // next request down a connection the server is closing at that
            // moment (hyper's IncompleteMessage).
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("an HTTP client")
    }

    /// Stops this instance and starts another on the same database, mail
    /// server and clock, as a restarted process would.
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Settings)) -> Self {
        self.stop().await;
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        Self::launch(
            settings,
            Arc::clone(&self.db),
            Arc::clone(&self.clock),
            self.mailbox.clone(),
            self.smtp_port,
        )
        .await
    }

    /// A second instance on the same database, mail server and clock, as
    /// another process would run beside this one.
    pub async fn another_instance(&self, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.settings.clone();
        settings.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        tweak(&mut settings);
        Self::launch(
            settings,
            Arc::clone(&self.db),
            Arc::clone(&self.clock),
            self.mailbox.clone(),
            self.smtp_port,
        )
        .await
    }

    /// Moves the application's clock to `at`.
    pub fn set_time(&self, at: chrono::DateTime<Utc>) {
        self.clock.advance(at - self.now());
    }

    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.app.take() {
            task.await.expect("app task").expect("clean shutdown");
        }
    }

    /// The application's time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use masthead::platform::clock::Clock;
        self.clock.now()
    }

    /// A pool on the test database, for looking at what is stored.
    pub fn pool(&self) -> Pool {
        self.inspection
            .get_or_init(|| {
                let mut settings = self.settings.database.clone();
                settings.pool_size = INSPECTION_CONNECTIONS;
                masthead::platform::db::connect(&settings).expect("a pool on the test database")
            })
            .clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A page as a browser gets it: status and HTML.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
        let response = self.get(client, path).await;
        let status = response.status();
        (status, response.text().await.expect("a page body"))
    }

    /// Fills in a form as a browser would: opens `page`, takes the form
    /// token it shows, and posts `fields` with it to `action`.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let (status, html) = self.page(client, page).await;
        assert!(status.is_success(), "{page} answered {status}:\n{html}");
        let token = form_token(&html);
        self.post_form(client, action, &token, fields).await
    }

    /// Posts a form with a given token, as a browser (same origin) does.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        action: &str,
        token: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut body: Vec<(&str, &str)> = vec![("csrf_token", token)];
        body.extend_from_slice(fields);
        client
            .post(self.url(action))
            .header("Origin", &self.address)
            .header("Sec-Fetch-Site", "same-origin")
            .form(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            &self.api,
            "/api/v1/accounts",
            json!({ "email": email, "password": password, "name": "Ada Lovelace", "company": "Analytical Engines Ltd" }),
        )
        .await
    }

    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post(
            client,
            "/api/v1/sessions",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers, follows the verification email, and logs in `client`.
    pub async fn verified_reader(&self, client: &reqwest::Client, email: &str) {
        assert_eq!(
            self.register(email, PASSWORD).await.status(),
            StatusCode::ACCEPTED
        );
        let token = self.mailbox.nth(email, 1).await.token();
        let verified = self
            .post(
                &self.api,
                "/api/v1/accounts/verify",
                json!({ "token": token }),
            )
            .await;
        assert_eq!(verified.status(), StatusCode::OK);
        assert_eq!(
            self.login_with(client, email, PASSWORD).await.status(),
            StatusCode::OK
        );
    }

    /// The `masthead` binary set up for this test's database and mail
    /// server.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_masthead"));
        command
            .args(args)
            .env("MASTHEAD_ENV", "test")
            .env("MASTHEAD__DATABASE__URL", self.db.url())
            .env("MASTHEAD__MAIL__SMTP__PORT", self.smtp_port.to_string())
            .env(
                "MASTHEAD__SERVER__PUBLIC_URL",
                &self.settings.server.public_url,
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// Runs the `masthead` binary against this test's database.
    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .spawn()
            .expect("the masthead binary runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writing stdin");
        child.wait_with_output().expect("the binary finishes")
    }

    /// Creates an account with `role` through the command line and logs
    /// `client` in as it.
    pub async fn privileged(&self, client: &reqwest::Client, email: &str, role: &str) {
        let out = self.cli(
            &[
                "admin",
                "create",
                "--email",
                email,
                "--role",
                role,
                "--name",
                "Grace Hopper",
            ],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "admin create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            self.login_with(client, email, PASSWORD).await.status(),
            StatusCode::OK
        );
    }
}

/// The newsletter from the outside: sign-ups, and what is stored.
impl TestApp {
    pub async fn subscribe(&self, email: &str) -> reqwest::Response {
        self.post(
            &self.api,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": email }),
        )
        .await
    }

    /// Signs `email` up, follows the confirmation email, and returns the
    /// welcome email. `already` is how many messages the address had before.
    pub async fn confirmed_subscriber(&self, email: &str, already: usize) -> ReceivedEmail {
        assert_eq!(self.subscribe(email).await.status(), StatusCode::ACCEPTED);
        let token = self.mailbox.nth(email, already + 1).await.token();
        let confirmed = self
            .post(
                &TestApp::browser(),
                "/api/v1/newsletter/confirm",
                json!({ "token": token }),
            )
            .await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        self.mailbox.nth(email, already + 2).await
    }

    pub fn subscriber(&self, email: &str) -> Option<masthead::newsletter::Subscriber> {
        let email = masthead::platform::domain::EmailAddress::parse(email).expect("valid");
        let mut conn = self.pool().get().expect("conn");
        masthead::newsletter::store::find_by_email(&mut conn, &email).expect("query")
    }

    pub fn suppression(&self, email: &str) -> Option<masthead::newsletter::model::Suppression> {
        let email = masthead::platform::domain::EmailAddress::parse(email).expect("valid");
        let mut conn = self.pool().get().expect("conn");
        self.suppressions().of(&mut conn, &email).expect("query")
    }

    /// The suppression list under this instance's settings.
    pub fn suppressions(&self) -> masthead::platform::mail::suppression::SuppressionList {
        use masthead::platform::mail::suppression::{
            BouncePolicy, SuppressionKey, SuppressionList,
        };
        let key = masthead::platform::secret::site_key(&self.settings.auth).expect("the site key");
        SuppressionList::new(
            SuppressionKey::derive(&key),
            BouncePolicy::from(&self.settings.newsletter),
        )
    }

    /// What the outbox holds for one address.
    pub fn outbox(&self, email: &str) -> Vec<masthead::platform::mail::model::OutboxMessage> {
        let email = masthead::platform::domain::EmailAddress::parse(email).expect("valid");
        let mut conn = self.pool().get().expect("conn");
        masthead::platform::mail::store::for_recipient(&mut conn, &email).expect("query")
    }
}

/// Asserts an RFC 9457 problem with `status`, naming `field` when given.
pub async fn assert_problem(
    response: reqwest::Response,
    status: StatusCode,
    field: Option<&str>,
) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status.as_u16());
    if let Some(field) = field {
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("an errors array")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field} not named in {body}");
    }
    body
}

/// Waits until `check` holds, polling; fails the test after a while.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fetches until `done` holds of what came back, 200 times at most, 25 ms
/// apart; gives the last fetched, for the caller to assert on.
pub async fn polled<T, F: std::future::Future<Output = T>>(
    mut fetch: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut value = fetch().await;
    for _ in 1..200 {
        if done(&value) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        value = fetch().await;
    }
    value
}

impl TestApp {
    /// A logged-in editor, created through the command line.
    pub async fn editor(&self) -> reqwest::Client {
        let editor = Self::browser();
        let email = format!("editor-{}@example.com", uuid::Uuid::new_v4().simple());
        self.privileged(&editor, &email, "editor").await;
        editor
    }

    pub async fn create_section(&self, editor: &reqwest::Client, name: &str) {
        let response = self
            .post(editor, "/api/v1/sections", json!({ "name": name }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    /// Creates a draft and returns it as the editor sees it.
    pub async fn draft(&self, editor: &reqwest::Client, article: Value) -> Value {
        let response = self.post(editor, "/api/v1/articles", article).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    pub async fn publish(&self, editor: &reqwest::Client, article: &Value) -> Value {
        let path = format!(
            "/api/v1/articles/{}/publish",
            article["id"].as_str().expect("an id")
        );
        let response = self.post(editor, &path, json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> Value {
        let response = self.get(client, path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }
}

/// An article body for tests.
pub fn article(title: &str, section: &str, tags: &[&str], body: &str) -> Value {
    json!({
        "title": title,
        "standfirst": format!("What happened in {title}."),
        "body": body,
        "section": section,
        "tags": tags,
    })
}

impl TestApp {
    pub async fn admin(&self) -> reqwest::Client {
        let admin = Self::browser();
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        self.privileged(&admin, &email, "admin").await;
        admin
    }

    pub async fn request_trial(
        &self,
        client: &reqwest::Client,
        company: &str,
    ) -> reqwest::Response {
        self.post(
            client,
            "/api/v1/trials",
            json!({ "company": company, "job_title": "Patent attorney", "reason": "Following a case" }),
        )
        .await
    }
}

/// The form token of the first form on a page.
pub fn form_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    html.split(marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(html_unescape)
        .unwrap_or_else(|| panic!("no form token in:\n{html}"))
}

/// Undoes the escaping a template applies to attribute values.
pub fn html_unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where a redirect sends the browser.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} answer", response.status()))
        .to_owned()
}

/// A response header as text, or "" when absent.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The sections most newsletter tests choose among. The newsletter offers
/// the site's sections, so a test adds the ones it signs up for.
pub const NEWSLETTER_SECTIONS: [&str; 5] = [
    "Patents",
    "Trademarks",
    "Copyright",
    "Designs",
    "Litigation",
];

impl TestApp {
    /// Adds sections as `/admin/sections` does, straight in the database;
    /// returns their slugs in order.
    pub fn add_sections(&self, names: &[&str]) -> Vec<String> {
        let mut conn = self.pool().get().expect("conn");
        let on_added: masthead::articles::OnSectionAdded =
            std::sync::Arc::new(masthead::newsletter::tx::section_added);
        names
            .iter()
            .map(|name| {
                let slug = masthead::platform::domain::Slug::from_title(name);
                let position =
                    masthead::articles::store::next_section_position(&mut conn).expect("query");
                masthead::articles::service::add_section(
                    &mut conn,
                    &slug,
                    name,
                    position,
                    self.now(),
                    &on_added,
                )
                .expect("a new section");
                slug.to_string()
            })
            .collect()
    }
}

impl TestApp {
    /// Stores confirmed subscribers directly: many of them, or addresses
    /// that could not take a confirmation email (`bounce…`, `busy…`).
    pub fn seed_subscribers(
        &self,
        emails: &[impl AsRef<str>],
        sections: &[&str],
    ) -> Vec<SubscriberId> {
        let chosen: Vec<String> = sections.iter().map(|s| (*s).to_owned()).collect();
        let sections = Sections::parse(Some(&chosen), &chosen).expect("some sections");
        let mut conn = self.pool().get().expect("conn");
        let at = self.now().naive_utc();
        emails
            .iter()
            .map(|email| {
                let id = SubscriberId::new();
                let email = EmailAddress::parse(email.as_ref()).expect("valid");
                let row = NewSubscriber {
                    id,
                    email: &email,
                    account_id: None,
                    status: SubscriberStatus::Confirmed,
                    sections: &sections,
                    source: masthead::newsletter::Source::Api,
                    consent_text: "test",
                    created_at: at,
                    updated_at: at,
                    confirmation_sent_at: None,
                    confirmed_at: Some(at),
                };
                let mut writes = masthead::platform::db::Writes::default();
                writes.push(masthead::newsletter::store::insert(&row));
                writes.commit(&mut conn).expect("stored");
                id
            })
            .collect()
    }
}
