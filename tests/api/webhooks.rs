//! Provider webhooks (Mailgun, Postmark): genuine reports suppress the
//! right address by the same policy as every other report; forged, stale
//! or unconfigured ones change nothing.

use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use masthead::config::Settings;
use masthead::newsletter::{SubscriberStatus, SuppressionReason};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::TestApp;

const MAILGUN_KEY: &str = "key-mailgun-webhook-signing-0123456789";
const POSTMARK_TOKEN: &str = "postmark-webhook-secret-0123456789";

fn with_webhooks(settings: &mut Settings) {
    settings.newsletter.mailgun_signing_key = Some(MAILGUN_KEY.to_owned().into());
    settings.newsletter.postmark_webhook_token = Some(POSTMARK_TOKEN.to_owned().into());
}

fn mailgun_body(key: &str, timestamp: i64, event: Value) -> Value {
    let token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("a key");
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    json!({
        "signature": { "timestamp": timestamp.to_string(), "token": token, "signature": signature },
        "event-data": event,
    })
}

async fn post(app: &TestApp, path: &str, auth: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app.api.post(app.url(path)).json(&body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mailgun_reports_suppress_only_when_signed_and_fresh() {
    let now = Utc
        .with_ymd_and_hms(2027, 1, 12, 9, 0, 0)
        .single()
        .expect("an instant");
    let app = TestApp::spawn_at(now, with_webhooks).await;
    let failed = json!({
        "event": "failed", "severity": "permanent", "recipient": "ada@example.com",
        "reason": "bounce",
        "delivery-status": { "code": 550, "message": "5.1.1 The email account does not exist" },
    });

    // Signed with another key, or too old: refused, nothing recorded.
    let forged = mailgun_body("another key", now.timestamp(), failed.clone());
    let (status, _) = post(&app, "/api/v1/webhooks/mailgun", None, forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stale = mailgun_body(MAILGUN_KEY, now.timestamp() - 3600, failed.clone());
    let (status, _) = post(&app, "/api/v1/webhooks/mailgun", None, stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app.suppression("ada@example.com").is_none());

    let genuine = mailgun_body(MAILGUN_KEY, now.timestamp(), failed);
    let (status, body) = post(&app, "/api/v1/webhooks/mailgun", None, genuine).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suppressed"))
    );
    let suppression = app.suppression("ada@example.com").expect("suppressed");
    assert_eq!(suppression.reason, SuppressionReason::HardBounce);
    assert_eq!(
        suppression.detail.as_deref(),
        Some("Mailgun failed: 550 5.1.1 The email account does not exist bounce")
    );

    let temporary =
        json!({ "event": "failed", "severity": "temporary", "recipient": "lin@example.com" });
    let (_, body) = post(
        &app,
        "/api/v1/webhooks/mailgun",
        None,
        mailgun_body(MAILGUN_KEY, now.timestamp(), temporary),
    )
    .await;
    assert_eq!(body["status"], "noted");
    let delivered = json!({ "event": "delivered", "recipient": "lin@example.com" });
    let (_, body) = post(
        &app,
        "/api/v1/webhooks/mailgun",
        None,
        mailgun_body(MAILGUN_KEY, now.timestamp(), delivered),
    )
    .await;
    assert_eq!(body["status"], "ignored");
    assert!(app.suppression("lin@example.com").is_none());
}

#[tokio::test]
async fn postmark_reports_need_the_token_and_a_complaint_unsubscribes() {
    use base64::Engine;
    let app = TestApp::spawn_with(with_webhooks).await;
    app.confirmed_subscriber("ada@example.com", 0).await;
    let complaint = json!({
        "RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "ada@example.com",
        "Description": "The subscriber explicitly marked this message as spam.",
    });
    for auth in [None, Some("Bearer wrong"), Some("Basic d3Jvbmc6d3Jvbmc=")] {
        let (status, _) = post(&app, "/api/v1/webhooks/postmark", auth, complaint.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    assert!(app.suppression("ada@example.com").is_none());

    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("postmark:{POSTMARK_TOKEN}"));
    let (status, body) = post(
        &app,
        "/api/v1/webhooks/postmark",
        Some(&format!("Basic {basic}")),
        complaint,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suppressed"))
    );
    assert_eq!(
        app.suppression("ada@example.com")
            .expect("suppressed")
            .reason,
        SuppressionReason::Complaint
    );
    assert_eq!(
        app.subscriber("ada@example.com").expect("kept").status,
        SubscriberStatus::Unsubscribed
    );

    let bearer = format!("Bearer {POSTMARK_TOKEN}");
    let hard = json!({ "RecordType": "Bounce", "Type": "HardBounce", "Email": "kay@example.com",
        "Description": "The server was unable to deliver your message", "Details": "smtp;550 5.1.1 unknown" });
    let (_, body) = post(&app, "/api/v1/webhooks/postmark", Some(&bearer), hard).await;
    assert_eq!(body["status"], "suppressed");
    let auto =
        json!({ "RecordType": "Bounce", "Type": "AutoResponder", "Email": "lin@example.com" });
    let (_, body) = post(&app, "/api/v1/webhooks/postmark", Some(&bearer), auto).await;
    assert_eq!(body["status"], "ignored");
    assert!(app.suppression("lin@example.com").is_none());
}

#[tokio::test]
async fn an_unconfigured_webhook_is_not_there() {
    let app = TestApp::spawn().await;
    let body = json!({ "RecordType": "SpamComplaint", "Email": "ada@example.com" });
    let (status, _) = post(&app, "/api/v1/webhooks/postmark", Some("Bearer x"), body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let signed = mailgun_body("k", 0, json!({ "event": "complained" }));
    let (status, _) = post(&app, "/api/v1/webhooks/mailgun", None, signed).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A SendGrid signing key for the tests, and its public half as SendGrid
/// shows it (base64 DER).
fn sendgrid_keys() -> (p256::ecdsa::SigningKey, String) {
    use base64::Engine;
    // SubjectPublicKeyInfo of an id-ecPublicKey on prime256v1, then the
    // uncompressed point.
    const SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let key = p256::ecdsa::SigningKey::from_slice(&[0x5a; 32]).expect("a key");
    let mut der = hex::decode(SPKI_PREFIX).expect("hex");
    der.extend_from_slice(key.verifying_key().to_encoded_point(false).as_bytes());
    (key, base64::engine::general_purpose::STANDARD.encode(der))
}

async fn post_sendgrid(
    app: &TestApp,
    key: &p256::ecdsa::SigningKey,
    timestamp: i64,
    body: &str,
) -> (StatusCode, Value) {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    let signed = format!("{timestamp}{body}");
    let signature: p256::ecdsa::Signature = key.sign(signed.as_bytes());
    let response = app
        .api
        .post(app.url("/api/v1/webhooks/sendgrid"))
        .header("content-type", "application/json")
        .header(
            "X-Twilio-Email-Event-Webhook-Signature",
            base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
        )
        .header(
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        )
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sendgrid_batches_are_verified_with_their_ecdsa_signature() {
    let now = Utc
        .with_ymd_and_hms(2027, 1, 12, 9, 0, 0)
        .single()
        .expect("an instant");
    let (key, public) = sendgrid_keys();
    let app = TestApp::spawn_at(now, |settings| {
        settings.newsletter.sendgrid_verification_key = Some(public);
    })
    .await;
    app.confirmed_subscriber("lin@example.com", 0).await;
    let body = json!([
        { "email": "ada@example.com", "event": "bounce", "type": "bounce", "status": "5.1.1",
          "reason": "550 5.1.1 unknown user" },
        { "email": "kay@example.com", "event": "deferred", "reason": "452 mailbox full" },
        { "email": "lin@example.com", "event": "spamreport" },
        { "email": "not an address", "event": "bounce" },
        { "email": "max@example.com", "event": "delivered" },
    ])
    .to_string();

    // Signed by another key, over another body, or long ago: refused.
    let other = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).expect("a key");
    let (status, _) = post_sendgrid(&app, &other, now.timestamp(), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_sendgrid(&app, &key, now.timestamp() - 3600, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let tampered = app
        .api
        .post(app.url("/api/v1/webhooks/sendgrid"))
        .header("content-type", "application/json")
        .header("X-Twilio-Email-Event-Webhook-Signature", "MEUCIQ==")
        .header(
            "X-Twilio-Email-Event-Webhook-Timestamp",
            now.timestamp().to_string(),
        )
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
    assert!(app.suppression("ada@example.com").is_none());

    let (status, answer) = post_sendgrid(&app, &key, now.timestamp(), &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("suppressed"))
    );
    let ada = app.suppression("ada@example.com").expect("suppressed");
    assert_eq!(ada.reason, SuppressionReason::HardBounce);
    assert_eq!(
        ada.detail.as_deref(),
        Some("SendGrid bounce: 5.1.1 550 5.1.1 unknown user")
    );
    assert!(
        app.suppression("kay@example.com").is_none(),
        "a soft bounce is counted"
    );
    assert_eq!(
        app.suppression("lin@example.com")
            .expect("suppressed")
            .reason,
        SuppressionReason::Complaint
    );
    assert_eq!(
        app.subscriber("lin@example.com").expect("kept").status,
        SubscriberStatus::Unsubscribed
    );
    assert!(app.suppression("max@example.com").is_none());

    // Signed but not a list of events: 400.
    let (status, _) = post_sendgrid(&app, &key, now.timestamp(), "{\"not\": \"a list\"}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
