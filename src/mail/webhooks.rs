//! Bounce and complaint events that mail providers post to a webhook,
//! checked against the provider's signature or credentials and reduced to
//! the same hard-bounce / soft-bounce / complaint events as every other
//! report. Only reads and checks: `NewsletterService::provider_report`
//! records what they say.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::newsletter::service::BounceKind;

/// How far a Mailgun timestamp may be from our clock: a captured request
/// cannot be replayed after this.
const MAILGUN_MAX_SKEW_SECS: i64 = 15 * 60;

/// What a provider reported, about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub email: String,
    pub kind: BounceKind,
    pub detail: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("this provider's webhook is not configured")]
    NotConfigured,
    #[error("the signature or credentials do not match")]
    Unauthorized,
}

/// A Mailgun webhook (`failed` and `complained` events).
#[derive(Debug, Deserialize, ToSchema)]
pub struct MailgunWebhook {
    pub signature: MailgunSignature,
    #[serde(rename = "event-data")]
    pub event_data: MailgunEvent,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MailgunSignature {
    pub timestamp: String,
    pub token: String,
    /// Hex HMAC-SHA256 of `timestamp` and `token` under the signing key.
    pub signature: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MailgunEvent {
    /// `failed` or `complained`; others are ignored.
    pub event: String,
    /// For `failed`: `permanent` or `temporary`.
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(rename = "delivery-status", default)]
    #[schema(value_type = Option<Object>)]
    pub delivery_status: Option<serde_json::Value>,
}

/// A Postmark bounce or spam-complaint webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PostmarkWebhook {
    /// `Bounce` or `SpamComplaint`; others are ignored.
    pub record_type: String,
    /// The bounce type: `HardBounce`, `SoftBounce`, `Transient`…
    #[serde(rename = "Type", default)]
    pub bounce_type: Option<String>,
    pub email: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

fn configured(secret: Option<&SecretString>) -> Result<&str, WebhookError> {
    secret
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
        .ok_or(WebhookError::NotConfigured)
}

/// Checks a Mailgun webhook's signature and freshness; returns its event,
/// if it is a bounce or complaint.
pub fn mailgun(
    signing_key: Option<&SecretString>,
    hook: &MailgunWebhook,
    now: DateTime<Utc>,
) -> Result<Option<ProviderEvent>, WebhookError> {
    let key = configured(signing_key)?;
    let signature = &hook.signature;
    let timestamp: i64 = signature
        .timestamp
        .parse()
        .map_err(|_| WebhookError::Unauthorized)?;
    if (now.timestamp() - timestamp).abs() > MAILGUN_MAX_SKEW_SECS {
        return Err(WebhookError::Unauthorized);
    }
    let offered =
        hex::decode(signature.signature.trim()).map_err(|_| WebhookError::Unauthorized)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(signature.timestamp.as_bytes());
    mac.update(signature.token.as_bytes());
    mac.verify_slice(&offered)
        .map_err(|_| WebhookError::Unauthorized)?;

    let event = &hook.event_data;
    let kind = match (event.event.as_str(), event.severity.as_deref()) {
        ("failed", Some("permanent")) => BounceKind::HardBounce,
        ("failed", _) => BounceKind::SoftBounce,
        ("complained", _) => BounceKind::Complaint,
        _ => return Ok(None),
    };
    let Some(email) = event.recipient.clone() else {
        return Ok(None);
    };
    let status = event.delivery_status.as_ref();
    let said = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .filter(|v| !v.is_empty())
    };
    let detail = [
        said("code"),
        said("message").or_else(|| said("description")),
        event.reason.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    Ok(Some(ProviderEvent {
        email,
        kind,
        detail: format!("Mailgun {}: {detail}", event.event)
            .trim()
            .to_owned(),
    }))
}

/// Checks a Postmark webhook's credentials (`Authorization: Bearer
/// <token>`, or Basic with the token as the password, as Postmark sends
/// credentials written into the webhook's URL); returns its event, if it
/// is a bounce or complaint.
pub fn postmark(
    token: Option<&SecretString>,
    authorization: Option<&str>,
    hook: &PostmarkWebhook,
) -> Result<Option<ProviderEvent>, WebhookError> {
    let expected = configured(token)?;
    let offered = authorization.and_then(credential).unwrap_or_default();
    // Comparing digests keeps the time independent of where they differ.
    if Sha256::digest(offered.as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(WebhookError::Unauthorized);
    }
    let kind = match (hook.record_type.as_str(), hook.bounce_type.as_deref()) {
        ("SpamComplaint", _) => BounceKind::Complaint,
        ("Bounce", Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated")) => {
            BounceKind::HardBounce
        }
        ("Bounce", Some("SoftBounce" | "Transient" | "DnsError" | "MailFrontier")) => {
            BounceKind::SoftBounce
        }
        _ => return Ok(None),
    };
    let detail = [
        hook.bounce_type.clone(),
        hook.description.clone(),
        hook.details.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(": ");
    Ok(Some(ProviderEvent {
        email: hook.email.clone(),
        kind,
        detail: format!("Postmark {}: {detail}", hook.record_type),
    }))
}

/// The secret of an `Authorization` header: a bearer token, or the
/// password of Basic credentials.
fn credential(header: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, value) = header.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded
        .split_once(':')
        .map(|(_, password)| password.to_owned())
}
