//! Where messages go: `.eml` files in a folder, or an SMTP server.

use std::time::Duration;

use anyhow::Context;
use futures_util::{Stream, StreamExt};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::bulk::BulkSmtp;
pub use super::model::SendError;
use crate::platform::config::{MailSettings, MailTransportKind, SmtpTls};

pub enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Bulk(BulkSmtp),
}

impl Transport {
    /// SMTP connections with TCP_NODELAY where the settings allow (see
    /// `bulk`: lettre's own pool waits ~40 ms on a delayed ACK per message,
    /// which held the outbox to some 150 messages a second), otherwise
    /// lettre's transport for the settings.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        if settings.transport == MailTransportKind::Smtp {
            if let Some(bulk) = BulkSmtp::new(&settings.smtp).context("mail.smtp")? {
                return Ok(Self::Bulk(bulk));
            }
        }
        Self::from_settings(settings)
    }

    fn from_settings(settings: &MailSettings) -> anyhow::Result<Self> {
        match settings.transport {
            MailTransportKind::File => {
                std::fs::create_dir_all(&settings.outbox_dir).with_context(|| {
                    format!("creating the mail folder {}", settings.outbox_dir.display())
                })?;
                Ok(Self::File(AsyncFileTransport::new(&settings.outbox_dir)))
            }
            MailTransportKind::Smtp => {
                let smtp = &settings.smtp;
                let builder = match smtp.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                            .context("mail.smtp.host")?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .context("mail.smtp.host")?,
                }
                .port(smtp.port)
                .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
                .pool_config(PoolConfig::new().max_size(smtp.pool_size));
                let builder = match (&smtp.username, &smtp.password) {
                    (Some(user), Some(password)) => builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    )),
                    _ => builder,
                };
                Ok(Self::Smtp(builder.build()))
            }
        }
    }

    /// Sends every message `messages` yields, up to `sessions` at a time,
    /// and tells `done` what became of each (`key` says which).
    pub async fn send_all<K, S, F>(&self, messages: S, sessions: usize, done: F)
    where
        S: Stream<Item = (K, Message)> + Unpin,
        F: Fn(K, Result<(), SendError>),
    {
        match self {
            Self::Bulk(bulk) => bulk.send_all(messages, sessions, done).await,
            Self::File(_) | Self::Smtp(_) => {
                let done = &done;
                messages
                    .for_each_concurrent(sessions.max(1), |(key, message)| async move {
                        done(key, self.send(message).await);
                    })
                    .await;
            }
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::File(file) => file
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendError::Transient(e.to_string())),
            Self::Bulk(bulk) => bulk.send(message).await,
            Self::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
        }
    }
}
