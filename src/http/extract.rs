//! Request extractors shared by every module's handlers.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::web::{BytesMut, Data};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::platform::config::IpRange;
use crate::platform::error::AppError;
use crate::state::AppState;

/// A JSON body: only `application/json`, only up to `server.body_limit_bytes`,
/// and a decoding error names the field it is about.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { decode(&body.await?).map(ApiJson) })
    }
}

/// A JSON body kept as sent, for a signature over its bytes: the same
/// checks of type and size as `ApiJson`, and no decoding.
#[derive(Debug)]
pub struct RawJson(pub Vec<u8>);

impl FromRequest for RawJson {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { Ok(RawJson(body.await?.to_vec())) })
    }
}

/// A JSON body that Amazon SNS posts as `text/plain`: `ApiJson`'s checks
/// with that type allowed too.
#[derive(Debug)]
pub struct SnsJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for SnsJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_text = matches!(
            req.mime_type(),
            Ok(Some(mime)) if mime.type_() == "text" && mime.subtype() == "plain"
        );
        let body = if is_text {
            body_of_type(req, payload, true)
        } else {
            json_body(req, payload)
        };
        Box::pin(async move { decode(&body.await?).map(SnsJson) })
    }
}

/// The body of a JSON request: only `application/json`, only up to
/// `server.body_limit_bytes`.
fn json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<BytesMut, AppError>> {
    let is_json = matches!(
        req.mime_type(),
        Ok(Some(mime)) if mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    );
    body_of_type(req, payload, is_json)
}

/// The body, up to `server.body_limit_bytes`, if its type is right.
fn body_of_type(
    req: &HttpRequest,
    payload: &mut Payload,
    is_json: bool,
) -> LocalBoxFuture<'static, Result<BytesMut, AppError>> {
    {
        let limit = req
            .app_data::<Data<AppState>>()
            .map_or(64 * 1024, |state| state.settings.server.body_limit_bytes);
        let declared_length = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(AppError::UnsupportedMediaType);
            }
            if declared_length.is_some_and(|n| n > limit) {
                return Err(AppError::PayloadTooLarge { limit });
            }
            read_body(payload, limit).await
        })
    }
}

/// The whole body, refused once it grows past `limit` bytes.
pub async fn read_body(mut payload: Payload, limit: usize) -> Result<BytesMut, AppError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::MalformedBody {
            detail: e.to_string(),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a JSON text holds an escaped U+0000 inside a string: no field
/// means it, and PostgreSQL cannot store it in text.
fn holds_nul(body: &[u8]) -> bool {
    body.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000"
            && body[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if holds_nul(body) {
        return Err(AppError::field(
            "body",
            "invalid_characters",
            "text cannot contain the NUL character",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = missing_field(&message)
                    .map(|name| {
                        if path == "." {
                            name.to_owned()
                        } else {
                            format!("{path}.{name}")
                        }
                    })
                    .unwrap_or(path);
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let reason = if message.starts_with("missing field") {
                    "required"
                } else {
                    "invalid_type"
                };
                AppError::field(&field, reason, message)
            }
            _ => AppError::MalformedBody {
                detail: inner.to_string(),
            },
        }
    })
}

/// serde reports a missing field against its parent, naming it in the message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// The client's address: the connection's peer, unless that peer is one of
/// `server.trusted_proxies`; then the rightmost `X-Forwarded-For` hop that is
/// not a trusted proxy. Hops further left are the client's to forge.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<Data<AppState>>() else {
        return Some(peer);
    };
    let trusted = &state.settings.server.trusted_proxies;
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    Some(forwarded_client(peer, &hops, trusted))
}

/// Walks from the peer leftwards through the forwarded hops while each one
/// is a trusted proxy; the first that is not is the client. A hop that does
/// not parse stops the walk at the last proxy that vouched for it.
fn forwarded_client(peer: IpAddr, hops: &[&str], trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// A hop as proxies write it: `203.0.113.7`, `2001:db8::1`, or with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// A page of a listing, checked: pages start at 1, and a page holds
/// between 1 and `max` items.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: i64,
    pub per_page: i64,
}

impl Paging {
    pub fn parse(
        page: Option<i64>,
        per_page: Option<i64>,
        default: i64,
        max: i64,
    ) -> Result<Self, AppError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(default);
        if page < 1 {
            return Err(AppError::field("page", "out_of_range", "pages start at 1"));
        }
        if !(1..=max).contains(&per_page) {
            return Err(AppError::field(
                "per_page",
                "out_of_range",
                format!("between 1 and {max}"),
            ));
        }
        // Callers add to the offset (the next page, the last row shown):
        // a page whose rows cannot be numbered is refused here, so that no
        // sum of these overflows.
        if page
            .checked_mul(per_page)
            .and_then(|n| n.checked_add(1))
            .is_none()
        {
            return Err(AppError::field(
                "page",
                "out_of_range",
                "there is no such page",
            ));
        }
        Ok(Self { page, per_page })
    }

    /// Cannot overflow: `parse` refused pages past the last numberable row.
    pub fn offset(self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// An id from the path; a malformed one is a 422 naming `id`.
pub fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, AppError> {
    raw.parse()
        .map_err(|_| AppError::field("id", "invalid_format", "not a valid id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u32,
    }

    fn field_of(result: Result<Body, AppError>) -> String {
        match result {
            Err(AppError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_an_escaped_nul_but_not_an_escaped_backslash_before_u0000() {
        assert!(holds_nul(br#"{"email": "a\u0000b"}"#));
        assert!(holds_nul(br#"{"email": "\\\u0000"}"#));
        assert!(!holds_nul(br#"{"email": "\\u0000"}"#));
        assert!(!holds_nul(br#"{"email": "u0000"}"#));
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field_of(decode(br#"{"age": 3}"#)), "email");
        assert_eq!(field_of(decode(br#"{"email": "a", "age": "x"}"#)), "age");
        assert!(matches!(
            decode::<Body>(b"{not json"),
            Err(AppError::MalformedBody { .. })
        ));
    }

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|r| r.parse().expect("a range")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = ranges(&["10.0.0.0/8"]);
        assert_eq!(
            forwarded_client(ip("198.51.100.1"), &["192.0.2.1"], &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &["192.0.2.1"], &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let hops = ["192.0.2.66", " 203.0.113.1", " 10.1.2.3"];
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &hops, &trusted),
            ip("203.0.113.1")
        );
        // Ports and IPv6 as proxies write them.
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &["[2001:db8::1]:4711"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &["203.0.113.9:80"], &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_chain_of_only_proxies_or_garbage_stops_at_the_last_proxy() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &["10.9.9.9"], &trusted),
            ip("10.9.9.9")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &["192.0.2.1", "unknown"], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &[], &trusted),
            ip("127.0.0.1")
        );
    }
}
