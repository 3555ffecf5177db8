use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::compose::Stream;
use crate::platform::db::schema::{outbox, outbox_attempts};
use crate::platform::domain::EmailAddress;

crate::id_type!(OutboxId);
crate::id_type!(AttemptId);

crate::text_enum! {
    pub enum OutboxStatus {
        Pending => "pending",
        Sent => "sent",
        Failed => "failed",
    }
}

crate::text_enum! {
    pub enum AttemptOutcome {
        Sent => "sent",
        TransientFailure => "transient_failure",
        PermanentFailure => "permanent_failure",
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox, treat_none_as_default_value = false)]
pub struct NewOutboxMessage {
    pub id: OutboxId,
    pub dedupe_key: String,
    pub template: &'static str,
    pub from_address: String,
    pub to_address: EmailAddress,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub stream: Stream,
    /// A JSON object of header name to value.
    pub headers: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxMessage {
    pub id: OutboxId,
    pub template: String,
    pub from_address: String,
    pub to_address: EmailAddress,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub stream: Stream,
    pub headers: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox_attempts, treat_none_as_default_value = false)]
pub struct NewAttempt<'a> {
    pub id: AttemptId,
    pub outbox_id: OutboxId,
    pub attempted_at: NaiveDateTime,
    pub outcome: AttemptOutcome,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox_attempts)]
pub struct Attempt {
    pub attempted_at: NaiveDateTime,
    pub outcome: AttemptOutcome,
    pub detail: Option<String>,
}

/// How the outbox stands.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct OutboxFigures {
    pub waiting: i64,
    pub due: i64,
    pub failed: i64,
    pub failed_recently: i64,
}

/// Why a send failed, in the terms that decide what happens next.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx reply, a refused or dropped connection.
    #[error("{0}")]
    Transient(String),
    /// The server refused the message for good (a 5xx reply).
    #[error("{0}")]
    Permanent(String),
}
