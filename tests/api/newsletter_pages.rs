//! The newsletter's pages through HTTP, as a browser without JavaScript
//! uses them: forms with their token, POST-redirect-GET, and links from
//! email that only ever show a button.

use chrono::Duration;
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{form_token, header, html_unescape, location, TestApp, NEWSLETTER_SECTIONS};

/// The path of a link from an email to this instance.
fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} does not point at {}", app.address))
        .to_owned()
}

async fn html_of(response: reqwest::Response) -> String {
    assert!(
        header(&response, "content-type").starts_with("text/html"),
        "{} is not a page",
        response.status()
    );
    response.text().await.expect("a page body")
}

/// Whether a page shows the checkbox of `section` ticked.
fn ticked(html: &str, section: &str) -> bool {
    html.contains(&format!(
        "name=\"sections\" type=\"checkbox\" value=\"{section}\" checked"
    ))
}

/// The preferences link of the welcome email, as a path.
async fn preferences_link(app: &TestApp, email: &str) -> String {
    let welcome = app.confirmed_subscriber(email, 0).await;
    path_of(
        app,
        &welcome.link_containing("/newsletter/preferences?token="),
    )
}

#[tokio::test]
async fn the_sign_up_form_offers_every_section_ticked_and_the_consent() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    let created = app
        .post(
            &editor,
            "/api/v1/sections",
            json!({ "name": "Patent law", "slug": "patents" }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.add_sections(&["Copyright"]);

    let (status, html) = app.page(&TestApp::browser(), "/newsletter").await;
    assert_eq!(status, StatusCode::OK);
    for section in ["patents", "copyright"] {
        assert!(ticked(&html, section), "{section} not ticked:\n{html}");
    }
    assert!(
        html.contains("<label for=\"sections-patents\">Patent law</label>"),
        "the site's sections, by their names:\n{html}"
    );
    assert!(html.contains("<label for=\"sections-copyright\">Copyright</label>"));
    assert!(
        !html.contains("sections-trademarks"),
        "only the site's sections"
    );
    assert!(html.contains(&html_escape(&app.settings.newsletter.consent_text)));
    assert!(html.contains("<label for=\"email\">Email address</label>"));
    assert!(html.contains(">Sign up</button>"));
    assert_eq!(html.matches("<h1").count(), 1);
    assert!(!form_token(&html).is_empty());
}

/// What a template makes of text: the consent text has no markup, but may
/// have an apostrophe one day.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[tokio::test]
async fn a_bad_address_comes_back_with_its_error_and_the_input_kept() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let browser = TestApp::browser();

    let response = app
        .submit(
            &browser,
            "/newsletter",
            "/newsletter",
            &[
                ("email", "not-an-address"),
                ("sections_offered", "1"),
                ("sections", "patents"),
                ("sections", "designs"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_of(response).await;
    assert!(html.contains("<title>Error: "), "{html}");
    assert!(html.contains("class=\"error-summary\""), "{html}");
    assert!(html.contains("<a href=\"#email\">"), "{html}");
    assert!(html.contains("id=\"email-error\""), "{html}");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert!(html.contains("value=\"not-an-address\""), "{html}");
    assert!(ticked(&html, "patents") && ticked(&html, "designs"));
    assert!(!ticked(&html, "copyright"), "the choice is kept, not reset");

    // Unticking every section is a choice of none, not of all.
    let response = app
        .submit(
            &browser,
            "/newsletter",
            "/newsletter",
            &[("email", "fine@example.com"), ("sections_offered", "1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_of(response).await;
    assert!(html.contains("<a href=\"#sections\">"), "{html}");
    assert!(html.contains("value=\"fine@example.com\""));
    assert!(app.subscriber("fine@example.com").is_none());
    assert!(app.outbox("fine@example.com").is_empty());
}

#[tokio::test]
async fn a_sign_up_leads_to_check_your_inbox_whatever_the_address() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    app.confirmed_subscriber("known@example.com", 0).await;
    let browser = TestApp::browser();

    let mut pages = Vec::new();
    for email in ["new@example.com", "known@example.com"] {
        let response = app
            .submit(
                &browser,
                "/newsletter",
                "/newsletter",
                &[
                    ("email", email),
                    ("sections_offered", "1"),
                    ("sections", "trademarks"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/newsletter/check-email");
        let (status, html) = app.page(&browser, "/newsletter/check-email").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Check your inbox"));
        pages.push(html);
    }
    assert_eq!(pages[0], pages[1], "no word tells the two apart");

    let stored = app.subscriber("new@example.com").expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Pending);
    assert_eq!(stored.sections.as_slice(), ["trademarks"]);
    assert_eq!(stored.source.as_str(), "web");
    let confirmation = app.mailbox.nth("new@example.com", 1).await;
    assert!(confirmation.subject().contains("Confirm"));
    assert_eq!(
        app.subscriber("known@example.com").expect("stored").status,
        SubscriberStatus::Confirmed
    );
}

#[tokio::test]
async fn the_inline_box_returns_to_the_article_or_shows_the_full_form() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let all = app.add_sections(&NEWSLETTER_SECTIONS);
    let browser = TestApp::browser();
    let article = "/articles/some-story";

    let response = app
        .submit(
            &browser,
            "/newsletter",
            "/newsletter",
            &[("email", "inline@example.com"), ("next", article)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), article);
    let (_, html) = app.page(&browser, "/newsletter/check-email").await;
    assert!(
        html.contains("Check your inbox: if this address is not yet subscribed"),
        "the message follows the reader back:\n{html}"
    );
    assert_eq!(
        app.subscriber("inline@example.com")
            .expect("stored")
            .sections
            .as_slice(),
        all,
        "no sections posted: all of them"
    );

    let response = app
        .submit(
            &browser,
            "/newsletter",
            "/newsletter",
            &[("email", "other@example.com"), ("next", "//evil.example/x")],
        )
        .await;
    assert_eq!(location(&response), "/", "never to another site");

    let response = app
        .submit(
            &browser,
            "/newsletter",
            "/newsletter",
            &[("email", "oops"), ("next", article)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_of(response).await;
    assert!(html.contains("<title>Error: "));
    assert!(html.contains("value=\"oops\""));
    assert!(html.contains(&format!(
        "name=\"next\" value=\"{}\"",
        article.replace('/', "&#x2f;")
    )));
    for section in &all {
        assert!(ticked(&html, section), "{section}");
    }
}

#[tokio::test]
async fn the_confirmation_link_shows_a_button_and_only_the_button_confirms() {
    let app = TestApp::spawn().await;
    let email = "careful@example.com";
    let browser = TestApp::browser();
    app.subscribe(email).await;
    let confirmation = app.mailbox.nth(email, 1).await;
    let link = path_of(
        &app,
        &confirmation.link_containing("/newsletter/confirm?token="),
    );

    // A mail scanner opens the link: nothing happens.
    let page = app.get(&reqwest::Client::new(), &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    let html = html_of(page).await;
    assert!(html.contains(">Confirm my subscription</button>"), "{html}");
    assert!(html.contains(&format!(
        "name=\"token\" value=\"{}\"",
        confirmation.token()
    )));
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Pending,
        "a GET confirms nothing"
    );

    let confirmed = app
        .submit(
            &browser,
            &link,
            "/newsletter/confirm",
            &[("token", &confirmation.token())],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let next = location(&confirmed);
    assert!(next.starts_with("/newsletter/subscribed?token="), "{next}");
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed
    );
    let page = app.get(&browser, &next).await;
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    let html = html_of(page).await;
    assert!(html.contains("You are subscribed"));
    assert!(
        html.contains("Thank you for confirming your address."),
        "flash"
    );
    let preferences = html
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .map(html_unescape)
        .find(|href| href.starts_with("/newsletter/preferences?token="))
        .expect("a link to the preferences");
    let (status, html) = app.page(&browser, &preferences).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(email), "the link opens their preferences");
    let welcome = app.mailbox.nth(email, 2).await;
    assert!(welcome.subject().contains("Welcome"));

    // The link is spent: both its page and its button say so.
    let again = app
        .post_form(
            &browser,
            "/newsletter/confirm",
            &form_token(&html),
            &[("token", &confirmation.token())],
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let html = html_of(again).await;
    assert!(html.contains("This link does not work any more"), "{html}");
    assert!(html.contains("href=\"/newsletter\""));
    let (status, html) = app.page(&browser, &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("This link does not work any more"));
    assert!(!html.contains("Confirm my subscription</button>"));
}

#[tokio::test]
async fn an_expired_confirmation_link_says_so_before_the_button() {
    let app = TestApp::spawn().await;
    let email = "slow@example.com";
    app.subscribe(email).await;
    let link = path_of(
        &app,
        &app.mailbox
            .nth(email, 1)
            .await
            .link_containing("/newsletter/confirm?token="),
    );
    app.clock.advance(
        Duration::hours(app.settings.newsletter.confirmation_ttl_hours) + Duration::seconds(1),
    );
    let (status, html) = app.page(&TestApp::browser(), &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("This link does not work any more"));
    let (status, _) = app
        .page(&TestApp::browser(), "/newsletter/confirm?token=forged")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn preferences_by_link_change_the_sections_and_the_pause() {
    let app = TestApp::spawn().await;
    let all = app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "chooser@example.com";
    let link = preferences_link(&app, email).await;
    let browser = TestApp::browser();

    let page = app.get(&browser, &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = html_of(page).await;
    assert!(html.contains(email));
    for section in &all {
        assert!(ticked(&html, section), "{section}");
    }
    assert!(html.contains(">Save preferences</button>"));
    assert!(
        html.contains("href=\"/login?next=&#x2f;newsletter&#x2f;preferences\""),
        "the header's login link does not copy the token:\n{html}"
    );
    assert!(html.contains(">Unsubscribe</button>"));
    assert!(html.contains(">Erase my data</button>"));
    assert!(html.contains("href=\"&#x2f;api&#x2f;v1&#x2f;newsletter&#x2f;data?token="));
    let token = link.split("token=").nth(1).expect("a token").to_owned();

    let pause = app.now().date_naive() + Duration::days(10);
    let saved = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", &token),
                ("sections", "patents"),
                ("sections", "designs"),
                ("paused_until", &pause.to_string()),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), link);
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.sections.as_slice(), ["patents", "designs"]);
    assert_eq!(stored.paused_until.map(|t| t.date()), Some(pause));
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    let (_, html) = app.page(&browser, &link).await;
    assert!(html.contains("Your preferences are saved."));
    assert!(html.contains("Paused until"), "{html}");
    assert!(ticked(&html, "designs") && !ticked(&html, "copyright"));
    assert!(html.contains(&format!("value=\"{pause}\"")));

    // No section and a pause that ends today: both named at once.
    let refused = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", &token),
                ("paused_until", &app.now().date_naive().to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_of(refused).await;
    assert!(html.contains("<title>Error: "));
    assert!(html.contains("<a href=\"#sections\">"), "{html}");
    assert!(html.contains("<a href=\"#paused_until\">"), "{html}");
    let refused = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", &token),
                ("sections", "patents"),
                ("paused_until", "next week"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html_of(refused).await.contains("value=\"next week\""));
    assert_eq!(
        app.subscriber(email).expect("stored").sections.as_slice(),
        ["patents", "designs"],
        "nothing half-saved"
    );

    // An empty date ends the pause.
    let resumed = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", &token),
                ("sections", "patents"),
                ("paused_until", ""),
            ],
        )
        .await;
    assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.paused_until, None);
    assert_eq!(stored.sections.as_slice(), ["patents"]);
}

#[tokio::test]
async fn preferences_by_link_unsubscribe_and_subscribe_again() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "leaver@example.com";
    let link = preferences_link(&app, email).await;
    let token = link.split("token=").nth(1).expect("a token").to_owned();
    let browser = TestApp::browser();

    let left = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[("token", &token), ("subscribed", "false")],
        )
        .await;
    assert_eq!(left.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(
        app.suppression(email).expect("suppressed").reason,
        SuppressionReason::Unsubscribed
    );
    let (_, html) = app.page(&browser, &link).await;
    assert!(html.contains("You are unsubscribed"), "{html}");
    assert!(html.contains(">Subscribe again</button>"), "{html}");
    assert!(!html.contains(">Save preferences</button>"));

    let back = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", &token),
                ("subscribed", "true"),
                ("sections", "copyright"),
            ],
        )
        .await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert_eq!(stored.sections.as_slice(), ["copyright"]);
    assert!(app.suppression(email).is_none());
}

#[tokio::test]
async fn erasing_from_the_preferences_leaves_only_the_fingerprint() {
    let app = TestApp::spawn().await;
    let email = "forget.me@example.com";
    let link = preferences_link(&app, email).await;
    let token = link.split("token=").nth(1).expect("a token").to_owned();
    let browser = TestApp::browser();

    let erased = app
        .submit(&browser, &link, "/newsletter/erase", &[("token", &token)])
        .await;
    assert_eq!(erased.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&erased), "/newsletter/erased");
    let (status, html) = app.page(&browser, "/newsletter/erased").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Your newsletter data is erased"));
    assert!(app.subscriber(email).is_none());
    assert!(app.outbox(email).is_empty());
    let suppression = app.suppression(email).expect("kept by its hash");
    assert_eq!(suppression.reason, SuppressionReason::Erased);
    assert_eq!(suppression.email, None);

    let (status, html) = app.page(&browser, &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("This link does not work any more"));
    assert!(html.contains("href=\"/login?next=%2Fnewsletter%2Fpreferences\""));
}

#[tokio::test]
async fn preferences_without_a_link_need_a_login_and_then_use_it() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let stranger = TestApp::browser();
    let response = app.get(&stranger, "/newsletter/preferences").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/login?next=%2Fnewsletter%2Fpreferences"
    );
    let response = app
        .get(
            &stranger,
            &format!("/newsletter/preferences?token={}", "ab".repeat(32)),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(html_of(response)
        .await
        .contains("This link does not work any more"));

    // A verified reader: the form knows their address, and the sign-up
    // needs no round trip by email.
    let email = "member@example.com";
    let reader = TestApp::browser();
    app.verified_reader(&reader, email).await;
    let (status, html) = app.page(&reader, "/newsletter/preferences").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("You do not receive the free daily newsletter"),
        "{html}"
    );
    let (_, html) = app.page(&reader, "/newsletter").await;
    assert!(
        html.contains(&format!("value=\"{email}\"")),
        "pre-filled:\n{html}"
    );
    let response = app
        .submit(
            &reader,
            "/newsletter",
            "/newsletter",
            &[
                ("email", email),
                ("sections_offered", "1"),
                ("sections", "litigation"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/newsletter/check-email");
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed
    );

    let (status, html) = app.page(&reader, "/newsletter/preferences").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(email));
    assert!(ticked(&html, "litigation") && !ticked(&html, "patents"));
    assert!(!html.contains("name=\"token\""), "no link, no token");
    assert!(html.contains("href=\"&#x2f;api&#x2f;v1&#x2f;newsletter&#x2f;data\""));
    let saved = app
        .submit(
            &reader,
            "/newsletter/preferences",
            "/newsletter/preferences",
            &[("sections", "patents"), ("paused_until", "")],
        )
        .await;
    assert_eq!(location(&saved), "/newsletter/preferences");
    assert_eq!(
        app.subscriber(email).expect("stored").sections.as_slice(),
        ["patents"]
    );
    let (_, html) = app.page(&reader, "/newsletter").await;
    assert!(
        html.contains("You already receive the newsletter"),
        "{html}"
    );
}

#[tokio::test]
async fn writes_without_a_form_token_or_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let email = "target@example.com";
    let link = preferences_link(&app, email).await;
    let token = link.split("token=").nth(1).expect("a token").to_owned();
    let browser = TestApp::browser();
    let (_, html) = app.page(&browser, &link).await;
    let form = form_token(&html);

    // No form token at all.
    let response = browser
        .post(app.url("/newsletter"))
        .header("Origin", &app.address)
        .form(&[("email", "victim@example.com")])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(html_of(response).await.contains("You cannot do that here"));
    assert!(app.subscriber("victim@example.com").is_none());

    // A genuine token, posted by another site.
    let fields = [
        ("csrf_token", form.as_str()),
        ("token", token.as_str()),
        ("subscribed", "false"),
    ];
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let response = browser
            .post(app.url("/newsletter/preferences"))
            .header(name, value)
            .form(&fields)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        assert!(header(&response, "content-type").starts_with("text/html"));
        let response = browser
            .post(app.url("/newsletter/erase"))
            .header(name, value)
            .form(&fields)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
    }
    let stored = app.subscriber(email).expect("still there");
    assert_eq!(stored.status, SubscriberStatus::Confirmed);
    assert!(app.suppression(email).is_none());

    // The same form from this site goes through.
    let response = app
        .post_form(&browser, "/newsletter/preferences", &form, &fields[1..])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn one_click_unsubscribe_needs_no_form_token_and_shows_the_site() {
    let app = TestApp::spawn().await;
    let email = "mailclient@example.com";
    let welcome = app.confirmed_subscriber(email, 0).await;
    let link = path_of(&app, &welcome.link_containing("/unsubscribe/"));

    let page = app.get(&reqwest::Client::new(), &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    let html = html_of(page).await;
    assert!(html.contains("class=\"masthead\""), "the site's own layout");
    assert!(
        html.contains(&format!(
            "<form method=\"post\" action=\"{}\"",
            link.replace('/', "&#x2f;")
        )),
        "{html}"
    );
    assert!(html.contains(">Unsubscribe</button>"));
    assert!(!html.contains("style="), "no inline style");
    assert_eq!(
        html.matches(link.trim_start_matches("/unsubscribe/"))
            .count(),
        1,
        "the token is in the form's action only:\n{html}"
    );
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed
    );

    // A mail client posts from its own origin, with no cookie or token.
    let clicked = reqwest::Client::new()
        .post(app.url(&link))
        .header("Origin", "https://mail.example")
        .header("Sec-Fetch-Site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("sent");
    assert_eq!(clicked.status(), StatusCode::OK);
    let html = html_of(clicked).await;
    assert!(html.contains("You are unsubscribed"));
    assert!(html.contains("class=\"masthead\""));
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(
        app.suppression(email).expect("suppressed").reason,
        SuppressionReason::Unsubscribed
    );
}

#[tokio::test]
async fn the_digests_signed_links_open_the_same_pages() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "daily@example.com";
    app.confirmed_subscriber(email, 0).await;
    let subscriber = app.subscriber(email).expect("stored");
    let key = masthead::platform::secret::site_key(&app.settings.auth).expect("the site key");
    let signer = masthead::newsletter::links::LinkSigner::new(key);
    let token = signer.manage_token(subscriber.id, app.now() + Duration::days(30));
    let browser = TestApp::browser();

    let link = format!("/newsletter/preferences?token={token}");
    let (status, html) = app.page(&browser, &link).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(email));
    let saved = app
        .submit(
            &browser,
            &link,
            "/newsletter/preferences",
            &[
                ("token", token.as_str()),
                ("sections", "litigation"),
                ("paused_until", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), link);
    assert_eq!(
        app.subscriber(email).expect("stored").sections.as_slice(),
        ["litigation"]
    );

    let (status, html) = app.page(&browser, &format!("/unsubscribe/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">Unsubscribe</button>"));

    app.clock.advance(Duration::days(31));
    let (status, html) = app.page(&browser, &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("This link does not work any more"));
}
