//! The admins' trial queue as a page: who may see it, what it shows, and
//! that its buttons decide, undo and refuse exactly as the JSON API does.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{form_token, html_unescape, location, TestApp, PASSWORD};

const QUEUE: &str = "/admin/trials";

/// A verified, logged-in reader called `name`.
async fn reader_named(app: &TestApp, email: &str, name: &str) -> reqwest::Client {
    let registered = app
        .post(
            &app.api,
            "/api/v1/accounts",
            json!({ "email": email, "password": PASSWORD, "name": name }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let token = app.mailbox.nth(email, 1).await.token();
    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    client
}

/// Asks for a trial for `company`; returns the request's id.
async fn asks(app: &TestApp, reader: &reqwest::Client, company: &str) -> String {
    let response = app.request_trial(reader, company).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let trial: Value = response.json().await.expect("json");
    trial["id"].as_str().expect("an id").to_owned()
}

async fn status_of(app: &TestApp, reader: &reqwest::Client) -> String {
    app.get_json(reader, "/api/v1/trials/mine").await["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

/// The queue as the admin sees it, entities undone so that text can be
/// looked for as written.
async fn queue_page(app: &TestApp, admin: &reqwest::Client) -> String {
    let (status, html) = app.page(admin, QUEUE).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    html_unescape(&html)
}

/// Follows a redirect with the same browser; returns where it went and the
/// page there (with its flash).
async fn follow(
    app: &TestApp,
    client: &reqwest::Client,
    response: reqwest::Response,
) -> (String, String) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    let (status, html) = app.page(client, &to).await;
    assert_eq!(status, StatusCode::OK, "{to}: {html}");
    (to, html_unescape(&html))
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_admins_see_the_queue_and_only_admins_decide() {
    let app = TestApp::spawn().await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;

    let anonymous = TestApp::browser();
    let response = app.get(&anonymous, QUEUE).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Ftrials");

    let response = app.get(&reader, QUEUE).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(content_type(&response).starts_with("text/html"));
    let html = response.text().await.expect("a page");
    assert!(html.contains("You cannot do that here"), "{html}");
    assert!(!html.contains("Analytical Engines"), "{html}");

    let editor = app.editor().await;
    assert_eq!(
        app.get(&editor, QUEUE).await.status(),
        StatusCode::FORBIDDEN
    );

    // A reader with a genuine form token still may not decide.
    let approve = format!("{QUEUE}/{id}/approve");
    let refused = app.submit(&reader, "/trial", &approve, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(content_type(&refused).starts_with("text/html"));
    let refused = app.submit(&anonymous, "/login", &approve, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&app, &reader).await, "pending");
}

#[tokio::test]
async fn an_admin_sees_each_waiting_request_oldest_first_with_its_flags() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let early = reader_named(&app, "grace@gmail.com", "Grace Early").await;
    asks(&app, &early, "Navy Research").await;
    app.clock.advance(Duration::hours(47));
    let late = reader_named(&app, "ada@analyticalengines.com", "Ada Later").await;
    app.clock.advance(Duration::hours(2));
    asks(&app, &late, "Analytical Engines").await;

    let html = queue_page(&app, &admin).await;
    assert!(
        html.contains("2 waiting, 1 past the 48-hour promise"),
        "{html}"
    );
    let (first, second) = (
        html.find("Grace Early").expect("the early request"),
        html.find("Ada Later").expect("the late request"),
    );
    assert!(first < second, "oldest first");
    let (grace, ada) = html.split_at(second);
    for shown in [
        "grace@gmail.com",
        "Navy Research",
        "Patent attorney",
        "Following a case",
        "(49 hours ago)",
        "Uses a free email address, not a company one",
        "The account was less than 30 minutes old when it asked",
        "status-tag--overdue",
        "Overdue",
    ] {
        assert!(grace.contains(shown), "{shown} missing from:\n{grace}");
    }
    // Both asked from the test's loopback address.
    assert!(
        ada.contains("Analytical Engines")
            && ada.contains("Another request came from the same IP address in the last 30 days"),
        "{ada}"
    );
    assert!(!ada.contains("Overdue"), "{ada}");
    assert_eq!(
        html.matches(">Approve<span class=\"visually-hidden\">")
            .count(),
        2
    );
    assert_eq!(
        html.matches(">Reject<span class=\"visually-hidden\">")
            .count(),
        2
    );
}

#[tokio::test]
async fn approving_on_the_page_starts_the_trial_and_a_second_approval_is_told_it_was_decided() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let other_admin = app.admin().await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    let approve = format!("{QUEUE}/{id}/approve");
    // The second admin has the page open before the first decides.
    let (_, stale) = app.page(&other_admin, QUEUE).await;

    let approved = app.submit(&admin, QUEUE, &approve, &[]).await;
    let (to, html) = follow(&app, &admin, approved).await;
    assert_eq!(to, format!("{QUEUE}?decided={id}"));
    assert!(
        html.contains("You approved Ada Lovelace's request (Analytical Engines). You can undo this for 10 minutes"),
        "{html}"
    );
    assert!(
        html.contains(&format!("action=\"/admin/trials/{id}/undo\"")),
        "{html}"
    );
    assert!(html.contains(">Undo<span"), "{html}");
    assert!(
        html.contains("Nothing is waiting for a decision."),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "approved");

    let again = app
        .post_form(&other_admin, &approve, &form_token(&stale), &[])
        .await;
    let (to, html) = follow(&app, &other_admin, again).await;
    assert_eq!(to, QUEUE);
    assert!(
        html.contains("Ada Lovelace's request (Analytical Engines) had already been approved by someone else, so nothing was changed."),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "approved");

    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let started = app.mailbox.nth("ada@analyticalengines.com", 3).await;
    assert!(
        started.subject().contains("trial has started"),
        "{}",
        started.subject()
    );
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_a_decision_can_be_undone_within_its_minutes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let email = "bob@globex.com";
    let reader = reader_named(&app, email, "Bob Globex").await;
    let id = asks(&app, &reader, "Globex").await;
    let reject = format!("{QUEUE}/{id}/reject");

    let unexplained = app
        .submit(&admin, QUEUE, &reject, &[("reason", "  ")])
        .await;
    assert_eq!(unexplained.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_unescape(&unexplained.text().await.expect("a page"));
    assert!(html.contains("<title>Error: Trial requests"), "{html}");
    assert!(html.contains(&format!("href=\"#reason-{id}\"")), "{html}");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert_eq!(status_of(&app, &reader).await, "pending");

    let reason = "We could not confirm your role at Globex.";
    let rejected = app
        .submit(&admin, QUEUE, &reject, &[("reason", reason)])
        .await;
    let (_, html) = follow(&app, &admin, rejected).await;
    assert!(
        html.contains(
            "You turned down Bob Globex's request (Globex). You can undo this for 10 minutes"
        ),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "rejected");
    let note = app
        .get_json(&admin, "/api/v1/admin/trials?status=rejected")
        .await;
    assert_eq!(note["requests"][0]["decision_note"], reason);

    let undo = format!("{QUEUE}/{id}/undo");
    let undone = app
        .submit(&admin, &format!("{QUEUE}?decided={id}"), &undo, &[])
        .await;
    let (_, html) = follow(&app, &admin, undone).await;
    assert!(
        html.contains("The decision on Bob Globex's request (Globex) is undone"),
        "{html}"
    );
    assert!(html.contains("1 waiting"), "{html}");
    assert_eq!(status_of(&app, &reader).await, "pending");
    // The rejection's email was withdrawn with it.
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes + 1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.mailbox
            .to(email)
            .iter()
            .all(|m| !m.subject().starts_with("Your Masthead trial request")),
        "no rejection email after an undo"
    );

    // Past its minutes, a decision stands.
    let approved = app
        .submit(&admin, QUEUE, &format!("{QUEUE}/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let (status, page) = app.page(&admin, &format!("{QUEUE}?decided={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains(">Undo<span"),
        "no undo once the minutes are up"
    );
    let late = app.submit(&admin, QUEUE, &undo, &[]).await;
    let (_, html) = follow(&app, &admin, late).await;
    assert!(
        html.contains("The decision on Bob Globex's request (Globex) can no longer be undone"),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "approved");
}

#[tokio::test]
async fn a_decision_without_the_form_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    queue_page(&app, &admin).await;

    for action in ["approve", "reject"] {
        let path = format!("{QUEUE}/{id}/{action}");
        let bare = admin
            .post(app.url(&path))
            .header("Origin", &app.address)
            .form(&[("reason", "No token")])
            .send()
            .await
            .expect("sent");
        assert_eq!(bare.status(), StatusCode::FORBIDDEN, "{action}");
        assert!(content_type(&bare).starts_with("text/html"));
        let forged = app
            .post_form(&admin, &path, "forged", &[("reason", "Forged token")])
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(status_of(&app, &reader).await, "pending");
    let html = queue_page(&app, &admin).await;
    assert!(
        html.contains("1 waiting") && html.contains("Ada Lovelace"),
        "{html}"
    );
}
