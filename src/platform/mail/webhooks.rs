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

use super::suppression::BounceKind;

/// How far a signed timestamp may be from our clock: a captured request
/// cannot be replayed after this.
const MAX_SKEW_SECS: i64 = 15 * 60;

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
    #[error("the body is not a list of events: {0}")]
    Malformed(String),
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
    if (now.timestamp() - timestamp).abs() > MAX_SKEW_SECS {
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

/// One event of SendGrid's event webhook, which posts a JSON array of them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendgridEvent {
    pub email: String,
    /// `bounce`, `deferred` or `spamreport`; others are ignored.
    pub event: String,
    /// For `bounce`: `bounce` (permanent) or `blocked`.
    #[serde(rename = "type", default)]
    pub bounce_type: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub status: Option<serde_json::Value>,
}

/// What SendGrid's signed event webhook sent: its two headers and the
/// body exactly as received, since the signature covers the raw bytes.
#[derive(Debug)]
pub struct SendgridPost {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub body: Vec<u8>,
}

/// Checks a SendGrid signed event webhook (ECDSA P-256 over the timestamp
/// and the raw body, under the verification key SendGrid shows as base64
/// DER); returns its bounces and complaints.
pub fn sendgrid(
    verification_key: Option<&str>,
    post: &SendgridPost,
    now: DateTime<Utc>,
) -> Result<Vec<ProviderEvent>, WebhookError> {
    verify_sendgrid(verification_key, post, now)?;
    let events: Vec<SendgridEvent> =
        serde_json::from_slice(&post.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    Ok(events.into_iter().filter_map(sendgrid_event).collect())
}

/// The signature over the timestamp and the raw body, and a timestamp
/// within `MAX_SKEW_SECS` of now.
fn verify_sendgrid(
    verification_key: Option<&str>,
    post: &SendgridPost,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    use base64::Engine;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;

    let key = verification_key
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(WebhookError::NotConfigured)?;
    let base64 = &base64::engine::general_purpose::STANDARD;
    let key = base64
        .decode(key)
        .ok()
        .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
        .ok_or_else(|| {
            tracing::error!("newsletter.sendgrid_verification_key is not a base64 DER P-256 key");
            WebhookError::NotConfigured
        })?;
    let timestamp = post
        .timestamp
        .as_deref()
        .ok_or(WebhookError::Unauthorized)?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| WebhookError::Unauthorized)?;
    if (now.timestamp() - at).abs() > MAX_SKEW_SECS {
        return Err(WebhookError::Unauthorized);
    }
    let signature = post
        .signature
        .as_deref()
        .and_then(|s| base64.decode(s.trim()).ok())
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or(WebhookError::Unauthorized)?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(&post.body);
    key.verify(&signed, &signature)
        .map_err(|_| WebhookError::Unauthorized)
}

/// A SendGrid event as a bounce or complaint; none for the other events.
fn sendgrid_event(event: SendgridEvent) -> Option<ProviderEvent> {
    let kind = match (event.event.as_str(), event.bounce_type.as_deref()) {
        ("bounce", Some("blocked")) | ("deferred", _) => BounceKind::SoftBounce,
        ("bounce", _) => BounceKind::HardBounce,
        ("spamreport", _) => BounceKind::Complaint,
        _ => return None,
    };
    let status = event
        .status
        .as_ref()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let detail = [status, event.reason]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Some(ProviderEvent {
        email: event.email,
        kind,
        detail: format!("SendGrid {}: {detail}", event.event)
            .trim()
            .to_owned(),
    })
}

/// An Amazon SNS message: SES publishes its bounce and complaint
/// notifications to an SNS topic, which posts them here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    /// For a notification: SES's JSON, as a string.
    pub message: String,
    pub timestamp: String,
    /// `1` (SHA1withRSA) or `2` (SHA256withRSA).
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// Checks an SNS message's signature with the certificate in
/// `certificate_file` (SNS's signing certificate, downloaded once from its
/// `SigningCertURL`: masthead fetches nothing) and that it comes from
/// `topic_arn` (anyone can have SNS sign messages of their own topics);
/// returns the SES bounces and complaints it carries. A subscription
/// confirmation is logged with the address that confirms it.
pub fn ses(
    topic_arn: Option<&str>,
    certificate_file: Option<&std::path::Path>,
    message: &SnsMessage,
) -> Result<Vec<ProviderEvent>, WebhookError> {
    use base64::Engine;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    let topic_arn = topic_arn
        .filter(|t| !t.is_empty())
        .ok_or(WebhookError::NotConfigured)?;
    let key = certificate_file
        .ok_or(WebhookError::NotConfigured)
        .and_then(|path| {
            signing_key(path).map_err(|error| {
                tracing::error!(%error, path = %path.display(), "newsletter.ses_signing_cert cannot be read");
                WebhookError::NotConfigured
            })
        })?;
    if message.topic_arn != topic_arn {
        return Err(WebhookError::Unauthorized);
    }
    let signed = sns_string_to_sign(message).ok_or(WebhookError::Unauthorized)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(message.signature.trim())
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .ok_or(WebhookError::Unauthorized)?;
    let verified = match message.signature_version.as_str() {
        "1" => VerifyingKey::<sha1::Sha1>::new(key).verify(signed.as_bytes(), &signature),
        "2" => VerifyingKey::<Sha256>::new(key).verify(signed.as_bytes(), &signature),
        _ => return Err(WebhookError::Unauthorized),
    };
    verified.map_err(|_| WebhookError::Unauthorized)?;

    match message.kind.as_str() {
        "Notification" => Ok(ses_events(&message.message)),
        "SubscriptionConfirmation" => {
            tracing::warn!(
                subscribe_url = message.subscribe_url.as_deref().unwrap_or(""),
                "SNS asks to confirm the subscription: open the SubscribeURL once"
            );
            Ok(Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

fn signing_key(path: &std::path::Path) -> anyhow::Result<rsa::RsaPublicKey> {
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{DecodePem, Encode};
    let pem = std::fs::read(path)?;
    let certificate = x509_cert::Certificate::from_pem(&pem)?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()?;
    Ok(rsa::RsaPublicKey::from_public_key_der(&spki)?)
}

/// The text SNS signs: some of the message's fields, in this order, each
/// as its name and value on lines of their own.
fn sns_string_to_sign(message: &SnsMessage) -> Option<String> {
    let fields: Vec<(&str, Option<&str>)> = match message.kind.as_str() {
        "Notification" => vec![
            ("Message", Some(&message.message)),
            ("MessageId", Some(&message.message_id)),
            ("Subject", message.subject.as_deref()),
            ("Timestamp", Some(&message.timestamp)),
            ("TopicArn", Some(&message.topic_arn)),
            ("Type", Some(&message.kind)),
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => vec![
            ("Message", Some(&message.message)),
            ("MessageId", Some(&message.message_id)),
            ("SubscribeURL", Some(message.subscribe_url.as_deref()?)),
            ("Timestamp", Some(&message.timestamp)),
            ("Token", Some(message.token.as_deref()?)),
            ("TopicArn", Some(&message.topic_arn)),
            ("Type", Some(&message.kind)),
        ],
        _ => return None,
    };
    Some(
        fields
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}\n{v}\n")))
            .collect(),
    )
}

/// The bounces and complaints of one SES notification (or event).
fn ses_events(message: &str) -> Vec<ProviderEvent> {
    let Ok(notification) = serde_json::from_str::<serde_json::Value>(message) else {
        return Vec::new();
    };
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let kind = notification
        .get("notificationType")
        .or_else(|| notification.get("eventType"));
    let (kind, recipients, detail) = match kind.and_then(|k| k.as_str()) {
        Some("Bounce") => {
            let bounce = &notification["bounce"];
            let kind = match bounce["bounceType"].as_str() {
                Some("Permanent") => BounceKind::HardBounce,
                _ => BounceKind::SoftBounce,
            };
            (
                kind,
                &bounce["bouncedRecipients"],
                text(&bounce["reportingMTA"]),
            )
        }
        Some("Complaint") => {
            let complaint = &notification["complaint"];
            if complaint["complaintFeedbackType"] == "not-spam" {
                return Vec::new();
            }
            (
                BounceKind::Complaint,
                &complaint["complainedRecipients"],
                text(&complaint["complaintFeedbackType"]),
            )
        }
        _ => return Vec::new(),
    };
    recipients
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|recipient| {
            let email = recipient["emailAddress"].as_str()?.to_owned();
            let said = [
                text(&recipient["status"]),
                text(&recipient["diagnosticCode"]),
                detail.clone(),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
            Some(ProviderEvent {
                email,
                kind,
                detail: format!("Amazon SES: {said}").trim().to_owned(),
            })
        })
        .collect()
}
