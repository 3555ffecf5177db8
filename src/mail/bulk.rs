//! SMTP connections with TCP_NODELAY, for the digest and the outbox. lettre writes a
//! message body and its closing `.` in two writes; with Nagle's algorithm
//! on, the small second write waits for the receiver's delayed ACK (about
//! 40 ms on Linux), which capped each connection at some 25 messages a
//! second. lettre's own pool offers no way to set the option, so these
//! connections are opened here and handed to lettre's SMTP client.
//!
//! Where the server offers PIPELINING (RFC 2920), a message takes two
//! round trips instead of four: MAIL, RCPT and DATA go out in one write, and
//! the content with its end mark in another. On loopback the round trips,
//! not the bytes, were most of the worker's time per message. lettre neither
//! pipelines nor reports the extension, so the EHLO reply is read here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
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
    idle: Mutex<Vec<(Session, Instant)>>,
}

/// An open connection, and whether its server takes pipelined commands.
struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
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

    async fn connect(&self) -> Result<Session, SendError> {
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
        // Asked again before AUTH, which a later EHLO might undo.
        let pipelining = conn
            .command(Ehlo::new(self.hello.clone()))
            .await
            .map_err(classify)?
            .message()
            .skip(1)
            .any(|line| line.eq_ignore_ascii_case("PIPELINING"));
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(Session { conn, pipelining })
    }

    fn take_idle(&self) -> Option<Session> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((session, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !session.conn.has_broken() {
                return Some(session);
            }
        }
        None
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.connect().await?,
        };
        let sent = tokio::time::timeout(
            self.timeout,
            session.transmit(message.envelope(), &message.formatted()),
        )
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .map_err(classify);
        if !session.conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((session, Instant::now()));
        }
        sent
    }
}

impl Session {
    /// Pipelines when the server allows it and the message needs neither
    /// SMTPUTF8 nor 8BITMIME; lettre's own `send` checks and asks for those.
    async fn transmit(
        &mut self,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let ascii_envelope = envelope
            .to()
            .iter()
            .chain(envelope.from())
            .all(|address| AsRef::<str>::as_ref(address).is_ascii());
        match std::str::from_utf8(email) {
            Ok(text) if self.pipelining && ascii_envelope && text.is_ascii() => {
                let sent = self.pipelined(envelope, text).await;
                if sent.is_err() {
                    // Replies to the rest of the group may still be on their
                    // way; the connection is not used again.
                    self.conn.abort().await;
                }
                sent
            }
            _ => self.conn.send(envelope, email).await.map(drop),
        }
    }

    /// `command` writes what it is given in one write and reads one reply,
    /// so the group and the content each go out whole.
    async fn pipelined(
        &mut self,
        envelope: &Envelope,
        text: &str,
    ) -> Result<(), lettre::transport::smtp::Error> {
        self.conn.command(Transaction(envelope)).await?;
        for _recipient in envelope.to() {
            self.conn.read_response().await?;
        }
        self.conn.read_response().await?;
        self.conn.command(Content(text)).await?;
        Ok(())
    }
}

/// MAIL, one RCPT per recipient and DATA, as one group.
struct Transaction<'a>(&'a Envelope);

impl std::fmt::Display for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", Mail::new(self.0.from().cloned(), Vec::new()))?;
        for recipient in self.0.to() {
            write!(f, "{}", Rcpt::new(recipient.clone(), Vec::new()))?;
        }
        write!(f, "{Data}")
    }
}

/// A message as the DATA phase carries it: a line that starts with a dot
/// gets a second one (RFC 5321, 4.5.2), and the end mark follows, after a
/// line break as lettre writes it.
struct Content<'a>(&'a str);

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.starts_with('.') {
            f.write_str(".")?;
        }
        let mut lines = self.0.split("\r\n.");
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for rest in lines {
            f.write_str("\r\n..")?;
            f.write_str(rest)?;
        }
        f.write_str("\r\n.\r\n")
    }
}

fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Content;

    #[test]
    fn content_doubles_a_leading_dot_on_every_line_and_ends_with_the_mark() {
        assert_eq!(
            Content(".first\r\nmiddle\r\n.\r\n..two\r\nlast.").to_string(),
            "..first\r\nmiddle\r\n..\r\n...two\r\nlast.\r\n.\r\n"
        );
        assert_eq!(Content("plain").to_string(), "plain\r\n.\r\n");
    }
}
