use chrono::Duration;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, polled, TestApp, PASSWORD};

#[tokio::test]
async fn register_verify_login_and_see_my_account() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";

    let registered = app.register(email, PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);

    let mail = app.mailbox.nth(email, 1).await;
    assert!(
        mail.subject().contains("Confirm your email address"),
        "{}",
        mail.subject()
    );
    assert!(mail
        .link_containing("token=")
        .starts_with(&app.settings.server.public_url));

    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": mail.token() }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);

    let login = app
        .login_with(&app.api, "  ADA@Example.com ", PASSWORD)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.starts_with("masthead_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP development has no Secure cookie: {cookie}"
    );

    let me: Value = app
        .get(&app.api, "/api/v1/me")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], email);
    assert_eq!(me["name"], "Ada Lovelace");
    assert_eq!(me["company"], "Analytical Engines Ltd");
    assert_eq!(me["role"], "reader");
    assert_eq!(me["email_verified"], true);
    assert!(me["newsletter"].is_null(), "not subscribed: {me}");
    assert!(me["trial"].is_null(), "no trial asked for: {me}");
}

#[tokio::test]
async fn me_without_a_session_is_401() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get(&app.api, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let forged = app
        .api
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("masthead_session={}", "ab".repeat(32)))
        .send()
        .await
        .expect("sent");
    assert_problem(forged, StatusCode::UNAUTHORIZED, None).await;
}

#[tokio::test]
async fn registering_a_known_address_answers_the_same_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let email = "known@example.com";
    let first = app.register(email, PASSWORD).await;
    let first_status = first.status();
    let first_body: Value = first.json().await.expect("json");

    let second = app.register(email, "another password entirely").await;
    assert_eq!(second.status(), first_status);
    assert_eq!(second.json::<Value>().await.expect("json"), first_body);

    app.mailbox.wait_for(email, 2).await;
    app.mailbox.with_subject(email, "already have").await;

    let browser = TestApp::browser();
    assert_eq!(
        app.login_with(&browser, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_with(&browser, email, "another password entirely")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_address_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.register("someone@example.com", PASSWORD).await;
    let browser = TestApp::browser();

    let wrong = app
        .login_with(&browser, "someone@example.com", "not the password")
        .await;
    let wrong_body = assert_problem(wrong, StatusCode::UNAUTHORIZED, None).await;
    let unknown = app
        .login_with(&browser, "nobody@example.com", "not the password")
        .await;
    let unknown_body = assert_problem(unknown, StatusCode::UNAUTHORIZED, None).await;
    assert_eq!(wrong_body, unknown_body);
}

#[tokio::test]
async fn invalid_registrations_name_every_bad_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            &app.api,
            "/api/v1/accounts",
            json!({ "email": "not-an-address", "password": "short", "name": "  " }),
        )
        .await;
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;
    let reasons: Vec<(String, String)> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("password".into(), "too_short".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("name".into(), "required".into())),
        "{reasons:?}"
    );

    for email in [
        "jane@localhost",
        "jane@example.com\r\nBcc: victim@example.org",
        &format!("{}@example.com", "a".repeat(300)),
    ] {
        let response = app
            .post(
                &app.api,
                "/api/v1/accounts",
                json!({ "email": email, "password": PASSWORD, "name": "Jane" }),
            )
            .await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;
    }
    let pool = app.pool();
    let stored = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        let mut conn = pool.get().expect("conn");
        masthead::platform::db::schema::accounts::table
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    })
    .await
    .expect("task");
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn verification_links_work_once_and_expire() {
    let app = TestApp::spawn().await;
    app.register("once@example.com", PASSWORD).await;
    let token = app.mailbox.nth("once@example.com", 1).await.token();
    let verify = || {
        app.post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": token }),
        )
    };
    assert_eq!(verify().await.status(), StatusCode::OK);
    assert_problem(
        verify().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;

    app.register("late@example.com", PASSWORD).await;
    let late = app.mailbox.nth("late@example.com", 1).await.token();
    app.clock
        .advance(Duration::hours(app.settings.auth.verification_ttl_hours) + Duration::seconds(1));
    let expired = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": late }),
        )
        .await;
    assert_problem(expired, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;

    let garbage = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": "../../etc" }),
        )
        .await;
    assert_problem(garbage, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;
}

#[tokio::test]
async fn password_reset_sets_a_new_password_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let email = "reset@example.com";
    let laptop = TestApp::browser();
    app.verified_reader(&laptop, email).await;
    assert_eq!(
        app.get(&laptop, "/api/v1/me").await.status(),
        StatusCode::OK
    );

    let requested = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": email }),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let reset_mail = app.mailbox.nth(email, 2).await;
    assert!(
        reset_mail.subject().contains("Reset your"),
        "{}",
        reset_mail.subject()
    );
    let token = reset_mail.token();

    let new_password = "a brand new passphrase";
    let confirm = || {
        app.post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "password": new_password }),
        )
    };
    assert_eq!(confirm().await.status(), StatusCode::OK);
    assert_problem(
        confirm().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token"),
    )
    .await;

    assert_problem(
        app.get(&laptop, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let phone = TestApp::browser();
    assert_eq!(
        app.login_with(&phone, email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&phone, email, new_password).await.status(),
        StatusCode::OK
    );

    let changed = app.mailbox.nth(email, 3).await;
    assert!(
        changed.subject().contains("password was changed"),
        "{}",
        changed.subject()
    );
}

#[tokio::test]
async fn password_reset_links_expire_and_weak_passwords_are_refused() {
    let app = TestApp::spawn().await;
    let email = "slow@example.com";
    app.register(email, PASSWORD).await;
    app.mailbox.nth(email, 1).await;
    app.post(
        &app.api,
        "/api/v1/password-resets",
        json!({ "email": email }),
    )
    .await;
    let token = app.mailbox.nth(email, 2).await.token();

    let weak = app
        .post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "password": "123" }),
        )
        .await;
    assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, Some("password")).await;

    app.clock
        .advance(Duration::minutes(app.settings.auth.reset_ttl_minutes) + Duration::seconds(1));
    let late = app
        .post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "password": "long enough now" }),
        )
        .await;
    assert_problem(late, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;
}

#[tokio::test]
async fn password_reset_answers_the_same_for_unknown_addresses_and_sends_nothing() {
    let app = TestApp::spawn().await;
    app.register("real@example.com", PASSWORD).await;
    app.mailbox.nth("real@example.com", 1).await;

    let known = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": "real@example.com" }),
        )
        .await;
    let known_status = known.status();
    let known_body: Value = known.json().await.expect("json");
    let unknown = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": "ghost@example.com" }),
        )
        .await;
    assert_eq!(unknown.status(), known_status);
    assert_eq!(unknown.json::<Value>().await.expect("json"), known_body);

    // The known address gets its link; by then the worker has also passed
    // over the unknown one, which has nothing queued.
    app.mailbox.nth("real@example.com", 2).await;
    assert!(app.mailbox.to("ghost@example.com").is_empty());
    let pool = app.pool();
    let queued = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        let ghost =
            masthead::platform::domain::EmailAddress::parse("ghost@example.com").expect("valid");
        masthead::platform::mail::store::for_recipient(&mut conn, &ghost)
            .expect("query")
            .len()
    })
    .await
    .expect("task");
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn failed_logins_are_rate_limited_and_the_limit_lifts() {
    let app = TestApp::spawn().await;
    let email = "target@example.com";
    app.register(email, PASSWORD).await;
    let limit = app.settings.auth.login_limit.per_account;
    let attacker = TestApp::browser();
    for _ in 0..limit {
        let response = app.login_with(&attacker, email, "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = app.login_with(&attacker, email, PASSWORD).await;
    let retry_after: u64 = blocked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(retry_after > 0 && retry_after <= app.settings.auth.login_limit.window_secs);
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, None).await;

    app.clock.advance(Duration::seconds(
        i64::try_from(retry_after).expect("small"),
    ));
    assert_eq!(
        app.login_with(&attacker, email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited_across_accounts() {
    let app = TestApp::spawn_with(|s| s.auth.login_limit.per_ip = 3).await;
    let attacker = TestApp::browser();
    for i in 0..3 {
        let response = app
            .login_with(&attacker, &format!("victim{i}@example.com"), "guess")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = app
        .login_with(&attacker, "victim9@example.com", "guess")
        .await;
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, None).await;
}

/// The session ends on the server, not only in the browser: its cookie,
/// sent again after logging out, is refused, though the session had been
/// kept in memory.
#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let email = "leaver@example.com";
    app.verified_reader(&TestApp::browser(), email).await;
    let (client, cookie) = logged_in_without_a_jar(&app, email).await;
    let me = || {
        client
            .get(app.url("/api/v1/me"))
            .header(COOKIE, &cookie)
            .send()
    };
    assert_eq!(me().await.expect("sent").status(), StatusCode::OK);
    let logout = client
        .delete(app.url("/api/v1/sessions"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_problem(me().await.expect("sent"), StatusCode::UNAUTHORIZED, None).await;
}

/// Logs `email` in with a client that keeps no cookies, and gives the
/// session cookie to send by hand.
async fn logged_in_without_a_jar(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::new();
    let login = app.login_with(&client, email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    (client, cookie)
}

/// Another instance keeps its own sessions: one ended through this one is
/// refused there once `auth.session_recheck_ms` has passed.
#[tokio::test]
async fn a_session_ended_through_another_instance_ends_there() {
    let app = TestApp::spawn().await;
    let other = app
        .another_instance(|s| s.auth.session_recheck_ms = 100)
        .await;
    let email = "roamer@example.com";
    let here = TestApp::browser();
    app.verified_reader(&here, email).await;
    let (client, cookie) = logged_in_without_a_jar(&app, email).await;
    let me_there = || {
        client
            .get(other.url("/api/v1/me"))
            .header(COOKIE, &cookie)
            .send()
    };
    assert_eq!(me_there().await.expect("sent").status(), StatusCode::OK);

    let changed = here
        .put(app.url("/api/v1/me/password"))
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), StatusCode::OK);
    let status = polled(
        || async { me_there().await.expect("sent").status() },
        |status| *status != StatusCode::OK,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_expire() {
    let app = TestApp::spawn().await;
    app.verified_reader(&app.api, "sleepy@example.com").await;
    app.clock
        .advance(Duration::hours(app.settings.auth.session_ttl_hours) + Duration::seconds(1));
    assert_problem(
        app.get(&app.api, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}

#[tokio::test]
async fn only_admins_manage_accounts_and_roles() {
    let app = TestApp::spawn().await;
    let anonymous = TestApp::browser();
    assert_problem(
        app.get(&anonymous, "/api/v1/admin/accounts").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    assert_problem(
        app.get(&reader, "/api/v1/admin/accounts").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;

    let editor = TestApp::browser();
    app.privileged(&editor, "editor@example.com", "editor")
        .await;
    assert_problem(
        app.get(&editor, "/api/v1/admin/accounts").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;

    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let listed = app.get(&admin, "/api/v1/admin/accounts?role=reader").await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["total"], 1);
    let reader_id = listed["accounts"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(listed["accounts"][0]["email"], "reader@example.com");

    let path = format!("/api/v1/admin/accounts/{reader_id}/role");
    let by_editor = editor
        .put(app.url(&path))
        .json(&json!({ "role": "editor" }))
        .send()
        .await
        .expect("sent");
    assert_problem(by_editor, StatusCode::FORBIDDEN, None).await;

    let promoted = admin
        .put(app.url(&path))
        .json(&json!({ "role": "editor" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(promoted.status(), StatusCode::OK);
    let me: Value = app
        .get(&reader, "/api/v1/me")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "editor");

    let bad_role = admin
        .put(app.url(&path))
        .json(&json!({ "role": "emperor" }))
        .send()
        .await
        .expect("sent");
    assert_problem(bad_role, StatusCode::UNPROCESSABLE_ENTITY, Some("role")).await;
    let bad_filter = app.get(&admin, "/api/v1/admin/accounts?role=emperor").await;
    assert_problem(bad_filter, StatusCode::UNPROCESSABLE_ENTITY, Some("query")).await;
    let missing = admin
        .put(app.url(&format!(
            "/api/v1/admin/accounts/{}/role",
            uuid::Uuid::new_v4()
        )))
        .json(&json!({ "role": "editor" }))
        .send()
        .await
        .expect("sent");
    assert_problem(missing, StatusCode::NOT_FOUND, None).await;
}

#[tokio::test]
async fn the_worker_deletes_expired_sessions() {
    let app = TestApp::spawn().await;
    app.verified_reader(&app.api, "gone@example.com").await;
    let pool = app.pool();
    let sessions = move || {
        use diesel::prelude::*;
        let mut conn = pool.get().expect("conn");
        masthead::platform::db::schema::sessions::table
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    };
    assert_eq!(sessions(), 1);
    app.clock
        .advance(Duration::hours(app.settings.auth.session_ttl_hours) + Duration::hours(1));
    crate::helpers::eventually("the expired session to be deleted", || sessions() == 0).await;
}

#[tokio::test]
async fn repeated_requests_cannot_flood_an_inbox() {
    // The rule under test is the one-mail-per-window; the form limits
    // would turn the repeats away before it is asked.
    let app = TestApp::spawn_with(crate::helpers::without_form_limits).await;
    let email = "popular@example.com";
    app.register(email, PASSWORD).await;
    app.mailbox.nth(email, 1).await;
    for _ in 0..3 {
        assert_eq!(
            app.register(email, PASSWORD).await.status(),
            StatusCode::ACCEPTED
        );
        let reset = app
            .post(
                &app.api,
                "/api/v1/password-resets",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(reset.status(), StatusCode::ACCEPTED);
    }
    app.mailbox.wait_for(email, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.mailbox.to(email).len(),
        3,
        "verification, one reminder, one reset link"
    );

    app.clock
        .advance(Duration::minutes(app.settings.auth.repeat_mail_minutes));
    app.register(email, PASSWORD).await;
    app.post(
        &app.api,
        "/api/v1/password-resets",
        json!({ "email": email }),
    )
    .await;
    app.mailbox.wait_for(email, 5).await;
}

#[tokio::test]
async fn a_reader_changes_the_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let email = "changer@example.com";
    let here = TestApp::browser();
    app.verified_reader(&here, email).await;
    let elsewhere = TestApp::browser();
    assert_eq!(
        app.login_with(&elsewhere, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&elsewhere, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    let change = |current: &'static str, new: &'static str| {
        here.put(app.url("/api/v1/me/password"))
            .json(&json!({ "current_password": current, "new_password": new }))
            .send()
    };

    let wrong = change("not my password", "a brand new passphrase")
        .await
        .expect("sent");
    assert_problem(
        wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("current_password"),
    )
    .await;
    let short = change(PASSWORD, "short").await.expect("sent");
    assert_problem(
        short,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("new_password"),
    )
    .await;

    let changed = change(PASSWORD, "a brand new passphrase")
        .await
        .expect("sent");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(app.get(&here, "/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(
        app.get(&elsewhere, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&TestApp::browser(), email, PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&TestApp::browser(), email, "a brand new passphrase")
            .await
            .status(),
        StatusCode::OK
    );
    app.mailbox
        .with_subject(email, "password was changed")
        .await;
}
