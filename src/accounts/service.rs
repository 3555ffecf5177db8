//! Account workflows. Nothing here knows about HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use secrecy::{ExposeSecret, SecretString};

use super::emails::{AccountExists, PasswordChanged, PasswordReset, VerifyEmail};
use super::model::{
    Account, AccountId, NewAccount, NewAccountToken, NewSession, Role, TokenPurpose,
};
use super::password::{HashError, PasswordHasher, Verification};
use super::store::{self, AccountFilter};
use crate::platform::abuse::{self, AbuseGuard, Form, Limited};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::config::AuthSettings;
use crate::platform::db::stamp::Stamped;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{
    optional_text, EmailAddress, FieldError, Fields, Invalid, Password, PlainText, Token, TokenHash,
};
use crate::platform::mail::compose::ComposeError;
use crate::platform::mail::{store as outbox, Composer};
use crate::platform::ratelimit::WindowLimiter;

/// Passwords longer than this are not even hashed at login.
const LOGIN_PASSWORD_MAX_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("the link is invalid, used or expired")]
    InvalidToken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("too many failed attempts")]
    RateLimited { retry_after: Duration },
    #[error("an account with this email already exists")]
    AlreadyExists,
    #[error("no such account")]
    NotFound,
    #[error("this needs the {0} role")]
    Forbidden(Role),
    #[error("admins cannot change their own role")]
    OwnRole,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("composing an email")]
    Compose(#[from] ComposeError),
    #[error("password hashing failed")]
    Hashing(#[source] anyhow::Error),
    #[error("every password hashing slot is busy")]
    Busy { retry_after: std::time::Duration },
}

impl From<HashError> for AccountError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy { retry_after } => Self::Busy { retry_after },
            HashError::Failed(e) => Self::Hashing(e),
        }
    }
}

impl From<Limited> for AccountError {
    fn from(limited: Limited) -> Self {
        Self::RateLimited {
            retry_after: limited.retry_after,
        }
    }
}

impl From<DieselError> for AccountError {
    fn from(error: DieselError) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// A registration as submitted; parsed by `register`.
#[derive(Debug)]
pub struct Registration {
    pub email: String,
    pub password: SecretString,
    pub name: String,
    pub company: Option<String>,
    pub job_title: Option<String>,
}

struct ParsedRegistration {
    email: EmailAddress,
    password: Password,
    name: PlainText,
    company: Option<PlainText>,
    job_title: Option<PlainText>,
}

impl Registration {
    fn parse(self) -> Result<ParsedRegistration, AccountError> {
        let mut fields = Fields::default();
        let email = fields.take("email", EmailAddress::parse(&self.email));
        let password = fields.take("password", Password::parse(self.password));
        let name = fields.take("name", PlainText::parse(&self.name, 120));
        let company = fields.take("company", optional_text(self.company.as_deref(), 200));
        let job_title = fields.take("job_title", optional_text(self.job_title.as_deref(), 200));
        fields.finish().map_err(AccountError::Invalid)?;
        match (email, password, name, company, job_title) {
            (Some(email), Some(password), Some(name), Some(company), Some(job_title)) => {
                Ok(ParsedRegistration {
                    email,
                    password,
                    name,
                    company,
                    job_title,
                })
            }
            _ => Err(AccountError::Invalid(Vec::new())),
        }
    }
}

/// A new session: the token goes into the cookie, never into storage.
pub struct NewLogin {
    pub account: Account,
    pub token: Token,
    pub max_age: Duration,
}

/// What another capability does when a reader registers, in the
/// registration's transaction; the composition root supplies it.
pub type OnRegistered = Arc<
    dyn Fn(&mut DbConnection, AccountId, &EmailAddress) -> diesel::QueryResult<()> + Send + Sync,
>;

#[derive(Clone)]
pub struct AccountService {
    pub(super) pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    hasher: PasswordHasher,
    settings: AuthSettings,
    failures_by_ip: Arc<WindowLimiter>,
    failures_by_account: Arc<WindowLimiter>,
    abuse: Arc<AbuseGuard>,
    sessions: Arc<KeptSessions>,
    on_registered: OnRegistered,
}

impl AccountService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        settings: AuthSettings,
        abuse: Arc<AbuseGuard>,
        sessions: Arc<KeptSessions>,
        on_registered: OnRegistered,
    ) -> anyhow::Result<Self> {
        let window = Duration::seconds(
            i64::try_from(settings.login_limit.window_secs).unwrap_or(i64::MAX / 1000),
        );
        Ok(Self {
            hasher: PasswordHasher::new(&settings.argon2)?,
            failures_by_ip: Arc::new(WindowLimiter::new(settings.login_limit.per_ip, window)),
            failures_by_account: Arc::new(WindowLimiter::new(
                settings.login_limit.per_account,
                window,
            )),
            pool,
            clock,
            composer,
            settings,
            abuse,
            sessions,
            on_registered,
        })
    }

    /// Registers a reader, or — when the address already has an account —
    /// tells its owner so by email. The caller cannot tell which happened.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        registration: Registration,
        client: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let parsed = registration.parse()?;
        self.abuse
            .admit(Form::Registration, client, Some(&parsed.email))?;
        // Hashing happens whether or not the address is known, so that both
        // answers take the same time.
        let hash = self
            .hasher
            .hash(&parsed.password)
            .await
            .map_err(AccountError::from)?;
        let now = self.clock.now();
        let mail = RegistrationMail {
            composer: Arc::clone(&self.composer),
            abuse: Arc::clone(&self.abuse),
            now,
            window: self.mail_window(now),
            verification_ttl: Duration::hours(self.settings.verification_ttl_hours),
        };
        let on_registered = Arc::clone(&self.on_registered);
        let result = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if let Some(existing) = store::find_by_email(conn, &parsed.email)? {
                    return mail.remind_of_account(conn, &existing);
                }
                let id = insert_reader(conn, &parsed, &hash, now)?;
                on_registered(conn, id, &parsed.email)?;
                mail.ask_to_verify(conn, id, &parsed.email)?;
                tracing::info!(account_id = %id, email_domain = parsed.email.domain(), "account registered");
                Ok(())
            })
        })
        .await;
        match result {
            // Two registrations of one address raced; the other one won and
            // sent its email.
            Err(AccountError::Storage(StorageError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _,
            )))) => Ok(()),
            other => other,
        }
    }

    /// Unasked-for mail to one address (a reminder that it has an account, a
    /// reset link) goes out at most once per window, so nobody can flood an
    /// inbox by repeating a request.
    fn mail_window(&self, now: chrono::DateTime<chrono::Utc>) -> i64 {
        now.timestamp() / (self.settings.repeat_mail_minutes.max(1) * 60)
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let guess = self.abuse.guess(client)?;
        let token = Token::parse(token).map_err(|_| AccountError::InvalidToken)?;
        let now = self.clock.now();
        let verified = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let id = store::spend_token(
                    conn,
                    &token.hash(),
                    TokenPurpose::VerifyEmail,
                    now.naive_utc(),
                )?
                .ok_or(AccountError::InvalidToken)?;
                store::mark_verified(conn, id, now.naive_utc())?;
                tracing::info!(account_id = %id, "email verified");
                Ok(())
            })
        })
        .await;
        if verified.is_ok() {
            self.abuse.guessed_right(guess);
        }
        verified
    }

    /// Checks the credentials and opens a session. Attempts are limited per
    /// client and per address as every anonymous form is; failures are
    /// counted per client address and per account, and past that limit
    /// every attempt is refused until the window has moved on.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        client: Option<IpAddr>,
    ) -> Result<NewLogin, AccountError> {
        let address = EmailAddress::parse(email).ok();
        self.abuse.admit(Form::Login, client, address.as_ref())?;
        let now = self.clock.now();
        let ip_key = client.map(abuse::client_key).unwrap_or_default();
        let account_key = limit_key(email);
        // Each attempt counts as a failure from the start and is taken back
        // if it succeeds: counted only after the slow verify, parallel
        // guesses would all pass the check before the first was counted.
        self.failures_by_ip
            .reserve(&ip_key, now)
            .map_err(|retry_after| AccountError::RateLimited { retry_after })?;
        if let Err(retry_after) = self.failures_by_account.reserve(&account_key, now) {
            self.failures_by_ip.release(&ip_key, now);
            return Err(AccountError::RateLimited { retry_after });
        }
        let outcome = self.check_login(email, password, now).await;
        match &outcome {
            Ok(_) => {
                self.failures_by_ip.release(&ip_key, now);
                self.failures_by_account.clear(&account_key);
            }
            // Turned away before any password was checked: no guess was made.
            Err(AccountError::Busy { .. }) => {
                self.failures_by_ip.release(&ip_key, now);
                self.failures_by_account.release(&account_key, now);
            }
            Err(_) => tracing::info!("login failed"),
        }
        outcome
    }

    /// The part of `login` behind the attempt limits: verify, then open the
    /// session.
    async fn check_login(
        &self,
        email: &str,
        password: SecretString,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<NewLogin, AccountError> {
        let (account, needs_rehash) = self.verify_credentials(email, password.clone()).await?;
        let new_hash = if needs_rehash {
            self.rehash(password).await?
        } else {
            None
        };
        let token = Token::generate();
        let ttl = Duration::hours(self.settings.session_ttl_hours);
        self.open_session(account.id, token.hash(), new_hash, now, ttl)
            .await?;
        tracing::info!(account_id = %account.id, "logged in");
        Ok(NewLogin {
            account,
            token,
            max_age: ttl,
        })
    }

    /// The account whose credentials these are, and whether its stored hash
    /// wants renewing. An unknown address is verified against no hash, so
    /// that it costs as much as a known one.
    async fn verify_credentials(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<(Account, bool), AccountError> {
        let found = match EmailAddress::parse(email) {
            Ok(email) => {
                db::run(&self.pool, move |conn| {
                    store::credentials(conn, &email).map_err(AccountError::from)
                })
                .await?
            }
            Err(_) => None,
        };
        let verdict = if password.expose_secret().len() > LOGIN_PASSWORD_MAX_BYTES {
            Verification::Invalid
        } else {
            let stored = found.as_ref().map(|(_, hash)| hash.clone());
            self.hasher
                .verify(password, stored)
                .await
                .map_err(AccountError::from)?
        };
        match (verdict, found) {
            (Verification::Valid { needs_rehash }, Some((account, _))) => {
                Ok((account, needs_rehash))
            }
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// A hash of `password` with the current parameters, unless it no longer
    /// passes today's password rules.
    async fn rehash(&self, password: SecretString) -> Result<Option<String>, AccountError> {
        match Password::parse(password).ok() {
            Some(password) => Ok(Some(
                self.hasher
                    .hash(&password)
                    .await
                    .map_err(AccountError::from)?,
            )),
            None => Ok(None),
        }
    }

    /// Stores the session, and the renewed hash if there is one, in one
    /// transaction.
    async fn open_session(
        &self,
        id: AccountId,
        token_hash: TokenHash,
        new_hash: Option<String>,
        now: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
    ) -> Result<(), AccountError> {
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if let Some(hash) = &new_hash {
                    store::set_password_hash(conn, id, hash, now.naive_utc())?;
                    tracing::info!(account_id = %id, "password re-hashed with current parameters");
                }
                store::insert_session(
                    conn,
                    &NewSession {
                        token_hash: &token_hash,
                        account_id: id,
                        created_at: now.naive_utc(),
                        expires_at: (now + ttl).naive_utc(),
                    },
                )
                .map_err(AccountError::from)
            })
        })
        .await
    }

    /// Ends the session. In a transaction, as its commit is what tells
    /// this process's kept sessions to look again (see `db::stamp`).
    pub async fn logout(&self, session: TokenHash) -> Result<(), AccountError> {
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                store::delete_session(conn, &session).map_err(AccountError::from)
            })
        })
        .await
    }

    /// The account behind a session cookie, if the session is live.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(Account, TokenHash)>, AccountError> {
        let now = self.clock.now();
        Ok(session_account(&self.sessions, &self.pool, token, now).await?)
    }

    /// Emails a reset link when the address has an account; answers the
    /// same either way.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let email =
            EmailAddress::parse(email).map_err(|e| AccountError::Invalid(vec![e.on("email")]))?;
        self.abuse
            .admit(Form::PasswordReset, client, Some(&email))?;
        let abuse = Arc::clone(&self.abuse);
        let composer = Arc::clone(&self.composer);
        let now = self.clock.now();
        let window = self.mail_window(now);
        let ttl = Duration::minutes(self.settings.reset_ttl_minutes);
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let Some(account) = store::find_by_email(conn, &email)? else {
                    tracing::info!(
                        email_domain = email.domain(),
                        "password reset for an unknown address"
                    );
                    return Ok(());
                };
                let key = format!("password_reset:{}:{}", account.id, window);
                if outbox::is_queued(conn, &key)? {
                    tracing::info!(account_id = %account.id, "password reset already sent recently");
                    return Ok(());
                }
                let token = Token::generate();
                issue_token(
                    conn,
                    account.id,
                    &token.hash(),
                    TokenPurpose::PasswordReset,
                    now,
                    ttl,
                )?;
                let message = composer.compose(
                    &account.email,
                    &PasswordReset {
                        link: composer.link(&format!("/password-reset?token={}", token.expose())),
                        expires_minutes: ttl.num_minutes(),
                    },
                )?;
                abuse.enqueue(conn, &key, &message, now)?;
                tracing::info!(account_id = %account.id, "password reset requested");
                Ok(())
            })
        })
        .await
    }

    /// Sets a new password from a reset link, ends every session of the
    /// account, and tells its owner.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        password: SecretString,
        client: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let guess = self.abuse.guess(client)?;
        let (token, password) = parse_reset(token, password)?;
        let now = self.clock.now();
        // The token is checked before the costly hash, so that guessing
        // tokens costs the server one indexed read; the transaction below
        // spends it, and refuses it if it was spent meanwhile.
        if !self.reset_token_is_live(token.hash(), now).await? {
            return Err(AccountError::InvalidToken);
        }
        self.abuse.guessed_right(guess);
        let hash = self
            .hasher
            .hash(&password)
            .await
            .map_err(AccountError::from)?;
        let composer = Arc::clone(&self.composer);
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                reset_password(conn, &composer, &token, &hash, now)
            })
        })
        .await
    }

    async fn reset_token_is_live(
        &self,
        token_hash: TokenHash,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, AccountError> {
        db::run(&self.pool, move |conn| {
            store::token_is_live(
                conn,
                &token_hash,
                TokenPurpose::PasswordReset,
                now.naive_utc(),
            )
            .map_err(AccountError::from)
        })
        .await
    }

    /// Changes the password of a logged-in reader who knows the current
    /// one. Every other session of the account ends; `keep`, the session
    /// asking, stays. Wrong guesses count against the account as failed
    /// logins do, so a stolen session cannot try passwords for ever.
    #[tracing::instrument(skip_all, fields(account_id = %account.id))]
    pub async fn change_password(
        &self,
        account: &Account,
        keep: &TokenHash,
        current: SecretString,
        new: SecretString,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        let key = limit_key(account.email.as_str());
        // Counted before the check, as a login counts it.
        self.failures_by_account
            .reserve(&key, now)
            .map_err(|retry_after| AccountError::RateLimited { retry_after })?;
        let mut fields = Fields::default();
        let password = fields.take("new_password", Password::parse(new));
        if !self
            .check_current_password(account, current, &key, now)
            .await?
        {
            fields.reject(
                "current_password",
                Invalid::new("wrong_password", "this is not your current password"),
            );
        }
        fields.finish().map_err(AccountError::Invalid)?;
        let Some(password) = password else {
            return Err(AccountError::Invalid(Vec::new()));
        };
        let hash = self
            .hasher
            .hash(&password)
            .await
            .map_err(AccountError::from)?;
        self.store_changed_password(account.clone(), keep.clone(), hash, now)
            .await
    }

    /// Whether `current` is the account's password, settling the failure
    /// reserved under `key`: a right answer clears the count, and one turned
    /// away before any check gives the reservation back.
    async fn check_current_password(
        &self,
        account: &Account,
        current: SecretString,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, AccountError> {
        let verified = self.is_password_of(account, current).await;
        match verified {
            Ok(true) => self.failures_by_account.clear(key),
            Err(AccountError::Busy { .. }) => self.failures_by_account.release(key, now),
            _ => {}
        }
        verified
    }

    /// Stores a changed password, ends the account's other sessions and tells
    /// its owner, in one transaction.
    async fn store_changed_password(
        &self,
        account: Account,
        keep: TokenHash,
        hash: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AccountError> {
        let composer = Arc::clone(&self.composer);
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let mail_key = format!(
                    "password_changed:{}:{}",
                    account.id,
                    uuid::Uuid::new_v4().simple()
                );
                let ended = replace_password(
                    conn,
                    &composer,
                    &account,
                    &hash,
                    Some(&keep),
                    &mail_key,
                    now,
                )?;
                tracing::info!(sessions_ended = ended, "password changed");
                Ok(())
            })
        })
        .await
    }

    /// Whether `password` is the account's own, checked as a login checks it.
    async fn is_password_of(
        &self,
        account: &Account,
        password: SecretString,
    ) -> Result<bool, AccountError> {
        if password.expose_secret().len() > LOGIN_PASSWORD_MAX_BYTES {
            return Ok(false);
        }
        let email = account.email.clone();
        let stored = db::run(&self.pool, move |conn| {
            store::credentials(conn, &email).map_err(AccountError::from)
        })
        .await?
        .map(|(_, hash)| hash);
        let verdict = self
            .hasher
            .verify(password, stored)
            .await
            .map_err(AccountError::from)?;
        Ok(matches!(verdict, Verification::Valid { .. }))
    }

    /// Whether a link's token would still be accepted for `purpose`, so that
    /// the page a link opens can say at once when it no longer works. Reads
    /// only: the token is spent by the POST that uses it.
    pub async fn link_is_live(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<bool, AccountError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(false);
        };
        let now = self.clock.now();
        db::run(&self.pool, move |conn| {
            store::token_is_live(conn, &token.hash(), purpose, now.naive_utc())
                .map_err(AccountError::from)
        })
        .await
    }

    /// A page of accounts matching `filter`, newest first, and how many
    /// match: for admins.
    pub async fn list(
        &self,
        actor: &Account,
        filter: AccountFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Account>, i64), AccountError> {
        require(actor, Role::Admin)?;
        let filter = AccountFilter {
            search: search_text(filter.search.as_deref()).map_err(AccountError::Invalid)?,
            ..filter
        };
        db::run(&self.pool, move |conn| {
            store::list(conn, &filter, limit, offset).map_err(AccountError::from)
        })
        .await
    }

    /// One account, as an admin sees it.
    pub async fn get(&self, actor: &Account, id: AccountId) -> Result<Account, AccountError> {
        require(actor, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            store::find(conn, id)?.ok_or(AccountError::NotFound)
        })
        .await
    }

    /// The accounts with these ids (those that still exist), so the console
    /// can say who granted, decided or changed something. Editors may ask
    /// too: the trail of their articles names who acted.
    pub async fn by_ids(
        &self,
        actor: &Account,
        ids: Vec<AccountId>,
    ) -> Result<Vec<Account>, AccountError> {
        require(actor, Role::Editor)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        db::run(&self.pool, move |conn| {
            store::by_ids(conn, &ids).map_err(AccountError::from)
        })
        .await
    }

    /// Gives an account another role; recorded as `account.role`. Setting
    /// the role it has changes nothing and records nothing.
    #[tracing::instrument(skip_all, fields(actor = %actor.id, account_id = %id, role = %role))]
    pub async fn set_role(
        &self,
        actor: &Account,
        id: AccountId,
        role: Role,
    ) -> Result<Account, AccountError> {
        require(actor, Role::Admin)?;
        if actor.id == id {
            return Err(AccountError::OwnRole);
        }
        let now = self.clock.now();
        let actor_id = actor.id;
        let account = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let before = store::find(conn, id)?.ok_or(AccountError::NotFound)?;
                if before.role == role {
                    return Ok::<_, AccountError>(before);
                }
                let after = store::set_role(conn, id, role, now.naive_utc())?
                    .ok_or(AccountError::NotFound)?;
                audit::record(
                    conn,
                    now,
                    Some(actor_id),
                    "account.role",
                    &Subject::new(SubjectKind::Account, id),
                    Some(&format!("from {} to {role}", before.role)),
                )?;
                tracing::info!("role changed");
                Ok(after)
            })
        })
        .await?;
        Ok(account)
    }

    /// Creates an account with a role and a verified address, for the
    /// operator's command line.
    pub async fn create_privileged(
        &self,
        email: &str,
        name: &str,
        password: SecretString,
        role: Role,
    ) -> Result<Account, AccountError> {
        let mut fields = Fields::default();
        let email = fields.take("email", EmailAddress::parse(email));
        let name = fields.take("name", PlainText::parse(name, 120));
        let password = fields.take("password", Password::parse(password));
        fields.finish().map_err(AccountError::Invalid)?;
        let (Some(email), Some(name), Some(password)) = (email, name, password) else {
            return Err(AccountError::Invalid(Vec::new()));
        };
        let hash = self
            .hasher
            .hash(&password)
            .await
            .map_err(AccountError::from)?;
        let now = self.clock.now();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if store::find_by_email(conn, &email)?.is_some() {
                    return Err(AccountError::AlreadyExists);
                }
                let id = AccountId::new();
                store::insert(
                    conn,
                    &NewAccount {
                        id,
                        email: &email,
                        name: name.as_str(),
                        company: None,
                        job_title: None,
                        password_hash: &hash,
                        role,
                        email_verified_at: Some(now.naive_utc()),
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                    },
                )?;
                store::find(conn, id)?.ok_or(AccountError::NotFound)
            })
        })
        .await
    }
}

/// The accounts of live sessions, each kept until its session expires and
/// while the access stamp stands (see `db::stamp`).
pub type KeptSessions = Stamped<TokenHash, KeptSession>;

#[derive(Clone)]
pub struct KeptSession {
    account: Account,
    expires_at: NaiveDateTime,
}

pub fn kept_sessions(recheck: std::time::Duration) -> KeptSessions {
    Stamped::new(recheck, db::stamp::access_stamp)
}

/// The account a session cookie's token belongs to, while the session
/// lasts; none for a token that is malformed, unknown or expired. Without a
/// visit to the database when the session is kept.
pub async fn session_account(
    kept: &KeptSessions,
    pool: &Pool,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Account, TokenHash)>, StorageError> {
    let Ok(token) = Token::parse(token) else {
        return Ok(None);
    };
    let hash = token.hash();
    let now = now.naive_utc();
    let ticket = kept.check(pool).await?;
    if let Some(session) = kept.get(&hash).filter(|s| s.expires_at > now) {
        return Ok(Some((session.account, hash)));
    }
    let found = db::run(pool, {
        let hash = hash.clone();
        move |conn| store::session_account(conn, &hash, now).map_err(StorageError::from)
    })
    .await?;
    Ok(found.map(|(account, expires_at)| {
        let session = KeptSession {
            account: account.clone(),
            expires_at,
        };
        kept.keep(ticket, hash.clone(), session);
        (account, hash)
    }))
}

pub fn require(actor: &Account, role: Role) -> Result<(), AccountError> {
    if actor.role.includes(role) {
        Ok(())
    } else {
        Err(AccountError::Forbidden(role))
    }
}

/// What a console search looks for: trimmed, `None` when empty, and no
/// longer than an address can be.
pub fn search_text(input: Option<&str>) -> Result<Option<String>, Vec<FieldError>> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > 254 => Err(vec![Invalid::new(
            "too_long",
            "search for at most 254 characters",
        )
        .on("q")]),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// The key under which failed password checks of one account are counted.
fn limit_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The mail a registration sends, whichever way it goes.
struct RegistrationMail {
    composer: Arc<Composer>,
    abuse: Arc<AbuseGuard>,
    now: DateTime<Utc>,
    window: i64,
    verification_ttl: Duration,
}

impl RegistrationMail {
    /// Tells the owner of `existing` that someone registered their address.
    fn remind_of_account(
        &self,
        conn: &mut DbConnection,
        existing: &Account,
    ) -> Result<(), AccountError> {
        let composer = &self.composer;
        let email = composer.compose(
            &existing.email,
            &AccountExists {
                login_link: composer.link("/login"),
                reset_link: composer.link("/forgot-password"),
            },
        )?;
        let key = format!("account_exists:{}:{}", existing.id, self.window);
        self.abuse.enqueue(conn, &key, &email, self.now)?;
        tracing::info!(account_id = %existing.id, "registration for an existing account");
        Ok(())
    }

    /// Issues a verification token for the new account and mails its link.
    fn ask_to_verify(
        &self,
        conn: &mut DbConnection,
        id: AccountId,
        address: &EmailAddress,
    ) -> Result<(), AccountError> {
        let composer = &self.composer;
        let token = Token::generate();
        issue_token(
            conn,
            id,
            &token.hash(),
            TokenPurpose::VerifyEmail,
            self.now,
            self.verification_ttl,
        )?;
        let email = composer.compose(
            address,
            &VerifyEmail {
                link: composer.link(&format!("/verify-email?token={}", token.expose())),
                expires_hours: self.verification_ttl.num_hours(),
            },
        )?;
        self.abuse.enqueue(
            conn,
            &format!("verify_email:{}", token.hash()),
            &email,
            self.now,
        )?;
        Ok(())
    }
}

/// Stores a new, unverified reader account.
fn insert_reader(
    conn: &mut DbConnection,
    parsed: &ParsedRegistration,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<AccountId, AccountError> {
    let id = AccountId::new();
    store::insert(
        conn,
        &NewAccount {
            id,
            email: &parsed.email,
            name: parsed.name.as_str(),
            company: parsed.company.as_ref().map(PlainText::as_str),
            job_title: parsed.job_title.as_ref().map(PlainText::as_str),
            password_hash: hash,
            role: Role::Reader,
            email_verified_at: None,
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        },
    )?;
    Ok(id)
}

/// The token and the new password of a reset form, both or neither.
fn parse_reset(token: &str, password: SecretString) -> Result<(Token, Password), AccountError> {
    let mut fields = Fields::default();
    let token = fields.take("token", Token::parse(token));
    let password = fields.take("password", Password::parse(password));
    fields.finish().map_err(AccountError::Invalid)?;
    match (token, password) {
        (Some(token), Some(password)) => Ok((token, password)),
        _ => Err(AccountError::Invalid(Vec::new())),
    }
}

/// Spends the reset token and sets the new password, in the caller's
/// transaction.
fn reset_password(
    conn: &mut DbConnection,
    composer: &Composer,
    token: &Token,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    let id = store::spend_token(
        conn,
        &token.hash(),
        TokenPurpose::PasswordReset,
        now.naive_utc(),
    )?
    .ok_or(AccountError::InvalidToken)?;
    // An older link still in the mailbox must not reset the
    // password again.
    store::spend_tokens_of(conn, id, TokenPurpose::PasswordReset, now.naive_utc())?;
    let account = store::find(conn, id)?.ok_or(AccountError::InvalidToken)?;
    // Whoever holds the link controls the mailbox: the address is verified.
    store::mark_verified(conn, id, now.naive_utc())?;
    let ended = replace_password(
        conn,
        composer,
        &account,
        hash,
        None,
        &format!("password_changed:{}", token.hash()),
        now,
    )?;
    tracing::info!(account_id = %id, sessions_ended = ended, "password reset");
    Ok(())
}

/// The steps of every password change, in the caller's transaction: the new
/// hash is stored, the account's sessions end (all but `keep`), and its
/// owner is told by email. Returns how many sessions ended.
fn replace_password(
    conn: &mut DbConnection,
    composer: &Composer,
    account: &Account,
    hash: &str,
    keep: Option<&TokenHash>,
    mail_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, AccountError> {
    store::set_password_hash(conn, account.id, hash, now.naive_utc())?;
    let ended = store::delete_sessions_of(conn, account.id, keep)?;
    let message = composer.compose(
        &account.email,
        &PasswordChanged {
            name: account.name.clone(),
            reset_link: composer.link("/forgot-password"),
        },
    )?;
    outbox::enqueue(conn, mail_key, &message, now.naive_utc())?;
    Ok(ended)
}

fn issue_token(
    conn: &mut DbConnection,
    account_id: AccountId,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: chrono::DateTime<chrono::Utc>,
    ttl: Duration,
) -> Result<(), AccountError> {
    store::insert_token(
        conn,
        &NewAccountToken {
            token_hash: hash,
            account_id,
            purpose,
            created_at: now.naive_utc(),
            expires_at: (now + ttl).naive_utc(),
        },
    )
    .map_err(AccountError::from)
}

/// Housekeeping for the worker: expired sessions and links are deleted.
pub async fn purge_expired(
    pool: &Pool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StorageError> {
    let (sessions, tokens) = db::run(pool, move |conn| {
        store::purge_expired(conn, now.naive_utc()).map_err(StorageError::from)
    })
    .await?;
    if sessions + tokens > 0 {
        tracing::info!(sessions, tokens, "expired sessions and links deleted");
    }
    Ok(())
}
