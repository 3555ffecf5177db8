//! Holes found by probing the running service (issue 13), each pinned by
//! the request that used to get through.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, TestApp, PASSWORD};

/// With no hashing permits at all, any request that reaches argon2 waits
/// out `max_wait_ms` and answers 503. A reset with an unknown token must
/// answer 422 even so: proof that the token is checked before any hash,
/// without timing anything.
#[tokio::test]
async fn a_reset_with_an_unknown_token_is_refused_before_any_hashing() {
    let app = TestApp::spawn_with(|s| {
        s.auth.argon2.max_concurrent = Some(0);
        s.auth.argon2.max_wait_ms = 50;
    })
    .await;
    let random = "ab".repeat(32);
    let refused = app
        .post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": random, "password": "a perfectly fine passphrase" }),
        )
        .await;
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;

    // Hashing itself is behind the gate: registration (and so login, reset
    // and change of password, which share the hasher) is turned away with a
    // hint when to come back, instead of queueing without bound.
    let busy = app.register("gated@example.com", PASSWORD).await;
    let retry_after = busy
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a Retry-After header in seconds");
    assert!(retry_after >= 1);
    assert_problem(busy, StatusCode::SERVICE_UNAVAILABLE, None).await;
    let login = app
        .login_with(&app.api, "gated@example.com", PASSWORD)
        .await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// The failure is counted before the slow verify, so parallel guesses
/// cannot all slip in under the limit while the first ones are hashing.
#[tokio::test]
async fn parallel_wrong_passwords_get_no_more_tries_than_the_limit() {
    let app = TestApp::spawn().await;
    let email = "parallel@example.com";
    app.register(email, PASSWORD).await;
    let limit = app.settings.auth.login_limit.per_account;
    let attempts = (0..40).map(|i| {
        let app = &app;
        async move {
            app.login_with(&TestApp::browser(), email, &format!("guess {i}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(unauthorized + limited, 40, "{statuses:?}");
    assert!(
        unauthorized <= usize::try_from(limit).expect("small"),
        "{unauthorized} wrong passwords were checked against a limit of {limit}"
    );

    // A success still lifts the count for the account.
    app.clock.advance(Duration::seconds(
        i64::try_from(app.settings.auth.login_limit.window_secs).expect("small"),
    ));
    assert_eq!(
        app.login_with(&TestApp::browser(), email, PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_with(&TestApp::browser(), email, "guess again")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Using one reset link spends every other one of the account: an older
/// link found later in the mailbox must not reset the password again.
#[tokio::test]
async fn an_older_reset_link_dies_when_a_newer_one_is_used() {
    let app = TestApp::spawn().await;
    let email = "twice@example.com";
    app.register(email, PASSWORD).await;
    app.mailbox.nth(email, 1).await;
    let request = || {
        app.post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": email }),
        )
    };
    assert_eq!(request().await.status(), StatusCode::ACCEPTED);
    let older = app.mailbox.nth(email, 2).await.token();
    app.clock
        .advance(Duration::minutes(app.settings.auth.repeat_mail_minutes) + Duration::seconds(1));
    assert_eq!(request().await.status(), StatusCode::ACCEPTED);
    let newer = app.mailbox.nth(email, 3).await.token();
    assert_ne!(older, newer);

    let confirm = |token: String, password: &'static str| {
        app.post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "password": password }),
        )
    };
    assert_eq!(
        confirm(newer, "the newer passphrase").await.status(),
        StatusCode::OK
    );
    assert_problem(
        confirm(older, "the older passphrase").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;
    assert_eq!(
        app.login_with(&TestApp::browser(), email, "the newer passphrase")
            .await
            .status(),
        StatusCode::OK
    );
}

/// A short signing key is refused at start, naming the setting.
#[tokio::test]
async fn a_short_auth_secret_is_refused_at_start() {
    let db = crate::helpers::TestDb::create();
    let mut settings = crate::helpers::test_settings(&db, 1);
    settings.auth.secret = Some("too short".to_owned().into());
    let Err(error) = masthead::app::Application::build(settings).await else {
        panic!("started with a nine-byte auth.secret");
    };
    let message = format!("{error:#}");
    assert!(message.contains("auth.secret"), "{message}");
    assert!(message.contains("32"), "{message}");
}

/// Whatever a registration calls itself never reaches the inbox of an
/// address nobody has proven to own.
#[tokio::test]
async fn the_registered_name_is_not_mailed_to_an_unverified_address() {
    let app = TestApp::spawn().await;
    let name = "your account is locked, call 555 0100 and visit https://evil.example/login";
    let register = |email: &'static str| {
        app.post(
            &app.api,
            "/api/v1/accounts",
            json!({ "email": email, "password": PASSWORD, "name": name }),
        )
    };
    assert_eq!(
        register("victim@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let verify = app.mailbox.nth("victim@example.com", 1).await;
    // Registering the address again sends "you already have an account".
    assert_eq!(
        register("victim@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let exists = app
        .mailbox
        .with_subject("victim@example.com", "already have")
        .await;
    // And a reset asked for by anyone.
    let reset = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": "victim@example.com" }),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::ACCEPTED);
    let reset = app
        .mailbox
        .with_subject("victim@example.com", "Reset your")
        .await;
    for mail in [verify, exists, reset] {
        for body in [mail.text(), mail.html()] {
            assert!(!body.contains("evil.example"), "{body}");
            assert!(!body.contains("555 0100"), "{body}");
        }
    }
}

#[tokio::test]
async fn a_huge_page_number_is_refused_naming_page() {
    let app = TestApp::spawn().await;
    let response = app
        .get(
            &app.api,
            &format!("/api/v1/articles?page={}&per_page=50", i64::MAX),
        )
        .await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("page")).await;
}

/// Search terms are bounded in length and in distinct words; repeating a
/// word is not a way around the bound.
#[tokio::test]
async fn search_terms_are_bounded() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(201);
    assert_problem(
        app.get(&app.api, &format!("/api/v1/articles?q={long}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("q"),
    )
    .await;
    let many = (0..13)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join("+");
    assert_problem(
        app.get(&app.api, &format!("/api/v1/articles?q={many}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("q"),
    )
    .await;
    let repeated = vec!["budget"; 25].join("+");
    assert_eq!(
        app.get(&app.api, &format!("/api/v1/articles?q={repeated}"))
            .await
            .status(),
        StatusCode::OK
    );
}

/// A connection given back while still inside a transaction (here: the work
/// panicked mid-transaction) is discarded, not handed to the next caller
/// still holding the transaction open — on SQLite that is `BEGIN IMMEDIATE`
/// and its write lock.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_is_not_reused() {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    use masthead::platform::db::DbConnection;

    fn depth(conn: &mut DbConnection) -> Option<std::num::NonZeroU32> {
        masthead::per_backend!(conn, |c| {
            AnsiTransactionManager::transaction_manager_status_mut(c)
                .transaction_depth()
                .expect("a working transaction manager")
        })
    }

    let app = TestApp::spawn().await;
    let mut settings = app.settings.database.clone();
    settings.pool_size = 1;
    tokio::task::spawn_blocking(move || {
        let pool = masthead::platform::db::connect(&settings).expect("a pool");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut conn = pool.get().expect("a connection");
            let _: Result<(), diesel::result::Error> =
                masthead::platform::db::transaction(&mut conn, |c| {
                    assert!(depth(c).is_some());
                    panic!("work failed mid-transaction");
                });
        }));
        assert!(panicked.is_err());
        let mut next = pool.get().expect("a connection");
        assert_eq!(
            depth(&mut next),
            None,
            "the next caller got an open transaction"
        );
        masthead::platform::db::transaction(&mut next, masthead::platform::db::ping)
            .expect("a fresh transaction");
    })
    .await
    .expect("task");
}
