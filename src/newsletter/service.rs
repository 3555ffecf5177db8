//! Newsletter workflows. Nothing here knows about HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::QueryResult;
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::emails::{ConfirmSubscription, Welcome};
use super::links::LinkSigner;
use super::model::{
    EmailHash, NewSubscriber, NewToken, PreferencesUpdate, Sections, SignUpRecord, Source,
    Subscriber, SubscriberId, SubscriberStatus, Suppression, SuppressionReason, TokenPurpose,
};
use super::store::{self, SubscriberFilter};
use super::tx;
use crate::accounts::service::search_text;
use crate::accounts::Account;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::platform::abuse::{AbuseGuard, Form, Limited};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::config::NewsletterSettings;
use crate::platform::db::{self, DbConnection, Pool, StorageError, Writes};
use crate::platform::domain::{EmailAddress, FieldError, Fields, Token};
use crate::platform::mail::compose::ComposeError;
pub use crate::platform::mail::suppression::BounceKind;
use crate::platform::mail::suppression::{Entry, SuppressionList, Whom};
use crate::platform::mail::webhooks::{
    self, MailgunWebhook, PostmarkWebhook, ProviderEvent, SendgridPost, SnsMessage, WebhookError,
};
use crate::platform::mail::{store as outbox, Composer, Email, Stream};

#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("the link is invalid, used or expired")]
    InvalidToken,
    #[error("this address is not subscribed")]
    NotSubscribed,
    #[error("the account's email address is not verified")]
    Unverified,
    #[error("this address refused our mail; an admin must lift the suppression")]
    Suppressed,
    #[error("no such suppression")]
    NoSuchSuppression,
    #[error("this needs the {0} role")]
    Forbidden(Role),
    #[error("no valid credentials for the bounce hook")]
    HookUnauthorized,
    #[error("this provider's webhook is not configured")]
    WebhookNotConfigured,
    #[error("the webhook's signature or credentials do not match")]
    WebhookUnauthorized,
    #[error("the webhook's body cannot be read: {0}")]
    WebhookMalformed(String),
    #[error(transparent)]
    Limited(#[from] Limited),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("composing an email")]
    Compose(#[from] ComposeError),
}

impl From<DieselError> for NewsletterError {
    fn from(error: DieselError) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// A sign-up as submitted; parsed by `sign_up`.
#[derive(Debug)]
pub struct SignUp {
    pub email: String,
    pub sections: Option<Vec<String>>,
    pub source: Source,
}

/// A sign-up once parsed: who signs up for what, and the account of the
/// reader who asked, when that reader owns the address.
#[derive(Clone, Copy)]
struct Request<'a> {
    email: &'a EmailAddress,
    sections: &'a Sections,
    source: Source,
    owner: Option<AccountId>,
}

/// What a confirmation leads to: a signed link to the new subscriber's
/// preferences (`/newsletter/preferences?token=`).
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub manage_token: String,
}

/// Who asks about a subscription: a logged-in reader, or whoever holds a
/// link from a newsletter email.
#[derive(Debug, Clone)]
pub enum Holder {
    Account(Account),
    Link(String),
}

/// A change of preferences as submitted.
#[derive(Debug, Default)]
pub struct PreferenceChanges {
    pub sections: Option<Vec<String>>,
    /// `Some(None)` ends a pause.
    pub paused_until: Option<Option<NaiveDate>>,
    pub subscribed: Option<bool>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preferences {
    pub email: String,
    pub status: SubscriberStatus,
    pub sections: Sections,
    pub available_sections: Vec<String>,
    pub paused_until: Option<NaiveDate>,
    pub suppressed: bool,
}

/// Everything stored about one subscriber, for the data-access right.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub email: String,
    pub status: SubscriberStatus,
    pub sections: Sections,
    pub source: Source,
    pub consent_text: String,
    pub account_id: Option<AccountId>,
    pub paused_until: Option<NaiveDate>,
    pub signed_up_at: DateTime<Utc>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub suppression: Option<ExportedSuppression>,
    pub messages: Vec<ExportedMessage>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportedSuppression {
    pub reason: SuppressionReason,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportedMessage {
    pub subject: String,
    pub queued_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One subscriber as the console shows them.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    pub suppression: Option<Suppression>,
    pub messages: Vec<ExportedMessage>,
}

/// A provider's webhook, as posted.
#[derive(Debug)]
pub enum ProviderReport {
    Mailgun(MailgunWebhook),
    Postmark {
        authorization: Option<String>,
        hook: PostmarkWebhook,
    },
    Sendgrid(SendgridPost),
    Ses(SnsMessage),
}

/// Who posts a bounce report: an admin, or an MTA hook with the shared token.
#[derive(Debug)]
pub enum Reporter {
    Admin(Account),
    Hook(String),
}

/// The links every newsletter email carries: one `manage` token each.
#[derive(Debug, Clone)]
pub struct ManageLinks {
    pub preferences: String,
    pub unsubscribe: String,
}

#[derive(Clone)]
pub struct NewsletterService {
    pub(super) pool: Pool,
    pub(super) clock: SharedClock,
    pub(super) composer: Arc<Composer>,
    pub(super) settings: Arc<NewsletterSettings>,
    links: Arc<LinkSigner>,
    abuse: Arc<AbuseGuard>,
    pub(super) suppressions: SuppressionList,
}

/// Who asked for a confirmation link: a form that anyone can fill in is held
/// to the daily mail cap of the address; an admin's import is not, and paces
/// its links instead.
pub(super) enum Requested {
    ByForm,
    ByImport { deliver_at: NaiveDateTime },
}

/// Templates whose messages belong to the newsletter (and are erased with it).
const NEWSLETTER_TEMPLATES: [&str; 2] = [ConfirmSubscription::TEMPLATE, Welcome::TEMPLATE];

impl NewsletterService {
    /// The suppression list's key of an address.
    pub fn suppression_hash(&self, email: &EmailAddress) -> EmailHash {
        self.suppressions.hash(email)
    }

    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        settings: NewsletterSettings,
        links: Arc<LinkSigner>,
        abuse: Arc<AbuseGuard>,
        suppressions: SuppressionList,
    ) -> Self {
        Self {
            pool,
            clock,
            composer,
            settings: Arc::new(settings),
            links,
            abuse,
            suppressions,
        }
    }

    /// Signs an address up. An anonymous sign-up is stored as pending and
    /// sent a confirmation link; the owner of a verified account signing up
    /// their own address is subscribed at once. A confirmed subscription is
    /// never touched, and the caller cannot tell which case applied.
    #[tracing::instrument(skip_all, fields(source = %request.source))]
    pub async fn sign_up(
        &self,
        request: SignUp,
        account: Option<Account>,
        client: Option<IpAddr>,
    ) -> Result<(), NewsletterError> {
        let mut fields = Fields::default();
        let email = fields.take("email", EmailAddress::parse(&request.email));
        if let Some(email) = &email {
            self.abuse.admit(Form::Newsletter, client, Some(email))?;
        }
        let owner = account
            .filter(|a| email.as_ref() == Some(&a.email) && a.email_verified_at.is_some())
            .map(|a| a.id);
        let this = self.clone();
        // The reads go first, outside any transaction, and the writes
        // after them go together (see `db::Writes`): a sign-up is the
        // busiest write there is. What the reads saw may change before the
        // writes land, as it may under PostgreSQL's READ COMMITTED anyway:
        // a second sign-up of the address fails on its unique email (below),
        // the subscriber's row guards its own status, and a section added
        // in between is not offered to this sign-up.
        let result = db::run(&self.pool, move |conn| {
            this.read_then_sign_up(conn, fields, email, request, owner)
        })
        .await;
        match result {
            // Two sign-ups of one address raced; the other one stored it
            // and sent its email.
            Err(NewsletterError::Storage(StorageError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _,
            )))) => Ok(()),
            other => other,
        }
    }

    /// Reads what is known of the address, parses the chosen sections
    /// against those on offer, and signs the address up.
    fn read_then_sign_up(
        &self,
        conn: &mut DbConnection,
        mut fields: Fields,
        email: Option<EmailAddress>,
        request: SignUp,
        owner: Option<AccountId>,
    ) -> Result<(), NewsletterError> {
        let state = match &email {
            Some(email) => Some(store::address_state(
                conn,
                self.suppressions.hash(email),
                email,
            )?),
            None => None,
        };
        let read_alone;
        let available = match &state {
            Some(state) => &state.sections,
            None => {
                read_alone = section_slugs(conn)?;
                &read_alone
            }
        };
        let sections = fields.take(
            "sections",
            Sections::parse(request.sections.as_deref(), available),
        );
        fields.finish().map_err(NewsletterError::Invalid)?;
        let (Some(email), Some(sections), Some(state)) = (email, sections, state) else {
            return Err(NewsletterError::Invalid(Vec::new()));
        };
        let request = Request {
            email: &email,
            sections: &sections,
            source: request.source,
            owner,
        };
        self.sign_up_in(conn, request, state)
    }

    fn sign_up_in(
        &self,
        conn: &mut DbConnection,
        request: Request<'_>,
        state: store::AddressState,
    ) -> Result<(), NewsletterError> {
        let now = self.clock.now();
        let Request { email, owner, .. } = request;
        let domain = email.domain();
        let store::AddressState {
            suppressed,
            subscriber: existing,
            account,
            ..
        } = state;
        if suppressed.is_some_and(|reason| reason.blocks_opt_in()) {
            tracing::info!(
                email_domain = domain,
                "sign-up of a suppressed address ignored"
            );
            return Ok(());
        }
        let existing = match existing {
            Some(id) => store::find(conn, id)?,
            None => None,
        };
        if let Some(subscriber) = existing
            .as_ref()
            .filter(|s| s.status == SubscriberStatus::Confirmed)
        {
            if let Some(owner) = owner {
                db::transaction(conn, |conn| store::link_account(conn, email, owner))?;
            }
            tracing::info!(subscriber_id = %subscriber.id, "sign-up of a confirmed subscriber; nothing changes");
            return Ok(());
        }
        self.write_sign_up(conn, request, existing, account, now)
    }

    /// Stores a sign-up of an address that no confirmed subscriber has (a
    /// new subscriber, or the latest choice of a pending one), then puts the
    /// confirmation link in the outbox; a verified owner is subscribed at
    /// once instead.
    fn write_sign_up(
        &self,
        conn: &mut DbConnection,
        request: Request<'_>,
        existing: Option<Subscriber>,
        account: Option<AccountId>,
        now: DateTime<Utc>,
    ) -> Result<(), NewsletterError> {
        let Request {
            email,
            sections,
            source,
            owner,
        } = request;
        let at = now.naive_utc();
        let record;
        let row;
        let mut writes = Writes::default();
        // The confirmation about to go out is noted in the row this sign-up
        // writes anyway, rather than by a statement of its own.
        let (id, send) = match existing {
            Some(subscriber) => {
                let send = owner.is_none() && !self.confirmation_sent_recently(&subscriber, at);
                record = SignUpRecord {
                    sections,
                    source,
                    consent_text: &self.settings.consent_text,
                    updated_at: at,
                    confirmation_sent_at: if send {
                        Some(at)
                    } else {
                        subscriber.confirmation_sent_at
                    },
                };
                writes.push(store::record_sign_up(subscriber.id, &record));
                (subscriber.id, send)
            }
            None => {
                row = self.pending_subscriber(request, owner.or(account), at);
                writes.push(store::insert(&row));
                (row.id, owner.is_none())
            }
        };
        match owner {
            Some(owner) => self.subscribe_owner(conn, writes, email, owner, id, now),
            None => self.commit_sign_up(conn, writes, request, id, send, at),
        }
    }

    fn confirmation_sent_recently(&self, subscriber: &Subscriber, at: NaiveDateTime) -> bool {
        let resend_after = Duration::minutes(self.settings.resend_interval_minutes);
        subscriber
            .confirmation_sent_at
            .is_some_and(|sent| at - sent < resend_after)
    }

    /// The row of a new subscriber, pending until confirmed; one who signs
    /// up their own verified address is sent no link.
    fn pending_subscriber<'a>(
        &'a self,
        Request {
            email,
            sections,
            source,
            owner,
        }: Request<'a>,
        account_id: Option<AccountId>,
        at: NaiveDateTime,
    ) -> NewSubscriber<'a> {
        NewSubscriber {
            id: SubscriberId::new(),
            email,
            account_id,
            status: SubscriberStatus::Pending,
            sections,
            source,
            consent_text: &self.settings.consent_text,
            created_at: at,
            updated_at: at,
            confirmation_sent_at: owner.is_none().then_some(at),
            confirmed_at: None,
        }
    }

    /// Writes a verified owner's sign-up and confirms it at once, in one
    /// transaction.
    fn subscribe_owner(
        &self,
        conn: &mut DbConnection,
        writes: Writes<'_>,
        email: &EmailAddress,
        owner: AccountId,
        id: SubscriberId,
        now: DateTime<Utc>,
    ) -> Result<(), NewsletterError> {
        db::transaction(conn, |conn| {
            writes.run(conn)?;
            store::link_account(conn, email, owner)?;
            // Read back, so the welcome lists the sections just chosen.
            let subscriber = store::find(conn, id)?.ok_or(NewsletterError::NotSubscribed)?;
            self.confirm_in(conn, &subscriber, now)?;
            tracing::info!(subscriber_id = %id, account_id = %owner, "verified reader subscribed");
            Ok(())
        })
    }

    /// Adds the confirmation link when one is due and commits the sign-up.
    fn commit_sign_up(
        &self,
        conn: &mut DbConnection,
        mut writes: Writes<'_>,
        Request {
            email, sections, ..
        }: Request<'_>,
        id: SubscriberId,
        send: bool,
        at: NaiveDateTime,
    ) -> Result<(), NewsletterError> {
        if send {
            self.send_confirmation(&mut writes, id, email, sections, at, Requested::ByForm)?;
        }
        writes.commit(conn)?;
        if send {
            tracing::info!(subscriber_id = %id, email_domain = email.domain(), "confirmation sent");
        } else {
            tracing::info!(subscriber_id = %id, "confirmation sent recently; not sent again");
        }
        Ok(())
    }

    /// Adds a confirmation link for the outbox to `writes`. An import notes
    /// when it goes out here; a sign-up by form has noted it in the row it
    /// writes.
    pub(super) fn send_confirmation(
        &self,
        writes: &mut Writes<'_>,
        subscriber: SubscriberId,
        email: &EmailAddress,
        sections: &Sections,
        at: NaiveDateTime,
        requested: Requested,
    ) -> Result<(), NewsletterError> {
        let deliver_at = match requested {
            Requested::ByForm => at,
            Requested::ByImport { deliver_at } => deliver_at,
        };
        let token = Token::generate();
        let ttl = Duration::hours(self.settings.confirmation_ttl_hours);
        writes.push(store::insert_token(NewToken {
            token_hash: token.hash(),
            subscriber_id: subscriber,
            purpose: TokenPurpose::Confirm,
            created_at: at,
            expires_at: deliver_at + ttl,
        }));
        let message = self.composer.compose(
            email,
            &ConfirmSubscription {
                link: self
                    .composer
                    .link(&format!("/newsletter/confirm?token={}", token.expose())),
                expires_hours: ttl.num_hours(),
                sections: sections.as_slice().to_vec(),
            },
        )?;
        let key = format!("newsletter_confirm:{}", token.hash());
        match requested {
            Requested::ByForm => {
                self.abuse.queue(writes, key, message, at.and_utc())?;
            }
            Requested::ByImport { .. } => {
                outbox::queue(writes, key, message, at, deliver_at)?;
                writes.push(store::mark_confirmation_sent(subscriber, deliver_at));
            }
        }
        Ok(())
    }

    /// Confirms a sign-up with the link from the confirmation email.
    /// Returns a signed preferences link for the page that follows (the
    /// welcome email carries its own).
    #[tracing::instrument(skip_all)]
    pub async fn confirm(&self, token: &str) -> Result<Confirmed, NewsletterError> {
        let token = Token::parse(token).map_err(|_| NewsletterError::InvalidToken)?;
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let now = this.clock.now();
                let id = store::spend_confirmation(conn, &token.hash(), now.naive_utc())?
                    .ok_or(NewsletterError::InvalidToken)?;
                let subscriber = store::find(conn, id)?.ok_or(NewsletterError::InvalidToken)?;
                if subscriber.status != SubscriberStatus::Confirmed {
                    this.confirm_in(conn, &subscriber, now)?;
                }
                tracing::info!(subscriber_id = %id, "subscription confirmed");
                Ok(Confirmed {
                    manage_token: this
                        .links
                        .manage_token(id, now + Duration::days(this.settings.link_ttl_days)),
                })
            })
        })
        .await
    }

    /// Whether a confirmation link would still confirm: it exists, has not
    /// been used and has not expired. Reads only, so the page a mail
    /// scanner opens changes nothing.
    pub async fn confirmation_pending(&self, token: &str) -> Result<bool, NewsletterError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(false);
        };
        let now = self.clock.now().naive_utc();
        db::run(&self.pool, move |conn| {
            Ok(store::confirmation_is_live(conn, &token.hash(), now)?)
        })
        .await
    }

    /// Makes a subscription live and sends the welcome email.
    fn confirm_in(
        &self,
        conn: &mut DbConnection,
        subscriber: &Subscriber,
        now: DateTime<Utc>,
    ) -> Result<(), NewsletterError> {
        store::confirm(conn, subscriber.id, now.naive_utc())?;
        self.suppressions.lift_for_opt_in(conn, &subscriber.email)?;
        let sections = subscriber.sections.as_slice().to_vec();
        self.enqueue_newsletter(
            conn,
            subscriber,
            &format!(
                "newsletter_welcome:{}:{}",
                subscriber.id,
                now.timestamp_micros()
            ),
            now,
            |links| Welcome {
                sections,
                preferences_link: links.preferences.clone(),
                unsubscribe_link: links.unsubscribe.clone(),
            },
        )?;
        Ok(())
    }

    /// Puts one newsletter email to a subscriber in the outbox, in the
    /// caller's transaction: it gets its own preferences/unsubscribe link
    /// and the list headers (RFC 2369, RFC 8058). Suppressed addresses are
    /// skipped; returns whether the message was queued.
    pub fn enqueue_newsletter<E: Email>(
        &self,
        conn: &mut DbConnection,
        subscriber: &Subscriber,
        dedupe_key: &str,
        now: DateTime<Utc>,
        build: impl FnOnce(&ManageLinks) -> E,
    ) -> Result<bool, NewsletterError> {
        debug_assert!(E::STREAM == Stream::Newsletter);
        if self.suppressions.of(conn, &subscriber.email)?.is_some() {
            tracing::info!(subscriber_id = %subscriber.id, template = E::TEMPLATE, "suppressed; not sent");
            return Ok(false);
        }
        let at = now.naive_utc();
        let token = Token::generate();
        let mut token_row = Writes::default();
        token_row.push(store::insert_token(NewToken {
            token_hash: token.hash(),
            subscriber_id: subscriber.id,
            purpose: TokenPurpose::Manage,
            created_at: at,
            expires_at: at + Duration::days(self.settings.link_ttl_days),
        }));
        token_row.run(conn)?;
        let links = ManageLinks {
            preferences: self
                .composer
                .link(&format!("/newsletter/preferences?token={}", token.expose())),
            unsubscribe: self
                .composer
                .link(&format!("/unsubscribe/{}", token.expose())),
        };
        let mut message = self.composer.compose(&subscriber.email, &build(&links))?;
        message.headers.insert(
            "List-Unsubscribe".into(),
            format!(
                "<{}>, <mailto:{}?subject=unsubscribe%20{}>",
                links.unsubscribe,
                self.settings.unsubscribe_mailto,
                token.expose()
            ),
        );
        message.headers.insert(
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        );
        message
            .headers
            .insert("List-Id".into(), self.settings.list_id.clone());
        Ok(outbox::enqueue(conn, dedupe_key, &message, at)?)
    }

    fn holder_subscriber(
        &self,
        conn: &mut DbConnection,
        holder: &Holder,
        now: NaiveDateTime,
    ) -> Result<Subscriber, NewsletterError> {
        match holder {
            Holder::Account(account) => {
                if account.email_verified_at.is_none() {
                    return Err(NewsletterError::Unverified);
                }
                store::find_by_account(conn, account.id)?.ok_or(NewsletterError::NotSubscribed)
            }
            Holder::Link(token) => match Token::parse(token) {
                Ok(token) => store::manage_token_subscriber(conn, &token.hash(), now)?
                    .ok_or(NewsletterError::InvalidToken),
                // Digest mail carries signed links instead of stored tokens.
                Err(_) => {
                    let id = self
                        .links
                        .verify(token, now.and_utc())
                        .ok_or(NewsletterError::InvalidToken)?;
                    store::find(conn, id)?.ok_or(NewsletterError::InvalidToken)
                }
            },
        }
    }

    fn preferences_of(
        &self,
        conn: &mut DbConnection,
        subscriber: Subscriber,
    ) -> Result<Preferences, NewsletterError> {
        let suppressed = self.suppressions.of(conn, &subscriber.email)?.is_some();
        Ok(Preferences {
            email: subscriber.email.to_string(),
            status: subscriber.status,
            sections: subscriber.sections,
            available_sections: section_slugs(conn)?,
            paused_until: subscriber.paused_until.map(|t| t.date()),
            suppressed,
        })
    }

    pub async fn preferences(&self, holder: Holder) -> Result<Preferences, NewsletterError> {
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            let now = this.clock.now().naive_utc();
            let subscriber = this.holder_subscriber(conn, &holder, now)?;
            this.preferences_of(conn, subscriber)
        })
        .await
    }

    /// Changes sections, pauses or resumes, unsubscribes or subscribes
    /// again. An unsubscribe takes effect at once.
    #[tracing::instrument(skip_all)]
    pub async fn update_preferences(
        &self,
        holder: Holder,
        changes: PreferenceChanges,
    ) -> Result<Preferences, NewsletterError> {
        let now = self.clock.now();
        let mut fields = Fields::default();
        let paused_until = parse_pause(&mut fields, changes.paused_until, now.date_naive());
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let sections = match changes.sections.as_deref() {
                    Some(chosen) => {
                        let available = section_slugs(conn)?;
                        fields.take("sections", Sections::parse(Some(chosen), &available))
                    }
                    None => None,
                };
                fields.finish().map_err(NewsletterError::Invalid)?;
                let subscriber = this.holder_subscriber(conn, &holder, now.naive_utc())?;
                let update = PreferencesUpdate {
                    sections,
                    paused_until,
                    updated_at: Some(now.naive_utc()),
                };
                store::update_preferences(conn, subscriber.id, &update)?;
                match changes.subscribed {
                    Some(false) => this.unsubscribe_in(conn, &subscriber, now)?,
                    Some(true) if subscriber.status != SubscriberStatus::Confirmed => {
                        this.subscribe_again(conn, &subscriber, now)?;
                    }
                    _ => {}
                }
                let fresh =
                    store::find(conn, subscriber.id)?.ok_or(NewsletterError::NotSubscribed)?;
                this.preferences_of(conn, fresh)
            })
        })
        .await
    }

    /// Confirms an unconfirmed subscriber who asks to be subscribed again,
    /// unless the address is suppressed against opting in.
    fn subscribe_again(
        &self,
        conn: &mut DbConnection,
        subscriber: &Subscriber,
        now: DateTime<Utc>,
    ) -> Result<(), NewsletterError> {
        if self
            .suppressions
            .of(conn, &subscriber.email)?
            .is_some_and(|s| s.reason.blocks_opt_in())
        {
            return Err(NewsletterError::Suppressed);
        }
        let fresh = store::find(conn, subscriber.id)?.ok_or(NewsletterError::NotSubscribed)?;
        self.confirm_in(conn, &fresh, now)?;
        tracing::info!(subscriber_id = %subscriber.id, "subscribed again");
        Ok(())
    }

    fn unsubscribe_in(
        &self,
        conn: &mut DbConnection,
        subscriber: &Subscriber,
        now: DateTime<Utc>,
    ) -> Result<(), NewsletterError> {
        store::unsubscribe(conn, subscriber.id, now.naive_utc())?;
        let whom = Whom::Address(&subscriber.email);
        self.suppressions
            .add(conn, whom, Entry::Unsubscribed, now.naive_utc())?;
        tracing::info!(subscriber_id = %subscriber.id, "unsubscribed");
        Ok(())
    }

    /// RFC 8058 one-click unsubscribe with the link from an email. Doing it
    /// twice is harmless.
    #[tracing::instrument(skip_all)]
    pub async fn unsubscribe_with_link(&self, token: &str) -> Result<String, NewsletterError> {
        let holder = Holder::Link(token.to_owned());
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let now = this.clock.now();
                let subscriber = this.holder_subscriber(conn, &holder, now.naive_utc())?;
                this.unsubscribe_in(conn, &subscriber, now)?;
                Ok(subscriber.email.to_string())
            })
        })
        .await
    }

    /// The address behind an unsubscribe link, to show on the page that
    /// asks for the click.
    pub async fn link_address(&self, token: &str) -> Result<String, NewsletterError> {
        let holder = Holder::Link(token.to_owned());
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            let now = this.clock.now().naive_utc();
            Ok(this
                .holder_subscriber(conn, &holder, now)?
                .email
                .to_string())
        })
        .await
    }

    /// Everything stored about the subscriber, as JSON.
    pub async fn export(&self, holder: Holder) -> Result<Export, NewsletterError> {
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            let now = this.clock.now().naive_utc();
            let s = this.holder_subscriber(conn, &holder, now)?;
            let suppression = this.suppressions.of(conn, &s.email)?;
            let messages = newsletter_messages(conn, &s.email)?;
            Ok(Export {
                email: s.email.to_string(),
                status: s.status,
                sections: s.sections,
                source: s.source,
                consent_text: s.consent_text,
                account_id: s.account_id,
                paused_until: s.paused_until.map(|t| t.date()),
                signed_up_at: s.created_at.and_utc(),
                confirmation_sent_at: s.confirmation_sent_at.map(|t| t.and_utc()),
                confirmed_at: s.confirmed_at.map(|t| t.and_utc()),
                unsubscribed_at: s.unsubscribed_at.map(|t| t.and_utc()),
                suppression: suppression.map(|s| ExportedSuppression {
                    reason: s.reason,
                    since: s.created_at.and_utc(),
                }),
                messages,
            })
        })
        .await
    }

    /// Erases the subscriber and the newsletter mail sent to them; only the
    /// hash of the address stays, on the suppression list.
    #[tracing::instrument(skip_all)]
    pub async fn erase(&self, holder: Holder) -> Result<(), NewsletterError> {
        let this = self.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let now = this.clock.now().naive_utc();
                let subscriber = this.holder_subscriber(conn, &holder, now)?;
                let messages =
                    outbox::delete_for_recipient(conn, &subscriber.email, &NEWSLETTER_TEMPLATES)?;
                store::delete(conn, subscriber.id)?;
                this.suppressions.add(
                    conn,
                    Whom::Address(&subscriber.email),
                    Entry::Erased,
                    now,
                )?;
                tracing::info!(subscriber_id = %subscriber.id, messages, "subscriber erased");
                Ok(())
            })
        })
        .await
    }

    /// How many addresses signed up, and how many confirmed, since `since`.
    pub async fn activity(
        &self,
        actor: &Account,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64), NewsletterError> {
        require(actor, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            store::activity_since(conn, since.naive_utc()).map_err(NewsletterError::from)
        })
        .await
    }

    pub async fn list_suppressions(
        &self,
        actor: &Account,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Suppression>, i64), NewsletterError> {
        require(actor, Role::Admin)?;
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            suppressions
                .page(conn, limit, offset)
                .map_err(NewsletterError::from)
        })
        .await
    }

    /// Takes an address off the suppression list, so that newsletter mail
    /// can reach it again; recorded as `suppression.lift`. Returns what was
    /// lifted.
    #[tracing::instrument(skip_all, fields(actor = %actor.id))]
    pub async fn lift_suppression(
        &self,
        actor: &Account,
        id: &str,
    ) -> Result<Suppression, NewsletterError> {
        require(actor, Role::Admin)?;
        let hash = EmailHash::parse(id).ok_or(NewsletterError::NoSuchSuppression)?;
        let now = self.clock.now();
        let actor_id = actor.id;
        let suppressions = self.suppressions.clone();
        let lifted = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let suppression = suppressions
                    .by_hash(conn, &hash)?
                    .ok_or(NewsletterError::NoSuchSuppression)?;
                // Another admin may have lifted it since it was read.
                if !suppressions.lift(conn, &hash)? {
                    return Err(NewsletterError::NoSuchSuppression);
                }
                audit::record(
                    conn,
                    now,
                    Some(actor_id),
                    "suppression.lift",
                    &Subject::new(SubjectKind::Suppression, &hash),
                    Some(&format!(
                        "{} since {}",
                        suppression.reason,
                        suppression.created_at.format("%Y-%m-%d %H:%M UTC")
                    )),
                )?;
                Ok(suppression)
            })
        })
        .await?;
        tracing::info!(reason = %lifted.reason, "suppression lifted");
        Ok(lifted)
    }

    /// A page of subscribers matching `filter`, newest first, and how many
    /// match: for admins.
    pub async fn search_subscribers(
        &self,
        actor: &Account,
        filter: SubscriberFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Subscriber>, i64), NewsletterError> {
        require(actor, Role::Admin)?;
        let filter = SubscriberFilter {
            address: search_text(filter.address.as_deref()).map_err(NewsletterError::Invalid)?,
            ..filter
        };
        db::run(&self.pool, move |conn| {
            store::search(conn, &filter, limit, offset).map_err(NewsletterError::from)
        })
        .await
    }

    /// One subscriber as an admin sees them: the record, the suppression
    /// of their address if any, and the newsletter mail sent to them.
    pub async fn subscriber_record(
        &self,
        actor: &Account,
        id: SubscriberId,
    ) -> Result<SubscriberRecord, NewsletterError> {
        require(actor, Role::Admin)?;
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            let subscriber = store::find(conn, id)?.ok_or(NewsletterError::NotSubscribed)?;
            let suppression = suppressions.of(conn, &subscriber.email)?;
            let messages = newsletter_messages(conn, &subscriber.email)?;
            Ok(SubscriberRecord {
                subscriber,
                suppression,
                messages,
            })
        })
        .await
    }

    /// The subscription linked to an account, if there is one: for admins.
    pub async fn subscriber_of_account(
        &self,
        actor: &Account,
        account: AccountId,
    ) -> Result<Option<Subscriber>, NewsletterError> {
        require(actor, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            store::find_by_account(conn, account).map_err(NewsletterError::from)
        })
        .await
    }

    /// Takes a bounce or complaint report, and applies the bounce policy
    /// (`tx::record_report`). Returns whether the address is now suppressed.
    #[tracing::instrument(skip_all, fields(kind = ?kind))]
    pub async fn report_bounce(
        &self,
        reporter: Reporter,
        email: &str,
        kind: BounceKind,
        detail: Option<String>,
    ) -> Result<bool, NewsletterError> {
        match &reporter {
            Reporter::Admin(actor) => require(actor, Role::Admin)?,
            Reporter::Hook(offered) => {
                let expected = self
                    .settings
                    .bounce_hook_token
                    .as_ref()
                    .filter(|t| !t.expose_secret().is_empty())
                    .ok_or(NewsletterError::HookUnauthorized)?;
                // Comparing digests keeps the comparison time independent
                // of where the strings differ.
                if Sha256::digest(offered.as_bytes())
                    != Sha256::digest(expected.expose_secret().as_bytes())
                {
                    return Err(NewsletterError::HookUnauthorized);
                }
            }
        }
        let email = EmailAddress::parse(email)
            .map_err(|e| NewsletterError::Invalid(vec![e.on("email")]))?;
        self.record_report(email, kind, detail).await
    }

    /// Takes a provider's webhook: checks its signature or credentials,
    /// and records the bounce or complaint it reports as `report_bounce`
    /// does. None when it reports something else (a delivery, an open).
    #[tracing::instrument(skip_all)]
    pub async fn provider_report(
        &self,
        report: ProviderReport,
    ) -> Result<Option<bool>, NewsletterError> {
        let settings = &self.settings;
        let now = self.clock.now();
        let events = match &report {
            ProviderReport::Mailgun(hook) => {
                webhooks::mailgun(settings.mailgun_signing_key.as_ref(), hook, now)
                    .map(|e| e.into_iter().collect())
            }
            ProviderReport::Postmark {
                authorization,
                hook,
            } => webhooks::postmark(
                settings.postmark_webhook_token.as_ref(),
                authorization.as_deref(),
                hook,
            )
            .map(|e| e.into_iter().collect()),
            ProviderReport::Sendgrid(post) => {
                webhooks::sendgrid(settings.sendgrid_verification_key.as_deref(), post, now)
            }
            ProviderReport::Ses(message) => webhooks::ses(
                settings.ses_topic_arn.as_deref(),
                settings.ses_signing_cert.as_deref(),
                message,
            ),
        }
        .map_err(|e| match e {
            WebhookError::NotConfigured => NewsletterError::WebhookNotConfigured,
            WebhookError::Unauthorized => NewsletterError::WebhookUnauthorized,
            WebhookError::Malformed(detail) => NewsletterError::WebhookMalformed(detail),
        })?;
        // One event names its address: an invalid one refuses the request.
        // A batch (SendGrid's) skips what it cannot read, keeping the rest.
        let single = events.len() == 1;
        let mut recorded = None;
        for ProviderEvent {
            email,
            kind,
            detail,
        } in events
        {
            let email = match EmailAddress::parse(&email) {
                Ok(email) => email,
                Err(e) if single => return Err(NewsletterError::Invalid(vec![e.on("email")])),
                Err(_) => {
                    tracing::warn!("provider event with an invalid address skipped");
                    continue;
                }
            };
            let suppressed = self.record_report(email, kind, Some(detail)).await?;
            recorded = Some(recorded.unwrap_or(false) || suppressed);
        }
        if recorded.is_none() {
            tracing::info!("provider report with no bounce or complaint ignored");
        }
        Ok(recorded)
    }

    async fn record_report(
        &self,
        email: EmailAddress,
        kind: BounceKind,
        detail: Option<String>,
    ) -> Result<bool, NewsletterError> {
        let now = self.clock.now().naive_utc();
        let suppressions = self.suppressions.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let report = Entry::Report {
                    kind,
                    detail: detail.as_deref(),
                };
                tx::record_report(conn, &suppressions, &email, report, now)
                    .map_err(NewsletterError::from)
            })
        })
        .await
    }
}

/// The newsletter's own mail to an address (confirmations, welcomes),
/// oldest first.
fn newsletter_messages(
    conn: &mut DbConnection,
    email: &EmailAddress,
) -> QueryResult<Vec<ExportedMessage>> {
    Ok(outbox::for_recipient(conn, email)?
        .into_iter()
        .filter(|m| NEWSLETTER_TEMPLATES.contains(&m.template.as_str()))
        .map(|m| ExportedMessage {
            subject: m.subject,
            queued_at: m.created_at.and_utc(),
            sent_at: m.sent_at.map(|t| t.and_utc()),
        })
        .collect())
}

pub(super) fn require(actor: &Account, role: Role) -> Result<(), NewsletterError> {
    if actor.role.includes(role) {
        Ok(())
    } else {
        Err(NewsletterError::Forbidden(role))
    }
}

/// The sections a subscriber can choose: the site's sections, the same
/// ones articles are filed under, in their order.
pub(super) fn section_slugs(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    crate::articles::tx::section_slugs(conn)
}

/// The pause asked for, as the stored change: `Some(None)` ends a pause, and
/// a pause that ends today or earlier is refused on `fields`.
fn parse_pause(
    fields: &mut Fields,
    asked: Option<Option<NaiveDate>>,
    today: NaiveDate,
) -> Option<Option<NaiveDateTime>> {
    match asked {
        Some(Some(date)) if date <= today => {
            fields.take::<()>(
                "paused_until",
                Err(crate::platform::domain::Invalid::new(
                    "not_in_future",
                    "a pause ends on a date after today",
                )),
            );
            None
        }
        Some(Some(date)) => Some(Some(date.and_time(chrono::NaiveTime::MIN))),
        Some(None) => Some(None),
        None => None,
    }
}

/// Housekeeping for the worker: sign-ups never confirmed and links past
/// their expiry are deleted.
pub async fn purge_stale(
    pool: &Pool,
    now: DateTime<Utc>,
    unconfirmed_max_age: Duration,
) -> Result<(), StorageError> {
    let (sign_ups, links) = db::run(pool, move |conn| {
        let sign_ups = store::purge_unconfirmed(conn, (now - unconfirmed_max_age).naive_utc())?;
        let links = store::purge_expired_tokens(conn, now.naive_utc())?;
        Ok::<_, StorageError>((sign_ups, links))
    })
    .await?;
    if sign_ups + links > 0 {
        tracing::info!(
            sign_ups,
            links,
            "stale newsletter sign-ups and links deleted"
        );
    }
    Ok(())
}
