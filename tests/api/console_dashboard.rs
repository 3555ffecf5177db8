//! The console's dashboard, its outgoing-mail page and its audit trail,
//! through HTTP as a browser sees them.

use chrono::Duration;
use reqwest::StatusCode;

use crate::helpers::{eventually, html_unescape, location, TestApp};

/// The text of a figure's value followed by its label, as the page shows it.
fn figure(value: impl std::fmt::Display, label: &str) -> String {
    format!("<span class=\"figure__value\">{value}</span> <span class=\"figure__label\">{label}")
}

#[tokio::test]
async fn only_admins_open_the_console_pages() {
    let app = TestApp::spawn().await;
    for path in ["/admin", "/admin/audit", "/admin/outbox"] {
        let anonymous = app.get(&TestApp::browser(), path).await;
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&anonymous).starts_with("/login?next="), "{path}");
    }
    let editor = app.editor().await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    for client in [&editor, &reader] {
        for path in ["/admin", "/admin/audit", "/admin/outbox"] {
            let (status, html) = app.page(client, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert!(html.contains("You cannot do that here"), "{path}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_counts_the_queue_the_list_and_the_mail() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let admin = app.admin().await;

    let (status, html) = app.page(&admin, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    let html = html_unescape(&html);
    assert!(
        html.contains(&figure(0, "waiting for a decision")),
        "{html}"
    );
    assert!(html.contains("No digest has started today"));

    // A reader asks for a trial, and the promise runs out.
    let reader = TestApp::browser();
    assert_eq!(
        app.register("reader@example.com", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let verification = app
        .outbox("reader@example.com")
        .into_iter()
        .find(|m| m.template == "verify_email")
        .expect("a verification message");
    let token = verification
        .text_body
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a token")
        .to_owned();
    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            serde_json::json!({ "token": token }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    app.login_with(&reader, "reader@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(
        app.request_trial(&reader, "Analytical Engines Ltd")
            .await
            .status(),
        StatusCode::CREATED
    );
    app.set_time(app.now() + Duration::hours(50));

    // Two sign-ups, one of them confirmed.
    assert_eq!(
        app.subscribe("one@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.subscribe("two@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let confirmation = app
        .outbox("one@example.com")
        .into_iter()
        .find(|m| m.template == "newsletter_confirm")
        .expect("a confirmation message");
    let token = confirmation
        .text_body
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a token")
        .to_owned();
    let confirmed = app
        .post(
            &app.api,
            "/api/v1/newsletter/confirm",
            serde_json::json!({ "token": token }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);

    let (_, html) = app.page(&admin, "/admin").await;
    let html = html_unescape(&html);
    assert!(
        html.contains(&figure(1, "waiting for a decision")),
        "{html}"
    );
    assert!(
        html.contains(&figure(1, "past the 48-hour promise")),
        "{html}"
    );
    assert!(
        html.contains(&figure("50 h", "oldest request waiting")),
        "{html}"
    );
    assert!(html.contains(&figure(2, "signed up")), "{html}");
    assert!(html.contains(&figure(1, "confirmed")), "{html}");
    // The worker is off: every message so far is still waiting.
    let waiting = app.outbox("reader@example.com").len()
        + app.outbox("one@example.com").len()
        + app.outbox("two@example.com").len();
    assert!(
        html.contains(&figure(waiting, "waiting in the outbox")),
        "{waiting} messages: {html}"
    );
    assert!(html.contains("href=\"/admin/trials\""));
    assert!(html.contains("href=\"/admin/outbox\""));

    // Today's digest, once started (the worker is off: it waits to be prepared).
    let today = app
        .now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
        .to_string();
    let started = app
        .post(
            &admin,
            &format!("/api/v1/admin/digests/{today}/send"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let (_, html) = app.page(&admin, "/admin").await;
    let html = html_unescape(&html);
    assert!(!html.contains("No digest has started today"), "{html}");
    assert!(
        html.contains(&format!("href=\"/admin/digests/{today}\"")),
        "{html}"
    );
}

#[tokio::test]
async fn the_outbox_page_shows_waiting_and_given_up_mail() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test mail server refuses `bounce…` addresses for good.
    assert_eq!(
        app.subscribe("bounce-dead@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    eventually("the message is given up on", || {
        app.outbox("bounce-dead@example.com")
            .iter()
            .any(|m| m.status == masthead::platform::mail::model::OutboxStatus::Failed)
    })
    .await;
    let (status, html) = app.page(&admin, "/admin/outbox?status=failed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("bounce-dead@example.com"), "{html}");
    assert!(html.contains("newsletter_confirm"));
    let (_, html) = app.page(&admin, "/admin/outbox").await;
    assert!(
        !html.contains("bounce-dead@example.com"),
        "not waiting any more"
    );
}

#[tokio::test]
async fn the_audit_trail_names_who_did_what_newest_first() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.set_time(app.now() + Duration::seconds(5));
    let draft = app
        .draft(
            &editor,
            crate::helpers::article("Pill patent revoked", "patents", &[], "Text."),
        )
        .await;
    let admin = app.admin().await;
    let (status, html) = app.page(&admin, "/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    let html = html_unescape(&html);
    let created = html
        .find("article.create")
        .expect("the draft is in the trail");
    let section = html
        .find("section.create")
        .expect("the section is in the trail");
    assert!(created < section, "newest first: {html}");
    assert!(
        html.contains("Grace Hopper <editor-"),
        "the editor is named: {html}"
    );
    let id = draft["id"].as_str().expect("id");
    assert!(html.contains(&format!("href=\"/admin/articles/{id}\"")));
}
