//! Signed preference/unsubscribe links. A digest goes to every subscriber
//! every day; a stored token per message would add a row per message and
//! grow the token table by the list's size each morning. A signed link
//! needs no row: it names the subscriber and its expiry, and carries an
//! HMAC of both under the site key.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::model::SubscriberId;

type HmacSha256 = Hmac<Sha256>;

/// Marks the format, so a later one can be told apart.
const VERSION: &str = "s1";
/// 128 bits of the MAC are kept: enough against forgery, short in a URL.
const MAC_BYTES: usize = 16;

pub struct LinkSigner {
    key: SecretString,
}

impl LinkSigner {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self, subscriber: &str, expires: i64) -> HmacSha256 {
        // A key of any length is accepted by HMAC.
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"newsletter-manage\n");
        mac.update(subscriber.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// A token for `/newsletter/preferences?token=` and `/unsubscribe/{token}`.
    pub fn manage_token(&self, subscriber: SubscriberId, expires_at: DateTime<Utc>) -> String {
        let id = subscriber.to_string();
        let expires = expires_at.timestamp();
        let tag = self.mac(&id, expires).finalize().into_bytes();
        format!(
            "{VERSION}.{id}.{expires}.{}",
            hex::encode(&tag[..MAC_BYTES])
        )
    }

    /// The subscriber a token names, if it is genuine and not expired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<SubscriberId> {
        let mut parts = token.trim().split('.');
        let (Some(VERSION), Some(id), Some(expires), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expires: i64 = expires.parse().ok()?;
        let tag = hex::decode(tag).ok().filter(|t| t.len() == MAC_BYTES)?;
        self.mac(id, expires).verify_truncated_left(&tag).ok()?;
        if now.timestamp() >= expires {
            return None;
        }
        id.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(key: &str) -> LinkSigner {
        LinkSigner::new(SecretString::from(key.to_owned()))
    }

    #[test]
    fn a_signed_link_names_its_subscriber_until_it_expires() {
        let now = Utc::now();
        let id = SubscriberId::new();
        let token = signer("k1").manage_token(id, now + chrono::Duration::days(1));
        assert_eq!(signer("k1").verify(&token, now), Some(id));
        assert_eq!(
            signer("k1").verify(&token, now + chrono::Duration::days(2)),
            None
        );
        assert_eq!(signer("another key").verify(&token, now), None);
    }

    #[test]
    fn a_tampered_link_is_refused() {
        let now = Utc::now();
        let token = signer("k").manage_token(SubscriberId::new(), now + chrono::Duration::days(1));
        let other = SubscriberId::new().to_string();
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &other;
        assert_eq!(signer("k").verify(&parts.join("."), now), None);
        let later = (now + chrono::Duration::days(900)).timestamp().to_string();
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = &later;
        assert_eq!(signer("k").verify(&parts.join("."), now), None);
        assert_eq!(signer("k").verify("s1.x.1.00", now), None);
        assert_eq!(signer("k").verify("", now), None);
    }
}
