//! VERP return paths: every message goes out with an envelope sender of its
//! own, `bounces+<token>@domain`, where the token names the message and so
//! its recipient, under an HMAC of the site key. A bounce comes back to that
//! address, so it is attributed even when the report names nobody (or the
//! wrong address, after forwarding), and nobody can forge one for an
//! address of their choosing.
//!
//! The token is lowercase hex, because mail systems may change the case of
//! a local part, and short enough for the 64 octets RFC 5321 allows one.

use hmac::{Hmac, Mac};
use lettre::Address;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use super::model::OutboxId;

type HmacSha256 = Hmac<Sha256>;

/// The local part before the `+`.
pub const LOCAL_PART: &str = "bounces";
/// 48 bits of the MAC: a guess costs a bounce message, so this is plenty.
const TAG_BYTES: usize = 6;
/// Of a digest's run, the first bytes of its id: the subscriber names the
/// recipient, the run is only evidence, and the whole of both would not fit.
const RUN_PREFIX_BYTES: usize = 4;

/// Which message a return path was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentMessage {
    /// A message of the outbox (confirmations, resets, welcomes…).
    Outbox(OutboxId),
    /// One subscriber's digest of a run, known by the first bytes of its
    /// id. Both are the ids the digest gives them; mail knows neither kind.
    Digest {
        subscriber: Uuid,
        run_prefix: [u8; RUN_PREFIX_BYTES],
    },
}

impl SentMessage {
    pub fn digest(run: Uuid, subscriber: Uuid) -> Self {
        let mut run_prefix = [0; RUN_PREFIX_BYTES];
        run_prefix.copy_from_slice(&run.as_bytes()[..RUN_PREFIX_BYTES]);
        Self::Digest {
            subscriber,
            run_prefix,
        }
    }

    /// What an admin is shown as evidence of where a bounce came from.
    pub fn describe(&self) -> String {
        match self {
            Self::Outbox(id) => format!("outbox message {id}"),
            Self::Digest {
                subscriber,
                run_prefix,
            } => format!(
                "digest run {}… to subscriber {subscriber}",
                hex::encode(run_prefix)
            ),
        }
    }

    fn payload(&self) -> String {
        match self {
            Self::Outbox(id) => format!("o{}", id.as_uuid().simple()),
            Self::Digest {
                subscriber,
                run_prefix,
            } => format!("d{}{}", subscriber.simple(), hex::encode(run_prefix)),
        }
    }

    fn from_payload(payload: &str) -> Option<Self> {
        let uuid = |hex: &str| Uuid::try_parse(hex).ok();
        match (payload.get(..1)?, payload.len()) {
            ("o", 33) => Some(Self::Outbox(OutboxId::from_uuid(uuid(&payload[1..])?))),
            ("d", 41) => {
                let mut run_prefix = [0; RUN_PREFIX_BYTES];
                hex::decode_to_slice(&payload[33..], &mut run_prefix).ok()?;
                Some(Self::Digest {
                    subscriber: uuid(&payload[1..33])?,
                    run_prefix,
                })
            }
            _ => None,
        }
    }
}

pub struct ReturnPaths {
    key: [u8; 32],
    domain: Option<String>,
}

impl std::fmt::Debug for ReturnPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReturnPaths(..)")
    }
}

impl ReturnPaths {
    /// Return paths under `domain`, or under the sender's own domain when
    /// it is unset.
    pub fn new(site_key: &SecretString, domain: Option<String>) -> Self {
        let mut mac = HmacSha256::new_from_slice(site_key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"mail-return-path");
        Self {
            key: mac.finalize().into_bytes().into(),
            domain: domain.filter(|d| !d.trim().is_empty()),
        }
    }

    fn tag(&self, payload: &str) -> [u8; TAG_BYTES] {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..TAG_BYTES]);
        tag
    }

    /// The envelope sender of `message`, sent from an address at
    /// `sender_domain`. None only if the configured domain is not one.
    pub fn address(&self, message: &SentMessage, sender_domain: &str) -> Option<Address> {
        let payload = message.payload();
        let tag = hex::encode(self.tag(&payload));
        let domain = self.domain.as_deref().unwrap_or(sender_domain);
        Address::new(format!("{LOCAL_PART}+{payload}{tag}"), domain).ok()
    }

    /// The message a return path was made for, if `address` is one of ours
    /// and its tag is genuine. Angle brackets and the domain are ignored.
    pub fn parse(&self, address: &str) -> Option<SentMessage> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = address.rsplit_once('@')?;
        let (name, token) = local.split_once('+')?;
        if !name.eq_ignore_ascii_case(LOCAL_PART) || !token.is_ascii() {
            return None;
        }
        let token = token.to_ascii_lowercase();
        let split = token.len().checked_sub(TAG_BYTES * 2)?;
        let (payload, tag) = token.split_at(split);
        let mut offered = [0; TAG_BYTES];
        hex::decode_to_slice(tag, &mut offered).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        mac.verify_truncated_left(&offered).ok()?;
        SentMessage::from_payload(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paths() -> ReturnPaths {
        ReturnPaths::new(&SecretString::from("a site key".to_owned()), None)
    }

    #[test]
    fn a_return_path_names_its_message_and_fits_a_local_part() {
        let paths = paths();
        for message in [
            SentMessage::Outbox(OutboxId::new()),
            SentMessage::digest(Uuid::new_v4(), Uuid::new_v4()),
        ] {
            let address = paths.address(&message, "example.com").expect("an address");
            let local = address.user();
            assert!(local.len() <= 64, "{local} is too long");
            let written: &str = address.as_ref();
            assert_eq!(paths.parse(written), Some(message));
            let shouted = format!("<{}>", address.to_string().to_ascii_uppercase());
            assert_eq!(paths.parse(&shouted), Some(message), "case is kept");
        }
    }

    #[test]
    fn a_forged_or_foreign_return_path_names_nothing() {
        let paths = paths();
        let message = SentMessage::Outbox(OutboxId::new());
        let address = paths.address(&message, "example.com").expect("an address");
        let other = ReturnPaths::new(&SecretString::from("another key".to_owned()), None);
        let written: &str = address.as_ref();
        assert_eq!(other.parse(written), None);
        let mut forged = address.to_string();
        forged.replace_range(9..10, if &forged[9..10] == "0" { "1" } else { "0" });
        assert_eq!(paths.parse(&forged), None);
    }

    proptest! {
        #[test]
        fn parsing_anything_never_panics(input in ".{0,120}") {
            let _ = paths().parse(&input);
        }
    }
}
