//! Provider webhooks (Mailgun, Postmark): genuine reports suppress the
//! right address by the same policy as every other report; forged, stale
//! or unconfigured ones change nothing.

use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use masthead::platform::config::Settings;
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

/// The status and JSON body (null when there is none) of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The time the signed test payloads are fresh at.
fn a_morning() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 12, 9, 0, 0)
        .single()
        .expect("an instant")
}

async fn post(app: &TestApp, path: &str, auth: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app.api.post(app.url(path)).json(&body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request");
    answer(response).await
}

#[tokio::test]
async fn mailgun_reports_suppress_only_when_signed_and_fresh() {
    let now = a_morning();
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
    answer(response).await
}

#[tokio::test]
async fn sendgrid_batches_are_verified_with_their_ecdsa_signature() {
    let now = a_morning();
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

const SES_TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:masthead-ses";

/// An SNS notification of `ses` (SES's JSON), signed as SNS signs with the
/// test certificate's key (`tests/mail/sns`), in signature version `version`.
fn sns_notification(ses: &Value, topic: &str, version: &str) -> Value {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let message = ses.to_string();
    let (id, timestamp) = (
        "5e4c2bd5-4a3e-5b0a-9a7f-1f0e9c8d7b6a",
        "2027-01-12T09:00:00.000Z",
    );
    let signed = format!(
        "Message\n{message}\nMessageId\n{id}\nTimestamp\n{timestamp}\nTopicArn\n{topic}\nType\nNotification\n"
    );
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/mail/sns/signing-key.pem"
    ))
    .expect("the test key");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("an RSA key");
    let signature = match version {
        "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
            .sign(signed.as_bytes())
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
            .sign(signed.as_bytes())
            .to_vec(),
    };
    json!({
        "Type": "Notification", "MessageId": id, "TopicArn": topic, "Message": message,
        "Timestamp": timestamp, "SignatureVersion": version,
        "Signature": base64::engine::general_purpose::STANDARD.encode(signature),
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
    })
}

async fn post_sns(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    let response = app
        .api
        .post(app.url("/api/v1/webhooks/ses"))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    answer(response).await
}

#[tokio::test]
async fn ses_notifications_are_checked_against_the_sns_certificate_and_topic() {
    let app = TestApp::spawn_with(|settings| {
        settings.newsletter.ses_topic_arn = Some(SES_TOPIC.to_owned());
        settings.newsletter.ses_signing_cert = Some(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/mail/sns/signing-cert.pem"
            )
            .into(),
        );
    })
    .await;
    app.confirmed_subscriber("lin@example.com", 0).await;
    let bounce = json!({
        "notificationType": "Bounce",
        "bounce": { "bounceType": "Permanent", "reportingMTA": "dsn; a1-2.smtp-out.amazonses.com",
            "bouncedRecipients": [{ "emailAddress": "ada@example.com", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown" }] },
        "mail": { "source": "hello@masthead.example" },
    });

    // Another topic (signed by SNS all the same), or a tampered message.
    let (status, _) = post_sns(
        &app,
        &sns_notification(&bounce, "arn:aws:sns:eu-west-1:999:other", "2"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut tampered = sns_notification(&bounce, SES_TOPIC, "2");
    tampered["Message"] = json!(bounce.to_string().replace("ada@", "kay@"));
    let (status, _) = post_sns(&app, &tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app.suppression("ada@example.com").is_none());
    assert!(app.suppression("kay@example.com").is_none());

    let (status, body) = post_sns(&app, &sns_notification(&bounce, SES_TOPIC, "2")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suppressed"))
    );
    let ada = app.suppression("ada@example.com").expect("suppressed");
    assert_eq!(ada.reason, SuppressionReason::HardBounce);
    assert_eq!(
        ada.detail.as_deref(),
        Some("Amazon SES: 5.1.1 smtp; 550 5.1.1 user unknown dsn; a1-2.smtp-out.amazonses.com")
    );

    // Signature version 1 (SHA1withRSA), a complaint.
    let complaint = json!({
        "notificationType": "Complaint",
        "complaint": { "complaintFeedbackType": "abuse",
            "complainedRecipients": [{ "emailAddress": "lin@example.com" }] },
    });
    let (status, body) = post_sns(&app, &sns_notification(&complaint, SES_TOPIC, "1")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suppressed"))
    );
    assert_eq!(
        app.subscriber("lin@example.com").expect("kept").status,
        SubscriberStatus::Unsubscribed
    );
    let delivery = json!({ "notificationType": "Delivery", "delivery": {} });
    let (_, body) = post_sns(&app, &sns_notification(&delivery, SES_TOPIC, "2")).await;
    assert_eq!(body["status"], "ignored");
}
