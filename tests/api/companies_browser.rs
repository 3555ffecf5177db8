//! In a real browser: a reader checks their company on /company-access,
//! follows the emailed link, joins, and reads a full article.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{article, TestApp, PASSWORD};

#[tokio::test]
async fn a_reader_checks_their_company_joins_it_and_reads_in_full() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "a_reader_checks_their_company_joins_it_and_reads_in_full",
        &app,
    )
    .await
    else {
        return;
    };
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let body = "An opening for everyone.\n\nMore of the story.\n\nCOMPANY-FULL-TEXT: the ending.";
    let draft = app
        .draft(&editor, article("Seat story", "patents", &[], body))
        .await;
    app.publish(&editor, &draft).await;
    let admin = app.admin().await;
    let created = app
        .post(
            &admin,
            "/api/v1/admin/organizations",
            json!({
                "name": "Acme",
                "seat_count": 5,
                "ends_at": app.now() + Duration::days(365),
                "domains": ["acme.com"],
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let email = "ada@acme.com";
    app.verified_reader(&TestApp::browser(), email).await;

    // Logged in, the reader asks from the paywall's link.
    browser.goto("/articles/seat-story").await;
    let text = browser
        .wait_for_text("Check whether your company has a subscription")
        .await;
    assert!(!text.contains("COMPANY-FULL-TEXT"));
    browser.goto("/login?next=/company-access").await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("Work email address").await;
    browser.screenshot("company-access").await;
    browser.axe("the company access page").await;
    browser.click_button("Check my company").await;
    browser.wait_for_text("Nothing arrived?").await;
    browser.screenshot("company-check-email").await;

    // The emailed link: a page whose button takes the seat.
    let mail = app.mailbox.with_subject(email, "Join Acme").await;
    let link = mail.link_containing("/company-access/join");
    let path = link
        .strip_prefix(&app.address)
        .expect("a link into the site")
        .to_owned();
    browser.goto(&path).await;
    browser.wait_for_text("Acme has a seat for").await;
    browser.screenshot("company-join").await;
    browser.axe("the join page").await;
    browser.click_button("Join Acme").await;
    browser
        .wait_for_text("Welcome: you now read everything")
        .await;

    browser.goto("/articles/seat-story").await;
    let text = browser.wait_for_text("COMPANY-FULL-TEXT").await;
    assert!(
        text.contains("through your company's subscription"),
        "{text}"
    );
    browser.screenshot("company-article-full").await;
}
