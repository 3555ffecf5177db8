//! SMTP connections with TCP_NODELAY, for the digest and the outbox. lettre writes a
//! message body and its closing `.` in two writes; with Nagle's algorithm
//! on, the small second write waits for the receiver's delayed ACK (about
//! 40 ms on Linux), which capped each connection at some 25 messages a
//! second. lettre's own pool offers no way to set the option, so these
//! connections are opened here and handed to lettre's SMTP client.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::transport::SendError;
use crate::config::{SmtpSettings, SmtpTls};

/// A connection unused for this long may have been closed by the server;
/// it is replaced rather than risk a failed send.
const MAX_IDLE: Duration = Duration::from_secs(20);

pub struct BulkSmtp {
    host: String,
    port: u16,
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl BulkSmtp {
    /// `None` for implicit TLS, which lettre only sets up on connections
    /// it opens itself.
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Option<Self>> {
        let starttls = match settings.tls {
            SmtpTls::Tls => return Ok(None),
            SmtpTls::None => None,
            SmtpTls::Starttls => Some(TlsParameters::new(settings.host.clone())?),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            )),
            _ => None,
        };
        Ok(Some(Self {
            host: settings.host.clone(),
            port: settings.port,
            starttls,
            credentials,
            timeout: Duration::from_secs(settings.timeout_secs),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |e: &dyn std::fmt::Display| SendError::Transient(e.to_string());
        let stream = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|e| transient(&e))?
        .map_err(|e| transient(&e))?;
        stream.set_nodelay(true).map_err(|e| transient(&e))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(classify)?;
        if let Some(tls) = &self.starttls {
            conn.starttls(tls.clone(), &self.hello)
                .await
                .map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let sent = tokio::time::timeout(
            self.timeout,
            conn.send(message.envelope(), &message.formatted()),
        )
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .map(drop)
        .map_err(classify);
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((conn, Instant::now()));
        }
        sent
    }
}

fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}
