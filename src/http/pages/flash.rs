//! One-time messages carried across a redirect (POST-redirect-GET) in a
//! signed cookie, so that a reload never re-submits and nobody can make the
//! site appear to say something it did not.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const COOKIE_NAME: &str = "masthead_flash";
const MAC_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Success,
    Info,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: Kind,
    pub message: String,
}

pub struct FlashSigner {
    key: SecretString,
}

impl FlashSigner {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"flash\n");
        mac.update(payload.as_bytes());
        mac
    }

    pub fn cookie(&self, flash: &Flash, secure: bool) -> Cookie<'static> {
        let payload = hex::encode(serde_json::to_vec(flash).unwrap_or_default());
        let tag = self.mac(&payload).finalize().into_bytes();
        Cookie::build(
            COOKIE_NAME,
            format!("{payload}.{}", hex::encode(&tag[..MAC_BYTES])),
        )
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::minutes(5))
        .finish()
    }

    /// The message waiting for this request, if it is genuine.
    pub fn read(&self, req: &HttpRequest) -> Option<Flash> {
        let cookie = req.cookie(COOKIE_NAME)?;
        let (payload, tag) = cookie.value().split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(payload).verify_truncated_left(&tag).ok()?;
        serde_json::from_slice(&hex::decode(payload).ok()?).ok()
    }
}

/// Removes the message once shown.
pub fn removal(secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE_NAME, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish();
    cookie.make_removal();
    cookie
}
