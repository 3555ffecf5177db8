//! What keeps forms and cookies from being used by another site: a token in
//! every form, a check of where a write came from, and the headers every
//! response carries.
//!
//! A form token is an HMAC, under the site key, of what the browser holds
//! (its session cookie, or nothing) and an expiry. It needs no cookie of its
//! own and no row, and for a visitor without a session it is the same for
//! everyone within the hour, so anonymous article pages stay cacheable by a
//! proxy. Against a logged-in reader it is a real CSRF token; for anonymous
//! forms the `Origin`/`Sec-Fetch-Site` check is what refuses another site.

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::http::session::COOKIE_NAME;

type HmacSha256 = Hmac<Sha256>;

/// The name of the hidden field that carries the token.
pub const FIELD: &str = "csrf_token";
const MAC_BYTES: usize = 16;
/// A page's token is good for at least a day after it was shown.
const LIFETIME_SECS: i64 = 25 * 3600;
const BUCKET_SECS: i64 = 3600;

pub struct FormTokens {
    key: SecretString,
}

impl FormTokens {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self, binding: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"form\n");
        mac.update(binding.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The token for forms shown to this request's browser now.
    pub fn issue(&self, req: &HttpRequest, now: DateTime<Utc>) -> String {
        let bucket = now.timestamp().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let expires = bucket + LIFETIME_SECS;
        let tag = self.mac(&binding(req), expires).finalize().into_bytes();
        format!("{expires}.{}", hex::encode(&tag[..MAC_BYTES]))
    }

    /// Whether `token` was issued to this browser and has not expired.
    pub fn verify(&self, req: &HttpRequest, token: &str, now: DateTime<Utc>) -> bool {
        let Some((expires, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), hex::decode(tag)) else {
            return false;
        };
        tag.len() == MAC_BYTES
            && now.timestamp() < expires
            && self
                .mac(&binding(req), expires)
                .verify_truncated_left(&tag)
                .is_ok()
    }
}

/// What a token is tied to: the session cookie's hash, or nothing.
fn binding(req: &HttpRequest) -> String {
    match req.cookie(COOKIE_NAME) {
        Some(cookie) if !cookie.value().is_empty() => {
            format!("session:{}", hex::encode(Sha256::digest(cookie.value())))
        }
        _ => "anonymous".to_owned(),
    }
}

/// Whether a write may go on: browsers name where a request came from, and
/// only this site may send one. Requests that name nothing (programs, mail
/// servers, `curl`) carry no ambient browser credentials of another site's
/// making, and pass.
pub fn same_origin_write(req: &ServiceRequest, public_url: &str) -> bool {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return true;
    }
    // RFC 8058: mail clients post one-click unsubscribes from anywhere; the
    // link's signature is the credential.
    if req.path().starts_with("/unsubscribe/") {
        return true;
    }
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site {
        return matches!(site, "same-origin" | "none");
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(origin) => {
            let info = req.connection_info();
            origin.trim_end_matches('/') == public_url
                || origin == format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// What a page may load: its own stylesheet and images, nothing inline, and
/// it may not be framed.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
    img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page policy, plus frames of this site's own pages.
pub const PAGE_WITH_FRAMES_POLICY: &str = "default-src 'none'; style-src 'self'; \
    script-src 'self'; img-src 'self' https: data:; frame-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The API browser (Swagger UI at `/api/docs/`): its own scripts and
/// stylesheets, the one `<style>` element its script adds (by its hash),
/// the `data:` icons they draw, and requests to this site for the
/// description and the calls tried from the page.
pub const DOCS_POLICY: &str = "default-src 'none'; \
    style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; script-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// The headers of every response; pages get a content security policy that
/// allows nothing inline.
pub fn add_headers<B>(response: &mut ServiceResponse<B>, https: bool) {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if response
        .request()
        .path()
        .starts_with(crate::http::api::openapi::DOCS_PATH)
    {
        DOCS_POLICY
    } else {
        PAGE_POLICY
    };
    let headers = response.headers_mut();
    let mut set_default = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    if is_html {
        set_default(header::CONTENT_SECURITY_POLICY, policy);
    }
    if https {
        set_default(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn tokens() -> FormTokens {
        FormTokens::new(SecretString::from("k".to_owned()))
    }

    #[test]
    fn a_token_belongs_to_its_session_and_expires() {
        let now = Utc::now();
        let anonymous = TestRequest::default().to_http_request();
        let alice = TestRequest::default()
            .cookie(actix_web::cookie::Cookie::new(COOKIE_NAME, "alice"))
            .to_http_request();
        let token = tokens().issue(&alice, now);
        assert!(tokens().verify(&alice, &token, now));
        assert!(!tokens().verify(&anonymous, &token, now));
        assert!(!tokens().verify(&alice, &token, now + chrono::Duration::hours(26)));
        assert!(
            !FormTokens::new(SecretString::from("other".to_owned())).verify(&alice, &token, now)
        );
        assert!(!tokens().verify(&alice, "", now));
        assert!(!tokens().verify(&alice, "1.zz", now));
    }

    #[test]
    fn anonymous_pages_share_a_token_within_the_hour() {
        let now = Utc::now();
        let a = TestRequest::default().to_http_request();
        let b = TestRequest::default().to_http_request();
        assert_eq!(tokens().issue(&a, now), tokens().issue(&b, now));
    }
}
