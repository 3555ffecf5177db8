//! Limits on the forms anyone can post (and on login): how often from one
//! client address, how often about one email address, and how much mail
//! they may cause to one address in a day. One guard holds every rule; the
//! services call it, so the JSON API and the pages share each one. The
//! counts live in this process, on the injected clock: with several
//! instances each enforces its own.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use diesel::QueryResult;

use crate::platform::clock::SharedClock;
use crate::platform::config::{AbuseSettings, FormLimit};
use crate::platform::db::{DbConnection, Writes};
use crate::platform::domain::EmailAddress;
use crate::platform::error::AppError;
use crate::platform::mail::compose::ComposedEmail;
use crate::platform::mail::store as outbox;
use crate::platform::ratelimit::WindowLimiter;

/// The forms under a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Registration,
    Newsletter,
    PasswordReset,
    CompanyAccess,
    Inquiry,
    Trial,
    Login,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Registration => "registration",
            Self::Newsletter => "newsletter",
            Self::PasswordReset => "password_reset",
            Self::CompanyAccess => "company_access",
            Self::Inquiry => "inquiry",
            Self::Trial => "trial",
            Self::Login => "login",
        })
    }
}

/// A submission refused for coming too often; `retry_after` is when the
/// oldest one counted leaves the window.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many submissions of this form")]
pub struct Limited {
    pub retry_after: Duration,
}

impl From<Limited> for AppError {
    fn from(limited: Limited) -> Self {
        AppError::RateLimited {
            retry_after_secs: u64::try_from(limited.retry_after.num_seconds().max(1)).unwrap_or(1),
        }
    }
}

fn window(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

struct FormLimiters {
    by_ip: WindowLimiter,
    by_address: WindowLimiter,
}

impl FormLimiters {
    fn new(limit: FormLimit) -> Self {
        Self {
            by_ip: WindowLimiter::new(limit.per_ip, window(limit.window_secs)),
            by_address: WindowLimiter::new(limit.per_address, window(limit.window_secs)),
        }
    }
}

pub struct AbuseGuard {
    clock: SharedClock,
    registration: FormLimiters,
    newsletter: FormLimiters,
    password_reset: FormLimiters,
    company_access: FormLimiters,
    inquiry: FormLimiters,
    trial: FormLimiters,
    login: FormLimiters,
    guesses: WindowLimiter,
    mails: WindowLimiter,
}

/// One token guess, counted as wrong until `AbuseGuard::guessed_right`
/// takes it back: counted only after the lookup, a parallel flood would
/// pass the check before the first miss was counted.
#[must_use]
pub struct Guess {
    client: Option<String>,
    at: DateTime<Utc>,
}

impl AbuseGuard {
    pub fn new(settings: &AbuseSettings, clock: SharedClock) -> Self {
        Self {
            clock,
            registration: FormLimiters::new(settings.registration),
            newsletter: FormLimiters::new(settings.newsletter),
            password_reset: FormLimiters::new(settings.password_reset),
            company_access: FormLimiters::new(settings.company_access),
            inquiry: FormLimiters::new(settings.inquiry),
            trial: FormLimiters::new(settings.trial),
            login: FormLimiters::new(settings.login),
            guesses: WindowLimiter::new(
                settings.token_guesses.per_ip,
                window(settings.token_guesses.window_secs),
            ),
            mails: WindowLimiter::new(settings.mails_per_address_per_day, Duration::days(1)),
        }
    }

    fn limiters(&self, form: Form) -> &FormLimiters {
        match form {
            Form::Registration => &self.registration,
            Form::Newsletter => &self.newsletter,
            Form::PasswordReset => &self.password_reset,
            Form::CompanyAccess => &self.company_access,
            Form::Inquiry => &self.inquiry,
            Form::Trial => &self.trial,
            Form::Login => &self.login,
        }
    }

    /// Counts one submission of `form` from `client` about `address`, or
    /// refuses it when either has used up its allowance. A refused
    /// submission is not counted.
    pub fn admit(
        &self,
        form: Form,
        client: Option<IpAddr>,
        address: Option<&EmailAddress>,
    ) -> Result<(), Limited> {
        let now = self.clock.now();
        let limiters = self.limiters(form);
        let client = client.map(client_key);
        if let Some(key) = &client {
            limiters
                .by_ip
                .reserve(key, now)
                .map_err(|retry_after| refused(form, "client address", retry_after))?;
        }
        if let Some(address) = address {
            if let Err(retry_after) = limiters.by_address.reserve(address.as_str(), now) {
                if let Some(key) = &client {
                    limiters.by_ip.release(key, now);
                }
                return Err(refused(form, "email address", retry_after));
            }
        }
        Ok(())
    }

    /// Counts a token about to be looked up as a wrong guess from
    /// `client`, or refuses it when the client has guessed wrong too often.
    pub fn guess(&self, client: Option<IpAddr>) -> Result<Guess, Limited> {
        let at = self.clock.now();
        let client = client.map(client_key);
        if let Some(key) = &client {
            self.guesses.reserve(key, at).map_err(|retry_after| {
                tracing::debug!(
                    retry_after_secs = retry_after.num_seconds(),
                    "token guess limit reached"
                );
                Limited { retry_after }
            })?;
        }
        Ok(Guess { client, at })
    }

    /// Takes back a guess whose token was right.
    pub fn guessed_right(&self, guess: Guess) {
        if let Some(key) = &guess.client {
            self.guesses.release(key, guess.at);
        }
    }

    /// Puts a message that an anonymous form caused in the outbox, in the
    /// caller's transaction, unless its recipient has had
    /// `mails_per_address_per_day` such messages in the last 24 hours: then
    /// nothing is queued, the log says why, and the form answers as it
    /// always does, so nobody learns of it. Returns whether it was queued.
    pub fn enqueue(
        &self,
        conn: &mut DbConnection,
        dedupe_key: &str,
        email: &ComposedEmail,
        now: DateTime<Utc>,
    ) -> QueryResult<bool> {
        if !self.may_mail(email, now) {
            return Ok(false);
        }
        let queued = outbox::enqueue(conn, dedupe_key, email, now.naive_utc())?;
        if !queued {
            // Already queued under this key: no second message goes out.
            self.mails.release(email.to.as_str(), now);
        }
        Ok(queued)
    }

    /// Like `enqueue`, with the writes it goes with, for a message under a
    /// key no other message can have (see `outbox::queue`).
    pub fn queue(
        &self,
        writes: &mut Writes<'_>,
        unique_key: String,
        email: ComposedEmail,
        now: DateTime<Utc>,
    ) -> QueryResult<bool> {
        if !self.may_mail(&email, now) {
            return Ok(false);
        }
        let at = now.naive_utc();
        outbox::queue(writes, unique_key, email, at, at)?;
        Ok(true)
    }

    /// Counts a message to its recipient unless the day's cap is reached.
    fn may_mail(&self, email: &ComposedEmail, now: DateTime<Utc>) -> bool {
        let reserved = self.mails.reserve(email.to.as_str(), now).is_ok();
        if !reserved {
            tracing::warn!(
                template = email.template,
                email_domain = email.to.domain(),
                "daily mail cap of this address reached; not sent"
            );
        }
        reserved
    }
}

fn refused(form: Form, by: &'static str, retry_after: Duration) -> Limited {
    tracing::warn!(
        %form,
        by,
        retry_after_secs = retry_after.num_seconds(),
        "form limit reached"
    );
    Limited { retry_after }
}

/// Whom a client address counts as: an IPv4 address itself, an IPv6
/// address its /64 (a subscriber is usually given a whole /64, so each of
/// its addresses is the same client).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::platform::clock::ManualClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_ne!(client_key(ip("192.0.2.1")), client_key(ip("192.0.2.2")));
    }

    #[test]
    fn a_refusal_by_address_gives_back_the_client_count() {
        let limit = FormLimit {
            per_ip: 2,
            per_address: 1,
            window_secs: 60,
        };
        let settings = AbuseSettings {
            mails_per_address_per_day: 1,
            registration: limit,
            newsletter: limit,
            password_reset: limit,
            company_access: limit,
            inquiry: limit,
            trial: limit,
            login: limit,
            token_guesses: crate::platform::config::GuessLimit {
                per_ip: 1,
                window_secs: 60,
            },
        };
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let guard = AbuseGuard::new(&settings, clock.clone());
        let client = Some(ip("192.0.2.1"));
        let a = EmailAddress::parse("a@example.com").expect("an address");
        let b = EmailAddress::parse("b@example.com").expect("an address");
        assert!(guard.admit(Form::Newsletter, client, Some(&a)).is_ok());
        assert!(guard.admit(Form::Newsletter, client, Some(&a)).is_err());
        // The refusal above did not use the client's second submission.
        assert!(guard.admit(Form::Newsletter, client, Some(&b)).is_ok());
        assert!(guard.admit(Form::Newsletter, client, None).is_err());
        // Each form counts on its own.
        assert!(guard.admit(Form::Inquiry, client, Some(&a)).is_ok());
        clock.advance(Duration::seconds(60));
        assert!(guard.admit(Form::Newsletter, client, Some(&a)).is_ok());
    }
}
