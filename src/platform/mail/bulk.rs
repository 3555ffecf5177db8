//! SMTP connections with TCP_NODELAY, for the digest and the outbox. lettre writes a
//! message body and its closing `.` in two writes; with Nagle's algorithm
//! on, the small second write waits for the receiver's delayed ACK (about
//! 40 ms on Linux), which capped each connection at some 25 messages a
//! second. lettre's own pool offers no way to set the option, so these
//! connections are opened here and handed to lettre's SMTP client.
//!
//! Where the server offers PIPELINING (RFC 2920), a message takes two
//! round trips instead of four: MAIL, RCPT and DATA go out in one write, and
//! the content with its end mark in another. While messages keep coming
//! (`send_all`), one round trip: a message's content goes out in one write
//! with the next message's MAIL, RCPT and DATA, as RFC 2920 lets content
//! open a group. On loopback the round trips, not the bytes, were most of
//! the worker's time per message. lettre neither pipelines nor reports the
//! extension, so the EHLO reply is read here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Stream, StreamExt};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::model::SendError;
use crate::platform::config::{SmtpSettings, SmtpTls};

/// A connection unused for this long may have been closed by the server;
/// it is replaced rather than risk a failed send.
const MAX_IDLE: Duration = Duration::from_secs(20);

/// How long a connection given up on is waited for to answer QUIT. The
/// reply changes nothing, and a server that stopped answering would
/// otherwise hold the session for good.
const QUIT_WAIT: Duration = Duration::from_secs(1);

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

    fn put_back(&self, session: Session) {
        if !session.conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((session, Instant::now()));
        }
    }

    async fn take_or_connect(&self) -> Result<Session, SendError> {
        match self.take_idle() {
            Some(session) => Ok(session),
            None => self.connect().await,
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let mut session = self.take_or_connect().await?;
        let sent = self.within(session.transmit(&message)).await;
        if sent.is_err() {
            session.give_up().await;
        }
        self.put_back(session);
        sent
    }

    /// Sends every message `messages` yields on up to `sessions`
    /// connections, and tells `done` what became of each (`key` says which).
    pub async fn send_all<K, S, F>(&self, messages: S, sessions: usize, done: F)
    where
        S: Stream<Item = (K, Message)> + Unpin,
        F: Fn(K, Result<(), SendError>),
    {
        // Each session looks for more until it finds none: fused, so that
        // a stream that ended answers so again.
        let queue = tokio::sync::Mutex::new(messages.fuse());
        futures_util::future::join_all(
            (0..sessions.max(1)).map(|_| self.keep_sending(&queue, &done)),
        )
        .await;
    }

    /// One session of `send_all`: takes the next message until there are
    /// none, writing each one's content together with the next one's group
    /// when the next one is already waiting.
    async fn keep_sending<K, S, F>(&self, queue: &tokio::sync::Mutex<S>, done: &F)
    where
        S: Stream<Item = (K, Message)> + Unpin,
        F: Fn(K, Result<(), SendError>),
    {
        let mut session: Option<Session> = None;
        let mut carried: Option<Next<K>> = None;
        loop {
            let next = match carried.take() {
                Some(next) => next,
                None => match queue.lock().await.next().await {
                    Some((key, message)) => Next::Fresh(key, message),
                    None => break,
                },
            };
            let mut current = match session.take() {
                Some(current) => current,
                None => match self.take_or_connect().await {
                    Ok(current) => current,
                    Err(error) => {
                        done(next.into_key(), Err(error));
                        continue;
                    }
                },
            };
            let (key, result, following) = self.step(&mut current, next, queue).await;
            done(key, result);
            carried = following;
            if !current.conn.has_broken() {
                session = Some(current);
            }
        }
        if let Some(session) = session {
            self.put_back(session);
        }
    }

    /// Sends one message on `session`, and with its content the group of the
    /// next message if one is waiting. Gives back the message's outcome and
    /// the next message: opened when its group went out and the connection
    /// is still good, otherwise fresh, to start over on another connection.
    async fn step<K, S>(
        &self,
        session: &mut Session,
        next: Next<K>,
        queue: &tokio::sync::Mutex<S>,
    ) -> (K, Result<(), SendError>, Option<Next<K>>)
    where
        S: Stream<Item = (K, Message)> + Unpin,
    {
        let (key, message, text, written) = match next {
            Next::Opened(key, message, text) => (key, message, text, true),
            Next::Fresh(key, message) => match session.pipelined_text(&message) {
                Some(text) => (key, message, text, false),
                None => {
                    let email = message.formatted();
                    let sent = self
                        .within(session.conn.send(message.envelope(), &email))
                        .await;
                    if sent.is_err() {
                        session.give_up().await;
                    }
                    return (key, sent.map(drop), None);
                }
            },
        };
        if let Err(error) = self.within(session.open(message.envelope(), written)).await {
            session.give_up().await;
            return (key, Err(error), None);
        }
        let following = queue
            .try_lock()
            .ok()
            .and_then(|mut queue| queue.next().now_or_never().flatten())
            .map(|(key, message)| {
                let text = session.pipelined_text(&message);
                (key, message, text)
            });
        let group = following
            .as_ref()
            .and_then(|(_, message, text)| text.as_ref().map(|_| message.envelope()));
        let content = Content { text: &text, group };
        let sent = self.within(session.conn.command(content)).await;
        if sent.is_err() {
            session.give_up().await;
        }
        let following = following.map(|(key, message, text)| match text {
            Some(text) if sent.is_ok() => Next::Opened(key, message, text),
            _ => Next::Fresh(key, message),
        });
        (key, sent.map(drop), following)
    }

    /// `work`, failing as a transient error if it outlasts `mail.smtp.timeout_secs`.
    async fn within<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SendError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?
            .map_err(classify)
    }
}

/// A message for a session of `send_all`: fresh, or opened, when its group
/// (MAIL, RCPT and DATA) went out with the content of the message before it;
/// the text is what goes out as its content.
enum Next<K> {
    Fresh(K, Message),
    Opened(K, Message, String),
}

impl<K> Next<K> {
    fn into_key(self) -> K {
        match self {
            Self::Fresh(key, _) | Self::Opened(key, _, _) => key,
        }
    }
}

impl Session {
    /// The message as pipelined content, where the server allows it and the
    /// message needs neither SMTPUTF8 nor 8BITMIME (lettre's own `send`
    /// checks and asks for those).
    fn pipelined_text(&self, message: &Message) -> Option<String> {
        let envelope = message.envelope();
        let ascii_envelope = envelope
            .to()
            .iter()
            .chain(envelope.from())
            .all(|address| AsRef::<str>::as_ref(address).is_ascii());
        if !self.pipelining || !ascii_envelope {
            return None;
        }
        String::from_utf8(message.formatted())
            .ok()
            .filter(|text| text.is_ascii())
    }

    /// One message on its own: pipelined where the server allows it.
    async fn transmit(&mut self, message: &Message) -> Result<(), lettre::transport::smtp::Error> {
        let Some(text) = self.pipelined_text(message) else {
            return self
                .conn
                .send(message.envelope(), &message.formatted())
                .await
                .map(drop);
        };
        self.open(message.envelope(), false).await?;
        self.conn
            .command(Content {
                text: &text,
                group: None,
            })
            .await
            .map(drop)
    }

    /// Closes the connection after a failure: replies to the rest of a
    /// pipelined group may still be on their way, or a timeout left an
    /// exchange half done, so it is not used again.
    async fn give_up(&mut self) {
        // `abort` marks the connection broken before it says QUIT.
        let _ = tokio::time::timeout(QUIT_WAIT, self.conn.abort()).await;
    }

    /// Writes MAIL, the RCPTs and DATA in one group, unless they went out
    /// with the content before (`written`), and reads their replies.
    /// `command` writes what it is given in one write and reads one reply.
    async fn open(
        &mut self,
        envelope: &Envelope,
        written: bool,
    ) -> Result<(), lettre::transport::smtp::Error> {
        if written {
            self.conn.read_response().await?;
        } else {
            self.conn.command(Transaction(envelope)).await?;
        }
        for _recipient in envelope.to() {
            self.conn.read_response().await?;
        }
        self.conn.read_response().await?;
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
/// line break as lettre writes it; then the next message's group, if any.
struct Content<'a> {
    text: &'a str,
    group: Option<&'a Envelope>,
}

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut lines = self.text.split("\r\n.");
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for rest in lines {
            f.write_str("\r\n..")?;
            f.write_str(rest)?;
        }
        f.write_str("\r\n.\r\n")?;
        match self.group {
            Some(envelope) => write!(f, "{}", Transaction(envelope)),
            None => Ok(()),
        }
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
    use lettre::address::Envelope;

    use super::Content;

    #[test]
    fn content_doubles_a_leading_dot_on_every_line_and_ends_with_the_mark() {
        let content = |text| Content { text, group: None }.to_string();
        assert_eq!(
            content(".first\r\nmiddle\r\n.\r\n..two\r\nlast."),
            "..first\r\nmiddle\r\n..\r\n...two\r\nlast.\r\n.\r\n"
        );
        assert_eq!(content("plain"), "plain\r\n.\r\n");
    }

    #[test]
    fn the_next_group_follows_the_end_mark() {
        let address = |text: &str| text.parse().expect("an address");
        let envelope = Envelope::new(
            Some(address("bounces@example.com")),
            vec![address("reader@example.com")],
        )
        .expect("an envelope");
        let content = Content {
            text: "body",
            group: Some(&envelope),
        };
        assert_eq!(
            content.to_string(),
            "body\r\n.\r\nMAIL FROM:<bounces@example.com>\r\nRCPT TO:<reader@example.com>\r\nDATA\r\n"
        );
    }
}
