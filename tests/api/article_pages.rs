//! The reader's pages for articles and trials, through HTTP as a browser
//! sees them.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{article, header, html_unescape, location, TestApp};

const LONG_BODY: &str = "The court gave its reasons in full. \
    It is a long story that runs well past the teaser.\n\n\
    The second paragraph holds what only readers with access see, \
    including the holding that the claims were invalid for obviousness \
    over the prior art cited in the opposition.\n\n\
    SECRET-THIRD-PARAGRAPH and the court's order as to costs.";

async fn published(app: &TestApp, title: &str, section: &str) -> serde_json::Value {
    let editor = app.editor().await;
    let draft = app
        .draft(&editor, article(title, section, &["appeal"], LONG_BODY))
        .await;
    app.publish(&editor, &draft).await
}

#[tokio::test]
async fn the_front_page_lists_the_latest_stories_by_section() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    published(&app, "Appeal court revokes pill patent", "patents").await;
    published(&app, "Shoe maker loses stripes case", "trademarks").await;
    published(&app, "Board narrows battery claims", "patents").await;

    let response = app.get(&TestApp::browser(), "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/html"));
    // Nobody is logged in: a proxy may keep the page, per cookie.
    assert_eq!(header(&response, "cache-control"), "public, max-age=60");
    assert_eq!(header(&response, "vary"), "Cookie");
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let html = response.text().await.expect("html");
    for needle in [
        "Appeal court revokes pill patent",
        "Shoe maker loses stripes case",
        "Board narrows battery claims",
        "What happened in Board narrows battery claims.",
        "href=\"/sections/patents\"",
        "href=\"/sections/trademarks\"",
        "Log in",
    ] {
        assert!(html.contains(needle), "no {needle:?} on the front page");
    }

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let response = app.get(&reader, "/").await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let html = response.text().await.expect("html");
    assert!(html.contains("Ada Lovelace"), "the layout names the reader");
    assert!(html.contains("Log out"));
}

#[tokio::test]
async fn a_section_lists_only_its_stories_and_an_unknown_one_is_an_html_404() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    published(&app, "Appeal court revokes pill patent", "patents").await;
    published(&app, "Shoe maker loses stripes case", "trademarks").await;

    let (status, html) = app.page(&TestApp::browser(), "/sections/patents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Patents</h1>"));
    assert!(html.contains("Appeal court revokes pill patent"));
    assert!(!html.contains("Shoe maker loses stripes case"));

    let response = app.get(&TestApp::browser(), "/sections/nonsense").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let html = response.text().await.expect("html");
    assert!(html.contains("Page not found"));

    // The API keeps answering problem+json.
    let response = app
        .get(&TestApp::browser(), "/api/v1/articles/no-such-story")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
}

#[tokio::test]
async fn search_finds_stories_by_their_words() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    published(&app, "Appeal court revokes pill patent", "patents").await;
    published(&app, "Board narrows battery claims", "patents").await;

    let (status, html) = app.page(&TestApp::browser(), "/search?q=battery").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Board narrows battery claims"));
    assert!(!html.contains("Appeal court revokes pill patent"));
    assert!(
        html.contains("value=\"battery\""),
        "the words stay in the box"
    );

    let (status, html) = app.page(&TestApp::browser(), "/search?q=").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Type a few words"));

    let (_, html) = app
        .page(
            &TestApp::browser(),
            "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        )
        .await;
    assert!(!html.contains("<script>alert(1)"), "the query is escaped");

    let long = vec!["word"; 13]
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{w}{i}"))
        .collect::<Vec<_>>()
        .join("+");
    let (status, html) = app
        .page(&TestApp::browser(), &format!("/search?q={long}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("<h1>Search</h1>"), "{html}");
    assert!(html.contains("12"), "the page says the limit: {html}");
}

#[tokio::test]
async fn an_anonymous_reader_sees_the_teaser_and_every_way_in() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let story = published(&app, "Appeal court revokes pill patent", "patents").await;
    published(&app, "Pill patent appeal: what comes next", "patents").await;
    let path = format!("/articles/{}", story["slug"].as_str().expect("slug"));

    let response = app.get(&TestApp::browser(), &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), "public, max-age=60");
    let html = html_unescape(&response.text().await.expect("html"));
    assert!(html.contains("<h1>Appeal court revokes pill patent</h1>"));
    assert!(html.contains("The court gave its reasons in full."));
    assert!(
        !html.contains("SECRET-THIRD-PARAGRAPH"),
        "the teaser stops before the end"
    );
    for needle in [
        "Did you enjoy reading this story?",
        "Sign up to our free daily newsletter",
        "action=\"/newsletter\"",
        "name=\"csrf_token\"",
        "Already registered?",
        "/login?next=/articles/",
        "approval can take up to 48 hours",
        "href=\"/trial\"",
        "mailto:sales@masthead.example",
        "More on this story",
        "Pill patent appeal: what comes next",
    ] {
        assert!(html.contains(needle), "no {needle:?} on the article page");
    }

    let response = app
        .get(&TestApp::browser(), "/articles/no-such-story")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(header(&response, "content-type").starts_with("text/html"));
}

#[tokio::test]
async fn a_reader_with_access_reads_in_full_and_the_page_is_never_cached() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let story = published(&app, "Appeal court revokes pill patent", "patents").await;
    let path = format!("/articles/{}", story["slug"].as_str().expect("slug"));

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let (_, html) = app.page(&reader, &path).await;
    assert!(!html.contains("SECRET-THIRD-PARAGRAPH"));
    assert!(html.contains("Keep reading with full access"));
    assert!(!html.contains("Already registered?"), "they are logged in");

    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let me = app.get_json(&reader, "/api/v1/me").await;
    let grants = format!(
        "/api/v1/admin/accounts/{}/grants",
        me["id"].as_str().expect("id")
    );
    let granted = app
        .post(
            &admin,
            &grants,
            json!({ "ends_at": app.now() + Duration::days(30) }),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::CREATED);

    let response = app.get(&reader, &path).await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let html = response.text().await.expect("html");
    assert!(html.contains("SECRET-THIRD-PARAGRAPH"));
    assert!(html.contains("You are reading this with your subscription until"));
    assert!(!html.contains("Keep reading with full access"));
}

#[tokio::test]
async fn a_verified_reader_asks_for_a_trial_and_sees_when_it_will_be_decided() {
    let app = TestApp::spawn().await;

    let (status, html) = app.page(&TestApp::browser(), "/trial").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("log in or create a free account"));
    assert!(html.contains("approval can take up to 48 hours"));

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let (_, html) = app.page(&reader, "/trial").await;
    assert!(
        html.contains("value=\"Analytical Engines Ltd\""),
        "the company from registration is filled in"
    );

    let refused = app
        .submit(
            &reader,
            "/trial",
            "/trial",
            &[("company", ""), ("job_title", "Patent attorney")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("html");
    assert!(html.contains("<title>Error: "));
    assert!(html.contains("There is a problem"));
    assert!(html.contains("href=\"#company\""));
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(
        html.contains("value=\"Patent attorney\""),
        "the input is kept"
    );

    let asked = app
        .submit(
            &reader,
            "/trial",
            "/trial",
            &[
                ("company", "Analytical Engines Ltd"),
                ("job_title", "Patent attorney"),
                ("reason", "Following the pill patent appeals"),
            ],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&asked), "/trial");
    let (_, html) = app.page(&reader, "/trial").await;
    assert!(html.contains("We have your request"), "the flash is shown");
    assert!(html.contains("Waiting for a decision"));
    assert!(html.contains("Decision by"));
    assert!(!html.contains("Request trial"), "no second request form");
    let mine = app.get_json(&reader, "/api/v1/trials/mine").await;
    assert_eq!(mine["status"], "pending");
    app.mailbox
        .with_subject("reader@example.com", "trial")
        .await;

    // The flash is shown once.
    let (_, html) = app.page(&reader, "/trial").await;
    assert!(!html.contains("We have your request and will decide"));
}

#[tokio::test]
async fn an_unverified_reader_is_told_to_confirm_the_address_first() {
    let app = TestApp::spawn().await;
    let reader = TestApp::browser();
    assert_eq!(
        app.register("new@example.com", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.login_with(&reader, "new@example.com", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let (_, html) = app.page(&reader, "/trial").await;
    assert!(html.contains("First confirm your email address"));
    assert!(!html.contains("Request trial"));
}

#[tokio::test]
async fn the_company_and_sales_pages_name_the_sales_address() {
    let app = TestApp::spawn().await;
    for path in ["/contact-sales", "/company-access"] {
        let (status, html) = app.page(&TestApp::browser(), path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("mailto:sales@masthead.example"), "{path}");
    }
}

#[tokio::test]
async fn a_write_from_another_site_is_refused_before_it_changes_anything() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let story = published(&app, "Appeal court revokes pill patent", "patents").await;
    let withdraw = format!(
        "/api/v1/articles/{}/withdraw",
        story["id"].as_str().expect("id")
    );

    // A cross-site form posting with the editor's cookie.
    let forged = editor
        .post(app.url(&withdraw))
        .header("Origin", "https://evil.example")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&forged, "content-type"), "application/problem+json");
    let path = format!("/api/v1/articles/{}", story["slug"].as_str().expect("slug"));
    assert_eq!(app.get_json(&editor, &path).await["status"], "published");

    // An older browser that sends only Origin.
    let forged = editor
        .post(app.url(&withdraw))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The same page, from this site.
    let same_site = editor
        .post(app.url(&withdraw))
        .header("Origin", &app.address)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .expect("sent");
    assert_eq!(same_site.status(), StatusCode::OK);

    // A page form without its token is refused too, as an HTML page.
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let tokenless = app
        .post_form(
            &reader,
            "/trial",
            "",
            &[("company", "X"), ("job_title", "Y")],
        )
        .await;
    assert_eq!(tokenless.status(), StatusCode::FORBIDDEN);
    assert!(header(&tokenless, "content-type").starts_with("text/html"));
    assert!(app
        .get(&reader, "/api/v1/trials/mine")
        .await
        .status()
        .is_client_error());
}
