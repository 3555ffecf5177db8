//! Bounces and complaints that come back as mail, through `masthead mail
//! ingest` (the samples in tests/mail/samples), and the policy that turns
//! them, and reports to the bounce hook, into suppressions.

use chrono::{Duration, TimeZone, Utc};
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

pub fn sample(name: &str, return_path: &str, recipient: &str) -> String {
    let path = format!("{}/tests/mail/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect("a sample")
        .replace("{{return_path}}", return_path)
        .replace("{{recipient}}", recipient)
}

/// Runs `masthead mail ingest` on `message`; returns what it printed.
pub fn ingest(app: &TestApp, args: &[&str], message: &str) -> String {
    let mut all = vec!["mail", "ingest"];
    all.extend_from_slice(args);
    let out = app.cli(&all, message);
    assert!(
        out.status.success(),
        "mail ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_bounce_is_pinned_on_the_message_its_return_path_names() {
    let app = TestApp::spawn().await;
    let welcome = app.confirmed_subscriber("ada@example.com", 0).await;
    assert!(welcome.sender.starts_with("bounces+"), "{}", welcome.sender);

    // The report names the address the mail was forwarded to; the return
    // path says whose it was.
    let forwarded = "ada.lovelace@elsewhere.example";
    let said = ingest(
        &app,
        &[],
        &sample("postfix_hard.eml", &welcome.sender, forwarded),
    );
    assert_eq!(
        said.trim(),
        "hard_bounce at example.com (by its return path): suppressed"
    );
    let suppression = app.suppression("ada@example.com").expect("suppressed");
    assert_eq!(suppression.reason, SuppressionReason::HardBounce);
    let detail = suppression.detail.expect("evidence");
    assert!(
        detail.contains("DSN from mail.masthead.example: 5.1.1")
            && detail.contains("outbox message"),
        "{detail}"
    );
    assert!(app.suppression(forwarded).is_none());

    // The same return path, given by Postfix's pipe as the recipient
    // rather than in a header, is found as well.
    let grace = app.confirmed_subscriber("grace@example.com", 0).await;
    let exchange = sample(
        "exchange_hard.eml",
        "postmaster@masthead.example",
        forwarded,
    );
    let said = ingest(&app, &["--recipient", &grace.sender], &exchange);
    assert!(said.contains("(by its return path): suppressed"), "{said}");
    assert_eq!(
        app.suppression("grace@example.com")
            .expect("suppressed")
            .reason,
        SuppressionReason::HardBounce
    );
}

#[tokio::test]
async fn without_a_genuine_return_path_the_report_names_the_recipient() {
    let app = TestApp::spawn().await;
    let welcome = app.confirmed_subscriber("ada@example.com", 0).await;
    // A return path whose tag was tampered with names nothing.
    let mut forged = welcome.sender.clone();
    let at = forged.find('@').expect("an address") - 1;
    let last = if &forged[at..=at] == "0" { "1" } else { "0" };
    forged.replace_range(at..=at, last);
    let said = ingest(
        &app,
        &[],
        &sample("gmail_hard.eml", &forged, "lin@example.com"),
    );
    assert_eq!(said.trim(), "hard_bounce at example.com: suppressed");
    assert!(app.suppression("ada@example.com").is_none());
    let suppression = app.suppression("lin@example.com").expect("suppressed");
    assert!(suppression
        .detail
        .expect("evidence")
        .contains("550-5.1.1 The email account that you tried to reach does not exist"),);

    let said = ingest(
        &app,
        &[],
        &sample(
            "exchange_hard.eml",
            "someone@masthead.example",
            "kay@corp.example",
        ),
    );
    assert_eq!(said.trim(), "hard_bounce at corp.example: suppressed");
}

#[tokio::test]
async fn a_delay_is_a_soft_bounce_and_an_auto_reply_or_junk_is_ignored() {
    let app = TestApp::spawn().await;
    let welcome = app.confirmed_subscriber("ada@example.com", 0).await;
    let said = ingest(
        &app,
        &[],
        &sample("exim_delayed.eml", &welcome.sender, "ada@example.com"),
    );
    assert_eq!(
        said.trim(),
        "soft_bounce at example.com (by its return path): noted"
    );
    assert!(app.suppression("ada@example.com").is_none());

    let said = ingest(
        &app,
        &[],
        &sample("auto_reply.eml", &welcome.sender, "ada@example.com"),
    );
    assert!(said.starts_with("ignored: "), "{said}");
    for junk in [
        "",
        "hello",
        "Content-Type: multipart/report; report-type=delivery-status\n\n--x",
    ] {
        assert!(ingest(&app, &[], junk).starts_with("ignored: "));
    }
    assert!(app.suppression("ada@example.com").is_none());
    assert_eq!(
        app.subscriber("ada@example.com").expect("kept").status,
        SubscriberStatus::Confirmed
    );
}

#[tokio::test]
async fn a_complaint_unsubscribes_and_suppresses_at_once() {
    let app = TestApp::spawn().await;
    let welcome = app.confirmed_subscriber("ada@example.com", 0).await;
    let said = ingest(
        &app,
        &[],
        &sample("arf_complaint.eml", &welcome.sender, "ada@example.com"),
    );
    assert_eq!(
        said.trim(),
        "complaint at example.com (by its return path): suppressed"
    );
    let suppression = app.suppression("ada@example.com").expect("suppressed");
    assert_eq!(suppression.reason, SuppressionReason::Complaint);
    assert!(suppression
        .detail
        .expect("evidence")
        .starts_with("abuse report from fbl.mailbox.example"));
    assert_eq!(
        app.subscriber("ada@example.com").expect("kept").status,
        SubscriberStatus::Unsubscribed
    );
}

async fn soft_bounce(app: &TestApp, admin: &reqwest::Client, email: &str) -> String {
    let reported = app
        .post(
            admin,
            "/api/v1/admin/bounces",
            json!({ "email": email, "type": "soft_bounce", "detail": "452 4.2.2 Mailbox full" }),
        )
        .await;
    assert_eq!(reported.status(), StatusCode::ACCEPTED);
    let body: Value = reported.json().await.expect("json");
    body["status"].as_str().expect("a status").to_owned()
}

#[tokio::test]
async fn soft_bounces_on_three_days_in_a_row_suppress_until_lifted() {
    let start = Utc
        .with_ymd_and_hms(2027, 1, 12, 9, 0, 0)
        .single()
        .expect("an instant");
    let app = TestApp::spawn_at(start, |_| {}).await;
    assert_eq!(app.settings.newsletter.soft_bounce_limit, 3);
    let admin = app.admin().await;
    app.confirmed_subscriber("ada@example.com", 0).await;

    // Twice on the first day counts once; then a second day.
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    app.clock.advance(Duration::hours(3));
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    app.clock.advance(Duration::days(1));
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    // More than a week without one starts the count again.
    app.clock.advance(Duration::days(8));
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    app.clock.advance(Duration::days(1));
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    assert!(app.suppression("ada@example.com").is_none());
    app.clock.advance(Duration::days(1));
    assert_eq!(
        soft_bounce(&app, &admin, "ada@example.com").await,
        "suppressed"
    );

    // Admins see it with its reason and evidence, and can lift it.
    let page = app
        .get_json(&admin, "/api/v1/admin/newsletter/suppressions")
        .await;
    let row = page["suppressions"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["email"] == "ada@example.com")
        .expect("listed")
        .clone();
    assert_eq!(row["reason"], "soft_bounces");
    assert_eq!(
        row["detail"],
        "soft bounces on 3 different days; the last: 452 4.2.2 Mailbox full"
    );
    let id = row["id"].as_str().expect("an id");
    let lifted = admin
        .delete(app.url(&format!("/api/v1/admin/newsletter/suppressions/{id}")))
        .send()
        .await
        .expect("request");
    assert!(lifted.status().is_success(), "{}", lifted.status());
    assert!(app.suppression("ada@example.com").is_none());
    // Lifting starts the count afresh.
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
    app.clock.advance(Duration::days(1));
    assert_eq!(soft_bounce(&app, &admin, "ada@example.com").await, "noted");
}
