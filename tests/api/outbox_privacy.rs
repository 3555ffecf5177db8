//! Delivered mail leaves no live link behind in the outbox.

use chrono::Duration;
use masthead::platform::mail::model::OutboxStatus;
use reqwest::StatusCode;

use crate::helpers::{eventually, TestApp, PASSWORD};

#[tokio::test]
async fn a_sent_message_keeps_its_facts_but_not_its_bodies() {
    let app = TestApp::spawn().await;
    let email = "private@example.com";
    assert_eq!(
        app.register(email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    let received = app.mailbox.nth(email, 1).await;
    let token = received.token();
    assert!(received.text().contains(&token), "the reader gets the link");
    eventually("the outbox to record the delivery", || {
        app.outbox(email)
            .first()
            .is_some_and(|m| m.status == OutboxStatus::Sent)
    })
    .await;

    let message = app.outbox(email).remove(0);
    assert_eq!(message.template, "verify_email");
    assert!(message.subject.contains("Confirm your email address"));
    assert_eq!(message.attempts, 1);
    assert!(message.sent_at.is_some());
    assert!(message.text_body.is_empty(), "{}", message.text_body);
    assert!(message.html_body.is_empty(), "{}", message.html_body);
    assert!(!format!("{message:?}").contains(&token));
}

#[tokio::test]
async fn a_message_given_up_on_loses_its_bodies() {
    let app = TestApp::spawn().await;
    // The test mail server refuses bounce-* addresses for good.
    let email = "bounce-private@example.com";
    app.register(email, PASSWORD).await;
    eventually("the refusal to be recorded", || {
        app.outbox(email)
            .first()
            .is_some_and(|m| m.status == OutboxStatus::Failed)
    })
    .await;
    let message = app.outbox(email).remove(0);
    assert_eq!(message.template, "verify_email");
    assert!(message.last_error.is_some(), "the reason stays");
    assert!(message.text_body.is_empty(), "{}", message.text_body);
    assert!(message.html_body.is_empty(), "{}", message.html_body);
}

#[tokio::test]
async fn housekeeping_deletes_sent_mail_older_than_the_kept_days() {
    let app = TestApp::spawn().await;
    let keep = i64::from(app.settings.mail.keep_sent_days);
    let old = "old@example.com";
    app.register(old, PASSWORD).await;
    app.mailbox.nth(old, 1).await;
    eventually("the old message to be recorded as sent", || {
        app.outbox(old)
            .first()
            .is_some_and(|m| m.status == OutboxStatus::Sent)
    })
    .await;
    let old_id = app.outbox(old)[0].id;

    app.set_time(app.now() + Duration::days(keep) - Duration::hours(2));
    let young = "young@example.com";
    app.register(young, PASSWORD).await;
    app.mailbox.nth(young, 1).await;
    eventually("the young message to be recorded as sent", || {
        app.outbox(young)
            .first()
            .is_some_and(|m| m.status == OutboxStatus::Sent)
    })
    .await;

    // Housekeeping runs hourly on the injected clock.
    app.set_time(app.now() + Duration::hours(3));
    eventually("the old message to be purged", || {
        app.outbox(old).is_empty()
    })
    .await;
    assert_eq!(app.outbox(young).len(), 1, "a younger message is kept");
    let mut conn = app.pool().get().expect("conn");
    let attempts = masthead::platform::mail::store::attempts(&mut conn, old_id).expect("attempts");
    assert!(attempts.is_empty(), "its attempts go with it");
}
