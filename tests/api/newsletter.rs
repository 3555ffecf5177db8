use chrono::Duration;
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use masthead::platform::mail::model::OutboxStatus;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, eventually, ReceivedEmail, TestApp, NEWSLETTER_SECTIONS, PASSWORD,
};

const SIGN_UP: &str = "/api/v1/newsletter/subscriptions";

/// The token of the unsubscribe link in a newsletter email.
fn unsubscribe_token(mail: &ReceivedEmail) -> String {
    mail.link_containing("/unsubscribe/")
        .rsplit('/')
        .next()
        .expect("a token")
        .to_owned()
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

impl TestApp {
    async fn reader_put(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        client
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }
}

#[tokio::test]
async fn sign_up_confirm_and_welcome() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "reader@example.com";

    let response = app
        .post(
            &app.api,
            SIGN_UP,
            json!({ "email": " Reader@Example.COM ", "sections": ["copyright", "patents"] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let stored = app.subscriber(email).expect("a pending sign-up");
    assert_eq!(stored.status, SubscriberStatus::Pending);
    assert_eq!(stored.sections.as_slice(), ["patents", "copyright"]);
    assert_eq!(stored.source.as_str(), "api");
    assert_eq!(stored.consent_text, app.settings.newsletter.consent_text);

    let confirmation = app.mailbox.nth(email, 1).await;
    assert!(
        confirmation.subject().contains("Confirm your subscription"),
        "{}",
        confirmation.subject()
    );
    assert_eq!(
        confirmation.header("From").as_deref(),
        Some(app.settings.mail.from.as_str()),
        "a confirmation answers a request: it comes from the transactional sender"
    );
    assert!(confirmation
        .link_containing("/newsletter/confirm?token=")
        .starts_with(&app.settings.server.public_url));

    let confirmed = app
        .post(
            &TestApp::browser(),
            "/api/v1/newsletter/confirm",
            json!({ "token": confirmation.token() }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed
    );

    let welcome = app.mailbox.nth(email, 2).await;
    assert!(
        welcome.subject().contains("Welcome"),
        "{}",
        welcome.subject()
    );
    assert!(
        welcome.text().contains("patents, copyright"),
        "{}",
        welcome.text()
    );

    let preferences = json_of(
        app.get(
            &TestApp::browser(),
            &format!("/api/v1/newsletter/preferences?token={}", welcome.token()),
        )
        .await,
    )
    .await;
    assert_eq!(preferences["email"], email);
    assert_eq!(preferences["status"], "confirmed");
    assert_eq!(preferences["sections"], json!(["patents", "copyright"]));
    assert_eq!(preferences["paused_until"], Value::Null);
}

#[tokio::test]
async fn sign_up_answers_the_same_for_every_state_of_the_address() {
    let app = TestApp::spawn().await;
    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;

    app.confirmed_subscriber("confirmed@example.com", 0).await;
    app.confirmed_subscriber("gone@example.com", 0).await;
    let welcome = app.mailbox.nth("gone@example.com", 2).await;
    let unsubscribed = TestApp::browser()
        .post(app.url(&format!("/unsubscribe/{}", unsubscribe_token(&welcome))))
        .send()
        .await
        .expect("sent");
    assert_eq!(unsubscribed.status(), StatusCode::OK);
    app.subscribe("pending@example.com").await;
    let reported = app
        .post(
            &admin,
            "/api/v1/admin/bounces",
            json!({ "email": "complained@example.com", "type": "complaint" }),
        )
        .await;
    assert_eq!(reported.status(), StatusCode::ACCEPTED);

    let mut answers = Vec::new();
    for email in [
        "new@example.com",
        "pending@example.com",
        "confirmed@example.com",
        "gone@example.com",
        "complained@example.com",
    ] {
        let response = app.subscribe(email).await;
        answers.push((email, response.status(), json_of(response).await));
    }
    let (_, first_status, first_body) = answers[0].clone();
    assert_eq!(first_status, StatusCode::ACCEPTED);
    assert_eq!(first_body["status"], "accepted");
    for (email, status, body) in &answers {
        assert_eq!(*status, first_status, "{email}");
        assert_eq!(*body, first_body, "{email}");
    }
}

#[tokio::test]
async fn a_pending_address_gets_at_most_one_confirmation_per_interval() {
    // The rule under test is the resend interval; the form limits would
    // turn the repeats away before it is asked.
    let app = TestApp::spawn_with(crate::helpers::without_form_limits).await;
    let email = "eager@example.com";
    let interval = app.settings.newsletter.resend_interval_minutes;

    app.subscribe(email).await;
    app.subscribe(email).await;
    app.clock.advance(Duration::minutes(interval - 1));
    app.subscribe(email).await;
    assert_eq!(app.outbox(email).len(), 1, "one confirmation per interval");

    app.clock.advance(Duration::minutes(1));
    app.subscribe(email).await;
    assert_eq!(
        app.outbox(email).len(),
        2,
        "re-sent once the interval is over"
    );
    let mails = app.mailbox.wait_for(email, 2).await;
    assert_ne!(mails[0].token(), mails[1].token());
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Pending
    );
}

#[tokio::test]
async fn signing_up_a_confirmed_address_again_changes_nothing() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "settled@example.com";
    app.confirmed_subscriber(email, 0).await;
    let before = app.subscriber(email).expect("stored");

    app.clock.advance(Duration::minutes(
        app.settings.newsletter.resend_interval_minutes + 1,
    ));
    let again = app
        .post(
            &app.api,
            SIGN_UP,
            json!({ "email": email, "sections": ["designs"] }),
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);

    let after = app.subscriber(email).expect("stored");
    assert_eq!(after.status, SubscriberStatus::Confirmed);
    assert_eq!(after.sections, before.sections);
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(app.outbox(email).len(), 2, "no new message");
}

#[tokio::test]
async fn expired_reused_and_forged_confirmation_links_are_refused() {
    let app = TestApp::spawn().await;
    let confirm = |token: String| {
        let app = &app;
        async move {
            app.post(
                &TestApp::browser(),
                "/api/v1/newsletter/confirm",
                json!({ "token": token }),
            )
            .await
        }
    };

    app.subscribe("twice@example.com").await;
    let token = app.mailbox.nth("twice@example.com", 1).await.token();
    assert_eq!(confirm(token.clone()).await.status(), StatusCode::OK);
    assert_problem(
        confirm(token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;

    app.subscribe("late@example.com").await;
    let token = app.mailbox.nth("late@example.com", 1).await.token();
    app.clock.advance(
        Duration::hours(app.settings.newsletter.confirmation_ttl_hours) + Duration::seconds(1),
    );
    assert_problem(
        confirm(token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;
    assert_eq!(
        app.subscriber("late@example.com").expect("stored").status,
        SubscriberStatus::Pending
    );

    assert_problem(
        confirm("ab".repeat(32)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;
}

#[tokio::test]
async fn one_click_post_unsubscribes_without_a_cookie_and_get_does_not() {
    let app = TestApp::spawn().await;
    let email = "oneclick@example.com";
    let welcome = app.confirmed_subscriber(email, 0).await;
    assert!(welcome
        .link_containing("/unsubscribe/")
        .starts_with(&app.settings.server.public_url));
    let link = app.url(&format!("/unsubscribe/{}", unsubscribe_token(&welcome)));
    let scanner = reqwest::Client::new();

    let page = scanner.get(&link).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let html = page.text().await.expect("a page");
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains(email), "{html}");
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed,
        "a GET must not unsubscribe"
    );
    assert!(app.suppression(email).is_none());

    let clicked = scanner
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("sent");
    assert_eq!(clicked.status(), StatusCode::OK);
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Unsubscribed);
    assert!(stored.unsubscribed_at.is_some());
    assert_eq!(
        app.suppression(email).expect("suppressed").reason,
        SuppressionReason::Unsubscribed
    );

    let again = scanner.post(&link).send().await.expect("sent");
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a repeated POST is harmless"
    );

    let forged = scanner
        .get(app.url(&format!("/unsubscribe/{}", "cd".repeat(32))))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    let forged = scanner
        .post(app.url("/unsubscribe/not-a-token"))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn newsletter_mail_carries_exact_list_headers_and_its_own_sender() {
    let app = TestApp::spawn().await;
    let email = "headers@example.com";
    let welcome = app.confirmed_subscriber(email, 0).await;
    let confirmation = app.mailbox.nth(email, 1).await;
    let token = unsubscribe_token(&welcome);
    let settings = &app.settings;

    assert_eq!(
        mailparse::addrparse(&welcome.header("From").expect("a sender")).expect("a mailbox"),
        mailparse::addrparse(&settings.mail.newsletter_from).expect("a mailbox"),
    );
    assert_eq!(
        welcome.header("List-Unsubscribe").as_deref(),
        Some(
            format!(
                "<{}/unsubscribe/{token}>, <mailto:{}?subject=unsubscribe%20{token}>",
                settings.server.public_url, settings.newsletter.unsubscribe_mailto
            )
            .as_str()
        )
    );
    assert_eq!(
        welcome.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        welcome.header("List-Id").as_deref(),
        Some(settings.newsletter.list_id.as_str())
    );
    assert_eq!(
        welcome.token(),
        token,
        "the preferences link and the unsubscribe link share the email's token"
    );

    assert!(confirmation.header("List-Unsubscribe").is_none());
    assert!(confirmation.header("List-Id").is_none());
}

#[tokio::test]
async fn a_hard_bounce_from_the_mail_server_suppresses_the_address() {
    let app = TestApp::spawn().await;
    let email = "bounce.me@example.com";
    app.subscribe(email).await;

    eventually("the refusal to be recorded as a hard bounce", || {
        app.suppression(email)
            .is_some_and(|s| s.reason == SuppressionReason::HardBounce)
    })
    .await;
    assert_eq!(app.outbox(email)[0].status, OutboxStatus::Failed);

    app.clock.advance(Duration::minutes(
        app.settings.newsletter.resend_interval_minutes + 1,
    ));
    assert_eq!(app.subscribe(email).await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.outbox(email).len(), 1, "nothing more is queued");
}

#[tokio::test]
async fn suppressed_addresses_are_never_mailed_again() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;

    // A complaint: not even a confirmation goes out.
    let reported = app
        .post(
            &admin,
            "/api/v1/admin/bounces",
            json!({ "email": "Angry@Example.com", "type": "complaint", "detail": "feedback loop" }),
        )
        .await;
    assert_eq!(json_of(reported).await["status"], "suppressed");
    app.subscribe("angry@example.com").await;
    assert!(app.outbox("angry@example.com").is_empty());

    // Unsubscribed after the welcome was queued, before it went out.
    let email = "quick@example.com";
    app.subscribe(email).await;
    let confirmation = &app.outbox(email)[0];
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
            json!({ "token": token }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let welcome = app.outbox(email)[1].clone();
    assert_eq!(welcome.template, "newsletter_welcome");
    let manage = welcome
        .text_body
        .split("/unsubscribe/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an unsubscribe link")
        .to_owned();
    let unsubscribed = reqwest::Client::new()
        .post(app.url(&format!("/unsubscribe/{manage}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(unsubscribed.status(), StatusCode::OK);

    let app = app.restart(|s| s.worker.enabled = true).await;
    app.mailbox.wait_for("quick@example.com", 1).await;
    eventually("the welcome to be refused at delivery", || {
        app.outbox(email)
            .iter()
            .any(|m| m.template == "newsletter_welcome" && m.status == OutboxStatus::Failed)
    })
    .await;
    let delivered: Vec<String> = app
        .mailbox
        .to(email)
        .iter()
        .map(ReceivedEmail::subject)
        .collect();
    assert_eq!(delivered.len(), 1, "only the confirmation: {delivered:?}");
    assert!(delivered[0].contains("Confirm"));
}

#[tokio::test]
async fn invalid_addresses_are_refused_naming_email_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let long_local = format!("{}@example.com", "a".repeat(300));
    for email in [
        "no-at-sign.example.com",
        "example.com",
        "@example.com",
        "jane@localhost",
        "jane@example.com\r\nBcc: victim@example.org",
        "jane\n@example.com",
        long_local.as_str(),
        "",
    ] {
        let response = app.post(&app.api, SIGN_UP, json!({ "email": email })).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;
    }
    let response = app
        .post(
            &app.api,
            SIGN_UP,
            json!({ "email": "fine@example.com", "sections": ["sport"] }),
        )
        .await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("sections")).await;
    let response = app.post(&app.api, SIGN_UP, json!({ "sections": [] })).await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;

    use diesel::prelude::*;
    use masthead::platform::db::schema::{newsletter_subscribers, outbox};
    let mut conn = app.pool().get().expect("conn");
    let subscribers: i64 = newsletter_subscribers::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    let messages: i64 = outbox::table.count().get_result(&mut *conn).expect("count");
    assert_eq!((subscribers, messages), (0, 0));
}

#[tokio::test]
async fn a_verified_reader_subscribes_without_a_round_trip_and_manages_by_session() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "member@example.com";
    let reader = TestApp::browser();
    app.verified_reader(&reader, email).await;

    assert_problem(
        app.get(&reader, "/api/v1/newsletter/preferences").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let response = app
        .post(
            &reader,
            SIGN_UP,
            json!({ "email": email, "sections": ["trademarks"], "source": "web" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let welcome = app.mailbox.nth(email, 2).await;
    assert!(
        welcome.subject().contains("Welcome"),
        "{}",
        welcome.subject()
    );
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(stored.source.as_str(), "web");
    assert!(stored.account_id.is_some());
    let me = app.get_json(&reader, "/api/v1/me").await;
    assert_eq!(me["newsletter"]["status"], "confirmed");
    assert_eq!(me["newsletter"]["sections"], json!(["trademarks"]));

    let today = masthead::platform::clock::Clock::now(&*app.clock).date_naive();
    let pause = today + Duration::days(14);
    let updated = app
        .reader_put(
            &reader,
            "/api/v1/newsletter/preferences",
            json!({ "sections": ["copyright", "trademarks"], "paused_until": pause }),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let preferences = json_of(app.get(&reader, "/api/v1/newsletter/preferences").await).await;
    assert_eq!(preferences["sections"], json!(["trademarks", "copyright"]));
    assert_eq!(preferences["paused_until"], json!(pause));
    assert_eq!(preferences["status"], "confirmed");

    let resumed = app
        .reader_put(
            &reader,
            "/api/v1/newsletter/preferences",
            json!({ "paused_until": null }),
        )
        .await;
    assert_eq!(json_of(resumed).await["paused_until"], Value::Null);
    assert_problem(
        app.reader_put(
            &reader,
            "/api/v1/newsletter/preferences",
            json!({ "paused_until": today, "sections": [] }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("paused_until"),
    )
    .await;

    let unsubscribed = app
        .reader_put(
            &reader,
            "/api/v1/newsletter/preferences",
            json!({ "subscribed": false }),
        )
        .await;
    assert_eq!(json_of(unsubscribed).await["status"], "unsubscribed");
    let back = app
        .reader_put(
            &reader,
            "/api/v1/newsletter/preferences",
            json!({ "subscribed": true }),
        )
        .await;
    assert_eq!(json_of(back).await["status"], "confirmed");
    assert!(app.suppression(email).is_none(), "opting in again lifts it");

    assert_problem(
        app.get(&TestApp::browser(), "/api/v1/newsletter/preferences")
            .await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}

#[tokio::test]
async fn signing_up_the_address_of_an_account_links_the_two() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "has.an.account@example.com";
    assert_eq!(
        app.register(email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );

    // Signed up by someone not logged in, as the account is not verified.
    let response = app.post(&app.api, SIGN_UP, json!({ "email": email })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Pending);
    let address = masthead::platform::domain::EmailAddress::parse(email).expect("valid");
    let mut conn = app.pool().get().expect("conn");
    let account = masthead::accounts::store::find_by_email(&mut conn, &address)
        .expect("query")
        .expect("registered");
    assert_eq!(stored.account_id, Some(account.id));
}

#[tokio::test]
async fn registering_with_a_subscribed_address_links_the_two() {
    let app = TestApp::spawn().await;
    let email = "first.newsletter@example.com";
    app.confirmed_subscriber(email, 0).await;

    assert_eq!(
        app.register(email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    let stored = app.subscriber(email).expect("stored");
    assert!(stored.account_id.is_some(), "linked on registration");

    // Until the address is verified, a session is no proof of owning it.
    let reader = TestApp::browser();
    assert_eq!(
        app.login_with(&reader, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.get(&reader, "/api/v1/newsletter/preferences").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;

    let token = app.mailbox.nth(email, 3).await.token();
    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let preferences = json_of(app.get(&reader, "/api/v1/newsletter/preferences").await).await;
    assert_eq!(preferences["email"], email);
    assert_eq!(preferences["status"], "confirmed");
}

#[tokio::test]
async fn admins_list_and_lift_suppressions_and_take_bounce_reports() {
    let app = TestApp::spawn_with(|s| {
        s.newsletter.bounce_hook_token = Some("hook-secret-0123456789".to_owned().into());
    })
    .await;
    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let bounce =
        json!({ "email": "dead@example.com", "type": "hard_bounce", "detail": "550 no such user" });

    assert_problem(
        app.post(&TestApp::browser(), "/api/v1/admin/bounces", bounce.clone())
            .await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    assert_problem(
        app.post(&reader, "/api/v1/admin/bounces", bounce.clone())
            .await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    let wrong_hook = TestApp::browser()
        .post(app.url("/api/v1/admin/bounces"))
        .bearer_auth("not-the-secret")
        .json(&bounce)
        .send()
        .await
        .expect("sent");
    assert_problem(wrong_hook, StatusCode::UNAUTHORIZED, None).await;
    assert!(app.suppression("dead@example.com").is_none());

    let hook = TestApp::browser()
        .post(app.url("/api/v1/admin/bounces"))
        .bearer_auth("hook-secret-0123456789")
        .json(&bounce)
        .send()
        .await
        .expect("sent");
    assert_eq!(hook.status(), StatusCode::ACCEPTED);
    let soft = app
        .post(
            &admin,
            "/api/v1/admin/bounces",
            json!({ "email": "full@example.com", "type": "soft_bounce" }),
        )
        .await;
    assert_eq!(json_of(soft).await["status"], "noted");
    assert!(app.suppression("full@example.com").is_none());

    assert_problem(
        app.get(&reader, "/api/v1/admin/newsletter/suppressions")
            .await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    let listed = json_of(
        app.get(&admin, "/api/v1/admin/newsletter/suppressions")
            .await,
    )
    .await;
    assert_eq!(listed["total"], 1);
    let row = &listed["suppressions"][0];
    assert_eq!(row["email"], "dead@example.com");
    assert_eq!(row["reason"], "hard_bounce");
    assert_eq!(row["detail"], "550 no such user");

    app.subscribe("dead@example.com").await;
    assert!(app.outbox("dead@example.com").is_empty());

    let id = row["id"].as_str().expect("an id");
    let lifted = admin
        .delete(app.url(&format!("/api/v1/admin/newsletter/suppressions/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(lifted.status(), StatusCode::NO_CONTENT);
    let again = admin
        .delete(app.url(&format!("/api/v1/admin/newsletter/suppressions/{id}")))
        .send()
        .await
        .expect("sent");
    assert_problem(again, StatusCode::NOT_FOUND, None).await;

    app.subscribe("dead@example.com").await;
    let confirmation = app.mailbox.nth("dead@example.com", 1).await;
    assert!(confirmation.subject().contains("Confirm"));
}

#[tokio::test]
async fn a_subscriber_exports_and_erases_their_data() {
    let app = TestApp::spawn().await;
    let email = "private@example.com";
    let welcome = app.confirmed_subscriber(email, 0).await;
    let token = welcome.token();
    let stranger = TestApp::browser();

    eventually("the welcome to be recorded as sent", || {
        app.outbox(email)
            .iter()
            .all(|m| m.status == OutboxStatus::Sent)
    })
    .await;
    let export = app
        .get(&stranger, &format!("/api/v1/newsletter/data?token={token}"))
        .await;
    assert_eq!(export.status(), StatusCode::OK);
    let export = json_of(export).await;
    assert_eq!(export["email"], email);
    assert_eq!(export["status"], "confirmed");
    assert_eq!(export["source"], "api");
    assert_eq!(
        export["consent_text"],
        app.settings.newsletter.consent_text.as_str()
    );
    assert!(export["confirmed_at"].is_string());
    assert_eq!(export["messages"].as_array().map(Vec::len), Some(2));

    let erased = stranger
        .delete(app.url(&format!("/api/v1/newsletter/data?token={token}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert!(app.subscriber(email).is_none());
    assert!(
        app.outbox(email).is_empty(),
        "the newsletter mail is erased"
    );
    let suppression = app.suppression(email).expect("still suppressed, by hash");
    assert_eq!(suppression.reason, SuppressionReason::Erased);
    assert_eq!(suppression.email, None);
    assert_problem(
        app.get(
            &stranger,
            &format!("/api/v1/newsletter/preferences?token={token}"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;

    // Opting in again is the owner's choice, confirmed from the mailbox.
    let welcome_again = app.confirmed_subscriber(email, 2).await;
    assert!(welcome_again.subject().contains("Welcome"));
    assert!(app.suppression(email).is_none());
}

#[tokio::test]
async fn unconfirmed_sign_ups_are_purged_by_the_worker() {
    let app = TestApp::spawn().await;
    let email = "undecided@example.com";
    app.subscribe(email).await;
    let token = app.mailbox.nth(email, 1).await.token();
    assert!(app.subscriber(email).is_some());

    app.clock.advance(
        Duration::hours(app.settings.newsletter.unconfirmed_max_age_hours) + Duration::minutes(1),
    );
    eventually("the stale sign-up to be purged", || {
        app.subscriber(email).is_none()
    })
    .await;
    let confirmed = app
        .post(
            &app.api,
            "/api/v1/newsletter/confirm",
            json!({ "token": token }),
        )
        .await;
    assert_problem(confirmed, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;
}

/// Concurrent sign-ups each write in a transaction; on SQLite they queue for
/// the one writer instead of waiting in SQLite's busy handler, so none fails
/// even when that handler would give up at once.
#[tokio::test]
async fn concurrent_sign_ups_all_land_even_without_a_busy_wait() {
    let app = TestApp::spawn_with(|settings| {
        crate::helpers::without_form_limits(settings);
        settings.database.busy_timeout_ms = 0;
        settings.database.pool_size = 8;
    })
    .await;
    let sign_ups = (0..48).map(|n| {
        let app = &app;
        async move {
            app.api
                .post(app.url(SIGN_UP))
                .json(&json!({ "email": format!("crowd{n}@example.com") }))
                .send()
                .await
                .expect("the request is answered")
                .status()
        }
    });
    let statuses = futures_util::future::join_all(sign_ups).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );
    for n in 0..48 {
        let subscriber = app.subscriber(&format!("crowd{n}@example.com"));
        assert!(subscriber.is_some(), "crowd{n} was stored");
    }
}

/// A sign-up's writes go out together (on PostgreSQL as one statement): a
/// link refused by the database takes the subscriber written with it along.
#[tokio::test]
async fn writes_sent_together_land_together_or_not_at_all() {
    use masthead::newsletter::model::{NewSubscriber, NewToken, TokenPurpose};
    use masthead::newsletter::store;
    use masthead::newsletter::Sections;
    use masthead::newsletter::Source;
    use masthead::newsletter::SubscriberId;
    use masthead::platform::db::Writes;
    use masthead::platform::domain::{EmailAddress, Token};

    let app = TestApp::spawn().await;
    let email = "together@example.com";
    let address = EmailAddress::parse(email).expect("valid");
    let sections = Sections::parse(None, &[]).expect("no sections on offer");
    let at = app.now().naive_utc();
    let row = NewSubscriber {
        id: SubscriberId::new(),
        email: &address,
        account_id: None,
        status: SubscriberStatus::Pending,
        sections: &sections,
        source: Source::Api,
        consent_text: "test",
        created_at: at,
        updated_at: at,
        confirmation_sent_at: None,
        confirmed_at: None,
    };
    let link_for = |subscriber_id| NewToken {
        token_hash: Token::generate().hash(),
        subscriber_id,
        purpose: TokenPurpose::Confirm,
        created_at: at,
        expires_at: at,
    };
    let mut conn = app.pool().get().expect("conn");

    let mut writes = Writes::default();
    writes.push(store::insert(&row));
    writes.push(store::insert_token(link_for(SubscriberId::new())));
    let refused = writes.commit(&mut conn);
    assert!(
        matches!(
            refused,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        ),
        "a link to no subscriber is refused: {refused:?}"
    );
    drop(conn);
    assert!(app.subscriber(email).is_none(), "nothing half-written");

    let mut conn = app.pool().get().expect("conn");
    let mut writes = Writes::default();
    writes.push(store::insert(&row));
    writes.push(store::insert_token(link_for(row.id)));
    writes.commit(&mut conn).expect("stored");
    drop(conn);
    assert_eq!(app.subscriber(email).expect("stored").id, row.id);
}
