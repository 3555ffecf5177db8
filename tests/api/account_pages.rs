//! The account pages through HTTP, as a browser without JavaScript uses
//! them: register, confirm the address, log in and out, choose a new
//! password, and the account page.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{form_token, header, location, TestApp, NEWSLETTER_SECTIONS, PASSWORD};

/// The path (and query) of a link in an email, to be followed on this
/// instance.
fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} does not point at {}", app.address))
        .to_owned()
}

async fn email_verified(app: &TestApp, email: &str) -> bool {
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    app.get_json(&client, "/api/v1/me").await["email_verified"]
        .as_bool()
        .expect("email_verified")
}

/// The page a redirect leads to.
async fn follow(app: &TestApp, client: &reqwest::Client, response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, html) = app.page(client, &location(&response)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    html
}

#[tokio::test]
async fn the_register_form_shows_errors_beside_the_fields_and_keeps_the_input() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();
    let (status, blank) = app.page(&browser, "/register").await;
    assert_eq!(status, StatusCode::OK);
    assert!(blank.contains("At least 8 characters"), "{blank}");

    let typed_password = "short";
    let response = app
        .submit(
            &browser,
            "/register",
            "/register",
            &[
                ("name", "Ada Lovelace"),
                ("email", "not-an-address"),
                ("password", typed_password),
                ("company", "Analytical Engines"),
                ("job_title", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("html");
    assert!(html.contains("<title>Error: Create an account"), "{html}");
    assert!(html.contains("class=\"error-summary\""), "{html}");
    // The summary links to each field, in the order of the page.
    let email_link = html
        .find("href=\"#email\"")
        .expect("a link to the email field");
    let password_link = html
        .find("href=\"#password\"")
        .expect("a link to the password field");
    assert!(email_link < password_link);
    assert!(
        html.contains("id=\"email-error\""),
        "the message above the field: {html}"
    );
    assert!(
        html.contains("A password has at least 8 characters."),
        "{html}"
    );
    let email_input = html
        .split("<input id=\"email\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("the email input");
    assert!(
        email_input.contains("aria-invalid=\"true\""),
        "{email_input}"
    );
    assert!(
        email_input.contains("value=\"not-an-address\""),
        "{email_input}"
    );
    assert!(html.contains("value=\"Ada Lovelace\""), "{html}");
    assert!(html.contains("value=\"Analytical Engines\""), "{html}");
    assert!(
        !html.contains(&format!("value=\"{typed_password}\"")),
        "the password is never sent back"
    );
    assert!(app.outbox("ada@example.com").is_empty());
}

#[tokio::test]
async fn registering_answers_with_the_same_page_for_a_new_and_a_known_address() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let fields = [
        ("name", "Ada Lovelace"),
        ("email", email),
        ("password", PASSWORD),
        ("company", ""),
        ("job_title", ""),
    ];

    let first = TestApp::browser();
    let new = app.submit(&first, "/register", "/register", &fields).await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
    let new_location = location(&new);
    let new_page = follow(&app, &first, new).await;
    assert!(new_page.contains("Check your inbox"), "{new_page}");

    let second = TestApp::browser();
    let known = app.submit(&second, "/register", "/register", &fields).await;
    assert_eq!(location(&known), new_location);
    let known_page = follow(&app, &second, known).await;
    assert_eq!(known_page, new_page);

    app.mailbox
        .with_subject(email, "Confirm your email address")
        .await;
    app.mailbox.with_subject(email, "already have").await;
}

#[tokio::test]
async fn opening_a_verification_link_changes_nothing_and_its_button_confirms() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    assert_eq!(
        app.register(email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    let link = app
        .mailbox
        .nth(email, 1)
        .await
        .link_containing("/verify-email");
    let path = path_of(&app, &link);
    let browser = TestApp::browser();

    let opened = app.get(&browser, &path).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(header(&opened, "referrer-policy"), "no-referrer");
    let html = opened.text().await.expect("html");
    assert!(html.contains("Confirm my email address"), "{html}");
    assert!(!email_verified(&app, email).await, "a GET does not verify");

    let token = path.split("token=").nth(1).expect("a token");
    let confirmed = app
        .submit(&browser, &path, "/verify-email", &[("token", token)])
        .await;
    assert_eq!(location(&confirmed), "/login");
    let login_page = follow(&app, &browser, confirmed).await;
    assert!(
        login_page.contains("Your email address is confirmed."),
        "{login_page}"
    );
    assert!(email_verified(&app, email).await);

    let (status, used) = app.page(&browser, &path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(used.contains("This link no longer works"), "{used}");
    assert!(used.contains("href=\"/forgot-password\""), "{used}");
    let again = app
        .post_form(
            &browser,
            "/verify-email",
            &form_token(&html),
            &[("token", token)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again
        .text()
        .await
        .expect("html")
        .contains("This link no longer works"));

    let (status, _) = app
        .page(
            &browser,
            &format!("/verify-email?token={}", "ab".repeat(32)),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn a_failed_login_says_so_and_keeps_the_email() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com", PASSWORD).await;
    let browser = TestApp::browser();
    let response = app
        .submit(
            &browser,
            "/login",
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", "not my password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("html");
    assert!(html.contains("<title>Error: Log in"), "{html}");
    assert!(
        html.contains("The email address or the password is not right."),
        "{html}"
    );
    assert!(html.contains("value=\"ada@example.com\""), "{html}");
    assert!(!html.contains("not my password"));
    assert_eq!(
        app.get(&browser, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logging_in_returns_to_a_page_of_this_site_only() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    app.register(email, PASSWORD).await;
    let credentials = [("email", email), ("password", PASSWORD)];

    let browser = TestApp::browser();
    let anonymous = app.get(&browser, "/account").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?next=%2Faccount");
    let mut fields = credentials.to_vec();
    fields.push(("next", "/account"));
    let logged_in = app
        .submit(&browser, "/login?next=%2Faccount", "/login", &fields)
        .await;
    assert_eq!(location(&logged_in), "/account");
    let account = follow(&app, &browser, logged_in).await;
    assert!(account.contains("You are logged in as ada@example.com."));
    assert!(account.contains("<h1>Your account</h1>"), "{account}");

    for elsewhere in ["//evil.example", "https://evil.example", "/\\evil.example"] {
        let browser = TestApp::browser();
        let mut fields = credentials.to_vec();
        fields.push(("next", elsewhere));
        let response = app.submit(&browser, "/login", "/login", &fields).await;
        assert_eq!(location(&response), "/", "next={elsewhere}");
    }
}

#[tokio::test]
async fn logging_out_takes_a_post_with_the_form_token() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();
    app.verified_reader(&browser, "ada@example.com").await;

    let get = app.get(&browser, "/logout").await;
    assert!(get.status().is_client_error(), "{}", get.status());
    let no_token = app.post_form(&browser, "/logout", "", &[]).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&browser, "/api/v1/me").await.status(),
        StatusCode::OK,
        "still logged in"
    );

    let out = app.submit(&browser, "/account", "/logout", &[]).await;
    assert_eq!(location(&out), "/");
    assert_eq!(
        app.get(&browser, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn asking_for_a_reset_link_answers_the_same_and_mails_only_an_account() {
    let app = TestApp::spawn().await;
    let known = "ada@example.com";
    let unknown = "nobody@example.com";
    app.register(known, PASSWORD).await;

    let mut pages = Vec::new();
    for email in [known, unknown] {
        let browser = TestApp::browser();
        let response = app
            .submit(
                &browser,
                "/forgot-password",
                "/forgot-password",
                &[("email", email)],
            )
            .await;
        assert_eq!(location(&response), "/forgot-password/check-email");
        pages.push(follow(&app, &browser, response).await);
    }
    assert_eq!(pages[0], pages[1]);
    assert!(pages[0].contains(
        "If this address has an account, we have sent it a link to choose a new password."
    ));
    app.mailbox.with_subject(known, "Reset your").await;
    assert!(app.outbox(unknown).is_empty());

    let browser = TestApp::browser();
    let invalid = app
        .submit(
            &browser,
            "/forgot-password",
            "/forgot-password",
            &[("email", "not-an-address")],
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = invalid.text().await.expect("html");
    assert!(html.contains("value=\"not-an-address\""), "{html}");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
}

#[tokio::test]
async fn a_reset_link_opens_a_form_that_changes_the_password() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let new_password = "a brand new passphrase";
    app.register(email, PASSWORD).await;
    let before = TestApp::browser();
    assert_eq!(
        app.login_with(&before, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let browser = TestApp::browser();
    let bare = app.get(&browser, "/password-reset").await;
    assert_eq!(location(&bare), "/forgot-password");

    app.submit(
        &browser,
        "/forgot-password",
        "/forgot-password",
        &[("email", email)],
    )
    .await;
    let mail = app.mailbox.with_subject(email, "Reset your").await;
    let path = path_of(&app, &mail.link_containing("/password-reset"));
    let token = mail.token();

    let opened = app.get(&browser, &path).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(header(&opened, "referrer-policy"), "no-referrer");
    let html = opened.text().await.expect("html");
    assert!(html.contains("Choose a new password"), "{html}");
    let csrf = form_token(&html);

    let short = app
        .post_form(
            &browser,
            "/password-reset",
            &csrf,
            &[("token", &token), ("password", "short")],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.text().await.expect("html");
    assert!(
        html.contains("A password has at least 8 characters."),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{token}\"")),
        "the link still works"
    );

    let changed = app
        .post_form(
            &browser,
            "/password-reset",
            &csrf,
            &[("token", &token), ("password", new_password)],
        )
        .await;
    assert_eq!(location(&changed), "/login");
    let login_page = follow(&app, &browser, changed).await;
    assert!(
        login_page.contains("Your password has been changed; log in with it."),
        "{login_page}"
    );
    assert_eq!(
        app.get(&before, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED,
        "every session ended"
    );
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&client, email, new_password).await.status(),
        StatusCode::OK
    );

    let (status, used) = app.page(&browser, &path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(used.contains("This link no longer works"), "{used}");
    let again = app
        .post_form(
            &browser,
            "/password-reset",
            &csrf,
            &[("token", &token), ("password", "yet another password")],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
}

#[tokio::test]
async fn the_account_page_shows_what_the_reader_may_read_and_their_trial() {
    let app = TestApp::spawn().await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "ada@analyticalengines.com")
        .await;
    assert_eq!(location(&app.get(&reader, "/register").await), "/account");

    let (status, html) = app.page(&reader, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("ada@analyticalengines.com"), "{html}");
    assert!(html.contains("Confirmed"), "{html}");
    assert!(
        html.contains("You can read the opening of each article."),
        "{html}"
    );
    assert!(
        html.contains("You have not asked for a free trial."),
        "{html}"
    );

    let requested = app.request_trial(&reader, "Analytical Engines").await;
    assert_eq!(requested.status(), StatusCode::CREATED);
    let requested: Value = requested.json().await.expect("json");
    let due_by: chrono::DateTime<chrono::Utc> = requested["decision_due_by"]
        .as_str()
        .expect("a due date")
        .parse()
        .expect("a time");

    let admin = app.admin().await;
    let id = app.get_json(&reader, "/api/v1/me").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ends_at = app.now() + Duration::days(30);
    let granted = app
        .post(
            &admin,
            &format!("/api/v1/admin/accounts/{id}/grants"),
            json!({ "ends_at": ends_at }),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::CREATED);

    let (status, html) = app.page(&reader, "/account").await;
    assert_eq!(status, StatusCode::OK);
    let until = ends_at.format("%-d %B %Y, %H:%M UTC").to_string();
    assert!(
        html.contains(&format!(
            "Your subscription lets you read every article in full until {until}."
        )),
        "{html}"
    );
    assert!(html.contains("<td>Subscription</td>"), "{html}");
    assert!(html.contains("<td>Active</td>"), "{html}");
    assert!(html.contains("Waiting for a decision"), "{html}");
    assert!(
        html.contains(&due_by.format("%-d %B %Y, %H:%M UTC").to_string()),
        "{html}"
    );
    assert!(html.contains("href=\"/trial\""), "{html}");
    assert!(html.contains("href=\"/newsletter\""), "{html}");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_a_valid_new_one() {
    let app = TestApp::spawn().await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "ada@example.com").await;

    let response = app
        .submit(
            &reader,
            "/account",
            "/account/password",
            &[
                ("current_password", "not my password"),
                ("new_password", "short"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("html");
    assert!(html.contains("<title>Error: Your account"), "{html}");
    let current = html
        .find("href=\"#current_password\"")
        .expect("a link to the current password");
    let new = html
        .find("href=\"#new_password\"")
        .expect("a link to the new password");
    assert!(current < new, "the summary follows the page");
    assert!(
        html.contains("This is not your current password."),
        "{html}"
    );
    assert!(
        html.contains("A password has at least 8 characters."),
        "{html}"
    );
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert!(!html.contains("not my password"));

    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, "ada@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK,
        "nothing changed"
    );
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_tells_the_owner() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let new_password = "a brand new passphrase";
    let here = TestApp::browser();
    app.verified_reader(&here, email).await;
    let elsewhere = TestApp::browser();
    assert_eq!(
        app.login_with(&elsewhere, email, PASSWORD).await.status(),
        StatusCode::OK
    );

    let changed = app
        .submit(
            &here,
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
            ],
        )
        .await;
    assert_eq!(location(&changed), "/account");
    let page = follow(&app, &here, changed).await;
    assert!(page.contains("Your password has been changed."), "{page}");
    assert_eq!(
        app.get(&here, "/api/v1/me").await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.get(&elsewhere, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED,
        "the other one ended"
    );
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&client, email, new_password).await.status(),
        StatusCode::OK
    );
    let mail = app
        .mailbox
        .with_subject(email, "password was changed")
        .await;
    let reset = path_of(&app, &mail.link_containing("/forgot-password"));
    let (status, _) = app.page(&TestApp::browser(), &reset).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the link in the email leads somewhere"
    );
}

#[tokio::test]
async fn the_account_page_shows_the_newsletter_and_links_to_its_data() {
    let app = TestApp::spawn().await;
    app.add_sections(&NEWSLETTER_SECTIONS);
    let email = "ada@example.com";
    let reader = TestApp::browser();
    app.verified_reader(&reader, email).await;
    let subscribed = app
        .post(
            &reader,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": email, "sections": ["patents", "designs"] }),
        )
        .await;
    assert_eq!(subscribed.status(), StatusCode::ACCEPTED);

    let (status, html) = app.page(&reader, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Subscribed"), "{html}");
    assert!(html.contains("Patents, Designs"), "{html}");
    assert!(html.contains("href=\"/newsletter/preferences\""), "{html}");
    assert!(html.contains("href=\"/api/v1/newsletter/data\""), "{html}");
    let data = app.get_json(&reader, "/api/v1/newsletter/data").await;
    assert_eq!(data["email"], email);
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let reader = TestApp::browser();
    app.verified_reader(&reader, email).await;
    let limit = app.settings.auth.login_limit.per_account;
    for _ in 0..limit {
        let wrong = app
            .submit(
                &reader,
                "/account",
                "/account/password",
                &[
                    ("current_password", "a wrong guess"),
                    ("new_password", "a brand new passphrase"),
                ],
            )
            .await;
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let refused = app
        .submit(
            &reader,
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("html");
    assert!(html.contains("Too many attempts: try again in"), "{html}");
    assert_eq!(
        app.login_with(&TestApp::browser(), email, PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the same count as logins"
    );

    app.set_time(
        app.now() + Duration::seconds(app.settings.auth.login_limit.window_secs as i64 + 1),
    );
    let changed = app
        .submit(
            &reader,
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(location(&changed), "/account");
}
