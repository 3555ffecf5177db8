//! Storage on SQLite or PostgreSQL, chosen at run time from the database URL.
//!
//! Every `Insertable` says `treat_none_as_default_value = false`: by
//! default diesel writes a `None` as `DEFAULT`, so the text of an insert
//! depends on its values and diesel prepares it anew each time instead of
//! keeping one prepared statement per connection (on PostgreSQL the parse
//! and plan of the inserts were about a sixth of a sign-up's database
//! time). No nullable column has a default other than NULL, so nothing
//! else changes; a new one that does must not be left out of its insert.

pub mod schema;
pub mod stamp;
mod text;
mod writes;

pub use writes::{Write, Writes};

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::{
    AnsiTransactionManager, Instrumentation, InstrumentationEvent, SimpleConnection,
    TransactionManager,
};
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::platform::config::DatabaseSettings;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// The pool of connections to one database, the queue of work waiting for
/// one of them, and how many write transactions this process has committed
/// through it (see [`stamp`]).
#[derive(Debug, Clone)]
pub struct Pool {
    connections: r2d2::Pool<ConnectionManager>,
    turns: Arc<tokio::sync::Semaphore>,
    commits: Arc<AtomicU64>,
}

impl Pool {
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.connections
    }
}

type Pooled = r2d2::PooledConnection<ConnectionManager>;

/// Runs one diesel expression against the concrete connection inside a
/// `DbConnection`, compiling it once per backend. For the few queries the
/// multi-backend connection cannot express (`ON CONFLICT`, `SKIP LOCKED`).
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::platform::db::DbConnection::Postgres($c) => $body,
            $crate::platform::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises concurrent `migrate` runs of several instances on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6d61_7374_6865_6164;

#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(plain_on_loopback(url)))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            anyhow::ensure!(!path.is_empty(), "database.url `sqlite://` names no file");
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else {
            anyhow::bail!(
                "database.url must start with sqlite:// or postgres:// (got `{}`)",
                url.split(':').next().unwrap_or_default()
            )
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// libpq's default (`sslmode=prefer`) encrypts a connection to the same
/// machine too, which then costs both ends CPU on every statement for no
/// gain; a loopback host is reached in the clear unless the URL names an
/// `sslmode` itself. Other hosts keep libpq's default.
fn plain_on_loopback(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if query.split('&').any(|pair| pair.starts_with("sslmode=")) {
        return url.to_owned();
    }
    let authority = base
        .split_once("://")
        .map_or(base, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match (loopback, query.is_empty()) {
        (false, _) => url.to_owned(),
        (true, true) => format!("{base}?sslmode=disable"),
        (true, false) => format!("{url}&sslmode=disable"),
    }
}

/// Opens connections for the pool. It picks the backend from the URL itself,
/// so a failure reports the driver's own error instead of a generic one.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    busy_timeout_ms: u32,
    commits: Arc<AtomicU64>,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        let mut conn = match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            DatabaseUrl::Sqlite(path) => {
                open_sqlite(&path.to_string_lossy(), self.busy_timeout_ms).map(DbConnection::Sqlite)
            }
        }?;
        let writer = match &mut conn {
            DbConnection::Sqlite(sqlite) => sqlite_writer(sqlite, self.busy_timeout_ms)
                .map_err(ConnectionError::CouldntSetupConfiguration)?,
            DbConnection::Postgres(_) => None,
        };
        conn.set_instrumentation(Attached {
            last_used: Instant::now(),
            writer,
            commits: Arc::clone(&self.commits),
        });
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        ping(conn).map_err(ConnectionError::CouldntSetupConfiguration)
    }

    /// A connection given back inside a transaction (its work panicked, or
    /// its task was dropped mid-way), or whose transaction state diesel lost,
    /// is thrown away: the next caller would run in someone else's
    /// transaction, and on SQLite hold the write lock of its `BEGIN
    /// IMMEDIATE` for ever. That includes a PostgreSQL connection whose
    /// server went away under a statement: libpq no longer knows its
    /// transaction status, and diesel then marks the state lost.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        !outside_transactions(conn)
    }
}

/// What is kept with each pooled connection, as its instrumentation: the one
/// place diesel lets a connection carry data of ours.
struct Attached {
    /// When it last finished a statement.
    last_used: Instant,
    /// SQLite: the writer of its database file (see `transaction`).
    writer: Option<Arc<Writer>>,
    /// Its pool's count of committed write transactions.
    commits: Arc<AtomicU64>,
}

impl Instrumentation for Attached {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { .. } = event {
            self.last_used = Instant::now();
        }
    }
}

fn attached(conn: &mut DbConnection) -> Option<&mut Attached> {
    conn.instrumentation().downcast_mut::<Attached>()
}

fn is_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        error,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// A pooled connection unused for longer than this is asked `SELECT 1`
/// before it is lent, as the server may have closed it meanwhile (a restart,
/// an idle timeout). One in steady use is lent without the round trip, which
/// was a tenth of a sign-up's statements: if its server went away since its
/// last statement, the request it serves fails as unavailable (503) and the
/// connection is thrown away on its return.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// A connection from the pool, checked first if it has been idle. A dead
/// one is dropped (and so discarded) and the next one tried, until the pool
/// has opened a live one.
fn checkout(pool: &Pool) -> Result<Pooled, StorageError> {
    let mut failure = None;
    for _ in 0..=pool.max_size() {
        let mut conn = pool.get().map_err(StorageError::Unavailable)?;
        let recently_used =
            attached(&mut conn).is_some_and(|a| a.last_used.elapsed() < CHECK_IDLE_AFTER);
        if recently_used {
            return Ok(conn);
        }
        match ping(&mut conn) {
            Ok(()) => return Ok(conn),
            Err(error) => failure = Some(error),
        }
    }
    Err(StorageError::Query(
        failure.unwrap_or(diesel::result::Error::BrokenTransactionManager),
    ))
}

pub fn ping(conn: &mut DbConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// Opens the pool. On SQLite the file and its folder are created if missing
/// and WAL is switched on once, before any pooled connection exists.
pub fn connect(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let url = DatabaseUrl::parse(settings.url.expose_secret())?;
    if let DatabaseUrl::Sqlite(path) = &url {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
    }
    let commits = Arc::new(AtomicU64::new(0));
    let manager = ConnectionManager {
        url: url.clone(),
        busy_timeout_ms: settings.busy_timeout_ms,
        commits: Arc::clone(&commits),
    };
    let mut first = r2d2::ManageConnection::connect(&manager)
        .with_context(|| format!("connecting to the {} database", url.backend()))?;
    if let DbConnection::Sqlite(conn) = &mut first {
        conn.batch_execute("PRAGMA journal_mode = WAL;")
            .context("switching SQLite to WAL mode")?;
    }
    drop(first);
    let connections = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .test_on_check_out(false)
        .build(manager)
        .context("opening the database pool")?;
    Ok(Pool {
        turns: Arc::new(tokio::sync::Semaphore::new(connections.max_size() as usize)),
        connections,
        commits,
    })
}

/// Applies the migrations this binary embeds for the connection's backend;
/// returns the versions it applied.
pub fn migrate(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect());
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(|e| anyhow::anyhow!("applying migrations: {e}"))
}

/// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE`: a
/// deferred transaction that reads and then writes fails with "database is
/// locked" when another writer committed in between, whatever the timeout.
/// SQLite has one writer per file, and its busy handler makes a waiting
/// writer sleep up to 100 ms between tries (under load p99 reached a second),
/// so write transactions on one file run on its one `Writer` connection,
/// queued on an in-process lock, each starting as soon as the previous one
/// commits; reads stay parallel in WAL on the pooled connections.
pub fn transaction<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let outermost = outside_transactions(conn);
    let writer = match conn {
        DbConnection::Sqlite(_) if outermost => attached(conn).and_then(|a| a.writer.clone()),
        _ => None,
    };
    let Some(writer) = writer else {
        return within(conn, work);
    };
    let mut slot = writer
        .connection
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let result = within(writer.ready(&mut slot)?, work);
    if result.is_ok() {
        note_commit(conn);
    }
    result
}

/// `work` in a transaction of `conn`, committed if it succeeds.
fn within<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgres(_) => DbConnection::begin_transaction(conn)?,
    }
    match work(conn) {
        Ok(value) => {
            DbConnection::commit_transaction(conn)?;
            note_commit(conn);
            Ok(value)
        }
        Err(error) => {
            DbConnection::rollback_transaction(conn)?;
            Err(error)
        }
    }
}

/// Whether diesel knows the connection to be in no transaction (not when
/// it lost track of its state).
fn outside_transactions(conn: &mut DbConnection) -> bool {
    per_backend!(conn, |c| matches!(
        AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
        Ok(None)
    ))
}

/// Counts a write this process committed, for the stamps' sake.
fn note_commit(conn: &mut DbConnection) {
    if let Some(attached) = attached(conn) {
        attached.commits.fetch_add(1, Ordering::Release);
    }
}

/// The one connection that writes to a SQLite file, for every pool of this
/// process on it. Write transactions queue for it on an in-process lock.
/// Being the only writer also keeps its page cache: SQLite drops a
/// connection's whole cache when another one has written since its last
/// transaction, so each pooled connection writing in turn read every page
/// of the tables and indexes it wrote to anew.
struct Writer {
    file: String,
    busy_timeout_ms: u32,
    /// Opened when first needed, and again if a transaction was left open
    /// on it (its work panicked). The checkpointer holds the lock too, for
    /// the end of a copy (see `checkpoint_in_background`).
    connection: Arc<WriterSlot>,
    /// Dropped to stop the checkpointer.
    stop_checkpointer: Option<std::sync::mpsc::Sender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The database file, for the checkpointer to flush. Closing a
    /// descriptor drops every POSIX lock this process holds on the file,
    /// those of SQLite's connections included (each holds a shared lock on
    /// it in WAL mode), so it is closed last, once the checkpointer and the
    /// writer's connection are closed (see `Drop`); the pooled connections,
    /// which hold the writer, are closed before.
    _database: Arc<File>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.stop_checkpointer.take());
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = checkpointer.join();
        }
        drop(
            self.connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

type WriterSlot = Mutex<Option<DbConnection>>;

/// How often the checkpointer copies what the WAL holds into the database
/// file. Sign-ups at 32 connections, p99, with PASSIVE copies alone: 27-37
/// ms at 200 ms, 31-41 ms at 1 s (larger copies); 21-25 ms at 50 ms, but one
/// run stalled at 449 ms. With the last copy under the writer's lock, 100 ms
/// made no difference (31.9 and 33.3 ms against 31.7-34.1 ms).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// WAL frames (pages) beyond which the checkpointer also has the WAL
/// started over (32 MB of 4 KB pages).
const START_OVER_AFTER_FRAMES: i32 = 8192;

/// How many frames written during the last copy the checkpointer leaves
/// for the copy that holds the writes back (1 MB of 4 KB pages), and how
/// many copies it makes at most to get there. With the file flushed after
/// each copy, the writes waited 2-3 ms on average (at most 5-10) at 256
/// frames and eight copies, 4-5 ms (at most 12-19) at 1,024 and four.
const LEFT_FOR_THE_WRITERS_TO_WAIT_ON: i32 = 256;
const CATCH_UP_ROUNDS: usize = 8;

/// What `PRAGMA wal_checkpoint` reports.
#[derive(QueryableByName)]
struct Checkpoint {
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    /// Frames of it now in the database file.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

/// Copies the WAL into the database file from a thread and connection of
/// its own, until `stop`'s sender is dropped. SQLite's automatic checkpoint
/// (off on every connection, see `open_sqlite`) runs inside the COMMIT that
/// crosses its threshold, file copy and fsync included, and every write
/// queued behind the writer waited for it: sign-ups saw a p99 of 68-268 ms
/// against 27-37 ms without it. A PASSIVE checkpoint takes no writer lock
/// and waits for no one, so the writer goes on meanwhile.
///
/// But a write starts the WAL over only if the WAL was wholly copied when
/// it began, which never happens while writes go on during each copy: the
/// WAL grew by 200 MB a second under sign-ups. So past
/// `START_OVER_AFTER_FRAMES` the checkpointer copies the few frames written
/// during its last copy while holding the writer's lock, and the next write
/// starts the WAL over. Writes wait for that lock, not in SQLite's busy
/// handler: a RESTART checkpoint instead held them there (sleeping 1, 2, 5,
/// 10 ... ms between tries) and put the sign-ups' p99 at 62-64 ms.
///
/// A PASSIVE copy flushes the database file only when it copied the whole
/// WAL, so the copy under the lock flushed every page the copies before it
/// had written: 10-37 ms of fsync, growing with the file, while every write
/// waited. The checkpointer flushes the file itself after each copy, and
/// the one under the lock flushes little more than its own pages (sign-ups'
/// p99 at 32 connections 18-25 ms against 36-40 ms in interleaved runs).
fn checkpoint_in_background(
    file: String,
    busy_timeout_ms: u32,
    writer: Weak<WriterSlot>,
    database: Arc<File>,
    stop: Receiver<()>,
) {
    let mut conn = None;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        if conn.is_none() {
            conn = open_sqlite(&file, busy_timeout_ms)
                .inspect_err(|error| tracing::warn!(%error, file, "cannot open the checkpointer's connection"))
                .ok();
        }
        if let Some(sqlite) = conn.as_mut() {
            if let Err(error) = checkpoint(sqlite, &writer, &database) {
                tracing::warn!(%error, file, "WAL checkpoint failed");
                conn = None;
            }
        }
    }
}

fn checkpoint(
    sqlite: &mut SqliteConnection,
    writer: &Weak<WriterSlot>,
    database: &File,
) -> QueryResult<()> {
    let passive = || diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)");
    let flush = || {
        database
            .sync_data()
            .map_err(|e| file_error("flushing the database file", e))
    };
    let mut copied = passive().get_result::<Checkpoint>(sqlite)?;
    if copied.log <= START_OVER_AFTER_FRAMES {
        return Ok(());
    }
    // Each copy takes in what was written during the one before: while
    // copying outpaces writing, fewer frames each time, and the writes
    // wait only for the last few.
    for _ in 0..CATCH_UP_ROUNDS {
        flush()?;
        let next = passive().get_result::<Checkpoint>(sqlite)?;
        let written_meanwhile = next.log - copied.log;
        copied = next;
        if written_meanwhile <= LEFT_FOR_THE_WRITERS_TO_WAIT_ON {
            break;
        }
    }
    flush()?;
    let Some(writer) = writer.upgrade() else {
        return Ok(());
    };
    let _no_writes = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let finished = passive().get_result::<Checkpoint>(sqlite)?;
    if finished.checkpointed < finished.log {
        tracing::debug!(
            log = finished.log,
            checkpointed = finished.checkpointed,
            "a reader kept the WAL from being wholly copied; trying again at the next turn"
        );
    }
    Ok(())
}

impl Writer {
    fn ready<'c>(&self, slot: &'c mut Option<DbConnection>) -> QueryResult<&'c mut DbConnection> {
        let clean = slot.as_mut().is_some_and(outside_transactions);
        if !clean {
            let conn = open_sqlite_writer(&self.file, self.busy_timeout_ms).map_err(|e| {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ClosedConnection,
                    Box::new(e.to_string()),
                )
            })?;
            *slot = Some(DbConnection::Sqlite(conn));
        }
        Ok(slot.as_mut().expect("opened above"))
    }
}

/// The writer of the connection's database file, looked up once when the
/// connection opens; none for an in-memory database, which no other
/// connection shares. A nested transaction does not use it: its outer one
/// runs on it already.
fn sqlite_writer(
    conn: &mut SqliteConnection,
    busy_timeout_ms: u32,
) -> QueryResult<Option<Arc<Writer>>> {
    // Weak, so that a file's writer closes with the last pool on it.
    static WRITERS: LazyLock<Mutex<HashMap<String, Weak<Writer>>>> = LazyLock::new(Mutex::default);
    let main = diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<DatabaseFile>(conn)?;
    if main.file.is_empty() {
        return Ok(None);
    }
    let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(writer) = writers.get(&main.file).and_then(Weak::upgrade) {
        return Ok(Some(writer));
    }
    writers.retain(|_, writer| writer.strong_count() > 0);
    let database = Arc::new(
        File::open(&main.file)
            .map_err(|e| file_error("opening the database file to flush it", e))?,
    );
    let (stop_checkpointer, stop) = std::sync::mpsc::channel();
    let file = main.file.clone();
    let connection = Arc::new(WriterSlot::default());
    let slot = Arc::downgrade(&connection);
    let flushed = Arc::clone(&database);
    let checkpointer = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || checkpoint_in_background(file, busy_timeout_ms, slot, flushed, stop))
        .map_err(|e| file_error("starting the WAL checkpointer", e))?;
    let writer = Arc::new(Writer {
        file: main.file.clone(),
        busy_timeout_ms,
        connection,
        stop_checkpointer: Some(stop_checkpointer),
        checkpointer: Some(checkpointer),
        _database: database,
    });
    writers.insert(main.file, Arc::downgrade(&writer));
    Ok(Some(writer))
}

/// A failure of the file system (or the thread) under a SQLite database, as
/// the errors of the queries around it.
fn file_error(what: &str, error: std::io::Error) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(format!("{what}: {error}")),
    )
}

/// No connection checkpoints the WAL as part of a commit: the writer's
/// checkpointer does (see `checkpoint_in_background`).
fn open_sqlite(file: &str, busy_timeout_ms: u32) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(file)?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 0;"
    ))
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The writer's connection keeps its statement journals in memory. A
/// statement that changes many rows inside a transaction (the outbox's
/// claim of a batch) first copies each page it changes to such a journal,
/// to undo the statement alone if it fails; kept in a temporary file, those
/// copies were about a tenth of the server's CPU while the outbox drained
/// (1.8-2.0 against 1.6-1.7 s for 10,000 messages). They hold a
/// statement's pages only while it runs.
fn open_sqlite_writer(file: &str, busy_timeout_ms: u32) -> ConnectionResult<SqliteConnection> {
    let mut conn = open_sqlite(file, busy_timeout_ms)?;
    conn.batch_execute("PRAGMA temp_store = MEMORY;")
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no database connection became available")]
    Unavailable(#[source] r2d2::Error),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("database task stopped unexpectedly")]
    Task(#[source] tokio::task::JoinError),
}

impl StorageError {
    /// The database could not be reached, or went away under the query (a
    /// restart, a broken connection): like an empty pool, a matter of
    /// trying again shortly, not a fault in the request or in masthead.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::Error;
        match self {
            Self::Unavailable(_) | Self::Query(Error::BrokenTransactionManager) => true,
            Self::Query(error) => is_connection_lost(error),
            Self::Task(_) => false,
        }
    }
}

/// Runs blocking database work on the blocking thread pool, with a pooled
/// connection, keeping the caller's tracing span.
///
/// Work waits for its turn here, first come first served, and only then
/// takes a blocking thread: with every connection lent, r2d2 lets a
/// newcomer take a returned connection before those already waiting, and
/// each waiter held a parked thread. Under 32 concurrent sign-ups on 8
/// connections that put p99 at 15 times p50.
pub async fn run<T, E, F>(pool: &Pool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    // Held by the work itself, so a caller that stops waiting does not
    // free the turn of work still running.
    let turn = Arc::clone(&pool.turns)
        .acquire_owned()
        .await
        .expect("the queue of a pool is never closed");
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let _entered = span.enter();
        let mut conn = checkout(&pool)?;
        work(&mut conn)
    })
    .await
    .map_err(|e| E::from(StorageError::Task(e)))?
}

/// A `LIKE … ESCAPE '\'` pattern that finds `text` anywhere, its `%`, `_`
/// and `\` taken as themselves rather than as wildcards.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use diesel::connection::SimpleConnection;
    use diesel::result::{DatabaseErrorKind, Error};
    use diesel::RunQueryDsl;
    use secrecy::SecretString;

    use super::{connect, plain_on_loopback, transaction, StorageError};
    use crate::platform::config::DatabaseSettings;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// A pool of two connections on a SQLite file.
    fn sqlite_pool(file: &std::path::Path) -> super::Pool {
        connect(&DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}", file.display())),
            pool_size: 2,
            connect_timeout_secs: 5,
            busy_timeout_ms: 5000,
        })
        .expect("opened")
    }

    /// Table `t`, of 500 rows of 4,000 bytes: a page each.
    fn five_hundred_pages(conn: &mut super::DbConnection) {
        transaction::<_, Error>(conn, |c| {
            c.batch_execute(
                "CREATE TABLE t (b BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
                 INSERT INTO t SELECT zeroblob(4000) FROM n;",
            )
        })
        .expect("written");
    }

    /// The one writer of a SQLite file outlives work that panicked in its
    /// transaction: what that work wrote is gone, and the next write lands.
    #[test]
    fn a_write_whose_work_panicked_leaves_the_file_writable() {
        let dir = tempfile::tempdir().expect("a folder");
        let pool = sqlite_pool(&dir.path().join("w.db"));
        let mut conn = pool.get().expect("a connection");
        conn.batch_execute("CREATE TABLE t (x INTEGER)")
            .expect("created");

        let panicked = catch_unwind(AssertUnwindSafe(|| {
            transaction::<(), Error>(&mut conn, |c| {
                c.batch_execute("INSERT INTO t VALUES (1)")?;
                panic!("the work fails half-way");
            })
        }));
        assert!(panicked.is_err());
        transaction::<_, Error>(&mut conn, |c| c.batch_execute("INSERT INTO t VALUES (2)"))
            .expect("written after the panic");

        let mut other = pool.get().expect("a second connection");
        let rows = diesel::sql_query("SELECT count(*) AS n FROM t WHERE x = 2")
            .get_result::<Count>(&mut *other)
            .expect("counted");
        let half = diesel::sql_query("SELECT count(*) AS n FROM t WHERE x = 1")
            .get_result::<Count>(&mut *other)
            .expect("counted");
        assert_eq!((rows.n, half.n), (1, 0));
    }

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        wal_autocheckpoint: i64,
    }

    /// Commits leave the WAL to the checkpointer, which copies it into the
    /// database file on its own.
    #[test]
    fn what_the_wal_holds_reaches_the_database_file_without_a_commit_copying_it() {
        let dir = tempfile::tempdir().expect("a folder");
        let file = dir.path().join("c.db");
        let pool = sqlite_pool(&file);
        let mut conn = pool.get().expect("a connection");
        let setting = diesel::sql_query("PRAGMA wal_autocheckpoint")
            .get_result::<Setting>(&mut *conn)
            .expect("read");
        assert_eq!(setting.wal_autocheckpoint, 0);

        five_hundred_pages(&mut conn);
        let written = 500 * 4000;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&file).expect("the file").len() < written {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file never received what the WAL held"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Under writes with no pause between them, the WAL is still started
    /// over once it passes `START_OVER_AFTER_FRAMES`, rather than growing
    /// for as long as they go on.
    #[test]
    fn the_wal_starts_over_while_writes_go_on() {
        let dir = tempfile::tempdir().expect("a folder");
        let pool = sqlite_pool(&dir.path().join("w.db"));
        let mut conn = pool.get().expect("a connection");
        five_hundred_pages(&mut conn);
        // Back to back from a thread of their own, so that the checkpointer
        // finds no pause between two writes in which to finish on its own.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writes = {
            let stop = std::sync::Arc::clone(&stop);
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("a connection");
                let mut frames_written = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Every row has a page of its own: 500 frames a
                    // transaction (new bytes, as SQLite does not write a
                    // page back unchanged).
                    transaction::<_, Error>(&mut conn, |c| {
                        c.batch_execute("UPDATE t SET b = randomblob(4000)")
                    })
                    .expect("rewritten");
                    frames_written += 500;
                }
                frames_written
            })
        };
        // The WAL header's checkpoint sequence number (bytes 12-15) goes up
        // each time the WAL is started over.
        let wal = dir.path().join("w.db-wal");
        let started_over = || {
            let mut header = [0; 16];
            std::io::Read::read_exact(
                &mut std::fs::File::open(&wal).expect("the WAL"),
                &mut header,
            )
            .expect("its header");
            u32::from_be_bytes(header[12..16].try_into().expect("four bytes")) > 0
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !started_over() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let frames_written = writes.join().expect("the writes");
        assert!(
            started_over(),
            "{frames_written} frames written and the WAL never started over"
        );
    }

    #[test]
    fn a_database_gone_under_a_query_is_unavailable_and_a_refused_query_is_not() {
        let gone = |kind| {
            StorageError::Query(Error::DatabaseError(
                kind,
                Box::new("server closed the connection unexpectedly".to_owned()),
            ))
        };
        assert!(StorageError::Query(Error::BrokenTransactionManager).is_unavailable());
        assert!(gone(DatabaseErrorKind::ClosedConnection).is_unavailable());
        assert!(gone(DatabaseErrorKind::UnableToSendCommand).is_unavailable());
        assert!(!gone(DatabaseErrorKind::UniqueViolation).is_unavailable());
        assert!(!StorageError::Query(Error::NotFound).is_unavailable());
    }

    #[test]
    fn a_loopback_database_is_reached_without_tls_unless_the_url_asks() {
        for (url, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/db",
                "postgres://postgres@127.0.0.1:5432/db?sslmode=disable",
            ),
            (
                "postgresql://u:p@localhost/db?application_name=m",
                "postgresql://u:p@localhost/db?application_name=m&sslmode=disable",
            ),
            (
                "postgres://[::1]:5433/db",
                "postgres://[::1]:5433/db?sslmode=disable",
            ),
            (
                "postgres://u@127.0.0.1/db?sslmode=require",
                "postgres://u@127.0.0.1/db?sslmode=require",
            ),
            (
                "postgres://u@db.internal:5432/db",
                "postgres://u@db.internal:5432/db",
            ),
            ("postgres://u@10.0.0.5/db", "postgres://u@10.0.0.5/db"),
        ] {
            assert_eq!(plain_on_loopback(url), expected, "{url}");
        }
    }
}
