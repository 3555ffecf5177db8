//! The client address behind reverse proxies, and who may read `/metrics`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, TestApp};

/// A failed login for an unknown address, carrying `forwarded` as
/// `X-Forwarded-For`.
async fn failed_login(app: &TestApp, n: usize, forwarded: &str) -> reqwest::Response {
    TestApp::browser()
        .post(app.url("/api/v1/sessions"))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({ "email": format!("victim{n}@example.com"), "password": "guess" }))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn a_forged_forwarded_header_from_an_untrusted_peer_is_ignored() {
    // No trusted proxies (the default): the loopback peer is the client,
    // whatever address it claims to forward for.
    let app = TestApp::spawn_with(|s| s.auth.login_limit.per_ip = 3).await;
    for i in 0..3 {
        let response = failed_login(&app, i, &format!("198.51.100.{i}")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = failed_login(&app, 9, "198.51.100.99").await;
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, None).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
    let app = TestApp::spawn_with(|s| {
        s.auth.login_limit.per_ip = 3;
        s.server.trusted_proxies = vec![
            "127.0.0.1".parse().expect("an address"),
            "10.0.0.0/8".parse().expect("a range"),
        ];
    })
    .await;
    // The leftmost hop is the client's to write, so varying it must not
    // escape the limit; 10.1.2.3 is a trusted proxy in between.
    for i in 0..3 {
        let response = failed_login(&app, i, &format!("192.0.2.{i}, 203.0.113.1, 10.1.2.3")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = failed_login(&app, 8, "192.0.2.77, 203.0.113.1, 10.1.2.3").await;
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, None).await;
    // Another reader behind the same proxy keeps their own allowance.
    let other = failed_login(&app, 9, "203.0.113.2, 10.1.2.3").await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_with_a_token_require_it_as_a_bearer() {
    let app = TestApp::spawn_with(|s| s.server.metrics_token = Some("scrape-secret".into())).await;
    let client = TestApp::browser();
    assert_problem(
        app.get(&client, "/metrics").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let wrong = client
        .get(app.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("request sent");
    assert_problem(wrong, StatusCode::UNAUTHORIZED, None).await;
    let right = client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("request sent");
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right
        .text()
        .await
        .expect("a body")
        .contains("masthead_trial_requests_pending"));
}

#[tokio::test]
async fn metrics_without_a_token_are_open_only_on_a_loopback_bind() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get(&TestApp::browser(), "/metrics").await.status(),
        StatusCode::OK
    );
    let exposed = TestApp::spawn_with(|s| {
        s.server.bind.set_ip([0, 0, 0, 0].into());
    })
    .await;
    assert_problem(
        exposed.get(&TestApp::browser(), "/metrics").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}

/// A reader whose requests reach masthead through a proxy, forwarded for
/// `address`.
fn reader_at(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().expect("a header value"));
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

#[tokio::test]
async fn trial_requests_behind_a_trusted_proxy_are_flagged_by_the_forwarded_address() {
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
    })
    .await;
    let admin = app.admin().await;
    for (email, company, address) in [
        ("first@acme.com", "Acme", "203.0.113.1"),
        ("second@globex.com", "Globex", "203.0.113.2"),
        ("third@initech.com", "Initech", "203.0.113.1"),
    ] {
        let reader = reader_at(address);
        app.verified_reader(&reader, email).await;
        app.clock.advance(chrono::Duration::minutes(
            app.settings.trials.new_account_minutes,
        ));
        let created = app.request_trial(&reader, company).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let listed = app.get_json(&admin, "/api/v1/admin/trials").await;
    let flags = |email: &str| -> String {
        listed["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["applicant"]["email"] == email)
            .expect("listed")["flags"]
            .to_string()
    };
    let flags = [
        flags("first@acme.com"),
        flags("second@globex.com"),
        flags("third@initech.com"),
    ];
    assert!(!flags[0].contains("same_ip_recently"), "{}", flags[0]);
    // Another address behind the same proxy is not the same reader.
    assert!(!flags[1].contains("same_ip_recently"), "{}", flags[1]);
    assert!(flags[2].contains("same_ip_recently"), "{}", flags[2]);
}
