//! Sales inquiries: taking one in (stored, acknowledged, forwarded to
//! sales, all in one transaction) and the admins' list with its handled
//! flag and note.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use diesel::result::Error as DieselError;

use super::emails::{InquiryForSales, InquiryReceived};
use super::model::{Handling, Inquiry, InquiryId, NewInquiry};
use super::store;
use crate::accounts::service::require;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::Role;
use crate::platform::abuse::{AbuseGuard, Form, Limited};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{EmailAddress, FieldError, Fields, Invalid, PlainText};
use crate::platform::mail::compose::ComposeError;
use crate::platform::mail::{store as outbox, Composer};

/// The most seats one inquiry may ask about: larger numbers are typos, or
/// a conversation for sales to start, not a form field.
pub const MAX_SEATS: i64 = 100_000;
/// The longest message, in characters.
pub const MAX_MESSAGE: usize = 5_000;
/// The longest admin's note, in characters.
pub const MAX_NOTE: usize = 2_000;
/// How long an address waits for its next acknowledgement.
const ACK_EVERY_MINUTES: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum InquiryError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("no such inquiry")]
    NotFound,
    #[error(transparent)]
    Limited(#[from] Limited),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("composing an email")]
    Compose(#[from] ComposeError),
}

impl From<DieselError> for InquiryError {
    fn from(error: DieselError) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// An inquiry as typed, from the JSON body or the form: every field raw,
/// so that each bad one is reported at once.
#[derive(Debug, Default)]
pub struct InquiryForm {
    pub name: String,
    pub email: String,
    pub company: String,
    /// As typed: the form sends text, the API a number.
    pub seats: String,
    pub message: Option<String>,
}

#[derive(Clone)]
pub struct InquiryService {
    pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    sales: EmailAddress,
    abuse: Arc<AbuseGuard>,
}

impl InquiryService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        sales_email: &str,
        abuse: Arc<AbuseGuard>,
    ) -> anyhow::Result<Self> {
        let sales = EmailAddress::parse(sales_email)
            .map_err(|e| anyhow::anyhow!(e.message))
            .with_context(|| format!("mail.sales_email `{sales_email}` is not an address"))?;
        Ok(Self {
            pool,
            clock,
            composer,
            sales,
            abuse,
        })
    }

    /// Takes an inquiry in: stored, forwarded to sales, and acknowledged to
    /// its sender unless that address had an acknowledgement within the
    /// hour. Whatever the address, the caller learns nothing but success.
    #[tracing::instrument(skip_all)]
    pub async fn submit(
        &self,
        form: InquiryForm,
        client: Option<IpAddr>,
    ) -> Result<InquiryId, InquiryError> {
        let inquiry = Submitted::parse(&form)?;
        self.abuse
            .admit(Form::Inquiry, client, Some(&inquiry.email))?;
        let abuse = Arc::clone(&self.abuse);
        let now = self.clock.now();
        let composer = Arc::clone(&self.composer);
        let sales = self.sales.clone();
        let id = InquiryId::new();
        let domain = inquiry.email.domain().to_owned();
        let acknowledged = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let acknowledged = acknowledge(conn, &composer, &abuse, &inquiry, now)?;
                store::insert(
                    conn,
                    &NewInquiry {
                        id,
                        name: inquiry.name.as_str(),
                        email: &inquiry.email,
                        company: inquiry.company.as_str(),
                        seats: inquiry.seats,
                        message: inquiry.message.as_deref(),
                        acknowledged,
                        received_at: now.naive_utc(),
                    },
                )?;
                tell_sales(conn, &composer, &sales, id, inquiry, now)?;
                Ok::<_, InquiryError>(acknowledged)
            })
        })
        .await?;
        tracing::info!(inquiry_id = %id, %domain, acknowledged, "sales inquiry received");
        Ok(id)
    }

    /// Inquiries newest first (all, or only handled or unhandled ones), and
    /// how many match.
    pub async fn list(
        &self,
        admin: &Account,
        handled: Option<bool>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Inquiry>, i64), InquiryError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            Ok(store::list(conn, handled, limit, offset)?)
        })
        .await
    }

    /// Marks an inquiry handled (or not) with an optional note; audited.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, inquiry_id = %id, handled))]
    pub async fn mark(
        &self,
        admin: &Account,
        id: InquiryId,
        handled: bool,
        note: Option<String>,
    ) -> Result<Inquiry, InquiryError> {
        require(admin, Role::Admin)?;
        let note = parse_long_text(note.as_deref(), MAX_NOTE)
            .map_err(|e| InquiryError::Invalid(vec![e.on("note")]))?;
        let admin_id = admin.id;
        let now = self.clock.now();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let handling = Handling {
                    handled,
                    handled_at: handled.then(|| now.naive_utc()),
                    handled_by: handled.then_some(admin_id),
                    note: note.as_deref(),
                };
                if !store::handle(conn, id, &handling)? {
                    return Err(InquiryError::NotFound);
                }
                let action = if handled {
                    "inquiry.handle"
                } else {
                    "inquiry.reopen"
                };
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    action,
                    &Subject::new(SubjectKind::Inquiry, id),
                    note.as_deref(),
                )?;
                store::find(conn, id)?.ok_or(InquiryError::NotFound)
            })
        })
        .await
    }
}

/// An inquiry whose every field parsed.
struct Submitted {
    name: PlainText,
    email: EmailAddress,
    company: PlainText,
    seats: i32,
    message: Option<String>,
}

impl Submitted {
    fn parse(form: &InquiryForm) -> Result<Self, InquiryError> {
        let mut fields = Fields::default();
        let name = fields.take("name", PlainText::parse(&form.name, 200));
        let email = fields.take("email", EmailAddress::parse(&form.email));
        let company = fields.take("company", PlainText::parse(&form.company, 200));
        let seats = fields.take("seats", parse_seats(&form.seats));
        let message = fields.take(
            "message",
            parse_long_text(form.message.as_deref(), MAX_MESSAGE),
        );
        let (Some(name), Some(email), Some(company), Some(seats), Some(message)) =
            (name, email, company, seats, message)
        else {
            return Err(InquiryError::Invalid(
                fields.finish().err().unwrap_or_default(),
            ));
        };
        Ok(Self {
            name,
            email,
            company,
            seats,
            message,
        })
    }
}

/// Acknowledges the inquiry to its sender unless their address had one
/// within the hour; says whether it did.
fn acknowledge(
    conn: &mut DbConnection,
    composer: &Composer,
    abuse: &AbuseGuard,
    inquiry: &Submitted,
    now: DateTime<Utc>,
) -> Result<bool, InquiryError> {
    let since = (now - Duration::minutes(ACK_EVERY_MINUTES)).naive_utc();
    let email = &inquiry.email;
    // At most one acknowledgement an hour per address: the address is
    // unconfirmed, so the form must not become a way to fill someone else's
    // mailbox. The check gives the rolling hour; the dedupe key (one per
    // address and clock hour) keeps two inquiries sent at the same instant
    // from both passing it.
    if store::acknowledged_since(conn, email, since)? {
        return Ok(false);
    }
    let ack = composer.compose(
        email,
        &InquiryReceived {
            seats: inquiry.seats,
            read_link: composer.link("/"),
            newsletter_link: composer.link("/newsletter"),
        },
    )?;
    let key = format!("inquiry:ack:{email}:{}", now.format("%Y-%m-%dT%H"));
    Ok(abuse.enqueue(conn, &key, &ack, now)?)
}

/// Sales hears of every inquiry, acknowledged or not.
fn tell_sales(
    conn: &mut DbConnection,
    composer: &Composer,
    sales: &EmailAddress,
    id: InquiryId,
    inquiry: Submitted,
    now: DateTime<Utc>,
) -> Result<(), InquiryError> {
    let notice = composer.compose(
        sales,
        &InquiryForSales {
            name: inquiry.name.into_string(),
            email: inquiry.email.to_string(),
            company: inquiry.company.into_string(),
            seats: inquiry.seats,
            message: inquiry.message,
            received_at: now.format("%-d %B %Y at %H:%M UTC").to_string(),
            console_link: composer.link("/admin/inquiries"),
        },
    )?;
    outbox::enqueue(
        conn,
        &format!("inquiry:{id}:sales"),
        &notice,
        now.naive_utc(),
    )?;
    Ok(())
}

/// A head count: a whole number from 1 to `MAX_SEATS`.
fn parse_seats(input: &str) -> Result<i32, Invalid> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Invalid::new("required", "say how many people need to read"));
    }
    let seats: i64 = input
        .parse()
        .map_err(|_| Invalid::new("invalid_type", "the number of seats must be a whole number"))?;
    if !(1..=MAX_SEATS).contains(&seats) {
        return Err(Invalid::new(
            "out_of_range",
            format!("the number of seats must be between 1 and {MAX_SEATS}"),
        ));
    }
    i32::try_from(seats).map_err(|_| Invalid::new("out_of_range", "too many seats"))
}

/// Free text over several lines (a message, a note): absent or blank is
/// none; line breaks and tabs are kept, other control characters refused.
fn parse_long_text(input: Option<&str>, max_chars: usize) -> Result<Option<String>, Invalid> {
    let text = input.unwrap_or_default().replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > max_chars {
        return Err(Invalid::new(
            "too_long",
            format!("at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(Invalid::new(
            "invalid_characters",
            "control characters are not allowed",
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_a_bounded_whole_number() {
        assert_eq!(parse_seats(" 25 "), Ok(25));
        assert_eq!(parse_seats("").expect_err("blank").reason, "required");
        assert_eq!(
            parse_seats("3.5").expect_err("float").reason,
            "invalid_type"
        );
        assert_eq!(parse_seats("0").expect_err("zero").reason, "out_of_range");
        assert_eq!(parse_seats("-4").expect_err("neg").reason, "out_of_range");
        assert_eq!(
            parse_seats("100001").expect_err("big").reason,
            "out_of_range"
        );
    }

    #[test]
    fn long_text_keeps_lines() {
        assert_eq!(
            parse_long_text(Some(" a\r\nb "), 10),
            Ok(Some("a\nb".to_owned()))
        );
        assert_eq!(parse_long_text(Some("  "), 10), Ok(None));
        assert_eq!(
            parse_long_text(Some("a\u{7}"), 10)
                .expect_err("bell")
                .reason,
            "invalid_characters"
        );
        assert_eq!(
            parse_long_text(Some("abcdefghijk"), 10)
                .expect_err("long")
                .reason,
            "too_long"
        );
    }
}
