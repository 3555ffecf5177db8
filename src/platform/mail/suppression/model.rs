//! The suppression list's types: why an address is on it, the keyed hash
//! it is kept by, and the bounce policy that weighs reports.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::platform::config::NewsletterSettings;
use crate::platform::db::schema::newsletter_suppressions;
use crate::platform::domain::EmailAddress;

crate::text_enum! {
    pub enum SuppressionReason {
        Unsubscribed => "unsubscribed",
        HardBounce => "hard_bounce",
        Complaint => "complaint",
        Erased => "erased",
        SoftBounces => "soft_bounces",
    }
}

impl SuppressionReason {
    /// Bounces and complaints stop all mail to the address, even the
    /// confirmation of a new sign-up, until an admin lifts them. An
    /// unsubscribe or an erasure stops newsletter mail but lets the person
    /// opt in again, which lifts it.
    pub fn blocks_opt_in(self) -> bool {
        matches!(self, Self::HardBounce | Self::Complaint | Self::SoftBounces)
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The key of the suppression list's hashes, derived from the site key.
/// Keyed, a hash kept after an erasure cannot be matched against a list of
/// addresses by whoever reads the table: only by the application.
#[derive(Clone)]
pub struct SuppressionKey([u8; 32]);

impl SuppressionKey {
    pub fn derive(site_key: &SecretString) -> Self {
        let mut mac = HmacSha256::new_from_slice(site_key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"newsletter-suppression-hash");
        Self(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SuppressionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SuppressionKey(..)")
    }
}

/// What the suppression list keys on: the HMAC of the SHA-256 of the
/// normalised address, which outlives the address itself when a
/// subscriber is erased. The inner SHA-256 is what rows written before the
/// key held, so they are re-keyed without knowing their addresses
/// (`store::rekey_suppressions`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct EmailHash(String);

impl EmailHash {
    pub fn of(key: &SuppressionKey, email: &EmailAddress) -> Self {
        Self::keyed(key, &hex::encode(Sha256::digest(email.as_str().as_bytes())))
    }

    /// The keyed hash of an address whose plain SHA-256 (in hex) is `plain`.
    pub fn keyed(key: &SuppressionKey, plain: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(&key.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(plain.as_bytes());
        Self(hex::encode(mac.finalize().into_bytes()))
    }

    pub fn parse(input: &str) -> Option<Self> {
        (input.len() == 64 && input.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| Self(input.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EmailHash {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

crate::text_column!(EmailHash);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_suppressions)]
pub struct Suppression {
    pub email_hash: EmailHash,
    pub email: Option<EmailAddress>,
    pub reason: SuppressionReason,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = newsletter_suppressions, treat_none_as_default_value = false)]
pub struct NewSuppression<'a> {
    pub email_hash: &'a EmailHash,
    pub email: Option<&'a EmailAddress>,
    pub reason: SuppressionReason,
    pub detail: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub keyed: bool,
}

/// A bounce or complaint report from the mail system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    HardBounce,
    SoftBounce,
    Complaint,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounce => "soft_bounce",
            Self::Complaint => "complaint",
        }
    }
}

/// When soft bounces add up to a suppression.
#[derive(Debug, Clone, Copy)]
pub struct BouncePolicy {
    /// Soft bounces on this many different days in a row suppress.
    pub soft_bounce_limit: u32,
}

impl From<&NewsletterSettings> for BouncePolicy {
    fn from(settings: &NewsletterSettings) -> Self {
        Self {
            soft_bounce_limit: settings.soft_bounce_limit.max(1),
        }
    }
}

/// What adding to the suppression list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    Added,
    /// A bounce or complaint replaced a milder reason.
    Strengthened,
    /// Already there for this reason, or for one no milder.
    Unchanged,
    /// A soft bounce counted towards the limit, not yet suppressing.
    Noted,
}

impl Suppressed {
    /// Whether the address is on the list now.
    pub fn is_suppressed(self) -> bool {
        self != Self::Noted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_hashes_depend_on_the_key() {
        let email = EmailAddress::parse("Someone@Example.com").expect("valid");
        let key = SuppressionKey::derive(&SecretString::from("one key".to_owned()));
        let other = SuppressionKey::derive(&SecretString::from("another".to_owned()));
        let plain = hex::encode(Sha256::digest(b"someone@example.com"));
        assert_ne!(EmailHash::of(&key, &email).as_str(), plain);
        assert_ne!(EmailHash::of(&key, &email), EmailHash::of(&other, &email));
        assert_eq!(EmailHash::of(&key, &email), EmailHash::keyed(&key, &plain));
    }
}
