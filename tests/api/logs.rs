//! What the logs keep of a reader's whole journey: ids and domains, never a
//! token, a password or a session.

use masthead::platform::domain::Token;
use reqwest::StatusCode;

use crate::helpers::{LogCapture, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "a completely different passphrase";

/// The session a login answered with.
fn session_of(response: &reqwest::Response) -> String {
    response
        .cookies()
        .find(|c| c.name() == "masthead_session")
        .map(|c| c.value().to_owned())
        .expect("a session cookie")
}

fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} does not point at {}", app.address))
        .to_owned()
}

/// Register, verify, log in, reset the password, sign up for the
/// newsletter, confirm, follow the unsubscribe link and ask for a trial,
/// through the pages and the API, with a forged `X-Forwarded-For` on every
/// request; then look for every secret of the journey in what was logged.
#[tokio::test]
async fn no_log_line_of_a_whole_journey_holds_a_token_a_password_or_a_session() {
    let logs = LogCapture::start();
    let app = TestApp::spawn().await;
    let forged = "203.0.113.66";
    let browser = || {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_static("203.0.113.66"),
        );
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("a client")
    };
    let reader = browser();
    let email = "journey@engines.example";
    let mut secrets: Vec<String> = vec![PASSWORD.into(), NEW_PASSWORD.into()];

    let registered = app
        .submit(
            &reader,
            "/register",
            "/register",
            &[("name", "Ada"), ("email", email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let verify = app.mailbox.nth(email, 1).await.token();
    let verified = app
        .submit(
            &reader,
            &format!("/verify-email?token={verify}"),
            "/verify-email",
            &[("token", &verify)],
        )
        .await;
    assert_eq!(verified.status(), StatusCode::SEE_OTHER);
    secrets.push(verify);

    let logged_in = app
        .submit(
            &reader,
            "/login",
            "/login",
            &[("email", email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    secrets.push(session_of(&logged_in));

    let asked = app
        .submit(
            &reader,
            "/forgot-password",
            "/forgot-password",
            &[("email", email)],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    let reset = app.mailbox.nth(email, 2).await.token();
    let changed = app
        .submit(
            &reader,
            &format!("/password-reset?token={reset}"),
            "/password-reset",
            &[("token", &reset), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    secrets.push(reset);

    let api = browser();
    let api_login = app.login_with(&api, email, NEW_PASSWORD).await;
    assert_eq!(api_login.status(), StatusCode::OK);
    secrets.push(session_of(&api_login));
    let trial = app.request_trial(&api, "Analytical Engines Ltd").await;
    assert_eq!(trial.status(), StatusCode::CREATED);

    let subscriber = "journey.news@example.com";
    let signed_up = app
        .submit(
            &browser(),
            "/newsletter",
            "/newsletter",
            &[("email", subscriber)],
        )
        .await;
    assert_eq!(signed_up.status(), StatusCode::SEE_OTHER);
    let confirm = app.mailbox.nth(subscriber, 1).await.token();
    let confirmed = app
        .submit(
            &browser(),
            &format!("/newsletter/confirm?token={confirm}"),
            "/newsletter/confirm",
            &[("token", &confirm)],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    secrets.push(confirm);
    let welcome = app.mailbox.nth(subscriber, 2).await;
    let unsubscribe = path_of(&app, &welcome.link_containing("/unsubscribe/"));
    let (status, _) = app.page(&browser(), &unsubscribe).await;
    assert_eq!(status, StatusCode::OK);
    let clicked = browser()
        .post(app.url(&unsubscribe))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("sent");
    assert_eq!(clicked.status(), StatusCode::OK);
    secrets.push(unsubscribe.trim_start_matches("/unsubscribe/").to_owned());

    // A session is stored by its hash: that is as good as the session.
    let hashes: Vec<String> = secrets
        .iter()
        .filter_map(|s| Token::parse(s).ok())
        .map(|t| t.hash().to_string())
        .collect();
    secrets.extend(hashes);

    let logged = logs.text();
    // The capture did see this journey, requests and services alike.
    for expected in [
        "account registered",
        "email verified",
        "password reset",
        "trial requested",
        "subscription confirmed",
        "/verify-email?token=[redacted]",
        "/unsubscribe/[redacted]",
    ] {
        assert!(logged.contains(expected), "no {expected:?} in:\n{logged}");
    }
    for secret in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "{secret:?} was logged:\n{logged}"
        );
    }
    // The client is the peer: an untrusted peer's forwarded address is
    // never logged as the client.
    assert!(!logged.contains(forged), "{logged}");
    assert!(logged.contains("http.client_ip"), "{logged}");
}

/// Behind a listed proxy the logged client is the hop the proxy vouches
/// for: the address the limits count, not the proxy's.
#[tokio::test]
async fn the_logged_client_is_the_one_a_trusted_proxy_forwards_for() {
    let logs = LogCapture::start();
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
    })
    .await;
    let response = TestApp::browser()
        .get(app.url("/newsletter"))
        .header("X-Forwarded-For", "198.51.100.1, 192.0.2.77")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let logged = logs.text();
    assert!(logged.contains("http.client_ip=192.0.2.77"), "{logged}");
    assert!(!logged.contains("198.51.100.1"), "{logged}");
}

/// Logs that go to a pipe (a file, a collector, systemd's journal) are
/// plain text: colour codes are for a terminal only.
#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let app = TestApp::spawn().await;
    let mut command = app.command(&["mail", "ingest"]);
    command
        .env("MASTHEAD__LOG__FORMAT", "pretty")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null());
    let out = command.output().expect("the masthead binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "no log line to look at: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in piped logs: {stderr:?}"
    );
}
