//! A reader's whole way through the site, in a real browser: from a teaser
//! to the newsletter, an account, a trial and the full story, and out of the
//! newsletter again. Each page met on the way is screenshotted at desktop
//! and phone width and checked with axe-core.

use masthead::newsletter::SubscriberStatus;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{article, TestApp, PASSWORD};

const BODY: &str = "The Court of Appeal gave its reasons in full this morning. \
    It is a long story that runs well past what a visitor sees.\n\n\
    The second paragraph holds what only readers with access see, \
    including why the claims were held obvious over the prior art.\n\n\
    FULL-TEXT-MARKER: the court's order as to costs.";

/// The path of the first link in `email` that contains `needle`.
fn path_of(app: &TestApp, email: &crate::helpers::ReceivedEmail, needle: &str) -> String {
    let link = email.link_containing(needle);
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} is not a link into the site at {}", app.address))
        .to_owned()
}

async fn story(app: &TestApp) -> String {
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    let main = app
        .draft(
            &editor,
            article(
                "Appeal court revokes pill patent",
                "patents",
                &["pill"],
                BODY,
            ),
        )
        .await;
    let main = app.publish(&editor, &main).await;
    let related = app
        .draft(
            &editor,
            article("Pill patent: what comes next", "patents", &["pill"], BODY),
        )
        .await;
    app.publish(&editor, &related).await;
    let other = app
        .draft(
            &editor,
            article("Shoe maker loses stripes case", "trademarks", &[], BODY),
        )
        .await;
    app.publish(&editor, &other).await;
    format!("/articles/{}", main["slug"].as_str().expect("slug"))
}

#[tokio::test]
async fn a_visitor_becomes_a_subscriber_a_reader_and_a_trialist() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "a_visitor_becomes_a_subscriber_a_reader_and_a_trialist",
        &app,
    )
    .await
    else {
        return;
    };
    let article_path = story(&app).await;
    let email = "ada@example.com";

    // The front page, then the story as a visitor: the teaser and the ways in.
    browser.goto("/").await;
    browser
        .wait_for_text("Appeal court revokes pill patent")
        .await;
    browser.screenshot("home").await;
    browser.axe("the front page").await;

    browser.goto("/newsletter").await;
    browser
        .wait_for_text("Sign up for the free daily newsletter")
        .await;
    browser.screenshot("newsletter-signup").await;
    browser.axe("the newsletter sign-up page").await;

    browser.goto(&article_path).await;
    let text = browser
        .wait_for_text("Did you enjoy reading this story?")
        .await;
    assert!(
        !text.contains("FULL-TEXT-MARKER"),
        "a visitor sees the teaser"
    );
    assert!(text.contains("Already registered?"));
    assert!(text.contains("approval can take up to 48 hours"));
    assert!(text.contains("More on this story"));
    browser.screenshot("article-teaser").await;
    browser.axe("the article page").await;

    // The newsletter box on the article.
    browser.fill_label("Email address", email).await;
    browser.click_button("Sign up").await;
    browser.wait_for_text("Check your inbox").await;
    let confirmation = app
        .mailbox
        .with_subject(email, "Confirm your subscription")
        .await;
    let confirm_path = path_of(&app, &confirmation, "/newsletter/confirm");

    // The link from the email shows a button; opening it confirms nothing.
    browser.goto(&confirm_path).await;
    browser.wait_for_text("Confirm my subscription").await;
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Pending,
        "opening the link must not confirm"
    );
    browser.axe("the newsletter confirmation page").await;
    browser.click_button("Confirm my subscription").await;
    browser.wait_for_text("You are subscribed").await;
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed
    );
    let welcome = app.mailbox.with_subject(email, "Welcome").await;

    // An account for the same address.
    browser.goto("/register").await;
    browser.fill_label("Full name", "Ada Lovelace").await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser
        .fill_label("Company (optional)", "Analytical Engines Ltd")
        .await;
    browser.screenshot("register").await;
    browser.axe("the registration page").await;
    browser.click_button("Create account").await;
    browser.wait_for_text("Check your inbox").await;
    let verification = app
        .mailbox
        .with_subject(email, "Confirm your email address")
        .await;
    browser
        .goto(&path_of(&app, &verification, "/verify-email"))
        .await;
    browser.click_button("Confirm my email address").await;
    browser
        .wait_for_text("Your email address is confirmed")
        .await;

    // Logging in from the login page.
    browser.goto(&format!("/login?next={article_path}")).await;
    browser.wait_for_text("Log in").await;
    browser.screenshot("login").await;
    browser.axe("the login page").await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("You are logged in").await;
    assert_eq!(browser.current_path().await, article_path);
    assert!(!browser.text().await.contains("FULL-TEXT-MARKER"));

    // The trial: asked for in a form, decided by an admin.
    browser.goto("/trial").await;
    browser.fill_label("Job title", "Patent attorney").await;
    browser.click_button("Request trial").await;
    browser.wait_for_text("Decision by").await;
    browser.screenshot("trial-pending").await;
    browser.axe("the trial page").await;

    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let queue = app.get_json(&admin, "/api/v1/admin/trials").await;
    let id = queue["requests"][0]["id"].as_str().expect("a request");
    let approved = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::OK);

    browser.goto(&article_path).await;
    let text = browser.wait_for_text("FULL-TEXT-MARKER").await;
    assert!(text.contains("You are reading this with your free trial"));
    assert!(!text.contains("Already registered?"));
    browser.screenshot("article-full").await;

    browser.goto("/account").await;
    browser.wait_for_text("Your account").await;
    browser.screenshot("account").await;
    browser.axe("the account page").await;

    // Sections from the link in the welcome email, then out.
    let preferences_path = path_of(&app, &welcome, "/newsletter/preferences");
    browser.goto(&preferences_path).await;
    browser.wait_for_text("Save preferences").await;
    browser.screenshot("newsletter-preferences").await;
    browser.axe("the newsletter preferences page").await;
    browser.find("#sections-trademarks").await.click().await;
    browser.click_button("Save preferences").await;
    browser.wait_for_text("Your preferences are saved").await;
    let stored = app.subscriber(email).expect("stored");
    assert!(
        !stored
            .sections
            .as_slice()
            .contains(&"trademarks".to_owned()),
        "{:?}",
        stored.sections
    );
    assert!(stored.sections.as_slice().contains(&"patents".to_owned()));

    browser.click_button("Unsubscribe").await;
    browser
        .wait_for_text("You are unsubscribed: we will send you no more")
        .await;
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Unsubscribed
    );
}

#[tokio::test]
async fn a_form_with_errors_shows_them_beside_each_field_and_keeps_the_input() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "a_form_with_errors_shows_them_beside_each_field_and_keeps_the_input",
        &app,
    )
    .await
    else {
        return;
    };
    browser.goto("/register").await;
    browser.fill_label("Full name", "Ada Lovelace").await;
    browser.fill_label("Email address", "not an address").await;
    browser.fill_label("Password", "short").await;
    browser.click_button("Create account").await;
    browser.wait_for_text("There is a problem").await;
    assert!(browser.title().await.starts_with("Error: "));
    let email = browser.find("#email").await;
    assert_eq!(
        email.attribute("aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        email.attribute("value").await.as_deref(),
        Some("not an address"),
        "the input is kept"
    );
    assert_eq!(
        browser
            .find("#password")
            .await
            .attribute("value")
            .await
            .as_deref()
            .unwrap_or_default(),
        "",
        "a password is never sent back"
    );
    assert_eq!(
        browser
            .find("#name")
            .await
            .attribute("value")
            .await
            .as_deref(),
        Some("Ada Lovelace")
    );
    // Each message in the summary links to its field.
    let links = browser.find_all(".error-summary a").await;
    let mut targets = Vec::new();
    for link in &links {
        targets.push(link.attribute("href").await.unwrap_or_default());
    }
    assert!(targets.iter().any(|t| t.ends_with("#email")), "{targets:?}");
    assert!(
        targets.iter().any(|t| t.ends_with("#password")),
        "{targets:?}"
    );
    browser.screenshot("register-errors").await;
    browser.axe("the registration page with errors").await;
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start("a_form_posted_from_another_site_is_refused", &app).await
    else {
        return;
    };
    // A page elsewhere (here a data: URL, so a null origin) posting a
    // sign-up to the site without its form token.
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>Elsewhere</title></head><body>\
         <form method=\"post\" action=\"{}/newsletter\">\
         <input name=\"email\" value=\"victim@example.com\">\
         <button type=\"submit\">Win a prize</button></form></body></html>",
        app.address
    );
    let url = format!(
        "data:text/html;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, page)
    );
    browser.goto(&url).await;
    browser.click_button("Win a prize").await;
    browser.wait_for_text("You cannot do that here").await;
    assert!(
        app.subscriber("victim@example.com").is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn an_expired_or_used_link_says_so_and_offers_a_new_one() {
    let app = TestApp::spawn().await;
    let Some(browser) =
        Browser::start("an_expired_or_used_link_says_so_and_offers_a_new_one", &app).await
    else {
        return;
    };
    browser
        .goto("/newsletter/confirm?token=0000000000000000000000000000000000000000000000000000000000000000")
        .await;
    let text = browser
        .wait_for_text("This link does not work any more")
        .await;
    assert!(!text.contains("Confirm my subscription"), "{text}");
    browser.screenshot("link-expired").await;
    browser.axe("the expired-link page").await;
}
