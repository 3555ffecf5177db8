//! DKIM signatures on every message masthead sends, transactional and
//! newsletter alike: mailbox providers judge a domain by all of its mail.

use anyhow::Context;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;
use secrecy::ExposeSecret;

use crate::platform::config::{DkimAlgorithm, DkimSettings};

/// The headers every message has, and so every signature covers.
const ALWAYS_SIGNED: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];

/// The list headers of newsletter mail: RFC 8058 asks that the signature
/// cover List-Unsubscribe and List-Unsubscribe-Post.
const LIST_HEADERS: [&str; 3] = ["List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"];

/// Signs outgoing messages with the key of `[mail.dkim]`. The signed header
/// list names only headers the message has, so there are two configurations:
/// one for mail with list headers and one for mail without.
pub struct DkimSigner {
    plain: DkimConfig,
    list: DkimConfig,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DkimSigner(..)")
    }
}

impl DkimSigner {
    /// The signer `[mail.dkim]` describes, or none when it is unset.
    pub fn from_settings(settings: Option<&DkimSettings>) -> anyhow::Result<Option<Self>> {
        let Some(settings) = settings else {
            return Ok(None);
        };
        let plain = config(settings, ALWAYS_SIGNED.iter()).context("mail.dkim")?;
        let list = config(settings, ALWAYS_SIGNED.iter().chain(LIST_HEADERS.iter()))
            .context("mail.dkim")?;
        Ok(Some(Self { plain, list }))
    }

    /// Adds a `DKIM-Signature` header. Call it last: a header added after
    /// signing is not covered, and one changed breaks the signature.
    pub fn sign(&self, message: &mut Message) {
        let has_list_headers = LIST_HEADERS
            .iter()
            .all(|name| message.headers().get_raw(name).is_some());
        if has_list_headers {
            message.sign(&self.list);
        } else {
            message.sign(&self.plain);
        }
    }
}

fn config<'a>(
    settings: &DkimSettings,
    headers: impl Iterator<Item = &'a &'static str>,
) -> anyhow::Result<DkimConfig> {
    let algorithm = match settings.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(settings.private_key.expose_secret().trim(), algorithm)
        .map_err(|e| anyhow::anyhow!("private_key: {e}"))?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        headers
            .copied()
            .map(HeaderName::new_from_ascii_str)
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}
