//! The trial queue in a real browser: two admins at work on the same
//! request, the undo, and a reader kept out. The queue and a request's page
//! are screenshotted at desktop and phone width and checked with axe-core.

use chrono::Duration;

use crate::admin_pages::{admin_named, asks, reader_named};
use crate::browser::Browser;
use crate::helpers::{TestApp, PASSWORD};

/// Logs `browser` in through the login page.
async fn log_in(browser: &Browser, email: &str) {
    browser.goto("/login").await;
    browser.wait_for_text("Log in").await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("You are logged in").await;
}

#[tokio::test]
async fn two_admins_work_the_queue_and_the_second_is_told_who_decided() {
    let app = TestApp::spawn().await;
    let Some(ann) = Browser::start(
        "two_admins_work_the_queue_and_the_second_is_told_who_decided",
        &app,
    )
    .await
    else {
        return;
    };
    let (_, ann_email) = admin_named(&app, "Ann Admin").await;
    let (_, bob_email) = admin_named(&app, "Bob Second").await;
    // One request waiting past the promise, and a new one.
    let grace = reader_named(&app, "grace@gmail.com", "Grace Hopper").await;
    asks(&app, &grace, "Navy Research").await;
    app.clock.advance(Duration::hours(50));
    let reader_email = "ada@analyticalengines.com";
    let ada = reader_named(&app, reader_email, "Ada Lovelace").await;
    let id = asks(&app, &ada, "Analytical Engines").await;

    log_in(&ann, &ann_email).await;
    // The console opens on the morning's figures, the queue among them.
    ann.goto("/admin").await;
    let text = ann.wait_for_text("waiting for a decision").await;
    assert!(text.contains("past the 48-hour promise"), "{text}");
    ann.screenshot("console-dashboard").await;
    ann.axe("the dashboard").await;
    ann.goto("/admin/trials").await;
    let text = ann.wait_for_text("Ada Lovelace").await;
    for shown in [
        "2 waiting, 1 past the 48-hour promise",
        "Uses a free email address, not a company one",
        "The account was less than 30 minutes old when it asked",
        "Another request came from the same IP address in the last 30 days",
    ] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    // Badges are set in capitals.
    assert!(text.to_lowercase().contains("due in 48 hours"), "{text}");
    let overdue = ann.find(".status-tag--overdue").await.text().await;
    assert!(
        overdue.to_lowercase().starts_with("overdue by"),
        "{overdue}"
    );
    assert_eq!(ann.title().await, "Trial requests · Masthead");
    ann.screenshot("console-trials-queue").await;
    ann.axe("the trial queue").await;

    // A second admin opens the queue before the first decides.
    let Some(bob) = Browser::start("two_admins_second_session", &app).await else {
        return;
    };
    log_in(&bob, &bob_email).await;
    bob.goto("/admin/trials").await;
    bob.wait_for_text("Ada Lovelace").await;

    ann.click_button("Approve Ada Lovelace").await;
    let text = ann
        .wait_for_text("You approved Ada Lovelace's request (Analytical Engines)")
        .await;
    assert!(text.contains("You can undo the approval until"), "{text}");
    assert!(text.contains("(10 minutes left)"), "{text}");
    // A few seconds between steps, as a person takes, keep the history in order.
    app.clock.advance(Duration::seconds(5));
    ann.click_button("Undo the approval").await;
    ann.wait_for_text("is undone: it is waiting in the queue again")
        .await;
    app.clock.advance(Duration::seconds(5));
    ann.click_button("Approve Ada Lovelace").await;
    ann.wait_for_text("You approved Ada Lovelace's request")
        .await;

    bob.click_button("Approve Ada Lovelace").await;
    let text = bob
        .wait_for_text("was already decided by Ann Admin at")
        .await;
    assert!(text.contains("Nothing was changed."), "{text}");
    assert!(!text.contains("Sorry, something went wrong"), "{text}");
    drop(bob);

    // The request's own page: the applicant, the history, the way to end it.
    ann.goto(&format!("/admin/trials/{id}")).await;
    let text = ann.wait_for_text("History").await;
    for shown in [
        "Ada Lovelace's trial request",
        "ada@analyticalengines.com",
        "Undid the decision",
        "Running until",
        "End trial now",
        "You can undo the approval until",
    ] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    ann.screenshot("console-trial-detail").await;
    ann.axe("a trial request's page").await;
    drop(ann);

    // A reader who finds the address gets the 403 page.
    let Some(reader) = Browser::start("two_admins_reader_session", &app).await else {
        return;
    };
    log_in(&reader, reader_email).await;
    reader.goto("/admin/trials").await;
    let text = reader.wait_for_text("You cannot do that here").await;
    assert!(!text.contains("Grace Hopper"), "{text}");
    assert_eq!(
        reader.find("h1").await.text().await,
        "You cannot do that here"
    );
}
